//! Memory breakdown of the index for the 1M-prefix BGP-like table.
use ipam_benches::data;
use ipam_index::Space;

fn main() {
    let prefixes = data::bgp_v4(1_000_000, 1);
    let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&p| data::v4_bounds(p)).collect();
    let (space, _) = Space::from_ranges(&bounds).unwrap();
    let tree = space.heap_bytes();
    space.prepare_lookups();
    let all = space.heap_bytes();
    let containers = (0..bounds.len())
        .filter(|&i| {
            space
                .get(ipam_index::RangeId::from_raw(i as u32 + 1))
                .is_some_and(|r| r.children > 0)
        })
        .count();
    println!("ranges {} containers {containers}", space.len());
    println!(
        "tree {:.1} B/range, lookup table {:.1} B/range, total {:.1}",
        tree as f64 / 1e6,
        (all - tree) as f64 / 1e6,
        all as f64 / 1e6
    );
}
