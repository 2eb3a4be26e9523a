//! The servers an agent manages (BIND, PowerDNS, Kea, ISC dhcpd), from its configuration file, and the [`Handler`] that sends
//! each request to the right driver.
//!
//! ```toml
//! # ipam-agent.toml
//! [[bind]]
//! name = "ns1"                       # as Central knows it
//! dns = "127.0.0.1:53"               # AXFR and UPDATE (TCP)
//! rndc = "127.0.0.1:953"             # controls { inet ... }
//! stats = "127.0.0.1:8053"           # statistics-channels { inet ... } (lists zones)
//! zone_dir = "/var/lib/bind/ipam"    # new zones' files, writable by the agent and named
//! tsig_key = { name = "ipam-key", secret = "BASE64" }   # algorithm defaults to hmac-sha256
//! rndc_key = { name = "rndc-key", secret = "BASE64" }
//! nameservers = ["ns1.example.com."] # NS (and SOA MNAME) of new zones
//!
//! [[powerdns]]
//! name = "pdns1"
//! api = "127.0.0.1:8081"
//! api_key = "..."
//! nameservers = ["ns1.example.com."]
//!
//! [[kea]]
//! name = "kea1"
//! socket = "/run/kea/kea4-ctrl-socket"   # or: control_agent = "127.0.0.1:8000"
//! # user = "...", password = "..."        # the control agent's basic authentication
//!
//! [[dhcpd]]
//! name = "dhcpd1"
//! config_file = "/etc/dhcp/dhcpd.conf"
//! leases_file = "/var/lib/dhcp/dhcpd.leases"
//! omapi = "127.0.0.1:7911"
//! omapi_key = { name = "omapi_key", secret = "BASE64" }  # hmac-sha256
//! ```
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipam_agent_dhcp::{DhcpServer, IscDhcpdConfig, IscDhcpdServer, KeaConfig, KeaServer, OmapiKey};
use ipam_agent_dns::{
    BindConfig, BindServer, DnsError, DnsServer, NameServer, PowerDnsConfig, PowerDnsServer,
    TsigKey, ZoneContents, ZoneDefaults,
};
use ipam_agent_proto::{
    DnsOp, EventBody, ManagedServer, RemoteError, RemoteErrorCode, RequestBody, ResponseBody,
};
use serde::Deserialize;

use crate::serve::Handler;

/// Largest page of a zone's records in one answer.
pub const MAX_ZONE_PAGE: usize = 50_000;

/// The agent's configuration file: the servers it manages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    /// BIND 9 servers.
    #[serde(default)]
    pub bind: Vec<BindEntry>,
    /// PowerDNS Authoritative servers.
    #[serde(default)]
    pub powerdns: Vec<PowerDnsEntry>,
    /// Kea DHCPv4 servers.
    #[serde(default)]
    pub kea: Vec<KeaEntry>,
    /// ISC dhcpd servers.
    #[serde(default)]
    pub dhcpd: Vec<DhcpdEntry>,
}

/// One Kea DHCPv4 server: its control socket, or its control agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeaEntry {
    /// Name, as Central knows it.
    pub name: String,
    /// kea-dhcp4's unix control socket.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Or kea-ctrl-agent's `host:port`.
    #[serde(default)]
    pub control_agent: Option<String>,
    /// The control agent's basic-authentication user.
    #[serde(default)]
    pub user: Option<String>,
    /// And password.
    #[serde(default)]
    pub password: Option<String>,
    /// Timeout of each command, seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// One ISC dhcpd server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpdEntry {
    /// Name, as Central knows it.
    pub name: String,
    /// dhcpd.conf (scopes are read from it).
    pub config_file: PathBuf,
    /// dhcpd.leases.
    pub leases_file: PathBuf,
    /// OMAPI `host:port`.
    pub omapi: String,
    /// OMAPI key (hmac-sha256).
    pub omapi_key: KeyEntry,
    /// Timeout of each OMAPI exchange, seconds (default 10).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// A TSIG or rndc key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Key name.
    pub name: String,
    /// Algorithm (default hmac-sha256).
    #[serde(default = "hmac_sha256")]
    pub algorithm: String,
    /// Secret, base64.
    pub secret: String,
}

