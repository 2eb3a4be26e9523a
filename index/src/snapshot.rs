//! Snapshot images: the space as an rkyv archive, for the engine's mmapped snapshots.
//!
//! The image keeps range ids stable (slots are stored by id, free slots included), the tree as
//! parent ids plus concatenated child lists, and each own used set: bitset words as they are in
//! memory (a plain `u64` array, archived without transformation) or roaring's portable
//! serialization (copied out on load). Counts and summaries are recomputed on load; the
//! longest-prefix-match table is rebuilt lazily. Loading checks every invariant, so a corrupt
//! image that still decodes is refused rather than trusted.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;

use crate::addr::{Addr, Family};
use crate::chunks::ChunkVec;
use crate::error::{Invariant, SnapshotError};
use crate::set::UsedSet;
use crate::space::{Node, Space, DEAD, MAX_RANGES, NIL, ROOT};

/// A space in archivable form. Produced by [`Space::to_image`]; embed it in a larger rkyv
/// archive and load it with [`Space::from_archived`], or use [`Space::to_snapshot`] and
/// [`Space::from_snapshot`] for a standalone file.
#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SpaceImage {
    family: u8,
    bounds_v4: Vec<u32>,
    bounds_v6: Vec<u128>,
    parents: Vec<u32>,
    kid_counts: Vec<u32>,
    kids: Vec<u32>,
    sets: Vec<SetImage>,
}

#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SetImage {
    node: u32,
    dense: Vec<u64>,
    sparse: Vec<ChunkImage>,
}

#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct ChunkImage {
    hi: u128,
    bitmap: Vec<u8>,
}

fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => 4,
        Family::V6 => 6,
    }
}

fn bad(node: u32, what: &'static str) -> SnapshotError {
    SnapshotError::Inconsistent(Invariant { node, what })
}

impl<A: Addr> Space<A> {
    /// The space in archivable form.
    pub fn to_image(&self) -> SpaceImage {
        let mut img = SpaceImage {
            family: family_code(A::FAMILY),
            bounds_v4: Vec::new(),
            bounds_v6: Vec::new(),
            parents: Vec::with_capacity(self.nodes.len()),
            kid_counts: Vec::with_capacity(self.nodes.len()),
            kids: Vec::with_capacity(self.count),
            sets: Vec::new(),
        };
        let v4 = A::FAMILY == Family::V4;
        for (i, node) in self.nodes.iter().enumerate() {
            let (f, t) = (node.from.to_u128(), node.to.to_u128());
            if v4 {
                img.bounds_v4.extend([f as u32, t as u32]);
            } else {
                img.bounds_v6.extend([f, t]);
            }
            img.parents.push(node.parent);
            let kids = self.kids_of(i as u32);
            img.kid_counts.push(kids.len() as u32);
            img.kids.extend_from_slice(kids);
            let Some(set) = self.own_set(i as u32).filter(|s| s.len() > 0) else {
                continue;
            };
            let mut si = SetImage {
                node: i as u32,
                dense: Vec::new(),
                sparse: Vec::new(),
            };
            match set {
                UsedSet::Small { words, nbits, .. } => {
                    si.dense = words[..(*nbits as usize).div_ceil(64)].to_vec();
                }
                UsedSet::Dense { bits, .. } => si.dense = bits.words().to_vec(),
                UsedSet::Sparse { chunks, .. } => {
                    for (&hi, bm) in chunks.iter() {
                        let mut bitmap = Vec::with_capacity(bm.serialized_size());
                        bm.serialize_into(&mut bitmap)
                            .expect("writing to a Vec cannot fail");
                        si.sparse.push(ChunkImage { hi, bitmap });
                    }
                }
            }
            img.sets.push(si);
        }
        img
    }

