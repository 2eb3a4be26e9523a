//! `ipam-bench engine`: durable allocation through the engine into SQLite, many concurrent
//! submitters, and cold start from a snapshot against a full reload from the database.
//!
//! Every figure is durable: SQLite runs with `synchronous=FULL` (the log is synced at each
//! group commit). Baselines run in the same process: the store's own commit of the same
//! changes (the floor the engine adds its work to), and the full reload from SQLite.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ipam_benches::report::Report;
use ipam_engine::model::{IpamRecord, RecordState};
use ipam_engine::{
    AllocMode, AllocRequest, Change, Command, CommitBatch, Engine, EngineConfig, Id, NewRange,
    ObjKey, Object, Outcome, PasswordCost, Store, Transaction,
};
use ipam_store_sqlite::{Durability, SqliteStore};

use crate::{Mode, Options};

struct Scale {
    rounds: usize,
    bulk_addresses: usize,
    submitters: usize,
    single_each: usize,
    cold_ranges: usize,
    cold_per_range: u32,
}

/// A scratch directory for one measurement, removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Result<Scratch> {
        let base = std::env::var_os("IPAM_BENCH_DIR")
            .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from);
        let p = base.join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("IPAM_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path, snapshots: bool) -> EngineConfig {
    EngineConfig {
        snapshot_dir: snapshots.then(|| dir.join("snapshots")),
        snapshot_every: None,
        admin_password: Some("bench".into()),
        password_cost: PasswordCost::InsecureFast,
        ..EngineConfig::default()
    }
}

fn store(dir: &Path) -> Result<Box<dyn Store>> {
    let d = if std::env::var("IPAM_BENCH_SYNC").as_deref() == Ok("normal") {
        Durability::Normal
    } else {
        Durability::Full
    };
    Ok(Box::new(SqliteStore::open(dir.join("ipam.db"), d)?))
}

