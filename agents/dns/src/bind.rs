//! The BIND 9 driver: AXFR and RFC 2136 UPDATE with TSIG, rndc, the statistics channel.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, TSigner};
use ipam_agent_proto::{
    RecordDelete, ResourceRecord, ServerKind, ServerStatus, ZoneInfo, ZoneSpec, ZoneType,
};
use serde_json::Value;

use crate::error::DnsError;
use crate::http::HttpEndpoint;
use crate::rndc::{Rndc, RndcFailure};
use crate::wire::{split_by_size, update_overhead, Ask, DnsEndpoint, MAX_MESSAGE_LEN};
use crate::{no_view, zone_name, DnsServer, TsigKey, UpdateOutcome, ZoneContents, ZoneDefaults};
use ipam_agent_proto::presentation::{
    name_text, parse_name, parse_rdata, parse_type, render_rdata, type_text, zone_text,
};

/// How many rndc commands [`BindServer::list_zones`] runs at once.
const RNDC_PARALLELISM: usize = 4;

/// How to reach and manage one BIND 9 server. Build it as a struct literal; the fields say
/// which named.conf statements they must match (see the crate docs for a complete example).
#[derive(Debug, Clone)]
pub struct BindConfig {
    /// The server's name, as Central knows it; starts every error message.
    pub name: String,
    /// named's DNS address and port (`listen-on`), for AXFR and UPDATE over TCP.
    pub dns_addr: SocketAddr,
    /// The TSIG key that signs AXFR and UPDATE (`hmac-sha256`, `hmac-sha384` or
    /// `hmac-sha512`); zones must allow it in `allow-transfer` and `allow-update` (or an
    /// `update-policy`). New zones get both.
    pub tsig_key: TsigKey,
    /// named's control channel (`controls { inet ... }`).
    pub rndc_addr: SocketAddr,
    /// The control channel's key (any algorithm rndc knows).
    pub rndc_key: TsigKey,
    /// The rndc program: `rndc` (looked up in `PATH`) or a full path.
    pub rndc_program: PathBuf,
    /// named's statistics channel (`statistics-channels { inet ... }`), which lists zones.
    pub stats_addr: SocketAddr,
    /// Where new zones' files go: an absolute path, the same as named sees it, writable by
    /// the agent and by named. The path goes into named's configuration, so it may not hold
    /// `"`, `\` or control characters.
    pub zone_dir: PathBuf,
    /// SOA and NS records of new zones.
    pub zone_defaults: ZoneDefaults,
    /// Timeout of each connection, read, write and rndc command.
    pub timeout: Duration,
    /// The largest UPDATE message sent, in bytes (at most 65,535, the TCP limit); larger
    /// batches are split.
    pub max_message_len: usize,
}

impl BindConfig {
    /// The usual timeout: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

/// A BIND 9 server. See the crate docs for how each operation is done.
#[derive(Debug)]
pub struct BindServer {
    config: BindConfig,
    signer: TSignerDebug,
    rndc: Rndc,
}

/// A TSigner that prints without its key.
struct TSignerDebug(TSigner);

impl std::fmt::Debug for TSignerDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TSigner({})", self.0.signer_name())
    }
}

impl std::fmt::Debug for Rndc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rndc({} at {})", self.program.display(), self.addr)
    }
}

