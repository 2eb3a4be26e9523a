//! Integration tests of `ipam-agent-dns` against real servers (BIND 9, PowerDNS) that the
//! tests start themselves on free 127.0.0.1 ports. Without the servers installed they fail
//! and say what to install, unless IPAM_SKIP_DNS=1.

mod bind;
mod harness;
mod powerdns;
