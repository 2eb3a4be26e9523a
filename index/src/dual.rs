//! [`AddressSpace`]: one address space holding both families, addressed with `IpAddr`.

use std::net::IpAddr;

use crate::addr::{prefix_bounds, Addr, Family};
use crate::error::IndexError;
use crate::space::{RangeId, Space};

/// A range id tagged with its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnyRangeId {
    /// A range of the IPv4 space.
    V4(RangeId),
    /// A range of the IPv6 space.
    V6(RangeId),
}

/// An address space (a VRF, a customer): an IPv4 [`Space`] and an IPv6 [`Space`].
///
/// The methods here take `IpAddr` and refuse mixed families; the typed spaces behind
/// [`AddressSpace::v4`] and [`AddressSpace::v6`] offer every operation.
#[derive(Clone, Debug, Default)]
pub struct AddressSpace {
    v4: Space<u32>,
    v6: Space<u128>,
}

fn same_family(a: IpAddr, b: IpAddr) -> Result<Family, IndexError> {
    if Family::of(a) != Family::of(b) {
        return Err(IndexError::FamilyMismatch {
            first: a,
            second: b,
        });
    }
    Ok(Family::of(a))
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }

    /// The IPv4 ranges.
    pub fn v4(&self) -> &Space<u32> {
        &self.v4
    }

    /// The IPv4 ranges, for changes.
    pub fn v4_mut(&mut self) -> &mut Space<u32> {
        &mut self.v4
    }

    /// The IPv6 ranges.
    pub fn v6(&self) -> &Space<u128> {
        &self.v6
    }

    /// The IPv6 ranges, for changes.
    pub fn v6_mut(&mut self) -> &mut Space<u128> {
        &mut self.v6
    }

    /// Ranges of both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether there are no ranges.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `from..=to`; both ends must be of one family.
    pub fn insert(&mut self, from: IpAddr, to: IpAddr) -> Result<AnyRangeId, IndexError> {
        match same_family(from, to)? {
            Family::V4 => self.v4.insert(conv(from), conv(to)).map(AnyRangeId::V4),
            Family::V6 => self.v6.insert(conv(from), conv(to)).map(AnyRangeId::V6),
        }
    }

    /// Inserts the CIDR block `addr/len` (host bits are ignored).
    pub fn insert_prefix(&mut self, addr: IpAddr, len: u32) -> Result<AnyRangeId, IndexError> {
        let family = Family::of(addr);
        if len > family.bits() {
            return Err(IndexError::PrefixLength { len, family });
        }
        let (f, t) = match addr {
            IpAddr::V4(a) => prefix_bounds(u128::from(u32::from(a)), len, 32),
            IpAddr::V6(a) => prefix_bounds(u128::from(a), len, 128),
        };
        match family {
            Family::V4 => self.v4.insert(f as u32, t as u32).map(AnyRangeId::V4),
            Family::V6 => self.v6.insert(f, t).map(AnyRangeId::V6),
        }
    }

    /// The deepest range containing `addr`.
    pub fn deepest(&self, addr: IpAddr) -> Option<AnyRangeId> {
        match addr {
            IpAddr::V4(a) => self.v4.deepest(u32::from(a)).map(AnyRangeId::V4),
            IpAddr::V6(a) => self.v6.deepest(u128::from(a)).map(AnyRangeId::V6),
        }
    }

    /// Marks `addr` used; returns whether it was free.
    pub fn mark_used(&mut self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.mark_used(u32::from(a)),
            IpAddr::V6(a) => self.v6.mark_used(u128::from(a)),
        }
    }

    /// Marks `addr` free; returns whether it was used.
    pub fn mark_free(&mut self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.v4.mark_free(u32::from(a)),
            IpAddr::V6(a) => self.v6.mark_free(u128::from(a)),
        }
    }

    /// Used addresses in `from..=to`; both ends must be of one family.
    pub fn count_used(&self, from: IpAddr, to: IpAddr) -> Result<u64, IndexError> {
        match same_family(from, to)? {
            Family::V4 => self.v4.count_used(conv(from), conv(to)),
            Family::V6 => self.v6.count_used(conv(from), conv(to)),
        }
    }
}

fn conv<A: Addr>(ip: IpAddr) -> A {
    A::from_ip(ip).expect("family checked by the caller")
}
