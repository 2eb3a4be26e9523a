//! Reading and editing kea-dhcp4's `Dhcp4` configuration (the JSON of `config-get`): subnets,
//! pools, options and reservations, and lease entries of `lease4-get-page`. Pure functions on
//! `serde_json` values; everything not named here is left as it is.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOption, Lease, LeaseState, MacAddr, Pool, Reservation, Scope,
};
use serde_json::{json, Map, Value};

use ipam_agent_proto::HexId;

/// The `Dhcp4` object.
pub(crate) type Dhcp4 = Map<String, Value>;

/// Where a subnet sits in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubnetPlace {
    /// `Dhcp4.subnet4[i]`.
    TopLevel(usize),
    /// `Dhcp4.shared-networks[n].subnet4[i]`.
    Shared(usize, usize),
}

/// Every subnet with its place, top-level ones first, then those of shared networks.
pub(crate) fn subnets(dhcp4: &Dhcp4) -> Vec<(SubnetPlace, &Map<String, Value>)> {
    let mut out = Vec::new();
    if let Some(list) = dhcp4.get("subnet4").and_then(Value::as_array) {
        for (i, s) in list.iter().enumerate() {
            if let Some(s) = s.as_object() {
                out.push((SubnetPlace::TopLevel(i), s));
            }
        }
    }
    if let Some(nets) = dhcp4.get("shared-networks").and_then(Value::as_array) {
        for (n, net) in nets.iter().enumerate() {
            if let Some(list) = net.get("subnet4").and_then(Value::as_array) {
                for (i, s) in list.iter().enumerate() {
                    if let Some(s) = s.as_object() {
                        out.push((SubnetPlace::Shared(n, i), s));
                    }
                }
            }
        }
    }
    out
}

/// The place of the subnet whose prefix is `cidr`.
pub(crate) fn find_subnet(dhcp4: &Dhcp4, cidr: Cidr) -> Option<SubnetPlace> {
    subnets(dhcp4)
        .into_iter()
        .find(|(_, s)| subnet_cidr(s) == Some(cidr))
        .map(|(place, _)| place)
}

/// The place of the subnet that contains `addr`.
pub(crate) fn subnet_containing(dhcp4: &Dhcp4, addr: IpAddr) -> Option<(SubnetPlace, Cidr)> {
    subnets(dhcp4).into_iter().find_map(|(place, s)| {
        let cidr = subnet_cidr(s)?;
        cidr.contains(addr).then_some((place, cidr))
    })
}

/// The list holding the subnet at `place`, and its index in it.
fn subnet_list_mut(dhcp4: &mut Dhcp4, place: SubnetPlace) -> Option<(&mut Vec<Value>, usize)> {
    match place {
        SubnetPlace::TopLevel(i) => Some((dhcp4.get_mut("subnet4")?.as_array_mut()?, i)),
        SubnetPlace::Shared(n, i) => Some((
            dhcp4
                .get_mut("shared-networks")?
                .as_array_mut()?
                .get_mut(n)?
                .get_mut("subnet4")?
                .as_array_mut()?,
            i,
        )),
    }
}

/// The subnet at `place`, to edit.
pub(crate) fn subnet_mut(dhcp4: &mut Dhcp4, place: SubnetPlace) -> Option<&mut Map<String, Value>> {
    let (list, i) = subnet_list_mut(dhcp4, place)?;
    list.get_mut(i)?.as_object_mut()
}

/// Removes the subnet at `place`.
pub(crate) fn remove_subnet(dhcp4: &mut Dhcp4, place: SubnetPlace) -> bool {
    match subnet_list_mut(dhcp4, place) {
        Some((list, i)) if i < list.len() => {
            list.remove(i);
            true
        }
        _ => false,
    }
}

/// The next free subnet id: one more than the largest in use (Kea requires unique ids; existing
/// ids are never changed, since leases refer to them).
pub(crate) fn next_subnet_id(dhcp4: &Dhcp4) -> u64 {
    subnets(dhcp4)
        .iter()
        .filter_map(|(_, s)| s.get("id").and_then(Value::as_u64))
        .max()
        .unwrap_or(0)
        + 1
}

