//! Central's settings: a TOML file, then environment variables, then command-line flags, each
//! overriding the one before (`ipam-central --help` lists them all).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde::Deserialize;

use crate::CentralError;

/// Where Central keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file (the default: `DATA_DIR/ipam.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL server (a libpq connection string or `postgres://` URL) and the schema
    /// holding this installation's tables.
    Postgres {
        /// Connection string.
        url: String,
        /// Schema name.
        schema: String,
    },
}

impl std::fmt::Display for Database {
    /// The database without credentials (for logs, error messages and answers).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Database::Postgres { url, schema } => {
                write!(f, "{} (schema {schema})", safe_connection_string(url))
            }
        }
    }
}

impl std::fmt::Debug for Database {
    /// As [`Display`](std::fmt::Display): never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({self})")
    }
}

/// A PostgreSQL connection string rendered without any password: the one way Central shows
/// a connection string (logs, errors, `/health`, `GET micetro`).
///
/// Both of libpq's forms are parsed as libpq does: `key = value` pairs (spaces around `=`
/// allowed; a value unquoted up to the next space, or single-quoted, with `\'` and `\\`
/// escapes in both) and the URL form `postgres[ql]://user:password@host/db?key=value`. Every
/// key naming a password (`password`, `sslpassword`) is left out, and so is the password of
/// a URL's user information. A string that cannot be parsed is not shown at all.
pub fn safe_connection_string(s: &str) -> String {
    let s = s.trim();
    if let Some((scheme, rest)) = url_form(s) {
        return safe_url(scheme, rest);
    }
    match parse_key_values(s) {
        Ok(kv) => kv
            .iter()
            .filter(|(k, _)| !is_secret_key(k))
            .map(|(k, v)| format!("{k}={}", quote_value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => "(a PostgreSQL connection string that cannot be parsed)".to_string(),
    }
}

fn url_form(s: &str) -> Option<(&str, &str)> {
    ["postgresql://", "postgres://"]
        .iter()
        .find_map(|p| s.strip_prefix(p).map(|rest| (&p[..p.len() - 3], rest)))
}

fn is_secret_key(k: &str) -> bool {
    k.to_ascii_lowercase().contains("password")
}

/// A URL without its password: the user information ends at the last `@` (so that an
/// unencoded `@`, `/` or `?` in a password hides more, never less), and query parameters
/// naming a password are dropped.
fn safe_url(scheme: &str, rest: &str) -> String {
    let (user, hostpart) = match rest.rfind('@') {
        Some(i) => {
            let userinfo = &rest[..i];
            let user = userinfo.split(':').next().unwrap_or_default();
            (Some(user), &rest[i + 1..])
        }
        None => (None, rest),
    };
    let (path, query) = match hostpart.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (hostpart, None),
    };
    let mut out = format!("{scheme}://");
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(path);
    if let Some(q) = query {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or_default();
                let k = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
                !kv.is_empty() && !is_secret_key(&k)
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// Why a libpq key/value string is malformed (the string itself is never quoted back).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConnStringError {
    /// A keyword without `=`.
    MissingEquals,
    /// `=` without a keyword.
    MissingKeyword,
    /// A quoted value without its closing quote.
    UnterminatedQuote,
}

impl std::fmt::Display for ConnStringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnStringError::MissingEquals => "a keyword without \"=\"",
            ConnStringError::MissingKeyword => "an \"=\" without a keyword",
            ConnStringError::UnterminatedQuote => "a quoted value without its closing quote",
        })
    }
}

