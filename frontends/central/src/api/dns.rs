//! DNS: `dnsServers`, `dnsViews`, `dnsZones` (with their `dnsRecords`) and `dnsRecords`.
//!
//! Every change goes to the DNS server through its agent first and is recorded in the model
//! only when the server confirmed it; a server that cannot be reached answers 503 and
//! nothing changes. Record names are relative to their zone (`@` is the apex); TXT data is
//! kept and returned unquoted.
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use ipam_agent_proto::{DnsOp, RecordDelete, ZoneSpec, ZoneType};
use ipam_engine::model::{DnsRecord, DnsServer, DnsZone, Permission};
use ipam_engine::{Command, EngineError, Id, ObjKey, Outcome, ServiceObject, View};
use serde_json::{json, Map, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string, as_u64, properties};
use super::render::date;
use super::routes::RefArg;
use super::{codes, ApiError, ApiResult, Ctx, Reply, Target};
use crate::services::{self, ServiceError};

/// Most records one bulk `POST dnsRecords` may carry.
const MAX_RECORDS: usize = 10_000;

/// Default TTL of a record created without one.
const DEFAULT_TTL: u32 = 3600;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        use ipam_agent_proto::RemoteErrorCode as C;
        let msg = e.to_string();
        match e {
            ServiceError::NoAgent(_) | ServiceError::Unreachable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::SERVER_DOWN, msg)
            }
            ServiceError::Refused { code, .. } => match code {
                C::NotFound | C::UnknownServer => ApiError::not_found(msg),
                C::AlreadyExists => ApiError::new(StatusCode::BAD_REQUEST, codes::NAME_TAKEN, msg),
                C::Invalid | C::Unsupported => ApiError::invalid(msg),
                _ => ApiError::new(StatusCode::BAD_GATEWAY, codes::SERVER_REFUSED, msg),
            },
            ServiceError::Uncertain(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, codes::SERVER_UNCERTAIN, msg)
            }
            ServiceError::Unexpected(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, codes::SERVER_REFUSED, msg)
            }
        }
    }
}

impl From<services::SyncError> for ApiError {
    fn from(e: services::SyncError) -> ApiError {
        match e {
            services::SyncError::Server(s) => s.into(),
            services::SyncError::Engine(e) => e.into(),
        }
    }
}

pub(crate) fn not_found(what: String) -> EngineError {
    EngineError::NotFound(what)
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A ref as text (for messages and name lookups).
pub(crate) fn ref_text(r: &RefArg) -> String {
    match r {
        RefArg::Id(id) => id.to_string(),
        RefArg::Name(n) => n.clone(),
        RefArg::Addr(_, a) => a.to_string(),
        RefArg::Cidr(a, l) => format!("{a}/{l}"),
        RefArg::FromTo(a, b) => format!("{a}-{b}"),
    }
}

/// The DNS server a ref names: an id or a name.
pub(crate) fn server_id(v: &View<'_>, r: &RefArg) -> Result<Id, EngineError> {
    let all = v.dns_servers();
    let found = match r {
        RefArg::Id(id) => all.iter().find(|s| s.id == *id),
        other => {
            let n = ref_text(other);
            let n = n.trim_start_matches("dnsServers/");
            all.iter().find(|s| s.name.eq_ignore_ascii_case(n))
        }
    };
    found
        .map(|s| s.id)
        .ok_or_else(|| not_found(format!("dnsServers/{}", ref_text(r))))
}

/// The zone a ref names: an id, a name (`example.com.` or without the dot, unique across
/// servers), or `server:view:name` (empty view: the default view).
pub(crate) fn zone_id(v: &View<'_>, r: &RefArg) -> Result<Id, EngineError> {
    if let RefArg::Id(id) = r {
        return v.dns_zone(*id).map(|z| z.id);
    }
    let text = ref_text(r);
    let text = text.trim_start_matches("dnsZones/");
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    let (server, view, name) = match parts.as_slice() {
        [s, vw, n] => (Some(*s), Some(*vw), *n),
        [s, n] => (Some(*s), None, *n),
        _ => (None, None, text),
    };
    let name =
        ipam_engine::absolute_name(name).ok_or_else(|| not_found(format!("dnsZones/{text}")))?;
    let servers = v.dns_servers();
    let zones = v.dns_zones_named(&name);
    let matches: Vec<&DnsZone> = zones
        .iter()
        .filter(|z| view.is_none_or(|vw| z.view.eq_ignore_ascii_case(vw)))
        .filter(|z| {
            server.is_none_or(|s| {
                servers
                    .iter()
                    .any(|x| x.id == z.server && x.name.eq_ignore_ascii_case(s))
            })
        })
        .collect();
    match matches.as_slice() {
        [z] => Ok(z.id),
        [] => Err(not_found(format!("dnsZones/{text}"))),
        _ => Err(invalid(
            "ref",
            format!("{text} is on several servers: name it as server:view:{name} or by id"),
        )),
    }
}

fn zone_ref(id: Id) -> String {
    ObjKey::DnsZone(id).to_ref()
}

/// The ref of a server's default view.
fn view_ref(server: Id) -> String {
    format!("dnsViews/{server}")
}

/// A server's `state` (OK, Down, Unreachable) and the reason, from its agent's link and the
/// last status the agent reported.
pub(crate) fn server_state(app: &crate::App, agent: &str, name: &str) -> (&'static str, String) {
    match app.services.link_state(agent) {
        Err(why) => ("Unreachable", why),
        Ok(()) => match app.services.status(name) {
            Some(st) if !st.running => ("Down", st.message.unwrap_or_default()),
            _ => ("OK", String::new()),
        },
    }
}

fn server_json(app: &crate::App, s: &DnsServer) -> Value {
    let (state, message) = server_state(app, &s.agent, &s.name);
    json!({
        "ref": ObjKey::DnsServer(s.id).to_ref(),
        "name": s.name,
        "type": s.kind,
        "agent": s.agent,
        "state": state,
        "message": message,
        "dnsViewRefs": [view_ref(s.id)],
    })
}

pub(crate) fn zone_json(z: &DnsZone, server: Option<&DnsServer>) -> Value {
    json!({
        "ref": zone_ref(z.id),
        "name": z.name,
        "displayName": z.name,
        "type": if z.primary { "Master" } else { "Slave" },
        "dynamic": z.dynamic,
        "adIntegrated": false,
        "dnssecSigned": false,
        "authority": server.map(|s| s.name.clone()).unwrap_or_default(),
        "dnsServerRef": ObjKey::DnsServer(z.server).to_ref(),
        "dnsViewRef": view_ref(z.server),
        "dnsViewRefs": [view_ref(z.server)],
        "view": z.view,
        "masters": z.masters.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "serial": z.serial.map(|s| s.to_string()).unwrap_or_default(),
        "customProperties": z.properties,
        "created": date(z.created),
        "lastModified": date(z.last_modified),
    })
}

pub(crate) fn record_json(r: &DnsRecord) -> Value {
    json!({
        "ref": ObjKey::DnsRecord(r.id).to_ref(),
        "name": r.name,
        "type": r.rtype,
        "ttl": r.ttl.to_string(),
        "data": r.data,
        "comment": r.comment,
        "aging": 0,
        "enabled": r.enabled,
        "dnsZoneRef": zone_ref(r.zone),
    })
}

struct ZoneFields<'a>(&'a DnsZone, &'a str);

impl Fields for ZoneFields<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let z = self.0;
        Some(match name.to_ascii_lowercase().as_str() {
            "name" | "displayname" => Cow::Borrowed(z.name.as_str()),
            "ref" => zone_ref(z.id).into(),
            "type" => Cow::Borrowed(if z.primary { "Master" } else { "Slave" }),
            "dynamic" => z.dynamic.to_string().into(),
            "authority" => Cow::Borrowed(self.1),
            "dnsserverref" => ObjKey::DnsServer(z.server).to_ref().into(),
            "dnsviewref" => view_ref(z.server).into(),
            "view" => Cow::Borrowed(z.view.as_str()),
            other => {
                return z
                    .properties
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(other))
                    .map(|(_, v)| Cow::Borrowed(v.as_str()))
            }
        })
    }
    fn free_text(&self, term: &str) -> bool {
        let t = term.to_ascii_lowercase();
        self.0.name.contains(t.trim_end_matches('.'))
    }
}

