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
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade ipam"), "{err}");
}