/// Splits a libpq `key = value ...` string as libpq's `conninfo_parse` does.
pub(crate) fn parse_key_values(s: &str) -> Result<Vec<(String, String)>, ConnStringError> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(ConnStringError::MissingEquals);
        }
        if key.is_empty() {
            return Err(ConnStringError::MissingKeyword);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => return Err(ConnStringError::UnterminatedQuote),
                    Some('\'') => break,
                    Some('\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => return Err(ConnStringError::UnterminatedQuote),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(n) = it.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// A value as libpq reads it back: quoted when it is empty or holds a space, quote or
/// backslash.
fn quote_value(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return v.to_string();
    }
    let mut q = String::with_capacity(v.len() + 2);
    q.push('\'');
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('\'');
    q
}

/// Every setting, resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address and port of the HTTPS listener.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the TLS certificate and snapshots.
    pub data_dir: PathBuf,
    /// The database.
    pub database: Database,
    /// PEM certificate chain and key; `None` uses (and on first start creates) a self-signed
    /// certificate in `DATA_DIR/tls/`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP instead of HTTPS (only allowed on a loopback address; for tests).
    pub plaintext: bool,
    /// Password of `administrator` on the first start of an empty database (`None`: generate
    /// and print one).
    pub admin_password: Option<String>,
    /// Idle time after which a session token expires, in seconds.
    pub session_idle_secs: u64,
    /// Failed logins in a row, from any address, that lock an account for everyone
    /// (0: never; the default, since anyone could lock anyone out).
    pub lockout_after: u32,
    /// How long a locked account stays locked, in seconds.
    pub lockout_secs: u64,
    /// Failed logins in a row for one user from one address (an IPv6 /64) before each
    /// further attempt from there must wait (1 s, then 2 s, 4 s, ...).
    pub login_delay_after: u32,
    /// The longest such wait, in seconds.
    pub login_delay_max_secs: u64,
    /// Longest time to receive one request body, in seconds (408 after it).
    pub body_timeout_secs: u64,
    /// Longest time to receive a request's headers, and to keep an idle keep-alive
    /// connection, in seconds.
    pub idle_timeout_secs: u64,
    /// Most connections open at once (fewer when the descriptor limit is lower).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 /64).
    pub max_connections_per_ip: usize,
    /// Serve every metric at `/metrics` without credentials (otherwise strangers see only
    /// the HTTP request counters and latencies).
    pub metrics_public: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most items one bulk call may carry (addresses to allocate or release).
    pub max_bulk_items: usize,
    /// Write a snapshot after this many changes (0: only at shutdown).
    pub snapshot_every: u64,
    /// Log filter (`info`, `ipam_central=debug`, ...).
    pub log: String,
    /// Hash passwords with minimal cost (tests only; never in production).
    pub insecure_fast_passwords: bool,
    /// This instance's name, shown by standbys to clients whose writes they refuse
    /// (`None`: `https://HOST:PORT` of the listener).
    pub instance_name: Option<String>,
    /// The DNS and DHCP agents to connect to (the TOML file's `[[agents]]`).
    pub agents: Vec<AgentSpec>,
    /// Seconds between full synchronizations with every DNS and DHCP server (0: only on the
    /// agents' change events and on demand).
    pub sync_secs: u64,
    /// What one request's reads may cost (deadline, objects examined, heavy reads at once).
    pub read_limits: crate::limits::ReadLimits,
}

/// One agent Central connects to.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// `host:port` of the agent (DNS agents listen on 1337, DHCP agents on 4151).
    pub address: String,
    /// The shared key Central proves to the agent.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSpec")
            .field("address", &self.address)
            .field("key", &"(secret)")
            .finish()
    }
}

/// An `[[agents]]` entry of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    address: String,
    key_file: Option<PathBuf>,
    key: Option<String>,
}

impl AgentEntry {
    fn resolve(self, file: &Path) -> Result<AgentSpec, CentralError> {
        let bad = |why: String| {
            CentralError::Config(format!("{}: agent {}: {why}", file.display(), self.address))
        };
        if self.address.trim().is_empty() || !self.address.contains(':') {
            return Err(bad("address must be host:port".into()));
        }
        let key = match (&self.key_file, &self.key) {
            (Some(p), None) => std::fs::read(p)
                .map_err(|e| bad(format!("cannot read key_file {}: {e}", p.display())))?
                .trim_ascii()
                .to_vec(),
            (None, Some(k)) => k.trim().as_bytes().to_vec(),
            _ => return Err(bad("give exactly one of key_file and key".into())),
        };
        if key.len() < 16 {
            return Err(bad(format!(
                "the shared key has {} bytes; agents require at least 16",
                key.len()
            )));
        }
        Ok(AgentSpec {
            address: self.address.trim().to_string(),
            key,
        })
    }
}

