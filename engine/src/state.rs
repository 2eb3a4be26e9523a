//! The in-memory model: every object, the index per address space, and the one primitive that
//! changes them, [`State::put`] (an object's new image, or its removal).
//!
//! Commands, replay of the change log and rollback of a failed transaction all go through
//! `put`, so the model and the index cannot drift apart.
//!
//! Every collection is persistent (structurally shared: `imbl` maps, the index's
//! copy-on-write chunks, large values behind `Arc`), so `State::clone` is cheap and the copy
//! is independent. The writer publishes a clone after each batch; readers work on theirs
//! without holding any lock (see `engine/DESIGN.md`, "Reads").

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use imbl::{GenericHashMap, OrdMap, OrdSet};
use ipam_index::AnyRangeId;

use crate::error::EngineError;
use crate::idx::SpaceIndex;
use crate::model::{
    AccessList, AddressSpace, DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord,
    DnsServer, DnsZone, Folder, Group, Id, IpamRecord, Millis, ObjKey, ObjType, Object, Permission,
    Principal, Properties, PropertyDefinition, PropertyType, Range, RecordState, Role, User,
    SYSTEM_USER,
};
use crate::store::IdempotencyEntry;

/// One address space: its object and its index.
#[derive(Clone, Debug)]
pub(crate) struct SpaceState {
    pub(crate) meta: AddressSpace,
    pub(crate) idx: SpaceIndex,
}

/// A range and where it sits in its space's index.
#[derive(Clone, Debug)]
pub(crate) struct RangeEntry {
    pub(crate) range: Range,
    pub(crate) rid: AnyRangeId,
}

/// A persistent hash map keyed by engine ids.
pub(crate) type IdMap<V> = GenericHashMap<Id, V, IdHasher, imbl::shared_ptr::DefaultSharedPtr>;
/// A persistent hash map with std's randomized hasher (keys chosen by clients).
pub(crate) type HashMap<K, V> = imbl::HashMap<K, V>;

/// The whole model. Cloning it is cheap (see the module docs); large values sit behind `Arc`
/// so that the maps' node copies move pointers, not records.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub(crate) spaces: OrdMap<Id, Arc<SpaceState>>,
    pub(crate) ranges: IdMap<Arc<RangeEntry>>,
    /// Records that carry more than "Assigned": every other used address is a plain
    /// `Assigned` record held only as a bit in the index. Ordered, so a range's records are
    /// one range scan.
    pub(crate) records: OrdMap<(Id, IpAddr), Arc<IpamRecord>>,
    /// Held addresses by expiry.
    pub(crate) holds: OrdSet<(Millis, Id, IpAddr)>,
    pub(crate) propdefs: OrdMap<Id, PropertyDefinition>,
    pub(crate) folders: OrdMap<Id, Folder>,
    pub(crate) users: OrdMap<Id, User>,
    pub(crate) groups: OrdMap<Id, Group>,
    pub(crate) roles: OrdMap<Id, Role>,
    pub(crate) access: HashMap<(ObjType, Id), Arc<AccessList>>,
    pub(crate) dns_servers: OrdMap<Id, DnsServer>,
    pub(crate) zones: OrdMap<Id, Arc<DnsZone>>,
    /// Zones by name (derived from `zones`).
    pub(crate) zone_names: HashMap<String, OrdSet<Id>>,
    pub(crate) dns_records: IdMap<Arc<DnsRecord>>,
    /// The records of each zone (derived from `dns_records`).
    pub(crate) zone_records: IdMap<OrdSet<Id>>,
    /// Records by a hash of (zone, name, type, data), to find one without a scan (derived).
    pub(crate) rr_by_content: IdMap<Vec<Id>>,
    pub(crate) dhcp_servers: OrdMap<Id, DhcpServer>,
    pub(crate) scopes: OrdMap<Id, Arc<DhcpScope>>,
    pub(crate) reservations: OrdMap<Id, Arc<DhcpReservation>>,
    pub(crate) leases: IdMap<Arc<DhcpLease>>,
    /// The reservations and the leases of each scope (derived).
    pub(crate) scope_reservations: IdMap<OrdSet<Id>>,
    pub(crate) scope_leases: IdMap<OrdSet<Id>>,
    /// DNS records, reservations and active leases by the address they name (derived).
    pub(crate) links: OrdMap<(Id, IpAddr), Arc<Links>>,
    /// The scopes on each range (derived).
    pub(crate) range_scopes: IdMap<OrdSet<Id>>,
    pub(crate) next_id: Id,
    /// Sequence number of the last change applied (committed or not).
    pub(crate) applied_seq: u64,
    pub(crate) idempotency: HashMap<String, Arc<IdempotencyEntry>>,
}

