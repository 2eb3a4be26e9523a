//! Errors of the engine and of stores.

use std::net::IpAddr;

use ipam_index::IndexError;

use crate::model::{ObjKey, ObjType, Permission};

/// A store (database) failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("the database failed while {context}: {source}")]
    Backend {
        /// What the store was doing ("committing a batch of 12 changes").
        context: String,
        /// The database's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database holds data this version cannot read.
    #[error("the database holds unreadable data: {what}")]
    Corrupt {
        /// What was wrong, and where.
        what: String,
    },
    /// The database was written by a newer version of ipam.
    #[error("the database has schema version {found}, newer than the {supported} this ipam understands: upgrade ipam, or restore a backup made by this version")]
    TooNew {
        /// Version found in the database.
        found: u32,
        /// Newest version this build supports.
        supported: u32,
    },
}

impl StoreError {
    /// Wraps a database error with what the store was doing.
    pub fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Why a command, a transaction or a read failed. A failed transaction changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// One command of a transaction failed; the transaction changed nothing.
    #[error("command {index} of the transaction failed (nothing was changed): {source}")]
    Command {
        /// Position of the command, from 0.
        index: usize,
        /// Why.
        source: Box<EngineError>,
    },
    /// The object does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The user lacks a permission.
    #[error("user {user} may not {permission:?} {object}")]
    AccessDenied {
        /// Login name.
        user: String,
        /// The permission missing.
        permission: Permission,
        /// The object.
        object: String,
    },
    /// A request field is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field or argument.
        field: &'static str,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// The index refused (partial overlap, duplicate range, outside the range, ...).
    #[error("{0}")]
    Index(#[from] IndexError),
    /// A name that must be unique is taken.
    #[error("a {kind} named {name:?} already exists")]
    NameTaken {
        /// Object type.
        kind: ObjType,
        /// The name.
        name: String,
    },
    /// A custom property is unknown, of the wrong type, missing or read-only.
    #[error("property {name:?} of {kind}: {reason}")]
    Property {
        /// Object type.
        kind: ObjType,
        /// Property name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Not enough free addresses or blocks.
    #[error("not enough free space in {pool}: {asked} asked, {found} free")]
    Exhausted {
        /// The ranges searched.
        pool: String,
        /// How many were asked for.
        asked: u64,
        /// How many were found.
        found: u64,
    },
    /// The range is locked or a container, so nothing may be allocated or changed in it.
    #[error("range {range} is {why}: {action} is not allowed in it")]
    RangeClosed {
        /// The range's name.
        range: String,
        /// "locked" or "a container".
        why: &'static str,
        /// What was refused.
        action: &'static str,
    },
    /// The address is held by another user.
    #[error("{addr} is held for user {holder} until {until_ms} (ms since the epoch)")]
    Held {
        /// Address.
        addr: IpAddr,
        /// The holder's login name.
        holder: String,
        /// When the hold ends.
        until_ms: i64,
    },
    /// The object still has dependants.
    #[error("{object} cannot be deleted: {reason}")]
    InUse {
        /// The object.
        object: ObjKey,
        /// What still depends on it.
        reason: String,
    },
    /// The idempotency key was used before with different content.
    #[error("idempotency key {key:?} was already used for a different transaction")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// Wrong login name or password.
    #[error("wrong login name or password")]
    BadCredentials,
    /// The store failed; see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine stopped accepting writes after a store failure whose outcome is unknown.
    #[error("the engine refuses writes since a database failure left the last commit's outcome unknown ({reason}); restart it to reload from the database")]
    Poisoned {
        /// The original failure.
        reason: String,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A read ran out of its work budget (see `View` and `Budget`); nothing was changed.
    #[error("{0}")]
    Budget(#[from] BudgetExceeded),
    /// This instance is a standby: another one holds the database's writer role.
    #[error("this instance is a standby and does not accept writes; the active instance is {active}: send writes there")]
    Standby {
        /// The active instance, as it registered itself (or "unknown").
        active: String,
    },
}

/// How a read's work budget ran out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetExceeded {
    /// The read's deadline passed.
    #[error("the request took longer than its {limit_ms} ms deadline after examining {examined} objects; narrow it (a smaller range, an address range in the filter) or page with cursor")]
    Deadline {
        /// The deadline, in milliseconds from the start of the request.
        limit_ms: u64,
        /// Objects examined until then.
        examined: u64,
    },
    /// The client went away (or the request was cancelled otherwise).
    #[error("the request was cancelled (the client disconnected)")]
    Cancelled,
    /// The read examined more objects than one request may.
    #[error("the request would examine more than {limit} objects; narrow it (a smaller range, an address range in the filter), page with cursor, or use recordExport")]
    TooMuchWork {
        /// The cap.
        limit: u64,
    },
}

impl EngineError {
    /// The innermost cause (the command's error for [`EngineError::Command`]).
    pub fn root(&self) -> &EngineError {
        match self {
            EngineError::Command { source, .. } => source.root(),
            other => other,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
