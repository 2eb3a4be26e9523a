//! DHCP operations and the data they carry: scopes, pools, options, reservations, leases.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::net::{addr_bits, Cidr, HexId, MacAddr};
use crate::validate::{
    validate_dns_name, validate_len, validate_limit, validate_name, validate_text, MAX_TEXT_LEN,
};

/// The most pools in one scope.
pub const MAX_POOLS: usize = 1_024;
/// The most options in one scope or one `set_options`.
pub const MAX_OPTIONS: usize = 1_024;

/// A DHCP operation on one server, sent in [`RequestBody::Dhcp`](crate::RequestBody::Dhcp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DhcpOp {
    /// Lists the server's scopes with their pools and options. Answer:
    /// [`ResponseBody::Scopes`](crate::ResponseBody::Scopes).
    ListScopes {},
    /// Creates a scope. Answer: [`ResponseBody::Done`](crate::ResponseBody::Done); error
    /// `already_exists` when the server has a scope for this subnet.
    CreateScope {
        /// The scope to create.
        scope: Scope,
    },
    /// Replaces the scope of the same subnet (name, pools, options, lease time). Answer:
    /// [`ResponseBody::Done`](crate::ResponseBody::Done); error `not_found` when there is none.
    UpdateScope {
        /// The scope's new content.
        scope: Scope,
    },
    /// Deletes the scope of a subnet with its reservations. Answer:
    /// [`ResponseBody::Done`](crate::ResponseBody::Done).
    DeleteScope {
        /// The scope's subnet.
        subnet: Cidr,
    },
    /// Replaces the options of a scope, or the server-wide options. Answer:
    /// [`ResponseBody::Done`](crate::ResponseBody::Done).
    SetOptions {
        /// The scope's subnet; `null` for the server-wide options.
        #[serde(default)]
        subnet: Option<Cidr>,
        /// The complete new set of options.
        #[serde(default)]
        options: Vec<DhcpOption>,
    },
    /// Lists host reservations. Answer:
    /// [`ResponseBody::Reservations`](crate::ResponseBody::Reservations).
    ListReservations {
        /// Only those of this scope; `null` for all.
        #[serde(default)]
        subnet: Option<Cidr>,
    },
    /// Adds a host reservation. Answer: [`ResponseBody::Done`](crate::ResponseBody::Done);
    /// error `already_exists` when the identifier or the address is already reserved there.
    AddReservation {
        /// The reservation.
        reservation: Reservation,
    },
    /// Deletes the reservation of a client. Answer:
    /// [`ResponseBody::Done`](crate::ResponseBody::Done); error `not_found` when there is none.
    DeleteReservation {
        /// The reservation's scope; `null` for a server-wide reservation.
        #[serde(default)]
        subnet: Option<Cidr>,
        /// The client whose reservation goes.
        identifier: ClientIdentifier,
    },
    /// Lists leases, one page at a time. Answer:
    /// [`ResponseBody::Leases`](crate::ResponseBody::Leases); ask again with its
    /// `next_cursor` until that is `null`.
    ListLeases {
        /// Only those of this scope; `null` for all.
        #[serde(default)]
        subnet: Option<Cidr>,
        /// Where to continue: `null` for the first page, else the previous page's
        /// `next_cursor` (opaque, made by the agent).
        #[serde(default)]
        cursor: Option<String>,
        /// The most leases to return; `null` lets the agent choose. The agent keeps every
        /// answer under the frame limit whatever is asked.
        #[serde(default)]
        limit: Option<u32>,
    },
}