/// What names one address: DNS records, DHCP reservations and active leases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Links {
    pub(crate) dns: BTreeSet<Id>,
    pub(crate) reservations: BTreeSet<Id>,
    pub(crate) leases: BTreeSet<Id>,
}

impl Links {
    pub(crate) fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.reservations.is_empty() && self.leases.is_empty()
    }
}

/// Which list of [`Links`] an object goes in.
#[derive(Clone, Copy)]
enum LinkKind {
    Dns,
    Reservation,
    Lease,
}

/// Removes `id` from the set of `owner`, and the set when it empties.
fn unindex(map: &mut IdMap<OrdSet<Id>>, owner: Id, id: Id) {
    if let Some(set) = map.get_mut(&owner) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(&owner);
        }
    }
}

/// The hash [`State::rr_by_content`] is keyed by.
fn rr_hash(zone: Id, name: &str, rtype: &str, data: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (zone, name, rtype, data).hash(&mut h);
    h.finish()
}

/// Hashes engine-issued ids (never chosen by clients, so no flooding risk) with one multiply
/// instead of SipHash: building the range map of a million ranges at start-up is a third
/// faster.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher;

impl std::hash::BuildHasher for IdHasher {
    type Hasher = IdHash;
    fn build_hasher(&self) -> IdHash {
        IdHash(0)
    }
}

/// See [`IdHasher`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Who is acting, resolved once per transaction or read.
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) superuser: bool,
    pub(crate) principals: Vec<Principal>,
    pub(crate) global: BTreeSet<Permission>,
}

fn corrupt(key: &ObjKey, why: impl std::fmt::Display) -> EngineError {
    EngineError::invalid("object image", format!("{key}: {why}"))
}

impl State {
    pub(crate) fn new() -> State {
        State {
            next_id: 1,
            ..State::default()
        }
    }

