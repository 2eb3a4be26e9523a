//! A plain word bitset with "full" summary levels, for dense IPv4-sized ranges.
//!
//! Level 0 holds one bit per address. Level `k + 1` holds one bit per word of level `k`, set
//! when that word is all ones. Finding the next zero from any position therefore skips 64
//! full words per summary bit and 4096 per second-level bit: a /16 at any occupancy answers
//! after a handful of word reads. Bits past the end are kept at one, so they are never free.

/// Dense bitset over `nbits` positions with summary levels of full words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DenseBits {
    nbits: u64,
    ones: u64,
    /// `levels[0]` is the bitset itself; each next level summarises full words of the one below.
    levels: Vec<Vec<u64>>,
}

/// Stop adding summary levels once a level has this many words or fewer.
const TOP_WORDS: usize = 8;

fn low_mask(bit: u64) -> u64 {
    // Bits strictly below `bit` (0..64).
    if bit == 0 {
        0
    } else {
        u64::MAX >> (64 - bit)
    }
}

/// First clear bit at or after `i` in `words` (padding bits are set, so never past the end).
#[inline]
pub(crate) fn words_next_zero(words: &[u64], i: u64) -> Option<u64> {
    let mut w = (i / 64) as usize;
    let mut word = *words.get(w)? | low_mask(i % 64);
    loop {
        if word != u64::MAX {
            return Some(w as u64 * 64 + u64::from((!word).trailing_zeros()));
        }
        w += 1;
        word = *words.get(w)?;
    }
}

/// First set bit at or after `i` that is below `nbits`.
#[inline]
pub(crate) fn words_next_one(words: &[u64], nbits: u64, i: u64) -> Option<u64> {
    if i >= nbits {
        return None;
    }
    let mut w = (i / 64) as usize;
    let mut word = words[w] & !low_mask(i % 64);
    loop {
        if word != 0 {
            let b = w as u64 * 64 + u64::from(word.trailing_zeros());
            return (b < nbits).then_some(b);
        }
        w += 1;
        word = *words.get(w)?;
    }
}

/// Number of set bits in `lo..=hi` of `words`.
pub(crate) fn words_count(words: &[u64], lo: u64, hi: u64) -> u64 {
    let (wl, wh) = ((lo / 64) as usize, (hi / 64) as usize);
    let head = !low_mask(lo % 64);
    let tail = if hi % 64 == 63 {
        u64::MAX
    } else {
        low_mask(hi % 64 + 1)
    };
    if wl == wh {
        return u64::from((words[wl] & head & tail).count_ones());
    }
    let mut n = u64::from((words[wl] & head).count_ones());
    n += words[wl + 1..wh]
        .iter()
        .map(|w| u64::from(w.count_ones()))
        .sum::<u64>();
    n + u64::from((words[wh] & tail).count_ones())
}

/// Bits at or above `nbits % 64` of the last word, which are kept set as padding.
pub(crate) fn padding_mask(nbits: u64) -> u64 {
    match nbits % 64 {
        0 => 0,
        tail => !low_mask(tail),
    }
}

impl DenseBits {
    /// An empty bitset of `nbits` positions (at least 1).
    pub(crate) fn new(nbits: u64) -> Self {
        let words = nbits.div_ceil(64) as usize;
        let mut level0 = vec![0u64; words];
        let tail = nbits % 64;
        if tail != 0 {
            level0[words - 1] = !low_mask(tail);
        }
        let mut bits = DenseBits {
            nbits,
            ones: 0,
            levels: vec![level0],
        };
        bits.rebuild_summaries();
        bits
    }

