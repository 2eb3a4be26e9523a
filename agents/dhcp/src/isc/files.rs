//! What the dhcpd driver reads from dhcpd's files: scopes and host declarations from
//! `dhcpd.conf` (following `include`), leases and OMAPI-made hosts from `dhcpd.leases`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOption, HexId, Lease, LeaseState, MacAddr, Pool, Scope,
};

use super::syntax::{self, identifier_bytes, parse_time, Statement, Token};

/// The deepest chain of `include` statements followed.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A `host` declaration, from the configuration or the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostDecl {
    /// The declaration's name (`host NAME { ... }`), which OMAPI looks hosts up by.
    pub name: String,
    /// `hardware ethernet`, else `uid` / `option dhcp-client-identifier`.
    pub identifier: Option<ClientIdentifier>,
    /// The first `fixed-address` that is an IP address.
    pub address: Option<IpAddr>,
    /// `option host-name`, `supersede host-name` or `ddns-hostname`.
    pub hostname: Option<String>,
    /// A lease-file entry `host NAME { deleted; }`: the host was removed through OMAPI.
    pub deleted: bool,
}

/// What the driver uses of `dhcpd.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigFile {
    /// `subnet` declarations, in file order.
    pub scopes: Vec<Scope>,
    /// `host` declarations, in file order.
    pub hosts: Vec<HostDecl>,
}

impl ConfigFile {
    /// The configured subnet that contains `addr`.
    pub fn subnet_of(&self, addr: IpAddr) -> Option<Cidr> {
        self.scopes
            .iter()
            .map(|s| s.subnet)
            .find(|c| c.contains(addr))
    }
}

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileError {
    pub path: PathBuf,
    pub detail: String,
}

fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|err| FileError {
            path: path.to_owned(),
            detail: err.to_string(),
        })
}

fn parse_file(path: &Path) -> Result<(String, Vec<Statement>), FileError> {
    let text = read(path)?;
    let statements = syntax::parse(&text).map_err(|err| FileError {
        path: path.to_owned(),
        detail: err.to_string(),
    })?;
    Ok((text, statements))
}

/// Reads `dhcpd.conf` at `path`.
pub(crate) fn read_config(path: &Path) -> Result<ConfigFile, FileError> {
    let mut config = ConfigFile::default();
    walk_config(path, &mut config, 0)?;
    Ok(config)
}

fn walk_config(path: &Path, config: &mut ConfigFile, depth: usize) -> Result<(), FileError> {
    let (_, statements) = parse_file(path)?;
    walk_statements(path, &statements, config, depth)
}