    pub(crate) fn issue_id(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// An address space for changing (shared with published versions until changed).
    fn space_mut(&mut self, space: Id) -> Option<&mut Arc<SpaceState>> {
        self.spaces.get_mut(&space)
    }

    /// The index of an address space for changing: copied from the published version on the
    /// first change (chunk by chunk, see `ipam_index::ChunkVec`).
    pub(crate) fn idx_mut(&mut self, space: Id) -> Option<&mut SpaceIndex> {
        self.spaces
            .get_mut(&space)
            .map(|s| &mut Arc::make_mut(s).idx)
    }

    /// The record of an address: stored, plain assigned (a bit in the index), or blank.
    pub(crate) fn record(&self, space: Id, addr: IpAddr) -> IpamRecord {
        if let Some(r) = self.records.get(&(space, addr)) {
            return IpamRecord::clone(r);
        }
        let mut r = IpamRecord::free(space, addr);
        if self.spaces.get(&space).is_some_and(|s| s.idx.is_used(addr)) {
            r.state = RecordState::Assigned;
        }
        r
    }

    /// The current image of an object, `None` when it does not exist (a blank record).
    pub(crate) fn get(&self, key: &ObjKey) -> Option<Object> {
        match *key {
            ObjKey::AddressSpace(id) => self
                .spaces
                .get(&id)
                .map(|s| Object::AddressSpace(s.meta.clone())),
            ObjKey::Range(id) => self.ranges.get(&id).map(|e| Object::Range(e.range.clone())),
            ObjKey::IpamRecord { space, addr } => {
                let r = self.record(space, addr);
                (!r.is_blank()).then_some(Object::IpamRecord(r))
            }
            ObjKey::PropertyDefinition(id) => self
                .propdefs
                .get(&id)
                .cloned()
                .map(Object::PropertyDefinition),
            ObjKey::Folder(id) => self.folders.get(&id).cloned().map(Object::Folder),
            ObjKey::User(id) => self.users.get(&id).cloned().map(Object::User),
            ObjKey::Group(id) => self.groups.get(&id).cloned().map(Object::Group),
            ObjKey::Role(id) => self.roles.get(&id).cloned().map(Object::Role),
            ObjKey::Access(t, id) => self
                .access
                .get(&(t, id))
                .map(|a| Object::Access(AccessList::clone(a))),
            ObjKey::DnsServer(id) => self.dns_servers.get(&id).cloned().map(Object::DnsServer),
            ObjKey::DnsZone(id) => self
                .zones
                .get(&id)
                .map(|z| Object::DnsZone(DnsZone::clone(z))),
            ObjKey::DnsRecord(id) => self
                .dns_records
                .get(&id)
                .map(|r| Object::DnsRecord(DnsRecord::clone(r))),
            ObjKey::DhcpServer(id) => self.dhcp_servers.get(&id).cloned().map(Object::DhcpServer),
            ObjKey::DhcpScope(id) => self
                .scopes
                .get(&id)
                .map(|s| Object::DhcpScope(DhcpScope::clone(s))),
            ObjKey::DhcpReservation(id) => self
                .reservations
                .get(&id)
                .map(|r| Object::DhcpReservation(DhcpReservation::clone(r))),
            ObjKey::DhcpLease(id) => self
                .leases
                .get(&id)
                .map(|l| Object::DhcpLease(DhcpLease::clone(l))),
        }
    }

    /// The DNS records, reservations and active leases naming an address.
    pub(crate) fn links_of(&self, space: Id, addr: IpAddr) -> Option<&Links> {
        self.links.get(&(space, addr)).map(|l| &**l)
    }

    fn link(&mut self, kind: LinkKind, id: Id, space: Id, addrs: &[IpAddr], add: bool) {
        for a in addrs {
            let k = (space, *a);
            if add {
                let l = Arc::make_mut(self.links.entry(k).or_default());
                match kind {
                    LinkKind::Dns => l.dns.insert(id),
                    LinkKind::Reservation => l.reservations.insert(id),
                    LinkKind::Lease => l.leases.insert(id),
                };
            } else if let Some(l) = self.links.get_mut(&k) {
                let l = Arc::make_mut(l);
                match kind {
                    LinkKind::Dns => l.dns.remove(&id),
                    LinkKind::Reservation => l.reservations.remove(&id),
                    LinkKind::Lease => l.leases.remove(&id),
                };
                if l.is_empty() {
                    self.links.remove(&k);
                }
            }
        }
    }

    /// The record of `zone` with this name, type and data, if there is one.
    pub(crate) fn find_dns_record(
        &self,
        zone: Id,
        name: &str,
        rtype: &str,
        data: &str,
    ) -> Option<Id> {
        self.rr_by_content
            .get(&rr_hash(zone, name, rtype, data))?
            .iter()
            .copied()
            .find(|id| {
                self.dns_records.get(id).is_some_and(|r| {
                    r.zone == zone && r.name == name && r.rtype == rtype && r.data == data
                })
            })
    }

    fn put_dns_record(&mut self, id: Id, img: Option<DnsRecord>) {
        if let Some(old) = self.dns_records.get(&id) {
            let h = rr_hash(old.zone, &old.name, &old.rtype, &old.data);
            if let Some(v) = self.rr_by_content.get_mut(&h) {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    self.rr_by_content.remove(&h);
                }
            }
        }
        if let Some(r) = &img {
            self.rr_by_content
                .entry(rr_hash(r.zone, &r.name, &r.rtype, &r.data))
                .or_default()
                .push(id);
        }
        if let Some(old) = self.dns_records.remove(&id) {
            let addrs: Vec<IpAddr> = old.links().collect();
            self.link(
                LinkKind::Dns,
                id,
                crate::apply::DEFAULT_SPACE,
                &addrs,
                false,
            );
            unindex(&mut self.zone_records, old.zone, id);
        }
        if let Some(r) = img {
            let addrs: Vec<IpAddr> = r.links().collect();
            self.link(LinkKind::Dns, id, crate::apply::DEFAULT_SPACE, &addrs, true);
            self.zone_records.entry(r.zone).or_default().insert(id);
            self.dns_records.insert(id, Arc::new(r));
        }
    }

