//! Paths: every route the API serves, how a path resolves to one, and the OpenAPI document
//! generated from the same table (so the description cannot drift from what is served).
use std::net::IpAddr;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::{codes, ApiError};

/// Every route. [`Route::template`] and [`Route::methods`] describe each; `/openapi.json`
/// is generated from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Micetro,
    Sessions,
    Session,
    Ranges,
    Range,
    RangeNextFree,
    RangeBlocks,
    RangeStatistics,
    RangeSubranges,
    RangeAddressBlocks,
    RangeRecords,
    RangeExport,
    RangeSplit,
    Records,
    Record,
    LegacyGetIpamRecords,
    History,
    Access,
    PropertyDefinitions,
    PropertyDefinition,
    Folders,
    Folder,
    Spaces,
    Space,
    Users,
    User,
    Groups,
    Group,
    Roles,
    Role,
    Memberships,
    Membership,
    Allocations,
    Releases,
    RangeBatches,
    RecordBatches,
    Changes,
    DnsServers,
    DnsServer,
    DnsServerSync,
    DnsViews,
    DnsView,
    DnsZones,
    DnsZone,
    ZoneRecords,
    DnsRecords,
    DnsRecord,
    DhcpServers,
    DhcpServer,
    DhcpServerSync,
    DhcpScopes,
    DhcpScope,
    ScopeOptions,
    ScopeReservations,
    RangeReservations,
    DhcpReservation,
    ScopeLeases,
    RangeLeases,
}

/// Object collections that carry history, access and property definitions.
pub(crate) const OBJECT_COLLECTIONS: [&str; 13] = [
    "ranges",
    "ipamRecords",
    "addressSpaces",
    "folders",
    "users",
    "groups",
    "roles",
    "dnsZones",
    "dnsRecords",
    "dnsServers",
    "dhcpScopes",
    "dhcpReservations",
    "dhcpServers",
];

impl Route {
    pub const ALL: [Route; 58] = [
        Route::Micetro,
        Route::Sessions,
        Route::Session,
        Route::Ranges,
        Route::Range,
        Route::RangeNextFree,
        Route::RangeBlocks,
        Route::RangeStatistics,
        Route::RangeSubranges,
        Route::RangeAddressBlocks,
        Route::RangeRecords,
        Route::RangeExport,
        Route::RangeSplit,
        Route::Records,
        Route::Record,
        Route::LegacyGetIpamRecords,
        Route::History,
        Route::Access,
        Route::PropertyDefinitions,
        Route::PropertyDefinition,
        Route::Folders,
        Route::Folder,
        Route::Spaces,
        Route::Space,
        Route::Users,
        Route::User,
        Route::Groups,
        Route::Group,
        Route::Roles,
        Route::Role,
        Route::Memberships,
        Route::Membership,
        Route::Allocations,
        Route::Releases,
        Route::RangeBatches,
        Route::RecordBatches,
        Route::Changes,
        Route::DnsServers,
        Route::DnsServer,
        Route::DnsServerSync,
        Route::DnsViews,
        Route::DnsView,
        Route::DnsZones,
        Route::DnsZone,
        Route::ZoneRecords,
        Route::DnsRecords,
        Route::DnsRecord,
        Route::DhcpServers,
        Route::DhcpServer,
        Route::DhcpServerSync,
        Route::DhcpScopes,
        Route::DhcpScope,
        Route::ScopeOptions,
        Route::ScopeReservations,
        Route::RangeReservations,
        Route::DhcpReservation,
        Route::ScopeLeases,
        Route::RangeLeases,
    ];

