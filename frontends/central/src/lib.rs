//! `ipam-central`: the HTTPS front-end of the ipam engine.
//!
//! It serves the Micetro-compatible REST API (`/mmws/api/v2/...` and the legacy
//! `/mmws/api/...`), our documented additions (bulk allocation and release, NDJSON export,
//! cursor paging), `/openapi.json`, `/metrics` and `/health`. The front-end is thin: it
//! parses, authenticates, calls the [`ipam_engine::Engine`] (which checks every permission)
//! and shapes the answer. See `frontends/central/API.md` for the API as served.
//!
//! - [`Config`] resolves settings (TOML file, environment, flags).
//! - [`App::open`] opens the database and the engine; [`App::router`] is the axum service
//!   (usable without a socket, as the handler tests do).
//! - [`serve`] runs the HTTPS (or, for loopback tests, plain HTTP) listener until a shutdown
//!   signal, then finishes the requests in flight.

mod api;
mod auth;
pub mod coldstandby;
pub mod config;
pub mod limits;
mod metrics;
mod server;
mod services;
pub mod tls;
mod ui;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_engine::{Engine, EngineConfig, EngineError, OpenReport, PasswordCost, Store};

pub use config::{AgentSpec, Args, Cmd, Config, Database};
pub use server::{raise_descriptor_limit, serve, Limits};

/// Why Central could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The certificate or key could not be created or loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The engine or its database failed to open.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What Central was doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// `https://HOST:PORT` of a listener: its address, or the host name when it listens on
/// every address.
pub fn default_instance_name(listen: std::net::SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    } else {
        match listen.ip() {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        }
    };
    format!("https://{host}:{}", listen.port())
}

/// The running application: the engine, sessions and metrics, shared by every request.
pub struct App {
    engine: Engine,
    auth: auth::Auth,
    metrics: metrics::Metrics,
    max_body: usize,
    max_bulk: usize,
    /// Every metric for callers without credentials too.
    metrics_public: bool,
    started: Instant,
    database: String,
    /// Bounds concurrent password checks (argon2: CPU and 19 MiB each).
    password_checks: tokio::sync::Semaphore,
    /// The DNS and DHCP agents and their servers.
    services: services::Services,
    /// What one request's reads may cost.
    read_limits: limits::ReadLimits,
    /// Admission of heavy reads (scans).
    heavy_reads: limits::HeavyReads,
    /// The threads heavy reads run on.
    scans: limits::ScanPool,
}

impl App {
    /// Opens the database named in `cfg` and starts the engine on it (loading the newest
    /// snapshot from `DATA_DIR/snapshots`). Blocks until the model is loaded. Refuses an
    /// agent's shared key that fails [`ipam_agent_proto::check_shared_key`] first.
    pub fn open(cfg: &Config) -> Result<(Arc<App>, OpenReport), CentralError> {
        for agent in &cfg.agents {
            ipam_agent_proto::check_shared_key(&agent.key)
                .map_err(|e| CentralError::Config(format!("agent {}: {e}", agent.address)))?;
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| CentralError::Io {
            context: format!("creating the data directory {}", cfg.data_dir.display()),
            source,
        })?;
        let (store, database): (Box<dyn Store>, String) = match &cfg.database {
            Database::Sqlite(p) => (
                Box::new(
                    ipam_store_sqlite::SqliteStore::open(p, Default::default())
                        .map_err(EngineError::from)?,
                ),
                cfg.database.to_string(),
            ),
            Database::Postgres { url, schema } => (
                Box::new(
                    ipam_store_postgres::PostgresStore::open(url, schema)
                        .map_err(EngineError::from)?,
                ),
                cfg.database.to_string(),
            ),
        };
        let ecfg = EngineConfig {
            snapshot_dir: Some(cfg.data_dir.join("snapshots")),
            snapshot_every: (cfg.snapshot_every > 0).then_some(cfg.snapshot_every),
            admin_password: cfg.admin_password.clone(),
            password_cost: if cfg.insecure_fast_passwords {
                PasswordCost::InsecureFast
            } else {
                PasswordCost::Standard
            },
            instance: cfg
                .instance_name
                .clone()
                .unwrap_or_else(|| default_instance_name(cfg.listen)),
            ..EngineConfig::default()
        };
        let instance = ecfg.instance.clone();
        let (engine, report) = Engine::open(store, ecfg)?;
        let app = App {
            engine,
            auth: auth::Auth::new(
                cfg.session_idle_secs,
                auth::Throttle {
                    delay_after: cfg.login_delay_after,
                    delay_max: Duration::from_secs(cfg.login_delay_max_secs),
                    lock_after: cfg.lockout_after,
                    lock: Duration::from_secs(cfg.lockout_secs),
                },
            ),
            metrics: metrics::Metrics::default(),
            max_body: cfg.max_body_bytes,
            max_bulk: cfg.max_bulk_items,
            metrics_public: cfg.metrics_public,
            started: Instant::now(),
            database,
            password_checks: tokio::sync::Semaphore::new(4),
            services: services::Services::new(
                cfg.agents.clone(),
                &cfg.data_dir,
                instance,
                cfg.sync_secs,
            ),
            read_limits: cfg.read_limits,
            heavy_reads: limits::HeavyReads::new(&cfg.read_limits),
            scans: limits::ScanPool::new(cfg.read_limits.heavy_total.max(1)),
        };
        Ok((Arc::new(app), report))
    }

    /// The HTTP service: the API, `/openapi.json`, `/metrics`, `/health`.
    pub fn router(self: &Arc<App>) -> axum::Router {
        api::router(self.clone())
    }

    /// Connects to the configured DNS and DHCP agents (a standby waits until it becomes
    /// active): their servers are registered and synchronized, and kept in step from then
    /// on. Call once, inside the async runtime, after [`App::open`].
    pub fn start_services(self: &Arc<App>) -> Result<(), CentralError> {
        if self.engine.role() == ipam_engine::Role::Active {
            return services::Services::start(self).map_err(|source| CentralError::Io {
                context: "opening the agent pin file".into(),
                source,
            });
        }
        // A standby connects to the agents once it takes over.
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if app.engine.role() == ipam_engine::Role::Active {
                    if let Err(e) = services::Services::start(&app) {
                        tracing::error!("connecting to the agents after the takeover: {e}");
                    }
                    return;
                }
            }
        });
        Ok(())
    }

    /// Stops the engine after the writes already queued, writing a final snapshot.
    pub fn shutdown(&self) {
        if let Err(e) = self.engine.snapshot_now() {
            tracing::warn!("final snapshot failed: {e}");
        }
        self.engine.shutdown();
    }

    /// Sequence number of the last committed change.
    pub fn committed_seq(&self) -> u64 {
        self.engine.committed_seq()
    }

    /// Whether this Central writes (active) or follows another one (standby).
    pub fn role(&self) -> ipam_engine::Role {
        self.engine.role()
    }

    /// Why the engine stopped accepting writes, after a database failure.
    pub fn poisoned(&self) -> Option<String> {
        self.engine.poisoned()
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
