//! The range tree of one address space and one family: insert, remove, find, lookups, paging.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use crate::addr::{prefix_len_of, Addr, Span};
use crate::chunks::ChunkVec;
use crate::error::IndexError;
use crate::lookup::Lpm;
use crate::set::UsedSet;

/// Marks "no list / no aux / no parent".
pub(crate) const NIL: u32 = u32::MAX;
/// Parent value of a free node slot.
pub(crate) const DEAD: u32 = u32::MAX - 1;
/// The implicit root: the whole address space, never a user range.
pub(crate) const ROOT: u32 = 0;
/// Most ranges in one space. Keeps node ids and lookup-table indexes (at most 2n + 1) clear of
/// the sentinels and of the lookup table's tag bit.
pub const MAX_RANGES: usize = (1 << 30) - 1;

/// Identifies a range inside one [`Space`]. Valid until that range is removed; after that the
/// id may be reused for a new range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RangeId(pub(crate) u32);

impl RangeId {
    /// The raw id, for storing beside the range in a database or snapshot.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Rebuilds an id from [`RangeId::get`]; methods given an id that names no range answer
    /// [`IndexError::UnknownRange`].
    pub fn from_raw(raw: u32) -> RangeId {
        RangeId(raw)
    }
}

/// What to do with a range's children when removing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveMode {
    /// Remove only a range without children; a container is refused.
    LeafOnly,
    /// Remove the range and hand its children to its parent.
    Reparent,
    /// Remove the range and every range below it.
    Subtree,
}

/// A range as stored: bounds, parent, and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeInfo<A> {
    /// First address.
    pub from: A,
    /// Last address (inclusive).
    pub to: A,
    /// The smallest range that contains this one, `None` at the top level.
    pub parent: Option<RangeId>,
    /// Prefix length when the range is exactly one aligned CIDR block (a subnet).
    pub prefix_len: Option<u8>,
    /// Number of direct children.
    pub children: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<A> {
    pub(crate) from: A,
    pub(crate) to: A,
    pub(crate) parent: u32,
    /// Index into `Space::kids`, or NIL for a leaf.
    pub(crate) kids: u32,
    /// Index into `Space::aux`, or NIL while the subtree has no used address.
    pub(crate) aux: u32,
}

impl<A: Addr> Default for Node<A> {
    /// A free slot (what unused chunk slots hold).
    fn default() -> Self {
        Node {
            from: A::from_u128(0),
            to: A::from_u128(0),
            parent: DEAD,
            kids: NIL,
            aux: NIL,
        }
    }
}

/// Used-address data of a node whose subtree has (or had) used addresses.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aux {
    /// Addresses used in this range and in none of its children.
    pub(crate) set: Option<UsedSet>,
    /// Used addresses in the whole subtree, this range's own included.
    pub(crate) subtree_used: u64,
}

/// The ranges and used addresses of one family in one address space.
///
/// Ranges are `from..=to` with any bounds; they nest or are disjoint, never partially overlap.
/// Every address is owned by the deepest range containing it (or by the space itself), and its
/// used bit lives in that range's set, so removing or inserting ranges never loses a used
/// address: ownership moves.
///
/// Reads take `&self` and may run concurrently; the longest-prefix-match table behind
/// [`Space::deepest`] is built lazily on reads after changes (see [`Space::prepare_lookups`]).
///
/// A clone is cheap and independent: the tree, the used sets and the lookup table live in
/// shared copy-on-write chunks ([`ChunkVec`], `Arc`), so cloning costs one pointer per chunk
/// of 512 ranges, and a change made to one clone copies only the chunks (and used sets) it
/// touches. The engine publishes such a clone after every batch of changes for its readers.
pub struct Space<A: Addr> {
    pub(crate) nodes: ChunkVec<Node<A>>,
    pub(crate) free_nodes: ChunkVec<u32>,
    pub(crate) kids: ChunkVec<Arc<Vec<u32>>>,
    pub(crate) free_kids: ChunkVec<u32>,
    pub(crate) aux: ChunkVec<Aux>,
    pub(crate) free_aux: ChunkVec<u32>,
    pub(crate) count: usize,
    pub(crate) lpm: OnceLock<Lpm<A>>,
    pub(crate) slow_lookups: AtomicU32,
}

