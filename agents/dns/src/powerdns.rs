//! The PowerDNS Authoritative driver: its HTTP API with the `X-API-Key` header.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RData};
use ipam_agent_proto::{
    RecordDelete, ResourceRecord, ServerKind, ServerStatus, ZoneInfo, ZoneSpec, ZoneType,
};
use serde_json::{json, Value};

use crate::error::DnsError;
use crate::http::{HttpEndpoint, HttpResponse};
use crate::{no_view, zone_name, DnsServer, UpdateOutcome, ZoneContents, ZoneDefaults};
use ipam_agent_proto::presentation::{
    canonical_data, canonical_name, name_text, parse_name, parse_rdata, parse_type, render_rdata,
    zone_text,
};

/// How to reach one PowerDNS Authoritative server's API (pdns.conf: `api=yes`, `api-key`,
/// `webserver=yes`, `webserver-address`, `webserver-port`, `webserver-allow-from`).
#[derive(Clone)]
pub struct PowerDnsConfig {
    /// The server's name, as Central knows it; starts every error message.
    pub name: String,
    /// The API's address and port (`webserver-address`, `webserver-port`).
    pub api_addr: SocketAddr,
    /// The API key (`api-key`).
    pub api_key: String,
    /// The server id in API paths: `localhost` for the server itself.
    pub server_id: String,
    /// SOA and NS records of new zones.
    pub zone_defaults: ZoneDefaults,
    /// Timeout of each connection, read and write.
    pub timeout: Duration,
}

impl PowerDnsConfig {
    /// The usual timeout: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

impl std::fmt::Debug for PowerDnsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDnsConfig")
            .field("name", &self.name)
            .field("api_addr", &self.api_addr)
            .field("api_key", &"<redacted>")
            .field("server_id", &self.server_id)
            .field("zone_defaults", &self.zone_defaults)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A PowerDNS Authoritative server. See the crate docs for how each operation is done.
#[derive(Debug)]
pub struct PowerDnsServer {
    config: PowerDnsConfig,
}

/// One record of a record set being merged: PowerDNS's text, whether it is disabled, and the
/// parsed data to compare with (names inside compare without case).
struct MergeRecord {
    content: String,
    disabled: bool,
    parsed: Option<RData>,
}

impl MergeRecord {
    fn same(&self, other: &MergeRecord) -> bool {
        match (&self.parsed, &other.parsed) {
            (Some(a), Some(b)) => a == b,
            _ => self.content == other.content,
        }
    }
}

/// A record set being merged.
struct MergeSet {
    name: String,
    rtype: String,
    ttl: u32,
    records: Vec<MergeRecord>,
    touched: bool,
}

impl PowerDnsServer {
    /// Checks the configuration and makes the driver; connects to nothing.
    pub fn new(config: PowerDnsConfig) -> Result<PowerDnsServer, DnsError> {
        let bad = |reason: String| DnsError::Config {
            server: config.name.clone(),
            reason,
        };
        if config.api_key.is_empty() || config.api_key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad(
                "the API key is empty or holds spaces or control characters".into(),
            ));
        }
        if config.server_id.is_empty()
            || !config
                .server_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(bad(format!(
                "server_id {:?} may only hold letters, digits, '-', '_' and '.'",
                config.server_id
            )));
        }
        Ok(PowerDnsServer { config })
    }

    fn api(&self) -> HttpEndpoint<'_> {
        HttpEndpoint {
            server: &self.config.name,
            what: "PowerDNS API",
            addr: self.config.api_addr,
            timeout: self.config.timeout,
            headers: vec![("X-API-Key", self.config.api_key.clone())],
        }
    }

    fn base(&self) -> String {
        format!("/api/v1/servers/{}", self.config.server_id)
    }

    fn zone_path(&self, zone: &Name) -> String {
        format!("{}/zones/{}", self.base(), zone_id(zone))
    }

    /// Sends a request and sorts its status: `Ok` for a 2xx, else the matching error.
    fn call(
        &self,
        action: &str,
        zone: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, DnsError> {
        let api = self.api();
        let bytes = body.map(|b| b.to_string().into_bytes());
        let response = api.request(action, method, path, bytes.as_deref())?;
        let server = self.config.name.clone();
        let reason = || {
            serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| response.body_excerpt())
        };
        match response.status {
            200..=299 => Ok(response),
            401 | 403 => Err(DnsError::Refused {
                server,
                action: action.to_owned(),
                reason: format!(
                    "the PowerDNS API rejected the API key (HTTP {}); check api-key in pdns.conf \
                     and webserver-allow-from",
                    response.status
                ),
            }),
            404 => Err(DnsError::NotFound {
                server,
                zone: zone.to_owned(),
                action: action.to_owned(),
            }),
            409 => Err(DnsError::AlreadyExists {
                server,
                zone: zone.to_owned(),
            }),
            400 | 422 => Err(DnsError::Refused {
                server,
                action: action.to_owned(),
                reason: format!("PowerDNS answered HTTP {}: {}", response.status, reason()),
            }),
            500..=599 => Err(DnsError::ServerFailure {
                server,
                action: action.to_owned(),
                reason: format!("HTTP {}: {}", response.status, reason()),
            }),
            other => Err(api.protocol(action, format!("unexpected HTTP {other}: {}", reason()))),
        }
    }

    /// Sends a request and parses its JSON answer.
    fn call_json(&self, action: &str, zone: &str, path: &str) -> Result<Value, DnsError> {
        let response = self.call(action, zone, "GET", path, None)?;
        serde_json::from_slice(&response.body).map_err(|e| {
            self.api()
                .protocol(action, format!("the answer is not JSON: {e}"))
        })
    }

    fn serial(&self, zone: &Name, zone_txt: &str) -> Option<u32> {
        let path = format!("{}?rrsets=false", self.zone_path(zone));
        let value = self
            .call_json(
                &format!("reading the serial of zone {zone_txt}"),
                zone_txt,
                &path,
            )
            .ok()?;
        value
            .get("serial")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
    }
}

