//! `ranges`: list, create, read, SetProperties, delete; next free address, free blocks,
//! statistics, sub-ranges.
use std::net::IpAddr;

use ipam_engine::model::Range;
use ipam_engine::{
    AllocMode, AllocRequest, BlockSpec, Command, EngineError, Id, NewRange, ObjKey, ObjType,
    Outcome, RangePatch, View, DEFAULT_SPACE,
};
use serde_json::{json, Map, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string, properties, property_text};
use super::routes::RefArg;
use super::{parse_addr, render, ApiError, ApiResult, Ctx, Reply, Target};

/// Children listed in a range's `childRanges` (the total is in `numChildren`).
const CHILDREN_LISTED: usize = 1000;
/// Largest page of a list.
pub(crate) const MAX_PAGE: u64 = 100_000;

/// The address space named by `addressSpace`/`addressSpaceRef`/`organization` (id, ref or
/// name), or the default one.
pub(crate) fn space_id(v: &View<'_>, p: Option<&str>) -> Result<Id, EngineError> {
    let Some(p) = p.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(DEFAULT_SPACE);
    };
    let tail = p.rsplit('/').next().unwrap_or(p);
    v.spaces()
        .into_iter()
        .find(|s| tail.parse::<Id>() == Ok(s.id) || s.name.eq_ignore_ascii_case(p))
        .map(|s| s.id)
        .ok_or_else(|| EngineError::NotFound(format!("address space {p:?}")))
}

/// The space parameter of a request, if any.
pub(crate) fn space_param(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    for k in [
        "addressSpaceRef",
        "addressSpace",
        "organizationRef",
        "organization",
    ] {
        if let Some(s) = ctx.params.string(k)? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// The range a ref names.
pub(crate) fn range_id(v: &View<'_>, space: Id, r: &RefArg) -> Result<Id, EngineError> {
    let nf = |what: String| EngineError::NotFound(format!("range {what}"));
    match r {
        RefArg::Id(id) => Ok(*id),
        RefArg::Cidr(a, len) => {
            let (from, to) = cidr_bounds(*a, *len).ok_or_else(|| EngineError::Invalid {
                field: "ref",
                reason: format!("{a}/{len} is not a valid CIDR block"),
            })?;
            v.find_range(space, from, to)
                .ok_or_else(|| nf(format!("{a}/{len}")))
        }
        RefArg::FromTo(a, b) => v
            .find_range(space, *a, *b)
            .ok_or_else(|| nf(format!("{a}-{b}"))),
        RefArg::Addr(_, a) => v.find_range(space, *a, *a).ok_or_else(|| nf(a.to_string())),
        RefArg::Name(n) => v
            .ranges_where(space, |r| r.name.eq_ignore_ascii_case(n))?
            .first()
            .map(|r| r.id)
            .ok_or_else(|| nf(format!("{n:?}"))),
    }
}

/// Bounds of a CIDR block; `None` when the length is too long or host bits are set.
pub(crate) fn cidr_bounds(a: IpAddr, len: u8) -> Option<(IpAddr, IpAddr)> {
    match a {
        IpAddr::V4(x) if len <= 32 => {
            let n = u32::from(x);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (n & !mask == 0).then(|| (IpAddr::V4(x), IpAddr::V4((n | !mask).into())))
        }
        IpAddr::V6(x) if len <= 128 => {
            let n = u128::from(x);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            (n & !mask == 0).then(|| (IpAddr::V6(x), IpAddr::V6((n | !mask).into())))
        }
        _ => None,
    }
}

/// Whether `name` is just the CIDR or the `from-to` of these bounds.
fn names_bounds(name: &str, from: IpAddr, to: IpAddr) -> bool {
    let name = name.trim();
    if parse_cidr(name) == Some((from, to)) {
        return true;
    }
    name.split_once('-').is_some_and(|(f, t)| {
        f.trim().parse::<IpAddr>().ok() == Some(from) && t.trim().parse::<IpAddr>().ok() == Some(to)
    })
}

/// A parsed CIDR string.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, IpAddr)> {
    let (a, l) = s.trim().split_once('/')?;
    cidr_bounds(a.parse().ok()?, l.parse().ok()?)
}

struct RangeFields<'a>(&'a Range);