impl<A: Addr> Clone for Space<A> {
    fn clone(&self) -> Self {
        Space {
            nodes: self.nodes.clone(),
            free_nodes: self.free_nodes.clone(),
            kids: self.kids.clone(),
            free_kids: self.free_kids.clone(),
            aux: self.aux.clone(),
            free_aux: self.free_aux.clone(),
            count: self.count,
            lpm: self.lpm.clone(),
            slow_lookups: AtomicU32::new(0),
        }
    }
}

impl<A: Addr> Default for Space<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Addr> std::fmt::Debug for Space<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("family", &A::FAMILY)
            .field("ranges", &self.count)
            .finish_non_exhaustive()
    }
}

impl<A: Addr> Space<A> {
    /// An empty space.
    pub fn new() -> Self {
        let mut nodes = ChunkVec::new();
        nodes.push(Node {
            from: A::from_u128(0),
            to: A::MAX,
            parent: NIL,
            kids: NIL,
            aux: NIL,
        });
        Space {
            nodes,
            free_nodes: ChunkVec::new(),
            kids: ChunkVec::new(),
            free_kids: ChunkVec::new(),
            aux: ChunkVec::new(),
            free_aux: ChunkVec::new(),
            count: 0,
            lpm: OnceLock::new(),
            slow_lookups: AtomicU32::new(0),
        }
    }

    /// Builds a space from many ranges at once in O(n log n); far faster than inserting one by
    /// one into large containers. Returns the ids in input order. Fails, building nothing, on
    /// the first reversed, duplicate or partially overlapping range.
    pub fn from_ranges(ranges: &[(A, A)]) -> Result<(Self, Vec<RangeId>), IndexError> {
        if ranges.len() > MAX_RANGES {
            return Err(IndexError::CapacityExceeded { limit: MAX_RANGES });
        }
        for &(f, t) in ranges {
            if f > t {
                return Err(IndexError::Reversed {
                    from: f.to_ip(),
                    to: t.to_ip(),
                });
            }
        }
        // Pre-order: ascending start, and the larger range first when starts are equal.
        let mut order: Vec<u32> = (0..ranges.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (ra, rb) = (ranges[a as usize], ranges[b as usize]);
            ra.0.cmp(&rb.0).then(rb.1.cmp(&ra.1))
        });
        let mut space = Space::new();
        // Plain vectors while building; cut into shared chunks once at the end.
        let mut nodes: Vec<Node<A>> = vec![space.nodes[ROOT as usize]];
        nodes.reserve(ranges.len());
        let mut kids: Vec<Vec<u32>> = Vec::new();
        let mut ids = vec![RangeId(0); ranges.len()];
        let mut stack: Vec<u32> = vec![ROOT];
        for &i in &order {
            let (f, t) = ranges[i as usize];
            // Pop finished ranges: those that end before this one starts.
            while let Some(&top) = stack.last() {
                if top != ROOT && nodes[top as usize].to < f {
                    stack.pop();
                } else {
                    break;
                }
            }
            let parent = *stack.last().expect("root never pops");
            let pn = nodes[parent as usize];
            if parent != ROOT {
                if pn.from == f && pn.to == t {
                    return Err(IndexError::Duplicate(Span::of(f, t)));
                }
                if t > pn.to {
                    return Err(IndexError::PartialOverlap {
                        new: Span::of(f, t),
                        existing: Span::of(pn.from, pn.to),
                    });
                }
            }
            let id = nodes.len() as u32;
            nodes.push(Node {
                from: f,
                to: t,
                parent,
                kids: NIL,
                aux: NIL,
            });
            if nodes[parent as usize].kids == NIL {
                nodes[parent as usize].kids = kids.len() as u32;
                kids.push(Vec::new());
            }
            kids[nodes[parent as usize].kids as usize].push(id);
            ids[i as usize] = RangeId(id);
            stack.push(id);
        }
        space.count = ranges.len();
        space.nodes = ChunkVec::from_vec(nodes);
        space.kids = ChunkVec::from_vec(
            kids.into_iter()
                .map(|mut k| {
                    k.shrink_to_fit();
                    Arc::new(k)
                })
                .collect(),
        );
        Ok((space, ids))
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the space has no ranges.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    // ---- internal helpers ------------------------------------------------------------------

    #[inline]
    pub(crate) fn bounds(&self, n: u32) -> (u128, u128) {
        let node = &self.nodes[n as usize];
        (node.from.to_u128(), node.to.to_u128())
    }