/// The command line. Every flag can also come from the environment variable named in its
/// help, or from the TOML file given with `--config` (keys as the long flag names, with `_`
/// for `-`); flags win over the environment, which wins over the file.
#[derive(Debug, Parser, Default)]
#[command(
    name = "ipam-central",
    version,
    about = "ipam Central: the HTTPS API (Micetro-compatible) of the ipam engine",
    long_about = "ipam Central serves the Micetro-compatible REST API under /mmws/api/v2/ and \
/mmws/api/ over HTTPS (rustls), with /metrics (Prometheus), /health and /openapi.json.\n\n\
Settings come from a TOML file (--config), then environment variables, then flags, each \
overriding the one before. On the first start of an empty database Central creates the \
account `administrator` and prints its generated password once (or uses \
IPAM_ADMIN_PASSWORD). Without a configured certificate it creates a self-signed one in \
DATA_DIR/tls/ and prints its SHA-256 fingerprint."
)]
pub struct Args {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// TOML file with settings (keys: listen, data_dir, database, pg_schema, tls_cert,
    /// tls_key, session_idle_secs, lockout_after, lockout_secs, login_delay_after,
    /// login_delay_max_secs, body_timeout_secs, idle_timeout_secs, max_connections,
    /// max_connections_per_ip, metrics_public, max_body_bytes, max_bulk_items,
    /// snapshot_every, log, instance_name, sync_secs, request_timeout_secs, max_examined,
    /// heavy_reads, heavy_reads_per_user, and `[[agents]]` tables with address
    /// and key_file or key).
    #[arg(long, env = "IPAM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default: 0.0.0.0:1231].
    #[arg(long, env = "IPAM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database, certificate and snapshots [default: ./ipam-data].
    #[arg(long, env = "IPAM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database: `sqlite:PATH` or `postgres://user@host/db` (or a libpq key=value string
    /// such as `host=... dbname=...`) [default: sqlite:DATA_DIR/ipam.db]. Its password is
    /// never shown (in logs, errors or answers).
    #[arg(long, env = "IPAM_DATABASE", global = true, hide_env_values = true)]
    pub database: Option<String>,
    /// PostgreSQL schema for this installation's tables [default: ipam].
    #[arg(long, env = "IPAM_PG_SCHEMA")]
    pub pg_schema: Option<String>,
    /// PEM certificate chain (with --tls-key) instead of the self-signed one.
    #[arg(long, env = "IPAM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "IPAM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS. Refused unless --listen is a loopback address;
    /// meant for tests on one machine.
    #[arg(long, env = "IPAM_PLAINTEXT_LOOPBACK")]
    pub plaintext_loopback: bool,
    /// Password for `administrator` on the first start of an empty database (otherwise one
    /// is generated and printed once). Ignored afterwards.
    #[arg(long, env = "IPAM_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Seconds of inactivity after which a session token expires [default: 3600].
    #[arg(long, env = "IPAM_SESSION_IDLE_SECS")]
    pub session_idle_secs: Option<u64>,
    /// Failed logins in a row, from any address, that lock an account for everyone; 0 never
    /// locks (anyone who knows a login name could lock it) [default: 0].
    #[arg(long, env = "IPAM_LOCKOUT_AFTER")]
    pub lockout_after: Option<u32>,
    /// Seconds an account stays locked, with --lockout-after [default: 300].
    #[arg(long, env = "IPAM_LOCKOUT_SECS")]
    pub lockout_secs: Option<u64>,
    /// Failed logins in a row for one user from one client address (IPv6: one /64) before
    /// each further attempt from there must wait, 1 s after the first, then 2 s, 4 s, ...
    /// (429 with Retry-After meanwhile); a success clears the count [default: 3].
    #[arg(long, env = "IPAM_LOGIN_DELAY_AFTER")]
    pub login_delay_after: Option<u32>,
    /// The longest wait between login attempts after failures, in seconds [default: 60].
    #[arg(long, env = "IPAM_LOGIN_DELAY_MAX_SECS")]
    pub login_delay_max_secs: Option<u64>,
    /// Seconds to receive a whole request body; a slower one is answered 408 and its
    /// connection closed [default: 30].
    #[arg(long, env = "IPAM_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds to receive a request's headers, and to keep an idle keep-alive connection
    /// open [default: 30].
    #[arg(long, env = "IPAM_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Most connections open at once; more are closed as soon as they are accepted (at most
    /// the descriptor limit less 128) [default: 4096].
    #[arg(long, env = "IPAM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (IPv6: one /64); raise it
    /// when clients come through a proxy [default: 256].
    #[arg(long, env = "IPAM_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve every metric at /metrics without credentials (for a Prometheus that does not
    /// authenticate); otherwise callers without credentials see only the HTTP request
    /// metrics.
    #[arg(long, env = "IPAM_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Largest request body in bytes [default: 8388608].
    #[arg(long, env = "IPAM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most items in one bulk call [default: 100000].
    #[arg(long, env = "IPAM_MAX_BULK_ITEMS")]
    pub max_bulk_items: Option<usize>,
    /// Write a snapshot after this many changes; 0 only at shutdown [default: 1000000].
    #[arg(long, env = "IPAM_SNAPSHOT_EVERY")]
    pub snapshot_every: Option<u64>,
    /// Log filter, as in RUST_LOG [default: info].
    #[arg(long, env = "IPAM_LOG")]
    pub log: Option<String>,
    /// Cheap password hashing, for tests only.
    #[arg(long, env = "IPAM_INSECURE_FAST_PASSWORDS", hide = true)]
    pub insecure_fast_passwords: bool,
    /// Name of this instance, shown by standbys when they refuse a write (high availability
    /// on PostgreSQL) [default: https://HOSTNAME:PORT].
    #[arg(long, env = "IPAM_INSTANCE_NAME")]
    pub instance_name: Option<String>,
    /// Deadline of one request's reads in seconds; a listing or search still running then
    /// answers 503 (code 5013). NDJSON exports are exempt [default: 10].
    #[arg(long, env = "IPAM_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Most objects one request's scans may examine (regular expressions in a filter count
    /// extra); past it the request answers 422 (code 4070) [default: 2000000].
    #[arg(long, env = "IPAM_MAX_EXAMINED")]
    pub max_examined: Option<u64>,
    /// Listings and searches that scan, running at once in all [default: half the cores,
    /// at least 1].
    #[arg(long, env = "IPAM_HEAVY_READS")]
    pub heavy_reads: Option<usize>,
    /// Listings and searches that scan, running at once for one user [default: 2].
    #[arg(long, env = "IPAM_HEAVY_READS_PER_USER")]
    pub heavy_reads_per_user: Option<usize>,
}

