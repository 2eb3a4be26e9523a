//! `ipamRecords`: one address's record (GET for any address, PUT creates or changes, DELETE
//! releases), the records of a range, and the legacy `command/GetIPAMRecords`.
use std::net::IpAddr;

use ipam_engine::model::{IpamRecord, RecordState};
use ipam_engine::{Command, EngineError, Id, ObjType, RecordPatch, View};
use serde_json::{json, Value};

use super::filter::{Fields, Filter};
use super::params::{as_bool, as_string, properties, property_text};
use super::ranges::{self, space_id, space_param};
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

/// The page size of record listings when the request gives no `limit`.
pub(crate) const DEFAULT_RECORD_PAGE: u64 = 1_000;

/// The largest page of records (about 4.5 MB of JSON); more is paged with `cursor`, or
/// streamed by `recordExport`.
pub(crate) const MAX_RECORD_PAGE: u64 = 10_000;

/// Records examined for `totalResults` once the page is full: past this many the count stops
/// and the answer says `totalResultsExact: false` (the page and `nextCursor` are exact).
const COUNT_AFTER_PAGE: u64 = 200_000;

/// Which records a listing shows.
struct Listing {
    filter: Filter,
    filtered: bool,
    offset: u64,
    limit: u64,
    cursor: Option<IpAddr>,
    /// The addresses the filter can match (from conditions on `address`), if it says.
    bounds: Option<(IpAddr, IpAddr)>,
}

impl Listing {
    fn from(ctx: &Ctx) -> Result<Listing, ApiError> {
        let text = ctx.params.string("filter")?.unwrap_or_default();
        let filter = Filter::parse(&text)?;
        let (offset, limit) = ctx
            .params
            .paging_with(DEFAULT_RECORD_PAGE, MAX_RECORD_PAGE)?;
        let cursor = ctx
            .params
            .string("cursor")?
            .filter(|c| !c.trim().is_empty())
            .map(|c| super::parse_addr("cursor", &c))
            .transpose()?;
        Ok(Listing {
            bounds: filter.ip_bounds("address", true),
            filter,
            filtered: !text.trim().is_empty(),
            offset,
            limit,
            cursor,
        })
    }

