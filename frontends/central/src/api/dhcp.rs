//! DHCP: `dhcpServers`, `dhcpScopes` (with `options`, `dhcpReservations` and `leases`) and
//! `dhcpReservations`.
//!
//! As for DNS, a change goes to the DHCP server through its agent first and is recorded
//! only when the server confirmed it. Leases are the server's: they are read by
//! synchronization and shown on the scope, the range and the address's IPAM record.
use std::borrow::Cow;
use std::net::IpAddr;

use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOp, DhcpOption, HexId, MacAddr, Pool, Reservation, Scope,
};
use ipam_engine::model::{DhcpLease, DhcpReservation, DhcpScope, DhcpServer, Permission};
use ipam_engine::{Command, EngineError, Id, ObjKey, Outcome, ServiceObject, View};
use serde_json::{json, Map, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string};
use super::render::date;
use super::routes::RefArg;
use super::{ApiError, ApiResult, Ctx, Reply, Target};
use crate::services;

use super::dns::{not_found, ref_text, require};

/// The DHCP server a ref names: an id or a name.
pub(crate) fn server_id(v: &View<'_>, r: &RefArg) -> Result<Id, EngineError> {
    let all = v.dhcp_servers();
    let found = match r {
        RefArg::Id(id) => all.iter().find(|s| s.id == *id),
        other => {
            let n = ref_text(other);
            all.iter().find(|s| s.name.eq_ignore_ascii_case(&n))
        }
    };
    found
        .map(|s| s.id)
        .ok_or_else(|| not_found(format!("dhcpServers/{}", ref_text(r))))
}

/// The scope a ref names: an id, its range's CIDR (`192.0.2.0/24`) or `from-to`, or its
/// name.
pub(crate) fn scope_id(v: &View<'_>, r: &RefArg) -> Result<Id, EngineError> {
    if let RefArg::Id(id) = r {
        return v.dhcp_scope(*id).map(|s| s.id);
    }
    let scopes = v.dhcp_scopes();
    let by_range = |from: IpAddr, to: IpAddr| {
        scopes.iter().find(|s| {
            v.range(s.range)
                .is_ok_and(|rv| rv.range.from == from && rv.range.to == to)
        })
    };
    let found = match r {
        RefArg::Cidr(a, l) => {
            let c = Cidr::new(*a, *l).map_err(|e| EngineError::Invalid {
                field: "ref",
                reason: e.to_string(),
            })?;
            let (f, t) = services::cidr_bounds(c);
            by_range(f, t)
        }
        RefArg::FromTo(f, t) => by_range(*f, *t),
        other => {
            let n = ref_text(other);
            scopes.iter().find(|s| s.name.eq_ignore_ascii_case(&n))
        }
    };
    found
        .map(|s| s.id)
        .ok_or_else(|| not_found(format!("dhcpScopes/{}", ref_text(r))))
}

fn server_json(app: &crate::App, s: &DhcpServer) -> Value {
    let (state, message) = super::dns::server_state(app, &s.agent, &s.name);
    json!({
        "ref": ObjKey::DhcpServer(s.id).to_ref(),
        "name": s.name,
        "type": s.kind,
        "agent": s.agent,
        "state": state,
        "message": message,
    })
}

fn scope_json(s: &DhcpScope, range_name: &str) -> Value {
    json!({
        "ref": ObjKey::DhcpScope(s.id).to_ref(),
        "name": s.name,
        "rangeRef": ObjKey::Range(s.range).to_ref(),
        "subnet": range_name,
        "dhcpServerRef": ObjKey::DhcpServer(s.server).to_ref(),
        "description": s.description,
        "enabled": s.enabled,
        "superscope": "",
        "pools": s.pools.iter().map(|(f, t)| json!({"from": f.to_string(), "to": t.to_string()})).collect::<Vec<_>>(),
        "dhcpOptions": options_json(s),
    })
}

fn options_json(s: &DhcpScope) -> Vec<Value> {
    s.options
        .iter()
        .map(|(o, v)| json!({"option": o, "value": v}))
        .collect()
}

