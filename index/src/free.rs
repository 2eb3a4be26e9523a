//! Next free address and next free block.

use crate::addr::{prefix_len_of, Addr, AddrCount};
use crate::error::IndexError;
use crate::space::{RangeId, Space, NIL, ROOT};

/// Where a free-address search starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Start<A> {
    /// At the first address of the range.
    #[default]
    First,
    /// At this address (inside the range); no wrap-around.
    At(A),
    /// At a pseudo-random address drawn from this seed, wrapping around to the range's start.
    /// The index has no randomness of its own: the caller supplies the seed.
    Random(u64),
}

/// A next-free-address question: where to start and what to skip.
#[derive(Clone, Copy, Debug)]
pub struct FreeQuery<'a, A> {
    /// Where to start.
    pub start: Start<A>,
    /// Skip the network and broadcast addresses of IPv4 subnets of /30 or larger (on by
    /// default; /31 and /32 have none).
    pub skip_network_broadcast: bool,
    /// Skip addresses that lie in sub-ranges (off by default: a container's free addresses
    /// include those of its free sub-ranges).
    pub skip_children: bool,
    /// Addresses never to return, as inclusive `(first, last)` pairs in any order (for
    /// example DHCP pools).
    pub exclude: &'a [(A, A)],
}

impl<A> Default for FreeQuery<'_, A> {
    fn default() -> Self {
        FreeQuery {
            start: Start::First,
            skip_network_broadcast: true,
            skip_children: false,
            exclude: &[],
        }
    }
}

/// The size of a block to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockSize {
    /// An aligned CIDR block of this prefix length.
    Prefix(u32),
    /// This many consecutive addresses, at any alignment.
    Count(u128),
}

/// Sorted, merged exclusion intervals.
struct Exclusions(Vec<(u128, u128)>);

impl Exclusions {
    #[inline]
    fn new<A: Addr>(raw: &[(A, A)]) -> Result<Self, IndexError> {
        if raw.is_empty() {
            return Ok(Exclusions(Vec::new()));
        }
        let mut v = Vec::with_capacity(raw.len());
        for &(a, b) in raw {
            if a > b {
                return Err(IndexError::Reversed {
                    from: a.to_ip(),
                    to: b.to_ip(),
                });
            }
            v.push((a.to_u128(), b.to_u128()));
        }
        v.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ok(Exclusions(merged))
    }

    /// End of the exclusion covering `x`, if any.
    #[inline]
    fn covering(&self, x: u128) -> Option<u128> {
        if self.0.is_empty() {
            return None;
        }
        let i = self.0.partition_point(|&(a, _)| a <= x);
        let (_, b) = *self.0.get(i.checked_sub(1)?)?;
        (b >= x).then_some(b)
    }
}

/// splitmix64: spreads a caller's seed over the range.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first free address of a leaf range `f..=t` whose used set is `set`, from `start`
/// (wrapping for a random start).
#[inline]
fn leaf_free_in<A: Addr>(
    set: Option<&crate::set::UsedSet>,
    f: u128,
    t: u128,
    start: u128,
    q: &FreeQuery<'_, A>,
) -> Option<u128> {
    let nb = q.skip_network_broadcast
        && A::BITS == 32
        && prefix_len_of(f, t, 32).is_some_and(|len| len <= 30);
    let (lo, hi) = if nb { (f + 1, t - 1) } else { (f, t) };
    let find = |a: u128, b: u128| -> Option<u128> {
        if a > b {
            return None;
        }
        match set {
            Some(set) => set.next_free(a, b),
            None => Some(a),
        }
    };
    find(start.max(lo), hi).or_else(|| {
        if matches!(q.start, Start::Random(_)) && start > lo {
            find(lo, start - 1)
        } else {
            None
        }
    })
}

