//! `ipam-bench http --adversarial`: does a hostile reader slow everyone else down?
//!
//! Central runs in this process as in `ipam-bench http` (2 worker threads, durable SQLite,
//! HTTPS). A container `10.16.0.0/12` holds many used addresses (1,000,000 in the full run),
//! so that scans of it are expensive. Each round measures the same load twice, once quiet and
//! once under attack:
//!
//! - **Measured load**: 64 clients allocating single addresses (`nextFreeAddress?claim=true`)
//!   in a fresh /16, and at the same time 8 clients sending small GETs (one range, one IPAM
//!   record). Allocation throughput and p50/p99, small-GET p50/p99.
//! - **Adversaries** (attack phase only): 8 read-only users, each on its own connection,
//!   sending the worst requests found so far in a loop: the 830-character and 290-character
//!   backtracking regular expressions on `address` over the /12 (`limit=10`), a regular
//!   expression that compiles and must scan every used address, a 100,000-record page of the
//!   /12, a filtered listing of every record and a regex over every range. Their answers
//!   (refusals, deadlines) are counted, not checked for speed.
//!
//! The ratios (attack / quiet, same round) are what the targets name: p99 of both <= 20 ms,
//! throughput >= 0.8x.
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ipam_benches::report::Report;
use ipam_central::Config;
use ipam_client::{Client, Trust};
use serde_json::json;

use crate::engine_suite::{median, Scratch};
use crate::http_suite::LocalCentral;
use crate::{Mode, Options};

const PASSWORD: &str = "bench-password";
const ADVERSARY_PW: &str = "adversary-pw-1";

