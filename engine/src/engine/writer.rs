//! The write path: the writer thread applies batches of transactions to its own state, the
//! committer writes them to the store (group commit), publishes the new version and answers.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::passwords::random_bytes;
use super::Shared;
use crate::apply::Tx;
use crate::command::{Command, Transaction, TxnResult};
use crate::error::EngineError;
use crate::model::{Id, Millis, ObjKey, SYSTEM_USER};
use crate::state::State;
use crate::store::{Change, CommitBatch, IdempotencyEntry, Store};

/// Where a transaction's answer goes: called once, from an engine thread.
pub(super) type Responder = Box<dyn FnOnce(Result<TxnResult, EngineError>) + Send>;

/// A queued transaction.
pub(super) struct Pending {
    pub(super) txn: Transaction,
    pub(super) hash: [u8; 32],
    pub(super) reply: Option<Responder>,
}

pub(super) fn writer_loop(
    shared: &Shared,
    mut store: Box<dyn Store>,
    rx: &Receiver<Pending>,
    st: State,
) {
    let (ctx, crx) = mpsc::sync_channel::<ToCommit>(64);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ipam-committer".into())
            .spawn_scoped(scope, move || committer_loop(shared, &mut *store, &crx))
            .expect("spawning the committer thread");
        apply_loop(shared, rx, &ctx, st);
        drop(ctx);
    });
}

fn apply_loop(
    shared: &Shared,
    rx: &Receiver<Pending>,
    commit: &SyncSender<ToCommit>,
    mut st: State,
) {
    let mut seed = u64::from_le_bytes(random_bytes::<8>());
    let ttl = shared.config.idempotency_ttl.as_millis() as Millis;
    let mut last_purge = Instant::now();
    loop {
        let now = (shared.config.clock)();
        let next_hold = st.holds.get_min().map(|h| h.0);
        let wait = match next_hold {
            Some(t) if t <= now => Duration::ZERO,
            Some(t) => Duration::from_millis((t - now).min(1000) as u64),
            None => Duration::from_secs(1),
        };
        let mut batch = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(p) => batch.push(p),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < shared.config.max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let now = (shared.config.clock)();
        if next_hold.is_some_and(|t| t <= now) {
            let txn = Transaction {
                user: SYSTEM_USER,
                comment: "hold expired".into(),
                idempotency_key: None,
                commands: vec![Command::ExpireHolds],
            };
            batch.push(Pending {
                hash: [0; 32],
                txn,
                reply: None,
            });
        }
        let forget = (last_purge.elapsed() > Duration::from_secs(60)).then(|| {
            last_purge = Instant::now();
            now - ttl
        });
        if batch.is_empty() && forget.is_none() {
            continue;
        }
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        if shared.poisoned().is_some() {
            for p in batch {
                if let Some(r) = p.reply {
                    r(Err(shared.poisoned().expect("poisoned")));
                }
            }
            continue;
        }
        if commit
            .send(apply_batch(&mut st, batch, now, seed, forget))
            .is_err()
        {
            return;
        }
    }
}

type Reply = (Option<Responder>, Result<TxnResult, EngineError>);

/// An applied batch on its way to the store.
struct ToCommit {
    changes: Vec<Change>,
    idempotency: Vec<IdempotencyEntry>,
    next_id: Id,
    forget: Option<Millis>,
    applied: u64,
    replies: Vec<Reply>,
    /// The state after the batch, published once the batch is durable.
    version: Arc<State>,
}

/// Applies a batch to the writer's own state; the commit happens on the committer.
fn apply_batch(
    st: &mut State,
    batch: Vec<Pending>,
    now: Millis,
    seed: u64,
    forget: Option<Millis>,
) -> ToCommit {
    let mut replies = Vec::with_capacity(batch.len());
    let mut changes: Vec<Change> = Vec::new();
    let mut idem = Vec::new();
    if let Some(before) = forget {
        st.idempotency.retain(|_, e| e.time >= before);
    }
    let mut spaces_touched = std::collections::BTreeSet::new();
    for (n, p) in batch.into_iter().enumerate() {
        let result = apply_one(
            st,
            &p,
            now,
            seed.wrapping_add(n as u64),
            &mut changes,
            &mut idem,
            &mut spaces_touched,
        );
        replies.push((p.reply, result));
    }
    for s in spaces_touched {
        if let Some(s) = st.spaces.get(&s) {
            s.idx.prepare_lookups();
        }
    }
    ToCommit {
        changes,
        idempotency: idem,
        next_id: st.next_id,
        forget,
        applied: st.applied_seq,
        replies,
        version: Arc::new(st.clone()),
    }
}

