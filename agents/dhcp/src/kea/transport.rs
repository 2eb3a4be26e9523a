//! Sending one command to Kea and reading its answer: over kea-dhcp4's unix control socket, or
//! over HTTP to kea-ctrl-agent (with the agents' one HTTP client, [`ipam_agent_http`], on
//! hyper), the whole command within the driver's timeout.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ipam_agent_http::{Deadline as HttpDeadline, HttpError, Request};
use serde_json::{json, Value};

use crate::error::{Ctx, DhcpError};

/// The largest answer accepted from Kea (a `config-get` of a big configuration, a lease page).
const MAX_ANSWER_LEN: usize = 256 * 1024 * 1024;

/// Where the Kea driver sends its commands. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeaEndpoint {
    /// kea-dhcp4's own unix control socket (`control-socket.socket-name` in its configuration).
    /// The agent must run on the server's host with permission to open the socket.
    UnixSocket(PathBuf),
    /// kea-ctrl-agent's HTTP endpoint (plain HTTP/1.1, no TLS), which forwards to kea-dhcp4
    /// (the driver adds `"service": ["dhcp4"]`).
    ControlAgent {
        /// `host:port`, like `127.0.0.1:8000`.
        addr: String,
        /// User and password for HTTP basic authentication, when the control agent asks for
        /// them (`authentication.clients`).
        credentials: Option<(String, String)>,
    },
}

impl std::fmt::Debug for KeaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeaEndpoint::UnixSocket(path) => f.debug_tuple("UnixSocket").field(path).finish(),
            KeaEndpoint::ControlAgent { addr, credentials } => f
                .debug_struct("ControlAgent")
                .field("addr", addr)
                .field(
                    "credentials",
                    &credentials.as_ref().map(|(user, _)| (user, "<hidden>")),
                )
                .finish(),
        }
    }
}

/// Kea's answer to one command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// 0 success, 1 error, 2 unsupported command, 3 empty (nothing found), 4 conflict.
    pub result: i64,
    /// Kea's explanation.
    pub text: String,
    /// The data returned, when any.
    pub arguments: Option<Value>,
}

/// Sends `command` with `arguments` to `endpoint` and returns Kea's answer, whatever its
/// result code. Transport failures become [`DhcpError::ServerDown`] or [`DhcpError::Timeout`];
/// an answer that is not Kea's JSON becomes [`DhcpError::BadAnswer`].
pub(crate) fn send(
    ctx: Ctx<'_>,
    endpoint: &KeaEndpoint,
    timeout: Duration,
    command: &str,
    arguments: Option<Value>,
) -> Result<Answer, DhcpError> {
    let deadline = Deadline::new(timeout);
    let mut request = json!({ "command": command });
    if let Some(arguments) = arguments {
        request["arguments"] = arguments;
    }
    let answer = match endpoint {
        KeaEndpoint::UnixSocket(path) => {
            let body = serde_json::to_vec(&request)
                .map_err(|err| ctx.bad_answer(format!("encoding the command: {err}")))?;
            let mut stream = UnixStream::connect(path).map_err(|err| {
                ctx.down(format!(
                    "connecting to the control socket {}: {err}",
                    path.display()
                ))
            })?;
            stream
                .set_write_timeout(Some(deadline.remaining(ctx)?))
                .map_err(|err| ctx.io(&err, timeout))?;
            stream
                .write_all(&body)
                .map_err(|err| ctx.io(&err, timeout))?;
            read_json(ctx, &mut stream, &deadline)?
        }
        KeaEndpoint::ControlAgent { addr, credentials } => {
            request["service"] = json!(["dhcp4"]);
            let body = serde_json::to_vec(&request)
                .map_err(|err| ctx.bad_answer(format!("encoding the command: {err}")))?;
            let value = http_post(ctx, addr, credentials.as_ref(), &body, &deadline)?;
            // The control agent answers with an array, one entry per service.
            match value {
                Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
                Value::Object(_) => value,
                other => {
                    return Err(ctx.bad_answer(format!(
                        "expected a JSON array with one answer, got {}",
                        excerpt(&other.to_string())
                    )))
                }
            }
        }
    };
    let result = answer
        .get("result")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ctx.bad_answer(format!(
                "no numeric \"result\" in {}",
                excerpt(&answer.to_string())
            ))
        })?;
    let text = answer
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if matches!(endpoint, KeaEndpoint::ControlAgent { .. })
        && result == 1
        && text.contains("unable to forward command")
    {
        return Err(ctx.down(format!("the control agent says: {text}")));
    }
    let arguments = match answer {
        Value::Object(mut map) => map.remove("arguments"),
        _ => None,
    };
    Ok(Answer {
        result,
        text,
        arguments,
    })
}

