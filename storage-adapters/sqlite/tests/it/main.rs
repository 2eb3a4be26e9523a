//! The SQLite store against the shared conformance suite, plus SQLite-specific checks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ipam_engine::{Store, StoreError};
use ipam_store_conformance::{conformance_tests, Harness};
use ipam_store_sqlite::{Durability, SqliteStore};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipam-sqlite-{}-{}",
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

struct Sqlite {
    dirs: Vec<TempDir>,
}

impl Harness for Sqlite {
    fn fresh(&mut self) -> Box<dyn Store> {
        self.dirs.push(TempDir::new());
        self.reopen()
    }
    fn reopen(&mut self) -> Box<dyn Store> {
        let dir = self.dirs.last().expect("fresh() first");
        Box::new(
            SqliteStore::open(dir.0.join("ipam.db"), Durability::Full).expect("open SQLite store"),
        )
    }
}

fn harness() -> Sqlite {
    Sqlite { dirs: Vec::new() }
}

conformance_tests!(harness());

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let d = TempDir::new();
    let path = d.0.join("ipam.db");
    drop(SqliteStore::open(&path, Durability::Full).expect("create"));
    let c = rusqlite::Connection::open(&path).expect("raw open");
    c.execute(
        "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
        [],
    )
    .expect("bump version");
    drop(c);
    let err =
        SqliteStore::open(&path, Durability::Full).expect_err("a newer schema must be refused");
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 99,
                supported: ipam_store_sqlite::SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade ipam"), "{err}");
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_data() {
    let d = TempDir::new();
    let path = d.0.join("ipam.db");
    let old = SqliteStore::open_at_version(&path, 1).expect("create at version 1");
    let version = |p: &std::path::Path| -> (i64, bool) {
        let c = rusqlite::Connection::open(p).expect("raw open");
        let v = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .expect("version");
        let idx = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'changes_by_user'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .expect("index")
            == 1;
        (v, idx)
    };
    assert_eq!(version(&path), (1, false));
    ipam_store_conformance::migration_keeps_data(Box::new(old), || {
        Box::new(SqliteStore::open(&path, Durability::Full).expect("open and migrate"))
    });
    assert_eq!(
        version(&path),
        (i64::from(ipam_store_sqlite::SCHEMA_VERSION), true)
    );
}

#[test]
fn one_writer_per_database_file() {
    let d = TempDir::new();
    let path = d.0.join("ipam.db");
    let mut a = SqliteStore::open(&path, Durability::Full).expect("open");
    let mut b = SqliteStore::open(&path, Durability::Full).expect("open again");
    assert!(a.try_become_writer("a").unwrap());
    assert!(
        !b.try_become_writer("b").unwrap(),
        "the second handle must not write"
    );
    drop(a);
    assert!(
        b.try_become_writer("b").unwrap(),
        "the role frees up with its holder"
    );
}
