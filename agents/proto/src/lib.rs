//! `ipam-agent-proto`: the wire protocol between Central and its DNS and DHCP agents.
//!
//! This crate holds the message types, the codec and the handshake's cryptography, and does no
//! I/O: both sides (tokio-based) and the fuzz targets drive it with bytes. The transport is TLS
//! (rustls); pinning the peer's certificate is the transport's job, not this crate's.
//!
//! # Framing
//!
//! A connection carries frames in both directions. A frame is a 4-byte **little-endian**
//! unsigned length `N`, then `N` bytes of payload. The length counts the
//! payload only. The payload is one [`Message`] as UTF-8 JSON (no byte-order mark, no trailing
//! data but whitespace).
//!
//! ```text
//! +--------+--------+--------+--------+---------------------------------+
//! |     payload length N (u32, LE)    |  N bytes: {"ping":{"nonce":7}}  |
//! +--------+--------+--------+--------+---------------------------------+
//! ```
//!
//! Each side refuses frames over its limit ([`DEFAULT_MAX_FRAME_LEN`], 16 MiB, unless
//! configured otherwise): [`FrameDecoder`] fails as soon as an oversize prefix arrives, without
//! buffering the body, and [`encode`] refuses to build one. A listing that could pass the limit
//! (a zone's records, leases) is paged with a cursor. A zero-length frame is invalid JSON.
//!
//! Any framing or JSON error is fatal for the connection: the receiver logs the reason and
//! closes it. There is no resynchronisation.
//!
//! # Messages
//!
//! A message is a JSON object with exactly one key, the message type in snake_case, whose value
//! holds the fields. Enums inside follow the same rule (`{"dns":{"server":"ns1","op":{...}}}`)
//! except the ones without data, which are plain strings (`"primary"`).
//!
//! | type | direction | purpose |
//! |---|---|---|
//! | `hello` | agent -> Central | versions, challenge (nothing that tells who the agent is) |
//! | `auth` | Central -> agent | chosen version, Central's name, proof of the shared key, challenge |
//! | `welcome` | agent -> Central | proof accepted, the chosen version is in force; the agent's proof, name, roles, managed servers |
//! | `refused` | either, in the handshake | reason; the sender closes the connection |
//! | `request` | Central -> agent | `id` and a [`RequestBody`] naming the target `server` |
//! | `response` | agent -> Central | the request's `id` and `{"ok": ...}` or `{"error": ...}` |
//! | `ping`, `pong` | either | heartbeat; `pong` echoes the `nonce` |
//! | `event` | agent -> Central | a change on a server Central did not make ([`EventBody`]) |
//!
//! Requests may be pipelined: Central numbers them, the agent may answer out of order, and each
//! `response` carries its request's `id`. A request that breaks a rule of [`Request::validate`]
//! is answered with [`RemoteErrorCode::Invalid`]; the connection stays open.
//!
//! Fields that may be `null` may be left out; unknown fields are ignored, so a newer
//! peer may add optional fields without a new version. An unknown message type, or an unknown
//! value of an enum other than [`RemoteErrorCode`] (which decodes as `unknown`), is an error.
//! Any other change needs a new [`PROTOCOL_VERSION`].
//!
//! # Handshake
//!
//! After TLS is up, before anything else:
//!
//! 1. The agent sends [`Hello`]: the versions it speaks and a fresh 32-byte random challenge
//!    as 64 hex digits ([`new_challenge`]). Nothing else: a peer that does not hold the key
//!    learns neither the agent's name nor its roles nor its servers.
//! 2. Central picks the highest version both speak ([`negotiate`]) and answers [`Auth`] with
//!    it, its own name, the proof ([`prove`], or [`answer_hello`] for the whole step) and a
//!    fresh challenge of its own:
//!
//!    ```text
//!    proof = HMAC-SHA256(shared key,
//!                        "ipam-agent-auth-v1" || binding (32 bytes) || challenge (32 bytes)
//!                        || central_name (UTF-8) || version (u16, 2 bytes little-endian))
//!    ```
//!
//!    `binding` ([`Binding`]) is 32 bytes both ends derive from the TLS connection's keys
//!    (RFC 5705 exporter, label [`BINDING_LABEL`]): a proof is good on its own connection
//!    only, so nothing in the middle can relay it. When no version is common, Central sends
//!    `refused` instead and closes.
//! 3. The agent checks that the version is one it offered and the proof, in constant time
//!    ([`verify`], or [`check_auth`] for the whole step). On success it sends [`Welcome`]: the
//!    version, its own proof of the key over the challenge Central put in `auth`
//!    ([`prove_agent`]: label [`WELCOME_LABEL`], the binding, Central's challenge, the agent's
//!    name, the version), and only now who it is: its name, roles (`dns`, `dhcp`) and the
//!    servers it manages (name and kind: `bind`, `powerdns`, `kea`, `isc_dhcpd`). On failure
//!    it sends `refused` with the reason and closes.
//! 4. Central checks the agent's proof ([`verify_agent`]) and the rest of `welcome`
//!    ([`Welcome::validate`]); a wrong one closes the connection.
//!
//! Only after `welcome` may requests, events and heartbeats flow. The shared key is configured
//! on both sides and is never sent; an empty key is always refused, and both sides refuse at
//! start a key that does not pass [`check_shared_key`] (the rule is in [`key`]).
//!
//! # Modules
//!
//! The types live in [`dns`] (zones, records), [`dhcp`] (scopes, options, reservations, leases)
//! and [`validate`] (the limits and their checks); the most used ones are re-exported here.
//! [`presentation`] is the one canonical text form of DNS record data, which the DNS drivers
//! report and Central stores; [`key`] is the rule shared keys must pass.

pub mod dhcp;
pub mod dns;
mod error;
mod frame;
mod handshake;
pub mod key;
mod message;
mod net;
pub mod presentation;
pub mod validate;

pub use dhcp::{ClientIdentifier, DhcpOp, DhcpOption, Lease, LeaseState, Pool, Reservation, Scope};
pub use dns::{DnsOp, RecordDelete, ResourceRecord, ZoneInfo, ZoneSpec, ZoneType};
pub use error::{FrameError, HandshakeError, ProtoError, ValidationError};
pub use frame::{
    decode_payload, encode, encode_with_limit, FrameDecoder, DEFAULT_MAX_FRAME_LEN,
    LENGTH_PREFIX_LEN,
};
pub use handshake::{
    answer_hello, check_auth, negotiate, new_challenge, prove, prove_agent, verify, verify_agent,
    Auth, Binding, Challenge, Hello, ManagedServer, Proof, Role, ServerKind, Welcome, AUTH_LABEL,
    BINDING_LABEL, MAX_SERVERS, MAX_VERSIONS, PROTOCOL_VERSION, SUPPORTED_VERSIONS, WELCOME_LABEL,
};
pub use key::{check_shared_key, KeyError, MIN_KEY_BYTES};
pub use message::{
    EventBody, Message, RemoteError, RemoteErrorCode, Request, RequestBody, Response, ResponseBody,
    ServerStatus,
};
pub use net::{Cidr, HexId, MacAddr};
