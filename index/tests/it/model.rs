//! A naive reference model: ranges in a `BTreeMap`, used addresses in a `BTreeSet`.

use std::collections::{BTreeMap, BTreeSet};

/// Every answer is computed by brute force over the model's contents.
#[derive(Default, Clone, Debug)]
pub struct Model {
    /// (from, to) -> external key.
    pub ranges: BTreeMap<(u128, u128), u32>,
    pub used: BTreeSet<u128>,
}

impl Model {
    pub fn can_insert(&self, f: u128, t: u128) -> Result<(), &'static str> {
        if f > t {
            return Err("reversed");
        }
        if self.ranges.contains_key(&(f, t)) {
            return Err("duplicate");
        }
        for &(a, b) in self.ranges.keys() {
            let disjoint = b < f || a > t;
            let nested = (a <= f && t <= b) || (f <= a && b <= t);
            if !disjoint && !nested {
                return Err("overlap");
            }
        }
        Ok(())
    }

    /// Deepest range containing `x`: the smallest containing one.
    pub fn deepest(&self, x: u128) -> Option<(u128, u128)> {
        self.ranges
            .keys()
            .filter(|&&(a, b)| a <= x && x <= b)
            .min_by_key(|&&(a, b)| b - a)
            .copied()
    }

    pub fn parent(&self, r: (u128, u128)) -> Option<(u128, u128)> {
        self.ranges
            .keys()
            .filter(|&&(a, b)| a <= r.0 && r.1 <= b && (a, b) != r)
            .min_by_key(|&&(a, b)| b - a)
            .copied()
    }

    pub fn children(&self, r: Option<(u128, u128)>) -> Vec<(u128, u128)> {
        self.ranges
            .keys()
            .filter(|&&k| Some(k) != r && self.parent(k) == r)
            .copied()
            .collect()
    }
}
