//! Timing with repeated rounds and medians (shared, noisy machines: never trust one run).

use std::time::{Duration, Instant};

/// Runs `f` `rounds` times and returns the median wall time.
pub fn median_time(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Median nanoseconds per operation over `rounds` rounds of `ops` operations each.
pub fn median_ns_per_op(rounds: usize, ops: usize, f: impl FnMut()) -> f64 {
    median_time(rounds, f).as_nanos() as f64 / ops.max(1) as f64
}
