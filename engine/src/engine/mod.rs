//! The engine: one writer thread with group commit, concurrent readers, and start-up.
//!
//! Concurrency rules (see `engine/DESIGN.md`, "Reads"):
//! - Only the writer thread changes the state: it owns a working copy that no one else sees,
//!   applies a batch of transactions to it, and hands an immutable clone of the result (cheap:
//!   every collection is structurally shared) to the committer with the batch.
//! - The committer writes the batch to the store (group commit) and only then publishes that
//!   clone as the current version and acknowledges the batch's transactions.
//! - Readers take the current version (an `Arc`, under a mutex held for a pointer copy) and
//!   work on it without any lock, for as long as their budget allows: they never block the
//!   writer, each other or a snapshot, and they only ever see committed state.
//! - A failed commit poisons the engine: every later write and read fails with
//!   [`EngineError::Poisoned`].

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use blake2::{Blake2b, Digest};

use crate::apply::{bootstrap, Tx};
use crate::command::{Command, Transaction, TxnResult};
use crate::error::EngineError;
use crate::model::{Id, Millis, ObjKey, SYSTEM_USER};
use crate::snapshot::{self, SnapshotSource};
use crate::state::State;
use crate::store::{Change, CommitBatch, HistoryQuery, Store, StoreReader};
use crate::view::{Budget, View};

mod passwords;
mod standby;
mod writer;

use passwords::{generate_password, password_hasher};
use standby::standby_then_write;
use writer::{writer_loop, Pending};

/// How expensive password hashes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordCost {
    /// argon2id with the recommended parameters (19 MiB, 2 passes).
    Standard,
    /// argon2id with minimal memory: for tests only.
    InsecureFast,
}

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    /// Directory for snapshots; `None` keeps none (every start loads the whole database).
    pub snapshot_dir: Option<PathBuf>,
    /// Write a snapshot in the background after this many changes (`None`: only on request).
    pub snapshot_every: Option<u64>,
    /// The administrator's password on the first start of an empty database; `None`
    /// generates one and reports it in [`OpenReport::admin_password`].
    pub admin_password: Option<String>,
    /// How long idempotency keys are remembered (default 24 hours).
    pub idempotency_ttl: Duration,
    /// Most transactions one group commit takes.
    pub max_batch: usize,
    /// Password hashing cost.
    pub password_cost: PasswordCost,
    /// The time source, in milliseconds since the epoch (tests move it by hand).
    pub clock: Arc<dyn Fn() -> Millis + Send + Sync>,
    /// This instance's name, recorded by stores shared between instances (high
    /// availability) as the active writer, and named to clients by standbys.
    pub instance: String,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("snapshot_dir", &self.snapshot_dir)
            .field("snapshot_every", &self.snapshot_every)
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("max_batch", &self.max_batch)
            .field("password_cost", &self.password_cost)
            .finish_non_exhaustive()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            snapshot_dir: None,
            snapshot_every: Some(1_000_000),
            admin_password: None,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            max_batch: 4096,
            password_cost: PasswordCost::Standard,
            clock: Arc::new(system_millis),
            instance: "ipam".to_string(),
        }
    }
}

/// Lowers the calling thread to the lowest CPU priority (nice 19): for work nobody waits
/// on, such as writing snapshots, so that the write path and readers go first.
fn lowest_priority() {
    let me = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(me), 19);
}

/// The current time in milliseconds since the epoch.
pub fn system_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Where start-up found its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// An empty database, initialized now.
    Empty,
    /// A snapshot file, then the changes after it.
    Snapshot {
        /// The file.
        path: PathBuf,
        /// The last change it contained.
        seq: u64,
    },
    /// The object tables of the database.
    Database,
}

