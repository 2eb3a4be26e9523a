//! Engine tests on the real SQLite store: behaviour, properties against a reference model,
//! crash safety (SIGKILL), concurrency, snapshots.

#![allow(missing_docs)]

mod basics;
mod concurrency;
mod crash;
mod props;
mod services;
mod snapshots;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use ipam_engine::{
    AllocMode, AllocRequest, Command, Engine, EngineConfig, EngineError, Id, NewRange, Outcome,
    PasswordCost, Transaction,
};
use ipam_store_sqlite::{Durability, SqliteStore};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipam-engine-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct Clock(pub Arc<AtomicI64>);

impl Default for Clock {
    fn default() -> Clock {
        Clock(Arc::new(AtomicI64::new(1_800_000_000_000)))
    }
}

impl Clock {
    pub fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1000, Ordering::SeqCst);
    }
}

pub fn config(dir: &Path, snapshots: bool) -> EngineConfig {
    EngineConfig {
        snapshot_dir: snapshots.then(|| dir.join("snapshots")),
        snapshot_every: None,
        admin_password: Some("admin-pw".into()),
        password_cost: PasswordCost::InsecureFast,
        ..EngineConfig::default()
    }
}

pub fn store(dir: &Path) -> Box<SqliteStore> {
    Box::new(SqliteStore::open(dir.join("ipam.db"), Durability::Full).expect("open SQLite store"))
}

/// Opens an engine on `dir/ipam.db` and logs the administrator in.
pub fn open(dir: &Path, cfg: EngineConfig) -> (Engine, Id) {
    let (e, _) = Engine::open(store(dir), cfg).expect("open engine");
    let admin = e
        .authenticate("administrator", "admin-pw")
        .expect("administrator logs in");
    (e, admin)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn submit(e: &Engine, user: Id, cmd: Command) -> Result<Outcome, EngineError> {
    e.submit(Transaction::one(user, cmd))
        .map(|mut r| r.outcomes.remove(0))
}

pub fn create_range(e: &Engine, user: Id, from: &str, to: &str) -> Id {
    let o = submit(
        e,
        user,
        Command::CreateRange(NewRange {
            from: Some(ip(from)),
            to: Some(ip(to)),
            ..Default::default()
        }),
    )
    .expect("create range");
    match o {
        Outcome::Created(r) => r.trim_start_matches("ranges/").parse().expect("range ref"),
        other => panic!("unexpected outcome {other:?}"),
    }
}

pub fn alloc(pool: Vec<Id>, count: u32, mode: AllocMode) -> Command {
    Command::AllocateAddresses(AllocRequest {
        pool,
        count,
        start: None,
        random: false,
        exclude: vec![],
        mode,
        properties: Default::default(),
    })
}

pub fn addresses(o: Outcome) -> Vec<IpAddr> {
    match o {
        Outcome::Addresses(a) => a,
        other => panic!("expected addresses, got {other:?}"),
    }
}
