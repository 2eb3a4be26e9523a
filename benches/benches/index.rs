//! Criterion benchmarks of the index's hot operations (`cargo bench -p ipam-benches`).
//! The side-by-side comparison with prefix-trie and roaring is `ipam-bench index`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ipam_benches::data::{self, Rng};
use ipam_index::{BlockSize, FreeQuery, Space, Start};

fn lookups(c: &mut Criterion) {
    let prefixes = data::bgp_v4(1_000_000, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let (space, _) = Space::from_ranges(&bounds).unwrap();
    space.prepare_lookups();
    let addrs = data::v4_lookups(4096, 2);
    c.bench_function("deepest_v4_1m_prefixes_x4096", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &a in &addrs {
                acc ^= space.deepest(black_box(a)).map_or(0, |id| id.get());
            }
            acc
        })
    });
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("from_ranges_v4_1m", |b| {
        b.iter(|| Space::from_ranges(black_box(&bounds)).unwrap().0.len())
    });
    g.finish();
}

fn next_free(c: &mut Criterion) {
    let base = 0x0a10_0000u32;
    for (label, contiguous) in [("random60", false), ("contiguous60", true)] {
        let used: Vec<u32> = data::occupancy_16(0.6, contiguous, 5)
            .iter()
            .map(|&o| base + o)
            .collect();
        let mut space = Space::<u32>::new();
        let id = space.insert(base, base + 0xffff).unwrap();
        space.mark_used_sorted(&used).unwrap();
        let mut rng = Rng::new(6);
        let starts: Vec<u32> = (0..4096)
            .map(|_| base + rng.below(0x1_0000) as u32)
            .collect();
        c.bench_function(&format!("next_free_16_{label}_x4096"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &s in &starts {
                    let q = FreeQuery {
                        start: Start::At(s),
                        ..FreeQuery::default()
                    };
                    acc ^= space.next_free(id, &q).unwrap().unwrap_or(0);
                }
                acc
            })
        });
    }
}

fn next_block(c: &mut Criterion) {
    let net = 0x0a00_0000u32;
    let mut ranges = vec![(net, net | 0x00ff_ffff)];
    ranges.extend(data::fragmented_children(net, 100_000, 7));
    let (space, ids) = Space::from_ranges(&ranges).unwrap();
    let mut rng = Rng::new(8);
    let starts: Vec<u32> = (0..256)
        .map(|_| net + (rng.below(1 << 24) as u32 & !0xff))
        .collect();
    c.bench_function("next_free_block_24_in_fragmented_8_x256", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &s in &starts {
                let found = space
                    .next_free_blocks(ids[0], BlockSize::Prefix(24), Some(s), 1)
                    .unwrap();
                acc ^= found.first().map_or(0, |b| b.0);
            }
            acc
        })
    });
}

fn bulk(c: &mut Criterion) {
    let net = 0x0a00_0000u32;
    let mut rng = Rng::new(10);
    let addrs: Vec<u32> = (0..1u32 << 20)
        .filter(|_| rng.chance(0.95))
        .map(|o| net + o)
        .collect();
    let mut g = c.benchmark_group("bulk");
    g.sample_size(10);
    g.bench_function("mark_used_sorted_1m_in_a_12", |b| {
        b.iter_batched(
            || {
                let mut s = Space::<u32>::new();
                s.insert(net, net + (1 << 20) - 1).unwrap();
                s
            },
            |mut s| s.mark_used_sorted(&addrs).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, lookups, next_free, next_block, bulk);
criterion_main!(benches);