impl Fields for RangeFields<'_> {
    fn field(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        render::range_fields(self.0, name).map(Into::into)
    }
    fn free_text(&self, term: &str) -> bool {
        let r = self.0;
        if let Ok(a) = term.parse::<IpAddr>() {
            return r.from <= a && a <= r.to;
        }
        if let Some((f, t)) = parse_cidr(term) {
            return r.from == f && r.to == t;
        }
        let t = term.to_ascii_lowercase();
        r.name.to_ascii_lowercase().contains(&t)
            || r.properties
                .values()
                .any(|v| v.to_ascii_lowercase().contains(&t))
    }
}

fn sort_ranges(list: &mut [Range], by: &str, descending: bool) {
    let key = by.to_ascii_lowercase();
    list.sort_by(|a, b| {
        let o = match key.as_str() {
            "" | "from" => a.from.cmp(&b.from).then(b.to.cmp(&a.to)),
            "to" => a.to.cmp(&b.to),
            "ref" => a.id.cmp(&b.id),
            "name" => a
                .name
                .to_ascii_lowercase()
                .cmp(&b.name.to_ascii_lowercase()),
            other => render::range_fields(a, other).cmp(&render::range_fields(b, other)),
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

/// `sortOrder`: `Ascending` (default) or `Descending`.
pub(crate) fn descending(ctx: &Ctx) -> Result<bool, ApiError> {
    match ctx
        .params
        .string("sortOrder")?
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("ascending") | Some("asc") => Ok(false),
        Some("descending") | Some("desc") => Ok(true),
        Some(o) => Err(ApiError::invalid(format!(
            "sortOrder {o:?}: use Ascending or Descending"
        ))),
    }
}

fn render_range(v: &View<'_>, id: Id) -> Result<Value, EngineError> {
    let rv = v.range(id)?;
    let children: Vec<(Id, String)> = if rv.children == 0 {
        Vec::new()
    } else {
        v.children(
            rv.range.space,
            Some(id),
            rv.range.from.is_ipv6(),
            None,
            CHILDREN_LISTED,
        )?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect()
    };
    let mut out = render::range(&rv, &children, &v.property_definitions(ObjType::Range));
    let scopes: Vec<Value> = v
        .dhcp_scopes_of_range(id)
        .into_iter()
        .map(|s| render::member(&ObjKey::DhcpScope(s.id), &s.name))
        .collect();
    out["dhcpScopes"] = Value::Array(scopes);
    Ok(out)
}

/// `GET ranges` (list) and `POST ranges` (create).
pub(crate) async fn collection(ctx: &Ctx) -> ApiResult {
    if ctx.method == "POST" {
        return create(ctx).await;
    }
    if let Some(parent) = ctx.params.string("parentRef")? {
        return tree_level(ctx, parent).await;
    }
    let filter = Filter::parse(&ctx.params.string("filter")?.unwrap_or_default())?;
    let (offset, limit) = ctx.params.paging(MAX_PAGE)?;
    let sort_by = ctx.params.string("sortBy")?.unwrap_or_default();
    let desc = descending(ctx)?;
    let target = ctx.params.string("targetRef")?;
    let cursor = ctx.params.string("cursor")?;
    let space = space_param(ctx)?;
    ctx.read(move |v| {
        let space = space_id(v, space.as_deref())?;
        let single_ip = if filter.is_single_bare_term() {
            filter
                .bare_terms()
                .first()
                .and_then(|t| t.parse::<IpAddr>().ok())
        } else {
            None
        };
        let mut list: Vec<Range> = match single_ip {
            // A bare address: the ranges containing it, from the index, deepest first.
            Some(a) => v
                .ranges_containing(space, a)
                .into_iter()
                .map(|id| v.range(id).map(|r| r.range))
                .collect::<Result<_, _>>()?,
            None => {
                let mut l = v.ranges_where(space, |r| filter.matches(&RangeFields(r)))?;
                if !sort_by.is_empty() || desc {
                    sort_ranges(&mut l, &sort_by, desc);
                }
                l
            }
        };
        let total = list.len() as u64;
        let mut offset = offset;
        if let Some(t) = &target {
            let id = ObjKey::parse_ref(t.trim())
                .and_then(|k| match k {
                    ObjKey::Range(id) => Some(id),
                    _ => None,
                })
                .ok_or_else(|| EngineError::Invalid {
                    field: "targetRef",
                    reason: format!("{t:?} is not a range ref"),
                })?;
            let pos = list
                .iter()
                .position(|r| r.id == id)
                .ok_or_else(|| EngineError::NotFound(format!("targetRef {t} in this list")))?
                as u64;
            offset = pos.checked_div(limit).map_or(0, |p| p * limit);
        }
        if let Some(c) = &cursor {
            // A cursor is the bounds of the last range shown: the next page starts after
            // them in address order, whatever was added or removed meanwhile.
            let bad = || EngineError::Invalid {
                field: "cursor",
                reason: format!("{c:?} is not a cursor from an earlier page"),
            };
            let (f, t) = c.trim().split_once('-').ok_or_else(bad)?;
            let (f, t): (IpAddr, IpAddr) =
                (f.parse().map_err(|_| bad())?, t.parse().map_err(|_| bad())?);
            if !sort_by.is_empty() || desc {
                return Err(EngineError::Invalid {
                    field: "cursor",
                    reason: "cursor paging follows address order: leave out sortBy and sortOrder"
                        .into(),
                });
            }
            offset = list
                .iter()
                .position(|r| (r.from, std::cmp::Reverse(r.to)) > (f, std::cmp::Reverse(t)))
                .unwrap_or(list.len()) as u64;
        }
        let page: Vec<Range> = list
            .drain(..)
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        let next = (offset + (page.len() as u64) < total)
            .then(|| page.last().map(|r| format!("{}-{}", r.from, r.to)))
            .flatten();
        let items = page
            .iter()
            .map(|r| render_range(v, r.id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = json!({"ranges": items, "totalResults": total});
        if target.is_some() {
            out["offset"] = json!(offset);
        }
        if let Some(n) = next {
            out["nextCursor"] = json!(n);
        }
        Ok(out)
    })
    .await
    .map(Reply::Ok)
}

const RANGE_FIELDS: [&str; 10] = [
    "name",
    "from",
    "to",
    "isContainer",
    "locked",
    "autoAssign",
    "subnet",
    "customProperties",
    "folderRef",
    "addressSpaceRef",
];
/// Fields a GET answers that a client may send back unchanged; ignored on writes.
const READ_ONLY_RANGE_FIELDS: [&str; 14] = [
    "ref",
    "parentRef",
    "adSiteRef",
    "childRanges",
    "dhcpScopes",
    "authority",
    "hasSchedule",
    "hasMonitor",
    "isLeaf",
    "numChildren",
    "utilizationPercentage",
    "created",
    "lastModified",
    "discoveryType",
];

fn check_fields(obj: &Map<String, Value>, what: &str) -> Result<(), ApiError> {
    for k in obj.keys() {
        if !RANGE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k))
            && !READ_ONLY_RANGE_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(k))
        {
            return Err(ApiError::invalid(format!(
                "unknown field {k:?} in {what}; known fields: {}",
                RANGE_FIELDS.join(", ")
            )));
        }
    }
    Ok(())
}

fn field<'a>(obj: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(k))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn folder_id(s: &str) -> Result<Option<Id>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let tail = s.rsplit('/').next().unwrap_or(s);
    tail.parse()
        .map(Some)
        .map_err(|_| ApiError::invalid(format!("folderRef {s:?} is not a folder ref")))
}

/// A new range from a `range` object as clients send it (name as CIDR or from-to, or
/// from/to; flags; customProperties). Answers it and its `addressSpaceRef`, if given.
pub(crate) fn new_range(obj: &Map<String, Value>) -> Result<(NewRange, Option<String>), ApiError> {
    check_fields(obj, "range")?;
    let s = |k: &str| -> Result<String, ApiError> {
        field(obj, k).map_or(Ok(String::new()), |v| as_string(k, v))
    };
    let b = |k: &str| -> Result<Option<bool>, ApiError> {
        field(obj, k).map(|v| as_bool(k, v)).transpose()
    };
    let name = s("name")?;
    let (from, to) = (s("from")?, s("to")?);
    let (from, to, is_cidr) = if from.is_empty() && to.is_empty() {
        if let Some((f, t)) = parse_cidr(&name) {
            (f, t, true)
        } else if let Some((f, t)) = name.split_once('-') {
            (parse_addr("name", f)?, parse_addr("name", t)?, false)
        } else {
            return Err(ApiError::invalid(
                "a range needs from and to, or a name that is a CIDR (10.0.0.0/24) or from-to",
            ));
        }
    } else {
        let (f, t) = (parse_addr("from", &from)?, parse_addr("to", &to)?);
        let cidr = parse_cidr(&name) == Some((f, t));
        (f, t, cidr)
    };
    let mut props = std::collections::BTreeMap::new();
    if let Some(cp) = field(obj, "customProperties") {
        for (k, v) in properties(cp)? {
            props.insert(k.clone(), property_text(&k, &v)?);
        }
    }
    let is_container = b("isContainer")?.unwrap_or(false);
    let nr = NewRange {
        space: None,
        from: Some(from),
        to: Some(to),
        // A name that only restates the bounds (the CIDR or `from-to`) is left empty, so
        // the range is named by its CIDR; any other name, with `/` or `-` or not, is kept.
        name: if names_bounds(&name, from, to) {
            String::new()
        } else {
            name
        },
        subnet: b("subnet")?.unwrap_or(is_cidr && !is_container),
        is_container,
        locked: b("locked")?.unwrap_or(false),
        auto_assign: b("autoAssign")?.unwrap_or(false),
        folder: folder_id(&s("folderRef")?)?,
        properties: props,
    };
    let space = field(obj, "addressSpaceRef")
        .map(|v| as_string("addressSpaceRef", v))
        .transpose()?;
    Ok((nr, space))
}

async fn create(ctx: &Ctx) -> ApiResult {
    let obj = ctx
        .params
        .object("range")?
        .ok_or_else(|| ApiError::invalid("the body needs a \"range\" object"))?
        .clone();
    let (nr, space) = new_range(&obj)?;
    let space = match space {
        Some(s) => Some(s),
        None => space_param(ctx)?,
    };
    let space = ctx.lookup(move |v| space_id(v, space.as_deref())).await?;
    let r = ctx
        .submit(vec![Command::CreateRange(NewRange {
            space: Some(space),
            ..nr
        })])
        .await?;
    match r.outcomes.first() {
        Some(Outcome::Created(r)) => Ok(Reply::Created(json!({ "ref": r }))),
        other => Err(ApiError::invalid(format!("unexpected outcome {other:?}"))),
    }
}

/// Resolves the path's range.
pub(crate) async fn resolve(ctx: &Ctx, t: &Target) -> Result<Id, ApiError> {
    let r = t
        .obj
        .clone()
        .ok_or_else(|| ApiError::invalid("the path needs a range ref"))?;
    let space = space_param(ctx)?;
    ctx.lookup(move |v| {
        let s = space_id(v, space.as_deref())?;
        let id = range_id(v, s, &r)?;
        v.range(id)?;
        Ok(id)
    })
    .await
}

/// `GET/PUT/DELETE ranges/{ref}`.
pub(crate) async fn one(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    match ctx.method.as_str() {
        "GET" => ctx
            .read_quick(move |v| Ok(json!({ "range": render_range(v, id)? })))
            .await
            .map(Reply::Ok),
        "PUT" => {
            let current = ctx.lookup(move |v| Ok(v.range(id)?.range)).await?;
            let patch = range_patch(ctx, &current)?;
            ctx.submit(vec![Command::UpdateRange { id, patch }]).await?;
            Ok(Reply::NoContent)
        }
        _ => {
            let subtree = ctx.params.bool("deleteSubranges")?.unwrap_or(false);
            ctx.submit(vec![Command::DeleteRange { id, subtree }])
                .await?;
            Ok(Reply::NoContent)
        }
    }
}

/// A SetProperties body: `properties` (map or list) mixing built-in fields and custom
/// properties, or a `range` object as a GET answered it.
fn range_patch(ctx: &Ctx, current: &Range) -> Result<RangePatch, ApiError> {
    let mut patch = RangePatch {
        delete_unspecified: ctx.params.bool("deleteUnspecified")?.unwrap_or(false),
        ..RangePatch::default()
    };
    let mut pairs: Vec<(String, Value)> = match ctx.params.get("properties") {
        Some(p) => properties(p)?,
        None => Vec::new(),
    };
    if let Some(obj) = ctx.params.object("range")? {
        check_fields(obj, "range")?;
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("customProperties") {
                pairs.extend(properties(v)?);
            } else {
                pairs.push((k.clone(), v.clone()));
            }
        }
    }
    for (k, v) in pairs {
        match k.to_ascii_lowercase().as_str() {
            "name" => patch.name = Some(as_string(&k, &v)?),
            "subnet" => patch.subnet = Some(as_bool(&k, &v)?),
            "iscontainer" => patch.is_container = Some(as_bool(&k, &v)?),
            "locked" => patch.locked = Some(as_bool(&k, &v)?),
            "autoassign" => patch.auto_assign = Some(as_bool(&k, &v)?),
            "folderref" => patch.folder = Some(folder_id(&as_string(&k, &v)?)?),
            "from" | "to" => {
                // A GET's answer sent back unchanged is fine; a change is not.
                let stored = if k.eq_ignore_ascii_case("from") {
                    current.from
                } else {
                    current.to
                };
                let given = as_string(&k, &v)?;
                if given.trim().parse::<IpAddr>().ok() != Some(stored) {
                    return Err(ApiError::invalid(format!(
                        "{k} cannot be changed ({stored} to {given:?}); create a new range instead"
                    )));
                }
            }
            "ref"
            | "parentref"
            | "adsiteref"
            | "childranges"
            | "dhcpscopes"
            | "authority"
            | "hasschedule"
            | "hasmonitor"
            | "isleaf"
            | "numchildren"
            | "utilizationpercentage"
            | "created"
            | "lastmodified"
            | "addressspaceref"
            | "discoverytype" => {}
            _ => {
                patch.properties.insert(k.clone(), property_text(&k, &v)?);
            }
        }
    }
    Ok(patch)
}