    fn put_reservation(&mut self, id: Id, img: Option<DhcpReservation>) {
        if let Some(old) = self.reservations.remove(&id) {
            self.link(LinkKind::Reservation, id, old.space, &old.addresses, false);
            unindex(&mut self.scope_reservations, old.scope, id);
        }
        if let Some(r) = img {
            self.link(LinkKind::Reservation, id, r.space, &r.addresses, true);
            self.scope_reservations
                .entry(r.scope)
                .or_default()
                .insert(id);
            self.reservations.insert(id, Arc::new(r));
        }
    }

    fn put_lease(&mut self, id: Id, img: Option<DhcpLease>) {
        if let Some(old) = self.leases.remove(&id) {
            if old.is_active() {
                self.link(LinkKind::Lease, id, old.space, &[old.addr], false);
            }
            unindex(&mut self.scope_leases, old.scope, id);
        }
        if let Some(l) = img {
            if l.is_active() {
                self.link(LinkKind::Lease, id, l.space, &[l.addr], true);
            }
            self.scope_leases.entry(l.scope).or_default().insert(id);
            self.leases.insert(id, Arc::new(l));
        }
    }

    /// Sets an object's image (`None` removes it), keeping the index in step. The caller has
    /// validated the change; errors here come from the index (a range that cannot be placed)
    /// or from an image that does not fit its key, and leave the state unchanged.
    pub(crate) fn put(&mut self, key: &ObjKey, image: Option<Object>) -> Result<(), EngineError> {
        if let Some(obj) = &image {
            if obj.key() != *key {
                return Err(corrupt(key, "image belongs to another object"));
            }
        }
        match (key, image) {
            (ObjKey::AddressSpace(id), Some(Object::AddressSpace(a))) => {
                match self.spaces.get_mut(id) {
                    Some(s) => Arc::make_mut(s).meta = a,
                    None => {
                        self.spaces.insert(
                            *id,
                            Arc::new(SpaceState {
                                meta: a,
                                idx: SpaceIndex::default(),
                            }),
                        );
                    }
                }
            }
            (ObjKey::AddressSpace(id), None) => {
                self.spaces.remove(id);
            }
            (ObjKey::Range(id), Some(Object::Range(r))) => self.put_range(*id, r)?,
            (ObjKey::Range(id), None) => {
                if let Some(e) = self.ranges.get(id) {
                    let rid = e.rid;
                    let space = self
                        .space_mut(e.range.space)
                        .ok_or_else(|| corrupt(key, "its address space is gone"))?;
                    Arc::make_mut(space).idx.remove(rid)?;
                    self.ranges.remove(id);
                }
            }
            (ObjKey::IpamRecord { space, addr }, img) => {
                let rec = match img {
                    Some(Object::IpamRecord(r)) => r,
                    None => IpamRecord::free(*space, *addr),
                    Some(_) => return Err(corrupt(key, "not a record")),
                };
                self.put_record(rec)?;
            }
            (ObjKey::PropertyDefinition(id), img) => {
                put_map(&mut self.propdefs, *id, img, |o| match o {
                    Object::PropertyDefinition(d) => Some(d),
                    _ => None,
                })
            }
            (ObjKey::Folder(id), img) => put_map(&mut self.folders, *id, img, |o| match o {
                Object::Folder(d) => Some(d),
                _ => None,
            }),
            (ObjKey::User(id), img) => put_map(&mut self.users, *id, img, |o| match o {
                Object::User(d) => Some(d),
                _ => None,
            }),
            (ObjKey::Group(id), img) => put_map(&mut self.groups, *id, img, |o| match o {
                Object::Group(d) => Some(d),
                _ => None,
            }),
            (ObjKey::Role(id), img) => put_map(&mut self.roles, *id, img, |o| match o {
                Object::Role(d) => Some(d),
                _ => None,
            }),
            (ObjKey::Access(t, id), Some(Object::Access(a))) => {
                self.access.insert((*t, *id), Arc::new(a));
            }
            (ObjKey::Access(t, id), None) => {
                self.access.remove(&(*t, *id));
            }
            (ObjKey::DnsServer(id), img) => put_map(&mut self.dns_servers, *id, img, |o| match o {
                Object::DnsServer(d) => Some(d),
                _ => None,
            }),
            (ObjKey::DnsZone(id), img) => {
                if let Some(old) = self.zones.get(id) {
                    if let Some(set) = self.zone_names.get_mut(&old.name) {
                        set.remove(id);
                        if set.is_empty() {
                            self.zone_names.remove(&old.name);
                        }
                    }
                }
                if let Some(Object::DnsZone(z)) = &img {
                    self.zone_names
                        .entry(z.name.clone())
                        .or_default()
                        .insert(*id);
                }
                put_map(&mut self.zones, *id, img, |o| match o {
                    Object::DnsZone(d) => Some(Arc::new(d)),
                    _ => None,
                })
            }
            (ObjKey::DnsRecord(id), img) => {
                let r = match img {
                    Some(Object::DnsRecord(r)) => Some(r),
                    None => None,
                    Some(_) => return Err(corrupt(key, "image of another type")),
                };
                self.put_dns_record(*id, r);
            }
            (ObjKey::DhcpServer(id), img) => {
                put_map(&mut self.dhcp_servers, *id, img, |o| match o {
                    Object::DhcpServer(d) => Some(d),
                    _ => None,
                })
            }
            (ObjKey::DhcpScope(id), img) => {
                if let Some(old) = self.scopes.get(id) {
                    unindex(&mut self.range_scopes, old.range, *id);
                }
                if let Some(Object::DhcpScope(sc)) = &img {
                    self.range_scopes.entry(sc.range).or_default().insert(*id);
                }
                put_map(&mut self.scopes, *id, img, |o| match o {
                    Object::DhcpScope(d) => Some(Arc::new(d)),
                    _ => None,
                })
            }
            (ObjKey::DhcpReservation(id), img) => {
                let r = match img {
                    Some(Object::DhcpReservation(r)) => Some(r),
                    None => None,
                    Some(_) => return Err(corrupt(key, "image of another type")),
                };
                self.put_reservation(*id, r);
            }
            (ObjKey::DhcpLease(id), img) => {
                let r = match img {
                    Some(Object::DhcpLease(r)) => Some(r),
                    None => None,
                    Some(_) => return Err(corrupt(key, "image of another type")),
                };
                self.put_lease(*id, r);
            }
            (_, Some(_)) => return Err(corrupt(key, "image of another type")),
        }
        Ok(())
    }