fn hmac_sha256() -> String {
    "hmac-sha256".into()
}

impl KeyEntry {
    fn key(&self) -> TsigKey {
        TsigKey {
            name: self.name.clone(),
            algorithm: self.algorithm.clone(),
            secret: self.secret.clone(),
        }
    }
}

/// One BIND server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindEntry {
    /// Name, as Central knows it.
    pub name: String,
    /// DNS address (TCP) for AXFR and UPDATE.
    pub dns: SocketAddr,
    /// rndc control channel.
    pub rndc: SocketAddr,
    /// Statistics channel.
    pub stats: SocketAddr,
    /// Directory of new zones' files.
    pub zone_dir: PathBuf,
    /// TSIG key for AXFR and UPDATE.
    pub tsig_key: KeyEntry,
    /// rndc key.
    pub rndc_key: KeyEntry,
    /// Name servers of new zones.
    pub nameservers: Vec<String>,
    /// The rndc program (default `rndc`).
    #[serde(default)]
    pub rndc_program: Option<PathBuf>,
    /// Timeout of each operation, seconds (default 10).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// One PowerDNS server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerDnsEntry {
    /// Name, as Central knows it.
    pub name: String,
    /// API address.
    pub api: SocketAddr,
    /// API key.
    pub api_key: String,
    /// Name servers of new zones.
    pub nameservers: Vec<String>,
    /// Server id in API paths (default `localhost`).
    #[serde(default)]
    pub server_id: Option<String>,
    /// Timeout of each operation, seconds (default 10).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn defaults(ns: &[String]) -> ZoneDefaults {
    ZoneDefaults::new(ns.iter().map(NameServer::new).collect())
}

/// The drivers of one agent.
pub struct Drivers {
    dns: Vec<Box<dyn DnsServer>>,
    dhcp: Vec<Box<dyn DhcpServer>>,
    /// What [`Drivers::watch`] saw last.
    seen: Mutex<Seen>,
    /// Zones being read page by page: one transfer serves every page of a read.
    reads: Mutex<ZoneReads>,
}

/// The servers' state as the watcher saw it last.
#[derive(Default)]
struct Seen {
    /// Whether there was a look before.
    looked: bool,
    /// (server, zone) -> serial.
    zones: std::collections::HashMap<(String, String), Option<u32>>,
    /// server -> running.
    running: std::collections::HashMap<String, bool>,
    /// DHCP server -> fingerprints of its (leases, scopes and reservations).
    dhcp: std::collections::HashMap<String, (u64, u64)>,
}

/// Fingerprints of a DHCP server's leases, and of its scopes and reservations, or `None`
/// when it could not be read.
fn dhcp_fingerprints(d: &dyn DhcpServer) -> Option<(u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut leases = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let max = ipam_agent_dhcp::MAX_LEASE_PAGE;
        let page = d.list_leases(None, cursor.as_deref(), Some(max)).ok()?;
        let last = page.leases.len() < max as usize;
        for l in page.leases {
            leases.push(format!(
                "{} {:?} {:?} {:?} {:?}",
                l.address, l.mac, l.state, l.expires, l.hostname
            ));
        }
        match page.next_cursor {
            Some(c) if !last => cursor = Some(c),
            _ => break,
        }
    }
    leases.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    leases.hash(&mut h);
    let lease_fp = h.finish();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}", d.list_scopes().ok()?).hash(&mut h);
    format!("{:?}", d.list_reservations(None).ok()?).hash(&mut h);
    Some((lease_fp, h.finish()))
}

/// Zones read recently, kept while their pages are fetched.
#[derive(Default)]
struct ZoneReads {
    next: u64,
    open: Vec<(u64, String, String, Instant, Arc<ZoneContents>)>,
}

