//! Profiling aid: bulk-marking 1M addresses spread over a 1M-prefix BGP-like table.
use ipam_benches::data::{self, Rng};
use ipam_index::Space;
use std::time::Instant;

fn main() {
    let prefixes = data::bgp_v4(1_000_000, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let (mut space, _) = Space::from_ranges(&bounds).unwrap();
    space.prepare_lookups();
    let mut rng = Rng::new(9);
    let mut addrs: Vec<u32> = (0..1_000_000)
        .map(|_| {
            let (f, t) = bounds[rng.below(bounds.len() as u64) as usize];
            f + rng.below(u64::from(t - f) + 1) as u32
        })
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let t = Instant::now();
    space.mark_used_sorted(&addrs).unwrap();
    println!("mark {:?}", t.elapsed());
    std::process::exit(0); // skip the drop
}
