//! Test scaffolding: finding the real servers and clients, temp dirs, child processes, network
//! namespaces with a veth pair, a DHCP client run. Everything made here is removed by a `Drop`
//! guard, also when the test fails, and every wait is bounded.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipam_agent_dhcp::{DhcpServer, KeaConfig, KeaServer};
use serde_json::Value;

/// How to install what the tests need.
const INSTALL_HINT: &str =
    "install the servers and clients with `./test.sh` as root (it installs them) \
     (Debian packages kea-dhcp4-server kea-ctrl-agent isc-dhcp-server isc-dhcp-client udhcpc \
     iproute2 socat), or set IPAM_SKIP_DHCP=1 to skip these tests";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next_id() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Where the tools a test needs live.
pub struct Tools {
    found: Vec<(String, PathBuf)>,
}

impl Tools {
    /// The full path of `name` (one of those required).
    pub fn path(&self, name: &str) -> &Path {
        self.found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
            .unwrap_or_else(|| panic!("{name} was not required by this test"))
    }
}

/// Finds an executable on PATH or in the sbin directories.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Checks that `tools` are installed (and that we are root, when `root`). Returns `None` when
/// `IPAM_SKIP_DHCP=1` is set (after saying so); fails the test naming what is missing otherwise.
pub fn require(test: &str, tools: &[&str], root: bool) -> Option<Tools> {
    if std::env::var("IPAM_SKIP_DHCP").is_ok_and(|v| v == "1") {
        eprintln!(
            "IPAM_SKIP_DHCP=1: skipping {test} (it needs {})",
            tools.join(", ")
        );
        return None;
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for tool in tools {
        match which(tool) {
            Some(path) => found.push(((*tool).to_owned(), path)),
            None => missing.push(*tool),
        }
    }
    assert!(
        missing.is_empty(),
        "{test} needs {} but it is not installed: {INSTALL_HINT}",
        missing.join(", ")
    );
    assert!(
        !root || is_root(),
        "{test} must run as root: it creates network namespaces and runs DHCP servers and \
         clients in them (or set IPAM_SKIP_DHCP=1 to skip it)"
    );
    Some(Tools { found })
}

/// A temp dir with a short path (unix socket paths must stay under 108 bytes). Removed on drop,
/// except when the test is failing: then its path is printed so the logs can be read.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = PathBuf::from(format!("/tmp/ipd-{}-{}", std::process::id(), next_id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating the test's temp dir");
        TempDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process, killed (and reaped) on drop.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening a log file");
        let err = out.try_clone().expect("cloning a log file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child: Some(child) }
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion within `timeout`; returns its output (killed on timeout).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("reading the output of {cmd:?}: {e}"))
}

