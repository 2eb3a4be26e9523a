//! Applying a transaction to the state: access checks, validation, and the changes it makes.
//!
//! Every handler changes the state only through [`Tx::put`], which records the before and
//! after images. When a command fails, [`Tx::rollback`] puts the before images back in
//! reverse order, so a failed transaction leaves no trace.

use std::sync::Arc;

use crate::command::{Command, Outcome};
use crate::error::EngineError;
use crate::model::{Id, Millis, ObjKey, ObjType, Object, Permission};
use crate::state::{Actor, State};
use crate::store::Change;

mod allocation;
mod catalog;
mod ranges;
mod security;

pub(crate) use security::bootstrap;

pub(crate) use crate::model::DEFAULT_SPACE;

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
        use Command as C;
        match cmd {
            C::CreateAddressSpace { .. }
            | C::UpdateAddressSpace { .. }
            | C::DeleteAddressSpace { .. }
            | C::CreatePropertyDefinition { .. }
            | C::UpdatePropertyDefinition { .. }
            | C::DeletePropertyDefinition { .. }
            | C::CreateFolder { .. }
            | C::UpdateFolder { .. }
            | C::DeleteFolder { .. } => self.apply_catalog(cmd),
            C::CreateRange { .. }
            | C::UpdateRange { .. }
            | C::DeleteRange { .. }
            | C::SetRecord { .. }
            | C::ReleaseRecord { .. }
            | C::ExpireHolds => self.apply_ranges(cmd),
            C::AllocateAddresses(req) => self.allocate(req),
            C::AllocateBlocks(req) => self.allocate_blocks(req),
            C::CreateUser { .. }
            | C::UpdateUser { .. }
            | C::DeleteUser { .. }
            | C::CreateGroup { .. }
            | C::UpdateGroup { .. }
            | C::DeleteGroup { .. }
            | C::CreateRole { .. }
            | C::UpdateRole { .. }
            | C::DeleteRole { .. }
            | C::AddMembership { .. }
            | C::RemoveMembership { .. }
            | C::SetAccess { .. } => self.apply_security(cmd),
            C::PutService(o) => self.put_service(o.clone()),
            C::DeleteService(key) => self.delete_service(key),
        }
    }

    fn exists(&self, k: ObjKey) -> Result<(), EngineError> {
        match self.st.get(&k) {
            Some(_) => Ok(()),
            None => Err(not_found(&k)),
        }
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

/// The answer for a command sent to the wrong family's handler (never happens: the
/// dispatch in [`Tx::apply`] sends each command to its own).
fn misrouted(cmd: &Command) -> EngineError {
    EngineError::invalid("command", format!("{cmd:?} reached the wrong handler"))
}

pub(crate) fn not_found(key: &ObjKey) -> EngineError {
    EngineError::NotFound(key.to_ref())
}
