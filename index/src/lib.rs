//! `ipam-index`: the in-memory IP index that every part of ipam stands on.
//!
//! Per address space and family ([`Space<u32>`] for IPv4, [`Space<u128>`] for IPv6, both in an
//! [`AddressSpace`]):
//!
//! - a **range tree** of `from..=to` ranges that nest or are disjoint (never partially
//!   overlap), with insert (adopting contained ranges), remove (leaf, re-parent or subtree),
//!   find by bounds, ancestors, paged children and subtree iteration;
//! - **longest-prefix match** ([`Space::deepest`]) from a flat table of elementary intervals
//!   with a bucket directory, rebuilt lazily after changes;
//! - **used addresses**, each owned by the deepest range containing it, in a per-range set
//!   that is a word bitset with summary levels for dense ranges of up to 2^16 addresses and
//!   roaring bitmaps otherwise (promoted to a bitset when dense);
//! - **next free address** ([`Space::next_free`]) and **next free block**
//!   ([`Space::next_free_blocks`]), and **utilization** in O(children) from maintained counts;
//! - [`Space::validate`], which checks every invariant, and rkyv **snapshot images**.
//!
//! No I/O, no async, no model types. Every error is an [`IndexError`] and leaves the index
//! unchanged. See `index/DESIGN.md` for layouts and costs.

mod addr;
mod dual;
mod error;
mod free;
mod lookup;
mod set;
mod snapshot;
mod space;
mod used;
mod validate;

pub use addr::{Addr, AddrCount, Family, Span};
pub use dual::{AddressSpace, AnyRangeId};
pub use error::{IndexError, Invariant, SnapshotError};
pub use free::{BlockSize, FreeQuery, Start};
pub use snapshot::SpaceImage;
pub use space::{RangeId, RangeInfo, RemoveMode, Space};
pub use used::Utilization;