pub(crate) fn reservation_json(r: &DhcpReservation) -> Value {
    json!({
        "ref": ObjKey::DhcpReservation(r.id).to_ref(),
        "name": r.name,
        "clientIdentifier": r.client_identifier,
        "reservationMethod": r.method,
        "addresses": r.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "ownerRef": ObjKey::DhcpScope(r.scope).to_ref(),
        "dhcpScopeRef": ObjKey::DhcpScope(r.scope).to_ref(),
    })
}

pub(crate) fn lease_json(l: &DhcpLease) -> Value {
    json!({
        "address": l.addr.to_string(),
        "mac": l.mac,
        "name": l.hostname,
        "state": l.state,
        "leaseExpires": l.expires.map(date).unwrap_or_default(),
        "dhcpScopeRef": ObjKey::DhcpScope(l.scope).to_ref(),
    })
}

struct ScopeFields<'a>(&'a DhcpScope, &'a str);

impl Fields for ScopeFields<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let s = self.0;
        Some(match name.to_ascii_lowercase().as_str() {
            "name" => Cow::Borrowed(s.name.as_str()),
            "description" => Cow::Borrowed(s.description.as_str()),
            "enabled" => s.enabled.to_string().into(),
            "subnet" => Cow::Borrowed(self.1),
            "rangeref" => ObjKey::Range(s.range).to_ref().into(),
            "dhcpserverref" => ObjKey::DhcpServer(s.server).to_ref().into(),
            "ref" => ObjKey::DhcpScope(s.id).to_ref().into(),
            _ => return None,
        })
    }
    fn free_text(&self, term: &str) -> bool {
        let t = term.to_ascii_lowercase();
        self.0.name.to_ascii_lowercase().contains(&t) || self.1.contains(&t)
    }
}

/// `GET dhcpServers`, `GET dhcpServers/{ref}`.
pub(crate) async fn servers(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t.obj.clone();
    let all = ctx
        .read_quick(move |v| {
            Ok(match &r {
                Some(r) => {
                    let id = server_id(v, r)?;
                    v.dhcp_servers()
                        .into_iter()
                        .filter(|s| s.id == id)
                        .collect()
                }
                None => v.dhcp_servers(),
            })
        })
        .await?;
    if t.obj.is_some() {
        return Ok(Reply::Ok(
            json!({"dhcpServer": server_json(&ctx.app, &all[0])}),
        ));
    }
    let list: Vec<Value> = all.iter().map(|s| server_json(&ctx.app, s)).collect();
    Ok(Reply::Ok(
        json!({"dhcpServers": list, "totalResults": all.len()}),
    ))
}

/// `POST dhcpServers/{ref}/synchronize` (ours): reads the server's scopes, reservations and
/// leases now and applies the differences (the server wins).
pub(crate) async fn synchronize(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a server"))?;
    let s = ctx
        .read_quick(move |v| {
            let id = server_id(v, &r)?;
            require(v, Permission::Modify, None)?;
            Ok(v.dhcp_servers()
                .into_iter()
                .find(|s| s.id == id)
                .expect("found"))
        })
        .await?;
    let rep = services::sync_dhcp(&ctx.app, &s).await?;
    Ok(Reply::Ok(json!({
        "created": rep.created, "changed": rep.changed, "deleted": rep.deleted
    })))
}

/// A scope with its range's name and the server it is on.
async fn scope_ctx(
    ctx: &Ctx,
    r: RefArg,
    perm: Permission,
) -> Result<(DhcpScope, Cidr, DhcpServer), ApiError> {
    ctx.lookup(move |v| {
        let s = v.dhcp_scope(scope_id(v, &r)?)?;
        require(v, perm, Some(&ObjKey::DhcpScope(s.id)))?;
        let rv = v.range(s.range)?;
        let len = rv.prefix_len.ok_or_else(|| EngineError::Invalid {
            field: "rangeRef",
            reason: format!("{} is not a subnet", rv.range.name),
        })?;
        let cidr = Cidr::new(rv.range.from, len).map_err(|e| EngineError::Invalid {
            field: "rangeRef",
            reason: e.to_string(),
        })?;
        let server = v
            .dhcp_servers()
            .into_iter()
            .find(|x| x.id == s.server)
            .ok_or_else(|| not_found(format!("the server of scope {}", s.name)))?;
        Ok((s, cidr, server))
    })
    .await
}

