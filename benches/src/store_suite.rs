//! `ipam-bench store`: the engine on the PostgreSQL store, and side by side, single-address
//! allocation the way SQL-only IPAM tools do it, on the same PostgreSQL in the same run.
//!
//! - **Bulk**: durable allocation through the engine on `ipam-store-postgres`, transactions of
//!   1,000 addresses (`AllocateAddresses`, mode Assign), from 1 and from 4 submitters.
//! - **Single addresses**: 1 and 16 concurrent clients each take single addresses from one
//!   /16. Our side: one engine `Transaction` per address (`AllocateAddresses` count 1, mode
//!   Claim) on the PostgreSQL store, so concurrent submitters share group commits. The SQL-only
//!   side: one SQL transaction per address on its own connection (see [`GAP_QUERY`]).
//!
//! Every measurement runs in a fresh schema, created here and dropped (`CASCADE`) afterwards,
//! also on error. `IPAM_PG_URL` names the server (a libpq string or URI; default
//! `host=127.0.0.1 user=postgres dbname=test`); `IPAM_SKIP_POSTGRES=1` skips the suite.
//! Every wait is bounded: connections and statements have time limits, each engine submit
//! waits at most [`SUBMIT_TIMEOUT`], and a watchdog ends a run that overruns its budget
//! (after terminating its own sessions and dropping its schemas).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ipam_benches::report::Report;
use ipam_engine::model::RecordState;
use ipam_engine::{
    record_row_addr, AllocMode, AllocRequest, Command, Engine, EngineConfig, Id, NewRange, Outcome,
    PasswordCost, Transaction, TxnResult,
};
use ipam_store_postgres::PostgresStore;
use postgres::{Client, NoTls};

use crate::engine_suite::median;
use crate::{Mode, Options};

struct Scale {
    rounds: usize,
    /// Addresses per bulk measurement (per round and submitter count).
    bulk_addresses: usize,
    /// Single-address allocations per measurement, shared out among the clients.
    single_total: usize,
    /// The same, in the /16 filled to 60% first (the SQL-only side is much slower there).
    single_total_60: usize,
    /// The watchdog's budget for the whole suite.
    budget: Duration,
}

/// Concurrent clients of the single-address comparison.
const CLIENTS: [usize; 2] = [1, 16];
/// The /16 both sides of the comparison allocate from: 10.0.0.0/16.
const NET: u32 = 0x0a00_0000;
/// Longest wait for one engine transaction's durable answer.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limits of every SQL session this suite opens (statements, locks, idle transactions).
const SESSION_LIMITS: &str = "SET statement_timeout = '60s'; SET lock_timeout = '60s'; \
     SET idle_in_transaction_session_timeout = '60s'";
/// A failed SQL-only transaction is retried at most this many times.
const MAX_RETRIES: usize = 100;

pub(crate) fn url() -> String {
    std::env::var("IPAM_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

/// `application_name` of every session this process opens (the watchdog ends them by it).
fn app_name() -> String {
    format!("ipam_bench_store_{}", std::process::id())
}

/// `url` with a connect timeout and this process's application name, unless it sets them.
pub(crate) fn bounded_url(url: &str) -> String {
    let mut extra = Vec::new();
    if !url.contains("connect_timeout") {
        extra.push(("connect_timeout", "10".to_string()));
    }
    if !url.contains("application_name") {
        extra.push(("application_name", app_name()));
    }
    let mut out = url.to_string();
    let uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
    for (k, v) in extra {
        if uri {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{k}={v}"));
        } else {
            out.push_str(&format!(" {k}={v}"));
        }
    }
    out
}

fn connect(url: &str) -> Result<Client, postgres::Error> {
    let mut c = Client::connect(url, NoTls)?;
    c.batch_execute(SESSION_LIMITS)?;
    Ok(c)
}

/// Schemas this run has created and not dropped yet (the watchdog drops them on overrun).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn drop_schema(url: &str, name: &str) -> Result<(), postgres::Error> {
    let mut c = connect(url)?;
    c.batch_execute(&format!(
        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
    ))
}

/// One measurement's schema: created fresh, dropped with `CASCADE` on drop (also on error).
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn create(url: &str) -> Result<Schema> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ipam_bench_store_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        LIVE.lock().expect("schema list").push(name.clone());
        let s = Schema {
            url: url.to_string(),
            name,
        };
        s.client()?;
        Ok(s)
    }

    /// A new session whose `search_path` is this schema (created when missing).
    fn client(&self) -> Result<Client> {
        let mut c =
            connect(&self.url).with_context(|| format!("connecting to PostgreSQL at {}", url()))?;
        c.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{0}\"; SET search_path TO \"{0}\"",
            self.name
        ))
        .with_context(|| format!("creating schema {}", self.name))?;
        Ok(c)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if std::env::var_os("IPAM_BENCH_KEEP").is_some() {
            eprintln!("kept schema {}", self.name);
        } else if let Err(e) = drop_schema(&self.url, &self.name) {
            eprintln!("warning: could not drop schema {}: {e}", self.name);
        }
        LIVE.lock()
            .expect("schema list")
            .retain(|n| n != &self.name);
    }
}