    /// Rebuilds a space from an archived image in place (for example inside a memory-mapped
    /// snapshot that rkyv has validated), checking every invariant.
    pub fn from_archived(img: &ArchivedSpaceImage) -> Result<Self, SnapshotError> {
        let found = match img.family {
            4 => Family::V4,
            6 => Family::V6,
            _ => return Err(bad(ROOT, "unknown address family code")),
        };
        if found != A::FAMILY {
            return Err(SnapshotError::WrongFamily {
                expected: A::FAMILY,
                found,
            });
        }
        let n = img.parents.len();
        let bounds_len = if found == Family::V4 {
            img.bounds_v4.len()
        } else {
            img.bounds_v6.len()
        };
        if n == 0 || n > MAX_RANGES + 1 || bounds_len != 2 * n || img.kid_counts.len() != n {
            return Err(bad(ROOT, "array lengths disagree"));
        }
        let bound = |i: usize| -> A {
            if found == Family::V4 {
                A::from_u128(u128::from(img.bounds_v4[i].to_native()))
            } else {
                A::from_u128(img.bounds_v6[i].to_native())
            }
        };
        let mut space = Space::<A> {
            nodes: ChunkVec::new(),
            free_nodes: ChunkVec::new(),
            kids: ChunkVec::new(),
            free_kids: ChunkVec::new(),
            aux: ChunkVec::new(),
            free_aux: ChunkVec::new(),
            count: 0,
            lpm: OnceLock::new(),
            slow_lookups: AtomicU32::new(0),
        };
        // Built as plain vectors, cut into chunks once at the end of the pass.
        let mut nodes: Vec<Node<A>> = Vec::with_capacity(n);
        let mut kids_v: Vec<Arc<Vec<u32>>> = Vec::new();
        let mut free_nodes: Vec<u32> = Vec::new();
        let mut off = 0usize;
        for i in 0..n {
            let parent = img.parents[i].to_native();
            if parent != NIL && parent != DEAD && parent as usize >= n {
                return Err(bad(i as u32, "parent id out of bounds"));
            }
            let c = img.kid_counts[i].to_native() as usize;
            let Some(list) = img.kids.get(off..off + c) else {
                return Err(bad(i as u32, "child list runs past the end"));
            };
            off += c;
            let list: Vec<u32> = list.iter().map(|k| k.to_native()).collect();
            if list.iter().any(|&k| k as usize >= n || k == ROOT) {
                return Err(bad(i as u32, "child id out of bounds"));
            }
            let kids = if c == 0 {
                NIL
            } else {
                kids_v.push(Arc::new(list));
                (kids_v.len() - 1) as u32
            };
            let (from, to) = (bound(2 * i), bound(2 * i + 1));
            if parent != DEAD && from > to {
                return Err(bad(i as u32, "a range is reversed"));
            }
            nodes.push(Node {
                from,
                to,
                parent,
                kids,
                aux: NIL,
            });
            if parent == DEAD {
                if c != 0 {
                    return Err(bad(i as u32, "a free slot has children"));
                }
                free_nodes.push(i as u32);
            } else if i != ROOT as usize {
                space.count += 1;
            }
        }
        if off != img.kids.len() {
            return Err(bad(ROOT, "child lists do not add up"));
        }
        space.nodes = ChunkVec::from_vec(nodes);
        space.kids = ChunkVec::from_vec(kids_v);
        space.free_nodes = ChunkVec::from_vec(free_nodes);
        for si in img.sets.iter() {
            let node = si.node.to_native();
            if node as usize >= n || space.nodes[node as usize].parent == DEAD {
                return Err(bad(node, "used set of a missing range"));
            }
            let (f, t) = space.bounds(node);
            let set = if !si.dense.is_empty() {
                let words: Vec<u64> = si.dense.iter().map(|w| w.to_native()).collect();
                UsedSet::from_words(f, t - f, words)
                    .ok_or_else(|| bad(node, "bitset does not match its range"))?
            } else {
                let mut set = UsedSet::for_range(f, t - f);
                if let UsedSet::Sparse { len, chunks, .. } = &mut set {
                    for c in si.sparse.iter() {
                        let bm = RoaringBitmap::deserialize_from(&c.bitmap[..])
                            .map_err(|_| bad(node, "roaring bitmap does not decode"))?;
                        let hi = c.hi.to_native();
                        if hi < f >> 32 || hi > t >> 32 {
                            return Err(bad(node, "roaring chunk outside its range"));
                        }
                        *len += bm.len();
                        if !bm.is_empty() && Arc::make_mut(chunks).insert(hi, bm).is_some() {
                            return Err(bad(node, "repeated roaring chunk"));
                        }
                    }
                } else {
                    // A small range whose image holds roaring chunks: rebuild as a bitset.
                    let mut seen_hi = Vec::new();
                    for c in si.sparse.iter() {
                        if seen_hi.contains(&c.hi.to_native()) {
                            return Err(bad(node, "repeated roaring chunk"));
                        }
                        seen_hi.push(c.hi.to_native());
                        let bm = RoaringBitmap::deserialize_from(&c.bitmap[..])
                            .map_err(|_| bad(node, "roaring bitmap does not decode"))?;
                        let hi = c.hi.to_native();
                        if hi > u128::MAX >> 32 {
                            return Err(bad(node, "roaring chunk outside its range"));
                        }
                        for l in &bm {
                            let a = (hi << 32) | u128::from(l);
                            if a < f || a > t {
                                return Err(bad(node, "used address outside its range"));
                            }
                            set.insert(a);
                        }
                    }
                }
                set
            };
            if space.own_set(node).is_some() {
                return Err(bad(node, "two used sets for one range"));
            }
            space.aux_mut(node).set = Some(set);
        }
        if img.sets.is_empty() {
            // No used addresses: no counts to derive. validate() below still checks the shape
            // (including cycles and unreachable ranges) of a corrupt image.
            space.validate().map_err(SnapshotError::Inconsistent)?;
            return Ok(space);
        }
        // Subtree counts, children before parents: reverse pre-order. The walk also guards
        // against cycles in a corrupt image.
        let mut order = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack = vec![ROOT];
        while let Some(x) = stack.pop() {
            if std::mem::replace(&mut seen[x as usize], true) {
                return Err(bad(x, "a range is reachable twice"));
            }
            order.push(x);
            stack.extend_from_slice(space.kids_of(x));
        }
        for &x in order.iter().rev() {
            let own = space.own_set(x).map_or(0, UsedSet::len);
            let total = own
                + space
                    .kids_of(x)
                    .iter()
                    .map(|&k| space.subtree_used(k))
                    .sum::<u64>();
            if total > 0 {
                space.aux_mut(x).subtree_used = total;
            }
        }
        space.validate().map_err(SnapshotError::Inconsistent)?;
        Ok(space)
    }

