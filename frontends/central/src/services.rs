//! Central's side of DNS and DHCP: one link to each configured agent, the servers the agents
//! manage (registered in the model as `dnsServers`/`dhcpServers`), requests to them, and
//! synchronization, in which the server's data wins.
//!
//! - A write through the API goes to the server first and is recorded in the model only
//!   when the server confirms it ([`Services::request`]); the API handlers hold the server's
//!   lock ([`Services::lock`]) across both steps, so a synchronization never sees half of it.
//! - Synchronization ([`sync_dns`], [`sync_dhcp`]) reads a server's zones and records, or its
//!   scopes, reservations and leases, and applies every difference to the model as the system
//!   user, one history entry per difference, with a comment naming the server. It runs when
//!   an agent connects, when it reports a change (`event`), every `sync_secs`, and on demand
//!   (`POST dnsServers/{ref}/synchronize`).
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ipam_agent_link::link::Supervisor;
use ipam_agent_link::pins::Pins;
use ipam_agent_link::{LinkConfig, LinkError};
use ipam_agent_proto::{
    presentation, DhcpOp, DnsOp, EventBody, RemoteErrorCode, RequestBody, ResourceRecord,
    ResponseBody, ServerKind, ServerStatus,
};
use ipam_engine::model::{
    DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord, DnsServer, DnsZone,
};
use ipam_engine::{
    Command, EngineError, Id, NewRange, ObjKey, Outcome, ServiceObject, Transaction, SYSTEM_USER,
};

use crate::config::AgentSpec;
use crate::App;

/// Most record changes sent to a server in one update, and commands in one transaction.
pub(crate) const BATCH: usize = 5_000;

/// Why a request to a server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// The server's agent is not configured in this Central.
    #[error("no agent at {0} is configured in this Central (add it to [[agents]] in the configuration file)")]
    NoAgent(String),
    /// The agent or the server could not be reached; nothing was changed.
    #[error("{0}; nothing was changed")]
    Unreachable(String),
    /// The server refused or failed the change; nothing was changed in Central.
    #[error("the server refused the change ({}): {message}; nothing was changed", code.as_str())]
    Refused {
        /// The agent's error code.
        code: RemoteErrorCode,
        /// Its message.
        message: String,
    },
    /// No answer in time: the server may or may not have applied the change. Central has
    /// not recorded it; the next synchronization reads what the server holds.
    #[error("{0}; the server may have applied the change: Central did not record it, and reads the server's state at the next synchronization")]
    Uncertain(String),
    /// The agent answered something else than expected.
    #[error("unexpected answer from the agent: {0}")]
    Unexpected(String),
}

