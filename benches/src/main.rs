//! `ipam-bench`: side-by-side comparison harness. One subcommand per suite.
//!
//! ```text
//! ipam-bench index|engine|store|http|import|agents [--quick|--smoke] [--json FILE]
//! ipam-bench http --adversarial [--quick|--smoke] [--json FILE]
//! ipam-bench report --tier small|medium|large|provider [--out DIR]
//! ```

mod adversarial_suite;
mod agents_suite;
mod engine_suite;
mod http_suite;
mod import_suite;
mod index_suite;
mod report_suite;
mod store_suite;
mod svg;

use anyhow::{bail, Context, Result};
use ipam_benches::report::Report;

const USAGE: &str = "usage: ipam-bench <suite> [--quick | --smoke] [--json FILE]

suites:
  index   the IP index against prefix-trie, roaring and a plain word scan
  engine  durable allocation through the engine into SQLite, 64 concurrent submitters,
          cold start from a snapshot against a full reload (IPAM_BENCH_DIR sets where the
          scratch databases go; default target/bench-data;
          IPAM_BENCH_KEEP=1 keeps them; IPAM_BENCH_SYNC=normal
          measures SQLite with synchronous=NORMAL instead of FULL)
  store   the engine on the PostgreSQL store: bulk allocation (1 and 4 submitters), and
          single addresses from 1 and 16 clients against SQL-only allocation (lock the
          prefix row, gap query on inet, insert, commit), checked for duplicates; each
          measurement in a fresh schema, dropped afterwards (IPAM_PG_URL names the server,
          default host=127.0.0.1 user=postgres dbname=test; IPAM_SKIP_POSTGRES=1 skips the
          suite and writes no report)
  report  --tier small|medium|large|provider [--out DIR]: every measurement at a sizing
          tier's scale, written as DIR/report.md with SVG charts (default
          target/report-TIER); needs PostgreSQL for the allocation charts
  import  `ipamctl import` of a CSV of 1,000,000 IPAM records into Central in this process
          (needs target/release/ipamctl: cargo build --release -p ipamctl)
  agents  DNS records pushed to a real BIND (started here on loopback) through the agent link
          (TLS, the agent and its BIND driver in this process) in batches of 1,000, and the
          full 100,000-record zone read back through it; baseline: the BIND driver called
          directly on the same named (needs named and rndc: apt-get install bind9 bind9-utils)
  http    Central over HTTPS in this process: 64 clients allocating single addresses
          (next free + claim) and reading records, checked for duplicates; baseline:
          GET /health on the same connections. With --adversarial: 64 allocating clients
          and 8 small-GET clients, quiet and then while 8 read-only users send the worst
          filters and full listings over a /12 of many used addresses; p50/p99 and
          throughput of both, and their ratio

options:
  --quick       full data sets, fewer rounds and lookups: finishes in under a minute
  --smoke       tiny data sets, one round: checks that the harness and its answer
                cross-checks work (CI runs this; its timings mean nothing)
  --adversarial (http) measure the service under hostile reads
  --json FILE   also write the metrics as JSON to FILE";

/// How much work a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full data sets, 7 rounds.
    Full,
    /// Full data sets, 3 rounds, fewer lookups.
    Quick,
    /// Tiny data sets, 1 round: a correctness smoke test of the harness.
    Smoke,
}

/// Options shared by every suite.
pub struct Options {
    /// How much work to do.
    pub mode: Mode,
    /// `http --adversarial`: the measured load under hostile reads.
    pub adversarial: bool,
}

fn main() -> Result<()> {
    let all: Vec<String> = std::env::args().collect();
    if all.get(1).map(String::as_str) == Some("__open") {
        // Internal: the start-up probe the engine suite runs in a fresh process.
        let dir = all.get(2).context("__open DIR MODE")?;
        let mode = all.get(3).context("__open DIR MODE")?;
        return engine_suite::open_probe(std::path::Path::new(dir), mode);
    }
    let mut args = all.into_iter().skip(1);
    let mut suite = None;
    let mut mode = Mode::Full;
    let mut json = None;
    let mut tier = None;
    let mut out = None;
    let mut adversarial = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tier" => {
                tier = Some(
                    args.next()
                        .context("--tier needs small, medium, large or provider")?,
                )
            }
            "--out" => {
                out = Some(std::path::PathBuf::from(
                    args.next().context("--out needs a directory")?,
                ))
            }
            "--quick" => mode = Mode::Quick,
            "--smoke" => mode = Mode::Smoke,
            "--adversarial" => adversarial = true,
            "--json" => json = Some(args.next().context("--json needs a file name")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            s if s.starts_with('-') => bail!("unknown option {s}\n\n{USAGE}"),
            s if suite.is_none() => suite = Some(s.to_string()),
            s => bail!("unexpected argument {s}\n\n{USAGE}"),
        }
    }
    let opts = Options { mode, adversarial };
    if adversarial && suite.as_deref() != Some("http") {
        bail!("--adversarial goes with the http suite\n\n{USAGE}");
    }
    let report: Report = match suite.as_deref() {
        Some("index") => index_suite::run(&opts)?,
        Some("engine") => engine_suite::run(&opts)?,
        Some("http") if opts.adversarial => adversarial_suite::run(&opts)?,
        Some("http") => http_suite::run(&opts)?,
        Some("import") => import_suite::run(&opts)?,
        Some("agents") => agents_suite::run(&opts)?,
        Some("report") => report_suite::run(
            report_suite::Tier::parse(tier.as_deref().unwrap_or("small"))?,
            out,
        )?,
        Some("store") => match store_suite::run(&opts)? {
            Some(r) => r,
            None => {
                if let Some(path) = json {
                    println!("no metrics: {path} not written");
                }
                return Ok(());
            }
        },
        Some(other) => bail!("unknown suite {other}\n\n{USAGE}"),
        None => bail!("no suite given\n\n{USAGE}"),
    };
    if let Some(path) = json {
        std::fs::write(&path, report.to_json())
            .with_context(|| format!("writing the report to {path}"))?;
        println!("wrote {path}");
    }
    Ok(())
}
