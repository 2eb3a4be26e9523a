//! Security: users, groups, roles, memberships and access entries, and the objects a new
//! database starts with.

use std::collections::BTreeSet;

use crate::command::{Command, Membership, Outcome, UserSpec};
use crate::error::EngineError;
use crate::model::{
    AccessList, AddressSpace, Group, Id, ObjKey, ObjType, Object, Permission, Role, User,
};

use super::{misrouted, not_found, Tx, DEFAULT_SPACE};

impl Tx<'_> {
    /// Applies a command of this family (the dispatch in `mod.rs` sends only these here).
    pub(super) fn apply_security(&mut self, cmd: &Command) -> Result<Outcome, EngineError> {
        match cmd {
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
            other => Err(misrouted(other)),
        }
    }

    pub(super) fn create_user(&mut self, spec: &UserSpec) -> Result<Outcome, EngineError> {
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

    pub(super) fn update_user(&mut self, id: Id, spec: &UserSpec) -> Result<Outcome, EngineError> {
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

    pub(super) fn membership(&mut self, m: Membership, add: bool) -> Result<Outcome, EngineError> {
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

    pub(super) fn keep_an_administrator(&self) -> Result<(), EngineError> {
        if self.st.has_superuser() {
            return Ok(());
        }
        Err(EngineError::invalid(
            "membership",
            "this would leave no user in the administrators role",
        ))
    }
}

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

/// The objects a new database starts with: the default address space, the administrators
/// role, and the `administrator` account with `password_hash`.
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
