//! `ipam-agent-dns`: the DNS server drivers of the DNS agent, behind one trait.
//!
//! # The trait
//!
//! [`DnsServer`] is what the agent holds for each managed server, as
//! `Vec<Box<dyn DnsServer>>`: list zones, read a zone's records, create and delete a zone,
//! change records in one batch, and report the server's state. Inputs and outputs are the
//! protocol's own types ([`ZoneSpec`], [`ZoneInfo`], [`ResourceRecord`], [`RecordDelete`],
//! [`ServerStatus`]), and [`DnsError`] converts into the protocol's
//! [`RemoteError`] with its code, so the agent passes requests
//! and answers straight through.
//!
//! The trait is **blocking** (synchronous). Every operation is a few round trips on a
//! loopback or LAN socket, or one short `rndc` process; a blocking driver needs no runtime of
//! its own, keeps the trait object-safe without boxed futures, and is simple to test. The
//! tokio-based agent calls it from `tokio::task::spawn_blocking`; every socket and process
//! has a timeout, so a call never blocks a thread for longer than the configured timeout per
//! round trip. Drivers are `Send + Sync` and hold no connection between calls, so one driver
//! may serve several calls at once.
//!
//! # Record text
//!
//! Records are in presentation format (as in a zone file), class IN, and both drivers report
//! them in the same canonical words: names absolute with the final dot (a name in input may
//! leave the dot out: it is absolute anyway, never relative to the zone), TXT strings quoted
//! and escaped, addresses in their usual short form, types without a mnemonic as `TYPEnnn`
//! with data in the generic form of RFC 3597 (`\# 2 abcd`). Zone names are reported in lower
//! case without the final dot. The form is [`ipam_agent_proto::presentation`]'s, which
//! Central uses too.
//!
//! Changes have set semantics on both servers: adding a record that exists, or deleting one
//! that does not, changes nothing and is no error. A record set has one TTL: an added record's
//! TTL becomes the set's TTL.
//!
//! # BIND 9 ([`BindServer`], [`BindConfig`])
//!
//! - **Records** are read by AXFR and written by RFC 2136 UPDATE, both over TCP and signed with
//!   a TSIG key (`hmac-sha256`, `hmac-sha384` or `hmac-sha512`); every answer's signature is
//!   checked. A batch goes in one UPDATE message, which BIND applies atomically. A batch
//!   too large for one message (64 KiB: about 1,800 A records) is split into several,
//!   deletes first, in order; each is atomic, and if one fails the error
//!   ([`DnsError::Partial`]) says how many changes were applied.
//! - **Zones** are created with `rndc addzone` and deleted with `rndc delzone -clean`. The
//!   driver runs the `rndc` program of bind9-utils with its configuration on standard input
//!   (the key never touches the disk, and the host's `/etc/bind/rndc.conf` is not read);
//!   shelling out keeps the ISC control protocol, its HMAC and its quirks in ISC's tool. A new
//!   primary zone first gets a zone file in [`BindConfig::zone_dir`] with an SOA, the NS
//!   records of [`ZoneDefaults`] and glue for name servers inside the zone; its configuration
//!   allows updates (when [`ZoneSpec::dynamic`]) and transfers to the TSIG key.
//! - **Zones are listed** from BIND's statistics channel (`GET /json/v1/zones`, one request
//!   for every zone with its type and serial), then one rndc call per zone (four at a time):
//!   `zonestatus` for a primary's dynamic flag, `showzone` for a secondary's primaries. No rndc
//!   command lists zones, and `rndc dumpdb` writes to a file on the server's side.
//! - **Status** is `rndc status` (version, boot time).
//!
//! named.conf needs, besides the zones' own settings:
//!
//! ```text
//! key "ipam-agent" { algorithm hmac-sha256; secret "..."; };        // TSIG: UPDATE + AXFR
//! key "rndc-key" { algorithm hmac-sha256; secret "..."; };
//! options {
//!     allow-new-zones yes;                                           // rndc addzone/delzone
//!     ...
//! };
//! controls { inet 127.0.0.1 port 953 allow { 127.0.0.1; } keys { "rndc-key"; }; };
//! statistics-channels { inet 127.0.0.1 port 8053 allow { 127.0.0.1; }; };
//! ```
//!
//! and [`BindConfig::zone_dir`] must be writable by the agent (it writes the initial zone
//! file) and by named (journals, `rndc sync`), e.g. a directory of group `bind` with mode
//! 2775 and the agent's user in that group. Zones that are in named.conf rather than added by
//! rndc can be read and updated; deleting one removes it until named restarts.
//!
//! # PowerDNS Authoritative ([`PowerDnsServer`], [`PowerDnsConfig`])
//!
//! Everything goes through the HTTP API (`/api/v1/servers/localhost/...`) with the
//! `X-API-Key` header, over plain HTTP on the server's host, with the agents' blocking HTTP/1.1
//! client on hyper ([`ipam_agent_http`]; BIND's statistics channel uses it too). Zones are created as `Native` (primaries) or `Slave` (secondaries), with the same
//! SOA and NS as BIND's. A batch is one PATCH, which PowerDNS applies in one transaction.
//! PowerDNS replaces whole record sets, so the driver first reads the zone, merges the
//! batch into the affected sets, and sends `REPLACE` (or `DELETE` for a set left empty): a
//! change made to the same set by someone else between that read and the PATCH is lost.
//! Disabled records are not reported.
//!
//! # Not supported yet
//!
//! Views: an operation naming a view fails with [`DnsError::Unsupported`] (BIND selects a
//! view by the TSIG key or the source address, which needs one key per view; PowerDNS 4.7 has
//! none). [`DnsServer::list_zones`] of BIND reports zones of every view.
//!
//! # Caveats
//!
//! - BIND ignores, without an error, an added CNAME at a name that has other data, or other
//!   data at a CNAME (RFC 2136 section 3.4.2.2); PowerDNS refuses the whole batch.
//! - A zone is read whole (AXFR or one GET); paging it for the protocol is the agent's job.

