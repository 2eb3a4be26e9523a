//! The Micetro-compatible API: request parsing, authentication, routing, errors and the
//! `{"result": ...}` envelope. The handlers live in the sibling modules.
//!
//! Paths are parsed by hand rather than by axum's router because Micetro's refs are not
//! path segments: a CIDR spans two segments, a collection may be repeated, names are
//! matched case-insensitively and sometimes carry a trailing slash.
mod admin;
mod bulk;
mod dhcp;
mod dns;
pub(crate) mod filter;
mod params;
mod ranges;
mod records;
mod render;
mod routes;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use ipam_engine::{EngineError, Id, Transaction, TxnResult, View};
use serde_json::{json, Value};

use crate::App;
pub(crate) use params::Params;
pub(crate) use routes::{Route, Target};

/// Builds the service.
pub(crate) fn router(app: Arc<App>) -> axum::Router {
    let r = axum::Router::new()
        .route("/mmws/api/{*rest}", any(handle))
        .route("/mmws/api", any(handle))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/health", get(health));
    crate::ui::routes(r)
        .fallback(unknown_path)
        .with_state(app)
        .layer(axum::middleware::from_fn(common_headers))
}

/// Headers on every answer: `X-Content-Type-Options: nosniff` (errors, 204s and streams
/// included) and, over TLS, `Strict-Transport-Security`.
async fn common_headers(req: Request, next: axum::middleware::Next) -> Response {
    let tls = req.extensions().get::<crate::server::OverTls>().is_some();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, routes::openapi())
}

/// Whether a request carries valid credentials (for answers that show more to callers who
/// do; a missing or wrong credential is not an error there).
async fn authenticated(app: &Arc<App>, req: &axum::http::request::Parts) -> bool {
    (req.headers.contains_key(header::AUTHORIZATION)
        || crate::ui::session_cookie(&req.headers).is_some())
        && authenticate(app, &req.headers, peer_ip(&req.extensions))
            .await
            .is_ok()
}

/// `/metrics`: the HTTP request counters and latencies for anyone; the rest (logins,
/// allocations, commits) to authenticated callers, or to anyone with `metrics_public`.
async fn metrics(State(app): State<Arc<App>>, req: Request) -> Response {
    let (req, _) = req.into_parts();
    let full = app.metrics_public || authenticated(&app, &req).await;
    let body = app.metrics.render(&app.engine.stats(), full);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `/health`: `{"status", "role"}` for anyone (503 after a database failure, and with
/// `?role=active` on a standby); the database, sequence and uptime only to authenticated
/// callers. Why a database failed is in the log, never in the answer.
async fn health(State(app): State<Arc<App>>, req: Request) -> Response {
    let (req, _) = req.into_parts();
    let ok = app.engine.poisoned().is_none();
    let (role, active) = match app.engine.role() {
        ipam_engine::Role::Active => ("active", None),
        ipam_engine::Role::Standby { active } => ("standby", Some(active)),
    };
    let mut body = json!({
        "status": if ok { "ok" } else { "failing" },
        "role": role,
    });
    if authenticated(&app, &req).await {
        let e = app.engine.stats();
        body["activeInstance"] = json!(active);
        body["database"] = json!(app.database);
        body["committedSequence"] = json!(e.committed_seq);
        body["uptimeSeconds"] = json!(app.uptime().as_secs());
    }
    // `?role=active`: healthy only on the instance that takes writes (for load balancers).
    let want_active = req
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "role=active"));
    json_response(
        if ok && !(want_active && role != "active") {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body,
    )
}

async fn unknown_path(req: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::UNKNOWN_PATH,
        format!(
            "no such path: {} (the API is under /mmws/api/v2/; see /openapi.json)",
            req.uri().path()
        ),
    )
    .into_response_for(false)
}

