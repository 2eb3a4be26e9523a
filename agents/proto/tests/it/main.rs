//! Integration tests of `ipam-agent-proto`: one binary, a module per area.

mod codec;
mod handshake;
mod strategies;
mod wire;
