//! `validate()`: checks every invariant of a space. Used by tests and on snapshot load.

use crate::addr::Addr;
use crate::error::Invariant;
use crate::lookup::Lpm;
use crate::space::{Space, DEAD, NIL, ROOT};

fn fail<T>(node: u32, what: &'static str) -> Result<T, Invariant> {
    Err(Invariant { node, what })
}

impl<A: Addr> Space<A> {
    /// Checks every invariant: the root spans the family; children lie inside their parent, are
    /// sorted, disjoint and point back to it; no child equals its parent; every live range is
    /// reachable exactly once; used sets hold only addresses their range owns; subtree counts
    /// add up; the lookup table, if built, matches the tree. O(ranges + used addresses).
    pub fn validate(&self) -> Result<(), Invariant> {
        let root = &self.nodes[ROOT as usize];
        if root.from.to_u128() != 0 || root.to != A::MAX || root.parent != NIL {
            return fail(ROOT, "the root does not span the whole family");
        }
        let mut seen = vec![false; self.nodes.len()];
        seen[ROOT as usize] = true;
        let mut live = 0usize;
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            let (nf, nt) = self.bounds(n);
            let node = &self.nodes[n as usize];
            if node.kids != NIL && self.kids_of(n).is_empty() {
                return fail(n, "an empty child list is kept");
            }
            let mut prev_end: Option<u128> = None;
            let mut sum = 0u64;
            for &k in self.kids_of(n) {
                if k as usize >= self.nodes.len() || seen[k as usize] {
                    return fail(n, "a child is out of bounds or listed twice");
                }
                seen[k as usize] = true;
                live += 1;
                if self.nodes[k as usize].parent != n {
                    return fail(k, "the parent pointer disagrees with the child list");
                }
                let (kf, kt) = self.bounds(k);
                if kf > kt || kf < nf || kt > nt {
                    return fail(k, "a child is reversed or not inside its parent");
                }
                if n != ROOT && kf == nf && kt == nt {
                    return fail(k, "a child has the same bounds as its parent");
                }
                if prev_end.is_some_and(|pe| kf <= pe) {
                    return fail(k, "children overlap or are out of order");
                }
                prev_end = Some(kt);
                if self.own_set(n).is_some_and(|s| s.count(kf, kt) > 0) {
                    return fail(n, "a used address is owned by a range instead of its child");
                }
                sum += self.subtree_used(k);
                stack.push(k);
            }
            let own = match self.own_set(n) {
                Some(s) => {
                    s.check(nf, nt)
                        .map_err(|what| Invariant { node: n, what })?;
                    s.len()
                }
                None => 0,
            };
            if self.subtree_used(n) != own + sum {
                return fail(n, "the subtree used count does not add up");
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.parent != DEAD && !seen[i] {
                return fail(i as u32, "a live range is unreachable from the root");
            }
        }
        if live != self.count {
            return fail(ROOT, "the range count is wrong");
        }
        if self
            .free_nodes
            .iter()
            .any(|&n| self.nodes.get(n as usize).is_none_or(|x| x.parent != DEAD))
        {
            return fail(ROOT, "a free slot is in use");
        }
        if let Some(lpm) = self.lpm.get() {
            if !lpm.intervals().eq(Lpm::build(self).intervals()) {
                return fail(ROOT, "the lookup table is stale");
            }
        }
        Ok(())
    }
}
