//! HTTP to the PowerDNS API and BIND's statistics channel, through the agents' one HTTP
//! client ([`ipam_agent_http`], on hyper): one request per connection, plain HTTP (both listen
//! on the server's host and speak no TLS), each step (connect, send and wait for the answer,
//! each piece of the body) within the server's timeout.

use std::net::SocketAddr;
use std::time::Duration;

use ipam_agent_http::{Deadline, HttpError, Request};

use crate::error::{io_error, DnsError};

/// The most bytes of a response accepted (a zone of a million records is about 100 MB of
/// JSON).
const MAX_RESPONSE_LEN: usize = 1 << 30;

/// An HTTP endpoint and how to report on it.
pub(crate) struct HttpEndpoint<'a> {
    /// The server's configured name, for errors.
    pub server: &'a str,
    /// What this endpoint is, for errors (`PowerDNS API`).
    pub what: &'a str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// Extra headers sent with every request (the API key).
    pub headers: Vec<(&'static str, String)>,
}

/// A response: status and body.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text, cut to 300 characters, for error messages.
    pub(crate) fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((at, _)) => format!("{}…", text.get(..at).unwrap_or_default()),
            None => text.to_owned(),
        }
    }
}

impl HttpEndpoint<'_> {
    /// The endpoint as named in errors (`PowerDNS API http://127.0.0.1:8081`).
    pub(crate) fn label(&self) -> String {
        format!("{} http://{}", self.what, self.addr)
    }

    /// A protocol error on this endpoint.
    pub(crate) fn protocol(&self, action: &str, detail: impl Into<String>) -> DnsError {
        DnsError::Protocol {
            server: self.server.to_owned(),
            action: action.to_owned(),
            endpoint: self.label(),
            detail: detail.into(),
        }
    }

    /// Sends one request and reads the whole response. A connection that fails or times out
    /// is [`DnsError::ServerDown`] or [`DnsError::Timeout`]; an answer that is not HTTP, breaks
    /// off or is too large is [`DnsError::Protocol`].
    pub(crate) fn request(
        &self,
        action: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, DnsError> {
        let addr = self.addr.to_string();
        let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
        headers.extend(self.headers.iter().map(|(n, v)| (*n, v.as_str())));
        let answer = ipam_agent_http::request(&Request {
            addr: &addr,
            method,
            path,
            headers: &headers,
            body,
            deadline: Deadline::Each(self.timeout),
            max_len: MAX_RESPONSE_LEN,
        });
        let io = |e: &std::io::Error| io_error(self.server, action, &self.label(), self.timeout, e);
        match answer {
            Ok(r) => Ok(HttpResponse {
                status: r.status,
                body: r.body,
            }),
            Err(HttpError::Connect { source, .. } | HttpError::Resolve { source, .. }) => {
                Err(io(&source))
            }
            Err(HttpError::Io(e)) => Err(io(&e)),
            Err(HttpError::Timeout(_)) => Err(io(&std::io::ErrorKind::TimedOut.into())),
            Err(HttpError::Closed) => Err(self.protocol(
                action,
                "the response ends before its headers do (no answer, or not HTTP)",
            )),
            Err(e) => Err(self.protocol(action, e.to_string())),
        }
    }
}
