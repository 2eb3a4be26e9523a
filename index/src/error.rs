//! Errors of the index. Every failing call leaves the index unchanged.

use std::net::IpAddr;

use crate::addr::{AddrCount, Family, Span};

/// Why an index operation was refused. The index is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A range's first address is after its last.
    #[error("range {from}-{to} is reversed: its first address must not be after its last")]
    Reversed {
        /// The given first address.
        from: IpAddr,
        /// The given last address.
        to: IpAddr,
    },
    /// Two addresses of one request belong to different families.
    #[error("{first} and {second} are of different address families: use IPv4 or IPv6 throughout")]
    FamilyMismatch {
        /// The first address given.
        first: IpAddr,
        /// The address of the other family.
        second: IpAddr,
    },
    /// A new range partially overlaps an existing one (ranges must nest or be disjoint).
    #[error("range {new} partially overlaps the existing range {existing}: ranges in one address space must nest or be disjoint")]
    PartialOverlap {
        /// The range that was refused.
        new: Span,
        /// The existing range it overlaps.
        existing: Span,
    },
    /// A range with the same bounds exists.
    #[error("range {0} already exists in this address space")]
    Duplicate(Span),
    /// The range id names no range (never issued, or removed).
    #[error("no range with id {0} exists in this address space")]
    UnknownRange(u32),
    /// An address or sub-range lies outside the range it was used with.
    #[error("{addr} is outside the range {range}")]
    OutsideRange {
        /// The offending address.
        addr: IpAddr,
        /// The range it had to be in.
        range: Span,
    },
    /// A prefix length beyond the family's width.
    #[error("prefix length /{len} is out of bounds for {family}: it must be 0 to {}", family.bits())]
    PrefixLength {
        /// The given length.
        len: u32,
        /// The family it was used with.
        family: Family,
    },
    /// A block size of zero, or larger than the range to search.
    #[error("a block of {size} addresses does not fit in the range {range}")]
    BlockDoesNotFit {
        /// Requested block size in addresses.
        size: AddrCount,
        /// The range that was searched.
        range: Span,
    },
    /// Removing a range that has children without saying what to do with them.
    #[error("range {range} has {children} child ranges: remove them first, or remove it with re-parenting or with its subtree")]
    HasChildren {
        /// The range to remove.
        range: Span,
        /// How many direct children it has.
        children: usize,
    },
    /// The space already holds the most ranges it can.
    #[error("this address space already holds {limit} ranges, the most one space can hold")]
    CapacityExceeded {
        /// The limit.
        limit: usize,
    },
    /// Bulk input that must be ascending was not.
    #[error("addresses for bulk marking must be in ascending order: {addr} comes after {prev}")]
    NotSorted {
        /// The address before.
        prev: IpAddr,
        /// The address out of order.
        addr: IpAddr,
    },
}

/// A broken invariant found by `validate()`: a bug in the index, never bad input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("index invariant broken at range id {node}: {what}")]
pub struct Invariant {
    /// Internal id of the node where the check failed.
    pub node: u32,
    /// What was wrong.
    pub what: &'static str,
}

/// Why a snapshot image could not be loaded. Nothing is loaded when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not a valid archive of an index image (truncated, corrupt, other format).
    #[error("the index snapshot is not a valid archive (truncated or corrupt): {0}")]
    Archive(#[source] rkyv::rancor::Error),
    /// The image is for the other address family.
    #[error("the index snapshot holds {found} ranges but an {expected} space was requested")]
    WrongFamily {
        /// Family asked for.
        expected: Family,
        /// Family in the image.
        found: Family,
    },
    /// The archive decoded but describes an impossible index.
    #[error("the index snapshot is inconsistent: {0}")]
    Inconsistent(#[source] Invariant),
}