/// What start-up did.
#[derive(Clone, Debug)]
pub struct OpenReport {
    /// Where the state came from.
    pub source: LoadSource,
    /// Changes replayed from the log after the snapshot.
    pub replayed: u64,
    /// Snapshots that were found unusable, with the reason.
    pub rejected_snapshots: Vec<(PathBuf, String)>,
    /// Generated password of the `administrator` account created on this start (only when
    /// the database was empty and no password was configured). Shown once.
    pub admin_password: Option<String>,
    /// Time from open to ready.
    pub elapsed: Duration,
}

pub(crate) struct Shared {
    /// The newest committed version of the state (see the module docs).
    current: Mutex<Arc<State>>,
    committed: Mutex<u64>,
    committed_cv: Condvar,
    poison: OnceLock<String>,
    reader: Mutex<Box<dyn StoreReader>>,
    config: EngineConfig,
    hash_password: Box<dyn Fn(&str) -> String + Send + Sync>,
    snapshot_lock: Mutex<()>,
    last_snapshot_seq: Mutex<u64>,
    stopping: std::sync::atomic::AtomicBool,
    stats: StatCounters,
    /// The writer's queue; `None` on a standby (and after shutdown).
    tx: Mutex<Option<SyncSender<Pending>>>,
    /// `Some(active instance)` while this engine is a standby.
    standby: Mutex<Option<String>>,
    /// A hash checked for unknown login names (made on first use).
    dummy_hash: OnceLock<String>,
}

#[derive(Default)]
struct StatCounters {
    commits: AtomicU64,
    transactions: AtomicU64,
    changes: AtomicU64,
    commit_micros: AtomicU64,
    failed_commits: AtomicU64,
}

/// Counters of the write path since the engine started (for metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Group commits written to the store.
    pub commits: u64,
    /// Transactions acknowledged by those commits (including failed ones, which write
    /// nothing but are answered in the same batch).
    pub transactions: u64,
    /// Changes written.
    pub changes: u64,
    /// Time spent in the store's commit, in microseconds.
    pub commit_micros: u64,
    /// Commits the store failed.
    pub failed_commits: u64,
    /// Sequence number of the last committed change.
    pub committed_seq: u64,
}

impl Shared {
    fn set_committed(&self, seq: u64) {
        *self.committed.lock().expect("committed lock") = seq;
        self.committed_cv.notify_all();
    }

    fn poison(&self, reason: String) {
        let _ = self.poison.set(reason);
        self.committed_cv.notify_all();
    }

    fn poisoned(&self) -> Option<EngineError> {
        self.poison
            .get()
            .map(|r| EngineError::Poisoned { reason: r.clone() })
    }

    /// Waits until change `seq` is committed.
    pub(crate) fn wait_committed(&self, seq: u64) -> Result<(), EngineError> {
        let mut c = self.committed.lock().expect("committed lock");
        while *c < seq {
            if let Some(e) = self.poisoned() {
                return Err(e);
            }
            c = self.committed_cv.wait(c).expect("committed lock");
        }
        Ok(())
    }

    /// The newest committed version. The lock is held only to copy the pointer.
    pub(crate) fn current(&self) -> Arc<State> {
        Arc::clone(&self.current.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `version` the one readers get. The version it replaces is dropped after the lock
    /// is released (freeing what no other version shares takes time).
    fn publish(&self, version: Arc<State>) {
        let old = {
            let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *cur, version)
        };
        drop(old);
    }
}

/// Whether an engine writes or follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The database's one writer.
    Active,
    /// A standby: it follows the change log, serves reads, refuses writes, and becomes
    /// active when the writer role frees up.
    Standby {
        /// The active instance, as it registered itself.
        active: String,
    },
}

/// The engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    snapshotter: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Hash of what a transaction asks for, to tell a true repeat from a reused key.
fn content_hash(t: &Transaction) -> [u8; 32] {
    let mut h = Blake2b::<blake2::digest::consts::U32>::new();
    h.update(t.user.to_le_bytes());
    h.update((t.comment.len() as u64).to_le_bytes());
    h.update(t.comment.as_bytes());
    h.update(serde_json::to_vec(&t.commands).expect("commands serialize"));
    h.finalize().into()
}