fn open(dir: &Path, snapshots: bool) -> Result<(Engine, Id)> {
    let (e, _) = Engine::open(store(dir)?, config(dir, snapshots))?;
    let admin = e.authenticate("administrator", "bench")?;
    Ok((e, admin))
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn create_range(e: &Engine, user: Id, from: u32, to: u32) -> Result<Id> {
    let t = Transaction::one(
        user,
        Command::CreateRange(NewRange {
            from: Some(v4(from)),
            to: Some(v4(to)),
            ..Default::default()
        }),
    );
    match e.submit(t)?.outcomes.remove(0) {
        Outcome::Created(r) => Ok(r.trim_start_matches("ranges/").parse()?),
        o => bail!("unexpected outcome {o:?}"),
    }
}

fn alloc(pool: Vec<Id>, count: u32) -> Command {
    Command::AllocateAddresses(AllocRequest {
        pool,
        count,
        start: None,
        random: false,
        exclude: vec![],
        mode: AllocMode::Assign,
        properties: Default::default(),
    })
}

pub fn run(opts: &Options) -> Result<Report> {
    let mut r = Report::new("engine");
    let s = match opts.mode {
        Mode::Full => Scale {
            rounds: 3,
            bulk_addresses: 2_000_000,
            submitters: 64,
            single_each: 2_000,
            cold_ranges: 1_000_000,
            cold_per_range: 10,
        },
        Mode::Quick => Scale {
            rounds: 3,
            bulk_addresses: 500_000,
            submitters: 64,
            single_each: 500,
            cold_ranges: 100_000,
            cold_per_range: 10,
        },
        Mode::Smoke => Scale {
            rounds: 1,
            bulk_addresses: 20_000,
            submitters: 64,
            single_each: 20,
            cold_ranges: 2_000,
            cold_per_range: 10,
        },
    };
    bulk(&mut r, &s)?;
    single(&mut r, &s)?;
    cold_start(&mut r, &s)?;
    Ok(r)
}

/// Durable bulk allocation: transactions of 1,000 addresses, from 1 and from 4 submitters;
/// baseline: the store committing the same changes without the engine.
fn bulk(r: &mut Report, s: &Scale) -> Result<()> {
    const TXN: u32 = 1_000;
    let txns = s.bulk_addresses / TXN as usize;
    for submitters in [1usize, 4] {
        let mut rates = Vec::new();
        for _ in 0..s.rounds {
            let d = Scratch::new("bulk")?;
            let (e, admin) = open(&d.0, false)?;
            let range = create_range(&e, admin, 0x0a00_0000, 0x0aff_ffff)?;
            let e = Arc::new(e);
            let t = Instant::now();
            std::thread::scope(|sc| -> Result<()> {
                let hs: Vec<_> = (0..submitters)
                    .map(|w| {
                        let e = Arc::clone(&e);
                        sc.spawn(move || -> Result<usize> {
                            let mut n = 0;
                            for _ in (w..txns).step_by(submitters) {
                                let res =
                                    e.submit(Transaction::one(admin, alloc(vec![range], TXN)))?;
                                if let Outcome::Addresses(a) = &res.outcomes[0] {
                                    n += a.len();
                                }
                            }
                            Ok(n)
                        })
                    })
                    .collect();
                let mut total = 0;
                for h in hs {
                    total += h
                        .join()
                        .map_err(|_| anyhow::anyhow!("submitter panicked"))??;
                }
                ensure!(
                    total == txns * TXN as usize,
                    "allocated {total}, wanted {}",
                    txns * TXN as usize
                );
                Ok(())
            })?;
            let el = t.elapsed();
            let used = e.read(admin, |v| v.range(range))?.utilization.used;
            ensure!(
                used == (txns * TXN as usize) as u64,
                "the range shows {used} used"
            );
            rates.push((txns * TXN as usize) as f64 / el.as_secs_f64());
        }
        r.add(
            &format!("bulk_alloc_txn1000_{submitters}_submitters_addr_per_s"),
            median(&mut rates),
            "ops/s",
        );
    }
    // Baseline: the store alone commits the same change records (1,000 per commit).
    let mut rates = Vec::new();
    for _ in 0..s.rounds {
        let d = Scratch::new("floor")?;
        let mut st = store(&d.0)?;
        let user: Arc<str> = Arc::from("administrator");
        let comment: Arc<str> = Arc::from("");
        let mut seq = 0u64;
        let t = Instant::now();
        for b in 0..txns {
            let changes: Vec<Change> = (0..TXN)
                .map(|i| {
                    seq += 1;
                    let addr = v4(0x0a00_0001 + b as u32 * TXN + i);
                    Change {
                        seq,
                        time: 0,
                        user_id: 3,
                        user: user.clone(),
                        comment: comment.clone(),
                        key: ObjKey::IpamRecord { space: 1, addr },
                        before: None,
                        after: Some(Object::IpamRecord(IpamRecord {
                            state: RecordState::Assigned,
                            ..IpamRecord::free(1, addr)
                        })),
                    }
                })
                .collect();
            st.commit(&CommitBatch {
                changes: &changes,
                next_id: 4,
                idempotency: &[],
                forget_idempotency_before: None,
            })?;
        }
        rates.push((txns * TXN as usize) as f64 / t.elapsed().as_secs_f64());
    }
    let floor = median(&mut rates);
    r.add("bulk_store_commit_floor_addr_per_s", floor, "ops/s");
    let ours = r
        .metrics()
        .iter()
        .find(|m| m.name == "bulk_alloc_txn1000_1_submitters_addr_per_s")
        .map_or(0.0, |m| m.value);
    r.ratio(
        "bulk_alloc_txn1000_1_submitters",
        "store_commit_floor",
        ours / floor,
    );
    Ok(())
}

/// Single-address transactions from many concurrent submitters, each waiting for its
/// durable acknowledgment.
fn single(r: &mut Report, s: &Scale) -> Result<()> {
    let mut rates = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..s.rounds {
        let d = Scratch::new("single")?;
        let (e, admin) = open(&d.0, false)?;
        let range = create_range(&e, admin, 0x0a00_0000, 0x0aff_ffff)?;
        let e = Arc::new(e);
        let t = Instant::now();
        let mut lat: Vec<Duration> = Vec::new();
        let mut seen = BTreeSet::new();
        std::thread::scope(|sc| -> Result<()> {
            let hs: Vec<_> = (0..s.submitters)
                .map(|_| {
                    let e = Arc::clone(&e);
                    sc.spawn(move || -> Result<(Vec<IpAddr>, Vec<Duration>)> {
                        let mut got = Vec::with_capacity(s.single_each);
                        let mut lat = Vec::with_capacity(s.single_each);
                        for _ in 0..s.single_each {
                            let t = Instant::now();
                            let mut res =
                                e.submit(Transaction::one(admin, alloc(vec![range], 1)))?;
                            lat.push(t.elapsed());
                            if let Outcome::Addresses(a) = res.outcomes.remove(0) {
                                got.extend(a);
                            }
                        }
                        Ok((got, lat))
                    })
                })
                .collect();
            for h in hs {
                let (got, l) = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("submitter panicked"))??;
                for a in got {
                    ensure!(seen.insert(a), "{a} was handed out twice");
                }
                lat.extend(l);
            }
            Ok(())
        })?;
        let el = t.elapsed();
        let n = s.submitters * s.single_each;
        ensure!(
            seen.len() == n,
            "{} addresses for {n} transactions",
            seen.len()
        );
        rates.push(n as f64 / el.as_secs_f64());
        lat.sort_unstable();
        p99s.push(lat[lat.len() * 99 / 100].as_secs_f64() * 1e3);
    }
    r.add(
        &format!("single_addr_txn_{}_submitters_per_s", s.submitters),
        median(&mut rates),
        "ops/s",
    );
    r.add(
        &format!("single_addr_txn_{}_submitters_p99_ms", s.submitters),
        median(&mut p99s),
        "ms",
    );
    Ok(())
}

