//! DNS end to end: the real `ipam-central` binary, an agent (the real agent code, in this
//! process) and real BIND and PowerDNS servers on loopback.
//!
//! Zones and records made through Central's API are seen by `dig`; a change made on named
//! directly with `nsupdate` comes back into Central with the difference in history; IPAM
//! records show the DNS hosts naming them and next free skips them; the unmodified
//! certbot-dns-micetro client adds and removes a TXT record; a stopped server gives a clear
//! error and changes nothing.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_agent::drivers::Drivers;
use ipam_agent::serve::{serve, AgentConfig, Handler};
use ipam_agent_dns::{BindServer, PowerDnsServer};
use ipam_agent_proto::{
    ManagedServer, RemoteError, RemoteErrorCode, RequestBody, ResponseBody, Role, ServerKind,
};
use serde_json::{json, Value};

use super::dns_harness::{dig, dig_until, servers_available, Bind, PowerDns};
use super::e2e::{Remote, Server};
use super::{basic, Api, TempDir, ADMIN_PW};

/// A key as `head -c 32 /dev/urandom | base64` makes one (Central refuses weak keys).
const KEY: &str = "Mj6IyMSyYYnTPrICUfiBKa3a6rJRq444MrHiDQYL2pk=";

/// An agent on a loopback port, on a runtime of its own: dropping it ends the agent and
/// every connection it has, as when the process stops.
pub struct TestAgent {
    pub addr: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// An agent serving `drivers`, with its watcher reporting changes every half second.
pub async fn start_agent(dir: &std::path::Path, roles: Vec<Role>, drivers: Drivers) -> TestAgent {
    let drivers = Arc::new(drivers);
    start_agent_with(
        &dir.join("agent-tls"),
        "127.0.0.1:0",
        roles,
        drivers.clone(),
        Some(drivers),
    )
}

/// An agent with the TLS identity in `tls_dir` listening on `listen` (retried for 10 s while
/// the port is still taken), serving `handler`; with `watch`, its watcher runs too.
pub fn start_agent_with(
    tls_dir: &std::path::Path,
    listen: &str,
    roles: Vec<Role>,
    handler: Arc<dyn Handler>,
    watch: Option<Arc<Drivers>>,
) -> TestAgent {
    let id =
        ipam_tls::load_or_create(tls_dir, None, &[], ipam_tls::SelfSignedNames::Unnamed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let std_listener = loop {
        match std::net::TcpListener::bind(listen) {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "binding {listen}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let mut cfg = AgentConfig::new("test-agent", roles, KEY.as_bytes().to_vec());
    cfg.events = Some(events.clone());
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        serve(
            listener,
            id.config,
            Arc::new(cfg),
            handler,
            std::future::pending::<()>(),
        )
        .await
    });
    if let Some(drivers) = watch {
        rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let d = drivers.clone();
                if let Ok(evs) = tokio::task::spawn_blocking(move || d.watch()).await {
                    for e in evs {
                        let _ = events.send(e);
                    }
                }
            }
        });
    }
    TestAgent { addr, rt: Some(rt) }
}

/// Starts Central with one agent in its configuration.
pub fn start_central(dir: &std::path::Path, agent: &str) -> Server {
    start_central_with(dir, "central", agent, KEY)
}

/// Starts Central in `dir/name` with one agent and this key.
pub fn start_central_with(dir: &std::path::Path, name: &str, agent: &str, key: &str) -> Server {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!("sync_secs = 5\n[[agents]]\naddress = \"{agent}\"\nkey = \"{key}\"\n"),
    )
    .unwrap();
    Server::start_with(
        &dir.join(name),
        Some(ADMIN_PW),
        &["--config", cfg.to_str().unwrap()],
    )
}

