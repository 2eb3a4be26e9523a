//! Sessions, system information, history, access, custom property definitions, folders,
//! address spaces, users, groups, roles and memberships.
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ipam_engine::model::{AccessEntry, Permission, Principal, PropertyDefinition, PropertyType};
use ipam_engine::{
    Command, EngineError, HistoryQuery, Id, Membership, ObjKey, ObjType, Outcome,
    PropertyDefinitionSpec, UserSpec, View,
};
use serde_json::{json, Map, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string, properties, Params};
use super::ranges::{range_id, space_id, space_param};
use super::routes::RefArg;
use super::{render, ApiError, ApiResult, Ctx, Reply, Target};
use crate::App;

/// `POST micetro/sessions`: answers 201 `{"session": token}`.
pub(crate) async fn login(app: &Arc<App>, p: &Params, ip: std::net::IpAddr) -> ApiResult {
    let name = p
        .string("loginName")?
        .or(p.string("username")?)
        .ok_or_else(|| ApiError::invalid("loginName is required"))?;
    let password = p.string("password")?.unwrap_or_default();
    let (id, canonical) = super::check_password(app, &name, &password, ip).await?;
    let token = app.auth.open(id, &canonical);
    app.metrics.sessions.fetch_add(1, Relaxed);
    tracing::info!(user = canonical, "session opened");
    Ok(Reply::Created(json!({ "session": token })))
}

/// `DELETE micetro/sessions[/{token}]`.
pub(crate) async fn logout(ctx: &Ctx, t: &Target) -> ApiResult {
    let token = match &t.sub_ref {
        Some(RefArg::Name(tok)) => {
            match ctx.app.auth.session(tok) {
                Some(s) if s.user == ctx.user => {}
                _ => return Err(ApiError::not_found("no such session of yours")),
            }
            tok.clone()
        }
        _ => ctx.token.clone().ok_or_else(|| {
            ApiError::invalid("log out needs a session (Bearer), not Basic credentials")
        })?,
    };
    ctx.app.auth.close(&token);
    Ok(Reply::NoContent)
}

/// `GET micetro`.
pub(crate) async fn system_info(ctx: &Ctx) -> ApiResult {
    let e = ctx.app.engine.stats();
    // What the caller may do everywhere (roles); per-object access lists refine it, and the
    // engine checks every call. The UI hides what is not listed here.
    let permissions: Vec<String> = ctx
        .read_quick(|v| {
            Ok(ipam_engine::model::Permission::ALL
                .iter()
                .filter(|p| v.can(**p, None))
                .map(|p| p.to_string())
                .collect())
        })
        .await?;
    Ok(Reply::Ok(json!({"micetro": {
        "permissions": permissions,
        "userRef": ipam_engine::ObjKey::User(ctx.user).to_ref(),
        "product": "ipam",
        "version": env!("CARGO_PKG_VERSION"),
        "apiVersion": "2.0",
        "database": ctx.app.database,
        "committedSequence": e.committed_seq,
        "uptimeSeconds": ctx.app.uptime().as_secs(),
        "user": ctx.user_name,
        "agents": ctx.app.services.agents().into_iter().map(|(address, state)| json!({
            "address": address,
            "state": if state.is_ok() { "Connected" } else { "Disconnected" },
            "message": state.err().unwrap_or_default(),
        })).collect::<Vec<_>>(),
    }})))
}

/// The id of a user, group, role, folder or address space named by id or name.
fn named_id(v: &View<'_>, coll: &str, r: &RefArg) -> Result<Id, EngineError> {
    let name = match r {
        RefArg::Id(id) => return Ok(*id),
        RefArg::Name(n) => n.clone(),
        RefArg::Addr(_, a) => a.to_string(),
        RefArg::Cidr(a, l) => format!("{a}/{l}"),
        RefArg::FromTo(a, b) => format!("{a}-{b}"),
    };
    let found = match coll {
        "users" => v
            .users()
            .into_iter()
            .find(|u| u.name.eq_ignore_ascii_case(&name))
            .map(|u| u.id),
        "groups" => v
            .groups()
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(&name))
            .map(|g| g.id),
        "roles" => v
            .roles()
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(&name))
            .map(|r| r.id),
        "folders" => v
            .folders()
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case(&name))
            .map(|f| f.id),
        "addressSpaces" => v
            .spaces()
            .into_iter()
            .find(|s| s.name.eq_ignore_ascii_case(&name))
            .map(|s| s.id),
        _ => None,
    };
    found.ok_or_else(|| EngineError::NotFound(format!("{coll}/{name}")))
}

