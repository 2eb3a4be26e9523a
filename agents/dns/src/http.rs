//! A minimal blocking HTTP/1.1 client over a std `TcpStream`: one request per connection
//! (`Connection: close`), plain HTTP (the PowerDNS API and BIND's statistics channel listen
//! on the server's host and speak no TLS), bodies with `Content-Length`, chunked, or up to
//! the end of the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{io_error, DnsError};

/// The most bytes of a response accepted (a zone of a million records is about 100 MB of
/// JSON).
const MAX_RESPONSE_LEN: u64 = 1 << 30;

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

    /// Sends one request and reads the whole response.
    pub(crate) fn request(
        &self,
        action: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, DnsError> {
        let io = |e: &std::io::Error| io_error(self.server, action, &self.label(), self.timeout, e);
        let mut stream =
            TcpStream::connect_timeout(&self.addr, self.timeout).map_err(|e| io(&e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| io(&e))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.addr
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        stream.write_all(&request).map_err(|e| io(&e))?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE_LEN)
            .read_to_end(&mut raw)
            .map_err(|e| io(&e))?;
        parse_response(&raw).map_err(|detail| self.protocol(action, detail))
    }
}

/// Parses a whole HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response ends before its headers do (no answer, or not HTTP)")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| "the response headers are not UTF-8")?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = content_length {
        rest.get(..len)
            .ok_or_else(|| format!("the body has {} of its {len} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut short")?;
        let line = std::str::from_utf8(rest.get(..line_end).unwrap_or_default())
            .map_err(|_| "a chunk size is not text")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        let data_start = line_end + 2;
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(data_start..data_start + size)
            .ok_or("a chunk is cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(data_start + size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_until_close() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}xx").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, b"{}".as_slice()));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nNot Found").unwrap();
        assert_eq!((r.status, r.body_excerpt().as_str()), (404, "Not Found"));
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
    }
}