    /// The part of `from..=to` this listing can show: after the cursor, inside the filter's
    /// address bounds. `None` when nothing is left.
    fn window(&self, from: IpAddr, to: IpAddr) -> Option<(IpAddr, IpAddr)> {
        let mut lo = from;
        let mut hi = to;
        if let Some(c) = self.cursor {
            lo = lo.max(c);
        }
        if let Some((blo, bhi)) = self.bounds {
            lo = lo.max(blo);
            hi = hi.min(bhi);
        }
        (lo <= hi && lo.is_ipv4() == hi.is_ipv4()).then_some((lo, hi))
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

/// A listing being built: the page rendered to JSON text as it is found (one record's value
/// tree at a time, so memory follows the page's size in bytes), and the count of matches.
struct Page<'l> {
    l: &'l Listing,
    items: Vec<u8>,
    shown: u64,
    matched: u128,
    last: Option<IpAddr>,
    /// Examined objects when the page filled up.
    full_at: Option<u64>,
    exact: bool,
}

impl<'l> Page<'l> {
    fn new(l: &'l Listing) -> Page<'l> {
        Page {
            l,
            items: Vec::new(),
            shown: 0,
            matched: 0,
            last: None,
            full_at: None,
            exact: true,
        }
    }

    fn full(&self) -> bool {
        self.shown >= self.l.limit
    }

    /// Offers a matching record; renders it when it falls on the page.
    fn offer(&mut self, v: &View<'_>, rec: &IpamRecord) {
        if self.matched >= u128::from(self.l.offset) && !self.full() {
            if self.shown > 0 {
                self.items.push(b',');
            }
            serde_json::to_writer(&mut self.items, &render_record(v, rec))
                .expect("JSON values serialize");
            self.shown += 1;
            self.last = Some(rec.addr);
            if self.full() {
                self.full_at = Some(v.budget().examined());
            }
        }
        self.matched += 1;
    }

    /// Whether to go on counting after `err` (or after the counting allowance): once the page
    /// is full, running out only makes the total inexact; before, it is the answer.
    fn keep_counting(
        &mut self,
        v: &View<'_>,
        err: Option<EngineError>,
    ) -> Result<bool, EngineError> {
        match (err, self.full_at) {
            (Some(EngineError::Budget(_)), Some(_)) => {
                self.exact = false;
                Ok(false)
            }
            (Some(e), _) => Err(e),
            (None, Some(at)) if v.budget().examined() - at > COUNT_AFTER_PAGE => {
                self.exact = false;
                Ok(false)
            }
            (None, _) => Ok(true),
        }
    }

    /// The answer: `ipamRecords`, `totalResults`, `nextCursor` when more may follow,
    /// `totalResultsExact: false` when the count stopped early.
    fn finish(self, end: IpAddr) -> Reply {
        let mut out = Vec::with_capacity(self.items.len() + 160);
        out.extend_from_slice(br#"{"result":{"ipamRecords":["#);
        out.extend_from_slice(&self.items);
        out.extend_from_slice(b"],\"totalResults\":");
        out.extend_from_slice(
            u64::try_from(self.matched)
                .unwrap_or(u64::MAX)
                .to_string()
                .as_bytes(),
        );
        if !self.exact {
            out.extend_from_slice(b",\"totalResultsExact\":false");
        }
        if let Some(n) = self.last.and_then(next_addr).filter(|n| *n <= end) {
            if self.full() || !self.exact {
                out.extend_from_slice(format!(r#","nextCursor":"{n}""#).as_bytes());
            }
        }
        out.extend_from_slice(b"}}");
        Reply::Json(out)
    }
}

/// The records of one range: every address (free ones too) when no filter is given;
/// with a filter, the matching records. Conditions on `address` narrow the walk to the
/// addresses they allow (from the index), and every record looked at counts against the
/// request's budget.
fn range_records(v: &View<'_>, id: Id, l: &Listing) -> Result<Reply, EngineError> {
    let r = v.range(id)?.range;
    let mut page = Page::new(l);
    let Some((lo, hi)) = l.window(r.from, r.to) else {
        return Ok(page.finish(r.to));
    };
    let cost = l.filter.cost();
    let blank_matches = l
        .filter
        .matches(&RecordFields(&IpamRecord::free(r.space, lo)));
    if !l.filtered {
        // Every address, free ones too: the page is addressed directly.
        let size = span(lo, hi);
        page.matched = size;
        let mut i = u128::from(l.offset);
        while i < size && !page.full() {
            let Some(a) = nth(lo, i) else { break };
            v.budget().spend(1)?;
            let rec = v.record(r.space, a)?;
            if page.shown > 0 {
                page.items.push(b',');
            }
            serde_json::to_writer(&mut page.items, &render_record(v, &rec))
                .expect("JSON values serialize");
            page.shown += 1;
            page.last = Some(a);
            i += 1;
        }
        return Ok(page.finish(r.to));
    }
    if !blank_matches {
        // Only used or annotated records can match: walk those.
        for rec in v.records_in(id, Some(lo), Some(hi))? {
            let step = rec.and_then(|rec| {
                v.budget().spend(cost - 1)?;
                Ok(rec)
            });
            match step {
                Ok(rec) => {
                    if l.filter.matches(&RecordFields(&rec)) {
                        page.offer(v, &rec);
                    }
                    if !page.keep_counting(v, None)? {
                        break;
                    }
                }
                Err(e) => {
                    page.keep_counting(v, Some(e))?;
                    break;
                }
            }
        }
        return Ok(page.finish(r.to));
    }
    let size = span(lo, hi);
    if size > SCAN_CAP {
        return Err(EngineError::Invalid {
            field: "filter",
            reason: format!(
                "this filter can match free addresses, and the range has {size} of them; narrow the filter (e.g. add state!=Free or an address range), page with cursor, or use recordExport"
            ),
        });
    }
    for i in 0..size {
        let Some(a) = nth(lo, i) else { break };
        let step = v.budget().spend(cost).and_then(|()| v.record(r.space, a));
        match step {
            Ok(rec) => {
                if l.filter.matches(&RecordFields(&rec)) {
                    page.offer(v, &rec);
                }
                if !page.keep_counting(v, None)? {
                    break;
                }
            }
            Err(e) => {
                page.keep_counting(v, Some(e))?;
                break;
            }
        }
    }
    Ok(page.finish(r.to))
}

/// `GET ranges/{ref}/ipamRecords`.
pub(crate) async fn of_range(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = ranges::resolve(ctx, t).await?;
    let l = Listing::from(ctx)?;
    ctx.read(move |v| range_records(v, id, &l)).await
}

/// `GET ipamRecords`: with `rangeRef`, that range's records; otherwise the used and
/// annotated records of every top-level range that match the filter.
pub(crate) async fn list(ctx: &Ctx) -> ApiResult {
    let l = Listing::from(ctx)?;
    if let Some(r) = ctx.params.string("rangeRef")? {
        let t = range_target(&r);
        let id = ranges::resolve(ctx, &t).await?;
        return ctx.read(move |v| range_records(v, id, &l)).await;
    }
    if !l.filtered {
        return Err(ApiError::invalid(
            "listing every address needs rangeRef (or a filter)",
        ));
    }
    let space = space_param(ctx)?;
    ctx.read(move |v| {
        let space = space_id(v, space.as_deref())?;
        let cost = l.filter.cost();
        let mut page = Page::new(&l);
        let mut end = IpAddr::from([0u8; 4]);
        'families: for v6 in [false, true] {
            let mut start = None;
            loop {
                let tops = v.children(space, None, v6, start, 1024)?;
                let full = tops.len() == 1024;
                start = tops.last().and_then(|r| next_addr(r.from));
                for top in tops {
                    end = end.max(top.to);
                    let Some((lo, hi)) = l.window(top.from, top.to) else {
                        continue;
                    };
                    for rec in v.records_in(top.id, Some(lo), Some(hi))? {
                        let step = rec.and_then(|rec| {
                            v.budget().spend(cost - 1)?;
                            Ok(rec)
                        });
                        match step {
                            Ok(rec) => {
                                if l.filter.matches(&RecordFields(&rec)) {
                                    page.offer(v, &rec);
                                }
                                if !page.keep_counting(v, None)? {
                                    break 'families;
                                }
                            }
                            Err(e) => {
                                page.keep_counting(v, Some(e))?;
                                break 'families;
                            }
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(page.finish(end))
    })
    .await
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
    ctx.read(move |v| range_records(v, id, &l)).await
}