    /// Rebuilds every summary level from level 0 (after a bulk load).
    pub(crate) fn rebuild_summaries(&mut self) {
        self.levels.truncate(1);
        while self.levels.last().map_or(0, Vec::len) > TOP_WORDS {
            let below = self.levels.last().expect("level 0 exists");
            let mut up = vec![0u64; below.len().div_ceil(64)];
            for (i, w) in below.iter().enumerate() {
                if *w == u64::MAX {
                    up[i / 64] |= 1 << (i % 64);
                }
            }
            let tail = below.len() % 64;
            if tail != 0 {
                let last = up.len() - 1;
                up[last] |= !low_mask(tail as u64);
            }
            self.levels.push(up);
        }
    }

    /// Builds from raw level-0 words (snapshot load); `None` if they do not fit `nbits`.
    pub(crate) fn from_words(nbits: u64, mut words: Vec<u64>) -> Option<Self> {
        if nbits == 0 || words.len() as u64 != nbits.div_ceil(64) {
            return None;
        }
        let tail = nbits % 64;
        if tail != 0 {
            let last = words.len() - 1;
            words[last] |= !low_mask(tail);
        }
        let pad = words.len() as u64 * 64 - nbits;
        let ones = words.iter().map(|w| u64::from(w.count_ones())).sum::<u64>() - pad;
        let mut bits = DenseBits {
            nbits,
            ones,
            levels: vec![words],
        };
        bits.rebuild_summaries();
        Some(bits)
    }

    /// Level-0 words, padding bits included (set).
    pub(crate) fn words(&self) -> &[u64] {
        &self.levels[0]
    }

    pub(crate) fn nbits(&self) -> u64 {
        self.nbits
    }

    pub(crate) fn len(&self) -> u64 {
        self.ones
    }

