//! Handler tests: the axum service called directly (no socket), on a real SQLite database.
use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use ipam_central::{App, Config};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{basic, flows, login, Api, Resp, TempDir, ADMIN_PW};

const V2: &str = "/mmws/api/v2";

pub struct Local {
    pub app: Arc<App>,
    router: axum::Router,
    auth: Option<String>,
    _dir: TempDir,
}

impl Local {
    pub fn new(tag: &str) -> Local {
        Local::with(tag, |_| {})
    }

    pub fn with(tag: &str, f: impl FnOnce(&mut Config)) -> Local {
        let dir = TempDir::new(tag);
        let mut cfg = Config::for_tests(&dir.0);
        cfg.max_bulk_items = 5000;
        f(&mut cfg);
        let (app, _) = App::open(&cfg).expect("open Central on a temp SQLite database");
        let router = app.router();
        Local {
            app,
            router,
            auth: Some(basic("administrator", ADMIN_PW)),
            _dir: dir,
        }
    }
}

impl Local {
    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        &self._dir.0
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.app.shutdown();
    }
}

impl Api for Local {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body.unwrap_or_default())).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            text,
            json,
        }
    }

    fn auth(&mut self) -> &mut Option<String> {
        &mut self.auth
    }
}

#[tokio::test]
async fn terraform_flow() {
    flows::terraform(&mut Local::new("tf")).await;
}

#[tokio::test]
async fn ansible_flow() {
    flows::ansible(&mut Local::new("ansible")).await;
}

#[tokio::test]
async fn legacy_flow() {
    flows::legacy(&mut Local::new("legacy")).await;
}

