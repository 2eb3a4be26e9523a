//! [`DhcpError`]: why a driver call failed, with the server's name and the command that failed,
//! and its mapping to the protocol's [`RemoteErrorCode`].

use std::path::PathBuf;
use std::time::Duration;

use ipam_agent_proto::{RemoteError, RemoteErrorCode};

/// Why a [`DhcpServer`](crate::DhcpServer) call failed. Each variant names the server (by the
/// name the agent gave it) and the server-level command that failed (`config-set`,
/// `OMAPI open host`, `read leases file`). Unless the variant says otherwise, the server was not
/// changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhcpError {
    /// The server did not answer: its control socket or port refused the connection, the
    /// connection broke, or the control agent could not reach the server behind it.
    #[error("DHCP server {server}: {command} failed: the server is not answering ({reason})")]
    ServerDown {
        /// The server's name.
        server: String,
        /// The command that failed.
        command: String,
        /// What the operating system or the control agent said.
        reason: String,
    },
    /// The scope, reservation or lease named in the request does not exist on the server.
    #[error("DHCP server {server}: {command} failed: {what} does not exist")]
    NotFound {
        /// The server's name.
        server: String,
        /// The command that failed.
        command: String,
        /// What was looked for (`scope 192.0.2.0/24`).
        what: String,
    },
    /// What the request would create exists already (a scope for the subnet, a reservation for
    /// the client or for the address).
    #[error("DHCP server {server}: {command} failed: {what} already exists")]
    AlreadyExists {
        /// The server's name.
        server: String,
        /// The command that failed.
        command: String,
        /// What is in the way (`a reservation of 192.0.2.42 for 02:00:00:00:00:42`).
        what: String,
    },
    /// The server refused: its own checks failed (Kea's `config-test`), the key was wrong, or
    /// the command is not allowed. The server's reason is quoted.
    #[error("DHCP server {server}: {command} was refused: {reason}")]
    Refused {
        /// The server's name.
        server: String,
        /// The command that was refused.
        command: String,
        /// The server's reason.
        reason: String,
    },
    /// The request cannot be applied to this server (a reservation outside every scope, an IPv6
    /// scope on a DHCPv4 server, a malformed cursor). Nothing was sent to the server.
    #[error("DHCP server {server}: {command}: invalid request: {reason}")]
    Invalid {
        /// The server's name.
        server: String,
        /// The operation that was asked.
        command: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This kind of server cannot do it (ISC dhcpd cannot change scopes at run time; Kea
    /// without the lease_cmds hook cannot list leases).
    #[error("DHCP server {server}: {command} is not supported: {reason}")]
    Unsupported {
        /// The server's name.
        server: String,
        /// The operation that was asked.
        command: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The server accepted the connection but did not answer in time. A change may or may not
    /// have been applied: read the state back before retrying.
    #[error(
        "DHCP server {server}: {command} got no answer within {after:?}; \
         a change may or may not have been applied"
    )]
    Timeout {
        /// The server's name.
        server: String,
        /// The command that timed out.
        command: String,
        /// The time waited.
        after: Duration,
    },
    /// The server answered something this driver does not understand (not JSON, a missing
    /// field, a broken OMAPI message). A bug here or an unsupported server version.
    #[error("DHCP server {server}: {command}: the answer could not be understood: {detail}")]
    BadAnswer {
        /// The server's name.
        server: String,
        /// The command whose answer was bad.
        command: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A local file the driver reads (dhcpd's configuration or lease file) could not be read or
    /// parsed.
    #[error("DHCP server {server}: {command}: {path}: {detail}")]
    File {
        /// The server's name.
        server: String,
        /// What the driver was doing (`read leases file`).
        command: String,
        /// The file.
        path: PathBuf,
        /// The operating system's error, or where the parse failed.
        detail: String,
    },
}

impl DhcpError {
    /// The protocol's code for this error, sent to Central with the message.
    pub fn code(&self) -> RemoteErrorCode {
        match self {
            DhcpError::ServerDown { .. } => RemoteErrorCode::ServerDown,
            DhcpError::NotFound { .. } => RemoteErrorCode::NotFound,
            DhcpError::AlreadyExists { .. } => RemoteErrorCode::AlreadyExists,
            DhcpError::Refused { .. } => RemoteErrorCode::Refused,
            DhcpError::Invalid { .. } => RemoteErrorCode::Invalid,
            DhcpError::Unsupported { .. } => RemoteErrorCode::Unsupported,
            DhcpError::Timeout { .. } => RemoteErrorCode::Timeout,
            DhcpError::BadAnswer { .. } | DhcpError::File { .. } => RemoteErrorCode::Internal,
        }
    }

    /// The server's name, as the agent configured it.
    pub fn server(&self) -> &str {
        match self {
            DhcpError::ServerDown { server, .. }
            | DhcpError::NotFound { server, .. }
            | DhcpError::AlreadyExists { server, .. }
            | DhcpError::Refused { server, .. }
            | DhcpError::Invalid { server, .. }
            | DhcpError::Unsupported { server, .. }
            | DhcpError::Timeout { server, .. }
            | DhcpError::BadAnswer { server, .. }
            | DhcpError::File { server, .. } => server,
        }
    }

    /// The server-level command that failed (`config-set`, `OMAPI open host`).
    pub fn command(&self) -> &str {
        match self {
            DhcpError::ServerDown { command, .. }
            | DhcpError::NotFound { command, .. }
            | DhcpError::AlreadyExists { command, .. }
            | DhcpError::Refused { command, .. }
            | DhcpError::Invalid { command, .. }
            | DhcpError::Unsupported { command, .. }
            | DhcpError::Timeout { command, .. }
            | DhcpError::BadAnswer { command, .. }
            | DhcpError::File { command, .. } => command,
        }
    }
}

impl From<DhcpError> for RemoteError {
    /// The error as the agent sends it to Central: its code and its sentence.
    fn from(err: DhcpError) -> RemoteError {
        RemoteError::new(err.code(), err.to_string())
    }
}

/// Builds errors for one server and one command, so call sites stay short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub server: &'a str,
    pub command: &'a str,
}

impl<'a> Ctx<'a> {
    pub fn new(server: &'a str, command: &'a str) -> Ctx<'a> {
        Ctx { server, command }
    }

    pub fn down(self, reason: impl Into<String>) -> DhcpError {
        DhcpError::ServerDown {
            server: self.server.into(),
            command: self.command.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(self, what: impl Into<String>) -> DhcpError {
        DhcpError::NotFound {
            server: self.server.into(),
            command: self.command.into(),
            what: what.into(),
        }
    }

    pub fn exists(self, what: impl Into<String>) -> DhcpError {
        DhcpError::AlreadyExists {
            server: self.server.into(),
            command: self.command.into(),
            what: what.into(),
        }
    }

    pub fn refused(self, reason: impl Into<String>) -> DhcpError {
        DhcpError::Refused {
            server: self.server.into(),
            command: self.command.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid(self, reason: impl Into<String>) -> DhcpError {
        DhcpError::Invalid {
            server: self.server.into(),
            command: self.command.into(),
            reason: reason.into(),
        }
    }

    pub fn unsupported(self, reason: impl Into<String>) -> DhcpError {
        DhcpError::Unsupported {
            server: self.server.into(),
            command: self.command.into(),
            reason: reason.into(),
        }
    }

    pub fn timeout(self, after: Duration) -> DhcpError {
        DhcpError::Timeout {
            server: self.server.into(),
            command: self.command.into(),
            after,
        }
    }

    pub fn bad_answer(self, detail: impl Into<String>) -> DhcpError {
        DhcpError::BadAnswer {
            server: self.server.into(),
            command: self.command.into(),
            detail: detail.into(),
        }
    }

    pub fn file(self, path: impl Into<PathBuf>, detail: impl Into<String>) -> DhcpError {
        DhcpError::File {
            server: self.server.into(),
            command: self.command.into(),
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Maps an I/O error on the server's connection: a timeout to [`DhcpError::Timeout`],
    /// anything else to [`DhcpError::ServerDown`].
    pub fn io(self, err: &std::io::Error, after: Duration) -> DhcpError {
        match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => self.timeout(after),
            _ => self.down(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let ctx = Ctx::new("dhcp1", "config-set");
        let err = ctx.refused("subnet overlaps");
        assert_eq!(err.code(), RemoteErrorCode::Refused);
        assert_eq!(err.server(), "dhcp1");
        assert_eq!(err.command(), "config-set");
        assert_eq!(
            err.to_string(),
            "DHCP server dhcp1: config-set was refused: subnet overlaps"
        );
        let remote = RemoteError::from(ctx.down("connection refused"));
        assert_eq!(remote.code, RemoteErrorCode::ServerDown);
        assert!(remote.message.contains("dhcp1") && remote.message.contains("config-set"));
        let timeout = ctx.io(
            &std::io::Error::from(std::io::ErrorKind::WouldBlock),
            Duration::from_secs(3),
        );
        assert_eq!(timeout.code(), RemoteErrorCode::Timeout);
        assert_eq!(ctx.bad_answer("not JSON").code(), RemoteErrorCode::Internal);
    }
}