    pub(crate) fn contains(&self, i: u64) -> bool {
        i < self.nbits && self.levels[0][(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Sets bit `i` (< nbits); returns whether it was newly set.
    pub(crate) fn insert(&mut self, i: u64) -> bool {
        debug_assert!(i < self.nbits);
        let mut idx = i as usize;
        let mut level = 0;
        loop {
            let word = &mut self.levels[level][idx / 64];
            let mask = 1u64 << (idx % 64);
            if *word & mask != 0 {
                // Set already at level 0: nothing changed. (Above level 0 the summary bit
                // cannot already be set while a word below it had a zero; stop either way.)
                return level > 0;
            }
            *word |= mask;
            if level == 0 {
                self.ones += 1;
            }
            if *word != u64::MAX || level + 1 == self.levels.len() {
                return true;
            }
            idx /= 64;
            level += 1;
        }
    }

    /// Clears bit `i` (< nbits); returns whether it was set.
    pub(crate) fn remove(&mut self, i: u64) -> bool {
        debug_assert!(i < self.nbits);
        let mut idx = i as usize;
        let mut level = 0;
        loop {
            let word = &mut self.levels[level][idx / 64];
            let mask = 1u64 << (idx % 64);
            if *word & mask == 0 {
                return level > 0;
            }
            let was_full = *word == u64::MAX;
            *word &= !mask;
            if level == 0 {
                self.ones -= 1;
            }
            if !was_full || level + 1 == self.levels.len() {
                return true;
            }
            idx /= 64;
            level += 1;
        }
    }

    /// First clear bit at or after `i`, if any.
    #[inline]
    pub(crate) fn next_zero(&self, i: u64) -> Option<u64> {
        if i >= self.nbits {
            return None;
        }
        let words = &self.levels[0];
        let w = (i / 64) as usize;
        let word = words[w] | low_mask(i % 64);
        if word != u64::MAX {
            return Some(w as u64 * 64 + u64::from((!word).trailing_zeros()));
        }
        self.next_zero_after_word(w + 1)
    }

    /// First clear bit in level-0 words from `pos` on: climb the summaries while they are full,
    /// then descend along first zero bits.
    fn next_zero_after_word(&self, mut pos: usize) -> Option<u64> {
        let mut lvl = 1;
        // Invariant: look for the first zero bit >= pos of `levels[lvl]`, whose bit b stands
        // for word b of `levels[lvl - 1]`.
        let (mut level, mut j) = loop {
            let Some(summary) = self.levels.get(lvl) else {
                let below = &self.levels[lvl - 1];
                let j = (pos..below.len()).find(|&j| below[j] != u64::MAX)?;
                break (lvl - 1, j);
            };
            let sw = pos / 64;
            let word = *summary.get(sw)? | low_mask((pos % 64) as u64);
            if word != u64::MAX {
                break (lvl - 1, sw * 64 + (!word).trailing_zeros() as usize);
            }
            pos = sw + 1;
            lvl += 1;
        };
        // Word j of `levels[level]` has a zero bit: follow first zeros down to level 0.
        while level > 0 {
            j = j * 64 + (!self.levels[level][j]).trailing_zeros() as usize;
            level -= 1;
        }
        let b = j as u64 * 64 + u64::from((!self.levels[0][j]).trailing_zeros());
        (b < self.nbits).then_some(b)
    }

    /// First set bit at or after `i` that is below `nbits`, if any.
    pub(crate) fn next_one(&self, i: u64) -> Option<u64> {
        words_next_one(&self.levels[0], self.nbits, i)
    }

    /// Number of set bits in `lo..=hi` (both < nbits).
    pub(crate) fn count_range(&self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi && hi < self.nbits);
        words_count(&self.levels[0], lo, hi)
    }

    /// Checks the summary levels and the count against level 0.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let mut copy = self.clone();
        copy.rebuild_summaries();
        if copy.levels != self.levels {
            return Err("dense bitset summary levels disagree with the bits");
        }
        let pad = self.levels[0].len() as u64 * 64 - self.nbits;
        let ones: u64 = self.levels[0]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        if ones < pad || ones - pad != self.ones {
            return Err("dense bitset count disagrees with the bits");
        }
        let tail = self.nbits % 64;
        if tail != 0 && self.levels[0].last().map(|w| w | low_mask(tail)) != Some(u64::MAX) {
            return Err("dense bitset padding bits are not set");
        }
        Ok(())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.capacity() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_zero_skips_full_words_across_levels() {
        let mut b = DenseBits::new(1 << 16);
        for i in 0..40_000 {
            assert!(b.insert(i));
        }
        assert_eq!(b.len(), 40_000);
        assert_eq!(b.next_zero(0), Some(40_000));
        assert_eq!(b.next_zero(40_001), Some(40_001));
        b.check().unwrap();
        assert!(b.remove(123));
        assert_eq!(b.next_zero(0), Some(123));
        b.check().unwrap();
        for i in 0..(1 << 16) {
            b.insert(i);
        }
        assert_eq!(b.next_zero(0), None);
        assert_eq!(b.len(), 1 << 16);
        b.check().unwrap();
    }

    #[test]
    fn odd_sizes_never_return_padding() {
        for n in [1u64, 63, 64, 65, 130, 4097, 262_145] {
            let mut b = DenseBits::new(n);
            for i in 0..n {
                assert_eq!(b.next_zero(0), Some(i));
                b.insert(i);
            }
            assert_eq!(b.next_zero(0), None);
            assert_eq!(b.next_one(0), Some(0));
            assert_eq!(b.count_range(0, n - 1), n);
            b.check().unwrap();
        }
    }

    #[test]
    fn count_and_next_one() {
        let mut b = DenseBits::new(1000);
        for i in [3u64, 64, 65, 127, 128, 999] {
            b.insert(i);
        }
        assert_eq!(b.count_range(0, 999), 6);
        assert_eq!(b.count_range(4, 127), 3);
        assert_eq!(b.count_range(64, 64), 1);
        assert_eq!(b.next_one(4), Some(64));
        assert_eq!(b.next_one(129), Some(999));
        assert!(!b.remove(5));
        assert!(b.remove(999));
        assert_eq!(b.next_one(129), None);
    }
}