    /// The path template, relative to `/mmws/api/v2`. `{type}` stands for each of
    /// [`OBJECT_COLLECTIONS`]; `{member}` for the membership collections.
    pub fn template(self) -> &'static str {
        match self {
            Route::Micetro => "/micetro",
            Route::Sessions => "/micetro/sessions",
            Route::Session => "/micetro/sessions/{token}",
            Route::Ranges => "/ranges",
            Route::Range => "/ranges/{ref}",
            Route::RangeNextFree => "/ranges/{ref}/nextFreeAddress",
            Route::RangeBlocks => "/ranges/{ref}/availableAddressBlocks",
            Route::RangeStatistics => "/ranges/{ref}/statistics",
            Route::RangeSubranges => "/ranges/{ref}/subranges",
            Route::RangeAddressBlocks => "/ranges/{ref}/addressBlocks",
            Route::RangeRecords => "/ranges/{ref}/ipamRecords",
            Route::RangeExport => "/ranges/{ref}/recordExport",
            Route::RangeSplit => "/ranges/{ref}/split",
            Route::Records => "/ipamRecords",
            Route::Record => "/ipamRecords/{address}",
            Route::LegacyGetIpamRecords => "/command/GetIPAMRecords",
            Route::History => "/{type}/{ref}/history",
            Route::Access => "/{type}/{ref}/access",
            Route::PropertyDefinitions => "/{type}/propertyDefinitions",
            Route::PropertyDefinition => "/{type}/propertyDefinitions/{name}",
            Route::Folders => "/folders",
            Route::Folder => "/folders/{ref}",
            Route::Spaces => "/addressSpaces",
            Route::Space => "/addressSpaces/{ref}",
            Route::Users => "/users",
            Route::User => "/users/{ref}",
            Route::Groups => "/groups",
            Route::Group => "/groups/{ref}",
            Route::Roles => "/roles",
            Route::Role => "/roles/{ref}",
            Route::Memberships => "/{member}",
            Route::Membership => "/{member}/{memberRef}",
            Route::Allocations => "/addressAllocations",
            Route::Releases => "/addressReleases",
            Route::RangeBatches => "/rangeBatches",
            Route::RecordBatches => "/ipamRecordBatches",
            Route::Changes => "/changes",
            Route::DnsServers => "/dnsServers",
            Route::DnsServer => "/dnsServers/{ref}",
            Route::DnsServerSync => "/dnsServers/{ref}/synchronize",
            Route::DnsViews => "/dnsViews",
            Route::DnsView => "/dnsViews/{ref}",
            Route::DnsZones => "/dnsZones",
            Route::DnsZone => "/dnsZones/{ref}",
            Route::ZoneRecords => "/dnsZones/{ref}/dnsRecords",
            Route::DnsRecords => "/dnsRecords",
            Route::DnsRecord => "/dnsRecords/{ref}",
            Route::DhcpServers => "/dhcpServers",
            Route::DhcpServer => "/dhcpServers/{ref}",
            Route::DhcpServerSync => "/dhcpServers/{ref}/synchronize",
            Route::DhcpScopes => "/dhcpScopes",
            Route::DhcpScope => "/dhcpScopes/{ref}",
            Route::ScopeOptions => "/dhcpScopes/{ref}/options",
            Route::ScopeReservations => "/dhcpScopes/{ref}/dhcpReservations",
            Route::RangeReservations => "/ranges/{ref}/dhcpReservations",
            Route::DhcpReservation => "/dhcpReservations/{ref}",
            Route::ScopeLeases => "/dhcpScopes/{ref}/leases",
            Route::RangeLeases => "/ranges/{ref}/leases",
        }
    }

    /// HTTP methods served.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Route::Micetro
            | Route::RangeNextFree
            | Route::RangeBlocks
            | Route::RangeStatistics
            | Route::RangeSubranges
            | Route::RangeAddressBlocks
            | Route::RangeRecords
            | Route::RangeExport
            | Route::Records
            | Route::LegacyGetIpamRecords
            | Route::History
            | Route::Changes
            | Route::Memberships
            | Route::DnsServers
            | Route::DnsServer
            | Route::DnsViews
            | Route::DnsView
            | Route::ZoneRecords
            | Route::DhcpServers
            | Route::DhcpServer
            | Route::ScopeLeases
            | Route::RangeLeases => &["GET"],
            Route::DnsServerSync | Route::DhcpServerSync | Route::DnsRecords => &["POST"],
            Route::DnsZones
            | Route::DhcpScopes
            | Route::ScopeReservations
            | Route::RangeReservations => &["GET", "POST"],
            Route::DnsZone | Route::DnsRecord | Route::DhcpScope | Route::DhcpReservation => {
                &["GET", "PUT", "DELETE"]
            }
            Route::ScopeOptions => &["GET", "PUT"],
            Route::Sessions => &["POST", "DELETE"],
            Route::Session => &["DELETE"],
            Route::Ranges
            | Route::PropertyDefinitions
            | Route::Folders
            | Route::Spaces
            | Route::Users
            | Route::Groups
            | Route::Roles => &["GET", "POST"],
            Route::Range
            | Route::Record
            | Route::PropertyDefinition
            | Route::Folder
            | Route::Space
            | Route::User
            | Route::Group
            | Route::Role => &["GET", "PUT", "DELETE"],
            Route::Access => &["GET", "PUT"],
            Route::Membership => &["PUT", "DELETE"],
            Route::Allocations
            | Route::Releases
            | Route::RangeBatches
            | Route::RecordBatches
            | Route::RangeSplit => &["POST"],
        }
    }

    fn summary(self) -> &'static str {
        match self {
            Route::Micetro => "System information (version, database, uptime).",
            Route::Sessions => "POST: log in with loginName/password, answers a session token (201). DELETE: log out the current session.",
            Route::Session => "Log out a session token.",
            Route::Ranges => "List ranges (filter, offset, limit, sortBy, sortOrder, targetRef, cursor; ours: parentRef for one level of the tree, empty for the top level, paged by cursor) or create one.",
            Route::Range => "Get, change (SetProperties) or delete a range. Refs: id, name, CIDR, from-to.",
            Route::RangeNextFree => "Next free address (startAddress, random, excludeDHCP, temporaryClaimTime: hold it for N seconds).",
            Route::RangeBlocks => "Free address blocks by mask (default 24) or size (limit, startAddress, temporaryClaimTime).",
            Route::RangeStatistics => "Used and free addresses, and addresses in sub-ranges.",
            Route::RangeSubranges => "Sub-ranges (depth).",
            Route::RangeAddressBlocks => "Sub-ranges (alias of subranges).",
            Route::RangeRecords => "IPAM records of the range, every address including free ones (filter, offset, limit, or cursor).",
            Route::RangeExport => "Ours: every record of the range as NDJSON, streamed, never truncated (onlyUsed).",
            Route::RangeSplit => "Ours: split a range into equal CIDR blocks of prefixLength (default: one bit longer) in one transaction; properties, flags and folder are copied, records kept.",
            Route::Records => "IPAM records matching a filter (needs filter or rangeRef).",
            Route::Record => "Get any address's record (stored or not), change it (PUT creates), or release it (DELETE).",
            Route::LegacyGetIpamRecords => "Legacy: records of rangeRef matching filter.",
            Route::History => "Change history of an object (offset, limit, since, until, user).",
            Route::Changes => "Ours: the whole change history, for administrators (objectRef, user, since, until in ms, offset, limit).",
            Route::Access => "Access entries of an object.",
            Route::PropertyDefinitions => "Custom property definitions of an object type (POST answers 201).",
            Route::PropertyDefinition => "One custom property definition by name (DELETE answers 204).",
            Route::Folders => "List or create folders.",
            Route::Folder => "Get, change or delete a folder.",
            Route::Spaces => "List or create address spaces (also under /organizations).",
            Route::Space => "Get, change or delete an address space.",
            Route::Users => "List or create users.",
            Route::User => "Get, change or delete a user.",
            Route::Groups => "List or create groups.",
            Route::Group => "Get, change or delete a group.",
            Route::Roles => "List or create roles.",
            Route::Role => "Get, change or delete a role.",
            Route::Memberships => "Members: users/{ref}/roles, users/{ref}/groups, groups/{ref}/users, groups/{ref}/roles, roles/{ref}/users, roles/{ref}/groups.",
            Route::Membership => "Add (PUT) or remove (DELETE) a membership: users/{u}/roles/{r}, groups/{g}/users/{u}, groups/{g}/roles/{r}.",
            Route::Allocations => "Ours: atomic bulk allocation of count addresses across a pool of ranges (assign, claim or hold), with Idempotency-Key.",
            Route::Releases => "Ours: atomic bulk release of addresses.",
            Route::RangeBatches => "Ours: create many ranges in one transaction (all or nothing; the failing item's position in error.index), with Idempotency-Key.",
            Route::RecordBatches => "Ours: set many IPAM records (state, custom properties) in one transaction (all or nothing; error.index), with Idempotency-Key.",
            Route::DnsServers => "DNS servers, as their agents report them, with the link state (state: OK, Down, Unreachable).",
            Route::DnsServer => "One DNS server (id or name).",
            Route::DnsServerSync => "Ours: read the server's zones and records now and apply the differences (the server wins; each in history).",
            Route::DnsViews => "DNS views: the default view of each server (filter).",
            Route::DnsView => "One DNS view.",
            Route::DnsZones => "List zones (filter, dnsServerRef, dnsViewRef, offset, limit) or create one on a server ({dnsZone: {name, type, dynamic, dnsViewRef|authority}, masters}); the server first, then Central.",
            Route::DnsZone => "Get a zone (id, name., server:view:name.), change its custom properties, or delete it (from the server, then Central).",
            Route::ZoneRecords => "The records of a zone (filter, offset, limit); names relative to the zone.",
            Route::DnsRecords => "Create records ({dnsRecords: [{name, type, ttl, data, comment, enabled, dnsZoneRef}], dnsZoneRef}): answers objRefs and errors; each zone's valid records go to the server in one update first.",
            Route::DnsRecord => "Get, change (on the server, then Central) or delete a record.",
            Route::DhcpServers => "DHCP servers, as their agents report them, with the link state.",
            Route::DhcpServer => "One DHCP server (id or name).",
            Route::DhcpServerSync => "Ours: read the server's scopes, reservations and leases now and apply the differences (the server wins).",
            Route::DhcpScopes => "List scopes (filter, dhcpServerRef) or create one ({dhcpScope: {rangeRef, dhcpServerRef, name, description, enabled, pools: [{from, to}], dhcpOptions}}).",
            Route::DhcpScope => "Get, change (name, description, enabled, pools, dhcpOptions) or delete a scope (id, CIDR, name).",
            Route::ScopeOptions => "A scope's DHCP options ({dhcpOptions: [{option, value}]}).",
            Route::ScopeReservations => "A scope's reservations, or a new one ({dhcpReservation: {name, clientIdentifier, addresses: [one], reservationMethod}}).",
            Route::RangeReservations => "The reservations of the range's scope, or a new one.",
            Route::DhcpReservation => "Get, change or delete a reservation.",
            Route::ScopeLeases => "The scope's leases, as last read from the server.",
            Route::RangeLeases => "The leases of the range's scope.",
        }
    }

    /// The concrete templates this route stands for (expanding `{type}` and `{member}`).
    pub fn paths(self) -> Vec<String> {
        let t = self.template();
        if t.contains("{type}") {
            let types: &[&str] =
                if self == Route::PropertyDefinitions || self == Route::PropertyDefinition {
                    &["ranges", "ipamRecords"]
                } else {
                    &OBJECT_COLLECTIONS
                };
            types.iter().map(|c| t.replace("{type}", c)).collect()
        } else if t.contains("{member}") {
            let members: &[(&str, &str)] = if self == Route::Membership {
                &[("users", "roles"), ("groups", "users"), ("groups", "roles")]
            } else {
                &[
                    ("users", "roles"),
                    ("users", "groups"),
                    ("groups", "users"),
                    ("groups", "roles"),
                    ("roles", "users"),
                    ("roles", "groups"),
                ]
            };
            members
                .iter()
                .map(|(a, b)| t.replace("{member}", &format!("{a}/{{ref}}/{b}")))
                .collect()
        } else {
            vec![t.to_string()]
        }
    }
}

