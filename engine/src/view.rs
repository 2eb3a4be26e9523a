//! Reads: a consistent view of one committed version of the state, as one user, within a work
//! budget. Obtained from [`crate::Engine::read`] and [`crate::Engine::read_with`].
//!
//! Access is structural: every method and iterator here yields only objects the user may
//! read, and an object the user may not read answers exactly like one that does not exist
//! ([`EngineError::NotFound`]), so neither listings nor lookups tell hidden objects apart from
//! missing ones. Scans count what they examine against the view's [`Budget`].

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_index::{BlockSize, Start, Utilization};

use crate::command::BlockSpec;
use crate::error::{BudgetExceeded, EngineError};
use crate::model::{
    AccessList, AddressSpace, DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord,
    DnsServer, DnsZone, Folder, Group, Id, IpamRecord, ObjKey, ObjType, Object, Permission,
    PropertyDefinition, Range, Role, User,
};
use crate::state::{Actor, State};

/// The work one read may do: a deadline, a cancellation flag (set when the client goes
/// away) and a cap on the objects its scans examine. Shared by every scan of one request.
///
/// ```
/// use std::time::Duration;
/// let b = ipam_engine::Budget::unlimited()
///     .with_timeout(Duration::from_secs(10))
///     .with_max_examined(1_000_000);
/// assert!(b.spend(10).is_ok());
/// assert_eq!(b.examined(), 10);
/// ```
#[derive(Debug)]
pub struct Budget {
    start: Option<Instant>,
    deadline: Option<Instant>,
    cancelled: Option<Arc<AtomicBool>>,
    max_examined: Option<u64>,
    examined: AtomicU64,
}

/// How many objects are examined between two looks at the clock and the cancellation flag.
const CHECK_EVERY: u64 = 256;

static UNLIMITED: Budget = Budget::unlimited();

impl Budget {
    /// No limit at all (engine-internal reads, tests).
    pub const fn unlimited() -> Budget {
        Budget {
            start: None,
            deadline: None,
            cancelled: None,
            max_examined: None,
            examined: AtomicU64::new(0),
        }
    }

    /// The shared unlimited budget.
    pub(crate) fn none() -> &'static Budget {
        &UNLIMITED
    }

    /// Stops the read `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Budget {
        let now = Instant::now();
        self.start = Some(now);
        self.deadline = now.checked_add(timeout);
        self
    }

    /// Stops the read once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Budget {
        self.cancelled = Some(flag);
        self
    }

    /// Stops the read once its scans examined more than `n` objects.
    pub fn with_max_examined(mut self, n: u64) -> Budget {
        self.max_examined = Some(n);
        self
    }

    /// Objects examined so far.
    pub fn examined(&self) -> u64 {
        self.examined.load(Ordering::Relaxed)
    }

    /// Whether nothing limits this budget.
    fn is_unlimited(&self) -> bool {
        self.deadline.is_none() && self.cancelled.is_none() && self.max_examined.is_none()
    }

    /// Counts `n` more examined objects. Errors once the cap is passed, the deadline is over
    /// (looked at every few hundred objects) or the request was cancelled.
    pub fn spend(&self, n: u64) -> Result<(), EngineError> {
        if self.is_unlimited() {
            return Ok(());
        }
        let before = self.examined.fetch_add(n, Ordering::Relaxed);
        let total = before + n;
        if let Some(limit) = self.max_examined {
            if total > limit {
                return Err(BudgetExceeded::TooMuchWork { limit }.into());
            }
        }
        if before == 0 || before / CHECK_EVERY != total / CHECK_EVERY {
            self.check_now(total)?;
        }
        Ok(())
    }

    /// Looks at the clock and the cancellation flag now.
    pub fn check(&self) -> Result<(), EngineError> {
        if self.is_unlimited() {
            return Ok(());
        }
        self.check_now(self.examined())
    }

    fn check_now(&self, examined: u64) -> Result<(), EngineError> {
        if self
            .cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(BudgetExceeded::Cancelled.into());
        }
        if let (Some(start), Some(d)) = (self.start, self.deadline) {
            if Instant::now() >= d {
                return Err(BudgetExceeded::Deadline {
                    limit_ms: d.duration_since(start).as_millis() as u64,
                    examined,
                }
                .into());
            }
        }
        Ok(())
    }
}

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