/// Ends the process when the suite overruns `budget`: terminates this process's own
/// PostgreSQL sessions, drops the schemas still alive and exits with status 2. Dropping the
/// guard (the suite finished) stops the watchdog.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn start(url: String, budget: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv_timeout(budget) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            eprintln!("error: the store suite overran its budget of {budget:?}; stopping it");
            if let Ok(mut c) = connect(&url) {
                let _ = c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    &[&app_name()],
                );
            }
            let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
            for s in live {
                let _ = drop_schema(&url, &s);
            }
            std::process::exit(2);
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// Runs the suite; `None` when `IPAM_SKIP_POSTGRES` is set (nothing measured).
pub fn run(opts: &Options) -> Result<Option<Report>> {
    if std::env::var_os("IPAM_SKIP_POSTGRES").is_some() {
        println!("IPAM_SKIP_POSTGRES is set: skipping the store suite (no metrics)");
        return Ok(None);
    }
    let s = match opts.mode {
        Mode::Full => Scale {
            rounds: 3,
            bulk_addresses: 1_000_000,
            single_total: 2_000,
            single_total_60: 320,
            budget: Duration::from_secs(15 * 60),
        },
        Mode::Quick => Scale {
            rounds: 3,
            bulk_addresses: 200_000,
            single_total: 800,
            single_total_60: 160,
            budget: Duration::from_secs(8 * 60),
        },
        Mode::Smoke => Scale {
            rounds: 1,
            bulk_addresses: 10_000,
            single_total: 160,
            single_total_60: 32,
            budget: Duration::from_secs(3 * 60),
        },
    };
    let url = bounded_url(&url());
    if let Err(e) = connect(&url) {
        let e = anyhow::Error::from(e);
        bail!(
            "cannot reach PostgreSQL at {:?}: {e:#}\nstart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n(IPAM_PG_URL names another server; IPAM_SKIP_POSTGRES=1 skips this suite)",
            self::url()
        );
    }
    let _watchdog = Watchdog::start(url.clone(), s.budget);
    let mut r = Report::new("store");
    bulk(&mut r, &s, &url)?;
    single(&mut r, &s, &url)?;
    Ok(Some(r))
}

fn config() -> EngineConfig {
    EngineConfig {
        snapshot_dir: None,
        snapshot_every: None,
        admin_password: Some("bench".into()),
        password_cost: PasswordCost::InsecureFast,
        ..EngineConfig::default()
    }
}

fn open(schema: &Schema) -> Result<(Engine, Id)> {
    let st = PostgresStore::open(&schema.url, &schema.name)
        .with_context(|| format!("opening the PostgreSQL store in schema {}", schema.name))?;
    let (e, _) = Engine::open(Box::new(st), config())?;
    let admin = e.authenticate("administrator", "bench")?;
    Ok((e, admin))
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// [`Engine::submit`], but waiting at most [`SUBMIT_TIMEOUT`] for the answer.
fn submit(e: &Engine, t: Transaction) -> Result<TxnResult> {
    let (tx, rx) = mpsc::sync_channel(1);
    e.submit_with(t, move |r| {
        let _ = tx.send(r);
    });
    match rx.recv_timeout(SUBMIT_TIMEOUT) {
        Ok(r) => Ok(r?),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("no answer from the engine within {SUBMIT_TIMEOUT:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the engine stopped"),
    }
}

fn create_range(e: &Engine, user: Id, from: u32, to: u32, subnet: bool) -> Result<Id> {
    let t = Transaction::one(
        user,
        Command::CreateRange(NewRange {
            from: Some(v4(from)),
            to: Some(v4(to)),
            subnet,
            ..Default::default()
        }),
    );
    match submit(e, t)?.outcomes.remove(0) {
        Outcome::Created(r) => Ok(r.trim_start_matches("ranges/").parse()?),
        o => bail!("unexpected outcome {o:?}"),
    }
}

fn alloc(pool: Vec<Id>, count: u32, mode: AllocMode) -> Command {
    Command::AllocateAddresses(AllocRequest {
        pool,
        count,
        start: None,
        random: false,
        exclude: vec![],
        mode,
        properties: Default::default(),
    })
}

/// Joins the scoped workers, turning a panic into an error.
fn join_all<T>(hs: Vec<std::thread::ScopedJoinHandle<'_, Result<T>>>) -> Result<Vec<T>> {
    hs.into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
        })
        .collect()
}

