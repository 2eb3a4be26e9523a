//! Central's side of the link: connect to an agent over TLS (pinning its certificate), prove
//! the shared key, then send requests, many at a time, matched to their answers by id.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipam_agent_proto::{
    answer_hello, verify_agent, EventBody, Message, RemoteError, Request, RequestBody,
    ResponseBody, Welcome, SUPPORTED_VERSIONS,
};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_rustls::TlsConnector;

use crate::pins::{PinCheck, Pins};
use crate::wire::{self, Reader, WireError};

/// Where and how to reach one agent.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// `host:port` of the agent.
    pub addr: String,
    /// The shared key.
    pub key: Vec<u8>,
    /// Central's name, as the agent logs it.
    pub central_name: String,
    /// Largest frame accepted or sent.
    pub max_frame_len: u32,
    /// A ping after this long without a message from the agent.
    pub heartbeat: Duration,
    /// The link is dead after this long without any message.
    pub idle_timeout: Duration,
    /// Time to connect and shake hands.
    pub connect_timeout: Duration,
    /// Time a request may take.
    pub request_timeout: Duration,
}

impl LinkConfig {
    /// Defaults for the rest: 16 MiB frames, ping after 10 s, dead after 35 s, 10 s to
    /// connect, 120 s per request.
    pub fn new(addr: impl Into<String>, key: Vec<u8>, central_name: impl Into<String>) -> Self {
        LinkConfig {
            addr: addr.into(),
            key,
            central_name: central_name.into(),
            max_frame_len: ipam_agent_proto::DEFAULT_MAX_FRAME_LEN,
            heartbeat: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(35),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Why a link or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The agent could not be reached or the connection broke.
    #[error("agent {addr}: {message}")]
    Down {
        /// The agent.
        addr: String,
        /// What happened.
        message: String,
    },
    /// The agent's certificate is not the one pinned for it.
    #[error("agent {addr} presented certificate {got}, but {pinned} is pinned for it: refused (if the agent was reinstalled on purpose, remove its line from {file})")]
    ChangedCertificate {
        /// The agent.
        addr: String,
        /// The fingerprint presented.
        got: String,
        /// The fingerprint pinned.
        pinned: String,
        /// The pin file.
        file: String,
    },
    /// The agent refused Central (wrong key, no common version).
    #[error("agent {addr} refused Central: {reason}")]
    Refused {
        /// The agent.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The request reached the agent, which answered an error (its server's, or its own).
    #[error("{0}")]
    Remote(RemoteError),
    /// The link closed after the request was sent and before its answer came: the agent may
    /// have carried it out.
    #[error("agent {addr}: the link closed before the answer came ({message}); the request may have been carried out")]
    Interrupted {
        /// The agent.
        addr: String,
        /// Why the link closed.
        message: String,
    },
    /// No answer in time.
    #[error("agent {addr}: no answer within {after:?}")]
    Timeout {
        /// The agent.
        addr: String,
        /// The time allowed.
        after: Duration,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<ResponseBody, RemoteError>>>>>;

/// One live connection to an agent.
#[derive(Clone)]
pub struct AgentLink {
    addr: String,
    welcome: Arc<Welcome>,
    fingerprint: String,
    tx: mpsc::Sender<Message>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    events: broadcast::Sender<EventBody>,
    closed: Arc<Mutex<Option<String>>>,
    request_timeout: Duration,
}

impl std::fmt::Debug for AgentLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLink")
            .field("addr", &self.addr)
            .field("agent", &self.welcome.agent_name)
            .finish()
    }
}

impl AgentLink {
    /// The agent's `welcome`: its name, roles and servers.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The agent certificate's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Why the link ended, once it has.
    pub fn closed(&self) -> Option<String> {
        self.closed.lock().expect("closed lock").clone()
    }

    /// Events the agent sends (changes on its servers).
    pub fn events(&self) -> broadcast::Receiver<EventBody> {
        self.events.subscribe()
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, body: RequestBody) -> Result<ResponseBody, LinkError> {
        if let Some(why) = self.closed() {
            return Err(self.down(why));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        // Closed meanwhile: its waiters were already failed, so this one would wait in vain.
        if let Some(why) = self.closed() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(self.down(why));
        }
        // Queueing and answering share one deadline: a full queue (an agent that stopped
        // reading) cannot hold the caller longer than an unanswered request.
        let exchange = async {
            if self
                .tx
                .send(Message::Request(Request { id, body }))
                .await
                .is_err()
            {
                return Err(false);
            }
            rx.await.map_err(|_| true)
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(r)) => r.map_err(LinkError::Remote),
            Ok(Err(sent)) => {
                self.pending.lock().expect("pending lock").remove(&id);
                let why = self.closed().unwrap_or_else(|| "the link closed".into());
                if sent {
                    // The agent may have carried it out before the link went.
                    Err(LinkError::Interrupted {
                        addr: self.addr.clone(),
                        message: why,
                    })
                } else {
                    Err(self.down(why))
                }
            }
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                Err(LinkError::Timeout {
                    addr: self.addr.clone(),
                    after: self.request_timeout,
                })
            }
        }
    }

    fn down(&self, message: String) -> LinkError {
        LinkError::Down {
            addr: self.addr.clone(),
            message,
        }
    }
}

/// Connects to an agent: TLS with its certificate checked against `pins` (pinned on first
/// contact, refused when changed), the handshake, then a task that runs the connection.
pub async fn connect(cfg: &LinkConfig, pins: &Pins) -> Result<AgentLink, LinkError> {
    let addr = cfg.addr.clone();
    let down = |m: String| LinkError::Down {
        addr: addr.clone(),
        message: m,
    };
    let (tls_cfg, seen) = ipam_tls::pinned_client(None, &[]);
    let host = cfg.addr.rsplit_once(':').map_or(cfg.addr.as_str(), |h| h.0);
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| down(format!("bad host name: {e}")))?;
    let t = cfg.connect_timeout;
    let tls = tokio::time::timeout(t, async {
        let tcp = TcpStream::connect(&cfg.addr)
            .await
            .map_err(|e| down(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(tls_cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| down(format!("TLS handshake failed: {e}")))
    })
    .await
    .map_err(|_| down(format!("no connection within {t:?}")))??;
    // The certificate, before a single byte of ours is sent.
    let got = seen
        .lock()
        .expect("seen lock")
        .clone()
        .ok_or_else(|| down("no certificate seen".into()))?;
    // Compared now; a first pin is saved only once the agent has welcomed Central, so a
    // server that answers at the address but fails the handshake is never pinned.
    let first_contact = match pins.compare(&cfg.addr, &got) {
        PinCheck::Same => false,
        PinCheck::New => true,
        PinCheck::Changed(pinned) => {
            return Err(LinkError::ChangedCertificate {
                addr: cfg.addr.clone(),
                got,
                pinned,
                file: pins.file(),
            })
        }
    };
    let binding = wire::binding(tls.get_ref().1).map_err(|e| down(e.to_string()))?;
    let (r, mut w) = tokio::io::split(tls);
    let max = cfg.max_frame_len;
    let mut reader = Reader::new(r, wire::HANDSHAKE_MAX_FRAME_LEN.min(max));
    let hello = match tokio::time::timeout(t, reader.next()).await {
        Err(_) => return Err(down(format!("no hello within {t:?}"))),
        Ok(Ok(Message::Hello(h))) => h,
        Ok(Ok(other)) => return Err(down(format!("expected hello, got {}", other.name()))),
        Ok(Err(e)) => return Err(down(e.to_string())),
    };
    hello
        .validate()
        .map_err(|e| down(format!("bad hello: {e}")))?;
    let auth = match answer_hello(
        &cfg.key,
        &binding,
        &cfg.central_name,
        SUPPORTED_VERSIONS,
        &hello,
    ) {
        Ok(a) => a,
        Err(e) => {
            let reason = wire::refuse(&mut w, e.to_string(), max).await;
            return Err(LinkError::Refused {
                addr: cfg.addr.clone(),
                reason,
            });
        }
    };
    wire::write(&mut w, &Message::Auth(auth.clone()), max)
        .await
        .map_err(|e| down(e.to_string()))?;
    let welcome = match tokio::time::timeout(t, reader.next()).await {
        Ok(Ok(Message::Welcome(welcome))) => {
            // The agent proves the key too: a server at the agent's address that does not
            // hold it is refused (and never pinned).
            if welcome.version != auth.version
                || verify_agent(
                    &cfg.key,
                    &binding,
                    &auth,
                    &welcome.agent_name,
                    &welcome.proof,
                )
                .is_err()
            {
                return Err(LinkError::Refused {
                    addr: cfg.addr.clone(),
                    reason: "the agent's welcome does not prove the shared key: not the agent, or another key".into(),
                });
            }
            welcome
                .validate()
                .map_err(|e| down(format!("bad welcome: {e}")))?;
            if first_contact {
                pins.remember(&cfg.addr, &got);
                tracing::info!(
                    agent = cfg.addr,
                    fingerprint = got,
                    "agent certificate pinned on first contact"
                );
            }
            welcome
        }
        Ok(Ok(Message::Refused { reason })) => {
            return Err(LinkError::Refused {
                addr: cfg.addr.clone(),
                reason,
            })
        }
        Ok(Ok(other)) => return Err(down(format!("expected welcome, got {}", other.name()))),
        Ok(Err(WireError::Closed)) => {
            return Err(LinkError::Refused {
                addr: cfg.addr.clone(),
                reason: "the agent closed the connection during the handshake".into(),
            })
        }
        Ok(Err(e)) => return Err(down(e.to_string())),
        Err(_) => return Err(down(format!("no welcome within {t:?}"))),
    };

    let mut reader = reader
        .relimit(max)
        .map_err(|e| down(format!("after the handshake: {e}")))?;
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    let link = AgentLink {
        addr: cfg.addr.clone(),
        welcome: Arc::new(welcome),
        fingerprint: got,
        tx: tx.clone(),
        pending: Arc::default(),
        next_id: Arc::new(AtomicU64::new(1)),
        events: broadcast::channel(256).0,
        closed: Arc::default(),
        request_timeout: cfg.request_timeout,
    };
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if wire::write(&mut w, &m, max).await.is_err() {
                break;
            }
        }
    });
    let l = link.clone();
    let (heartbeat, idle) = (cfg.heartbeat, cfg.idle_timeout);
    tokio::spawn(async move {
        let why = run(&l, &mut reader, &tx, heartbeat, idle).await;
        tracing::warn!(agent = l.addr, "agent link closed: {why}");
        *l.closed.lock().expect("closed lock") = Some(why.clone());
        // Fail what is still waiting, and close the connection (the writer holds its
        // sending half; the reader's half goes with this task).
        l.pending.lock().expect("pending lock").clear();
        writer.abort();
    });
    Ok(link)
}

