//! The agent's side of the link: a TLS listener, the handshake, and requests dispatched to
//! the drivers.
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipam_agent_proto::{
    check_auth, new_challenge, prove_agent, EventBody, Hello, ManagedServer, Message, RemoteError,
    RemoteErrorCode, RequestBody, Response, ResponseBody, Role, Welcome, SUPPORTED_VERSIONS,
};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use ipam_agent_link::wire::{self, binding, Reader, WireError};

/// Connections in the handshake at once, in all and from one source (an IPv4 address or an
/// IPv6 /64): a flood from one source cannot take the places Central needs to reconnect.
const MAX_HANDSHAKES: usize = 256;
const MAX_HANDSHAKES_PER_SOURCE: usize = 8;

/// The places in the handshake: [`MAX_HANDSHAKES`] in all, [`MAX_HANDSHAKES_PER_SOURCE`]
/// per source ([`source_of`]).
struct Handshakes {
    all: Arc<Semaphore>,
    per_source: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a connection got no place in the handshake.
#[derive(Debug, PartialEq, Eq)]
enum NoPlace {
    /// [`MAX_HANDSHAKES`] are in progress.
    All,
    /// [`MAX_HANDSHAKES_PER_SOURCE`] are in progress from this source.
    Source,
}

impl Handshakes {
    fn new() -> Handshakes {
        Handshakes {
            all: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            per_source: Arc::default(),
        }
    }

    /// A place for a connection from `peer`, given back when the slot is dropped.
    fn enter(&self, peer: IpAddr) -> Result<HandshakeSlot, NoPlace> {
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| NoPlace::All)?;
        let source = source_of(peer);
        let mut m = self.per_source.lock().expect("handshake sources lock");
        let n = m.entry(source).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_SOURCE {
            return Err(NoPlace::Source);
        }
        *n += 1;
        Ok(HandshakeSlot {
            _all: all,
            source,
            per_source: self.per_source.clone(),
        })
    }
}

/// The source a connection counts against: its IPv4 address, or its IPv6 address's /64 (the
/// least a site or a host is given, so one attacker may hold every address in it). An
/// IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, an IPv4 client of a dual-stack listener) is
/// its IPv4 address.
fn source_of(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & !(u64::MAX as u128))),
    }
}

/// A place in the handshake, given back when dropped.
struct HandshakeSlot {
    _all: tokio::sync::OwnedSemaphorePermit,
    source: IpAddr,
    per_source: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut m = self.per_source.lock().expect("handshake sources lock");
        if let Some(n) = m.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.source);
            }
        }
    }
}

/// Requests of one connection received and not yet answered, before reading pauses.
const QUEUED: usize = 1024;

/// What the agent does with requests: the DNS and DHCP drivers behind it. Calls run on
/// tokio's blocking pool (drivers do blocking I/O), several at a time.
pub trait Handler: Send + Sync + 'static {
    /// The servers it manages (sent in `welcome`, once Central has proved the key).
    fn servers(&self) -> Vec<ManagedServer>;
    /// Carries out one request.
    fn handle(&self, body: RequestBody) -> Result<ResponseBody, RemoteError>;
}

/// The agent's settings for the link.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The agent's name (its host name by default), told to a Central that proved the key.
    pub name: String,
    /// What it does, told to a Central that proved the key.
    pub roles: Vec<Role>,
    /// The shared key Central must prove.
    pub key: Vec<u8>,
    /// Largest frame accepted or sent.
    pub max_frame_len: u32,
    /// A ping is sent after this long without a message from Central.
    pub heartbeat: Duration,
    /// The connection is closed after this long without any message from Central.
    pub idle_timeout: Duration,
    /// Time for the TLS handshake and the protocol handshake.
    pub handshake_timeout: Duration,
    /// Requests carried out at once on one connection.
    pub max_in_flight: usize,
    /// Changes seen on the servers ([`crate::drivers::Drivers::watch`]), sent to every
    /// connected Central as `event` messages.
    pub events: Option<broadcast::Sender<EventBody>>,
}

impl AgentConfig {
    /// Defaults for `name`, `roles` and `key`: 16 MiB frames, a ping after 10 s of silence,
    /// closed after 35 s, 10 s to shake hands, 32 requests at once.
    pub fn new(name: impl Into<String>, roles: Vec<Role>, key: Vec<u8>) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            roles,
            key,
            max_frame_len: ipam_agent_proto::DEFAULT_MAX_FRAME_LEN,
            heartbeat: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(35),
            handshake_timeout: Duration::from_secs(10),
            max_in_flight: 32,
            events: None,
        }
    }
}