fn obj_type(coll: &str) -> ObjType {
    match coll {
        "ranges" => ObjType::Range,
        "ipamRecords" => ObjType::IpamRecord,
        "addressSpaces" => ObjType::AddressSpace,
        "folders" => ObjType::Folder,
        "users" => ObjType::User,
        "groups" => ObjType::Group,
        "dnsZones" => ObjType::DnsZone,
        "dnsRecords" => ObjType::DnsRecord,
        "dnsServers" => ObjType::DnsServer,
        "dhcpScopes" => ObjType::DhcpScope,
        "dhcpReservations" => ObjType::DhcpReservation,
        "dhcpServers" => ObjType::DhcpServer,
        _ => ObjType::Role,
    }
}

/// The key of the path's object.
async fn object_key(ctx: &Ctx, t: &Target) -> Result<ObjKey, ApiError> {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs an object ref"))?;
    let coll = t.coll;
    let space = space_param(ctx)?;
    ctx.lookup(move |v| {
        Ok(match coll {
            "ranges" => {
                let s = space_id(v, space.as_deref())?;
                ObjKey::Range(range_id(v, s, &r)?)
            }
            "ipamRecords" => match r {
                RefArg::Addr(sp, addr) => {
                    let s = match sp {
                        Some(s) => s,
                        None => space_id(v, space.as_deref())?,
                    };
                    ObjKey::IpamRecord { space: s, addr }
                }
                other => return Err(EngineError::NotFound(format!("ipamRecords/{other:?}"))),
            },
            c @ ("dnsZones" | "dnsRecords" | "dnsServers" | "dhcpScopes" | "dhcpReservations"
            | "dhcpServers") => {
                let id = super::dns::named_id(v, c, &r)?;
                ObjKey::of(obj_type(c), id).expect("object collections have keys")
            }
            c => {
                let id = named_id(v, c, &r)?;
                ObjKey::of(obj_type(c), id).expect("object collections have keys")
            }
        })
    })
    .await
}

/// `GET {type}/{ref}/history`: newest first, `offset`/`limit`, `since`/`until` (ms), `user`.
pub(crate) async fn history(ctx: &Ctx, t: &Target) -> ApiResult {
    let key = object_key(ctx, t).await?;
    changes_of(ctx, Some(key)).await
}

/// `GET changes` (ours): the whole change history (administrators), newest first, with the
/// filters `objectRef` (`ranges/12`, `ipamRecords/10.0.0.7`, `users/alice`), `user` (name or
/// ref), `since`/`until` (ms since the epoch), `offset` and `limit`.
pub(crate) async fn changes(ctx: &Ctx) -> ApiResult {
    let key = match ctx
        .params
        .string("objectRef")?
        .filter(|s| !s.trim().is_empty())
    {
        Some(r) => {
            let segs = super::params::segments(r.trim());
            use super::routes::Route as R;
            let t = super::routes::resolve(&segs)
                .ok()
                .filter(|t| {
                    matches!(
                        t.route,
                        R::Range | R::Record | R::Space | R::Folder | R::User | R::Group | R::Role
                    )
                })
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "objectRef {r:?}: expected a collection and a ref, as ranges/12 or ipamRecords/10.0.0.7"
                    ))
                })?;
            Some(object_key(ctx, &t).await?)
        }
        None => None,
    };
    changes_of(ctx, key).await
}

async fn changes_of(ctx: &Ctx, key: Option<ObjKey>) -> ApiResult {
    let (offset, limit) = ctx.params.paging(10_000)?;
    let user_id = match ctx.params.string("user")?.filter(|s| !s.trim().is_empty()) {
        Some(u) => {
            let name = u.trim().trim_start_matches("users/").to_string();
            let r = match name.parse::<Id>() {
                Ok(id) => RefArg::Id(id),
                Err(_) => RefArg::Name(name),
            };
            Some(ctx.lookup(move |v| named_id(v, "users", &r)).await?)
        }
        None => None,
    };
    let q = HistoryQuery {
        key,
        user_id,
        since: millis(ctx, "since")?,
        until: millis(ctx, "until")?,
        offset,
        limit: if ctx.params.get("limit").is_some() {
            limit.max(1)
        } else {
            100
        },
    };
    let app = ctx.app.clone();
    let user = ctx.user;
    let (changes, total) = tokio::task::spawn_blocking(move || app.engine.history(user, &q))
        .await
        .map_err(super::join_error)??;
    let events: Vec<Value> = changes.iter().map(render::event).collect();
    Ok(Reply::Ok(json!({"events": events, "totalResults": total})))
}