async fn run<R: tokio::io::AsyncRead + Unpin>(
    l: &AgentLink,
    reader: &mut Reader<R>,
    tx: &mpsc::Sender<Message>,
    heartbeat: Duration,
    idle: Duration,
) -> String {
    let mut nonce = 0u64;
    let mut silent = Duration::ZERO;
    loop {
        let m = match tokio::time::timeout(heartbeat, reader.next()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return e.to_string(),
            Err(_) => {
                silent += heartbeat;
                if silent >= idle {
                    return format!("no message from the agent for {silent:?}");
                }
                nonce += 1;
                // Never wait on a full queue here: the silence check must keep running.
                if let Err(mpsc::error::TrySendError::Closed(_)) =
                    tx.try_send(Message::Ping { nonce })
                {
                    return "the writer stopped".into();
                }
                continue;
            }
        };
        silent = Duration::ZERO;
        match m {
            Message::Response(r) => {
                let waiter = l.pending.lock().expect("pending lock").remove(&r.id);
                if let Some(w) = waiter {
                    let _ = w.send(r.result);
                }
            }
            Message::Event { body } => {
                let _ = l.events.send(body);
            }
            Message::Ping { nonce } => {
                if let Err(mpsc::error::TrySendError::Closed(_)) =
                    tx.try_send(Message::Pong { nonce })
                {
                    return "the writer stopped".into();
                }
            }
            Message::Pong { .. } => {}
            other => return format!("unexpected {} from the agent", other.name()),
        }
    }
}

