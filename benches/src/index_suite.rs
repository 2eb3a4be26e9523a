//! `ipam-bench index`: the index against the best alternatives, in one process.

use std::hint::black_box;

use anyhow::{ensure, Result};
use ipam_benches::data::{self, Rng};
use ipam_benches::report::Report;
use ipam_benches::timing::{median_ns_per_op, median_time, median_time_with_setup};
use ipam_index::{BlockSize, FreeQuery, Space, Start};
use prefix_trie::PrefixMap;
use roaring::RoaringBitmap;

use crate::{Mode, Options};

/// Sizes of one run. Metric names say "1m" for the full sizes; smoke runs are tiny.
struct Scale {
    prefixes: usize,
    lookups: usize,
    rounds: usize,
    queries: usize,
    children: usize,
    marks: usize,
}

pub fn run(opts: &Options) -> Result<Report> {
    let mut r = Report::new("index");
    let s = match opts.mode {
        Mode::Full => Scale {
            prefixes: 1_000_000,
            lookups: 10_000_000,
            rounds: 7,
            queries: 1_000_000,
            children: 100_000,
            marks: 1_000_000,
        },
        Mode::Quick => Scale {
            prefixes: 1_000_000,
            lookups: 2_000_000,
            rounds: 3,
            queries: 1_000_000,
            children: 100_000,
            marks: 1_000_000,
        },
        Mode::Smoke => Scale {
            prefixes: 20_000,
            lookups: 50_000,
            rounds: 1,
            queries: 10_000,
            children: 2_000,
            marks: 20_000,
        },
    };
    // Metric names carry the full-scale sizes ("1m"); this records the sizes actually used.
    r.add("data_prefixes", s.prefixes as f64, "count");
    r.add("data_marked_addresses", s.marks as f64, "count");
    lpm_v4(&mut r, &s)?;
    lpm_v6(&mut r, &s)?;
    next_free(&mut r, &s)?;
    next_block(&mut r, &s)?;
    bulk_and_snapshot(&mut r, &s)?;
    Ok(r)
}