    fn put_range(&mut self, id: Id, r: Range) -> Result<(), EngineError> {
        let key = ObjKey::Range(id);
        if !self.spaces.contains_key(&r.space) {
            return Err(corrupt(
                &key,
                format!("address space {} does not exist", r.space),
            ));
        }
        if let Some(e) = self.ranges.get_mut(&id) {
            if e.range.space == r.space && e.range.from == r.from && e.range.to == r.to {
                Arc::make_mut(e).range = r;
                return Ok(());
            }
            // Bounds or space changed: take it out and place it again.
            let old = e.range.clone();
            let old_rid = e.rid;
            self.idx_mut(old.space)
                .ok_or_else(|| corrupt(&key, "its address space is gone"))?
                .remove(old_rid)?;
            self.ranges.remove(&id);
            if let Err(err) = self.put_range(id, r) {
                let rid = self
                    .idx_mut(old.space)
                    .ok_or_else(|| corrupt(&key, "its address space is gone"))?
                    .insert(id, old.from, old.to)?;
                self.ranges
                    .insert(id, Arc::new(RangeEntry { range: old, rid }));
                return Err(err);
            }
            return Ok(());
        }
        let rid = self
            .idx_mut(r.space)
            .ok_or_else(|| corrupt(&key, "no address space"))?
            .insert(id, r.from, r.to)?;
        self.ranges
            .insert(id, Arc::new(RangeEntry { range: r, rid }));
        Ok(())
    }