/// The committer: writes each applied batch in one database transaction, then acknowledges
/// it. Runs beside the writer, so the next batch is applied while this one is written.
fn committer_loop(shared: &Shared, store: &mut dyn Store, rx: &Receiver<ToCommit>) {
    while let Ok(mut c) = rx.recv() {
        // Everything the writer applied meanwhile goes into the same database transaction.
        while let Ok(more) = rx.try_recv() {
            c.changes.extend(more.changes);
            c.idempotency.extend(more.idempotency);
            c.next_id = c.next_id.max(more.next_id);
            c.forget = c.forget.max(more.forget);
            c.applied = more.applied;
            c.replies.extend(more.replies);
            c.version = more.version;
        }
        let write = !c.changes.is_empty() || !c.idempotency.is_empty() || c.forget.is_some();
        let t0 = Instant::now();
        let failed = shared.poisoned().is_some()
            || (write
                && store
                    .commit(&CommitBatch {
                        changes: &c.changes,
                        next_id: c.next_id,
                        idempotency: &c.idempotency,
                        forget_idempotency_before: c.forget,
                    })
                    .map_err(|e| shared.poison(e.to_string()))
                    .is_err());
        let st = &shared.stats;
        if write {
            st.commits.fetch_add(1, Relaxed);
            st.commit_micros
                .fetch_add(t0.elapsed().as_micros() as u64, Relaxed);
            if failed {
                st.failed_commits.fetch_add(1, Relaxed);
            } else {
                st.changes.fetch_add(c.changes.len() as u64, Relaxed);
            }
        }
        st.transactions.fetch_add(c.replies.len() as u64, Relaxed);
        if failed {
            for (reply, _) in c.replies {
                if let Some(r) = reply {
                    r(Err(shared.poisoned().expect("poisoned")));
                }
            }
            continue;
        }
        shared.publish(c.version);
        shared.set_committed(c.applied);
        for (reply, result) in c.replies {
            if let Some(r) = reply {
                r(result);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_one(
    st: &mut State,
    p: &Pending,
    now: Millis,
    seed: u64,
    changes: &mut Vec<Change>,
    idem: &mut Vec<IdempotencyEntry>,
    spaces_touched: &mut std::collections::BTreeSet<Id>,
) -> Result<TxnResult, EngineError> {
    if let Some(key) = &p.txn.idempotency_key {
        if let Some(e) = st.idempotency.get(key) {
            if e.hash != p.hash {
                return Err(EngineError::IdempotencyConflict { key: key.clone() });
            }
            let mut r: TxnResult = serde_json::from_str(&e.result)
                .map_err(|e| EngineError::invalid("idempotency record", e.to_string()))?;
            r.replayed = true;
            return Ok(r);
        }
    }
    let actor = st.actor(p.txn.user)?;
    let user_name: Arc<str> = actor.name.as_str().into();
    let mut tx = Tx {
        st,
        actor,
        comment: p.txn.comment.as_str().into(),
        user_name,
        now,
        changes: Vec::new(),
        seed,
    };
    let mut outcomes = Vec::with_capacity(p.txn.commands.len());
    for (index, cmd) in p.txn.commands.iter().enumerate() {
        match tx.apply(cmd) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                tx.rollback();
                return Err(EngineError::Command {
                    index,
                    source: Box::new(e),
                });
            }
        }
    }
    for c in &tx.changes {
        if let ObjKey::Range(_) = c.key {
            if let Some(crate::model::Object::Range(r)) = c.after.as_ref().or(c.before.as_ref()) {
                spaces_touched.insert(r.space);
            }
        }
    }
    let result = TxnResult {
        outcomes,
        seq: tx.st.applied_seq,
        time: now,
        replayed: false,
    };
    if let Some(key) = &p.txn.idempotency_key {
        let e = IdempotencyEntry {
            key: key.clone(),
            hash: p.hash,
            result: serde_json::to_string(&result).expect("results serialize"),
            time: now,
        };
        tx.st.idempotency.insert(key.clone(), Arc::new(e.clone()));
        idem.push(e);
    }
    changes.append(&mut tx.changes);
    Ok(result)
}
