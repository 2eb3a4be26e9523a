//! The client against real sockets on loopback: a small server thread answers each test's
//! connection with the bytes the test gives (as PowerDNS, BIND or kea-ctrl-agent would, or
//! broken on purpose). The drivers' own tests run it against the real servers.
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipam_agent_http::{request, Deadline, HttpError, Request, Response};

/// Answers one connection with `answer` (after reading the request), then closes it;
/// the thread returns the request it read.
fn serve_once(answer: &'static [u8]) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let got = read_request(&mut s);
        let _ = s.write_all(answer);
        got
    });
    (addr, t)
}

fn read_request(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if got.len() >= end + 4 + len {
                return got;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn get(addr: &str, deadline: Deadline) -> Result<Response, HttpError> {
    request(&Request {
        addr,
        method: "GET",
        path: "/json/v1/zones",
        headers: &[("Accept", "application/json")],
        body: None,
        deadline,
        max_len: 1 << 20,
    })
}

const EACH: Deadline = Deadline::Each(Duration::from_secs(5));

#[test]
fn sends_the_request_and_reads_bodies_of_every_framing() {
    let (addr, t) = serve_once(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}");
    let r = request(&Request {
        addr: &addr,
        method: "PATCH",
        path: "/api/v1/servers/localhost/zones/a.test.",
        headers: &[("X-API-Key", "secret")],
        body: Some(br#"{"rrsets":[]}"#),
        deadline: EACH,
        max_len: 1 << 20,
    })
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (201, b"{}".as_slice()));
    let sent = String::from_utf8(t.join().unwrap()).unwrap();
    let lower = sent.to_lowercase();
    assert!(
        sent.starts_with("PATCH /api/v1/servers/localhost/zones/a.test. HTTP/1.1\r\n"),
        "{sent}"
    );
    for h in [
        format!("host: {addr}"),
        "connection: close".into(),
        "content-type: application/json".into(),
        "content-length: 13".into(),
        "x-api-key: secret".into(),
    ] {
        assert!(lower.contains(&h), "{h} in {sent}");
    }
    assert!(sent.ends_with(r#"{"rrsets":[]}"#), "{sent}");

    let (addr, _) = serve_once(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(get(&addr, EACH).unwrap().body, b"abcde");
    // No length: the body runs to the end of the connection.
    let (addr, _) = serve_once(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nNot Found");
    let r = get(&addr, Deadline::Total(Duration::from_secs(5))).unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, b"Not Found".as_slice())
    );
}

#[test]
fn broken_answers_are_told_apart() {
    let (addr, _) = serve_once(b"");
    assert!(matches!(get(&addr, EACH), Err(HttpError::Closed)));
    let (addr, _) = serve_once(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
    assert!(matches!(get(&addr, EACH), Err(HttpError::Protocol(_))));
    let (addr, _) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc");
    match get(&addr, EACH) {
        Err(HttpError::Protocol(m)) => assert!(m.contains("cut short"), "{m}"),
        other => panic!("{other:?}"),
    }
    let (addr, _) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    let small = request(&Request {
        addr: &addr,
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
        deadline: EACH,
        max_len: 4,
    });
    assert!(matches!(small, Err(HttpError::TooLarge(4))), "{small:?}");
}

#[test]
fn no_server_and_a_silent_server() {
    // Nothing listens on a port just released.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    match get(&addr, EACH) {
        Err(HttpError::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        get("no-such-host.invalid:80", EACH),
        Err(HttpError::Resolve { .. })
    ));
    // A server that accepts and never answers: each deadline holds.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let a = listener.accept().unwrap();
        let b = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        drop((a, b));
    });
    for deadline in [
        Deadline::Each(Duration::from_millis(300)),
        Deadline::Total(Duration::from_millis(300)),
    ] {
        let t0 = Instant::now();
        match get(&addr, deadline) {
            Err(HttpError::Timeout(d)) => assert_eq!(d, Duration::from_millis(300)),
            other => panic!("{deadline:?}: {other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
    held.join().unwrap();
}