/// `GET ranges/{ref}/nextFreeAddress`.
pub(crate) async fn next_free(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    let start = ctx
        .params
        .string("startAddress")?
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_addr("startAddress", &s))
        .transpose()?;
    let random = ctx.params.bool("random")?.unwrap_or(false);
    let hold = ctx.params.u64("temporaryClaimTime")?.filter(|s| *s > 0);
    let claim = ctx.params.bool("claim")?.unwrap_or(false);
    // `excludeDHCP`: never an address of a DHCP pool (the server hands those out itself).
    let exclude = if ctx.params.bool("excludeDHCP")?.unwrap_or(false) {
        ctx.lookup(move |v| dhcp_pools(v, id)).await?
    } else {
        Vec::new()
    };
    let mode = match (hold, claim) {
        (Some(seconds), _) => Some(AllocMode::Hold { seconds }),
        (None, true) => Some(AllocMode::Claim),
        (None, false) => None,
    };
    let addr = match mode {
        Some(mode) => {
            let r = ctx
                .submit(vec![Command::AllocateAddresses(AllocRequest {
                    pool: vec![id],
                    count: 1,
                    start,
                    random,
                    exclude,
                    mode,
                    properties: Default::default(),
                })])
                .await?;
            ctx.app
                .metrics
                .allocations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match r.outcomes.into_iter().next() {
                Some(Outcome::Addresses(a)) if !a.is_empty() => a[0],
                other => return Err(ApiError::invalid(format!("unexpected outcome {other:?}"))),
            }
        }
        None => {
            let seed = random.then(random_u64);
            ctx.read_quick(move |v| {
                let mut start = start;
                if let Some(seed) = seed {
                    let r = v.range(id)?.range;
                    start = Some(random_between(r.from, r.to, seed));
                }
                let mut a = v.free_addresses(id, start, &exclude, 1)?;
                if a.is_empty() && start.is_some() {
                    a = v.free_addresses(id, None, &exclude, 1)?;
                }
                a.pop().ok_or_else(|| EngineError::Exhausted {
                    pool: format!("ranges/{id}"),
                    asked: 1,
                    found: 0,
                })
            })
            .await?
        }
    };
    Ok(Reply::Ok(json!({ "address": addr.to_string() })))
}