    #[inline]
    pub(crate) fn kids_of(&self, n: u32) -> &[u32] {
        match self.nodes[n as usize].kids {
            NIL => &[],
            k => &self.kids[k as usize],
        }
    }

    pub(crate) fn kids_mut(&mut self, n: u32) -> &mut Vec<u32> {
        if self.nodes[n as usize].kids == NIL {
            let k = match self.free_kids.pop() {
                Some(k) => k,
                None => {
                    self.kids.push(Arc::default());
                    (self.kids.len() - 1) as u32
                }
            };
            self.nodes[n as usize].kids = k;
        }
        let k = self.nodes[n as usize].kids as usize;
        Arc::make_mut(&mut self.kids[k])
    }

    /// Frees a node's child list if it became empty.
    fn tidy_kids(&mut self, n: u32) {
        let k = self.nodes[n as usize].kids;
        if k != NIL && self.kids[k as usize].is_empty() {
            self.kids[k as usize] = Arc::default();
            self.free_kids.push(k);
            self.nodes[n as usize].kids = NIL;
        }
    }

    #[inline]
    pub(crate) fn aux_of(&self, n: u32) -> Option<&Aux> {
        match self.nodes[n as usize].aux {
            NIL => None,
            x => Some(&self.aux[x as usize]),
        }
    }

    pub(crate) fn aux_mut(&mut self, n: u32) -> &mut Aux {
        if self.nodes[n as usize].aux == NIL {
            let x = match self.free_aux.pop() {
                Some(x) => x,
                None => {
                    self.aux.push(Aux::default());
                    (self.aux.len() - 1) as u32
                }
            };
            self.nodes[n as usize].aux = x;
        }
        &mut self.aux[self.nodes[n as usize].aux as usize]
    }

    /// The own used set of `n`, created on first use.
    pub(crate) fn own_set_mut(&mut self, n: u32) -> &mut UsedSet {
        let (f, t) = self.bounds(n);
        self.aux_mut(n)
            .set
            .get_or_insert_with(|| UsedSet::for_range(f, t - f))
    }

    #[inline]
    pub(crate) fn own_set(&self, n: u32) -> Option<&UsedSet> {
        self.aux_of(n).and_then(|a| a.set.as_ref())
    }

    #[inline]
    pub(crate) fn subtree_used(&self, n: u32) -> u64 {
        self.aux_of(n).map_or(0, |a| a.subtree_used)
    }

    /// Adds `delta` to the subtree count of `n` and of every ancestor.
    pub(crate) fn add_subtree_used(&mut self, mut n: u32, delta: i64) {
        while n != NIL {
            let aux = self.aux_mut(n);
            aux.subtree_used = aux.subtree_used.wrapping_add_signed(delta);
            n = self.nodes[n as usize].parent;
        }
    }

    /// Checks that `id` names a live range and returns its node index and a copy of it.
    #[inline]
    pub(crate) fn live_node(&self, id: RangeId) -> Result<(u32, Node<A>), IndexError> {
        match self.nodes.get(id.0 as usize) {
            Some(node) if id.0 != ROOT && node.parent != DEAD => Ok((id.0, *node)),
            _ => Err(IndexError::UnknownRange(id.0)),
        }
    }

    /// Checks that `id` names a live range and returns its node index.
    #[inline]
    pub(crate) fn live(&self, id: RangeId) -> Result<u32, IndexError> {
        match self.nodes.get(id.0 as usize) {
            Some(node) if id.0 != ROOT && node.parent != DEAD => Ok(id.0),
            _ => Err(IndexError::UnknownRange(id.0)),
        }
    }

    pub(crate) fn span_of(&self, n: u32) -> Span {
        let node = &self.nodes[n as usize];
        Span::of(node.from, node.to)
    }

    /// The child of `n` that contains `a`, with its position.
    #[inline]
    pub(crate) fn child_containing(&self, n: u32, a: u128) -> Option<(usize, u32)> {
        let kids = self.kids_of(n);
        let i = kids.partition_point(|&k| self.nodes[k as usize].from.to_u128() <= a);
        let k = *kids.get(i.checked_sub(1)?)?;
        (self.nodes[k as usize].to.to_u128() >= a).then_some((i - 1, k))
    }

