//! Small network value types carried in messages, each written as one JSON string:
//! [`Cidr`] (`"192.0.2.0/24"`), [`MacAddr`] (`"00:16:3e:12:34:56"`) and [`HexId`]
//! (`"01:00:16:3e:12:34:56"`), plus the hex helpers they and the handshake share.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{excerpt, ValidationError};

/// An IP prefix: an address whose bits after `prefix_len` are all zero, and the prefix length.
/// Written `"10.1.0.0/16"` or `"2001:db8::/32"`. A `Cidr` is always well formed: the only ways
/// to make one ([`Cidr::new`], parsing, decoding) check the length and the host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Makes a prefix. Fails when `prefix_len` is over 32 (IPv4) or 128 (IPv6), or when `addr`
    /// has bits set after the prefix (`10.1.2.3/16`: write `10.1.0.0/16`).
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Cidr, ValidationError> {
        let max = max_prefix_len(addr);
        if prefix_len > max {
            return Err(ValidationError::OutOfRange {
                field: "prefix length",
                value: u64::from(prefix_len),
                min: 0,
                max: u64::from(max),
            });
        }
        let cidr = Cidr { addr, prefix_len };
        if cidr.network_bits() != addr_bits(addr) {
            return Err(ValidationError::Malformed {
                field: "subnet",
                value: format!("{addr}/{prefix_len}"),
                reason:
                    "the address has bits set after the prefix length (use the network address)",
            });
        }
        Ok(cidr)
    }

    /// The network address (first address).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length, 0..=32 for IPv4 and 0..=128 for IPv6.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` lies inside the prefix (always false across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        addr_bits(ip) & self.mask() == addr_bits(self.addr)
    }

    fn mask(&self) -> u128 {
        let width = u32::from(max_prefix_len(self.addr));
        let all = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        let host_bits = width - u32::from(self.prefix_len);
        all.checked_shl(host_bits).map_or(0, |m| m & all)
    }

    fn network_bits(&self) -> u128 {
        addr_bits(self.addr) & self.mask()
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// An address as an integer (IPv4 in the low 32 bits), for ordering and masks.
pub(crate) fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = ValidationError;

    /// Parses `"addr/len"`; the length is required.
    fn from_str(s: &str) -> Result<Cidr, ValidationError> {
        let malformed = |reason| ValidationError::Malformed {
            field: "subnet",
            value: excerpt(s),
            reason,
        };
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| malformed("expected address/prefix-length, like 192.0.2.0/24"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| malformed("the part before / is not an IP address"))?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(
                "the prefix length is not a number of 1 to 3 digits",
            ));
        }
        let len: u8 = len
            .parse()
            .map_err(|_| malformed("the prefix length is over 255"))?;
        Cidr::new(addr, len)
    }
}

/// A 48-bit Ethernet hardware address, written as six lower-case hex pairs separated by colons
/// (`"00:16:3e:12:34:56"`); parsing also accepts upper case and `-` separators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_joined(&self.0, ':'))
    }
}

impl FromStr for MacAddr {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<MacAddr, ValidationError> {
        let bytes = parse_separated_hex(s).filter(|b| b.len() == 6);
        bytes
            .and_then(|b| <[u8; 6]>::try_from(b).ok())
            .map(MacAddr)
            .ok_or_else(|| ValidationError::Malformed {
                field: "MAC address",
                value: excerpt(s),
                reason: "expected six hex pairs separated by ':' or '-', like 00:16:3e:12:34:56",
            })
    }
}

/// A DHCP client identifier (option 61) or DHCPv6 DUID: 1 to [`HexId::MAX_LEN`] bytes,
/// written as lower-case hex pairs separated by colons (`"01:00:16:3e:12:34:56"`); parsing also
/// accepts `-` separators or none (`"0100163e123456"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexId(Vec<u8>);

impl HexId {
    /// The longest identifier: a DHCP option carries at most 255 bytes.
    pub const MAX_LEN: usize = 255;