/// Zone reads kept at once, and for how long.
const OPEN_READS: usize = 8;
const READ_TTL: Duration = Duration::from_secs(300);

impl Drivers {
    /// Builds the drivers of a configuration (checking each; nothing is contacted yet).
    /// Server names must be unique.
    pub fn from_file(f: &ServersFile) -> Result<Drivers, String> {
        let mut dns: Vec<Box<dyn DnsServer>> = Vec::new();
        for b in &f.bind {
            let timeout = Duration::from_secs(b.timeout_secs.unwrap_or(10));
            let cfg = BindConfig {
                name: b.name.clone(),
                dns_addr: b.dns,
                tsig_key: b.tsig_key.key(),
                rndc_addr: b.rndc,
                rndc_key: b.rndc_key.key(),
                rndc_program: b.rndc_program.clone().unwrap_or_else(|| "rndc".into()),
                stats_addr: b.stats,
                zone_dir: b.zone_dir.clone(),
                zone_defaults: defaults(&b.nameservers),
                timeout,
                max_message_len: 65_535,
            };
            dns.push(Box::new(BindServer::new(cfg).map_err(|e| e.to_string())?));
        }
        for p in &f.powerdns {
            let cfg = PowerDnsConfig {
                name: p.name.clone(),
                api_addr: p.api,
                api_key: p.api_key.clone(),
                server_id: p.server_id.clone().unwrap_or_else(|| "localhost".into()),
                zone_defaults: defaults(&p.nameservers),
                timeout: Duration::from_secs(p.timeout_secs.unwrap_or(10)),
            };
            dns.push(Box::new(
                PowerDnsServer::new(cfg).map_err(|e| e.to_string())?,
            ));
        }
        let mut dhcp: Vec<Box<dyn DhcpServer>> = Vec::new();
        for k in &f.kea {
            let cfg = match (&k.socket, &k.control_agent) {
                (Some(s), None) => KeaConfig::unix_socket(&k.name, s),
                (None, Some(a)) => {
                    let c = KeaConfig::control_agent(&k.name, a);
                    match (&k.user, &k.password) {
                        (Some(u), Some(p)) => c.with_credentials(u, p),
                        _ => c,
                    }
                }
                _ => {
                    return Err(format!(
                        "kea {:?}: give either socket or control_agent",
                        k.name
                    ))
                }
            };
            let cfg = cfg.with_timeout(Duration::from_secs(k.timeout_secs.unwrap_or(30)));
            dhcp.push(Box::new(KeaServer::new(cfg)));
        }
        for d in &f.dhcpd {
            let key = OmapiKey::from_base64(&d.omapi_key.name, &d.omapi_key.secret)
                .map_err(|e| format!("dhcpd {:?}: {e}", d.name))?;
            let cfg = IscDhcpdConfig::new(&d.name, &d.config_file, &d.leases_file, &d.omapi, key)
                .with_timeout(Duration::from_secs(d.timeout_secs.unwrap_or(10)));
            dhcp.push(Box::new(IscDhcpdServer::new(cfg)));
        }
        Drivers::new(dns, dhcp)
    }

    /// The drivers of servers built elsewhere. Server names must be unique.
    pub fn new(
        dns: Vec<Box<dyn DnsServer>>,
        dhcp: Vec<Box<dyn DhcpServer>>,
    ) -> Result<Drivers, String> {
        let mut names: Vec<&str> = dns
            .iter()
            .map(|d| d.name())
            .chain(dhcp.iter().map(|d| d.name()))
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two servers are named {:?}", w[0]));
        }
        Ok(Drivers {
            dns,
            dhcp,
            seen: Mutex::default(),
            reads: Mutex::default(),
        })
    }

    fn dhcp(&self, name: &str) -> Result<&dyn DhcpServer, RemoteError> {
        self.dhcp
            .iter()
            .find(|d| d.name() == name)
            .map(|d| d.as_ref())
            .ok_or_else(|| unknown(name))
    }

    fn dns(&self, name: &str) -> Result<&dyn DnsServer, RemoteError> {
        self.dns
            .iter()
            .find(|d| d.name() == name)
            .map(|d| d.as_ref())
            .ok_or_else(|| unknown(name))
    }
}

