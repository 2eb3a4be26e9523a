//! Ranges and the records of their addresses: creating, changing and deleting ranges,
//! setting and releasing records, and the expiry of held addresses.

use std::net::IpAddr;

use crate::command::{Command, NewRange, Outcome, RangePatch, RecordPatch};
use crate::error::EngineError;
use crate::model::{
    Hold, Id, IpamRecord, Millis, ObjKey, ObjType, Object, Permission, Range, RecordState,
    SYSTEM_USER,
};

use super::{misrouted, not_found, Tx, DEFAULT_SPACE};

impl Tx<'_> {
    /// Applies a command of this family (the dispatch in `mod.rs` sends only these here).
    pub(super) fn apply_ranges(&mut self, cmd: &Command) -> Result<Outcome, EngineError> {
        match cmd {
            Command::CreateRange(nr) => {
                let id = self.create_range(nr)?;
                Ok(Outcome::Created(ObjKey::Range(id).to_ref()))
            }
            Command::UpdateRange { id, patch } => self.update_range(*id, patch),
            Command::DeleteRange { id, subtree } => self.delete_range(*id, *subtree),
            Command::SetRecord { space, addr, patch } => self.set_record(*space, *addr, patch),
            Command::ReleaseRecord { space, addr } => {
                let key = ObjKey::IpamRecord {
                    space: *space,
                    addr: *addr,
                };
                self.record_writable(*space, *addr)?;
                self.refuse_freeing_linked(*space, *addr)?;
                self.put(key, None)?;
                Ok(Outcome::Done)
            }
            Command::ExpireHolds => {
                if self.actor.id != SYSTEM_USER {
                    return Err(EngineError::AccessDenied {
                        user: self.actor.name.clone(),
                        permission: Permission::Administer,
                        object: "expire holds (engine only)".into(),
                    });
                }
                let due: Vec<(Millis, Id, IpAddr)> = self
                    .st
                    .holds
                    .range(..(self.now + 1, 0, IpAddr::from([0u8; 4])))
                    .copied()
                    .collect();
                let mut n = 0;
                for (_, space, addr) in due {
                    let mut r = self.st.record(space, addr);
                    if r.state == RecordState::Held && r.hold.is_some_and(|h| h.expires <= self.now)
                    {
                        r.state = RecordState::Free;
                        r.hold = None;
                        let img = (!r.is_blank()).then_some(Object::IpamRecord(r));
                        self.put(ObjKey::IpamRecord { space, addr }, img)?;
                        n += 1;
                    }
                }
                Ok(Outcome::Expired(n))
            }
            other => Err(misrouted(other)),
        }
    }

    pub(super) fn create_range(&mut self, nr: &NewRange) -> Result<Id, EngineError> {
        let space = nr.space.unwrap_or(DEFAULT_SPACE);
        let skey = ObjKey::AddressSpace(space);
        if !self.st.spaces.contains_key(&space) {
            return Err(not_found(&skey));
        }
        let from = nr
            .from
            .ok_or_else(|| EngineError::invalid("from", "a range needs a first address"))?;
        let to = nr
            .to
            .ok_or_else(|| EngineError::invalid("to", "a range needs a last address"))?;
        // Permission to create under the would-be parent (or the address space).
        let idx = &self.st.spaces[&space].idx;
        let parent_key = idx.deepest(from).and_then(|d| {
            std::iter::once(d)
                .chain(idx.ancestors(self.st.ranges[&d].rid))
                .find(|p| {
                    let r = &self.st.ranges[p].range;
                    r.from <= from && to <= r.to && (r.from, r.to) != (from, to)
                })
        });
        let pkey = parent_key.map_or(skey, ObjKey::Range);
        self.check(Permission::Create, Some(&pkey))?;
        if let Some(f) = nr.folder {
            if !self.st.folders.contains_key(&f) {
                return Err(not_found(&ObjKey::Folder(f)));
            }
        }
        let properties = self.st.merge_properties(
            ObjType::Range,
            &Default::default(),
            &nr.properties,
            false,
            true,
        )?;
        let id = self.st.issue_id();
        let mut r = Range {
            id,
            space,
            from,
            to,
            name: nr.name.trim().to_string(),
            subnet: nr.subnet,
            is_container: nr.is_container,
            locked: nr.locked,
            auto_assign: nr.auto_assign,
            folder: nr.folder,
            properties,
            created: self.now,
            last_modified: self.now,
        };
        let prefix = cidr_len(from, to);
        if r.subnet && prefix.is_none() {
            return Err(EngineError::invalid(
                "subnet",
                format!("{from}-{to} is not one CIDR block, so it cannot be a subnet"),
            ));
        }
        if r.name.is_empty() {
            r.name = match prefix {
                Some(p) => format!("{from}/{p}"),
                None => format!("{from}-{to}"),
            };
        }
        check_cidr_name(&r.name, from, to)?;
        self.put(ObjKey::Range(id), Some(Object::Range(r)))?;
        // Addresses DNS or DHCP data named before the range existed are used from now on.
        self.settle_range(id)?;
        Ok(id)
    }

    pub(super) fn update_range(&mut self, id: Id, p: &RangePatch) -> Result<Outcome, EngineError> {
        let key = ObjKey::Range(id);
        let e = self.st.ranges.get(&id).ok_or_else(|| not_found(&key))?;
        let (mut r, rid) = (e.range.clone(), e.rid);
        self.check(Permission::Modify, Some(&key))?;
        if let Some(n) = &p.name {
            r.name = n.trim().to_string();
            if r.name.is_empty() {
                return Err(EngineError::invalid(
                    "name",
                    "a range's name cannot be empty",
                ));
            }
            check_cidr_name(&r.name, r.from, r.to)?;
        }
        if let Some(s) = p.subnet {
            if s && self.st.spaces[&r.space].idx.prefix_len(rid).is_none() {
                return Err(EngineError::invalid(
                    "subnet",
                    format!(
                        "{}-{} is not one CIDR block, so it cannot be a subnet",
                        r.from, r.to
                    ),
                ));
            }
            r.subnet = s;
        }
        if let Some(v) = p.is_container {
            r.is_container = v;
        }
        if let Some(v) = p.locked {
            r.locked = v;
        }
        if let Some(v) = p.auto_assign {
            r.auto_assign = v;
        }
        if let Some(f) = p.folder {
            if let Some(f) = f {
                if !self.st.folders.contains_key(&f) {
                    return Err(not_found(&ObjKey::Folder(f)));
                }
            }
            r.folder = f;
        }
        r.properties = self.st.merge_properties(
            ObjType::Range,
            &r.properties,
            &p.properties,
            p.delete_unspecified,
            false,
        )?;
        if Some(Object::Range(r.clone())) != self.st.get(&key) {
            r.last_modified = self.now;
        }
        let unlocked = !r.locked && self.st.ranges.get(&id).is_some_and(|e| e.range.locked);
        self.put(key, Some(Object::Range(r)))?;
        if unlocked {
            // DNS or DHCP data that named its addresses while it was locked counts now.
            self.settle_range(id)?;
        }
        Ok(Outcome::Done)
    }

    pub(super) fn delete_range(&mut self, id: Id, subtree: bool) -> Result<Outcome, EngineError> {
        let key = ObjKey::Range(id);
        let e = self.st.ranges.get(&id).ok_or_else(|| not_found(&key))?;
        let ids = if subtree {
            self.st.spaces[&e.range.space].idx.subtree(e.rid)
        } else {
            vec![id]
        };
        // Children before parents, so each is a leaf when it goes.
        for &r in ids.iter().rev() {
            let k = ObjKey::Range(r);
            self.check(Permission::Delete, Some(&k))?;
            if let Some(sc) = self.st.range_scopes.get(&r).and_then(|s| s.get_min()) {
                let name = self
                    .st
                    .scopes
                    .get(sc)
                    .map_or_else(String::new, |s| s.name.clone());
                return Err(EngineError::InUse {
                    object: k,
                    reason: format!(
                        "the DHCP scope {name} (dhcpScopes/{sc}) serves it: delete the scope first"
                    ),
                });
            }
            self.put(ObjKey::Access(ObjType::Range, r), None)?;
            self.put(k, None)?;
        }
        Ok(Outcome::Done)
    }

    /// The range an address belongs to must not be locked, and a hold by another user blocks
    /// changes. Checks Modify on the record.
    pub(super) fn record_writable(
        &self,
        space: Id,
        addr: IpAddr,
    ) -> Result<IpamRecord, EngineError> {
        let key = ObjKey::IpamRecord { space, addr };
        let s = self
            .st
            .spaces
            .get(&space)
            .ok_or_else(|| not_found(&ObjKey::AddressSpace(space)))?;
        self.check(Permission::Modify, Some(&key))?;
        if let Some(d) = s.idx.deepest(addr) {
            let r = &self.st.ranges[&d].range;
            if r.locked {
                return Err(EngineError::RangeClosed {
                    range: r.name.clone(),
                    why: "locked",
                    action: "changing an address record",
                });
            }
        }
        let rec = self.st.record(space, addr);
        if let Some(h) = rec.hold {
            if rec.state == RecordState::Held
                && h.user != self.actor.id
                && !self.actor.superuser
                && h.expires > self.now
            {
                let holder = self
                    .st
                    .users
                    .get(&h.user)
                    .map_or_else(|| format!("#{}", h.user), |u| u.name.clone());
                return Err(EngineError::Held {
                    addr,
                    holder,
                    until_ms: h.expires,
                });
            }
        }
        Ok(rec)
    }

    pub(super) fn set_record(
        &mut self,
        space: Id,
        addr: IpAddr,
        p: &RecordPatch,
    ) -> Result<Outcome, EngineError> {
        // An address in no range gets no record (no listing would ever show it), and one the
        // user may not read answers the same. (Freeing stays possible everywhere.)
        let key = ObjKey::IpamRecord { space, addr };
        let in_range = self
            .st
            .spaces
            .get(&space)
            .is_some_and(|s| s.idx.deepest(addr).is_some());
        if !in_range || !self.st.can(&self.actor, Permission::Read, Some(&key)) {
            return Err(EngineError::invalid(
                "address",
                format!("{addr} is in no range: create a range that holds it first"),
            ));
        }
        let mut rec = self.record_writable(space, addr)?;
        let creating = rec.is_blank();
        if p.state == Some(RecordState::Free) {
            self.refuse_freeing_linked(space, addr)?;
        }
        if let Some(s) = p.state {
            rec.state = s;
            // A state set by hand is the user's: the address no longer frees itself when
            // the DNS or DHCP data naming it goes.
            rec.usage.remove(crate::services::LINKED_BY);
        }
        rec.hold = match (rec.state, p.hold_seconds) {
            (RecordState::Held, Some(secs)) => Some(Hold {
                expires: self.now.saturating_add(secs_to_ms(secs)?),
                user: self.actor.id,
            }),
            (RecordState::Held, None)
                if p.state == Some(RecordState::Held) || rec.hold.is_none() =>
            {
                return Err(EngineError::invalid(
                    "hold_seconds",
                    "a Held address needs a hold time in seconds",
                ))
            }
            (RecordState::Held, None) => rec.hold,
            (_, Some(_)) => {
                return Err(EngineError::invalid(
                    "hold_seconds",
                    "a hold time is only valid with the Held state",
                ))
            }
            (_, None) => None,
        };
        rec.properties = self.st.merge_properties(
            ObjType::IpamRecord,
            &rec.properties,
            &p.properties,
            p.delete_unspecified,
            creating,
        )?;
        let mut usage = if p.delete_unspecified {
            Default::default()
        } else {
            rec.usage.clone()
        };
        for (k, v) in &p.usage {
            if v.is_empty() {
                usage.remove(k);
            } else {
                usage.insert(k.clone(), v.clone());
            }
        }
        rec.usage = usage;
        let img = (!rec.is_blank()).then_some(Object::IpamRecord(rec));
        self.put(ObjKey::IpamRecord { space, addr }, img)?;
        Ok(Outcome::Done)
    }

    /// A range in which addresses may be allocated, after the Allocate check.
    pub(super) fn open_range(&self, id: Id, action: &'static str) -> Result<&Range, EngineError> {
        let key = ObjKey::Range(id);
        let r = &self
            .st
            .ranges
            .get(&id)
            .ok_or_else(|| not_found(&key))?
            .range;
        self.check(Permission::Allocate, Some(&key))?;
        if r.locked {
            return Err(EngineError::RangeClosed {
                range: r.name.clone(),
                why: "locked",
                action,
            });
        }
        if r.is_container {
            return Err(EngineError::RangeClosed {
                range: r.name.clone(),
                why: "a container",
                action,
            });
        }
        Ok(r)
    }
}