    /// Wraps identifier bytes; fails when they are empty or longer than [`HexId::MAX_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<HexId, ValidationError> {
        if bytes.is_empty() {
            return Err(ValidationError::Empty {
                field: "client identifier",
            });
        }
        if bytes.len() > HexId::MAX_LEN {
            return Err(ValidationError::TooLong {
                field: "client identifier",
                len: bytes.len(),
                max: HexId::MAX_LEN,
            });
        }
        Ok(HexId(bytes))
    }

    /// The identifier's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for HexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_joined(&self.0, ':'))
    }
}

impl FromStr for HexId {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<HexId, ValidationError> {
        let bytes = parse_separated_hex(s)
            .or_else(|| parse_hex(s))
            .ok_or_else(|| ValidationError::Malformed {
                field: "client identifier",
                value: excerpt(s),
                reason: "expected hex pairs separated by ':' or '-', or plain hex digits",
            })?;
        HexId::new(bytes)
    }
}

/// Serializes a value as its `Display` string and deserializes it with `FromStr`.
macro_rules! serde_as_string {
    ($t:ty, $expecting:literal) => {
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $t;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: ::serde::de::Error>(
                        self,
                        v: &str,
                    ) -> ::std::result::Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}
pub(crate) use serde_as_string;

serde_as_string!(Cidr, "a prefix as a string, like \"192.0.2.0/24\"");
serde_as_string!(
    MacAddr,
    "a MAC address as a string, like \"00:16:3e:12:34:56\""
);
serde_as_string!(
    HexId,
    "an identifier as hex pairs, like \"01:00:16:3e:12:34:56\""
);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`, without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

fn hex_joined(bytes: &[u8], sep: char) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(&hex(&[*b]));
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes plain hex (either case); `None` on an odd length or a non-hex character.
pub(crate) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Decodes hex pairs separated by one kind of separator, `:` or `-` (`"0:1"` is refused: each
/// group is exactly two digits). `None` when the text has no separator or is malformed.
fn parse_separated_hex(s: &str) -> Option<Vec<u8>> {
    let sep = if s.contains(':') { ':' } else { '-' };
    if !s.contains(sep) {
        return None;
    }
    s.split(sep)
        .map(|group| match group.as_bytes() {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_checks_host_bits() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        assert!(c.contains("10.1.255.255".parse().unwrap()));
        assert!(!c.contains("10.2.0.0".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!("10.1.2.3/16".parse::<Cidr>().is_err());
        assert!("10.1.0.0/33".parse::<Cidr>().is_err());
        assert!("10.1.0.0".parse::<Cidr>().is_err());
        assert!("10.1.0.0/+8".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("255.255.255.255".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        let host: Cidr = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains("2001:db8::1".parse().unwrap()));
        assert!(!host.contains("2001:db8::2".parse().unwrap()));
        assert!("::/0".parse::<Cidr>().is_ok());
    }

    #[test]
    fn mac_and_hex_ids_round_trip() {
        let m: MacAddr = "00-16-3E-12-34-56".parse().unwrap();
        assert_eq!(m.to_string(), "00:16:3e:12:34:56");
        assert!("00:16:3e:12:34".parse::<MacAddr>().is_err());
        assert!("00:16:3e:12:34:5".parse::<MacAddr>().is_err());
        assert!("001:6:3e:12:34:56".parse::<MacAddr>().is_err());
        let id: HexId = "0100163e123456".parse().unwrap();
        assert_eq!(id.to_string(), "01:00:16:3e:12:34:56");
        assert_eq!(id, "01:00:16:3e:12:34:56".parse().unwrap());
        assert!("".parse::<HexId>().is_err());
        assert!("0g".parse::<HexId>().is_err());
        assert_eq!("ab".parse::<HexId>().unwrap().as_bytes(), &[0xab]);
        assert_eq!(hex(&[0, 0xff, 0x1a]), "00ff1a");
        assert_eq!(parse_hex("00FF1a"), Some(vec![0, 0xff, 0x1a]));
        assert_eq!(parse_hex("0"), None);
    }
}