/// The DHCP pools of the scopes on a range, on its sub-ranges and on the ranges around it.
fn dhcp_pools(v: &View<'_>, id: Id) -> Result<Vec<(IpAddr, IpAddr)>, EngineError> {
    let r = v.range(id)?.range;
    let mut out = Vec::new();
    for s in v.dhcp_scopes() {
        let Ok(sr) = v.range(s.range) else { continue };
        if sr.range.space == r.space && sr.range.from <= r.to && r.from <= sr.range.to {
            out.extend(s.pools.iter().copied());
        }
    }
    Ok(out)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS random source works");
    u64::from_le_bytes(b)
}

fn random_between(from: IpAddr, to: IpAddr, seed: u64) -> IpAddr {
    match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => {
            let (f, t) = (u64::from(u32::from(f)), u64::from(u32::from(t)));
            IpAddr::V4(((f + seed % (t - f + 1)) as u32).into())
        }
        (IpAddr::V6(f), IpAddr::V6(t)) => {
            let (f, t) = (u128::from(f), u128::from(t));
            let span = t - f;
            let off = if span == u128::MAX {
                u128::from(seed)
            } else {
                u128::from(seed) % (span + 1)
            };
            IpAddr::V6((f + off).into())
        }
        _ => from,
    }
}

/// `GET ranges/{ref}/availableAddressBlocks`.
pub(crate) async fn available_blocks(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    let size = match (ctx.params.u64("size")?, ctx.params.u64("mask")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give mask or size, not both"));
        }
        (Some(0), None) => return Err(ApiError::invalid("size must be at least 1")),
        (Some(s), None) => BlockSpec::Size(s),
        (None, Some(m)) if m <= 128 => BlockSpec::Prefix(m as u8),
        (None, Some(m)) => {
            return Err(ApiError::invalid(format!(
                "mask {m} is not a prefix length"
            )))
        }
        (None, None) => BlockSpec::Prefix(24),
    };
    let limit = ctx.params.u64("limit")?.unwrap_or(1).clamp(1, 65_536) as usize;
    let start = ctx
        .params
        .string("startAddress")?
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_addr("startAddress", &s))
        .transpose()?;
    let blocks = ctx
        .read(move |v| v.free_blocks(id, size, start, limit))
        .await?;
    let list: Vec<Value> = blocks
        .iter()
        .map(|(f, t)| json!({"from": f.to_string(), "to": t.to_string()}))
        .collect();
    Ok(Reply::Ok(json!({ "addressBlocks": list })))
}