struct RecordFields<'a>(&'a DnsRecord);

impl Fields for RecordFields<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let r = self.0;
        Some(match name.to_ascii_lowercase().as_str() {
            "name" => Cow::Borrowed(r.name.as_str()),
            "type" => Cow::Borrowed(r.rtype.as_str()),
            "ttl" => r.ttl.to_string().into(),
            "data" => Cow::Borrowed(r.data.as_str()),
            "comment" => Cow::Borrowed(r.comment.as_str()),
            "enabled" => r.enabled.to_string().into(),
            "ref" => ObjKey::DnsRecord(r.id).to_ref().into(),
            "dnszoneref" => zone_ref(r.zone).into(),
            _ => return None,
        })
    }
    fn free_text(&self, term: &str) -> bool {
        let t = term.to_ascii_lowercase();
        self.0.name.contains(&t) || self.0.data.to_ascii_lowercase().contains(&t)
    }
}

fn page<T>(list: Vec<T>, offset: u64, limit: u64) -> Vec<T> {
    list.into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect()
}

/// `GET dnsServers`, `GET dnsServers/{ref}`.
pub(crate) async fn servers(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t.obj.clone();
    let all = ctx
        .read_quick(move |v| {
            Ok(match &r {
                Some(r) => {
                    let id = server_id(v, r)?;
                    v.dns_servers().into_iter().filter(|s| s.id == id).collect()
                }
                None => v.dns_servers(),
            })
        })
        .await?;
    let app = &ctx.app;
    if t.obj.is_some() {
        return Ok(Reply::Ok(json!({"dnsServer": server_json(app, &all[0])})));
    }
    let list: Vec<Value> = all.iter().map(|s| server_json(app, s)).collect();
    Ok(Reply::Ok(
        json!({"dnsServers": list, "totalResults": all.len()}),
    ))
}

/// `POST dnsServers/{ref}/synchronize` (ours): reads the server now and applies the
/// differences (the server wins); answers what changed.
pub(crate) async fn synchronize(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a server"))?;
    let s = ctx
        .read_quick(move |v| {
            let id = server_id(v, &r)?;
            require(v, Permission::Modify, None)?;
            Ok(v.dns_servers()
                .into_iter()
                .find(|s| s.id == id)
                .expect("found"))
        })
        .await?;
    let rep = services::sync_dns(&ctx.app, &s, true).await?;
    Ok(Reply::Ok(json!({
        "created": rep.created, "changed": rep.changed, "deleted": rep.deleted
    })))
}