    fn put_record(&mut self, rec: IpamRecord) -> Result<(), EngineError> {
        let k = (rec.space, rec.addr);
        let space = self.space_mut(rec.space).ok_or_else(|| {
            corrupt(
                &ObjKey::IpamRecord {
                    space: rec.space,
                    addr: rec.addr,
                },
                "no such address space",
            )
        })?;
        if space.idx.is_used(rec.addr) != rec.state.is_used() {
            Arc::make_mut(space)
                .idx
                .set_used(rec.addr, rec.state.is_used());
        }
        if let Some(old) = self.records.get(&k) {
            if let Some(h) = old.hold {
                self.holds.remove(&(h.expires, rec.space, rec.addr));
            }
        }
        if let Some(h) = rec.hold {
            self.holds.insert((h.expires, rec.space, rec.addr));
        }
        if rec.is_blank() || rec.is_plain_assigned() {
            self.records.remove(&k);
        } else {
            self.records.insert(k, Arc::new(rec));
        }
        Ok(())
    }

    /// Every object, sorted by key (records: every stored or used address).
    pub(crate) fn dump(&self) -> Vec<Object> {
        let mut out: Vec<Object> = Vec::new();
        out.extend(
            self.spaces
                .values()
                .map(|s| Object::AddressSpace(s.meta.clone())),
        );
        out.extend(self.ranges.values().map(|e| Object::Range(e.range.clone())));
        let mut addrs: BTreeSet<(Id, IpAddr)> = self.records.keys().copied().collect();
        for (id, s) in &self.spaces {
            let v4 = s
                .idx
                .used_in(IpAddr::from([0u8; 4]), IpAddr::from([255u8; 4]), usize::MAX);
            let v6 = s.idx.used_in(
                IpAddr::from([0u8; 16]),
                IpAddr::from([255u8; 16]),
                usize::MAX,
            );
            for a in v4.into_iter().chain(v6).flatten() {
                addrs.insert((*id, a));
            }
        }
        out.extend(
            addrs
                .into_iter()
                .map(|(s, a)| Object::IpamRecord(self.record(s, a))),
        );
        out.extend(
            self.propdefs
                .values()
                .cloned()
                .map(Object::PropertyDefinition),
        );
        out.extend(self.folders.values().cloned().map(Object::Folder));
        out.extend(self.users.values().cloned().map(Object::User));
        out.extend(self.groups.values().cloned().map(Object::Group));
        out.extend(self.roles.values().cloned().map(Object::Role));
        out.extend(
            self.access
                .values()
                .map(|a| Object::Access(AccessList::clone(a))),
        );
        out.extend(self.dns_servers.values().cloned().map(Object::DnsServer));
        out.extend(
            self.zones
                .values()
                .map(|z| Object::DnsZone(DnsZone::clone(z))),
        );
        out.extend(
            self.dns_records
                .values()
                .map(|r| Object::DnsRecord(DnsRecord::clone(r))),
        );
        out.extend(self.dhcp_servers.values().cloned().map(Object::DhcpServer));
        out.extend(
            self.scopes
                .values()
                .map(|s| Object::DhcpScope(DhcpScope::clone(s))),
        );
        out.extend(
            self.reservations
                .values()
                .map(|r| Object::DhcpReservation(DhcpReservation::clone(r))),
        );
        out.extend(
            self.leases
                .values()
                .map(|l| Object::DhcpLease(DhcpLease::clone(l))),
        );
        out.sort_by_key(Object::key);
        out
    }

    // ---- access ----

    /// Resolves a user into the principals and global permissions it acts with.
    pub(crate) fn actor(&self, user: Id) -> Result<Actor, EngineError> {
        if user == SYSTEM_USER {
            return Ok(Actor {
                id: SYSTEM_USER,
                name: "system".into(),
                superuser: true,
                principals: Vec::new(),
                global: Permission::ALL.into_iter().collect(),
            });
        }
        let u = self
            .users
            .get(&user)
            .ok_or_else(|| EngineError::NotFound(format!("user {user}")))?;
        let mut principals = vec![Principal::User(user)];
        let mut roles: BTreeSet<Id> = u.roles.clone();
        for g in self.groups.values().filter(|g| g.users.contains(&user)) {
            principals.push(Principal::Group(g.id));
            roles.extend(g.roles.iter().copied());
        }
        let mut global = BTreeSet::new();
        let mut superuser = false;
        for r in roles.iter().filter_map(|r| self.roles.get(r)) {
            principals.push(Principal::Role(r.id));
            global.extend(r.permissions.iter().copied());
            superuser |= r.superuser;
        }
        Ok(Actor {
            id: user,
            name: u.name.clone(),
            superuser,
            principals,
            global,
        })
    }

