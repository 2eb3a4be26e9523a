//! Prometheus metrics at `/metrics`, in the text exposition format.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ipam_engine::EngineStats;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub(crate) struct Metrics {
    /// By status class: 1xx..5xx at index 1..5.
    requests: [AtomicU64; 6],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    pub allocations: AtomicU64,
    pub releases: AtomicU64,
    pub failed_logins: AtomicU64,
    pub lockouts: AtomicU64,
    pub login_waits: AtomicU64,
    pub sessions: AtomicU64,
    /// Reads stopped by their budget: too much work, deadline, cancelled.
    reads_stopped: [AtomicU64; 3],
}

impl Metrics {
    /// Counts a read its budget stopped.
    pub fn read_stopped(&self, why: &ipam_engine::BudgetExceeded) {
        let i = match why {
            ipam_engine::BudgetExceeded::TooMuchWork { .. } => 0,
            ipam_engine::BudgetExceeded::Cancelled => 2,
            _ => 1,
        };
        self.reads_stopped[i].fetch_add(1, Relaxed);
    }

    pub fn observe(&self, status: u16, micros: u64) {
        self.requests[usize::from(status / 100).min(5)].fetch_add(1, Relaxed);
        let secs = micros as f64 / 1e6;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_micros.fetch_add(micros, Relaxed);
    }

    /// The exposition; `full: false` only the HTTP request counters and latencies (for
    /// callers without credentials, unless `metrics_public`).
    pub fn render(&self, e: &EngineStats, full: bool) -> String {
        let mut o = String::with_capacity(4096);
        o.push_str("# HELP ipam_http_requests_total HTTP requests answered, by status class.\n");
        o.push_str("# TYPE ipam_http_requests_total counter\n");
        for (i, c) in self.requests.iter().enumerate().skip(1) {
            let _ = writeln!(
                o,
                "ipam_http_requests_total{{status=\"{i}xx\"}} {}",
                c.load(Relaxed)
            );
        }
        o.push_str("# HELP ipam_http_request_duration_seconds Time to answer an API request.\n");
        o.push_str("# TYPE ipam_http_request_duration_seconds histogram\n");
        let mut cum = 0;
        for (b, c) in BUCKETS.iter().zip(&self.latency_buckets) {
            cum += c.load(Relaxed);
            let _ = writeln!(
                o,
                "ipam_http_request_duration_seconds_bucket{{le=\"{b}\"}} {cum}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            o,
            "ipam_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "ipam_http_request_duration_seconds_sum {}",
            self.latency_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "ipam_http_request_duration_seconds_count {count}");
        if !full {
            return o;
        }
        let counters: [(&str, &str, u64); 10] = [
            (
                "ipam_addresses_allocated_total",
                "Addresses handed out by allocation calls.",
                self.allocations.load(Relaxed),
            ),
            (
                "ipam_addresses_released_total",
                "Addresses released by bulk release calls.",
                self.releases.load(Relaxed),
            ),
            (
                "ipam_failed_logins_total",
                "Logins refused for a wrong name or password.",
                self.failed_logins.load(Relaxed),
            ),
            (
                "ipam_account_lockouts_total",
                "Accounts locked after repeated failed logins (the lockout_after option).",
                self.lockouts.load(Relaxed),
            ),
            (
                "ipam_login_waits_total",
                "Login attempts refused because their address must wait after failures, or the account is locked.",
                self.login_waits.load(Relaxed),
            ),
            (
                "ipam_group_commits_total",
                "Group commits written to the database.",
                e.commits,
            ),
            (
                "ipam_group_commit_transactions_total",
                "Transactions answered by group commits (mean group size = this / commits).",
                e.transactions,
            ),
            (
                "ipam_changes_committed_total",
                "Changes written to the change log.",
                e.changes,
            ),
            (
                "ipam_store_commit_failures_total",
                "Group commits the database failed.",
                e.failed_commits,
            ),
            (
                "ipam_sessions_opened_total",
                "Sessions opened since start.",
                self.sessions.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        o.push_str(
            "# HELP ipam_reads_stopped_total Reads stopped by their work budget, by reason.\n",
        );
        o.push_str("# TYPE ipam_reads_stopped_total counter\n");
        for (reason, c) in ["too_much_work", "deadline", "cancelled"]
            .iter()
            .zip(&self.reads_stopped)
        {
            let _ = writeln!(
                o,
                "ipam_reads_stopped_total{{reason=\"{reason}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP ipam_store_commit_seconds_total Time spent in database commits.\n\
             # TYPE ipam_store_commit_seconds_total counter\n\
             ipam_store_commit_seconds_total {}",
            e.commit_micros as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "# HELP ipam_committed_sequence Sequence number of the last committed change.\n\
             # TYPE ipam_committed_sequence gauge\n\
             ipam_committed_sequence {}",
            e.committed_seq
        );
        o
    }
}