/// An absolute time limit for one command.
struct Deadline {
    end: Instant,
    total: Duration,
}

impl Deadline {
    fn new(total: Duration) -> Deadline {
        Deadline {
            end: Instant::now() + total,
            total,
        }
    }

    /// The time left, at least 1 ms; [`DhcpError::Timeout`] once it has passed.
    fn remaining(&self, ctx: Ctx<'_>) -> Result<Duration, DhcpError> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ctx.timeout(self.total));
        }
        Ok(left.max(Duration::from_millis(1)))
    }
}

/// Reads one JSON value: until the peer closes the connection or the bytes read so far form a
/// complete JSON document, whichever comes first (Kea closes after one answer, but a complete
/// document is enough).
fn read_json(
    ctx: Ctx<'_>,
    stream: &mut UnixStream,
    deadline: &Deadline,
) -> Result<Value, DhcpError> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        stream
            .set_read_timeout(Some(deadline.remaining(ctx)?))
            .map_err(|err| ctx.io(&err, deadline.total))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ctx.io(&err, deadline.total)),
        };
        if n == 0 {
            return serde_json::from_slice(&buf).map_err(|err| {
                if buf.is_empty() {
                    ctx.down("the server closed the control socket without answering")
                } else {
                    ctx.bad_answer(format!("the answer is not JSON: {err}"))
                }
            });
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_ANSWER_LEN {
            return Err(ctx.bad_answer(format!("the answer is over {MAX_ANSWER_LEN} bytes")));
        }
        let ends_object = buf
            .iter()
            .rev()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'}' || b == b']');
        if ends_object {
            if let Ok(value) = serde_json::from_slice(&buf) {
                return Ok(value);
            }
        }
    }
}

/// POSTs `body` to the control agent at `addr` (through the agents' HTTP client,
/// [`ipam_agent_http`]) and returns the JSON body of its answer.
fn http_post(
    ctx: Ctx<'_>,
    addr: &str,
    credentials: Option<&(String, String)>,
    body: &[u8],
    deadline: &Deadline,
) -> Result<Value, DhcpError> {
    let authorization = credentials.map(|(user, password)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    });
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let answer = ipam_agent_http::request(&Request {
        addr,
        method: "POST",
        path: "/",
        headers: &headers,
        body: Some(body),
        deadline: HttpDeadline::Total(deadline.remaining(ctx)?),
        max_len: MAX_ANSWER_LEN,
    })
    .map_err(|err| match err {
        HttpError::Resolve { source, .. } => ctx.down(format!(
            "resolving the control agent's address {addr}: {source}"
        )),
        HttpError::Connect { source, .. } => ctx.down(format!(
            "connecting to the control agent at {addr}: {source}"
        )),
        HttpError::Timeout(_) => ctx.timeout(deadline.total),
        HttpError::Io(err) => ctx.io(&err, deadline.total),
        HttpError::Closed => ctx.down(format!(
            "the control agent at {addr} closed the connection without answering"
        )),
        HttpError::TooLarge(_) => {
            ctx.bad_answer(format!("the answer is over {MAX_ANSWER_LEN} bytes"))
        }
        other => ctx.bad_answer(format!("the HTTP answer: {other}")),
    })?;
    let status = answer.status;
    let body = answer.body.as_slice();
    match status {
        200 => serde_json::from_slice(body)
            .map_err(|err| ctx.bad_answer(format!("the HTTP body is not JSON: {err}"))),
        401 | 403 => Err(ctx.refused(format!(
            "the control agent at {addr} answered HTTP {status}: the user or password is wrong \
             or missing"
        ))),
        _ => Err(ctx.refused(format!(
            "the control agent at {addr} answered HTTP {status}: {}",
            excerpt(&String::from_utf8_lossy(body))
        ))),
    }
}

/// The start of a long text, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", text.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let endpoint = KeaEndpoint::ControlAgent {
            addr: "127.0.0.1:8000".into(),
            credentials: Some(("kea".into(), "pw-123".into())),
        };
        let shown = format!("{endpoint:?}");
        assert!(
            shown.contains("kea") && !shown.contains("pw-123"),
            "{shown}"
        );
    }

    #[test]
    fn excerpts() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(300);
        assert!(excerpt(&long).ends_with("..."));
    }

    #[test]
    fn missing_socket_is_server_down() {
        let ctx = Ctx::new("kea1", "status-get");
        let err = send(
            ctx,
            &KeaEndpoint::UnixSocket("/nonexistent/kea4.sock".into()),
            Duration::from_secs(1),
            "status-get",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, DhcpError::ServerDown { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/kea4.sock"));
    }
}
