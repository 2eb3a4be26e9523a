//! The PostgreSQL store against the shared conformance suite, on a real PostgreSQL.
//!
//! `IPAM_PG_URL` names the server (default `host=127.0.0.1 user=postgres dbname=test`). Each
//! harness works in its own schema, dropped at the end. Set `IPAM_SKIP_POSTGRES=1` to skip these
//! tests on a machine without PostgreSQL; otherwise a missing server fails them with a message.

use std::sync::atomic::{AtomicU32, Ordering};

use ipam_engine::Store;
use ipam_store_conformance::{conformance_tests, Harness};
use ipam_store_postgres::PostgresStore;

fn url() -> String {
    std::env::var("IPAM_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

fn skip() -> bool {
    std::env::var_os("IPAM_SKIP_POSTGRES").is_some()
}

struct Pg {
    schemas: Vec<String>,
}

impl Harness for Pg {
    fn fresh(&mut self) -> Box<dyn Store> {
        static N: AtomicU32 = AtomicU32::new(0);
        let s = format!(
            "ipam_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        drop_schema(&s);
        self.schemas.push(s);
        self.reopen()
    }
    fn reopen(&mut self) -> Box<dyn Store> {
        let s = self.schemas.last().expect("fresh() first");
        match PostgresStore::open(&url(), s) {
            Ok(st) => Box::new(st),
            Err(e) => panic!(
                "cannot reach PostgreSQL at {:?}: {e}\nstart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n(or set IPAM_SKIP_POSTGRES=1 to skip these tests)",
                url()
            ),
        }
    }
}

fn drop_schema(s: &str) {
    if let Ok(mut c) = postgres::Client::connect(&url(), postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        for s in &self.schemas {
            drop_schema(s);
        }
    }
}

fn harness() -> Pg {
    Pg {
        schemas: Vec::new(),
    }
}

conformance_tests!(harness(), skip_if = skip());

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    if skip() {
        eprintln!("IPAM_SKIP_POSTGRES is set: skipping");
        return;
    }
    let mut h = harness();
    drop(h.fresh());
    let schema = h.schemas.last().expect("schema").clone();
    let mut c = postgres::Client::connect(&url(), postgres::NoTls).expect("connect");
    c.batch_execute(&format!(
        "UPDATE \"{schema}\".meta SET value = 99 WHERE key = 'schema_version'"
    ))
    .expect("bump version");
    let err = PostgresStore::open(&url(), &schema).expect_err("a newer schema must be refused");
    assert!(
        matches!(
            err,
            ipam_engine::StoreError::TooNew {
                found: 99,
                supported: s
            } if s as i64 == ipam_store_postgres::SCHEMA_VERSION
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade ipam"), "{err}");
}

#[test]
fn a_version_1_schema_is_migrated_and_keeps_its_data() {
    if skip() {
        eprintln!("IPAM_SKIP_POSTGRES is set: skipping");
        return;
    }
    let mut h = harness();
    drop(h.fresh());
    let schema = h.schemas.last().expect("schema").clone();
    drop_schema(&schema);
    let old = PostgresStore::open_at_version(&url(), &schema, 1).expect("create at version 1");
    let state = |schema: &str| -> (i64, bool) {
        let mut c = postgres::Client::connect(&url(), postgres::NoTls).expect("connect");
        let v: i64 = c
            .query_one(
                &format!("SELECT value FROM \"{schema}\".meta WHERE key = 'schema_version'"),
                &[],
            )
            .expect("version")
            .get(0);
        let t: bool = c
            .query_one(
                &format!("SELECT to_regclass('\"{schema}\".active_writer') IS NOT NULL"),
                &[],
            )
            .expect("table")
            .get(0);
        (v, t)
    };
    assert_eq!(state(&schema), (1, false));
    ipam_store_conformance::migration_keeps_data(Box::new(old), || {
        Box::new(PostgresStore::open(&url(), &schema).expect("open and migrate"))
    });
    assert_eq!(state(&schema), (ipam_store_postgres::SCHEMA_VERSION, true));
}

#[test]
fn one_writer_per_schema_and_standbys_see_its_name() {
    if skip() {
        eprintln!("IPAM_SKIP_POSTGRES is set: skipping");
        return;
    }
    let mut h = harness();
    drop(h.fresh());
    let schema = h.schemas.last().expect("schema").clone();
    let mut a = PostgresStore::open(&url(), &schema).expect("open");
    let mut b = PostgresStore::open(&url(), &schema).expect("open again");
    assert!(a.try_become_writer("central-a").unwrap());
    assert!(!b.try_become_writer("central-b").unwrap());
    assert_eq!(b.active_instance().unwrap().as_deref(), Some("central-a"));
    let t = std::time::Instant::now();
    b.wait_for_changes(std::time::Duration::from_millis(100))
        .unwrap();
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(90),
        "nothing to wake it"
    );
    drop(a);
    assert!(
        b.try_become_writer("central-b").unwrap(),
        "the role frees up with its holder"
    );
    assert_eq!(b.active_instance().unwrap().as_deref(), Some("central-b"));
}
