//! The used-address set of one range, hiding the choice of representation.
//!
//! Ranges of at most 256 addresses (a /24) keep their bits inline, four words without any
//! allocation: the most common subnets cost nothing extra to track. Ranges of at most
//! [`DENSE_FROM_START_BITS`] addresses use a [`DenseBits`] word bitset with summary levels from
//! the start (at most 128 bytes). Larger ranges start sparse, as roaring
//! bitmaps keyed by the upper 96 bits of the address, and switch to a bitset (the measured
//! winner for next-free in dense IPv4 subnets) once 1/16 of the range is used, if the range is
//! small enough ([`PROMOTE_MAX_BITS`]): from then on the bitset is no larger than roaring's
//! arrays. A /16 with one used address therefore costs bytes, not 8 KiB.

mod dense;

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

pub(crate) use dense::DenseBits;
use dense::{padding_mask, words_count, words_next_one, words_next_zero};

/// Ranges up to this many addresses keep their bits inline.
const SMALL_BITS: u128 = 256;

/// Ranges up to this many addresses get a bitset from the start (a /22: 128 bytes).
pub(crate) const DENSE_FROM_START_BITS: u128 = 1 << 10;
/// Sparse sets of ranges up to this size become bitsets once 1/16 of the range is used.
pub(crate) const PROMOTE_MAX_BITS: u128 = 1 << 22;

/// Used addresses handed from one set to another (when ranges are inserted or removed).
#[derive(Debug)]
pub(crate) enum Moved {
    /// Single addresses, ascending.
    Addrs(Vec<u128>),
    /// Roaring chunks keyed by the upper 96 bits.
    Chunks(Vec<(u128, RoaringBitmap)>),
}

impl Moved {
    /// How many addresses move.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Moved::Addrs(v) => v.len() as u64,
            Moved::Chunks(c) => c.iter().map(|(_, b)| b.len()).sum(),
        }
    }
}

/// Addresses (absolute, as `u128`) marked used in one range.
///
/// Bitsets and roaring maps sit behind `Arc`: cloning a set (as a versioned index does) is a
/// pointer copy, and the first change after that copies the set once.
#[derive(Clone, Debug)]
pub(crate) enum UsedSet {
    Small {
        base: u128,
        nbits: u32,
        len: u32,
        words: [u64; 4],
    },
    Dense {
        base: u128,
        bits: Arc<DenseBits>,
    },
    Sparse {
        from: u128,
        span: u128,
        len: u64,
        chunks: Arc<BTreeMap<u128, RoaringBitmap>>,
    },
}

fn split(a: u128) -> (u128, u32) {
    (a >> 32, a as u32)
}

fn join(h: u128, l: u32) -> u128 {
    (h << 32) | u128::from(l)
}

impl UsedSet {
    /// An empty set for the range `from..=from + span`.
    pub(crate) fn for_range(from: u128, span: u128) -> Self {
        if span < SMALL_BITS {
            let nbits = span as u64 + 1;
            let mut words = [0u64; 4];
            let last = ((nbits - 1) / 64) as usize;
            words[last] = padding_mask(nbits);
            for w in &mut words[last + 1..] {
                *w = u64::MAX;
            }
            UsedSet::Small {
                base: from,
                nbits: nbits as u32,
                len: 0,
                words,
            }
        } else if span < DENSE_FROM_START_BITS {
            UsedSet::Dense {
                base: from,
                bits: Arc::new(DenseBits::new(span as u64 + 1)),
            }
        } else {
            UsedSet::Sparse {
                from,
                span,
                len: 0,
                chunks: Arc::default(),
            }
        }
    }