/// Micetro's error codes, and ours (4000-4999) where Micetro has none we know of.
pub(crate) mod codes {
    /// Missing or expired credentials.
    pub const MISSING_SESSION: u32 = 5002;
    /// Wrong login name or password.
    pub const BAD_LOGIN: u32 = 5001;
    /// The account is locked after failed logins.
    pub const LOCKED: u32 = 5003;
    /// Object not found (v2).
    pub const NOT_FOUND: u32 = 2049;
    /// Object not found (legacy base).
    pub const NOT_FOUND_LEGACY: u32 = 16544;
    /// No access.
    pub const NO_ACCESS: u32 = 1028;
    /// Invalid argument.
    pub const INVALID: u32 = 4001;
    /// Overlapping or misplaced range, address outside a range.
    pub const INDEX: u32 = 4002;
    /// Name taken.
    pub const NAME_TAKEN: u32 = 4003;
    /// Custom property problem.
    pub const PROPERTY: u32 = 4004;
    /// Not enough free addresses or blocks.
    pub const EXHAUSTED: u32 = 4005;
    /// Locked range or container.
    pub const RANGE_CLOSED: u32 = 4006;
    /// Address held by another user.
    pub const HELD: u32 = 4007;
    /// Object still in use.
    pub const IN_USE: u32 = 4008;
    /// Idempotency key reused with different content.
    pub const IDEMPOTENCY: u32 = 4009;
    /// Malformed JSON.
    pub const BAD_JSON: u32 = 4010;
    /// Filter syntax error.
    pub const FILTER: u32 = 4011;
    /// The request body could not be read (malformed chunked encoding, cut off).
    pub const BAD_BODY: u32 = 4012;
    /// Body too large.
    pub const TOO_LARGE: u32 = 4013;
    /// The request body did not arrive within `body_timeout_secs`.
    pub const BODY_TIMEOUT: u32 = 4014;
    /// A call with the UI's session cookie lacks its CSRF token.
    pub const CSRF: u32 = 4031;
    /// Unknown path.
    pub const UNKNOWN_PATH: u32 = 4040;
    /// Method not allowed on the path.
    pub const METHOD: u32 = 4050;
    /// The database failed; nothing was changed, or the outcome is unknown.
    pub const STORE: u32 = 5010;
    /// Central is shutting down.
    pub const SHUTTING_DOWN: u32 = 5011;
    /// A DNS or DHCP server (or its agent) cannot be reached; nothing was changed.
    pub const SERVER_DOWN: u32 = 4060;
    /// A DNS or DHCP server refused a change; nothing was changed.
    pub const SERVER_REFUSED: u32 = 4061;
    /// A DNS or DHCP server did not answer in time: it may have applied the change, which
    /// Central did not record (the next synchronization reads it).
    pub const SERVER_UNCERTAIN: u32 = 4062;
    /// This Central is a standby; the message names the active one.
    pub const STANDBY: u32 = 5012;
    /// The request would examine more objects than one request may: narrow it.
    pub const TOO_MUCH_WORK: u32 = 4070;
    /// The request's reads passed their deadline.
    pub const DEADLINE: u32 = 5013;
    /// The request was cancelled (the client went away).
    pub const CANCELLED: u32 = 5014;
    /// Too many heavy reads (scans) are running, for this user or in all: try again.
    pub const BUSY: u32 = 5015;
}

/// An error answer: HTTP status, Micetro code, message.
///
/// The message of a 5xx answer is never sent: it may carry internal text (a database's or
/// a server's words). The client gets a sentence for the code and a request id, under
/// which the message is logged.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
    /// For batch calls: the position of the item that failed.
    index: Option<usize>,
    /// What a 5xx answer may tell besides its sentence: settings, never error text (the
    /// active instance's name, for a standby).
    public: Option<String>,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

