//! DNS and DHCP objects in the write path: validation, cascading deletes, and the link to
//! IPAM records.
//!
//! An address named by an enabled A/AAAA or PTR record, a DHCP reservation or an active
//! lease counts as used: when the first such object appears, a free address's record becomes
//! `Assigned` (marked with the usage field [`LINKED_BY`]); when the last one goes, a record
//! the engine assigned that way becomes free again. Records a user assigned stay as they are.
//! A linked address cannot be freed by hand.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::apply::{not_found, Tx, DEFAULT_SPACE};
use crate::command::{Outcome, ServiceObject};
use crate::error::EngineError;
use crate::model::{
    DhcpScope, DnsRecord, DnsZone, Id, IpamRecord, ObjKey, ObjType, Object, Permission, RecordState,
};

pub(crate) use crate::model::LINKED_BY;

/// Most addresses one reservation names.
const MAX_RESERVATION_ADDRESSES: usize = 64;

impl Tx<'_> {
    /// Applies [`crate::Command::PutService`].
    pub(crate) fn put_service(&mut self, o: ServiceObject) -> Result<Outcome, EngineError> {
        let mut obj = o.into_object();
        let key0 = obj.key();
        let creating = key0.id() == Some(0);
        let t = key0.obj_type();
        let id = if creating {
            // Creation is checked on what the object goes under, so access entries on a zone
            // or scope (or range) decide who may add to it.
            match &obj {
                Object::DnsServer(_) | Object::DhcpServer(_) => {
                    self.check(Permission::Administer, None)?
                }
                Object::DnsZone(z) => {
                    self.check(Permission::Create, Some(&ObjKey::DnsServer(z.server)))?
                }
                Object::DnsRecord(r) => {
                    self.check(Permission::Create, Some(&ObjKey::DnsZone(r.zone)))?
                }
                Object::DhcpScope(s) => {
                    self.check(Permission::Create, Some(&ObjKey::Range(s.range)))?
                }
                Object::DhcpReservation(r) => {
                    self.check(Permission::Create, Some(&ObjKey::DhcpScope(r.scope)))?
                }
                Object::DhcpLease(l) => {
                    self.check(Permission::Create, Some(&ObjKey::DhcpScope(l.scope)))?
                }
                _ => self.check(Permission::Create, None)?,
            }
            self.st.issue_id()
        } else {
            let id = key0.id().unwrap_or_default();
            let before = self.st.get(&key0).ok_or_else(|| not_found(&key0))?;
            let perm = match t {
                ObjType::DnsServer | ObjType::DhcpServer => Permission::Administer,
                _ => Permission::Modify,
            };
            self.check(perm, Some(&key0))?;
            // Creation times do not change; moving an object under another parent needs the
            // Create permission there, as creating it there would.
            let parent = |o: &Object| match o {
                Object::DnsZone(z) => Some(ObjKey::DnsServer(z.server)),
                Object::DnsRecord(r) => Some(ObjKey::DnsZone(r.zone)),
                Object::DhcpScope(s) => Some(ObjKey::Range(s.range)),
                Object::DhcpReservation(r) => Some(ObjKey::DhcpScope(r.scope)),
                Object::DhcpLease(l) => Some(ObjKey::DhcpScope(l.scope)),
                _ => None,
            };
            if let Some(p) = parent(&obj).filter(|p| Some(p) != parent(&before).as_ref()) {
                self.check(Permission::Create, Some(&p))?;
            }
            if let (Object::DnsZone(z), Object::DnsZone(b)) = (&mut obj, &before) {
                z.created = b.created;
            }
            id
        };
        self.validate_service(&mut obj, id)?;
        let key = obj.key();
        let touched = self.linked_addresses(&key);
        self.put(key.clone(), Some(obj))?;
        let mut all = touched;
        all.extend(self.linked_addresses(&key));
        self.settle(all)?;
        Ok(if creating {
            Outcome::Created(key.to_ref())
        } else {
            Outcome::Done
        })
    }

    /// Applies [`crate::Command::DeleteService`].
    pub(crate) fn delete_service(&mut self, key: &ObjKey) -> Result<Outcome, EngineError> {
        let perm = match key.obj_type() {
            ObjType::DnsServer | ObjType::DhcpServer => Permission::Administer,
            ObjType::DnsZone
            | ObjType::DnsRecord
            | ObjType::DhcpScope
            | ObjType::DhcpReservation
            | ObjType::DhcpLease => Permission::Delete,
            _ => {
                return Err(EngineError::invalid(
                    "object",
                    format!("{key} is not a DNS or DHCP object"),
                ))
            }
        };
        self.st.get(key).ok_or_else(|| not_found(key))?;
        self.check(perm, Some(key))?;
        let mut doomed = vec![key.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let k = doomed[i].clone();
            doomed.extend(self.dependents(&k));
            i += 1;
        }
        let mut addrs = BTreeSet::new();
        // Children first, so that nothing ever points at a deleted object.
        for k in doomed.into_iter().rev() {
            addrs.extend(self.linked_addresses(&k));
            self.put(
                ObjKey::Access(k.obj_type(), k.id().unwrap_or_default()),
                None,
            )?;
            self.put(k, None)?;
        }
        self.settle(addrs)?;
        Ok(Outcome::Done)
    }

    /// What is deleted with `key`.
    fn dependents(&self, key: &ObjKey) -> Vec<ObjKey> {
        match *key {
            ObjKey::DnsServer(id) => self
                .st
                .zones
                .values()
                .filter(|z| z.server == id)
                .map(|z| ObjKey::DnsZone(z.id))
                .collect(),
            ObjKey::DnsZone(id) => self
                .st
                .zone_records
                .get(&id)
                .map(|s| s.iter().map(|r| ObjKey::DnsRecord(*r)).collect())
                .unwrap_or_default(),
            ObjKey::DhcpServer(id) => self
                .st
                .scopes
                .values()
                .filter(|s| s.server == id)
                .map(|s| ObjKey::DhcpScope(s.id))
                .collect(),
            ObjKey::DhcpScope(id) => self
                .st
                .scope_reservations
                .get(&id)
                .into_iter()
                .flatten()
                .map(|r| ObjKey::DhcpReservation(*r))
                .chain(
                    self.st
                        .scope_leases
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .map(|l| ObjKey::DhcpLease(*l)),
                )
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The addresses (with their space) an object links to now.
    fn linked_addresses(&self, key: &ObjKey) -> BTreeSet<(Id, IpAddr)> {
        match *key {
            ObjKey::DnsRecord(id) => self
                .st
                .dns_records
                .get(&id)
                .map(|r| r.links().map(|a| (DEFAULT_SPACE, a)).collect())
                .unwrap_or_default(),
            ObjKey::DhcpReservation(id) => self
                .st
                .reservations
                .get(&id)
                .map(|r| r.addresses.iter().map(|a| (r.space, *a)).collect())
                .unwrap_or_default(),
            ObjKey::DhcpLease(id) => self
                .st
                .leases
                .get(&id)
                .filter(|l| l.is_active())
                .map(|l| [(l.space, l.addr)].into_iter().collect())
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        }
    }

    /// Brings the records of `addrs` in line with their links (see the module docs).
    fn settle(&mut self, addrs: BTreeSet<(Id, IpAddr)>) -> Result<(), EngineError> {
        for (space, addr) in addrs {
            let linked = self.st.links_of(space, addr).is_some();
            let mut rec = self.st.record(space, addr);
            let key = ObjKey::IpamRecord { space, addr };
            if linked {
                // `put` turns a free image of a linked address into a marked Assigned one.
                if rec.state == RecordState::Free && self.in_a_range(space, addr) {
                    self.put(key, Some(Object::IpamRecord(rec)))?;
                }
            } else if rec.usage.remove(LINKED_BY).is_some() {
                if rec.state == RecordState::Assigned
                    && rec.properties.is_empty()
                    && rec.usage.is_empty()
                {
                    rec.state = RecordState::Free;
                }
                let img = (!rec.is_blank()).then_some(Object::IpamRecord(rec));
                self.put(key, img)?;
            }
        }
        Ok(())
    }

    /// Whether the address lies in a range that is not locked (a locked range's records do
    /// not change, and nothing is allocated in it anyway).
    fn in_a_range(&self, space: Id, addr: IpAddr) -> bool {
        self.st
            .spaces
            .get(&space)
            .and_then(|s| s.idx.deepest(addr))
            .and_then(|d| self.st.ranges.get(&d))
            .is_some_and(|e| !e.range.locked)
    }

    /// Marks the linked addresses of a range that was just created.
    pub(crate) fn settle_range(&mut self, id: Id) -> Result<(), EngineError> {
        let Some(r) = self.st.ranges.get(&id).map(|e| e.range.clone()) else {
            return Ok(());
        };
        let addrs: BTreeSet<(Id, IpAddr)> = self
            .st
            .links
            .range((r.space, r.from)..=(r.space, r.to))
            .map(|(k, _)| *k)
            .collect();
        self.settle(addrs)
    }

    /// The image an address record gets: a linked address inside a range never becomes
    /// free (it becomes `Assigned`, marked with [`LINKED_BY`]).
    pub(crate) fn keep_linked_used(
        &self,
        space: Id,
        addr: IpAddr,
        after: Option<Object>,
    ) -> Option<Object> {
        if self.st.links_of(space, addr).is_none() || !self.in_a_range(space, addr) {
            return after;
        }
        let mut rec = match after {
            Some(Object::IpamRecord(r)) => r,
            None => IpamRecord::free(space, addr),
            other => return other,
        };
        if rec.state == RecordState::Free {
            rec.state = RecordState::Assigned;
            rec.hold = None;
            rec.usage.insert(LINKED_BY.into(), "DNS/DHCP".into());
        }
        Some(Object::IpamRecord(rec))
    }

    /// Refuses to free an address that DNS or DHCP data names.
    pub(crate) fn refuse_freeing_linked(&self, space: Id, addr: IpAddr) -> Result<(), EngineError> {
        let Some(l) = self.st.links_of(space, addr) else {
            return Ok(());
        };
        let mut what = Vec::new();
        if !l.dns.is_empty() {
            what.push(format!("{} DNS record(s)", l.dns.len()));
        }
        if !l.reservations.is_empty() {
            what.push(format!("{} DHCP reservation(s)", l.reservations.len()));
        }
        if !l.leases.is_empty() {
            what.push(format!("{} active DHCP lease(s)", l.leases.len()));
        }
        Err(EngineError::InUse {
            object: ObjKey::IpamRecord { space, addr },
            reason: format!(
                "{} name(s) it: remove them first, it stays in use until then",
                what.join(" and ")
            ),
        })
    }

    /// Checks an object's fields and references, normalizes names and fills derived
    /// fields; sets its id.
    fn validate_service(&self, obj: &mut Object, id: Id) -> Result<(), EngineError> {
        match obj {
            Object::DnsServer(s) => {
                s.id = id;
                let taken = self
                    .st
                    .dns_servers
                    .values()
                    .map(|o| (o.id, o.name.as_str()));
                s.name = server_name(ObjType::DnsServer, &s.name, id, taken)?;
            }
            Object::DhcpServer(s) => {
                s.id = id;
                let taken = self
                    .st
                    .dhcp_servers
                    .values()
                    .map(|o| (o.id, o.name.as_str()));
                s.name = server_name(ObjType::DhcpServer, &s.name, id, taken)?;
            }
            Object::DnsZone(z) => {
                z.id = id;
                self.validate_zone(z)?;
            }
            Object::DnsRecord(r) => {
                r.id = id;
                let zone = self
                    .st
                    .zones
                    .get(&r.zone)
                    .ok_or_else(|| not_found(&ObjKey::DnsZone(r.zone)))?;
                normalize_record(r, zone)?;
                if let Some(other) = self.st.find_dns_record(r.zone, &r.name, &r.rtype, &r.data) {
                    if other != id {
                        return Err(EngineError::NameTaken {
                            kind: ObjType::DnsRecord,
                            name: format!("{} {} {} (dnsRecords/{other})", r.name, r.rtype, r.data),
                        });
                    }
                }
            }
            Object::DhcpScope(s) => {
                s.id = id;
                self.validate_scope(s)?;
            }
            Object::DhcpReservation(r) => {
                r.id = id;
                let scope = self
                    .st
                    .scopes
                    .get(&r.scope)
                    .ok_or_else(|| not_found(&ObjKey::DhcpScope(r.scope)))?;
                r.space = scope.space;
                r.name = r.name.trim().to_string();
                r.client_identifier = r.client_identifier.trim().to_ascii_lowercase();
                if r.client_identifier.is_empty() {
                    return Err(EngineError::invalid(
                        "clientIdentifier",
                        "a reservation needs the client's MAC address or client id",
                    ));
                }
                if r.addresses.is_empty() || r.addresses.len() > MAX_RESERVATION_ADDRESSES {
                    return Err(EngineError::invalid(
                        "addresses",
                        format!("a reservation names 1 to {MAX_RESERVATION_ADDRESSES} addresses"),
                    ));
                }
                let range = &self
                    .st
                    .ranges
                    .get(&scope.range)
                    .ok_or_else(|| not_found(&ObjKey::Range(scope.range)))?
                    .range;
                for a in &r.addresses {
                    if !(range.from <= *a && *a <= range.to) || a.is_ipv4() != range.from.is_ipv4()
                    {
                        return Err(EngineError::invalid(
                            "addresses",
                            format!("{a} is not in the scope's range {}", range.name),
                        ));
                    }
                }
                let same_scope = self
                    .st
                    .scope_reservations
                    .get(&r.scope)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| self.st.reservations.get(id));
                for o in same_scope {
                    if o.id == id {
                        continue;
                    }
                    if o.client_identifier == r.client_identifier {
                        return Err(EngineError::NameTaken {
                            kind: ObjType::DhcpReservation,
                            name: format!("client {}", r.client_identifier),
                        });
                    }
                    if let Some(a) = o.addresses.iter().find(|a| r.addresses.contains(a)) {
                        return Err(EngineError::NameTaken {
                            kind: ObjType::DhcpReservation,
                            name: format!("address {a} (reserved for {})", o.client_identifier),
                        });
                    }
                }
            }
            Object::DhcpLease(l) => {
                l.id = id;
                let scope = self
                    .st
                    .scopes
                    .get(&l.scope)
                    .ok_or_else(|| not_found(&ObjKey::DhcpScope(l.scope)))?;
                l.space = scope.space;
                let range = &self
                    .st
                    .ranges
                    .get(&scope.range)
                    .ok_or_else(|| not_found(&ObjKey::Range(scope.range)))?
                    .range;
                if !(range.from <= l.addr && l.addr <= range.to) {
                    return Err(EngineError::invalid(
                        "address",
                        format!("{} is not in the scope's range {}", l.addr, range.name),
                    ));
                }
            }
            _ => {
                return Err(EngineError::invalid(
                    "object",
                    "not a DNS or DHCP object".to_string(),
                ))
            }
        }
        Ok(())
    }

    fn validate_zone(&self, z: &mut DnsZone) -> Result<(), EngineError> {
        if !self.st.dns_servers.contains_key(&z.server) {
            return Err(not_found(&ObjKey::DnsServer(z.server)));
        }
        z.name = absolute_name(&z.name).ok_or_else(|| {
            EngineError::invalid("name", format!("{:?} is not a zone name", z.name))
        })?;
        z.view = z.view.trim().to_string();
        if z.primary && !z.masters.is_empty() {
            return Err(EngineError::invalid(
                "masters",
                "a primary (Master) zone has no masters",
            ));
        }
        if !z.primary && z.masters.is_empty() {
            return Err(EngineError::invalid(
                "masters",
                "a secondary (Slave) zone needs the addresses of its masters",
            ));
        }
        if let Some(o) = self
            .st
            .zone_names
            .get(&z.name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.zones.get(id))
            .find(|o| o.id != z.id && o.server == z.server && o.view == z.view)
        {
            return Err(EngineError::NameTaken {
                kind: ObjType::DnsZone,
                name: format!("{} (zone {})", o.name, o.id),
            });
        }
        if z.created == 0 {
            z.created = self.now;
        }
        z.last_modified = self.now;
        Ok(())
    }

    fn validate_scope(&self, s: &mut DhcpScope) -> Result<(), EngineError> {
        if !self.st.dhcp_servers.contains_key(&s.server) {
            return Err(not_found(&ObjKey::DhcpServer(s.server)));
        }
        let range = &self
            .st
            .ranges
            .get(&s.range)
            .ok_or_else(|| not_found(&ObjKey::Range(s.range)))?
            .range;
        s.space = range.space;
        if s.name.trim().is_empty() {
            s.name = range.name.clone();
        }
        for (from, to) in &s.pools {
            if from > to
                || *from < range.from
                || *to > range.to
                || from.is_ipv4() != range.from.is_ipv4()
                || to.is_ipv4() != range.from.is_ipv4()
            {
                return Err(EngineError::invalid(
                    "pools",
                    format!(
                        "pool {from}-{to} does not lie inside the range {}",
                        range.name
                    ),
                ));
            }
        }
        if let Some(o) = self
            .st
            .range_scopes
            .get(&s.range)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.scopes.get(id))
            .find(|o| o.id != s.id && o.server == s.server)
        {
            return Err(EngineError::NameTaken {
                kind: ObjType::DhcpScope,
                name: format!("{} on this server (scope {})", range.name, o.id),
            });
        }
        Ok(())
    }
}