/// Commands besides serving.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Cold standby on SQLite: copy the data directory (a consistent online copy of the
    /// database with SQLite's backup API, the newest snapshot it covers, and the TLS
    /// certificate) into DIR while Central keeps serving. Run it periodically to feed a
    /// standby machine; `promote` (or simply starting Central on DIR) activates the copy.
    Backup {
        /// Directory to write the copy into (created if needed; the previous copy there is
        /// replaced).
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a cold standby copy (integrity, schema version) and mark it active, so that
    /// `ipam-central --data-dir DIR` serves it.
    Promote,
}

/// The TOML file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    pg_schema: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    session_idle_secs: Option<u64>,
    lockout_after: Option<u32>,
    lockout_secs: Option<u64>,
    login_delay_after: Option<u32>,
    login_delay_max_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    metrics_public: Option<bool>,
    max_body_bytes: Option<usize>,
    max_bulk_items: Option<usize>,
    snapshot_every: Option<u64>,
    log: Option<String>,
    instance_name: Option<String>,
    #[serde(default)]
    agents: Vec<AgentEntry>,
    sync_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_examined: Option<u64>,
    heavy_reads: Option<usize>,
    heavy_reads_per_user: Option<usize>,
}

impl Config {
    /// Resolves settings from parsed flags (which already include the environment) and the
    /// TOML file they name.
    pub fn from_args(a: Args) -> Result<Config, CentralError> {
        let mut f: FileConfig = match &a.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    CentralError::Config(format!("cannot read {}: {e}", p.display()))
                })?;
                toml::from_str(&text)
                    .map_err(|e| CentralError::Config(format!("{}: {e}", p.display())))?
            }
            None => FileConfig::default(),
        };
        let data_dir = a
            .data_dir
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("ipam-data"));
        let schema = a
            .pg_schema
            .or(f.pg_schema)
            .unwrap_or_else(|| "ipam".to_string());
        let database = parse_database(a.database.or(f.database).as_deref(), &data_dir, schema)?;
        let listen = a
            .listen
            .or(f.listen)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 1231)));
        if a.plaintext_loopback && !listen.ip().is_loopback() {
            return Err(CentralError::Config(format!(
                "--plaintext-loopback is only allowed on a loopback address, not {listen}"
            )));
        }
        let tls = match (a.tls_cert.or(f.tls_cert), a.tls_key.or(f.tls_key)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(CentralError::Config(
                    "tls_cert and tls_key must be given together".into(),
                ))
            }
        };
        let agents = std::mem::take(&mut f.agents)
            .into_iter()
            .map(|e| e.resolve(a.config.as_deref().unwrap_or(Path::new("config"))))
            .collect::<Result<Vec<_>, _>>()?;
        let d = crate::limits::ReadLimits::default();
        let read_limits = crate::limits::ReadLimits {
            timeout: a
                .request_timeout_secs
                .or(f.request_timeout_secs)
                .map_or(d.timeout, std::time::Duration::from_secs),
            max_examined: a.max_examined.or(f.max_examined).unwrap_or(d.max_examined),
            heavy_total: a.heavy_reads.or(f.heavy_reads).unwrap_or(d.heavy_total),
            heavy_per_user: a
                .heavy_reads_per_user
                .or(f.heavy_reads_per_user)
                .unwrap_or(d.heavy_per_user),
        };
        if read_limits.timeout.is_zero()
            || read_limits.max_examined == 0
            || read_limits.heavy_total == 0
            || read_limits.heavy_per_user == 0
        {
            return Err(CentralError::Config(
                "request_timeout_secs, max_examined, heavy_reads and heavy_reads_per_user must be at least 1".into(),
            ));
        }
        let cfg = Config {
            read_limits,
            agents,
            sync_secs: f.sync_secs.unwrap_or(300),
            listen,
            data_dir,
            database,
            tls,
            plaintext: a.plaintext_loopback,
            admin_password: a.admin_password.filter(|p| !p.is_empty()),
            session_idle_secs: a.session_idle_secs.or(f.session_idle_secs).unwrap_or(3600),
            lockout_after: a.lockout_after.or(f.lockout_after).unwrap_or(0),
            lockout_secs: a.lockout_secs.or(f.lockout_secs).unwrap_or(300),
            login_delay_after: a.login_delay_after.or(f.login_delay_after).unwrap_or(3),
            login_delay_max_secs: a
                .login_delay_max_secs
                .or(f.login_delay_max_secs)
                .unwrap_or(60),
            body_timeout_secs: a.body_timeout_secs.or(f.body_timeout_secs).unwrap_or(30),
            idle_timeout_secs: a.idle_timeout_secs.or(f.idle_timeout_secs).unwrap_or(30),
            max_connections: a.max_connections.or(f.max_connections).unwrap_or(4096),
            max_connections_per_ip: a
                .max_connections_per_ip
                .or(f.max_connections_per_ip)
                .unwrap_or(256),
            metrics_public: a.metrics_public || f.metrics_public.unwrap_or(false),
            max_body_bytes: a
                .max_body_bytes
                .or(f.max_body_bytes)
                .unwrap_or(8 * 1024 * 1024),
            max_bulk_items: a.max_bulk_items.or(f.max_bulk_items).unwrap_or(100_000),
            snapshot_every: a.snapshot_every.or(f.snapshot_every).unwrap_or(1_000_000),
            log: a.log.or(f.log).unwrap_or_else(|| "info".to_string()),
            insecure_fast_passwords: a.insecure_fast_passwords,
            instance_name: a.instance_name.or(f.instance_name),
        };
        if cfg.body_timeout_secs == 0 || cfg.idle_timeout_secs == 0 {
            return Err(CentralError::Config(
                "body_timeout_secs and idle_timeout_secs must be at least 1".into(),
            ));
        }
        if cfg.max_connections == 0 || cfg.max_connections_per_ip == 0 {
            return Err(CentralError::Config(
                "max_connections and max_connections_per_ip must be at least 1".into(),
            ));
        }
        if cfg.max_bulk_items == 0 || cfg.max_body_bytes < 1024 {
            return Err(CentralError::Config(
                "max_bulk_items must be at least 1 and max_body_bytes at least 1024".into(),
            ));
        }
        Ok(cfg)
    }

    /// Settings for a test instance: loopback on an OS-chosen port, everything under `dir`.
    pub fn for_tests(dir: &Path) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.to_path_buf(),
            database: Database::Sqlite(dir.join("ipam.db")),
            tls: None,
            plaintext: false,
            admin_password: Some("admin-password".into()),
            session_idle_secs: 3600,
            lockout_after: 0,
            lockout_secs: 300,
            login_delay_after: 3,
            login_delay_max_secs: 60,
            body_timeout_secs: 30,
            idle_timeout_secs: 30,
            max_connections: 4096,
            max_connections_per_ip: 256,
            metrics_public: false,
            max_body_bytes: 1024 * 1024,
            max_bulk_items: 100_000,
            snapshot_every: 0,
            log: "warn".into(),
            insecure_fast_passwords: true,
            instance_name: None,
            agents: Vec::new(),
            sync_secs: 0,
            read_limits: crate::limits::ReadLimits::default(),
        }
    }
}