    /// Position of the first child of `n` that ends at or after `a`.
    #[inline]
    pub(crate) fn first_kid_ending_at_or_after(&self, n: u32, a: u128) -> usize {
        self.kids_of(n)
            .partition_point(|&k| self.nodes[k as usize].to.to_u128() < a)
    }

    /// The deepest node (root included) containing `a`, by walking down the tree.
    pub(crate) fn owner_slow(&self, a: u128) -> u32 {
        let mut n = ROOT;
        while let Some((_, k)) = self.child_containing(n, a) {
            n = k;
        }
        n
    }

    /// The deepest node (root included) containing `a`.
    #[inline]
    pub(crate) fn owner(&self, a: A) -> u32 {
        if let Some(lpm) = self.lpm.get() {
            return lpm.lookup(a);
        }
        let n = self.owner_slow(a.to_u128());
        // Build the flat table once slow lookups have cost about as much as building it.
        let threshold = 32 + (self.count / 16) as u32;
        if self.slow_lookups.fetch_add(1, Ordering::Relaxed) >= threshold {
            self.prepare_lookups();
        }
        n
    }

    pub(crate) fn changed(&mut self) {
        if self.lpm.get().is_some() {
            self.lpm = OnceLock::new();
        }
        *self.slow_lookups.get_mut() = 0;
    }

