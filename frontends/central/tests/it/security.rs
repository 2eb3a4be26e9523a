//! Issue 15 (a hostile tester against the release binary): resource exhaustion without a
//! login, secrets in answers and logs, login throttling, and the smaller findings. Handler
//! tests call the service without a socket; what only the listener does (timeouts,
//! connection caps, `100 Continue`, chunked bodies, HSTS, the descriptor limit) is tested
//! against the real binary.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::e2e::Server;
use super::handlers::Local;
use super::{basic, Api, TempDir, ADMIN_PW};

const V2: &str = "/mmws/api/v2";

/// An answer of the service: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

/// One request to the service, from `peer` when given (the listener adds it).
async fn send(
    a: &Local,
    method: &str,
    path: &str,
    body: Body,
    headers: &[(&str, &str)],
    peer: Option<&str>,
) -> Answer {
    let mut b = axum::http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(body).unwrap();
    if let Some(p) = peer {
        let p: SocketAddr = p.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(p));
    }
    let resp = tokio::time::timeout(Duration::from_secs(20), a.app.router().oneshot(req))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 20 s"))
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn json_body(v: Value) -> Body {
    Body::from(serde_json::to_vec(&v).unwrap())
}

fn login_body(user: &str, pw: &str) -> Body {
    json_body(json!({"loginName": user, "password": pw}))
}

/// A body that notes when it is first polled and then never ends.
struct Watched(Arc<AtomicBool>);

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Pending
    }
}

fn watched() -> (Body, Arc<AtomicBool>) {
    let polled = Arc::new(AtomicBool::new(false));
    (Body::new(Watched(polled.clone())), polled)
}

// ---------------------------------------------------------------------------------------
// A. Bodies are read only after authentication.

#[tokio::test]
async fn unauthenticated_requests_are_refused_without_reading_the_body() {
    let a = Local::new("sec-nobody");
    for path in [
        format!("{V2}/ranges"),
        format!("{V2}/addressAllocations"),
        "/mmws/api/Ranges".to_string(),
    ] {
        let (body, polled) = watched();
        let r = send(
            &a,
            "POST",
            &path,
            body,
            &[("content-length", "8000000")],
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], 5002, "{}", r.text);
        assert!(
            !polled.load(Ordering::SeqCst),
            "{path}: the body was read before the credentials were checked"
        );
    }
    // Wrong Basic credentials and a cookie without its CSRF token: the same.
    for h in [
        ("authorization", basic("administrator", "wrong")),
        ("cookie", "__Host-ipam_session=abc".to_string()),
    ] {
        let (body, polled) = watched();
        let r = send(
            &a,
            "PUT",
            &format!("{V2}/ranges/1"),
            body,
            &[(h.0, &h.1)],
            None,
        )
        .await;
        assert!(r.status == 401 || r.status == 403, "{}", r.text);
        assert!(!polled.load(Ordering::SeqCst), "{}: body read", h.0);
    }
    // The UI's login checks its header before it reads anything.
    let (body, polled) = watched();
    let r = send(&a, "POST", "/ui/session", body, &[], None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!polled.load(Ordering::SeqCst), "UI login: body read");
}

