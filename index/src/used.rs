//! Used addresses: mark, free, count, iterate; utilization.

use crate::addr::{Addr, AddrCount};
use crate::error::IndexError;
use crate::space::{RangeId, Space};

/// How much of a range is used, computed in O(children) from maintained counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Utilization {
    /// Addresses in the range.
    pub size: AddrCount,
    /// Used addresses anywhere in the range, its sub-ranges included.
    pub used: u64,
    /// Used addresses that lie in the range and in none of its sub-ranges.
    pub own_used: u64,
    /// Addresses covered by direct sub-ranges.
    pub in_children: AddrCount,
    /// Number of direct sub-ranges.
    pub children: usize,
}

impl Utilization {
    /// Addresses not used: `size - used`.
    pub fn free(&self) -> AddrCount {
        self.size
            .saturating_sub(AddrCount::new(u128::from(self.used)))
    }

    /// `used` as a percentage of `size` (0 to 100).
    pub fn used_percent(&self) -> f64 {
        self.used as f64 * 100.0 / self.size.as_f64()
    }

    /// Addresses in sub-ranges as a percentage of `size` (0 to 100).
    pub fn in_children_percent(&self) -> f64 {
        self.in_children.as_f64() * 100.0 / self.size.as_f64()
    }
}

impl<A: Addr> Space<A> {
    /// Marks `addr` used (in the deepest range containing it); returns whether it was free.
    pub fn mark_used(&mut self, addr: A) -> bool {
        let n = self.owner(addr);
        if !self.own_set_mut(n).insert(addr.to_u128()) {
            return false;
        }
        self.add_subtree_used(n, 1);
        true
    }

    /// Marks `addr` free; returns whether it was used.
    pub fn mark_free(&mut self, addr: A) -> bool {
        let n = self.owner(addr);
        let x = self.nodes[n as usize].aux;
        let removed = x != crate::space::NIL
            && self.aux[x as usize]
                .set
                .as_mut()
                .is_some_and(|s| s.remove(addr.to_u128()));
        if removed {
            self.add_subtree_used(n, -1);
        }
        removed
    }

    /// Whether `addr` is marked used.
    pub fn is_used(&self, addr: A) -> bool {
        let n = self.owner(addr);
        self.own_set(n).is_some_and(|s| s.contains(addr.to_u128()))
    }

    /// Marks many addresses used in one pass. `addrs` must be ascending (repeats allowed);
    /// otherwise [`IndexError::NotSorted`] and nothing is marked. Returns how many were newly
    /// marked.
    pub fn mark_used_sorted(&mut self, addrs: &[A]) -> Result<u64, IndexError> {
        self.bulk(addrs, true)
    }

    /// Marks many addresses free in one pass; same rules as [`Space::mark_used_sorted`].
    /// Returns how many were used before.
    pub fn mark_free_sorted(&mut self, addrs: &[A]) -> Result<u64, IndexError> {
        self.bulk(addrs, false)
    }

    fn bulk(&mut self, addrs: &[A], used: bool) -> Result<u64, IndexError> {
        if let Some(w) = addrs.windows(2).find(|w| w[0] > w[1]) {
            return Err(IndexError::NotSorted {
                prev: w[0].to_ip(),
                addr: w[1].to_ip(),
            });
        }
        self.prepare_lookups();
        let mut total = 0u64;
        let mut i = 0;
        while i < addrs.len() {
            let a = addrs[i].to_u128();
            let n = self.owner(addrs[i]);
            // Addresses up to `end` share the owner `n`: up to its end or its next child.
            let kids = self.kids_of(n);
            let k = kids.partition_point(|&c| self.nodes[c as usize].from.to_u128() <= a);
            let end = match kids.get(k) {
                Some(&c) => self.nodes[c as usize].from.to_u128() - 1,
                None => self.nodes[n as usize].to.to_u128(),
            };
            let mut changed = 0u64;
            if used {
                let set = self.own_set_mut(n);
                while let Some(x) = addrs.get(i).filter(|x| x.to_u128() <= end) {
                    changed += u64::from(set.insert(x.to_u128()));
                    i += 1;
                }
            } else {
                let x = self.nodes[n as usize].aux;
                let mut set = if x == crate::space::NIL {
                    None
                } else {
                    self.aux[x as usize].set.as_mut()
                };
                while let Some(x) = addrs.get(i).filter(|x| x.to_u128() <= end) {
                    if let Some(s) = set.as_mut() {
                        changed += u64::from(s.remove(x.to_u128()));
                    }
                    i += 1;
                }
            }
            if changed > 0 {
                let delta = changed as i64;
                self.add_subtree_used(n, if used { delta } else { -delta });
            }
            total += changed;
        }
        Ok(total)
    }

