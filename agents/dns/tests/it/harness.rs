//! Real servers for the tests: BIND 9 and PowerDNS started on free 127.0.0.1 ports in temp
//! dirs, killed by pid when dropped (also when a test fails), with a bounded start wait.
//! Each server runs in the foreground from a temporary directory, on loopback high ports.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ipam_agent_dns::{
    BindConfig, BindServer, DnsServer, NameServer, PowerDnsConfig, PowerDnsServer, TsigKey,
    ZoneDefaults,
};

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The install hint printed when a program is missing.
const INSTALL_HINT: &str = "install the test servers with `apt-get install bind9 bind9-utils \
     bind9-dnsutils pdns-server pdns-backend-sqlite3 sqlite3 curl` (or run \
     ./test.sh as root, which installs them), or set IPAM_SKIP_DNS=1 to skip these tests";

/// Whether the tests should run: false (after saying so) when IPAM_SKIP_DNS=1; panics naming
/// what to install when a program is missing.
pub fn servers_available(programs: &[&str]) -> bool {
    if std::env::var("IPAM_SKIP_DNS").as_deref() == Ok("1") {
        eprintln!("IPAM_SKIP_DNS=1: skipping this test against real DNS servers");
        return false;
    }
    for program in programs {
        assert!(
            find_program(program).is_some(),
            "`{program}` is not installed (not in PATH, /usr/sbin or /sbin): {INSTALL_HINT}"
        );
    }
    true
}

/// The program's full path, looked up in PATH, /usr/sbin and /sbin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A temp dir, removed when dropped unless the test is failing (then kept for its logs).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ipam-agent-dns-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: server files and logs kept in {}",
                self.0.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A server process, killed (SIGKILL to its pid) and reaped when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    what: &'static str,
    log: PathBuf,
}

impl ServerProcess {
    fn spawn(what: &'static str, mut cmd: Command, log: PathBuf) -> ServerProcess {
        let out = fs::File::create(&log).expect("creating the server log");
        let err = out.try_clone().expect("cloning the log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}: {INSTALL_HINT}"));
        ServerProcess {
            child: Some(child),
            what,
            log,
        }
    }

    /// Waits until `ready` holds, at most [`START_TIMEOUT`]; panics with the log's end when
    /// the server exits or does not get ready.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if ready() {
                return start.elapsed();
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{} exited during start ({status}); log:\n{}",
                        self.what,
                        self.log_tail()
                    );
                }
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "{} not ready after {START_TIMEOUT:?}; log:\n{}",
                self.what,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills the server now and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `n` distinct ports free on 127.0.0.1 for both TCP and UDP.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("binding a TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            ports.push(port);
            held.push((tcp, udp));
        }
    }
    ports
}

/// A random base64 secret of 32 bytes.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn tcp_open(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok()
}

/// Zone defaults of the tests: an out-of-zone name server, so no glue is needed.
pub fn zone_defaults() -> ZoneDefaults {
    let mut d = ZoneDefaults::new(vec![NameServer::new("ns1.example.test.")]);
    d.ttl = 300;
    d
}

/// A running named.
pub struct Bind {
    pub process: ServerProcess,
    pub dns_port: u16,
    pub rndc_port: u16,
    pub stats_port: u16,
    pub tsig_secret: String,
    pub rndc_secret: String,
    pub started_in: Duration,
    // Last, so the files outlive the process.
    pub dir: TempDir,
}