/// A reference to an object, as written in a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefArg {
    /// `ranges/12`.
    Id(u64),
    /// `ranges/10.0.0.0/24`.
    Cidr(IpAddr, u8),
    /// `ranges/10.0.0.10-10.0.0.20`.
    FromTo(IpAddr, IpAddr),
    /// `ipamRecords/10.0.0.5`, or `ipamRecords/2/10.0.0.5` in address space 2.
    Addr(Option<u64>, IpAddr),
    /// A unique name.
    Name(String),
}

/// A resolved path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub route: Route,
    /// The object collection (`ranges`, `users`, ...) of the path.
    pub coll: &'static str,
    /// The object's ref, when the path names one.
    pub obj: Option<RefArg>,
    /// The collection after the object (`roles` in `users/3/roles/5`).
    pub sub: Option<&'static str>,
    /// The ref or name after that (`5`, a property definition's name, a session token).
    pub sub_ref: Option<RefArg>,
}

const COLLECTIONS: [(&str, &str); 24] = [
    ("dnsservers", "dnsServers"),
    ("dnsviews", "dnsViews"),
    ("dnszones", "dnsZones"),
    ("dnsrecords", "dnsRecords"),
    ("dhcpservers", "dhcpServers"),
    ("dhcpscopes", "dhcpScopes"),
    ("dhcpreservations", "dhcpReservations"),
    ("micetro", "micetro"),
    ("ranges", "ranges"),
    ("ipamrecords", "ipamRecords"),
    ("addressspaces", "addressSpaces"),
    ("organizations", "addressSpaces"),
    ("folders", "folders"),
    ("users", "users"),
    ("groups", "groups"),
    ("roles", "roles"),
    ("command", "command"),
    ("addressallocations", "addressAllocations"),
    ("addressreleases", "addressReleases"),
    ("rangebatches", "rangeBatches"),
    ("ipamrecordbatches", "ipamRecordBatches"),
    ("propertydefinitions", "propertyDefinitions"),
    ("sessions", "sessions"),
    ("changes", "changes"),
];