#[tokio::test]
async fn login_bodies_are_capped_small_and_the_ui_answers_json_413() {
    let a = Local::new("sec-loginbody");
    let pad = "x".repeat(64 * 1024);
    let big = json!({"loginName": "administrator", "password": "x", "pad": pad});
    let r = send(
        &a,
        "POST",
        &format!("{V2}/micetro/sessions"),
        json_body(big.clone()),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json["error"]["code"], 4013, "{}", r.text);
    // Larger than axum's own default limit: still our envelope, as JSON.
    let huge = json!({"loginName": "administrator", "password": "x", "pad": "y".repeat(3 << 20)});
    let r = send(
        &a,
        "POST",
        "/ui/session",
        json_body(huge),
        &[("x-requested-with", "ipam")],
        None,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json["error"]["code"], 4013, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_is_400_not_413() {
    let a = Local::new("sec-badbody");
    let broken = || {
        Body::from_stream(futures_util::stream::iter([
            Ok(Bytes::from_static(b"{\"range\": ")),
            Err(std::io::Error::other("invalid chunk size")),
        ]))
    };
    let auth = basic("administrator", ADMIN_PW);
    let r = send(
        &a,
        "POST",
        &format!("{V2}/ranges"),
        broken(),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json["error"]["code"], 4012, "{}", r.text);
    let r = send(
        &a,
        "POST",
        &format!("{V2}/micetro/sessions"),
        broken(),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

// ---------------------------------------------------------------------------------------
// B. Secrets.

#[tokio::test]
async fn health_and_metrics_tell_strangers_only_the_status() {
    let a = Local::new("sec-health");
    let h = send(&a, "GET", "/health", Body::empty(), &[], None).await;
    assert_eq!(h.status, 200);
    let keys: Vec<&String> = h.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["role", "status"], "{}", h.text);
    let h = send(&a, "GET", "/health?role=active", Body::empty(), &[], None).await;
    assert_eq!((h.status, &h.json["role"]), (200, &json!("active")));
    // An authenticated caller sees the details.
    let auth = basic("administrator", ADMIN_PW);
    let h = send(
        &a,
        "GET",
        "/health",
        Body::empty(),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(h.json["database"].as_str().unwrap().starts_with("sqlite:"));
    assert!(h.json["committedSequence"].is_u64(), "{}", h.text);
    // /metrics: request counters for everyone, the rest for authenticated callers.
    let m = send(&a, "GET", "/metrics", Body::empty(), &[], None).await;
    assert_eq!(m.status, 200);
    assert!(m.text.contains("ipam_http_requests_total"), "{}", m.text);
    for hidden in [
        "failed_logins",
        "lockouts",
        "sessions",
        "committed_sequence",
    ] {
        assert!(
            !m.text.contains(hidden),
            "{hidden} shown to anyone:\n{}",
            m.text
        );
    }
    let m = send(
        &a,
        "GET",
        "/metrics",
        Body::empty(),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(m.text.contains("ipam_failed_logins_total"), "{}", m.text);
}

/// The tester's command line: a libpq string with spaces around `=` (PostgreSQL trusts
/// loopback here, so any password connects). The synchronous PostgreSQL client runs its own
/// runtime: Central is opened and dropped outside the test's.
#[test]
fn the_postgres_password_is_never_shown() {
    if std::env::var_os("IPAM_SKIP_POSTGRES").is_some() {
        eprintln!("IPAM_SKIP_POSTGRES is set: skipping");
        return;
    }
    let schema = super::ha::Schema::named("sec");
    let secret = "Pg-Secret-42";
    let url = format!(
        "{} password = {secret} application_name = 'ipam sec \\'test\\''",
        super::ha::pg_url()
    );
    let s = schema.0.clone();
    let a = Local::with("sec-pg", move |c| {
        c.database = ipam_central::Database::Postgres { url, schema: s };
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let auth = basic("administrator", ADMIN_PW);
        for (path, h) in [
            ("/health", None),
            ("/health", Some(&auth)),
            ("/metrics", Some(&auth)),
            ("/mmws/api/v2/micetro", Some(&auth)),
        ] {
            let hs: Vec<(&str, &str)> = h.iter().map(|v| ("authorization", v.as_str())).collect();
            let r = send(&a, "GET", path, Body::empty(), &hs, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(
                !r.text.contains("Secret"),
                "{path} shows the password: {}",
                r.text
            );
        }
        let r = send(
            &a,
            "GET",
            "/mmws/api/v2/micetro",
            Body::empty(),
            &[("authorization", &auth)],
            None,
        )
        .await;
        let shown = r.json["result"]["micetro"]["database"].as_str().unwrap();
        assert!(shown.contains("host=127.0.0.1"), "{shown}");
        assert!(
            shown.contains("application_name='ipam sec \\'test\\''"),
            "{shown}"
        );
        assert!(!shown.contains("password"), "{shown}");
    });
    drop(a);
}

/// A database failure (a trigger refuses the change log's insert) answers 503 with a
/// generic sentence and a request id; the database's own words stay in the log.
#[tokio::test]
async fn server_errors_carry_a_request_id_not_the_internal_text() {
    let a = Local::new("sec-5xx");
    let auth = basic("administrator", ADMIN_PW);
    let db = a.dir().join("ipam.db");
    tokio::task::spawn_blocking(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.execute_batch(
            "CREATE TRIGGER sec_fail BEFORE INSERT ON changes \
             BEGIN SELECT RAISE(ABORT, 'xyzzy internal detail'); END;",
        )
        .unwrap();
    })
    .await
    .unwrap();
    let r = send(
        &a,
        "POST",
        &format!("{V2}/ranges"),
        json_body(json!({"range": {"name": "10.1.0.0/24"}})),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json["error"]["code"], 5010, "{}", r.text);
    let id = r.json["error"]["requestId"].as_str().expect("a request id");
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(msg.contains(id), "{msg}");
    for leak in ["xyzzy", "database failed while", "sqlite", "SQL"] {
        assert!(
            !r.text.contains(leak),
            "internal text {leak:?} in {}",
            r.text
        );
    }
    // Later writes (the engine is poisoned) and /health: no internal text either.
    let r = send(
        &a,
        "POST",
        &format!("{V2}/ranges"),
        json_body(json!({"range": {"name": "10.2.0.0/24"}})),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(r.status >= 500 && !r.text.contains("xyzzy"), "{}", r.text);
    for h in [vec![], vec![("authorization", auth.as_str())]] {
        let r = send(&a, "GET", "/health", Body::empty(), &h, None).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(!r.text.contains("xyzzy"), "{}", r.text);
    }
}

// ---------------------------------------------------------------------------------------
// C. Login throttling.

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_user_out_elsewhere() {
    let a = Local::new("sec-pair");
    let path = format!("{V2}/micetro/sessions");
    for _ in 0..8 {
        let r = send(
            &a,
            "POST",
            &path,
            login_body("Administrator", "wrong"),
            &[],
            Some("192.0.2.66:4000"),
        )
        .await;
        assert!(r.status == 401 || r.status == 429, "{}", r.text);
    }
    // The real administrator, from another address, logs in at once; Basic too.
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", ADMIN_PW),
        &[],
        Some("198.51.100.7:5000"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let auth = basic("administrator", ADMIN_PW);
    let r = send(
        &a,
        "GET",
        &format!("{V2}/ranges"),
        Body::empty(),
        &[("authorization", &auth)],
        Some("198.51.100.8:5000"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn repeated_failures_from_one_address_must_wait_longer_each_time() {
    let a = Local::new("sec-delay");
    let path = format!("{V2}/micetro/sessions");
    let from = Some("192.0.2.10:1234");
    let wait = |r: &Answer| -> u64 {
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(r.json["error"]["code"], 5003, "{}", r.text);
        r.headers["retry-after"].to_str().unwrap().parse().unwrap()
    };
    // The first failures are answered as wrong passwords.
    for _ in 0..3 {
        let r = send(
            &a,
            "POST",
            &path,
            login_body("administrator", "x"),
            &[],
            from,
        )
        .await;
        assert_eq!(r.json["error"]["code"], 5001, "{}", r.text);
    }
    // After them, an attempt from that address for that user waits (even with the right
    // password, which is not checked): 429 with Retry-After.
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", ADMIN_PW),
        &[],
        from,
    )
    .await;
    let w = wait(&r);
    assert_eq!(w, 1, "{}", r.text);
    // Another user from that address is not affected.
    let r = send(&a, "POST", &path, login_body("bob", "x"), &[], from).await;
    assert_eq!(r.json["error"]["code"], 5001, "{}", r.text);
    // After the wait, one more failure doubles it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", "x"),
        &[],
        from,
    )
    .await;
    assert_eq!(r.json["error"]["code"], 5001, "{}", r.text);
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", "x"),
        &[],
        from,
    )
    .await;
    let w = wait(&r);
    assert!((1..=2).contains(&w), "{}", r.text);
    // Once the wait is over, the right password works and clears the count.
    tokio::time::sleep(Duration::from_millis(1000 * w + 100)).await;
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", ADMIN_PW),
        &[],
        from,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = send(
        &a,
        "POST",
        &path,
        login_body("administrator", "x"),
        &[],
        from,
    )
    .await;
    assert_eq!(r.json["error"]["code"], 5001, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_correct_logins_all_succeed() {
    let a = Arc::new(Local::new("sec-parallel"));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let (path, body) = if i % 2 == 0 {
                (
                    format!("{V2}/micetro/sessions"),
                    login_body("administrator", ADMIN_PW),
                )
            } else {
                (format!("{V2}/micetro"), Body::empty())
            };
            let auth = basic("administrator", ADMIN_PW);
            let method = if i % 2 == 0 { "POST" } else { "GET" };
            let h: Vec<(&str, &str)> = if i % 2 == 0 {
                vec![]
            } else {
                vec![("authorization", auth.as_str())]
            };
            send(&a, method, &path, body, &h, Some("203.0.113.5:999")).await
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
    }
}

// ---------------------------------------------------------------------------------------
// D. Headers and parameters.

#[tokio::test]
async fn every_answer_says_nosniff() {
    let a = Local::new("sec-nosniff");
    let auth = basic("administrator", ADMIN_PW);
    let ah = [("authorization", auth.as_str())];
    send(
        &a,
        "POST",
        &format!("{V2}/ranges"),
        json_body(json!({"range": {"name": "10.5.0.0/28"}})),
        &ah,
        None,
    )
    .await;
    type Case<'a> = (&'a str, String, Body, &'a [(&'a str, &'a str)]);
    let cases: Vec<Case> = vec![
        ("GET", format!("{V2}/ranges"), Body::empty(), &[]),
        ("GET", format!("{V2}/ranges"), Body::empty(), &ah),
        (
            "PUT",
            format!("{V2}/ranges/10.5.0.0/28"),
            json_body(json!({"properties": {"Title": "t"}})),
            &ah,
        ),
        (
            "GET",
            format!("{V2}/ranges/10.5.0.0/28/recordExport"),
            Body::empty(),
            &ah,
        ),
        ("DELETE", format!("{V2}/ranges"), Body::empty(), &ah),
        ("GET", "/health".into(), Body::empty(), &[]),
        ("GET", "/metrics".into(), Body::empty(), &[]),
        ("GET", "/openapi.json".into(), Body::empty(), &[]),
        ("GET", "/nowhere".into(), Body::empty(), &[]),
        ("GET", "/".into(), Body::empty(), &[]),
    ];
    for (m, p, b, h) in cases {
        let r = send(&a, m, &p, b, h, None).await;
        assert_eq!(
            r.headers
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{m} {p}: HTTP {} without nosniff",
            r.status
        );
    }
}

#[tokio::test]
async fn changes_since_beyond_the_range_of_time_is_refused() {
    let mut a = Local::new("sec-since");
    for q in [
        "since=18446744073709551615",
        "until=18446744073709551615",
        "since=9223372036854775808",
    ] {
        let r = a.call("GET", &format!("{V2}/changes?{q}"), None).await;
        assert_eq!(r.err(q, 400), 4001);
        let r = a
            .call(
                "GET",
                &format!("{V2}/users/administrator/history?{q}"),
                None,
            )
            .await;
        assert_eq!(r.err(q, 400), 4001);
    }
    let r = a
        .call(
            "GET",
            &format!("{V2}/changes?since=9223372036854775807"),
            None,
        )
        .await;
    assert_eq!(r.ok("i64::MAX")["events"], json!([]));
}

// ---------------------------------------------------------------------------------------
// The listener (the real binary, plain HTTP on loopback so that raw bytes can be sent).

/// Connects from `source` (any 127.x address is another client address to Central).
fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::from((source, 0)))?;
            s.connect(to).await
        })
        .unwrap();
    let c = c.into_std().unwrap();
    c.set_nonblocking(false).unwrap();
    c
}

/// Reads until the peer closes or `limit` passes; answers what came and whether it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Reads until `needle` has arrived (or the limit passes).
fn read_until(s: &mut TcpStream, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn plain_server(dir: &TempDir, env: &[(&str, &str)]) -> Server {
    Server::start_full(&dir.0, Some(ADMIN_PW), &["--plaintext-loopback"], env, None)
}

fn health_from(source: [u8; 4], to: SocketAddr) -> String {
    let mut s = connect_from(source, to);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_until_closed(&mut s, Duration::from_secs(10)).0
}

#[test]
fn slow_bodies_time_out_and_connections_are_capped_per_address_and_in_total() {
    let dir = TempDir::new("sec-conn");
    let s = plain_server(
        &dir,
        &[
            ("IPAM_BODY_TIMEOUT_SECS", "1"),
            ("IPAM_MAX_CONNECTIONS_PER_IP", "8"),
            ("IPAM_MAX_CONNECTIONS", "12"),
        ],
    );
    // A body that never completes (1,000 announced, 3 sent) is cut off: 408, then closed.
    let mut slow = connect_from([127, 0, 0, 1], s.addr);
    slow.write_all(
        b"POST /mmws/api/v2/micetro/sessions HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"l",
    )
    .unwrap();
    let (got, closed) = read_until_closed(&mut slow, Duration::from_secs(15));
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(closed, "the connection stays open after the body timed out");

    // Eight connections from 127.0.0.1 are held; a ninth is closed at once.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| connect_from([127, 0, 0, 1], s.addr))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut ninth = connect_from([127, 0, 0, 1], s.addr);
    let _ = ninth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, closed) = read_until_closed(&mut ninth, Duration::from_secs(10));
    assert!(
        closed && got.is_empty(),
        "the ninth connection was served: {got:?}"
    );
    // Another client address is served meanwhile.
    assert!(health_from([127, 0, 0, 2], s.addr).starts_with("HTTP/1.1 200"));
    // In total: 8 held from 127.0.0.1 and 4 from 127.0.0.3 fill the 12 places; a
    // connection from a fourth address is refused.
    let more: Vec<TcpStream> = (0..4)
        .map(|_| connect_from([127, 0, 0, 3], s.addr))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = connect_from([127, 0, 0, 4], s.addr);
    let _ = over.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, closed) = read_until_closed(&mut over, Duration::from_secs(10));
    assert!(
        closed && got.is_empty(),
        "over the total cap, served: {got:?}"
    );
    // Closing them frees the places.
    drop(held);
    drop(more);
    let t = Instant::now();
    loop {
        let got = health_from([127, 0, 0, 1], s.addr);
        if got.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "never freed: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_connections_time_out() {
    let dir = TempDir::new("sec-idle");
    let s = plain_server(&dir, &[("IPAM_IDLE_TIMEOUT_SECS", "1")]);
    // A kept-alive connection that asks nothing more is closed.
    let mut c = connect_from([127, 0, 0, 1], s.addr);
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, closed) = read_until_closed(&mut c, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
    assert!(closed, "an idle keep-alive connection stays open");
    // So is one that never sends a byte.
    let mut quiet = connect_from([127, 0, 0, 1], s.addr);
    let (_, closed) = read_until_closed(&mut quiet, Duration::from_secs(10));
    assert!(closed, "a silent connection stays open");
}

#[test]
fn expect_continue_and_broken_chunks_are_answered_before_any_body() {
    let dir = TempDir::new("sec-expect");
    let s = plain_server(&dir, &[]);
    // No credentials: the 401 comes first, no `100 Continue`, and the body is never read.
    let mut c = connect_from([127, 0, 0, 1], s.addr);
    c.write_all(
        b"POST /mmws/api/v2/ranges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 8388608\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let got = read_until(&mut c, "\r\n\r\n", Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 401"), "{got:?}");
    // Malformed chunked encoding on the login: 400, not 413.
    let mut c = connect_from([127, 0, 0, 1], s.addr);
    c.write_all(
        b"POST /mmws/api/v2/micetro/sessions HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n",
    )
    .unwrap();
    let got = read_until(&mut c, "\r\n\r\n", Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 400"), "{got:?}");
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    if !std::path::Path::new("/proc/self/limits").exists() {
        return;
    }
    let dir = TempDir::new("sec-nofile");
    let s = Server::start_full(
        &dir.0,
        Some(ADMIN_PW),
        &[],
        &[],
        Some(&["prlimit", "--nofile=256:4096", "--"]),
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["4096", "4096"], "{line}");
}

#[test]
fn hsts_over_tls_only() {
    let dir = TempDir::new("sec-hsts");
    let s = Server::start(&dir.0, Some(ADMIN_PW));
    let got = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(tls_get(&s, "/"));
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("\r\nstrict-transport-security: max-age="),
        "{got}"
    );
    let dir = TempDir::new("sec-hsts-plain");
    let p = plain_server(&dir, &[]);
    let mut c = connect_from([127, 0, 0, 1], p.addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(10)).0;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.to_ascii_lowercase().contains("strict-transport"),
        "{got}"
    );
}

/// One GET over TLS (the certificate pinned), the whole raw answer.
async fn tls_get(s: &Server, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pin = ipam_tls::normalize_pin(&s.fingerprint).unwrap();
    let (cfg, _) = ipam_tls::pinned_client(Some(pin), &[b"http/1.1".as_slice()]);
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::IpAddress(s.addr.ip().into());
    let mut t = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    t.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