/// A new request id: 16 hex digits, unique in this process, hard to guess across
/// processes.
pub(crate) fn request_id() -> String {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).expect("the OS random source works");
        u64::from_le_bytes(b)
    });
    format!("{:016x}", seed.wrapping_add(NEXT.fetch_add(1, Relaxed)))
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            index: None,
            public: None,
            retry_after: None,
        }
    }

    /// Marks the batch item the error is about.
    pub fn at(mut self, index: usize) -> ApiError {
        self.index = Some(index);
        self
    }

    /// 400 invalid argument.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID, message)
    }

    /// 400 not found (Micetro's status for it).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, codes::NOT_FOUND, message)
    }

    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, codes::MISSING_SESSION, message)
    }

    /// The answer to a UI call (with the UI's security headers).
    pub(crate) fn into_ui_response(self) -> Response {
        crate::ui::secured(self.render(false, "UI"))
    }

    fn into_response_for(self, legacy: bool) -> Response {
        self.render(legacy, "-")
    }

    /// The sentence a 5xx answer gives for its code.
    fn public_sentence(&self) -> String {
        match self.code {
            codes::STORE => {
                "the database failed: nothing was changed, or the outcome is unknown".into()
            }
            codes::SHUTTING_DOWN => "Central is shutting down: try again shortly".into(),
            codes::STANDBY => format!(
                "this instance is a standby and does not accept writes; the active instance \
                 is {}: send writes there",
                self.public.as_deref().unwrap_or("unknown")
            ),
            codes::SERVER_DOWN => {
                "a DNS or DHCP server, or its agent, cannot be reached: nothing was changed".into()
            }
            codes::SERVER_REFUSED => {
                "a DNS or DHCP server refused or failed the change: nothing was changed".into()
            }
            codes::SERVER_UNCERTAIN => "a DNS or DHCP server did not answer in time: it may \
                have applied the change, which the next synchronization reads"
                .into(),
            // Central's own words about the request's limits: nothing internal in them.
            codes::DEADLINE | codes::CANCELLED | codes::BUSY => self.message.clone(),
            _ => "internal error".into(),
        }
    }

    /// Renders the envelope `{"error": {"code", "message"}}`. A 5xx answer's own message is
    /// logged with a new request id, `what` (who asked what) and the code; the client gets
    /// the code's sentence and the id (also as `error.requestId`).
    fn render(self, legacy: bool, what: &str) -> Response {
        let code = if legacy && self.code == codes::NOT_FOUND {
            codes::NOT_FOUND_LEGACY
        } else {
            self.code
        };
        let mut body = if self.status.is_server_error() {
            let id = request_id();
            tracing::warn!(request_id = %id, code, "{what}: {}", self.message);
            let message = format!(
                "{} (request id {id}: the server's log has the details)",
                self.public_sentence()
            );
            json!({"error": {"code": code, "message": message, "requestId": id}})
        } else {
            json!({"error": {"code": code, "message": self.message}})
        };
        if let Some(i) = self.index {
            body["error"]["index"] = json!(i);
        }
        let mut r = json_response(self.status, body);
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use EngineError as E;
        let msg = e.to_string();
        let (status, code) = match e.root() {
            E::NotFound(_) => (StatusCode::BAD_REQUEST, codes::NOT_FOUND),
            E::AccessDenied { .. } => (StatusCode::BAD_REQUEST, codes::NO_ACCESS),
            E::Invalid { .. } => (StatusCode::BAD_REQUEST, codes::INVALID),
            E::Index(_) => (StatusCode::BAD_REQUEST, codes::INDEX),
            E::NameTaken { .. } => (StatusCode::BAD_REQUEST, codes::NAME_TAKEN),
            E::Property { .. } => (StatusCode::BAD_REQUEST, codes::PROPERTY),
            E::Exhausted { .. } => (StatusCode::BAD_REQUEST, codes::EXHAUSTED),
            E::RangeClosed { .. } => (StatusCode::BAD_REQUEST, codes::RANGE_CLOSED),
            E::Held { .. } => (StatusCode::BAD_REQUEST, codes::HELD),
            E::InUse { .. } => (StatusCode::BAD_REQUEST, codes::IN_USE),
            E::IdempotencyConflict { .. } => (StatusCode::CONFLICT, codes::IDEMPOTENCY),
            E::BadCredentials => (StatusCode::UNAUTHORIZED, codes::BAD_LOGIN),
            E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, codes::SHUTTING_DOWN),
            E::Standby { .. } => (StatusCode::SERVICE_UNAVAILABLE, codes::STANDBY),
            E::Budget(b) => match b {
                ipam_engine::BudgetExceeded::TooMuchWork { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, codes::TOO_MUCH_WORK)
                }
                ipam_engine::BudgetExceeded::Cancelled => {
                    (StatusCode::SERVICE_UNAVAILABLE, codes::CANCELLED)
                }
                _ => (StatusCode::SERVICE_UNAVAILABLE, codes::DEADLINE),
            },
            _ => (StatusCode::SERVICE_UNAVAILABLE, codes::STORE),
        };
        let index = match &e {
            E::Command { index, .. } => Some(*index),
            _ => None,
        };
        let public = match e.root() {
            E::Standby { active } => Some(active.to_string()),
            _ => None,
        };
        ApiError {
            index,
            public,
            ..ApiError::new(status, code, msg)
        }
    }
}