    /// The objects whose access entries apply to `key`, nearest first.
    pub(crate) fn chain(&self, key: &ObjKey) -> Vec<(ObjType, Id)> {
        let mut out = Vec::new();
        match *key {
            ObjKey::Range(id) => {
                if let Some(e) = self.ranges.get(&id) {
                    out.push((ObjType::Range, id));
                    if let Some(s) = self.spaces.get(&e.range.space) {
                        out.extend(
                            s.idx
                                .ancestors(e.rid)
                                .into_iter()
                                .map(|a| (ObjType::Range, a)),
                        );
                    }
                    out.push((ObjType::AddressSpace, e.range.space));
                }
            }
            ObjKey::IpamRecord { space, addr } => {
                if let Some(s) = self.spaces.get(&space) {
                    if let Some(d) = s.idx.deepest(addr) {
                        return self.chain(&ObjKey::Range(d));
                    }
                }
                out.push((ObjType::AddressSpace, space));
            }
            ObjKey::Access(t, id) => {
                if let Some(k) = ObjKey::of(t, id) {
                    return self.chain(&k);
                }
            }
            ObjKey::DnsRecord(id) => {
                out.push((ObjType::DnsRecord, id));
                if let Some(r) = self.dns_records.get(&id) {
                    out.push((ObjType::DnsZone, r.zone));
                }
            }
            ObjKey::DhcpReservation(id) => {
                out.push((ObjType::DhcpReservation, id));
                if let Some(r) = self.reservations.get(&id) {
                    out.push((ObjType::DhcpScope, r.scope));
                }
            }
            ObjKey::DhcpLease(id) => {
                out.push((ObjType::DhcpLease, id));
                if let Some(r) = self.leases.get(&id) {
                    out.push((ObjType::DhcpScope, r.scope));
                }
            }
            ref other => {
                if let Some(id) = other.id() {
                    out.push((other.obj_type(), id));
                }
            }
        }
        out
    }

    /// Whether `actor` has `perm` on `key`.
    pub(crate) fn can(&self, actor: &Actor, perm: Permission, key: Option<&ObjKey>) -> bool {
        if actor.superuser {
            return true;
        }
        if let Some(key) = key {
            for link in self.chain(key) {
                let Some(list) = self.access.get(&link) else {
                    continue;
                };
                let (mut allow, mut deny) = (false, false);
                for e in list
                    .entries
                    .iter()
                    .filter(|e| actor.principals.contains(&e.principal))
                {
                    allow |= e.allow.contains(&perm);
                    deny |= e.deny.contains(&perm);
                }
                if deny {
                    return false;
                }
                if allow {
                    return true;
                }
            }
        }
        actor.global.contains(&perm)
    }

    /// `Ok` when `actor` has `perm` on `key` (`None`: a global permission).
    pub(crate) fn check(
        &self,
        actor: &Actor,
        perm: Permission,
        key: Option<&ObjKey>,
    ) -> Result<(), EngineError> {
        if self.can(actor, perm, key) {
            return Ok(());
        }
        if let Some(k) = key {
            // An object the user may not even read is reported as missing, whatever was
            // asked of it: a refusal would tell that it exists.
            if perm != Permission::Read && !self.can(actor, Permission::Read, Some(k)) {
                return Err(EngineError::NotFound(k.to_ref()));
            }
        }
        Err(EngineError::AccessDenied {
            user: actor.name.clone(),
            permission: perm,
            object: key.map_or_else(|| "anything".to_string(), ObjKey::to_ref),
        })
    }

    /// Whether some user can still administer everything.
    pub(crate) fn has_superuser(&self) -> bool {
        let super_roles: BTreeSet<Id> = self
            .roles
            .values()
            .filter(|r| r.superuser)
            .map(|r| r.id)
            .collect();
        self.users
            .values()
            .any(|u| u.roles.iter().any(|r| super_roles.contains(r)))
            || self
                .groups
                .values()
                .any(|g| !g.users.is_empty() && g.roles.iter().any(|r| super_roles.contains(r)))
    }

