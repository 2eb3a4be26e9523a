//! The Kea DHCPv4 driver: [`KeaServer`].

mod config;
mod transport;

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOption, Reservation, Scope, ServerKind, ServerStatus,
};
use serde_json::{json, Value};

use crate::error::{Ctx, DhcpError};
use crate::server::{describe_identifier, page_limit, parse_cursor, DhcpServer, LeasePage};
use config::Dhcp4;
pub use transport::KeaEndpoint;
use transport::{excerpt, Answer};

/// Kea's result codes.
const RESULT_OK: i64 = 0;
const RESULT_UNSUPPORTED: i64 = 2;
const RESULT_EMPTY: i64 = 3;

/// How to reach one kea-dhcp4 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeaConfig {
    /// The name the agent knows the server by.
    pub name: String,
    /// Its control socket, or the control agent in front of it.
    pub endpoint: KeaEndpoint,
    /// The longest wait for one command's answer (default 30 s; `config-set` of a large
    /// configuration takes a while).
    pub timeout: Duration,
}

impl KeaConfig {
    /// A server reached through kea-dhcp4's unix control socket at `socket`.
    pub fn unix_socket(name: impl Into<String>, socket: impl Into<std::path::PathBuf>) -> Self {
        KeaConfig {
            name: name.into(),
            endpoint: KeaEndpoint::UnixSocket(socket.into()),
            timeout: Duration::from_secs(30),
        }
    }

