//! The DNS and DHCP objects of the model: servers (as agents report them), zones and
//! records, scopes, reservations and leases.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Id, Millis, Properties};

/// A DNS server, as an agent reports it: Central reaches it through that agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsServer {
    /// Id.
    pub id: Id,
    /// Name, unique among DNS servers: the name the agent gives it.
    pub name: String,
    /// `host:port` of the agent that manages it.
    pub agent: String,
    /// The server software (`bind`, `powerdns`).
    pub kind: String,
}

/// A DNS zone on one server (and view; `""` is the default view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsZone {
    /// Id.
    pub id: Id,
    /// The server it is on.
    pub server: Id,
    /// The view (`""`: the default view).
    pub view: String,
    /// Fully qualified name, lower case, with the trailing dot (`example.com.`).
    pub name: String,
    /// Primary (`Master`) or secondary (`Slave`).
    pub primary: bool,
    /// Takes dynamic updates.
    pub dynamic: bool,
    /// The primaries a secondary zone transfers from.
    pub masters: Vec<IpAddr>,
    /// Serial last seen on the server.
    pub serial: Option<u32>,
    /// Custom properties.
    pub properties: Properties,
    /// Creation time.
    pub created: Millis,
    /// Time of the last change.
    pub last_modified: Millis,
}

/// One DNS resource record in a zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    /// Id.
    pub id: Id,
    /// The zone.
    pub zone: Id,
    /// Owner name relative to the zone (`www`; `@` is the apex).
    pub name: String,
    /// Type (`A`, `AAAA`, `TXT`, ...), upper case.
    pub rtype: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Data in presentation form (TXT unquoted).
    pub data: String,
    /// Free text.
    pub comment: String,
    /// A disabled record is kept in Central only, not on the server.
    pub enabled: bool,
    /// The address the record names: the data of an A or AAAA record, the address a PTR
    /// record's owner name stands for. Links the record to that address's IPAM record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// A DHCP server, as an agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpServer {
    /// Id.
    pub id: Id,
    /// Name, unique among DHCP servers: the name the agent gives it.
    pub name: String,
    /// `host:port` of the agent that manages it.
    pub agent: String,
    /// The server software (`kea`, `isc_dhcpd`).
    pub kind: String,
}

/// A DHCP scope: a subnet (a range of Central's) served by one DHCP server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpScope {
    /// Id.
    pub id: Id,
    /// The server.
    pub server: Id,
    /// The range it serves (a subnet).
    pub range: Id,
    /// The range's address space.
    pub space: Id,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Served (a disabled scope is kept in Central only).
    pub enabled: bool,
    /// Dynamic pools, as inclusive bounds.
    pub pools: Vec<(IpAddr, IpAddr)>,
    /// Options by name (`routers`) or code, with their values.
    pub options: Vec<(String, String)>,
}

/// A DHCP reservation: addresses kept for one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpReservation {
    /// Id.
    pub id: Id,
    /// The scope.
    pub scope: Id,
    /// The scope's address space.
    pub space: Id,
    /// Name (the host name given to the client).
    pub name: String,
    /// The client: a MAC address (`HardwareAddress`) or client id (`ClientIdentifier`).
    pub client_identifier: String,
    /// `HardwareAddress` or `ClientIdentifier`.
    pub method: String,
    /// The reserved addresses.
    pub addresses: Vec<IpAddr>,
}

/// A DHCP lease, as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpLease {
    /// Id.
    pub id: Id,
    /// The scope.
    pub scope: Id,
    /// The scope's address space.
    pub space: Id,
    /// The leased address.
    pub addr: IpAddr,
    /// The client's MAC address.
    pub mac: String,
    /// The client's host name.
    pub hostname: String,
    /// When the lease ends.
    pub expires: Option<Millis>,
    /// `Active`, `Expired`, `Released`, `Declined`.
    pub state: String,
}

impl DnsRecord {
    /// The addresses whose IPAM records this record links to (see [`DnsRecord::address`]).
    pub fn links(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.address.filter(|_| self.enabled).into_iter()
    }
}

impl DhcpLease {
    /// Whether the lease holds its address now.
    pub fn is_active(&self) -> bool {
        self.state == "Active"
    }
}