/// The outcome of a delete on a server, where "not found" is success: what is gone there
/// only needs removing from the model.
pub(crate) fn already_gone(r: Result<ResponseBody, ServiceError>) -> Result<(), ServiceError> {
    match r {
        Ok(_)
        | Err(ServiceError::Refused {
            code: RemoteErrorCode::NotFound,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

impl From<LinkError> for ServiceError {
    fn from(e: LinkError) -> ServiceError {
        match e {
            LinkError::Remote(r) => match r.code {
                RemoteErrorCode::ServerDown => ServiceError::Unreachable(r.message),
                RemoteErrorCode::Timeout => ServiceError::Uncertain(r.message),
                code => ServiceError::Refused {
                    code,
                    message: r.message,
                },
            },
            e @ (LinkError::Timeout { .. } | LinkError::Interrupted { .. }) => {
                ServiceError::Uncertain(e.to_string())
            }
            other => ServiceError::Unreachable(other.to_string()),
        }
    }
}

/// A server's lock key: (a DNS server, its id).
type ServerKey = (bool, Id);

/// The links to the agents and what is known of their servers.
pub(crate) struct Services {
    specs: Vec<AgentSpec>,
    pins_file: std::path::PathBuf,
    instance: String,
    sync_every: Duration,
    links: OnceLock<HashMap<String, Supervisor>>,
    locks: Mutex<HashMap<ServerKey, Arc<tokio::sync::Mutex<()>>>>,
    status: Mutex<HashMap<String, ServerStatus>>,
}

impl Services {
    pub(crate) fn new(
        specs: Vec<AgentSpec>,
        data_dir: &std::path::Path,
        instance: String,
        sync_secs: u64,
    ) -> Services {
        Services {
            specs,
            pins_file: data_dir.join("agent-pins"),
            instance,
            sync_every: Duration::from_secs(sync_secs),
            links: OnceLock::new(),
            locks: Mutex::default(),
            status: Mutex::default(),
        }
    }

    /// Connects to every configured agent and keeps the links up; registers their servers
    /// and synchronizes them. Call once, on the active instance, inside the runtime.
    pub(crate) fn start(app: &Arc<App>) -> std::io::Result<()> {
        let s = &app.services;
        if s.specs.is_empty() {
            let _ = s.links.set(HashMap::new());
            return Ok(());
        }
        let pins = Pins::open(&s.pins_file)?;
        let mut links = HashMap::new();
        for spec in &s.specs {
            let cfg = LinkConfig::new(spec.address.clone(), spec.key.clone(), s.instance.clone());
            links.insert(spec.address.clone(), Supervisor::spawn(cfg, pins.clone()));
        }
        let _ = s.links.set(links);
        for spec in &s.specs {
            tokio::spawn(run_agent(app.clone(), spec.address.clone()));
        }
        Ok(())
    }

    /// Whether the link to the agent at `addr` is up, or why not.
    pub(crate) fn link_state(&self, addr: &str) -> Result<(), String> {
        let Some(links) = self.links.get() else {
            return Err(
                "the agent links are not started (a standby Central leaves them to the active one)"
                    .into(),
            );
        };
        match links.get(addr) {
            None => Err(ServiceError::NoAgent(addr.into()).to_string()),
            Some(s) => s.link().map(|_| ()),
        }
    }

    /// Every configured agent with its link state (`Err`: why it is down).
    pub(crate) fn agents(&self) -> Vec<(String, Result<(), String>)> {
        self.specs
            .iter()
            .map(|s| (s.address.clone(), self.link_state(&s.address)))
            .collect()
    }

    /// The last status a server reported, when one did.
    pub(crate) fn status(&self, server: &str) -> Option<ServerStatus> {
        self.status
            .lock()
            .expect("status lock")
            .get(server)
            .cloned()
    }

    /// Sends a request to the agent at `addr`.
    pub(crate) async fn request(
        &self,
        addr: &str,
        body: RequestBody,
    ) -> Result<ResponseBody, ServiceError> {
        let sup = self
            .links
            .get()
            .and_then(|l| l.get(addr))
            .ok_or_else(|| ServiceError::NoAgent(addr.to_string()))?;
        Ok(sup.request(addr, body).await?)
    }

    /// A DNS request to a server.
    pub(crate) async fn dns(&self, s: &DnsServer, op: DnsOp) -> Result<ResponseBody, ServiceError> {
        self.request(
            &s.agent,
            RequestBody::Dns {
                server: s.name.clone(),
                op,
            },
        )
        .await
    }

    /// A DHCP request to a server.
    pub(crate) async fn dhcp(
        &self,
        s: &DhcpServer,
        op: DhcpOp,
    ) -> Result<ResponseBody, ServiceError> {
        self.request(
            &s.agent,
            RequestBody::Dhcp {
                server: s.name.clone(),
                op,
            },
        )
        .await
    }

    /// The lock of one server (`dns`: a DNS server, else a DHCP server): held across a
    /// change on the server and its recording in the model, and by synchronization.
    pub(crate) async fn lock(&self, dns: bool, server: Id) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .locks
            .lock()
            .expect("locks lock")
            .entry((dns, server))
            .or_default()
            .clone();
        m.lock_owned().await
    }
}

/// Submits a synchronization's changes: in transactions of [`BATCH`], and when one is
/// refused (a record or range the model cannot keep), its changes one by one, so that one
/// bad object does not hold back the rest. What is refused is logged.
async fn submit_lenient(app: &Arc<App>, comment: &str, cmds: Vec<Command>) {
    for chunk in cmds.chunks(BATCH) {
        if let Err(e) = submit_system(app, comment.to_string(), chunk.to_vec()).await {
            tracing::warn!(
                "{comment}: applying {} changes in one go failed ({e}); applying them one by one",
                chunk.len()
            );
            for c in chunk {
                if let Err(e) = submit_system(app, comment.to_string(), vec![c.clone()]).await {
                    tracing::warn!("{comment}: a change from the server was not applied: {e}");
                }
            }
        }
    }
}

/// Submits commands as the system user, in transactions of at most [`BATCH`] commands.
pub(crate) async fn submit_system(
    app: &Arc<App>,
    comment: String,
    commands: Vec<Command>,
) -> Result<Vec<Outcome>, EngineError> {
    let mut out = Vec::new();
    let mut rest = commands;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH));
        let txn = Transaction {
            user: SYSTEM_USER,
            comment: comment.clone(),
            idempotency_key: None,
            commands: std::mem::replace(&mut rest, tail),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        app.engine.submit_with(txn, move |r| {
            let _ = tx.send(r);
        });
        let r = rx.await.map_err(|_| EngineError::ShuttingDown)??;
        out.extend(r.outcomes);
    }
    Ok(out)
}

async fn read_system<R: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&ipam_engine::View<'_>) -> Result<R, EngineError> + Send + 'static,
) -> Result<R, EngineError> {
    let a = app.clone();
    tokio::task::spawn_blocking(move || a.engine.read(SYSTEM_USER, f))
        .await
        .map_err(|_| EngineError::ShuttingDown)?
}