impl DhcpOp {
    /// The operation's name, as on the wire (`list_leases`).
    pub fn name(&self) -> &'static str {
        match self {
            DhcpOp::ListScopes {} => "list_scopes",
            DhcpOp::CreateScope { .. } => "create_scope",
            DhcpOp::UpdateScope { .. } => "update_scope",
            DhcpOp::DeleteScope { .. } => "delete_scope",
            DhcpOp::SetOptions { .. } => "set_options",
            DhcpOp::ListReservations { .. } => "list_reservations",
            DhcpOp::AddReservation { .. } => "add_reservation",
            DhcpOp::DeleteReservation { .. } => "delete_reservation",
            DhcpOp::ListLeases { .. } => "list_leases",
        }
    }

    /// Checks every field against the protocol's rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            DhcpOp::ListScopes {}
            | DhcpOp::DeleteScope { .. }
            | DhcpOp::ListReservations { .. }
            | DhcpOp::DeleteReservation { .. } => Ok(()),
            DhcpOp::CreateScope { scope } | DhcpOp::UpdateScope { scope } => scope.validate(),
            DhcpOp::SetOptions { options, .. } => validate_options(options),
            DhcpOp::AddReservation { reservation } => reservation.validate(),
            DhcpOp::ListLeases { limit, .. } => validate_limit(*limit),
        }
    }
}

/// A scope: a subnet served by the server, with its pools and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The subnet (`192.0.2.0/24`); it identifies the scope on its server.
    pub subnet: Cidr,
    /// A name or description; `null` for none.
    #[serde(default)]
    pub name: Option<String>,
    /// Address ranges handed out dynamically.
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Options given to this scope's clients.
    #[serde(default)]
    pub options: Vec<DhcpOption>,
    /// The lease time in seconds; `null` for the server's default.
    #[serde(default)]
    pub lease_time: Option<u32>,
}

impl Scope {
    /// Checks the name, that every pool lies inside the subnet with `from <= to`, and the
    /// options.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(name) = &self.name {
            validate_name("scope name", name)?;
        }
        validate_len("pools", self.pools.len(), MAX_POOLS)?;
        for pool in &self.pools {
            pool.validate()?;
            if !self.subnet.contains(pool.from) || !self.subnet.contains(pool.to) {
                return Err(ValidationError::Malformed {
                    field: "pool",
                    value: format!("{}-{} in {}", pool.from, pool.to, self.subnet),
                    reason: "the pool does not lie inside the scope's subnet",
                });
            }
        }
        validate_options(&self.options)
    }
}

/// A range of addresses handed out dynamically, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool {
    /// The first address.
    pub from: IpAddr,
    /// The last address.
    pub to: IpAddr,
}

impl Pool {
    /// Checks that both ends are of one family and `from <= to`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let value = || format!("{}-{}", self.from, self.to);
        if self.from.is_ipv4() != self.to.is_ipv4() {
            return Err(ValidationError::Malformed {
                field: "pool",
                value: value(),
                reason: "the ends are of different address families",
            });
        }
        if addr_bits(self.from) > addr_bits(self.to) {
            return Err(ValidationError::Malformed {
                field: "pool",
                value: value(),
                reason: "the first address is after the last",
            });
        }
        Ok(())
    }
}

/// A DHCP option: its code, its name, or both, and its value as the server writes it
/// (`"192.0.2.1, 192.0.2.2"` for `domain-name-servers`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DhcpOption {
    /// The option code (DHCPv4 codes are 1..=254, DHCPv6 codes use 16 bits); `null` when the
    /// option is named instead.
    #[serde(default)]
    pub code: Option<u16>,
    /// The option's name as the server knows it (`routers`); `null` when given by code.
    #[serde(default)]
    pub name: Option<String>,
    /// The value in the server's text form.
    pub value: String,
}

impl DhcpOption {
    /// Checks that a code or a name is given, and the name and value's text.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.code.is_none() && self.name.is_none() {
            return Err(ValidationError::Empty {
                field: "DHCP option code and name (give at least one)",
            });
        }
        if let Some(name) = &self.name {
            validate_name("DHCP option name", name)?;
        }
        // An empty value is legal (a flag option), so only the length and characters count.
        if !self.value.is_empty() {
            validate_text("DHCP option value", &self.value, MAX_TEXT_LEN)?;
        }
        Ok(())
    }

    fn key(&self) -> String {
        match (&self.code, &self.name) {
            (Some(code), _) => code.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => String::new(),
        }
    }
}

/// Checks a set of options: each valid, at most [`MAX_OPTIONS`], no code or name twice.
fn validate_options(options: &[DhcpOption]) -> Result<(), ValidationError> {
    validate_len("options", options.len(), MAX_OPTIONS)?;
    let mut seen = HashSet::new();
    for option in options {
        option.validate()?;
        let key = option.key();
        if !seen.insert(key.clone()) {
            return Err(ValidationError::Duplicate {
                field: "options",
                value: key,
            });
        }
    }
    Ok(())
}