pub(super) fn secs_to_ms(secs: u64) -> Result<Millis, EngineError> {
    const MAX: u64 = 10 * 365 * 24 * 3600;
    if secs == 0 || secs > MAX {
        return Err(EngineError::invalid(
            "hold time",
            format!("must be 1 to {MAX} seconds, not {secs}"),
        ));
    }
    Ok(secs as Millis * 1000)
}

/// A name written as a CIDR (`10.1.2.0/24`, `2001:db8::/48`) must be the range's own block:
/// a name such as `10.20.300.0/24` (no such address), or one naming other addresses than the
/// range holds, would pass one block off as another.
fn check_cidr_name(name: &str, from: IpAddr, to: IpAddr) -> Result<(), EngineError> {
    let Some((addr, len)) = name.split_once('/') else {
        return Ok(());
    };
    let looks_like_cidr = !addr.is_empty()
        && addr
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
        && addr.chars().any(|c| c == '.' || c == ':')
        && !len.is_empty()
        && len.chars().all(|c| c.is_ascii_digit());
    if !looks_like_cidr {
        return Ok(());
    }
    let own = match (addr.parse::<IpAddr>(), len.parse::<u8>()) {
        (Ok(a), Ok(l)) => a == from && cidr_len(from, to) == Some(l),
        _ => false,
    };
    if own {
        return Ok(());
    }
    let block = match cidr_len(from, to) {
        Some(p) => format!("{from}/{p}"),
        None => format!("{from}-{to}"),
    };
    Err(EngineError::invalid(
        "name",
        format!("{name:?} is written as a CIDR but the range is {block}: name it {block}, or give it a name that is not a CIDR"),
    ))
}