    fn alloc_node(&mut self, node: Node<A>) -> u32 {
        match self.free_nodes.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn free_node(&mut self, n: u32) {
        let k = self.nodes[n as usize].kids;
        if k != NIL {
            self.kids[k as usize] = Arc::default();
            self.free_kids.push(k);
        }
        let x = self.nodes[n as usize].aux;
        if x != NIL {
            self.aux[x as usize] = Aux::default();
            self.free_aux.push(x);
        }
        self.nodes[n as usize] = Node {
            from: A::from_u128(0),
            to: A::from_u128(0),
            parent: DEAD,
            kids: NIL,
            aux: NIL,
        };
        self.free_nodes.push(n);
    }

    // ---- public tree operations ------------------------------------------------------------

    /// Inserts the range `from..=to`. It becomes the child of the smallest range containing it
    /// and adopts the existing ranges it contains; used addresses it covers move to it.
    ///
    /// Errors: [`IndexError::Reversed`], [`IndexError::Duplicate`], and
    /// [`IndexError::PartialOverlap`] naming the range it crosses.
    pub fn insert(&mut self, from: A, to: A) -> Result<RangeId, IndexError> {
        if from > to {
            return Err(IndexError::Reversed {
                from: from.to_ip(),
                to: to.to_ip(),
            });
        }
        if self.count >= MAX_RANGES {
            return Err(IndexError::CapacityExceeded { limit: MAX_RANGES });
        }
        let (f, t) = (from.to_u128(), to.to_u128());
        let overlap = |s: &Self, k: u32| IndexError::PartialOverlap {
            new: Span::of(from, to),
            existing: s.span_of(k),
        };
        let mut p = ROOT;
        while let Some((_, k)) = self.child_containing(p, f) {
            let (kf, kt) = self.bounds(k);
            if kf == f && kt == t {
                return Err(IndexError::Duplicate(Span::of(from, to)));
            }
            if kt >= t {
                p = k;
                continue;
            }
            if kf < f {
                return Err(overlap(self, k));
            }
            break;
        }
        let kids = self.kids_of(p);
        let i = kids.partition_point(|&k| self.nodes[k as usize].from.to_u128() < f);
        let j = kids.partition_point(|&k| self.nodes[k as usize].from.to_u128() <= t);
        if j > i && self.nodes[kids[j - 1] as usize].to.to_u128() > t {
            return Err(overlap(self, kids[j - 1]));
        }
        // Validated: from here on nothing fails.
        let id = self.alloc_node(Node {
            from,
            to,
            parent: p,
            kids: NIL,
            aux: NIL,
        });
        if j > i {
            let adopted: Vec<u32> = self.kids_mut(p).splice(i..j, [id]).collect();
            let mut used = 0;
            for &k in &adopted {
                self.nodes[k as usize].parent = id;
                used += self.subtree_used(k);
            }
            *self.kids_mut(id) = adopted;
            if used > 0 {
                self.aux_mut(id).subtree_used = used;
            }
        } else {
            self.kids_mut(p).insert(i, id);
        }
        let px = self.nodes[p as usize].aux;
        let moved = match self.aux.get_mut(px as usize).and_then(|a| a.set.as_mut()) {
            Some(set) if set.count(f, t) > 0 => Some(set.take_range(f, t)),
            _ => None,
        };
        if let Some(moved) = moved {
            let n = moved.len();
            self.own_set_mut(id).absorb(moved);
            self.aux_mut(id).subtree_used += n;
        }
        self.count += 1;
        self.changed();
        Ok(RangeId(id))
    }

    /// Removes a range; see [`RemoveMode`] for its children. Used addresses of removed ranges
    /// stay used and move to the parent. Returns how many ranges were removed.
    pub fn remove(&mut self, id: RangeId, mode: RemoveMode) -> Result<usize, IndexError> {
        let n = self.live(id)?;
        let nkids = self.kids_of(n).len();
        if nkids > 0 && mode == RemoveMode::LeafOnly {
            return Err(IndexError::HasChildren {
                range: self.span_of(n),
                children: nkids,
            });
        }
        let p = self.nodes[n as usize].parent;
        let from = self.nodes[n as usize].from.to_u128();
        let pos = self
            .kids_of(p)
            .partition_point(|&k| self.nodes[k as usize].from.to_u128() < from);
        debug_assert_eq!(self.kids_of(p)[pos], n);
        let removed: Vec<u32> = match mode {
            RemoveMode::Subtree => {
                self.kids_mut(p).remove(pos);
                self.subtree_nodes(n)
            }
            RemoveMode::LeafOnly | RemoveMode::Reparent => {
                let kids = std::mem::take(self.kids_mut(n));
                for &k in &kids {
                    self.nodes[k as usize].parent = p;
                }
                self.kids_mut(p).splice(pos..=pos, kids);
                vec![n]
            }
        };
        // Hand the removed ranges' own used addresses to the parent (counts are unchanged).
        for &r in &removed {
            let x = self.nodes[r as usize].aux;
            let moved = match self.aux.get_mut(x as usize).and_then(|a| a.set.as_mut()) {
                Some(set) if set.len() > 0 => set.take_range(0, u128::MAX),
                _ => continue,
            };
            self.own_set_mut(p).absorb(moved);
        }
        for &r in &removed {
            self.free_node(r);
        }
        self.tidy_kids(p);
        self.count -= removed.len();
        self.changed();
        Ok(removed.len())
    }

    /// Walks `lo..=hi` of node `n` depth-first in address order. `visit(node, a, b)` is called
    /// for each stretch `a..=b` that `node` owns itself (between its children); children for
    /// which `descend` says yes are walked in turn, others skipped. Stops at the first `Some`.
    /// Uses an explicit stack: nesting depth is unbounded (ranges need not be prefixes).
    pub(crate) fn walk_own_gaps<R>(
        &self,
        n: u32,
        lo: u128,
        hi: u128,
        descend: impl Fn(u32) -> bool,
        mut visit: impl FnMut(u32, u128, u128) -> Option<R>,
    ) -> Option<R> {
        struct Level {
            node: u32,
            /// Position of the next child to visit.
            next: usize,
            /// First address of the node not yet visited.
            cursor: u128,
            hi: u128,
            /// A child reached `hi`: nothing of the node itself remains after it.
            done: bool,
        }
        let level = |node: u32, lo: u128, hi: u128| Level {
            node,
            next: self.first_kid_ending_at_or_after(node, lo),
            cursor: lo,
            hi,
            done: false,
        };
        let mut stack = vec![level(n, lo, hi)];
        while let Some(top) = stack.last_mut() {
            let kid = self.kids_of(top.node).get(top.next).copied();
            match kid.filter(|&k| self.bounds(k).0 <= top.hi) {
                Some(k) => {
                    top.next += 1;
                    let (kf, kt) = self.bounds(k);
                    if top.cursor < kf {
                        if let Some(r) = visit(top.node, top.cursor, kf - 1) {
                            return Some(r);
                        }
                    }
                    let (child_lo, child_hi) = (top.cursor.max(kf), kt.min(top.hi));
                    if kt >= top.hi {
                        top.done = true;
                    } else {
                        top.cursor = kt + 1;
                    }
                    if descend(k) {
                        stack.push(level(k, child_lo, child_hi));
                    }
                }
                None => {
                    let top = stack.pop().expect("stack is not empty");
                    if !top.done {
                        if let Some(r) = visit(top.node, top.cursor, top.hi) {
                            return Some(r);
                        }
                    }
                }
            }
        }
        None
    }

    /// Nodes of the subtree under `n` (itself first), pre-order.
    pub(crate) fn subtree_nodes(&self, n: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            out.push(x);
            stack.extend(self.kids_of(x).iter().rev());
        }
        out
    }