/// Builds `cold_ranges` /28 subnets under one container with `cold_per_range` assigned
/// addresses each, then measures start-up in a fresh process: from a snapshot and from the
/// database alone.
fn cold_start(r: &mut Report, s: &Scale) -> Result<()> {
    let d = Scratch::new("cold")?;
    let t = Instant::now();
    let snap_ms = build_cold(&d.0, s.cold_ranges, s.cold_per_range)?;
    r.add("cold_snapshot_write_ms", snap_ms, "ms");
    cold_measure(r, s, &d, t)?;
    snapshot_stall(r, &d.0)
}

/// Single-address writes (8 submitters, each waiting for its durable answer) in a range of
/// their own, on the cold data: for a second without a snapshot, then while `snapshot_now`
/// writes one. Reports the writes' p99 and max latency in both, in the same run.
fn snapshot_stall(r: &mut Report, dir: &Path) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (e, admin) = open(dir, true)?;
    let pool = create_range(&e, admin, 0xac10_0000, 0xac10_ffff)?; // 172.16.0.0/16
    let e = Arc::new(e);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (e, stop) = (Arc::clone(&e), Arc::clone(&stop));
            std::thread::spawn(move || -> Result<Vec<(Duration, Duration)>> {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = t0.elapsed();
                    let a = Instant::now();
                    e.submit(Transaction::one(admin, alloc(vec![pool], 1)))?;
                    lat.push((start, a.elapsed()));
                }
                Ok(lat)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let snap_from = t0.elapsed();
    e.snapshot_now()?.context("no snapshot written")?;
    let snap_to = t0.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut quiet = Vec::new();
    let mut during = Vec::new();
    for w in writers {
        for (start, l) in w.join().map_err(|_| anyhow::anyhow!("writer panicked"))?? {
            if start + l < snap_from {
                quiet.push(l);
            } else if start <= snap_to {
                during.push(l);
            }
        }
    }
    ensure!(
        !quiet.is_empty() && !during.is_empty(),
        "no writes around the snapshot"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p99 = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v[(v.len() * 99 / 100).min(v.len() - 1)]
    };
    r.add("snapshot_stall_snapshot_ms", ms(snap_to - snap_from), "ms");
    r.add("snapshot_stall_writes_during", during.len() as f64, "count");
    r.add("snapshot_stall_write_p99_ms", ms(p99(&mut during)), "ms");
    r.add(
        "snapshot_stall_write_max_ms",
        ms(*during.iter().max().expect("not empty")),
        "ms",
    );
    r.add(
        "snapshot_stall_quiet_write_p99_ms",
        ms(p99(&mut quiet)),
        "ms",
    );
    r.add(
        "snapshot_stall_quiet_write_max_ms",
        ms(*quiet.iter().max().expect("not empty")),
        "ms",
    );
    Ok(())
}