    /// The space as a self-contained rkyv archive (little-endian, aligned to 16 bytes).
    pub fn to_snapshot(&self) -> Vec<u8> {
        rkyv::to_bytes::<rkyv::rancor::Error>(&self.to_image())
            .expect("serializing plain vectors cannot fail")
            .into_vec()
    }

    /// Loads a space from [`Space::to_snapshot`] bytes (for example a memory-mapped file),
    /// verifying the archive and every invariant first.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        let archived = if (bytes.as_ptr() as usize).is_multiple_of(16) {
            bytes
        } else {
            aligned.extend_from_slice(bytes);
            &aligned[..]
        };
        let img = rkyv::access::<ArchivedSpaceImage, rkyv::rancor::Error>(archived)
            .map_err(SnapshotError::Archive)?;
        Self::from_archived(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small image may describe a huge set (a full roaring chunk is 2^32 addresses in a few
    /// hundred kilobytes). Loading it, and moving it between ranges, must cost per chunk, not
    /// per address.
    #[test]
    fn huge_sparse_sets_load_and_move_per_chunk() {
        let base: u128 = 0x2001_0db8 << 96;
        let mut s = Space::<u128>::new();
        let net = s.insert(base, base + (1 << 64) - 1).unwrap();
        s.mark_used(base + 5);
        let mut img = s.to_image();
        let set = img.sets.iter_mut().find(|x| x.node == net.get()).unwrap();
        for k in 1..4u128 {
            let mut bitmap = Vec::new();
            RoaringBitmap::full().serialize_into(&mut bitmap).unwrap();
            set.sparse.push(ChunkImage {
                hi: (base >> 32) + k,
                bitmap,
            });
        }
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&img).unwrap();
        let t = std::time::Instant::now();
        let mut back = Space::<u128>::from_snapshot(&bytes).unwrap();
        let used = 3 * (1u64 << 32) + 1;
        assert_eq!(back.utilization(net).unwrap().used, used);
        // Insert a range over two of the full chunks, then remove the container: bits move.
        let sub = back
            .insert(base + (1u128 << 32), base + (3u128 << 32) - 1)
            .unwrap();
        assert_eq!(back.utilization(sub).unwrap().used, 2 << 32);
        back.remove(net, crate::RemoveMode::Reparent).unwrap();
        assert_eq!(back.count_used(0, u128::MAX).unwrap(), used);
        back.validate().unwrap();
        // Generous bound: per-address work would take minutes.
        assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    }

    #[test]
    fn repeated_chunks_are_refused() {
        let mut s = Space::<u32>::new();
        let r = s.insert(0x0a00_0000, 0x0a00_00ff).unwrap();
        let mut img = s.to_image();
        let mut bitmap = Vec::new();
        RoaringBitmap::from_iter([0x0a00_0001u32])
            .serialize_into(&mut bitmap)
            .unwrap();
        img.sets.push(SetImage {
            node: r.get(),
            dense: Vec::new(),
            sparse: vec![
                ChunkImage {
                    hi: 0,
                    bitmap: bitmap.clone(),
                },
                ChunkImage { hi: 0, bitmap },
            ],
        });
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&img).unwrap();
        assert!(Space::<u32>::from_snapshot(&bytes).is_err());
    }
}