/// Runs `program args...` and panics with its stderr unless it succeeds.
pub fn run(program: &Path, args: &[&str]) -> String {
    let out = run_with_timeout(Command::new(program).args(args), Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{} {} failed: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `ready` holds, at most `timeout`; panics naming `what` otherwise.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Two network namespaces joined by a veth pair, nothing in the root namespace: the server
/// side has 192.0.2.1/24, the client side no address. Both are deleted on drop.
pub struct NetnsPair {
    ip: PathBuf,
    pub srv: String,
    pub cli: String,
    pub srv_if: String,
    pub cli_if: String,
}

impl NetnsPair {
    pub fn new(tools: &Tools) -> NetnsPair {
        let n = next_id();
        let pid = std::process::id();
        let pair = NetnsPair {
            ip: tools.path("ip").to_owned(),
            srv: format!("ipam-dhcp-{pid}-{n}-srv"),
            cli: format!("ipam-dhcp-{pid}-{n}-cli"),
            srv_if: format!("vs{}x{n}", pid % 100_000),
            cli_if: format!("vc{}x{n}", pid % 100_000),
        };
        let ip = pair.ip.clone();
        run(&ip, &["netns", "add", &pair.srv]);
        run(&ip, &["netns", "add", &pair.cli]);
        run(
            &ip,
            &[
                "link",
                "add",
                &pair.srv_if,
                "netns",
                &pair.srv,
                "type",
                "veth",
                "peer",
                "name",
                &pair.cli_if,
                "netns",
                &pair.cli,
            ],
        );
        run(&ip, &["-n", &pair.srv, "link", "set", "lo", "up"]);
        run(&ip, &["-n", &pair.cli, "link", "set", "lo", "up"]);
        run(
            &ip,
            &[
                "-n",
                &pair.srv,
                "addr",
                "add",
                "192.0.2.1/24",
                "dev",
                &pair.srv_if,
            ],
        );
        run(&ip, &["-n", &pair.srv, "link", "set", &pair.srv_if, "up"]);
        run(&ip, &["-n", &pair.cli, "link", "set", &pair.cli_if, "up"]);
        pair
    }

    /// A command run inside the server's namespace.
    pub fn in_srv(&self, program: &Path) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.srv]).arg(program);
        cmd
    }

    /// Gives the client's interface `mac` and no address.
    pub fn set_client_mac(&self, mac: &str) {
        run(
            &self.ip,
            &["-n", &self.cli, "addr", "flush", "dev", &self.cli_if],
        );
        run(
            &self.ip,
            &["-n", &self.cli, "link", "set", &self.cli_if, "address", mac],
        );
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth end and the peer with it.
        for ns in [&self.srv, &self.cli] {
            let _ = run_with_timeout(
                Command::new(&self.ip).args(["netns", "del", ns]),
                Duration::from_secs(10),
            );
        }
    }
}

/// What a DHCP client run got.
#[derive(Debug)]
pub struct ClientLease {
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
}