impl From<filter::FilterError> for ApiError {
    fn from(e: filter::FilterError) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, codes::FILTER, e.to_string())
    }
}

/// A successful answer.
pub(crate) enum Reply {
    /// 200 with `{"result": value}`.
    Ok(Value),
    /// 201 with `{"result": value}`.
    Created(Value),
    /// 204, no body.
    NoContent,
    /// 200 with a body that is already the whole JSON envelope (listings rendered as text).
    Json(Vec<u8>),
    /// A body of its own (NDJSON export).
    Raw(Response),
}

pub(crate) type ApiResult = Result<Reply, ApiError>;

fn json_response(status: StatusCode, v: Value) -> Response {
    let body = serde_json::to_vec(&v).expect("JSON values serialize");
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// One authenticated request, as the handlers see it.
pub(crate) struct Ctx {
    pub app: Arc<App>,
    pub user: Id,
    pub user_name: String,
    pub method: Method,
    pub params: Params,
    pub headers: HeaderMap,
    /// The session token, when the caller used one.
    pub token: Option<String>,
    /// The work budget of this request's reads.
    pub budget: Arc<ipam_engine::Budget>,
    /// The client's address.
    pub ip: IpAddr,
    /// When this request's reads must be done.
    pub deadline: Instant,
}

impl Ctx {
    /// Runs a read that may scan: admitted among a few heavy reads at once (per user and in
    /// all), off the async threads, within the request's work budget.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let admitted = self
            .app
            .heavy_reads
            .admit(self.user, self.deadline)
            .await
            .map_err(|b| {
                let who = match b {
                    crate::limits::Busy::User(n) => {
                        format!("you already have {n} listings or searches running")
                    }
                    crate::limits::Busy::Total(n) => {
                        format!("{n} listings or searches are already running")
                    }
                };
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::BUSY,
                    format!(
                        "{who} and none finished before this request's deadline; try again shortly"
                    ),
                )
            })?;
        let app = self.app.clone();
        let user = self.user;
        let budget = self.budget.clone();
        let r = self
            .app
            .scans
            .run(move || {
                let r = app.engine.read_with(user, &budget, f);
                drop(admitted);
                // Counted here: a cancelled request's own future is gone by now.
                if let Err(EngineError::Budget(b)) = &r {
                    app.metrics.read_stopped(b);
                }
                r
            })
            .await
            .ok_or_else(|| ApiError::from(EngineError::ShuttingDown))?;
        r.map_err(ApiError::from)
    }

    /// Runs a short read (a lookup, not a scan) on this thread when the state's lock is
    /// free (otherwise on the blocking pool); waits off-thread only when it showed changes
    /// that are not durable yet.
    pub async fn read_quick<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let (r, seq) = self.read_at(f).await?;
        if seq > self.app.engine.committed_seq() {
            let app = self.app.clone();
            tokio::task::spawn_blocking(move || app.engine.wait_durable(seq))
                .await
                .map_err(join_error)??;
        }
        Ok(r)
    }

    /// A lookup whose answer is only used to build a write (ids of named objects), never
    /// shown: it does not wait for durability (the write it feeds is acknowledged only
    /// once durable, after everything the lookup saw).
    pub async fn lookup<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, ApiError> {
        Ok(self.read_at(f).await?.0)
    }

    async fn read_at<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<(R, u64), ApiError> {
        match self.app.engine.try_read_at(self.user, f) {
            Ok(r) => Ok(r?),
            Err(f) => {
                let app = self.app.clone();
                let user = self.user;
                Ok(
                    tokio::task::spawn_blocking(move || app.engine.read_at(user, f))
                        .await
                        .map_err(join_error)??,
                )
            }
        }
    }

    /// Submits a transaction of `commands` with the request's `saveComment`.
    pub async fn submit(&self, commands: Vec<ipam_engine::Command>) -> Result<TxnResult, ApiError> {
        let comment = self.params.string("saveComment")?.unwrap_or_default();
        self.submit_txn(Transaction {
            user: self.user,
            comment,
            idempotency_key: None,
            commands,
        })
        .await
    }

    /// Submits a transaction and waits (without holding a thread) until it is durable.
    pub async fn submit_txn(&self, txn: Transaction) -> Result<TxnResult, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.app.engine.submit_with(txn, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| ApiError::from(EngineError::ShuttingDown))?
            .map_err(ApiError::from)
    }
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::STORE,
        e.to_string(),
    )
}