/// Every reservation of a scope, whoever may read it (to put them back on a server).
pub(crate) async fn reservations_of(app: &Arc<App>, scope: Id) -> Vec<DhcpReservation> {
    read_system(app, move |v| Ok(v.dhcp_reservations(Some(scope))))
        .await
        .unwrap_or_default()
}

/// Keeps one agent's servers registered and synchronized while its link is up.
async fn run_agent(app: Arc<App>, addr: String) {
    let mut tick = tokio::time::interval(if app.services.sync_every.is_zero() {
        Duration::from_secs(3600 * 24 * 365)
    } else {
        app.services.sync_every
    });
    tick.tick().await;
    loop {
        let link = match app.services.links.get().and_then(|l| l.get(&addr)) {
            Some(s) => s.link(),
            None => return,
        };
        let Ok(link) = link else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut events = link.events();
        if let Err(e) = register(&app, &addr, &link.welcome().servers).await {
            tracing::warn!(agent = addr, "registering the agent's servers failed: {e}");
        }
        sync_agent(&app, &addr).await;
        while link.closed().is_none() {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => on_event(&app, &addr, ev).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => sync_agent(&app, &addr).await,
                    Err(_) => break,
                },
                _ = tick.tick() => sync_agent(&app, &addr).await,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        tracing::info!(
            agent = addr,
            "link closed: {}",
            link.closed().unwrap_or_default()
        );
    }
}

/// Adds the servers an agent manages to the model (or points existing ones at it).
async fn register(
    app: &Arc<App>,
    addr: &str,
    servers: &[ipam_agent_proto::ManagedServer],
) -> Result<(), EngineError> {
    let (dns, dhcp) = read_system(app, |v| Ok((v.dns_servers(), v.dhcp_servers()))).await?;
    let mut cmds = Vec::new();
    for m in servers {
        let kind = kind_name(m.kind).to_string();
        let is_dns = matches!(m.kind, ServerKind::Bind | ServerKind::PowerDns);
        // (id, agent, kind) of the server of this name Central knows.
        let existing = if is_dns {
            dns.iter()
                .find(|s| s.name.eq_ignore_ascii_case(&m.name))
                .map(|s| (s.id, s.agent.as_str(), s.kind.as_str()))
        } else {
            dhcp.iter()
                .find(|s| s.name.eq_ignore_ascii_case(&m.name))
                .map(|s| (s.id, s.agent.as_str(), s.kind.as_str()))
        };
        if existing.is_some_and(|(_, a, k)| a == addr && k == kind) {
            continue;
        }
        let (id, name, agent) = (
            existing.map_or(0, |e| e.0),
            m.name.clone(),
            addr.to_string(),
        );
        cmds.push(Command::PutService(if is_dns {
            ServiceObject::DnsServer(DnsServer {
                id,
                name,
                agent,
                kind,
            })
        } else {
            ServiceObject::DhcpServer(DhcpServer {
                id,
                name,
                agent,
                kind,
            })
        }));
    }
    if !cmds.is_empty() {
        submit_system(
            app,
            format!("servers reported by the agent at {addr}"),
            cmds,
        )
        .await?;
    }
    Ok(())
}

/// The model's name of a server kind.
pub(crate) fn kind_name(k: ServerKind) -> &'static str {
    match k {
        ServerKind::Bind => "bind",
        ServerKind::PowerDns => "powerdns",
        ServerKind::Kea => "kea",
        ServerKind::IscDhcpd => "isc_dhcpd",
    }
}