impl Engine {
    /// Opens the engine on a store: loads the newest usable snapshot (or the whole
    /// database), replays the changes after it, creates the administrator on an empty
    /// database, and starts the writer.
    pub fn open(
        mut store: Box<dyn Store>,
        config: EngineConfig,
    ) -> Result<(Engine, OpenReport), EngineError> {
        let t0 = Instant::now();
        // Take the writer role (or learn that another instance holds it) before loading, so
        // that nothing is committed behind this instance's back between load and write.
        let mut active = store.try_become_writer(&config.instance)?;
        // A writer that was just closed in this process can hold its lock a moment longer: a
        // child process forked meanwhile (by any thread) keeps a copy of the lock's file
        // descriptor until it execs. Look again briefly before settling for standby.
        for _ in 0..25 {
            if active {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            active = store.try_become_writer(&config.instance)?;
        }
        let meta = store.meta()?;
        let mut rejected = Vec::new();
        let (mut state, source) = match snapshot::load_newest(
            config.snapshot_dir.as_deref(),
            meta.last_seq,
            &mut rejected,
        ) {
            Some((st, SnapshotSource { path, seq })) => (st, LoadSource::Snapshot { path, seq }),
            None if meta.last_seq == 0 => (State::new(), LoadSource::Empty),
            None => (snapshot::load_store(&mut *store)?, LoadSource::Database),
        };
        state.next_id = state.next_id.max(meta.next_id);
        let from = state.applied_seq;
        snapshot::replay(&mut state, &mut *store)?;
        let replayed = state.applied_seq - from;
        let now = (config.clock)();
        let ttl = config.idempotency_ttl.as_millis() as Millis;
        for e in store.idempotency_keys(now - ttl)? {
            state.idempotency.insert(e.key.clone(), Arc::new(e));
        }
        for s in state.spaces.values() {
            s.idx.prepare_lookups();
        }
        let hash_password = password_hasher(config.password_cost);
        let mut admin_password = None;
        if active && state.applied_seq == 0 {
            let pw = match &config.admin_password {
                Some(p) => p.clone(),
                None => {
                    let p = generate_password();
                    admin_password = Some(p.clone());
                    p
                }
            };
            let hash = hash_password(&pw);
            let mut tx = Tx {
                st: &mut state,
                actor: crate::state::State::new().actor(SYSTEM_USER)?,
                comment: "initial setup".into(),
                user_name: "system".into(),
                now,
                changes: Vec::new(),
                seed: 0,
            };
            bootstrap(&mut tx, hash)?;
            let changes = std::mem::take(&mut tx.changes);
            let next_id = state.next_id;
            store.commit(&CommitBatch {
                changes: &changes,
                next_id,
                idempotency: &[],
                forget_idempotency_before: None,
            })?;
        }
        let committed = state.applied_seq;
        let reader = store.reader()?;
        let shared = Arc::new(Shared {
            current: Mutex::new(Arc::new(state.clone())),
            committed: Mutex::new(committed),
            committed_cv: Condvar::new(),
            poison: OnceLock::new(),
            reader: Mutex::new(reader),
            config: config.clone(),
            hash_password,
            snapshot_lock: Mutex::new(()),
            last_snapshot_seq: Mutex::new(match &source {
                LoadSource::Snapshot { seq, .. } => *seq,
                _ => 0,
            }),
            stopping: std::sync::atomic::AtomicBool::new(false),
            stats: StatCounters::default(),
            tx: Mutex::new(None),
            standby: Mutex::new(None),
            dummy_hash: OnceLock::new(),
        });
        let w = Arc::clone(&shared);
        let writer = if active {
            let (tx, rx) = mpsc::sync_channel::<Pending>(config.max_batch * 4);
            *shared.tx.lock().expect("sender lock") = Some(tx);
            std::thread::Builder::new()
                .name("ipam-writer".into())
                .spawn(move || writer_loop(&w, store, &rx, state))
        } else {
            let who = store.active_instance()?.unwrap_or_else(|| "unknown".into());
            *shared.standby.lock().expect("standby lock") = Some(who);
            std::thread::Builder::new()
                .name("ipam-standby".into())
                .spawn(move || standby_then_write(&w, store, state))
        }
        .expect("spawning the writer thread");
        let engine = Engine {
            shared,
            writer: Mutex::new(Some(writer)),
            snapshotter: Mutex::new(None),
        };
        engine.start_snapshotter();
        let report = OpenReport {
            source,
            replayed,
            rejected_snapshots: rejected,
            admin_password,
            elapsed: t0.elapsed(),
        };
        Ok((engine, report))
    }

    /// Applies a transaction all-or-nothing and returns once it is durable.
    ///
    /// Errors: the failing command's error wrapped in [`EngineError::Command`] (nothing was
    /// changed), [`EngineError::IdempotencyConflict`], [`EngineError::Poisoned`] after a store
    /// failure, [`EngineError::ShuttingDown`].
    pub fn submit(&self, txn: Transaction) -> Result<TxnResult, EngineError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.submit_with(txn, move |r| {
            let _ = rtx.send(r);
        });
        rrx.recv()
            .map_err(|_| self.shared.poisoned().unwrap_or(EngineError::ShuttingDown))?
    }

