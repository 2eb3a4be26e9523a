//! [`ChunkVec`]: a vector stored as fixed-size chunks behind `Arc`, so that a clone costs one
//! pointer per chunk and a change copies only the chunk it touches while another clone still
//! shares it (copy on write).
//!
//! This is what makes a [`crate::Space`] cheap to version: the engine publishes an immutable
//! clone after every batch of changes, readers keep using theirs for as long as they like, and
//! the writer's next change copies a few chunks instead of the whole index.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// log2 of the elements per chunk. 512 keeps a clone of a million-element vector at about
/// two thousand pointer copies and the copy of one touched chunk at a few tens of KiB.
const SHIFT: usize = 9;
/// Elements per chunk.
pub const CHUNK: usize = 1 << SHIFT;
const MASK: usize = CHUNK - 1;

/// A growable vector of `T` in shared, copy-on-write chunks. Indexing is two dependent loads
/// instead of one; `index_mut`, `get_mut`, `push` and `pop` copy the touched chunk first
/// when it is shared with a clone.
///
/// Every chunk but the last holds [`CHUNK`] slots; the last grows by doubling, so a small
/// vector costs little. Slots past the length hold `T::default()`.
pub struct ChunkVec<T> {
    chunks: Vec<Arc<[T]>>,
    len: usize,
}

impl<T> Clone for ChunkVec<T> {
    fn clone(&self) -> Self {
        ChunkVec {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for ChunkVec<T> {
    fn default() -> Self {
        ChunkVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone + Default + std::fmt::Debug> std::fmt::Debug for ChunkVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Clone + Default> ChunkVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element at `i`, `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i < self.len {
            self.chunks[i >> SHIFT].get(i & MASK)
        } else {
            None
        }
    }

    /// The element at `i` for changing (its chunk copied first when shared), `None` past the
    /// end.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i < self.len {
            Arc::make_mut(&mut self.chunks[i >> SHIFT]).get_mut(i & MASK)
        } else {
            None
        }
    }

    /// A vector holding `v`, cut into chunks at once (far faster than pushing one by one).
    pub fn from_vec(v: Vec<T>) -> Self {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut it = v.into_iter();
        loop {
            let chunk: Vec<T> = it.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Arc::from(chunk));
        }
        ChunkVec { chunks, len }
    }

    /// Appends an element.
    pub fn push(&mut self, v: T) {
        let slot = self.len & MASK;
        if slot == 0 {
            self.chunks.push(Arc::from([T::default()]));
        }
        let last = self.chunks.last_mut().expect("a chunk with room exists");
        if slot >= last.len() {
            // Grow the last chunk by doubling (up to a whole chunk).
            let grown = (last.len() * 2).min(CHUNK);
            let mut v: Vec<T> = Vec::with_capacity(grown);
            v.extend(last.iter().cloned());
            v.resize_with(grown, T::default);
            *last = Arc::from(v);
        }
        Arc::make_mut(last)[slot] = v;
        self.len += 1;
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let i = self.len;
        let last = self
            .chunks
            .last_mut()
            .expect("a non-empty vector has a chunk");
        let v = std::mem::take(&mut Arc::make_mut(last)[i & MASK]);
        if i & MASK == 0 {
            self.chunks.pop();
        }
        Some(v)
    }

    /// The elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let len = self.len;
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(c, ch)| ch[..(len - c * CHUNK).min(CHUNK)].iter())
    }

    /// Drops spare room in the chunk list.
    pub fn shrink_to_fit(&mut self) {
        self.chunks.shrink_to_fit();
    }

    /// Approximate heap bytes held, counting shared chunks in full.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Arc<[T]>>()
            + self
                .chunks
                .iter()
                .map(|c| c.len() * std::mem::size_of::<T>() + 16)
                .sum::<usize>()
    }
}

impl<T: Clone + Default> Index<usize> for ChunkVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} out of bounds (len {})", self.len);
        &self.chunks[i >> SHIFT][i & MASK]
    }
}

impl<T: Clone + Default> IndexMut<usize> for ChunkVec<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} out of bounds (len {})", self.len);
        &mut Arc::make_mut(&mut self.chunks[i >> SHIFT])[i & MASK]
    }
}

impl<T: Clone + Default> FromIterator<T> for ChunkVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = ChunkVec::new();
        for x in iter {
            v.push(x);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_vec_across_chunk_boundaries() {
        let mut v = ChunkVec::new();
        let mut model = Vec::new();
        for i in 0..(3 * CHUNK + 7) as u32 {
            v.push(i);
            model.push(i);
        }
        assert_eq!(v.len(), model.len());
        assert!(v.iter().eq(model.iter()));
        let mut bulk = ChunkVec::from_vec(model.clone());
        assert!(bulk.iter().eq(model.iter()));
        bulk.push(7);
        assert_eq!((bulk.len(), bulk[model.len()]), (model.len() + 1, 7));
        v[CHUNK] = 99;
        model[CHUNK] = 99;
        for _ in 0..CHUNK + 9 {
            assert_eq!(v.pop(), model.pop());
        }
        assert!(v.iter().eq(model.iter()));
        assert_eq!(v.get(model.len()), None);
        while v.pop().is_some() {}
        assert!(v.is_empty() && v.chunks.is_empty());
    }

    #[test]
    fn a_clone_is_unchanged_by_later_writes_and_shares_untouched_chunks() {
        let mut v: ChunkVec<u64> = (0..(4 * CHUNK) as u64).collect();
        let snapshot = v.clone();
        v[1] = 1000;
        *v.get_mut(3 * CHUNK).expect("in bounds") = 2000;
        v.push(7);
        assert_eq!(snapshot[1], 1);
        assert_eq!(snapshot[3 * CHUNK], (3 * CHUNK) as u64);
        assert_eq!(snapshot.len(), 4 * CHUNK);
        assert_eq!((v[1], v[3 * CHUNK], v.len()), (1000, 2000, 4 * CHUNK + 1));
        // Chunks 1 and 2 were not written: still the same allocation in both.
        for c in 1..3 {
            assert!(Arc::ptr_eq(&v.chunks[c], &snapshot.chunks[c]));
        }
        assert!(!Arc::ptr_eq(&v.chunks[0], &snapshot.chunks[0]));
    }
}
