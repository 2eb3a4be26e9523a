//! Runs the `rndc` program (from bind9-utils) against named's control channel.
//!
//! The configuration (key, server, port) goes to `rndc -c /dev/stdin`, so the key is never
//! written to disk and the host's `/etc/bind/rndc.conf` is never read. Each command is a new
//! process (about 10 ms); it is killed when the timeout passes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::DnsError;
use crate::TsigKey;

/// How to run rndc against one server.
pub(crate) struct Rndc {
    pub server: String,
    pub program: PathBuf,
    pub addr: SocketAddr,
    pub key: TsigKey,
    pub timeout: Duration,
}

/// How a failed rndc command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RndcFailure {
    /// The command ran and named said no: the text after `'command' failed:` and the
    /// explanation lines named adds.
    Command(String),
    /// Anything else, already a [`DnsError`].
    Other(DnsError),
}

impl Rndc {
    fn endpoint(&self) -> String {
        format!("rndc {}", self.addr)
    }

    fn config(&self) -> String {
        format!(
            "key \"{name}\" {{ algorithm {alg}; secret \"{secret}\"; }};\n\
             options {{ default-key \"{name}\"; default-server {host}; default-port {port}; }};\n",
            name = self.key.name,
            alg = self.key.algorithm,
            secret = self.key.secret,
            host = self.addr.ip(),
            port = self.addr.port(),
        )
    }

    /// Runs `rndc ARGS...` and returns its standard output.
    pub(crate) fn run(&self, action: &str, args: &[&str]) -> Result<String, RndcFailure> {
        let local = |detail: String| {
            RndcFailure::Other(DnsError::Local {
                server: self.server.clone(),
                action: format!("{action}: running {}", self.program.display()),
                detail,
            })
        };
        let mut child = Command::new(&self.program)
            .arg("-c")
            .arg("/dev/stdin")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                local(format!(
                    "{e} (install bind9-utils, or set rndc_program to the rndc binary)"
                ))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A failed write shows as rndc's own error below.
            let _ = stdin.write_all(self.config().as_bytes());
        }
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let (status, out, err) = std::thread::scope(|scope| {
            let out = scope.spawn(|| read_all(stdout.as_mut()));
            let err = scope.spawn(|| read_all(stderr.as_mut()));
            let deadline = Instant::now() + self.timeout;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(Some(status)),
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Ok(None);
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(e);
                    }
                }
            };
            let out = out.join().unwrap_or_default();
            let err = err.join().unwrap_or_default();
            (status, out, err)
        });
        let status = status.map_err(|e| local(e.to_string()))?;
        let Some(status) = status else {
            return Err(RndcFailure::Other(DnsError::Timeout {
                server: self.server.clone(),
                action: action.to_owned(),
                endpoint: self.endpoint(),
                after: self.timeout,
            }));
        };
        if status.success() {
            return Ok(out);
        }
        Err(self.classify(action, &out, &err))
    }

    /// Sorts rndc's complaint into a failure.
    fn classify(&self, action: &str, out: &str, err: &str) -> RndcFailure {
        let text = format!("{}\n{}", err.trim(), out.trim());
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let server = self.server.clone();
        if let Some(at) = lower.find("' failed: ") {
            let detail = text.get(at + "' failed: ".len()..).unwrap_or_default();
            return RndcFailure::Command(one_line(detail));
        }
        if lower.contains("connection refused")
            || lower.contains("connect failed")
            || lower.contains("unreachable")
        {
            return RndcFailure::Other(DnsError::ServerDown {
                server,
                action: action.to_owned(),
                endpoint: self.endpoint(),
                detail: one_line(text),
            });
        }
        if lower.contains("timed out") {
            return RndcFailure::Other(DnsError::Timeout {
                server,
                action: action.to_owned(),
                endpoint: self.endpoint(),
                after: self.timeout,
            });
        }
        if lower.contains("key is invalid") || lower.contains("bad auth") {
            return RndcFailure::Other(DnsError::Refused {
                server,
                action: action.to_owned(),
                reason: format!(
                    "named's control channel {} rejected rndc key {:?} (wrong secret or \
                     algorithm, or the controls statement does not allow this key or address)",
                    self.addr, self.key.name
                ),
            });
        }
        RndcFailure::Other(DnsError::ServerFailure {
            server,
            action: action.to_owned(),
            reason: format!("rndc failed: {}", one_line(text)),
        })
    }
}

fn read_all<R: Read>(reader: Option<&mut R>) -> String {
    let mut text = String::new();
    if let Some(r) = reader {
        let _ = r.read_to_string(&mut text);
    }
    text
}

/// Joins lines with "; " for one-line messages.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam_agent_proto::RemoteErrorCode;

    fn rndc() -> Rndc {
        Rndc {
            server: "ns1".into(),
            program: "rndc".into(),
            addr: "127.0.0.1:953".parse().unwrap(),
            key: TsigKey::hmac_sha256("rndc-key", "c2VjcmV0"),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn failures_are_sorted() {
        let r = rndc();
        assert_eq!(
            r.classify(
                "x",
                "",
                "rndc: 'zonestatus' failed: not found\nno matching zone 'a' in any view\n"
            ),
            RndcFailure::Command("not found; no matching zone 'a' in any view".into())
        );
        let code = |f: RndcFailure| match f {
            RndcFailure::Other(e) => e.code(),
            RndcFailure::Command(_) => RemoteErrorCode::Unknown,
        };
        assert_eq!(
            code(r.classify(
                "x",
                "",
                "rndc: connect failed: 127.0.0.1#953: connection refused"
            )),
            RemoteErrorCode::ServerDown
        );
        assert_eq!(
            code(r.classify(
                "x",
                "",
                "rndc: connection to remote host closed.\n* or the key is invalid."
            )),
            RemoteErrorCode::Refused
        );
        assert!(r.config().contains("default-port 953;"));
    }
}