    /// Queues a transaction and calls `done` with what [`Engine::submit`] would answer,
    /// once it is durable (or refused). `done` runs on an engine thread and must not block;
    /// it is dropped uncalled only when the engine stops first. This call waits only while
    /// the queue is full (backpressure), never for the commit: async front-ends use it with
    /// a oneshot channel instead of parking a thread per request.
    pub fn submit_with(
        &self,
        txn: Transaction,
        done: impl FnOnce(Result<TxnResult, EngineError>) + Send + 'static,
    ) {
        if let Some(e) = self.shared.poisoned() {
            return done(Err(e));
        }
        if txn
            .commands
            .iter()
            .any(|c| matches!(c, Command::ExpireHolds))
        {
            return done(Err(EngineError::invalid(
                "commands",
                "ExpireHolds is sent by the engine itself",
            )));
        }
        let sender = self.shared.tx.lock().expect("sender lock").clone();
        let Some(sender) = sender else {
            if let Some(active) = self.shared.standby.lock().expect("standby lock").clone() {
                return done(Err(EngineError::Standby { active }));
            }
            return done(Err(EngineError::ShuttingDown));
        };
        // Only keyed transactions are compared with an earlier answer (by what was asked: the
        // clear password, before it is hashed with a fresh salt).
        let hash = if txn.idempotency_key.is_some() {
            content_hash(&txn)
        } else {
            [0; 32]
        };
        let mut txn = txn;
        self.hash_passwords(&mut txn);
        let p = Pending {
            hash,
            txn,
            reply: Some(Box::new(done)),
        };
        if let Err(mpsc::SendError(p)) = sender.send(p) {
            if let Some(r) = p.reply {
                r(Err(EngineError::ShuttingDown));
            }
        }
    }

    /// Hashes a password as the engine stores it (argon2id, a fresh salt; tens of
    /// milliseconds and 19 MiB): for callers that hash off their own threads before
    /// submitting a [`crate::UserSpec`] with `password_hash`.
    pub fn hash_password(&self, password: &str) -> String {
        (self.shared.hash_password)(password)
    }

    /// Replaces clear passwords in user commands by their hashes, on the caller's thread.
    fn hash_passwords(&self, txn: &mut Transaction) {
        for c in &mut txn.commands {
            if let Command::CreateUser(spec) | Command::UpdateUser { spec, .. } = c {
                if let Some(p) = spec.password.take() {
                    if p.is_empty() {
                        spec.password = Some(p); // refused by the write path, with a reason
                    } else {
                        spec.password_hash = Some(self.hash_password(&p));
                    }
                }
            }
        }
    }