/// Accepts connections until `shutdown` completes. Each connection is served on its own
/// task; one that fails is closed and logged, the others go on.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    cfg: Arc<AgentConfig>,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let handshakes = Handshakes::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        // Connections still shaking hands are bounded, in all and per source (an IPv4
        // address, an IPv6 /64): past a limit a new one is closed at once, so one flooding
        // source cannot take the places Central needs to reconnect.
        let permit = match handshakes.enter(peer.ip()) {
            Ok(p) => p,
            Err(NoPlace::All) => {
                tracing::warn!(%peer, "{MAX_HANDSHAKES} handshakes already in progress: connection closed");
                continue;
            }
            Err(NoPlace::Source) => {
                tracing::warn!(%peer, "{MAX_HANDSHAKES_PER_SOURCE} handshakes from this source already in progress: connection closed");
                continue;
            }
        };
        let (acceptor, cfg, handler) = (acceptor.clone(), cfg.clone(), handler.clone());
        tokio::spawn(async move {
            match connection(acceptor, tcp, peer, cfg, handler, permit).await {
                Ok(()) | Err(WireError::Closed) => tracing::info!(%peer, "Central disconnected"),
                Err(e) => tracing::warn!(%peer, "connection closed: {e}"),
            }
        });
    }
}

pub(crate) fn io_err(msg: String) -> WireError {
    WireError::Io(std::io::Error::other(msg))
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    cfg: Arc<AgentConfig>,
    handler: Arc<dyn Handler>,
    handshake: HandshakeSlot,
) -> Result<(), WireError> {
    let hs = cfg.handshake_timeout;
    let tls = tokio::time::timeout(hs, acceptor.accept(tcp))
        .await
        .map_err(|_| io_err(format!("no TLS handshake within {hs:?}")))??;
    let binding = binding(tls.get_ref().1)?;
    let (r, mut w) = tokio::io::split(tls);
    // Until Central has proved the key, frames are small: an unauthenticated peer cannot
    // make the agent hold more than this per connection.
    let mut reader = Reader::new(r, wire::HANDSHAKE_MAX_FRAME_LEN.min(cfg.max_frame_len));
    let max = cfg.max_frame_len;
    let challenge = new_challenge().map_err(|e| io_err(e.to_string()))?;
    // Nothing that tells who the agent is before Central proves the key: the name, roles and
    // servers are told in `welcome`.
    let hello = Hello {
        versions: SUPPORTED_VERSIONS.to_vec(),
        challenge,
    };
    wire::write(&mut w, &Message::Hello(hello.clone()), max).await?;
    let auth = match tokio::time::timeout(hs, reader.next()).await {
        Err(_) => return Err(io_err(format!("no auth within {hs:?}"))),
        Ok(Ok(Message::Auth(a))) => a,
        Ok(Ok(other)) => {
            let reason =
                wire::refuse(&mut w, format!("expected auth, got {}", other.name()), max).await;
            return Err(io_err(reason));
        }
        Ok(Err(e)) => return Err(e),
    };
    match check_auth(&cfg.key, &binding, &hello, &auth) {
        Ok(version) => {
            reader = reader.relimit(max)?;
            drop(handshake);
            let proof = prove_agent(&cfg.key, &binding, &auth, &cfg.name)
                .map_err(|e| io_err(e.to_string()))?;
            let welcome = Message::Welcome(Welcome {
                version,
                proof,
                agent_name: cfg.name.clone(),
                roles: cfg.roles.clone(),
                servers: handler.servers(),
            });
            wire::write(&mut w, &welcome, max).await?;
            tracing::info!(%peer, central = auth.central_name, version, "Central connected");
        }
        Err(e) => {
            let reason = wire::refuse(&mut w, format!("refused: {e}"), max).await;
            tracing::warn!(%peer, central = auth.central_name, "{reason}");
            return Err(io_err(reason));
        }
    }

    // Answers go through one writer task, in the order they are ready.
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            wire::write(&mut w, &m, max).await?;
        }
        Ok::<(), WireError>(())
    });
    // Events from the watcher go to this Central too, through the same writer.
    let forward = cfg.events.as_ref().map(|e| {
        let mut rx = e.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(body) => {
                        if tx.send(Message::Event { body }).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("{n} events were dropped for a slow Central")
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    });
    // Requests wait for one of `max_in_flight` slots in their own tasks, so the connection
    // keeps reading (and answering pings) while drivers are busy; reading pauses only when
    // QUEUED requests are waiting.
    let slots = Arc::new(Semaphore::new(cfg.max_in_flight));
    let queued = Arc::new(Semaphore::new(QUEUED));
    let nonce = AtomicU64::new(1);
    let result = loop {
        let next = tokio::time::timeout(cfg.heartbeat, reader.next()).await;
        let m = match next {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => break Err(e),
            Err(_) => {
                // Silence: ping, and give up when even that goes unanswered.
                let n = nonce.fetch_add(1, Ordering::Relaxed);
                if tx.send(Message::Ping { nonce: n }).await.is_err() {
                    break Err(WireError::Closed);
                }
                let rest = cfg.idle_timeout.saturating_sub(cfg.heartbeat);
                match tokio::time::timeout(rest, reader.next()).await {
                    Ok(Ok(m)) => m,
                    Ok(Err(e)) => break Err(e),
                    Err(_) => {
                        break Err(io_err(format!(
                            "no message from Central for {:?}",
                            cfg.idle_timeout
                        )))
                    }
                }
            }
        };
        match m {
            Message::Request(req) => {
                let waiting = queued.clone().acquire_owned().await.expect("never closed");
                let (tx, handler, slots) = (tx.clone(), handler.clone(), slots.clone());
                tokio::spawn(async move {
                    let permit = slots.acquire_owned().await.expect("never closed");
                    let id = req.id;
                    let result = match req.validate() {
                        Err(e) => Err(RemoteError::from(e)),
                        Ok(()) => tokio::task::spawn_blocking(move || handler.handle(req.body))
                            .await
                            .unwrap_or_else(|e| {
                                Err(RemoteError::new(
                                    RemoteErrorCode::Internal,
                                    format!("the driver failed: {e}"),
                                ))
                            }),
                    };
                    // The slot is freed once the answer is queued, so finished answers
                    // waiting for a slow Central are bounded by the slots too.
                    let _ = tx.send(Message::Response(Response { id, result })).await;
                    drop(permit);
                    drop(waiting);
                });
            }
            Message::Ping { nonce } => {
                if tx.send(Message::Pong { nonce }).await.is_err() {
                    break Err(WireError::Closed);
                }
            }
            Message::Pong { .. } => {}
            other => {
                break Err(io_err(format!(
                    "unexpected {} from Central after the handshake",
                    other.name()
                )))
            }
        }
    };
    if let Some(f) = forward {
        f.abort();
    }
    drop(tx);
    let _ = writer.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pending_handshakes_count_per_ipv4_address_and_per_ipv6_64() {
        let h = Handshakes::new();
        // One IPv6 host holds a whole /64: its addresses share the /64's places.
        let mut held: Vec<_> = (1..=MAX_HANDSHAKES_PER_SOURCE)
            .map(|i| h.enter(ip(&format!("2001:db8:0:1::{i:x}"))).unwrap())
            .collect();
        assert_eq!(
            h.enter(ip("2001:db8:0:1:ffff:ffff:ffff:ffff")).err(),
            Some(NoPlace::Source),
            "another address of the same /64 is the same source"
        );
        // The next /64 and IPv4 addresses are other sources.
        held.push(h.enter(ip("2001:db8:0:2::1")).unwrap());
        held.push(h.enter(ip("192.0.2.1")).unwrap());
        held.push(h.enter(ip("192.0.2.2")).unwrap());
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d: it counts as
        // its IPv4 address, not as one /64 shared by every IPv4 client.
        for _ in 1..MAX_HANDSHAKES_PER_SOURCE {
            held.push(h.enter(ip("::ffff:192.0.2.1")).unwrap());
        }
        assert_eq!(h.enter(ip("192.0.2.1")).err(), Some(NoPlace::Source));
        held.push(h.enter(ip("::ffff:192.0.2.3")).unwrap());
        // A place given back is free again.
        held.remove(0);
        held.push(h.enter(ip("2001:db8:0:1::abcd")).unwrap());
        drop(held);
        assert!(h.per_source.lock().unwrap().is_empty());
    }

    #[test]
    fn pending_handshakes_are_bounded_in_all() {
        let h = Handshakes::new();
        let held: Vec<_> = (0..MAX_HANDSHAKES)
            .map(|i| {
                h.enter(ip(&format!("10.0.{}.{}", i / 256, i % 256)))
                    .unwrap()
            })
            .collect();
        assert_eq!(h.enter(ip("10.1.0.1")).err(), Some(NoPlace::All));
        drop(held);
        assert!(h.enter(ip("10.1.0.1")).is_ok());
    }
}