    // ---- custom properties ----

    /// Applies `patch` to `current` for an object of type `kind`, checking names and types.
    /// `creating` fills defaults and requires mandatory properties.
    pub(crate) fn merge_properties(
        &self,
        kind: ObjType,
        current: &Properties,
        patch: &Properties,
        delete_unspecified: bool,
        creating: bool,
    ) -> Result<Properties, EngineError> {
        let defs: Vec<&PropertyDefinition> = self
            .propdefs
            .values()
            .filter(|d| d.obj_type == kind)
            .collect();
        let mut out = if delete_unspecified {
            Properties::new()
        } else {
            current.clone()
        };
        for (name, value) in patch {
            let (canonical, ptype, read_only) =
                match defs.iter().find(|d| d.name.eq_ignore_ascii_case(name)) {
                    Some(d) => (d.name.clone(), d.kind, d.read_only),
                    None => match builtin(kind, name) {
                        Some(b) => (b.to_string(), PropertyType::String, false),
                        None => {
                            return Err(EngineError::Property {
                                kind,
                                name: name.clone(),
                                reason: "no such custom property is defined".into(),
                            })
                        }
                    },
                };
            if read_only && !creating && current.get(&canonical) != Some(value) {
                return Err(EngineError::Property {
                    kind,
                    name: canonical,
                    reason: "it is read-only".into(),
                });
            }
            if value.is_empty() {
                out.remove(&canonical);
                continue;
            }
            let v = check_value(ptype, value).map_err(|reason| EngineError::Property {
                kind,
                name: canonical.clone(),
                reason,
            })?;
            out.insert(canonical, v);
        }
        for d in &defs {
            if !out.contains_key(&d.name) {
                if creating {
                    if let Some(dv) = &d.default {
                        out.insert(d.name.clone(), dv.clone());
                        continue;
                    }
                }
                if d.mandatory {
                    return Err(EngineError::Property {
                        kind,
                        name: d.name.clone(),
                        reason: "it is mandatory".into(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Built-in properties of a type, matched without case: `Title` and `Description` of ranges.
fn builtin(kind: ObjType, name: &str) -> Option<&'static str> {
    if kind != ObjType::Range {
        return None;
    }
    ["Title", "Description"]
        .into_iter()
        .find(|b| b.eq_ignore_ascii_case(name))
}

/// Checks a value against its type and returns its stored form.
pub(crate) fn check_value(t: PropertyType, v: &str) -> Result<String, String> {
    match t {
        PropertyType::String => Ok(v.to_string()),
        PropertyType::Integer => v
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("{v:?} is not an integer")),
        PropertyType::Boolean => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok("1".into()),
            "0" | "false" | "no" => Ok("0".into()),
            _ => Err(format!("{v:?} is not a boolean (true, false, 1 or 0)")),
        },
        PropertyType::IpAddress => v
            .trim()
            .parse::<IpAddr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{v:?} is not an IP address")),
        PropertyType::HexStr => {
            let s = v.trim();
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(s.to_string())
            } else {
                Err(format!("{v:?} is not hexadecimal digits"))
            }
        }
        PropertyType::IpOrHostname => {
            let s = v.trim();
            if s.parse::<IpAddr>().is_ok() || is_hostname(s) {
                Ok(s.to_string())
            } else {
                Err(format!("{v:?} is neither an IP address nor a host name"))
            }
        }
    }
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn put_map<T: Clone>(
    map: &mut OrdMap<Id, T>,
    id: Id,
    img: Option<Object>,
    unwrap: impl FnOnce(Object) -> Option<T>,
) {
    match img.and_then(unwrap) {
        Some(v) => {
            map.insert(id, v);
        }
        None => {
            map.remove(&id);
        }
    }
}

/// Maps index errors in replay to a corrupt-log message.
pub(crate) fn replay_error(seq: u64, e: EngineError) -> EngineError {
    EngineError::invalid("change log", format!("change {seq} cannot be applied: {e}"))
}