fn unknown(name: &str) -> RemoteError {
    RemoteError::new(
        RemoteErrorCode::UnknownServer,
        format!("this agent manages no server named {name:?}"),
    )
}

impl Handler for Drivers {
    fn servers(&self) -> Vec<ManagedServer> {
        let dns = self.dns.iter().map(|d| (d.name(), d.kind()));
        let dhcp = self.dhcp.iter().map(|d| (d.name(), d.kind()));
        dns.chain(dhcp)
            .map(|(name, kind)| ManagedServer {
                name: name.to_string(),
                kind,
            })
            .collect()
    }

    fn handle(&self, body: RequestBody) -> Result<ResponseBody, RemoteError> {
        match body {
            RequestBody::Dns { server, op } => Ok(self.dns_op(self.dns(&server)?, op)?),
            RequestBody::Dhcp { server, op } => {
                Ok(ipam_agent_dhcp::execute(self.dhcp(&server)?, &op)?)
            }
            RequestBody::ServerStatus { server } => Ok(ResponseBody::Status {
                status: match self.dns(&server) {
                    Ok(d) => d.status(),
                    Err(_) => self.dhcp(&server)?.status(),
                },
            }),
        }
    }
}

impl Drivers {
    /// Looks at every server once and answers what changed since the last look: a zone
    /// created, deleted or with a new serial (also when the change was made on the server
    /// directly, not through Central), a DHCP server's leases, scopes or reservations
    /// (compared by fingerprint: every lease is listed on each look), and a server that
    /// stopped or started answering. The
    /// first look only records the state. Run it periodically (the agent does, every
    /// `--watch-secs`); Central then reads what changed, the server's data winning.
    pub fn watch(&self) -> Vec<EventBody> {
        let mut events = Vec::new();
        let mut zones = std::collections::HashMap::new();
        let mut running = std::collections::HashMap::new();
        let mut statuses = Vec::new();
        let mut unlisted = Vec::new();
        for d in &self.dns {
            let status = d.status();
            running.insert(d.name().to_string(), status.running);
            statuses.push(status);
            match d.list_zones() {
                Ok(list) => {
                    for z in list {
                        zones.insert((d.name().to_string(), z.name), z.serial);
                    }
                }
                Err(e) => {
                    // Not knowing is not "gone": keep the zones as last seen.
                    tracing::warn!("watch: {e}");
                    unlisted.push(d.name().to_string());
                }
            }
        }
        let mut dhcp = std::collections::HashMap::new();
        for d in &self.dhcp {
            let status = d.status();
            if status.running {
                if let Some(fp) = dhcp_fingerprints(d.as_ref()) {
                    dhcp.insert(d.name().to_string(), fp);
                }
            }
            running.insert(d.name().to_string(), status.running);
            statuses.push(status);
        }
        let mut seen = self.seen.lock().expect("watch lock");
        if seen.looked {
            // Leases given or returned, scopes or reservations changed on the server: Central
            // reads the server again.
            for (server, (leases, config)) in &dhcp {
                match seen.dhcp.get(server) {
                    Some((l, c)) => {
                        if c != config {
                            events.push(EventBody::DhcpConfigChanged {
                                server: server.clone(),
                            });
                        } else if l != leases {
                            events.push(EventBody::LeasesChanged {
                                server: server.clone(),
                                subnet: None,
                            });
                        }
                    }
                    None => events.push(EventBody::LeasesChanged {
                        server: server.clone(),
                        subnet: None,
                    }),
                }
            }
            for ((server, zone), serial) in &zones {
                let was = seen.zones.get(&(server.clone(), zone.clone()));
                if was != Some(serial) {
                    events.push(EventBody::ZoneChanged {
                        server: server.clone(),
                        zone: zone.clone(),
                        view: None,
                        serial: *serial,
                    });
                }
            }
            for (server, zone) in seen.zones.keys() {
                // Zones gone: listed only when their server still answers.
                if running.get(server) == Some(&true)
                    && !unlisted.contains(server)
                    && !zones.contains_key(&(server.clone(), zone.clone()))
                {
                    events.push(EventBody::ZoneChanged {
                        server: server.clone(),
                        zone: zone.clone(),
                        view: None,
                        serial: None,
                    });
                }
            }
            for status in statuses {
                if seen.running.get(&status.server) != Some(&status.running) {
                    events.push(EventBody::ServerStatusChanged { status });
                }
            }
        }
        // A server that does not answer, or could not list its zones, keeps them as last seen.
        for ((server, zone), serial) in seen.zones.drain() {
            if running.get(&server) == Some(&false) || unlisted.contains(&server) {
                zones.entry((server, zone)).or_insert(serial);
            }
        }
        seen.zones = zones;
        seen.running = running;
        // A DHCP server that could not be read keeps its last fingerprints.
        for (server, fp) in dhcp {
            seen.dhcp.insert(server, fp);
        }
        seen.looked = true;
        events
    }