/// Builds a database of `ranges` /28 subnets in one container with `per_range` assigned
/// addresses each, and writes a snapshot; answers the snapshot's write time in ms.
pub(crate) fn build_cold(dir: &Path, ranges: usize, per_range: u32) -> Result<f64> {
    let s = ColdScale {
        cold_ranges: ranges,
        cold_per_range: per_range,
    };
    {
        let (e, admin) = open(dir, true)?;
        let top = 0x0a00_0000u32;
        let container = create_range(&e, admin, top, top + (s.cold_ranges as u32 * 16) - 1)?;
        let mk = Transaction::one(
            admin,
            Command::UpdateRange {
                id: container,
                patch: ipam_engine::RangePatch {
                    is_container: Some(true),
                    ..Default::default()
                },
            },
        );
        e.submit(mk)?;
        let e = Arc::new(e);
        // Ranges and their addresses in transactions of 100 ranges (1,000 addresses), from
        // 4 submitters.
        const PER_TXN: usize = 100;
        let chunks = s.cold_ranges.div_ceil(PER_TXN);
        std::thread::scope(|sc| -> Result<()> {
            let hs: Vec<_> = (0..4usize)
                .map(|w| {
                    let e = Arc::clone(&e);
                    sc.spawn(move || -> Result<()> {
                        for c in (w..chunks).step_by(4) {
                            let lo = c * PER_TXN;
                            let hi = ((c + 1) * PER_TXN).min(s.cold_ranges);
                            let cmds = (lo..hi)
                                .map(|i| {
                                    let f = top + i as u32 * 16;
                                    Command::CreateRange(NewRange {
                                        from: Some(v4(f)),
                                        to: Some(v4(f + 15)),
                                        subnet: true,
                                        ..Default::default()
                                    })
                                })
                                .collect();
                            let res = e.submit(Transaction {
                                user: admin,
                                comment: String::new(),
                                idempotency_key: None,
                                commands: cmds,
                            })?;
                            let ids: Vec<Id> = res
                                .outcomes
                                .iter()
                                .filter_map(|o| match o {
                                    Outcome::Created(r) => {
                                        r.trim_start_matches("ranges/").parse().ok()
                                    }
                                    _ => None,
                                })
                                .collect();
                            let cmds = ids
                                .into_iter()
                                .map(|id| alloc(vec![id], s.cold_per_range))
                                .collect();
                            e.submit(Transaction {
                                user: admin,
                                comment: String::new(),
                                idempotency_key: None,
                                commands: cmds,
                            })?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.join()
                    .map_err(|_| anyhow::anyhow!("builder panicked"))??;
            }
            Ok(())
        })?;
        let used = e.read(admin, |v| v.range(container))?.utilization.used;
        ensure!(
            used == s.cold_ranges as u64 * u64::from(s.cold_per_range),
            "built {used} addresses"
        );
        let t_snap = Instant::now();
        e.snapshot_now()?.context("no snapshot written")?;
        Ok(t_snap.elapsed().as_secs_f64() * 1e3)
    }
}

struct ColdScale {
    cold_ranges: usize,
    cold_per_range: u32,
}

fn cold_measure(r: &mut Report, s: &Scale, d: &Scratch, t: Instant) -> Result<()> {
    r.add("cold_data_ranges", s.cold_ranges as f64 + 1.0, "count");
    r.add(
        "cold_data_assigned_addresses",
        s.cold_ranges as f64 * f64::from(s.cold_per_range),
        "count",
    );
    r.add("cold_build_s", t.elapsed().as_secs_f64(), "s");
    let snap_bytes: u64 = std::fs::read_dir(d.0.join("snapshots"))?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    r.add("cold_snapshot_bytes", snap_bytes as f64, "bytes");
    let mut snap = Vec::new();
    let mut full = Vec::new();
    for _ in 0..s.rounds {
        snap.push(open_child(&d.0, true)?);
        full.push(open_child(&d.0, false)?);
    }
    let ready_snap = median(&mut snap.iter().map(|x| x.0).collect::<Vec<_>>());
    let ready_full = median(&mut full.iter().map(|x| x.0).collect::<Vec<_>>());
    r.add("cold_start_from_snapshot_ms", ready_snap, "ms");
    r.add("cold_start_full_reload_sqlite_ms", ready_full, "ms");
    r.ratio(
        "cold_start_from_snapshot",
        "full_reload_sqlite",
        ready_full / ready_snap,
    );
    r.add(
        "cold_rss_after_snapshot_start_bytes",
        median(&mut snap.iter().map(|x| x.1).collect::<Vec<_>>()),
        "bytes",
    );
    r.add(
        "cold_rss_after_full_reload_bytes",
        median(&mut full.iter().map(|x| x.1).collect::<Vec<_>>()),
        "bytes",
    );
    Ok(())
}

/// Starts `ipam-bench __open DIR snapshot|database` and reads its ready time and RSS.
pub(crate) fn open_child(dir: &Path, snapshot: bool) -> Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("__open")
        .arg(dir)
        .arg(if snapshot { "snapshot" } else { "database" })
        .output()
        .context("starting the start-up probe")?;
    ensure!(
        out.status.success(),
        "start-up probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut it = text.split_whitespace();
    let ms: f64 = it.next().context("probe output")?.parse()?;
    let rss: f64 = it.next().context("probe output")?.parse()?;
    Ok((ms, rss))
}

/// The start-up probe: opens the engine, answers one read, prints `ready_ms rss_bytes`.
pub fn open_probe(dir: &Path, mode: &str) -> Result<()> {
    let t = Instant::now();
    let (e, rep) = Engine::open(store(dir)?, config(dir, mode == "snapshot"))?;
    let admin = e.authenticate("administrator", "bench")?;
    // Ready to serve: a read that touches the index answers.
    let spaces = e.read(admin, |v| Ok(v.spaces()))?;
    ensure!(!spaces.is_empty(), "no address space");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match (mode, &rep.source) {
        ("snapshot", ipam_engine::LoadSource::Snapshot { .. })
        | ("database", ipam_engine::LoadSource::Database) => {}
        (m, src) => bail!(
            "asked to start from {m}, started from {src:?}: {:?}",
            rep.rejected_snapshots
        ),
    }
    let rss = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb * 1024.0);
    println!("{ms} {rss}");
    Ok(())
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
