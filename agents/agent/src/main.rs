//! `ipam-agent`: runs next to DNS and DHCP servers and carries out what Central asks, over
//! TLS (DNS agent on 1337, DHCP agent on 4151). Central must prove the shared key.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use ipam_agent::drivers::{Drivers, ServersFile};
use ipam_agent::serve::{serve, AgentConfig, Handler};
use ipam_agent_proto::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Roles {
    /// A DNS agent (default port 1337).
    Dns,
    /// A DHCP agent (default port 4151).
    Dhcp,
    /// Both, on both ports.
    Both,
}

/// The ipam agent: drives DNS and DHCP servers for Central.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// What this agent does.
    #[arg(long, value_enum, default_value = "dns", env = "IPAM_AGENT_ROLE")]
    role: Roles,
    /// Address to listen on (default 0.0.0.0:1337 for DNS, 0.0.0.0:4151 for DHCP; with
    /// `both`, the DNS port is this one's and the DHCP port is 4151).
    #[arg(long, env = "IPAM_AGENT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the agent's TLS certificate (created on first start).
    #[arg(long, default_value = "./ipam-agent-data", env = "IPAM_AGENT_DATA_DIR")]
    data_dir: PathBuf,
    /// File holding the shared key Central must prove: base64 of at least 16 random bytes,
    /// made with `head -c 32 /dev/urandom | base64` (see `ipam_agent_proto::key` for the
    /// rule; the environment variable IPAM_AGENT_KEY may hold the key itself instead).
    #[arg(long, env = "IPAM_AGENT_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The agent's name (default: the host name).
    #[arg(long, env = "IPAM_AGENT_NAME")]
    name: Option<String>,
    /// The servers this agent manages (TOML; see `ipam_agent::drivers`). Without it the
    /// agent manages none.
    #[arg(long, env = "IPAM_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Seconds between looks at the servers for changes made outside Central (zones created,
    /// deleted or with a new serial; servers stopping or starting), sent to Central as
    /// events; 0 turns the watcher off.
    #[arg(long, default_value_t = 30, env = "IPAM_AGENT_WATCH_SECS")]
    watch_secs: u64,
    /// Log filter (error, warn, info, debug).
    #[arg(long, default_value = "info", env = "IPAM_AGENT_LOG")]
    log: String,
}

fn key(args: &Args) -> Result<Vec<u8>> {
    let (key, from) = match (&args.key_file, std::env::var("IPAM_AGENT_KEY")) {
        (Some(f), _) => (
            std::fs::read(f)
                .with_context(|| format!("reading the key file {}", f.display()))?
                .trim_ascii()
                .to_vec(),
            format!("the key file {}", f.display()),
        ),
        (None, Ok(k)) => (k.trim().as_bytes().to_vec(), "IPAM_AGENT_KEY".to_string()),
        (None, Err(_)) => bail!(
            "no shared key: give --key-file (or IPAM_AGENT_KEY); without one any Central could drive this agent; {}",
            ipam_agent_proto::key::MAKE_A_KEY
        ),
    };
    ipam_agent_proto::check_shared_key(&key).with_context(|| format!("in {from}"))?;
    Ok(key)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_target(false)
        .init();
    let key = key(&args)?;
    let name = args.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ipam-agent".into())
    });
    let (roles, ports): (Vec<Role>, Vec<u16>) = match args.role {
        Roles::Dns => (vec![Role::Dns], vec![1337]),
        Roles::Dhcp => (vec![Role::Dhcp], vec![4151]),
        Roles::Both => (vec![Role::Dns, Role::Dhcp], vec![1337, 4151]),
    };
    let mut addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([0, 0, 0, 0], *p)))
        .collect();
    if let Some(l) = args.listen {
        addrs[0] = l;
    }
    let id = ipam_tls::load_or_create(
        &args.data_dir.join("tls"),
        None,
        &[],
        ipam_tls::SelfSignedNames::Unnamed,
    )
    .context("the agent's TLS certificate")?;
    if id.created {
        println!(
            "Created a self-signed TLS certificate in {}",
            args.data_dir.join("tls").display()
        );
    }
    println!("TLS certificate SHA-256 fingerprint: {}", id.fingerprint);
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let mut agent_cfg = AgentConfig::new(name.clone(), roles, key);
    agent_cfg.events = Some(events.clone());
    let cfg = Arc::new(agent_cfg);
    let file: ServersFile = match &args.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("in {}", p.display()))?,
        None => ServersFile::default(),
    };
    let drivers = Drivers::from_file(&file)
        .map_err(anyhow::Error::msg)
        .context("the configured servers")?;
    for s in drivers.servers() {
        println!("managing {} ({:?})", s.name, s.kind);
    }
    let drivers = Arc::new(drivers);
    if args.watch_secs > 0 {
        let (d, every) = (
            drivers.clone(),
            std::time::Duration::from_secs(args.watch_secs),
        );
        tokio::spawn(async move {
            loop {
                let d2 = d.clone();
                match tokio::task::spawn_blocking(move || d2.watch()).await {
                    Ok(changes) => {
                        for e in changes {
                            tracing::info!(server = e.server(), "change seen: {e:?}");
                            let _ = events.send(e);
                        }
                    }
                    Err(e) => tracing::warn!("the watcher failed: {e}"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    let handler: Arc<dyn Handler> = drivers;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for a in addrs {
        let listener = tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("listening on {a}"))?;
        let bound = listener.local_addr()?;
        println!("ipam-agent {name} listening on {bound}");
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(serve(
            listener,
            id.config.clone(),
            cfg.clone(),
            handler.clone(),
            async move {
                let _ = stop.changed().await;
            },
        )));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
