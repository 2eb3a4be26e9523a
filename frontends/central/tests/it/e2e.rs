//! End-to-end: the real `ipam-central` binary over HTTPS, started and stopped by each test.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipam_client::{Client, Trust};
use serde_json::{json, Value};

use super::{basic, flows, Api, Resp, TempDir, ADMIN_PW};

/// A running `ipam-central`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub password: Option<String>,
    pub stdout: Vec<String>,
}

impl Server {
    pub fn start(dir: &Path, admin_password: Option<&str>) -> Server {
        Server::start_with(dir, admin_password, &[])
    }

    pub fn start_with(dir: &Path, admin_password: Option<&str>, extra: &[&str]) -> Server {
        Server::start_full(dir, admin_password, extra, &[], None)
    }

    /// Starts it with extra flags, environment variables, and optionally under a wrapper
    /// command (`prlimit ... --`) that execs it.
    pub fn start_full(
        dir: &Path,
        admin_password: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
        wrapper: Option<&[&str]>,
    ) -> Server {
        let bin = env!("CARGO_BIN_EXE_ipam-central");
        let mut cmd = match wrapper {
            Some(w) => {
                let mut c = Command::new(w[0]);
                c.args(&w[1..]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.envs(env.iter().copied());
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .args(["--log", "warn", "--insecure-fast-passwords"])
            .env_remove("IPAM_ADMIN_PASSWORD")
            .env_remove("IPAM_CONFIG")
            .env_remove("IPAM_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(p) = admin_password {
            cmd.env("IPAM_ADMIN_PASSWORD", p);
        }
        let mut child = cmd.spawn().expect("start ipam-central");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end even after start-up, so that Central's later output never
            // meets a closed pipe.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut s = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            fingerprint: String::new(),
            password: None,
            stdout: Vec::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "ipam-central did not start in 30 s; it printed {:?}",
                    s.stdout
                )
            });
            if let Some(p) = line.strip_prefix(" Password (shown only this once): ") {
                s.password = Some(p.trim().to_string());
            }
            if let Some(f) = line.strip_prefix("TLS certificate SHA-256 fingerprint: ") {
                s.fingerprint = f.trim().to_string();
            }
            let listening = line
                .strip_prefix("ipam Central listening on https://")
                .or_else(|| line.strip_prefix("ipam Central listening on http://"))
                .and_then(|r| r.split('/').next())
                .map(|a| a.parse().unwrap());
            s.stdout.push(line);
            if let Some(a) = listening {
                s.addr = a;
                break;
            }
        }
        s
    }

    pub async fn client(&self) -> Remote {
        let c = Client::connect(self.addr, Trust::Fingerprint(self.fingerprint.clone()))
            .await
            .expect("connect with the pinned certificate");
        Remote { c, auth: None }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit (at most 30 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "ipam-central did not stop in 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Remote {
    c: Client,
    auth: Option<String>,
}

impl Remote {
    pub fn from_client(c: Client) -> Remote {
        Remote { c, auth: None }
    }
}

impl Api for Remote {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let r = self
            .c
            .raw(method, path, body, headers)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = r.text();
        Resp {
            status: r.status,
            content_type: r.content_type.clone().unwrap_or_default(),
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    fn auth(&mut self) -> &mut Option<String> {
        &mut self.auth
    }
}

#[tokio::test]
async fn first_start_prints_password_and_fingerprint_then_flows_run_over_tls() {
    let dir = TempDir::new("e2e");
    let mut s = Server::start(&dir.0, None);
    let pw = s
        .password
        .clone()
        .expect("a generated password is printed on first start");
    assert!(pw.len() >= 16, "{pw}");
    assert_eq!(s.fingerprint.split(':').count(), 32, "{}", s.fingerprint);
    assert!(dir.0.join("tls/cert.pem").exists() && dir.0.join("tls/key.pem").exists());
    let mut a = s.client().await;
    *a.auth() = Some(basic("administrator", &pw));
    a.call("GET", "/mmws/api/v2/micetro", None)
        .await
        .ok("printed password works");
    // Set the password the flows use.
    let r = a
        .call(
            "PUT",
            "/mmws/api/v2/users/administrator",
            Some(json!({"user": {"password": ADMIN_PW}, "currentPassword": pw})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    flows::terraform(&mut a).await;
    flows::ansible(&mut a).await;
    flows::legacy(&mut a).await;

    // A client pinning another fingerprint is refused at the handshake.
    let bad = Client::connect(s.addr, Trust::Fingerprint("00".repeat(32))).await;
    assert!(bad.is_err(), "a wrong pin must fail");

    // Graceful stop, then a restart on the same directory: same certificate, no new
    // password, the data is there.
    assert!(s.stop().success(), "clean exit on SIGTERM");
    let s2 = Server::start(&dir.0, None);
    assert_eq!(s2.password, None, "the password is printed only once");
    assert_eq!(s2.fingerprint, s.fingerprint, "the certificate is kept");
    let mut a = s2.client().await;
    *a.auth() = Some(basic("administrator", ADMIN_PW));
    let r = a
        .call("GET", "/mmws/api/v2/ranges/172.16.5.0/24", None)
        .await;
    assert_eq!(
        r.ok("after restart")["range"]["customProperties"]["Title"],
        "lab"
    );
}

#[tokio::test]
async fn configured_password_and_graceful_shutdown_finish_in_flight_requests() {
    let dir = TempDir::new("e2e-pw");
    let mut s = Server::start(&dir.0, Some("configured-pw-1"));
    assert_eq!(
        s.password, None,
        "IPAM_ADMIN_PASSWORD is used, nothing printed"
    );
    let mut a = s.client().await;
    *a.auth() = Some(basic("administrator", "configured-pw-1"));
    a.call(
        "POST",
        "/mmws/api/v2/ranges",
        Some(json!({"range": {"name": "10.128.0.0/12"}})),
    )
    .await
    .ok("range");
    // A large allocation in flight while SIGTERM arrives: it completes and is durable.
    let addr = s.addr;
    let fp = s.fingerprint.clone();
    let job = tokio::spawn(async move {
        let mut c = Client::connect(addr, Trust::Fingerprint(fp)).await.unwrap();
        c.basic("administrator", "configured-pw-1");
        c.request(
            "POST",
            "/mmws/api/v2/addressAllocations",
            Some(&json!({"pool": ["10.128.0.0/12"], "count": 100000})),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let pid = s.child.id();
    let st = tokio::task::spawn_blocking(move || {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    });
    st.await.unwrap();
    let r = job
        .await
        .unwrap()
        .expect("the in-flight request gets its answer");
    assert_eq!(r.status, 201, "{}", r.text());
    let n = r.json().unwrap()["result"]["addresses"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 100_000);
    assert!(s.stop().success());
    let s2 = Server::start(&dir.0, None);
    let mut a = s2.client().await;
    *a.auth() = Some(basic("administrator", "configured-pw-1"));
    let st = a
        .call("GET", "/mmws/api/v2/ranges/10.128.0.0/12/statistics", None)
        .await;
    assert_eq!(
        st.ok("stats")["used"],
        "100000",
        "the acknowledged allocation survived"
    );
}

fn central(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipam-central"))
        .args(args)
        .env_remove("IPAM_CONFIG")
        .env_remove("IPAM_DATABASE")
        .output()
        .expect("run ipam-central")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_standby_backup_while_serving_then_promote() {
    let (dir, copy) = (TempDir::new("cold-a"), TempDir::new("cold-b"));
    let mut s = Server::start_with(&dir.0, Some("cold-pw"), &["--snapshot-every", "200"]);
    let mut a = s.client().await;
    *a.auth() = Some(basic("administrator", "cold-pw"));
    a.call(
        "POST",
        "/mmws/api/v2/ranges",
        Some(json!({"range": {"name": "10.77.0.0/16"}})),
    )
    .await
    .ok("range");
    // Allocations keep flowing while the backup runs.
    let (addr, fp) = (s.addr, s.fingerprint.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = tokio::spawn(async move {
        let mut c = Client::connect(addr, Trust::Fingerprint(fp)).await.unwrap();
        c.basic("administrator", "cold-pw");
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let r = c
                .request(
                    "POST",
                    "/mmws/api/v2/addressAllocations",
                    Some(&json!({"pool": ["10.77.0.0/16"], "count": 50})),
                )
                .await
                .unwrap();
            assert_eq!(r.status, 201, "{}", r.text());
            n += 50;
        }
        n
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = dir.0.to_str().unwrap().to_string();
    let c = copy.0.join("standby");
    let cs = c.to_str().unwrap().to_string();
    let out =
        tokio::task::spawn_blocking(move || central(&["backup", "--data-dir", &d, "--to", &cs]))
            .await
            .unwrap();
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("changes up to"), "{said}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = writer.await.unwrap();
    assert!(s.stop().success());
    assert!(c.join("ipam.db").exists() && c.join("STANDBY").exists());
    assert!(
        c.join("tls/cert.pem").exists(),
        "the certificate travels with the copy"
    );
    // Promote: integrity check, marker removed; then Central serves the copy.
    let cs = c.to_str().unwrap().to_string();
    let out = central(&["promote", "--data-dir", &cs]);
    assert!(
        out.status.success(),
        "promote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!c.join("STANDBY").exists());
    let s2 = Server::start(&c, None);
    assert_eq!(
        s2.fingerprint, s.fingerprint,
        "same certificate as the original"
    );
    let mut b = s2.client().await;
    *b.auth() = Some(basic("administrator", "cold-pw"));
    let st = b
        .call("GET", "/mmws/api/v2/ranges/10.77.0.0/16/statistics", None)
        .await;
    let used: u64 = st.ok("stats")["used"].as_str().unwrap().parse().unwrap();
    assert!(
        used > 0 && used <= total && used.is_multiple_of(50),
        "the copy is one consistent moment: {used} of {total}"
    );
    // Feeding a new copy to a directory where a Central runs is refused.
    let (d, cs2) = (dir.0.to_str().unwrap().to_string(), cs.clone());
    let out =
        tokio::task::spawn_blocking(move || central(&["backup", "--data-dir", &d, "--to", &cs2]))
            .await
            .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it takes writes.
    let r = b
        .call(
            "GET",
            "/mmws/api/v2/ranges/10.77.0.0/16/nextFreeAddress?claim=true",
            None,
        )
        .await;
    r.ok("the promoted copy allocates");
    // A backup of a PostgreSQL installation is refused with advice.
    let out = central(&[
        "backup",
        "--database",
        "postgres://x@127.0.0.1/db",
        "--to",
        "/tmp/none",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL"));
}
