//! ipamctl end to end: the real binary against a real Central (in this process, over TLS,
//! on a temporary SQLite database).
#![allow(missing_docs)]

mod services;
// The drivers' test harnesses: PowerDNS on loopback, Kea without interfaces.
#[allow(dead_code)]
#[path = "../../../../agents/dhcp/tests/it/harness.rs"]
mod dhcp_harness;
#[allow(dead_code)]
#[path = "../../../../agents/dns/tests/it/harness.rs"]
mod dns_harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ipam_central::{App, Config};
use serde_json::Value;

struct Server {
    rt: tokio::runtime::Runtime,
    app: std::sync::Arc<App>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    dir: PathBuf,
}

impl Server {
    fn start(tag: &str) -> Server {
        Server::start_with(tag, |_| {})
    }

    fn start_with(tag: &str, f: impl FnOnce(&mut Config)) -> Server {
        let dir = std::env::temp_dir().join(format!("ipamctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = Config::for_tests(&dir);
        f(&mut cfg);
        let (app, _) = App::open(&cfg).unwrap();
        let tls = ipam_central::tls::load_or_create(&dir, None).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        {
            let _rt = rt.enter();
            app.start_services().unwrap();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(ipam_central::serve(
            app.router(),
            listener,
            Some(tls.config),
            ipam_central::Limits::from_config(&cfg),
            async {
                let _ = rx.await;
            },
        ));
        Server {
            rt,
            app,
            url,
            stop: Some(tx),
            dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.app.shutdown();
        let _ = &self.rt;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ipamctl(s: &Server, cfg: &Path, args: &[&str], stdin_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipamctl"));
    c.args(["--url", &s.url])
        .args(args)
        .env("IPAMCTL_CONFIG_DIR", cfg)
        .env_remove("IPAM_USER")
        .env_remove("IPAM_PASSWORD")
        .env_remove("IPAM_FINGERPRINT")
        .env_remove("IPAM_URL");
    for (k, v) in stdin_env {
        c.env(k, v);
    }
    c.output().expect("run ipamctl")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ipamctl failed ({:?}): {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("JSON output")
}

#[test]
fn login_ranges_alloc_records_import_export() {
    let s = Server::start("main");
    let cfg = s.dir.join("cfg");
    let pw = [("IPAM_PASSWORD", "admin-password")];
    // First contact pins the certificate; the session is stored privately.
    let o = ipamctl(&s, &cfg, &["login", "administrator"], &pw);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("pinned its certificate"));
    let kh = std::fs::read_to_string(cfg.join("known_hosts")).unwrap();
    assert!(kh.contains(s.url.trim_start_matches("https://")), "{kh}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(cfg.join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
    let run = |args: &[&str]| ipamctl(&s, &cfg, args, &[]);
    ok(&run(&["ranges", "create", "10.40.0.0/16", "--container"]));
    ok(&run(&[
        "ranges",
        "create",
        "10.40.1.0/24",
        "--prop",
        "Title=lab",
    ]));
    let l = json(&run(&["ranges", "list", "-o", "json"]));
    assert_eq!(l["totalResults"], 2);
    let t = ok(&run(&["ranges", "tree", "10.40.0.0/16"]));
    assert!(t.contains("10.40.1.0/24"), "{t}");
    // Idempotent allocation.
    let a1 = json(&run(&[
        "alloc",
        "10.40.1.0/24",
        "-n",
        "5",
        "--key",
        "k1",
        "-o",
        "json",
    ]));
    let a2 = json(&run(&[
        "alloc",
        "10.40.1.0/24",
        "-n",
        "5",
        "--key",
        "k1",
        "-o",
        "json",
    ]));
    assert_eq!(a1["addresses"], a2["addresses"]);
    assert_eq!(a2["replayed"], true);
    ok(&run(&["records", "set", "10.40.1.77", "state=Claimed"]));
    let r = json(&run(&["records", "get", "10.40.1.77", "-o", "json"]));
    assert_eq!(r["state"], "Claimed");
    let b = json(&run(&[
        "blocks",
        "find",
        "10.40.0.0/16",
        "--mask",
        "28",
        "--create",
        "-o",
        "json",
    ]));
    assert_eq!(b["addressBlocks"].as_array().unwrap().len(), 1);
    let h = ok(&run(&["history", "ipamRecords/10.40.1.77"]));
    assert!(h.contains("Modification") || h.contains("Creation"), "{h}");
    // Exit codes: not found 4; no credentials 3.
    assert_eq!(
        run(&["ranges", "show", "10.99.0.0/24"]).status.code(),
        Some(4)
    );
    let other = s.dir.join("cfg2");
    let o = ipamctl(&s, &other, &["ranges", "list"], &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Import: a bad row refuses its batch (with the line number); a rerun after fixing it
    // resumes, replaying the batches already applied.
    let csv = s.dir.join("recs.csv");
    let mut text = String::from("address,state\n");
    for i in 0..3000u32 {
        let st = if i == 1500 { "Sideways" } else { "Assigned" };
        text.push_str(&format!("10.40.{}.{},{st}\n", 2 + i / 256, i % 256));
    }
    ok(&run(&["ranges", "create", "10.40.2.0/23"]));
    ok(&run(&["ranges", "create", "10.40.4.0/23"]));
    std::fs::write(&csv, &text).unwrap();
    let p = csv.to_str().unwrap();
    let dry = run(&["import", p, "--dry-run", "--batch", "1000"]);
    assert_eq!(dry.status.code(), Some(7));
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("line 1502"),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let o = run(&["import", p, "--batch", "1000", "--quiet", "-o", "json"]);
    assert_eq!(o.status.code(), Some(7));
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["applied"], 2000);
    assert_eq!(rep["badRows"][0]["line"], 1502);
    std::fs::write(&csv, text.replace("Sideways", "Assigned")).unwrap();
    let rep = json(&run(&[
        "import", p, "--batch", "1000", "--quiet", "-o", "json",
    ]));
    assert_eq!(rep["replayedBatches"], 2, "{rep}");
    assert_eq!(rep["applied"], 3000);
    // Export then import round-trips.
    let out = ok(&run(&["export", "records", "10.40.2.0/23"]));
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.remove(0), "address,state");
    assert_eq!(lines.len(), 512);
    assert!(lines.iter().all(|l| l.ends_with(",Assigned")));
    ok(&run(&["records", "claim", "10.40.2.9"]));
    let claimed = ok(&run(&[
        "export",
        "records",
        "10.40.2.0/23",
        "--filter",
        "state=Claimed",
    ]));
    assert_eq!(
        claimed.lines().collect::<Vec<_>>(),
        ["address,state", "10.40.2.9,Claimed"]
    );
    let nd = ok(&run(&[
        "export",
        "records",
        "10.40.2.0/23",
        "--format",
        "ndjson",
    ]));
    assert_eq!(nd.lines().count(), 512);
    let ranges_csv = ok(&run(&["export", "ranges"]));
    assert!(ranges_csv
        .starts_with("from,to,name,subnet,container,locked,auto_assign,Title,Description"));
    let s2 = Server::start("second");
    let cfg2 = s2.dir.join("cfg");
    ok(&ipamctl(&s2, &cfg2, &["login", "administrator"], &pw));
    let rc = s2.dir.join("ranges.csv");
    std::fs::write(&rc, &ranges_csv).unwrap();
    ok(&ipamctl(
        &s2,
        &cfg2,
        &["import", rc.to_str().unwrap(), "--quiet"],
        &[],
    ));
    let again = ok(&ipamctl(&s2, &cfg2, &["export", "ranges"], &[]));
    assert_eq!(again, ranges_csv, "ranges round-trip exactly");
    // A changed certificate is refused: pin something else for this server.
    std::fs::write(
        cfg.join("known_hosts"),
        format!(
            "{} {}\n",
            s.url.trim_start_matches("https://"),
            ["AB"; 32].join(":")
        ),
    )
    .unwrap();
    let o = run(&["ranges", "list"]);
    assert_eq!(o.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&o.stderr).contains("known_hosts"));
}

#[test]
fn netbox_migration_maps_vrfs_prefixes_ranges_and_addresses() {
    let s = Server::start("netbox");
    let cfg = s.dir.join("cfg");
    ok(&ipamctl(
        &s,
        &cfg,
        &["login", "administrator"],
        &[("IPAM_PASSWORD", "admin-password")],
    ));
    let run = |args: &[&str]| ipamctl(&s, &cfg, args, &[]);
    let d = &s.dir;
    std::fs::write(
        d.join("prefixes.csv"),
        "prefix,status,vrf,tenant,site,description,is_pool,cf_owner,id,created\n\
         10.60.0.0/16,container,,acme,ams1,Campus,false,,1,2023-01-01\n\
         10.60.1.0/24,active,,acme,ams1,Office LAN,false,bob,2,2023-01-01\n\
         192.168.0.0/24,active,blue,,,Blue LAN,false,,3,2023-01-01\n",
    )
    .unwrap();
    std::fs::write(
        d.join("ip-ranges.csv"),
        "Start address,End address,Status,VRF,Description\n\
         10.60.1.100/24,10.60.1.150/24,active,,DHCP pool\n",
    )
    .unwrap();
    std::fs::write(
        d.join("ip-addresses.csv"),
        "IP Address,Status,VRF,DNS name,Description,Tags\n\
         10.60.1.5/24,active,,host5.example.com,printer,\"a,b\"\n\
         10.60.1.6/24,reserved,,,,\n\
         10.60.1.7/24,deprecated,,,,\n\
         192.168.0.10/24,dhcp,blue,,,\n\
         10.60.1.999/24,active,,,,\n",
    )
    .unwrap();
    let files: Vec<String> = ["ip-addresses.csv", "prefixes.csv", "ip-ranges.csv"]
        .iter()
        .map(|f| d.join(f).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["import", "--netbox", "-o", "json"];
    args.extend(files.iter().map(String::as_str));
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["addressSpacesCreated"], serde_json::json!(["blue"]));
    assert_eq!(rep["ranges"], 4);
    assert_eq!(rep["records"], 4);
    assert_eq!(rep["badRows"][0]["line"], 6, "{rep}");
    for col in [
        "prefixes: id",
        "prefixes: created",
        "prefixes: is_pool",
        "ip addresses: tags",
    ] {
        assert!(
            rep["notMapped"][col].as_u64().unwrap_or(0) >= 1,
            "{col} in {rep}"
        );
    }
    let r = json(&run(&["ranges", "show", "10.60.0.0/16", "-o", "json"]));
    assert_eq!(r["isContainer"], true);
    assert_eq!(r["customProperties"]["Description"], "Campus");
    let r = json(&run(&["ranges", "show", "10.60.1.0/24", "-o", "json"]));
    assert_eq!(r["customProperties"]["owner"], "bob");
    assert_eq!(r["customProperties"]["Tenant"], "acme");
    let r = json(&run(&[
        "ranges",
        "show",
        "10.60.1.100-10.60.1.150",
        "-o",
        "json",
    ]));
    assert_eq!(r["customProperties"]["Description"], "DHCP pool");
    let rec = json(&run(&["records", "get", "10.60.1.5", "-o", "json"]));
    assert_eq!(rec["state"], "Assigned");
    assert_eq!(rec["customProperties"]["DNSName"], "host5.example.com");
    assert_eq!(rec["customProperties"]["Description"], "printer");
    assert_eq!(
        json(&run(&["records", "get", "10.60.1.6", "-o", "json"]))["state"],
        "Reserved"
    );
    let r7 = json(&run(&["records", "get", "10.60.1.7", "-o", "json"]));
    assert_eq!(r7["state"], "Free");
    assert_eq!(r7["customProperties"]["NetBoxStatus"], "deprecated");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(env!("CARGO_BIN_EXE_ipamctl"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{shell}");
        assert!(
            text.contains("ipamctl") && text.contains("import"),
            "{shell}: {text}"
        );
    }
}