/// Largest login body (`POST micetro/sessions`, `POST /ui/session`): the only bodies read
/// before the caller is known.
pub(crate) const LOGIN_MAX_BODY: usize = 4096;

/// The client's address, as the listener recorded it (handler tests have none: they
/// count as one unspecified address).
pub(crate) fn peer_ip(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Reads a request body of at most `limit` bytes. A declared length over the limit is
/// refused before anything is read (so no `100 Continue` is sent). Errors: 413 over the
/// limit, 408 when it did not arrive within the body timeout, 400 when it is malformed or
/// cut off.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if hyper::body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(too_large());
    }
    let e = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => return Ok(c.to_bytes()),
        Err(e) => e,
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return Err(too_large());
        }
        if let Some(t) = c.downcast_ref::<crate::server::BodyTimeout>() {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::BODY_TIMEOUT,
                t.to_string(),
            ));
        }
        cause = c.source();
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::BAD_BODY,
        format!("the request body could not be read: {e}"),
    ))
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let t0 = Instant::now();
    // The listener adds the peer address; handler tests (no socket) have none. Session
    // tokens in paths (`micetro/sessions/{token}`) are not logged.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_string(), |c| c.0.to_string());
    let method = req.method().clone();
    let path = {
        let p = req.uri().path();
        match p.to_ascii_lowercase().find("/sessions/") {
            Some(i) => format!("{}/sessions/...", &p[..i]),
            None => p.to_string(),
        }
    };
    let legacy = !path
        .trim_start_matches("/mmws/api")
        .trim_start_matches('/')
        .to_ascii_lowercase()
        .starts_with("v2");
    // Set when this future is dropped (the client went away) or done: reads still running
    // for the request stop at their next check.
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _cancel_on_drop = crate::limits::CancelOnDrop(cancel.clone());
    let resp = match handle_inner(app.clone(), req, cancel).await {
        Ok((_, reply)) => match reply {
            Reply::Ok(v) => json_response(StatusCode::OK, json!({ "result": v })),
            Reply::Created(v) => json_response(StatusCode::CREATED, json!({ "result": v })),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
            Reply::Json(body) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response(),
            Reply::Raw(r) => r,
        },
        Err((user, e)) => {
            let user = user.as_deref().unwrap_or("-");
            if e.status.is_server_error() {
                // Logged with its request id as it is rendered.
            } else if e.status == StatusCode::UNAUTHORIZED
                || e.status == StatusCode::TOO_MANY_REQUESTS
            {
                tracing::warn!(%peer, user, %method, %path, code = e.code, "{}", e.message);
            } else {
                tracing::info!(%peer, user, %method, %path, code = e.code, "{}", e.message);
            }
            let what = format!("peer={peer} user={user} {method} {path}");
            e.render(legacy, &what)
        }
    };
    app.metrics
        .observe(resp.status().as_u16(), t0.elapsed().as_micros() as u64);
    resp
}

