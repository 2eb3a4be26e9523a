//! The messages: handshake, requests and responses, heartbeats, events.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dhcp::{DhcpOp, Lease, Reservation, Scope};
use crate::dns::{DnsOp, ResourceRecord, ZoneInfo};
use crate::error::ValidationError;
use crate::handshake::{Auth, Hello, ServerKind, Welcome};
use crate::net::Cidr;
use crate::validate::{validate_name, validate_opt_name, validate_text, MAX_TEXT_LEN};

/// One frame's payload. On the wire a JSON object with one key, the message type in
/// snake_case: `{"ping":{"nonce":7}}`.
///
/// The protocol's enums are exhaustive on purpose: adding a message or an operation is a
/// protocol change, and the compiler then points at every handler that must learn it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Agent -> Central, first message of a connection.
    Hello(Hello),
    /// Central -> agent, the answer to `hello`.
    Auth(Auth),
    /// Agent -> Central: the proof is good; both sides speak the version from now on. It
    /// carries the agent's own proof, name, roles and servers.
    Welcome(Welcome),
    /// Either side, during the handshake: the connection is refused and will be closed.
    Refused {
        /// Why, for the other side's log (`Central's proof does not match ...`).
        reason: String,
    },
    /// Central -> agent: do something on a server.
    Request(Request),
    /// Agent -> Central: the outcome of the request with the same `id`.
    Response(Response),
    /// Either side: a heartbeat; the other side answers `pong` with the same nonce.
    Ping {
        /// Any number, echoed in the `pong`.
        nonce: u64,
    },
    /// The answer to `ping`.
    Pong {
        /// The `ping`'s nonce.
        nonce: u64,
    },
    /// Agent -> Central, unasked: something changed on a server.
    Event {
        /// What changed.
        body: EventBody,
    },
}

impl Message {
    /// The message's type as on the wire (`hello`, `request`), for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Auth(_) => "auth",
            Message::Welcome(_) => "welcome",
            Message::Refused { .. } => "refused",
            Message::Request(_) => "request",
            Message::Response(_) => "response",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Event { .. } => "event",
        }
    }

    /// Checks the message's content against the protocol's rules. Decoding checks only the
    /// shape; a receiver calls this before acting on a message.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Message::Hello(hello) => hello.validate(),
            Message::Auth(auth) => auth.validate(),
            Message::Refused { reason } => validate_text("reason", reason, MAX_TEXT_LEN),
            Message::Request(request) => request.validate(),
            // A successful response carries the server's data as the server holds it: Central
            // records it even where it breaks a rule (the server is authoritative).
            Message::Response(response) => match &response.result {
                Ok(_) => Ok(()),
                Err(err) => validate_text("error message", &err.message, MAX_TEXT_LEN),
            },
            Message::Welcome(welcome) => welcome.validate(),
            Message::Event { body } => body.validate(),
            Message::Ping { .. } | Message::Pong { .. } => Ok(()),
        }
    }
}

/// A request from Central. The agent answers each with one [`Response`] of the same `id`,
/// in any order: several requests may be in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by Central, unique among its requests in flight on this connection.
    pub id: u64,
    /// What to do.
    pub body: RequestBody,
}

impl Request {
    /// Checks the target server's name and the operation's fields. An agent answers a request
    /// that fails with [`RemoteErrorCode::Invalid`] and the error's text.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.body.validate()
    }
}

/// What a request asks. Each names the target `server`: an agent may manage several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestBody {
    /// A DNS operation.
    Dns {
        /// The server, by the name the agent gave in `welcome`.
        server: String,
        /// The operation.
        op: DnsOp,
    },
    /// A DHCP operation.
    Dhcp {
        /// The server, by the name the agent gave in `welcome`.
        server: String,
        /// The operation.
        op: DhcpOp,
    },
    /// The server's state. Answer: [`ResponseBody::Status`].
    ServerStatus {
        /// The server, by the name the agent gave in `welcome`.
        server: String,
    },
}

impl RequestBody {
    /// The server the request is for.
    pub fn server(&self) -> &str {
        match self {
            RequestBody::Dns { server, .. }
            | RequestBody::Dhcp { server, .. }
            | RequestBody::ServerStatus { server } => server,
        }
    }

    /// Checks the server's name and the operation.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("server", self.server())?;
        match self {
            RequestBody::Dns { op, .. } => op.validate(),
            RequestBody::Dhcp { op, .. } => op.validate(),
            RequestBody::ServerStatus { .. } => Ok(()),
        }
    }
}

/// The agent's answer to the [`Request`] with the same `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The outcome; on the wire `{"ok": <body>}` or `{"error": {"code": ..., "message": ...}}`.
    #[serde(with = "result_repr")]
    pub result: Result<ResponseBody, RemoteError>,
}

/// A successful outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseBody {
    /// Done; nothing to return (create, update, delete, set).
    Done {},
    /// The server's zones (`list_zones`).
    Zones {
        /// Every zone.
        zones: Vec<ZoneInfo>,
    },
    /// One page of a zone (`read_zone`).
    Zone {
        /// The zone.
        zone: ZoneInfo,
        /// This page's records.
        records: Vec<ResourceRecord>,
        /// The cursor for the next page; `null` on the last page.
        #[serde(default)]
        next_cursor: Option<String>,
    },
    /// The records were changed (`update_records`).
    RecordsUpdated {
        /// The zone's SOA serial after the change, when the server says.
        #[serde(default)]
        serial: Option<u32>,
    },
    /// The server's scopes (`list_scopes`).
    Scopes {
        /// Every scope.
        scopes: Vec<Scope>,
    },
    /// Host reservations (`list_reservations`).
    Reservations {
        /// The reservations asked for.
        reservations: Vec<Reservation>,
    },
    /// One page of leases (`list_leases`).
    Leases {
        /// This page's leases.
        leases: Vec<Lease>,
        /// The cursor for the next page; `null` on the last page.
        #[serde(default)]
        next_cursor: Option<String>,
    },
    /// A server's state (`server_status`).
    Status {
        /// The state.
        status: ServerStatus,
    },
}