struct Scale {
    rounds: usize,
    used: usize,
    allocs_each: usize,
    small_each: usize,
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The adversaries' requests, from the findings.
fn attacks() -> Vec<String> {
    let big = format!("^10[.]16[.]0[.]0$|{}", "(.*)".repeat(200));
    let nested = "(.{0,9}){0,9}".repeat(20);
    let scan = "(.*)(.*)(.*)(.*)9$";
    vec![
        format!(
            "/mmws/api/v2/ranges/10.16.0.0/12/ipamRecords?limit=10&filter={}",
            enc(&format!("address=~\"{big}\""))
        ),
        format!(
            "/mmws/api/v2/ranges/10.16.0.0/12/ipamRecords?limit=10&filter={}",
            enc(&format!("address=~\"{nested}\""))
        ),
        format!(
            "/mmws/api/v2/ranges/10.16.0.0/12/ipamRecords?limit=10&filter={}",
            enc(&format!("address=~\"{scan}\""))
        ),
        "/mmws/api/v2/ranges/10.16.0.0/12/ipamRecords?limit=10000".to_string(),
        format!("/mmws/api/v2/ipamRecords?filter={}", enc("Owner=nobody")),
        format!("/mmws/api/v2/ranges?filter={}", enc("name=~\".*(.*)x.*\"")),
    ]
}

pub fn run(opts: &Options) -> Result<Report> {
    let s = match opts.mode {
        Mode::Full => Scale {
            rounds: 3,
            used: 1_000_000,
            allocs_each: 300,
            small_each: 2_000,
        },
        Mode::Quick => Scale {
            rounds: 2,
            used: 300_000,
            allocs_each: 150,
            small_each: 1_000,
        },
        Mode::Smoke => Scale {
            rounds: 1,
            used: 2_000,
            allocs_each: 5,
            small_each: 20,
        },
    };
    let mut r = Report::new("http_adversarial");
    let dir = Scratch::new("adversarial")?;
    let mut cfg = Config::for_tests(&dir.0);
    cfg.admin_password = Some(PASSWORD.into());
    cfg.log = "error".into();
    cfg.max_bulk_items = 100_000;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(256)
        .thread_name("central")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()?;
    let central = LocalCentral::start(&server_rt, &cfg)?;
    let result = client_rt.block_on(load(&mut r, &s, central.addr, central.fingerprint.clone()));
    central.stop(&server_rt);
    result?;
    Ok(r)
}

async fn client(addr: SocketAddr, fp: &str, user: &str, pw: &str) -> Result<Client> {
    let mut c = Client::connect(addr, Trust::Fingerprint(fp.to_string())).await?;
    c.login(user, pw).await?;
    Ok(c)
}

async fn ok(c: &mut Client, method: &str, path: &str, body: serde_json::Value) -> Result<()> {
    let r = c.request(method, path, Some(&body)).await?;
    ensure!(
        (200..300).contains(&r.status),
        "{method} {path}: HTTP {} {}",
        r.status,
        r.text()
    );
    Ok(())
}

/// The data and the adversaries' accounts.
async fn setup(admin: &mut Client, s: &Scale) -> Result<()> {
    ok(
        admin,
        "POST",
        "/mmws/api/v2/ranges",
        json!({"range": {"name": "10.16.0.0/12"}}),
    )
    .await?;
    let mut left = s.used;
    while left > 0 {
        let n = left.min(100_000);
        ok(
            admin,
            "POST",
            "/mmws/api/v2/addressAllocations",
            json!({"pool": ["10.16.0.0/12"], "count": n}),
        )
        .await?;
        left -= n;
    }
    ok(
        admin,
        "POST",
        "/mmws/api/v2/roles",
        json!({"role": {"name": "readers", "permissions": ["Read"]}}),
    )
    .await?;
    for i in 0..8 {
        let name = format!("adversary{i}");
        ok(
            admin,
            "POST",
            "/mmws/api/v2/users",
            json!({"user": {"name": name, "password": ADVERSARY_PW}}),
        )
        .await?;
        ok(
            admin,
            "PUT",
            &format!("/mmws/api/v2/users/{name}/roles/readers"),
            json!({}),
        )
        .await?;
    }
    Ok(())
}

/// One phase's figures.
struct Phase {
    alloc_per_s: f64,
    alloc_lat: Vec<Duration>,
    small_lat: Vec<Duration>,
}

fn pct_ms(lat: &mut [Duration], p: usize) -> f64 {
    lat.sort_unstable();
    lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1e3
}

/// 64 allocating clients in a fresh /16 and 8 small-GET clients, all at once.
async fn measured_load(
    admin: &mut Client,
    allocators: &mut Vec<Client>,
    small: &mut Vec<Client>,
    s: &Scale,
    cidr: &str,
) -> Result<Phase> {
    let resp = admin
        .request(
            "POST",
            "/mmws/api/v2/ranges",
            Some(&json!({"range": {"name": cidr}})),
        )
        .await?;
    ensure!(resp.status == 201, "creating {cidr}: {}", resp.text());
    let rref = resp.json()?["result"]["ref"]
        .as_str()
        .context("ref")?
        .to_string();
    let small_paths = Arc::new([
        format!("/mmws/api/v2/{rref}"),
        "/mmws/api/v2/ipamRecords/10.16.0.77".to_string(),
    ]);
    let t = Instant::now();
    let allocs: Vec<_> = std::mem::take(allocators)
        .into_iter()
        .map(|mut c| {
            let p = format!("/mmws/api/v2/{rref}/nextFreeAddress?claim=true");
            let each = s.allocs_each;
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(each);
                let mut got = Vec::with_capacity(each);
                for _ in 0..each {
                    let t0 = Instant::now();
                    let r = c.request("GET", &p, None).await?;
                    lat.push(t0.elapsed());
                    if r.status != 200 {
                        bail!("allocation: HTTP {} {}", r.status, r.text());
                    }
                    got.push(
                        r.json()?["result"]["address"]
                            .as_str()
                            .context("address")?
                            .to_string(),
                    );
                }
                Ok::<_, anyhow::Error>((lat, got, c))
            })
        })
        .collect();
    let smalls: Vec<_> = std::mem::take(small)
        .into_iter()
        .enumerate()
        .map(|(ci, mut c)| {
            let paths = small_paths.clone();
            let each = s.small_each;
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(each);
                for i in 0..each {
                    let p = &paths[(ci + i) % paths.len()];
                    let t0 = Instant::now();
                    let r = c.request("GET", p, None).await?;
                    lat.push(t0.elapsed());
                    if r.status != 200 {
                        bail!("GET {p}: HTTP {} {}", r.status, r.text());
                    }
                }
                Ok::<_, anyhow::Error>((lat, c))
            })
        })
        .collect();
    let mut alloc_lat = Vec::new();
    let mut addrs = Vec::new();
    for a in allocs {
        let (l, g, c) = a.await??;
        alloc_lat.extend(l);
        addrs.extend(g);
        allocators.push(c);
    }
    let alloc_elapsed = t.elapsed();
    let mut small_lat = Vec::new();
    for h in smalls {
        let (l, c) = h.await??;
        small_lat.extend(l);
        small.push(c);
    }
    let unique: HashSet<&String> = addrs.iter().collect();
    ensure!(
        unique.len() == addrs.len(),
        "DUPLICATES: {} distinct of {}",
        unique.len(),
        addrs.len()
    );
    Ok(Phase {
        alloc_per_s: addrs.len() as f64 / alloc_elapsed.as_secs_f64(),
        alloc_lat,
        small_lat,
    })
}