/// A server's name, trimmed, when it is given and no other server of its kind (`taken`:
/// ids and names) has it.
fn server_name<'a>(
    kind: ObjType,
    name: &str,
    id: Id,
    mut taken: impl Iterator<Item = (Id, &'a str)>,
) -> Result<String, EngineError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(EngineError::invalid(
            "name",
            format!("a {kind} needs a name"),
        ));
    }
    if taken.any(|(o, n)| o != id && n.eq_ignore_ascii_case(name)) {
        return Err(EngineError::NameTaken {
            kind,
            name: name.to_string(),
        });
    }
    Ok(name.to_string())
}

/// A DNS name made absolute and lower case (`Example.COM` -> `example.com.`), or `None`
/// when it is not a valid name.
pub fn absolute_name(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let bare = s.strip_suffix('.').unwrap_or(&s);
    if bare.is_empty() || bare.len() > 253 {
        return None;
    }
    let ok = bare.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
    });
    ok.then(|| format!("{bare}."))
}

/// Makes a record's name relative to its zone, checks its type, TTL and data, and works
/// out the address it names.
fn normalize_record(r: &mut DnsRecord, zone: &DnsZone) -> Result<(), EngineError> {
    let name = r.name.trim().to_ascii_lowercase();
    r.name =
        if name.is_empty() || name == "@" || name == zone.name || format!("{name}.") == zone.name {
            "@".to_string()
        } else if let Some(rel) = name.strip_suffix(&format!(".{}", zone.name)) {
            rel.to_string()
        } else if name.ends_with('.') {
            return Err(EngineError::invalid(
                "name",
                format!("{name} is not in the zone {}", zone.name),
            ));
        } else if let Some(rel) =
            name.strip_suffix(&format!(".{}", zone.name.trim_end_matches('.')))
        {
            rel.to_string()
        } else {
            name
        };
    if r.name != "@" && absolute_name(&r.name).is_none() {
        return Err(EngineError::invalid(
            "name",
            format!("{:?} is not a DNS name", r.name),
        ));
    }
    r.rtype = r.rtype.trim().to_ascii_uppercase();
    if r.rtype.is_empty()
        || r.rtype.len() > 10
        || !r.rtype.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(EngineError::invalid(
            "type",
            format!("{:?} is not a record type", r.rtype),
        ));
    }
    if r.rtype == "SOA" {
        return Err(EngineError::invalid(
            "type",
            "the SOA record belongs to the server: it is not edited through Central",
        ));
    }
    if r.ttl > i32::MAX as u32 {
        return Err(EngineError::invalid(
            "ttl",
            format!("{} is too large", r.ttl),
        ));
    }
    r.data = r.data.trim().to_string();
    if r.data.is_empty() || r.data.len() > 65_535 || r.data.contains(['\n', '\r', '\0']) {
        return Err(EngineError::invalid(
            "data",
            "record data must be 1 to 65,535 characters on one line",
        ));
    }
    r.address = match r.rtype.as_str() {
        "A" => Some(IpAddr::V4(r.data.parse::<Ipv4Addr>().map_err(|_| {
            EngineError::invalid("data", format!("{:?} is not an IPv4 address", r.data))
        })?)),
        "AAAA" => Some(IpAddr::V6(r.data.parse::<Ipv6Addr>().map_err(|_| {
            EngineError::invalid("data", format!("{:?} is not an IPv6 address", r.data))
        })?)),
        "PTR" => reverse_address(&absolute_record_name(&r.name, &zone.name)),
        _ => None,
    };
    Ok(())
}