    /// The range with exactly these bounds.
    pub fn find(&self, from: A, to: A) -> Option<RangeId> {
        let (f, t) = (from.to_u128(), to.to_u128());
        let mut n = ROOT;
        while let Some((_, k)) = self.child_containing(n, f) {
            let (kf, kt) = self.bounds(k);
            if kf == f && kt == t {
                return Some(RangeId(k));
            }
            if kt < t {
                return None;
            }
            n = k;
        }
        None
    }

    /// A range's bounds, parent and shape; `None` if the id names no range.
    pub fn get(&self, id: RangeId) -> Option<RangeInfo<A>> {
        let n = self.live(id).ok()?;
        let node = &self.nodes[n as usize];
        Some(RangeInfo {
            from: node.from,
            to: node.to,
            parent: (node.parent != ROOT).then_some(RangeId(node.parent)),
            prefix_len: prefix_len_of(node.from.to_u128(), node.to.to_u128(), A::BITS),
            children: self.kids_of(n).len(),
        })
    }

    /// The deepest range containing `addr` (longest-prefix match), `None` when no range does.
    #[inline]
    pub fn deepest(&self, addr: A) -> Option<RangeId> {
        match self.owner(addr) {
            ROOT => None,
            n => Some(RangeId(n)),
        }
    }

    /// The ranges containing `id`, nearest first, up to the top level (not `id` itself).
    pub fn ancestors(&self, id: RangeId) -> Result<Vec<RangeId>, IndexError> {
        let mut n = self.nodes[self.live(id)? as usize].parent;
        let mut out = Vec::new();
        while n != ROOT {
            out.push(RangeId(n));
            n = self.nodes[n as usize].parent;
        }
        Ok(out)
    }

    /// One page of the direct children of `parent` (`None`: the top-level ranges), in address
    /// order, starting with the first child that starts at or after `start`, at most `limit`.
    pub fn children(
        &self,
        parent: Option<RangeId>,
        start: Option<A>,
        limit: usize,
    ) -> Result<Vec<RangeId>, IndexError> {
        let p = match parent {
            Some(id) => self.live(id)?,
            None => ROOT,
        };
        let kids = self.kids_of(p);
        let i = start.map_or(0, |s| {
            kids.partition_point(|&k| self.nodes[k as usize].from < s)
        });
        Ok(kids[i..].iter().take(limit).map(|&k| RangeId(k)).collect())
    }

    /// The range and every range below it, in pre-order (address order, containers first).
    pub fn subtree(&self, id: RangeId) -> Result<impl Iterator<Item = RangeId> + '_, IndexError> {
        let n = self.live(id)?;
        let mut stack = vec![n];
        Ok(std::iter::from_fn(move || {
            let x = stack.pop()?;
            stack.extend(self.kids_of(x).iter().rev());
            Some(RangeId(x))
        }))
    }

    /// Builds the flat longest-prefix-match table now, if it is not current. Lookups build it
    /// on their own after enough slow lookups; call this after a batch of changes to keep the
    /// first lookups fast. O(ranges).
    pub fn prepare_lookups(&self) {
        self.lpm.get_or_init(|| Lpm::build(self));
    }

    /// Approximate heap bytes held by the index (tree, lookup table, used sets).
    pub fn heap_bytes(&self) -> usize {
        let nodes = self.nodes.heap_bytes();
        let kids: usize = self.kids.heap_bytes()
            + self
                .kids
                .iter()
                .map(|k| k.capacity() * 4 + 16)
                .sum::<usize>();
        let aux: usize = self.aux.heap_bytes()
            + self
                .aux
                .iter()
                .filter_map(|a| a.set.as_ref())
                .map(UsedSet::heap_bytes)
                .sum::<usize>();
        let free =
            self.free_nodes.heap_bytes() + self.free_kids.heap_bytes() + self.free_aux.heap_bytes();
        nodes + kids + aux + free + self.lpm.get().map_or(0, Lpm::heap_bytes)
    }
}