/// [`scope_ctx`] read under the server's lock (taken after a first read finds the server),
/// so that a synchronization cannot change the scope between the read and the write.
async fn locked_scope(
    ctx: &Ctx,
    r: RefArg,
    perm: Permission,
) -> Result<
    (
        tokio::sync::OwnedMutexGuard<()>,
        DhcpScope,
        Cidr,
        DhcpServer,
    ),
    ApiError,
> {
    let server = scope_ctx(ctx, r.clone(), perm).await?.2;
    let g = ctx.app.services.lock(false, server.id).await;
    let (s, subnet, server) = scope_ctx(ctx, r, perm).await?;
    Ok((g, s, subnet, server))
}

fn wire_scope(s: &DhcpScope, subnet: Cidr) -> Scope {
    Scope {
        subnet,
        name: (!s.name.is_empty() && s.name != subnet.to_string()).then(|| s.name.clone()),
        pools: s
            .pools
            .iter()
            .map(|(f, t)| Pool { from: *f, to: *t })
            .collect(),
        options: s
            .options
            .iter()
            .map(|(o, v)| DhcpOption {
                code: o.parse().ok(),
                name: o.parse::<u16>().is_err().then(|| o.clone()),
                value: v.clone(),
            })
            .collect(),
        lease_time: None,
    }
}

fn parse_pools(v: &Value) -> Result<Vec<(IpAddr, IpAddr)>, ApiError> {
    let arr = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("pools must be a list of {from, to}"))?;
    arr.iter()
        .map(|p| {
            let get = |k: &str| -> Result<IpAddr, ApiError> {
                let s = p
                    .get(k)
                    .map(|x| as_string(k, x))
                    .transpose()?
                    .ok_or_else(|| ApiError::invalid(format!("a pool needs {k}")))?;
                super::parse_addr(k, &s)
            };
            Ok((get("from")?, get("to")?))
        })
        .collect()
}

fn parse_options(v: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let arr = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("dhcpOptions must be a list of {option, value}"))?;
    arr.iter()
        .map(|o| {
            let name = o
                .get("option")
                .or_else(|| o.get("name"))
                .or_else(|| o.get("code"))
                .map(|x| as_string("option", x))
                .transpose()?
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::invalid("each DHCP option needs option (a name or code)")
                })?;
            let value = o
                .get("value")
                .map(|x| as_string("value", x))
                .transpose()?
                .unwrap_or_default();
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

/// `GET/POST dhcpScopes`, `GET/PUT/DELETE dhcpScopes/{ref}`.
pub(crate) async fn scopes(ctx: &Ctx, t: &Target) -> ApiResult {
    match (t.obj.clone(), ctx.method.as_str()) {
        (None, "POST") => create_scope(ctx).await,
        (None, _) => {
            let filter = Filter::parse(&ctx.params.string("filter")?.unwrap_or_default())?;
            let (offset, limit) = ctx.params.paging(super::ranges::MAX_PAGE)?;
            let server = ctx
                .params
                .string("dhcpServerRef")?
                .filter(|s| !s.trim().is_empty());
            ctx.read_quick(move |v| {
                let only = match &server {
                    Some(s) => {
                        let t = s.trim().trim_start_matches("dhcpServers/");
                        let r = match t.parse::<Id>() {
                            Ok(id) => RefArg::Id(id),
                            Err(_) => RefArg::Name(t.into()),
                        };
                        Some(server_id(v, &r)?)
                    }
                    None => None,
                };
                let mut out = Vec::new();
                let mut total = 0;
                for s in v.dhcp_scopes() {
                    if only.is_some_and(|o| o != s.server) {
                        continue;
                    }
                    let name = v.range(s.range).map(|r| r.range.name).unwrap_or_default();
                    if !filter.matches(&ScopeFields(&s, &name)) {
                        continue;
                    }
                    total += 1;
                    if total > offset && out.len() < limit as usize {
                        out.push(scope_json(&s, &name));
                    }
                }
                Ok(json!({"dhcpScopes": out, "totalResults": total}))
            })
            .await
            .map(Reply::Ok)
        }
        (Some(r), "GET") => ctx
            .read_quick(move |v| {
                let s = v.dhcp_scope(scope_id(v, &r)?)?;
                let name = v.range(s.range).map(|r| r.range.name).unwrap_or_default();
                Ok(json!({"dhcpScope": scope_json(&s, &name)}))
            })
            .await
            .map(Reply::Ok),
        (Some(r), "PUT") => update_scope(ctx, r).await,
        (Some(r), _) => {
            let (_g, s, subnet, server) = locked_scope(ctx, r, Permission::Delete).await?;
            // Every reservation, readable by the user or not, to put back if needed.
            let kept = services::reservations_of(&ctx.app, s.id).await;
            if s.enabled {
                let op = DhcpOp::DeleteScope { subnet };
                services::already_gone(ctx.app.services.dhcp(&server, op).await)?;
            }
            if let Err(e) = ctx
                .submit(vec![Command::DeleteService(ObjKey::DhcpScope(s.id))])
                .await
            {
                if s.enabled {
                    // Put the scope and its reservations back on the server.
                    let back = DhcpOp::CreateScope {
                        scope: wire_scope(&s, subnet),
                    };
                    let _ = ctx.app.services.dhcp(&server, back).await;
                    let _ = push_reservations(ctx, &server, subnet, &kept).await;
                }
                return Err(e);
            }
            Ok(Reply::NoContent)
        }
    }
}