type Failure = (Option<String>, ApiError);

/// Routes, authenticates from the headers, and only then reads the body: a caller without
/// valid credentials is answered without a byte of its body read (and without `100
/// Continue`). Logging in is the one call whose body comes first, capped at
/// [`LOGIN_MAX_BODY`].
async fn handle_inner(
    app: Arc<App>,
    req: Request,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(Option<String>, Reply), Failure> {
    let ip = peer_ip(req.extensions());
    let (parts, body) = req.into_parts();
    let raw = parts.uri.path();
    let rest = raw
        .strip_prefix("/mmws/api")
        .unwrap_or(raw)
        .trim_start_matches('/');
    let segs = params::segments(rest);
    let segs = match segs.first() {
        Some(s) if s.eq_ignore_ascii_case("v2") => segs[1..].to_vec(),
        _ => segs,
    };
    let target = routes::resolve(&segs).map_err(|e| (None, e))?;
    let method = parts.method.clone();
    if !target.route.methods().contains(&method.as_str()) {
        return Err((None, method_not_allowed(&method, target.route)));
    }
    let query = parts.uri.query();
    // The one call that needs no credentials: logging in.
    if target.route == Route::Sessions && method == Method::POST {
        let body = read_body(body, LOGIN_MAX_BODY)
            .await
            .map_err(|e| (None, e))?;
        let params = Params::from_request(query, &body).map_err(|e| (None, e))?;
        let r = admin::login(&app, &params, ip).await.map_err(|e| {
            let who = params.string("loginName").ok().flatten();
            (who, e)
        })?;
        return Ok((None, r));
    }
    let (user, user_name, token) = authenticate(&app, &parts.headers, ip)
        .await
        .map_err(|e| (None, e))?;
    let name = Some(user_name.clone());
    let body = read_body(body, app.max_body)
        .await
        .map_err(|e| (name.clone(), e))?;
    let params = Params::from_request(query, &body).map_err(|e| (name.clone(), e))?;
    let budget = Arc::new(app.read_limits.budget(cancel));
    let ctx = Ctx {
        ip,
        deadline: Instant::now() + app.read_limits.timeout,
        budget,
        app,
        user,
        user_name,
        method,
        params,
        headers: parts.headers,
        token,
    };
    match dispatch(&ctx, &target).await {
        Ok(r) => Ok((name, r)),
        Err(e) => Err((name, e)),
    }
}

async fn authenticate(
    app: &Arc<App>,
    h: &HeaderMap,
    ip: IpAddr,
) -> Result<(Id, String, Option<String>), ApiError> {
    let Some(v) = h.get(header::AUTHORIZATION) else {
        // The UI's cookie session, always with its CSRF token.
        if let Some(tok) = crate::ui::session_cookie(h) {
            crate::ui::check_csrf(h, &tok)?;
            return match app.auth.session(&tok) {
                Some(s) => Ok((s.user, s.name, Some(tok))),
                None => Err(ApiError::unauthorized(
                    "your session has ended (logged out or idle too long): log in again",
                )),
            };
        }
        return Err(ApiError::unauthorized("Missing Session ID."));
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?
        .trim();
    let (scheme, cred) = v.split_once(' ').unwrap_or((v, ""));
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("session") {
        return match app.auth.session(cred) {
            Some(s) => Ok((s.user, s.name, Some(cred.to_string()))),
            None => Err(ApiError::unauthorized(
                "Invalid or expired session: log in again (POST micetro/sessions)",
            )),
        };
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::unauthorized(format!(
            "unsupported Authorization scheme {scheme:?}: use Bearer or Basic"
        )));
    }
    use base64_decode::decode;
    let pair = decode(cred)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
    let (name, password) = pair
        .split_once(':')
        .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
    if let Some((id, canonical)) = app.auth.basic_cached(name, password) {
        return Ok((id, canonical, None));
    }
    let (id, canonical) = check_password(app, name, password, ip).await?;
    app.auth.basic_remember(name, password, id, &canonical);
    Ok((id, canonical, None))
}

/// Refuses an attempt that must wait after failures (429) or whose account is locked
/// (401), both with `Retry-After`.
fn throttled(app: &App, name: &str, ip: IpAddr) -> Result<(), ApiError> {
    let (status, message, seconds) = match app.auth.check(name, ip) {
        Ok(()) => return Ok(()),
        Err(crate::auth::Refusal::Wait { seconds }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins for {name:?} from this address: try again in {seconds} s"
            ),
            seconds,
        ),
        Err(crate::auth::Refusal::Locked { seconds }) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "the account {name:?} is locked after repeated failed logins; try again in \
                 {seconds} s"
            ),
            seconds,
        ),
    };
    app.metrics.login_waits.fetch_add(1, Relaxed);
    Err(ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(status, codes::LOCKED, message)
    })
}