fn canonical(s: &str) -> Option<&'static str> {
    let l = s.to_ascii_lowercase();
    COLLECTIONS.iter().find(|(k, _)| *k == l).map(|(_, v)| *v)
}

fn unknown(segs: &[String]) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::UNKNOWN_PATH,
        format!(
            "no such path: /{} (see /openapi.json for the paths served)",
            segs.join("/")
        ),
    )
}

/// Resolves the segments after `/mmws/api/v2` (or `/mmws/api`).
pub(crate) fn resolve(segs: &[String]) -> Result<Target, ApiError> {
    let Some(first) = segs.first() else {
        return Err(unknown(segs));
    };
    let mut coll = canonical(first).ok_or_else(|| unknown(segs))?;
    let mut i = 1;
    loop {
        match segs.get(i).and_then(|s| canonical(s)) {
            Some(c) if c == coll && coll != "micetro" => i += 1,
            // `DHCPServers/DHCPScopes/192.0.2.0/24/...`: a scope named under its servers.
            Some("dhcpScopes") if coll == "dhcpServers" => {
                coll = "dhcpScopes";
                i += 1;
            }
            _ => break,
        }
    }
    let rest = &segs[i..];
    let t = |route, obj, sub, sub_ref| Target {
        route,
        coll,
        obj,
        sub,
        sub_ref,
    };
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match coll {
        "micetro" => {
            return match lower.as_slice() {
                [] => Ok(t(Route::Micetro, None, None, None)),
                ["sessions"] => Ok(t(Route::Sessions, None, None, None)),
                ["sessions", _] => Ok(t(
                    Route::Session,
                    None,
                    None,
                    Some(RefArg::Name(rest[1].clone())),
                )),
                _ => Err(unknown(segs)),
            }
        }
        "sessions" if rest.is_empty() => return Ok(t(Route::Sessions, None, None, None)),
        "command" if lower.as_slice() == ["getipamrecords"] => {
            return Ok(t(Route::LegacyGetIpamRecords, None, None, None))
        }
        "addressAllocations" if rest.is_empty() => {
            return Ok(t(Route::Allocations, None, None, None))
        }
        "addressReleases" if rest.is_empty() => return Ok(t(Route::Releases, None, None, None)),
        "rangeBatches" if rest.is_empty() => return Ok(t(Route::RangeBatches, None, None, None)),
        "changes" if rest.is_empty() => return Ok(t(Route::Changes, None, None, None)),
        "ipamRecordBatches" if rest.is_empty() => {
            return Ok(t(Route::RecordBatches, None, None, None))
        }
        "command"
        | "addressAllocations"
        | "addressReleases"
        | "sessions"
        | "changes"
        | "propertyDefinitions" => return Err(unknown(segs)),
        _ => {}
    }
    if rest.is_empty() {
        let route = match coll {
            "dnsServers" => Route::DnsServers,
            "dnsViews" => Route::DnsViews,
            "dnsZones" => Route::DnsZones,
            "dnsRecords" => Route::DnsRecords,
            "dhcpServers" => Route::DhcpServers,
            "dhcpScopes" => Route::DhcpScopes,
            "dhcpReservations" => return Err(unknown(segs)),
            "ranges" => Route::Ranges,
            "ipamRecords" => Route::Records,
            "addressSpaces" => Route::Spaces,
            "folders" => Route::Folders,
            "users" => Route::Users,
            "groups" => Route::Groups,
            _ => Route::Roles,
        };
        return Ok(t(route, None, None, None));
    }
    if lower[0] == "propertydefinitions" {
        return match rest.len() {
            1 => Ok(t(Route::PropertyDefinitions, None, None, None)),
            _ => Ok(t(
                Route::PropertyDefinition,
                None,
                None,
                Some(RefArg::Name(rest[1..].join("/"))),
            )),
        };
    }
    let (obj, used) = parse_ref(coll, rest);
    let after = &rest[used..];
    let after_l = &lower[used..];
    if after.is_empty() {
        let route = match coll {
            "dnsServers" => Route::DnsServer,
            "dnsViews" => Route::DnsView,
            "dnsZones" => Route::DnsZone,
            "dnsRecords" => Route::DnsRecord,
            "dhcpServers" => Route::DhcpServer,
            "dhcpScopes" => Route::DhcpScope,
            "dhcpReservations" => Route::DhcpReservation,
            "ranges" => Route::Range,
            "ipamRecords" => Route::Record,
            "addressSpaces" => Route::Space,
            "folders" => Route::Folder,
            "users" => Route::User,
            "groups" => Route::Group,
            _ => Route::Role,
        };
        return Ok(t(route, Some(obj), None, None));
    }
    let obj = Some(obj);
    let one = |route| {
        if after.len() == 1 {
            Ok(t(route, obj.clone(), None, None))
        } else {
            Err(unknown(segs))
        }
    };
    match (coll, after_l[0]) {
        (_, "history") => one(Route::History),
        (_, "access") => one(Route::Access),
        (_, "propertydefinitions") => match after.len() {
            1 => Ok(t(Route::PropertyDefinitions, obj, None, None)),
            _ => Ok(t(
                Route::PropertyDefinition,
                obj,
                None,
                Some(RefArg::Name(after[1..].join("/"))),
            )),
        },
        ("ranges", "nextfreeaddress") => one(Route::RangeNextFree),
        ("ranges", "availableaddressblocks") => one(Route::RangeBlocks),
        ("ranges", "statistics") => one(Route::RangeStatistics),
        ("ranges", "subranges") => one(Route::RangeSubranges),
        ("ranges", "addressblocks") => one(Route::RangeAddressBlocks),
        ("ranges", "ipamrecords") => one(Route::RangeRecords),
        ("ranges", "recordexport") => one(Route::RangeExport),
        ("ranges", "split") => one(Route::RangeSplit),
        ("ranges", "leases") => one(Route::RangeLeases),
        ("ranges", "dhcpreservations") => one(Route::RangeReservations),
        ("dnsServers" | "dhcpServers", "synchronize") => one(if coll == "dnsServers" {
            Route::DnsServerSync
        } else {
            Route::DhcpServerSync
        }),
        ("dnsZones", "dnsrecords") => one(Route::ZoneRecords),
        ("dhcpScopes", "options") => one(Route::ScopeOptions),
        ("dhcpScopes", "dhcpreservations") => one(Route::ScopeReservations),
        ("dhcpScopes", "leases") => one(Route::ScopeLeases),
        ("users", m @ ("roles" | "groups"))
        | ("groups", m @ ("users" | "roles"))
        | ("roles", m @ ("users" | "groups")) => {
            let sub = canonical(m);
            match after.len() {
                1 => Ok(t(Route::Memberships, obj, sub, None)),
                _ => {
                    let (r, used) = parse_ref(sub.unwrap_or("users"), &after[1..]);
                    if used + 1 != after.len() {
                        return Err(unknown(segs));
                    }
                    Ok(t(Route::Membership, obj, sub, Some(r)))
                }
            }
        }
        _ => Err(unknown(segs)),
    }
}