/// `GET ranges/{ref}/statistics`.
pub(crate) async fn statistics(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    let u = ctx
        .read_quick(move |v| Ok(v.range(id)?.utilization))
        .await?;
    Ok(Reply::Ok(json!({
        "used": u.used.to_string(),
        "free": u.free().to_string(),
        "size": u.size.to_string(),
        "numInSubranges": u.in_children.to_string(),
        "percentInSubranges": format!("{:.0}", u.in_children_percent()),
        "utilizationPercentage": format!("{:.0}", u.used_percent()),
    })))
}

/// `GET ranges/{ref}/subranges` (and `addressBlocks`): `depth` levels (default 1), paged.
pub(crate) async fn subranges(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    let depth = ctx.params.u64("depth")?.unwrap_or(1).clamp(1, 64);
    let (offset, limit) = ctx.params.paging(MAX_PAGE)?;
    ctx.read(move |v| {
        let root = v.range(id)?.range;
        let mut out = Vec::new();
        let mut level = vec![id];
        for _ in 0..depth {
            let mut next = Vec::new();
            for p in level {
                let mut start = None;
                loop {
                    let page = v.children(root.space, Some(p), root.from.is_ipv6(), start, 4096)?;
                    let full = page.len() == 4096;
                    start = page.last().map(|r| r.from);
                    for r in page {
                        if out.last().is_some_and(|l: &Range| l.id == r.id) {
                            continue;
                        }
                        next.push(r.id);
                        out.push(r);
                    }
                    if !full {
                        break;
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        out.sort_by(|a, b| a.from.cmp(&b.from).then(b.to.cmp(&a.to)));
        out.dedup_by_key(|r| r.id);
        let total = out.len();
        let items = out
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|r| render_range(v, r.id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"ranges": items, "totalResults": total}))
    })
    .await
    .map(Reply::Ok)
}

/// Largest page of one tree level.
const MAX_LEVEL_PAGE: u64 = 10_000;

/// `GET ranges?parentRef=REF` (ours): one level of the range tree, the children of `REF`
/// (empty: the top level of the address space, IPv4 then IPv6) in address order, straight
/// from the index; paged by `cursor` (the `nextCursor` of the previous page) and `limit`
/// (default 500), so a level of 100,000 subnets never loads at once.
async fn tree_level(ctx: &Ctx, parent: String) -> ApiResult {
    let limit = ctx.params.u64("limit")?.unwrap_or(500);
    if limit == 0 || limit > MAX_LEVEL_PAGE {
        return Err(ApiError::invalid(format!(
            "limit {limit}: a tree level is paged by 1 to {MAX_LEVEL_PAGE} ranges"
        )));
    }
    let cursor = match ctx
        .params
        .string("cursor")?
        .filter(|c| !c.trim().is_empty())
    {
        Some(c) => Some(c.trim().parse::<IpAddr>().map_err(|_| {
            ApiError::invalid(format!("cursor {c:?} is not a cursor from an earlier page"))
        })?),
        None => None,
    };
    let parent = parent.trim().to_string();
    let parent_arg =
        if parent.is_empty() {
            None
        } else {
            let segs = super::params::segments(parent.trim_start_matches("ranges/"));
            Some(super::routes::ref_arg("ranges", &segs).ok_or_else(|| {
                ApiError::invalid(format!("parentRef {parent:?} is not a range ref"))
            })?)
        };
    let space = space_param(ctx)?;
    ctx.read(move |v| {
        let space = space_id(v, space.as_deref())?;
        let (space, pid, families, total) = match &parent_arg {
            Some(r) => {
                let id = range_id(v, space, r)?;
                let rv = v.range(id)?;
                // The level is in the parent's space, whatever the request named.
                (
                    rv.range.space,
                    Some(id),
                    vec![rv.range.from.is_ipv6()],
                    Some(rv.children),
                )
            }
            None => (space, None, vec![false, true], None),
        };
        let limit = limit as usize;
        let mut page: Vec<Range> = Vec::new();
        let mut more = false;
        for v6 in families {
            let start = match cursor {
                Some(c) if c.is_ipv6() != v6 && !v6 => continue, // IPv4 is done
                Some(c) if c.is_ipv6() == v6 => Some(c),
                _ => None,
            };
            let want = limit + 2 - page.len();
            let got = v.children(space, pid, v6, start, want)?;
            for r in got {
                if Some(r.from) == cursor {
                    continue;
                }
                if page.len() == limit {
                    more = true;
                    break;
                }
                page.push(r);
            }
            if more || page.len() == limit {
                // Whether the IPv6 level has anything is found on the next page.
                more = more || (!v6 && pid.is_none());
                break;
            }
        }
        let next = more
            .then(|| page.last().map(|r| r.from.to_string()))
            .flatten();
        let items = page
            .iter()
            .map(|r| render_range(v, r.id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = json!({ "ranges": items });
        if let Some(t) = total {
            out["totalResults"] = json!(t);
        }
        if let Some(n) = next {
            out["nextCursor"] = json!(n);
        }
        Ok(out)
    })
    .await
    .map(Reply::Ok)
}

/// The prefix length of a range that is exactly one CIDR block.
fn prefix_len(from: IpAddr, to: IpAddr) -> Option<u8> {
    let bits = if from.is_ipv6() { 128u32 } else { 32 };
    let (f, t) = (ip_u128(from), ip_u128(to));
    let size = t.checked_sub(f)?.checked_add(1);
    match size {
        // The whole IPv6 space.
        None => Some(0),
        Some(n) if n.is_power_of_two() && f % n == 0 => Some((bits - n.trailing_zeros()) as u8),
        _ => None,
    }
}

fn ip_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(x) => u128::from(u32::from(x)),
        IpAddr::V6(x) => u128::from(x),
    }
}

fn u128_ip(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(n.into())
    } else {
        IpAddr::V4((n as u32).into())
    }
}

/// Most parts a split may make.
const MAX_SPLIT_PARTS: u128 = 4096;

/// `POST ranges/{ref}/split` (ours): replaces a CIDR range by the equal blocks of
/// `prefixLength` (default: one bit longer) in one transaction. Each part keeps the range's
/// flags, folder and custom properties; a name that was the CIDR becomes each part's CIDR,
/// another name gets ` (1)`, ` (2)`... Sub-ranges move into the part that holds them, and
/// records are kept (they belong to the address space). Answers the parts' refs.
pub(crate) async fn split(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = resolve(ctx, t).await?;
    let want = ctx.params.u64("prefixLength")?;
    let (r, acl) = ctx
        .lookup(move |v| {
            Ok((
                v.range(id)?.range,
                v.has_access_entries(ObjType::Range, id)?,
            ))
        })
        .await?;
    if acl {
        // The parts would not inherit them: refuse rather than widen or narrow access.
        return Err(ApiError::invalid(format!(
            "{} has access entries of its own; remove them first (GET/PUT ranges/{id}/access) and set them on the parts after the split",
            r.name
        )));
    }
    let len = prefix_len(r.from, r.to).ok_or_else(|| {
        ApiError::invalid(format!(
            "{} is {}-{}, not one CIDR block: only CIDR ranges split",
            r.name, r.from, r.to
        ))
    })?;
    let bits = if r.from.is_ipv6() { 128u8 } else { 32 };
    let new_len = match want {
        None => len + 1,
        Some(n) => u8::try_from(n).unwrap_or(u8::MAX),
    };
    if new_len <= len || new_len > bits {
        return Err(ApiError::invalid(format!(
            "prefixLength {new_len}: must be longer than /{len} and at most /{bits}"
        )));
    }
    let parts = 1u128
        .checked_shl(u32::from(new_len - len))
        .unwrap_or(u128::MAX);
    if parts > MAX_SPLIT_PARTS {
        return Err(ApiError::invalid(format!(
            "splitting /{len} into /{new_len} makes {parts} parts; at most {MAX_SPLIT_PARTS} at once"
        )));
    }
    let size = 1u128 << u32::from(bits - new_len);
    let own_cidr = r.name.is_empty() || r.name == format!("{}/{len}", r.from);
    let base = ip_u128(r.from);
    let mut commands = vec![Command::DeleteRange { id, subtree: false }];
    for i in 0..parts {
        let from = base + i * size;
        commands.push(Command::CreateRange(NewRange {
            space: Some(r.space),
            from: Some(u128_ip(from, r.from.is_ipv6())),
            to: Some(u128_ip(from + (size - 1), r.from.is_ipv6())),
            name: if own_cidr {
                String::new()
            } else {
                format!("{} ({})", r.name, i + 1)
            },
            subnet: r.subnet,
            is_container: r.is_container,
            locked: r.locked,
            auto_assign: r.auto_assign,
            folder: r.folder,
            properties: r.properties.clone(),
        }));
    }
    let res = ctx.submit(commands).await?;
    let refs: Vec<&String> = res
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Created(r) => Some(r),
            _ => None,
        })
        .collect();
    Ok(Reply::Created(json!({ "objRefs": refs })))
}