/// A time in milliseconds since the epoch; past the engine's range (`i64::MAX`, some 292
/// million years) it is refused rather than wrapped into a negative time.
fn millis(ctx: &Ctx, key: &str) -> Result<Option<i64>, ApiError> {
    ctx.params
        .u64(key)?
        .map(|ms| {
            i64::try_from(ms).map_err(|_| {
                ApiError::invalid(format!(
                    "{key} {ms} is out of range: milliseconds since the epoch, at most {}",
                    i64::MAX
                ))
            })
        })
        .transpose()
}

fn parse_permissions(v: Option<&Value>) -> Result<BTreeSet<Permission>, ApiError> {
    let mut out = BTreeSet::new();
    let Some(v) = v else { return Ok(out) };
    let list = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("permissions must be a list of names"))?;
    for p in list {
        let s = p.as_str().unwrap_or_default();
        let perm = Permission::ALL
            .into_iter()
            .find(|x| x.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown permission {p}; known: Read, Modify, Create, Delete, Allocate, Administer"
                ))
            })?;
        out.insert(perm);
    }
    Ok(out)
}

/// `GET/PUT {type}/{ref}/access`.
pub(crate) async fn access(ctx: &Ctx, t: &Target) -> ApiResult {
    let key = object_key(ctx, t).await?;
    let (ot, id) = match (key.obj_type(), key.id()) {
        (t, Some(id)) => (t, id),
        _ => return Err(ApiError::invalid(
            "access entries are kept on ranges, address spaces, folders, users, groups and roles",
        )),
    };
    if ctx.method == "GET" {
        return ctx
            .read(move |v| {
                let list = v.access(ot, id)?;
                let users = v.users();
                let groups = v.groups();
                let roles = v.roles();
                let entries: Vec<Value> = list
                    .map(|l| l.entries)
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let (k, name) = match e.principal {
                            Principal::User(i) => (
                                ObjKey::User(i),
                                users.iter().find(|u| u.id == i).map(|u| u.name.clone()),
                            ),
                            Principal::Group(i) => (
                                ObjKey::Group(i),
                                groups.iter().find(|g| g.id == i).map(|g| g.name.clone()),
                            ),
                            Principal::Role(i) => (
                                ObjKey::Role(i),
                                roles.iter().find(|r| r.id == i).map(|r| r.name.clone()),
                            ),
                        };
                        json!({
                            "identity": render::member(&k, &name.unwrap_or_default()),
                            "allow": e.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
                            "deny": e.deny.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Ok(json!({"accessEntries": entries}))
            })
            .await
            .map(Reply::Ok);
    }
    let list = ctx
        .params
        .get("accessEntries")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            ApiError::invalid("PUT access needs accessEntries: [{identityRef, allow, deny}]")
        })?;
    let mut entries = Vec::new();
    for e in &list {
        let r = e
            .get("identityRef")
            .or_else(|| e.get("identity").and_then(|i| i.get("ref")))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::invalid(
                    "each access entry needs identityRef (users/N, groups/N or roles/N)",
                )
            })?;
        let principal = match ObjKey::parse_ref(r) {
            Some(ObjKey::User(i)) => Principal::User(i),
            Some(ObjKey::Group(i)) => Principal::Group(i),
            Some(ObjKey::Role(i)) => Principal::Role(i),
            _ => {
                return Err(ApiError::invalid(format!(
                    "identityRef {r:?} is not users/N, groups/N or roles/N"
                )))
            }
        };
        entries.push(AccessEntry {
            principal,
            allow: parse_permissions(e.get("allow"))?,
            deny: parse_permissions(e.get("deny"))?,
        });
    }
    ctx.submit(vec![Command::SetAccess {
        obj_type: ot,
        obj_id: id,
        entries,
    }])
    .await?;
    Ok(Reply::NoContent)
}

fn prop_type(s: &str) -> Result<PropertyType, ApiError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "string" | "text" => PropertyType::String,
        "integer" | "int" => PropertyType::Integer,
        "boolean" | "bool" => PropertyType::Boolean,
        "ipaddress" => PropertyType::IpAddress,
        "hexstr" => PropertyType::HexStr,
        "iporhostname" => PropertyType::IpOrHostname,
        _ => {
            return Err(ApiError::invalid(format!(
            "property type {s:?}: use String, Integer, Boolean, IPAddress, HexStr or IPOrHostname"
        )))
        }
    })
}

