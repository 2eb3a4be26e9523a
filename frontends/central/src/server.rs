//! The listener: TLS (rustls) or, for loopback tests, plain HTTP/1.1; graceful shutdown.
//!
//! What a client can hold without logging in is bounded here: connections (in total and
//! per client address, refused at once beyond the caps), the time to send headers (which
//! is also how long an idle keep-alive connection stays open), the time to send a body, and
//! the TLS handshake.
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::Config;

/// Descriptors kept free for the database, snapshots, agent links and logs when the
/// connection cap is derived from the descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 128;

/// How the listener bounds what clients hold (from [`Config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive one request body (then 408 and the connection closes).
    pub body_timeout: Duration,
    /// Longest time to receive a request's headers; also how long a keep-alive connection
    /// may sit idle between requests.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 /64).
    pub max_connections_per_ip: usize,
}

impl Limits {
    /// The limits configured in `cfg`.
    pub fn from_config(cfg: &Config) -> Limits {
        Limits {
            body_timeout: Duration::from_secs(cfg.body_timeout_secs),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs),
            max_connections: cfg.max_connections,
            max_connections_per_ip: cfg.max_connections_per_ip,
        }
    }

    /// The limits with the connection caps lowered to fit `nofile` descriptors (less a
    /// reserve for everything else Central opens).
    pub fn within_descriptors(mut self, nofile: u64) -> Limits {
        let fit = usize::try_from(nofile.saturating_sub(RESERVED_DESCRIPTORS).max(16))
            .unwrap_or(usize::MAX);
        if self.max_connections > fit {
            tracing::warn!(
                "max_connections {} lowered to {fit}: the descriptor limit is {nofile}",
                self.max_connections
            );
            self.max_connections = fit;
        }
        self.max_connections_per_ip = self.max_connections_per_ip.min(self.max_connections);
        self
    }
}

/// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to the hard limit; answers
/// the soft limit now in force.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Marks a request that arrived over TLS (the answer then carries HSTS).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OverTls;

/// A request body that did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
pub(crate) struct BodyTimeout(u64);

/// A request body with a deadline: the timeout runs from the first read (after the
/// request was authenticated), so a client sending a few bytes now and then cannot hold
/// the connection and the handler.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(timeout.as_secs()).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Open connections, in total and per client address.
struct Connections {
    limits: Limits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

/// A place among the open connections, given back on drop.
struct Place {
    table: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            open: Mutex::new((0, HashMap::new())),
            refused: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    /// A place for a connection from `peer`, or `None` beyond a cap.
    fn admit(self: &Arc<Connections>, peer: IpAddr) -> Option<Place> {
        let ip = crate::auth::address_key(peer);
        let mut open = self.open.lock().expect("connections lock");
        let (total, per_ip) = &mut *open;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= self.limits.max_connections || mine >= self.limits.max_connections_per_ip {
            drop(open);
            self.refused.fetch_add(1, Relaxed);
            self.warn_refusals(peer);
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(Place {
            table: self.clone(),
            ip,
        })
    }

    /// At most one warning every 10 s, with the count since the last one.
    fn warn_refusals(&self, peer: IpAddr) {
        let mut last = self.last_warning.lock().expect("warning lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        let n = self.refused.swap(0, Relaxed);
        let open = self.open.lock().expect("connections lock").0;
        tracing::warn!(
            %peer,
            "refused {n} connection(s) over the caps ({open} open; at most {} in total and {} per address)",
            self.limits.max_connections,
            self.limits.max_connections_per_ip
        );
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().expect("connections lock");
        let (total, per_ip) = &mut *open;
        *total -= 1;
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and waits (up to 30 s) for the requests in flight. `tls: None` serves plain
/// HTTP (the caller allows that only on loopback).
pub async fn serve(
    router: axum::Router,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let table = Connections::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over a cap: closed at once, not queued.
        let Some(place) = table.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _place = place;
            match acceptor {
                Some(a) => {
                    match tokio::time::timeout(Duration::from_secs(10), a.accept(tcp)).await {
                        Ok(Ok(s)) => connection(s, peer, true, router, limits, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => connection(tcp, peer, false, router, limits, watcher).await,
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after 30 s; closing them");
    }
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    tls: bool,
    router: axum::Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let body_timeout = limits.body_timeout;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if tls {
            req.extensions_mut().insert(OverTls);
        }
        let req = req.map(|inner| {
            axum::body::Body::new(TimedBody {
                inner,
                timeout: body_timeout,
                deadline: None,
            })
        });
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Limits {
        Limits {
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: total,
            max_connections_per_ip: per_ip,
        }
    }

    #[test]
    fn places_are_capped_per_address_and_in_total_and_given_back() {
        let t = Connections::new(limits(5, 2));
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let p1 = t.admit(ip("192.0.2.1")).unwrap();
        let _p2 = t.admit(ip("192.0.2.1")).unwrap();
        assert!(t.admit(ip("192.0.2.1")).is_none(), "per address");
        let _p3 = t.admit(ip("2001:db8:0:1::1")).unwrap();
        let _p4 = t.admit(ip("2001:db8:0:1::2")).unwrap();
        assert!(
            t.admit(ip("2001:db8:0:1::3")).is_none(),
            "a /64 is one address"
        );
        let _p5 = t.admit(ip("192.0.2.3")).unwrap();
        assert!(t.admit(ip("192.0.2.4")).is_none(), "in total");
        drop(p1);
        assert!(t.admit(ip("192.0.2.4")).is_some(), "a place given back");
        assert_eq!(t.open.lock().unwrap().0, 4, "and given back again");
    }

    #[test]
    fn the_connection_cap_fits_the_descriptor_limit() {
        let l = limits(4096, 256).within_descriptors(1024);
        assert_eq!((l.max_connections, l.max_connections_per_ip), (896, 256));
        let l = limits(4096, 256).within_descriptors(200);
        assert_eq!((l.max_connections, l.max_connections_per_ip), (72, 72));
        assert_eq!(limits(100, 10).within_descriptors(1 << 20), limits(100, 10));
    }
}
