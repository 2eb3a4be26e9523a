//! `ipam-engine`: the heart of Central.
//!
//! - **Model** ([`model`]): address spaces, ranges, IPAM records, custom property
//!   definitions, folders, users, groups, roles and access entries, named as in Micetro.
//! - **Write path** ([`Engine::submit`]): a [`Transaction`] of [`Command`]s goes to one writer
//!   thread, which applies a batch of transactions (each all-or-nothing, with access checks
//!   and validation), writes all their [`Change`]s to the [`Store`] in one database
//!   transaction (group commit), and only then acknowledges them. Idempotency keys, expiry of
//!   held addresses and poisoning after an unknown commit outcome live here too.
//! - **Reads** ([`Engine::read`], [`Engine::read_with`]): a [`View`] of the newest committed
//!   version of the state, which readers take without blocking the writer or each other;
//!   access checks are structural (hidden objects look missing) and scans count against a
//!   [`Budget`] (deadline, cancellation, cap on objects examined).
//! - **Persistence**: the [`Store`] trait (SQLite in `ipam-store-sqlite`, PostgreSQL in
//!   `ipam-store-postgres`); snapshots of the model and index (rkyv, mmapped) for fast start.
//!
//! See `engine/DESIGN.md` for the concurrency rules and the on-disk formats.

mod apply;
mod command;
mod engine;
mod error;
mod idx;
mod mmap;
pub mod model;
mod services;
mod snapshot;
mod state;
mod store;
mod view;

pub use command::{
    AllocMode, AllocRequest, BlockRequest, BlockSpec, Command, Membership, NewRange, Outcome,
    PropertyDefinitionSpec, RangePatch, RecordPatch, ServiceObject, Transaction, TxnResult,
    UserSpec, MAX_ALLOC,
};
pub use engine::{
    system_millis, Engine, EngineConfig, EngineStats, LoadSource, OpenReport, PasswordCost, Role,
};
pub use error::{BudgetExceeded, EngineError, StoreError};
pub use ipam_index::Utilization;
pub use model::{Id, Millis, ObjKey, ObjType, Object, DEFAULT_SPACE, LINKED_BY, SYSTEM_USER};
pub use services::{absolute_name, absolute_record_name, reverse_address, reverse_name};
pub use snapshot::snapshot_files;
pub use store::{
    expand_run, record_from_row, record_row_addr, run_length, Change, CommitBatch, EventType,
    HistoryQuery, IdempotencyEntry, Store, StoreMeta, StoreReader, MAX_RUN,
};
pub use view::{AddressLinks, Budget, RangeView, Records, View};