/// Polls `f` every 100 ms until it answers `Some`, at most `secs` seconds.
pub async fn wait_for<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(x) = f().await {
            return x;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get(c: &mut Remote, path: &str) -> Value {
    c.call("GET", path, None).await.ok(path).clone()
}

async fn records(c: &mut Remote, zone: &str, filter: &str) -> Vec<Value> {
    let p = format!("/mmws/api/v2/dnsZones/{zone}/dnsRecords?filter={filter}");
    get(c, &p).await["dnsRecords"].as_array().unwrap().clone()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with certbot-dns-micetro installed: IPAM_CERTBOT_PYTHON, or the virtual
/// environment `.ci/run` makes in target/py. `None` (after saying so) when
/// IPAM_SKIP_CERTBOT=1.
fn certbot_python() -> Option<PathBuf> {
    if std::env::var("IPAM_SKIP_CERTBOT").as_deref() == Ok("1") {
        eprintln!("IPAM_SKIP_CERTBOT=1: skipping the certbot-dns-micetro steps");
        return None;
    }
    let p = std::env::var_os("IPAM_CERTBOT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/py/bin/python"));
    let ok = std::process::Command::new(&p)
        .args(["-c", "import certbot_dns_micetro.dns_micetro"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import certbot_dns_micetro: run `python3 -m venv target/py && \
         target/py/bin/pip install certbot-dns-micetro==1.0.4` (as .ci/run does), or set \
         IPAM_CERTBOT_PYTHON to a Python that has it, or IPAM_SKIP_CERTBOT=1 to skip",
        p.display()
    );
    Some(p)
}

fn certbot(python: &PathBuf, server: &Server, dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(python)
        .arg(workspace().join("tests/certbot/micetro_client.py"))
        .args(args)
        .env("IPAM_URL", format!("https://{}/mmws/api/v2", server.addr))
        .env("IPAM_USER", "administrator")
        .env("IPAM_PASSWORD", ADMIN_PW)
        .env("REQUESTS_CA_BUNDLE", dir.join("central/tls/cert.pem"))
        .output()
        .expect("running the certbot client");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "certbot client {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zones_and_records_through_central_reach_bind_and_powerdns_and_come_back() {
    if !servers_available(&["named", "rndc", "nsupdate", "dig", "pdns_server", "sqlite3"]) {
        return;
    }
    let python = certbot_python();
    let dir = TempDir::new("dns-e2e");
    let mut bind = tokio::task::spawn_blocking(Bind::start).await.unwrap();
    let pdns = tokio::task::spawn_blocking(PowerDns::start).await.unwrap();
    let mut bcfg = bind.config();
    bcfg.name = "ns-bind".into();
    let mut pcfg = pdns.config();
    pcfg.name = "ns-pdns".into();
    let drivers = Drivers::new(
        vec![
            Box::new(BindServer::new(bcfg).unwrap()),
            Box::new(PowerDnsServer::new(pcfg).unwrap()),
        ],
        vec![],
    )
    .unwrap();
    let agent = start_agent(&dir.0, vec![Role::Dns], drivers).await;
    let server = start_central(&dir.0, &agent.addr);
    let mut c = server.client().await;
    *c.auth() = Some(basic("administrator", ADMIN_PW));

    // The agent's servers appear, reachable; BIND's zones from named.conf come in.
    wait_for(30, "both DNS servers up", async || {
        let s = get(&mut c, "/mmws/api/v2/dnsServers").await;
        let list = s["dnsServers"].as_array().unwrap().clone();
        (list.len() == 2 && list.iter().all(|x| x["state"] == "OK")).then_some(())
    })
    .await;
    let www = wait_for(30, "conf.test read from BIND", async || {
        let r = c
            .call("GET", "/mmws/api/v2/dnsZones/conf.test./dnsRecords", None)
            .await;
        (r.status == 200).then(|| r.json["result"]["dnsRecords"].clone())
    })
    .await;
    assert!(
        www.as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "www" && r["type"] == "A" && r["data"] == "192.0.2.80"),
        "{www}"
    );

    // A zone and a range through Central.
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "central.test.", "type": "Master", "dynamic": true, "authority": "ns-bind"}, "saveComment": "new zone"})),
        )
        .await;
    let zone_ref = r.ok("create zone")["ref"].as_str().unwrap().to_string();
    dig_until(bind.dns_port, "central.test", "NS", &["ns1.example.test."]);
    let zones = get(&mut c, "/mmws/api/v2/dnsZones?filter=central.test").await;
    assert_eq!(zones["dnsZones"][0]["ref"], zone_ref.as_str());
    assert_eq!(zones["dnsZones"][0]["authority"], "ns-bind");
    c.call(
        "POST",
        "/mmws/api/v2/ranges",
        Some(json!({"range": {"name": "10.77.0.0/24"}})),
    )
    .await
    .ok("range");

    // Bulk records: the valid ones are created, the bad ones reported one by one.
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsRecords",
            Some(json!({
                "dnsZoneRef": zone_ref,
                "saveComment": "hosts",
                "dnsRecords": [
                    {"name": "www", "type": "A", "ttl": 300, "data": "10.77.0.10"},
                    {"name": "mail.central.test.", "type": "A", "ttl": "300", "data": "10.77.0.11"},
                    {"name": "note", "type": "TXT", "data": "hello world"},
                    {"name": "bad", "type": "A", "data": "10.77.0.999"},
                    {"name": "www", "type": "A", "ttl": 300, "data": "10.77.0.10"},
                    {"name": "x", "type": "A", "data": "10.77.0.12", "dnsZoneRef": "nowhere.test."}
                ]
            })),
        )
        .await;
    let res = r.ok("bulk records").clone();
    let refs: Vec<&str> = res["objRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 6, "{res}");
    assert!(
        refs[..3].iter().all(|r| r.starts_with("dnsRecords/")),
        "{res}"
    );
    assert!(refs[3..].iter().all(|r| *r == "unknown/0"), "{res}");
    let errors = res["errors"].to_string();
    assert!(
        errors.contains("bad")
            && errors.contains("already has this record")
            && errors.contains("nowhere.test"),
        "{errors}"
    );
    dig_until(bind.dns_port, "www.central.test", "A", &["10.77.0.10"]);
    dig_until(bind.dns_port, "mail.central.test", "A", &["10.77.0.11"]);
    dig_until(
        bind.dns_port,
        "note.central.test",
        "TXT",
        &["\"hello world\""],
    );
    let note = get(&mut c, &format!("/mmws/api/v2/{}", refs[2])).await;
    assert_eq!(
        note["dnsRecord"]["data"], "hello world",
        "TXT is kept unquoted"
    );
    assert_eq!(note["dnsRecord"]["name"], "note");

    // IPAM: the addresses are used, show their DNS host, and next free skips them.
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.10").await;
    assert_eq!(rec["ipamRecord"]["state"], "Assigned", "{rec}");
    assert_eq!(
        rec["ipamRecord"]["dnsHosts"][0]["dnsRecord"]["name"], "www",
        "{rec}"
    );
    let nf = get(
        &mut c,
        "/mmws/api/v2/ranges/10.77.0.0/24/nextFreeAddress?startAddress=10.77.0.10",
    )
    .await;
    assert_eq!(nf["address"], "10.77.0.12", "{nf}");

    // A change of data moves the record on the server and the address in IPAM.
    let r = c
        .call(
            "PUT",
            &format!("/mmws/api/v2/{}", refs[0]),
            Some(json!({"properties": {"data": "10.77.0.20"}, "saveComment": "move www"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    dig_until(bind.dns_port, "www.central.test", "A", &["10.77.0.20"]);
    let old = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.10").await;
    assert_eq!(old["ipamRecord"]["state"], "Free", "{old}");
    // With a reverse zone but no PTR record the host's PTR status is Verify; with it, OK.
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "0.77.10.in-addr.arpa.", "dynamic": true, "authority": "ns-bind"}})),
        )
        .await;
    let rz = r.ok("reverse zone")["ref"].as_str().unwrap().to_string();
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.20").await;
    assert_eq!(rec["ipamRecord"]["ptrStatus"], "Verify", "{rec}");
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsRecords",
            Some(json!({"dnsRecords": [{"name": "20", "type": "PTR", "data": "www.central.test.", "dnsZoneRef": rz}]})),
        )
        .await;
    assert_eq!(r.ok("PTR")["errors"], json!([]), "{}", r.text);
    dig_until(
        bind.dns_port,
        "20.0.77.10.in-addr.arpa",
        "PTR",
        &["www.central.test."],
    );
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.20").await;
    assert_eq!(rec["ipamRecord"]["ptrStatus"], "OK", "{rec}");
    assert_eq!(rec["ipamRecord"]["dnsHosts"][0]["ptrStatus"], "OK", "{rec}");

    // Changes made on named directly come back, each in history.
    bind.nsupdate(
        "zone central.test\nupdate add extra.central.test. 600 A 10.77.0.30\nupdate delete mail.central.test. A",
    );
    let extra = wait_for(20, "the nsupdate read back", async || {
        let extra = records(&mut c, "central.test.", "name=extra").await;
        let mail = records(&mut c, "central.test.", "name=mail").await;
        (extra.len() == 1 && mail.is_empty()).then(|| extra[0].clone())
    })
    .await;
    assert_eq!(extra["ttl"], "600");
    let h = get(
        &mut c,
        &format!("/mmws/api/v2/{}/history", extra["ref"].as_str().unwrap()),
    )
    .await;
    assert_eq!(h["events"][0]["eventType"], "Creation", "{h}");
    assert!(
        h["events"][0]["saveComment"]
            .as_str()
            .unwrap()
            .contains("synchronized from DNS server ns-bind"),
        "{h}"
    );
    let gone = get(&mut c, &format!("/mmws/api/v2/{}/history", refs[1])).await;
    assert_eq!(gone["events"][0]["eventType"], "Deletion", "{gone}");
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.30").await;
    assert_eq!(rec["ipamRecord"]["state"], "Assigned", "{rec}");

    // certbot-dns-micetro, unmodified, adds and removes its TXT record.
    if let Some(py) = &python {
        let name = "_acme-challenge.www.central.test";
        tokio::task::block_in_place(|| {
            certbot(
                py,
                &server,
                &dir.0,
                &["add", "www.central.test", name, "tok-123"],
            )
        });
        dig_until(bind.dns_port, name, "TXT", &["\"tok-123\""]);
        tokio::task::block_in_place(|| {
            certbot(
                py,
                &server,
                &dir.0,
                &["del", "www.central.test", name, "tok-123"],
            )
        });
        dig_until(bind.dns_port, name, "TXT", &[]);
    }

    // PowerDNS through the same agent.
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "pdns.test", "type": "Master", "dnsServerRef": "ns-pdns"}})),
        )
        .await;
    let pz = r.ok("create PowerDNS zone")["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsRecords",
            Some(json!({"dnsRecords": [{"name": "host", "type": "A", "ttl": 60, "data": "10.77.0.40", "dnsZoneRef": pz}]})),
        )
        .await;
    let href = r.ok("PowerDNS record")["objRefs"][0]
        .as_str()
        .unwrap()
        .to_string();
    dig_until(pdns.dns_port, "host.pdns.test", "A", &["10.77.0.40"]);
    let r = c
        .call("DELETE", &format!("/mmws/api/v2/{href}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    dig_until(pdns.dns_port, "host.pdns.test", "A", &[]);
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.40").await;
    assert_eq!(rec["ipamRecord"]["state"], "Free", "{rec}");

    // A stopped server: a clear error, and nothing changes in Central.
    bind.process.stop();
    let before = records(&mut c, "central.test.", "").await.len();
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsRecords",
            Some(json!({"dnsZoneRef": zone_ref, "dnsRecords": [{"name": "late", "type": "A", "data": "10.77.0.50"}]})),
        )
        .await;
    let res = r.ok("records while named is down").clone();
    assert_eq!(res["objRefs"][0], "unknown/0", "{res}");
    assert!(
        res["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{res}"
    );
    let r = c
        .call("DELETE", &format!("/mmws/api/v2/{zone_ref}"), None)
        .await;
    assert_eq!(r.err("delete zone while named is down", 503), 4060);
    assert_eq!(records(&mut c, "central.test.", "").await.len(), before);
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/10.77.0.50").await;
    assert_eq!(rec["ipamRecord"]["state"], "Free");
    wait_for(20, "ns-bind reported down", async || {
        let s = get(&mut c, "/mmws/api/v2/dnsServers/ns-bind").await;
        (s["dnsServer"]["state"] == "Down").then_some(())
    })
    .await;
    // The zone is still there (the server being down is not a deletion).
    let z = get(&mut c, &format!("/mmws/api/v2/{zone_ref}")).await;
    assert_eq!(z["dnsZone"]["name"], "central.test.");
    let _ = dig(pdns.dns_port, "pdns.test", "SOA");
    drop(agent);
}

/// An agent with one BIND server whose every request fails as if named were down.
struct NoServer;

impl Handler for NoServer {
    fn servers(&self) -> Vec<ManagedServer> {
        vec![ManagedServer {
            name: "ns-fake".into(),
            kind: ServerKind::Bind,
        }]
    }

    fn handle(&self, _body: RequestBody) -> Result<ResponseBody, RemoteError> {
        Err(RemoteError::new(
            RemoteErrorCode::ServerDown,
            "ns-fake: connection refused",
        ))
    }
}

#[test]
fn central_refuses_a_weak_agent_key_at_start() {
    let dir = TempDir::new("weak-key");
    // base64 of "passwordpassword1234": text, not random bytes.
    let cfg = dir.0.join("weak.toml");
    std::fs::write(
        &cfg,
        "[[agents]]\naddress = \"127.0.0.1:1337\"\nkey = \"cGFzc3dvcmRwYXNzd29yZDEyMzQ=\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ipam-central"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--insecure-fast-passwords",
        ])
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("IPAM_ADMIN_PASSWORD", ADMIN_PW)
        .env_remove("IPAM_CONFIG")
        .env_remove("IPAM_DATABASE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Central started with a weak agent key");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("127.0.0.1:1337")
            && err.contains("text")
            && err.contains("head -c 32 /dev/urandom | base64"),
        "the error names the agent, why and what to do: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refuses_a_central_without_the_key_and_central_refuses_a_changed_agent_certificate(
) {
    let dir = TempDir::new("agent-security");
    let agent = start_agent_with(
        &dir.0.join("tls-a"),
        "127.0.0.1:0",
        vec![Role::Dns],
        Arc::new(NoServer),
        None,
    );
    let addr = agent.addr.clone();

    // A Central with another key is refused: no link, no server.
    let wrong = start_central_with(
        &dir.0,
        "wrong",
        &addr,
        "6hBNUtoal6EIQT589orq3MFmSAsa0Gzlwt3olBWYCho=",
    );
    let mut c = wrong.client().await;
    *c.auth() = Some(basic("administrator", ADMIN_PW));
    let why = wait_for(20, "the agent's refusal", async || {
        let m = get(&mut c, "/mmws/api/v2/micetro").await;
        let a = &m["micetro"]["agents"][0];
        (a["state"] == "Disconnected" && a["message"].as_str()?.contains("refused"))
            .then(|| a["message"].to_string())
    })
    .await;
    assert!(why.contains(&addr), "{why}");
    let s = get(&mut c, "/mmws/api/v2/dnsServers").await;
    assert_eq!(s["totalResults"], 0, "{s}");
    drop(wrong);

    // With the key: the agent's server appears, and its errors are answered by code.
    let server = start_central(&dir.0, &addr);
    let mut c = server.client().await;
    *c.auth() = Some(basic("administrator", ADMIN_PW));
    wait_for(20, "ns-fake registered", async || {
        let r = c.call("GET", "/mmws/api/v2/dnsServers/ns-fake", None).await;
        (r.status == 200 && r.json["result"]["dnsServer"]["state"] == "OK").then_some(())
    })
    .await;
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "x.test.", "authority": "ns-fake"}})),
        )
        .await;
    assert_eq!(r.err("a zone on a server that is down", 503), 4060);
    // The server's words ("connection refused") stay in the log, under the request id.
    assert!(r.json["error"]["requestId"].is_string(), "{}", r.text);
    assert!(!r.text.contains("connection refused"), "{}", r.text);
    // A user without the Create permission is refused before the server is asked.
    c.call(
        "POST",
        "/mmws/api/v2/users",
        Some(json!({"user": {"name": "viewer", "password": "pw-viewer-1"}})),
    )
    .await
    .ok("user");
    let admin = c.auth().clone();
    *c.auth() = Some(basic("viewer", "pw-viewer-1"));
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "x.test.", "authority": "ns-fake"}})),
        )
        .await;
    assert_eq!(r.err("a zone by a user without Create", 400), 1028);
    *c.auth() = admin;

    // The agent comes back at the same address with another certificate: refused.
    drop(agent);
    let _impostor = start_agent_with(
        &dir.0.join("tls-b"),
        &addr,
        vec![Role::Dns],
        Arc::new(NoServer),
        None,
    );
    let msg = wait_for(40, "the changed certificate refused", async || {
        let s = get(&mut c, "/mmws/api/v2/dnsServers/ns-fake").await;
        let m = s["dnsServer"]["message"].as_str()?.to_string();
        (s["dnsServer"]["state"] == "Unreachable" && m.contains("certificate")).then_some(m)
    })
    .await;
    assert!(msg.contains("pinned"), "{msg}");
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dnsZones",
            Some(json!({"dnsZone": {"name": "x.test.", "authority": "ns-fake"}})),
        )
        .await;
    assert_eq!(r.err("a zone through a refused agent", 503), 4060);
    let z = get(&mut c, "/mmws/api/v2/dnsZones").await;
    assert_eq!(z["totalResults"], 0, "nothing was created: {z}");
}
