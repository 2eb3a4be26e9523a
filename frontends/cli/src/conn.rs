//! Connecting to Central: the configuration directory, certificate pinning on first use,
//! the stored session, and API calls with errors mapped to exit codes.
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ipam_client::Client;
use serde_json::Value;

/// Where ipamctl keeps `known_hosts` and `session.json`.
pub struct Dirs {
    dir: PathBuf,
}

impl Dirs {
    pub fn new(given: Option<PathBuf>) -> Result<Dirs> {
        let dir = match given {
            Some(d) => d,
            None => match std::env::var_os("XDG_CONFIG_HOME") {
                Some(x) if !x.is_empty() => PathBuf::from(x).join("ipamctl"),
                _ => PathBuf::from(
                    std::env::var_os("HOME").context("neither HOME nor XDG_CONFIG_HOME is set")?,
                )
                .join(".config/ipamctl"),
            },
        };
        Ok(Dirs { dir })
    }

    fn write_private(&self, name: &str, data: &str) -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The pinned fingerprint of `host:port`, if any.
    fn known(&self, hostport: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("known_hosts")).ok()?;
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(h, _)| *h == hostport)
            .map(|(_, f)| f.trim().to_string())
    }

    fn remember(&self, hostport: &str, fingerprint: &str) -> Result<()> {
        let mut text = std::fs::read_to_string(self.dir.join("known_hosts")).unwrap_or_default();
        text.push_str(&format!("{hostport} {fingerprint}\n"));
        self.write_private("known_hosts", &text)
    }

    pub fn save_session(&self, url: &str, token: &str) -> Result<()> {
        self.write_private(
            "session.json",
            &serde_json::json!({"url": url, "token": token}).to_string(),
        )
    }

    fn session(&self, url: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("session.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        (v["url"] == url).then(|| v["token"].as_str().map(str::to_string))?
    }

    pub fn forget_session(&self) -> Result<()> {
        match std::fs::remove_file(self.dir.join("session.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// How to check the server's certificate.
pub struct Trust {
    pub fingerprint: Option<String>,
    pub insecure: bool,
}

/// An API error answer, mapped to an exit code.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: u64,
    pub message: String,
    pub index: Option<u64>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (HTTP {}, code {})",
            self.message, self.status, self.code
        )
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    pub fn exit_code(&self) -> i32 {
        match (self.status, self.code) {
            (401, _) => 3,
            (_, 2049 | 16544) => 4,
            (s, _) if s >= 500 => 6,
            _ => 5,
        }
    }
}

/// A connection with credentials.
pub struct Session {
    pub client: Client,
}

/// Percent-encodes a path segment string (keeps `/`, so CIDR refs span two segments).
pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-encodes a query value (`+` and spaces too: Micetro does not read `+` as space).
pub fn encode_query(s: &str) -> String {
    encode_path(s).replace('/', "%2F")
}

async fn resolve(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("{url:?}: Central's URL starts with https://"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !hostport.ends_with(']')
    {
        hostport.to_string()
    } else {
        format!("{hostport}:1231")
    };
    let addr = tokio::net::lookup_host(&hostport)
        .await
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .with_context(|| format!("{hostport} has no address"))?;
    Ok((addr, hostport))
}

impl Session {
    /// Connects (pinning the certificate: given, known, or trusted now on first use) and
    /// sets credentials: Basic when given, else the stored session for this URL.
    pub async fn connect(
        url: &str,
        dirs: &Dirs,
        trust: &Trust,
        basic: Option<(String, String)>,
    ) -> Result<Session> {
        let (addr, hostport) = resolve(url).await?;
        let known = dirs.known(&hostport);
        let mode = match (&trust.fingerprint, trust.insecure, &known) {
            (Some(f), _, _) => ipam_client::Trust::Fingerprint(f.clone()),
            (None, true, _) => ipam_client::Trust::AnyCertificate,
            (None, false, Some(f)) => ipam_client::Trust::Fingerprint(f.clone()),
            (None, false, None) => ipam_client::Trust::FirstUse,
        };
        let first_use = matches!(mode, ipam_client::Trust::FirstUse);
        let mut client = match Client::connect(addr, mode).await {
            Ok(c) => c,
            Err(e) if known.is_some() && trust.fingerprint.is_none() => {
                return Err(anyhow::Error::from(e).context(format!(
                    "the certificate of {hostport} is not the one pinned in {} on first use; if the \
                     server's certificate was replaced on purpose, remove its line there",
                    dirs.path("known_hosts").display()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if first_use {
            if let Some(f) = client.server_fingerprint() {
                dirs.remember(&hostport, &f)?;
                eprintln!(
                    "ipamctl: first contact with {hostport}; pinned its certificate {f} in {}",
                    dirs.path("known_hosts").display()
                );
            }
        }
        match basic {
            Some((u, p)) => client.basic(&u, &p),
            None => {
                if let Some(t) = dirs.session(url) {
                    client.bearer(&t);
                }
            }
        }
        Ok(Session { client })
    }

    /// Calls the API; answers `result`, or fails with an [`ApiFailure`].
    pub async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.call_h(method, path, body, &[]).await
    }

    /// Same, with headers.
    pub async fn call_h(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value> {
        let r = self
            .client
            .request_with(method, path, body.as_ref(), headers)
            .await?;
        let v = r.json().unwrap_or(Value::Null);
        if (200..300).contains(&r.status) {
            return Ok(v["result"].clone());
        }
        let mut message = v["error"]["message"]
            .as_str()
            .map_or_else(|| r.text(), str::to_string);
        if r.status == 401 && self.client.session_token().is_none() {
            message
                .push_str(" (log in with `ipamctl login USER`, or give --user and IPAM_PASSWORD)");
        }
        Err(ApiFailure {
            status: r.status,
            code: v["error"]["code"].as_u64().unwrap_or(0),
            message,
            index: v["error"]["index"].as_u64(),
        }
        .into())
    }
}