async fn create_scope(ctx: &Ctx) -> ApiResult {
    let body = ctx
        .params
        .object("dhcpScope")?
        .cloned()
        .ok_or_else(|| ApiError::invalid("the body needs a dhcpScope object"))?;
    let get = |k: &str| {
        body.iter()
            .find(|(x, _)| x.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let s = |k: &str| -> Result<String, ApiError> {
        Ok(get(k)
            .map(|v| as_string(k, v))
            .transpose()?
            .unwrap_or_default())
    };
    let range_ref = s("rangeRef")?;
    let server_ref = s("dhcpServerRef")?;
    if range_ref.trim().is_empty() || server_ref.trim().is_empty() {
        return Err(ApiError::invalid(
            "a scope needs rangeRef and dhcpServerRef",
        ));
    }
    let pools = match get("pools") {
        Some(p) => parse_pools(p)?,
        None => Vec::new(),
    };
    let options = match get("dhcpOptions") {
        Some(o) => parse_options(o)?,
        None => Vec::new(),
    };
    let enabled = get("enabled")
        .map(|v| as_bool("enabled", v))
        .transpose()?
        .unwrap_or(true);
    let mut scope = DhcpScope {
        id: 0,
        server: 0,
        range: 0,
        space: 0,
        name: s("name")?.trim().to_string(),
        description: s("description")?,
        enabled,
        pools,
        options,
    };
    let space = super::ranges::space_param(ctx)?;
    let (server, subnet, range) = ctx
        .lookup(move |v| {
            let sr = range_ref.trim().trim_start_matches("ranges/");
            let space = super::ranges::space_id(v, space.as_deref())?;
            let rr = super::routes::ref_arg("ranges", &super::params::segments(sr))
                .ok_or_else(|| not_found(format!("ranges/{sr}")))?;
            let rid = super::ranges::range_id(v, space, &rr)?;
            let rv = v.range(rid)?;
            require(v, Permission::Create, Some(&ObjKey::Range(rid)))?;
            let len = rv.prefix_len.ok_or_else(|| EngineError::Invalid {
                field: "rangeRef",
                reason: format!(
                    "{} is not one CIDR block: a DHCP scope serves a subnet",
                    rv.range.name
                ),
            })?;
            let cidr = Cidr::new(rv.range.from, len).map_err(|e| EngineError::Invalid {
                field: "rangeRef",
                reason: e.to_string(),
            })?;
            let t = server_ref.trim().trim_start_matches("dhcpServers/");
            let r = match t.parse::<Id>() {
                Ok(id) => RefArg::Id(id),
                Err(_) => RefArg::Name(t.into()),
            };
            let sid = server_id(v, &r)?;
            let server = v
                .dhcp_servers()
                .into_iter()
                .find(|s| s.id == sid)
                .expect("found");
            if v.dhcp_scopes()
                .iter()
                .any(|s| s.server == sid && s.range == rid)
            {
                return Err(EngineError::NameTaken {
                    kind: ipam_engine::ObjType::DhcpScope,
                    name: format!("{} on {}", rv.range.name, server.name),
                });
            }
            Ok((server, cidr, rv.range))
        })
        .await?;
    scope.server = server.id;
    scope.range = range.id;
    if scope.name.is_empty() {
        scope.name = range.name.clone();
    }
    let wire = wire_scope(&scope, subnet);
    wire.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let _g = ctx.app.services.lock(false, server.id).await;
    if enabled {
        ctx.app
            .services
            .dhcp(&server, DhcpOp::CreateScope { scope: wire })
            .await?;
    }
    match ctx
        .submit(vec![Command::PutService(ServiceObject::DhcpScope(scope))])
        .await
    {
        Ok(r) => {
            let reference = match r.outcomes.first() {
                Some(Outcome::Created(r)) => r.clone(),
                _ => String::new(),
            };
            Ok(Reply::Created(json!({ "ref": reference })))
        }
        Err(e) => {
            if enabled {
                let _ = ctx
                    .app
                    .services
                    .dhcp(&server, DhcpOp::DeleteScope { subnet })
                    .await;
            }
            Err(e)
        }
    }
}

async fn update_scope(ctx: &Ctx, r: RefArg) -> ApiResult {
    let (_g, old, subnet, server) = locked_scope(ctx, r, Permission::Modify).await?;
    let mut s = old.clone();
    let mut pairs: Vec<(String, Value)> = match ctx.params.get("properties") {
        Some(p) => super::params::properties(p)?,
        None => Vec::new(),
    };
    if let Some(o) = ctx.params.object("dhcpScope")? {
        pairs.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "name" => s.name = as_string(&k, &v)?,
            "description" => s.description = as_string(&k, &v)?,
            "enabled" => s.enabled = as_bool(&k, &v)?,
            "pools" => s.pools = parse_pools(&v)?,
            "dhcpoptions" => s.options = parse_options(&v)?,
            "ref" | "rangeref" | "dhcpserverref" | "subnet" | "superscope" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "{other}: a scope has name, description, enabled, pools and dhcpOptions"
                )))
            }
        }
    }
    let wire = wire_scope(&s, subnet);
    wire.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let before = wire_scope(&old, subnet);
    let (op, back) = match (old.enabled, s.enabled) {
        (false, true) => (
            Some(DhcpOp::CreateScope { scope: wire }),
            Some(DhcpOp::DeleteScope { subnet }),
        ),
        (true, false) => (
            Some(DhcpOp::DeleteScope { subnet }),
            Some(DhcpOp::CreateScope { scope: before }),
        ),
        (true, true) if before != wire => (
            Some(DhcpOp::UpdateScope { scope: wire }),
            Some(DhcpOp::UpdateScope { scope: before }),
        ),
        _ => (None, None),
    };
    // A scope that goes on (or comes back) on the server takes the reservations Central kept.
    let kept = services::reservations_of(&ctx.app, old.id).await;
    if let Some(op) = op {
        ctx.app.services.dhcp(&server, op).await?;
        if !old.enabled && s.enabled {
            if let Err(e) = push_reservations(ctx, &server, subnet, &kept).await {
                let _ = ctx
                    .app
                    .services
                    .dhcp(&server, DhcpOp::DeleteScope { subnet })
                    .await;
                return Err(e);
            }
        }
    }
    if let Err(e) = ctx
        .submit(vec![Command::PutService(ServiceObject::DhcpScope(s))])
        .await
    {
        if let Some(back) = back {
            let recreate = matches!(back, DhcpOp::CreateScope { .. });
            let _ = ctx.app.services.dhcp(&server, back).await;
            if recreate {
                let _ = push_reservations(ctx, &server, subnet, &kept).await;
            }
        }
        return Err(e);
    }
    Ok(Reply::NoContent)
}

