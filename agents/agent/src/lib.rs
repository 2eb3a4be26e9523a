//! `ipam-agent`: the agent that sits next to DNS and DHCP servers, and Central's side of the
//! link to it.
//!
//! The protocol (frames, handshake, messages) is [`ipam_agent_proto`]; this crate runs it
//! over TLS:
//!
//! - [`serve`] is the agent's side: a TLS listener (the agent's certificate is self-signed on
//!   first start and names no host, see [`ipam_tls`]), the handshake in which Central
//!   proves the shared key before the agent tells who it is, then requests dispatched to a
//!   [`Handler`] (the DNS/DHCP drivers), heartbeats, and a bounded frame size. A broken, oversize or unexpected frame closes that connection with a
//!   logged reason; other connections and the agent go on.
//! - [`link`] is Central's side: [`link::connect`] makes one connection (pinning the agent's
//!   certificate: a changed certificate is refused, like SSH known hosts, see [`pins`]) and
//!   answers an [`AgentLink`] that multiplexes requests by id, sends heartbeats and ends when
//!   the agent stops answering; [`link::Supervisor`] keeps a link up, reconnecting with
//!   exponential backoff.
//! - [`drivers`] builds the drivers (BIND, PowerDNS, Kea, ISC dhcpd) from the agent's
//!   configuration file and sends each request to the right one.
//! - [`wire`] reads and writes messages on any async stream.
pub mod drivers;
pub mod link;
pub mod pins;
pub mod serve;
pub mod wire;

pub use link::{AgentLink, LinkConfig, LinkError};
pub use serve::{AgentConfig, Handler};