#[tokio::test]
async fn authentication_sessions_and_lockout() {
    // The account lock is an option (off by default); delays per address come later here.
    let mut a = Local::with("auth", |c| {
        c.lockout_after = 3;
        c.login_delay_after = 10;
        c.metrics_public = true;
    });
    *a.auth() = None;
    let r = a.call("GET", &format!("{V2}/ranges"), None).await;
    assert_eq!(r.err("no credentials", 401), 5002);
    *a.auth() = Some("Bearer not-a-session".into());
    let r = a.call("GET", &format!("{V2}/ranges"), None).await;
    assert_eq!(r.err("unknown token", 401), 5002);
    login(&mut a, "administrator", ADMIN_PW).await;
    a.call("GET", &format!("{V2}/ranges"), None)
        .await
        .ok("session works");
    let out = a
        .call("DELETE", &format!("{V2}/micetro/sessions"), None)
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    let r = a.call("GET", &format!("{V2}/ranges"), None).await;
    assert_eq!(r.err("after logout", 401), 5002);

    // With lockout_after, three wrong passwords lock the account, even against the right
    // one.
    *a.auth() = None;
    for _ in 0..3 {
        let r = a
            .call(
                "POST",
                &format!("{V2}/micetro/sessions"),
                Some(json!({"loginName": "administrator", "password": "wrong"})),
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = a
        .call(
            "POST",
            &format!("{V2}/micetro/sessions"),
            Some(json!({"loginName": "administrator", "password": ADMIN_PW})),
        )
        .await;
    assert_eq!(r.err("locked", 401), 5003);
    *a.auth() = Some(basic("Administrator", ADMIN_PW));
    let r = a.call("GET", &format!("{V2}/ranges"), None).await;
    assert_eq!(r.err("locked, Basic", 401), 5003);
    let m = a.send("GET", "/metrics", None, &[]).await;
    assert!(
        m.text.contains("ipam_account_lockouts_total 1"),
        "{}",
        m.text
    );
}

async fn count_ranges(a: &mut Local) -> u64 {
    let r = a.call("GET", &format!("{V2}/ranges"), None).await;
    r.ok("count")["totalResults"].as_u64().unwrap()
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let mut a = Local::with("bad", |c| c.max_body_bytes = 64 * 1024);
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "10.9.0.0/16"}})),
    )
    .await
    .ok("setup");
    let before = count_ranges(&mut a).await;
    let seq = a.app_seq();
    let cases: Vec<(&str, Vec<u8>, u16, u64)> = vec![
        (
            "malformed JSON",
            b"{\"range\": {\"name\": ".to_vec(),
            400,
            4010,
        ),
        ("not an object", b"[1,2]".to_vec(), 400, 4010),
        (
            "unknown field",
            br#"{"range": {"name": "10.9.1.0/24", "colour": "red"}}"#.to_vec(),
            400,
            4001,
        ),
        (
            "wrong type",
            br#"{"range": {"name": "10.9.1.0/24", "locked": "maybe"}}"#.to_vec(),
            400,
            4001,
        ),
        (
            "host bits in CIDR",
            br#"{"range": {"name": "10.9.1.1/24"}}"#.to_vec(),
            400,
            4001,
        ),
        (
            "bad address",
            br#"{"range": {"from": "10.9.1.300", "to": "10.9.1.4"}}"#.to_vec(),
            400,
            4001,
        ),
        (
            "partial overlap",
            br#"{"range": {"from": "10.8.255.0", "to": "10.9.0.10"}}"#.to_vec(),
            400,
            4002,
        ),
        ("oversize body", vec![b' '; 70 * 1024], 413, 4013),
    ];
    for (what, body, status, code) in cases {
        let h = basic("administrator", ADMIN_PW);
        let r = a
            .send(
                "POST",
                &format!("{V2}/ranges"),
                Some(body),
                &[("authorization", &h)],
            )
            .await;
        assert_eq!(r.err(what, status), code, "{what}");
        assert!(!r.json["error"]["message"].as_str().unwrap().is_empty());
    }
    // Filter syntax errors name the position.
    let r = a
        .call("GET", &format!("{V2}/ranges?filter=(name%3Dx"), None)
        .await;
    assert_eq!(r.err("filter", 400), 4011);
    assert!(r.text.contains("position"), "{}", r.text);
    // Too many items in one bulk call (the test limit is 5000).
    let r = a
        .call(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(json!({"pool": ["10.9.0.0/16"], "count": 5001})),
        )
        .await;
    assert_eq!(r.err("bulk limit", 400), 4001);
    let r = a
        .call(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(json!({"pool": ["10.9.0.0/16"], "count": 1, "colour": 1})),
        )
        .await;
    assert_eq!(r.err("unknown bulk field", 400), 4001);
    // Unknown paths and methods are JSON errors too.
    let r = a.call("GET", &format!("{V2}/nothing"), None).await;
    assert_eq!(r.err("unknown path", 404), 4040);
    let r = a.call("PATCH", &format!("{V2}/ranges"), None).await;
    assert_eq!(r.err("method", 405), 4050);
    let r = a.send("GET", "/elsewhere", None, &[]).await;
    assert_eq!(r.err("outside the API", 404), 4040);
    assert_eq!(count_ranges(&mut a).await, before, "nothing was created");
    assert_eq!(a.app_seq(), seq, "no change was committed");
}