fn definition_spec(
    o: &Map<String, Value>,
    ot: ObjType,
    base: Option<&PropertyDefinition>,
) -> Result<PropertyDefinitionSpec, ApiError> {
    let get = |k: &str| {
        o.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    };
    const KNOWN: [&str; 11] = [
        "name",
        "type",
        "defaultValue",
        "mandatory",
        "readOnly",
        "system",
        "multiLine",
        "listItems",
        "ref",
        "cloudTags",
        "parentProperty",
    ];
    if let Some(k) = o
        .keys()
        .find(|k| !KNOWN.iter().any(|n| n.eq_ignore_ascii_case(k)))
    {
        return Err(ApiError::invalid(format!(
            "unknown field {k:?} in propertyDefinition"
        )));
    }
    let name = match get("name") {
        Some(v) => as_string("name", v)?,
        None => base
            .map(|b| b.name.clone())
            .ok_or_else(|| ApiError::invalid("a property definition needs a name"))?,
    };
    let kind = match get("type") {
        Some(v) => prop_type(&as_string("type", v)?)?,
        None => base.map_or(PropertyType::String, |b| b.kind),
    };
    let flag =
        |k: &str, d: bool| -> Result<bool, ApiError> { get(k).map_or(Ok(d), |v| as_bool(k, v)) };
    let default = match get("defaultValue") {
        Some(v) => Some(super::params::property_text("defaultValue", v)?).filter(|s| !s.is_empty()),
        None => base.and_then(|b| b.default.clone()),
    };
    Ok(PropertyDefinitionSpec {
        obj_type: ot,
        name,
        kind,
        mandatory: flag("mandatory", base.is_some_and(|b| b.mandatory))?,
        default,
        read_only: flag("readOnly", base.is_some_and(|b| b.read_only))?,
    })
}

/// `{type}/propertyDefinitions[/{name}]`.
pub(crate) async fn property_definitions(ctx: &Ctx, t: &Target) -> ApiResult {
    let ot = match t.coll {
        "ranges" => ObjType::Range,
        "ipamRecords" => ObjType::IpamRecord,
        c => {
            return Err(ApiError::invalid(format!(
                "{c} have no custom properties here; ranges and ipamRecords do"
            )))
        }
    };
    if t.obj.is_some() {
        object_key(ctx, t).await?;
    }
    let defs = ctx.read(move |v| Ok(v.property_definitions(ot))).await?;
    let name = match &t.sub_ref {
        Some(RefArg::Name(n)) => Some(n.clone()),
        _ => None,
    };
    let Some(name) = name else {
        if ctx.method == "GET" {
            let list: Vec<Value> = defs.iter().map(render::property_definition).collect();
            return Ok(Reply::Ok(
                json!({"propertyDefinitions": list, "totalResults": defs.len()}),
            ));
        }
        let o = ctx
            .params
            .object("propertyDefinition")?
            .ok_or_else(|| ApiError::invalid("the body needs a \"propertyDefinition\" object"))?;
        let spec = definition_spec(o, ot, None)?;
        let r = ctx
            .submit(vec![Command::CreatePropertyDefinition(spec)])
            .await?;
        return match r.outcomes.first() {
            Some(Outcome::Created(r)) => Ok(Reply::Created(json!({"ref": r}))),
            _ => Ok(Reply::Created(json!({}))),
        };
    };
    let d = defs
        .iter()
        .find(|d| {
            d.name.eq_ignore_ascii_case(&name) || ObjKey::PropertyDefinition(d.id).to_ref() == name
        })
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "property definition {name:?} of {ot} does not exist"
            ))
        })?;
    match ctx.method.as_str() {
        "GET" => Ok(Reply::Ok(
            json!({"propertyDefinition": render::property_definition(&d)}),
        )),
        "PUT" => {
            let o = ctx
                .params
                .object("propertyDefinition")?
                .or(ctx.params.object("properties")?)
                .ok_or_else(|| {
                    ApiError::invalid("the body needs a \"propertyDefinition\" object")
                })?;
            let spec = definition_spec(o, ot, Some(&d))?;
            ctx.submit(vec![Command::UpdatePropertyDefinition { id: d.id, spec }])
                .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeletePropertyDefinition { id: d.id }])
                .await?;
            Ok(Reply::NoContent)
        }
    }
}

struct JsonFields<'a>(&'a Value);

impl Fields for JsonFields<'_> {
    fn field(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let o = self.0.as_object()?;
        let v = o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)?;
        match v {
            Value::String(s) => Some(s.as_str().into()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string().into()),
            _ => None,
        }
    }
    fn free_text(&self, term: &str) -> bool {
        self.0["name"]
            .as_str()
            .is_some_and(|n| n.to_ascii_lowercase().contains(&term.to_ascii_lowercase()))
    }
}