impl Bind {
    /// Starts named with TSIG key `ddns-key`, rndc key `rndc-key`, `allow-new-zones yes`, a
    /// statistics channel, and two zones from named.conf: `conf.test` (the key may update
    /// anything) and `policy.test` (only names under `ok.policy.test`).
    pub fn start() -> Bind {
        let dir = TempDir::new("bind");
        let d = dir.path().display().to_string();
        let ports = free_ports(3);
        let (dns_port, rndc_port, stats_port) = (ports[0], ports[1], ports[2]);
        let (tsig_secret, rndc_secret) = (random_secret(), random_secret());
        let conf = format!(
            r#"key "ddns-key" {{ algorithm hmac-sha256; secret "{tsig_secret}"; }};
key "rndc-key" {{ algorithm hmac-sha256; secret "{rndc_secret}"; }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {dns_port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    allow-transfer {{ key ddns-key; }};
    allow-new-zones yes;
    notify no;
    dnssec-validation no;
}};
controls {{ inet 127.0.0.1 port {rndc_port} allow {{ 127.0.0.1; }} keys {{ "rndc-key"; }}; }};
statistics-channels {{ inet 127.0.0.1 port {stats_port} allow {{ 127.0.0.1; }}; }};
logging {{ channel default_stderr {{ stderr; severity info; print-time yes; }};
          category default {{ default_stderr; }}; }};
zone "conf.test" {{
    type primary; file "{d}/conf.test.zone";
    update-policy {{ grant ddns-key zonesub ANY; }};
}};
zone "policy.test" {{
    type primary; file "{d}/policy.test.zone";
    update-policy {{ grant ddns-key subdomain ok.policy.test. ANY; }};
}};
"#
        );
        fs::write(dir.path().join("named.conf"), conf).expect("writing named.conf");
        fs::write(
            dir.path().join("conf.test.zone"),
            "$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
             \x20 IN NS ns1.example.test.\nwww IN A 192.0.2.80\n",
        )
        .expect("writing conf.test.zone");
        fs::write(
            dir.path().join("policy.test.zone"),
            "$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
             \x20 IN NS ns1.example.test.\n",
        )
        .expect("writing policy.test.zone");
        fs::write(
            dir.path().join("ddns.key"),
            format!("key \"ddns-key\" {{ algorithm hmac-sha256; secret \"{tsig_secret}\"; }};\n"),
        )
        .expect("writing ddns.key");
        let named = find_program("named").expect("named");
        let mut cmd = Command::new(named);
        cmd.arg("-g").arg("-c").arg(dir.path().join("named.conf"));
        let mut process = ServerProcess::spawn("named", cmd, dir.path().join("named.log"));
        let mut bind = Bind {
            process: ServerProcess {
                child: None,
                what: "named",
                log: PathBuf::new(),
            },
            dns_port,
            rndc_port,
            stats_port,
            tsig_secret,
            rndc_secret,
            started_in: Duration::ZERO,
            dir,
        };
        let driver = bind.driver();
        let started_in = process.wait_ready(|| tcp_open(dns_port) && driver.status().running);
        bind.process = process;
        bind.started_in = started_in;
        bind
    }

    /// The driver's configuration for this server.
    pub fn config(&self) -> BindConfig {
        BindConfig {
            name: "bind-test".into(),
            dns_addr: addr(self.dns_port),
            tsig_key: TsigKey::hmac_sha256("ddns-key", &self.tsig_secret),
            rndc_addr: addr(self.rndc_port),
            rndc_key: TsigKey::hmac_sha256("rndc-key", &self.rndc_secret),
            rndc_program: find_program("rndc").expect("rndc"),
            stats_addr: addr(self.stats_port),
            zone_dir: self.dir.path().to_path_buf(),
            zone_defaults: zone_defaults(),
            timeout: Duration::from_secs(10),
            max_message_len: 65_535,
        }
    }

    pub fn driver(&self) -> BindServer {
        BindServer::new(self.config()).expect("a valid BIND driver config")
    }

