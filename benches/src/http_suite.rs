//! `ipam-bench http`: Central over HTTPS under load.
//!
//! Central runs in this process on its own tokio runtime (2 worker threads), on a durable
//! SQLite database (`synchronous=FULL`) and a self-signed certificate; the load generator
//! runs on another runtime in the same process, so both share this machine's cores, as the
//! issue's targets assume. Each client is one persistent HTTPS connection with a session.
//!
//! - **Allocation**: 64 clients each take single addresses from one range with
//!   `nextFreeAddress?claim=true` (next free and claim, atomically). Checked afterwards: no
//!   address returned twice, no errors, and the range's used count equals the answers.
//! - **Reads**: 64 clients `GET ipamRecords/{addr}` of allocated addresses.
//! - **Baseline** (same process, same connections): `GET /health`, which does no engine work
//!   and no authentication: the cost of HTTPS and the server alone.
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ipam_benches::report::Report;
use ipam_central::{App, Config};
use ipam_client::{Client, Trust};
use serde_json::json;

use crate::engine_suite::{median, Scratch};
use crate::{Mode, Options};

struct Scale {
    rounds: usize,
    clients: usize,
    allocs_each: usize,
    reads_each: usize,
}

const PASSWORD: &str = "bench-password";

pub fn run(opts: &Options) -> Result<Report> {
    let s = match opts.mode {
        Mode::Full => Scale {
            rounds: 3,
            clients: 64,
            allocs_each: 1_000,
            reads_each: 2_000,
        },
        Mode::Quick => Scale {
            rounds: 3,
            clients: 64,
            allocs_each: 250,
            reads_each: 500,
        },
        Mode::Smoke => Scale {
            rounds: 1,
            clients: 64,
            allocs_each: 10,
            reads_each: 20,
        },
    };
    let mut r = Report::new("http");
    let dir = Scratch::new("http")?;
    let mut cfg = Config::for_tests(&dir.0);
    cfg.admin_password = Some(PASSWORD.into());
    cfg.log = "error".into();
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

/// Central in this process, serving HTTPS on a loopback port of `rt`.
pub(crate) struct LocalCentral {
    /// The application.
    pub app: Arc<App>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its certificate's fingerprint, for clients to pin.
    pub fingerprint: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl LocalCentral {
    /// Opens Central on `cfg` and serves it (its agent links started) on `rt`.
    pub(crate) fn start(rt: &tokio::runtime::Runtime, cfg: &Config) -> Result<LocalCentral> {
        let (app, _) = App::open(cfg).context("opening Central")?;
        let tls = ipam_central::tls::load_or_create(&cfg.data_dir, None)?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let a = app.clone();
        rt.block_on(async move { a.start_services() })?;
        let server = rt.spawn(ipam_central::serve(
            app.router(),
            listener,
            Some(tls.config.clone()),
            ipam_central::Limits::from_config(cfg),
            async {
                let _ = stop_rx.await;
            },
        ));
        Ok(LocalCentral {
            app,
            addr,
            fingerprint: tls.fingerprint,
            stop,
            server,
        })
    }

    /// Stops serving and shuts the engine down.
    pub(crate) fn stop(self, rt: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        let _ = rt.block_on(self.server);
        self.app.shutdown();
    }
}

async fn connect_all(addr: SocketAddr, fp: &str, n: usize) -> Result<Vec<Client>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Client::connect(addr, Trust::Fingerprint(fp.to_string())).await?;
        c.login("administrator", PASSWORD).await?;
        out.push(c);
    }
    Ok(out)
}

/// Runs `each` requests per client concurrently; answers (elapsed, per-request latencies,
/// the bodies' `result.address` when present) and fails on any non-2xx.
async fn drive(
    clients: Vec<Client>,
    each: usize,
    path: impl Fn(usize, usize) -> String + Send + Sync + 'static,
) -> Result<(Duration, Vec<Duration>, Vec<String>, Vec<Client>)> {
    let path = Arc::new(path);
    let t = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(ci, mut c)| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(each);
                let mut addrs = Vec::new();
                for i in 0..each {
                    let p = path(ci, i);
                    let t0 = Instant::now();
                    let resp = c.request("GET", &p, None).await?;
                    lat.push(t0.elapsed());
                    if resp.status != 200 {
                        bail!("GET {p}: HTTP {} {}", resp.status, resp.text());
                    }
                    if let Some(a) = resp.json()?["result"]["address"].as_str() {
                        addrs.push(a.to_string());
                    }
                }
                Ok::<_, anyhow::Error>((lat, addrs, c))
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut addrs = Vec::new();
    let mut back = Vec::new();
    for t in tasks {
        let (l, a, c) = t.await??;
        lat.extend(l);
        addrs.extend(a);
        back.push(c);
    }
    Ok((t.elapsed(), lat, addrs, back))
}

