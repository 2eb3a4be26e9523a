//! Reads: a consistent view of the state, as one user, with permissions checked on every
//! object returned. Obtained from [`crate::Engine::read`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipam_index::{BlockSize, Start, Utilization};

use crate::apply::not_found;
use crate::command::BlockSpec;
use crate::error::EngineError;
use crate::model::{
    AccessList, AddressSpace, DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord,
    DnsServer, DnsZone, Folder, Group, Id, IpamRecord, ObjKey, ObjType, Object, Permission,
    PropertyDefinition, Range, Role, User,
};
use crate::state::{Actor, State};

/// A range with what the index knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeView {
    /// The range.
    pub range: Range,
    /// The smallest range containing it.
    pub parent: Option<Id>,
    /// Number of direct sub-ranges.
    pub children: usize,
    /// Prefix length when it is exactly one CIDR block.
    pub prefix_len: Option<u8>,
    /// Used and free addresses.
    pub utilization: Utilization,
}

/// What DNS and DHCP data names one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressLinks {
    /// DNS records naming it (A/AAAA pointing at it, PTR standing for it), with their zones.
    pub dns: Vec<(DnsRecord, DnsZone)>,
    /// DHCP reservations of it.
    pub reservations: Vec<DhcpReservation>,
    /// Active DHCP leases of it.
    pub leases: Vec<DhcpLease>,
}

/// A consistent, access-checked view of the model.
pub struct View<'a> {
    st: &'a State,
    actor: Actor,
}