/// `GET dnsViews`, `GET dnsViews/{ref}`: the default view of each server (the agents'
/// drivers manage default views only).
pub(crate) async fn views(ctx: &Ctx, t: &Target) -> ApiResult {
    let servers = ctx.read_quick(|v| Ok(v.dns_servers())).await?;
    let view = |s: &DnsServer| json!({"ref": view_ref(s.id), "name": "", "dnsServerRef": ObjKey::DnsServer(s.id).to_ref(), "authority": s.name});
    if let Some(r) = &t.obj {
        let text = ref_text(r);
        let s = servers
            .iter()
            .find(|s| text == s.id.to_string() || s.name.eq_ignore_ascii_case(&text))
            .ok_or_else(|| ApiError::not_found(format!("dnsViews/{text} does not exist")))?;
        return Ok(Reply::Ok(json!({"dnsView": view(s)})));
    }
    let filter = Filter::parse(&ctx.params.string("filter")?.unwrap_or_default())?;
    struct ViewFields<'a>(&'a DnsServer);
    impl Fields for ViewFields<'_> {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            match name.to_ascii_lowercase().as_str() {
                "name" => Some(Cow::Borrowed("")),
                "authority" => Some(Cow::Borrowed(self.0.name.as_str())),
                _ => None,
            }
        }
        fn free_text(&self, term: &str) -> bool {
            term.is_empty() || self.0.name.eq_ignore_ascii_case(term)
        }
    }
    let list: Vec<Value> = servers
        .iter()
        .filter(|s| filter.matches(&ViewFields(s)))
        .map(view)
        .collect();
    let n = list.len();
    Ok(Reply::Ok(json!({"dnsViews": list, "totalResults": n})))
}

/// `GET/POST dnsZones`, `GET/PUT/DELETE dnsZones/{ref}`.
pub(crate) async fn zones(ctx: &Ctx, t: &Target) -> ApiResult {
    match (t.obj.clone(), ctx.method.as_str()) {
        (None, "POST") => create_zone(ctx).await,
        (None, _) => list_zones(ctx).await,
        (Some(r), "GET") => {
            let (z, s) = ctx
                .read_quick(move |v| {
                    let z = v.dns_zone(zone_id(v, &r)?)?;
                    let s = v.dns_servers().into_iter().find(|s| s.id == z.server);
                    Ok((z, s))
                })
                .await?;
            Ok(Reply::Ok(json!({"dnsZone": zone_json(&z, s.as_ref())})))
        }
        (Some(r), "PUT") => update_zone(ctx, r).await,
        (Some(r), _) => delete_zone(ctx, r).await,
    }
}

async fn list_zones(ctx: &Ctx) -> ApiResult {
    let text = ctx.params.string("filter")?.unwrap_or_default();
    let filter = Filter::parse(&text)?;
    let (offset, limit) = ctx.params.paging(super::ranges::MAX_PAGE)?;
    let server = ctx
        .params
        .string("dnsServerRef")?
        .filter(|s| !s.trim().is_empty());
    let view = ctx
        .params
        .string("dnsViewRef")?
        .filter(|s| !s.trim().is_empty());
    let exact: Option<String> = if filter.is_single_bare_term() {
        filter
            .bare_terms()
            .first()
            .and_then(|t| ipam_engine::absolute_name(t))
    } else {
        None
    };
    ctx.read_quick(move |v| {
        let servers = v.dns_servers();
        let only_server = match &server {
            Some(s) => Some(server_id(v, &ref_of(s, "dnsServers"))?),
            None => None,
        };
        let only_view = match &view {
            Some(s) => {
                let t = s.trim().trim_start_matches("dnsViews/");
                Some(
                    servers
                        .iter()
                        .find(|x| t == x.id.to_string() || x.name.eq_ignore_ascii_case(t))
                        .map(|x| x.id)
                        .ok_or_else(|| not_found(format!("dnsViews/{t}")))?,
                )
            }
            None => None,
        };
        let name_of = |id: Id| {
            servers
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.name.as_str())
                .unwrap_or("")
        };
        let mut list: Vec<DnsZone> = v
            .dns_zones()
            .into_iter()
            .filter(|z| only_server.is_none_or(|s| z.server == s))
            .filter(|z| only_view.is_none_or(|s| z.server == s))
            .filter(|z| filter.matches(&ZoneFields(z, name_of(z.server))))
            .collect();
        // A bare zone name finds that zone first (clients take the first zone answered).
        if let Some(e) = &exact {
            list.sort_by_key(|z| z.name != *e);
        }
        let total = list.len();
        let out: Vec<Value> = page(list, offset, limit)
            .iter()
            .map(|z| zone_json(z, servers.iter().find(|s| s.id == z.server)))
            .collect();
        Ok(json!({"dnsZones": out, "totalResults": total}))
    })
    .await
    .map(Reply::Ok)
}

/// A ref given as a parameter (`dnsServers/3`, `3`, `ns1`; the collection in any case,
/// even repeated).
fn ref_of(s: &str, coll: &str) -> RefArg {
    let mut t = s.trim();
    while t.len() > coll.len() && t[..coll.len() + 1].eq_ignore_ascii_case(&format!("{coll}/")) {
        t = &t[coll.len() + 1..];
    }
    match t.parse::<Id>() {
        Ok(id) => RefArg::Id(id),
        Err(_) => RefArg::Name(t.to_string()),
    }
}

/// `Ok` when the user has `perm` on `key` (`None`: everywhere), else the engine's refusal.
pub(crate) fn require(
    v: &View<'_>,
    perm: Permission,
    key: Option<&ObjKey>,
) -> Result<(), EngineError> {
    if v.can(perm, key) {
        Ok(())
    } else {
        Err(EngineError::AccessDenied {
            user: v.user_name(v.user()).unwrap_or_default(),
            permission: perm,
            object: key.map_or_else(|| "anything".to_string(), ObjKey::to_ref),
        })
    }
}

