//! `ipamRecords`: one address's record (GET for any address, PUT creates or changes, DELETE
//! releases), the records of a range, and the legacy `command/GetIPAMRecords`.
use std::net::IpAddr;

use ipam_engine::model::{IpamRecord, RecordState};
use ipam_engine::{Command, EngineError, Id, ObjType, RecordPatch, View};
use serde_json::{json, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string, properties, property_text};
use super::ranges::{self, space_id, space_param, MAX_PAGE};
use super::routes::RefArg;
use super::{render, ApiError, ApiResult, Ctx, Reply, Target};

/// Most addresses a filtered listing scans when free addresses could match the filter.
const SCAN_CAP: u128 = 1 << 20;

struct RecordFields<'a>(&'a IpamRecord);

impl Fields for RecordFields<'_> {
    fn field(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        render::record_field(self.0, name).map(Into::into)
    }
    fn free_text(&self, term: &str) -> bool {
        if let Ok(a) = term.parse::<IpAddr>() {
            return self.0.addr == a;
        }
        let t = term.to_ascii_lowercase();
        self.0.addr.to_string().contains(&t)
            || self
                .0
                .properties
                .values()
                .any(|v| v.to_ascii_lowercase().contains(&t))
    }
}

/// Renders a record with its holder's name and its deepest range.
pub(crate) fn render_record(v: &View<'_>, rec: &IpamRecord) -> Value {
    let holder = rec.hold.and_then(|h| v.user_name(h.user));
    let range = v.ranges_containing(rec.space, rec.addr).first().copied();
    let mut out = render::record(
        rec,
        holder,
        range,
        &v.property_definitions(ObjType::IpamRecord),
    );
    let links = v.address_links(rec.space, rec.addr);
    if links != ipam_engine::AddressLinks::default() {
        links_into(v, rec, &links, &mut out);
    }
    out
}

/// `dnsHosts` (A/AAAA records naming the address, each with its PTR status), `ptrStatus`,
/// `dhcpReservations` and `dhcpLeases` of an IPAM record.
fn links_into(v: &View<'_>, rec: &IpamRecord, l: &ipam_engine::AddressLinks, out: &mut Value) {
    let ptrs: Vec<String> = l
        .dns
        .iter()
        .filter(|(r, _)| r.rtype == "PTR")
        .map(|(r, _)| r.data.to_ascii_lowercase())
        .collect();
    // A reverse zone that would hold the address's PTR record: one of its name's suffixes.
    let reverse = ipam_engine::reverse_name(rec.addr);
    let reverse_zone_known = reverse
        .match_indices('.')
        .map(|(i, _)| &reverse[i + 1..])
        .take_while(|z| z.contains("arpa"))
        .any(|z| !v.dns_zones_named(z).is_empty());
    let status = |fqdn: &str| {
        if ptrs.iter().any(|p| p == fqdn) {
            "OK"
        } else if !ptrs.is_empty() || reverse_zone_known {
            "Verify"
        } else {
            "Unknown"
        }
    };
    let hosts: Vec<Value> = l
        .dns
        .iter()
        .filter(|(r, _)| r.rtype == "A" || r.rtype == "AAAA")
        .map(|(r, z)| {
            let fqdn = ipam_engine::absolute_record_name(&r.name, &z.name);
            let mut dr = super::dns::record_json(r);
            dr["dnsZoneName"] = json!(z.name);
            json!({"dnsRecord": dr, "ptrStatus": status(&fqdn), "name": fqdn})
        })
        .collect();
    if let Some(first) = hosts.first() {
        out["ptrStatus"] = first["ptrStatus"].clone();
    }
    out["dnsHosts"] = Value::Array(hosts);
    out["dhcpReservations"] = Value::Array(
        l.reservations
            .iter()
            .map(super::dhcp::reservation_json)
            .collect(),
    );
    out["dhcpLeases"] = Value::Array(l.leases.iter().map(super::dhcp::lease_json).collect());
}

fn addr_of(t: &Target) -> Result<(Option<Id>, IpAddr), ApiError> {
    match &t.obj {
        Some(RefArg::Addr(space, a)) => Ok((*space, *a)),
        Some(other) => Err(ApiError::invalid(format!(
            "an IPAM record is named by its address, not {other:?}"
        ))),
        None => Err(ApiError::invalid("the path needs an address")),
    }
}

/// `GET/PUT/DELETE ipamRecords/{address}`.
pub(crate) async fn one(ctx: &Ctx, t: &Target) -> ApiResult {
    let (space, addr) = addr_of(t)?;
    let space_p = match space {
        Some(s) => Some(s.to_string()),
        None => space_param(ctx)?,
    };
    match ctx.method.as_str() {
        "GET" => ctx
            .read_quick(move |v| {
                let space = space_id(v, space_p.as_deref())?;
                let rec = v.record(space, addr)?;
                Ok(json!({ "ipamRecord": render_record(v, &rec) }))
            })
            .await
            .map(Reply::Ok),
        "PUT" => {
            let (space, current) = ctx
                .lookup(move |v| {
                    let space = space_id(v, space_p.as_deref())?;
                    Ok((space, v.record(space, addr)?))
                })
                .await?;
            let patch = record_patch(ctx, &current)?;
            ctx.submit(vec![Command::SetRecord { space, addr, patch }])
                .await?;
            Ok(Reply::NoContent)
        }
        _ => {
            let space = ctx.lookup(move |v| space_id(v, space_p.as_deref())).await?;
            ctx.submit(vec![Command::ReleaseRecord { space, addr }])
                .await?;
            Ok(Reply::NoContent)
        }
    }
}