    /// A server reached through kea-ctrl-agent at `addr` (`host:port`), without credentials.
    pub fn control_agent(name: impl Into<String>, addr: impl Into<String>) -> Self {
        KeaConfig {
            name: name.into(),
            endpoint: KeaEndpoint::ControlAgent {
                addr: addr.into(),
                credentials: None,
            },
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the HTTP basic-authentication user and password (control agent only; ignored for a
    /// unix socket).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        if let KeaEndpoint::ControlAgent { credentials, .. } = &mut self.endpoint {
            *credentials = Some((user.into(), password.into()));
        }
        self
    }

    /// Sets the longest wait for one command's answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The driver for Kea DHCPv4 (`kea-dhcp4`, tested with 2.2).
///
/// Scopes, options and reservations live in Kea's configuration: each change is a
/// `config-get`, an edit of the `Dhcp4` object, `config-test`, `config-set` and
/// `config-write` (so it survives a restart), serialized by a lock inside the driver. When
/// `config-write` fails the previous configuration is set again and the call fails with
/// [`DhcpError::Refused`]. Subnet ids are preserved; a new scope gets the next free id. Leases
/// come from the `lease_cmds` hook (`lease4-get-page`); status from `status-get` and
/// `version-get`.
#[derive(Debug)]
pub struct KeaServer {
    config: KeaConfig,
    /// Held across each read-modify-write of the configuration.
    change_lock: Mutex<()>,
}

impl KeaServer {
    /// A driver for the server `config` describes. Nothing is contacted until the first call.
    pub fn new(config: KeaConfig) -> KeaServer {
        KeaServer {
            config,
            change_lock: Mutex::new(()),
        }
    }

    /// The configuration this driver was made with.
    pub fn config(&self) -> &KeaConfig {
        &self.config
    }

    fn ctx<'a>(&'a self, command: &'a str) -> Ctx<'a> {
        Ctx::new(&self.config.name, command)
    }

    /// Sends a command and returns the answer when its result is one of `accept`; other results
    /// become errors: 2 [`DhcpError::Unsupported`], the rest [`DhcpError::Refused`] with Kea's
    /// text.
    fn call(
        &self,
        op: &str,
        command: &str,
        arguments: Option<Value>,
        accept: &[i64],
    ) -> Result<Answer, DhcpError> {
        let label = format!("{op}: {command}");
        let ctx = self.ctx(&label);
        let answer = transport::send(
            ctx,
            &self.config.endpoint,
            self.config.timeout,
            command,
            arguments,
        )?;
        if accept.contains(&answer.result) {
            return Ok(answer);
        }
        Err(match answer.result {
            RESULT_UNSUPPORTED => ctx.unsupported(format!(
                "Kea answered \"{}\" (is the hook library that provides it loaded?)",
                answer.text
            )),
            _ => ctx.refused(format!("Kea answered \"{}\"", answer.text)),
        })
    }

    /// The running `Dhcp4` configuration.
    fn config_get(&self, op: &str) -> Result<Dhcp4, DhcpError> {
        let answer = self.call(op, "config-get", None, &[RESULT_OK])?;
        match answer.arguments {
            Some(Value::Object(mut args)) => match args.remove("Dhcp4") {
                Some(Value::Object(dhcp4)) => Ok(dhcp4),
                _ => Err(self
                    .ctx(&format!("{op}: config-get"))
                    .bad_answer("the answer has no \"Dhcp4\" object (is this kea-dhcp4?)")),
            },
            _ => Err(self
                .ctx(&format!("{op}: config-get"))
                .bad_answer("the answer has no arguments")),
        }
    }

    /// Reads the configuration, lets `edit` change it, and applies the result with
    /// `config-test`, `config-set` and `config-write`. Nothing is sent when `edit` fails.
    fn change(
        &self,
        op: &str,
        edit: impl FnOnce(&mut Dhcp4) -> Result<(), DhcpError>,
    ) -> Result<(), DhcpError> {
        let _guard = self
            .change_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let original = self.config_get(op)?;
        let mut changed = original.clone();
        edit(&mut changed)?;
        let arguments = json!({ "Dhcp4": changed });
        self.call(op, "config-test", Some(arguments.clone()), &[RESULT_OK])?;
        self.call(op, "config-set", Some(arguments), &[RESULT_OK])?;
        if let Err(write_err) = self.call(op, "config-write", None, &[RESULT_OK]) {
            let undo = self.call(
                op,
                "config-set",
                Some(json!({ "Dhcp4": original })),
                &[RESULT_OK],
            );
            let label = format!("{op}: config-write");
            return Err(self.ctx(&label).refused(match undo {
                Ok(_) => format!(
                    "{write_err}; the previous configuration was set again, so nothing changed"
                ),
                Err(undo_err) => format!(
                    "{write_err}; setting the previous configuration again failed too \
                     ({undo_err}): the change is live but not saved and will be lost at restart"
                ),
            }));
        }
        Ok(())
    }

    /// [`DhcpError::Invalid`] for an IPv6 subnet: kea-dhcp4 serves IPv4 only.
    fn require_v4(&self, op: &str, subnet: Cidr) -> Result<(), DhcpError> {
        if subnet.addr().is_ipv4() {
            return Ok(());
        }
        Err(self.ctx(op).invalid(format!(
            "{subnet} is an IPv6 prefix and kea-dhcp4 serves IPv4 only (kea-dhcp6 is not \
             supported by this driver)"
        )))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DhcpServer for KeaServer {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> ServerKind {
        ServerKind::Kea
    }

    fn list_scopes(&self) -> Result<Vec<Scope>, DhcpError> {
        let dhcp4 = self.config_get("list_scopes")?;
        Ok(config::subnets(&dhcp4)
            .into_iter()
            .filter_map(|(_, s)| config::scope_of(s))
            .collect())
    }

    fn create_scope(&self, scope: &Scope) -> Result<(), DhcpError> {
        let op = "create_scope";
        self.require_v4(op, scope.subnet)?;
        self.change(op, |dhcp4| {
            if config::find_subnet(dhcp4, scope.subnet).is_some() {
                return Err(self.ctx(op).exists(format!("scope {}", scope.subnet)));
            }
            let id = config::next_subnet_id(dhcp4);
            config::push_subnet(dhcp4, config::new_subnet(scope, id));
            Ok(())
        })
    }

    fn update_scope(&self, scope: &Scope) -> Result<(), DhcpError> {
        let op = "update_scope";
        self.require_v4(op, scope.subnet)?;
        self.change(op, |dhcp4| {
            let place = config::find_subnet(dhcp4, scope.subnet)
                .ok_or_else(|| self.ctx(op).not_found(format!("scope {}", scope.subnet)))?;
            if let Some(subnet) = config::subnet_mut(dhcp4, place) {
                config::apply_scope(subnet, scope);
            }
            Ok(())
        })
    }

    fn delete_scope(&self, subnet: Cidr) -> Result<(), DhcpError> {
        let op = "delete_scope";
        self.change(op, |dhcp4| {
            let place = config::find_subnet(dhcp4, subnet)
                .ok_or_else(|| self.ctx(op).not_found(format!("scope {subnet}")))?;
            config::remove_subnet(dhcp4, place);
            Ok(())
        })
    }

    fn set_options(&self, subnet: Option<Cidr>, options: &[DhcpOption]) -> Result<(), DhcpError> {
        let op = "set_options";
        self.change(op, |dhcp4| {
            let target = match subnet {
                Some(cidr) => {
                    let place = config::find_subnet(dhcp4, cidr)
                        .ok_or_else(|| self.ctx(op).not_found(format!("scope {cidr}")))?;
                    config::subnet_mut(dhcp4, place)
                        .ok_or_else(|| self.ctx(op).not_found(format!("scope {cidr}")))?
                }
                None => dhcp4,
            };
            let option_data = target
                .entry("option-data")
                .or_insert_with(|| Value::Array(Vec::new()));
            config::replace_options(option_data, options);
            Ok(())
        })
    }

    fn list_reservations(&self, subnet: Option<Cidr>) -> Result<Vec<Reservation>, DhcpError> {
        let op = "list_reservations";
        let dhcp4 = self.config_get(op)?;
        let mut out = Vec::new();
        if subnet.is_none() {
            out.extend(config::reservations_of(dhcp4.get("reservations"), None));
        }
        let mut found = subnet.is_none();
        for (_, s) in config::subnets(&dhcp4) {
            let cidr = config::subnet_cidr(s);
            if subnet.is_none() || cidr == subnet {
                found = true;
                out.extend(config::reservations_of(s.get("reservations"), cidr));
            }
        }
        if !found {
            if let Some(cidr) = subnet {
                return Err(self.ctx(op).not_found(format!("scope {cidr}")));
            }
        }
        Ok(out)
    }

    fn add_reservation(&self, reservation: &Reservation) -> Result<(), DhcpError> {
        let op = "add_reservation";
        let ctx = self.ctx(op);
        let IpAddr::V4(_) = reservation.address else {
            return Err(ctx.invalid(format!(
                "{} is an IPv6 address and kea-dhcp4 serves IPv4 only",
                reservation.address
            )));
        };
        if let ClientIdentifier::Duid(_) = reservation.identifier {
            return Err(ctx.invalid(
                "a DUID identifies DHCPv6 clients; kea-dhcp4 reserves by MAC or client id",
            ));
        }
        if let Some(subnet) = reservation.subnet {
            if !subnet.contains(reservation.address) {
                return Err(ctx.invalid(format!(
                    "{} does not lie in the scope {subnet}",
                    reservation.address
                )));
            }
        }
        self.change(op, |dhcp4| {
            let (place, cidr) = match reservation.subnet {
                Some(cidr) => (
                    config::find_subnet(dhcp4, cidr)
                        .ok_or_else(|| ctx.not_found(format!("scope {cidr}")))?,
                    cidr,
                ),
                None => config::subnet_containing(dhcp4, reservation.address).ok_or_else(|| {
                    ctx.invalid(format!(
                        "{} lies in none of the server's scopes, so Kea could never hand it out",
                        reservation.address
                    ))
                })?,
            };
            let subnet = config::subnet_mut(dhcp4, place)
                .ok_or_else(|| ctx.not_found(format!("scope {cidr}")))?;
            let list = subnet
                .entry("reservations")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(existing) = config::reservations_of(Some(list), Some(cidr))
                .into_iter()
                .find(|r| {
                    r.identifier == reservation.identifier || r.address == reservation.address
                })
            {
                return Err(ctx.exists(format!(
                    "a reservation of {} for {} in scope {cidr}",
                    existing.address,
                    describe_identifier(&existing.identifier)
                )));
            }
            match list.as_array_mut() {
                Some(list) => list.push(config::reservation_entry(reservation)),
                None => *list = json!([config::reservation_entry(reservation)]),
            }
            Ok(())
        })
    }

    fn delete_reservation(
        &self,
        subnet: Option<Cidr>,
        identifier: &ClientIdentifier,
    ) -> Result<(), DhcpError> {
        let op = "delete_reservation";
        let ctx = self.ctx(op);
        let who = describe_identifier(identifier);
        let matches = |entry: &Value| config::identifier_of(entry).as_ref() == Some(identifier);
        self.change(op, |dhcp4| {
            // Where the client has a reservation: global first, then each matching subnet.
            let global = dhcp4
                .get("reservations")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(matches));
            let places: Vec<_> = config::subnets(dhcp4)
                .into_iter()
                .filter(|(_, s)| subnet.is_none() || config::subnet_cidr(s) == subnet)
                .filter(|(_, s)| {
                    s.get("reservations")
                        .and_then(Value::as_array)
                        .is_some_and(|l| l.iter().any(matches))
                })
                .map(|(place, _)| place)
                .collect();
            let list = match (subnet, global, places.as_slice()) {
                (None, true, _) => dhcp4.get_mut("reservations"),
                (_, _, [place]) => {
                    config::subnet_mut(dhcp4, *place).and_then(|s| s.get_mut("reservations"))
                }
                (None, false, []) => None,
                (Some(cidr), _, []) => {
                    return Err(ctx.not_found(format!("a reservation for {who} in scope {cidr}")))
                }
                (None, false, _) => {
                    return Err(ctx.invalid(format!(
                        "{who} has reservations in {} scopes; name the scope",
                        places.len()
                    )))
                }
                (Some(_), _, _) => None,
            };
            let Some(list) = list.and_then(Value::as_array_mut) else {
                return Err(ctx.not_found(format!("a reservation for {who}")));
            };
            list.retain(|entry| !matches(entry));
            Ok(())
        })
    }

    fn list_leases(
        &self,
        subnet: Option<Cidr>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<LeasePage, DhcpError> {
        let op = "list_leases";
        let limit = page_limit(limit);
        let mut from = match parse_cursor(self.ctx(op), cursor)? {
            Some(IpAddr::V4(addr)) => addr.to_string(),
            Some(IpAddr::V6(addr)) => {
                return Err(self
                    .ctx(op)
                    .invalid(format!("the cursor {addr} is not an IPv4 address")))
            }
            None => "start".to_owned(),
        };
        let mut ids = None;
        let now = now_secs();
        let mut leases = Vec::new();
        loop {
            let answer = self.call(
                op,
                "lease4-get-page",
                Some(json!({ "from": from, "limit": limit })),
                &[RESULT_OK, RESULT_EMPTY],
            )?;
            let page = answer
                .arguments
                .as_ref()
                .and_then(|a| a.get("leases"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if answer.result == RESULT_EMPTY || page.is_empty() {
                return Ok(LeasePage {
                    leases,
                    next_cursor: None,
                });
            }
            if ids.is_none() {
                ids = Some(config::subnet_ids(&self.config_get(op)?));
            }
            let ids = ids.get_or_insert_with(Default::default);
            let mut last = None;
            for entry in &page {
                let Some(lease) = config::lease_of(entry, ids, now) else {
                    let label = format!("{op}: lease4-get-page");
                    return Err(self.ctx(&label).bad_answer(format!(
                        "a lease without a valid \"ip-address\": {}",
                        excerpt(&entry.to_string())
                    )));
                };
                last = Some(lease.address);
                if subnet.is_none() || subnet.is_some_and(|s| s.contains(lease.address)) {
                    leases.push(lease);
                    if leases.len() == limit {
                        return Ok(LeasePage {
                            leases,
                            next_cursor: last.map(|a| a.to_string()),
                        });
                    }
                }
            }
            if page.len() < limit {
                return Ok(LeasePage {
                    leases,
                    next_cursor: None,
                });
            }
            match last {
                Some(addr) => from = addr.to_string(),
                None => {
                    return Ok(LeasePage {
                        leases,
                        next_cursor: None,
                    })
                }
            }
        }
    }

    fn status(&self) -> ServerStatus {
        let op = "server_status";
        let mut status = ServerStatus {
            server: self.config.name.clone(),
            kind: ServerKind::Kea,
            running: false,
            version: None,
            uptime_secs: None,
            message: None,
        };
        match self.call(op, "status-get", None, &[RESULT_OK]) {
            Ok(answer) => {
                status.running = true;
                status.uptime_secs = answer
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("uptime"))
                    .and_then(Value::as_u64);
            }
            Err(err) => {
                status.message = Some(err.to_string());
                return status;
            }
        }
        match self.call(op, "version-get", None, &[RESULT_OK]) {
            Ok(answer) => status.version = Some(answer.text).filter(|v| !v.is_empty()),
            Err(err) => status.message = Some(err.to_string()),
        }
        status
    }
}