impl<A: Addr> Space<A> {
    /// The first free address of a range according to `q`, or `None` when it is full.
    ///
    /// Errors: unknown range, a start outside the range, reversed exclusions.
    #[inline]
    pub fn next_free(&self, id: RangeId, q: &FreeQuery<'_, A>) -> Result<Option<A>, IndexError> {
        let (node, nd) = self.live_node(id)?;
        let (f, t) = (nd.from.to_u128(), nd.to.to_u128());
        let start = match Self::start_in(f, t, q.start) {
            Ok(s) => s,
            Err(_) => self.start_of(node, q.start)?,
        };
        if q.exclude.is_empty() && nd.kids == NIL {
            // The common case, a leaf range: one look at the node, one at its used set.
            let set = match nd.aux {
                NIL => None,
                x => self.aux[x as usize].set.as_ref(),
            };
            return Ok(leaf_free_in(set, f, t, start, q).map(A::from_u128));
        }
        let ex = Exclusions::new(q.exclude)?;
        if let Some(x) = self.first_free(node, start, t, q, &ex, node) {
            return Ok(Some(A::from_u128(x)));
        }
        if matches!(q.start, Start::Random(_)) && start > f {
            return Ok(self
                .first_free(node, f, start - 1, q, &ex, node)
                .map(A::from_u128));
        }
        Ok(None)
    }

    /// Up to `n` free addresses of a range, ascending from the start (wrapping once for
    /// [`Start::Random`]). Fewer are returned when the range has fewer free. The addresses are
    /// not marked used: the caller marks the ones it hands out.
    pub fn next_free_n(
        &self,
        id: RangeId,
        q: &FreeQuery<'_, A>,
        n: usize,
    ) -> Result<Vec<A>, IndexError> {
        let node = self.live(id)?;
        let (f, t) = self.bounds(node);
        let start = self.start_of(node, q.start)?;
        let ex = Exclusions::new(q.exclude)?;
        let mut out = Vec::with_capacity(n.min(1024));
        let mut segments = [(start, t), (f, start.wrapping_sub(1))];
        let wrap = matches!(q.start, Start::Random(_)) && start > f;
        for &mut (mut lo, hi) in segments.iter_mut().take(if wrap { 2 } else { 1 }) {
            while out.len() < n {
                let Some(x) = self.first_free(node, lo, hi, q, &ex, node) else {
                    break;
                };
                out.push(A::from_u128(x));
                if x >= hi {
                    break;
                }
                lo = x + 1;
            }
        }
        Ok(out)
    }

    fn start_of(&self, n: u32, start: Start<A>) -> Result<u128, IndexError> {
        let (f, t) = self.bounds(n);
        Self::start_in(f, t, start).map_err(|a| IndexError::OutsideRange {
            addr: A::from_u128(a).to_ip(),
            range: self.span_of(n),
        })
    }

    /// Where a search of `f..=t` starts; `Err(a)` when `a` lies outside.
    #[inline]
    fn start_in(f: u128, t: u128, start: Start<A>) -> Result<u128, u128> {
        Ok(match start {
            Start::First => f,
            Start::At(a) => {
                let a = a.to_u128();
                if a < f || a > t {
                    return Err(a);
                }
                a
            }
            Start::Random(seed) => {
                let r = (u128::from(mix(seed)) << 64) | u128::from(mix(seed ^ 0x5555));
                match (t - f).checked_add(1) {
                    Some(size) => f + r % size,
                    None => r,
                }
            }
        })
    }

    /// First free address in `lo..=hi` within node `n`, descending into children unless asked
    /// to skip them.
    fn first_free(
        &self,
        n: u32,
        lo: u128,
        hi: u128,
        q: &FreeQuery<'_, A>,
        ex: &Exclusions,
        top: u32,
    ) -> Option<u128> {
        self.walk_own_gaps(
            n,
            lo,
            hi,
            |_| !q.skip_children,
            |node, a, b| self.own_free(node, a, b, q, ex, top),
        )
    }

    /// First address in `lo..=hi` that node `n` owns free (no child lies in `lo..=hi`).
    #[inline]
    fn own_free(
        &self,
        n: u32,
        lo: u128,
        hi: u128,
        q: &FreeQuery<'_, A>,
        ex: &Exclusions,
        top: u32,
    ) -> Option<u128> {
        let (nf, nt) = self.bounds(n);
        let skip_nb = q.skip_network_broadcast && A::BITS == 32;
        let set = self.own_set(n);
        let mut a = lo;
        loop {
            if a > hi {
                return None;
            }
            let x = match set {
                Some(s) => s.next_free(a, hi)?,
                None => a,
            };
            if skip_nb && (x == nf || x == nt) && self.is_network_or_broadcast(n, top, x) {
                a = x.checked_add(1)?;
                continue;
            }
            if let Some(end) = ex.covering(x) {
                a = end.checked_add(1)?;
                continue;
            }
            return Some(x);
        }
    }

