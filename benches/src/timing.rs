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

/// Median wall time of `op` over `rounds` rounds, each on a fresh state from `setup` (not
/// timed). Stops at the first error `op` returns.
pub fn median_time_with_setup<S, E>(
    rounds: usize,
    mut setup: impl FnMut() -> Result<S, E>,
    mut op: impl FnMut(S) -> Result<(), E>,
) -> Result<Duration, E> {
    let mut times = Vec::with_capacity(rounds.max(1));
    for _ in 0..rounds.max(1) {
        let state = setup()?;
        let t = Instant::now();
        let result = op(state);
        times.push(t.elapsed());
        result?;
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}