fn p99_ms(lat: &mut [Duration]) -> f64 {
    lat.sort_unstable();
    lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3
}

async fn load(r: &mut Report, s: &Scale, addr: SocketAddr, fp: String) -> Result<()> {
    let mut admin = Client::connect(addr, Trust::Fingerprint(fp.clone())).await?;
    admin.login("administrator", PASSWORD).await?;
    let mut clients = connect_all(addr, &fp, s.clients).await?;
    let (mut alloc_rates, mut alloc_p99, mut read_rates, mut read_p99, mut base_rates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut all_addrs: Vec<String> = Vec::new();
    for round in 0..s.rounds {
        // A fresh /16 per round, so every round allocates from the same state.
        let cidr = format!("10.{}.0.0/16", 100 + round);
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

        // Baseline: the server with no engine work.
        let (d, _, _, c) = drive(clients, s.reads_each, |_, _| "/health".to_string()).await?;
        clients = c;
        base_rates.push((s.clients * s.reads_each) as f64 / d.as_secs_f64());

        let p = format!("/mmws/api/v2/{rref}/nextFreeAddress?claim=true");
        let (d, mut lat, addrs, c) = drive(clients, s.allocs_each, move |_, _| p.clone()).await?;
        clients = c;
        let n = s.clients * s.allocs_each;
        ensure!(
            addrs.len() == n,
            "{} answers for {n} allocations",
            addrs.len()
        );
        let unique: HashSet<&String> = addrs.iter().collect();
        ensure!(
            unique.len() == n,
            "DUPLICATES: {} distinct addresses in {n} answers",
            unique.len()
        );
        let st = admin
            .request("GET", &format!("/mmws/api/v2/{rref}/statistics"), None)
            .await?;
        let used: usize = st.json()?["result"]["used"]
            .as_str()
            .context("used")?
            .parse()?;
        ensure!(
            used == n,
            "the range shows {used} used for {n} acknowledged claims"
        );
        alloc_rates.push(n as f64 / d.as_secs_f64());
        alloc_p99.push(p99_ms(&mut lat));

        let targets = Arc::new(addrs.clone());
        let (d, mut lat, _, c) = drive(clients, s.reads_each, move |ci, i| {
            format!(
                "/mmws/api/v2/ipamRecords/{}",
                targets[(ci * 7919 + i * 31) % targets.len()]
            )
        })
        .await?;
        clients = c;
        read_rates.push((s.clients * s.reads_each) as f64 / d.as_secs_f64());
        read_p99.push(p99_ms(&mut lat));
        all_addrs.extend(addrs);
    }
    let c = s.clients;
    let alloc = median(&mut alloc_rates);
    let reads = median(&mut read_rates);
    let base = median(&mut base_rates);
    r.add(&format!("http_alloc_{c}_clients_per_s"), alloc, "ops/s");
    r.add(
        &format!("http_alloc_{c}_clients_p99_ms"),
        median(&mut alloc_p99),
        "ms",
    );
    r.add("http_alloc_duplicates", 0.0, "count");
    r.add(
        &format!("http_get_record_{c}_clients_per_s"),
        reads,
        "ops/s",
    );
    r.add(
        &format!("http_get_record_{c}_clients_p99_ms"),
        median(&mut read_p99),
        "ms",
    );
    r.add(&format!("http_health_{c}_clients_per_s"), base, "ops/s");
    r.add("http_alloc_ratio_vs_http_health", alloc / base, "ratio");
    r.add(
        "http_get_record_ratio_vs_http_health",
        reads / base,
        "ratio",
    );
    r.add("http_allocations_checked", all_addrs.len() as f64, "count");
    Ok(())
}