/// Refuses a reservation whose client or address another reservation of the scope has
/// (whoever may read that one), before a server is asked.
async fn refuse_conflict(ctx: &Ctx, r: &DhcpReservation) -> Result<(), ApiError> {
    let r = r.clone();
    ctx.lookup(move |v| {
        match v.reservation_conflict(r.scope, &r.client_identifier, &r.addresses, r.id) {
            Some(client) => Err(EngineError::NameTaken {
                kind: ipam_engine::ObjType::DhcpReservation,
                name: format!("a reservation for the client or the address (client {client})"),
            }),
            None => Ok(()),
        }
    })
    .await
}

/// Adds reservations to a scope on the server.
async fn push_reservations(
    ctx: &Ctx,
    server: &DhcpServer,
    subnet: Cidr,
    list: &[DhcpReservation],
) -> Result<(), ApiError> {
    for r in list {
        let op = DhcpOp::AddReservation {
            reservation: wire_reservation(r, subnet)?,
        };
        ctx.app.services.dhcp(server, op).await?;
    }
    Ok(())
}

/// `GET/PUT dhcpScopes/{ref}/options`: `{"dhcpOptions": [{"option": "routers", "value":
/// "192.0.2.1"}]}`; PUT replaces the scope's options.
pub(crate) async fn options(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a scope"))?;
    if ctx.method == "GET" {
        return ctx
            .read_quick(move |v| {
                let s = v.dhcp_scope(scope_id(v, &r)?)?;
                Ok(json!({"dhcpOptions": options_json(&s)}))
            })
            .await
            .map(Reply::Ok);
    }
    let (_g, old, subnet, server) = locked_scope(ctx, r, Permission::Modify).await?;
    let opts = parse_options(
        ctx.params
            .get("dhcpOptions")
            .ok_or_else(|| ApiError::invalid("the body needs dhcpOptions"))?,
    )?;
    let s = DhcpScope {
        options: opts,
        ..old.clone()
    };
    let wire = wire_scope(&s, subnet);
    wire.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if s.enabled {
        ctx.app
            .services
            .dhcp(
                &server,
                DhcpOp::SetOptions {
                    subnet: Some(subnet),
                    options: wire.options,
                },
            )
            .await?;
    }
    let enabled = s.enabled;
    if let Err(e) = ctx
        .submit(vec![Command::PutService(ServiceObject::DhcpScope(s))])
        .await
    {
        if enabled {
            let back = DhcpOp::SetOptions {
                subnet: Some(subnet),
                options: wire_scope(&old, subnet).options,
            };
            let _ = ctx.app.services.dhcp(&server, back).await;
        }
        return Err(e);
    }
    Ok(Reply::NoContent)
}

