//! Profiling aid: next free address in a /16 at 60% random occupancy, in a tight loop.
use ipam_benches::data::{self, Rng};
use ipam_index::{FreeQuery, Space, Start};

fn main() {
    let base = 0x0a10_0000u32;
    let used = data::occupancy_16(0.6, false, 5);
    let mut space = Space::<u32>::new();
    let id = space.insert(base, base + 0xffff).unwrap();
    let addrs: Vec<u32> = used.iter().map(|&o| base + o).collect();
    space.mark_used_sorted(&addrs).unwrap();
    let mut rng = Rng::new(6);
    let starts: Vec<u32> = (0..1_000_000)
        .map(|_| base + rng.below(0x1_0000) as u32)
        .collect();
    let mut acc = 0u32;
    for _ in 0..50 {
        for &s in &starts {
            let q = FreeQuery {
                start: Start::At(s),
                skip_network_broadcast: false,
                ..FreeQuery::default()
            };
            acc ^= space.next_free(id, &q).unwrap().unwrap_or(0);
        }
    }
    println!("{acc}");
}
