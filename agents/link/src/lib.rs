//! `ipam-agent-link`: Central's side of the link to its DNS and DHCP agents, and the
//! transport both ends share.
//!
//! The protocol (frames, handshake, messages) is [`ipam_agent_proto`]; this crate runs it
//! over TLS ([`ipam_tls`]). It knows no driver: Central links to it, not to the agent.
//!
//! - [`link`]: [`link::connect`] makes one connection (pinning the agent's certificate: a
//!   changed certificate is refused, like SSH known hosts, see [`pins`]), proves the shared
//!   key, checks the agent's proof in its `welcome`, and answers an [`AgentLink`] that
//!   multiplexes requests by id, sends heartbeats and ends when the agent stops answering;
//!   [`link::Supervisor`] keeps a link up, reconnecting with exponential backoff.
//! - [`pins`]: the agents' certificates as Central pinned them, in a file.
//! - [`wire`]: messages on any async stream with a bounded frame size, and the TLS binding
//!   the proofs cover; the agent (`ipam-agent`) uses it for its side too.
pub mod link;
pub mod pins;
pub mod wire;

pub use link::{AgentLink, LinkConfig, LinkError, Supervisor};
pub use pins::Pins;
