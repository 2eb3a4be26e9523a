//! Sending one command to Kea and reading its answer: over kea-dhcp4's unix control socket, or
//! over HTTP to kea-ctrl-agent.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
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

/// POSTs `body` to the control agent at `addr` and returns the JSON body of its answer.
fn http_post(
    ctx: Ctx<'_>,
    addr: &str,
    credentials: Option<&(String, String)>,
    body: &[u8],
    deadline: &Deadline,
) -> Result<Value, DhcpError> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|err| {
            ctx.down(format!(
                "resolving the control agent's address {addr}: {err}"
            ))
        })?
        .collect();
    let mut last_err = None;
    let mut stream = None;
    for sa in &addrs {
        match TcpStream::connect_timeout(sa, deadline.remaining(ctx)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(err) => last_err = Some(err),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        ctx.down(format!(
            "connecting to the control agent at {addr}: {}",
            last_err.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        ))
    })?;
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .set_write_timeout(Some(deadline.remaining(ctx)?))
        .map_err(|err| ctx.io(&err, deadline.total))?;
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|err| ctx.io(&err, deadline.total))?;

    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut header_end = None;
    let mut content_len = None;
    loop {
        if let (Some(end), Some(len)) = (header_end, content_len) {
            if buf.len() >= end + len {
                break;
            }
        }
        stream
            .set_read_timeout(Some(deadline.remaining(ctx)?))
            .map_err(|err| ctx.io(&err, deadline.total))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ctx.io(&err, deadline.total)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_ANSWER_LEN {
            return Err(ctx.bad_answer(format!("the answer is over {MAX_ANSWER_LEN} bytes")));
        }
        if header_end.is_none() {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                header_end = Some(pos + 4);
                content_len = header_value(buf.get(..pos).unwrap_or_default(), "content-length")
                    .and_then(|v| v.parse::<usize>().ok());
            }
        }
    }
    let end = header_end.ok_or_else(|| {
        if buf.is_empty() {
            ctx.down(format!(
                "the control agent at {addr} closed the connection without answering"
            ))
        } else {
            ctx.bad_answer("the HTTP answer has no complete header")
        }
    })?;
    let head = String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ctx.bad_answer(format!("not an HTTP status line: {}", excerpt(&head))))?;
    let body = buf.get(end..).unwrap_or_default();
    let body = match content_len {
        Some(len) => body.get(..len).unwrap_or(body),
        None => body,
    };
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

/// The value of header `name` (lower case) in an HTTP head.
fn header_value(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
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
    fn headers_and_excerpts() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12";
        assert_eq!(header_value(head, "content-length").as_deref(), Some("12"));
        assert_eq!(header_value(head, "x-missing"), None);
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