/// A consistent, access-checked view of one committed version of the model.
pub struct View<'a> {
    st: &'a State,
    actor: Actor,
    budget: &'a Budget,
    /// Whether the user may read the records owned by a range (its deepest range), by range
    /// id (`None`: addresses in no range): one access walk per range, not per record.
    record_access: RefCell<HashMap<Option<Id>, bool>>,
}

/// The answer for an object the user may not read: the same as for one that does not exist.
fn hidden(key: &ObjKey) -> EngineError {
    EngineError::NotFound(key.to_ref())
}

impl<'a> View<'a> {
    pub(crate) fn new(st: &'a State, actor: Actor, budget: &'a Budget) -> View<'a> {
        View {
            st,
            actor,
            budget,
            record_access: RefCell::new(HashMap::new()),
        }
    }

    /// `Ok` when the user may read `key`; otherwise the error a missing object gives.
    fn check_read(&self, key: &ObjKey) -> Result<(), EngineError> {
        if self.can_read(key) {
            Ok(())
        } else {
            Err(hidden(key))
        }
    }

    fn can_read(&self, key: &ObjKey) -> bool {
        self.st.can(&self.actor, Permission::Read, Some(key))
    }

    /// Whether the user may read the record of `addr` (cached per owning range).
    fn can_read_record(&self, space: Id, addr: IpAddr) -> bool {
        if self.actor.superuser {
            return true;
        }
        let owner = self.st.spaces.get(&space).and_then(|s| s.idx.deepest(addr));
        if let Some(&known) = self.record_access.borrow().get(&owner) {
            return known;
        }
        let ok = self.can_read(&ObjKey::IpamRecord { space, addr });
        self.record_access.borrow_mut().insert(owner, ok);
        ok
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

    /// The request's work budget: callers that scan through this view's answers count what
    /// they examine with [`Budget::spend`].
    pub fn budget(&self) -> &Budget {
        self.budget
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

    /// One range; a range the user may not read is reported as missing.
    pub fn range(&self, id: Id) -> Result<RangeView, EngineError> {
        let key = ObjKey::Range(id);
        let e = self.st.ranges.get(&id).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        let idx = &self.st.spaces[&e.range.space].idx;
        Ok(RangeView {
            range: e.range.clone(),
            parent: idx.parent(e.rid),
            children: idx.child_count(e.rid),
            prefix_len: idx.prefix_len(e.rid),
            utilization: idx.utilization(e.rid)?,
        })
    }

    /// The range with exactly these bounds, if the user may read it.
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
    /// order (a range before the ranges it contains). Each range looked at counts against
    /// the budget.
    pub fn ranges_where(
        &self,
        space: Id,
        mut keep: impl FnMut(&Range) -> bool,
    ) -> Result<Vec<Range>, EngineError> {
        let mut out: Vec<Range> = Vec::new();
        for e in self.st.ranges.values() {
            self.budget.spend(1)?;
            let r = &e.range;
            if r.space == space && keep(r) && self.can_read(&ObjKey::Range(r.id)) {
                out.push(r.clone());
            }
        }
        out.sort_unstable_by(|a, b| a.from.cmp(&b.from).then(b.to.cmp(&a.to)));
        Ok(out)
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
            .ok_or_else(|| hidden(&ObjKey::AddressSpace(space)))?;
        let rid = match parent {
            Some(p) => {
                let e = self
                    .st
                    .ranges
                    .get(&p)
                    .ok_or_else(|| hidden(&ObjKey::Range(p)))?;
                self.check_read(&ObjKey::Range(p))?;
                Some(e.rid)
            }
            None => None,
        };
        let mut out = Vec::new();
        let mut from = start;
        while out.len() < limit {
            let ids = s.idx.children(rid, v6, from, limit - out.len() + 1)?;
            let last = ids.len() < limit - out.len() + 1;
            self.budget.spend(ids.len() as u64)?;
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

    /// The record of any address, stored or not. An address the user may not read answers
    /// exactly like one in no range: a blank, free record (nothing about it is told).
    pub fn record(&self, space: Id, addr: IpAddr) -> Result<IpamRecord, EngineError> {
        if !self.st.spaces.contains_key(&space) {
            return Err(hidden(&ObjKey::AddressSpace(space)));
        }
        if !self.can_read_record(space, addr) {
            return Ok(IpamRecord::free(space, addr));
        }
        Ok(self.st.record(space, addr))
    }

    /// The records of a range in `from..=to` (clamped to the range; `None`: its ends) that
    /// are used or carry data, in address order, that the user may read. Each record looked
    /// at counts against the budget, readable or not. The range itself must be readable.
    pub fn records_in(
        &self,
        range: Id,
        from: Option<IpAddr>,
        to: Option<IpAddr>,
    ) -> Result<Records<'_, 'a>, EngineError> {
        let key = ObjKey::Range(range);
        let e = self.st.ranges.get(&range).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        let r = &e.range;
        let lo = from.map_or(r.from, |s| s.max(r.from));
        let hi = to.map_or(r.to, |t| t.min(r.to));
        Ok(Records {
            view: self,
            space: r.space,
            lo: (lo <= hi && same_family(lo, hi)).then_some(lo),
            hi,
            rich_from: Some(lo),
            used_from: Some(lo),
            rich: VecDeque::new(),
            used: VecDeque::new(),
            failed: false,
        })
    }

    /// Up to `limit` records of a range at or after `start` that are used or carry data, in
    /// address order (see [`View::records_in`]).
    pub fn records(
        &self,
        range: Id,
        start: Option<IpAddr>,
        limit: usize,
    ) -> Result<Vec<IpamRecord>, EngineError> {
        self.records_in(range, start, None)?.take(limit).collect()
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
        let e = self.st.ranges.get(&range).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
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
        let e = self.st.ranges.get(&range).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
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

    /// Access entries of an object (needs Administer on it; an object the user may not read
    /// is reported as missing).
    pub fn access(&self, t: ObjType, id: Id) -> Result<Option<AccessList>, EngineError> {
        let k = ObjKey::of(t, id).ok_or_else(|| {
            EngineError::invalid("obj_type", format!("{t} objects have no access entries"))
        })?;
        self.check_read(&k)?;
        self.st
            .check(&self.actor, Permission::Administer, Some(&k))?;
        Ok(self.st.access.get(&(t, id)).map(|a| AccessList::clone(a)))
    }

    /// Whether an object has access entries of its own (needs only Read on it: the entries
    /// themselves need Administer, see [`View::access`]).
    pub fn has_access_entries(&self, t: ObjType, id: Id) -> Result<bool, EngineError> {
        let k = ObjKey::of(t, id).ok_or_else(|| {
            EngineError::invalid("obj_type", format!("{t} objects have no access entries"))
        })?;
        self.check_read(&k)?;
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
            .map(|z| DnsZone::clone(z))
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
            .map(|z| DnsZone::clone(z))
            .collect()
    }

    /// One DNS zone.
    pub fn dns_zone(&self, id: Id) -> Result<DnsZone, EngineError> {
        let key = ObjKey::DnsZone(id);
        let z = self.st.zones.get(&id).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        Ok(DnsZone::clone(z))
    }

    /// The records of a zone the user may read, by name, type and data.
    pub fn dns_records(&self, zone: Id) -> Result<Vec<DnsRecord>, EngineError> {
        self.dns_zone(zone)?;
        let ids = self.st.zone_records.get(&zone);
        self.budget.spend(ids.map_or(0, |s| s.len() as u64))?;
        let mut v: Vec<DnsRecord> = ids
            .into_iter()
            .flatten()
            .filter_map(|id| self.st.dns_records.get(id))
            .filter(|r| self.can_read(&ObjKey::DnsRecord(r.id)))
            .map(|r| DnsRecord::clone(r))
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

    /// The number of records of a zone the user may read.
    pub fn dns_record_count(&self, zone: Id) -> usize {
        let Some(ids) = self.st.zone_records.get(&zone) else {
            return 0;
        };
        if self.actor.superuser || !self.any_access_entries(ObjType::DnsRecord) {
            // Records take their access from the zone (checked by the caller) unless some
            // record has entries of its own.
            return ids.len();
        }
        ids.iter()
            .filter(|id| self.can_read(&ObjKey::DnsRecord(**id)))
            .count()
    }

    /// Whether any object of type `t` has access entries of its own.
    fn any_access_entries(&self, t: ObjType) -> bool {
        self.st.access.keys().any(|(kt, _)| *kt == t)
    }

    /// One DNS record.
    pub fn dns_record(&self, id: Id) -> Result<DnsRecord, EngineError> {
        let key = ObjKey::DnsRecord(id);
        let r = self.st.dns_records.get(&id).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        Ok(DnsRecord::clone(r))
    }

    /// DHCP scopes the user may read.
    pub fn dhcp_scopes(&self) -> Vec<DhcpScope> {
        self.st
            .scopes
            .values()
            .filter(|s| self.can_read(&ObjKey::DhcpScope(s.id)))
            .map(|s| DhcpScope::clone(s))
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
            .map(|s| DhcpScope::clone(s))
            .collect()
    }

    /// One DHCP scope.
    pub fn dhcp_scope(&self, id: Id) -> Result<DhcpScope, EngineError> {
        let key = ObjKey::DhcpScope(id);
        let s = self.st.scopes.get(&id).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        Ok(DhcpScope::clone(s))
    }

    /// The reservations of a scope (or of every scope) the user may read.
    pub fn dhcp_reservations(&self, scope: Option<Id>) -> Vec<DhcpReservation> {
        let readable = |r: &&Arc<DhcpReservation>| self.can_read(&ObjKey::DhcpReservation(r.id));
        match scope {
            None => self
                .st
                .reservations
                .values()
                .filter(readable)
                .map(|r| DhcpReservation::clone(r))
                .collect(),
            Some(s) => self
                .st
                .scope_reservations
                .get(&s)
                .into_iter()
                .flatten()
                .filter_map(|id| self.st.reservations.get(id))
                .filter(readable)
                .map(|r| DhcpReservation::clone(r))
                .collect(),
        }
    }

    /// One DHCP reservation.
    pub fn dhcp_reservation(&self, id: Id) -> Result<DhcpReservation, EngineError> {
        let key = ObjKey::DhcpReservation(id);
        let r = self.st.reservations.get(&id).ok_or_else(|| hidden(&key))?;
        self.check_read(&key)?;
        Ok(DhcpReservation::clone(r))
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
            .map(|l| DhcpLease::clone(l))
            .collect();
        v.sort_by_key(|l| l.addr);
        v
    }

    /// The DNS records, DHCP reservations and active leases naming an address, those the
    /// user may read.
    pub fn address_links(&self, space: Id, addr: IpAddr) -> AddressLinks {
        let mut out = AddressLinks::default();
        let Some(l) = self.st.links_of(space, addr) else {
            return out;
        };
        for id in &l.dns {
            if let Some(r) = self.st.dns_records.get(id) {
                if let Some(z) = self.st.zones.get(&r.zone) {
                    if self.can_read(&ObjKey::DnsRecord(*id)) {
                        out.dns.push((DnsRecord::clone(r), DnsZone::clone(z)));
                    }
                }
            }
        }
        out.reservations = l
            .reservations
            .iter()
            .filter_map(|id| self.st.reservations.get(id))
            .filter(|r| self.can_read(&ObjKey::DhcpReservation(r.id)))
            .map(|r| DhcpReservation::clone(r))
            .collect();
        out.leases = l
            .leases
            .iter()
            .filter_map(|id| self.st.leases.get(id))
            .filter(|r| self.can_read(&ObjKey::DhcpLease(r.id)))
            .map(|l| DhcpLease::clone(l))
            .collect();
        out
    }

    /// Every object the user may read, sorted by key (needs Administer): for exports and
    /// for comparing states.
    pub fn objects(&self) -> Result<Vec<Object>, EngineError> {
        self.st.check(&self.actor, Permission::Administer, None)?;
        let mut all = self.st.dump();
        if !self.actor.superuser {
            all.retain(|o| match o.key() {
                ObjKey::IpamRecord { space, addr } => self.can_read_record(space, addr),
                k => self.can_read(&k),
            });
        }
        Ok(all)
    }
}

/// The records of one range, in address order, that the user may read: the merge of the
/// stored records (an ordered map) and the used addresses (the index), fetched a page at a
/// time. Yields `Err` once (and then nothing) when the budget runs out.
pub struct Records<'v, 'a> {
    view: &'v View<'a>,
    space: Id,
    /// `None` when the window is empty.
    lo: Option<IpAddr>,
    hi: IpAddr,
    /// Where the next page of each source starts (`None`: that source is exhausted).
    rich_from: Option<IpAddr>,
    used_from: Option<IpAddr>,
    rich: VecDeque<IpAddr>,
    used: VecDeque<IpAddr>,
    failed: bool,
}

const PAGE: usize = 1024;

impl Records<'_, '_> {
    fn refill(&mut self) -> Result<(), EngineError> {
        let st = self.view.st;
        if self.rich.is_empty() {
            if let Some(from) = self.rich_from {
                let page: Vec<IpAddr> = st
                    .records
                    .range((self.space, from)..=(self.space, self.hi))
                    .map(|(k, _)| k.1)
                    .take(PAGE)
                    .collect();
                self.rich_from = if page.len() == PAGE {
                    page.last().and_then(|a| next_ip(*a))
                } else {
                    None
                };
                self.rich.extend(page);
            }
        }
        if self.used.is_empty() {
            if let Some(from) = self.used_from {
                let page = match st.spaces.get(&self.space) {
                    Some(s) if from <= self.hi => s.idx.used_in(from, self.hi, PAGE)?,
                    _ => Vec::new(),
                };
                self.used_from = if page.len() == PAGE {
                    page.last().and_then(|a| next_ip(*a))
                } else {
                    None
                };
                self.used.extend(page);
            }
        }
        Ok(())
    }

    fn next_addr(&mut self) -> Result<Option<IpAddr>, EngineError> {
        self.refill()?;
        let a = match (self.rich.front(), self.used.front()) {
            (None, None) => return Ok(None),
            (Some(&r), None) => r,
            (None, Some(&u)) => u,
            (Some(&r), Some(&u)) => r.min(u),
        };
        if self.rich.front() == Some(&a) {
            self.rich.pop_front();
        }
        if self.used.front() == Some(&a) {
            self.used.pop_front();
        }
        Ok(Some(a))
    }
}

impl Iterator for Records<'_, '_> {
    type Item = Result<IpamRecord, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.lo.is_none() {
            return None;
        }
        loop {
            let step = self.next_addr().and_then(|a| {
                self.view.budget.spend(1)?;
                Ok(a)
            });
            match step {
                Ok(None) => return None,
                Ok(Some(a)) => {
                    if self.view.can_read_record(self.space, a) {
                        return Some(Ok(self.view.st.record(self.space, a)));
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Whether two addresses are of one family.
fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// The address after `a`, `None` at the top of its family.
fn next_ip(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(x) => u32::from(x).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(x) => u128::from(x).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}