/// `www` in `example.com.` -> `www.example.com.`; `@` -> the zone's name.
pub fn absolute_record_name(name: &str, zone: &str) -> String {
    if name == "@" || name.is_empty() {
        zone.to_string()
    } else {
        format!("{name}.{zone}")
    }
}

/// The address a reverse name stands for (`5.0.0.10.in-addr.arpa.` -> 10.0.0.5; 32
/// nibbles under `ip6.arpa.`), or `None`.
pub fn reverse_address(name: &str) -> Option<IpAddr> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = n.strip_suffix(".in-addr.arpa") {
        let parts: Vec<u8> = rest
            .split('.')
            .map(|p| p.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        if parts.len() != 4 {
            return None;
        }
        return Some(IpAddr::from([parts[3], parts[2], parts[1], parts[0]]));
    }
    let rest = n.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .map(|p| {
            (p.len() == 1)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        v = v << 4 | u128::from(*n);
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

/// The reverse name of an address (`10.0.0.5` -> `5.0.0.10.in-addr.arpa.`).
pub fn reverse_name(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v) => {
            let mut s = String::with_capacity(72);
            for b in v.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_round_trip() {
        for a in ["10.0.0.5", "192.0.2.255", "2001:db8::1", "::"] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(reverse_address(&reverse_name(a)), Some(a), "{a}");
        }
        assert_eq!(reverse_address("0.10.in-addr.arpa."), None);
        assert_eq!(reverse_address("www.example.com."), None);
        assert_eq!(reverse_address("300.0.0.10.in-addr.arpa."), None);
    }

    #[test]
    fn names_are_made_absolute_and_checked() {
        assert_eq!(
            absolute_name("Example.COM").as_deref(),
            Some("example.com.")
        );
        assert_eq!(absolute_name("a..b"), None);
        assert_eq!(absolute_name(""), None);
        assert_eq!(absolute_name("bad name.com"), None);
    }
}