    /// Whether `x` is the first or last address of an IPv4 subnet of /30 or larger among `n`
    /// and its ancestors up to `top`. Only ranges that start or end at `x` can qualify, and
    /// those form an unbroken chain upward from `n`.
    fn is_network_or_broadcast(&self, mut n: u32, top: u32, x: u128) -> bool {
        loop {
            let (f, t) = self.bounds(n);
            if x != f && x != t {
                return false;
            }
            if n != ROOT && prefix_len_of(f, t, 32).is_some_and(|len| len <= 30) {
                return true;
            }
            if n == top || n == ROOT {
                return false;
            }
            n = self.nodes[n as usize].parent;
        }
    }

    /// Up to `n` free blocks inside a range, ascending from `start` (default: the range's
    /// first address). A block overlaps no sub-range and no used address of the range.
    ///
    /// Errors: unknown range, prefix length out of bounds, a zero or too large size, a start
    /// outside the range.
    pub fn next_free_blocks(
        &self,
        id: RangeId,
        size: BlockSize,
        start: Option<A>,
        n: usize,
    ) -> Result<Vec<(A, A)>, IndexError> {
        let node = self.live(id)?;
        let (f, t) = self.bounds(node);
        let (span, aligned) = match size {
            BlockSize::Prefix(len) => {
                if len > A::BITS {
                    return Err(IndexError::PrefixLength {
                        len,
                        family: A::FAMILY,
                    });
                }
                let host = A::BITS - len;
                let span = if host == 128 {
                    u128::MAX
                } else {
                    (1u128 << host) - 1
                };
                (span, true)
            }
            BlockSize::Count(0) => {
                return Err(IndexError::BlockDoesNotFit {
                    size: AddrCount::ZERO,
                    range: self.span_of(node),
                })
            }
            BlockSize::Count(c) => (c - 1, false),
        };
        if span > t - f {
            return Err(IndexError::BlockDoesNotFit {
                size: AddrCount::from_span(span),
                range: self.span_of(node),
            });
        }
        let start = match start {
            Some(s) => self.start_of(node, Start::At(s))?,
            None => f,
        };
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        let kids = self.kids_of(node);
        let mut cursor = start;
        let mut i = self.first_kid_ending_at_or_after(node, start);
        loop {
            let (gap_end, next) = match kids.get(i) {
                Some(&k) => {
                    let (kf, kt) = self.bounds(k);
                    (kf.checked_sub(1), kt.checked_add(1))
                }
                None => (Some(t), None),
            };
            if let Some(ge) = gap_end {
                if cursor <= ge && !self.blocks_in_gap(node, cursor, ge, span, aligned, n, &mut out)
                {
                    return Ok(out);
                }
            }
            match next {
                Some(c) if i < kids.len() => {
                    cursor = cursor.max(c);
                    i += 1;
                }
                _ => return Ok(out),
            }
        }
    }

    /// Pushes free blocks found in the child-free gap `lo..=hi`; false once `n` are found.
    #[allow(clippy::too_many_arguments)]
    fn blocks_in_gap(
        &self,
        node: u32,
        lo: u128,
        hi: u128,
        span: u128,
        aligned: bool,
        n: usize,
        out: &mut Vec<(A, A)>,
    ) -> bool {
        let align = |c: u128| -> Option<u128> {
            if aligned {
                c.checked_add(span).map(|x| x & !span)
            } else {
                Some(c)
            }
        };
        let set = self.own_set(node);
        let Some(mut c) = align(lo) else {
            return true;
        };
        loop {
            let Some(end) = c.checked_add(span).filter(|&e| e <= hi) else {
                return true;
            };
            match set.and_then(|s| s.next_used(c, end)) {
                None => {
                    out.push((A::from_u128(c), A::from_u128(end)));
                    if out.len() >= n {
                        return false;
                    }
                    match end.checked_add(1) {
                        Some(x) => c = x,
                        None => return true,
                    }
                }
                Some(u) => match u.checked_add(1).and_then(align) {
                    Some(x) => c = x,
                    None => return true,
                },
            }
        }
    }
}