impl Local {
    fn app_seq(&self) -> u64 {
        self.app.committed_seq()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_allocation_is_atomic_and_idempotent() {
    let mut a = Local::new("bulk");
    for n in ["10.50.0.0/24", "10.50.1.0/24"] {
        a.call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": n}})),
        )
        .await
        .ok("setup");
    }
    let body = json!({"pool": ["ranges/10.50.0.0/24", "10.50.1.0/24"], "count": 300, "mode": "claim", "saveComment": "bulk"});
    let r1 = a
        .call_h(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(body.clone()),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    let got = r1.ok("allocate")["addresses"].as_array().unwrap().clone();
    assert_eq!(got.len(), 300);
    let set: HashSet<&str> = got.iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(set.len(), 300, "no duplicates");
    assert!(
        set.iter().any(|x| x.starts_with("10.50.1.")),
        "spills into the second range"
    );
    assert_eq!(r1.json["result"]["replayed"], false);
    // A retry with the same key answers the same addresses and allocates nothing more.
    let r2 = a
        .call_h(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(body.clone()),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(r2.ok("retry")["addresses"], json!(got));
    assert_eq!(r2.json["result"]["replayed"], true);
    let st = a
        .call("GET", &format!("{V2}/ranges/10.50.1.0/24/statistics"), None)
        .await;
    let used_second: u64 = st.ok("stats")["used"].as_str().unwrap().parse().unwrap();
    assert_eq!(used_second, 300 - 254, "the retry did not allocate again");
    // The same key with other content is refused.
    let mut other = body.clone();
    other["count"] = json!(2);
    let r3 = a
        .call_h(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(other),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(r3.err("key reuse", 409), 4009);
    // More than is free: all or nothing.
    let seq = a.app_seq();
    let r4 = a
        .call(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(json!({"pool": ["10.50.0.0/24"], "count": 10})),
        )
        .await;
    assert_eq!(r4.err("exhausted", 400), 4005);
    assert_eq!(a.app_seq(), seq);
    // Bulk release, then those addresses are free again.
    let rel: Vec<&str> = set.iter().take(10).copied().collect();
    let r5 = a
        .call(
            "POST",
            &format!("{V2}/addressReleases"),
            Some(json!({"addresses": rel})),
        )
        .await;
    assert_eq!(r5.ok("release")["released"], 10);
    let g = a
        .call("GET", &format!("{V2}/ipamRecords/{}", rel[0]), None)
        .await;
    assert_eq!(g.ok("released")["ipamRecord"]["state"], "Free");
    let r6 = a
        .call(
            "POST",
            &format!("{V2}/addressReleases"),
            Some(json!({"addresses": ["10.50.0.7", "nonsense"]})),
        )
        .await;
    assert_eq!(r6.err("bad address in release", 400), 4001);
    // 64 concurrent single claims through nextFreeAddress: no address twice.
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "10.51.0.0/22"}})),
    )
    .await
    .ok("setup");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let router = a.router.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..8 {
                let req = axum::http::Request::builder()
                    .uri(format!(
                        "{V2}/ranges/10.51.0.0/22/nextFreeAddress?claim=true"
                    ))
                    .header("authorization", basic("administrator", ADMIN_PW))
                    .body(Body::empty())
                    .unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                let b = resp.into_body().collect().await.unwrap().to_bytes();
                let v: Value = serde_json::from_slice(&b).unwrap();
                out.push(v["result"]["address"].as_str().unwrap().to_string());
            }
            out
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        for x in t.await.unwrap() {
            assert!(all.insert(x.clone()), "{x} handed out twice");
        }
    }
    assert_eq!(all.len(), 512);
}

#[tokio::test]
async fn export_streams_every_record_and_cursor_pages_cover_a_range() {
    let mut a = Local::new("export");
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "10.60.0.0/20"}})),
    )
    .await
    .ok("setup");
    a.call(
        "POST",
        &format!("{V2}/addressAllocations"),
        Some(json!({"pool": ["10.60.0.0/20"], "count": 1000})),
    )
    .await
    .ok("allocate");
    let r = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.60.0.0/20/recordExport"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-ndjson");
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        4096,
        "every address of the /20, beyond one chunk"
    );
    let used = lines.iter().filter(|l| l["state"] == "Assigned").count();
    assert_eq!(used, 1000);
    let r = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.60.0.0/20/recordExport?onlyUsed=true"),
            None,
        )
        .await;
    assert_eq!(r.text.lines().count(), 1000);
    // Cursor paging through the records: every address once.
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=1000&cursor={c}"),
            None => "limit=1000".to_string(),
        };
        let p = a
            .call(
                "GET",
                &format!("{V2}/ranges/10.60.0.0/20/ipamRecords?{q}"),
                None,
            )
            .await;
        let res = p.ok("page");
        for rec in res["ipamRecords"].as_array().unwrap() {
            assert!(seen.insert(rec["address"].as_str().unwrap().to_string()));
        }
        pages += 1;
        match res["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "cursor paging terminates");
    }
    assert_eq!(seen.len(), 4096);
    // Filtered listing: only the used ones.
    let p = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.60.0.0/20/ipamRecords?filter=state%3DAssigned&limit=10"),
            None,
        )
        .await;
    assert_eq!(p.ok("filtered")["totalResults"], 1000);
}

