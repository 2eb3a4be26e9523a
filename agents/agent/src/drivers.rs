//! The servers an agent manages, from its configuration file, and the [`Handler`] that sends
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
//! ```
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipam_agent_dns::{
    BindConfig, BindServer, DnsError, DnsServer, NameServer, PowerDnsConfig, PowerDnsServer,
    TsigKey, ZoneDefaults,
};
use ipam_agent_proto::{
    DnsOp, ManagedServer, RemoteError, RemoteErrorCode, RequestBody, ResponseBody,
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
}

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
        let mut names: Vec<&str> = dns.iter().map(|d| d.name()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two servers are named {:?}", w[0]));
        }
        Ok(Drivers { dns })
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
        self.dns
            .iter()
            .map(|d| ManagedServer {
                name: d.name().to_string(),
                kind: d.kind(),
            })
            .collect()
    }

    fn handle(&self, body: RequestBody) -> Result<ResponseBody, RemoteError> {
        match body {
            RequestBody::Dns { server, op } => Ok(dns_op(self.dns(&server)?, op)?),
            RequestBody::ServerStatus { server } => Ok(ResponseBody::Status {
                status: self.dns(&server)?.status(),
            }),
            RequestBody::Dhcp { server, .. } => Err(unknown(&server)),
        }
    }
}

/// Carries out one DNS operation.
fn dns_op(s: &dyn DnsServer, op: DnsOp) -> Result<ResponseBody, DnsError> {
    Ok(match op {
        DnsOp::ListZones {} => ResponseBody::Zones {
            zones: s.list_zones()?,
        },
        DnsOp::ReadZone {
            zone,
            view,
            cursor,
            limit,
        } => {
            // The driver reads the whole zone; the answer is one page of it, the cursor
            // being the position of the next record.
            let c = s.read_zone(&zone, view.as_deref())?;
            let start = match cursor {
                Some(c) => c.parse::<usize>().map_err(|_| DnsError::Invalid {
                    server: s.name().to_string(),
                    action: format!("reading zone {zone}"),
                    reason: format!("cursor {c:?} is not from an earlier page"),
                })?,
                None => 0,
            };
            let limit = limit.map_or(MAX_ZONE_PAGE, |l| (l as usize).clamp(1, MAX_ZONE_PAGE));
            let end = (start + limit).min(c.records.len());
            ResponseBody::Zone {
                zone: c.zone,
                records: c.records.get(start..end).unwrap_or_default().to_vec(),
                next_cursor: (end < c.records.len()).then(|| end.to_string()),
            }
        }
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