/// A filtered, sorted, paged list answer under `key`.
fn list_answer(ctx: &Ctx, key: &str, items: Vec<Value>) -> ApiResult {
    let filter = Filter::parse(&ctx.params.string("filter")?.unwrap_or_default())?;
    let (offset, limit) = ctx.params.paging(super::ranges::MAX_PAGE)?;
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|v| filter.matches(&JsonFields(v)))
        .collect();
    if let Some(by) = ctx.params.string("sortBy")?.filter(|s| !s.is_empty()) {
        items.sort_by(|a, b| {
            let f = |v: &Value| JsonFields(v).field(&by).map(|c| c.to_ascii_lowercase());
            f(a).cmp(&f(b))
        });
    }
    if super::ranges::descending(ctx)? {
        items.reverse();
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Reply::Ok(json!({ key: page, "totalResults": total })))
}

/// The object in a create or update body: `{"user": {...}}`, or `properties` (map or list).
fn body_object(ctx: &Ctx, singular: &str) -> Result<Map<String, Value>, ApiError> {
    if let Some(o) = ctx.params.object(singular)? {
        return Ok(o.clone());
    }
    if let Some(p) = ctx.params.get("properties") {
        return Ok(properties(p)?.into_iter().collect());
    }
    Err(ApiError::invalid(format!(
        "the body needs a \"{singular}\" object (or \"properties\")"
    )))
}

fn check_known(o: &Map<String, Value>, what: &str, known: &[&str]) -> Result<(), ApiError> {
    const IGNORED: [&str; 9] = [
        "ref",
        "groups",
        "roles",
        "users",
        "groupMembers",
        "builtIn",
        "adIntegrated",
        "authenticationType",
        "objType",
    ];
    for k in o.keys() {
        if !known
            .iter()
            .chain(IGNORED.iter())
            .any(|n| n.eq_ignore_ascii_case(k))
        {
            return Err(ApiError::invalid(format!(
                "unknown field {k:?} in {what}; known: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn opt_str(o: &Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    o.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(k))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
        .map(|v| as_string(k, v))
        .transpose()
}

fn created(r: &ipam_engine::TxnResult) -> ApiResult {
    match r.outcomes.first() {
        Some(Outcome::Created(r)) => Ok(Reply::Created(json!({ "ref": r }))),
        other => Err(ApiError::invalid(format!("unexpected outcome {other:?}"))),
    }
}

async fn resolve_named(ctx: &Ctx, coll: &'static str, r: &RefArg) -> Result<Id, ApiError> {
    let r = r.clone();
    ctx.lookup(move |v| {
        let id = named_id(v, coll, &r)?;
        // Existence and read access.
        let exists = match coll {
            "users" => v.users().iter().any(|u| u.id == id),
            "groups" => v.groups().iter().any(|g| g.id == id),
            "roles" => v.roles().iter().any(|x| x.id == id),
            "folders" => v.folders().iter().any(|f| f.id == id),
            _ => v.spaces().iter().any(|s| s.id == id),
        };
        if exists {
            Ok(id)
        } else {
            Err(EngineError::NotFound(format!("{coll}/{id}")))
        }
    })
    .await
}

/// `folders` and `folders/{ref}`.
pub(crate) async fn folders(ctx: &Ctx, t: &Target) -> ApiResult {
    let parent_of = |o: &Map<String, Value>| -> Result<Option<Option<Id>>, ApiError> {
        match opt_str(o, "parentRef")? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(Some(None)),
            Some(s) => {
                let tail = s.rsplit('/').next().unwrap_or(&s);
                Ok(Some(Some(tail.parse().map_err(|_| {
                    ApiError::invalid(format!("parentRef {s:?} is not a folder ref"))
                })?)))
            }
        }
    };
    let Some(r) = &t.obj else {
        if ctx.method == "GET" {
            let items = ctx
                .read(|v| Ok(v.folders().iter().map(render::folder).collect()))
                .await?;
            return list_answer(ctx, "folders", items);
        }
        let o = body_object(ctx, "folder")?;
        check_known(&o, "folder", &["name", "parentRef"])?;
        let name =
            opt_str(&o, "name")?.ok_or_else(|| ApiError::invalid("a folder needs a name"))?;
        let r = ctx
            .submit(vec![Command::CreateFolder {
                name,
                parent: parent_of(&o)?.flatten(),
            }])
            .await?;
        return created(&r);
    };
    let id = resolve_named(ctx, "folders", r).await?;
    match ctx.method.as_str() {
        "GET" => {
            let f = ctx
                .read(move |v| Ok(v.folders().into_iter().find(|f| f.id == id)))
                .await?;
            Ok(Reply::Ok(json!({"folder": f.as_ref().map(render::folder)})))
        }
        "PUT" => {
            let o = body_object(ctx, "folder")?;
            check_known(&o, "folder", &["name", "parentRef"])?;
            ctx.submit(vec![Command::UpdateFolder {
                id,
                name: opt_str(&o, "name")?,
                parent: parent_of(&o)?,
            }])
            .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeleteFolder { id }]).await?;
            Ok(Reply::NoContent)
        }
    }
}

fn space_json(s: &ipam_engine::model::AddressSpace) -> Value {
    json!({"ref": ObjKey::AddressSpace(s.id).to_ref(), "name": s.name, "description": s.description})
}

/// `addressSpaces` (also `organizations`) and one of them.
pub(crate) async fn spaces(ctx: &Ctx, t: &Target) -> ApiResult {
    let Some(r) = &t.obj else {
        if ctx.method == "GET" {
            let items = ctx
                .read(|v| Ok(v.spaces().iter().map(space_json).collect()))
                .await?;
            return list_answer(ctx, "addressSpaces", items);
        }
        let o = match ctx.params.object("organization")? {
            Some(o) => o.clone(),
            None => body_object(ctx, "addressSpace")?,
        };
        check_known(&o, "addressSpace", &["name", "description"])?;
        let name = opt_str(&o, "name")?
            .ok_or_else(|| ApiError::invalid("an address space needs a name"))?;
        let description = opt_str(&o, "description")?.unwrap_or_default();
        let r = ctx
            .submit(vec![Command::CreateAddressSpace { name, description }])
            .await?;
        return created(&r);
    };
    let id = resolve_named(ctx, "addressSpaces", r).await?;
    match ctx.method.as_str() {
        "GET" => {
            let s = ctx
                .read(move |v| Ok(v.spaces().into_iter().find(|s| s.id == id)))
                .await?;
            Ok(Reply::Ok(
                json!({"addressSpace": s.as_ref().map(space_json)}),
            ))
        }
        "PUT" => {
            let o = body_object(ctx, "addressSpace")?;
            check_known(&o, "addressSpace", &["name", "description"])?;
            ctx.submit(vec![Command::UpdateAddressSpace {
                id,
                name: opt_str(&o, "name")?,
                description: opt_str(&o, "description")?,
            }])
            .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeleteAddressSpace { id }]).await?;
            Ok(Reply::NoContent)
        }
    }
}