fn parse_database(
    s: Option<&str>,
    data_dir: &Path,
    schema: String,
) -> Result<Database, CentralError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Database::Sqlite(data_dir.join("ipam.db")));
    };
    if let Some(p) = s.strip_prefix("sqlite:") {
        let p = p.strip_prefix("//").unwrap_or(p);
        if p.is_empty() {
            return Err(CentralError::Config("sqlite: needs a file path".into()));
        }
        return Ok(Database::Sqlite(PathBuf::from(p)));
    }
    // A libpq key/value string names at least one of these.
    const PG_KEYS: [&str; 5] = ["host", "hostaddr", "dbname", "user", "port"];
    let postgres = url_form(s).is_some()
        || match parse_key_values(s) {
            Ok(kv) => kv.iter().any(|(k, _)| PG_KEYS.contains(&k.as_str())),
            // Never quote the string back: it may hold a password.
            Err(e) if s.contains('=') => {
                return Err(CentralError::Config(format!(
                    "the PostgreSQL connection string has {e}"
                )))
            }
            Err(_) => false,
        };
    if postgres {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(CentralError::Config(format!(
                "pg_schema {schema:?} must be letters, digits and underscores"
            )));
        }
        return Ok(Database::Postgres {
            url: s.to_string(),
            schema,
        });
    }
    Err(CentralError::Config(
        "database is neither sqlite:PATH nor a PostgreSQL connection string \
         (postgres://... or host=... dbname=...)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("ipam-central").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let c = Config::from_args(args(&[])).unwrap();
        assert_eq!(c.listen.port(), 1231);
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("ipam-data/ipam.db"))
        );
        let dir = std::env::temp_dir().join(format!("ipam-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/x\"\nlockout_after = 3\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c = Config::from_args(args(&["--config", f])).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.lockout_after, 3);
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("/tmp/x/ipam.db"))
        );
        let c = Config::from_args(args(&["--config", f, "--listen", "127.0.0.1:1"])).unwrap();
        assert_eq!(c.listen.port(), 1);
        std::fs::write(&file, "bogus = 1\n").unwrap();
        let e = Config::from_args(args(&["--config", f])).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn database_urls_and_plaintext_rule() {
        let c = Config::from_args(args(&["--database", "postgres://u@h/db"])).unwrap();
        assert_eq!(
            c.database,
            Database::Postgres {
                url: "postgres://u@h/db".into(),
                schema: "ipam".into()
            }
        );
        assert!(Config::from_args(args(&["--database", "mysql://x"])).is_err());
        let shown = Config::from_args(args(&["--database", "postgres://u:secret@h/db"]))
            .unwrap()
            .database
            .to_string();
        assert!(!shown.contains("secret"), "{shown}");
        let shown = Config::from_args(args(&["--database", "host=h password=secret dbname=d"]))
            .unwrap()
            .database
            .to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(Config::from_args(args(&["--plaintext-loopback"])).is_err());
        assert!(Config::from_args(args(&[
            "--plaintext-loopback",
            "--listen",
            "127.0.0.1:1231"
        ]))
        .is_ok());
    }

    #[test]
    fn connection_strings_are_shown_without_their_password() {
        let secret = |s: &str, hidden: &[&str]| {
            let shown = safe_connection_string(s);
            for h in hidden {
                assert!(!shown.contains(h), "{s:?} shown as {shown:?}");
            }
            assert!(!shown.contains("password"), "{s:?} shown as {shown:?}");
            let db = format!(
                "{:?}",
                Database::Postgres {
                    url: s.into(),
                    schema: "ipam".into()
                }
            );
            for h in hidden {
                assert!(!db.contains(h), "{db}");
            }
            shown
        };
        // The tester's forms: spaces around `=`, a quoted value with a space.
        assert_eq!(
            secret(
                "host=127.0.0.1 user=u password = Pg-Secret-42 dbname=test",
                &["Secret"]
            ),
            "host=127.0.0.1 user=u dbname=test"
        );
        assert_eq!(
            secret("host=h password='s3cret B' dbname=d", &["s3cret", "B'"]),
            "host=h dbname=d"
        );
        // Escapes inside and outside quotes; the other values come back as libpq reads them.
        assert_eq!(
            secret(
                r"host = h password='it\'s \\ x' application_name='a b\'c' sslpassword=k\ ey",
                &["it", "x'", "k", "ey"]
            ),
            r"host=h application_name='a b\'c'"
        );
        assert_eq!(
            parse_key_values(r"a=x\ y b='' c = 'q\\'").unwrap(),
            [("a", "x y"), ("b", ""), ("c", "q\\")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // Malformed strings are never echoed.
        for bad in ["host=h password='open", "host=h password", "= x"] {
            assert!(parse_key_values(bad).is_err(), "{bad}");
            assert_eq!(
                safe_connection_string(bad),
                "(a PostgreSQL connection string that cannot be parsed)"
            );
        }
        // URLs: the user's password, password parameters, odd characters in the password.
        assert_eq!(
            secret(
                "postgresql://app:pa55@db1:5433/ipam?sslmode=disable&password=q1",
                &["pa55", "q1"]
            ),
            "postgresql://app@db1:5433/ipam?sslmode=disable"
        );
        assert_eq!(
            secret("postgres://u:p@ss/w?x@h/db", &["ss/w", "p@", "x@"]),
            "postgres://u@h/db"
        );
        assert_eq!(secret("postgres://h/db", &[]), "postgres://h/db");
        assert_eq!(
            secret("postgres://h/db?PassWord=z&sslpassword=y", &["z", "=y"]),
            "postgres://h/db"
        );
    }

    #[test]
    fn database_strings_are_recognized_and_errors_never_quote_them() {
        for s in [
            "host = 127.0.0.1 dbname=test",
            "dbname=test",
            "user=u password=x",
            "postgresql://u@h/db",
        ] {
            let c = Config::from_args(args(&["--database", s])).unwrap();
            assert!(matches!(c.database, Database::Postgres { .. }), "{s}");
        }
        for s in [
            "host=h password='Secret-1",
            "mysql://u:Secret-1@h/db",
            "Secret-1",
        ] {
            let e = Config::from_args(args(&["--database", s]))
                .unwrap_err()
                .to_string();
            assert!(!e.contains("Secret"), "{e}");
        }
    }
}