    /// Carries out one DNS operation.
    fn dns_op(&self, s: &dyn DnsServer, op: DnsOp) -> Result<ResponseBody, DnsError> {
        Ok(match op {
            DnsOp::ListZones {} => ResponseBody::Zones {
                zones: s.list_zones()?,
            },
            DnsOp::ReadZone {
                zone,
                view,
                cursor,
                limit,
            } => self.read_page(s, zone, view, cursor, limit)?,
            DnsOp::CreateZone { zone } => {
                s.create_zone(&zone)?;
                ResponseBody::Done {}
            }
            DnsOp::DeleteZone { zone, view } => {
                s.delete_zone(&zone, view.as_deref())?;
                ResponseBody::Done {}
            }
            DnsOp::UpdateRecords {
                zone,
                view,
                deletes,
                adds,
            } => ResponseBody::RecordsUpdated {
                serial: s
                    .update_records(&zone, view.as_deref(), &deletes, &adds)?
                    .serial,
            },
        })
    }

    /// One page of a zone. The first page transfers the zone and keeps it; the cursor
    /// (`READ:POSITION`) names that copy, so every page of one read comes from the same
    /// transfer (one consistent version of the zone). A cursor whose copy is gone (kept 5
    /// minutes, 8 reads at a time) is refused: the caller reads again from the first page.
    fn read_page(
        &self,
        s: &dyn DnsServer,
        zone: String,
        view: Option<String>,
        cursor: Option<String>,
        limit: Option<u32>,
    ) -> Result<ResponseBody, DnsError> {
        let bad = |c: &str| DnsError::Invalid {
            server: s.name().to_string(),
            action: format!("reading zone {zone}"),
            reason: format!("cursor {c:?} is not from an earlier page"),
        };
        let (read, start) = match &cursor {
            Some(c) => {
                let (r, p) = c.split_once(':').ok_or_else(|| bad(c))?;
                (
                    Some(r.parse::<u64>().map_err(|_| bad(c))?),
                    p.parse::<usize>().map_err(|_| bad(c))?,
                )
            }
            None => (None, 0),
        };
        let zone_key = format!("{zone}\u{0}{}", view.as_deref().unwrap_or(""));
        let key = |r: &(u64, String, String, Instant, Arc<ZoneContents>)| {
            r.1 == s.name() && r.2 == zone_key
        };
        let kept = read.and_then(|id| {
            let mut reads = self.reads.lock().expect("zone reads lock");
            reads.open.retain(|r| r.3.elapsed() < READ_TTL);
            reads
                .open
                .iter()
                .find(|r| r.0 == id && key(r))
                .map(|r| (r.0, r.4.clone()))
        });
        let (id, contents) = match (kept, read) {
            (Some(x), _) => x,
            (None, Some(_)) => {
                // Pages of another transfer would skip or repeat records: start again.
                return Err(DnsError::Invalid {
                    server: s.name().to_string(),
                    action: format!("reading zone {zone}"),
                    reason: "this read has expired (kept 5 minutes, 8 at a time): read the zone again from its first page".into(),
                });
            }
            (None, None) => {
                let c = Arc::new(s.read_zone(&zone, view.as_deref())?);
                let mut reads = self.reads.lock().expect("zone reads lock");
                reads.next += 1;
                let id = reads.next;
                if reads.open.len() >= OPEN_READS {
                    reads.open.remove(0);
                }
                reads.open.push((
                    id,
                    s.name().to_string(),
                    zone_key.clone(),
                    Instant::now(),
                    c.clone(),
                ));
                (id, c)
            }
        };
        let limit = limit.map_or(MAX_ZONE_PAGE, |l| (l as usize).clamp(1, MAX_ZONE_PAGE));
        let end = start.saturating_add(limit).min(contents.records.len());
        let done = end >= contents.records.len();
        if done {
            self.reads
                .lock()
                .expect("zone reads lock")
                .open
                .retain(|r| r.0 != id);
        }
        Ok(ResponseBody::Zone {
            zone: contents.zone.clone(),
            records: contents
                .records
                .get(start..end)
                .unwrap_or_default()
                .to_vec(),
            next_cursor: (!done).then(|| format!("{id}:{end}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drivers(toml_text: &str) -> Result<Drivers, String> {
        let f: ServersFile = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Drivers::from_file(&f)
    }

    #[test]
    fn the_configuration_names_every_kind_of_server() {
        let d = drivers(
            r#"
            [[powerdns]]
            name = "pdns1"
            api = "127.0.0.1:8081"
            api_key = "k"
            nameservers = ["ns1.example.com."]
            [[kea]]
            name = "kea1"
            socket = "/run/kea/kea4-ctrl-socket"
            [[kea]]
            name = "kea2"
            control_agent = "127.0.0.1:8000"
            user = "u"
            password = "p"
            [[dhcpd]]
            name = "dhcpd1"
            config_file = "/etc/dhcp/dhcpd.conf"
            leases_file = "/var/lib/dhcp/dhcpd.leases"
            omapi = "127.0.0.1:7911"
            omapi_key = { name = "omapi_key", secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" }
            "#,
        )
        .unwrap();
        let kinds: Vec<(String, ipam_agent_proto::ServerKind)> =
            d.servers().into_iter().map(|s| (s.name, s.kind)).collect();
        use ipam_agent_proto::ServerKind as K;
        assert_eq!(
            kinds,
            [
                ("pdns1".into(), K::PowerDns),
                ("kea1".into(), K::Kea),
                ("kea2".into(), K::Kea),
                ("dhcpd1".into(), K::IscDhcpd)
            ]
        );
        // Unknown servers are answered, not dropped.
        let e = d
            .handle(RequestBody::ServerStatus {
                server: "nope".into(),
            })
            .unwrap_err();
        assert_eq!(e.code, RemoteErrorCode::UnknownServer);
    }

    #[test]
    fn bad_configurations_are_refused_with_the_reason() {
        for (text, want) in [
            ("[[kea]]\nname = \"k\"\n", "either socket or control_agent"),
            (
                "[[kea]]\nname = \"k\"\nsocket = \"/s\"\n[[kea]]\nname = \"k\"\nsocket = \"/t\"\n",
                "two servers are named",
            ),
            ("[[kea]]\nname = \"k\"\nsocket = \"/s\"\nsockett = 1\n", "unknown field"),
            (
                "[[dhcpd]]\nname = \"d\"\nconfig_file = \"/c\"\nleases_file = \"/l\"\nomapi = \"127.0.0.1:7911\"\nomapi_key = { name = \"k\", secret = \"not base64!\" }\n",
                "d",
            ),
        ] {
            match drivers(text) {
                Err(e) => assert!(e.contains(want), "{text}: {e}"),
                Ok(_) => panic!("{text} must be refused"),
            }
        }
    }
}