/// PowerDNS's zone id: the name with its final dot, bytes other than letters, digits, `.`,
/// `-` and `_` written as `=HH`.
fn zone_id(zone: &Name) -> String {
    let mut id = String::new();
    for b in zone_text(zone).bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            id.push(char::from(b));
        } else {
            id.push_str(&format!("={b:02X}"));
        }
    }
    if !id.ends_with('.') {
        id.push('.');
    }
    id
}

/// A zone's type and masters from a zone object of the API.
fn zone_info(value: &Value) -> Option<ZoneInfo> {
    let name = value.get("name").and_then(Value::as_str)?;
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let zone_type = match kind.to_ascii_lowercase().as_str() {
        "slave" | "secondary" | "consumer" => ZoneType::Secondary,
        _ => ZoneType::Primary,
    };
    let masters = value
        .get("masters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|m| {
            // "192.0.2.1", "192.0.2.1:5300" or "[2001:db8::1]:5300"
            m.parse::<IpAddr>()
                .ok()
                .or_else(|| m.parse::<SocketAddr>().ok().map(|s| s.ip()))
        })
        .collect();
    let serial = value
        .get("serial")
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .filter(|&s| s != 0 || zone_type == ZoneType::Primary);
    let name = parse_name(name).map_or_else(|_| name.to_owned(), |n| zone_text(&n));
    Some(ZoneInfo {
        name,
        view: None,
        zone_type,
        dynamic: zone_type == ZoneType::Primary,
        masters,
        serial,
    })
}

