//! The ISC dhcpd driver: [`IscDhcpdServer`].

mod files;
mod omapi;
mod syntax;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOption, Reservation, Scope, ServerKind, ServerStatus,
};

use crate::error::{Ctx, DhcpError};
use crate::server::{describe_identifier, page_limit, parse_cursor, DhcpServer, LeasePage};
use files::{ConfigFile, HostDecl};
use omapi::OmapiError;

/// The secret of an OMAPI key (`key NAME { algorithm hmac-sha256; secret "..."; }` in
/// dhcpd.conf, named by `omapi-key NAME;`). Only HMAC-SHA256 is supported: dhcpd's default
/// HMAC-MD5 is not. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OmapiKey {
    /// The key's name.
    pub name: String,
    secret: Vec<u8>,
}

impl OmapiKey {
    /// A key from its name and raw secret bytes.
    pub fn new(name: impl Into<String>, secret: Vec<u8>) -> OmapiKey {
        OmapiKey {
            name: name.into(),
            secret,
        }
    }

    /// A key from its name and its secret as written in dhcpd.conf (base64).
    pub fn from_base64(name: impl Into<String>, secret: &str) -> Result<OmapiKey, InvalidKeyError> {
        let name = name.into();
        match base64::engine::general_purpose::STANDARD.decode(secret.trim()) {
            Ok(secret) if !secret.is_empty() => Ok(OmapiKey { name, secret }),
            _ => Err(InvalidKeyError { name }),
        }
    }
}

impl fmt::Debug for OmapiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OmapiKey")
            .field("name", &self.name)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// An OMAPI key whose secret is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret of the OMAPI key {name} is not non-empty base64 (copy it from dhcpd.conf)")]
pub struct InvalidKeyError {
    /// The key's name.
    pub name: String,
}

/// How to reach and read one ISC dhcpd (DHCPv4) server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscDhcpdConfig {
    /// The name the agent knows the server by.
    pub name: String,
    /// dhcpd's configuration file (`-cf`, default `/etc/dhcp/dhcpd.conf`); scopes and static
    /// hosts are read from it. The agent needs read access.
    pub config_file: PathBuf,
    /// dhcpd's lease file (`-lf`, default `/var/lib/dhcp/dhcpd.leases`); leases and hosts made
    /// through OMAPI are read from it. The agent needs read access.
    pub leases_file: PathBuf,
    /// dhcpd's OMAPI address, `host:port` (`omapi-port`; dhcpd listens on every address).
    pub omapi_addr: String,
    /// The key named by `omapi-key` in dhcpd.conf.
    pub key: OmapiKey,
    /// The longest wait for one OMAPI read or write (default 10 s).
    pub timeout: Duration,
}

