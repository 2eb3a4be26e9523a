//! The `Store` trait: what the engine needs from a database, and the change records it writes.
//!
//! A store keeps object tables (the latest image of every object) and the `changes` table
//! (every change, with before and after images: the replay log and the history). The engine
//! calls it from one writer thread only; [`Store::reader`] opens a separate handle for history
//! queries from other threads.

use std::sync::Arc;

use std::net::IpAddr;

use crate::error::StoreError;
use crate::model::{Id, IpamRecord, Millis, ObjKey, Object, RecordState};

/// One change to one object: the unit of the change log and of history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Sequence number: 1, 2, 3, ... without gaps, in commit order.
    pub seq: u64,
    /// When it was applied.
    pub time: Millis,
    /// Id of the user who made it ([`crate::SYSTEM_USER`] for the engine itself).
    pub user_id: Id,
    /// That user's login name at the time.
    pub user: Arc<str>,
    /// The transaction's save comment.
    pub comment: Arc<str>,
    /// The object changed.
    pub key: ObjKey,
    /// Its image before (`None`: created).
    pub before: Option<Object>,
    /// Its image after (`None`: deleted).
    pub after: Option<Object>,
}

/// The kind of a history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Creation,
    /// The object was changed.
    Modification,
    /// The object was deleted.
    Deletion,
}

impl Change {
    /// Creation, modification or deletion.
    pub fn event_type(&self) -> EventType {
        match (&self.before, &self.after) {
            (None, _) => EventType::Creation,
            (Some(_), None) => EventType::Deletion,
            (Some(_), Some(_)) => EventType::Modification,
        }
    }
}

/// A remembered idempotency key with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyEntry {
    /// The key the client sent.
    pub key: String,
    /// Hash of the transaction's content (user, comment, commands).
    pub hash: [u8; 32],
    /// The answer, as JSON of [`crate::TxnResult`].
    pub result: String,
    /// When it was first committed.
    pub time: Millis,
}

/// What one group commit writes, in one database transaction.
#[derive(Debug)]
pub struct CommitBatch<'a> {
    /// Changes, in sequence order, continuing the log without gaps.
    pub changes: &'a [Change],
    /// The next object id to issue after this batch.
    pub next_id: Id,
    /// New idempotency keys.
    pub idempotency: &'a [IdempotencyEntry],
    /// Forget idempotency keys first committed before this time.
    pub forget_idempotency_before: Option<Millis>,
}

/// Counters kept beside the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StoreMeta {
    /// Sequence number of the last change committed (0: none).
    pub last_seq: u64,
    /// Next object id to issue.
    pub next_id: Id,
}

/// A page of history.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only changes of this object.
    pub key: Option<ObjKey>,
    /// Only changes by this user id.
    pub user_id: Option<Id>,
    /// Only changes at or after this time.
    pub since: Option<Millis>,
    /// Only changes at or before this time.
    pub until: Option<Millis>,
    /// Skip this many (newest first).
    pub offset: u64,
    /// At most this many (0 means 100; stores may cap it, SQLite at 10,000).
    pub limit: u64,
}

/// A database the engine keeps its data in. Implementations: `ipam-store-sqlite`,
/// `ipam-store-postgres`. All run the conformance suite in `ipam-store-conformance`.
pub trait Store: Send {
    /// The counters; `last_seq` is 0 and `next_id` is 1 on an empty database.
    fn meta(&mut self) -> Result<StoreMeta, StoreError>;

    /// Calls `f` with every stored object (the latest image of each), in any order.
    fn load_objects(&mut self, f: &mut dyn FnMut(Object)) -> Result<(), StoreError>;

    /// Up to `limit` changes with sequence numbers above `after`, ascending.
    fn changes_after(&mut self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Writes a batch in one database transaction: every change into the change log, each
    /// object's latest image into the object tables (`after == None` deletes it), the
    /// counters and the idempotency keys.
    ///
    /// `Ok` means the batch is durable. `Err` may mean it was not written, or (a failure
    /// during the commit itself) that its outcome is unknown; the engine treats every error
    /// as unknown and stops accepting writes.
    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError>;

    /// Idempotency keys first committed at or after `since`.
    fn idempotency_keys(&mut self, since: Millis) -> Result<Vec<IdempotencyEntry>, StoreError>;

    /// A separate handle for history queries, usable from another thread.
    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError>;

    /// High availability: tries to make this store handle the database's one writer, held
    /// for as long as the handle's connection lives (so that a writer that loses its
    /// connection can no longer commit), and records `instance` as the active one. A store
    /// that nothing else can share (SQLite) answers true.
    fn try_become_writer(&mut self, instance: &str) -> Result<bool, StoreError> {
        let _ = instance;
        Ok(true)
    }

    /// The instance recorded as the active writer, when the store keeps one.
    fn active_instance(&mut self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Waits up to about `timeout` for a sign that another instance committed changes
    /// (PostgreSQL: LISTEN/NOTIFY). Standbys call it between catch-ups; the default sleeps.
    fn wait_for_changes(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        std::thread::sleep(timeout);
        Ok(())
    }
}

/// Read-only queries on the change log, from any thread.
pub trait StoreReader: Send {
    /// Changes matching `q`, newest first, and the total number matching.
    fn history(&mut self, q: &HistoryQuery) -> Result<(Vec<Change>, u64), StoreError>;
}

/// How the SQL stores keep an address record in a row: `(space, addr, state, data)` with the
/// address as 4 or 16 big-endian bytes ([`record_row_addr`]), the state as
/// [`RecordState::code`], and the whole record as JSON in `data` only when it carries more than
/// its state ([`IpamRecord::is_state_only`]). This decodes such a row.
pub fn record_from_row(
    space: i64,
    addr: &[u8],
    state: i64,
    data: Option<&str>,
) -> Result<IpamRecord, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt { what };
    if let Some(json) = data {
        return match Object::from_json(crate::model::ObjType::IpamRecord, json) {
            Ok(Object::IpamRecord(r)) => Ok(r),
            Ok(_) => Err(corrupt(format!("address record {json}: not a record"))),
            Err(e) => Err(corrupt(format!("address record {json}: {e}"))),
        };
    }
    let addr = match addr.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(addr).expect("4 bytes")),
        16 => IpAddr::from(<[u8; 16]>::try_from(addr).expect("16 bytes")),
        n => return Err(corrupt(format!("address record with a {n}-byte address"))),
    };
    let state = u8::try_from(state)
        .ok()
        .and_then(RecordState::from_code)
        .ok_or_else(|| corrupt(format!("address record {addr}: unknown state {state}")))?;
    Ok(IpamRecord {
        state,
        ..IpamRecord::free(space as u64, addr)
    })
}

