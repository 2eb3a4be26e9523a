//! Deterministic, realistic data sets (seeded; the same on every machine).

/// A small, fast, seeded generator (splitmix64): no dependency, same sequence everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Prefix-length mix of a BGP-like IPv4 table: ~60% /24, the rest spread over /8-/32.
const V4_LENGTHS: &[(u8, u32)] = &[
    (8, 2),
    (12, 5),
    (14, 8),
    (16, 30),
    (17, 15),
    (18, 20),
    (19, 35),
    (20, 45),
    (21, 50),
    (22, 90),
    (23, 80),
    (24, 600),
    (25, 4),
    (26, 4),
    (27, 3),
    (28, 3),
    (29, 3),
    (30, 2),
    (32, 1),
];

fn pick_len(rng: &mut Rng, table: &[(u8, u32)]) -> u8 {
    let total: u32 = table.iter().map(|t| t.1).sum();
    let mut x = rng.below(u64::from(total)) as u32;
    for &(len, w) in table {
        if x < w {
            return len;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// `n` distinct BGP-like IPv4 prefixes `(network, length)` in 1.0.0.0-223.255.255.255, sorted.
pub fn bgp_v4(n: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n + n / 8);
    while out.len() < n + n / 16 {
        let len = pick_len(&mut rng, V4_LENGTHS);
        let addr = 0x0100_0000 + rng.below(0xdf00_0000) as u32;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        out.push((addr & mask, len));
    }
    out.sort_unstable();
    out.dedup();
    let mut rng = Rng::new(seed ^ 1);
    while out.len() > n {
        let i = rng.below(out.len() as u64) as usize;
        out.swap_remove(i);
    }
    out.sort_unstable();
    out
}

/// `n` distinct IPv6 prefixes of an address plan inside one /32 (2001:db8::/32): /48 sites,
/// /56 and /64 networks.
pub fn plan_v6(n: usize, seed: u64) -> Vec<(u128, u8)> {
    let base: u128 = 0x2001_0db8 << 96;
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n + n / 8);
    while out.len() < n + n / 16 {
        let len = match rng.below(10) {
            0 => 48,
            1..=4 => 56,
            _ => 64,
        };
        let host = 128 - u32::from(len);
        let net = base
            | ((u128::from(rng.next_u64()) << 32 | u128::from(rng.next_u64() >> 32))
                & ((1u128 << 96) - 1));
        out.push((net >> host << host, len));
    }
    out.sort_unstable();
    out.dedup();
    let mut rng = Rng::new(seed ^ 1);
    while out.len() > n {
        let i = rng.below(out.len() as u64) as usize;
        out.swap_remove(i);
    }
    out.sort_unstable();
    out
}

/// Inclusive bounds of an IPv4 prefix.
pub fn v4_bounds((net, len): (u32, u8)) -> (u32, u32) {
    let span = if len == 0 {
        u32::MAX
    } else {
        (1u32 << (32 - len)).wrapping_sub(1)
    };
    (net, net | span)
}

/// Inclusive bounds of an IPv6 prefix.
pub fn v6_bounds((net, len): (u128, u8)) -> (u128, u128) {
    let span = if len == 0 {
        u128::MAX
    } else {
        (1u128 << (128 - len)) - 1
    };
    (net, net | span)
}

/// `n` random addresses in the unicast part of IPv4.
pub fn v4_lookups(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| 0x0100_0000 + rng.below(0xdf00_0000) as u32)
        .collect()
}

/// `n` random addresses inside 2001:db8::/32.
pub fn v6_lookups(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            (0x2001_0db8u128 << 96)
                | (u128::from(rng.next_u64()) << 32)
                | u128::from(rng.next_u64() >> 32)
        })
        .collect()
}

/// Used offsets for a /16 at `occupancy`: random, or contiguous from the base.
pub fn occupancy_16(occupancy: f64, contiguous: bool, seed: u64) -> Vec<u32> {
    let n = (65536.0 * occupancy) as u32;
    if contiguous {
        return (0..n).collect();
    }
    let mut rng = Rng::new(seed);
    (0..65536u32).filter(|_| rng.chance(occupancy)).collect()
}

/// `n` disjoint child ranges (aligned /26 to /29 blocks) scattered through the /8 `net`.
pub fn fragmented_children(net: u32, n: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = Rng::new(seed);
    let mut taken = std::collections::BTreeMap::new();
    while taken.len() < n {
        let len = 26 + rng.below(4) as u32;
        let size = 1u32 << (32 - len);
        let start = (net + rng.below(1 << 24) as u32) & !(size - 1);
        let end = start + size - 1;
        let clash = taken
            .range(..=end)
            .next_back()
            .is_some_and(|(_, &e): (&u32, &u32)| e >= start);
        if !clash {
            taken.insert(start, end);
        }
    }
    taken.into_iter().collect()
}