impl<'a> View<'a> {
    pub(crate) fn new(st: &'a State, actor: Actor) -> View<'a> {
        View { st, actor }
    }

    fn check(&self, perm: Permission, key: &ObjKey) -> Result<(), EngineError> {
        self.st.check(&self.actor, perm, Some(key))
    }

    fn can_read(&self, key: &ObjKey) -> bool {
        self.st.can(&self.actor, Permission::Read, Some(key))
    }

    /// The id of the user this view reads as.
    pub fn user(&self) -> Id {
        self.actor.id
    }

    /// Whether the user has `perm` on `key` (`None`: everywhere).
    pub fn can(&self, perm: Permission, key: Option<&ObjKey>) -> bool {
        self.st.can(&self.actor, perm, key)
    }

    /// Sequence number of the last change this view shows.
    pub fn seq(&self) -> u64 {
        self.st.applied_seq
    }

    /// Address spaces the user may read.
    pub fn spaces(&self) -> Vec<AddressSpace> {
        self.st
            .spaces
            .values()
            .filter(|s| self.can_read(&ObjKey::AddressSpace(s.meta.id)))
            .map(|s| s.meta.clone())
            .collect()
    }

    /// One range.
    pub fn range(&self, id: Id) -> Result<RangeView, EngineError> {
        let key = ObjKey::Range(id);
        let e = self.st.ranges.get(&id).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        let idx = &self.st.spaces[&e.range.space].idx;
        Ok(RangeView {
            range: e.range.clone(),
            parent: idx.parent(e.rid),
            children: idx.child_count(e.rid),
            prefix_len: idx.prefix_len(e.rid),
            utilization: idx.utilization(e.rid)?,
        })
    }

    /// The range with exactly these bounds.
    pub fn find_range(&self, space: Id, from: IpAddr, to: IpAddr) -> Option<Id> {
        let s = self.st.spaces.get(&space)?;
        let mut id = s.idx.deepest(from)?;
        loop {
            let r = &self.st.ranges.get(&id)?.range;
            if r.from == from && r.to == to {
                return self.can_read(&ObjKey::Range(id)).then_some(id);
            }
            // Going up only widens: once a range starts before `from` or ends after `to`,
            // no ancestor can be exactly [from, to]. (A smaller range that starts at `from`,
            // say the container's first child, is passed on the way up.)
            if r.from < from || r.to > to {
                return None;
            }
            id = s.idx.parent(self.st.ranges[&id].rid)?;
        }
    }

    /// Every range of an address space the user may read and `keep` accepts, in address
    /// order (a range before the ranges it contains).
    pub fn ranges_where(&self, space: Id, mut keep: impl FnMut(&Range) -> bool) -> Vec<Range> {
        let mut out: Vec<Range> = self
            .st
            .ranges
            .values()
            .map(|e| &e.range)
            .filter(|r| r.space == space && keep(r) && self.can_read(&ObjKey::Range(r.id)))
            .cloned()
            .collect();
        out.sort_unstable_by(|a, b| a.from.cmp(&b.from).then(b.to.cmp(&a.to)));
        out
    }

    /// The login name of a user id (for holders and history).
    pub fn user_name(&self, id: Id) -> Option<String> {
        self.st.users.get(&id).map(|u| u.name.clone())
    }

    /// The ranges containing `addr`, deepest first, that the user may read.
    pub fn ranges_containing(&self, space: Id, addr: IpAddr) -> Vec<Id> {
        let Some(s) = self.st.spaces.get(&space) else {
            return Vec::new();
        };
        let Some(d) = s.idx.deepest(addr) else {
            return Vec::new();
        };
        let mut out = vec![d];
        out.extend(s.idx.ancestors(self.st.ranges[&d].rid));
        out.retain(|id| self.can_read(&ObjKey::Range(*id)));
        out
    }

    /// One page of the sub-ranges of `parent` (`None`: top-level ranges of the family of
    /// `v6`) that start at or after `start`, in address order. Ranges the user may not read
    /// are left out.
    pub fn children(
        &self,
        space: Id,
        parent: Option<Id>,
        v6: bool,
        start: Option<IpAddr>,
        limit: usize,
    ) -> Result<Vec<Range>, EngineError> {
        let s = self
            .st
            .spaces
            .get(&space)
            .ok_or_else(|| not_found(&ObjKey::AddressSpace(space)))?;
        let rid = match parent {
            Some(p) => {
                let e = self
                    .st
                    .ranges
                    .get(&p)
                    .ok_or_else(|| not_found(&ObjKey::Range(p)))?;
                self.check(Permission::Read, &ObjKey::Range(p))?;
                Some(e.rid)
            }
            None => None,
        };
        let mut out = Vec::new();
        let mut from = start;
        while out.len() < limit {
            let ids = s.idx.children(rid, v6, from, limit - out.len() + 1)?;
            let last = ids.len() < limit - out.len() + 1;
            for id in ids {
                let r = &self.st.ranges[&id].range;
                if from == Some(r.from) && out.last().is_some_and(|l: &Range| l.id == id) {
                    continue;
                }
                if out.len() < limit && self.can_read(&ObjKey::Range(id)) {
                    out.push(r.clone());
                }
                from = Some(r.from);
            }
            if last {
                break;
            }
        }
        Ok(out)
    }

    /// The record of any address, stored or not.
    pub fn record(&self, space: Id, addr: IpAddr) -> Result<IpamRecord, EngineError> {
        if !self.st.spaces.contains_key(&space) {
            return Err(not_found(&ObjKey::AddressSpace(space)));
        }
        self.check(Permission::Read, &ObjKey::IpamRecord { space, addr })?;
        Ok(self.st.record(space, addr))
    }

    /// Up to `limit` records of a range at or after `start` that are used or carry data, in
    /// address order.
    pub fn records(
        &self,
        range: Id,
        start: Option<IpAddr>,
        limit: usize,
    ) -> Result<Vec<IpamRecord>, EngineError> {
        let key = ObjKey::Range(range);
        let e = self.st.ranges.get(&range).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        let r = &e.range;
        let from = start.map_or(r.from, |s| s.max(r.from));
        let idx = &self.st.spaces[&r.space].idx;
        let used = if from <= r.to {
            idx.used_in(from, r.to, limit)?
        } else {
            Vec::new()
        };
        let mut addrs: Vec<IpAddr> = self
            .st
            .records
            .keys()
            .filter(|(s, a)| *s == r.space && *a >= from && *a <= r.to)
            .map(|(_, a)| *a)
            .chain(used)
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        addrs.truncate(limit);
        Ok(addrs
            .into_iter()
            .map(|a| self.st.record(r.space, a))
            .collect())
    }

    /// Up to `n` free addresses of a range, without taking them (what allocation would hand
    /// out first, without randomness).
    pub fn free_addresses(
        &self,
        range: Id,
        start: Option<IpAddr>,
        exclude: &[(IpAddr, IpAddr)],
        n: usize,
    ) -> Result<Vec<IpAddr>, EngineError> {
        let key = ObjKey::Range(range);
        let e = self.st.ranges.get(&range).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        let start = start.map_or(Start::First, Start::At);
        Ok(self.st.spaces[&e.range.space]
            .idx
            .next_free_n(e.rid, start, exclude, n)?)
    }

    /// Up to `n` free blocks of a range, without taking them.
    pub fn free_blocks(
        &self,
        range: Id,
        size: BlockSpec,
        start: Option<IpAddr>,
        n: usize,
    ) -> Result<Vec<(IpAddr, IpAddr)>, EngineError> {
        let key = ObjKey::Range(range);
        let e = self.st.ranges.get(&range).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        let size = match size {
            BlockSpec::Prefix(p) => BlockSize::Prefix(u32::from(p)),
            BlockSpec::Size(n) => BlockSize::Count(u128::from(n)),
        };
        Ok(self.st.spaces[&e.range.space]
            .idx
            .next_free_blocks(e.rid, size, start, n)?)
    }

    /// Custom property definitions of an object type.
    pub fn property_definitions(&self, t: ObjType) -> Vec<PropertyDefinition> {
        self.st
            .propdefs
            .values()
            .filter(|d| d.obj_type == t)
            .cloned()
            .collect()
    }

    /// Folders.
    pub fn folders(&self) -> Vec<Folder> {
        self.st
            .folders
            .values()
            .filter(|f| self.can_read(&ObjKey::Folder(f.id)))
            .cloned()
            .collect()
    }

    /// Users (password hashes blanked unless the user may administer).
    pub fn users(&self) -> Vec<User> {
        let admin = self.can(Permission::Administer, None);
        self.st
            .users
            .values()
            .filter(|u| admin || u.id == self.actor.id || self.can_read(&ObjKey::User(u.id)))
            .map(|u| User {
                password_hash: String::new(),
                ..u.clone()
            })
            .collect()
    }

    /// Groups.
    pub fn groups(&self) -> Vec<Group> {
        self.st
            .groups
            .values()
            .filter(|g| self.can_read(&ObjKey::Group(g.id)))
            .cloned()
            .collect()
    }

    /// Roles.
    pub fn roles(&self) -> Vec<Role> {
        self.st
            .roles
            .values()
            .filter(|r| self.can_read(&ObjKey::Role(r.id)))
            .cloned()
            .collect()
    }

    /// Access entries of an object (needs Administer on it).
    pub fn access(&self, t: ObjType, id: Id) -> Result<Option<AccessList>, EngineError> {
        let k = ObjKey::of(t, id).ok_or_else(|| {
            EngineError::invalid("obj_type", format!("{t} objects have no access entries"))
        })?;
        self.st
            .check(&self.actor, Permission::Administer, Some(&k))?;
        Ok(self.st.access.get(&(t, id)).cloned())
    }

    /// Whether an object has access entries of its own (needs only Read on it: the entries
    /// themselves need Administer, see [`View::access`]).
    pub fn has_access_entries(&self, t: ObjType, id: Id) -> Result<bool, EngineError> {
        let k = ObjKey::of(t, id).ok_or_else(|| {
            EngineError::invalid("obj_type", format!("{t} objects have no access entries"))
        })?;
        self.check(Permission::Read, &k)?;
        Ok(self
            .st
            .access
            .get(&(t, id))
            .is_some_and(|a| !a.entries.is_empty()))
    }

    /// DNS servers (every user may see them).
    pub fn dns_servers(&self) -> Vec<DnsServer> {
        self.st.dns_servers.values().cloned().collect()
    }

    /// DHCP servers (every user may see them).
    pub fn dhcp_servers(&self) -> Vec<DhcpServer> {
        self.st.dhcp_servers.values().cloned().collect()
    }

    /// DNS zones the user may read, by name.
    pub fn dns_zones(&self) -> Vec<DnsZone> {
        let mut v: Vec<DnsZone> = self
            .st
            .zones
            .values()
            .filter(|z| self.can_read(&ObjKey::DnsZone(z.id)))
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.name, a.server, &a.view).cmp(&(&b.name, b.server, &b.view)));
        v
    }

    /// The zones with this absolute, lower-case name (one per server and view) the user may
    /// read.
    pub fn dns_zones_named(&self, name: &str) -> Vec<DnsZone> {
        self.st
            .zone_names
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.zones.get(id))
            .filter(|z| self.can_read(&ObjKey::DnsZone(z.id)))
            .cloned()
            .collect()
    }

    /// One DNS zone.
    pub fn dns_zone(&self, id: Id) -> Result<DnsZone, EngineError> {
        let key = ObjKey::DnsZone(id);
        let z = self.st.zones.get(&id).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        Ok(z.clone())
    }

    /// The records of a zone the user may read, by name, type and data.
    pub fn dns_records(&self, zone: Id) -> Result<Vec<DnsRecord>, EngineError> {
        self.dns_zone(zone)?;
        let mut v: Vec<DnsRecord> = self
            .st
            .zone_records
            .get(&zone)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.dns_records.get(id))
            .filter(|r| self.can_read(&ObjKey::DnsRecord(r.id)))
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (&a.name, &a.rtype, &a.data, a.id).cmp(&(&b.name, &b.rtype, &b.data, b.id))
        });
        Ok(v)
    }

    /// The record of a zone with exactly this name (relative), type and data, if any, whether
    /// the user may read it or not (for refusing duplicates; only its id is told).
    pub fn find_dns_record(&self, zone: Id, name: &str, rtype: &str, data: &str) -> Option<Id> {
        self.st.find_dns_record(zone, name, rtype, data)
    }

    /// The client identifier of a reservation of `scope` (other than `except`) for this client
    /// or for one of these addresses, whether the user may read it or not (for refusing
    /// duplicates before a server is asked).
    pub fn reservation_conflict(
        &self,
        scope: Id,
        client: &str,
        addresses: &[IpAddr],
        except: Id,
    ) -> Option<String> {
        self.st
            .scope_reservations
            .get(&scope)
            .into_iter()
            .flatten()
            .filter(|id| **id != except)
            .filter_map(|id| self.st.reservations.get(id))
            .find(|o| {
                o.client_identifier.eq_ignore_ascii_case(client)
                    || o.addresses.iter().any(|a| addresses.contains(a))
            })
            .map(|o| o.client_identifier.clone())
    }

    /// The number of records of a zone.
    pub fn dns_record_count(&self, zone: Id) -> usize {
        self.st.zone_records.get(&zone).map_or(0, BTreeSet::len)
    }

    /// One DNS record.
    pub fn dns_record(&self, id: Id) -> Result<DnsRecord, EngineError> {
        let key = ObjKey::DnsRecord(id);
        let r = self
            .st
            .dns_records
            .get(&id)
            .ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        Ok(r.clone())
    }

    /// DHCP scopes the user may read.
    pub fn dhcp_scopes(&self) -> Vec<DhcpScope> {
        self.st
            .scopes
            .values()
            .filter(|s| self.can_read(&ObjKey::DhcpScope(s.id)))
            .cloned()
            .collect()
    }

    /// The DHCP scopes on a range (usually none or one) the user may read.
    pub fn dhcp_scopes_of_range(&self, range: Id) -> Vec<DhcpScope> {
        self.st
            .range_scopes
            .get(&range)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.scopes.get(id))
            .filter(|s| self.can_read(&ObjKey::DhcpScope(s.id)))
            .cloned()
            .collect()
    }

    /// One DHCP scope.
    pub fn dhcp_scope(&self, id: Id) -> Result<DhcpScope, EngineError> {
        let key = ObjKey::DhcpScope(id);
        let s = self.st.scopes.get(&id).ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        Ok(s.clone())
    }

    /// The reservations of a scope (or of every scope) the user may read.
    pub fn dhcp_reservations(&self, scope: Option<Id>) -> Vec<DhcpReservation> {
        let readable = |r: &&DhcpReservation| self.can_read(&ObjKey::DhcpReservation(r.id));
        match scope {
            None => self
                .st
                .reservations
                .values()
                .filter(readable)
                .cloned()
                .collect(),
            Some(s) => self
                .st
                .scope_reservations
                .get(&s)
                .into_iter()
                .flatten()
                .filter_map(|id| self.st.reservations.get(id))
                .filter(readable)
                .cloned()
                .collect(),
        }
    }

    /// One DHCP reservation.
    pub fn dhcp_reservation(&self, id: Id) -> Result<DhcpReservation, EngineError> {
        let key = ObjKey::DhcpReservation(id);
        let r = self
            .st
            .reservations
            .get(&id)
            .ok_or_else(|| not_found(&key))?;
        self.check(Permission::Read, &key)?;
        Ok(r.clone())
    }

    /// The leases of a scope the user may read, by address.
    pub fn dhcp_leases(&self, scope: Id) -> Vec<DhcpLease> {
        let mut v: Vec<DhcpLease> = self
            .st
            .scope_leases
            .get(&scope)
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.leases.get(id))
            .filter(|l| self.can_read(&ObjKey::DhcpLease(l.id)))
            .cloned()
            .collect();
        v.sort_by_key(|l| l.addr);
        v
    }

    /// The DNS records, DHCP reservations and active leases naming an address.
    pub fn address_links(&self, space: Id, addr: IpAddr) -> AddressLinks {
        let mut out = AddressLinks::default();
        let Some(l) = self.st.links_of(space, addr) else {
            return out;
        };
        for id in &l.dns {
            if let Some(r) = self.st.dns_records.get(id) {
                if let Some(z) = self.st.zones.get(&r.zone) {
                    if self.can_read(&ObjKey::DnsRecord(*id)) {
                        out.dns.push((r.clone(), z.clone()));
                    }
                }
            }
        }
        out.reservations = l
            .reservations
            .iter()
            .filter_map(|id| self.st.reservations.get(id))
            .filter(|r| self.can_read(&ObjKey::DhcpReservation(r.id)))
            .cloned()
            .collect();
        out.leases = l
            .leases
            .iter()
            .filter_map(|id| self.st.leases.get(id))
            .filter(|r| self.can_read(&ObjKey::DhcpLease(r.id)))
            .cloned()
            .collect();
        out
    }

    /// Every object, sorted by key (needs Administer): for exports and for comparing states.
    pub fn objects(&self) -> Result<Vec<Object>, EngineError> {
        self.st.check(&self.actor, Permission::Administer, None)?;
        Ok(self.st.dump())
    }
}