async fn on_event(app: &Arc<App>, addr: &str, ev: EventBody) {
    let server = ev.server().to_string();
    match ev {
        EventBody::ServerStatusChanged { status } => {
            app.services
                .status
                .lock()
                .expect("status lock")
                .insert(status.server.clone(), status);
        }
        EventBody::ZoneChanged { .. } => {
            if let Ok(Some(s)) = read_system(app, move |v| {
                Ok(v.dns_servers().into_iter().find(|s| s.name == server))
            })
            .await
            {
                if let Err(e) = sync_dns(app, &s, false).await {
                    tracing::warn!(agent = addr, server = s.name, "synchronization failed: {e}");
                }
            }
        }
        EventBody::LeasesChanged { .. } | EventBody::DhcpConfigChanged { .. } => {
            if let Ok(Some(s)) = read_system(app, move |v| {
                Ok(v.dhcp_servers().into_iter().find(|s| s.name == server))
            })
            .await
            {
                if let Err(e) = sync_dhcp(app, &s).await {
                    tracing::warn!(agent = addr, server = s.name, "synchronization failed: {e}");
                }
            }
        }
    }
}

async fn sync_agent(app: &Arc<App>, addr: &str) {
    let a = addr.to_string();
    let Ok((dns, dhcp)) = read_system(app, move |v| {
        Ok((
            v.dns_servers()
                .into_iter()
                .filter(|s| s.agent == a)
                .collect::<Vec<_>>(),
            v.dhcp_servers()
                .into_iter()
                .filter(|s| s.agent == a)
                .collect::<Vec<_>>(),
        ))
    })
    .await
    else {
        return;
    };
    for s in dns {
        if let Err(e) = sync_dns(app, &s, false).await {
            tracing::warn!(agent = addr, server = s.name, "synchronization failed: {e}");
        }
    }
    for s in dhcp {
        if let Err(e) = sync_dhcp(app, &s).await {
            tracing::warn!(agent = addr, server = s.name, "synchronization failed: {e}");
        }
    }
}

/// What a synchronization changed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SyncReport {
    /// Objects created in the model.
    pub created: usize,
    /// Objects changed.
    pub changed: usize,
    /// Objects deleted.
    pub deleted: usize,
}

/// Why a synchronization failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// The server could not be read.
    #[error(transparent)]
    Server(#[from] ServiceError),
    /// The model refused the changes.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

// ---- DNS ----

fn is_txt(rtype: &str) -> bool {
    rtype.eq_ignore_ascii_case("TXT") || rtype.eq_ignore_ascii_case("SPF")
}

/// Record data as Central keeps it: TXT unquoted and as given, everything else in the
/// drivers' canonical form.
pub(crate) fn central_data(rtype: &str, data: &str) -> String {
    if is_txt(rtype) {
        data.to_string()
    } else {
        presentation::canonical_data(rtype, data)
    }
}

/// Record data as the agents take it.
pub(crate) fn wire_data(rtype: &str, data: &str) -> String {
    if is_txt(rtype) {
        presentation::txt_to_presentation(data)
    } else {
        data.to_string()
    }
}

/// A record of the model as the agents write it.
pub(crate) fn to_wire(r: &DnsRecord, zone: &DnsZone) -> ResourceRecord {
    ResourceRecord {
        name: ipam_engine::absolute_record_name(&r.name, &zone.name),
        rtype: r.rtype.clone(),
        ttl: r.ttl,
        data: wire_data(&r.rtype, &r.data),
    }
}

/// A record's owner name relative to its zone (`@` for the apex).
pub(crate) fn relative_name(name: &str, zone: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let n = if n.ends_with('.') { n } else { format!("{n}.") };
    if n == zone {
        "@".into()
    } else {
        n.strip_suffix(&format!(".{zone}"))
            .map_or_else(|| n.trim_end_matches('.').to_string(), str::to_string)
    }
}

/// Synchronizes one DNS server into the model: its zones, and the records of every zone
/// whose serial changed (or that is new; with `every_zone`, of every zone). The server wins.
pub(crate) async fn sync_dns(
    app: &Arc<App>,
    server: &DnsServer,
    every_zone: bool,
) -> Result<SyncReport, SyncError> {
    let _g = app.services.lock(true, server.id).await;
    let zones = match app.services.dns(server, DnsOp::ListZones {}).await? {
        ResponseBody::Zones { zones } => zones,
        other => return Err(ServiceError::Unexpected(format!("{other:?}")).into()),
    };
    let sid = server.id;
    let known: Vec<DnsZone> = read_system(app, move |v| {
        Ok(v.dns_zones()
            .into_iter()
            .filter(|z| z.server == sid)
            .collect())
    })
    .await?;
    let mut report = SyncReport::default();
    let comment = |what: &str| format!("synchronized from DNS server {}: {what}", server.name);
    let by_name: HashMap<(&str, &str), &DnsZone> = known
        .iter()
        .map(|z| ((z.name.as_str(), z.view.as_str()), z))
        .collect();
    let mut on_server: std::collections::HashSet<(String, String)> = Default::default();
    for info in zones {
        let Some(name) = ipam_engine::absolute_name(&info.name) else {
            continue;
        };
        let view = info.view.clone().unwrap_or_default();
        on_server.insert((name.clone(), view.clone()));
        let existing = by_name.get(&(name.as_str(), view.as_str())).copied();
        let zone_id = match existing {
            Some(z) if !every_zone && z.serial == info.serial && info.serial.is_some() => continue,
            Some(z) => z.id,
            None => {
                let out = submit_system(
                    app,
                    comment(&format!("zone {name} found on the server")),
                    vec![Command::PutService(ServiceObject::DnsZone(DnsZone {
                        id: 0,
                        server: server.id,
                        view: view.clone(),
                        name: name.clone(),
                        primary: info.zone_type == ipam_agent_proto::ZoneType::Primary,
                        dynamic: info.dynamic,
                        masters: info.masters.clone(),
                        serial: None,
                        properties: Default::default(),
                        created: 0,
                        last_modified: 0,
                    }))],
                )
                .await;
                let out = match out {
                    Ok(out) => out,
                    Err(e) => {
                        // A zone the model cannot keep does not hold back the others.
                        tracing::warn!(
                            server = server.name,
                            zone = name,
                            "zone not synchronized: {e}"
                        );
                        continue;
                    }
                };
                report.created += 1;
                match out.first() {
                    Some(Outcome::Created(r)) => ObjKey::parse_ref(r)
                        .and_then(|k| k.id())
                        .ok_or_else(|| ServiceError::Unexpected(r.clone()))?,
                    _ => continue,
                }
            }
        };
        let r = match sync_zone_records(app, server, zone_id, &comment(&format!("zone {name}")))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // One zone that cannot be read does not hold back the others.
                tracing::warn!(
                    server = server.name,
                    zone = name,
                    "zone not synchronized: {e}"
                );
                continue;
            }
        };
        report.created += r.created;
        report.changed += r.changed;
        report.deleted += r.deleted;
    }
    let gone: Vec<Command> = known
        .iter()
        .filter(|z| !on_server.contains(&(z.name.clone(), z.view.clone())))
        .map(|z| Command::DeleteService(ObjKey::DnsZone(z.id)))
        .collect();
    if !gone.is_empty() {
        report.deleted += gone.len();
        submit_system(app, comment("zones no longer on the server"), gone).await?;
    }
    Ok(report)
}