/// The address of a record row: 4 or 16 big-endian bytes (see [`record_from_row`]).
pub fn record_row_addr(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// Most changes one change-log row may stand for (see [`run_length`]).
pub const MAX_RUN: usize = 4096;

/// `a + i` within its family.
fn ip_add(a: IpAddr, i: u64) -> Option<IpAddr> {
    match a {
        IpAddr::V4(v) => u32::from(v)
            .checked_add(u32::try_from(i).ok()?)
            .map(|x| IpAddr::from(x.to_be_bytes())),
        IpAddr::V6(v) => u128::from(v)
            .checked_add(u128::from(i))
            .map(|x| IpAddr::from(x.to_be_bytes())),
    }
}

/// The image of a change that can join a run: a new record carrying only its state.
fn runnable(c: &Change) -> Option<(Id, IpAddr, crate::model::RecordState)> {
    match (&c.key, &c.before, &c.after) {
        (ObjKey::IpamRecord { space, addr }, None, Some(Object::IpamRecord(r)))
            if r.is_state_only() =>
        {
            Some((*space, *addr, r.state))
        }
        _ => None,
    }
}

/// How the SQL stores keep bulk allocation's change log small: a *run* is one change-log
/// row standing for up to [`MAX_RUN`] changes with consecutive sequence numbers that create
/// consecutive addresses with the same state and nothing else, by one user at one time, in
/// one transaction's comment. The row keeps the first change's ref, key and images, and the
/// run's length; [`expand_run`] gives the changes back. Answers how many changes from
/// `cs[0]` on form one run (at least 1).
pub fn run_length(cs: &[Change]) -> usize {
    let Some((space, addr, state)) = cs.first().and_then(runnable) else {
        return 1;
    };
    let c0 = &cs[0];
    let k0 = c0.key.index_key();
    let mut n = 1;
    while n < cs.len().min(MAX_RUN) {
        let c = &cs[n];
        let same = runnable(c).is_some_and(|(s, a, st)| {
            s == space && st == state && Some(a) == ip_add(addr, n as u64)
        }) && c.seq == c0.seq + n as u64
            && c.time == c0.time
            && c.user_id == c0.user_id
            && c.user == c0.user
            && c.comment == c0.comment
            && c.key.index_key() == k0.wrapping_add(n as i64);
        if !same {
            break;
        }
        n += 1;
    }
    n
}

/// The changes a change-log row with `run` = n stands for (see [`run_length`]).
pub fn expand_run(first: Change, run: i64) -> Result<Vec<Change>, StoreError> {
    let seq = first.seq;
    let corrupt = |what: String| StoreError::Corrupt { what };
    if run == 1 {
        return Ok(vec![first]);
    }
    let (ObjKey::IpamRecord { space, addr }, None, Some(Object::IpamRecord(rec))) =
        (&first.key, &first.before, &first.after)
    else {
        return Err(corrupt(format!(
            "change {seq}: a run of {run} that is not of new address records"
        )));
    };
    if !(2..=MAX_RUN as i64).contains(&run) {
        return Err(corrupt(format!("change {seq}: a run of {run}")));
    }
    let mut out = Vec::with_capacity(run as usize);
    for i in 0..run as u64 {
        let a = ip_add(*addr, i).ok_or_else(|| {
            corrupt(format!(
                "change {seq}: its run passes the end of the address family"
            ))
        })?;
        let mut c = first.clone();
        c.seq = seq + i;
        c.key = ObjKey::IpamRecord {
            space: *space,
            addr: a,
        };
        c.after = Some(Object::IpamRecord(IpamRecord {
            addr: a,
            ..rec.clone()
        }));
        out.push(c);
    }
    Ok(out)
}