/// Checks a password, throttled per user and client address (see [`crate::auth`]);
/// answers the user id and canonical name. Only a wrong password counts as a failure.
pub(crate) async fn check_password(
    app: &Arc<App>,
    name: &str,
    password: &str,
    ip: IpAddr,
) -> Result<(Id, String), ApiError> {
    let wrong = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::BAD_LOGIN,
            "Invalid username or password",
        )
    };
    if name.len() > 256 || password.len() > 1024 {
        app.metrics.failed_logins.fetch_add(1, Relaxed);
        return Err(wrong());
    }
    throttled(app, name, ip)?;
    // argon2 takes tens of milliseconds and 19 MiB: a few at a time.
    let _permit = app
        .password_checks
        .acquire()
        .await
        .map_err(|_| ApiError::from(EngineError::ShuttingDown))?;
    // Again, now that this attempt has its turn: parallel guesses from one address go
    // through at most a few at a time before their failures make the next ones wait.
    throttled(app, name, ip)?;
    let a = app.clone();
    let (n, p) = (name.to_string(), password.to_string());
    let r = tokio::task::spawn_blocking(move || {
        let id = a.engine.authenticate(&n, &p)?;
        let canonical = a.engine.read(id, move |v| Ok(v.user_name(id)))?;
        Ok::<_, EngineError>((id, canonical.unwrap_or(n)))
    })
    .await
    .map_err(join_error)?;
    match r {
        Ok(x) => {
            app.auth.succeeded(name, ip);
            Ok(x)
        }
        Err(EngineError::BadCredentials) => {
            app.metrics.failed_logins.fetch_add(1, Relaxed);
            if app.auth.failed(name, ip) {
                app.metrics.lockouts.fetch_add(1, Relaxed);
                tracing::warn!(user = name, "account locked after repeated failed logins");
            }
            Err(wrong())
        }
        Err(e) => Err(e.into()),
    }
}

fn method_not_allowed(method: &Method, route: Route) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD,
        format!(
            "{} is not allowed on {}; allowed: {}",
            method,
            route.template(),
            route.methods().join(", ")
        ),
    )
}