/// Durable bulk allocation through the engine on the PostgreSQL store: transactions of
/// 1,000 addresses from 1 and from 4 submitters, each round in a fresh schema.
fn bulk(r: &mut Report, s: &Scale, url: &str) -> Result<()> {
    const TXN: u32 = 1_000;
    let txns = s.bulk_addresses / TXN as usize;
    let n = txns * TXN as usize;
    for submitters in [1usize, 4] {
        let mut rates = Vec::new();
        for _ in 0..s.rounds {
            let schema = Schema::create(url)?;
            let (e, admin) = open(&schema)?;
            let range = create_range(&e, admin, NET, NET + 0x00ff_ffff, false)?;
            let e = Arc::new(e);
            let t = Instant::now();
            let counts = std::thread::scope(|sc| {
                let hs = (0..submitters)
                    .map(|w| {
                        let e = Arc::clone(&e);
                        sc.spawn(move || -> Result<usize> {
                            let mut got = 0;
                            for _ in (w..txns).step_by(submitters) {
                                let res = submit(
                                    &e,
                                    Transaction::one(
                                        admin,
                                        alloc(vec![range], TXN, AllocMode::Assign),
                                    ),
                                )?;
                                if let Outcome::Addresses(a) = &res.outcomes[0] {
                                    got += a.len();
                                }
                            }
                            Ok(got)
                        })
                    })
                    .collect();
                join_all(hs)
            })?;
            let el = t.elapsed();
            let total: usize = counts.iter().sum();
            ensure!(total == n, "allocated {total}, wanted {n}");
            let used = e.read(admin, |v| v.range(range))?.utilization.used;
            ensure!(used == n as u64, "the range shows {used} used, wanted {n}");
            let rows: i64 = schema
                .client()?
                .query_one(
                    "SELECT count(*) FROM ipam_records WHERE state = $1",
                    &[&i16::from(RecordState::Assigned.code())],
                )?
                .get(0);
            ensure!(
                rows == n as i64,
                "the store holds {rows} assigned records, wanted {n}"
            );
            drop(e);
            rates.push(n as f64 / el.as_secs_f64());
        }
        let name = if submitters == 1 {
            "pg_bulk_alloc_1_submitter_per_s".to_string()
        } else {
            format!("pg_bulk_alloc_{submitters}_submitters_per_s")
        };
        r.add(&name, median(&mut rates), "ops/s");
    }
    Ok(())
}

/// The SQL-only side's first-free query: the classic gap query on PostgreSQL's `inet` type,
/// run inside the transaction that holds the prefix row's lock. It does what SQL-only IPAM
/// tools do, in one statement: NIPAP's PL/pgSQL `find_free_prefix` walks the candidates in
/// address order and probes each against the table; NetBox (`get_first_available_ip`) and
/// phpIPAM read the prefix's used addresses and take the first gap in application code.
/// The candidates here are the prefix's first host address, and the successor of the lowest
/// used address whose successor is not used (a walk of the primary key index in address
/// order, `NOT EXISTS` probing the next address, stopping at the first gap); the lower one
/// that is free and below the broadcast address wins. Like those tools' searches, its cost
/// grows with the used addresses below the first gap. (The `generate_series` form, every
/// address of the /16 with `NOT EXISTS ... ORDER BY g LIMIT 1`, is planned as an anti-join
/// over all 65,534 candidates and a sort: about 50 ms per allocation here, so this query is
/// the stronger baseline.)
const GAP_QUERY: &str = "
WITH p AS (
    SELECT prefix, host(prefix)::inet AS net, host(broadcast(prefix))::inet AS bc
    FROM sqlonly_prefix WHERE id = $1
)
SELECT c.a FROM p, LATERAL (
    SELECT p.net + 1 AS a
    UNION ALL
    (SELECT x.address + 1 FROM sqlonly_address x
      WHERE x.address >= p.net AND x.address <= p.bc
        AND NOT EXISTS (SELECT 1 FROM sqlonly_address y WHERE y.address = x.address + 1)
      ORDER BY x.address LIMIT 1)
) c
WHERE c.a < p.bc AND NOT EXISTS (SELECT 1 FROM sqlonly_address z WHERE z.address = c.a)
ORDER BY c.a LIMIT 1";