/// How a DHCP server recognizes a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientIdentifier {
    /// The client's hardware address.
    Mac(MacAddr),
    /// The DHCPv4 client identifier (option 61).
    ClientId(HexId),
    /// The DHCPv6 DUID.
    Duid(HexId),
}

/// A host reservation: a fixed address (and name) for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The scope it belongs to; `null` for a server-wide reservation.
    #[serde(default)]
    pub subnet: Option<Cidr>,
    /// The client.
    pub identifier: ClientIdentifier,
    /// The reserved address.
    pub address: IpAddr,
    /// The host name given to the client; `null` for none.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl Reservation {
    /// Checks the host name and that the address lies in the scope's subnet.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(hostname) = &self.hostname {
            validate_dns_name(hostname)?;
        }
        match self.subnet {
            Some(subnet) if !subnet.contains(self.address) => Err(ValidationError::Malformed {
                field: "reservation address",
                value: format!("{} in {subnet}", self.address),
                reason: "the address does not lie inside the reservation's subnet",
            }),
            _ => Ok(()),
        }
    }
}

/// The state of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Held by a client until it expires.
    Active,
    /// Expired, not yet reused.
    Expired,
    /// Given back by the client.
    Released,
    /// Declined by a client that found the address in use (Kea `declined`, ISC `abandoned`).
    Declined,
    /// Free (ISC `free` or `backup`): known to the server, held by nobody.
    Free,
}

/// A lease as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased address.
    pub address: IpAddr,
    /// The scope it belongs to, when the server says.
    #[serde(default)]
    pub subnet: Option<Cidr>,
    /// The client's hardware address, when known.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// The client identifier (DHCPv4) or DUID (DHCPv6), when known.
    #[serde(default)]
    pub client_id: Option<HexId>,
    /// The host name the client sent or was given, when known.
    #[serde(default)]
    pub hostname: Option<String>,
    /// When the lease expires, in seconds since the Unix epoch (UTC); `null` for never.
    #[serde(default)]
    pub expires: Option<u64>,
    /// The lease's state.
    pub state: LeaseState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            subnet: "192.0.2.0/24".parse().unwrap(),
            name: Some("lab".into()),
            pools: vec![Pool {
                from: "192.0.2.100".parse().unwrap(),
                to: "192.0.2.199".parse().unwrap(),
            }],
            options: vec![DhcpOption {
                code: Some(3),
                name: Some("routers".into()),
                value: "192.0.2.1".into(),
            }],
            lease_time: Some(3600),
        }
    }

    #[test]
    fn scope_validation() {
        assert_eq!(scope().validate(), Ok(()));
        let mut s = scope();
        s.pools[0].to = "192.0.3.10".parse().unwrap();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("inside the scope's subnet"));
        let mut s = scope();
        s.pools[0] = Pool {
            from: "192.0.2.50".parse().unwrap(),
            to: "192.0.2.10".parse().unwrap(),
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("after the last"));
        let mut s = scope();
        s.options.push(s.options[0].clone());
        assert!(matches!(
            s.validate(),
            Err(ValidationError::Duplicate { .. })
        ));
        let mut s = scope();
        s.options[0].code = None;
        s.options[0].name = None;
        assert!(matches!(s.validate(), Err(ValidationError::Empty { .. })));
    }

    #[test]
    fn reservation_address_must_be_in_subnet() {
        let mut r = Reservation {
            subnet: Some("192.0.2.0/24".parse().unwrap()),
            identifier: ClientIdentifier::Mac("00:16:3e:00:00:01".parse().unwrap()),
            address: "192.0.2.10".parse().unwrap(),
            hostname: Some("printer".into()),
        };
        assert_eq!(r.validate(), Ok(()));
        r.address = "198.51.100.1".parse().unwrap();
        assert!(r.validate().is_err());
        r.subnet = None;
        assert_eq!(r.validate(), Ok(()));
        r.hostname = Some("bad host".into());
        assert!(r.validate().is_err());
    }
}
