//! `ipam-client`: a small HTTPS client for Central's API.
//!
//! One [`Client`] is one persistent HTTP/1.1 connection (reconnected when the server closes
//! it), so a benchmark or a test can run many in parallel. TLS trust is explicit: pin the
//! server certificate's SHA-256 fingerprint (as Central prints it on start), or trust any
//! certificate for loopback tests.
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use rustls_pki_types::ServerName;

/// Why a request failed before an HTTP answer arrived.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, the TLS handshake or the HTTP exchange failed.
    #[error("{context}: {message}")]
    Transport {
        /// What the client was doing.
        context: &'static str,
        /// The error.
        message: String,
    },
    /// The answer was not the JSON it should be.
    #[error("unexpected answer (HTTP {status}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
}

fn transport(context: &'static str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport {
        context,
        message: e.to_string(),
    }
}

/// How to trust the server.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Plain HTTP (Central's loopback test mode).
    Plaintext,
    /// TLS, accepting only a certificate with this SHA-256 fingerprint (`AB:CD:...`, case
    /// and colons ignored).
    Fingerprint(String),
    /// TLS, accepting any certificate (loopback tests only).
    AnyCertificate,
    /// TLS, accepting any certificate on this first contact and remembering its
    /// fingerprint ([`Client::server_fingerprint`]) so that the caller can pin it from now
    /// on (trust on first use, as SSH does).
    FirstUse,
}

/// An HTTP answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` for an empty body).
    pub fn json(&self) -> Result<Value, ClientError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|_| ClientError::Unexpected {
            status: self.status,
            body: String::from_utf8_lossy(&self.body).into_owned(),
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection to Central.
pub struct Client {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    sender: Option<SendRequest<Full<Bytes>>>,
    auth: Option<String>,
    seen: Arc<std::sync::Mutex<Option<String>>>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr, trust: Trust) -> Result<Client, ClientError> {
        let seen: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let tls = match trust {
            Trust::Plaintext => None,
            Trust::Fingerprint(f) => Some(ipam_tls::normalize_pin(&f).ok_or_else(|| {
                transport(
                    "pinning the certificate",
                    format!("{f:?} is not a SHA-256 fingerprint (64 hex digits)"),
                )
            })?),
            Trust::AnyCertificate | Trust::FirstUse => Some(String::new()),
        }
        .map(|pin| {
            let (cfg, seen_by) = ipam_tls::pinned_client(Some(pin), &[b"http/1.1"]);
            let name = ServerName::IpAddress(addr.ip().into());
            (TlsConnector::from(cfg), name, seen_by)
        });
        let (tls, seen) = match tls {
            Some((c, n, s)) => (Some((c, n)), s),
            None => (None, seen),
        };
        let mut c = Client {
            addr,
            tls,
            sender: None,
            auth: None,
            seen,
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> Result<(), ClientError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| transport("connecting", e))?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            Some((conn, name)) => {
                let s = conn
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| transport("TLS handshake", e))?;
                handshake(s).await?
            }
            None => handshake(tcp).await?,
        };
        self.sender = Some(sender);
        Ok(())
    }

    /// SHA-256 fingerprint (`AB:CD:...`) of the certificate the server presented, over TLS.
    pub fn server_fingerprint(&self) -> Option<String> {
        self.seen.lock().expect("fingerprint lock").clone()
    }

    /// Sends the session token (`Bearer`) on every request.
    pub fn bearer(&mut self, token: &str) {
        self.auth = Some(format!("Bearer {token}"));
    }

    /// The session token in use, if any.
    pub fn session_token(&self) -> Option<&str> {
        self.auth.as_deref().and_then(|a| a.strip_prefix("Bearer "))
    }

    /// Sends HTTP Basic credentials on every request.
    pub fn basic(&mut self, user: &str, password: &str) {
        self.auth = Some(format!(
            "Basic {}",
            base64_encode(format!("{user}:{password}").as_bytes())
        ));
    }

    /// Logs in (`POST micetro/sessions`) and uses the session from now on.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        let body = serde_json::json!({"loginName": user, "password": password});
        let r = self
            .request("POST", "/mmws/api/v2/micetro/sessions", Some(&body))
            .await?;
        let v = r.json()?;
        let token = v["result"]["session"]
            .as_str()
            .ok_or_else(|| ClientError::Unexpected {
                status: r.status,
                body: r.text(),
            })?;
        self.auth = Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Sends a request with an optional JSON body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        self.request_with(method, path, body, &[]).await
    }

    /// Sends a request with extra headers.
    pub async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize"));
        self.raw(method, path, bytes, headers).await
    }

    /// Sends a request with a raw body (for tests of malformed input).
    pub async fn raw(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let ready = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.reconnect().await?;
        }
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport("building the request", e))?;
        let sender = self.sender.as_mut().expect("connected above");
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport("sending the request", e))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| transport("reading the answer", e))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            content_type,
            body,
        })
    }
}

impl Client {
    /// GETs `path` and hands its body to `on_chunk` piece by piece as it arrives (for
    /// streamed answers such as NDJSON exports); answers the status. On a non-2xx status the
    /// body is not streamed but returned whole as the error.
    pub async fn stream(
        &mut self,
        path: &str,
        mut on_chunk: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u16, ClientError> {
        let ready = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.reconnect().await?;
        }
        let mut b = hyper::Request::builder()
            .method("GET")
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        let req = b
            .body(Full::new(Bytes::new()))
            .map_err(|e| transport("building the request", e))?;
        let sender = self.sender.as_mut().expect("connected above");
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport("sending the request", e))?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        if !(200..300).contains(&status) {
            let all = body
                .collect()
                .await
                .map_err(|e| transport("reading the answer", e))?
                .to_bytes();
            return Err(ClientError::Unexpected {
                status,
                body: String::from_utf8_lossy(&all).into_owned(),
            });
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport("reading the answer", e))?;
            if let Ok(data) = frame.into_data() {
                on_chunk(&data).map_err(|e| transport("handling the answer", e))?;
            }
        }
        Ok(status)
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| transport("HTTP handshake", e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
