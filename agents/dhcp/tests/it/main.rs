//! Integration tests of `ipam-agent-dhcp` against real servers and real DHCP clients: one
//! binary, a module per server. They need root (network namespaces) and the Debian packages
//! that `./test.sh` as root (it installs them) installs; `IPAM_SKIP_DHCP=1` skips them.

mod harness;
mod isc;
mod kea;