/// Runs busybox udhcpc once in the client namespace with `mac` (and a host name to send, if
/// any): discover, request, exit. Its script only sets the address on the interface. Returns
/// what it was given, or panics with udhcpc's output when it got nothing within ~5 s.
pub fn udhcpc(
    tools: &Tools,
    pair: &NetnsPair,
    dir: &TempDir,
    mac: &str,
    send_hostname: Option<&str>,
) -> ClientLease {
    let script = dir.join("udhcpc.script");
    if !script.exists() {
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             echo \"udhcpc event=$1 ip=$ip hostname=$hostname\"\n\
             case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; \
             ip addr add \"$ip/${mask:-24}\" dev \"$interface\";; esac\n",
        )
        .expect("writing the udhcpc script");
        run(Path::new("/bin/chmod"), &["+x", &script.to_string_lossy()]);
    }
    pair.set_client_mac(mac);
    let mut cmd = Command::new(tools.path("ip"));
    cmd.args(["netns", "exec", &pair.cli])
        .arg(tools.path("udhcpc"))
        .args([
            "-f",
            "-q",
            "-n",
            "-t",
            "4",
            "-T",
            "1",
            "-i",
            &pair.cli_if,
            "-s",
        ])
        .arg(&script);
    if let Some(name) = send_hostname {
        cmd.args(["-x", &format!("hostname:{name}")]);
    }
    let started = Instant::now();
    let out = run_with_timeout(&mut cmd, Duration::from_secs(15));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let bound = stdout
        .lines()
        .find(|l| l.starts_with("udhcpc event=bound"))
        .unwrap_or_else(|| {
            panic!(
                "udhcpc with MAC {mac} got no lease in {:?}: {stdout}{}",
                started.elapsed(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let field = |key: &str| {
        bound
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    ClientLease {
        ip: field("ip=")
            .and_then(|ip| ip.parse().ok())
            .unwrap_or_else(|| panic!("udhcpc printed no address: {bound}")),
        hostname: field("hostname="),
    }
}

/// Where Debian (and most builds) put Kea's hook libraries.
pub fn hooks_dir() -> PathBuf {
    let mut candidates = vec![
        PathBuf::from("/usr/lib/kea/hooks"),
        PathBuf::from("/usr/local/lib/kea/hooks"),
    ];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            candidates.push(entry.path().join("kea/hooks"));
        }
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("libdhcp_lease_cmds.so").is_file())
        .expect(
            "libdhcp_lease_cmds.so not found (Debian ships it in kea-common): install with \
             `./test.sh` as root (it installs them)",
        )
}

/// A kea-dhcp4 in a temp dir, serving `iface` in a namespace or no interface at all (its
/// driver is named `kea1`; [`Kea::driver_named`] for another name).
pub struct Kea {
    pub dir: TempDir,
    binary: PathBuf,
    netns: Option<(PathBuf, String)>,
    proc: Option<Proc>,
}

impl Kea {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("kea-dhcp4.json")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("kea4.sock")
    }

    /// Writes a configuration with no subnets: the driver adds them.
    pub fn new(tools: &Tools, netns: Option<(&NetnsPair, &Tools)>) -> Kea {
        let dir = TempDir::new();
        let interfaces = match netns {
            Some((pair, _)) => format!("[\"{}\"]", pair.srv_if),
            None => "[]".to_owned(),
        };
        let config = format!(
            r#"{{
"Dhcp4": {{
  "interfaces-config": {{ "interfaces": {interfaces}, "dhcp-socket-type": "raw" }},
  "control-socket": {{ "socket-type": "unix", "socket-name": "{socket}" }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{leases}", "lfc-interval": 0 }},
  "hooks-libraries": [ {{ "library": "{hooks}/libdhcp_lease_cmds.so" }} ],
  "host-reservation-identifiers": [ "hw-address", "client-id" ],
  "valid-lifetime": 3600, "renew-timer": 900, "rebind-timer": 1800,
  "authoritative": true,
  "subnet4": [ ],
  "loggers": [ {{ "name": "kea-dhcp4", "severity": "INFO",
                 "output_options": [ {{ "output": "stdout" }} ] }} ]
}}
}}"#,
            socket = dir.join("kea4.sock").display(),
            leases = dir.join("leases4.csv").display(),
            hooks = hooks_dir().display(),
        );
        std::fs::write(dir.join("kea-dhcp4.json"), config).expect("writing kea-dhcp4.json");
        Kea {
            dir,
            binary: tools.path("kea-dhcp4").to_owned(),
            netns: netns.map(|(pair, tools)| (tools.path("ip").to_owned(), pair.srv.clone())),
            proc: None,
        }
    }

    /// Starts kea-dhcp4 and waits until its control socket answers.
    pub fn start(&mut self) -> Duration {
        let started = Instant::now();
        let mut cmd = match &self.netns {
            Some((ip, ns)) => {
                let mut cmd = Command::new(ip);
                cmd.args(["netns", "exec", ns]).arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("-c")
            .arg(self.config_path())
            .env("KEA_PIDFILE_DIR", &self.dir.path)
            .env("KEA_LOCKFILE_DIR", &self.dir.path);
        let _ = std::fs::remove_file(self.socket());
        self.proc = Some(Proc::spawn(
            "kea-dhcp4",
            &mut cmd,
            &self.dir.join("kea-dhcp4.log"),
        ));
        let driver = self.driver();
        wait_for(
            "kea-dhcp4's control socket",
            Duration::from_secs(10),
            || driver.status().running,
        );
        started.elapsed()
    }

    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.stop();
        }
    }

    pub fn driver(&self) -> KeaServer {
        self.driver_named("kea1")
    }

    pub fn driver_named(&self, name: &str) -> KeaServer {
        KeaServer::new(
            KeaConfig::unix_socket(name, self.socket()).with_timeout(Duration::from_secs(10)),
        )
    }

    /// The configuration file as kea-dhcp4 wrote it (`config-write`).
    pub fn file(&self) -> Value {
        let text = std::fs::read_to_string(self.config_path()).expect("reading kea-dhcp4.json");
        serde_json::from_str(&text).expect("config-write writes strict JSON")
    }
}

impl Drop for Kea {
    fn drop(&mut self) {
        self.stop();
    }
}