/// Keeps a link to one agent up: connects, and after a failure or a closed link connects
/// again with exponential backoff (0.5 s doubling to 30 s). A changed certificate is not
/// retried faster than the longest backoff.
pub struct Supervisor {
    current: Arc<Mutex<Result<AgentLink, String>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Supervisor {
    /// Starts keeping the link up.
    pub fn spawn(cfg: LinkConfig, pins: Pins) -> Supervisor {
        let current: Arc<Mutex<Result<AgentLink, String>>> =
            Arc::new(Mutex::new(Err("not connected yet".into())));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let cur = current.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let wait = match connect(&cfg, &pins).await {
                    Ok(link) => {
                        backoff = Duration::from_millis(500);
                        *cur.lock().expect("link lock") = Ok(link.clone());
                        while link.closed().is_none() {
                            tokio::select! {
                                _ = stopped.changed() => return,
                                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                            }
                        }
                        *cur.lock().expect("link lock") = Err(link.closed().unwrap_or_default());
                        backoff
                    }
                    Err(e) => {
                        tracing::warn!(agent = cfg.addr, "{e}");
                        let changed = matches!(e, LinkError::ChangedCertificate { .. });
                        *cur.lock().expect("link lock") = Err(e.to_string());
                        if changed {
                            Duration::from_secs(30)
                        } else {
                            backoff
                        }
                    }
                };
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
        Supervisor { current, stop }
    }

    /// The live link, or why there is none.
    pub fn link(&self) -> Result<AgentLink, String> {
        self.current.lock().expect("link lock").clone()
    }

    /// Sends a request on the live link (a clear error when the agent is down).
    pub async fn request(&self, addr: &str, body: RequestBody) -> Result<ResponseBody, LinkError> {
        match self.link() {
            Ok(l) => l.request(body).await,
            Err(message) => Err(LinkError::Down {
                addr: addr.to_string(),
                message,
            }),
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