fn identifier(method: &str, text: &str) -> Result<ClientIdentifier, ApiError> {
    let t = text.trim();
    match method.to_ascii_lowercase().as_str() {
        "" | "hardwareaddress" | "mac" => t
            .parse::<MacAddr>()
            .map(ClientIdentifier::Mac)
            .map_err(|e| ApiError::invalid(format!("clientIdentifier {t:?}: {e}"))),
        "clientidentifier" | "clientid" => t
            .parse::<HexId>()
            .map(ClientIdentifier::ClientId)
            .map_err(|e| ApiError::invalid(format!("clientIdentifier {t:?}: {e}"))),
        other => Err(ApiError::invalid(format!(
            "reservationMethod {other:?}: use HardwareAddress or ClientIdentifier"
        ))),
    }
}

fn wire_reservation(r: &DhcpReservation, subnet: Cidr) -> Result<Reservation, ApiError> {
    Ok(Reservation {
        subnet: Some(subnet),
        identifier: identifier(&r.method, &r.client_identifier)?,
        address: r.addresses[0],
        hostname: (!r.name.is_empty()).then(|| r.name.clone()),
    })
}

/// `GET/POST {owner}/dhcpReservations` (owner: a scope, or a range with a scope).
pub(crate) async fn scope_reservations(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a scope"))?;
    let r = owner_scope(ctx, t.coll, r).await?;
    if ctx.method == "GET" {
        return ctx
            .read_quick(move |v| {
                let s = scope_id(v, &r)?;
                let list: Vec<Value> = v
                    .dhcp_reservations(Some(s))
                    .iter()
                    .map(reservation_json)
                    .collect();
                let n = list.len();
                Ok(json!({"dhcpReservations": list, "totalResults": n}))
            })
            .await
            .map(Reply::Ok);
    }
    let (_g, scope, subnet, server) = locked_scope(ctx, r, Permission::Create).await?;
    let body = ctx
        .params
        .object("dhcpReservation")?
        .cloned()
        .ok_or_else(|| ApiError::invalid("the body needs a dhcpReservation object"))?;
    let res = reservation_from(&body, scope.id, DhcpReservation::default_for(scope.id))?;
    let wire = wire_reservation(&res, subnet)?;
    wire.validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // The engine's checks first (addresses in the scope, no duplicate), so the server is
    // not changed for a reservation the model would refuse.
    refuse_conflict(ctx, &res).await?;
    if scope.enabled {
        ctx.app
            .services
            .dhcp(
                &server,
                DhcpOp::AddReservation {
                    reservation: wire.clone(),
                },
            )
            .await?;
    }
    match ctx
        .submit(vec![Command::PutService(ServiceObject::DhcpReservation(
            res,
        ))])
        .await
    {
        Ok(r) => {
            let reference = match r.outcomes.first() {
                Some(Outcome::Created(r)) => r.clone(),
                _ => String::new(),
            };
            Ok(Reply::Created(json!({ "ref": reference })))
        }
        Err(e) => {
            if scope.enabled {
                let _ = ctx
                    .app
                    .services
                    .dhcp(
                        &server,
                        DhcpOp::DeleteReservation {
                            subnet: Some(subnet),
                            identifier: wire.identifier,
                        },
                    )
                    .await;
            }
            Err(e)
        }
    }
}