/// Appends a subnet to `Dhcp4.subnet4`.
pub(crate) fn push_subnet(dhcp4: &mut Dhcp4, subnet: Map<String, Value>) {
    let list = dhcp4
        .entry("subnet4")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(list) = list.as_array_mut() {
        list.push(Value::Object(subnet));
    }
}

/// Parses Kea's `"192.0.2.0/24"`; host bits, if any, are cleared.
pub(crate) fn parse_prefix(text: &str) -> Option<Cidr> {
    let (addr, len) = text.trim().split_once('/')?;
    let addr: Ipv4Addr = addr.trim().parse().ok()?;
    let len: u8 = len.trim().parse().ok()?;
    if len > 32 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Cidr::new(IpAddr::V4(Ipv4Addr::from(u32::from(addr) & mask)), len).ok()
}

/// The prefix of a Kea subnet entry.
pub(crate) fn subnet_cidr(subnet: &Map<String, Value>) -> Option<Cidr> {
    subnet
        .get("subnet")
        .and_then(Value::as_str)
        .and_then(parse_prefix)
}

/// Parses a Kea pool: `"192.0.2.100 - 192.0.2.199"`, `"192.0.2.100-192.0.2.199"` or
/// `"192.0.2.128/25"`.
pub(crate) fn parse_pool(text: &str) -> Option<Pool> {
    if text.contains('/') {
        let cidr = parse_prefix(text)?;
        let IpAddr::V4(first) = cidr.addr() else {
            return None;
        };
        let host_bits = 32 - u32::from(cidr.prefix_len());
        let span = u32::MAX.checked_shr(32 - host_bits).unwrap_or(0);
        let span = if host_bits == 0 { 0 } else { span };
        return Some(Pool {
            from: IpAddr::V4(first),
            to: IpAddr::V4(Ipv4Addr::from(u32::from(first) | span)),
        });
    }
    let (from, to) = text.split_once('-')?;
    Some(Pool {
        from: IpAddr::V4(from.trim().parse().ok()?),
        to: IpAddr::V4(to.trim().parse().ok()?),
    })
}