fn lpm_v4(r: &mut Report, sc: &Scale) -> Result<()> {
    let (rounds, lookups) = (sc.rounds, sc.lookups);
    let prefixes = data::bgp_v4(sc.prefixes, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let addrs = data::v4_lookups(lookups, 2);

    let t = median_time(rounds.min(3), || {
        let (s, _) = Space::from_ranges(&bounds).unwrap();
        s.prepare_lookups();
        black_box(s);
    });
    r.add("build_v4_1m_ranges_ms", t.as_secs_f64() * 1e3, "ms");
    let (space, _) = Space::from_ranges(&bounds)?;
    space.prepare_lookups();
    r.add(
        "bytes_per_range_v4",
        space.heap_bytes() as f64 / space.len() as f64,
        "bytes",
    );

    let t_trie = median_time(rounds.min(3), || {
        let mut pm = PrefixMap::<(u32, u8), u32>::new();
        for (i, &(net, len)) in prefixes.iter().enumerate() {
            pm.insert((net, len), i as u32);
        }
        black_box(pm);
    });
    r.add(
        "build_v4_1m_prefix_trie_ms",
        t_trie.as_secs_f64() * 1e3,
        "ms",
    );
    r.ratio(
        "build_v4_1m",
        "prefix_trie",
        t_trie.as_secs_f64() / t.as_secs_f64(),
    );
    let mut pm = PrefixMap::<(u32, u8), u32>::new();
    for (i, &(net, len)) in prefixes.iter().enumerate() {
        pm.insert((net, len), i as u32);
    }

    // Both must give the same answers before their speed means anything.
    for &a in addrs.iter().take(200_000) {
        let ours = space
            .deepest(a)
            .and_then(|id| space.get(id))
            .map(|i| i.prefix_len.unwrap_or(255));
        let theirs = pm.get_lpm(&(a, 32)).map(|(p, _)| p.1);
        ensure!(
            ours == theirs,
            "lookup of {a:#x} disagrees: ipam {ours:?}, prefix-trie {theirs:?}"
        );
    }

    let ns_ours = median_ns_per_op(rounds, addrs.len(), || {
        let mut acc = 0u64;
        for &a in &addrs {
            acc = acc.wrapping_add(space.deepest(a).map_or(0, |id| u64::from(id.get())));
        }
        black_box(acc);
    });
    let ns_trie = median_ns_per_op(rounds, addrs.len(), || {
        let mut acc = 0u64;
        for &a in &addrs {
            acc = acc.wrapping_add(pm.get_lpm(&(a, 32)).map_or(0, |(_, &v)| u64::from(v)));
        }
        black_box(acc);
    });
    r.add("lpm_v4_mlookups_per_s", 1e3 / ns_ours, "M/s");
    r.add("lpm_v4_prefix_trie_mlookups_per_s", 1e3 / ns_trie, "M/s");
    r.ratio("lpm_v4", "prefix_trie", ns_trie / ns_ours);
    Ok(())
}

fn lpm_v6(r: &mut Report, sc: &Scale) -> Result<()> {
    let (rounds, lookups) = (sc.rounds, sc.lookups);
    let prefixes = data::plan_v6(sc.prefixes, 3);
    let bounds: Vec<(u128, u128)> = prefixes.iter().map(|&p| data::v6_bounds(p)).collect();
    let addrs = data::v6_lookups(lookups, 4);
    let t = median_time(rounds.min(3), || {
        let (s, _) = Space::from_ranges(&bounds).unwrap();
        s.prepare_lookups();
        black_box(s);
    });
    r.add("build_v6_1m_ranges_ms", t.as_secs_f64() * 1e3, "ms");
    let (space, _) = Space::from_ranges(&bounds)?;
    space.prepare_lookups();
    r.add(
        "bytes_per_range_v6",
        space.heap_bytes() as f64 / space.len() as f64,
        "bytes",
    );
    let mut pm = PrefixMap::<(u128, u8), u32>::new();
    for (i, &(net, len)) in prefixes.iter().enumerate() {
        pm.insert((net, len), i as u32);
    }
    for &a in addrs.iter().take(200_000) {
        let ours = space
            .deepest(a)
            .and_then(|id| space.get(id))
            .map(|i| i.prefix_len.unwrap_or(255));
        let theirs = pm.get_lpm(&(a, 128)).map(|(p, _)| p.1);
        ensure!(
            ours == theirs,
            "v6 lookup of {a:#x} disagrees: ipam {ours:?}, prefix-trie {theirs:?}"
        );
    }
    let ns_ours = median_ns_per_op(rounds, addrs.len(), || {
        let mut acc = 0u64;
        for &a in &addrs {
            acc = acc.wrapping_add(space.deepest(a).map_or(0, |id| u64::from(id.get())));
        }
        black_box(acc);
    });
    let ns_trie = median_ns_per_op(rounds, addrs.len(), || {
        let mut acc = 0u64;
        for &a in &addrs {
            acc = acc.wrapping_add(pm.get_lpm(&(a, 128)).map_or(0, |(_, &v)| u64::from(v)));
        }
        black_box(acc);
    });
    r.add("lpm_v6_mlookups_per_s", 1e3 / ns_ours, "M/s");
    r.add("lpm_v6_prefix_trie_mlookups_per_s", 1e3 / ns_trie, "M/s");
    r.ratio("lpm_v6", "prefix_trie", ns_trie / ns_ours);
    Ok(())
}

/// Next free address with a roaring bitmap: the first gap at or after `s`.
fn roaring_next_free(bm: &RoaringBitmap, s: u32, last: u32) -> Option<u32> {
    match bm.range(s..=last).next_range() {
        Some(run) if *run.start() == s => (*run.end() < last).then(|| run.end() + 1),
        _ => Some(s),
    }
}

/// Next free address with a plain word scan (no summary level).
fn words_next_free(words: &[u64], s: u32) -> Option<u32> {
    let mut w = (s / 64) as usize;
    let mut word = words[w] | ((1u64 << (s % 64)) - 1);
    loop {
        if word != u64::MAX {
            return Some(w as u32 * 64 + (!word).trailing_zeros());
        }
        w += 1;
        word = *words.get(w)?;
    }
}

fn next_free(r: &mut Report, sc: &Scale) -> Result<()> {
    let (rounds, queries) = (sc.rounds, sc.queries);
    let base = 0x0a10_0000u32;
    for (label, contiguous) in [("random", false), ("contiguous", true)] {
        let used = data::occupancy_16(0.6, contiguous, 5);
        let mut space = Space::<u32>::new();
        let id = space.insert(base, base + 0xffff)?;
        let addrs: Vec<u32> = used.iter().map(|&o| base + o).collect();
        space.mark_used_sorted(&addrs)?;
        let bm: RoaringBitmap = used.iter().copied().collect();
        let mut words = vec![0u64; 1024];
        for &o in &used {
            words[(o / 64) as usize] |= 1 << (o % 64);
        }
        let mut rng = Rng::new(6);
        let starts: Vec<u32> = (0..queries).map(|_| rng.below(0x1_0000) as u32).collect();
        let q = |s: u32| FreeQuery {
            start: Start::At(base + s),
            skip_network_broadcast: false,
            ..FreeQuery::default()
        };
        for &s in starts.iter().take(20_000) {
            let ours = space.next_free(id, &q(s))?.map(|a| a - base);
            ensure!(
                ours == roaring_next_free(&bm, s, 0xffff),
                "next free from {s} disagrees with roaring"
            );
            ensure!(
                ours == words_next_free(&words, s),
                "next free from {s} disagrees with the word scan"
            );
        }
        let ours = median_ns_per_op(rounds, queries, || {
            let mut acc = 0u32;
            for &s in &starts {
                acc ^= space.next_free(id, &q(s)).unwrap().unwrap_or(0);
            }
            black_box(acc);
        });
        let roar = median_ns_per_op(rounds, queries, || {
            let mut acc = 0u32;
            for &s in &starts {
                acc ^= roaring_next_free(&bm, s, 0xffff).unwrap_or(0);
            }
            black_box(acc);
        });
        let scan = median_ns_per_op(rounds, queries, || {
            let mut acc = 0u32;
            for &s in &starts {
                acc ^= words_next_free(&words, s).unwrap_or(0);
            }
            black_box(acc);
        });
        let default_q = median_ns_per_op(rounds, queries, || {
            let mut acc = 0u32;
            for &s in &starts {
                let q = FreeQuery {
                    start: Start::At(base + s),
                    ..FreeQuery::default()
                };
                acc ^= space.next_free(id, &q).unwrap().unwrap_or(0);
            }
            black_box(acc);
        });
        let first = median_ns_per_op(rounds, queries, || {
            let mut acc = 0u32;
            for _ in 0..queries {
                acc ^= space
                    .next_free(id, &FreeQuery::default())
                    .unwrap()
                    .unwrap_or(0);
            }
            black_box(acc);
        });
        let name = format!("next_free_16_{label}60");
        r.add(&format!("{name}_ns"), ours, "ns");
        r.add(&format!("{name}_from_first_ns"), first, "ns");
        r.add(
            &format!("{name}_skip_network_broadcast_ns"),
            default_q,
            "ns",
        );
        r.add(&format!("{name}_roaring_ns"), roar, "ns");
        r.add(&format!("{name}_word_scan_ns"), scan, "ns");
        r.ratio(&name, "roaring", roar / ours);
        r.ratio(&name, "word_scan", scan / ours);
    }
    Ok(())
}

fn next_block(r: &mut Report, sc: &Scale) -> Result<()> {
    let rounds = sc.rounds;
    let net = 0x0a00_0000u32;
    let kids = data::fragmented_children(net, sc.children, 7);
    let mut ranges = vec![(net, net | 0x00ff_ffff)];
    ranges.extend(&kids);
    let (space, ids) = Space::from_ranges(&ranges)?;
    let id = ids[0];
    let queries = sc.queries / 10;
    let mut rng = Rng::new(8);
    let starts: Vec<u32> = (0..queries)
        .map(|_| (net + rng.below(1 << 24) as u32) & !0xff)
        .collect();
    let found = space.next_free_blocks(id, BlockSize::Prefix(24), None, 1)?;
    ensure!(!found.is_empty(), "the fragmented /8 has no free /24");
    let ns = median_ns_per_op(rounds, queries, || {
        let mut acc = 0u32;
        for &s in &starts {
            acc ^= space
                .next_free_blocks(id, BlockSize::Prefix(24), Some(s), 1)
                .unwrap()
                .first()
                .map_or(0, |b| b.0);
        }
        black_box(acc);
    });
    r.add("next_free_block_24_in_fragmented_8_ns", ns, "ns");
    let size_ns = median_ns_per_op(rounds, queries, || {
        let mut acc = 0u32;
        for &s in &starts {
            acc ^= space
                .next_free_blocks(id, BlockSize::Count(200), Some(s), 1)
                .unwrap()
                .first()
                .map_or(0, |b| b.0);
        }
        black_box(acc);
    });
    r.add(
        "next_free_block_200_addrs_in_fragmented_8_ns",
        size_ns,
        "ns",
    );
    Ok(())
}

fn bulk_and_snapshot(r: &mut Report, sc: &Scale) -> Result<()> {
    let rounds = sc.rounds;
    let prefixes = data::bgp_v4(sc.prefixes, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let (space, _) = Space::from_ranges(&bounds)?;
    space.prepare_lookups();

    // (a) A bulk import into one large range: ~95% of a /12 (1M addresses at full scale).
    let mut rng = Rng::new(10);
    let net = 0x0a00_0000u32;
    let span = (sc.marks as u32 + sc.marks as u32 / 20).next_power_of_two();
    let dense: Vec<u32> = (0..span)
        .filter(|_| rng.chance(0.95))
        .map(|o| net + o)
        .take(sc.marks)
        .collect();
    let t = median_time_with_setup(
        rounds.min(5),
        || -> Result<Space<u32>> {
            let mut s = Space::<u32>::new();
            s.insert(net, net + span - 1)?;
            Ok(s)
        },
        |mut s| {
            let n = s.mark_used_sorted(&dense)?;
            ensure!(n == dense.len() as u64, "bulk marking lost addresses");
            Ok(())
        },
    )?;
    r.add(
        "mark_1m_used_bulk_one_range_ms",
        t.as_secs_f64() * 1e3,
        "ms",
    );

    // (b) The same number of addresses scattered over the whole table: nearly every address
    // lands in a different range, so each needs its own used set.
    let mut addrs: Vec<u32> = (0..sc.marks)
        .map(|_| {
            let (f, t) = bounds[rng.below(bounds.len() as u64) as usize];
            f + rng.below(u64::from(t - f) + 1) as u32
        })
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let t = median_time_with_setup(
        rounds.min(5),
        || -> Result<Space<u32>> {
            let s = space.clone();
            s.prepare_lookups();
            Ok(s)
        },
        |mut s| {
            let n = s.mark_used_sorted(&addrs)?;
            ensure!(n == addrs.len() as u64, "bulk marking lost addresses");
            Ok(())
        },
    )?;
    r.add(
        "mark_1m_used_bulk_scattered_over_1m_ranges_ms",
        t.as_secs_f64() * 1e3,
        "ms",
    );

    let plain = space.to_snapshot();
    r.add("snapshot_1m_ranges_bytes", plain.len() as f64, "bytes");
    let t = median_time(rounds.min(5), || {
        black_box(Space::<u32>::from_snapshot(&plain).unwrap());
    });
    r.add("snapshot_load_1m_ranges_ms", t.as_secs_f64() * 1e3, "ms");
    let mut s = space.clone();
    s.mark_used_sorted(&addrs)?;
    let bytes = s.to_snapshot();
    r.add(
        "snapshot_1m_ranges_1m_used_bytes",
        bytes.len() as f64,
        "bytes",
    );
    let t = median_time(rounds.min(5), || {
        black_box(Space::<u32>::from_snapshot(&bytes).unwrap());
    });
    r.add(
        "snapshot_load_1m_ranges_1m_used_ms",
        t.as_secs_f64() * 1e3,
        "ms",
    );
    let back = Space::<u32>::from_snapshot(&bytes)?;
    ensure!(
        back.count_used(0, u32::MAX)? == addrs.len() as u64,
        "the snapshot lost used addresses"
    );
    Ok(())
}