async fn load(r: &mut Report, s: &Scale, addr: SocketAddr, fp: String) -> Result<()> {
    let mut admin = client(addr, &fp, "administrator", PASSWORD).await?;
    setup(&mut admin, s).await?;
    let mut allocators = Vec::new();
    for _ in 0..64 {
        allocators.push(client(addr, &fp, "administrator", PASSWORD).await?);
    }
    let mut small = Vec::new();
    for _ in 0..8 {
        small.push(client(addr, &fp, "administrator", PASSWORD).await?);
    }
    // The adversaries' own work (TLS, reading 100,000-record pages) would be on their
    // machines, not this one: they run on one thread of their own at the lowest CPU
    // priority, so that what is measured is what they cost the server.
    let adversary_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("adversary")
        .on_thread_start(|| {
            let me = rustix::thread::gettid();
            let _ = rustix::process::setpriority_process(Some(me), 19);
        })
        .enable_all()
        .build()?;
    let mut adversaries = Vec::new();
    for i in 0..8 {
        let name = format!("adversary{i}");
        let (addr, fp) = (addr, fp.clone());
        adversaries.push(
            adversary_rt
                .spawn(async move { client(addr, &fp, &name, ADVERSARY_PW).await })
                .await??,
        );
    }
    // IPAM_BENCH_ATTACKS=0,3 runs only those attacks (to see what each costs).
    let mut chosen = attacks();
    if let Ok(list) = std::env::var("IPAM_BENCH_ATTACKS") {
        let keep: Vec<usize> = list
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        chosen = chosen
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, a)| a)
            .collect();
        ensure!(
            !chosen.is_empty(),
            "IPAM_BENCH_ATTACKS={list} names no attack (0 to 5)"
        );
    }
    let attacks = Arc::new(chosen);
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut figures: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..s.rounds {
        // Quiet.
        let cidr = format!("10.{}.0.0/16", 100 + 2 * round);
        let mut q = measured_load(&mut admin, &mut allocators, &mut small, s, &cidr).await?;
        // Under attack: the adversaries start first and run until the load is done.
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = std::mem::take(&mut adversaries)
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let (stop, attacks, answers) = (stop.clone(), attacks.clone(), answers.clone());
                adversary_rt.spawn(async move {
                    let mut k = i;
                    while !stop.load(Ordering::Relaxed) {
                        let which = k % attacks.len();
                        let p = &attacks[which];
                        k += 1;
                        let key = match c.request("GET", p, None).await {
                            Ok(resp) => {
                                // Only refusals are parsed (a 100,000-record page is not).
                                let code = (resp.status != 200)
                                    .then(|| resp.json().ok())
                                    .flatten()
                                    .and_then(|v| v["error"]["code"].as_u64())
                                    .map_or(String::new(), |c| format!(" code {c}"));
                                format!("attack {which} HTTP {}{code}", resp.status)
                            }
                            Err(e) => format!("attack {which} failed: {e}"),
                        };
                        *answers.lock().expect("answers").entry(key).or_default() += 1;
                    }
                    c
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cidr = format!("10.{}.0.0/16", 101 + 2 * round);
        let mut a = measured_load(&mut admin, &mut allocators, &mut small, s, &cidr).await?;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            adversaries.push(t.await?);
        }
        for (name, v) in [
            ("quiet_alloc_per_s", q.alloc_per_s),
            ("attack_alloc_per_s", a.alloc_per_s),
            ("quiet_alloc_p50_ms", pct_ms(&mut q.alloc_lat, 50)),
            ("quiet_alloc_p99_ms", pct_ms(&mut q.alloc_lat, 99)),
            ("attack_alloc_p50_ms", pct_ms(&mut a.alloc_lat, 50)),
            ("attack_alloc_p99_ms", pct_ms(&mut a.alloc_lat, 99)),
            ("quiet_small_get_p50_ms", pct_ms(&mut q.small_lat, 50)),
            ("quiet_small_get_p99_ms", pct_ms(&mut q.small_lat, 99)),
            ("attack_small_get_p50_ms", pct_ms(&mut a.small_lat, 50)),
            ("attack_small_get_p99_ms", pct_ms(&mut a.small_lat, 99)),
            ("attack_alloc_ratio_vs_quiet", a.alloc_per_s / q.alloc_per_s),
        ] {
            figures.entry(name).or_default().push(v);
        }
    }
    for (name, mut v) in figures {
        let unit = if name.ends_with("_ms") {
            "ms"
        } else if name.ends_with("ratio_vs_quiet") {
            "ratio"
        } else {
            "ops/s"
        };
        r.add(&format!("http_adversarial_{name}"), median(&mut v), unit);
    }
    r.add("http_adversarial_used_addresses", s.used as f64, "count");
    for (k, n) in answers.lock().expect("answers").iter() {
        println!("adversary answers: {k}: {n}");
    }
    adversary_rt.shutdown_background();
    Ok(())
}