mod bind;
mod error;
mod http;
mod powerdns;
mod rndc;
mod wire;

use std::fmt;
use std::net::IpAddr;

pub use bind::{BindConfig, BindServer};
pub use error::DnsError;
pub use ipam_agent_proto::{
    RecordDelete, RemoteError, RemoteErrorCode, ResourceRecord, ServerKind, ServerStatus, ZoneInfo,
    ZoneSpec, ZoneType,
};
pub use powerdns::{PowerDnsConfig, PowerDnsServer};

use hickory_proto::rr::Name;
use ipam_agent_proto::presentation;

/// One DNS server, as the agent drives it. Object-safe: hold any number of servers as
/// `Vec<Box<dyn DnsServer>>`. Every method blocks (see the crate docs) and fails with a
/// [`DnsError`] that names the server.
pub trait DnsServer: Send + Sync {
    /// The server's name, as configured and as Central knows it.
    fn name(&self) -> &str;

    /// The server's kind.
    fn kind(&self) -> ServerKind;

    /// Every zone of class IN the server serves (primaries and secondaries).
    fn list_zones(&self) -> Result<Vec<ZoneInfo>, DnsError>;

    /// A zone with every record: the SOA first, then the rest in the server's order.
    /// `view`: `None` for the default view. Fails with [`DnsError::NotFound`] when the server
    /// does not have the zone.
    fn read_zone(&self, zone: &str, view: Option<&str>) -> Result<ZoneContents, DnsError>;

    /// Creates a zone: a primary with an SOA and the configured NS records, or a secondary
    /// that transfers from `spec.masters`. Fails with [`DnsError::AlreadyExists`] when the
    /// server has it.
    fn create_zone(&self, spec: &ZoneSpec) -> Result<(), DnsError>;

    /// Deletes a zone and its records. Fails with [`DnsError::NotFound`] when the server does
    /// not have it.
    fn delete_zone(&self, zone: &str, view: Option<&str>) -> Result<(), DnsError>;

    /// Applies a batch: first every delete, then every add, atomically where the server
    /// allows (see the crate docs). Record names must be inside the zone; nothing is sent
    /// when one is not, or when any data does not parse.
    fn update_records(
        &self,
        zone: &str,
        view: Option<&str>,
        deletes: &[RecordDelete],
        adds: &[ResourceRecord],
    ) -> Result<UpdateOutcome, DnsError>;

    /// The server's state. Never fails: a server that does not answer is reported with
    /// `running: false` and the reason in `message`.
    fn status(&self) -> ServerStatus;
}

/// A zone and its records, as [`DnsServer::read_zone`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneContents {
    /// The zone; `serial` is the one of the records read.
    pub zone: ZoneInfo,
    /// Every record, in canonical presentation format (see the crate docs).
    pub records: Vec<ResourceRecord>,
}

/// What [`DnsServer::update_records`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// The zone's SOA serial after the change, when the server said.
    pub serial: Option<u32>,
    /// How many change requests were sent: UPDATE messages for BIND (more than one when the
    /// batch did not fit in one), PATCH requests for PowerDNS (one, or none for an empty
    /// batch).
    pub requests: usize,
}

/// A shared secret key: a TSIG key (BIND's `key` statement) or an rndc key.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name, as in named.conf (`ipam-agent`).
    pub name: String,
    /// The algorithm, as in named.conf (`hmac-sha256`).
    pub algorithm: String,
    /// The secret, base64 as in named.conf.
    pub secret: String,
}