/// The SQL-only side's tables, in the measurement's own schema.
const SQL_ONLY_SCHEMA: &str = "
CREATE TABLE sqlonly_prefix (id BIGINT PRIMARY KEY, prefix CIDR NOT NULL);
CREATE TABLE sqlonly_address (
    address INET PRIMARY KEY,
    prefix_id BIGINT NOT NULL REFERENCES sqlonly_prefix (id)
);
INSERT INTO sqlonly_prefix (id, prefix) VALUES (1, '10.0.0.0/16');
";

/// One SQL-only allocation: lock the prefix row, find the first free address, insert it,
/// commit (`READ COMMITTED`, PostgreSQL's default and these tools'). A failed attempt rolls
/// back and is retried; answers the address and the number of failed attempts.
fn sql_only_alloc(
    c: &mut Client,
    lock: &postgres::Statement,
    gap: &postgres::Statement,
    insert: &postgres::Statement,
) -> Result<(IpAddr, usize)> {
    let prefix: i64 = 1;
    let mut errors = 0;
    loop {
        let attempt = (|| -> Result<Option<IpAddr>, postgres::Error> {
            let mut tx = c.transaction()?;
            tx.query_one(lock, &[&prefix])?;
            let Some(row) = tx.query_opt(gap, &[&prefix])? else {
                return Ok(None);
            };
            let a: IpAddr = row.get(0);
            tx.execute(insert, &[&a, &prefix])?;
            tx.commit()?;
            Ok(Some(a))
        })();
        match attempt {
            Ok(Some(a)) => return Ok((a, errors)),
            Ok(None) => bail!("the SQL-only prefix is full"),
            Err(e) => {
                errors += 1;
                ensure!(
                    errors <= MAX_RETRIES,
                    "SQL-only allocation failed {errors} times, last: {e}"
                );
            }
        }
    }
}

/// The SQL-only side with `clients` connections; answers (allocations/s, failed attempts).
pub(crate) fn sql_only(
    url: &str,
    clients: usize,
    total: usize,
    prefill: u32,
) -> Result<(f64, usize)> {
    let schema = Schema::create(url)?;
    schema.client()?.batch_execute(SQL_ONLY_SCHEMA)?;
    // The same occupancy as the engine side: .1 to .prefill used.
    schema.client()?.execute(
        "INSERT INTO sqlonly_address (address, prefix_id) SELECT '10.0.0.0'::inet + g, 1 FROM generate_series(1, $1::bigint) g",
        &[&i64::from(prefill)],
    )?;
    schema.client()?.batch_execute("ANALYZE sqlonly_address")?;
    let each = total / clients;
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut c = schema.client()?;
        let lock = c.prepare("SELECT id FROM sqlonly_prefix WHERE id = $1 FOR UPDATE")?;
        let gap = c.prepare(GAP_QUERY)?;
        let insert =
            c.prepare("INSERT INTO sqlonly_address (address, prefix_id) VALUES ($1, $2)")?;
        conns.push((c, lock, gap, insert));
    }
    let t = Instant::now();
    let out = std::thread::scope(|sc| {
        let hs = conns
            .into_iter()
            .map(|(mut c, lock, gap, insert)| {
                sc.spawn(move || -> Result<(Vec<IpAddr>, usize)> {
                    let mut got = Vec::with_capacity(each);
                    let mut errors = 0;
                    for _ in 0..each {
                        let (a, e) = sql_only_alloc(&mut c, &lock, &gap, &insert)?;
                        got.push(a);
                        errors += e;
                    }
                    Ok((got, errors))
                })
            })
            .collect();
        join_all(hs)
    })?;
    let el = t.elapsed();
    let n = clients * each;
    let errors = out.iter().map(|o| o.1).sum();
    let seen: HashSet<IpAddr> = out.into_iter().flat_map(|o| o.0).collect();
    ensure!(
        seen.len() == n,
        "SQL-only: {} distinct addresses for {n} allocations",
        seen.len()
    );
    let stored: HashSet<IpAddr> = schema
        .client()?
        .query(
            "SELECT address FROM sqlonly_address WHERE address > '10.0.0.0'::inet + $1::bigint",
            &[&i64::from(prefill)],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    ensure!(
        stored == seen,
        "SQL-only: the table holds {} addresses beyond the pre-filled ones, {} were handed out",
        stored.len(),
        seen.len()
    );
    Ok((n as f64 / el.as_secs_f64(), errors))
}

