//! Property tests: random operation sequences against the naive model, IPv4 and IPv6, with
//! `validate()` after every step.

use std::collections::BTreeMap;

use ipam_index::{Addr, BlockSize, FreeQuery, IndexError, RangeId, RemoveMode, Space, Start};
use proptest::prelude::*;

use crate::model::Model;

#[derive(Clone, Debug)]
enum Op {
    Insert(u128, u128),
    Remove(usize, u8),
    Mark(u128),
    Free(u128),
    MarkBulk(Vec<u128>),
    NextFree(usize, u128, bool, bool),
    Blocks(usize, u32, u128),
    Count(u128, u128),
    Lookup(u128),
    Prepare,
}

/// Addresses are drawn from `window` slots `stride` apart from `base`, so ranges collide often;
/// a large stride makes large ranges (sparse used sets).
fn ops_strided(base: u128, window: u128, stride: u128) -> impl Strategy<Value = Vec<Op>> {
    let top = base + (window - 1) * stride;
    let addr = move || (0..window).prop_map(move |x| base + x * stride);
    let op = prop_oneof![
        4 => (addr(), 0..window / 4, 0..stride).prop_map(move |(f, len, j)| Op::Insert(f, f.saturating_add(len * stride + j).min(top))),
        1 => (addr(), addr()).prop_map(|(a, b)| Op::Insert(a, b)),
        1 => (0..64usize, 0..3u8).prop_map(|(i, m)| Op::Remove(i, m)),
        4 => addr().prop_map(Op::Mark),
        1 => addr().prop_map(Op::Free),
        1 => proptest::collection::vec(addr(), 0..40).prop_map(Op::MarkBulk),
        3 => (0..64usize, addr(), any::<bool>(), any::<bool>()).prop_map(|(i, s, c, nb)| Op::NextFree(i, s, c, nb)),
        2 => (0..64usize, 0..6u32, addr()).prop_map(|(i, l, s)| Op::Blocks(i, l, s)),
        2 => (addr(), addr()).prop_map(|(a, b)| Op::Count(a.min(b), a.max(b))),
        3 => addr().prop_map(Op::Lookup),
        1 => Just(Op::Prepare),
    ];
    proptest::collection::vec(op, 1..120)
}

fn ops(base: u128, window: u128) -> impl Strategy<Value = Vec<Op>> {
    ops_strided(base, window, 1)
}

/// Bounds of ranges by id, widened to `u128`.
fn bounds_of<A: Addr>(s: &Space<A>, ids: impl IntoIterator<Item = RangeId>) -> Vec<(u128, u128)> {
    ids.into_iter()
        .map(|k| {
            let i = s.get(k).unwrap();
            (i.from.to_u128(), i.to.to_u128())
        })
        .collect()
}