/// The scope a reservation or lease owner names (`ranges/{ref}`: that range's scope).
async fn owner_scope(ctx: &Ctx, coll: &str, r: RefArg) -> Result<RefArg, ApiError> {
    if coll != "ranges" {
        return Ok(r);
    }
    let space = super::ranges::space_param(ctx)?;
    let id = ctx
        .lookup(move |v| {
            let s = super::ranges::space_id(v, space.as_deref())?;
            let rid = super::ranges::range_id(v, s, &r)?;
            v.dhcp_scopes()
                .into_iter()
                .find(|x| x.range == rid)
                .map(|x| x.id)
                .ok_or_else(|| not_found(format!("a DHCP scope on ranges/{rid}")))
        })
        .await?;
    Ok(RefArg::Id(id))
}

trait DefaultFor {
    fn default_for(scope: Id) -> Self;
}

impl DefaultFor for DhcpReservation {
    fn default_for(scope: Id) -> DhcpReservation {
        DhcpReservation {
            id: 0,
            scope,
            space: 0,
            name: String::new(),
            client_identifier: String::new(),
            method: "HardwareAddress".into(),
            addresses: Vec::new(),
        }
    }
}

fn reservation_from(
    o: &Map<String, Value>,
    scope: Id,
    mut r: DhcpReservation,
) -> Result<DhcpReservation, ApiError> {
    r.scope = scope;
    for (k, v) in o {
        match k.to_ascii_lowercase().as_str() {
            "name" => r.name = as_string(k, v)?.trim().to_string(),
            "clientidentifier" => r.client_identifier = as_string(k, v)?,
            "reservationmethod" => r.method = as_string(k, v)?,
            "addresses" => {
                let arr = v
                    .as_array()
                    .ok_or_else(|| ApiError::invalid("addresses must be a list"))?;
                r.addresses = arr
                    .iter()
                    .map(|a| super::parse_addr("addresses", &as_string("addresses", a)?))
                    .collect::<Result<_, _>>()?;
            }
            "ref" | "ownerref" | "dhcpscoperef" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "{other}: a reservation has name, clientIdentifier, reservationMethod and addresses"
                )))
            }
        }
    }
    let id = identifier(&r.method, &r.client_identifier)?;
    r.method = services::identifier_method(&id).into();
    r.client_identifier = services::identifier_text(&id);
    if r.addresses.len() != 1 {
        return Err(ApiError::invalid(format!(
            "addresses: give exactly one address ({} given); the DHCP servers reserve one address per client",
            r.addresses.len()
        )));
    }
    Ok(r)
}