/// A managed server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The server's name.
    pub server: String,
    /// Its kind.
    pub kind: ServerKind,
    /// Whether it answers its control channel.
    pub running: bool,
    /// Its software version, when known (`9.18.24`).
    #[serde(default)]
    pub version: Option<String>,
    /// Seconds since it started, when known.
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    /// A human-readable note (`rndc: connection refused`), when there is one.
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a request failed on the agent's side. The server changed nothing unless the code says
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// What kind of failure, for programs.
    pub code: RemoteErrorCode,
    /// What failed and why, for people (`zone example.com does not exist on ns1`).
    pub message: String,
}

impl RemoteError {
    /// Makes an error from a code and a message.
    pub fn new(code: RemoteErrorCode, message: impl Into<String>) -> RemoteError {
        RemoteError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for RemoteError {}

impl From<ValidationError> for RemoteError {
    fn from(err: ValidationError) -> RemoteError {
        RemoteError::new(RemoteErrorCode::Invalid, err.to_string())
    }
}

/// The kind of a [`RemoteError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteErrorCode {
    /// The server did not answer (stopped, unreachable, control channel refused).
    ServerDown,
    /// The agent manages no server of that name.
    UnknownServer,
    /// The zone, scope, reservation or record does not exist.
    NotFound,
    /// What is to be created exists already.
    AlreadyExists,
    /// The server refused the change (TSIG, ACL, a check of its own); its reason is in the
    /// message.
    Refused,
    /// The request breaks a protocol rule; nothing was sent to the server.
    Invalid,
    /// The server's kind cannot do this (ISC dhcpd cannot change scopes at run time).
    Unsupported,
    /// The server did not finish in time; the change may or may not have been applied.
    Timeout,
    /// The agent failed (a bug, or a local failure such as a full disk).
    Internal,
    /// A code this version does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl RemoteErrorCode {
    /// The code as on the wire (`server_down`).
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteErrorCode::ServerDown => "server_down",
            RemoteErrorCode::UnknownServer => "unknown_server",
            RemoteErrorCode::NotFound => "not_found",
            RemoteErrorCode::AlreadyExists => "already_exists",
            RemoteErrorCode::Refused => "refused",
            RemoteErrorCode::Invalid => "invalid",
            RemoteErrorCode::Unsupported => "unsupported",
            RemoteErrorCode::Timeout => "timeout",
            RemoteErrorCode::Internal => "internal",
            RemoteErrorCode::Unknown => "unknown",
        }
    }
}

/// Something that changed on a server without Central asking, so Central can read it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    /// A zone's content changed (its serial moved, or a NOTIFY arrived).
    ZoneChanged {
        /// The server.
        server: String,
        /// The zone.
        zone: String,
        /// The zone's view; `null` for the default view.
        #[serde(default)]
        view: Option<String>,
        /// The new SOA serial, when known.
        #[serde(default)]
        serial: Option<u32>,
    },
    /// Leases changed (granted, renewed, released, expired).
    LeasesChanged {
        /// The server.
        server: String,
        /// The scope; `null` when the server does not say.
        #[serde(default)]
        subnet: Option<Cidr>,
    },
    /// The DHCP configuration (scopes, options, reservations) changed outside ipam.
    DhcpConfigChanged {
        /// The server.
        server: String,
    },
    /// A server went up or down.
    ServerStatusChanged {
        /// Its new state.
        status: ServerStatus,
    },
}

impl EventBody {
    /// The server the event is about.
    pub fn server(&self) -> &str {
        match self {
            EventBody::ZoneChanged { server, .. }
            | EventBody::LeasesChanged { server, .. }
            | EventBody::DhcpConfigChanged { server } => server,
            EventBody::ServerStatusChanged { status } => &status.server,
        }
    }

    /// Checks the server's and the zone's names.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("server", self.server())?;
        if let EventBody::ZoneChanged { zone, view, .. } = self {
            crate::validate::validate_dns_name(zone)?;
            validate_opt_name("view", view.as_deref())?;
        }
        Ok(())
    }
}

/// `Result<ResponseBody, RemoteError>` as `{"ok": ...}` or `{"error": ...}`.
mod result_repr {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{RemoteError, ResponseBody};

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Ref<'a> {
        Ok(&'a ResponseBody),
        Error(&'a RemoteError),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Owned {
        Ok(ResponseBody),
        Error(RemoteError),
    }

    pub(super) fn serialize<S: Serializer>(
        result: &Result<ResponseBody, RemoteError>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match result {
            Ok(body) => Ref::Ok(body),
            Err(err) => Ref::Error(err),
        }
        .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Result<ResponseBody, RemoteError>, D::Error> {
        Ok(match Owned::deserialize(deserializer)? {
            Owned::Ok(body) => Ok(body),
            Owned::Error(err) => Err(err),
        })
    }
}
