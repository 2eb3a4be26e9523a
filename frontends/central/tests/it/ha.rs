//! High availability on PostgreSQL, with real processes: two Centrals on one schema, the
//! active one SIGKILLed in the middle of a stream of allocations.
//!
//! Needs PostgreSQL (`IPAM_PG_URL`, default `host=127.0.0.1 user=postgres dbname=test`);
//! `IPAM_SKIP_POSTGRES=1` skips it on a machine without one (the README's one opt-out).
use std::collections::HashSet;
use std::time::{Duration, Instant};

use ipam_client::{Client, Trust};
use serde_json::json;

use super::e2e::Server;
use super::{basic, Api, TempDir};

pub fn pg_url() -> String {
    std::env::var("IPAM_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

pub struct Schema(pub String);

/// Drops a schema (on a plain thread: the synchronous client runs its own runtime).
fn drop_schema(s: String) -> Result<(), String> {
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&pg_url(), postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
            .map_err(|e| e.to_string())
    })
    .join()
    .expect("the PostgreSQL thread")
}

impl Schema {
    fn new() -> Schema {
        Schema::named("ha")
    }

    /// A fresh schema `ipam_TAG_PID`, dropped on drop.
    pub fn named(tag: &str) -> Schema {
        let s = format!("ipam_{tag}_{}", std::process::id());
        if let Err(e) = drop_schema(s.clone()) {
            panic!(
                "cannot reach PostgreSQL at {:?}: {e}\nstart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n(or set IPAM_SKIP_POSTGRES=1 to skip the PostgreSQL tests)",
                pg_url()
            );
        }
        Schema(s)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = drop_schema(self.0.clone());
    }
}

const PW: &str = "ha-password";

async fn connect(s: &Server) -> Client {
    let mut c = Client::connect(s.addr, Trust::Fingerprint(s.fingerprint.clone()))
        .await
        .unwrap();
    c.basic("administrator", PW);
    c
}

async fn allocate(c: &mut Client, key: &str) -> Result<Vec<String>, String> {
    let r = c
        .request_with(
            "POST",
            "/mmws/api/v2/addressAllocations",
            Some(&json!({"pool": ["10.200.0.0/16"], "count": 10})),
            &[("Idempotency-Key", key)],
        )
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!("HTTP {} {}", r.status, r.text()));
    }
    let v = r.json().map_err(|e| e.to_string())?;
    Ok(v["result"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_within_5s_and_keeps_every_acknowledged_allocation() {
    if std::env::var_os("IPAM_SKIP_POSTGRES").is_some() {
        eprintln!("IPAM_SKIP_POSTGRES is set: skipping the PostgreSQL failover test");
        return;
    }
    let schema = Schema::new();
    let url = pg_url();
    let args = |name: &'static str| -> Vec<String> {
        vec![
            "--database".into(),
            url.clone(),
            "--pg-schema".into(),
            schema.0.clone(),
            "--instance-name".into(),
            name.into(),
        ]
    };
    let (da, db) = (TempDir::new("ha-a"), TempDir::new("ha-b"));
    let aa = args("central-a");
    let mut a = Server::start_with(
        &da.0,
        Some(PW),
        &aa.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let ab = args("central-b");
    let b = Server::start_with(
        &db.0,
        Some(PW),
        &ab.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        b.stdout.iter().any(|l| l.starts_with("Standby")),
        "the second Central is a standby: {:?}",
        b.stdout
    );
    let mut ca = connect(&a).await;
    let r = ca
        .request(
            "POST",
            "/mmws/api/v2/ranges",
            Some(&json!({"range": {"name": "10.200.0.0/16"}})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());

    // The standby refuses writes, naming the active instance, and follows its changes.
    let mut cb = connect(&b).await;
    let r = cb
        .request(
            "POST",
            "/mmws/api/v2/ranges",
            Some(&json!({"range": {"name": "10.201.0.0/16"}})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let e = r.json().unwrap();
    assert_eq!(e["error"]["code"], 5012);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("central-a"),
        "{e}"
    );
    let h = cb.request("GET", "/health", None).await.unwrap();
    assert_eq!(h.json().unwrap()["role"], "standby");
    let t = Instant::now();
    loop {
        let r = cb
            .request("GET", "/mmws/api/v2/ranges/10.200.0.0/16", None)
            .await
            .unwrap();
        if r.status == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the standby never saw the range"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A stream of allocations through the active one; SIGKILL it in the middle.
    let mut acked: Vec<String> = Vec::new();
    let mut i = 0;
    let mut pending: Option<String> = None;
    let writer = tokio::spawn(async move {
        let mut out = Vec::new();
        loop {
            let key = format!("alloc-{i}");
            match allocate(&mut ca, &key).await {
                Ok(addrs) => out.push(addrs),
                Err(_) => return (out, key),
            }
            i += 1;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    let killed = Instant::now();
    let (done, failed_key) = writer.await.unwrap();
    for addrs in &done {
        acked.extend(addrs.iter().cloned());
    }
    assert!(
        done.len() >= 5,
        "only {} allocations before the kill",
        done.len()
    );
    pending.get_or_insert(failed_key);

    // The standby becomes active: the interrupted request, retried there with its key,
    // succeeds (with the same addresses if the old active had committed it).
    let key = pending.unwrap();
    let took_over = loop {
        match allocate(&mut cb, &key).await {
            Ok(addrs) => break addrs,
            Err(e) => {
                assert!(
                    killed.elapsed() < Duration::from_secs(5),
                    "the standby did not take over within 5 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    };
    let failover = killed.elapsed();
    assert!(
        failover <= Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let h = cb.request("GET", "/health", None).await.unwrap();
    assert_eq!(h.json().unwrap()["role"], "active");

    // Every acknowledged allocation is there, and allocation continues with no duplicate.
    let mut all: HashSet<String> = HashSet::new();
    for a in acked.iter().chain(&took_over) {
        assert!(all.insert(a.clone()), "{a} handed out twice");
    }
    for n in 0..20 {
        for a in allocate(&mut cb, &format!("after-{n}")).await.unwrap() {
            assert!(
                all.insert(a.clone()),
                "{a} handed out twice after the failover"
            );
        }
    }
    for a in &acked {
        let r = cb
            .request("GET", &format!("/mmws/api/v2/ipamRecords/{a}"), None)
            .await
            .unwrap();
        assert_eq!(
            r.json().unwrap()["result"]["ipamRecord"]["state"],
            "Assigned",
            "{a}"
        );
    }
    let mut api = super::e2e::Remote::from_client(cb);
    *api.auth() = Some(basic("administrator", PW));
    let st = api
        .call("GET", "/mmws/api/v2/ranges/10.200.0.0/16/statistics", None)
        .await;
    let used: usize = st.ok("stats")["used"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        used,
        all.len(),
        "the store holds exactly the acknowledged addresses"
    );
    eprintln!(
        "failover: {} allocations acknowledged before the kill, standby active after {failover:?}",
        done.len()
    );
}