/// Reads one zone from the server and makes the model's records match it (the caller holds
/// the server's lock).
pub(crate) async fn sync_zone_records(
    app: &Arc<App>,
    server: &DnsServer,
    zone_id: Id,
    comment: &str,
) -> Result<SyncReport, SyncError> {
    let (zone, records) = read_system(app, move |v| {
        Ok((v.dns_zone(zone_id)?, v.dns_records(zone_id)?))
    })
    .await?;
    let mut cursor = None;
    let mut wire = Vec::new();
    let mut serial: Option<u32>;
    loop {
        let op = DnsOp::ReadZone {
            zone: zone.name.clone(),
            view: (!zone.view.is_empty()).then(|| zone.view.clone()),
            cursor: cursor.take(),
            limit: Some(10_000),
        };
        match app.services.dns(server, op).await? {
            ResponseBody::Zone {
                zone: info,
                records,
                next_cursor,
            } => {
                serial = info.serial;
                wire.extend(records);
                match next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            other => return Err(ServiceError::Unexpected(format!("{other:?}")).into()),
        }
    }
    // The server's records as the model keeps them, by (name, type, data).
    let mut theirs: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for rr in wire {
        if rr.rtype.eq_ignore_ascii_case("SOA") {
            continue;
        }
        let name = relative_name(&rr.name, &zone.name);
        let data = if is_txt(&rr.rtype) {
            presentation::txt_from_presentation(&rr.data)
        } else {
            rr.data.clone()
        };
        theirs.insert((name, rr.rtype.to_ascii_uppercase(), data), rr.ttl);
    }
    let mut cmds = Vec::new();
    let mut report = SyncReport::default();
    for r in records.iter().filter(|r| r.enabled) {
        let k = (r.name.clone(), r.rtype.clone(), r.data.clone());
        match theirs.remove(&k) {
            Some(ttl) if ttl == r.ttl => {}
            Some(ttl) => {
                report.changed += 1;
                cmds.push(Command::PutService(ServiceObject::DnsRecord(DnsRecord {
                    ttl,
                    ..r.clone()
                })));
            }
            None => {
                report.deleted += 1;
                cmds.push(Command::DeleteService(ObjKey::DnsRecord(r.id)));
            }
        }
    }
    // A disabled record of the model that the server now has is enabled by the server.
    for r in records.iter().filter(|r| !r.enabled) {
        let k = (r.name.clone(), r.rtype.clone(), r.data.clone());
        if let Some(ttl) = theirs.remove(&k) {
            report.changed += 1;
            cmds.push(Command::PutService(ServiceObject::DnsRecord(DnsRecord {
                ttl,
                enabled: true,
                ..r.clone()
            })));
        }
    }
    for ((name, rtype, data), ttl) in theirs {
        report.created += 1;
        cmds.push(Command::PutService(ServiceObject::DnsRecord(DnsRecord {
            id: 0,
            zone: zone.id,
            name,
            rtype,
            ttl,
            data,
            comment: String::new(),
            enabled: true,
            address: None,
        })));
    }
    if zone.serial != serial {
        // The zone as it is now (its properties may have changed while the server was read).
        if let Ok(now) = read_system(app, move |v| v.dns_zone(zone_id)).await {
            cmds.push(Command::PutService(ServiceObject::DnsZone(DnsZone {
                serial,
                ..now
            })));
        }
    }
    submit_lenient(app, comment, cmds).await;
    Ok(report)
}

// ---- DHCP ----

/// Synchronizes one DHCP server into the model: scopes (a range is created for a subnet the
/// model does not have), pools and options, reservations and leases. The server wins.
pub(crate) async fn sync_dhcp(
    app: &Arc<App>,
    server: &DhcpServer,
) -> Result<SyncReport, SyncError> {
    let _g = app.services.lock(false, server.id).await;
    let comment = format!("synchronized from DHCP server {}", server.name);
    let scopes = match app.services.dhcp(server, DhcpOp::ListScopes {}).await? {
        ResponseBody::Scopes { scopes } => scopes,
        other => return Err(ServiceError::Unexpected(format!("{other:?}")).into()),
    };
    let mut report = SyncReport::default();
    // Ranges for subnets the model does not have (found through the index).
    let bounds: Vec<(IpAddr, IpAddr)> = scopes.iter().map(|s| cidr_bounds(s.subnet)).collect();
    let b2 = bounds.clone();
    let have: Vec<Option<Id>> = read_system(app, move |v| {
        Ok(b2
            .iter()
            .map(|(f, t)| v.find_range(ipam_engine::DEFAULT_SPACE, *f, *t))
            .collect())
    })
    .await?;
    let missing: Vec<Command> = bounds
        .iter()
        .zip(&have)
        .filter(|(_, h)| h.is_none())
        .map(|((f, t), _)| {
            Command::CreateRange(NewRange {
                from: Some(*f),
                to: Some(*t),
                subnet: true,
                ..Default::default()
            })
        })
        .collect();
    if !missing.is_empty() {
        report.created += missing.len();
        submit_lenient(app, &comment, missing).await;
    }
    let sid = server.id;
    let (range_ids, known): (Vec<Option<Id>>, Vec<DhcpScope>) = read_system(app, move |v| {
        Ok((
            bounds
                .iter()
                .map(|(f, t)| v.find_range(ipam_engine::DEFAULT_SPACE, *f, *t))
                .collect(),
            v.dhcp_scopes()
                .into_iter()
                .filter(|s| s.server == sid)
                .collect(),
        ))
    })
    .await?;
    let mut cmds = Vec::new();
    let mut live: Vec<(Id, ipam_agent_proto::Cidr)> = Vec::new();
    for (s, range) in scopes.iter().zip(range_ids) {
        let Some(range) = range else {
            continue;
        };
        let pools: Vec<(IpAddr, IpAddr)> = s.pools.iter().map(|p| (p.from, p.to)).collect();
        let options: Vec<(String, String)> = s
            .options
            .iter()
            .map(|o| {
                (
                    o.name
                        .clone()
                        .unwrap_or_else(|| o.code.map(|c| c.to_string()).unwrap_or_default()),
                    o.value.clone(),
                )
            })
            .collect();
        match known.iter().find(|k| k.range == range) {
            Some(k) => {
                live.push((k.id, s.subnet));
                if k.pools != pools || k.options != options || !k.enabled {
                    report.changed += 1;
                    cmds.push(Command::PutService(ServiceObject::DhcpScope(DhcpScope {
                        pools,
                        options,
                        enabled: true,
                        ..k.clone()
                    })));
                }
            }
            None => {
                report.created += 1;
                cmds.push(Command::PutService(ServiceObject::DhcpScope(DhcpScope {
                    id: 0,
                    server: server.id,
                    range,
                    space: 0,
                    name: s.name.clone().unwrap_or_default(),
                    description: String::new(),
                    enabled: true,
                    pools,
                    options,
                })));
            }
        }
    }
    for k in known.iter().filter(|k| k.enabled) {
        if !live.iter().any(|(id, _)| *id == k.id)
            && !cmds.iter().any(|c| matches!(c, Command::PutService(ServiceObject::DhcpScope(s)) if s.range == k.range))
        {
            report.deleted += 1;
            cmds.push(Command::DeleteService(ObjKey::DhcpScope(k.id)));
        }
    }
    if !cmds.is_empty() {
        submit_lenient(app, &comment, cmds).await;
    }
    // Reservations and leases, scope by scope.
    let known: Vec<DhcpScope> = read_system(app, move |v| {
        Ok(v.dhcp_scopes()
            .into_iter()
            .filter(|s| s.server == sid && s.enabled)
            .collect())
    })
    .await?;
    let reservations = match app
        .services
        .dhcp(server, DhcpOp::ListReservations { subnet: None })
        .await?
    {
        ResponseBody::Reservations { reservations } => reservations,
        other => return Err(ServiceError::Unexpected(format!("{other:?}")).into()),
    };
    let mut leases = Vec::new();
    let mut cursor = None;
    loop {
        match app
            .services
            .dhcp(
                server,
                DhcpOp::ListLeases {
                    subnet: None,
                    cursor: cursor.take(),
                    limit: Some(10_000),
                },
            )
            .await?
        {
            ResponseBody::Leases {
                leases: page,
                next_cursor,
            } => {
                leases.extend(page);
                match next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            other => return Err(ServiceError::Unexpected(format!("{other:?}")).into()),
        }
    }
    let table = ScopeTable::new(app, known).await?;
    let scope_of = |a: IpAddr| table.find(a);
    let (have_res, have_leases): (Vec<DhcpReservation>, Vec<DhcpLease>) = {
        let sid2 = sid;
        read_system(app, move |v| {
            // Disabled scopes are Central's only: the server has nothing of theirs.
            let scopes: Vec<Id> = v
                .dhcp_scopes()
                .into_iter()
                .filter(|s| s.server == sid2 && s.enabled)
                .map(|s| s.id)
                .collect();
            let res = scopes
                .iter()
                .flat_map(|s| v.dhcp_reservations(Some(*s)))
                .collect();
            let leases = scopes.iter().flat_map(|s| v.dhcp_leases(*s)).collect();
            Ok((res, leases))
        })
        .await?
    };
    let mut cmds = Vec::new();
    // Reservations, matched by client and address.
    let mut wanted: Vec<DhcpReservation> = Vec::new();
    for r in &reservations {
        let Some(scope) = scope_of(r.address) else {
            continue;
        };
        wanted.push(DhcpReservation {
            id: 0,
            scope: scope.id,
            space: scope.space,
            name: r.hostname.clone().unwrap_or_default(),
            client_identifier: identifier_text(&r.identifier),
            method: identifier_method(&r.identifier).into(),
            addresses: vec![r.address],
        });
    }
    type ResKey = (Id, String, Vec<IpAddr>);
    let mut wanted: HashMap<ResKey, DhcpReservation> = wanted
        .into_iter()
        .map(|w| {
            (
                (w.scope, w.client_identifier.clone(), w.addresses.clone()),
                w,
            )
        })
        .collect();
    for h in &have_res {
        let k = (h.scope, h.client_identifier.clone(), h.addresses.clone());
        if wanted.remove(&k).is_none() {
            report.deleted += 1;
            cmds.push(Command::DeleteService(ObjKey::DhcpReservation(h.id)));
        }
    }
    let mut add: Vec<DhcpReservation> = wanted.into_values().collect();
    add.sort_by(|a, b| (a.scope, &a.addresses).cmp(&(b.scope, &b.addresses)));
    for w in add {
        report.created += 1;
        cmds.push(Command::PutService(ServiceObject::DhcpReservation(w)));
    }
    // Leases, matched by address.
    let mut by_addr: HashMap<IpAddr, &DhcpLease> =
        have_leases.iter().map(|l| (l.addr, l)).collect();
    for l in &leases {
        let Some(scope) = scope_of(l.address) else {
            continue;
        };
        let img = DhcpLease {
            id: 0,
            scope: scope.id,
            space: scope.space,
            addr: l.address,
            mac: l.mac.map(|m| m.to_string()).unwrap_or_default(),
            hostname: l.hostname.clone().unwrap_or_default(),
            expires: l.expires.map(|e| (e as i64).saturating_mul(1000)),
            state: lease_state(l.state).into(),
        };
        match by_addr.remove(&l.address) {
            Some(h)
                if DhcpLease {
                    id: h.id,
                    ..img.clone()
                } == *h => {}
            Some(h) => {
                report.changed += 1;
                cmds.push(Command::PutService(ServiceObject::DhcpLease(DhcpLease {
                    id: h.id,
                    ..img
                })));
            }
            None => {
                report.created += 1;
                cmds.push(Command::PutService(ServiceObject::DhcpLease(img)));
            }
        }
    }
    for h in by_addr.values() {
        report.deleted += 1;
        cmds.push(Command::DeleteService(ObjKey::DhcpLease(h.id)));
    }
    if !cmds.is_empty() {
        submit_lenient(app, &comment, cmds).await;
    }
    Ok(report)
}

/// A server's scopes by the bounds of their ranges, for finding the scope of an address
/// in O(log n).
struct ScopeTable(Vec<(IpAddr, IpAddr, DhcpScope)>);

impl ScopeTable {
    async fn new(app: &Arc<App>, scopes: Vec<DhcpScope>) -> Result<ScopeTable, EngineError> {
        let mut v = read_system(app, move |v| {
            Ok(scopes
                .into_iter()
                .filter_map(|s| {
                    let r = v.range(s.range).ok()?.range;
                    Some((r.from, r.to, s))
                })
                .collect::<Vec<_>>())
        })
        .await?;
        // By start, and at one start the outer range first, so that the search from the end
        // meets the innermost range holding an address first.
        v.sort_by_key(|a| (a.0, std::cmp::Reverse(a.1)));
        Ok(ScopeTable(v))
    }

    /// The scope whose range holds `a` (the innermost, when scopes nest).
    fn find(&self, a: IpAddr) -> Option<&DhcpScope> {
        let end = self.0.partition_point(|x| x.0 <= a);
        self.0[..end].iter().rev().find(|x| a <= x.1).map(|x| &x.2)
    }
}

/// First and last address of a prefix.
pub(crate) fn cidr_bounds(c: ipam_agent_proto::Cidr) -> (IpAddr, IpAddr) {
    let len = u32::from(c.prefix_len());
    match c.addr() {
        IpAddr::V4(a) => {
            let host = if len >= 32 { 0 } else { u32::MAX >> len };
            let base = u32::from(a) & !host;
            (
                IpAddr::from(base.to_be_bytes()),
                IpAddr::from((base | host).to_be_bytes()),
            )
        }
        IpAddr::V6(a) => {
            let host = if len >= 128 { 0 } else { u128::MAX >> len };
            let base = u128::from(a) & !host;
            (
                IpAddr::from(base.to_be_bytes()),
                IpAddr::from((base | host).to_be_bytes()),
            )
        }
    }
}

/// Micetro's reservation method of a client identifier.
pub(crate) fn identifier_method(i: &ipam_agent_proto::ClientIdentifier) -> &'static str {
    match i {
        ipam_agent_proto::ClientIdentifier::Mac(_) => "HardwareAddress",
        ipam_agent_proto::ClientIdentifier::ClientId(_) => "ClientIdentifier",
        ipam_agent_proto::ClientIdentifier::Duid(_) => "DUID",
    }
}

/// A client identifier as the model keeps it (lower-case hex with colons).
pub(crate) fn identifier_text(i: &ipam_agent_proto::ClientIdentifier) -> String {
    match i {
        ipam_agent_proto::ClientIdentifier::Mac(m) => m.to_string(),
        ipam_agent_proto::ClientIdentifier::ClientId(h)
        | ipam_agent_proto::ClientIdentifier::Duid(h) => h
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

fn lease_state(s: ipam_agent_proto::LeaseState) -> &'static str {
    use ipam_agent_proto::LeaseState as L;
    match s {
        L::Active => "Active",
        L::Expired => "Expired",
        L::Released => "Released",
        L::Declined => "Declined",
        L::Free => "Free",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_relative_to_their_zone() {
        assert_eq!(relative_name("www.example.test.", "example.test."), "www");
        assert_eq!(relative_name("Example.Test.", "example.test."), "@");
        assert_eq!(relative_name("a.b.example.test", "example.test."), "a.b");
    }

    #[test]
    fn prefix_bounds() {
        let c: ipam_agent_proto::Cidr = "192.0.2.0/24".parse().unwrap();
        assert_eq!(
            cidr_bounds(c),
            ("192.0.2.0".parse().unwrap(), "192.0.2.255".parse().unwrap())
        );
    }
}
