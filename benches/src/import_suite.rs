//! `ipam-bench import`: `ipamctl import` of a CSV of IPAM records into Central over HTTPS.
//!
//! Central runs in this process (its own 2-thread runtime, SQLite with `synchronous=FULL`);
//! the real `ipamctl` binary (built next to this one: `cargo build --release -p ipamctl`)
//! imports a generated CSV (address, state, one custom property) in batches through
//! `ipamRecordBatches`. Checked afterwards: the range's used count equals the rows.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ipam_benches::report::Report;
use ipam_central::{App, Config};
use ipam_client::{Client, Trust};
use serde_json::json;

use crate::engine_suite::{median, Scratch};
use crate::{Mode, Options};

const PASSWORD: &str = "bench-password";

fn ipamctl() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.with_file_name("ipamctl");
    ensure!(
        p.exists(),
        "{} not found: build it first with `cargo build --release -p ipamctl`",
        p.display()
    );
    Ok(p)
}

pub fn run(opts: &Options) -> Result<Report> {
    let (rows, rounds) = match opts.mode {
        Mode::Full => (1_000_000u32, 3),
        Mode::Quick => (1_000_000, 1),
        Mode::Smoke => (20_000, 1),
    };
    let bin = ipamctl()?;
    let mut r = Report::new("import");
    let mut rates = Vec::new();
    let mut secs = Vec::new();
    for _ in 0..rounds {
        let dir = Scratch::new("import")?;
        let csv = dir.0.join("records.csv");
        {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(std::fs::File::create(&csv)?);
            writeln!(w, "address,state,Owner")?;
            for i in 0..rows {
                let a = std::net::Ipv4Addr::from(0x0a00_0000u32 + i);
                writeln!(w, "{a},Assigned,team-{}", i % 97)?;
            }
        }
        let mut cfg = Config::for_tests(&dir.0);
        cfg.admin_password = Some(PASSWORD.into());
        let (app, _) = App::open(&cfg).context("opening Central")?;
        let tls = ipam_central::tls::load_or_create(&dir.0, None)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(ipam_central::serve(
            app.router(),
            listener,
            Some(tls.config.clone()),
            ipam_central::Limits::from_config(&cfg),
            async {
                let _ = rx.await;
            },
        ));
        let fp = tls.fingerprint.clone();
        rt.block_on(async {
            let mut c = Client::connect(addr, Trust::Fingerprint(fp.clone())).await?;
            c.basic("administrator", PASSWORD);
            for (path, body) in [
                (
                    "/mmws/api/v2/ranges",
                    json!({"range": {"name": "10.0.0.0/12"}}),
                ),
                (
                    "/mmws/api/v2/ipamRecords/propertyDefinitions",
                    json!({"propertyDefinition": {"name": "Owner"}}),
                ),
            ] {
                let resp = c.request("POST", path, Some(&body)).await?;
                ensure!(resp.status == 201, "{path}: {}", resp.text());
            }
            Ok::<_, anyhow::Error>(())
        })?;
        let t = Instant::now();
        let out = std::process::Command::new(&bin)
            .args(["--url", &format!("https://{addr}"), "--fingerprint", &fp])
            .args([
                "--user",
                "administrator",
                "import",
                "--quiet",
                "--batch",
                "10000",
            ])
            .arg(&csv)
            .env("IPAM_PASSWORD", PASSWORD)
            .env("IPAMCTL_CONFIG_DIR", dir.0.join("cfg"))
            .output()?;
        let el = t.elapsed();
        if !out.status.success() {
            bail!(
                "ipamctl import failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let used: u64 = rt.block_on(async {
            let mut c = Client::connect(addr, Trust::Fingerprint(fp)).await?;
            c.basic("administrator", PASSWORD);
            let s = c
                .request("GET", "/mmws/api/v2/ranges/10.0.0.0/12/statistics", None)
                .await?;
            let v = s.json()?;
            Ok::<_, anyhow::Error>(v["result"]["used"].as_str().unwrap_or("0").parse()?)
        })?;
        ensure!(
            used == u64::from(rows),
            "{used} records used after importing {rows}"
        );
        let _ = tx.send(());
        let _ = rt.block_on(server);
        app.shutdown();
        rates.push(f64::from(rows) / el.as_secs_f64());
        secs.push(el.as_secs_f64());
    }
    r.add(
        &format!("import_{rows}_records_seconds"),
        median(&mut secs),
        "s",
    );
    r.add("import_records_per_s", median(&mut rates), "ops/s");
    Ok(r)
}
