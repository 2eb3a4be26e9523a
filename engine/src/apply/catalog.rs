//! The catalog: address spaces, custom property definitions and folders.

use std::net::IpAddr;

use crate::command::{Command, Outcome, PropertyDefinitionSpec};
use crate::error::EngineError;
use crate::model::{
    AddressSpace, Folder, Id, IpamRecord, ObjKey, ObjType, Object, Permission, PropertyDefinition,
};

use super::{misrouted, not_found, Tx};

impl Tx<'_> {
    /// Applies a command of this family (the dispatch in `mod.rs` sends only these here).
    pub(super) fn apply_catalog(&mut self, cmd: &Command) -> Result<Outcome, EngineError> {
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
            other => Err(misrouted(other)),
        }
    }

    pub(super) fn validate_propdef(
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
    pub(super) fn rename_property(
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

    pub(super) fn validate_folder(
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

    pub(super) fn unique_space_name(&self, name: &str, id: Option<Id>) -> Result<(), EngineError> {
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
}

pub(super) fn propdef(id: Id, s: &PropertyDefinitionSpec) -> PropertyDefinition {
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