impl TsigKey {
    /// An `hmac-sha256` key.
    pub fn hmac_sha256(name: impl Into<String>, secret: impl Into<String>) -> TsigKey {
        TsigKey {
            name: name.into(),
            algorithm: "hmac-sha256".into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A name server of new zones, and its addresses (needed as glue when the name server is
/// inside the zone it serves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServer {
    /// Its absolute name (`ns1.example.com`; the final dot is optional).
    pub name: String,
    /// Its addresses; written as A/AAAA records into a new zone that contains its name.
    pub addresses: Vec<IpAddr>,
}

impl NameServer {
    /// A name server without addresses (enough when it is outside the zones created).
    pub fn new(name: impl Into<String>) -> NameServer {
        NameServer {
            name: name.into(),
            addresses: Vec::new(),
        }
    }
}

/// The SOA and NS records of a new primary zone. The SOA's primary name is the first name
/// server; its serial starts at 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDefaults {
    /// The zone's name servers; at least one.
    pub nameservers: Vec<NameServer>,
    /// The mailbox of the SOA (`hostmaster.example.com`); `None` for `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// The TTL of the SOA, NS and glue records.
    pub ttl: u32,
    /// SOA refresh, seconds.
    pub refresh: u32,
    /// SOA retry, seconds.
    pub retry: u32,
    /// SOA expire, seconds.
    pub expire: u32,
    /// SOA minimum (negative caching TTL), seconds.
    pub minimum: u32,
}

impl ZoneDefaults {
    /// Defaults with these name servers: TTL 3600, refresh 3600, retry 600, expire 14 days,
    /// minimum 300.
    pub fn new(nameservers: Vec<NameServer>) -> ZoneDefaults {
        ZoneDefaults {
            nameservers,
            hostmaster: None,
            ttl: 3600,
            refresh: 3600,
            retry: 600,
            expire: 1_209_600,
            minimum: 300,
        }
    }

    /// The SOA, NS and glue records of a new zone, or why there can be none.
    fn initial_records(&self, zone: &Name) -> Result<Vec<ResourceRecord>, String> {
        let first = self.nameservers.first().ok_or(
            "no name servers are configured for new zones (set zone_defaults.nameservers)",
        )?;
        let mname = presentation::parse_name(&first.name)?;
        let rname = match &self.hostmaster {
            Some(mailbox) => presentation::parse_name(mailbox)?,
            None => {
                presentation::parse_name(&format!("hostmaster.{}", presentation::name_text(zone)))?
            }
        };
        let apex = presentation::name_text(zone);
        let rr = |name: String, rtype: &str, data: String| ResourceRecord {
            name,
            rtype: rtype.into(),
            ttl: self.ttl,
            data,
        };
        let mut records = vec![rr(
            apex.clone(),
            "SOA",
            format!(
                "{} {} 1 {} {} {} {}",
                presentation::name_text(&mname),
                presentation::name_text(&rname),
                self.refresh,
                self.retry,
                self.expire,
                self.minimum
            ),
        )];
        for ns in &self.nameservers {
            let name = presentation::parse_name(&ns.name)?;
            records.push(rr(apex.clone(), "NS", presentation::name_text(&name)));
        }
        for ns in &self.nameservers {
            let name = presentation::parse_name(&ns.name)?;
            if !zone.zone_of(&name) {
                continue;
            }
            if ns.addresses.is_empty() {
                return Err(format!(
                    "name server {name} is inside zone {zone}, so it needs glue: give it \
                     addresses in zone_defaults.nameservers"
                ));
            }
            for ip in &ns.addresses {
                let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
                records.push(rr(presentation::name_text(&name), rtype, ip.to_string()));
            }
        }
        Ok(records)
    }
}

/// Fails with [`DnsError::Unsupported`] when a view is named.
fn no_view(server: &str, view: Option<&str>) -> Result<(), DnsError> {
    match view {
        None => Ok(()),
        Some(view) => Err(DnsError::Unsupported {
            server: server.to_owned(),
            what: format!("view {view:?} (this driver manages the default view only)"),
        }),
    }
}

/// Parses a zone name from a request.
fn zone_name(server: &str, action: &str, zone: &str) -> Result<Name, DnsError> {
    presentation::parse_name(zone).map_err(|reason| DnsError::Invalid {
        server: server.to_owned(),
        action: action.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_records_have_soa_ns_and_glue() {
        let mut defaults = ZoneDefaults::new(vec![
            NameServer::new("ns1.example.test"),
            NameServer {
                name: "ns2.new.test.".into(),
                addresses: vec![
                    "192.0.2.53".parse().unwrap(),
                    "2001:db8::53".parse().unwrap(),
                ],
            },
        ]);
        let zone = presentation::parse_name("new.test").unwrap();
        let records = defaults.initial_records(&zone).unwrap();
        let text: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.data))
            .collect();
        assert_eq!(
            text,
            [
                "new.test. SOA ns1.example.test. hostmaster.new.test. 1 3600 600 1209600 300",
                "new.test. NS ns1.example.test.",
                "new.test. NS ns2.new.test.",
                "ns2.new.test. A 192.0.2.53",
                "ns2.new.test. AAAA 2001:db8::53",
            ]
        );
        defaults.nameservers[1].addresses.clear();
        let err = defaults.initial_records(&zone).unwrap_err();
        assert!(err.contains("needs glue"), "{err}");
        defaults.nameservers.clear();
        assert!(defaults.initial_records(&zone).is_err());
    }

    #[test]
    fn keys_do_not_print_their_secret() {
        let key = TsigKey::hmac_sha256("k", "c2VjcmV0");
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn drivers_are_object_safe_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + ?Sized>() {}
        assert_send_sync::<dyn DnsServer>();
        assert_send_sync::<BindServer>();
        assert_send_sync::<PowerDnsServer>();
    }
}
