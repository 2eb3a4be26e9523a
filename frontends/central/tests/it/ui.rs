//! The browser UI: its cookie session and CSRF rule, the API additions it stands on (tree
//! levels, split, the whole history), and the end-to-end run in a real headless Chromium
//! (`tests/ui/ui.test.mjs`, driven by playwright-core).
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::handlers::Local;
use super::{basic, Api, ADMIN_PW};

const V2: &str = "/mmws/api/v2";

/// One raw request to the service: status, headers, JSON body.
async fn raw(
    a: &Local,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, Value) {
    let mut b = axum::http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body
        .map(|v| serde_json::to_vec(&v).unwrap())
        .unwrap_or_default();
    let resp = a
        .app
        .router()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn cookie_sessions_need_their_csrf_token() {
    let a = Local::new("ui-cookie");
    let login = json!({"loginName": "administrator", "password": ADMIN_PW});
    // A login without the UI's header (a form posted from another site) is refused.
    let (s, _, b) = raw(&a, "POST", "/ui/session", Some(login.clone()), &[]).await;
    assert_eq!((s, b["error"]["code"].as_u64()), (403, Some(4031)), "{b}");
    let (s, _, b) = raw(
        &a,
        "POST",
        "/ui/session",
        Some(json!({"loginName": "administrator", "password": "wrong"})),
        &[("x-requested-with", "ipam")],
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_u64()), (401, Some(5001)), "{b}");
    let (s, h, b) = raw(
        &a,
        "POST",
        "/ui/session",
        Some(login),
        &[("x-requested-with", "ipam")],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let set = h["set-cookie"].to_str().unwrap().to_string();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "cookie {set:?} lacks {flag}");
    }
    let token = set
        .strip_prefix("__Host-ipam_session=")
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_string();
    let csrf = b["result"]["csrfToken"].as_str().unwrap().to_string();
    assert_eq!(b["result"]["user"], "administrator");
    assert!(h.contains_key("content-security-policy"));
    let cookie = format!("__Host-ipam_session={token}");

    // The cookie alone does not authorize an API call; with its token it does.
    let (s, _, b) = raw(
        &a,
        "GET",
        &format!("{V2}/ranges"),
        None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_u64()), (403, Some(4031)), "{b}");
    let (s, _, b) = raw(
        &a,
        "GET",
        &format!("{V2}/ranges"),
        None,
        &[
            ("cookie", &cookie),
            ("x-csrf-token", "0123456789abcdef0123456789abcdef"),
        ],
    )
    .await;
    assert_eq!(s, 403, "a wrong token: {b}");
    let with = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let (s, _, b) = raw(&a, "GET", &format!("{V2}/micetro"), None, &with).await;
    assert_eq!(s, 200, "{b}");
    let perms = b["result"]["micetro"]["permissions"].as_array().unwrap();
    assert_eq!(
        perms.len(),
        6,
        "the administrator may do everything: {perms:?}"
    );
    let (s, _, b) = raw(
        &a,
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "10.1.0.0/24"}})),
        &with,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // The session answers who it is, and its token, to the same origin only.
    let (s, _, b) = raw(&a, "GET", "/ui/session", None, &[("cookie", &cookie)]).await;
    assert_eq!(
        (s, b["result"]["csrfToken"].as_str()),
        (200, Some(csrf.as_str()))
    );
    // Logging out needs the token too, then the cookie is dead.
    let (s, _, _) = raw(&a, "DELETE", "/ui/session", None, &[("cookie", &cookie)]).await;
    assert_eq!(s, 403);
    let (s, h, _) = raw(&a, "DELETE", "/ui/session", None, &with).await;
    assert_eq!(s, 204);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (s, _, b) = raw(&a, "GET", &format!("{V2}/ranges"), None, &with).await;
    assert_eq!((s, b["error"]["code"].as_u64()), (401, Some(5002)), "{b}");
    let (s, _, b) = raw(&a, "GET", "/ui/session", None, &[("cookie", &cookie)]).await;
    assert_eq!((s, &b["result"]), (200, &Value::Null));

    // The UI's files, with the security headers; unknown ones are 404.
    for p in ["/", "/ui/app.js", "/ui/style.css"] {
        let resp = a
            .app
            .router()
            .oneshot(axum::http::Request::get(p).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{p}");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }
    let (s, _, _) = raw(&a, "GET", "/ui/nothing.js", None, &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn tree_levels_page_by_cursor_and_ranges_split() {
    let mut a = Local::new("ui-tree");
    let r = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "10.0.0.0/16", "isContainer": true}})),
        )
        .await;
    let container = r.ok("container")["ref"].as_str().unwrap().to_string();
    let subnets: Vec<Value> = (0..=255)
        .map(|i| json!({"name": format!("10.0.{i}.0/24"), "customProperties": {"Title": format!("net {i}")}}))
        .collect();
    a.call(
        "POST",
        &format!("{V2}/rangeBatches"),
        Some(json!({"ranges": subnets})),
    )
    .await
    .ok("256 subnets");
    let lab = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "lab-west (10.9/24)", "from": "10.9.0.0", "to": "10.9.0.200"}})),
        )
        .await;
    let lab = lab.ok("a name with - and /")["ref"]
        .as_str()
        .unwrap()
        .to_string();

    // A CIDR ref to the container, whose first child starts at the same address.
    let c = a
        .call("GET", &format!("{V2}/ranges/10.0.0.0/16"), None)
        .await;
    assert_eq!(
        c.ok("the container by CIDR")["range"]["ref"],
        container.as_str()
    );
    let c = a
        .call("GET", &format!("{V2}/ranges/10.0.0.0-10.0.255.255"), None)
        .await;
    assert_eq!(
        c.ok("the container by from-to")["range"]["ref"],
        container.as_str()
    );

    // The top level: the container and the named range, nothing below them.
    let top = a
        .call("GET", &format!("{V2}/ranges?parentRef=&limit=10"), None)
        .await;
    let names: Vec<&str> = top.ok("top")["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["10.0.0.0/16", "lab-west (10.9/24)"],
        "names are kept as given"
    );

    // One level paged by cursor: every child once, in address order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let p = a
            .call(
                "GET",
                &format!("{V2}/ranges?parentRef={container}&limit=100&cursor={cursor}"),
                None,
            )
            .await;
        let page = p.ok("level page");
        assert_eq!(page["totalResults"], 256);
        for r in page["ranges"].as_array().unwrap() {
            seen.push(r["name"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let want: Vec<String> = (0..=255).map(|i| format!("10.0.{i}.0/24")).collect();
    assert_eq!(seen, want);
    for bad in [
        format!("parentRef={container}&limit=0"),
        format!("parentRef={container}&limit=10001"),
        format!("parentRef={container}&cursor=nonsense"),
        "parentRef=ranges/99999".to_string(),
        "parentRef=a/b/c".to_string(),
    ] {
        let r = a.call("GET", &format!("{V2}/ranges?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }

    // Split: /24 into four /26, properties kept, records kept, all in one change.
    a.call(
        "PUT",
        &format!("{V2}/ipamRecords/10.0.7.70"),
        Some(json!({"properties": {"state": "Reserved"}})),
    )
    .await
    .ok("a record");
    let s = a
        .call(
            "POST",
            &format!("{V2}/ranges/10.0.7.0/24/split"),
            Some(json!({"prefixLength": 26})),
        )
        .await;
    let refs = s.ok("split")["objRefs"].as_array().unwrap().clone();
    assert_eq!(refs.len(), 4);
    let part = a
        .call("GET", &format!("{V2}/ranges/10.0.7.64/26"), None)
        .await;
    let part = &part.ok("part")["range"];
    assert_eq!(part["customProperties"]["Title"], "net 7");
    assert_eq!(part["subnet"], true);
    assert_eq!(part["parentRef"], container.as_str());
    let rec = a
        .call("GET", &format!("{V2}/ipamRecords/10.0.7.70"), None)
        .await;
    assert_eq!(rec.ok("record")["ipamRecord"]["state"], "Reserved");
    let gone = a
        .call("GET", &format!("{V2}/ranges/10.0.7.0/24"), None)
        .await;
    assert_eq!(gone.err("split range gone", 400), 2049);
    a.call(
        "PUT",
        &format!("{V2}/ranges/10.0.9.0/24/access"),
        Some(json!({"accessEntries": [{"identityRef": "users/3", "allow": ["Read"], "deny": []}]})),
    )
    .await
    .ok("an access entry");
    a.call(
        "POST",
        &format!("{V2}/ranges"),
        Some(json!({"range": {"name": "::/0", "isContainer": true}})),
    )
    .await
    .ok("the whole IPv6 space");
    for (path, body, why) in [
        (format!("{lab}/split"), json!({}), "not one CIDR"),
        (
            "ranges/10.0.9.0/24/split".into(),
            json!({}),
            "its access entries would be lost",
        ),
        (
            "ranges/::/0/split".into(),
            json!({"prefixLength": 128}),
            "2^128 parts",
        ),
        (
            "ranges/10.0.8.0/24/split".into(),
            json!({"prefixLength": 24}),
            "not longer",
        ),
        (
            "ranges/10.0.8.0/24/split".into(),
            json!({"prefixLength": 33}),
            "too long",
        ),
        (
            "ranges/10.0.0.0/16/split".into(),
            json!({"prefixLength": 30}),
            "too many parts",
        ),
    ] {
        let before = a.app.committed_seq();
        let r = a.call("POST", &format!("{V2}/{path}"), Some(body)).await;
        assert_eq!(r.err(why, 400), 4001, "{why}: {}", r.text);
        assert_eq!(a.app.committed_seq(), before, "{why} changed nothing");
    }
}

#[tokio::test]
async fn the_whole_history_filters_by_object_user_and_time() {
    let mut a = Local::new("ui-changes");
    a.call(
        "POST",
        &format!("{V2}/users"),
        Some(json!({"user": {"name": "carol", "password": "carol-pw-1"}})),
    )
    .await
    .ok("user");
    let r = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "10.5.0.0/24"}})),
        )
        .await;
    let rref = r.ok("range")["ref"].as_str().unwrap().to_string();
    a.call(
        "PUT",
        &format!("{V2}/{rref}"),
        Some(json!({"properties": {"Title": "edited"}})),
    )
    .await;
    let all = a
        .call("GET", &format!("{V2}/changes?limit=1000"), None)
        .await;
    let total = all.ok("all")["totalResults"].as_u64().unwrap();
    assert!(total >= 4, "{}", all.text);
    let obj = a
        .call("GET", &format!("{V2}/changes?objectRef={rref}"), None)
        .await;
    let ev = obj.ok("object")["events"].as_array().unwrap().clone();
    assert_eq!(ev.len(), 2, "created, then edited: {ev:?}");
    assert!(ev.iter().all(|e| e["objRef"] == rref.as_str()));
    let by = a
        .call(
            "GET",
            &format!("{V2}/changes?user=administrator&limit=1000"),
            None,
        )
        .await;
    let by = by.ok("by administrator")["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!by.is_empty() && by.iter().all(|e| e["username"] == "administrator"));
    assert!(
        (by.len() as u64) < total,
        "the initial setup was done by system"
    );
    let future = a
        .call("GET", &format!("{V2}/changes?since=99999999999999"), None)
        .await;
    assert_eq!(future.ok("future")["totalResults"], 0);
    for bad in ["objectRef=nothing/1", "user=nobody", "since=yesterday"] {
        let r = a.call("GET", &format!("{V2}/changes?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    *a.auth() = Some(basic("carol", "carol-pw-1"));
    let r = a.call("GET", &format!("{V2}/changes"), None).await;
    assert_eq!(r.err("not an administrator", 400), 1028);
}

/// The browser tests need Node.js, `npm ci` in tests/ui, and Debian's Chromium; the README
/// documents `IPAM_SKIP_UI=1` to leave them out.
#[test]
fn browser_ui_end_to_end_in_headless_chromium() {
    if std::env::var("IPAM_SKIP_UI").is_ok_and(|v| v == "1") {
        eprintln!("IPAM_SKIP_UI=1: the browser tests are skipped");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need playwright-core: run `npm ci` in {} (or set IPAM_SKIP_UI=1)",
        dir.display()
    );
    let browser = std::env::var("IPAM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&browser).exists(),
        "the browser tests need Chromium at {browser}: apt-get install chromium chromium-driver (or set IPAM_SKIP_UI=1)"
    );
    let t0 = Instant::now();
    let mut child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "ui.test.mjs"])
        .current_dir(&dir)
        .env("IPAM_CENTRAL_BIN", env!("CARGO_BIN_EXE_ipam-central"))
        .env("IPAM_CHROMIUM", &browser)
        .spawn()
        .expect("run node (install Node.js, or set IPAM_SKIP_UI=1)");
    // The script bounds every step; this bounds the whole run.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("the browser tests took more than 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser tests failed ({status}); their output is above, screenshots in target/ui-screenshots/"
    );
}