/// The records of the API's `rrsets` array, disabled ones left out; the SOA first.
fn rrset_records(value: &Value) -> Vec<ResourceRecord> {
    let mut records = Vec::new();
    let rrsets = value.get("rrsets").and_then(Value::as_array);
    for set in rrsets.into_iter().flatten() {
        let text = |k: &str| set.get(k).and_then(Value::as_str).unwrap_or_default();
        let (name, rtype) = (canonical_name(text("name")), text("type").to_owned());
        let ttl = set
            .get("ttl")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or_default();
        let items = set.get("records").and_then(Value::as_array);
        for record in items.into_iter().flatten() {
            if record.get("disabled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let content = record
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            records.push(ResourceRecord {
                name: name.clone(),
                rtype: rtype.clone(),
                ttl,
                data: canonical_data(&rtype, content),
            });
        }
    }
    records.sort_by_key(|r| r.rtype != "SOA");
    records
}

impl DnsServer for PowerDnsServer {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> ServerKind {
        ServerKind::PowerDns
    }

    fn list_zones(&self) -> Result<Vec<ZoneInfo>, DnsError> {
        let action = "listing zones";
        let value = self.call_json(action, "", &format!("{}/zones", self.base()))?;
        let zones = value
            .as_array()
            .ok_or_else(|| self.api().protocol(action, "the zone list is not an array"))?;
        Ok(zones.iter().filter_map(zone_info).collect())
    }

    fn read_zone(&self, zone: &str, view: Option<&str>) -> Result<ZoneContents, DnsError> {
        no_view(&self.config.name, view)?;
        let action = format!("reading zone {zone}");
        let name = zone_name(&self.config.name, &action, zone)?;
        let zone = zone_text(&name);
        let value = self.call_json(&action, &zone, &self.zone_path(&name))?;
        let info = zone_info(&value)
            .ok_or_else(|| self.api().protocol(&action, "the zone object has no name"))?;
        Ok(ZoneContents {
            zone: info,
            records: rrset_records(&value),
        })
    }

    fn create_zone(&self, spec: &ZoneSpec) -> Result<(), DnsError> {
        no_view(&self.config.name, spec.view.as_deref())?;
        let action = format!("creating zone {}", spec.name);
        let name = zone_name(&self.config.name, &action, &spec.name)?;
        let zone = zone_text(&name);
        let body = match spec.zone_type {
            ZoneType::Primary => {
                let records =
                    self.config
                        .zone_defaults
                        .initial_records(&name)
                        .map_err(|reason| DnsError::Invalid {
                            server: self.config.name.clone(),
                            action: action.clone(),
                            reason,
                        })?;
                let mut sets: BTreeMap<(String, String), (u32, Vec<Value>)> = BTreeMap::new();
                for r in records {
                    let entry = sets
                        .entry((r.name.clone(), r.rtype.clone()))
                        .or_insert((r.ttl, Vec::new()));
                    entry.1.push(
                        json!({ "content": canonical_data(&r.rtype, &r.data), "disabled": false }),
                    );
                }
                let rrsets: Vec<Value> = sets
                    .into_iter()
                    .map(|((name, rtype), (ttl, records))| {
                        json!({ "name": name, "type": rtype, "ttl": ttl, "records": records })
                    })
                    .collect();
                json!({
                    "name": name_text(&name),
                    "kind": "Native",
                    "nameservers": [],
                    "rrsets": rrsets,
                })
            }
            ZoneType::Secondary => {
                let masters: Vec<String> = spec.masters.iter().map(IpAddr::to_string).collect();
                json!({
                    "name": name_text(&name),
                    "kind": "Slave",
                    "masters": masters,
                    "nameservers": [],
                })
            }
        };
        let path = format!("{}/zones", self.base());
        self.call(&action, &zone, "POST", &path, Some(&body))
            .map(|_| ())
    }

    fn delete_zone(&self, zone: &str, view: Option<&str>) -> Result<(), DnsError> {
        no_view(&self.config.name, view)?;
        let action = format!("deleting zone {zone}");
        let name = zone_name(&self.config.name, &action, zone)?;
        let zone = zone_text(&name);
        self.call(&action, &zone, "DELETE", &self.zone_path(&name), None)
            .map(|_| ())
    }

    fn update_records(
        &self,
        zone: &str,
        view: Option<&str>,
        deletes: &[RecordDelete],
        adds: &[ResourceRecord],
    ) -> Result<UpdateOutcome, DnsError> {
        no_view(&self.config.name, view)?;
        let action = format!("updating records of zone {zone}");
        let origin = zone_name(&self.config.name, &action, zone)?;
        let zone = zone_text(&origin);
        let invalid = |reason: String| DnsError::Invalid {
            server: self.config.name.clone(),
            action: action.clone(),
            reason,
        };
        // Check and parse everything before sending anything.
        let owner = |text: &str| {
            let name = parse_name(text).map_err(&invalid)?;
            if origin.zone_of(&name) {
                Ok(name)
            } else {
                Err(invalid(format!(
                    "record name {name} is outside zone {zone}"
                )))
            }
        };
        let record = |rtype: &str, data: &str| {
            let t = parse_type(rtype).map_err(&invalid)?;
            let parsed = parse_rdata(t, data).map_err(&invalid)?;
            Ok::<_, DnsError>(MergeRecord {
                content: render_rdata(&parsed),
                disabled: false,
                parsed: Some(parsed),
            })
        };
        let mut planned_deletes = Vec::with_capacity(deletes.len());
        for d in deletes {
            let name = owner(&d.name)?;
            parse_type(&d.rtype).map_err(&invalid)?;
            let data = d.data.as_deref().map(|x| record(&d.rtype, x)).transpose()?;
            planned_deletes.push((name, d.rtype.clone(), data));
        }
        let mut planned_adds = Vec::with_capacity(adds.len());
        for a in adds {
            let name = owner(&a.name)?;
            planned_adds.push((name, a.rtype.clone(), a.ttl, record(&a.rtype, &a.data)?));
        }
        if planned_deletes.is_empty() && planned_adds.is_empty() {
            return Ok(UpdateOutcome {
                serial: self.serial(&origin, &zone),
                requests: 0,
            });
        }

        // The current record sets, keyed by lower-case name and type.
        let current = self.call_json(&action, &zone, &self.zone_path(&origin))?;
        let mut sets: BTreeMap<(String, String), MergeSet> = BTreeMap::new();
        let rrsets = current.get("rrsets").and_then(Value::as_array);
        for set in rrsets.into_iter().flatten() {
            let text = |k: &str| set.get(k).and_then(Value::as_str).unwrap_or_default();
            let (name, rtype) = (text("name").to_owned(), text("type").to_owned());
            let records = set
                .get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| {
                    let content = r
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let parsed = parse_type(&rtype)
                        .and_then(|t| parse_rdata(t, &content))
                        .ok();
                    MergeRecord {
                        content,
                        disabled: r.get("disabled").and_then(Value::as_bool) == Some(true),
                        parsed,
                    }
                })
                .collect();
            let ttl = set
                .get("ttl")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or_default();
            sets.insert(
                (name.to_ascii_lowercase(), rtype.clone()),
                MergeSet {
                    name,
                    rtype,
                    ttl,
                    records,
                    touched: false,
                },
            );
        }
        // Deletes first, then adds, as RFC 2136 orders them.
        for (name, rtype, data) in planned_deletes {
            let key = (name_text(&name).to_ascii_lowercase(), rtype);
            if let Some(set) = sets.get_mut(&key) {
                match data {
                    None => set.records.clear(),
                    Some(one) => set.records.retain(|r| !r.same(&one)),
                }
                set.touched = true;
            }
        }
        for (name, rtype, ttl, new) in planned_adds {
            let text = name_text(&name);
            let set = sets
                .entry((text.to_ascii_lowercase(), rtype.clone()))
                .or_insert_with(|| MergeSet {
                    name: text,
                    rtype,
                    ttl,
                    records: Vec::new(),
                    touched: false,
                });
            set.ttl = ttl;
            set.touched = true;
            if !set.records.iter().any(|r| r.same(&new)) {
                set.records.push(new);
            }
        }
        let patch: Vec<Value> = sets
            .values()
            .filter(|s| s.touched)
            .map(|s| {
                if s.records.is_empty() {
                    json!({ "name": s.name, "type": s.rtype, "changetype": "DELETE" })
                } else {
                    let records: Vec<Value> = s
                        .records
                        .iter()
                        .map(|r| json!({ "content": r.content, "disabled": r.disabled }))
                        .collect();
                    json!({
                        "name": s.name,
                        "type": s.rtype,
                        "ttl": s.ttl,
                        "changetype": "REPLACE",
                        "records": records,
                    })
                }
            })
            .collect();
        let body = json!({ "rrsets": patch });
        self.call(
            &action,
            &zone,
            "PATCH",
            &self.zone_path(&origin),
            Some(&body),
        )?;
        Ok(UpdateOutcome {
            serial: self.serial(&origin, &zone),
            requests: 1,
        })
    }

    fn status(&self) -> ServerStatus {
        let mut status = ServerStatus {
            server: self.config.name.clone(),
            kind: ServerKind::PowerDns,
            running: false,
            version: None,
            uptime_secs: None,
            message: None,
        };
        let action = "reading the server status";
        match self.call_json(action, "", &self.base()) {
            Ok(server) => {
                status.running = true;
                status.version = server
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let path = format!("{}/statistics?statistic=uptime", self.base());
                if let Ok(stats) = self.call_json(action, "", &path) {
                    status.uptime_secs = stats
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|s| s.get("name").and_then(Value::as_str) == Some("uptime"))
                        .and_then(|s| s.get("value"))
                        .and_then(|v| v.as_str().and_then(|t| t.parse().ok()).or(v.as_u64()));
                }
            }
            Err(e) => status.message = Some(e.to_string()),
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_escape_like_powerdns() {
        let zone = parse_name("0/25.2.0.192.in-addr.arpa").unwrap();
        assert_eq!(zone_id(&zone), "0=2F25.2.0.192.in-addr.arpa.");
        assert_eq!(
            zone_id(&parse_name("example.test").unwrap()),
            "example.test."
        );
    }

    #[test]
    fn zone_objects_and_rrsets_are_read() {
        let v = json!({
            "name": "Example.test.", "kind": "Native", "serial": 7, "masters": [],
            "rrsets": [
                {"name": "a.example.test.", "type": "TXT", "ttl": 60,
                 "records": [{"content": "\"x\"", "disabled": false},
                             {"content": "\"off\"", "disabled": true}]},
                {"name": "example.test.", "type": "SOA", "ttl": 300,
                 "records": [{"content": "ns1.x. h.x. 7 1 1 1 1", "disabled": false}]}
            ]
        });
        let info = zone_info(&v).unwrap();
        assert_eq!(
            (info.name.as_str(), info.serial, info.dynamic),
            ("example.test", Some(7), true)
        );
        let records = rrset_records(&v);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].rtype, "SOA");
        assert_eq!(records[1].data, "\"x\"");
        let sec = json!({"name": "s.test.", "kind": "Slave", "serial": 0,
                         "masters": ["192.0.2.1", "192.0.2.2:5300"]});
        let info = zone_info(&sec).unwrap();
        assert_eq!(info.zone_type, ZoneType::Secondary);
        assert_eq!(info.serial, None);
        assert_eq!(info.masters.len(), 2);
    }
}
