//! `ipam-bench report --tier small|medium|large|provider [--out DIR]`: every measurement at
//! the scale of a sizing tier, written as a Markdown report with SVG charts. Each chart
//! shows the baseline measured in the same run: SQL-only allocation on the same PostgreSQL,
//! prefix-trie for lookups, a full reload from the database for start-up.
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ipam_benches::report::machine;
use ipam_benches::timing::median_ns_per_op;
use ipam_benches::{data, report::Report};
use ipam_index::Space;
use prefix_trie::PrefixMap;

use crate::engine_suite::{build_cold, median, open_child, Scratch};
use crate::store_suite;
use crate::svg::{line_chart, Series};

/// The seed's sizing tiers.
#[derive(Clone, Copy, Debug)]
pub enum Tier {
    Small,
    Medium,
    Large,
    Provider,
}

impl Tier {
    pub fn parse(s: &str) -> Result<Tier> {
        Ok(match s {
            "small" => Tier::Small,
            "medium" => Tier::Medium,
            "large" => Tier::Large,
            "provider" => Tier::Provider,
            _ => bail!("tier {s:?}: small, medium, large or provider"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Medium => "medium",
            Tier::Large => "large",
            Tier::Provider => "provider",
        }
    }
}

struct Plan {
    /// What the tier means, in the seed's words.
    scope: &'static str,
    clients: Vec<usize>,
    /// Allocations per point of the client-count chart.
    allocs: usize,
    /// Fill levels of the /16 for the latency chart (percent), and allocations per point.
    fills: Vec<u32>,
    fill_allocs: usize,
    /// Ranges for the lookup chart.
    lookup_ranges: Vec<usize>,
    /// (subnets, addresses per subnet) for the start-up and memory charts.
    data_sizes: Vec<(usize, u32)>,
}

fn plan(t: Tier) -> Plan {
    match t {
        Tier::Small => Plan {
            scope: "fewer than 100 zones, 5,000 addresses, 1,000 subnets",
            clients: vec![1, 4, 16],
            allocs: 320,
            fills: vec![0, 20, 40, 60],
            fill_allocs: 40,
            lookup_ranges: vec![100, 300, 1_000],
            data_sizes: vec![(250, 5), (500, 5), (1_000, 5)],
        },
        Tier::Medium => Plan {
            scope: "fewer than 1,000 zones, 50,000 addresses, 10,000 subnets",
            clients: vec![1, 4, 16, 64],
            allocs: 640,
            fills: vec![0, 20, 40, 60, 75],
            fill_allocs: 64,
            lookup_ranges: vec![1_000, 3_000, 10_000],
            data_sizes: vec![(2_500, 5), (5_000, 5), (10_000, 5)],
        },
        Tier::Large => Plan {
            scope: "tens of thousands of zones, millions of addresses, hundreds of thousands of subnets",
            clients: vec![1, 4, 16, 64],
            allocs: 1_280,
            fills: vec![0, 20, 40, 60, 80],
            fill_allocs: 96,
            lookup_ranges: vec![10_000, 100_000, 300_000],
            data_sizes: vec![(50_000, 10), (100_000, 10), (300_000, 10)],
        },
        Tier::Provider => Plan {
            scope: "ten times large: millions of subnets, tens of millions of addresses",
            clients: vec![1, 4, 16, 64],
            allocs: 2_560,
            fills: vec![0, 20, 40, 60, 80],
            fill_allocs: 128,
            lookup_ranges: vec![100_000, 1_000_000, 3_000_000],
            data_sizes: vec![(500_000, 10), (1_000_000, 10), (3_000_000, 10)],
        },
    }
}

fn chart(
    out: &std::path::Path,
    md: &mut String,
    file: &str,
    svg: String,
    caption: &str,
) -> Result<()> {
    std::fs::write(out.join(file), svg).with_context(|| format!("writing {file}"))?;
    let _ = writeln!(md, "![{caption}]({file})\n\n{caption}\n");
    Ok(())
}

fn table(md: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(md, "| {} |", head.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(head.len()));
    for r in rows {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    md.push('\n');
}

/// Runs the tier and writes `DIR/report.md` and its charts; answers a few headline
/// metrics for the JSON report.
pub fn run(tier: Tier, out: Option<PathBuf>) -> Result<Report> {
    let p = plan(tier);
    let out = out.unwrap_or_else(|| PathBuf::from(format!("target/report-{}", tier.name())));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut r = Report::new("report");
    let mut md = String::new();
    let cmd: Vec<String> = std::env::args().collect();
    let _ = writeln!(md, "# ipam benchmark report: {} tier\n", tier.name());
    let _ = writeln!(md, "Tier scope (the seed's sizing): {}.\n", p.scope);
    let _ = writeln!(md, "Command: `{}`\n", cmd.join(" "));
    let _ = writeln!(md, "Machine:\n");
    for (k, v) in machine() {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(md, "- ipam {}; {rustc}", env!("CARGO_PKG_VERSION"));

    // 1 and 2: allocation on PostgreSQL against SQL-only allocation.
    if std::env::var_os("IPAM_SKIP_POSTGRES").is_some() {
        let _ = writeln!(
            md,
            "\nIPAM_SKIP_POSTGRES is set: the PostgreSQL charts are left out.\n"
        );
    } else {
        let url = store_suite::bounded_url(&store_suite::url());
        if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
            if let Ok(row) = c.query_one("SELECT version()", &[]) {
                let _ = writeln!(md, "- {}", row.get::<_, String>(0));
            }
        }
        md.push('\n');
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for &c in &p.clients {
            let total = p.allocs / c * c;
            theirs.push(store_suite::sql_only(&url, c, total, 0)?.0);
            ours.push(store_suite::engine_single(&url, c, total, 0)?);
        }
        let xs: Vec<f64> = p.clients.iter().map(|c| *c as f64).collect();
        let _ = writeln!(md, "## Allocation throughput against client count\n");
        chart(
            &out,
            &mut md,
            "alloc-vs-clients.svg",
            line_chart(
                "Durable single-address allocation on PostgreSQL",
                "concurrent clients",
                "allocations/s",
                &xs,
                &[
                    Series {
                        name: "ipam engine".into(),
                        ys: ours.clone(),
                    },
                    Series {
                        name: "SQL-only (lock, gap query, insert)".into(),
                        ys: theirs.clone(),
                    },
                ],
                true,
            ),
            "Each allocation is one transaction, acknowledged once durable; an empty /16.",
        )?;
        table(
            &mut md,
            &["clients", "ipam engine /s", "SQL-only /s", "ratio"],
            &p.clients
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    vec![
                        c.to_string(),
                        format!("{:.0}", ours[i]),
                        format!("{:.0}", theirs[i]),
                        format!("{:.1}x", ours[i] / theirs[i]),
                    ]
                })
                .collect::<Vec<_>>(),
        );
        if let (Some(o), Some(t)) = (ours.last(), theirs.last()) {
            r.ratio("report_alloc_max_clients", "sql_only", o / t);
        }
        let (mut lo, mut lt) = (Vec::new(), Vec::new());
        for &f in &p.fills {
            let prefill = (65_534u64 * u64::from(f) / 100) as u32;
            lt.push(1e3 / store_suite::sql_only(&url, 1, p.fill_allocs, prefill)?.0);
            lo.push(1e3 / store_suite::engine_single(&url, 1, p.fill_allocs, prefill)?);
        }
        let xs: Vec<f64> = p.fills.iter().map(|f| f64::from(*f)).collect();
        let _ = writeln!(md, "## Allocation latency against fill level\n");
        chart(
            &out,
            &mut md,
            "latency-vs-fill.svg",
            line_chart(
                "Single-address allocation latency, one client, a /16 filled from .1",
                "fill level of the /16 (%)",
                "ms per allocation",
                &xs,
                &[
                    Series { name: "ipam engine".into(), ys: lo.clone() },
                    Series { name: "SQL-only".into(), ys: lt.clone() },
                ],
                true,
            ),
            "Ours stays flat (the index answers whatever the fill); the SQL-only search grows with the used addresses below the first gap.",
        )?;
        table(
            &mut md,
            &["fill %", "ipam engine ms", "SQL-only ms"],
            &p.fills
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    vec![
                        f.to_string(),
                        format!("{:.2}", lo[i]),
                        format!("{:.2}", lt[i]),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }

    // 3: lookups against the number of ranges.
    let mut lo = Vec::new();
    let mut lt = Vec::new();
    let addrs = data::v4_lookups(1_000_000, 2);
    for &n in &p.lookup_ranges {
        let prefixes = data::bgp_v4(n, 1);
        let bounds: Vec<(u32, u32)> = prefixes.iter().map(|&x| data::v4_bounds(x)).collect();
        let (space, _) = Space::from_ranges(&bounds)?;
        space.prepare_lookups();
        let mut pm = PrefixMap::<(u32, u8), u32>::new();
        for (i, &(net, len)) in prefixes.iter().enumerate() {
            pm.insert((net, len), i as u32);
        }
        let ours = median_ns_per_op(3, addrs.len(), || {
            let mut acc = 0u64;
            for &a in &addrs {
                acc = acc.wrapping_add(space.deepest(a).map_or(0, |id| u64::from(id.get())));
            }
            black_box(acc);
        });
        let trie = median_ns_per_op(3, addrs.len(), || {
            let mut acc = 0u64;
            for &a in &addrs {
                acc = acc.wrapping_add(pm.get_lpm(&(a, 32)).map_or(0, |(_, &v)| u64::from(v)));
            }
            black_box(acc);
        });
        lo.push(1e3 / ours);
        lt.push(1e3 / trie);
    }
    let xs: Vec<f64> = p.lookup_ranges.iter().map(|n| *n as f64).collect();
    let _ = writeln!(md, "## Lookup rate against number of ranges\n");
    chart(
        &out,
        &mut md,
        "lookups-vs-ranges.svg",
        line_chart(
            "Longest-prefix match, BGP-like IPv4 prefixes",
            "ranges",
            "million lookups/s",
            &xs,
            &[
                Series {
                    name: "ipam index".into(),
                    ys: lo.clone(),
                },
                Series {
                    name: "prefix-trie".into(),
                    ys: lt.clone(),
                },
            ],
            false,
        ),
        "1M random addresses per measurement, median of 3.",
    )?;
    table(
        &mut md,
        &["ranges", "ipam M/s", "prefix-trie M/s", "ratio"],
        &p.lookup_ranges
            .iter()
            .enumerate()
            .map(|(i, n)| {
                vec![
                    n.to_string(),
                    format!("{:.1}", lo[i]),
                    format!("{:.1}", lt[i]),
                    format!("{:.1}x", lo[i] / lt[i]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if let (Some(o), Some(t)) = (lo.last(), lt.last()) {
        r.ratio("report_lpm_largest", "prefix_trie", o / t);
    }

    // 4 and 5: start-up time and memory against data size.
    let (mut snap, mut full, mut rss, mut rss_full) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(ranges, per) in &p.data_sizes {
        let d = Scratch::new("report-cold")?;
        build_cold(&d.0, ranges, per)?;
        let (mut a, mut b, mut m, mut mf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let (ms, bytes) = open_child(&d.0, true)?;
            a.push(ms);
            m.push(bytes / 1e6);
            let (ms, bytes) = open_child(&d.0, false)?;
            b.push(ms);
            mf.push(bytes / 1e6);
        }
        snap.push(median(&mut a));
        full.push(median(&mut b));
        rss.push(median(&mut m));
        rss_full.push(median(&mut mf));
    }
    let xs: Vec<f64> = p
        .data_sizes
        .iter()
        .map(|(n, per)| (*n as u64 * u64::from(*per)) as f64)
        .collect();
    let _ = writeln!(md, "## Start-up time against data size\n");
    chart(
        &out,
        &mut md,
        "startup-vs-size.svg",
        line_chart(
            "Cold start until the first read answers",
            "assigned addresses (in /28 subnets of one container)",
            "ms",
            &xs,
            &[
                Series {
                    name: "from the snapshot".into(),
                    ys: snap.clone(),
                },
                Series {
                    name: "full reload from SQLite".into(),
                    ys: full.clone(),
                },
            ],
            true,
        ),
        "A fresh process each time (median of 3).",
    )?;
    let _ = writeln!(md, "## Memory against data size\n");
    chart(
        &out,
        &mut md,
        "memory-vs-size.svg",
        line_chart(
            "Resident memory after a cold start from the snapshot",
            "assigned addresses",
            "MB",
            &xs,
            &[Series {
                name: "RSS".into(),
                ys: rss.clone(),
            }],
            false,
        ),
        "VmRSS of the start-up probe once the first read answered.",
    )?;
    table(
        &mut md,
        &[
            "subnets",
            "addresses",
            "snapshot start ms",
            "full reload ms",
            "RSS MB (snapshot)",
            "RSS MB (full reload)",
        ],
        &p.data_sizes
            .iter()
            .enumerate()
            .map(|(i, (n, per))| {
                vec![
                    n.to_string(),
                    (*n as u64 * u64::from(*per)).to_string(),
                    format!("{:.0}", snap[i]),
                    format!("{:.0}", full[i]),
                    format!("{:.0}", rss[i]),
                    format!("{:.0}", rss_full[i]),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if let (Some(s), Some(f)) = (snap.last(), full.last()) {
        r.ratio("report_start_largest_snapshot", "full_reload", f / s);
    }
    let path = out.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(r)
}