async fn create_zone(ctx: &Ctx) -> ApiResult {
    let body = ctx
        .params
        .object("dnsZone")?
        .cloned()
        .ok_or_else(|| ApiError::invalid("the body needs a dnsZone object"))?;
    let get = |k: &str| {
        body.iter()
            .find(|(x, _)| x.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let name = get("name")
        .map(|v| as_string("name", v))
        .transpose()?
        .unwrap_or_default();
    let name = ipam_engine::absolute_name(&name)
        .ok_or_else(|| ApiError::invalid(format!("name {name:?} is not a zone name")))?;
    let primary = match get("type")
        .map(|v| as_string("type", v))
        .transpose()?
        .unwrap_or_else(|| "Master".into())
        .to_ascii_lowercase()
        .as_str()
    {
        "master" | "primary" => true,
        "slave" | "secondary" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "type {other:?}: use Master or Slave"
            )))
        }
    };
    let dynamic = get("dynamic")
        .map(|v| as_bool("dynamic", v))
        .transpose()?
        .unwrap_or(false);
    let mut masters = Vec::new();
    if let Some(m) = ctx.params.get("masters").or_else(|| get("masters")) {
        let arr = m
            .as_array()
            .ok_or_else(|| ApiError::invalid("masters must be a list of addresses"))?;
        for x in arr {
            let s = match x {
                Value::Object(o) => o
                    .get("address")
                    .map(|a| as_string("masters", a))
                    .transpose()?
                    .unwrap_or_default(),
                other => as_string("masters", other)?,
            };
            masters.push(super::parse_addr("masters", &s)?);
        }
    }
    let props: Map<String, Value> = match get("customProperties") {
        Some(p) => properties(p)?.into_iter().collect(),
        None => Map::new(),
    };
    let mut custom = std::collections::BTreeMap::new();
    for (k, v) in props {
        custom.insert(k.clone(), super::params::property_text(&k, &v)?);
    }
    let server_ref = get("dnsViewRef")
        .or_else(|| get("dnsServerRef"))
        .or_else(|| get("authority"))
        .map(|v| as_string("dnsViewRef", v))
        .transpose()?
        .filter(|s| !s.trim().is_empty());
    let name2 = name.clone();
    let server = ctx
        .lookup(move |v| {
            let servers = v.dns_servers();
            let s = match &server_ref {
                Some(r) => {
                    let t = r.trim().trim_start_matches("dnsViews/");
                    let t = t.trim_start_matches("dnsServers/");
                    servers
                        .into_iter()
                        .find(|s| t == s.id.to_string() || s.name.eq_ignore_ascii_case(t))
                        .ok_or_else(|| not_found(format!("DNS server or view {r}")))?
                }
                None => match servers.len() {
                    1 => servers.into_iter().next().expect("one"),
                    0 => return Err(invalid("dnsViewRef", "no DNS server is known: connect an agent that manages one")),
                    _ => return Err(invalid("dnsViewRef", "several DNS servers are known: say which with dnsViewRef, dnsServerRef or authority")),
                },
            };
            require(v, Permission::Create, Some(&ObjKey::DnsServer(s.id)))?;
            if v.dns_zones_named(&name2)
                .iter()
                .any(|z| z.server == s.id && z.view.is_empty())
            {
                return Err(EngineError::NameTaken {
                    kind: ipam_engine::ObjType::DnsZone,
                    name: name2,
                });
            }
            Ok(s)
        })
        .await?;
    let _g = ctx.app.services.lock(true, server.id).await;
    let spec = ZoneSpec {
        name: name.clone(),
        view: None,
        zone_type: if primary {
            ZoneType::Primary
        } else {
            ZoneType::Secondary
        },
        dynamic,
        masters: masters.clone(),
    };
    spec.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    ctx.app
        .services
        .dns(&server, DnsOp::CreateZone { zone: spec })
        .await?;
    let zone = DnsZone {
        id: 0,
        server: server.id,
        view: String::new(),
        name: name.clone(),
        primary,
        dynamic,
        masters,
        serial: None,
        properties: custom,
        created: 0,
        last_modified: 0,
    };
    let r = match ctx
        .submit(vec![Command::PutService(ServiceObject::DnsZone(zone))])
        .await
    {
        Ok(r) => r,
        Err(e) => {
            // The model refused what the server took: take it off the server again.
            let _ = ctx
                .app
                .services
                .dns(
                    &server,
                    DnsOp::DeleteZone {
                        zone: name,
                        view: None,
                    },
                )
                .await;
            return Err(e);
        }
    };
    let reference = match r.outcomes.first() {
        Some(Outcome::Created(r)) => r.clone(),
        _ => String::new(),
    };
    // The records the server made for the new zone (NS) are read in now, still under the
    // server's lock.
    if let Some(id) = ObjKey::parse_ref(&reference).and_then(|k| k.id()) {
        let comment = format!(
            "synchronized from DNS server {}: the new zone {name}",
            server.name
        );
        if let Err(e) = services::sync_zone_records(&ctx.app, &server, id, &comment).await {
            tracing::warn!(zone = reference, "reading the new zone back failed: {e}");
        }
    }
    drop(_g);
    Ok(Reply::Created(json!({ "ref": reference })))
}