/// Our side: one engine transaction per address (count 1, mode Claim) from `clients`
/// concurrent submitters on the PostgreSQL store. Fails on any duplicate, and unless the
/// engine's view and the store's rows both agree with the addresses handed out.
pub(crate) fn engine_single(url: &str, clients: usize, total: usize, prefill: u32) -> Result<f64> {
    let schema = Schema::create(url)?;
    let (e, admin) = open(&schema)?;
    let range = create_range(&e, admin, NET, NET + 0xffff, true)?;
    if prefill > 0 {
        // The same occupancy as the SQL-only side: .1 to .prefill used.
        submit(
            &e,
            Transaction::one(admin, alloc(vec![range], prefill, AllocMode::Assign)),
        )?;
    }
    let e = Arc::new(e);
    let each = total / clients;
    let t = Instant::now();
    let out = std::thread::scope(|sc| {
        let hs = (0..clients)
            .map(|_| {
                let e = Arc::clone(&e);
                sc.spawn(move || -> Result<Vec<IpAddr>> {
                    let mut got = Vec::with_capacity(each);
                    for _ in 0..each {
                        let mut res = submit(
                            &e,
                            Transaction::one(admin, alloc(vec![range], 1, AllocMode::Claim)),
                        )?;
                        match res.outcomes.remove(0) {
                            Outcome::Addresses(a) => got.extend(a),
                            o => bail!("unexpected outcome {o:?}"),
                        }
                    }
                    Ok(got)
                })
            })
            .collect();
        join_all(hs)
    })?;
    let el = t.elapsed();
    let n = clients * each;
    let mut seen = HashSet::with_capacity(n);
    let mut handed = 0;
    let mut duplicates = 0;
    for a in out.into_iter().flatten() {
        handed += 1;
        if !seen.insert(a) {
            duplicates += 1;
        }
    }
    ensure!(
        duplicates == 0,
        "DUPLICATES: the engine handed out {duplicates} addresses twice"
    );
    ensure!(handed == n, "{handed} addresses for {n} transactions");
    let used = e.read(admin, |v| v.range(range))?.utilization.used;
    let want = n as u64 + u64::from(prefill);
    ensure!(used == want, "the range shows {used} used, wanted {want}");
    let stored: HashSet<Vec<u8>> = schema
        .client()?
        .query(
            "SELECT addr FROM ipam_records WHERE state = $1",
            &[&i16::from(RecordState::Claimed.code())],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let want: HashSet<Vec<u8>> = seen.iter().map(|a| record_row_addr(*a)).collect();
    ensure!(
        stored == want,
        "the store holds {} claimed records, {n} were handed out (or other ones)",
        stored.len()
    );
    drop(e);
    Ok(n as f64 / el.as_secs_f64())
}

/// Single-address allocation, SQL-only against the engine, with 1 and 16 clients, in an
/// empty /16 and in one filled to 60% (both sides pre-filled alike, .1 upwards); each round
/// runs both sides in turn, each in a fresh schema.
fn single(r: &mut Report, s: &Scale, url: &str) -> Result<()> {
    let mut sql_errors = 0;
    let mut checked = 0;
    for (prefill, tag, total) in [
        (0u32, "", s.single_total),
        (39_321u32, "_at_60pct", s.single_total_60),
    ] {
        let mut sql = [Vec::new(), Vec::new()];
        let mut ours = [Vec::new(), Vec::new()];
        for _ in 0..s.rounds {
            for (i, clients) in CLIENTS.into_iter().enumerate() {
                let (rate, errors) = sql_only(url, clients, total, prefill)?;
                sql[i].push(rate);
                sql_errors += errors;
                ours[i].push(engine_single(url, clients, total, prefill)?);
                checked += total / clients * clients;
            }
        }
        let mut sql_rates = [0.0; 2];
        for (i, clients) in CLIENTS.into_iter().enumerate() {
            let what = if clients == 1 { "client" } else { "clients" };
            sql_rates[i] = median(&mut sql[i]);
            r.add(
                &format!("sql_only_alloc_{clients}_{what}{tag}_per_s"),
                sql_rates[i],
                "ops/s",
            );
        }
        for (i, clients) in CLIENTS.into_iter().enumerate() {
            let what = if clients == 1 { "client" } else { "clients" };
            let rate = median(&mut ours[i]);
            r.add(
                &format!("engine_pg_alloc_{clients}_{what}{tag}_per_s"),
                rate,
                "ops/s",
            );
            r.ratio(
                &format!("engine_pg_alloc_{clients}_{what}{tag}"),
                "sql_only",
                rate / sql_rates[i],
            );
        }
    }
    r.add("sql_only_errors", sql_errors as f64, "count");
    r.add("engine_pg_duplicates", 0.0, "count");
    r.add("engine_pg_allocations_checked", checked as f64, "count");
    Ok(())
}
