//! `ipam-central`: starts Central (see `ipam-central --help`).
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use ipam_central::{coldstandby, tls, App, Args, Cmd, Config, Limits};
use ipam_engine::LoadSource;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let command = args.command.take();
    let cfg = Config::from_args(args)?;
    match command {
        Some(Cmd::Backup { to }) => {
            let t0 = Instant::now();
            let s = coldstandby::backup(&cfg, &to)?;
            println!(
                "backup of {} written to {} in {} ms: changes up to {}; snapshot: {}",
                cfg.data_dir.display(),
                to.display(),
                t0.elapsed().as_millis(),
                s.last_seq,
                s.snapshot
                    .map_or_else(|| "none".to_string(), |p| p.display().to_string())
            );
            return Ok(());
        }
        Some(Cmd::Promote) => {
            let seq = coldstandby::promote(&cfg)?;
            println!(
                "{} is sound (changes up to {seq}) and promoted: start it with ipam-central --data-dir {}",
                cfg.data_dir.display(),
                cfg.data_dir.display()
            );
            return Ok(());
        }
        None => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cfg.log).context("invalid --log filter")?)
        .with_target(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(256)
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(cfg))
}

async fn run(mut cfg: Config) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // Every connection is a descriptor: take all the system allows, and fit the
    // connection caps to it.
    let mut limits = Limits::from_config(&cfg);
    match ipam_central::raise_descriptor_limit() {
        Ok(n) => {
            tracing::info!("descriptor limit (RLIMIT_NOFILE): {n}");
            limits = limits.within_descriptors(n);
        }
        Err(e) => tracing::warn!("could not raise the descriptor limit: {e}"),
    }
    // Bound first, so that the instance name carries the real port (`--listen ...:0`).
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if cfg.instance_name.is_none() {
        cfg.instance_name = Some(ipam_central::default_instance_name(addr));
    }
    let marker = cfg.data_dir.join(coldstandby::STANDBY_MARKER);
    if marker.exists() {
        let what = std::fs::read_to_string(&marker).unwrap_or_default();
        println!(
            "Starting on a cold standby copy ({}): it becomes the active Central",
            what.trim()
        );
        std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    }
    let c = cfg.clone();
    let (app, report) = tokio::task::spawn_blocking(move || App::open(&c))
        .await?
        .with_context(|| format!("opening the database {}", cfg.database))?;
    let source = match &report.source {
        LoadSource::Empty => "a new, empty database".to_string(),
        LoadSource::Snapshot { path, seq } => format!(
            "snapshot {} (change {seq}) plus {} later changes",
            path.display(),
            report.replayed
        ),
        LoadSource::Database => "the database tables".to_string(),
    };
    for (p, why) in &report.rejected_snapshots {
        tracing::warn!("snapshot {} not used: {why}", p.display());
    }
    tracing::info!(
        "model loaded from {source} in {} ms",
        report.elapsed.as_millis()
    );
    if let Some(pw) = &report.admin_password {
        println!("================================================================");
        println!(" First start: created the account `administrator`.");
        println!(" Password (shown only this once): {pw}");
        println!("================================================================");
    }
    let tls = if cfg.plaintext {
        tracing::warn!(
            "serving plain HTTP on {} (loopback only, for tests)",
            cfg.listen
        );
        None
    } else {
        let t = tls::load_or_create(
            &cfg.data_dir,
            cfg.tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        if t.created {
            println!(
                "Created a self-signed TLS certificate in {}",
                cfg.data_dir.join("tls").display()
            );
        }
        println!("TLS certificate SHA-256 fingerprint: {}", t.fingerprint);
        Some(t.config)
    };
    if let ipam_engine::Role::Standby { active } = app.role() {
        println!("Standby: following the active instance {active}; writes are refused until it goes away");
    }
    println!(
        "ipam Central listening on {}://{addr}/mmws/api/v2/ (ready in {} ms)",
        if tls.is_some() { "https" } else { "http" },
        t0.elapsed().as_millis()
    );
    app.start_services()?;
    let router = app.router();
    // A database failure leaves the last commit's outcome unknown: stop, so that the
    // service manager restarts Central, which reloads from the database (and, on
    // PostgreSQL with several instances, comes back as a standby if another took over).
    let watched = app.clone();
    let poisoned = async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if let Some(why) = watched.poisoned() {
                tracing::error!("stopping: {why}");
                return;
            }
        }
    };
    let stop = async {
        tokio::select! {
            () = shutdown_signal() => {},
            () = poisoned => {},
        }
    };
    ipam_central::serve(router, listener, tls, limits, stop).await;
    let failed = app.poisoned();
    tokio::task::spawn_blocking(move || app.shutdown()).await?;
    tracing::info!("stopped");
    if let Some(why) = failed {
        anyhow::bail!("stopped after a database failure: {why}");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