const READ_ONLY: [&str; 17] = [
    "addrref",
    "address",
    "ref",
    "dnshosts",
    "ptrstatus",
    "dhcpreservations",
    "dhcpleases",
    "discoverytype",
    "lastseendate",
    "lastdiscoverydate",
    "lastknownclientidentifier",
    "device",
    "interface",
    "usage",
    "rangeref",
    "addressspaceref",
    "holdinfo",
];

/// A PUT body: `properties` (map or list) with `claimed`, `state`, `temporaryClaimTime` and
/// custom properties together; `deleteUnspecified`.
fn record_patch(ctx: &Ctx, current: &IpamRecord) -> Result<RecordPatch, ApiError> {
    let mut patch = RecordPatch {
        delete_unspecified: ctx.params.bool("deleteUnspecified")?.unwrap_or(false),
        ..RecordPatch::default()
    };
    let mut pairs = match ctx.params.get("properties") {
        Some(p) => properties(p)?,
        None => Vec::new(),
    };
    if let Some(obj) = ctx.params.object("ipamRecord")? {
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
            "claimed" => {
                if as_bool(&k, &v)? {
                    patch.state = Some(RecordState::Claimed);
                } else if current.state == RecordState::Claimed && patch.state.is_none() {
                    patch.state = Some(RecordState::Free);
                }
            }
            "state" => {
                let s = as_string(&k, &v)?;
                patch.state = Some(render::parse_state(&s).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "state {s:?}: use Free, Assigned, Claimed, Held or Reserved"
                    ))
                })?);
            }
            "temporaryclaimtime" => {
                let secs = super::params::as_u64(&k, &v)?;
                if secs > 0 {
                    patch.state = Some(RecordState::Held);
                    patch.hold_seconds = Some(secs);
                }
            }
            l if READ_ONLY.contains(&l) => {}
            _ => {
                patch.properties.insert(k.clone(), property_text(&k, &v)?);
            }
        }
    }
    Ok(patch)
}

/// Which records a listing shows.
struct Listing {
    filter: Filter,
    filtered: bool,
    offset: u64,
    limit: u64,
    cursor: Option<IpAddr>,
}

impl Listing {
    fn from(ctx: &Ctx) -> Result<Listing, ApiError> {
        let text = ctx.params.string("filter")?.unwrap_or_default();
        let filter = Filter::parse(&text)?;
        let (offset, limit) = ctx.params.paging(MAX_PAGE)?;
        let cursor = ctx
            .params
            .string("cursor")?
            .filter(|c| !c.trim().is_empty())
            .map(|c| super::parse_addr("cursor", &c))
            .transpose()?;
        Ok(Listing {
            filter,
            filtered: !text.trim().is_empty(),
            offset,
            limit,
            cursor,
        })
    }
}

pub(crate) fn next_addr(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(x) => u32::from(x).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(x) => u128::from(x).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

fn span(from: IpAddr, to: IpAddr) -> u128 {
    match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => u128::from(u32::from(t) - u32::from(f)) + 1,
        (IpAddr::V6(f), IpAddr::V6(t)) => (u128::from(t) - u128::from(f)).saturating_add(1),
        _ => 0,
    }
}

fn nth(from: IpAddr, n: u128) -> Option<IpAddr> {
    match from {
        IpAddr::V4(f) => u32::try_from(u128::from(u32::from(f)) + n)
            .ok()
            .map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(f) => u128::from(f).checked_add(n).map(|x| IpAddr::V6(x.into())),
    }
}