    /// Runs nsupdate with the TSIG key and this script (the `server` line is added).
    pub fn nsupdate(&self, script: &str) {
        let mut child = Command::new(find_program("nsupdate").expect("nsupdate"))
            .arg("-k")
            .arg(self.dir.path().join("ddns.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running nsupdate");
        let full = format!("server 127.0.0.1 {}\n{script}\nsend\n", self.dns_port);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(full.as_bytes())
            .expect("writing to nsupdate");
        let out = child.wait_with_output().expect("waiting for nsupdate");
        assert!(
            out.status.success(),
            "nsupdate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A running pdns_server with the gsqlite3 backend.
pub struct PowerDns {
    pub process: ServerProcess,
    pub dns_port: u16,
    pub api_port: u16,
    pub api_key: String,
    pub started_in: Duration,
    /// Kept until the process is gone.
    _dir: TempDir,
}

/// The schema of pdns-backend-sqlite3.
pub const PDNS_SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

impl PowerDns {
    pub fn start() -> PowerDns {
        assert!(
            Path::new(PDNS_SCHEMA).is_file(),
            "{PDNS_SCHEMA} is missing (package pdns-backend-sqlite3): {INSTALL_HINT}"
        );
        let dir = TempDir::new("pdns");
        let d = dir.path().display().to_string();
        let ports = free_ports(2);
        let (dns_port, api_port) = (ports[0], ports[1]);
        let api_key = random_secret();
        let db = dir.path().join("pdns.sqlite3");
        let status = Command::new(find_program("sqlite3").expect("sqlite3"))
            .arg(&db)
            .stdin(fs::File::open(PDNS_SCHEMA).expect("opening the schema"))
            .status()
            .expect("running sqlite3");
        assert!(
            status.success(),
            "sqlite3 could not create the PowerDNS database"
        );
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={d}/pdns.sqlite3\ngsqlite3-dnssec=no\n\
             local-address=127.0.0.1\nlocal-port={dns_port}\nsocket-dir={d}\ndaemon=no\n\
             guardian=no\ndisable-syslog=yes\nlog-timestamp=yes\nloglevel=4\n\
             security-poll-suffix=\n\
             default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600\n\
             api=yes\napi-key={api_key}\nwebserver=yes\nwebserver-address=127.0.0.1\n\
             webserver-port={api_port}\nwebserver-allow-from=127.0.0.1,::1\n\
             allow-axfr-ips=127.0.0.1/32\ndisable-axfr=no\n\
             cache-ttl=0\nnegquery-cache-ttl=0\nquery-cache-ttl=0\nzone-cache-refresh-interval=0\n"
        );
        fs::write(dir.path().join("pdns.conf"), conf).expect("writing pdns.conf");
        let mut cmd = Command::new(find_program("pdns_server").expect("pdns_server"));
        cmd.arg(format!("--config-dir={d}"));
        let mut process = ServerProcess::spawn("pdns_server", cmd, dir.path().join("pdns.log"));
        let mut pdns = PowerDns {
            process: ServerProcess {
                child: None,
                what: "pdns_server",
                log: PathBuf::new(),
            },
            dns_port,
            api_port,
            api_key,
            started_in: Duration::ZERO,
            _dir: dir,
        };
        let driver = pdns.driver();
        let started_in = process.wait_ready(|| driver.status().running && tcp_open(dns_port));
        pdns.process = process;
        pdns.started_in = started_in;
        pdns
    }

    pub fn config(&self) -> PowerDnsConfig {
        PowerDnsConfig {
            name: "pdns-test".into(),
            api_addr: addr(self.api_port),
            api_key: self.api_key.clone(),
            server_id: "localhost".into(),
            zone_defaults: zone_defaults(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn driver(&self) -> PowerDnsServer {
        PowerDnsServer::new(self.config()).expect("a valid PowerDNS driver config")
    }

    /// Sends a PATCH to a zone with curl, as an operator would.
    pub fn curl_patch(&self, zone: &str, body: &str) {
        let out = Command::new(find_program("curl").expect("curl"))
            .args(["-sS", "-f", "-X", "PATCH", "-H"])
            .arg(format!("X-API-Key: {}", self.api_key))
            .arg("-d")
            .arg(body)
            .arg(format!(
                "http://127.0.0.1:{}/api/v1/servers/localhost/zones/{zone}.",
                self.api_port
            ))
            .output()
            .expect("running curl");
        assert!(
            out.status.success(),
            "curl PATCH failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `dig +short` for one name and type: the answers, sorted.
pub fn dig(port: u16, name: &str, rtype: &str) -> Vec<String> {
    let out = Command::new(find_program("dig").expect("dig"))
        .args(["+short", "+time=2", "+tries=2", "-p"])
        .arg(port.to_string())
        .args(["@127.0.0.1", name, rtype])
        .output()
        .expect("running dig");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

/// Waits (at most 5 s) until `dig` gives the expected answers; panics with the last answer.
pub fn dig_until(port: u16, name: &str, rtype: &str, expected: &[&str]) {
    let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    let start = Instant::now();
    loop {
        let got = dig(port, name, rtype);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "dig {name} {rtype} on port {port}: got {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keeps a driver object as the agent would.
pub fn boxed(server: impl DnsServer + 'static) -> Box<dyn DnsServer> {
    Box::new(server)
}

/// A record.
pub fn rr(name: &str, rtype: &str, ttl: u32, data: &str) -> ipam_agent_dns::ResourceRecord {
    ipam_agent_dns::ResourceRecord {
        name: name.into(),
        rtype: rtype.into(),
        ttl,
        data: data.into(),
    }
}

/// A delete: one record with `data`, else the whole set.
pub fn del(name: &str, rtype: &str, data: Option<&str>) -> ipam_agent_dns::RecordDelete {
    ipam_agent_dns::RecordDelete {
        name: name.into(),
        rtype: rtype.into(),
        data: data.map(str::to_owned),
    }
}

/// Records as a comparable set: (lower-case name, type, TTL, data), SOA left out.
pub fn record_set(
    records: &[ipam_agent_dns::ResourceRecord],
) -> std::collections::BTreeSet<(String, String, u32, String)> {
    records
        .iter()
        .filter(|r| r.rtype != "SOA")
        .map(|r| {
            (
                r.name.to_ascii_lowercase(),
                r.rtype.clone(),
                r.ttl,
                r.data.clone(),
            )
        })
        .collect()
}