    /// Runs a read against a consistent view as `user`, without a work budget. The view is
    /// the newest committed version: everything it shows is durable, and the read holds no
    /// lock while it runs (see [`Engine::read_with`] to bound its work).
    ///
    /// Errors: whatever `f` answers; [`EngineError::NotFound`] for an unknown user;
    /// [`EngineError::Poisoned`] after a store failure.
    pub fn read<R>(
        &self,
        user: Id,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        self.read_with(user, &Budget::unlimited(), f)
    }

    /// [`Engine::read`] with a work budget: scans in the view count the objects they examine
    /// and stop with [`EngineError::Budget`] once the budget's deadline passes, its
    /// cancellation flag is set or its cap is reached.
    pub fn read_with<R>(
        &self,
        user: Id,
        budget: &Budget,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        if let Some(e) = self.shared.poisoned() {
            return Err(e);
        }
        let st = self.shared.current();
        let view = View::new(&st, st.actor(user)?, budget);
        f(&view)
    }

    /// Like [`Engine::read`], also answering the sequence number of the last change the view
    /// shows (always committed: [`Engine::wait_durable`] on it returns at once).
    pub fn read_at<R>(
        &self,
        user: Id,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError>,
    ) -> Result<(R, u64), EngineError> {
        if let Some(e) = self.shared.poisoned() {
            return Err(e);
        }
        let st = self.shared.current();
        let view = View::new(&st, st.actor(user)?, Budget::none());
        Ok((f(&view)?, st.applied_seq))
    }

    /// [`Engine::read_at`]; it never waits for a lock any more, so it always answers `Ok`.
    /// Kept for callers written when reads could wait behind a write batch.
    #[allow(clippy::type_complexity)]
    pub fn try_read_at<R, F>(&self, user: Id, f: F) -> Result<Result<(R, u64), EngineError>, F>
    where
        F: FnOnce(&View<'_>) -> Result<R, EngineError>,
    {
        Ok(self.read_at(user, f))
    }

    /// Waits until change `seq` is durable (errors when the engine was poisoned first).
    pub fn wait_durable(&self, seq: u64) -> Result<(), EngineError> {
        self.shared.wait_committed(seq)
    }

    /// Checks a login name and password; answers the user's id.
    pub fn authenticate(&self, name: &str, password: &str) -> Result<Id, EngineError> {
        let (id, hash) = {
            let st = self.shared.current();
            let u = st
                .users
                .values()
                .find(|u| u.name.eq_ignore_ascii_case(name.trim()));
            match u {
                Some(u) => (u.id, u.password_hash.clone()),
                None => {
                    // Same work as for a real account, so that timing does not tell which
                    // login names exist.
                    let dummy = self
                        .shared
                        .dummy_hash
                        .get_or_init(|| (self.shared.hash_password)("no such user"));
                    if let Ok(parsed) = PasswordHash::new(dummy) {
                        let _ = Argon2::default().verify_password(password.as_bytes(), &parsed);
                    }
                    return Err(EngineError::BadCredentials);
                }
            }
        };
        let parsed = PasswordHash::new(&hash).map_err(|_| EngineError::BadCredentials)?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| EngineError::BadCredentials)?;
        Ok(id)
    }

    /// History of the change log, newest first, with the total count. Without an object in
    /// the query it needs the Administer permission; with one, Read on that object.
    ///
    /// An object the user may not read answers like a missing one (an address: no history;
    /// anything else: [`EngineError::NotFound`]), and a user who may administer but has
    /// entries hiding some objects does not see their changes (the total then counts them
    /// for this page's part).
    pub fn history(&self, user: Id, q: &HistoryQuery) -> Result<(Vec<Change>, u64), EngineError> {
        use crate::model::Permission;
        let st = self.shared.current();
        let actor = st.actor(user)?;
        match &q.key {
            Some(k) if !st.can(&actor, Permission::Read, Some(k)) => {
                return match k {
                    ObjKey::IpamRecord { .. } => Ok((Vec::new(), 0)),
                    _ => Err(EngineError::NotFound(k.to_ref())),
                };
            }
            Some(_) => {}
            None => st.check(&actor, Permission::Administer, None)?,
        }
        let (mut changes, mut total) = {
            let mut r = self.shared.reader.lock().expect("reader lock");
            r.history(q)?
        };
        if !actor.superuser {
            let before = changes.len();
            changes.retain(|c| st.can(&actor, Permission::Read, Some(&c.key)));
            total = total.saturating_sub((before - changes.len()) as u64);
        }
        Ok((changes, total))
    }

