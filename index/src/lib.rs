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
//!
//! ```
//! use ipam_index::{BlockSize, FreeQuery, IndexError, RemoveMode, Space};
//!
//! let mut v4 = Space::<u32>::new();
//! let net = v4.insert(0x0a00_0000, 0x0a00_ffff)?; // 10.0.0.0/16
//! let lan = v4.insert(0x0a00_0100, 0x0a00_01ff)?; // 10.0.1.0/24, nested under it
//! assert_eq!(v4.get(lan).unwrap().parent, Some(net));
//! assert!(v4.mark_used(0x0a00_0101));
//! // 10.0.1.0 is the network address, 10.0.1.1 is used:
//! assert_eq!(v4.next_free(lan, &FreeQuery::default())?, Some(0x0a00_0102));
//! let blocks = v4.next_free_blocks(net, BlockSize::Prefix(24), None, 2)?;
//! assert_eq!(blocks, [(0x0a00_0000, 0x0a00_00ff), (0x0a00_0200, 0x0a00_02ff)]);
//! let u = v4.utilization(net)?;
//! assert_eq!((u.used, u.in_children.get()), (1, Some(256)));
//! assert!(matches!(v4.insert(0x0a00_0180, 0x0a00_02ff), Err(IndexError::PartialOverlap { .. })));
//! v4.remove(lan, RemoveMode::LeafOnly)?;
//! assert_eq!(v4.deepest(0x0a00_0101), Some(net));
//! # Ok::<(), IndexError>(())
//! ```

mod addr;
mod chunks;
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
pub use chunks::{ChunkVec, CHUNK};
pub use dual::{AddressSpace, AnyRangeId};
pub use error::{IndexError, Invariant, SnapshotError};
pub use free::{BlockSize, FreeQuery, Start};
pub use snapshot::SpaceImage;
pub use space::{RangeId, RangeInfo, RemoveMode, Space, MAX_RANGES};
pub use used::Utilization;