/// A whole ref of `coll` (`12`, a name, a CIDR in two segments, `from-to`), as a query
/// parameter carries it.
pub(crate) fn ref_arg(coll: &str, segs: &[String]) -> Option<RefArg> {
    if segs.is_empty() {
        return None;
    }
    let (r, used) = parse_ref(coll, segs);
    (used == segs.len()).then_some(r)
}

/// Parses a ref at the start of `rest`; answers it and how many segments it used.
fn parse_ref(coll: &str, rest: &[String]) -> (RefArg, usize) {
    let s = rest[0].trim();
    if let Ok(id) = s.parse::<u64>() {
        if coll == "ipamRecords" {
            if let Some(a) = rest.get(1).and_then(|a| a.parse::<IpAddr>().ok()) {
                return (RefArg::Addr(Some(id), a), 2);
            }
        }
        return (RefArg::Id(id), 1);
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        if coll == "ranges" || coll == "dhcpScopes" {
            if let Some(len) = rest.get(1).and_then(|l| l.parse::<u8>().ok()) {
                return (RefArg::Cidr(a, len), 2);
            }
        }
        return (RefArg::Addr(None, a), 1);
    }
    if let Some((a, b)) = s.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse(), b.trim().parse()) {
            return (RefArg::FromTo(a, b), 1);
        }
    }
    (RefArg::Name(s.to_string()), 1)
}