fn user_spec(o: &Map<String, Value>) -> Result<UserSpec, ApiError> {
    check_known(
        o,
        "user",
        &["name", "password", "currentPassword", "fullName", "email"],
    )?;
    Ok(UserSpec {
        name: opt_str(o, "name")?,
        password: opt_str(o, "password")?,
        full_name: opt_str(o, "fullName")?,
        email: opt_str(o, "email")?,
        ..UserSpec::default()
    })
}

/// Hashes the spec's clear password off the async threads (a few at a time, as logins do),
/// so that neither these threads nor the engine's writer run argon2.
async fn hash_spec_password(ctx: &Ctx, spec: &mut UserSpec) -> Result<(), ApiError> {
    let Some(p) = spec.password.take().filter(|p| !p.is_empty()) else {
        return Ok(()); // none, or empty: the engine refuses an empty one with its reason
    };
    if p.len() > 1024 {
        return Err(ApiError::invalid("password: at most 1024 bytes"));
    }
    let _permit = ctx
        .app
        .password_checks
        .acquire()
        .await
        .map_err(|_| ApiError::from(EngineError::ShuttingDown))?;
    let app = ctx.app.clone();
    let h = tokio::task::spawn_blocking(move || app.engine.hash_password(&p))
        .await
        .map_err(super::join_error)?;
    spec.password_hash = Some(h);
    Ok(())
}

/// A user changing its own password gives the current one (`currentPassword`, in the
/// `user` object or beside it); administrators setting another user's need not.
async fn check_current_password(ctx: &Ctx, o: &Map<String, Value>, id: Id) -> Result<(), ApiError> {
    if id != ctx.user {
        return Ok(());
    }
    let current = match opt_str(o, "currentPassword")? {
        Some(c) => Some(c),
        None => ctx.params.string("currentPassword")?,
    };
    let Some(current) = current.filter(|c| !c.is_empty()) else {
        return Err(ApiError::invalid(
            "changing your own password needs currentPassword (your password now)",
        ));
    };
    let name = ctx.user_name.clone();
    let ip = ctx.ip;
    super::check_password(&ctx.app, &name, &current, ip)
        .await
        .map(|_| ())
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                super::codes::BAD_LOGIN,
                "currentPassword is not your password: nothing was changed",
            )
        })
}