#[tokio::test]
async fn openapi_describes_exactly_the_routes_served() {
    let mut a = Local::new("openapi");
    let doc = a.send("GET", "/openapi.json", None, &[]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json["openapi"], "3.0.3");
    let paths = doc.json["paths"].as_object().unwrap();
    assert!(paths.len() > 40, "{} paths", paths.len());
    let mut checked = 0;
    for (p, item) in paths {
        let concrete = p
            .replace("{ref}", "1")
            .replace("{address}", "10.0.0.1")
            .replace("{name}", "Owner")
            .replace("{token}", "abc")
            .replace("{memberRef}", "2");
        for m in item.as_object().unwrap().keys() {
            let m = m.to_ascii_uppercase();
            // Unauthenticated: a served route answers 401 (or, for login, a 4xx about
            // its body); an unserved one 404 or 405.
            let r = a.send(&m, &format!("{V2}{concrete}"), None, &[]).await;
            assert!(
                r.status != 404 && r.status != 405,
                "{m} {p} is documented but not served: {} {}",
                r.status,
                r.text
            );
            assert!(
                r.status == 401 || (p == "/micetro/sessions" && m == "POST"),
                "{m} {p}: {}",
                r.status
            );
            checked += 1;
        }
    }
    assert!(checked > 60);
    // And a path that is not documented is not served.
    let r = a
        .send("GET", &format!("{V2}/ranges/1/bogus"), None, &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn metrics_health_and_system_info() {
    let mut a = Local::new("metrics");
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "10.70.0.0/24"}})),
    )
    .await
    .ok("setup");
    a.call(
        "GET",
        &format!("{V2}/ranges/10.70.0.0/24/nextFreeAddress?claim=1"),
        None,
    )
    .await
    .ok("claim");
    let auth = basic("administrator", ADMIN_PW);
    let m = a
        .send("GET", "/metrics", None, &[("authorization", &auth)])
        .await;
    assert_eq!(m.status, 200);
    for needle in [
        "ipam_http_requests_total{status=\"2xx\"}",
        "ipam_http_request_duration_seconds_bucket{le=\"+Inf\"}",
        "ipam_addresses_allocated_total 1",
        "ipam_group_commits_total",
        "ipam_store_commit_seconds_total",
    ] {
        assert!(m.text.contains(needle), "{needle} missing:\n{}", m.text);
    }
    let commits: u64 = m
        .text
        .lines()
        .find_map(|l| l.strip_prefix("ipam_group_commits_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits >= 2, "{commits}");
    let h = a.send("GET", "/health", None, &[]).await;
    assert_eq!(h.json["status"], "ok");
    let i = a.call("GET", &format!("{V2}/micetro"), None).await;
    assert_eq!(i.ok("info")["micetro"]["user"], "administrator");
}

#[tokio::test]
async fn history_hides_password_hashes_and_pages() {
    let mut a = Local::new("history");
    a.call(
        "POST",
        &format!("{V2}/users"),
        Some(json!({"user": {"name": "carol", "password": "pw-carol-1"}})),
    )
    .await
    .ok("user");
    a.call(
        "PUT",
        &format!("{V2}/users/carol"),
        Some(json!({"user": {"password": "pw-carol-2", "email": "c@example.org"}})),
    )
    .await;
    let h = a
        .call("GET", &format!("{V2}/users/carol/history?limit=1"), None)
        .await;
    let res = h.ok("history");
    assert_eq!(res["totalResults"], 2);
    assert_eq!(res["events"].as_array().unwrap().len(), 1);
    let ev = &res["events"][0];
    assert_eq!(ev["eventType"], "Modification");
    let text = ev["eventText"].as_str().unwrap();
    assert!(text.contains("password changed"), "{text}");
    assert!(!h.text.contains("argon2"), "no hash in history: {}", h.text);
    // The old password no longer works, the new one does.
    *a.auth() = Some(basic("carol", "pw-carol-1"));
    assert_eq!(
        a.call("GET", &format!("{V2}/micetro"), None).await.status,
        401
    );
    *a.auth() = Some(basic("carol", "pw-carol-2"));
    a.call("GET", &format!("{V2}/micetro"), None)
        .await
        .ok("new password");
}

#[tokio::test]
async fn batches_are_all_or_nothing_and_name_the_bad_item() {
    let mut a = Local::new("batches");
    let r = a
        .call_h(
            "POST",
            &format!("{V2}/rangeBatches"),
            Some(json!({"ranges": [
                {"name": "10.80.0.0/16", "isContainer": true},
                {"name": "10.80.1.0/24", "customProperties": {"Title": "one"}},
                {"from": "10.80.2.0", "to": "10.80.2.127", "name": "half"}
            ]})),
            &[("Idempotency-Key", "rb-1")],
        )
        .await;
    assert_eq!(r.ok("range batch")["created"], 3);
    let g = a
        .call("GET", &format!("{V2}/ranges/10.80.2.0-10.80.2.127"), None)
        .await;
    assert_eq!(g.ok("half")["range"]["name"], "half");
    a.call(
        "POST",
        &format!("{V2}/ipamRecords/propertyDefinitions"),
        Some(json!({"propertyDefinition": {"name": "Owner"}})),
    )
    .await
    .ok("propdef");
    let seq = a.app_seq();
    let bad = a
        .call(
            "POST",
            &format!("{V2}/ipamRecordBatches"),
            Some(json!({"records": [
                {"address": "10.80.1.5", "state": "Assigned", "properties": {"Owner": "a"}},
                {"address": "10.80.1.6", "state": "Sideways"}
            ]})),
        )
        .await;
    assert_eq!(bad.err("bad state", 400), 4001);
    assert_eq!(bad.json["error"]["index"], 1);
    let bad = a
        .call(
            "POST",
            &format!("{V2}/ipamRecordBatches"),
            Some(json!({"records": [
                {"address": "10.80.1.5", "state": "Assigned"},
                {"address": "10.80.1.6", "properties": {"NoSuchProperty": "x"}}
            ]})),
        )
        .await;
    assert_eq!(bad.err("engine refuses item 1", 400), 4004);
    assert_eq!(bad.json["error"]["index"], 1);
    assert_eq!(a.app_seq(), seq, "nothing of a refused batch is applied");
    let ok = a
        .call_h(
            "POST",
            &format!("{V2}/ipamRecordBatches"),
            Some(json!({"records": [
                {"address": "10.80.1.5", "state": "Assigned", "properties": {"Owner": "a"}},
                {"address": "10.80.1.6", "state": "Claimed"}
            ]})),
            &[("Idempotency-Key", "rec-1")],
        )
        .await;
    assert_eq!(ok.ok("records")["applied"], 2);
    let again = a
        .call_h(
            "POST",
            &format!("{V2}/ipamRecordBatches"),
            Some(json!({"records": [
                {"address": "10.80.1.5", "state": "Assigned", "properties": {"Owner": "a"}},
                {"address": "10.80.1.6", "state": "Claimed"}
            ]})),
            &[("Idempotency-Key", "rec-1")],
        )
        .await;
    assert_eq!(again.ok("retry")["replayed"], true);
    let g = a
        .call("GET", &format!("{V2}/ipamRecords/10.80.1.5"), None)
        .await;
    assert_eq!(g.ok("rec")["ipamRecord"]["customProperties"]["Owner"], "a");
}

#[tokio::test]
async fn dns_and_dhcp_bad_input_and_unknown_refs_get_clear_errors() {
    let mut a = Local::new("dns-bad");
    let seq = |a: &Local| a.app.committed_seq();
    let before = seq(&a);
    // Empty lists, and unknown refs are errors, not empty lists.
    let s = a.call("GET", &format!("{V2}/dnsServers"), None).await;
    assert_eq!(s.ok("dnsServers")["totalResults"], 0);
    for (path, code) in [
        ("dnsZones?dnsServerRef=dnsServers/99", 2049),
        ("dnsZones/nowhere.test.", 2049),
        ("dnsZones/nowhere.test./dnsRecords", 2049),
        ("dnsServers/999999", 2049),
        ("dhcpServers/999999", 2049),
        ("dhcpScopes/192.0.2.0/24", 2049),
        ("dnsRecords/77", 2049),
        ("dhcpReservations/77", 2049),
        ("dnsRecords/abc", 4001),
        ("dnsZones?filter=%28name%3Dx", 4011),
    ] {
        let r = a.call("GET", &format!("{V2}/{path}"), None).await;
        assert_eq!(r.err(path, 400), code, "{path}");
    }
    let r = a
        .call("GET", "/mmws/api/dnsZones/nowhere.test.", None)
        .await;
    assert_eq!(r.err("legacy not found", 400), 16544);

    // Creation without a server, with bad names, bad bodies.
    let zone = |body: Value| Some(json!({ "dnsZone": body }));
    for (body, want) in [
        (zone(json!({"name": "ok.test."})), "no DNS server"),
        (zone(json!({"name": "bad name.test."})), "not a zone name"),
        (
            zone(json!({"name": "ok.test.", "type": "Stub"})),
            "Master or Slave",
        ),
        (Some(json!({"dnsZone": "x"})), "JSON object"),
        (None, "dnsZone"),
    ] {
        let r = a.call("POST", &format!("{V2}/dnsZones"), body).await;
        assert_eq!(r.err(want, 400), 4001, "{want}");
        assert!(r.text.contains(want), "{want}: {}", r.text);
    }
    for body in [
        json!({}),
        json!({"dnsRecords": "x"}),
        json!({"dnsRecords": [1]}),
    ] {
        let r = a
            .call("POST", &format!("{V2}/dnsRecords"), Some(body))
            .await;
        assert_eq!(r.err("records body", 400), 4001);
    }
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"name": format!("h{i}"), "type": "A", "data": "10.0.0.1"}))
        .collect();
    let r = a
        .call(
            "POST",
            &format!("{V2}/dnsRecords"),
            Some(json!({"dnsZoneRef": "x.test.", "dnsRecords": many})),
        )
        .await;
    assert!(r.text.contains("at most 10000"), "{}", r.text);
    // Records for a zone that does not exist: each reported, nothing created.
    let r = a
        .call(
            "POST",
            &format!("{V2}/dnsRecords"),
            Some(json!({"dnsRecords": [
                {"name": "a", "type": "A", "data": "10.0.0.1", "dnsZoneRef": "none.test."},
                {"name": "b", "type": "A", "data": "10.0.0.2"},
                {"name": "c", "type": "A", "ttl": "soon", "data": "10.0.0.3"}
            ]})),
        )
        .await;
    let res = r.ok("records for unknown zones").clone();
    assert_eq!(
        res["objRefs"],
        json!(["unknown/0", "unknown/0", "unknown/0"])
    );
    let errors = res["errors"].to_string();
    assert!(
        errors.contains("none.test.")
            && errors.contains("dnsZoneRef is missing")
            && errors.contains("ttl"),
        "{errors}"
    );

    // Scopes: the range must exist and be one CIDR block; the server must exist.
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"from": "10.9.0.3", "to": "10.9.0.90"}})),
    )
    .await
    .ok("range");
    let before_scopes = seq(&a);
    for (body, code, want) in [
        (
            json!({"rangeRef": "10.9.0.3-10.9.0.90"}),
            4001,
            "rangeRef and dhcpServerRef",
        ),
        (
            json!({"rangeRef": "10.9.0.3-10.9.0.90", "dhcpServerRef": "kea"}),
            4001,
            "not one CIDR block",
        ),
        (
            json!({"rangeRef": "ranges/999999", "dhcpServerRef": "kea"}),
            2049,
            "does not exist",
        ),
        (
            json!({"rangeRef": "10.9.0.3-10.9.0.90", "dhcpServerRef": "kea", "pools": "x"}),
            4001,
            "pools",
        ),
    ] {
        let r = a
            .call(
                "POST",
                &format!("{V2}/dhcpScopes"),
                Some(json!({ "dhcpScope": body })),
            )
            .await;
        assert_eq!(r.err(want, 400), code, "{want}");
        assert!(r.text.contains(want), "{want}: {}", r.text);
    }
    assert_eq!(seq(&a), before_scopes, "refused scopes changed nothing");

    // A user without permissions (the refusal before a server is asked is in
    // dns::an_agent_refuses_...).
    a.call(
        "POST",
        &format!("{V2}/users"),
        Some(json!({"user": {"name": "nobody", "password": "pw-nobody-1"}})),
    )
    .await
    .ok("user");
    let admin = a.auth().clone();
    *a.auth() = Some(basic("nobody", "pw-nobody-1"));
    let r = a
        .call(
            "POST",
            &format!("{V2}/dnsRecords"),
            Some(json!({"dnsRecords": [{"name": "a", "type": "A", "data": "10.0.0.1", "dnsZoneRef": "x."}]})),
        )
        .await;
    // Zones a user cannot read are not found for it.
    let res = r.ok("records by a user who sees no zone").clone();
    assert_eq!(res["objRefs"], json!(["unknown/0"]));
    *a.auth() = admin;
    // Nothing but the range and the user was written.
    assert_eq!(seq(&a), before + 2);
}