async fn update_zone(ctx: &Ctx, r: RefArg) -> ApiResult {
    let lookup = move |v: &View<'_>| {
        let z = v.dns_zone(zone_id(v, &r)?)?;
        require(v, Permission::Modify, Some(&ObjKey::DnsZone(z.id)))?;
        Ok(z)
    };
    let server = ctx.lookup(lookup.clone()).await?.server;
    // Under the server's lock, so a synchronization writing the zone's serial cannot undo
    // this change of its properties.
    let _g = ctx.app.services.lock(true, server).await;
    let zone = ctx.lookup(lookup).await?;
    let mut z = zone.clone();
    let mut pairs = match ctx.params.get("properties") {
        Some(p) => properties(p)?,
        None => Vec::new(),
    };
    if let Some(o) = ctx.params.object("dnsZone")? {
        for (k, v) in o {
            if k.eq_ignore_ascii_case("customProperties") {
                pairs.extend(properties(v)?);
            } else {
                pairs.push((k.clone(), v.clone()));
            }
        }
    }
    if ctx.params.bool("deleteUnspecified")?.unwrap_or(false) {
        z.properties.clear();
    }
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "ref" | "name" | "displayname" | "type" | "authority" | "dnsviewref"
            | "dnsviewrefs" | "dnsserverref" | "adintegrated" | "dnssecsigned" | "created"
            | "lastmodified" | "serial" | "masters" | "view" => {
                let now = zone_json(&zone, None);
                let same = now.get(k.as_str()).is_none_or(|cur| {
                    cur == &v || as_string(&k, &v).ok() == cur.as_str().map(str::to_string)
                });
                if !same && k.eq_ignore_ascii_case("name") {
                    return Err(ApiError::invalid(
                        "a zone's name, type, server and masters are the server's: create a new zone instead",
                    ));
                }
            }
            "dynamic" => {
                if as_bool(&k, &v)? != zone.dynamic {
                    return Err(ApiError::invalid(
                        "dynamic is set on the server when the zone is created; it cannot be changed here",
                    ));
                }
            }
            _ => {
                let text = super::params::property_text(&k, &v)?;
                if text.is_empty() {
                    z.properties.remove(&k);
                } else {
                    z.properties.insert(k.clone(), text);
                }
            }
        }
    }
    ctx.submit(vec![Command::PutService(ServiceObject::DnsZone(z))])
        .await?;
    Ok(Reply::NoContent)
}

async fn delete_zone(ctx: &Ctx, r: RefArg) -> ApiResult {
    let lookup = move |v: &View<'_>| {
        let z = v.dns_zone(zone_id(v, &r)?)?;
        require(v, Permission::Delete, Some(&ObjKey::DnsZone(z.id)))?;
        let s = v
            .dns_servers()
            .into_iter()
            .find(|s| s.id == z.server)
            .ok_or_else(|| not_found(format!("the server of zone {}", z.name)))?;
        Ok((z, s))
    };
    let server = ctx.lookup(lookup.clone()).await?.1;
    let _g = ctx.app.services.lock(true, server.id).await;
    let (zone, server) = ctx.lookup(lookup).await?;
    // Already gone from the server: it is removed from the model too.
    let op = DnsOp::DeleteZone {
        zone: zone.name.clone(),
        view: view_of(&zone),
    };
    services::already_gone(ctx.app.services.dns(&server, op).await)?;
    ctx.submit(vec![Command::DeleteService(ObjKey::DnsZone(zone.id))])
        .await?;
    Ok(Reply::NoContent)
}

/// `GET dnsZones/{ref}/dnsRecords`: filter, offset, limit.
pub(crate) async fn zone_records(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a zone"))?;
    let filter = Filter::parse(&ctx.params.string("filter")?.unwrap_or_default())?;
    let (offset, limit) = ctx.params.paging(super::ranges::MAX_PAGE)?;
    ctx.read(move |v| {
        let z = zone_id(v, &r)?;
        let list: Vec<DnsRecord> = v
            .dns_records(z)?
            .into_iter()
            .filter(|r| filter.matches(&RecordFields(r)))
            .collect();
        let total = list.len();
        let out: Vec<Value> = page(list, offset, limit).iter().map(record_json).collect();
        Ok(json!({"dnsRecords": out, "totalResults": total}))
    })
    .await
    .map(Reply::Ok)
}

/// A zone, its server, and the records of one call for it (with their positions).
type ZoneBatch = (DnsZone, DnsServer, Vec<(usize, DnsRecord)>);

/// One record of a request body, before it has a zone's normal form.
struct NewRecord {
    zone: Option<String>,
    name: String,
    rtype: String,
    ttl: Option<u32>,
    data: String,
    comment: String,
    enabled: bool,
}