async fn dispatch(ctx: &Ctx, t: &Target) -> ApiResult {
    use Route as R;
    match t.route {
        R::Micetro => admin::system_info(ctx).await,
        R::Sessions | R::Session => admin::logout(ctx, t).await,
        R::Ranges => ranges::collection(ctx).await,
        R::Range => ranges::one(ctx, t).await,
        R::RangeNextFree => ranges::next_free(ctx, t).await,
        R::RangeBlocks => ranges::available_blocks(ctx, t).await,
        R::RangeStatistics => ranges::statistics(ctx, t).await,
        R::RangeSubranges | R::RangeAddressBlocks => ranges::subranges(ctx, t).await,
        R::RangeRecords => records::of_range(ctx, t).await,
        R::RangeExport => bulk::export(ctx, t).await,
        R::RangeSplit => ranges::split(ctx, t).await,
        R::Records => records::list(ctx).await,
        R::Record => records::one(ctx, t).await,
        R::LegacyGetIpamRecords => records::legacy_get(ctx).await,
        R::History => admin::history(ctx, t).await,
        R::Changes => admin::changes(ctx).await,
        R::Access => admin::access(ctx, t).await,
        R::PropertyDefinitions | R::PropertyDefinition => admin::property_definitions(ctx, t).await,
        R::Folders | R::Folder => admin::folders(ctx, t).await,
        R::Spaces | R::Space => admin::spaces(ctx, t).await,
        R::Users | R::User => admin::users(ctx, t).await,
        R::Groups | R::Group => admin::groups(ctx, t).await,
        R::Roles | R::Role => admin::roles(ctx, t).await,
        R::Membership | R::Memberships => admin::membership(ctx, t).await,
        R::Allocations => bulk::allocate(ctx).await,
        R::Releases => bulk::release(ctx).await,
        R::RangeBatches => bulk::range_batch(ctx).await,
        R::RecordBatches => bulk::record_batch(ctx).await,
        R::DnsServers | R::DnsServer => dns::servers(ctx, t).await,
        R::DnsServerSync => dns::synchronize(ctx, t).await,
        R::DnsViews | R::DnsView => dns::views(ctx, t).await,
        R::DnsZones | R::DnsZone => dns::zones(ctx, t).await,
        R::ZoneRecords => dns::zone_records(ctx, t).await,
        R::DnsRecords => dns::create_records(ctx).await,
        R::DnsRecord => dns::record(ctx, t).await,
        R::DhcpServers | R::DhcpServer => dhcp::servers(ctx, t).await,
        R::DhcpServerSync => dhcp::synchronize(ctx, t).await,
        R::DhcpScopes | R::DhcpScope => dhcp::scopes(ctx, t).await,
        R::ScopeOptions => dhcp::options(ctx, t).await,
        R::ScopeReservations | R::RangeReservations => dhcp::scope_reservations(ctx, t).await,
        R::DhcpReservation => dhcp::reservation(ctx, t).await,
        R::ScopeLeases | R::RangeLeases => dhcp::leases(ctx, t).await,
    }
}

/// Parses an address with a clear error.
pub(crate) fn parse_addr(field: &str, s: &str) -> Result<IpAddr, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::invalid(format!("{field}: {s:?} is not an IP address")))
}

/// Base64 (standard alphabet) decoding for HTTP Basic, without a dependency.
mod base64_decode {
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let s = s.trim_end_matches('=');
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                _ => return None,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }

    #[cfg(test)]
    #[test]
    fn decodes() {
        assert_eq!(decode("YWRtaW46cHc=").unwrap(), b"admin:pw");
        assert_eq!(decode("YQ").unwrap(), b"a");
        assert!(decode("a b").is_none());
    }
}

/// A body for streamed answers.
pub(crate) fn stream_body(
    s: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Body {
    Body::from_stream(s)
}