/// `users` and `users/{ref}`.
pub(crate) async fn users(ctx: &Ctx, t: &Target) -> ApiResult {
    let Some(r) = &t.obj else {
        if ctx.method == "GET" {
            let items = ctx
                .read(|v| {
                    let (groups, roles) = (v.groups(), v.roles());
                    Ok(v.users()
                        .iter()
                        .map(|u| render::user(u, &groups, &roles))
                        .collect())
                })
                .await?;
            return list_answer(ctx, "users", items);
        }
        let mut spec = user_spec(&body_object(ctx, "user")?)?;
        hash_spec_password(ctx, &mut spec).await?;
        let r = ctx.submit(vec![Command::CreateUser(spec)]).await?;
        return created(&r);
    };
    let id = resolve_named(ctx, "users", r).await?;
    match ctx.method.as_str() {
        "GET" => ctx
            .read(move |v| {
                let (groups, roles) = (v.groups(), v.roles());
                let u = v.users().into_iter().find(|u| u.id == id);
                Ok(json!({"user": u.map(|u| render::user(&u, &groups, &roles))}))
            })
            .await
            .map(Reply::Ok),
        "PUT" => {
            let o = body_object(ctx, "user")?;
            let mut spec = user_spec(&o)?;
            let password_changed = spec.password.is_some();
            if password_changed {
                check_current_password(ctx, &o, id).await?;
            }
            hash_spec_password(ctx, &mut spec).await?;
            ctx.submit(vec![Command::UpdateUser { id, spec }]).await?;
            if password_changed {
                ctx.app.auth.forget_user(id);
            }
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeleteUser { id }]).await?;
            ctx.app.auth.forget_user(id);
            Ok(Reply::NoContent)
        }
    }
}

/// `groups` and `groups/{ref}`.
pub(crate) async fn groups(ctx: &Ctx, t: &Target) -> ApiResult {
    let Some(r) = &t.obj else {
        if ctx.method == "GET" {
            let items = ctx
                .read(|v| {
                    let (users, roles) = (v.users(), v.roles());
                    Ok(v.groups()
                        .iter()
                        .map(|g| render::group(g, &users, &roles))
                        .collect())
                })
                .await?;
            return list_answer(ctx, "groups", items);
        }
        let o = body_object(ctx, "group")?;
        check_known(&o, "group", &["name", "description"])?;
        let name = opt_str(&o, "name")?.ok_or_else(|| ApiError::invalid("a group needs a name"))?;
        let description = opt_str(&o, "description")?.unwrap_or_default();
        let r = ctx
            .submit(vec![Command::CreateGroup { name, description }])
            .await?;
        return created(&r);
    };
    let id = resolve_named(ctx, "groups", r).await?;
    match ctx.method.as_str() {
        "GET" => ctx
            .read(move |v| {
                let (users, roles) = (v.users(), v.roles());
                let g = v.groups().into_iter().find(|g| g.id == id);
                Ok(json!({"group": g.map(|g| render::group(&g, &users, &roles))}))
            })
            .await
            .map(Reply::Ok),
        "PUT" => {
            let o = body_object(ctx, "group")?;
            check_known(&o, "group", &["name", "description"])?;
            ctx.submit(vec![Command::UpdateGroup {
                id,
                name: opt_str(&o, "name")?,
                description: opt_str(&o, "description")?,
            }])
            .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeleteGroup { id }]).await?;
            Ok(Reply::NoContent)
        }
    }
}

