//! The drivers' error type and its mapping to the protocol's [`RemoteError`].

use std::io;
use std::time::Duration;

use ipam_agent_proto::{RemoteError, RemoteErrorCode};

/// Why a driver operation failed. Every message starts with the server's configured name and
/// says what the driver was doing, so it can go to Central as it is.
///
/// Unless the variant says otherwise ([`DnsError::Timeout`], [`DnsError::Partial`]), the
/// server changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The driver's configuration is unusable (a secret that is not base64, an unknown
    /// algorithm, a zone directory whose path cannot go into named.conf). Found when the
    /// driver is made, before anything is sent.
    #[error("{server}: the driver configuration is invalid: {reason}")]
    Config {
        /// The server's name.
        server: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The server did not accept a connection or dropped it: it is stopped, or the address
    /// or port is wrong.
    #[error("{server}: cannot reach {endpoint} while {action}: {detail} (is the server running?)")]
    ServerDown {
        /// The server's name.
        server: String,
        /// What the driver was doing (`reading zone example.com by AXFR`).
        action: String,
        /// The endpoint that failed (`DNS 127.0.0.1:53`, `rndc 127.0.0.1:953`).
        endpoint: String,
        /// The operating system's or tool's reason.
        detail: String,
    },
    /// The server did not answer in time. A change may or may not have been applied.
    #[error(
        "{server}: {endpoint} did not answer within {after:?} while {action}; \
         a change may or may not have been applied"
    )]
    Timeout {
        /// The server's name.
        server: String,
        /// What the driver was doing.
        action: String,
        /// The endpoint that did not answer.
        endpoint: String,
        /// The time waited.
        after: Duration,
    },
    /// The server refused: a wrong TSIG key, rndc key or API key, an ACL or policy that does
    /// not grant the key, or a check of the server's own (a CNAME beside other data, a static
    /// zone).
    #[error("{server}: {action} was refused: {reason}")]
    Refused {
        /// The server's name.
        server: String,
        /// What the driver was doing.
        action: String,
        /// The server's reason, and the likely fix.
        reason: String,
    },
    /// The zone does not exist on the server.
    #[error("{server}: zone {zone} does not exist on the server ({action})")]
    NotFound {
        /// The server's name.
        server: String,
        /// The zone.
        zone: String,
        /// What the driver was doing.
        action: String,
    },
    /// The zone to create exists already.
    #[error("{server}: zone {zone} already exists on the server")]
    AlreadyExists {
        /// The server's name.
        server: String,
        /// The zone.
        zone: String,
    },
    /// The input cannot be sent: record data that does not parse for its type, an owner name
    /// outside the zone, a record too large for one DNS message. Nothing was sent.
    #[error("{server}: {action}: {reason}")]
    Invalid {
        /// The server's name.
        server: String,
        /// What the driver was doing.
        action: String,
        /// What is wrong with which input.
        reason: String,
    },
    /// This driver or server cannot do what was asked (views, for now).
    #[error("{server}: {what} is not supported")]
    Unsupported {
        /// The server's name.
        server: String,
        /// What was asked, and why it cannot be done.
        what: String,
    },
    /// The server tried and failed on its side (SERVFAIL, HTTP 500, an rndc command that
    /// failed for a reason of the server's).
    #[error("{server}: {action} failed on the server: {reason}")]
    ServerFailure {
        /// The server's name.
        server: String,
        /// What the driver was doing.
        action: String,
        /// The server's words.
        reason: String,
    },
    /// The server's answer is not what the protocol allows (malformed DNS message, a bad TSIG
    /// signature on an answer, unexpected JSON).
    #[error("{server}: unexpected answer from {endpoint} while {action}: {detail}")]
    Protocol {
        /// The server's name.
        server: String,
        /// What the driver was doing.
        action: String,
        /// The endpoint that answered.
        endpoint: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A local step failed: writing the initial zone file, starting the `rndc` program.
    #[error("{server}: {action} failed on the agent's host: {detail}")]
    Local {
        /// The server's name.
        server: String,
        /// What the driver was doing (`writing zone file /var/lib/bind/x.zone`).
        action: String,
        /// The operating system's reason.
        detail: String,
    },
    /// A batch too large for one DNS message was sent as several; the first ones were applied,
    /// then one failed. The zone holds the first `applied` changes of the batch (deletes
    /// first, then adds, in the order given) and none of the rest.
    #[error(
        "{server}: only the first {applied} of {total} record changes of zone {zone} were \
         applied (the batch was split into {messages} UPDATE messages): {source}"
    )]
    Partial {
        /// The server's name.
        server: String,
        /// The zone.
        zone: String,
        /// How many changes (deletes, then adds) were applied.
        applied: usize,
        /// How many changes the batch had.
        total: usize,
        /// How many messages the batch was split into.
        messages: usize,
        /// The failure of the first message that was not applied.
        source: Box<DnsError>,
    },
}

