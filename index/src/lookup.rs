//! The flat longest-prefix-match table behind [`crate::Space::deepest`].
//!
//! Nested ranges cut the address line into elementary intervals, each owned by the deepest
//! range covering it. The table keeps their start addresses sorted, with the owner of each, and
//! a directory of equal-width buckets (about one per interval) over the occupied part of the
//! line. A bucket that lies inside one interval stores that interval's owner directly: one
//! memory access answers. Any other bucket stores the interval containing its first address,
//! and a short forward scan of the starts (binary search past eight) finds the answer. A trie
//! walks a path of nodes instead. The table is derived data: rebuilt in O(n) from the tree
//! after changes, never archived.

use std::sync::Arc;

use crate::addr::Addr;
use crate::space::{Space, ROOT};

/// The table's arrays are shared (`Arc<[_]>`): a clone of the space (a published version)
/// shares them, and a lookup reads them as it would a `Vec`.
#[derive(Clone, Debug)]
pub(crate) struct Lpm<A> {
    /// Start of each elementary interval, ascending; `starts[0]` is address 0.
    starts: Arc<[A]>,
    /// Deepest node owning each interval (ROOT where no range does).
    owners: Arc<[u32]>,
    /// Per bucket: `DIRECT | owner` when one interval covers the whole bucket, else the index
    /// of the interval containing the bucket's first address.
    dir: Arc<[u32]>,
    base: u128,
    shift: u32,
}

/// Tags a directory entry that holds an owner rather than an interval index.
const DIRECT: u32 = 1 << 31;

impl<A: Addr> Lpm<A> {
    pub(crate) fn build(space: &Space<A>) -> Self {
        // At most MAX_RANGES + 1 slots, so at most 2^31 - 1 intervals: indexes and owners stay
        // below the tag bit.
        debug_assert!(space.nodes.len() <= crate::space::MAX_RANGES + 1);
        let mut starts: Vec<A> = Vec::with_capacity(space.len() * 2 + 1);
        let mut owners: Vec<u32> = Vec::with_capacity(space.len() * 2 + 1);
        let mut emit = |start: u128, owner: u32| {
            if owners.last() == Some(&owner) {
                return;
            }
            starts.push(A::from_u128(start));
            owners.push(owner);
        };
        // Iterative DFS: (node, next child position, first address not yet emitted; `None`
        // once the node has been covered up to the top of the space).
        let mut stack: Vec<(u32, usize, Option<u128>)> = vec![(ROOT, 0, Some(0))];
        while let Some((n, pos, cursor)) = stack.last_mut() {
            let n = *n;
            if let Some(&k) = space.kids_of(n).get(*pos) {
                *pos += 1;
                let (kf, kt) = space.bounds(k);
                if let Some(c) = *cursor {
                    if c < kf {
                        emit(c, n);
                    }
                }
                *cursor = kt.checked_add(1);
                stack.push((k, 0, Some(kf)));
            } else {
                let c = *cursor;
                stack.pop();
                let (_, nt) = space.bounds(n);
                if let Some(c) = c.filter(|&c| c <= nt) {
                    emit(c, n);
                }
            }
        }
        Self::with_directory(starts, owners)
    }

    fn with_directory(mut starts: Vec<A>, mut owners: Vec<u32>) -> Self {
        starts.shrink_to_fit();
        owners.shrink_to_fit();
        let len = starts.len();
        let base = starts.get(1).map_or(0, |s| s.to_u128());
        let span = starts[len - 1].to_u128() - base;
        // About one bucket per two intervals: most buckets still hold one interval or two.
        let want = len.next_power_of_two().trailing_zeros().saturating_sub(1);
        let shift = (128 - span.leading_zeros()).saturating_sub(want);
        let buckets = (span >> shift) as usize + 1;
        let width_minus_one = if shift >= 128 {
            u128::MAX
        } else {
            (1u128 << shift) - 1
        };
        let mut dir = Vec::with_capacity(buckets);
        let mut i = 0usize;
        for b in 0..buckets {
            let first = base + ((b as u128) << shift);
            while i + 1 < len && starts[i + 1].to_u128() <= first {
                i += 1;
            }
            let last = first.saturating_add(width_minus_one);
            let single = i + 1 >= len || starts[i + 1].to_u128() > last;
            dir.push(if single { owners[i] | DIRECT } else { i as u32 });
        }
        Lpm {
            starts: starts.into(),
            owners: owners.into(),
            dir: dir.into(),
            base,
            shift,
        }
    }

    /// The deepest node containing `a`.
    #[inline]
    pub(crate) fn lookup(&self, a: A) -> u32 {
        let x = a.to_u128();
        if x < self.base {
            return self.owners[0];
        }
        let b = (x - self.base) >> self.shift;
        let Some(&e) = self
            .dir
            .get(b as usize)
            .filter(|_| b < self.dir.len() as u128)
        else {
            return self.owners[self.owners.len() - 1];
        };
        if e & DIRECT != 0 {
            return e & !DIRECT;
        }
        // starts[i] <= a: scan forward a few intervals, then binary search the rest.
        let mut i = e as usize;
        for _ in 0..8 {
            match self.starts.get(i + 1) {
                Some(&s) if s <= a => i += 1,
                _ => return self.owners[i],
            }
        }
        let rest = &self.starts[i + 1..];
        self.owners[i + rest.partition_point(|&s| s <= a)]
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.starts.len() * std::mem::size_of::<A>() + self.owners.len() * 4 + self.dir.len() * 4
    }

    /// The intervals, for validation: (start, owner).
    pub(crate) fn intervals(&self) -> impl Iterator<Item = (A, u32)> + '_ {
        self.starts.iter().copied().zip(self.owners.iter().copied())
    }
}