/// `roles` and `roles/{ref}`.
pub(crate) async fn roles(ctx: &Ctx, t: &Target) -> ApiResult {
    let perms = |o: &Map<String, Value>| -> Result<Option<BTreeSet<Permission>>, ApiError> {
        match o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("permissions"))
        {
            Some((_, v)) => Ok(Some(parse_permissions(Some(v))?)),
            None => Ok(None),
        }
    };
    let Some(r) = &t.obj else {
        if ctx.method == "GET" {
            let items = ctx
                .read(|v| {
                    let (users, groups) = (v.users(), v.groups());
                    Ok(v.roles()
                        .iter()
                        .map(|r| render::role(r, &users, &groups))
                        .collect())
                })
                .await?;
            return list_answer(ctx, "roles", items);
        }
        let o = body_object(ctx, "role")?;
        check_known(&o, "role", &["name", "description", "permissions"])?;
        let name = opt_str(&o, "name")?.ok_or_else(|| ApiError::invalid("a role needs a name"))?;
        let description = opt_str(&o, "description")?.unwrap_or_default();
        let permissions = perms(&o)?.unwrap_or_default();
        let r = ctx
            .submit(vec![Command::CreateRole {
                name,
                description,
                permissions,
            }])
            .await?;
        return created(&r);
    };
    let id = resolve_named(ctx, "roles", r).await?;
    match ctx.method.as_str() {
        "GET" => ctx
            .read(move |v| {
                let (users, groups) = (v.users(), v.groups());
                let r = v.roles().into_iter().find(|r| r.id == id);
                Ok(json!({"role": r.map(|r| render::role(&r, &users, &groups))}))
            })
            .await
            .map(Reply::Ok),
        "PUT" => {
            let o = body_object(ctx, "role")?;
            check_known(&o, "role", &["name", "description", "permissions"])?;
            ctx.submit(vec![Command::UpdateRole {
                id,
                name: opt_str(&o, "name")?,
                description: opt_str(&o, "description")?,
                permissions: perms(&o)?,
            }])
            .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            ctx.submit(vec![Command::DeleteRole { id }]).await?;
            Ok(Reply::NoContent)
        }
    }
}

/// Memberships: `users/{u}/roles[/{r}]`, `groups/{g}/users[/{u}]`, `groups/{g}/roles[/{r}]`,
/// and the reverse listings.
pub(crate) async fn membership(ctx: &Ctx, t: &Target) -> ApiResult {
    let coll = t.coll;
    let sub = t
        .sub
        .ok_or_else(|| ApiError::invalid("the path needs a member collection"))?;
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs an object ref"))?;
    let id = resolve_named(ctx, coll, &r).await?;
    let Some(mr) = &t.sub_ref else {
        let items = ctx
            .read(move |v| {
                let (users, groups, roles) = (v.users(), v.groups(), v.roles());
                let m = |k: ObjKey, n: &str| render::member(&k, n);
                Ok(match (coll, sub) {
                    ("users", "roles") => roles
                        .iter()
                        .filter(|r| users.iter().any(|u| u.id == id && u.roles.contains(&r.id)))
                        .map(|r| m(ObjKey::Role(r.id), &r.name))
                        .collect(),
                    ("users", _) => groups
                        .iter()
                        .filter(|g| g.users.contains(&id))
                        .map(|g| m(ObjKey::Group(g.id), &g.name))
                        .collect(),
                    ("groups", "users") => users
                        .iter()
                        .filter(|u| groups.iter().any(|g| g.id == id && g.users.contains(&u.id)))
                        .map(|u| m(ObjKey::User(u.id), &u.name))
                        .collect(),
                    ("groups", _) => roles
                        .iter()
                        .filter(|r| groups.iter().any(|g| g.id == id && g.roles.contains(&r.id)))
                        .map(|r| m(ObjKey::Role(r.id), &r.name))
                        .collect(),
                    (_, "users") => users
                        .iter()
                        .filter(|u| u.roles.contains(&id))
                        .map(|u| m(ObjKey::User(u.id), &u.name))
                        .collect(),
                    _ => groups
                        .iter()
                        .filter(|g| g.roles.contains(&id))
                        .map(|g| m(ObjKey::Group(g.id), &g.name))
                        .collect::<Vec<Value>>(),
                })
            })
            .await?;
        let n = items.len();
        return Ok(Reply::Ok(json!({ sub: items, "totalResults": n })));
    };
    let other = resolve_named(ctx, sub, mr).await?;
    let m = match (coll, sub) {
        ("users", "roles") => Membership::UserRole {
            user: id,
            role: other,
        },
        ("groups", "users") => Membership::GroupUser {
            group: id,
            user: other,
        },
        ("groups", "roles") => Membership::GroupRole {
            group: id,
            role: other,
        },
        ("roles", "users") => Membership::UserRole {
            user: other,
            role: id,
        },
        ("roles", "groups") => Membership::GroupRole {
            group: other,
            role: id,
        },
        _ => Membership::GroupUser {
            group: other,
            user: id,
        },
    };
    let cmd = if ctx.method == "PUT" {
        Command::AddMembership(m)
    } else {
        Command::RemoveMembership(m)
    };
    ctx.submit(vec![cmd]).await?;
    Ok(Reply::NoContent)
}