    /// A set for `from..=from + span` from raw bitset words (padding bits may be anything);
    /// `None` if the words do not fit the range or the range is too large for a bitset.
    pub(crate) fn from_words(from: u128, span: u128, mut words: Vec<u64>) -> Option<Self> {
        if span >= PROMOTE_MAX_BITS {
            return None;
        }
        let nbits = span as u64 + 1;
        if span >= SMALL_BITS {
            let bits = Arc::new(DenseBits::from_words(nbits, words)?);
            return Some(UsedSet::Dense { base: from, bits });
        }
        if words.len() as u64 != nbits.div_ceil(64) {
            return None;
        }
        let last = words.len() - 1;
        words[last] |= padding_mask(nbits);
        let mut inline = [u64::MAX; 4];
        inline[..words.len()].copy_from_slice(&words);
        let len = words_count(&inline, 0, nbits - 1) as u32;
        Some(UsedSet::Small {
            base: from,
            nbits: nbits as u32,
            len,
            words: inline,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            UsedSet::Small { len, .. } => u64::from(*len),
            UsedSet::Dense { bits, .. } => bits.len(),
            UsedSet::Sparse { len, .. } => *len,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_dense(&self) -> bool {
        matches!(self, UsedSet::Dense { .. } | UsedSet::Small { .. })
    }

    pub(crate) fn contains(&self, a: u128) -> bool {
        match self {
            UsedSet::Small {
                base, nbits, words, ..
            } => {
                a >= *base && a - base < u128::from(*nbits) && {
                    let i = (a - base) as usize;
                    words[i / 64] & (1 << (i % 64)) != 0
                }
            }
            UsedSet::Dense { base, bits } => a >= *base && bits.contains((a - base) as u64),
            UsedSet::Sparse { chunks, .. } => {
                let (h, l) = split(a);
                chunks.get(&h).is_some_and(|bm| bm.contains(l))
            }
        }
    }

    /// Marks `a` (inside the range) used; returns whether it was free.
    pub(crate) fn insert(&mut self, a: u128) -> bool {
        match self {
            UsedSet::Small {
                base, len, words, ..
            } => {
                let i = (a - *base) as usize;
                let m = 1u64 << (i % 64);
                let fresh = words[i / 64] & m == 0;
                words[i / 64] |= m;
                *len += u32::from(fresh);
                fresh
            }
            UsedSet::Dense { base, bits } => {
                let i = (a - *base) as u64;
                !bits.contains(i) && Arc::make_mut(bits).insert(i)
            }
            UsedSet::Sparse {
                span, len, chunks, ..
            } => {
                let (h, l) = split(a);
                if chunks.get(&h).is_some_and(|bm| bm.contains(l))
                    || !Arc::make_mut(chunks).entry(h).or_default().insert(l)
                {
                    return false;
                }
                *len += 1;
                if *span < PROMOTE_MAX_BITS && u128::from(*len) * 16 > *span {
                    self.promote();
                }
                true
            }
        }
    }

    fn promote(&mut self) {
        if let UsedSet::Sparse {
            from, span, chunks, ..
        } = self
        {
            let mut bits = DenseBits::new(*span as u64 + 1);
            for (h, bm) in chunks.iter() {
                for l in bm {
                    bits.insert((join(*h, l) - *from) as u64);
                }
            }
            *self = UsedSet::Dense {
                base: *from,
                bits: Arc::new(bits),
            };
        }
    }

    /// Marks `a` free; returns whether it was used.
    pub(crate) fn remove(&mut self, a: u128) -> bool {
        match self {
            UsedSet::Small {
                base,
                nbits,
                len,
                words,
            } => {
                if a < *base || a - *base >= u128::from(*nbits) {
                    return false;
                }
                let i = (a - *base) as usize;
                let m = 1u64 << (i % 64);
                let was = words[i / 64] & m != 0;
                words[i / 64] &= !m;
                *len -= u32::from(was);
                was
            }
            UsedSet::Dense { base, bits } => {
                a >= *base
                    && a - *base < u128::from(bits.nbits())
                    && bits.contains((a - *base) as u64)
                    && Arc::make_mut(bits).remove((a - *base) as u64)
            }
            UsedSet::Sparse { len, chunks, .. } => {
                let (h, l) = split(a);
                if !chunks.get(&h).is_some_and(|bm| bm.contains(l)) {
                    return false;
                }
                let chunks = Arc::make_mut(chunks);
                let Some(bm) = chunks.get_mut(&h) else {
                    return false;
                };
                if !bm.remove(l) {
                    return false;
                }
                if bm.is_empty() {
                    chunks.remove(&h);
                }
                *len -= 1;
                true
            }
        }
    }

    /// First address in `a..=hi` that is not in the set.
    #[inline]
    pub(crate) fn next_free(&self, a: u128, hi: u128) -> Option<u128> {
        if a > hi {
            return None;
        }
        match self {
            UsedSet::Small { base, words, .. } => {
                debug_assert!(a >= *base, "callers search inside the range");
                let z = words_next_zero(words, (a.max(*base) - base) as u64)?;
                let x = base + u128::from(z);
                (x <= hi).then_some(x)
            }
            UsedSet::Dense { base, bits } => {
                debug_assert!(a >= *base, "callers search inside the range");
                let z = bits.next_zero((a.max(*base) - base) as u64)?;
                let x = base + u128::from(z);
                (x <= hi).then_some(x)
            }
            UsedSet::Sparse { chunks, .. } => sparse_next_free(chunks, a, hi),
        }
    }

    /// First address in `a..=hi` that is in the set.
    pub(crate) fn next_used(&self, a: u128, hi: u128) -> Option<u128> {
        if a > hi {
            return None;
        }
        match self {
            UsedSet::Small {
                base, nbits, words, ..
            } => {
                let i = (a.max(*base) - base) as u64;
                let x = base + u128::from(words_next_one(words, u64::from(*nbits), i)?);
                (x <= hi).then_some(x)
            }
            UsedSet::Dense { base, bits } => {
                let x = base + u128::from(bits.next_one((a.max(*base) - base) as u64)?);
                (x <= hi).then_some(x)
            }
            UsedSet::Sparse { chunks, .. } => {
                let (ha, la) = split(a);
                for (&h, bm) in chunks.range(ha..=hi >> 32) {
                    let start = if h == ha { la } else { 0 };
                    if let Some(l) = bm.range(start..).next() {
                        let x = join(h, l);
                        return (x <= hi).then_some(x);
                    }
                }
                None
            }
        }
    }

    /// Number of used addresses in `lo..=hi` (clamped to the range by the caller).
    pub(crate) fn count(&self, lo: u128, hi: u128) -> u64 {
        if lo > hi {
            return 0;
        }
        match self {
            UsedSet::Small {
                base, nbits, words, ..
            } => {
                let last = base + u128::from(*nbits - 1);
                let (lo, hi) = (lo.max(*base), hi.min(last));
                if lo > hi {
                    return 0;
                }
                words_count(words, (lo - base) as u64, (hi - base) as u64)
            }
            UsedSet::Dense { base, bits } => {
                let last = base + u128::from(bits.nbits() - 1);
                let (lo, hi) = (lo.max(*base), hi.min(last));
                if lo > hi {
                    return 0;
                }
                bits.count_range((lo - base) as u64, (hi - base) as u64)
            }
            UsedSet::Sparse { chunks, .. } => {
                let (hl, ll) = split(lo);
                let (hh, lh) = split(hi);
                chunks
                    .range(hl..=hh)
                    .map(|(&h, bm)| {
                        let l = if h == hl { ll } else { 0 };
                        let u = if h == hh { lh } else { u32::MAX };
                        bm.range_cardinality(l..=u)
                    })
                    .sum()
            }
        }
    }

    /// Calls `f` on used addresses in `lo..=hi` in ascending order until it returns false.
    pub(crate) fn for_each_in(&self, lo: u128, hi: u128, mut f: impl FnMut(u128) -> bool) -> bool {
        let mut a = lo;
        while let Some(x) = self.next_used(a, hi) {
            if !f(x) {
                return false;
            }
            if x == hi {
                break;
            }
            a = x + 1;
        }
        true
    }

    /// Removes and returns the used addresses in `lo..=hi`. Sparse sets hand over whole
    /// roaring chunks (cost per chunk, not per address); bitsets hand over addresses (at most
    /// 2^22 of them).
    pub(crate) fn take_range(&mut self, lo: u128, hi: u128) -> Moved {
        match self {
            UsedSet::Sparse { len, chunks, .. } => {
                let (hl, ll) = split(lo);
                let (hh, lh) = split(hi);
                let keys: Vec<u128> = chunks.range(hl..=hh).map(|(&h, _)| h).collect();
                let mut out = Vec::with_capacity(keys.len());
                if keys.is_empty() {
                    return Moved::Chunks(out);
                }
                let chunks = Arc::make_mut(chunks);
                for h in keys {
                    let l = if h == hl { ll } else { 0 };
                    let u = if h == hh { lh } else { u32::MAX };
                    let Some(bm) = chunks.get_mut(&h) else {
                        continue;
                    };
                    // Whole chunks move as they are; a partial one is trimmed to l..=u (cost per
                    // roaring container either way).
                    let part = if l == 0 && u == u32::MAX {
                        std::mem::take(bm)
                    } else {
                        let mut part = bm.clone();
                        if l > 0 {
                            part.remove_range(..l);
                        }
                        if u < u32::MAX {
                            part.remove_range(u + 1..);
                        }
                        *bm -= &part;
                        part
                    };
                    if part.is_empty() {
                        continue;
                    }
                    *len -= part.len();
                    if bm.is_empty() {
                        chunks.remove(&h);
                    }
                    out.push((h, part));
                }
                Moved::Chunks(out)
            }
            _ => {
                let mut out = Vec::new();
                self.for_each_in(lo, hi, |x| {
                    out.push(x);
                    true
                });
                for &x in &out {
                    self.remove(x);
                }
                Moved::Addrs(out)
            }
        }
    }

    /// Adds addresses taken from another set; every one lies inside this set's range.
    pub(crate) fn absorb(&mut self, moved: Moved) {
        match (self, moved) {
            (UsedSet::Sparse { len, chunks, .. }, Moved::Chunks(parts)) => {
                let chunks = Arc::make_mut(chunks);
                for (h, part) in parts {
                    let bm = chunks.entry(h).or_default();
                    let before = bm.len();
                    *bm |= part;
                    *len += bm.len() - before;
                }
            }
            (set, Moved::Chunks(parts)) => {
                // A bitset covers at most 2^22 addresses, so this loop is bounded by its size.
                for (h, part) in parts {
                    for l in &part {
                        set.insert(join(h, l));
                    }
                }
            }
            (set, Moved::Addrs(addrs)) => {
                for a in addrs {
                    set.insert(a);
                }
            }
        }
    }

    pub(crate) fn check(&self, from: u128, to: u128) -> Result<(), &'static str> {
        match self {
            UsedSet::Small {
                base,
                nbits,
                len,
                words,
            } => {
                if *base != from || u128::from(*nbits) != to - from + 1 || to - from >= SMALL_BITS {
                    return Err("inline set does not cover exactly its range");
                }
                let real = words_count(words, 0, u64::from(*nbits) - 1);
                if real != u64::from(*len) {
                    return Err("inline set count disagrees with its bits");
                }
                let last = ((*nbits - 1) / 64) as usize;
                if words[last] & padding_mask(u64::from(*nbits)) != padding_mask(u64::from(*nbits))
                    || words[last + 1..].iter().any(|&w| w != u64::MAX)
                {
                    return Err("inline set padding bits are not set");
                }
            }
            UsedSet::Dense { base, bits } => {
                bits.check()?;
                if *base != from || u128::from(bits.nbits()) != to - from + 1 {
                    return Err("dense set does not cover exactly its range");
                }
            }
            UsedSet::Sparse {
                from: f,
                span,
                len,
                chunks,
            } => {
                if *f != from || *span != to - from {
                    return Err("sparse set bounds differ from its range");
                }
                let n: u64 = chunks.values().map(RoaringBitmap::len).sum();
                if n != *len {
                    return Err("sparse set count disagrees with its bitmaps");
                }
                if chunks.values().any(RoaringBitmap::is_empty) {
                    return Err("sparse set keeps an empty chunk");
                }
            }
        }
        // Bitsets cover exactly their range (checked above); sparse sets are checked by their
        // first and last address, in O(chunks).
        if let UsedSet::Sparse { chunks, .. } = self {
            let first = chunks
                .first_key_value()
                .and_then(|(&h, bm)| Some(join(h, bm.min()?)));
            let last = chunks
                .last_key_value()
                .and_then(|(&h, bm)| Some(join(h, bm.max()?)));
            if first.is_some_and(|a| a < from) || last.is_some_and(|a| a > to) {
                return Err("used set holds an address outside its range");
            }
        }
        Ok(())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            UsedSet::Small { .. } => 0,
            UsedSet::Dense { bits, .. } => bits.heap_bytes(),
            UsedSet::Sparse { chunks, .. } => {
                chunks.values().map(|bm| bm.serialized_size() + 48).sum()
            }
        }
    }
}

/// Next free address of a sparse set: the first gap in its runs at or after `a`. Kept out of
/// line so the bitset fast path stays small.
#[inline(never)]
fn sparse_next_free(chunks: &BTreeMap<u128, RoaringBitmap>, a: u128, hi: u128) -> Option<u128> {
    let mut a = a;
    loop {
        let (h, l) = split(a);
        let Some(bm) = chunks.get(&h) else {
            return Some(a);
        };
        match bm.range(l..).next_range() {
            Some(run) if *run.start() == l => {
                if *run.end() == u32::MAX {
                    if h == u128::MAX >> 32 {
                        return None;
                    }
                    a = join(h + 1, 0);
                    if a > hi {
                        return None;
                    }
                } else {
                    let x = join(h, run.end() + 1);
                    return (x <= hi).then_some(x);
                }
            }
            _ => return Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds(from: u128, span: u128) -> Vec<UsedSet> {
        let mut v = both(from, span).to_vec();
        if span < SMALL_BITS {
            v.push(UsedSet::for_range(from, span));
        }
        v
    }

    #[test]
    fn inline_dense_and_sparse_agree_on_small_ranges() {
        for span in [0u128, 1, 62, 63, 64, 100, 200, 255] {
            let from = 0x0a00_0000;
            let kinds = all_kinds(from, span);
            assert_eq!(kinds.len(), 3);
            for mut s in kinds {
                for a in (from..=from + span).step_by(3) {
                    assert!(s.insert(a));
                }
                let expect_len = (span / 3 + 1) as u64;
                assert_eq!(s.len(), expect_len);
                assert_eq!(s.count(0, u128::MAX), expect_len);
                assert_eq!(
                    s.next_used(from + 1, from + span),
                    (span >= 3).then_some(from + 3)
                );
                let free = s.next_free(from, from + span);
                assert_eq!(free, (span >= 1).then_some(from + 1), "span {span}");
                assert!(s.contains(from) && !s.contains(from + span + 1));
                assert!(s.remove(from) && !s.remove(from));
                assert!(!s.remove(from + span + 1));
                s.check(from, from + span).unwrap();
            }
        }
    }

    fn both(from: u128, span: u128) -> [UsedSet; 2] {
        let dense = UsedSet::Dense {
            base: from,
            bits: Arc::new(DenseBits::new(span as u64 + 1)),
        };
        let sparse = UsedSet::Sparse {
            from,
            span,
            len: 0,
            chunks: Arc::default(),
        };
        [dense, sparse]
    }

    #[test]
    fn dense_and_sparse_agree() {
        let from = (1u128 << 40) - 1000;
        let span = 5000;
        for mut s in both(from, span) {
            for a in (from..from + 3000).step_by(3) {
                assert!(s.insert(a));
            }
            for a in from + 1000..from + 1100 {
                s.insert(a);
            }
            assert!(!s.insert(from));
            assert_eq!(s.next_free(from, from + span), Some(from + 1));
            assert_eq!(s.next_free(from + 1000, from + span), Some(from + 1100));
            assert_eq!(s.next_used(from + 1, from + span), Some(from + 3));
            assert_eq!(s.count(from, from + 9), 4);
            assert_eq!(s.count(from + 1000, from + 1099), 100);
            let taken = s.take_range(from + 1000, from + 1099);
            assert_eq!(taken.len(), 100);
            let mut back = UsedSet::for_range(from, span);
            back.absorb(taken);
            assert_eq!(back.count(from + 1000, from + 1099), 100);
            assert_eq!(s.count(from + 1000, from + 1099), 0);
            assert!(s.remove(from));
            assert!(!s.remove(from));
            s.check(from, from + span).unwrap();
        }
    }

    #[test]
    fn sparse_promotes_when_dense() {
        let mut s = UsedSet::for_range(0, (1 << 20) - 1);
        assert!(!s.is_dense());
        for a in 0..70_000 {
            s.insert(a);
        }
        assert!(s.is_dense());
        assert_eq!(s.len(), 70_000);
        assert_eq!(s.next_free(0, (1 << 20) - 1), Some(70_000));
        s.check(0, (1 << 20) - 1).unwrap();
    }

    #[test]
    fn sparse_runs_across_chunks_at_the_top() {
        let top = u128::MAX;
        let mut s = UsedSet::for_range(0, top);
        s.insert(top);
        s.insert(top - 1);
        assert_eq!(s.next_free(top - 1, top), None);
        assert_eq!(s.next_free(top - 2, top), Some(top - 2));
        let h = (1u128 << 32) - 1;
        s.insert(h);
        assert_eq!(s.next_free(h, top), Some(h + 1));
        assert_eq!(s.count(0, top), 3);
    }
}