    /// Number of used addresses in `from..=to`, across all ranges.
    pub fn count_used(&self, from: A, to: A) -> Result<u64, IndexError> {
        if from > to {
            return Err(IndexError::Reversed {
                from: from.to_ip(),
                to: to.to_ip(),
            });
        }
        Ok(self.count_in(crate::space::ROOT, from.to_u128(), to.to_u128()))
    }

    /// Used addresses of the subtree of `n` in `lo..=hi`. Whole subtrees inside the span add
    /// their maintained count; only ranges crossing an end are opened (explicit stack).
    fn count_in(&self, n: u32, lo: u128, hi: u128) -> u64 {
        let mut total = 0;
        let mut stack = vec![n];
        while let Some(n) = stack.pop() {
            let (nf, nt) = self.bounds(n);
            let (lo, hi) = (lo.max(nf), hi.min(nt));
            if lo > hi || self.subtree_used(n) == 0 {
                continue;
            }
            if lo == nf && hi == nt {
                total += self.subtree_used(n);
                continue;
            }
            total += self.own_set(n).map_or(0, |s| s.count(lo, hi));
            let i = self.first_kid_ending_at_or_after(n, lo);
            for &k in &self.kids_of(n)[i..] {
                let (kf, kt) = self.bounds(k);
                if kf > hi {
                    break;
                }
                if lo <= kf && kt <= hi {
                    total += self.subtree_used(k);
                } else {
                    stack.push(k);
                }
            }
        }
        total
    }

    /// Up to `limit` used addresses in `from..=to`, ascending, across all ranges. Page through
    /// a large range by calling again from one past the last address returned.
    pub fn used_in(&self, from: A, to: A, limit: usize) -> Result<Vec<A>, IndexError> {
        if from > to {
            return Err(IndexError::Reversed {
                from: from.to_ip(),
                to: to.to_ip(),
            });
        }
        let mut out = Vec::new();
        if limit > 0 {
            self.collect_used(
                crate::space::ROOT,
                from.to_u128(),
                to.to_u128(),
                &mut out,
                limit,
            );
        }
        Ok(out)
    }

    /// Appends used addresses of the subtree of `n` in `lo..=hi`, in address order, until
    /// `limit`.
    fn collect_used(&self, n: u32, lo: u128, hi: u128, out: &mut Vec<A>, limit: usize) {
        let (nf, nt) = self.bounds(n);
        let (lo, hi) = (lo.max(nf), hi.min(nt));
        if lo > hi {
            return;
        }
        self.walk_own_gaps(
            n,
            lo,
            hi,
            |k| self.subtree_used(k) > 0,
            |node, a, b| {
                let set = self.own_set(node)?;
                let more = set.for_each_in(a, b, |x| {
                    out.push(A::from_u128(x));
                    out.len() < limit
                });
                (!more).then_some(())
            },
        );
    }

    /// Size, used addresses, and addresses in sub-ranges of a range. O(children).
    pub fn utilization(&self, id: RangeId) -> Result<Utilization, IndexError> {
        let n = self.live(id)?;
        let (f, t) = self.bounds(n);
        let kids = self.kids_of(n);
        let in_children = kids.iter().fold(AddrCount::ZERO, |acc, &k| {
            let (kf, kt) = self.bounds(k);
            acc.saturating_add(AddrCount::from_span(kt - kf))
        });
        Ok(Utilization {
            size: AddrCount::from_span(t - f),
            used: self.subtree_used(n),
            own_used: self.own_set(n).map_or(0, |s| s.len()),
            in_children,
            children: kids.len(),
        })
    }
}