impl IscDhcpdConfig {
    /// A configuration with the default timeout.
    pub fn new(
        name: impl Into<String>,
        config_file: impl Into<PathBuf>,
        leases_file: impl Into<PathBuf>,
        omapi_addr: impl Into<String>,
        key: OmapiKey,
    ) -> IscDhcpdConfig {
        IscDhcpdConfig {
            name: name.into(),
            config_file: config_file.into(),
            leases_file: leases_file.into(),
            omapi_addr: omapi_addr.into(),
            key,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets the longest wait for one OMAPI read or write.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The driver for ISC dhcpd 4.x (DHCPv4; tested with 4.4.3-P1).
///
/// * **Scopes** are read from the configuration file (`subnet ... netmask ...` with their
///   `range`s, `pool` ranges, `option`s and `default-lease-time`, inside `shared-network` and
///   `group` too, following `include`). dhcpd cannot change subnets or options at run time, so
///   creating, updating or deleting a scope and setting options return
///   [`DhcpError::Unsupported`]: edit dhcpd.conf and restart dhcpd.
/// * **Reservations** are `host` objects: read from the configuration file and the lease file
///   (where dhcpd records hosts made or deleted through OMAPI), created and deleted through
///   OMAPI. A new host is named after the reservation's host name, or `ipam-<identifier hex>`
///   without one; its host name is given to the client with `supersede host-name`.
/// * **Leases** are read from the lease file: the last block of each address wins.
/// * **Status** opens an authenticated OMAPI session; the version comes from the lease file's
///   header.
#[derive(Debug)]
pub struct IscDhcpdServer {
    config: IscDhcpdConfig,
    /// Held across each check-then-change of the reservations.
    change_lock: Mutex<()>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The hex of an identifier, for host names.
fn identifier_hex(identifier: &ClientIdentifier) -> String {
    let bytes: &[u8] = match identifier {
        ClientIdentifier::Mac(mac) => &mac.0,
        ClientIdentifier::ClientId(id) | ClientIdentifier::Duid(id) => id.as_bytes(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IscDhcpdServer {
    /// A driver for the server `config` describes. Nothing is read or contacted until the
    /// first call.
    pub fn new(config: IscDhcpdConfig) -> IscDhcpdServer {
        IscDhcpdServer {
            config,
            change_lock: Mutex::new(()),
        }
    }

    /// The configuration this driver was made with.
    pub fn config(&self) -> &IscDhcpdConfig {
        &self.config
    }

    fn ctx<'a>(&'a self, command: &'a str) -> Ctx<'a> {
        Ctx::new(&self.config.name, command)
    }

    fn read_config(&self, op: &str) -> Result<ConfigFile, DhcpError> {
        let label = format!("{op}: read configuration file");
        files::read_config(&self.config.config_file)
            .map_err(|err| self.ctx(&label).file(err.path, err.detail))
    }

    fn read_leases(&self, op: &str, config: &ConfigFile) -> Result<files::LeaseFile, DhcpError> {
        let label = format!("{op}: read leases file");
        files::read_leases(&self.config.leases_file, config, now_secs())
            .map_err(|err| self.ctx(&label).file(err.path, err.detail))
    }

    /// The hosts in force: the configuration's, then the lease file's entries in order (a later
    /// entry for a name replaces an earlier one; `deleted` removes it).
    fn hosts(&self, op: &str, config: &ConfigFile) -> Result<Vec<HostDecl>, DhcpError> {
        let leases = self.read_leases(op, config)?;
        let mut hosts: Vec<HostDecl> = config.hosts.clone();
        for host in leases.hosts {
            hosts.retain(|h| h.name != host.name);
            if !host.deleted {
                hosts.push(host);
            }
        }
        Ok(hosts)
    }

    fn reservations(
        &self,
        op: &str,
        config: &ConfigFile,
    ) -> Result<Vec<(HostDecl, Reservation)>, DhcpError> {
        Ok(self
            .hosts(op, config)?
            .into_iter()
            .filter_map(|host| {
                let reservation = Reservation {
                    subnet: config.subnet_of(host.address?),
                    identifier: host.identifier.clone()?,
                    address: host.address?,
                    hostname: host.hostname.clone(),
                };
                Some((host, reservation))
            })
            .collect())
    }

    fn connect(&self, label: &str) -> Result<omapi::Client, DhcpError> {
        omapi::Client::connect(
            &self.config.omapi_addr,
            &self.config.key.name,
            &self.config.key.secret,
            self.config.timeout,
        )
        .map_err(|err| self.omapi_error(label, err))
    }

    /// Maps an OMAPI failure to a driver error.
    fn omapi_error(&self, label: &str, err: OmapiError) -> DhcpError {
        let ctx = self.ctx(label);
        let addr = &self.config.omapi_addr;
        match err {
            OmapiError::Connect(err) => ctx.down(format!("connecting to OMAPI at {addr}: {err}")),
            OmapiError::Io(err) => ctx.io(&err, self.config.timeout),
            OmapiError::Closed { after_signed: true } => ctx.refused(format!(
                "dhcpd closed the OMAPI connection on the first signed message: the secret of key \
                 {} is wrong",
                self.config.key.name
            )),
            OmapiError::Closed {
                after_signed: false,
            } => ctx.down(format!("the OMAPI connection to {addr} was closed")),
            OmapiError::Protocol(detail) => ctx.bad_answer(detail),
            OmapiError::BadSignature => ctx.refused(format!(
                "an answer from {addr} is not signed with key {}: the secret is wrong, or \
                 something other than dhcpd answered",
                self.config.key.name
            )),
            OmapiError::Status { result, message } => {
                let text = OmapiError::Status {
                    result,
                    message: message.clone(),
                }
                .to_string();
                match result {
                    omapi::ISC_R_EXISTS => ctx.exists(format!("the host ({text})")),
                    omapi::ISC_R_NOTFOUND if label.ends_with("authenticator") => {
                        ctx.refused(format!(
                            "dhcpd has no OMAPI key {} with algorithm hmac-sha256 ({text})",
                            self.config.key.name
                        ))
                    }
                    omapi::ISC_R_NOTFOUND => ctx.not_found(format!("the host ({text})")),
                    omapi::DHCP_R_INVALIDKEY | omapi::DHCP_R_KEY_UNKNOWN => ctx.refused(format!(
                        "dhcpd rejected the signature made with key {}: its secret is wrong \
                             ({text})",
                        self.config.key.name
                    )),
                    _ => ctx.refused(text),
                }
            }
        }
    }

    fn unsupported(&self, op: &str) -> DhcpError {
        self.ctx(op).unsupported(
            "ISC dhcpd cannot change subnets, pools or options at run time (OMAPI manages only \
             hosts and leases); edit dhcpd.conf and restart dhcpd",
        )
    }
}

impl DhcpServer for IscDhcpdServer {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> ServerKind {
        ServerKind::IscDhcpd
    }

    fn list_scopes(&self) -> Result<Vec<Scope>, DhcpError> {
        Ok(self.read_config("list_scopes")?.scopes)
    }

    fn create_scope(&self, _scope: &Scope) -> Result<(), DhcpError> {
        Err(self.unsupported("create_scope"))
    }

    fn update_scope(&self, _scope: &Scope) -> Result<(), DhcpError> {
        Err(self.unsupported("update_scope"))
    }

    fn delete_scope(&self, _subnet: Cidr) -> Result<(), DhcpError> {
        Err(self.unsupported("delete_scope"))
    }

    fn set_options(&self, _subnet: Option<Cidr>, _options: &[DhcpOption]) -> Result<(), DhcpError> {
        Err(self.unsupported("set_options"))
    }

    fn list_reservations(&self, subnet: Option<Cidr>) -> Result<Vec<Reservation>, DhcpError> {
        let op = "list_reservations";
        let config = self.read_config(op)?;
        if let Some(cidr) = subnet {
            if !config.scopes.iter().any(|s| s.subnet == cidr) {
                return Err(self.ctx(op).not_found(format!("scope {cidr}")));
            }
        }
        Ok(self
            .reservations(op, &config)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| subnet.is_none() || r.subnet == subnet)
            .collect())
    }

    fn add_reservation(&self, reservation: &Reservation) -> Result<(), DhcpError> {
        let op = "add_reservation";
        let ctx = self.ctx(op);
        let IpAddr::V4(v4) = reservation.address else {
            return Err(ctx.invalid(format!(
                "{} is an IPv6 address; this driver manages dhcpd's DHCPv4 service",
                reservation.address
            )));
        };
        let _guard = self
            .change_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let config = self.read_config(op)?;
        match reservation.subnet {
            Some(cidr) if !config.scopes.iter().any(|s| s.subnet == cidr) => {
                return Err(ctx.not_found(format!("scope {cidr}")))
            }
            Some(cidr) if !cidr.contains(reservation.address) => {
                return Err(ctx.invalid(format!(
                    "{} does not lie in the scope {cidr}",
                    reservation.address
                )))
            }
            None if config.subnet_of(reservation.address).is_none() => {
                return Err(ctx.invalid(format!(
                    "{} lies in none of the subnets in {}, so dhcpd could never hand it out",
                    reservation.address,
                    self.config.config_file.display()
                )))
            }
            _ => {}
        }
        let name = reservation
            .hostname
            .clone()
            .unwrap_or_else(|| format!("ipam-{}", identifier_hex(&reservation.identifier)));
        let hosts = self.hosts(op, &config)?;
        for host in &hosts {
            if host.identifier.as_ref() == Some(&reservation.identifier)
                || host.address == Some(reservation.address)
            {
                return Err(ctx.exists(format!(
                    "host {} reserving {} for {}",
                    host.name,
                    host.address
                        .map_or_else(|| "no address".to_owned(), |a| a.to_string()),
                    host.identifier
                        .as_ref()
                        .map_or_else(|| "no identifier".to_owned(), describe_identifier)
                )));
            }
            if host.name == name {
                return Err(ctx.exists(format!("a host named {name} (for another client)")));
            }
        }
        let mut object = vec![("name".to_owned(), name.as_bytes().to_vec())];
        match &reservation.identifier {
            ClientIdentifier::Mac(mac) => {
                object.push(("hardware-address".into(), mac.0.to_vec()));
                object.push(("hardware-type".into(), omapi::int_value(1)));
            }
            ClientIdentifier::ClientId(id) => {
                object.push(("dhcp-client-identifier".into(), id.as_bytes().to_vec()));
            }
            ClientIdentifier::Duid(_) => {
                return Err(ctx.invalid(
                    "a DUID identifies DHCPv6 clients; dhcpd -4 reserves by MAC or client id",
                ))
            }
        }
        object.push(("ip-address".into(), v4.octets().to_vec()));
        if let Some(hostname) = &reservation.hostname {
            // validate_dns_name (in Reservation::validate) keeps quotes and backslashes out.
            object.push((
                "statements".into(),
                format!("supersede host-name = \"{hostname}\";").into_bytes(),
            ));
        }
        let label = format!("{op}: OMAPI open host {name} (create)");
        let mut client = self.connect(&format!("{op}: OMAPI open authenticator"))?;
        client
            .open("host", object, true)
            .map_err(|err| self.omapi_error(&label, err))?;
        Ok(())
    }

    fn delete_reservation(
        &self,
        subnet: Option<Cidr>,
        identifier: &ClientIdentifier,
    ) -> Result<(), DhcpError> {
        let op = "delete_reservation";
        let ctx = self.ctx(op);
        let who = describe_identifier(identifier);
        let _guard = self
            .change_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let config = self.read_config(op)?;
        let found: Vec<HostDecl> = self
            .reservations(op, &config)?
            .into_iter()
            .filter(|(_, r)| {
                &r.identifier == identifier && (subnet.is_none() || r.subnet == subnet)
            })
            .map(|(host, _)| host)
            .collect();
        let host = match found.as_slice() {
            [] => {
                return Err(ctx.not_found(match subnet {
                    Some(cidr) => format!("a reservation for {who} in scope {cidr}"),
                    None => format!("a reservation for {who}"),
                }))
            }
            [host] => host,
            _ => {
                return Err(ctx.invalid(format!(
                    "{who} has {} host declarations; name the scope",
                    found.len()
                )))
            }
        };
        let mut client = self.connect(&format!("{op}: OMAPI open authenticator"))?;
        let label = format!("{op}: OMAPI open host {}", host.name);
        let opened = client
            .open(
                "host",
                vec![("name".to_owned(), host.name.as_bytes().to_vec())],
                false,
            )
            .map_err(|err| self.omapi_error(&label, err))?;
        let label = format!("{op}: OMAPI delete host {}", host.name);
        client
            .delete(opened.handle)
            .map_err(|err| self.omapi_error(&label, err))
    }

    fn list_leases(
        &self,
        subnet: Option<Cidr>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<LeasePage, DhcpError> {
        let op = "list_leases";
        let after = parse_cursor(self.ctx(op), cursor)?;
        let limit = page_limit(limit);
        let config = self.read_config(op)?;
        let file = self.read_leases(op, &config)?;
        let mut candidates = file
            .leases
            .into_values()
            .filter(|l| after.is_none_or(|a| l.address > a))
            .filter(|l| subnet.is_none_or(|s| s.contains(l.address)));
        let leases: Vec<_> = candidates.by_ref().take(limit).collect();
        let next_cursor = match (leases.last(), candidates.next()) {
            (Some(last), Some(_)) => Some(last.address.to_string()),
            _ => None,
        };
        Ok(LeasePage {
            leases,
            next_cursor,
        })
    }

    fn status(&self) -> ServerStatus {
        let op = "server_status";
        let mut status = ServerStatus {
            server: self.config.name.clone(),
            kind: ServerKind::IscDhcpd,
            running: false,
            version: None,
            uptime_secs: None,
            message: None,
        };
        status.version = files::read_version(&self.config.leases_file);
        // A signed lookup proves that dhcpd accepts the key, not only that it listens.
        let probe = self
            .connect(&format!("{op}: OMAPI open authenticator"))
            .and_then(|mut c| {
                let label = format!("{op}: OMAPI open host (probe)");
                match c.open(
                    "host",
                    vec![("name".to_owned(), b"ipam-agent-status-probe".to_vec())],
                    false,
                ) {
                    Ok(_)
                    | Err(OmapiError::Status {
                        result: omapi::ISC_R_NOTFOUND,
                        ..
                    }) => Ok(()),
                    Err(err) => Err(self.omapi_error(&label, err)),
                }
            });
        match probe {
            Ok(()) => status.running = true,
            Err(err) => status.message = Some(err.to_string()),
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_their_secret() {
        let key = OmapiKey::from_base64("omapi_key", "c2VjcmV0").unwrap();
        assert_eq!(key.secret, b"secret");
        assert!(
            !format!("{key:?}").contains("c2VjcmV0") && !format!("{key:?}").contains("secret\"")
        );
        assert!(OmapiKey::from_base64("k", "not base64!").is_err());
        assert!(OmapiKey::from_base64("k", "").is_err());
    }

    #[test]
    fn scope_changes_are_unsupported() {
        let server = IscDhcpdServer::new(IscDhcpdConfig::new(
            "dhcpd1",
            "/nonexistent/dhcpd.conf",
            "/nonexistent/dhcpd.leases",
            "127.0.0.1:1",
            OmapiKey::new("k", b"s".to_vec()),
        ));
        let err = server
            .delete_scope("192.0.2.0/24".parse().unwrap())
            .unwrap_err();
        assert!(matches!(err, DhcpError::Unsupported { .. }));
        assert!(err.to_string().contains("dhcpd1") && err.to_string().contains("restart dhcpd"));
        assert!(matches!(server.list_scopes(), Err(DhcpError::File { .. })));
        assert_eq!(
            identifier_hex(&ClientIdentifier::Mac("02:00:00:00:00:77".parse().unwrap())),
            "020000000077"
        );
    }
}
