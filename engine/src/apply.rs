//! Applying a transaction to the state: access checks, validation, and the changes it makes.
//!
//! Every handler changes the state only through [`Tx::put`], which records the before and
//! after images. When a command fails, [`Tx::rollback`] puts the before images back in
//! reverse order, so a failed transaction leaves no trace.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipam_index::{BlockSize, Start};

use crate::command::{
    AllocMode, AllocRequest, BlockRequest, BlockSpec, Command, Membership, NewRange, Outcome,
    PropertyDefinitionSpec, RangePatch, RecordPatch, UserSpec, MAX_ALLOC,
};
use crate::error::EngineError;
use crate::model::{
    AccessList, AddressSpace, Folder, Group, Hold, Id, IpamRecord, Millis, ObjKey, ObjType, Object,
    Permission, PropertyDefinition, Range, RecordState, Role, User, SYSTEM_USER,
};
use crate::state::{Actor, State};
use crate::store::Change;

/// The id of the address space every database starts with.
pub const DEFAULT_SPACE: Id = 1;

/// Most blocks one command finds.
const MAX_BLOCKS: u32 = 65_536;

/// A transaction being applied.
pub(crate) struct Tx<'a> {
    pub(crate) st: &'a mut State,
    pub(crate) actor: Actor,
    pub(crate) comment: Arc<str>,
    pub(crate) user_name: Arc<str>,
    pub(crate) now: Millis,
    pub(crate) changes: Vec<Change>,
    /// Seeds random starts; the engine supplies fresh entropy per transaction.
    pub(crate) seed: u64,
}

