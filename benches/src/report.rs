//! The JSON report every suite writes: `{"suite", "machine", "metrics": [{name, value, unit}]}`.
//! A ratio against a baseline is its own metric, `<metric>_ratio_vs_<baseline>`; latencies end
//! in `_ns` or `_us`.

use std::fmt::Write as _;

/// One measured value.
#[derive(Clone, Debug)]
pub struct Metric {
    /// Metric name (`snake_case`).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Unit: `ns`, `us`, `ms`, `ops/s`, `bytes`, `ratio`, ...
    pub unit: String,
}

/// The metrics of one suite run.
#[derive(Clone, Debug)]
pub struct Report {
    suite: String,
    metrics: Vec<Metric>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The machine: CPU model, cores, memory, OS, architecture.
pub fn machine() -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("cpu", cpu),
        ("cores", cores.to_string()),
        ("mem_kib", mem_kib),
        ("os", std::env::consts::OS.to_string()),
        ("arch", std::env::consts::ARCH.to_string()),
    ]
}

impl Report {
    /// An empty report for `suite`.
    pub fn new(suite: &str) -> Self {
        Report {
            suite: suite.to_string(),
            metrics: Vec::new(),
        }
    }

    /// Records a metric and prints it as a line.
    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        println!("{name:<52} {value:>16.3} {unit}");
        self.metrics.push(Metric {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        });
    }

    /// Records `metric / baseline` as `<metric>_ratio_vs_<baseline_name>` (how many times better
    /// when larger is better: pass throughputs; for latencies pass `baseline / metric`).
    pub fn ratio(&mut self, metric: &str, baseline_name: &str, ratio: f64) {
        self.add(
            &format!("{metric}_ratio_vs_{baseline_name}"),
            ratio,
            "ratio",
        );
    }

    /// The metrics recorded so far.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"suite\": \"{}\", \"machine\": {{",
            escape(&self.suite)
        );
        for (i, (k, v)) in machine().iter().enumerate() {
            let _ = write!(
                s,
                "{}\"{}\": \"{}\"",
                if i > 0 { ", " } else { "" },
                k,
                escape(v)
            );
        }
        s.push_str("}, \"metrics\": [");
        for (i, m) in self.metrics.iter().enumerate() {
            let value = if m.value.is_finite() {
                format!("{}", m.value)
            } else {
                "null".into()
            };
            let _ = write!(
                s,
                "{}\n  {{\"name\": \"{}\", \"value\": {}, \"unit\": \"{}\"}}",
                if i > 0 { "," } else { "" },
                escape(&m.name),
                value,
                escape(&m.unit)
            );
        }
        s.push_str("\n]}\n");
        s
    }
}
