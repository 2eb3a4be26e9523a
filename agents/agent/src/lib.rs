//! `ipam-agent`: the agent that sits next to DNS and DHCP servers and carries out what
//! Central asks.
//!
//! The protocol (frames, handshake, messages) is [`ipam_agent_proto`]; the framed transport
//! both ends share is [`ipam_agent_link::wire`], whose crate also holds Central's side of the
//! link. This crate is the agent's side:
//!
//! - [`serve`]: a TLS listener (the agent's certificate is self-signed on first start and
//!   names no host, see [`ipam_tls`]), the handshake in which Central proves the shared key
//!   before the agent tells who it is, then requests dispatched to a [`Handler`] (the DNS/DHCP
//!   drivers), heartbeats, and a bounded frame size. A broken, oversize or unexpected frame
//!   closes that connection with a logged reason; other connections and the agent go on.
//! - [`drivers`] builds the drivers (BIND, PowerDNS, Kea, ISC dhcpd) from the agent's
//!   configuration file and sends each request to the right one.
pub mod drivers;
pub mod serve;

pub use serve::{AgentConfig, Handler};