/// The records of one range: every address (free ones too) when no filter is given;
/// with a filter, the matching records.
fn range_records(v: &View<'_>, id: Id, l: &Listing) -> Result<Value, EngineError> {
    let r = v.range(id)?.range;
    let from = match l.cursor {
        Some(c) if c > r.to => {
            return Ok(json!({"ipamRecords": [], "totalResults": 0}));
        }
        Some(c) => c.max(r.from),
        None => r.from,
    };
    let size = span(from, r.to);
    let blank_matches = l
        .filter
        .matches(&RecordFields(&IpamRecord::free(r.space, from)));
    let mut items = Vec::new();
    let total: u128;
    let mut last: Option<IpAddr> = None;
    if !l.filtered {
        total = size;
        let mut i = u128::from(l.offset);
        while i < size && (items.len() as u64) < l.limit {
            let Some(a) = nth(from, i) else { break };
            items.push(render_record(v, &v.record(r.space, a)?));
            last = Some(a);
            i += 1;
        }
    } else if !blank_matches {
        // Only used or annotated records can match: walk those.
        let mut count: u128 = 0;
        let mut start = Some(from);
        while let Some(s) = start {
            let page = v.records(id, Some(s), 4096)?;
            let full = page.len() == 4096;
            start = page.last().and_then(|x| next_addr(x.addr)).filter(|_| full);
            for rec in page {
                if l.filter.matches(&RecordFields(&rec)) {
                    if count >= u128::from(l.offset) && (items.len() as u64) < l.limit {
                        items.push(render_record(v, &rec));
                        last = Some(rec.addr);
                    }
                    count += 1;
                }
            }
        }
        total = count;
    } else {
        if size > SCAN_CAP {
            return Err(EngineError::Invalid {
                field: "filter",
                reason: format!(
                    "this filter can match free addresses, and the range has {size} of them; narrow the filter (e.g. add state!=Free), page with cursor, or use recordExport"
                ),
            });
        }
        let mut count: u128 = 0;
        for i in 0..size {
            let Some(a) = nth(from, i) else { break };
            let rec = v.record(r.space, a)?;
            if l.filter.matches(&RecordFields(&rec)) {
                if count >= u128::from(l.offset) && (items.len() as u64) < l.limit {
                    items.push(render_record(v, &rec));
                    last = Some(a);
                }
                count += 1;
            }
        }
        total = count;
    }
    let mut out =
        json!({"ipamRecords": items, "totalResults": u64::try_from(total).unwrap_or(u64::MAX)});
    if let Some(n) = last.and_then(next_addr).filter(|n| *n <= r.to) {
        if (items_len(&out) as u64) == l.limit {
            out["nextCursor"] = json!(n.to_string());
        }
    }
    Ok(out)
}

fn items_len(v: &Value) -> usize {
    v["ipamRecords"].as_array().map_or(0, Vec::len)
}

/// `GET ranges/{ref}/ipamRecords`.
pub(crate) async fn of_range(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = ranges::resolve(ctx, t).await?;
    let l = Listing::from(ctx)?;
    ctx.read(move |v| range_records(v, id, &l))
        .await
        .map(Reply::Ok)
}

/// `GET ipamRecords`: with `rangeRef`, that range's records; otherwise the used and
/// annotated records of every top-level range that match the filter.
pub(crate) async fn list(ctx: &Ctx) -> ApiResult {
    let l = Listing::from(ctx)?;
    if let Some(r) = ctx.params.string("rangeRef")? {
        let t = range_target(&r);
        let id = ranges::resolve(ctx, &t).await?;
        return ctx
            .read(move |v| range_records(v, id, &l))
            .await
            .map(Reply::Ok);
    }
    if !l.filtered {
        return Err(ApiError::invalid(
            "listing every address needs rangeRef (or a filter)",
        ));
    }
    let space = space_param(ctx)?;
    ctx.read(move |v| {
        let space = space_id(v, space.as_deref())?;
        let mut items = Vec::new();
        let mut count: u64 = 0;
        for v6 in [false, true] {
            let mut start = None;
            loop {
                let tops = v.children(space, None, v6, start, 1024)?;
                let full = tops.len() == 1024;
                start = tops.last().and_then(|r| next_addr(r.from));
                for top in tops {
                    let mut s = Some(top.from);
                    while let Some(st) = s {
                        let page = v.records(top.id, Some(st), 4096)?;
                        let more = page.len() == 4096;
                        s = page.last().and_then(|x| next_addr(x.addr)).filter(|_| more);
                        for rec in page {
                            if l.filter.matches(&RecordFields(&rec)) {
                                if count >= l.offset && (items.len() as u64) < l.limit {
                                    items.push(render_record(v, &rec));
                                }
                                count += 1;
                            }
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(json!({"ipamRecords": items, "totalResults": count}))
    })
    .await
    .map(Reply::Ok)
}

pub(crate) fn range_target(r: &str) -> Target {
    let segs = super::params::segments(r);
    let segs: Vec<String> = if segs
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("ranges"))
    {
        segs
    } else {
        std::iter::once("ranges".to_string()).chain(segs).collect()
    };
    super::routes::resolve(&segs).unwrap_or(Target {
        route: super::Route::Range,
        coll: "ranges",
        obj: Some(RefArg::Name(r.to_string())),
        sub: None,
        sub_ref: None,
    })
}

/// Legacy `GET command/GetIPAMRecords` (`rangeRef`, `filter`).
pub(crate) async fn legacy_get(ctx: &Ctx) -> ApiResult {
    let r = ctx
        .params
        .string("rangeRef")?
        .ok_or_else(|| ApiError::invalid("GetIPAMRecords needs rangeRef"))?;
    let id = ranges::resolve(ctx, &range_target(&r)).await?;
    let l = Listing::from(ctx)?;
    ctx.read(move |v| range_records(v, id, &l))
        .await
        .map(Reply::Ok)
}