impl Tx<'_> {
    /// Sets an object's image and records the change (nothing when the image is unchanged).
    pub(crate) fn put(&mut self, key: ObjKey, after: Option<Object>) -> Result<(), EngineError> {
        let after = match key {
            ObjKey::IpamRecord { space, addr } => self.keep_linked_used(space, addr, after),
            _ => after,
        };
        let before = self.st.get(&key);
        if before == after {
            return Ok(());
        }
        self.st.put(&key, after.clone())?;
        self.st.applied_seq += 1;
        self.changes.push(Change {
            seq: self.st.applied_seq,
            time: self.now,
            user_id: self.actor.id,
            user: self.user_name.clone(),
            comment: self.comment.clone(),
            key,
            before,
            after,
        });
        Ok(())
    }

    /// Undoes every change of this transaction.
    pub(crate) fn rollback(&mut self) {
        while let Some(c) = self.changes.pop() {
            self.st
                .put(&c.key, c.before)
                .expect("putting back a before image restores a state that existed");
            self.st.applied_seq -= 1;
        }
    }

    pub(crate) fn check(&self, perm: Permission, key: Option<&ObjKey>) -> Result<(), EngineError> {
        self.st.check(&self.actor, perm, key)
    }

    /// Applies one command.
    pub(crate) fn apply(&mut self, cmd: &Command) -> Result<Outcome, EngineError> {
        match cmd {
            Command::CreateAddressSpace { name, description } => {
                self.check(Permission::Administer, None)?;
                self.unique_space_name(name, None)?;
                let id = self.st.issue_id();
                let a = AddressSpace {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                };
                self.put(ObjKey::AddressSpace(id), Some(Object::AddressSpace(a)))?;
                Ok(Outcome::Created(ObjKey::AddressSpace(id).to_ref()))
            }
            Command::UpdateAddressSpace {
                id,
                name,
                description,
            } => {
                let key = ObjKey::AddressSpace(*id);
                self.check(Permission::Administer, Some(&key))?;
                let mut a = self
                    .st
                    .spaces
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .meta
                    .clone();
                if let Some(n) = name {
                    self.unique_space_name(n, Some(*id))?;
                    a.name = n.clone();
                }
                if let Some(d) = description {
                    a.description = d.clone();
                }
                self.put(key, Some(Object::AddressSpace(a)))?;
                Ok(Outcome::Done)
            }
            Command::DeleteAddressSpace { id } => {
                let key = ObjKey::AddressSpace(*id);
                self.check(Permission::Administer, Some(&key))?;
                self.st.spaces.get(id).ok_or_else(|| not_found(&key))?;
                if self.st.ranges.values().any(|e| e.range.space == *id)
                    || self.st.records.keys().any(|(s, _)| s == id)
                    || self.st.spaces[id]
                        .idx
                        .used_in(IpAddr::from([0u8; 4]), IpAddr::from([255u8; 4]), 1)
                        .is_ok_and(|v| !v.is_empty())
                    || self.st.spaces[id]
                        .idx
                        .used_in(IpAddr::from([0u8; 16]), IpAddr::from([255u8; 16]), 1)
                        .is_ok_and(|v| !v.is_empty())
                {
                    return Err(EngineError::InUse {
                        object: key,
                        reason: "it still has ranges or address records".into(),
                    });
                }
                self.put(ObjKey::Access(ObjType::AddressSpace, *id), None)?;
                self.put(key, None)?;
                Ok(Outcome::Done)
            }
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
            Command::AllocateAddresses(req) => self.allocate(req),
            Command::AllocateBlocks(req) => self.allocate_blocks(req),
            Command::CreatePropertyDefinition(spec) => {
                self.check(Permission::Administer, None)?;
                self.validate_propdef(spec, None)?;
                let id = self.st.issue_id();
                let d = propdef(id, spec);
                self.put(
                    ObjKey::PropertyDefinition(id),
                    Some(Object::PropertyDefinition(d)),
                )?;
                Ok(Outcome::Created(ObjKey::PropertyDefinition(id).to_ref()))
            }
            Command::UpdatePropertyDefinition { id, spec } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::PropertyDefinition(*id);
                let old = self
                    .st
                    .propdefs
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .clone();
                if old.obj_type != spec.obj_type {
                    return Err(EngineError::invalid(
                        "obj_type",
                        "a property definition's object type cannot change",
                    ));
                }
                self.validate_propdef(spec, Some(*id))?;
                if old.name != spec.name {
                    self.rename_property(old.obj_type, &old.name, Some(&spec.name))?;
                }
                self.put(key, Some(Object::PropertyDefinition(propdef(*id, spec))))?;
                Ok(Outcome::Done)
            }
            Command::DeletePropertyDefinition { id } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::PropertyDefinition(*id);
                let old = self
                    .st
                    .propdefs
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .clone();
                self.rename_property(old.obj_type, &old.name, None)?;
                self.put(key, None)?;
                Ok(Outcome::Done)
            }
            Command::CreateFolder { name, parent } => {
                self.check(Permission::Create, None)?;
                self.validate_folder(name, *parent, None)?;
                let id = self.st.issue_id();
                let f = Folder {
                    id,
                    name: name.clone(),
                    parent: *parent,
                };
                self.put(ObjKey::Folder(id), Some(Object::Folder(f)))?;
                Ok(Outcome::Created(ObjKey::Folder(id).to_ref()))
            }
            Command::UpdateFolder { id, name, parent } => {
                let key = ObjKey::Folder(*id);
                self.check(Permission::Modify, Some(&key))?;
                let mut f = self
                    .st
                    .folders
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .clone();
                if let Some(n) = name {
                    f.name = n.clone();
                }
                if let Some(p) = parent {
                    f.parent = *p;
                }
                self.validate_folder(&f.name, f.parent, Some(*id))?;
                self.put(key, Some(Object::Folder(f)))?;
                Ok(Outcome::Done)
            }
            Command::DeleteFolder { id } => {
                let key = ObjKey::Folder(*id);
                self.check(Permission::Delete, Some(&key))?;
                self.st.folders.get(id).ok_or_else(|| not_found(&key))?;
                if self.st.folders.values().any(|f| f.parent == Some(*id))
                    || self.st.ranges.values().any(|e| e.range.folder == Some(*id))
                {
                    return Err(EngineError::InUse {
                        object: key,
                        reason: "it holds folders or ranges".into(),
                    });
                }
                self.put(ObjKey::Access(ObjType::Folder, *id), None)?;
                self.put(key, None)?;
                Ok(Outcome::Done)
            }
            Command::CreateUser(spec) => self.create_user(spec),
            Command::UpdateUser { id, spec } => self.update_user(*id, spec),
            Command::DeleteUser { id } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::User(*id);
                self.st.users.get(id).ok_or_else(|| not_found(&key))?;
                let groups: Vec<Group> = self
                    .st
                    .groups
                    .values()
                    .filter(|g| g.users.contains(id))
                    .cloned()
                    .collect();
                for mut g in groups {
                    g.users.remove(id);
                    self.put(ObjKey::Group(g.id), Some(Object::Group(g)))?;
                }
                self.put(key, None)?;
                self.keep_an_administrator()?;
                Ok(Outcome::Done)
            }
            Command::CreateGroup { name, description } => {
                self.check(Permission::Administer, None)?;
                self.unique_name(ObjType::Group, name, None)?;
                let id = self.st.issue_id();
                let g = Group {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                    users: BTreeSet::new(),
                    roles: BTreeSet::new(),
                };
                self.put(ObjKey::Group(id), Some(Object::Group(g)))?;
                Ok(Outcome::Created(ObjKey::Group(id).to_ref()))
            }
            Command::UpdateGroup {
                id,
                name,
                description,
            } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::Group(*id);
                let mut g = self
                    .st
                    .groups
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .clone();
                if let Some(n) = name {
                    self.unique_name(ObjType::Group, n, Some(*id))?;
                    g.name = n.clone();
                }
                if let Some(d) = description {
                    g.description = d.clone();
                }
                self.put(key, Some(Object::Group(g)))?;
                Ok(Outcome::Done)
            }
            Command::DeleteGroup { id } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::Group(*id);
                self.st.groups.get(id).ok_or_else(|| not_found(&key))?;
                self.put(key, None)?;
                self.keep_an_administrator()?;
                Ok(Outcome::Done)
            }
            Command::CreateRole {
                name,
                description,
                permissions,
            } => {
                self.check(Permission::Administer, None)?;
                self.unique_name(ObjType::Role, name, None)?;
                let id = self.st.issue_id();
                let r = Role {
                    id,
                    name: name.clone(),
                    description: description.clone(),
                    permissions: permissions.clone(),
                    superuser: false,
                };
                self.put(ObjKey::Role(id), Some(Object::Role(r)))?;
                Ok(Outcome::Created(ObjKey::Role(id).to_ref()))
            }
            Command::UpdateRole {
                id,
                name,
                description,
                permissions,
            } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::Role(*id);
                let mut r = self
                    .st
                    .roles
                    .get(id)
                    .ok_or_else(|| not_found(&key))?
                    .clone();
                if let Some(n) = name {
                    self.unique_name(ObjType::Role, n, Some(*id))?;
                    r.name = n.clone();
                }
                if let Some(d) = description {
                    r.description = d.clone();
                }
                if let Some(p) = permissions {
                    if r.superuser {
                        return Err(EngineError::invalid(
                            "permissions",
                            format!("role {} is built in: its permissions cannot change", r.name),
                        ));
                    }
                    r.permissions = p.clone();
                }
                self.put(key, Some(Object::Role(r)))?;
                Ok(Outcome::Done)
            }
            Command::DeleteRole { id } => {
                self.check(Permission::Administer, None)?;
                let key = ObjKey::Role(*id);
                let r = self.st.roles.get(id).ok_or_else(|| not_found(&key))?;
                if r.superuser {
                    return Err(EngineError::InUse {
                        object: key,
                        reason: "it is the built-in administrators role".into(),
                    });
                }
                let users: Vec<User> = self
                    .st
                    .users
                    .values()
                    .filter(|u| u.roles.contains(id))
                    .cloned()
                    .collect();
                for mut u in users {
                    u.roles.remove(id);
                    self.put(ObjKey::User(u.id), Some(Object::User(u)))?;
                }
                let groups: Vec<Group> = self
                    .st
                    .groups
                    .values()
                    .filter(|g| g.roles.contains(id))
                    .cloned()
                    .collect();
                for mut g in groups {
                    g.roles.remove(id);
                    self.put(ObjKey::Group(g.id), Some(Object::Group(g)))?;
                }
                self.put(key, None)?;
                Ok(Outcome::Done)
            }
            Command::AddMembership(m) => self.membership(*m, true),
            Command::RemoveMembership(m) => self.membership(*m, false),
            Command::SetAccess {
                obj_type,
                obj_id,
                entries,
            } => {
                let target = match ObjKey::of(*obj_type, *obj_id) {
                    Some(k) if self.st.get(&k).is_some() => k,
                    Some(k) => return Err(not_found(&k)),
                    None => {
                        return Err(EngineError::invalid(
                            "obj_type",
                            format!("access entries cannot be set on {obj_type} objects"),
                        ))
                    }
                };
                self.check(Permission::Administer, Some(&target))?;
                for e in entries {
                    let (t, id) = match e.principal {
                        crate::model::Principal::User(id) => (ObjType::User, id),
                        crate::model::Principal::Group(id) => (ObjType::Group, id),
                        crate::model::Principal::Role(id) => (ObjType::Role, id),
                    };
                    let k = ObjKey::of(t, id).expect("principal types have keys");
                    if self.st.get(&k).is_none() {
                        return Err(not_found(&k));
                    }
                }
                let key = ObjKey::Access(*obj_type, *obj_id);
                let img = (!entries.is_empty()).then(|| {
                    Object::Access(AccessList {
                        obj_type: *obj_type,
                        obj_id: *obj_id,
                        entries: entries.clone(),
                    })
                });
                self.put(key, img)?;
                Ok(Outcome::Done)
            }
            Command::PutService(o) => self.put_service(o.clone()),
            Command::DeleteService(key) => self.delete_service(key),
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
        }
    }

    // ---- ranges ----

    fn create_range(&mut self, nr: &NewRange) -> Result<Id, EngineError> {
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
        self.put(ObjKey::Range(id), Some(Object::Range(r)))?;
        // Addresses DNS or DHCP data named before the range existed are used from now on.
        self.settle_range(id)?;
        Ok(id)
    }

    fn update_range(&mut self, id: Id, p: &RangePatch) -> Result<Outcome, EngineError> {
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

    fn delete_range(&mut self, id: Id, subtree: bool) -> Result<Outcome, EngineError> {
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
    fn record_writable(&self, space: Id, addr: IpAddr) -> Result<IpamRecord, EngineError> {
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

    fn set_record(
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
    fn open_range(&self, id: Id, action: &'static str) -> Result<&Range, EngineError> {
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

    fn allocate(&mut self, req: &AllocRequest) -> Result<Outcome, EngineError> {
        if req.count == 0 || req.count > MAX_ALLOC {
            return Err(EngineError::invalid(
                "count",
                format!("must be 1 to {MAX_ALLOC}, not {}", req.count),
            ));
        }
        if req.pool.is_empty() {
            return Err(EngineError::invalid(
                "pool",
                "name at least one range to allocate from",
            ));
        }
        let (state, hold) = match req.mode {
            AllocMode::Assign => (RecordState::Assigned, None),
            AllocMode::Claim => (RecordState::Claimed, None),
            AllocMode::Hold { seconds } => (
                RecordState::Held,
                Some(Hold {
                    expires: self.now.saturating_add(secs_to_ms(seconds)?),
                    user: self.actor.id,
                }),
            ),
        };
        let props = self.st.merge_properties(
            ObjType::IpamRecord,
            &Default::default(),
            &req.properties,
            false,
            true,
        )?;
        let want = req.count as usize;
        let mut out: Vec<IpAddr> = Vec::with_capacity(want);
        let mut space = None;
        let mut started = req.start.is_none();
        let mut names = Vec::new();
        for (i, &rid) in req.pool.iter().enumerate() {
            let r = self.open_range(rid, "allocating addresses")?;
            names.push(r.name.clone());
            if *space.get_or_insert(r.space) != r.space {
                return Err(EngineError::invalid(
                    "pool",
                    "all ranges of a pool must be in one address space",
                ));
            }
            let (sp, from, to) = (r.space, r.from, r.to);
            let start = match req.start {
                Some(s) if !started => {
                    if s < from
                        || s > to
                        || std::mem::discriminant(&s) != std::mem::discriminant(&from)
                    {
                        continue;
                    }
                    started = true;
                    Start::At(s)
                }
                _ if req.random => Start::Random(self.seed.wrapping_add(i as u64)),
                _ => Start::First,
            };
            let e = &self.st.ranges[&rid];
            let found = self.st.spaces[&sp].idx.next_free_n(
                e.rid,
                start,
                &req.exclude,
                want - out.len(),
            )?;
            for &addr in &found {
                let mut rec = self.st.record(sp, addr);
                rec.state = state;
                rec.hold = hold;
                for (k, v) in &props {
                    rec.properties.insert(k.clone(), v.clone());
                }
                self.put(
                    ObjKey::IpamRecord { space: sp, addr },
                    Some(Object::IpamRecord(rec)),
                )?;
            }
            out.extend(found);
            if out.len() == want {
                break;
            }
        }
        if !started {
            return Err(EngineError::invalid(
                "start",
                format!(
                    "{} is in none of the pool's ranges",
                    req.start.expect("set when not started")
                ),
            ));
        }
        if out.len() < want {
            return Err(EngineError::Exhausted {
                pool: names.join(", "),
                asked: want as u64,
                found: out.len() as u64,
            });
        }
        Ok(Outcome::Addresses(out))
    }

    fn allocate_blocks(&mut self, req: &BlockRequest) -> Result<Outcome, EngineError> {
        if req.count == 0 || req.count > MAX_BLOCKS {
            return Err(EngineError::invalid(
                "count",
                format!("must be 1 to {MAX_BLOCKS}, not {}", req.count),
            ));
        }
        let r = self.open_range(req.range, "allocating blocks")?.clone();
        let size = match req.size {
            BlockSpec::Prefix(p) => BlockSize::Prefix(u32::from(p)),
            BlockSpec::Size(n) => BlockSize::Count(u128::from(n)),
        };
        let rid = self.st.ranges[&req.range].rid;
        let blocks = self.st.spaces[&r.space].idx.next_free_blocks(
            rid,
            size,
            req.start,
            req.count as usize,
        )?;
        if blocks.len() < req.count as usize {
            return Err(EngineError::Exhausted {
                pool: r.name.clone(),
                asked: u64::from(req.count),
                found: blocks.len() as u64,
            });
        }
        let mut created = Vec::new();
        if let Some(t) = &req.create {
            for &(from, to) in &blocks {
                let nr = NewRange {
                    space: Some(r.space),
                    from: Some(from),
                    to: Some(to),
                    ..t.clone()
                };
                created.push(self.create_range(&nr)?);
            }
        }
        Ok(Outcome::Blocks { blocks, created })
    }

    // ---- definitions, folders, users ----

    fn validate_propdef(
        &self,
        spec: &PropertyDefinitionSpec,
        id: Option<Id>,
    ) -> Result<(), EngineError> {
        let name = spec.name.trim();
        if name.is_empty() {
            return Err(EngineError::invalid("name", "a property needs a name"));
        }
        if matches!(spec.obj_type, ObjType::Access) {
            return Err(EngineError::invalid(
                "obj_type",
                "access lists have no custom properties",
            ));
        }
        let taken = self.st.propdefs.values().any(|d| {
            Some(d.id) != id && d.obj_type == spec.obj_type && d.name.eq_ignore_ascii_case(name)
        }) || (spec.obj_type == ObjType::Range
            && ["title", "description"].contains(&name.to_ascii_lowercase().as_str()));
        if taken {
            return Err(EngineError::NameTaken {
                kind: ObjType::PropertyDefinition,
                name: name.to_string(),
            });
        }
        if let Some(d) = &spec.default {
            crate::state::check_value(spec.kind, d).map_err(|reason| EngineError::Property {
                kind: spec.obj_type,
                name: name.to_string(),
                reason: format!("default: {reason}"),
            })?;
        }
        Ok(())
    }

    /// Renames (or with `None` removes) a property on every object of a type.
    fn rename_property(
        &mut self,
        t: ObjType,
        old: &str,
        new: Option<&str>,
    ) -> Result<(), EngineError> {
        let fix = |p: &mut crate::model::Properties| -> bool {
            match p.remove(old) {
                Some(v) => {
                    if let Some(n) = new {
                        p.insert(n.to_string(), v);
                    }
                    true
                }
                None => false,
            }
        };
        match t {
            ObjType::Range => {
                let mut touched = Vec::new();
                for e in self.st.ranges.values() {
                    let mut r = e.range.clone();
                    if fix(&mut r.properties) {
                        touched.push(r);
                    }
                }
                for r in touched {
                    self.put(ObjKey::Range(r.id), Some(Object::Range(r)))?;
                }
            }
            ObjType::IpamRecord => {
                let mut touched = Vec::new();
                for rec in self.st.records.values() {
                    let mut r = IpamRecord::clone(rec);
                    if fix(&mut r.properties) {
                        touched.push(r);
                    }
                }
                for r in touched {
                    let key = ObjKey::IpamRecord {
                        space: r.space,
                        addr: r.addr,
                    };
                    let img = (!r.is_blank()).then_some(Object::IpamRecord(r));
                    self.put(key, img)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_folder(
        &self,
        name: &str,
        parent: Option<Id>,
        id: Option<Id>,
    ) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::invalid("name", "a folder needs a name"));
        }
        let mut p = parent;
        while let Some(pid) = p {
            if Some(pid) == id {
                return Err(EngineError::invalid(
                    "parent",
                    "a folder cannot be inside itself",
                ));
            }
            p = self
                .st
                .folders
                .get(&pid)
                .ok_or_else(|| not_found(&ObjKey::Folder(pid)))?
                .parent;
        }
        if self.st.folders.values().any(|f| {
            Some(f.id) != id && f.parent == parent && f.name.eq_ignore_ascii_case(name.trim())
        }) {
            return Err(EngineError::NameTaken {
                kind: ObjType::Folder,
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn create_user(&mut self, spec: &UserSpec) -> Result<Outcome, EngineError> {
        self.check(Permission::Administer, None)?;
        let name = spec.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(EngineError::invalid("name", "a user needs a login name"));
        }
        self.unique_name(ObjType::User, name, None)?;
        refuse_reserved_name(name, None)?;
        let password_hash = stored_hash(spec)?
            .ok_or_else(|| EngineError::invalid("password", "a user needs a password"))?;
        let id = self.st.issue_id();
        let u = User {
            id,
            name: name.to_string(),
            full_name: spec.full_name.clone().unwrap_or_default(),
            email: spec.email.clone().unwrap_or_default(),
            password_hash,
            roles: BTreeSet::new(),
        };
        self.put(ObjKey::User(id), Some(Object::User(u)))?;
        Ok(Outcome::Created(ObjKey::User(id).to_ref()))
    }

    fn update_user(&mut self, id: Id, spec: &UserSpec) -> Result<Outcome, EngineError> {
        let key = ObjKey::User(id);
        // Users may change their own password, name and e-mail.
        if self.actor.id != id {
            self.check(Permission::Administer, None)?;
        }
        let mut u = self
            .st
            .users
            .get(&id)
            .ok_or_else(|| not_found(&key))?
            .clone();
        if let Some(n) = &spec.name {
            let n = n.trim();
            if n.is_empty() {
                return Err(EngineError::invalid("name", "a user needs a login name"));
            }
            if !n.eq_ignore_ascii_case(&u.name) {
                // Renaming oneself needs Modify on one's own account (or Administer): a
                // user with Read only keeps the name it was given.
                if self.actor.id == id && !self.st.can(&self.actor, Permission::Modify, Some(&key))
                {
                    self.check(Permission::Administer, None)?;
                }
                self.unique_name(ObjType::User, n, Some(id))?;
                refuse_reserved_name(n, Some(id))?;
            }
            u.name = n.to_string();
        }
        if spec.password.is_some() || spec.password_hash.is_some() {
            u.password_hash = stored_hash(spec)?
                .ok_or_else(|| EngineError::invalid("password", "a password cannot be empty"))?;
        }
        if let Some(f) = &spec.full_name {
            u.full_name = f.clone();
        }
        if let Some(e) = &spec.email {
            u.email = e.clone();
        }
        self.put(key, Some(Object::User(u)))?;
        Ok(Outcome::Done)
    }

    fn membership(&mut self, m: Membership, add: bool) -> Result<Outcome, EngineError> {
        self.check(Permission::Administer, None)?;
        let set = |s: &mut BTreeSet<Id>, v: Id| {
            if add {
                s.insert(v);
            } else {
                s.remove(&v);
            }
        };
        match m {
            Membership::UserRole { user, role } => {
                self.exists(ObjKey::Role(role))?;
                let mut u = self
                    .st
                    .users
                    .get(&user)
                    .ok_or_else(|| not_found(&ObjKey::User(user)))?
                    .clone();
                set(&mut u.roles, role);
                self.put(ObjKey::User(user), Some(Object::User(u)))?;
            }
            Membership::GroupUser { group, user } => {
                self.exists(ObjKey::User(user))?;
                let mut g = self
                    .st
                    .groups
                    .get(&group)
                    .ok_or_else(|| not_found(&ObjKey::Group(group)))?
                    .clone();
                set(&mut g.users, user);
                self.put(ObjKey::Group(group), Some(Object::Group(g)))?;
            }
            Membership::GroupRole { group, role } => {
                self.exists(ObjKey::Role(role))?;
                let mut g = self
                    .st
                    .groups
                    .get(&group)
                    .ok_or_else(|| not_found(&ObjKey::Group(group)))?
                    .clone();
                set(&mut g.roles, role);
                self.put(ObjKey::Group(group), Some(Object::Group(g)))?;
            }
        }
        if !add {
            self.keep_an_administrator()?;
        }
        Ok(Outcome::Done)
    }

    fn exists(&self, k: ObjKey) -> Result<(), EngineError> {
        match self.st.get(&k) {
            Some(_) => Ok(()),
            None => Err(not_found(&k)),
        }
    }

    fn keep_an_administrator(&self) -> Result<(), EngineError> {
        if self.st.has_superuser() {
            return Ok(());
        }
        Err(EngineError::invalid(
            "membership",
            "this would leave no user in the administrators role",
        ))
    }

    fn unique_space_name(&self, name: &str, id: Option<Id>) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::invalid(
                "name",
                "an address space needs a name",
            ));
        }
        if self
            .st
            .spaces
            .values()
            .any(|s| Some(s.meta.id) != id && s.meta.name.eq_ignore_ascii_case(name.trim()))
        {
            return Err(EngineError::NameTaken {
                kind: ObjType::AddressSpace,
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn unique_name(&self, t: ObjType, name: &str, id: Option<Id>) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::invalid("name", format!("a {t} needs a name")));
        }
        let name = name.trim();
        let taken = match t {
            ObjType::User => self
                .st
                .users
                .values()
                .any(|u| Some(u.id) != id && u.name.eq_ignore_ascii_case(name)),
            ObjType::Group => self
                .st
                .groups
                .values()
                .any(|g| Some(g.id) != id && g.name.eq_ignore_ascii_case(name)),
            ObjType::Role => self
                .st
                .roles
                .values()
                .any(|r| Some(r.id) != id && r.name.eq_ignore_ascii_case(name)),
            _ => false,
        };
        if taken {
            return Err(EngineError::NameTaken {
                kind: t,
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

fn propdef(id: Id, s: &PropertyDefinitionSpec) -> PropertyDefinition {
    PropertyDefinition {
        id,
        obj_type: s.obj_type,
        name: s.name.trim().to_string(),
        kind: s.kind,
        mandatory: s.mandatory,
        default: s.default.clone(),
        read_only: s.read_only,
    }
}

fn secs_to_ms(secs: u64) -> Result<Millis, EngineError> {
    const MAX: u64 = 10 * 365 * 24 * 3600;
    if secs == 0 || secs > MAX {
        return Err(EngineError::invalid(
            "hold time",
            format!("must be 1 to {MAX} seconds, not {secs}"),
        ));
    }
    Ok(secs as Millis * 1000)
}

/// The prefix length when `from..=to` is exactly one CIDR block of one family.
fn cidr_len(from: IpAddr, to: IpAddr) -> Option<u8> {
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

pub(crate) fn not_found(key: &ObjKey) -> EngineError {
    EngineError::NotFound(key.to_ref())
}

/// The objects a new database starts with: the default address space, the administrators
/// role, and the `administrator` account with `password_hash`.
/// The id `bootstrap` gives the built-in `administrator` account.
pub(crate) const BUILTIN_ADMIN: Id = 3;

/// Names no user may take: `system` (the engine's own changes are recorded under it) and
/// `administrator` (the built-in account's, for any other user).
fn refuse_reserved_name(name: &str, user: Option<Id>) -> Result<(), EngineError> {
    let reserved = name.eq_ignore_ascii_case("system")
        || (name.eq_ignore_ascii_case("administrator") && user != Some(BUILTIN_ADMIN));
    if reserved {
        return Err(EngineError::invalid(
            "name",
            format!("{name:?} is reserved for the built-in accounts"),
        ));
    }
    Ok(())
}

/// The hash to store for a user spec's password: `password_hash` as given (checked to be an
/// argon2 PHC string); `None` when no password is given. A clear password never gets here
/// (`Engine::submit` hashes it first): one that does is refused rather than hashed on the
/// writer thread.
fn stored_hash(spec: &UserSpec) -> Result<Option<String>, EngineError> {
    if let Some(p) = &spec.password {
        return Err(EngineError::invalid(
            "password",
            if p.is_empty() {
                "a password cannot be empty"
            } else {
                "clear passwords are hashed before the write path (Engine::submit does it)"
            },
        ));
    }
    match &spec.password_hash {
        None => Ok(None),
        Some(h) => {
            let ok = argon2::PasswordHash::new(h).is_ok_and(|p| p.algorithm.as_str() == "argon2id");
            if !ok {
                return Err(EngineError::invalid(
                    "password_hash",
                    "not an argon2id hash (use Engine::hash_password)",
                ));
            }
            Ok(Some(h.clone()))
        }
    }
}

pub(crate) fn bootstrap(tx: &mut Tx<'_>, password_hash: String) -> Result<(), EngineError> {
    let space = tx.st.issue_id();
    debug_assert_eq!(space, DEFAULT_SPACE);
    tx.put(
        ObjKey::AddressSpace(space),
        Some(Object::AddressSpace(AddressSpace {
            id: space,
            name: "default".into(),
            description: "The address space every database starts with.".into(),
        })),
    )?;
    let role = tx.st.issue_id();
    tx.put(
        ObjKey::Role(role),
        Some(Object::Role(Role {
            id: role,
            name: "Administrators".into(),
            description: "Built in: may do everything.".into(),
            permissions: Permission::ALL.into_iter().collect(),
            superuser: true,
        })),
    )?;
    let user = tx.st.issue_id();
    debug_assert_eq!(user, BUILTIN_ADMIN);
    tx.put(
        ObjKey::User(user),
        Some(Object::User(User {
            id: user,
            name: "administrator".into(),
            full_name: "Administrator".into(),
            email: String::new(),
            password_hash,
            roles: [role].into_iter().collect(),
        })),
    )?;
    Ok(())
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