fn walk_statements(
    path: &Path,
    statements: &[Statement],
    config: &mut ConfigFile,
    depth: usize,
) -> Result<(), FileError> {
    for st in statements {
        if st.starts_with(&["subnet"]) && st.block.is_some() {
            if let Some(scope) = subnet_scope(st) {
                config.scopes.push(scope);
            }
            // Hosts may be declared inside a subnet.
            walk_statements(path, st.children(), config, depth)?;
        } else if st.starts_with(&["host"]) && st.block.is_some() {
            if let Some(host) = host_decl(st) {
                config.hosts.push(host);
            }
        } else if st.starts_with(&["shared-network"])
            || st.starts_with(&["group"])
            || st.starts_with(&["pool"])
        {
            walk_statements(path, st.children(), config, depth)?;
        } else if st.starts_with(&["include"]) {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(FileError {
                    path: path.to_owned(),
                    detail: format!(
                        "line {}: includes are nested more than {MAX_INCLUDE_DEPTH} deep",
                        st.line
                    ),
                });
            }
            if let Some(file) = st.tokens.get(1) {
                let file = PathBuf::from(file.text());
                let file = match (file.is_absolute(), path.parent()) {
                    (false, Some(dir)) => dir.join(file),
                    _ => file,
                };
                walk_config(&file, config, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Prefix length of a dotted netmask; `None` when its bits are not contiguous.
fn netmask_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let len = bits.leading_ones();
    if bits.checked_shl(len).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(len).ok()
}

/// A scope from `subnet A netmask M { ... }`.
fn subnet_scope(st: &Statement) -> Option<Scope> {
    let addr: Ipv4Addr = st.word(1)?.parse().ok()?;
    if !st.word(2)?.eq_ignore_ascii_case("netmask") {
        return None;
    }
    let len = netmask_len(st.word(3)?.parse().ok()?)?;
    let subnet = Cidr::new(IpAddr::V4(addr), len).ok()?;
    let mut pools = Vec::new();
    let mut options = Vec::new();
    let mut lease_time = None;
    collect_scope_items(
        st.children(),
        &mut pools,
        &mut options,
        &mut lease_time,
        true,
    );
    Some(Scope {
        subnet,
        name: None,
        pools,
        options,
        lease_time,
    })
}

fn collect_scope_items(
    statements: &[Statement],
    pools: &mut Vec<Pool>,
    options: &mut Vec<DhcpOption>,
    lease_time: &mut Option<u32>,
    top: bool,
) {
    for st in statements {
        if st.starts_with(&["range"]) {
            let words: Vec<&str> = st
                .tokens
                .iter()
                .skip(1)
                .filter_map(Token::word)
                .filter(|w| !w.eq_ignore_ascii_case("dynamic-bootp"))
                .collect();
            let ends: Option<Vec<IpAddr>> = words.iter().map(|w| w.parse().ok()).collect();
            match ends.as_deref() {
                Some([one]) => pools.push(Pool {
                    from: *one,
                    to: *one,
                }),
                Some([from, to]) => pools.push(Pool {
                    from: *from,
                    to: *to,
                }),
                _ => {}
            }
        } else if st.starts_with(&["pool"]) {
            collect_scope_items(st.children(), pools, options, lease_time, false);
        } else if top && st.starts_with(&["option"]) {
            if let Some(option) = option_of(st) {
                options.push(option);
            }
        } else if top && st.starts_with(&["default-lease-time"]) {
            *lease_time = st.word(1).and_then(|w| w.parse().ok());
        }
    }
}

/// The codes of common DHCPv4 options, so dhcpd's scopes carry them like Kea's do.
fn option_code(name: &str) -> Option<u16> {
    Some(match name {
        "subnet-mask" => 1,
        "time-offset" => 2,
        "routers" => 3,
        "domain-name-servers" => 6,
        "host-name" => 12,
        "domain-name" => 15,
        "interface-mtu" => 26,
        "broadcast-address" => 28,
        "static-routes" => 33,
        "ntp-servers" => 42,
        "netbios-name-servers" => 44,
        "tftp-server-name" => 66,
        "bootfile-name" => 67,
        "domain-search" => 119,
        "classless-static-routes" => 121,
        _ => return None,
    })
}

/// An option from `option NAME VALUE...;` (not an option definition `option x code N = ...`).
fn option_of(st: &Statement) -> Option<DhcpOption> {
    let name = st.word(1)?;
    if st.word(2).is_some_and(|w| w.eq_ignore_ascii_case("code")) {
        return None;
    }
    let mut value = String::new();
    for token in st.tokens.iter().skip(2) {
        match token {
            Token::Comma => value.push(','),
            other => {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(&other.text());
            }
        }
    }
    Some(DhcpOption {
        code: option_code(name),
        name: Some(name.to_owned()),
        value,
    })
}

/// The host name a host declaration gives its client.
fn host_name_of(st: &Statement) -> Option<String> {
    let value = if st.starts_with(&["option", "host-name"])
        || st.starts_with(&["supersede", "host-name"])
    {
        st.tokens
            .iter()
            .skip(2)
            .find(|t| !matches!(t, Token::Word(w) if w == "="))
    } else if st.starts_with(&["ddns-hostname"]) {
        st.tokens.get(1)
    } else {
        None
    }?;
    Some(value.text()).filter(|s| !s.is_empty())
}

/// A host from `host NAME { ... }`.
pub(crate) fn host_decl(st: &Statement) -> Option<HostDecl> {
    let name = st.tokens.get(1)?.text();
    let mut host = HostDecl {
        name,
        identifier: None,
        address: None,
        hostname: None,
        deleted: false,
    };
    let mut mac = None;
    let mut client_id = None;
    for item in st.children() {
        if item.starts_with(&["hardware", "ethernet"]) {
            mac = item.word(2).and_then(|w| MacAddr::from_str(w).ok());
        } else if item.starts_with(&["uid"]) {
            client_id = item.tokens.get(1).and_then(identifier_bytes);
        } else if item.starts_with(&["option", "dhcp-client-identifier"]) {
            client_id = item.tokens.get(2).and_then(identifier_bytes);
        } else if item.starts_with(&["fixed-address"]) && host.address.is_none() {
            host.address = item
                .tokens
                .iter()
                .skip(1)
                .filter_map(Token::word)
                .find_map(|w| w.parse().ok());
        } else if item.starts_with(&["deleted"]) {
            host.deleted = true;
        } else if let Some(name) = host_name_of(item) {
            host.hostname = Some(name);
        }
    }
    host.identifier = match (mac, client_id) {
        (Some(mac), _) => Some(ClientIdentifier::Mac(mac)),
        (None, Some(id)) => HexId::new(id).ok().map(ClientIdentifier::ClientId),
        (None, None) => None,
    };
    Some(host)
}

/// What the driver uses of `dhcpd.leases`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaseFile {
    /// The last lease block of each address, by address.
    pub leases: BTreeMap<IpAddr, Lease>,
    /// `host` entries (made or deleted through OMAPI), in file order.
    pub hosts: Vec<HostDecl>,
    /// The dhcpd version from the file's header (`4.4.3-P1`).
    pub version: Option<String>,
}

/// Reads `dhcpd.leases` at `path`; `now` (seconds since the epoch) turns active leases whose end
/// has passed into expired ones. Subnets are filled from `config`.
pub(crate) fn read_leases(
    path: &Path,
    config: &ConfigFile,
    now: u64,
) -> Result<LeaseFile, FileError> {
    let (text, statements) = parse_file(path)?;
    let mut file = LeaseFile {
        version: version_in(&text),
        ..LeaseFile::default()
    };
    for st in &statements {
        if st.starts_with(&["lease"]) && st.block.is_some() {
            if let Some(lease) = lease_of(st, config, now) {
                file.leases.insert(lease.address, lease);
            }
        } else if st.starts_with(&["host"]) && st.block.is_some() {
            if let Some(host) = host_decl(st) {
                file.hosts.push(host);
            }
        }
    }
    Ok(file)
}

/// The dhcpd version in a lease file's header comment
/// (`# This lease file was written by isc-dhcp-4.4.3-P1`).
fn version_in(text: &str) -> Option<String> {
    text.lines().take(10).find_map(|line| {
        line.split_once("written by isc-dhcp-")
            .map(|(_, v)| v.trim().to_owned())
    })
}

/// The dhcpd version from the header of the lease file at `path`, reading only its start.
pub(crate) fn read_version(path: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    std::fs::File::open(path)
        .ok()?
        .take(1024)
        .read_to_end(&mut head)
        .ok()?;
    version_in(&String::from_utf8_lossy(&head))
}

/// A lease from `lease A { ... }`.
fn lease_of(st: &Statement, config: &ConfigFile, now: u64) -> Option<Lease> {
    let address: IpAddr = st.word(1)?.parse().ok()?;
    let mut ends = None;
    let mut binding = None;
    let mut mac = None;
    let mut client_id = None;
    let mut hostname = None;
    for item in st.children() {
        if item.starts_with(&["ends"]) {
            ends = parse_time(item.tokens.get(1..).unwrap_or_default()).ok();
        } else if item.starts_with(&["binding", "state"]) {
            binding = item.word(2).map(str::to_ascii_lowercase);
        } else if item.starts_with(&["hardware", "ethernet"]) {
            mac = item.word(2).and_then(|w| MacAddr::from_str(w).ok());
        } else if item.starts_with(&["uid"]) {
            client_id = item
                .tokens
                .get(1)
                .and_then(identifier_bytes)
                .and_then(|b| HexId::new(b).ok());
        } else if item.starts_with(&["client-hostname"]) {
            hostname = item
                .tokens
                .get(1)
                .map(Token::text)
                .filter(|h| !h.is_empty());
        }
    }
    let expires = ends.flatten();
    let ended = expires.is_some_and(|e| e <= now);
    let state = match binding.as_deref() {
        Some("active") | Some("bootp") | None if ended => LeaseState::Expired,
        Some("active") | Some("bootp") | None => LeaseState::Active,
        Some("expired") => LeaseState::Expired,
        Some("released") => LeaseState::Released,
        Some("abandoned") => LeaseState::Declined,
        Some(_) => LeaseState::Free,
    };
    Some(Lease {
        address,
        subnet: config.subnet_of(address),
        mac,
        client_id,
        hostname,
        expires,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
authoritative;
default-lease-time 600; max-lease-time 3600;
omapi-port 7911;
key omapi_key { algorithm hmac-sha256; secret "c2VjcmV0"; };
option domain-name "example.test";
option space.foo code 250 = text;
subnet 192.0.2.0 netmask 255.255.255.0 {
  range 192.0.2.100 192.0.2.199;
  range dynamic-bootp 192.0.2.210;
  option routers 192.0.2.1;
  option domain-name-servers 192.0.2.1, 192.0.2.2;
  option domain-name "lab.example.test";
  default-lease-time 900;
  pool { range 192.0.2.220 192.0.2.229; }
  host inside { hardware ethernet 02:00:00:00:00:43; fixed-address 192.0.2.43; }
}
shared-network net {
  subnet 198.51.100.0 netmask 255.255.255.128 { }
}
group {
  host fixed42 {
    hardware ethernet 02:00:00:00:00:42;
    fixed-address 192.0.2.42;
    option host-name "printer";
  }
  host byid { option dhcp-client-identifier 01:02:00:00:00:00:44; fixed-address 192.0.2.44; }
}
subnet6 2001:db8::/64 { }
"#;

    const LEASES: &str = r#"# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.4.3-P1

# authoring-byte-order entry is generated, DO NOT DELETE
authoring-byte-order little-endian;

server-duid "\000\001\000\0012\231\270\334J?{5\347\265";

lease 192.0.2.100 {
  starts 3 2026/11/25 15:18:53;
  ends 3 2026/11/25 15:28:53;
  binding state free;
}
lease 192.0.2.101 {
  starts 3 2026/11/25 15:18:53;
  ends never;
  binding state abandoned;
}
lease 192.0.2.100 {
  starts 3 2026/11/25 15:18:53;
  ends 3 2026/11/25 15:28:53;
  cltt 3 2026/11/25 15:18:53;
  binding state active;
  next binding state free;
  rewind binding state free;
  hardware ethernet 02:00:00:00:00:55;
  uid "\001\002\000\000\000\000U";
  set vendor-class-identifier = "udhcp 1.35.0";
  client-hostname "cli55";
  on expiry { set x = "y"; }
}
host ipam77 {
  dynamic;
  hardware ethernet 02:00:00:00:00:77;
  fixed-address 192.0.2.77;
        supersede host-name = "h77";
}
host ipam77 {
  dynamic;
  deleted;
}
"#;

    fn write_temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ipam-agent-dhcp-unit-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn config_scopes_and_hosts() {
        let path = write_temp("dhcpd.conf", CONF);
        let config = read_config(&path).unwrap();
        assert_eq!(config.scopes.len(), 2);
        let lab = &config.scopes[0];
        assert_eq!(lab.subnet.to_string(), "192.0.2.0/24");
        let pools: Vec<String> = lab
            .pools
            .iter()
            .map(|p| format!("{}-{}", p.from, p.to))
            .collect();
        assert_eq!(
            pools,
            [
                "192.0.2.100-192.0.2.199",
                "192.0.2.210-192.0.2.210",
                "192.0.2.220-192.0.2.229"
            ]
        );
        let options: Vec<(Option<u16>, &str)> = lab
            .options
            .iter()
            .map(|o| (o.code, o.value.as_str()))
            .collect();
        assert_eq!(
            options,
            [
                (Some(3), "192.0.2.1"),
                (Some(6), "192.0.2.1, 192.0.2.2"),
                (Some(15), "lab.example.test")
            ]
        );
        assert_eq!(lab.lease_time, Some(900));
        assert_eq!(config.scopes[1].subnet.to_string(), "198.51.100.0/25");
        let names: Vec<&str> = config.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["inside", "fixed42", "byid"]);
        assert_eq!(config.hosts[1].hostname.as_deref(), Some("printer"));
        assert_eq!(
            config.hosts[2].identifier,
            Some(ClientIdentifier::ClientId(
                "01:02:00:00:00:00:44".parse().unwrap()
            ))
        );
        assert_eq!(
            config.subnet_of("192.0.2.77".parse().unwrap()),
            Some(lab.subnet)
        );
    }

    #[test]
    fn includes_are_followed_and_bounded() {
        let inner = write_temp("inner.conf", "subnet 10.0.0.0 netmask 255.0.0.0 { }");
        let outer = write_temp("outer.conf", &format!("include \"{}\";", inner.display()));
        assert_eq!(read_config(&outer).unwrap().scopes.len(), 1);
        let looped = write_temp("loop.conf", "include \"loop.conf\";");
        assert!(read_config(&looped).unwrap_err().detail.contains("nested"));
        assert!(read_config(Path::new("/nonexistent/dhcpd.conf")).is_err());
    }

    #[test]
    fn leases_last_block_wins() {
        let conf_path = write_temp("dhcpd2.conf", CONF);
        let config = read_config(&conf_path).unwrap();
        let path = write_temp("dhcpd.leases", LEASES);
        let now = 1_795_619_933 + 60;
        let file = read_leases(&path, &config, now).unwrap();
        assert_eq!(file.version.as_deref(), Some("4.4.3-P1"));
        assert_eq!(read_version(&path).as_deref(), Some("4.4.3-P1"));
        assert_eq!(file.leases.len(), 2);
        let lease = &file.leases[&"192.0.2.100".parse::<IpAddr>().unwrap()];
        assert_eq!(lease.state, LeaseState::Active);
        assert_eq!(lease.mac.unwrap().to_string(), "02:00:00:00:00:55");
        assert_eq!(
            lease.client_id.as_ref().unwrap().to_string(),
            "01:02:00:00:00:00:55"
        );
        assert_eq!(lease.hostname.as_deref(), Some("cli55"));
        assert_eq!(lease.expires, Some(1_795_619_933 + 600));
        assert_eq!(lease.subnet.unwrap().to_string(), "192.0.2.0/24");
        let later = read_leases(&path, &config, now + 3600).unwrap();
        assert_eq!(
            later.leases[&"192.0.2.100".parse::<IpAddr>().unwrap()].state,
            LeaseState::Expired
        );
        let abandoned = &file.leases[&"192.0.2.101".parse::<IpAddr>().unwrap()];
        assert_eq!(
            (abandoned.state, abandoned.expires),
            (LeaseState::Declined, None)
        );
        assert_eq!(file.hosts.len(), 2);
        assert_eq!(file.hosts[0].hostname.as_deref(), Some("h77"));
        assert_eq!(file.hosts[0].address, Some("192.0.2.77".parse().unwrap()));
        assert!(file.hosts[1].deleted);
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask_len("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(netmask_len("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(netmask_len("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(netmask_len("255.0.255.0".parse().unwrap()), None);
    }
}
