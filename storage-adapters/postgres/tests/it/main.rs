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
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade ipam"), "{err}");
}
