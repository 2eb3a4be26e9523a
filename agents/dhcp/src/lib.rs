//! `ipam-agent-dhcp`: the DHCP server drivers the DHCP agent uses, behind one trait.
//!
//! # The trait
//!
//! [`DhcpServer`] lists, creates, updates and deletes scopes (subnets with pools, options and a
//! lease time), sets options, lists, adds and deletes host reservations, lists leases one page
//! at a time, and reports the server's status. Its inputs and outputs are the wire types of
//! [`ipam_agent_proto`] ([`Scope`](ipam_agent_proto::Scope),
//! [`Reservation`](ipam_agent_proto::Reservation), [`Lease`](ipam_agent_proto::Lease),
//! [`ServerStatus`](ipam_agent_proto::ServerStatus), ...), so the agent passes requests and
//! answers straight through; [`execute`] runs a whole [`DhcpOp`](ipam_agent_proto::DhcpOp).
//! Failures are [`DhcpError`]s, whose [`code`](DhcpError::code) is the protocol's
//! [`RemoteErrorCode`](ipam_agent_proto::RemoteErrorCode) and whose message names the server
//! and the command that failed; `RemoteError::from(err)` is the answer to send.
//!
//! The trait is object-safe (`Vec<Box<dyn DhcpServer>>`) and `Send + Sync`. **Calls block** on
//! sockets and files (each bounded by the driver's timeout): an async agent calls them from
//! `tokio::task::spawn_blocking`. Drivers serialize their own read-check-write cycles.
//!
//! # Kea ([`KeaServer`], [`KeaConfig`])
//!
//! ```no_run
//! use ipam_agent_dhcp::{DhcpServer, KeaConfig, KeaServer};
//! let kea = KeaServer::new(KeaConfig::unix_socket("dhcp1", "/run/kea/kea4-ctrl-socket"));
//! // or through kea-ctrl-agent:
//! let via_ca = KeaServer::new(
//!     KeaConfig::control_agent("dhcp1", "127.0.0.1:8000").with_credentials("kea", "secret"),
//! );
//! let scopes = kea.list_scopes()?;
//! # Ok::<(), ipam_agent_dhcp::DhcpError>(())
//! ```
//!
//! * Talks JSON to kea-dhcp4's **unix control socket** (`control-socket` in kea-dhcp4.json),
//!   reading the answer until Kea closes the socket or the JSON is complete; or to
//!   **kea-ctrl-agent** over plain HTTP with optional basic authentication.
//! * Scopes, options and reservations are changed with `config-get`, an edit of the `Dhcp4`
//!   object, `config-test`, `config-set` and `config-write` (Debian's Kea 2.2 ships no
//!   `host_cmds` or `subnet_cmds` hook). The rest of the configuration is kept as Kea returned
//!   it; subnet ids are preserved and a new scope gets the next free id; a pool or option that
//!   stays keeps its other settings. A reservation is refused before anything is sent when its
//!   address lies in no scope, or when its client or address is already reserved in that scope.
//!   `config-write` writes the file kea-dhcp4 was started with, so kea-dhcp4 must be able to
//!   write it; if it fails, the previous configuration is set again.
//! * A scope's name is the subnet's `user-context.comment`; options are those of the `dhcp4`
//!   space (other spaces are kept but not listed); reservations by `circuit-id` or `flex-id`
//!   are kept but not listed.
//! * Leases come from the **lease_cmds** hook (`lease4-get-page`), which must be loaded
//!   (`hooks-libraries`); without it listing leases is [`DhcpError::Unsupported`].
//! * Status: `status-get` (uptime) and `version-get`.
//! * Caveats: Kea 2.2 has no configuration hash, so a change made by someone else between this
//!   driver's `config-get` and `config-set` is overwritten; `config-get` returns inherited
//!   values expanded, so a scope's lease time reads back as the global one when it has none of
//!   its own. IPv4 only (kea-dhcp6 is not driven).
//!
//! # ISC dhcpd ([`IscDhcpdServer`], [`IscDhcpdConfig`])
//!
//! ```no_run
//! use ipam_agent_dhcp::{DhcpServer, IscDhcpdConfig, IscDhcpdServer, OmapiKey};
//! let key = OmapiKey::from_base64("omapi_key", "c2VjcmV0IGtleSBieXRlcw==").unwrap();
//! let dhcpd = IscDhcpdServer::new(IscDhcpdConfig::new(
//!     "dhcp2",
//!     "/etc/dhcp/dhcpd.conf",
//!     "/var/lib/dhcp/dhcpd.leases",
//!     "127.0.0.1:7911",
//!     key,
//! ));
//! let leases = dhcpd.list_leases(None, None, Some(500))?;
//! # Ok::<(), ipam_agent_dhcp::DhcpError>(())
//! ```
//!
//! * dhcpd.conf needs `omapi-port 7911;`, a `key NAME { algorithm hmac-sha256; secret "..."; }`
//!   and `omapi-key NAME;`. The driver implements the OMAPI wire protocol itself (no omshell).
//! * Scopes are **read-only**: they come from the configuration file, and creating, updating or
//!   deleting a scope or setting options is [`DhcpError::Unsupported`], because dhcpd cannot
//!   change subnets at run time.
//! * Reservations are `host` objects created and deleted through OMAPI, and listed from the
//!   configuration file plus the lease file (where dhcpd records OMAPI hosts and deletions).
//! * Leases are parsed from the lease file (`lease` blocks: address, `starts`/`ends`,
//!   `binding state`, `hardware ethernet`, `client-hostname`, `uid`; the last block for an
//!   address wins). dhcpd writes lease changes to the file as they happen, so the file is as
//!   current as the server.
//! * Caveats: OMAPI has no TLS and dhcpd 4.4 binds it to every address; keep the port
//!   firewalled or the server in its own network namespace. Requests are signed, and a
//!   successful answer is accepted only with a valid signature (dhcpd signs them). HMAC-MD5
//!   keys (dhcpd's default algorithm) are not supported: use `algorithm hmac-sha256`. ISC ended maintenance of ISC DHCP in 2022: this driver is for existing
//!   installations.

mod error;
mod isc;
mod kea;
mod server;

pub use error::DhcpError;
pub use isc::{InvalidKeyError, IscDhcpdConfig, IscDhcpdServer, OmapiKey};
pub use kea::{KeaConfig, KeaEndpoint, KeaServer};
pub use server::{execute, DhcpServer, LeasePage, DEFAULT_LEASE_PAGE, MAX_LEASE_PAGE};