/// The prefix length when `from..=to` is exactly one CIDR block of one family.
pub(super) fn cidr_len(from: IpAddr, to: IpAddr) -> Option<u8> {
    let (f, t, bits) = match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => (u128::from(u32::from(f)), u128::from(u32::from(t)), 32),
        (IpAddr::V6(f), IpAddr::V6(t)) => (u128::from(f), u128::from(t), 128),
        _ => return None,
    };
    if f > t {
        return None;
    }
    let host = t - f;
    if host.checked_add(1).is_some_and(|n| !n.is_power_of_two()) || f & host != 0 {
        return None;
    }
    Some((bits - (128 - host.leading_zeros())) as u8)
}

#[cfg(test)]
mod tests {
    use super::cidr_len;

    #[test]
    fn cidr_lengths() {
        let l = |a: &str, b: &str| cidr_len(a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(l("10.0.0.0", "10.0.0.255"), Some(24));
        assert_eq!(l("10.0.0.5", "10.0.0.5"), Some(32));
        assert_eq!(l("0.0.0.0", "255.255.255.255"), Some(0));
        assert_eq!(l("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(0));
        assert_eq!(l("2001:db8::", "2001:db8::ffff"), Some(112));
        assert_eq!(l("10.0.0.128", "10.0.1.127"), None);
        assert_eq!(l("10.0.0.0", "10.0.0.254"), None);
        assert_eq!(l("10.0.0.9", "10.0.0.3"), None);
        assert_eq!(l("10.0.0.0", "::1"), None);
    }
}
