//! `ipam-agent-http`: the one HTTP/1.1 client of the agent's drivers: PowerDNS's API and
//! BIND's statistics channel (`ipam-agent-dns`), kea-ctrl-agent (`ipam-agent-dhcp`).
//!
//! Those servers listen on the server's host or LAN and speak plain HTTP, so this is plain
//! HTTP/1.1 on [hyper]: one request per connection (`Connection: close`), the answer's body
//! read whole (with `Content-Length`, chunked, or up to the end of the connection) up to a
//! size limit.
//!
//! The drivers are blocking (their traits are synchronous, and the agent calls them on
//! tokio's blocking pool), so [`request`] blocks too: it runs the exchange on a current-thread
//! tokio runtime made for the call (tens of microseconds, small next to a round trip) and
//! dropped after it, which closes the connection. It works from any thread that is not
//! running async code: the agent's blocking pool, a test, a benchmark.
//!
//! How long a call may take is the caller's [`Deadline`]: each step (connecting, sending the
//! request and waiting for the answer's head, each piece of the body) within the same time,
//! as socket timeouts do, or the whole exchange within one time.
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long a call may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Each step within this time: connecting (to each address), sending the request and
    /// waiting for the answer's head, each piece of the body. A large answer that keeps
    /// coming may take longer in all.
    Each(Duration),
    /// Everything, from resolving the address to the answer's last byte, within this time.
    Total(Duration),
}

/// One request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `host:port` (an address, or a name resolved by the system).
    pub addr: &'a str,
    /// `GET`, `POST`, `PATCH`, ...
    pub method: &'a str,
    /// The path and query, `/api/v1/servers/localhost/zones`.
    pub path: &'a str,
    /// Headers besides `Host`, `Connection` and, with a body, `Content-Type` and
    /// `Content-Length`.
    pub headers: &'a [(&'a str, &'a str)],
    /// A JSON body (sent as `application/json`).
    pub body: Option<&'a [u8]>,
    /// How long it may take.
    pub deadline: Deadline,
    /// The most bytes of answer body accepted.
    pub max_len: usize,
}

/// An answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The whole body, decoded from its transfer encoding.
    pub body: Vec<u8>,
}

/// Why a call got no answer. The drivers turn each into their own error, with the server and
/// the action named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address is not `host:port`, or the name did not resolve.
    #[error("resolving {addr}: {source}")]
    Resolve {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// No connection (refused, unreachable, or not within the deadline: kind `TimedOut`).
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why (the last address's error when the name has several).
        source: io::Error,
    },
    /// Connected, but the exchange did not finish within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed during the exchange (reset, broken pipe).
    #[error("{0}")]
    Io(io::Error),
    /// The server closed the connection before the answer's head.
    #[error("the server closed the connection without answering")]
    Closed,
    /// The answer is not HTTP/1.x, or it broke off.
    #[error("{0}")]
    Protocol(String),
    /// The body is larger than [`Request::max_len`].
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
}

/// Sends one request and reads the whole answer; see the crate docs. Blocking: call it from a
/// plain thread or tokio's blocking pool (`spawn_blocking`), never from async code, where
/// tokio refuses to start the call's runtime (a panic).
pub fn request(req: &Request<'_>) -> Result<Response, HttpError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HttpError::Io)?;
    rt.block_on(async {
        match req.deadline {
            Deadline::Each(_) => exchange(req).await,
            Deadline::Total(t) => tokio::time::timeout(t, exchange(req))
                .await
                .unwrap_or(Err(HttpError::Timeout(t))),
        }
    })
}

/// One step under [`Deadline::Each`]; under [`Deadline::Total`] the whole exchange is timed.
async fn step<T>(
    deadline: Deadline,
    fut: impl std::future::Future<Output = Result<T, HttpError>>,
) -> Result<T, HttpError> {
    match deadline {
        Deadline::Each(t) => tokio::time::timeout(t, fut)
            .await
            .unwrap_or(Err(HttpError::Timeout(t))),
        Deadline::Total(_) => fut.await,
    }
}

async fn exchange(req: &Request<'_>) -> Result<Response, HttpError> {
    let addrs: Vec<SocketAddr> = req
        .addr
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            addr: req.addr.to_owned(),
            source,
        })?
        .collect();
    let tcp = connect(req, &addrs).await?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(hyper_error)?;
    // Drives the connection while this call runs; ends with the call's runtime.
    tokio::spawn(conn);

    let method = hyper::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| HttpError::Protocol(format!("bad method {:?}: {e}", req.method)))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(req.path)
        .header(hyper::header::HOST, req.addr)
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in req.headers {
        builder = builder.header(*name, *value);
    }
    if req.body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(
            req.body.unwrap_or_default(),
        )))
        .map_err(|e| HttpError::Protocol(format!("bad request: {e}")))?;
    let response = step(req.deadline, async {
        sender.send_request(request).await.map_err(hyper_error)
    })
    .await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut out = Vec::new();
    loop {
        let frame = step(req.deadline, async {
            body.frame()
                .await
                .transpose()
                .map_err(|e| match hyper_error(e) {
                    HttpError::Closed => HttpError::Protocol("the body is cut short".into()),
                    HttpError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        HttpError::Protocol(format!("the body is cut short: {e}"))
                    }
                    other => other,
                })
        })
        .await?;
        let Some(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > req.max_len {
                return Err(HttpError::TooLarge(req.max_len));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Response { status, body: out })
}

/// Connects to the first address that answers.
async fn connect(req: &Request<'_>, addrs: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        let attempt = match req.deadline {
            Deadline::Each(t) => tokio::time::timeout(t, TcpStream::connect(addr))
                .await
                .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut))),
            Deadline::Total(_) => TcpStream::connect(addr).await,
        };
        match attempt {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(HttpError::Connect {
        addr: req.addr.to_owned(),
        source: last,
    })
}

/// A hyper error as one of ours: the connection's own error when there is one.
fn hyper_error(e: hyper::Error) -> HttpError {
    if e.is_incomplete_message() {
        return HttpError::Closed;
    }
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>());
    match io {
        Some(io) => HttpError::Io(io::Error::new(io.kind(), io.to_string())),
        None if e.is_parse() => HttpError::Protocol(format!("not an HTTP/1.x answer: {e}")),
        None => HttpError::Protocol(e.to_string()),
    }
}