/// `GET/PUT/DELETE dhcpReservations/{ref}`.
pub(crate) async fn reservation(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = match &t.obj {
        Some(RefArg::Id(id)) => *id,
        other => {
            return Err(ApiError::invalid(format!(
                "a reservation is named by its id (dhcpReservations/12), not {other:?}"
            )))
        }
    };
    if ctx.method == "GET" {
        return ctx
            .read_quick(move |v| {
                Ok(json!({"dhcpReservation": reservation_json(&v.dhcp_reservation(id)?)}))
            })
            .await
            .map(Reply::Ok);
    }
    let perm = if ctx.method == "PUT" {
        Permission::Modify
    } else {
        Permission::Delete
    };
    let lookup = move |v: &View<'_>| {
        let r = v.dhcp_reservation(id)?;
        require(v, perm, Some(&ObjKey::DhcpReservation(id)))?;
        Ok(r)
    };
    let first = ctx.lookup(lookup).await?;
    let (_g, scope, subnet, server) =
        locked_scope(ctx, RefArg::Id(first.scope), Permission::Read).await?;
    // Read again under the lock: a synchronization may have changed it meanwhile.
    let old = ctx.lookup(lookup).await?;
    let old_wire = wire_reservation(&old, subnet)?;
    if ctx.method == "DELETE" {
        if scope.enabled {
            let op = DhcpOp::DeleteReservation {
                subnet: Some(subnet),
                identifier: old_wire.identifier.clone(),
            };
            services::already_gone(ctx.app.services.dhcp(&server, op).await)?;
        }
        if let Err(e) = ctx
            .submit(vec![Command::DeleteService(ObjKey::DhcpReservation(id))])
            .await
        {
            if scope.enabled {
                let back = DhcpOp::AddReservation {
                    reservation: old_wire,
                };
                let _ = ctx.app.services.dhcp(&server, back).await;
            }
            return Err(e);
        }
        return Ok(Reply::NoContent);
    }
    let mut body: Map<String, Value> = match ctx.params.get("properties") {
        Some(p) => super::params::properties(p)?.into_iter().collect(),
        None => Map::new(),
    };
    if let Some(o) = ctx.params.object("dhcpReservation")? {
        body.extend(o.clone());
    }
    let new = reservation_from(&body, old.scope, old.clone())?;
    let new_wire = wire_reservation(&new, subnet)?;
    new_wire
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // The model's checks first (addresses in the scope, no other reservation of the client
    // or the address), so the server is not changed for what the model would refuse.
    refuse_conflict(ctx, &new).await?;
    let swap = scope.enabled && new_wire != old_wire;
    let del = |w: &Reservation| DhcpOp::DeleteReservation {
        subnet: Some(subnet),
        identifier: w.identifier.clone(),
    };
    let add = |w: &Reservation| DhcpOp::AddReservation {
        reservation: w.clone(),
    };
    if swap {
        ctx.app.services.dhcp(&server, del(&old_wire)).await?;
        if let Err(e) = ctx.app.services.dhcp(&server, add(&new_wire)).await {
            let _ = ctx.app.services.dhcp(&server, add(&old_wire)).await;
            return Err(e.into());
        }
    }
    if let Err(e) = ctx
        .submit(vec![Command::PutService(ServiceObject::DhcpReservation(
            new,
        ))])
        .await
    {
        if swap {
            let _ = ctx.app.services.dhcp(&server, del(&new_wire)).await;
            let _ = ctx.app.services.dhcp(&server, add(&old_wire)).await;
        }
        return Err(e);
    }
    Ok(Reply::NoContent)
}

/// `GET dhcpScopes/{ref}/leases`, `GET ranges/{ref}/leases`: the leases last read from the
/// server (`POST dhcpServers/{ref}/synchronize` reads them now).
pub(crate) async fn leases(ctx: &Ctx, t: &Target) -> ApiResult {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a scope or a range"))?;
    let r = owner_scope(ctx, t.coll, r).await?;
    let (offset, limit) = ctx.params.paging(super::ranges::MAX_PAGE)?;
    ctx.read(move |v| {
        let s = scope_id(v, &r)?;
        let all = v.dhcp_leases(s);
        let total = all.len();
        let list: Vec<Value> = all
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(lease_json)
            .collect();
        Ok(json!({"dhcpLeases": list, "totalResults": total}))
    })
    .await
    .map(Reply::Ok)
}