/// A scope as the protocol describes it, from a Kea subnet entry.
pub(crate) fn scope_of(subnet: &Map<String, Value>) -> Option<Scope> {
    let cidr = subnet_cidr(subnet)?;
    let pools = subnet
        .get("pools")
        .and_then(Value::as_array)
        .map(|pools| {
            pools
                .iter()
                .filter_map(|p| p.get("pool").and_then(Value::as_str).and_then(parse_pool))
                .collect()
        })
        .unwrap_or_default();
    Some(Scope {
        subnet: cidr,
        name: subnet
            .get("user-context")
            .and_then(|c| c.get("comment"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        pools,
        options: options_of(subnet.get("option-data")),
        lease_time: subnet
            .get("valid-lifetime")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok()),
    })
}

/// Whether an `option-data` entry belongs to the standard DHCPv4 space, which is the only one
/// the protocol's [`DhcpOption`] can describe.
fn is_dhcp4_space(entry: &Value) -> bool {
    entry
        .get("space")
        .and_then(Value::as_str)
        .is_none_or(|space| space == "dhcp4")
}

/// The standard-space options of an `option-data` list.
pub(crate) fn options_of(option_data: Option<&Value>) -> Vec<DhcpOption> {
    option_data
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|entry| is_dhcp4_space(entry))
                .filter_map(|entry| {
                    let code = entry
                        .get("code")
                        .and_then(Value::as_u64)
                        .and_then(|c| u16::try_from(c).ok());
                    let name = entry.get("name").and_then(Value::as_str).map(str::to_owned);
                    if code.is_none() && name.is_none() {
                        return None;
                    }
                    Some(DhcpOption {
                        code,
                        name,
                        value: entry
                            .get("data")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an existing `option-data` entry is the option `option` names (by code or name).
fn same_option(entry: &Value, option: &DhcpOption) -> bool {
    let code = entry.get("code").and_then(Value::as_u64);
    let name = entry.get("name").and_then(Value::as_str);
    option.code.is_some_and(|c| code == Some(u64::from(c)))
        || option.name.as_deref().is_some_and(|n| name == Some(n))
}

/// Replaces the standard-space options of an `option-data` list with `options`. Entries of
/// other spaces (vendor options) are kept; an option that existed keeps its other fields
/// (`always-send`, `csv-format`).
pub(crate) fn replace_options(option_data: &mut Value, options: &[DhcpOption]) {
    let old = match option_data.take() {
        Value::Array(list) => list,
        _ => Vec::new(),
    };
    let (standard, mut kept): (Vec<Value>, Vec<Value>) = old.into_iter().partition(is_dhcp4_space);
    for option in options {
        let mut entry = standard
            .iter()
            .find(|e| same_option(e, option))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        entry.remove("code");
        entry.remove("name");
        if let Some(name) = &option.name {
            entry.insert("name".into(), json!(name));
        }
        if let Some(code) = option.code {
            entry.insert("code".into(), json!(code));
        }
        entry.insert("data".into(), json!(option.value));
        kept.push(Value::Object(entry));
    }
    *option_data = Value::Array(kept);
}

/// Writes a pool as Kea does.
fn pool_text(pool: &Pool) -> String {
    format!("{} - {}", pool.from, pool.to)
}

/// A new Kea subnet entry for `scope` with subnet id `id`.
pub(crate) fn new_subnet(scope: &Scope, id: u64) -> Map<String, Value> {
    let mut subnet = Map::new();
    subnet.insert("id".into(), json!(id));
    subnet.insert("subnet".into(), json!(scope.subnet.to_string()));
    subnet.insert("pools".into(), json!([]));
    subnet.insert("option-data".into(), json!([]));
    apply_scope(&mut subnet, scope);
    subnet
}

/// Sets a subnet entry's name, pools, options and lease time from `scope`, keeping its id,
/// reservations and every other setting. A pool that existed keeps its own settings (options,
/// client classes).
pub(crate) fn apply_scope(subnet: &mut Map<String, Value>, scope: &Scope) {
    // Name: user-context.comment, the field Kea's own tools show.
    let context = subnet
        .entry("user-context")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(context) = context.as_object_mut() {
        match &scope.name {
            Some(name) => {
                context.insert("comment".into(), json!(name));
            }
            None => {
                context.remove("comment");
            }
        }
        if context.is_empty() {
            subnet.remove("user-context");
        }
    }

    // Pools.
    let old_pools = match subnet.remove("pools") {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    let pools: Vec<Value> = scope
        .pools
        .iter()
        .map(|pool| {
            old_pools
                .iter()
                .find(|p| p.get("pool").and_then(Value::as_str).and_then(parse_pool) == Some(*pool))
                .cloned()
                .unwrap_or_else(|| json!({ "pool": pool_text(pool) }))
        })
        .collect();
    subnet.insert("pools".into(), Value::Array(pools));

    // Options.
    let option_data = subnet
        .entry("option-data")
        .or_insert_with(|| Value::Array(Vec::new()));
    replace_options(option_data, &scope.options);

    // Lease time; min/max bounds are moved only when they would exclude it.
    match scope.lease_time {
        Some(lifetime) => {
            subnet.insert("valid-lifetime".into(), json!(lifetime));
            let lifetime = u64::from(lifetime);
            if subnet
                .get("min-valid-lifetime")
                .and_then(Value::as_u64)
                .is_some_and(|min| min > lifetime)
            {
                subnet.insert("min-valid-lifetime".into(), json!(lifetime));
            }
            if subnet
                .get("max-valid-lifetime")
                .and_then(Value::as_u64)
                .is_some_and(|max| max < lifetime)
            {
                subnet.insert("max-valid-lifetime".into(), json!(lifetime));
            }
            // Renew and rebind timers at or above the lifetime would be ignored by Kea with a
            // warning; drop them so Kea derives them again.
            for timer in ["renew-timer", "rebind-timer"] {
                if subnet
                    .get(timer)
                    .and_then(Value::as_u64)
                    .is_some_and(|t| t >= lifetime)
                {
                    subnet.remove(timer);
                }
            }
        }
        None => {
            for key in ["valid-lifetime", "min-valid-lifetime", "max-valid-lifetime"] {
                subnet.remove(key);
            }
        }
    }
}

/// The client identifier of a Kea reservation entry, when it is one the protocol can describe
/// (`hw-address`, `client-id`, `duid`; not `circuit-id` or `flex-id`).
pub(crate) fn identifier_of(entry: &Value) -> Option<ClientIdentifier> {
    if let Some(mac) = entry.get("hw-address").and_then(Value::as_str) {
        return MacAddr::from_str(mac).ok().map(ClientIdentifier::Mac);
    }
    if let Some(id) = entry.get("client-id").and_then(Value::as_str) {
        return HexId::from_str(id).ok().map(ClientIdentifier::ClientId);
    }
    if let Some(id) = entry.get("duid").and_then(Value::as_str) {
        return HexId::from_str(id).ok().map(ClientIdentifier::Duid);
    }
    None
}

/// The reservations of a list (a subnet's or the global one) that the protocol can describe:
/// those with an address and an identifier it knows.
pub(crate) fn reservations_of(list: Option<&Value>, subnet: Option<Cidr>) -> Vec<Reservation> {
    list.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|entry| {
                    Some(Reservation {
                        subnet,
                        identifier: identifier_of(entry)?,
                        address: entry.get("ip-address")?.as_str()?.parse().ok()?,
                        hostname: entry
                            .get("hostname")
                            .and_then(Value::as_str)
                            .filter(|h| !h.is_empty())
                            .map(str::to_owned),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A Kea reservation entry for `reservation`.
pub(crate) fn reservation_entry(reservation: &Reservation) -> Value {
    let mut entry = Map::new();
    match &reservation.identifier {
        ClientIdentifier::Mac(mac) => entry.insert("hw-address".into(), json!(mac.to_string())),
        ClientIdentifier::ClientId(id) => entry.insert("client-id".into(), json!(id.to_string())),
        ClientIdentifier::Duid(id) => entry.insert("duid".into(), json!(id.to_string())),
    };
    entry.insert("ip-address".into(), json!(reservation.address.to_string()));
    if let Some(hostname) = &reservation.hostname {
        entry.insert("hostname".into(), json!(hostname));
    }
    Value::Object(entry)
}

/// Subnet id to prefix, for leases.
pub(crate) fn subnet_ids(dhcp4: &Dhcp4) -> HashMap<u64, Cidr> {
    subnets(dhcp4)
        .into_iter()
        .filter_map(|(_, s)| Some((s.get("id")?.as_u64()?, subnet_cidr(s)?)))
        .collect()
}

/// A lease from a `lease4-get-page` entry; `now` is seconds since the Unix epoch.
pub(crate) fn lease_of(entry: &Value, subnets: &HashMap<u64, Cidr>, now: u64) -> Option<Lease> {
    let address: IpAddr = entry.get("ip-address")?.as_str()?.parse().ok()?;
    let cltt = entry.get("cltt").and_then(Value::as_u64);
    let valid = entry.get("valid-lft").and_then(Value::as_u64);
    // A valid lifetime of 0xffffffff is Kea's "infinite".
    let expires = match (cltt, valid) {
        (_, Some(0xffff_ffff)) => None,
        (Some(cltt), Some(valid)) => Some(cltt.saturating_add(valid)),
        _ => None,
    };
    let state = match entry.get("state").and_then(Value::as_u64).unwrap_or(0) {
        0 if expires.is_some_and(|e| e <= now) => LeaseState::Expired,
        0 => LeaseState::Active,
        1 => LeaseState::Declined,
        3 => LeaseState::Released,
        _ => LeaseState::Expired,
    };
    Some(Lease {
        address,
        subnet: entry
            .get("subnet-id")
            .and_then(Value::as_u64)
            .and_then(|id| subnets.get(&id).copied())
            .or_else(|| subnets.values().find(|c| c.contains(address)).copied()),
        mac: entry
            .get("hw-address")
            .and_then(Value::as_str)
            .and_then(|m| MacAddr::from_str(m).ok()),
        client_id: entry
            .get("client-id")
            .and_then(Value::as_str)
            .and_then(|c| HexId::from_str(c).ok()),
        hostname: entry
            .get("hostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_owned),
        expires,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dhcp4() -> Dhcp4 {
        serde_json::from_value(json!({
            "valid-lifetime": 3600,
            "option-data": [{"name": "domain-name", "code": 15, "data": "example.test",
                             "space": "dhcp4", "always-send": false, "csv-format": true}],
            "subnet4": [{
                "id": 7, "subnet": "192.0.2.0/24", "valid-lifetime": 3600,
                "min-valid-lifetime": 3600, "max-valid-lifetime": 3600,
                "renew-timer": 900, "rebind-timer": 1800,
                "pools": [{"pool": "192.0.2.100-192.0.2.199", "option-data": [],
                           "client-class": "lab"}],
                "option-data": [
                    {"name": "routers", "code": 3, "data": "192.0.2.1", "space": "dhcp4",
                     "always-send": true, "csv-format": true},
                    {"code": 1, "data": "x", "space": "vendor-encapsulated-options-space"}],
                "reservations": [
                    {"hw-address": "02:00:00:00:00:42", "ip-address": "192.0.2.42",
                     "hostname": "r42"},
                    {"circuit-id": "01:02", "ip-address": "192.0.2.43"},
                    {"client-id": "01:02:00:00:00:00:44", "ip-address": "192.0.2.44",
                     "hostname": ""}]
            }],
            "shared-networks": [{"name": "net", "subnet4": [
                {"id": 9, "subnet": "198.51.100.0/24", "pools": [{"pool": "198.51.100.0/25"}]}
            ]}]
        }))
        .unwrap()
    }

    #[test]
    fn reads_scopes_in_both_places() {
        let d = dhcp4();
        let scopes: Vec<Scope> = subnets(&d)
            .iter()
            .filter_map(|(_, s)| scope_of(s))
            .collect();
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].subnet.to_string(), "192.0.2.0/24");
        assert_eq!(
            scopes[0].pools,
            vec![parse_pool("192.0.2.100 - 192.0.2.199").unwrap()]
        );
        assert_eq!(
            scopes[0].options.len(),
            1,
            "the vendor-space option is left out"
        );
        assert_eq!(scopes[0].options[0].name.as_deref(), Some("routers"));
        assert_eq!(scopes[0].lease_time, Some(3600));
        assert_eq!(
            scopes[1].pools[0],
            Pool {
                from: "198.51.100.0".parse().unwrap(),
                to: "198.51.100.127".parse().unwrap()
            }
        );
        assert_eq!(next_subnet_id(&d), 10);
        assert_eq!(
            find_subnet(&d, "198.51.100.0/24".parse().unwrap()),
            Some(SubnetPlace::Shared(0, 0))
        );
        let (place, cidr) = subnet_containing(&d, "192.0.2.77".parse().unwrap()).unwrap();
        assert_eq!(
            (place, cidr.to_string().as_str()),
            (SubnetPlace::TopLevel(0), "192.0.2.0/24")
        );
        assert_eq!(
            parse_prefix("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(parse_prefix("10.0.0.0/33"), None);
        let single = parse_pool("192.0.2.5/32").unwrap();
        assert_eq!(
            (single.from, single.to),
            (single.from, "192.0.2.5".parse().unwrap())
        );
        assert_eq!(single.from.to_string(), "192.0.2.5");
    }

    #[test]
    fn updates_keep_what_they_do_not_own() {
        let mut d = dhcp4();
        let place = find_subnet(&d, "192.0.2.0/24".parse().unwrap()).unwrap();
        let scope = Scope {
            subnet: "192.0.2.0/24".parse().unwrap(),
            name: Some("lab".into()),
            pools: vec![
                parse_pool("192.0.2.100-192.0.2.199").unwrap(),
                parse_pool("192.0.2.200-192.0.2.210").unwrap(),
            ],
            options: vec![DhcpOption {
                code: None,
                name: Some("routers".into()),
                value: "192.0.2.254".into(),
            }],
            lease_time: Some(600),
        };
        apply_scope(subnet_mut(&mut d, place).unwrap(), &scope);
        let s = subnet_mut(&mut d, place).unwrap();
        assert_eq!(s["id"], 7);
        assert_eq!(s["user-context"]["comment"], "lab");
        assert_eq!(
            s["pools"][0]["client-class"], "lab",
            "an existing pool keeps its settings"
        );
        assert_eq!(s["pools"][1]["pool"], "192.0.2.200 - 192.0.2.210");
        assert_eq!(s["valid-lifetime"], 600);
        assert_eq!(s["min-valid-lifetime"], 600);
        assert_eq!(s["max-valid-lifetime"], 3600);
        assert!(s.get("renew-timer").is_none() && s.get("rebind-timer").is_none());
        let options = s["option-data"].as_array().unwrap();
        assert_eq!(options.len(), 2);
        assert_eq!(options[0]["space"], "vendor-encapsulated-options-space");
        assert_eq!(options[1]["data"], "192.0.2.254");
        assert_eq!(options[1]["always-send"], true, "kept from the old entry");
        assert_eq!(s["reservations"].as_array().unwrap().len(), 3);
        let back = scope_of(s).unwrap();
        assert_eq!(back.name.as_deref(), Some("lab"));
        assert_eq!(back.pools, scope.pools);

        let fresh = new_subnet(&scope, 11);
        assert_eq!(fresh["id"], 11);
        assert_eq!(fresh["subnet"], "192.0.2.0/24");
        assert_eq!(scope_of(&fresh).unwrap().options[0].value, "192.0.2.254");
        assert!(remove_subnet(&mut d, place));
        assert_eq!(find_subnet(&d, "192.0.2.0/24".parse().unwrap()), None);
    }

    #[test]
    fn reservations_and_leases() {
        let d = dhcp4();
        let subnet = subnets(&d)[0].1;
        let cidr = subnet_cidr(subnet);
        let list = reservations_of(subnet.get("reservations"), cidr);
        assert_eq!(list.len(), 2, "the circuit-id reservation is left out");
        assert_eq!(list[0].hostname.as_deref(), Some("r42"));
        assert_eq!(
            list[1].identifier,
            ClientIdentifier::ClientId("01:02:00:00:00:00:44".parse().unwrap())
        );
        assert_eq!(list[1].hostname, None);
        for r in &list {
            let back = reservations_of(Some(&json!([reservation_entry(r)])), cidr);
            assert_eq!(&back[0], r);
        }

        let ids = subnet_ids(&d);
        let entry = json!({"ip-address": "192.0.2.100", "hw-address": "02:00:00:00:00:99",
                           "client-id": "01:02:00:00:00:00:99", "hostname": "h", "cltt": 1000,
                           "valid-lft": 600, "state": 0, "subnet-id": 7});
        let lease = lease_of(&entry, &ids, 1200).unwrap();
        assert_eq!(lease.state, LeaseState::Active);
        assert_eq!(lease.expires, Some(1600));
        assert_eq!(lease.subnet, cidr);
        assert_eq!(lease.mac.unwrap().to_string(), "02:00:00:00:00:99");
        assert_eq!(
            lease_of(&entry, &ids, 1600).unwrap().state,
            LeaseState::Expired
        );
        let mut declined = entry.clone();
        declined["state"] = json!(1);
        assert_eq!(
            lease_of(&declined, &ids, 0).unwrap().state,
            LeaseState::Declined
        );
    }
}