/// The OpenAPI 3 description of every route.
pub(crate) fn openapi() -> Value {
    let mut paths = Map::new();
    for r in Route::ALL {
        for p in r.paths() {
            let mut item = Map::new();
            for m in r.methods() {
                let mut params: Vec<Value> = Vec::new();
                for name in ["ref", "address", "name", "token", "memberRef"] {
                    if p.contains(&format!("{{{name}}}")) {
                        params.push(json!({
                            "name": name, "in": "path", "required": true,
                            "schema": {"type": "string"},
                            "description": "id, unique name, CIDR (may span two segments), from-to, or address"
                        }));
                    }
                }
                if *m == "GET" && !p.contains("{ref}") && !p.contains("{address}") {
                    for q in [
                        "filter",
                        "offset",
                        "limit",
                        "sortBy",
                        "sortOrder",
                        "targetRef",
                    ] {
                        params.push(json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}));
                    }
                }
                let ok = match (*m, r) {
                    ("POST", Route::Releases | Route::RecordBatches) => "200",
                    ("POST", _) => "201",
                    ("PUT" | "DELETE", _) => "204",
                    _ => "200",
                };
                let mut op = json!({
                    "summary": r.summary(),
                    "operationId": format!("{}{}", m.to_ascii_lowercase(), p.replace(['/', '{', '}'], "_")),
                    "parameters": params,
                    "responses": {
                        ok: {"description": "success; JSON bodies are {\"result\": ...}"},
                        "400": {"$ref": "#/components/responses/Error"},
                        "401": {"$ref": "#/components/responses/Error"}
                    }
                });
                if matches!(*m, "POST" | "PUT") {
                    op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
                }
                if r == Route::RangeExport {
                    op["responses"]["200"]["content"] =
                        json!({"application/x-ndjson": {"schema": {"type": "string"}}});
                }
                item.insert(m.to_ascii_lowercase(), op);
            }
            paths.insert(p, Value::Object(item));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ipam Central API (Micetro-compatible)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Micetro's REST API v2 as real clients use it, plus our additions (addressAllocations, addressReleases, recordExport, cursor paging). The same paths are served under the legacy base /mmws/api/ with any capitalisation of collection names."
        },
        "servers": [{"url": "/mmws/api/v2"}],
        "security": [{"bearer": []}, {"basic": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"}
            },
            "responses": {
                "Error": {
                    "description": "{\"error\": {\"code\": int, \"message\": string}}",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"error": {"type": "object", "properties": {
                            "code": {"type": "integer"}, "message": {"type": "string"}}}}
                    }}}
                }
            }
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str) -> Target {
        resolve(&super::super::params::segments(p)).unwrap()
    }

    #[test]
    fn refs_in_paths() {
        let t = r("Ranges/192.168.2.0/24/NextFreeAddress");
        assert_eq!(t.route, Route::RangeNextFree);
        assert_eq!(
            t.obj,
            Some(RefArg::Cidr("192.168.2.0".parse().unwrap(), 24))
        );
        assert_eq!(r("ranges/ranges/6/ipamRecords").route, Route::RangeRecords);
        assert_eq!(r("ranges/ranges/6/ipamRecords").obj, Some(RefArg::Id(6)));
        assert_eq!(
            r("ranges/10.0.0.1-10.0.0.9").obj,
            Some(RefArg::FromTo(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.9".parse().unwrap()
            ))
        );
        assert_eq!(
            r("IPAMRecords/::192:168:2:15").obj,
            Some(RefArg::Addr(None, "::192:168:2:15".parse().unwrap()))
        );
        assert_eq!(
            r("ipamRecords/3/10.0.0.1").obj,
            Some(RefArg::Addr(Some(3), "10.0.0.1".parse().unwrap()))
        );
        assert_eq!(r("organizations").route, Route::Spaces);
        assert_eq!(
            r("ranges/propertyDefinitions/Location").route,
            Route::PropertyDefinition
        );
        let m = r("groups/ops/users/alice");
        assert_eq!(m.route, Route::Membership);
        assert_eq!(m.sub, Some("users"));
        assert_eq!(m.sub_ref, Some(RefArg::Name("alice".into())));
        assert_eq!(r("micetro/sessions").route, Route::Sessions);
        assert_eq!(
            r("command/GetIPAMRecords").route,
            Route::LegacyGetIpamRecords
        );
        let t = r("DHCPServers/DHCPScopes/192.168.2.128/25/DHCPReservations");
        assert_eq!(t.route, Route::ScopeReservations);
        assert_eq!(
            t.obj,
            Some(RefArg::Cidr("192.168.2.128".parse().unwrap(), 25))
        );
        let t = r("dnsZones/dnsZones/12/dnsRecords");
        assert_eq!((t.route, t.obj), (Route::ZoneRecords, Some(RefArg::Id(12))));
        let t = r("DNSZones/example.com./dnsrecords");
        assert_eq!(
            (t.route, t.obj),
            (
                Route::ZoneRecords,
                Some(RefArg::Name("example.com.".into()))
            )
        );
        assert_eq!(r("dnsServers/ns1/synchronize").route, Route::DnsServerSync);
        assert_eq!(r("dhcpScopes/7/options").route, Route::ScopeOptions);
        assert_eq!(r("ranges/10.0.0.0/24/leases").route, Route::RangeLeases);
        for bad in [
            "nothing",
            "dhcpReservations",
            "dnsZones/1/bogus",
            "ranges/1/bogus",
            "micetro/x",
            "ranges/1/history/x",
        ] {
            assert!(
                resolve(&super::super::params::segments(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_route_has_paths_in_the_document() {
        let doc = openapi();
        for r in Route::ALL {
            for p in r.paths() {
                assert!(doc["paths"][&p].is_object(), "{p} missing");
            }
        }
    }
}