impl DnsError {
    /// The protocol's error code for this error.
    pub fn code(&self) -> RemoteErrorCode {
        match self {
            DnsError::Config { .. } | DnsError::Protocol { .. } | DnsError::Local { .. } => {
                RemoteErrorCode::Internal
            }
            DnsError::ServerDown { .. } => RemoteErrorCode::ServerDown,
            DnsError::Timeout { .. } => RemoteErrorCode::Timeout,
            DnsError::Refused { .. } | DnsError::ServerFailure { .. } => RemoteErrorCode::Refused,
            DnsError::NotFound { .. } => RemoteErrorCode::NotFound,
            DnsError::AlreadyExists { .. } => RemoteErrorCode::AlreadyExists,
            DnsError::Invalid { .. } => RemoteErrorCode::Invalid,
            DnsError::Unsupported { .. } => RemoteErrorCode::Unsupported,
            DnsError::Partial { source, .. } => source.code(),
        }
    }
}

impl From<DnsError> for RemoteError {
    fn from(err: DnsError) -> RemoteError {
        RemoteError::new(err.code(), err.to_string())
    }
}

/// Turns an I/O error talking to a server into [`DnsError::Timeout`] or
/// [`DnsError::ServerDown`].
pub(crate) fn io_error(
    server: &str,
    action: &str,
    endpoint: &str,
    timeout: Duration,
    err: &io::Error,
) -> DnsError {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => DnsError::Timeout {
            server: server.to_owned(),
            action: action.to_owned(),
            endpoint: endpoint.to_owned(),
            after: timeout,
        },
        _ => DnsError::ServerDown {
            server: server.to_owned(),
            action: action.to_owned(),
            endpoint: endpoint.to_owned(),
            detail: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_protocol() {
        let down = DnsError::ServerDown {
            server: "ns1".into(),
            action: "reading zone a.test by AXFR".into(),
            endpoint: "DNS 127.0.0.1:53".into(),
            detail: "connection refused".into(),
        };
        assert_eq!(down.code(), RemoteErrorCode::ServerDown);
        let partial = DnsError::Partial {
            server: "ns1".into(),
            zone: "a.test".into(),
            applied: 10,
            total: 20,
            messages: 2,
            source: Box::new(down.clone()),
        };
        assert_eq!(partial.code(), RemoteErrorCode::ServerDown);
        let remote = RemoteError::from(partial);
        assert!(
            remote.message.starts_with("ns1: only the first 10 of 20"),
            "{remote}"
        );
        assert!(
            remote.message.contains("is the server running?"),
            "{remote}"
        );
    }

    #[test]
    fn timeouts_and_refusals_of_sockets_are_classified() {
        let t = io_error(
            "ns1",
            "x",
            "DNS 127.0.0.1:53",
            Duration::from_secs(1),
            &io::Error::from(io::ErrorKind::WouldBlock),
        );
        assert_eq!(t.code(), RemoteErrorCode::Timeout);
        let d = io_error(
            "ns1",
            "x",
            "DNS 127.0.0.1:53",
            Duration::from_secs(1),
            &io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(d.code(), RemoteErrorCode::ServerDown);
    }
}
