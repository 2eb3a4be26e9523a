//! Address families, the integer address types, spans and 129-bit address counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u128 {}
}

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: 32-bit addresses.
    V4,
    /// IPv6: 128-bit addresses.
    V6,
}

impl Family {
    /// Family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits (32 or 128).
    pub fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The integer form of an address of one family: `u32` for IPv4, `u128` for IPv6.
///
/// Sealed: the index is implemented for exactly these two types.
pub trait Addr:
    sealed::Sealed + Copy + Ord + Eq + std::hash::Hash + fmt::Debug + Send + Sync + 'static
{
    /// The family these addresses belong to.
    const FAMILY: Family;
    /// Width in bits.
    const BITS: u32;
    /// The highest address of the family.
    const MAX: Self;
    /// Widens to `u128`.
    fn to_u128(self) -> u128;
    /// Narrows from `u128`; the caller guarantees `v <= MAX`.
    fn from_u128(v: u128) -> Self;
    /// The standard library's address type for display.
    fn to_ip(self) -> IpAddr;
    /// Converts an `IpAddr` of this family, or `None` for the other family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
}

impl Addr for u32 {
    const FAMILY: Family = Family::V4;
    const BITS: u32 = 32;
    const MAX: Self = u32::MAX;
    #[inline]
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    #[inline]
    fn from_u128(v: u128) -> Self {
        debug_assert!(v <= u128::from(u32::MAX));
        v as u32
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(v) => Some(u32::from(v)),
            IpAddr::V6(_) => None,
        }
    }
}

impl Addr for u128 {
    const FAMILY: Family = Family::V6;
    const BITS: u32 = 128;
    const MAX: Self = u128::MAX;
    #[inline]
    fn to_u128(self) -> u128 {
        self
    }
    #[inline]
    fn from_u128(v: u128) -> Self {
        v
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(v) => Some(u128::from(v)),
            IpAddr::V4(_) => None,
        }
    }
}

/// Prefix length of `from..=to` if it is exactly one aligned CIDR block of a `bits`-wide family.
pub(crate) fn prefix_len_of(from: u128, to: u128, bits: u32) -> Option<u8> {
    let span = to.checked_sub(from)?;
    // span + 1 must be a power of two (span = 2^k - 1), and `from` aligned to it.
    if span & span.wrapping_add(1) != 0 || from & span != 0 {
        return None;
    }
    let host_bits = 128 - span.leading_zeros();
    Some((bits - host_bits) as u8)
}

/// First and last address of `addr/len` in a `bits`-wide family (`len <= bits`).
pub(crate) fn prefix_bounds(addr: u128, len: u32, bits: u32) -> (u128, u128) {
    let host = bits - len;
    let span = if host == 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    let from = addr & !span;
    (from, from | span)
}

/// A range of addresses as shown in errors and listings: CIDR when aligned, else `from-to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// First address.
    pub from: IpAddr,
    /// Last address (inclusive).
    pub to: IpAddr,
}

impl Span {
    pub(crate) fn of<A: Addr>(from: A, to: A) -> Span {
        Span {
            from: from.to_ip(),
            to: to.to_ip(),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to, bits) = match (self.from, self.to) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return write!(f, "{}-{}", self.from, self.to),
        };
        match prefix_len_of(from, to, bits) {
            Some(len) => write!(f, "{}/{}", self.from, len),
            None => write!(f, "{}-{}", self.from, self.to),
        }
    }
}

/// A number of addresses, from 0 to 2^128 inclusive (one more than `u128` holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AddrCount {
    /// Set only for exactly 2^128 (then `lo` is 0).
    full: bool,
    lo: u128,
}

impl AddrCount {
    /// Zero addresses.
    pub const ZERO: AddrCount = AddrCount { full: false, lo: 0 };
    /// Every IPv6 address: 2^128.
    pub const ALL_V6: AddrCount = AddrCount { full: true, lo: 0 };

    /// The count of `span + 1` addresses (`span` = last - first).
    pub fn from_span(span: u128) -> AddrCount {
        match span.checked_add(1) {
            Some(lo) => AddrCount { full: false, lo },
            None => AddrCount::ALL_V6,
        }
    }

    /// A count that fits `u128`.
    pub fn new(n: u128) -> AddrCount {
        AddrCount { full: false, lo: n }
    }

    /// The count as `u128`, or `None` for 2^128.
    pub fn get(self) -> Option<u128> {
        (!self.full).then_some(self.lo)
    }

    /// Approximate value as `f64` (exact up to 2^53).
    pub fn as_f64(self) -> f64 {
        if self.full {
            2f64.powi(128)
        } else {
            self.lo as f64
        }
    }

    /// Sum, saturating at 2^128.
    pub fn saturating_add(self, other: AddrCount) -> AddrCount {
        if self.full || other.full {
            return AddrCount::ALL_V6;
        }
        match self.lo.checked_add(other.lo) {
            Some(lo) => AddrCount { full: false, lo },
            None => AddrCount::ALL_V6,
        }
    }

    /// Difference, saturating at zero.
    pub fn saturating_sub(self, other: AddrCount) -> AddrCount {
        match (self.full, other.full) {
            (_, true) => AddrCount::ZERO,
            (true, false) if other.lo == 0 => self,
            (true, false) => AddrCount::new(u128::MAX - other.lo + 1),
            (false, false) => AddrCount::new(self.lo.saturating_sub(other.lo)),
        }
    }
}

impl fmt::Display for AddrCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.full {
            f.write_str("340282366920938463463374607431768211456")
        } else {
            write!(f, "{}", self.lo)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_len_edges() {
        assert_eq!(prefix_len_of(0, u128::from(u32::MAX), 32), Some(0));
        assert_eq!(prefix_len_of(0, u128::MAX, 128), Some(0));
        assert_eq!(prefix_len_of(5, 5, 32), Some(32));
        assert_eq!(prefix_len_of(u128::MAX, u128::MAX, 128), Some(128));
        assert_eq!(prefix_len_of(256, 511, 32), Some(24));
        assert_eq!(prefix_len_of(512, 1023, 32), Some(23));
        assert_eq!(prefix_len_of(128, 383, 32), None);
        assert_eq!(prefix_len_of(1, 2, 32), None);
        assert_eq!(
            prefix_bounds(0x0a01_0203, 24, 32),
            (0x0a01_0200, 0x0a01_02ff)
        );
        assert_eq!(prefix_bounds(7, 0, 128), (0, u128::MAX));
    }

    #[test]
    fn counts_cross_2_pow_128() {
        let all = AddrCount::from_span(u128::MAX);
        assert_eq!(all, AddrCount::ALL_V6);
        assert_eq!(all.get(), None);
        assert_eq!(all.to_string(), "340282366920938463463374607431768211456");
        assert_eq!(all.saturating_sub(AddrCount::new(1)).get(), Some(u128::MAX));
        assert_eq!(
            AddrCount::new(u128::MAX).saturating_add(AddrCount::new(1)),
            all
        );
        assert_eq!(AddrCount::from_span(u64::MAX as u128).get(), Some(1 << 64));
    }

    #[test]
    fn span_display() {
        let s = Span::of(0x0a00_0000u32, 0x0aff_ffff);
        assert_eq!(s.to_string(), "10.0.0.0/8");
        let s = Span::of(0x0a00_0001u32, 0x0a00_0005);
        assert_eq!(s.to_string(), "10.0.0.1-10.0.0.5");
        assert_eq!(Span::of(0u128, u128::MAX).to_string(), "::/0");
    }
}
