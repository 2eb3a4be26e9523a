//! The agent link over real TLS sockets on loopback: the handshake, pinning, pipelined
//! requests, bad frames, heartbeats, and the real `ipam-agent` binary restarted under a
//! reconnecting Central.
#![allow(missing_docs)]

mod dns;
// The DNS drivers' test harness (named and pdns_server started on loopback high ports).
#[allow(dead_code)]
#[path = "../../../dns/tests/it/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_agent::serve::{serve, AgentConfig, Handler};
use ipam_agent_link::link::{self, Supervisor};
use ipam_agent_link::pins::Pins;
use ipam_agent_link::{LinkConfig, LinkError};
use ipam_agent_proto::{
    ManagedServer, Message, RemoteError, RemoteErrorCode, RequestBody, ResponseBody, Role,
    ServerKind, ServerStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A key as `head -c 32 /dev/urandom | base64` makes one (the binary refuses weak keys).
pub(crate) const KEY: &[u8] = b"NFcdb7PNRL+e5XHA8h/SiXeX8+nKDEw+G419Qbz7dUA=";

pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipam-agent-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Answers status requests with the server's name, after a delay that makes answers come
/// back out of order.
struct Echo;

impl Handler for Echo {
    fn servers(&self) -> Vec<ManagedServer> {
        vec![ManagedServer {
            name: "ns1".into(),
            kind: ServerKind::Bind,
        }]
    }

    fn handle(&self, body: RequestBody) -> Result<ResponseBody, RemoteError> {
        let server = body.server().to_string();
        let n: u64 = server.trim_start_matches('s').parse().unwrap_or(0);
        std::thread::sleep(Duration::from_millis((n * 7) % 20));
        if server == "slow" {
            std::thread::sleep(Duration::from_millis(700));
        }
        if server == "down" {
            return Err(RemoteError::new(
                RemoteErrorCode::ServerDown,
                "ns down: connection refused",
            ));
        }
        Ok(ResponseBody::Status {
            status: ServerStatus {
                server,
                kind: ServerKind::Bind,
                running: true,
                version: None,
                uptime_secs: None,
                message: None,
            },
        })
    }
}

/// An in-process agent on a loopback port.
struct Agent {
    addr: String,
    stop: tokio::sync::watch::Sender<bool>,
}

async fn agent(dir: &Path, cfg: AgentConfig) -> Agent {
    let id = ipam_tls::load_or_create(
        &dir.join("tls"),
        None,
        &[],
        ipam_tls::SelfSignedNames::Unnamed,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(serve(
        listener,
        id.config,
        Arc::new(cfg),
        Arc::new(Echo),
        async move {
            let _ = rx.changed().await;
        },
    ));
    Agent { addr, stop }
}

fn agent_cfg() -> AgentConfig {
    AgentConfig::new("test-agent", vec![Role::Dns], KEY.to_vec())
}

fn status(server: &str) -> RequestBody {
    RequestBody::ServerStatus {
        server: server.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_pinning_and_pipelined_requests() {
    let dir = TempDir::new("pipeline");
    let a = agent(&dir.0, agent_cfg()).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let cfg = LinkConfig::new(&a.addr, KEY.to_vec(), "central-test");
    let l = link::connect(&cfg, &pins).await.unwrap();
    assert_eq!(l.welcome().agent_name, "test-agent");
    assert_eq!(l.welcome().roles, [Role::Dns]);
    assert_eq!(l.welcome().servers[0].name, "ns1");
    // Pinned on first contact, in the file.
    let file = std::fs::read_to_string(dir.0.join("known_agents")).unwrap();
    assert!(
        file.contains(&a.addr) && file.contains(l.fingerprint()),
        "{file}"
    );

    // 300 requests at once, answered out of order, each matched to its own answer.
    let mut tasks = Vec::new();
    for i in 0..300 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            (i, l.request(status(&format!("s{i}"))).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r.unwrap() {
            ResponseBody::Status { status } => assert_eq!(status.server, format!("s{i}")),
            other => panic!("unexpected {other:?}"),
        }
    }
    // A driver's error comes back as the agent's answer; the link stays up.
    match l.request(status("down")).await {
        Err(LinkError::Remote(e)) => assert_eq!(e.code, RemoteErrorCode::ServerDown),
        other => panic!("unexpected {other:?}"),
    }
    // A request the protocol forbids is answered Invalid, not dropped.
    match l.request(status("")).await {
        Err(LinkError::Remote(e)) => assert_eq!(e.code, RemoteErrorCode::Invalid, "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(l.closed().is_none());

    // A reconnect sees the same certificate: accepted.
    link::connect(&cfg, &pins).await.unwrap();
    let _ = a.stop.send(true);
}

#[tokio::test]
async fn a_central_without_the_key_is_refused() {
    let dir = TempDir::new("key");
    let a = agent(&dir.0, agent_cfg()).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let cfg = LinkConfig::new(
        &a.addr,
        b"vBKYK3nxWmrNvrlurbqEMTWzuVsXLmg8nWSS2glsw/E=".to_vec(),
        "intruder",
    );
    match link::connect(&cfg, &pins).await {
        Err(LinkError::Refused { reason, .. }) => {
            assert!(
                reason.contains("proof"),
                "the reason names the proof: {reason}"
            )
        }
        other => panic!("a wrong key must be refused, got {other:?}"),
    }
    // The agent is unharmed: the right key still works.
    let ok = LinkConfig::new(&a.addr, KEY.to_vec(), "central");
    link::connect(&ok, &pins).await.unwrap();
}

#[tokio::test]
async fn a_changed_agent_certificate_is_refused() {
    let dir = TempDir::new("pin");
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let a = agent(&dir.0.join("first"), agent_cfg()).await;
    let cfg = LinkConfig::new(&a.addr, KEY.to_vec(), "central");
    let first = link::connect(&cfg, &pins).await.unwrap();
    let _ = a.stop.send(true);
    // Another agent (another certificate) answering at the pinned address: an impostor, or
    // a reinstall. Central refuses before it proves anything.
    let b = agent(&dir.0.join("second"), agent_cfg()).await;
    std::fs::write(
        dir.0.join("known_agents"),
        format!("{} {}\n", b.addr, first.fingerprint()),
    )
    .unwrap();
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let cfg_b = LinkConfig::new(&b.addr, KEY.to_vec(), "central");
    match link::connect(&cfg_b, &pins).await {
        Err(LinkError::ChangedCertificate { got, pinned, .. }) => {
            assert_eq!(pinned, first.fingerprint());
            assert_ne!(got, pinned);
        }
        other => panic!("a changed certificate must be refused, got {other:?}"),
    }
    let _ = b.stop.send(true);
}

/// A raw TLS connection to the agent, after its hello.
async fn raw(addr: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let (cfg, _) = ipam_tls::pinned_client(None, &[]);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(cfg)
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut hello = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut hello).await.unwrap();
    assert!(hello.starts_with(br#"{"hello""#));
    let text = String::from_utf8_lossy(&hello);
    assert!(
        !text.contains("servers") && !text.contains("ns1") && !text.contains("test-agent"),
        "neither the servers nor the name are told before Central proves the key: {text}"
    );
    s
}

/// Reads until the agent closes the connection (or 5 s pass).
async fn closed_by_agent(s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> bool {
    let mut buf = [0u8; 4096];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_oversize_frames_close_only_their_connection() {
    let dir = TempDir::new("frames");
    let mut cfg = agent_cfg();
    cfg.max_frame_len = 64 * 1024;
    let a = agent(&dir.0, cfg).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let good = link::connect(&LinkConfig::new(&a.addr, KEY.to_vec(), "central"), &pins)
        .await
        .unwrap();

    // Garbage where the auth should be.
    let mut s = raw(&a.addr).await;
    s.write_all(&[5, 0, 0, 0, b'{', b'x', b'y', b'z', b'!'])
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(
        closed_by_agent(&mut s).await,
        "a broken frame closes the connection"
    );

    // A length prefix past the limit: closed before the body is read.
    let mut s = raw(&a.addr).await;
    s.write_all(&(1u32 << 30).to_le_bytes()).await.unwrap();
    s.flush().await.unwrap();
    assert!(
        closed_by_agent(&mut s).await,
        "an oversize frame closes the connection"
    );

    // A request before the handshake.
    let mut s = raw(&a.addr).await;
    let f = ipam_agent_proto::encode(&Message::Ping { nonce: 1 }).unwrap();
    s.write_all(&f).await.unwrap();
    s.flush().await.unwrap();
    assert!(closed_by_agent(&mut s).await, "no message before auth");

    // The other connection and the agent go on.
    assert!(good.request(status("s1")).await.is_ok());
    assert!(
        link::connect(&LinkConfig::new(&a.addr, KEY.to_vec(), "central"), &pins)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_from_one_source_are_bounded() {
    let dir = TempDir::new("flood");
    let a = agent(&dir.0, agent_cfg()).await;
    // Eight connections that never start TLS hold all of this source's places...
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(tokio::net::TcpStream::connect(&a.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a ninth is closed at once.
    let mut ninth = tokio::net::TcpStream::connect(&a.addr).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), ninth.read(&mut b))
        .await
        .expect("the ninth connection is closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // Once they go, Central links up.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    link::connect(&LinkConfig::new(&a.addr, KEY.to_vec(), "central"), &pins)
        .await
        .unwrap();
    let _ = a.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_go_on_while_every_driver_slot_is_busy() {
    let dir = TempDir::new("busy");
    let mut cfg = agent_cfg();
    cfg.max_in_flight = 1;
    cfg.heartbeat = Duration::from_millis(100);
    cfg.idle_timeout = Duration::from_millis(450);
    let a = agent(&dir.0, cfg).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let mut lc = LinkConfig::new(&a.addr, KEY.to_vec(), "central");
    lc.heartbeat = Duration::from_millis(100);
    lc.idle_timeout = Duration::from_millis(450);
    let l = link::connect(&lc, &pins).await.unwrap();
    // Three slow requests on one slot: about 2 s of work, many idle timeouts long.
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let l = l.clone();
            tokio::spawn(async move { l.request(status("slow")).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert!(l.closed().is_none(), "{:?}", l.closed());
    let _ = a.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_an_idle_link_up() {
    let dir = TempDir::new("heartbeat");
    let mut cfg = agent_cfg();
    cfg.heartbeat = Duration::from_millis(100);
    cfg.idle_timeout = Duration::from_millis(450);
    let a = agent(&dir.0, cfg).await;
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let mut lc = LinkConfig::new(&a.addr, KEY.to_vec(), "central");
    lc.heartbeat = Duration::from_millis(100);
    lc.idle_timeout = Duration::from_millis(450);
    let l = link::connect(&lc, &pins).await.unwrap();
    // Idle for many idle timeouts: the pings keep it up on both sides.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(l.closed().is_none(), "{:?}", l.closed());
    assert!(l.request(status("s2")).await.is_ok());

    let _ = a.stop.send(true);
}

/// The real `ipam-agent` binary.
pub(crate) struct Binary {
    child: Child,
    pub(crate) addr: String,
    fingerprint: String,
}

impl Binary {
    fn start(data: &Path, listen: &str) -> Binary {
        Binary::start_with(data, listen, &[])
    }

    pub(crate) fn start_with(data: &Path, listen: &str, extra: &[&str]) -> Binary {
        let key = data.join("key");
        std::fs::write(&key, KEY).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipam-agent"))
            .args(["--role", "dns", "--listen", listen, "--log", "warn"])
            .arg("--data-dir")
            .arg(data)
            .arg("--key-file")
            .arg(&key)
            .args(extra)
            .env_remove("IPAM_AGENT_KEY")
            .env_remove("IPAM_AGENT_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ipam-agent");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut addr, mut fingerprint) = (String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        while addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("ipam-agent did not start in 20 s");
            if let Some(f) = line.strip_prefix("TLS certificate SHA-256 fingerprint: ") {
                fingerprint = f.trim().to_string();
            }
            if let Some(i) = line.find(" listening on ") {
                addr = line[i + 14..].trim().to_string();
            }
        }
        Binary {
            child,
            addr,
            fingerprint,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn the_binary_refuses_to_start_without_a_key() {
    let dir = TempDir::new("nokey");
    let out = Command::new(env!("CARGO_BIN_EXE_ipam-agent"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&dir.0)
        .env_remove("IPAM_AGENT_KEY")
        .env_remove("IPAM_AGENT_KEY_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no shared key"), "{err}");
}

/// Whether `needle` occurs in `hay`.
fn holds(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_identifies_the_agent_before_central_proves_the_key() {
    let dir = TempDir::new("anonymous");
    let name = "agent-name-7f3a9c";
    let b = Binary::start_with(&dir.0, "127.0.0.1:0", &["--name", name]);
    // Everything a peer without the key gets: the certificate, `hello`, and after a wrong
    // proof, `refused` and the end of the connection.
    let (cfg, _) = ipam_tls::pinned_client(None, &[]);
    let tcp = tokio::net::TcpStream::connect(&b.addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(cfg)
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let cert = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut seen = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut seen).await.unwrap();
    assert!(seen.starts_with(br#"{"hello""#));
    let auth = Message::Auth(ipam_agent_proto::Auth {
        version: 1,
        central_name: "probe".into(),
        proof: ipam_agent_proto::Proof([0; 32]),
        challenge: ipam_agent_proto::Challenge([0; 32]),
    });
    s.write_all(&ipam_agent_proto::encode(&auth).unwrap())
        .await
        .unwrap();
    s.flush().await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        rest
    })
    .await
    .expect("the agent closes a connection that fails the proof");
    assert!(
        holds(&rest, b"refused"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(
        !holds(&seen, name.as_bytes()) && !holds(&seen, b"roles") && !holds(&seen, b"\"dns\""),
        "neither the agent's name nor its roles before the key is proved: {text}"
    );
    // The self-signed certificate names no host: the agent's default name is the host name.
    assert!(!holds(&cert, name.as_bytes()));
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if !host.is_empty() && host != "localhost" {
        let mut san = vec![0x82, host.len() as u8];
        san.extend_from_slice(host.as_bytes());
        assert!(
            !holds(&cert, &san),
            "the agent's certificate names the host {host:?}"
        );
    }
}

/// Runs `cmd` and answers its exit status and standard error, or `None` (after killing it)
/// when it is still running after `secs` seconds.
pub(crate) fn run_briefly(
    mut cmd: Command,
    secs: u64,
) -> Option<(std::process::ExitStatus, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return Some((status, err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn the_binary_refuses_to_start_with_a_weak_key() {
    let dir = TempDir::new("weakkey");
    let weak = [
        // 12 bytes once decoded.
        ("c2hvcnQta2V5LTEy", "decodes to 12 bytes"),
        // One byte, 32 times.
        (
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "repeats a pattern of 1",
        ),
        // "abcdabcdabcdabcdabcd": a short pattern repeated.
        ("YWJjZGFiY2RhYmNkYWJjZGFiY2Q=", "repeats a pattern of 4"),
        // base64 of "correct horse battery staple": a phrase, not random bytes.
        ("Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==", "printable text"),
        // A password as it is, not base64.
        ("correct horse battery staple!", "not base64"),
    ];
    for (key, why) in weak {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipam-agent"));
        cmd.args(["--listen", "127.0.0.1:0", "--watch-secs", "0"])
            .arg("--data-dir")
            .arg(&dir.0)
            .env("IPAM_AGENT_KEY", key)
            .env_remove("IPAM_AGENT_KEY_FILE")
            .env_remove("IPAM_AGENT_CONFIG");
        let (status, err) = run_briefly(cmd, 10)
            .unwrap_or_else(|| panic!("the agent started with the weak key {key:?}"));
        assert!(!status.success(), "{key:?}");
        assert!(
            err.contains(why) && err.contains("head -c 32 /dev/urandom | base64"),
            "{key:?}: the error says why and what to do: {err}"
        );
    }
}

async fn wait_up(sup: &Supervisor) {
    let t0 = Instant::now();
    loop {
        if sup.link().is_ok_and(|l| l.closed().is_none()) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no link: {:?}",
            sup.link().err()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_reconnects_to_a_restarted_agent_and_answers_clearly_while_it_is_down() {
    let dir = TempDir::new("binary");
    let mut b = Binary::start(&dir.0, "127.0.0.1:0");
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let mut cfg = LinkConfig::new(&b.addr, KEY.to_vec(), "central");
    cfg.heartbeat = Duration::from_millis(200);
    cfg.idle_timeout = Duration::from_secs(2);
    let sup = Supervisor::spawn(cfg, pins.clone());
    wait_up(&sup).await;
    let l = sup.link().unwrap();
    assert_eq!(
        ipam_tls::normalize_pin(l.fingerprint()),
        ipam_tls::normalize_pin(&b.fingerprint),
        "the pin is the fingerprint the agent printed"
    );
    // The binary manages no server yet: a clear answer, not a hang.
    match sup.request(&b.addr, status("ns1")).await {
        Err(LinkError::Remote(e)) => assert_eq!(e.code, RemoteErrorCode::UnknownServer),
        other => panic!("unexpected {other:?}"),
    }

    // Frozen (SIGSTOP: the socket stays open, nothing answers): the heartbeat notices, the
    // link closes, and once the agent runs again the supervisor links up again.
    let pid = b.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    while l.closed().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a frozen agent was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let why = l.closed().unwrap();
    assert!(why.contains("no message from the agent"), "{why}");
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    wait_up(&sup).await;
    assert!(matches!(
        sup.request(&b.addr, status("ns1")).await,
        Err(LinkError::Remote(_))
    ));

    // Killed: requests fail at once with the agent named, then it comes back on the same
    // address and certificate and the link is up again.
    let addr = b.addr.clone();
    b.kill();
    let t0 = Instant::now();
    loop {
        match sup.request(&addr, status("ns1")).await {
            Err(LinkError::Down { addr: a, .. }) => {
                assert_eq!(a, addr);
                break;
            }
            _ if t0.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("a dead agent must be reported down, got {other:?}"),
        }
    }
    let _b2 = Binary::start(&dir.0, &addr);
    wait_up(&sup).await;
    match sup.request(&addr, status("ns1")).await {
        Err(LinkError::Remote(e)) => assert_eq!(e.code, RemoteErrorCode::UnknownServer),
        other => panic!("unexpected after the restart: {other:?}"),
    }
}
