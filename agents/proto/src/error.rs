//! Errors: one enum per family (framing, handshake, validation) joined by [`ProtoError`].

/// Why a frame could not be encoded or decoded. The decoder that returned one stays failed: the
/// caller logs the error and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame longer than this side accepts. Returned as soon as the length
    /// prefix arrives; the body is never buffered.
    #[error("the peer announced a frame of {len} bytes, over the limit of {max} bytes")]
    FrameTooLarge {
        /// Payload length from the prefix.
        len: u64,
        /// The decoder's limit.
        max: u32,
    },
    /// A message to send encodes to more bytes than the frame limit; nothing was encoded.
    #[error(
        "the {message} message encodes to {len} bytes, over the frame limit of {max} bytes: \
         send less per message (page the listing)"
    )]
    MessageTooLarge {
        /// The message's type, as on the wire (`response`).
        message: &'static str,
        /// Encoded payload length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A frame's payload is not JSON (syntax error or cut short).
    #[error("a frame's payload of {len} bytes is not valid JSON: {detail}")]
    InvalidJson {
        /// Payload length.
        len: u32,
        /// serde_json's description, with line and column.
        detail: String,
    },
    /// A frame's payload is JSON but not a message this version knows: an unknown message type,
    /// a missing field or a field of the wrong type.
    #[error("a frame's payload of {len} bytes is not a known message: {detail}")]
    InvalidMessage {
        /// Payload length.
        len: u32,
        /// serde_json's description, with line and column.
        detail: String,
    },
    /// Encoding a message to JSON failed (a bug: every message type serializes).
    #[error("encoding the {message} message to JSON failed: {detail}")]
    Encode {
        /// The message's type, as on the wire.
        message: &'static str,
        /// serde_json's description.
        detail: String,
    },
}

/// Why a handshake step failed. The connection is closed after any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Central's proof does not match the shared key, the challenge, Central's name and the
    /// chosen version: Central does not hold the key, or the agent and Central are configured
    /// with different keys.
    #[error(
        "Central's proof does not match: it does not hold this agent's shared key \
         (check that both sides are configured with the same key)"
    )]
    BadProof,
    /// The two sides support no common protocol version.
    #[error("no common protocol version: this side speaks {ours:?}, the peer {theirs:?}")]
    NoCommonVersion {
        /// Versions this side speaks.
        ours: Vec<u16>,
        /// Versions the peer offered.
        theirs: Vec<u16>,
    },
    /// Central chose a version the agent did not offer.
    #[error(
        "Central chose protocol version {chosen}, which the agent did not offer ({offered:?})"
    )]
    VersionNotOffered {
        /// The version in Central's `auth`.
        chosen: u16,
        /// The versions in the agent's `hello`.
        offered: Vec<u16>,
    },
    /// The operating system's random number generator failed, so no challenge could be made.
    #[error("the system random number generator failed while making a handshake challenge")]
    Random,
    /// The shared key is empty (a configuration mistake; use at least 32 random bytes).
    #[error("the shared agent key is empty: configure at least 32 random bytes")]
    EmptyKey,
}

/// A field of a message breaks a rule of the protocol. An agent answers a request that fails
/// validation with [`RemoteErrorCode::Invalid`](crate::RemoteErrorCode::Invalid) and keeps the
/// connection open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A text field is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field (`server`, `zone`, `record name`).
        field: &'static str,
    },
    /// A text field or list is too long.
    #[error("{field} is {len} long, over the limit of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length (bytes for text, entries for lists).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text field holds a character that is not allowed (line breaks and other control
    /// characters would let a value inject lines into a zone file or a server command).
    #[error("{field} {value:?} contains the forbidden character {ch:?} ({why})")]
    BadCharacter {
        /// The field.
        field: &'static str,
        /// The value, cut to 80 characters.
        value: String,
        /// The character.
        ch: char,
        /// Which characters are allowed.
        why: &'static str,
    },
    /// A DNS name breaks the rules of RFC 1035.
    #[error("DNS name {name:?} is invalid: {reason}")]
    DnsName {
        /// The name, cut to 80 characters.
        name: String,
        /// Which rule, with its limit.
        reason: String,
    },
    /// A number is outside its allowed range.
    #[error("{field} is {value}, outside the allowed {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A value that must be well formed is not (an address range, a CIDR, an identifier).
    #[error("{field} {value:?} is invalid: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// The value as text, cut to 80 characters.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A list holds the same key twice.
    #[error("{field} lists {value:?} twice")]
    Duplicate {
        /// The list.
        field: &'static str,
        /// The repeated key.
        value: String,
    },
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Framing or JSON failed; the connection must be closed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The handshake failed; the connection must be closed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A message's content breaks a protocol rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Cuts a value quoted in an error message to 80 characters.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", value.get(..at).unwrap_or_default()),
        None => value.to_owned(),
    }
}