    /// Sequence number of the last committed change.
    pub fn committed_seq(&self) -> u64 {
        *self.shared.committed.lock().expect("committed lock")
    }

    /// Whether this engine writes or follows another instance.
    pub fn role(&self) -> Role {
        match self.shared.standby.lock().expect("standby lock").clone() {
            Some(active) => Role::Standby { active },
            None => Role::Active,
        }
    }

    /// Why the engine stopped accepting writes, after a database failure.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.poison.get().cloned()
    }

    /// Counters of the write path since start.
    pub fn stats(&self) -> EngineStats {
        let s = &self.shared.stats;
        EngineStats {
            commits: s.commits.load(Relaxed),
            transactions: s.transactions.load(Relaxed),
            changes: s.changes.load(Relaxed),
            commit_micros: s.commit_micros.load(Relaxed),
            failed_commits: s.failed_commits.load(Relaxed),
            committed_seq: self.committed_seq(),
        }
    }

    /// Writes a snapshot of the newest committed version now (when a snapshot directory is
    /// configured) and answers its path. Neither the writer nor readers wait for it: it is
    /// written on a thread of its own at the lowest CPU priority, and this call waits for it.
    pub fn snapshot_now(&self) -> Result<Option<PathBuf>, EngineError> {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("ipam-snapshot".into())
                .spawn_scoped(s, || {
                    lowest_priority();
                    self.shared.write_snapshot()
                })
                .expect("spawning a snapshot thread")
                .join()
                .unwrap_or_else(|_| Err(EngineError::invalid("snapshot", "the writer panicked")))
        })
    }

    /// Stops the writer after the transactions already queued, and waits for it.
    pub fn shutdown(&self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.tx.lock().expect("sender lock").take();
        if let Some(h) = self.writer.lock().expect("writer lock").take() {
            let _ = h.join();
        }
        if let Some(h) = self.snapshotter.lock().expect("snapshot lock").take() {
            let _ = h.join();
        }
    }

    fn start_snapshotter(&self) {
        let Some(every) = self.shared.config.snapshot_every else {
            return;
        };
        if self.shared.config.snapshot_dir.is_none() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let h = std::thread::Builder::new()
            .name("ipam-snapshot".into())
            .spawn(move || {
                lowest_priority();
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let Some(shared) = weak.upgrade() else { return };
                    if shared.poison.get().is_some()
                        || shared.stopping.load(std::sync::atomic::Ordering::SeqCst)
                    {
                        return;
                    }
                    let committed = *shared.committed.lock().expect("committed lock");
                    let last = *shared.last_snapshot_seq.lock().expect("snapshot seq lock");
                    if committed.saturating_sub(last) >= every {
                        let _ = shared.write_snapshot();
                    }
                }
            })
            .expect("spawning the snapshot thread");
        *self.snapshotter.lock().expect("snapshot lock") = Some(h);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    /// Writes a snapshot of the current version, one at a time.
    fn write_snapshot(&self) -> Result<Option<PathBuf>, EngineError> {
        let Some(dir) = self.config.snapshot_dir.as_deref() else {
            return Ok(None);
        };
        let _one_at_a_time = self.snapshot_lock.lock().expect("snapshot lock");
        let version = self.current();
        let path = snapshot::write(dir, &version)?;
        let mut s = self.last_snapshot_seq.lock().expect("snapshot seq lock");
        *s = (*s).max(version.applied_seq);
        Ok(Some(path))
    }
}
