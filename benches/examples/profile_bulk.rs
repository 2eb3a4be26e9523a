//! Profiling aid: bulk-marking 1M addresses spread over a 1M-prefix BGP-like table, and
//! loading its snapshot.
use ipam_benches::data::{self, Rng};
use ipam_index::Space;
use std::time::Instant;

fn main() {
    let prefixes = data::bgp_v4(1_000_000, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let (space, _) = Space::from_ranges(&bounds).unwrap();
    let mut rng = Rng::new(9);
    let mut addrs: Vec<u32> = (0..1_000_000)
        .map(|_| {
            let (f, t) = bounds[rng.below(bounds.len() as u64) as usize];
            f + rng.below(u64::from(t - f) + 1) as u32
        })
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let what = std::env::args().nth(1).unwrap_or_default();
    for _ in 0..5 {
        let mut s = space.clone();
        s.prepare_lookups();
        let t = Instant::now();
        if what == "load" {
            let bytes = space.to_snapshot();
            let t = Instant::now();
            let back = Space::<u32>::from_snapshot(&bytes).unwrap();
            println!("load {:?} {}", t.elapsed(), back.len());
            continue;
        }
        s.mark_used_sorted(&addrs).unwrap();
        println!("mark {:?}", t.elapsed());
    }
}