fn parse_record(o: &Map<String, Value>) -> Result<NewRecord, ApiError> {
    let get = |k: &str| {
        o.iter()
            .find(|(x, _)| x.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let s = |k: &str| -> Result<String, ApiError> {
        Ok(get(k)
            .map(|v| as_string(k, v))
            .transpose()?
            .unwrap_or_default())
    };
    let ttl = match get("ttl") {
        None | Some(Value::Null) => None,
        Some(Value::String(x)) if x.trim().is_empty() => None,
        Some(v) => Some(
            u32::try_from(as_u64("ttl", v)?).map_err(|_| ApiError::invalid("ttl is too large"))?,
        ),
    };
    Ok(NewRecord {
        zone: get("dnsZoneRef")
            .map(|v| as_string("dnsZoneRef", v))
            .transpose()?
            .filter(|z| !z.trim().is_empty()),
        name: s("name")?,
        rtype: s("type")?.trim().to_ascii_uppercase(),
        ttl,
        data: s("data")?,
        comment: s("comment")?,
        enabled: get("enabled")
            .map(|v| as_bool("enabled", v))
            .transpose()?
            .unwrap_or(true),
    })
}

/// Builds the model's record from a request's, in the zone's normal form, checking what
/// the server would refuse.
fn build_record(n: &NewRecord, zone: &DnsZone, ttl: u32) -> Result<DnsRecord, String> {
    if n.rtype.is_empty() {
        return Err("type is missing".into());
    }
    if n.rtype == "SOA" {
        return Err(
            "the SOA record belongs to the server: it is not edited through Central".into(),
        );
    }
    if n.data.trim().is_empty() {
        return Err("data is missing".into());
    }
    let name = if n.name.trim().is_empty() {
        "@".to_string()
    } else if n.name.trim() == "@" {
        "@".into()
    } else {
        let a = n.name.trim().to_ascii_lowercase();
        if a.ends_with('.') && a != zone.name && !a.ends_with(&format!(".{}", zone.name)) {
            return Err(format!(
                "{} is not in the zone {}",
                n.name.trim(),
                zone.name
            ));
        }
        services::relative_name(&a, &zone.name)
    };
    if name != "@" && ipam_engine::absolute_name(&name).is_none() {
        return Err(format!("{name:?} is not a DNS name"));
    }
    let data = services::central_data(&n.rtype, n.data.trim());
    ipam_agent_proto::presentation::check_record_data(
        &n.rtype,
        &services::wire_data(&n.rtype, &data),
    )?;
    Ok(DnsRecord {
        id: 0,
        zone: zone.id,
        name,
        rtype: n.rtype.clone(),
        ttl,
        data,
        comment: n.comment.clone(),
        enabled: n.enabled,
        address: None,
    })
}

fn record_label(n: &NewRecord) -> String {
    format!("{} {} {}", n.name, n.rtype, n.data)
}

/// `POST dnsRecords`: `{"dnsRecords": [...], "dnsZoneRef": ..., "saveComment": ...}` (or
/// one `dnsRecord`). The valid records are created (on the server, then in the model), each
/// zone's in one update; every invalid or refused one gets `unknown/0` in `objRefs` and a
/// message naming it in `errors`.
pub(crate) async fn create_records(ctx: &Ctx) -> ApiResult {
    let single = ctx.params.object("dnsRecord")?.cloned();
    let items: Vec<Map<String, Value>> = match (&single, ctx.params.get("dnsRecords")) {
        (Some(o), _) => vec![o.clone()],
        (None, Some(Value::Array(a))) => a
            .iter()
            .map(|x| {
                x.as_object()
                    .cloned()
                    .ok_or_else(|| ApiError::invalid("each of dnsRecords must be an object"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::invalid(
                "the body needs dnsRecords (a list) or dnsRecord",
            ))
        }
    };
    if items.len() > MAX_RECORDS {
        return Err(ApiError::invalid(format!(
            "{} records in one call; at most {MAX_RECORDS}",
            items.len()
        )));
    }
    let default_zone = ctx
        .params
        .string("dnsZoneRef")?
        .filter(|z| !z.trim().is_empty());
    let parsed: Vec<Result<NewRecord, String>> = items
        .iter()
        .map(|o| parse_record(o).map_err(|e| e.message.clone()))
        .collect();
    // Resolve zones, check permissions and duplicates in one read.
    let zone_refs: Vec<Option<String>> = parsed
        .iter()
        .map(|p| {
            p.as_ref()
                .ok()
                .and_then(|n| n.zone.clone().or_else(|| default_zone.clone()))
        })
        .collect();
    let zones: Vec<Result<(DnsZone, DnsServer), String>> = ctx
        .lookup(move |v| {
            let servers = v.dns_servers();
            let mut zones = Vec::new();
            // Each distinct zone ref is resolved once.
            let mut seen: HashMap<&str, Result<(DnsZone, DnsServer), String>> = HashMap::new();
            for zr in &zone_refs {
                let Some(zr) = zr else {
                    zones.push(Err("dnsZoneRef is missing".to_string()));
                    continue;
                };
                if let Some(known) = seen.get(zr.as_str()) {
                    zones.push(known.clone());
                    continue;
                }
                let r = ref_of(zr, "dnsZones");
                let found = match zone_id(v, &r).and_then(|id| v.dns_zone(id)) {
                    Ok(z) if !v.can(Permission::Create, Some(&ObjKey::DnsZone(z.id))) => {
                        Err(format!(
                            "user {} may not Create records in {} (code 1028)",
                            v.user_name(v.user()).unwrap_or_default(),
                            z.name
                        ))
                    }
                    Ok(z) => {
                        let s = servers
                            .iter()
                            .find(|s| s.id == z.server)
                            .cloned()
                            .ok_or_else(|| not_found(format!("the server of {}", z.name)))?;
                        Ok((z, s))
                    }
                    Err(e) => Err(e.to_string()),
                };
                seen.insert(zr.as_str(), found.clone());
                zones.push(found);
            }
            Ok(zones)
        })
        .await?;
    let n = items.len();
    let mut refs: Vec<String> = vec!["unknown/0".into(); n];
    let mut errors: Vec<Value> = Vec::new();
    // By zone: (zone, server, [(index, record)]).
    let mut groups: Vec<ZoneBatch> = Vec::new();
    let mut in_call: HashSet<(Id, String, String, String)> = HashSet::new();
    for (i, (p, z)) in parsed.iter().zip(zones).enumerate() {
        let fail = |msg: String, label: String| json!({"index": i, "message": format!("record {i} ({label}): {msg}")});
        let nr = match p {
            Ok(nr) => nr,
            Err(e) => {
                errors.push(fail(e.clone(), String::new()));
                continue;
            }
        };
        let (zone, server) = match z {
            Ok(x) => x,
            Err(e) => {
                errors.push(fail(e, record_label(nr)));
                continue;
            }
        };
        let rec = match build_record(nr, &zone, nr.ttl.unwrap_or(DEFAULT_TTL)) {
            Ok(r) => r,
            Err(e) => {
                errors.push(fail(e, record_label(nr)));
                continue;
            }
        };
        let key = (
            zone.id,
            rec.name.clone(),
            rec.rtype.clone(),
            rec.data.clone(),
        );
        if !in_call.insert(key) {
            errors.push(fail(
                "the zone already has this record (given twice in this call)".into(),
                record_label(nr),
            ));
            continue;
        }
        match groups.iter_mut().find(|g| g.0.id == zone.id) {
            Some(g) => g.2.push((i, rec)),
            None => groups.push((zone, server, vec![(i, rec)])),
        }
    }
    for (zone, server, mut recs) in groups {
        let _g = ctx.app.services.lock(true, server.id).await;
        // Records the zone already has, found by content under the server's lock.
        let zid = zone.id;
        let probe: Vec<(String, String, String)> = recs
            .iter()
            .map(|(_, r)| (r.name.clone(), r.rtype.clone(), r.data.clone()))
            .collect();
        let present: Vec<bool> = ctx
            .lookup(move |v| {
                Ok(probe
                    .iter()
                    .map(|(n, t, d)| v.find_dns_record(zid, n, t, d).is_some())
                    .collect())
            })
            .await?;
        let mut flags = present.into_iter();
        recs.retain(|(i, r)| {
            let dup = flags.next().unwrap_or(false);
            if dup {
                errors.push(json!({"index": i, "message": format!(
                    "record {i} ({} {} {}): the zone already has this record", r.name, r.rtype, r.data)}));
            }
            !dup
        });
        if recs.is_empty() {
            continue;
        }
        let adds: Vec<ipam_agent_proto::ResourceRecord> = recs
            .iter()
            .filter(|(_, r)| r.enabled)
            .map(|(_, r)| services::to_wire(r, &zone))
            .collect();
        let mut pushed = 0;
        let mut failed: Option<String> = None;
        for chunk in adds.chunks(services::BATCH) {
            match ctx
                .app
                .services
                .dns(&server, update(&zone, vec![], chunk.to_vec()))
                .await
            {
                Ok(_) => pushed += chunk.len(),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(msg) = failed {
            // Take back what went through, so that the server and the model agree.
            if pushed > 0 {
                let _ = ctx
                    .app
                    .services
                    .dns(&server, undo_adds(&zone, &adds[..pushed]))
                    .await;
            }
            for (i, r) in &recs {
                errors.push(json!({"index": i, "message": format!("record {i} ({} {} {}): {msg}", r.name, r.rtype, r.data)}));
            }
            continue;
        }
        let cmds: Vec<Command> = recs
            .iter()
            .map(|(_, r)| Command::PutService(ServiceObject::DnsRecord(r.clone())))
            .collect();
        match ctx.submit(cmds).await {
            Ok(res) => {
                for ((i, _), o) in recs.iter().zip(res.outcomes) {
                    if let Outcome::Created(r) = o {
                        refs[*i] = r;
                    }
                }
            }
            Err(e) if e.status.is_server_error() => {
                // The model is not taking writes (shutting down, a standby, a failed
                // database): take the records off the server again.
                let _ = ctx.app.services.dns(&server, undo_adds(&zone, &adds)).await;
                for (i, r) in &recs {
                    errors.push(json!({"index": i, "message": format!("record {i} ({} {} {}): {}", r.name, r.rtype, r.data, e.message)}));
                }
            }
            Err(_) => {
                // One record the model refuses: record the others one by one, and take
                // only the refused ones off the server again.
                for (i, r) in &recs {
                    let one = vec![Command::PutService(ServiceObject::DnsRecord(r.clone()))];
                    match ctx.submit(one).await {
                        Ok(res) => {
                            if let Some(Outcome::Created(x)) = res.outcomes.into_iter().next() {
                                refs[*i] = x;
                            }
                        }
                        Err(e) => {
                            if r.enabled {
                                let w = [services::to_wire(r, &zone)];
                                let _ = ctx.app.services.dns(&server, undo_adds(&zone, &w)).await;
                            }
                            errors.push(json!({"index": i, "message": format!("record {i} ({} {} {}): {}", r.name, r.rtype, r.data, e.message)}));
                        }
                    }
                }
            }
        }
    }
    errors.sort_by_key(|e| e["index"].as_u64());
    if single.is_some() {
        return match errors.into_iter().next() {
            Some(e) => Err(ApiError::invalid(
                e["message"].as_str().unwrap_or_default().to_string(),
            )),
            None => Ok(Reply::Created(json!({"ref": refs[0]}))),
        };
    }
    Ok(Reply::Created(json!({"objRefs": refs, "errors": errors})))
}

fn undo_adds(zone: &DnsZone, adds: &[ipam_agent_proto::ResourceRecord]) -> DnsOp {
    update(
        zone,
        adds.iter()
            .map(|a| RecordDelete {
                name: a.name.clone(),
                rtype: a.rtype.clone(),
                data: Some(a.data.clone()),
            })
            .collect(),
        vec![],
    )
}

fn delete_of(r: &DnsRecord, zone: &DnsZone) -> RecordDelete {
    let w = services::to_wire(r, zone);
    RecordDelete {
        name: w.name,
        rtype: w.rtype,
        data: Some(w.data),
    }
}

/// `GET/PUT/DELETE dnsRecords/{ref}`.
pub(crate) async fn record(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = match &t.obj {
        Some(RefArg::Id(id)) => *id,
        other => {
            return Err(ApiError::invalid(format!(
                "a DNS record is named by its id (dnsRecords/12), not {other:?}"
            )))
        }
    };
    if ctx.method == "GET" {
        let rec = ctx.read_quick(move |v| v.dns_record(id)).await?;
        return Ok(Reply::Ok(json!({"dnsRecord": record_json(&rec)})));
    }
    let perm = if ctx.method == "PUT" {
        Permission::Modify
    } else {
        Permission::Delete
    };
    let lookup = move |v: &View<'_>| {
        let r = v.dns_record(id)?;
        require(v, perm, Some(&ObjKey::DnsRecord(id)))?;
        let z = v.dns_zone(r.zone)?;
        let s = v
            .dns_servers()
            .into_iter()
            .find(|s| s.id == z.server)
            .ok_or_else(|| not_found(format!("the DNS server of zone {}", z.name)))?;
        Ok((r, z, s))
    };
    let server = ctx.lookup(lookup).await?.2;
    let _g = ctx.app.services.lock(true, server.id).await;
    // Read again under the lock: a synchronization may have changed it meanwhile.
    let (rec, zone, server) = ctx.lookup(lookup).await?;
    if ctx.method == "DELETE" {
        if rec.enabled {
            ctx.app
                .services
                .dns(&server, update(&zone, vec![delete_of(&rec, &zone)], vec![]))
                .await?;
        }
        if let Err(e) = ctx
            .submit(vec![Command::DeleteService(ObjKey::DnsRecord(id))])
            .await
        {
            if rec.enabled {
                let back = update(&zone, vec![], vec![services::to_wire(&rec, &zone)]);
                let _ = ctx.app.services.dns(&server, back).await;
            }
            return Err(e);
        }
        return Ok(Reply::NoContent);
    }
    // PUT: SetProperties with the record's fields.
    let mut pairs = match ctx.params.get("properties") {
        Some(p) => properties(p)?,
        None => Vec::new(),
    };
    if let Some(o) = ctx.params.object("dnsRecord")? {
        pairs.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut n = NewRecord {
        zone: None,
        name: rec.name.clone(),
        rtype: rec.rtype.clone(),
        ttl: Some(rec.ttl),
        data: rec.data.clone(),
        comment: rec.comment.clone(),
        enabled: rec.enabled,
    };
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "name" => n.name = as_string(&k, &v)?,
            "type" => n.rtype = as_string(&k, &v)?.trim().to_ascii_uppercase(),
            "ttl" => {
                n.ttl = Some(
                    u32::try_from(as_u64(&k, &v)?)
                        .map_err(|_| ApiError::invalid("ttl is too large"))?,
                )
            }
            "data" => n.data = as_string(&k, &v)?,
            "comment" => n.comment = as_string(&k, &v)?,
            "enabled" => n.enabled = as_bool(&k, &v)?,
            "ref" | "dnszoneref" | "aging" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "{other}: a DNS record has name, type, ttl, data, comment and enabled"
                )))
            }
        }
    }
    let mut new = build_record(&n, &zone, n.ttl.unwrap_or(rec.ttl)).map_err(ApiError::invalid)?;
    new.id = rec.id;
    let content_changed = new.name != rec.name || new.rtype != rec.rtype || new.data != rec.data;
    if content_changed {
        let (zid, nm, ty, da) = (
            zone.id,
            new.name.clone(),
            new.rtype.clone(),
            new.data.clone(),
        );
        let dup = ctx
            .lookup(move |v| Ok(v.find_dns_record(zid, &nm, &ty, &da)))
            .await?;
        if dup.is_some_and(|d| d != id) {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                codes::NAME_TAKEN,
                format!(
                    "the zone already has {} {} {} (dnsRecords/{})",
                    new.name,
                    new.rtype,
                    new.data,
                    dup.unwrap_or_default()
                ),
            ));
        }
    }
    let wire_changed = content_changed || new.ttl != rec.ttl || new.enabled != rec.enabled;
    let (deletes, adds) = if wire_changed {
        (
            if rec.enabled {
                vec![delete_of(&rec, &zone)]
            } else {
                vec![]
            },
            if new.enabled {
                vec![services::to_wire(&new, &zone)]
            } else {
                vec![]
            },
        )
    } else {
        (vec![], vec![])
    };
    if wire_changed {
        ctx.app
            .services
            .dns(&server, update(&zone, deletes.clone(), adds.clone()))
            .await?;
    }
    if let Err(e) = ctx
        .submit(vec![Command::PutService(ServiceObject::DnsRecord(new))])
        .await
    {
        // The model refused what the server took: put the server back as it was.
        if wire_changed {
            let back_deletes = adds
                .iter()
                .map(|a| RecordDelete {
                    name: a.name.clone(),
                    rtype: a.rtype.clone(),
                    data: Some(a.data.clone()),
                })
                .collect();
            let back_adds = if rec.enabled {
                vec![services::to_wire(&rec, &zone)]
            } else {
                vec![]
            };
            let _ = ctx
                .app
                .services
                .dns(&server, update(&zone, back_deletes, back_adds))
                .await;
        }
        return Err(e);
    }
    Ok(Reply::NoContent)
}

/// An update of one zone (in its view).
fn update(
    zone: &DnsZone,
    deletes: Vec<RecordDelete>,
    adds: Vec<ipam_agent_proto::ResourceRecord>,
) -> DnsOp {
    DnsOp::UpdateRecords {
        zone: zone.name.clone(),
        view: view_of(zone),
        deletes,
        adds,
    }
}

/// A zone's view as the agents name it (`None`: the default view).
pub(crate) fn view_of(zone: &DnsZone) -> Option<String> {
    (!zone.view.is_empty()).then(|| zone.view.clone())
}

/// The id of a DNS or DHCP object named in a path (for history and access entries).
pub(crate) fn named_id(v: &View<'_>, coll: &str, r: &RefArg) -> Result<Id, EngineError> {
    match coll {
        "dnsZones" => zone_id(v, r),
        "dnsServers" => server_id(v, r),
        "dhcpScopes" => super::dhcp::scope_id(v, r),
        "dhcpServers" => super::dhcp::server_id(v, r),
        _ => match r {
            RefArg::Id(id) => Ok(*id),
            other => Err(not_found(format!("{coll}/{}", ref_text(other)))),
        },
    }
}