fn run<A: Addr>(ops: Vec<Op>, base: u128, window: u128) {
    let mut s = Space::<A>::new();
    let mut m = Model::default();
    let mut ids: BTreeMap<(u128, u128), RangeId> = BTreeMap::new();
    let a = A::from_u128;
    // Versions: clones taken along the way, with the model as it was, checked at the end (a
    // clone must not see anything done to the original after it was taken).
    let mut versions: Vec<(Space<A>, Model)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        if step % 13 == 5 {
            versions.push((s.clone(), m.clone()));
        }
        match op {
            Op::Insert(f, t) => {
                let want = m.can_insert(f, t);
                let got = s.insert(a(f), a(t));
                match (want, got) {
                    (Ok(()), Ok(id)) => {
                        m.ranges.insert((f, t), id.get());
                        ids.insert((f, t), id);
                    }
                    (Err("reversed"), Err(IndexError::Reversed { .. })) => {}
                    (Err("duplicate"), Err(IndexError::Duplicate(_))) => {}
                    (Err("overlap"), Err(IndexError::PartialOverlap { .. })) => {}
                    (w, g) => panic!("insert {f}-{t}: model {w:?}, index {g:?}"),
                }
            }
            Op::Remove(i, mode) => {
                let Some((&r, &id)) = ids.iter().nth(i % ids.len().max(1)) else {
                    continue;
                };
                let kids = m.children(Some(r));
                let mode = [
                    RemoveMode::LeafOnly,
                    RemoveMode::Reparent,
                    RemoveMode::Subtree,
                ][mode as usize];
                let got = s.remove(id, mode);
                if mode == RemoveMode::LeafOnly && !kids.is_empty() {
                    assert!(
                        matches!(got, Err(IndexError::HasChildren { .. })),
                        "{got:?}"
                    );
                } else {
                    let gone: Vec<(u128, u128)> = if mode == RemoveMode::Subtree {
                        m.ranges
                            .keys()
                            .filter(|&&(x, y)| r.0 <= x && y <= r.1)
                            .copied()
                            .collect()
                    } else {
                        vec![r]
                    };
                    assert_eq!(got, Ok(gone.len()));
                    for g in gone {
                        m.ranges.remove(&g);
                        ids.remove(&g);
                    }
                }
            }
            Op::Mark(x) => assert_eq!(s.mark_used(a(x)), m.used.insert(x)),
            Op::Free(x) => assert_eq!(s.mark_free(a(x)), m.used.remove(&x)),
            Op::MarkBulk(mut v) => {
                v.sort_unstable();
                let conv: Vec<A> = v.iter().map(|&x| a(x)).collect();
                let before = m.used.len();
                m.used.extend(v.iter().copied());
                assert_eq!(
                    s.mark_used_sorted(&conv),
                    Ok((m.used.len() - before) as u64)
                );
                if conv.len() > 1 && conv[0] != conv[conv.len() - 1] {
                    let mut rev = conv.clone();
                    rev.reverse();
                    assert!(matches!(
                        s.mark_used_sorted(&rev),
                        Err(IndexError::NotSorted { .. })
                    ));
                }
            }
            Op::NextFree(i, start, skip_children, skip_nb) => {
                let Some((&r, &id)) = ids.iter().nth(i % ids.len().max(1)) else {
                    continue;
                };
                // Mostly start inside the range (sometimes anywhere, to test refusals).
                let start = match (r.1 - r.0).checked_add(1) {
                    Some(size) if start % 7 != 0 => r.0 + (start - base) % size,
                    _ => start,
                };
                // An exclusion half of the time (the other half takes the leaf fast path).
                let use_ex = start % 2 == 0;
                let (ex_lo, ex_hi) = if use_ex {
                    (
                        r.0.saturating_add(2).min(r.1),
                        r.0.saturating_add(4).min(r.1),
                    )
                } else {
                    (1, 0)
                };
                let excl = [(a(ex_lo), a(ex_hi))];
                let q = FreeQuery {
                    start: Start::At(a(start)),
                    skip_children,
                    skip_network_broadcast: skip_nb,
                    exclude: if use_ex { &excl } else { &[] },
                };
                let got = s.next_free_n(id, &q, 3);
                if start < r.0 || start > r.1 {
                    assert!(matches!(got, Err(IndexError::OutsideRange { .. })));
                    continue;
                }
                let is_nb = |x: u128| {
                    skip_nb
                        && A::BITS == 32
                        && m.ranges.keys().any(|&(p, q)| {
                            let span = q - p;
                            r.0 <= p
                                && q <= r.1
                                && span & (span + 1) == 0
                                && p & span == 0
                                && span >= 3
                                && (x == p || x == q)
                        })
                };
                // Walk forward from `start`, jumping over children when skipping them.
                let kids = m.children(Some(r));
                let mut want: Vec<A> = Vec::new();
                let mut x = Some(start);
                while let Some(v) = x.filter(|&v| v <= r.1 && want.len() < 3) {
                    x = v.checked_add(1);
                    if skip_children {
                        if let Some(&(_, q)) = kids.iter().find(|&&(p, q)| p <= v && v <= q) {
                            x = q.checked_add(1);
                            continue;
                        }
                    }
                    if use_ex && (ex_lo..=ex_hi).contains(&v) {
                        x = ex_hi.checked_add(1);
                        continue;
                    }
                    if !m.used.contains(&v) && !is_nb(v) {
                        want.push(a(v));
                    }
                }
                assert_eq!(
                    s.next_free(id, &q),
                    Ok(want.first().copied()),
                    "single next free in {r:?} from {start}"
                );
                assert_eq!(got, Ok(want), "next free in {r:?} from {start}");
                // Random start: every answer is free and inside the range.
                let rq = FreeQuery {
                    start: Start::Random(start as u64),
                    skip_network_broadcast: false,
                    ..FreeQuery::default()
                };
                for x in s.next_free_n(id, &rq, 2).unwrap() {
                    let x = x.to_u128();
                    assert!(r.0 <= x && x <= r.1 && !m.used.contains(&x));
                }
            }
            Op::Blocks(i, host_bits, start) => {
                let Some((&r, &id)) = ids.iter().nth(i % ids.len().max(1)) else {
                    continue;
                };
                let size = 1u128 << host_bits;
                let start = match (r.1 - r.0).checked_add(1) {
                    Some(span) if start % 5 != 0 => r.0 + (start - base) % span,
                    _ => start,
                };
                let got = s.next_free_blocks(
                    id,
                    BlockSize::Prefix(A::BITS - host_bits),
                    Some(a(start)),
                    2,
                );
                if size - 1 > r.1 - r.0 {
                    assert!(
                        matches!(got, Err(IndexError::BlockDoesNotFit { .. })),
                        "{got:?}"
                    );
                    continue;
                }
                if start < r.0 || start > r.1 {
                    assert!(matches!(got, Err(IndexError::OutsideRange { .. })));
                    continue;
                }
                let kids = m.children(Some(r));
                let mut want: Vec<(A, A)> = Vec::new();
                let mut next = start.div_ceil(size).checked_mul(size);
                while let Some(c) =
                    next.filter(|c| c.checked_add(size - 1).is_some_and(|e| e <= r.1))
                {
                    if want.len() == 2 {
                        break;
                    }
                    let e = c + (size - 1);
                    next = c.checked_add(size);
                    // A block is free when no child overlaps it and no used address owned by
                    // `r` itself lies in it; on a clash, jump past the obstacle.
                    let kid = kids.iter().find(|&&(p, q)| p <= e && q >= c);
                    let used = m
                        .used
                        .range(c..=e)
                        .find(|&&u| !kids.iter().any(|&(p, q)| p <= u && u <= q));
                    match (kid, used) {
                        (None, None) => want.push((a(c), a(e))),
                        (Some(&(_, q)), _) => {
                            next = q
                                .checked_add(1)
                                .and_then(|x| x.div_ceil(size).checked_mul(size))
                        }
                        (None, Some(&u)) => {
                            next = u
                                .checked_add(1)
                                .and_then(|x| x.div_ceil(size).checked_mul(size))
                        }
                    }
                }
                assert_eq!(
                    got,
                    Ok(want),
                    "blocks /{} in {r:?} from {start}",
                    A::BITS - host_bits
                );
                let counted = s
                    .next_free_blocks(id, BlockSize::Count(size), Some(a(start)), 1)
                    .unwrap();
                if let Some(&(bf, bt)) = counted.first() {
                    let (bf, bt) = (bf.to_u128(), bt.to_u128());
                    assert_eq!(bt - bf + 1, size);
                    assert!(
                        bf >= start
                            && !m.used.range(bf..=bt).any(|_| true)
                            && !kids.iter().any(|&(p, q)| p <= bt && q >= bf)
                    );
                }
            }
            Op::Count(x, y) => {
                assert_eq!(
                    s.count_used(a(x), a(y)),
                    Ok(m.used.range(x..=y).count() as u64)
                );
                let want: Vec<A> = m.used.range(x..=y).take(5).map(|&v| a(v)).collect();
                assert_eq!(s.used_in(a(x), a(y), 5), Ok(want));
            }
            Op::Lookup(x) => {
                let got = s.deepest(a(x)).map(|id| {
                    let info = s.get(id).unwrap();
                    (info.from.to_u128(), info.to.to_u128())
                });
                assert_eq!(got, m.deepest(x));
                assert_eq!(s.is_used(a(x)), m.used.contains(&x));
            }
            Op::Prepare => s.prepare_lookups(),
        }
        s.validate().unwrap();
        assert_eq!(s.len(), m.ranges.len());
    }
    // Final cross-checks: tree shape, utilization, find.
    for (&r, &id) in &ids {
        assert_eq!(s.find(a(r.0), a(r.1)), Some(id));
        let info = s.get(id).unwrap();
        assert_eq!(bounds_of(&s, info.parent).first().copied(), m.parent(r));
        let kids = bounds_of(&s, s.children(Some(id), None, usize::MAX).unwrap());
        assert_eq!(kids, m.children(Some(r)));
        let u = s.utilization(id).unwrap();
        assert_eq!(u.used, m.used.range(r.0..=r.1).count() as u64);
        assert_eq!(u.size.get(), Some(r.1 - r.0 + 1));
        let in_kids: u128 = kids.iter().map(|(p, q)| q - p + 1).sum();
        assert_eq!(u.in_children.get(), Some(in_kids));
        assert_eq!(
            s.subtree(id).unwrap().count(),
            m.ranges
                .keys()
                .filter(|&&(p, q)| r.0 <= p && q <= r.1)
                .count()
        );
    }
    let top = bounds_of(&s, s.children(None, None, usize::MAX).unwrap());
    assert_eq!(top, m.children(None));
    // Snapshot round trip keeps everything.
    let back = Space::<A>::from_snapshot(&s.to_snapshot()).unwrap();
    back.validate().unwrap();
    assert_eq!(back.len(), s.len());
    let _ = window;
    for (old, then) in &versions {
        old.validate().unwrap();
        assert_eq!(
            old.len(),
            then.ranges.len(),
            "an old version kept its ranges"
        );
        let want: Vec<A> = then.used.iter().map(|&v| a(v)).collect();
        assert_eq!(old.used_in(A::from_u128(0), A::MAX, usize::MAX), Ok(want));
        let probes = then
            .ranges
            .keys()
            .flat_map(|&(f, t)| [f, t, f.saturating_sub(1)]);
        for x in probes.chain([base]) {
            let got = old.deepest(a(x)).map(|id| {
                let info = old.get(id).unwrap();
                (info.from.to_u128(), info.to.to_u128())
            });
            assert_eq!(got, then.deepest(x), "an old version's lookup of {x}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn v4_against_model(ops in ops(0x0a00_0000, 300)) {
        run::<u32>(ops, 0x0a00_0000, 300);
    }

    #[test]
    fn v4_at_the_top_against_model(ops in ops(u128::from(u32::MAX) - 299, 300)) {
        run::<u32>(ops, u128::from(u32::MAX) - 299, 300);
    }

    #[test]
    fn v6_against_model(ops in ops(0x2001_0db8 << 96, 300)) {
        run::<u128>(ops, 0x2001_0db8 << 96, 300);
    }

    #[test]
    fn v6_at_the_top_against_model(ops in ops(u128::MAX - 299, 300)) {
        run::<u128>(ops, u128::MAX - 299, 300);
    }

    #[test]
    fn v6_across_the_2_pow_64_boundary(ops in ops((1u128 << 64) - 150, 300)) {
        run::<u128>(ops, (1u128 << 64) - 150, 300);
    }

    #[test]
    fn v4_large_ranges_against_model(ops in ops_strided(0x0a00_0000, 300, 4099)) {
        run::<u32>(ops, 0x0a00_0000, 300);
    }

    #[test]
    fn v6_large_ranges_against_model(ops in ops_strided((0x2001_0db8 << 96) - (1 << 40), 300, (1 << 32) + 77)) {
        run::<u128>(ops, (0x2001_0db8 << 96) - (1 << 40), 300);
    }

    #[test]
    fn lookup_table_matches_tree_walk(
        raw in proptest::collection::vec((0u32..4096, 20u32..=32), 1..400),
        wide in proptest::collection::vec((any::<u32>(), 0u32..=16), 0..4),
        probes in proptest::collection::vec(0u32..6000, 200),
    ) {
        // Many small prefixes crowd a few buckets (wide prefixes stretch the directory), so
        // lookups take the scan and binary-search paths as well as the direct one.
        let mut s = Space::<u32>::new();
        let mut inserted = Vec::new();
        for (x, len) in raw.into_iter().chain(wide) {
            let host = 32 - len;
            let span = if host == 32 { u32::MAX } else { (1u32 << host) - 1 };
            let f = (0x0a00_0000u32.wrapping_add(x)) & !span;
            if s.insert(f, f | span).is_ok() {
                inserted.push((f, f | span));
            }
        }
        let model = |x: u32| inserted.iter().filter(|&&(f, t)| f <= x && x <= t).min_by_key(|&&(f, t)| t - f).copied();
        s.prepare_lookups();
        s.validate().unwrap();
        for p in probes.into_iter().map(|p| 0x0a00_0000 + p).chain([0, u32::MAX, 0x09ff_ffff]) {
            let got = s.deepest(p).map(|id| { let i = s.get(id).unwrap(); (i.from, i.to) });
            prop_assert_eq!(got, model(p), "lookup of {:#x}", p);
        }
    }

    #[test]
    fn bulk_build_equals_incremental(raw in proptest::collection::vec((0u32..2000, 0u32..300), 0..200)) {
        let mut inc = Space::<u32>::new();
        let mut accepted = Vec::new();
        for (f, len) in raw {
            if inc.insert(f, f + len).is_ok() {
                accepted.push((f, f + len));
            }
        }
        let (bulk, ids) = Space::<u32>::from_ranges(&accepted).unwrap();
        bulk.validate().unwrap();
        for (&(f, t), id) in accepted.iter().zip(ids) {
            prop_assert_eq!(bulk.find(f, t), Some(id));
            let (a, b) = (bulk.get(id).unwrap(), inc.get(inc.find(f, t).unwrap()).unwrap());
            prop_assert_eq!(a.children, b.children);
            prop_assert_eq!(a.parent.map(|p| bulk.get(p).unwrap().from), b.parent.map(|p| inc.get(p).unwrap().from));
        }
    }
}