impl BindServer {
    /// Checks the configuration and makes the driver; connects to nothing.
    pub fn new(config: BindConfig) -> Result<BindServer, DnsError> {
        let bad = |reason: String| DnsError::Config {
            server: config.name.clone(),
            reason,
        };
        let algorithm = match config.tsig_key.algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(bad(format!(
                    "TSIG algorithm {other:?} is not supported; use hmac-sha256, hmac-sha384 or \
                     hmac-sha512"
                )))
            }
        };
        let secret = decode_secret(&config.tsig_key).map_err(&bad)?;
        let key_name =
            parse_name(&config.tsig_key.name).map_err(|e| bad(format!("TSIG key name: {e}")))?;
        let signer = TSigner::new(secret, algorithm, key_name, 300)
            .map_err(|e| bad(format!("TSIG key {}: {e}", config.tsig_key.name)))?;
        decode_secret(&config.rndc_key).map_err(&bad)?;
        for key in [&config.tsig_key, &config.rndc_key] {
            if !key
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(bad(format!(
                    "key name {:?} may only hold letters, digits, '-', '_' and '.'",
                    key.name
                )));
            }
        }
        let rndc_alg = config.rndc_key.algorithm.to_ascii_lowercase();
        if ![
            "hmac-md5",
            "hmac-sha1",
            "hmac-sha224",
            "hmac-sha256",
            "hmac-sha384",
            "hmac-sha512",
        ]
        .contains(&rndc_alg.as_str())
        {
            return Err(bad(format!(
                "rndc key algorithm {rndc_alg:?} is unknown to rndc"
            )));
        }
        let dir = config.zone_dir.to_string_lossy();
        if !config.zone_dir.is_absolute()
            || dir.chars().any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(bad(format!(
                "zone_dir {dir:?} must be an absolute path without '\"', '\\' or control \
                 characters"
            )));
        }
        if !(512..=MAX_MESSAGE_LEN).contains(&config.max_message_len) {
            return Err(bad(format!(
                "max_message_len {} is outside 512..={MAX_MESSAGE_LEN}",
                config.max_message_len
            )));
        }
        let rndc = Rndc {
            server: config.name.clone(),
            program: config.rndc_program.clone(),
            addr: config.rndc_addr,
            key: config.rndc_key.clone(),
            timeout: config.timeout,
        };
        Ok(BindServer {
            config,
            signer: TSignerDebug(signer),
            rndc,
        })
    }

    fn dns(&self) -> DnsEndpoint<'_> {
        DnsEndpoint {
            server: &self.config.name,
            addr: self.config.dns_addr,
            timeout: self.config.timeout,
            signer: &self.signer.0,
        }
    }

    fn stats(&self) -> HttpEndpoint<'_> {
        HttpEndpoint {
            server: &self.config.name,
            what: "BIND statistics channel",
            addr: self.config.stats_addr,
            timeout: self.config.timeout,
            headers: Vec::new(),
        }
    }

    fn key_name(&self) -> &str {
        &self.config.tsig_key.name
    }

    /// Runs an rndc command about one zone, with not-found and other refusals sorted.
    fn rndc_zone(&self, action: &str, zone: &str, args: &[&str]) -> Result<String, DnsError> {
        self.rndc
            .run(action, args)
            .map_err(|failure| match failure {
                RndcFailure::Other(e) => e,
                RndcFailure::Command(text) => self.command_error(action, zone, &text),
            })
    }

    fn command_error(&self, action: &str, zone: &str, text: &str) -> DnsError {
        let server = self.config.name.clone();
        if text.starts_with("not found") {
            DnsError::NotFound {
                server,
                zone: zone.to_owned(),
                action: action.to_owned(),
            }
        } else if text.starts_with("already exists") {
            DnsError::AlreadyExists {
                server,
                zone: zone.to_owned(),
            }
        } else if text.contains("Not allowing new zones") {
            DnsError::Refused {
                server,
                action: action.to_owned(),
                reason: format!(
                    "{text} (add `allow-new-zones yes;` to named.conf's options, then `rndc \
                     reconfig`)"
                ),
            }
        } else if text.starts_with("permission denied") {
            DnsError::Refused {
                server,
                action: action.to_owned(),
                reason: text.to_owned(),
            }
        } else {
            DnsError::ServerFailure {
                server,
                action: action.to_owned(),
                reason: format!("rndc: {text}"),
            }
        }
    }

    /// Type, dynamic flag and primaries of a zone, from rndc.
    fn zone_config(&self, zone: &str, view: Option<&str>) -> Result<ZoneInfo, DnsError> {
        let action = format!("reading the state of zone {zone} with rndc");
        let mut args = vec!["zonestatus", zone];
        if let Some(v) = view {
            args.extend(["IN", v]);
        }
        let status = self.rndc_zone(&action, zone, &args);
        let (zone_type, dynamic, serial) = match status {
            Ok(text) => {
                let field = |key: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(str::trim)
                        .map(str::to_owned)
                };
                let zone_type = match field("type:").as_deref() {
                    Some("primary" | "master") => ZoneType::Primary,
                    _ => ZoneType::Secondary,
                };
                let dynamic = field("dynamic:").as_deref() == Some("yes");
                let serial = field("serial:").and_then(|s| s.parse().ok());
                (zone_type, dynamic && zone_type == ZoneType::Primary, serial)
            }
            // A secondary that has not transferred yet, or a primary whose file did not
            // load: only its configuration tells.
            Err(DnsError::ServerFailure { reason, .. }) if reason.contains("zone not loaded") => {
                let text = self.show_zone(zone, view)?;
                let zone_type = if text.contains("type primary") || text.contains("type master") {
                    ZoneType::Primary
                } else {
                    ZoneType::Secondary
                };
                return Ok(ZoneInfo {
                    name: zone.to_owned(),
                    view: view.map(str::to_owned),
                    zone_type,
                    dynamic: false,
                    masters: parse_primaries(&text),
                    serial: None,
                });
            }
            Err(e) => return Err(e),
        };
        let masters = if zone_type == ZoneType::Secondary {
            parse_primaries(&self.show_zone(zone, view)?)
        } else {
            Vec::new()
        };
        Ok(ZoneInfo {
            name: zone.to_owned(),
            view: view.map(str::to_owned),
            zone_type,
            dynamic,
            masters,
            serial,
        })
    }

    /// A zone's configuration, from `rndc showzone`.
    fn show_zone(&self, zone: &str, view: Option<&str>) -> Result<String, DnsError> {
        let action = format!("reading the configuration of zone {zone} with rndc");
        let mut args = vec!["showzone", zone];
        if let Some(v) = view {
            args.extend(["IN", v]);
        }
        self.rndc_zone(&action, zone, &args)
    }

    /// Parses a zone name from a request; the text form goes into rndc commands, so it may
    /// only hold letters, digits, `-`, `_`, `.`, `/` and `*`.
    fn zone_arg(&self, action: &str, zone: &str) -> Result<(Name, String), DnsError> {
        let name = zone_name(&self.config.name, action, zone)?;
        let text = zone_text(&name);
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./*".contains(&b))
        {
            return Err(DnsError::Invalid {
                server: self.config.name.clone(),
                action: action.to_owned(),
                reason: format!(
                    "zone name {text:?} holds characters this driver does not pass to rndc \
                     (letters, digits, '-', '_', '.', '/' and '*' only)"
                ),
            });
        }
        Ok((name, text))
    }

    fn zone_file(&self, zone: &Name) -> PathBuf {
        self.config.zone_dir.join(zone_file_name(zone))
    }
}

/// Decodes a key's base64 secret.
fn decode_secret(key: &TsigKey) -> Result<Vec<u8>, String> {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(key.secret.trim())
        .map_err(|e| format!("the secret of key {:?} is not base64: {e}", key.name))?;
    if secret.is_empty() {
        return Err(format!("the secret of key {:?} is empty", key.name));
    }
    Ok(secret)
}

/// The file name of a zone: its lower-case name and `.zone`, with bytes other than letters,
/// digits, `-`, `_` and `.` written as `%HH` (RFC 2317 names hold `/`).
fn zone_file_name(zone: &Name) -> String {
    let mut out = String::new();
    for b in zone_text(zone).bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(".zone");
    out
}

/// The addresses in a `primaries { ... };` (or `masters`) clause of `rndc showzone` output.
fn parse_primaries(text: &str) -> Vec<IpAddr> {
    let Some(start) = ["primaries", "masters"].iter().find_map(|kw| text.find(kw)) else {
        return Vec::new();
    };
    let rest = text.get(start..).unwrap_or_default();
    let Some(open) = rest.find('{') else {
        return Vec::new();
    };
    let mut depth = 0;
    let mut body = String::new();
    for c in rest.get(open..).unwrap_or_default().chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        body.push(c);
    }
    body.split(|c: char| c == ';' || c == '{' || c.is_whitespace())
        .filter_map(|word| word.parse::<IpAddr>().ok())
        .collect()
}

/// The zone file of a new primary: `$TTL`, then the records one per line.
fn zone_file_text(records: &[ResourceRecord]) -> String {
    let mut text = String::from("; written by the ipam DNS agent when the zone was created\n");
    for r in records {
        text.push_str(&format!("{} {} IN {} {}\n", r.name, r.ttl, r.rtype, r.data));
    }
    text
}

/// Seconds since a `rndc status` time (`Wed, 25 Nov 2026 15:16:42 GMT`), from this host's
/// clock.
fn seconds_since(rfc1123: &str) -> Option<u64> {
    let words: Vec<&str> = rfc1123.split_whitespace().collect();
    let [_, day, month, year, time, ..] = words.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let then = days * 86_400 + h * 3600 + m * 60 + s;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    u64::try_from(then).ok().map(|t| now.saturating_sub(t))
}

impl DnsServer for BindServer {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> ServerKind {
        ServerKind::Bind
    }

    fn list_zones(&self) -> Result<Vec<ZoneInfo>, DnsError> {
        let action = "listing zones from the statistics channel";
        let stats = self.stats();
        let response = stats.request(action, "GET", "/json/v1/zones", None)?;
        if response.status != 200 {
            return Err(stats.protocol(
                action,
                format!(
                    "HTTP {} for /json/v1/zones (is named built with JSON statistics, and does \
                     statistics-channels allow the agent?): {}",
                    response.status,
                    response.body_excerpt()
                ),
            ));
        }
        let json: Value = serde_json::from_slice(&response.body)
            .map_err(|e| stats.protocol(action, format!("the zone list is not JSON: {e}")))?;
        let views = json
            .get("views")
            .and_then(Value::as_object)
            .ok_or_else(|| stats.protocol(action, "the zone list has no \"views\" object"))?;
        let mut found = Vec::new();
        for (view, body) in views {
            if view == "_bind" {
                continue;
            }
            let zones = body.get("zones").and_then(Value::as_array);
            for z in zones.into_iter().flatten() {
                let text = |k: &str| z.get(k).and_then(Value::as_str).unwrap_or_default();
                if text("class") != "IN" {
                    continue;
                }
                let zone_type = match text("type") {
                    "primary" | "master" => ZoneType::Primary,
                    "secondary" | "slave" | "mirror" => ZoneType::Secondary,
                    _ => continue,
                };
                let serial = z
                    .get("serial")
                    .and_then(Value::as_u64)
                    .and_then(|s| u32::try_from(s).ok());
                found.push(ZoneInfo {
                    name: text("name").to_ascii_lowercase(),
                    view: (view != "_default").then(|| view.clone()),
                    zone_type,
                    dynamic: false,
                    masters: Vec::new(),
                    serial,
                });
            }
        }
        // The dynamic flag and the primaries, a few rndc calls at a time.
        let chunk = found.len().div_ceil(RNDC_PARALLELISM).max(1);
        let results: Vec<Result<(), DnsError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = found
                .chunks_mut(chunk)
                .map(|zones| {
                    scope.spawn(move || {
                        for info in zones {
                            let view = info.view.clone();
                            let detail = match info.zone_type {
                                ZoneType::Primary => {
                                    self.zone_config(&info.name, view.as_deref()).map(|c| {
                                        info.dynamic = c.dynamic;
                                    })
                                }
                                ZoneType::Secondary => {
                                    self.show_zone(&info.name, view.as_deref()).map(|text| {
                                        info.masters = parse_primaries(&text);
                                    })
                                }
                            };
                            match detail {
                                // Deleted since the list was made: left out below.
                                Err(DnsError::NotFound { .. }) => info.name.clear(),
                                Err(e) => return Err(e),
                                Ok(()) => {}
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        results.into_iter().collect::<Result<(), DnsError>>()?;
        found.retain(|z| !z.name.is_empty());
        Ok(found)
    }

    fn read_zone(&self, zone: &str, view: Option<&str>) -> Result<ZoneContents, DnsError> {
        no_view(&self.config.name, view)?;
        let action = format!("reading zone {zone} by AXFR");
        let (name, zone) = self.zone_arg(&action, zone)?;
        let mut info = self.zone_config(&zone, None)?;
        let ask = Ask {
            action: &action,
            zone: &zone,
            refused_hint: &format!(
                "zone transfers of {zone} are not allowed for TSIG key {key}: add \
                 `allow-transfer {{ key \"{key}\"; }};` to the zone or the options",
                key = self.key_name()
            ),
        };
        let dns = self.dns();
        let records = dns.connect(&action)?.axfr(&name, &ask)?;
        if let Some(RData::SOA(soa)) = records.first().map(|r| &r.data) {
            info.serial = Some(soa.serial);
        }
        let records = records
            .iter()
            .map(|r| ResourceRecord {
                name: name_text(&r.name),
                rtype: type_text(r.record_type()),
                ttl: r.ttl,
                data: render_rdata(&r.data),
            })
            .collect();
        Ok(ZoneContents {
            zone: info,
            records,
        })
    }

    fn create_zone(&self, spec: &ZoneSpec) -> Result<(), DnsError> {
        no_view(&self.config.name, spec.view.as_deref())?;
        let action = format!("creating zone {} with rndc addzone", spec.name);
        let (name, zone) = self.zone_arg(&action, &spec.name)?;
        // Never overwrite the file of a zone that exists.
        match self.zone_config(&zone, None) {
            Ok(_) => {
                return Err(DnsError::AlreadyExists {
                    server: self.config.name.clone(),
                    zone,
                })
            }
            Err(DnsError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let path = self.zone_file(&name);
        let key = self.key_name();
        let transfer = format!("allow-transfer {{ key \"{key}\"; }};");
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
                write_zone_file(&path, &zone_file_text(&records)).map_err(|detail| {
                    DnsError::Local {
                        server: self.config.name.clone(),
                        action: format!("{action}: writing zone file {}", path.display()),
                        detail,
                    }
                })?;
                let update = if spec.dynamic {
                    format!(" allow-update {{ key \"{key}\"; }};")
                } else {
                    String::new()
                };
                format!(
                    "{{ type primary; file \"{}\"; {transfer}{update} }};",
                    path.display()
                )
            }
            ZoneType::Secondary => {
                if spec.masters.is_empty() {
                    return Err(DnsError::Invalid {
                        server: self.config.name.clone(),
                        action,
                        reason: "a secondary zone needs at least one master".into(),
                    });
                }
                let masters: String = spec.masters.iter().map(|ip| format!("{ip}; ")).collect();
                format!(
                    "{{ type secondary; file \"{}\"; primaries {{ {masters}}}; {transfer} }};",
                    path.display()
                )
            }
        };
        let result = self.rndc_zone(&action, &zone, &["addzone", &zone, &body]);
        if result.is_err() && spec.zone_type == ZoneType::Primary {
            let _ = fs::remove_file(&path);
        }
        result.map(|_| ())
    }

    fn delete_zone(&self, zone: &str, view: Option<&str>) -> Result<(), DnsError> {
        no_view(&self.config.name, view)?;
        let action = format!("deleting zone {zone} with rndc delzone");
        let (_, zone) = self.zone_arg(&action, zone)?;
        self.rndc_zone(&action, &zone, &["delzone", "-clean", &zone])
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
        let action = format!("updating zone {zone} (RFC 2136)");
        let (origin, zone) = self.zone_arg(&action, zone)?;
        let invalid = |reason: String| DnsError::Invalid {
            server: self.config.name.clone(),
            action: action.clone(),
            reason,
        };
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
        let mut records = Vec::with_capacity(deletes.len() + adds.len());
        for d in deletes {
            let name = owner(&d.name)?;
            let rtype = parse_type(&d.rtype).map_err(&invalid)?;
            let mut record = match &d.data {
                Some(data) => {
                    Record::from_rdata(name, 0, parse_rdata(rtype, data).map_err(&invalid)?)
                }
                None => Record::update0(name, 0, rtype).into_record_of_rdata(),
            };
            record.dns_class = if d.data.is_some() {
                DNSClass::NONE
            } else {
                DNSClass::ANY
            };
            records.push(record);
        }
        for a in adds {
            let name = owner(&a.name)?;
            let rtype = parse_type(&a.rtype).map_err(&invalid)?;
            let rdata = parse_rdata(rtype, &a.data).map_err(&invalid)?;
            records.push(Record::from_rdata(name, a.ttl, rdata));
        }
        let total = records.len();
        let overhead = update_overhead(&origin, &self.signer.0);
        let groups =
            split_by_size(records, overhead, self.config.max_message_len).map_err(&invalid)?;
        let refused_hint = format!(
            "zone {zone} does not accept updates signed with TSIG key {key}: it is not dynamic, \
             or its allow-update / update-policy does not grant the key (add `allow-update {{ \
             key \"{key}\"; }};`)",
            key = self.key_name()
        );
        let ask = Ask {
            action: &action,
            zone: &zone,
            refused_hint: &refused_hint,
        };
        let dns = self.dns();
        let mut conn = dns.connect(&action)?;
        let messages = groups.len();
        let mut applied = 0;
        for group in groups {
            let len = group.len();
            if let Err(e) = conn.update(&origin, group, &ask) {
                return Err(if applied == 0 {
                    e
                } else {
                    DnsError::Partial {
                        server: self.config.name.clone(),
                        zone,
                        applied,
                        total,
                        messages,
                        source: Box::new(e),
                    }
                });
            }
            applied += len;
        }
        let soa_action = format!("reading the serial of zone {zone}");
        let serial = conn
            .soa_serial(
                &origin,
                &Ask {
                    action: &soa_action,
                    zone: &zone,
                    refused_hint: "the SOA query was refused",
                },
            )
            .ok();
        Ok(UpdateOutcome {
            serial,
            requests: messages,
        })
    }

    fn status(&self) -> ServerStatus {
        let mut status = ServerStatus {
            server: self.config.name.clone(),
            kind: ServerKind::Bind,
            running: false,
            version: None,
            uptime_secs: None,
            message: None,
        };
        match self
            .rndc
            .run("reading the server status with rndc", &["status"])
        {
            Ok(text) => {
                status.running = true;
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("version:") {
                        let v = v.trim();
                        let v = v.strip_prefix("BIND ").unwrap_or(v);
                        status.version = v.split_whitespace().next().map(str::to_owned);
                    } else if let Some(t) = line.strip_prefix("boot time:") {
                        status.uptime_secs = seconds_since(t.trim());
                    } else if line.starts_with("server is") {
                        status.message = Some(line.trim().to_owned());
                    }
                }
            }
            Err(RndcFailure::Other(e)) => status.message = Some(e.to_string()),
            Err(RndcFailure::Command(text)) => {
                status.message = Some(format!("{}: rndc status failed: {text}", self.config.name));
            }
        }
        status
    }
}

/// Writes a new zone file, replacing a stale one and removing its stale journal (a journal
/// of an earlier zone of the same name would be replayed into the new one).
fn write_zone_file(path: &Path, text: &str) -> Result<(), String> {
    let mut journal = path.as_os_str().to_owned();
    journal.push(".jnl");
    match fs::remove_file(&journal) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing the stale journal: {e}")),
    }
    let mut file = fs::File::create(path).map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_file_names_are_safe() {
        let zone = parse_name("0/25.2.0.192.IN-ADDR.ARPA").unwrap();
        assert_eq!(zone_file_name(&zone), "0%2F25.2.0.192.in-addr.arpa.zone");
    }

    #[test]
    fn primaries_are_read_from_showzone() {
        let text = "zone \"sec.test\" { type secondary; file \"/x\"; primaries { 192.0.2.53; \
                    2001:db8::53 port 5353; }; allow-transfer { key \"k\"; }; };";
        assert_eq!(
            parse_primaries(text),
            vec![
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap()
            ]
        );
        assert!(parse_primaries("zone \"p\" { type primary; };").is_empty());
    }

    #[test]
    fn boot_time_gives_uptime() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let secs = seconds_since("Thu, 01 Jan 1970 00:00:10 GMT").unwrap();
        assert_eq!(secs, now - 10);
        let y2k = seconds_since("Sat, 01 Jan 2000 00:00:00 GMT").unwrap();
        assert_eq!(now - y2k, 946_684_800);
        assert_eq!(seconds_since("garbage"), None);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let config = BindConfig {
            name: "ns1".into(),
            dns_addr: "127.0.0.1:53".parse().unwrap(),
            tsig_key: TsigKey::hmac_sha256("ddns-key", "c2VjcmV0"),
            rndc_addr: "127.0.0.1:953".parse().unwrap(),
            rndc_key: TsigKey::hmac_sha256("rndc-key", "c2VjcmV0"),
            rndc_program: "rndc".into(),
            stats_addr: "127.0.0.1:8053".parse().unwrap(),
            zone_dir: "/var/lib/bind".into(),
            zone_defaults: ZoneDefaults::new(vec![]),
            timeout: BindConfig::DEFAULT_TIMEOUT,
            max_message_len: MAX_MESSAGE_LEN,
        };
        assert!(BindServer::new(config.clone()).is_ok());
        let mut c = config.clone();
        c.tsig_key.secret = "not base64!".into();
        let err = BindServer::new(c).unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
        let mut c = config.clone();
        c.tsig_key.algorithm = "hmac-md5".into();
        assert!(BindServer::new(c).is_err());
        let mut c = config.clone();
        c.zone_dir = "relative".into();
        assert!(BindServer::new(c).is_err());
        let mut c = config;
        c.zone_dir = "/a\"b".into();
        assert!(BindServer::new(c).is_err());
    }
}
