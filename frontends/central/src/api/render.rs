//! The JSON shapes clients read: ranges, records, users, groups, roles, history events.
use std::collections::BTreeMap;

use ipam_engine::model::{
    Folder, Group, IpamRecord, PropertyDefinition, Range, RecordState, Role, User,
};
use ipam_engine::{Change, EventType, Id, Millis, ObjKey, RangeView, DEFAULT_SPACE};
use serde_json::{json, Map, Value};

/// Micetro's date format, `May 19, 2023 13:29:15` (Central writes UTC).
pub(crate) fn date(ms: Millis) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {}, {} {:02}:{:02}:{:02}",
        MONTHS[(m - 1) as usize],
        d,
        y,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// `{ref, objType, name}`.
pub(crate) fn member(key: &ObjKey, name: &str) -> Value {
    json!({"ref": key.to_ref(), "objType": key.obj_type().name(), "name": name})
}

/// The ref of an address record as the API writes it.
pub(crate) fn addr_ref(space: Id, addr: std::net::IpAddr) -> String {
    if space == DEFAULT_SPACE {
        format!("ipamRecords/{addr}")
    } else {
        format!("ipamRecords/{space}/{addr}")
    }
}

/// Custom properties as strings, with every defined one present (empty when unset) and the
/// built-in `Title`/`Description` on ranges.
pub(crate) fn custom_properties(
    props: &BTreeMap<String, String>,
    defs: &[PropertyDefinition],
    builtins: &[&str],
) -> Value {
    let mut m = Map::new();
    for b in builtins {
        m.insert((*b).to_string(), Value::String(String::new()));
    }
    for d in defs {
        m.insert(d.name.clone(), Value::String(String::new()));
    }
    for (k, v) in props {
        let key = builtins
            .iter()
            .find(|b| b.eq_ignore_ascii_case(k))
            .map_or_else(|| k.clone(), |b| (*b).to_string());
        m.insert(key, Value::String(v.clone()));
    }
    Value::Object(m)
}

/// A range, with what the index knows (children listed up to `children.len()`).
pub(crate) fn range(
    rv: &RangeView,
    children: &[(Id, String)],
    defs: &[PropertyDefinition],
) -> Value {
    let r = &rv.range;
    let pct = rv.utilization.used_percent().round() as u64;
    json!({
        "ref": ObjKey::Range(r.id).to_ref(),
        "name": r.name,
        "from": r.from.to_string(),
        "to": r.to.to_string(),
        "parentRef": rv.parent.map(|p| ObjKey::Range(p).to_ref()).unwrap_or_default(),
        "adSiteRef": "",
        "childRanges": children.iter().map(|(id, n)| member(&ObjKey::Range(*id), n)).collect::<Vec<_>>(),
        "dhcpScopes": [],
        "authority": {"name": "", "type": "Internal"},
        "subnet": r.subnet,
        "locked": r.locked,
        "autoAssign": r.auto_assign,
        "hasSchedule": false,
        "hasMonitor": false,
        "isContainer": r.is_container,
        "isLeaf": rv.children == 0,
        "numChildren": rv.children,
        "utilizationPercentage": pct,
        "customProperties": custom_properties(&r.properties, defs, &["Title", "Description"]),
        "addressSpaceRef": ObjKey::AddressSpace(r.space).to_ref(),
        "folderRef": r.folder.map(|f| ObjKey::Folder(f).to_ref()).unwrap_or_default(),
        "created": date(r.created),
        "lastModified": date(r.last_modified),
    })
}

/// A range as a filter sees it: field name (lower case) to text.
pub(crate) fn range_fields(r: &Range, name: &str) -> Option<String> {
    let b = |x: bool| Some(x.to_string());
    Some(match name.to_ascii_lowercase().as_str() {
        "ref" => ObjKey::Range(r.id).to_ref(),
        "name" => r.name.clone(),
        "from" => r.from.to_string(),
        "to" => r.to.to_string(),
        "subnet" => return b(r.subnet),
        "locked" => return b(r.locked),
        "autoassign" => return b(r.auto_assign),
        "iscontainer" => return b(r.is_container),
        "folderref" => r
            .folder
            .map(|f| ObjKey::Folder(f).to_ref())
            .unwrap_or_default(),
        "created" => date(r.created),
        "lastmodified" => date(r.last_modified),
        _ => {
            return r
                .properties
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }
    })
}

/// An IPAM record.
pub(crate) fn record(
    rec: &IpamRecord,
    holder: Option<String>,
    range: Option<Id>,
    defs: &[PropertyDefinition],
) -> Value {
    let mut v = json!({
        "addrRef": addr_ref(rec.space, rec.addr),
        "address": rec.addr.to_string(),
        "state": state_name(rec.state),
        "claimed": rec.state == RecordState::Claimed,
        "dnsHosts": [],
        "ptrStatus": "Unknown",
        "dhcpReservations": [],
        "dhcpLeases": [],
        "discoveryType": "None",
        "lastSeenDate": "",
        "lastDiscoveryDate": "",
        "lastKnownClientIdentifier": "",
        "device": "",
        "interface": "",
        "usage": 0,
        "rangeRef": range.map(|r| ObjKey::Range(r).to_ref()).unwrap_or_default(),
        "addressSpaceRef": ObjKey::AddressSpace(rec.space).to_ref(),
        "customProperties": custom_properties(&rec.properties, defs, &[]),
    });
    if let (RecordState::Held, Some(h)) = (rec.state, rec.hold) {
        v["holdInfo"] = json!({
            "expiryTime": date(h.expires),
            "username": holder.unwrap_or_default(),
        });
    }
    v
}

/// A record as a filter sees it.
pub(crate) fn record_field(rec: &IpamRecord, name: &str) -> Option<String> {
    Some(match name.to_ascii_lowercase().as_str() {
        "address" => rec.addr.to_string(),
        "addrref" => addr_ref(rec.space, rec.addr),
        "state" => state_name(rec.state).to_string(),
        "claimed" => (rec.state == RecordState::Claimed).to_string(),
        _ => {
            return rec
                .properties
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }
    })
}

/// Micetro's name of a state.
pub(crate) fn state_name(s: RecordState) -> &'static str {
    match s {
        RecordState::Free => "Free",
        RecordState::Assigned => "Assigned",
        RecordState::Claimed => "Claimed",
        RecordState::Held => "Held",
        RecordState::Reserved => "Reserved",
    }
}

/// A state from its name, any case.
pub(crate) fn parse_state(s: &str) -> Option<RecordState> {
    RecordState::ALL
        .into_iter()
        .find(|st| state_name(*st).eq_ignore_ascii_case(s.trim()))
}

/// A user, with groups and roles.
pub(crate) fn user(u: &User, groups: &[Group], roles: &[Role]) -> Value {
    let g: Vec<Value> = groups
        .iter()
        .filter(|g| g.users.contains(&u.id))
        .map(|g| member(&ObjKey::Group(g.id), &g.name))
        .collect();
    let r: Vec<Value> = roles
        .iter()
        .filter(|r| u.roles.contains(&r.id))
        .map(|r| member(&ObjKey::Role(r.id), &r.name))
        .collect();
    json!({
        "ref": ObjKey::User(u.id).to_ref(),
        "name": u.name,
        "fullName": u.full_name,
        "email": u.email,
        "authenticationType": "Internal",
        "groups": g,
        "roles": r,
    })
}

/// A group, with members and roles.
pub(crate) fn group(g: &Group, users: &[User], roles: &[Role]) -> Value {
    json!({
        "ref": ObjKey::Group(g.id).to_ref(),
        "name": g.name,
        "description": g.description,
        "adIntegrated": false,
        "groupMembers": users.iter().filter(|u| g.users.contains(&u.id))
            .map(|u| member(&ObjKey::User(u.id), &u.name)).collect::<Vec<_>>(),
        "roles": roles.iter().filter(|r| g.roles.contains(&r.id))
            .map(|r| member(&ObjKey::Role(r.id), &r.name)).collect::<Vec<_>>(),
    })
}

/// A role, with its users and groups.
pub(crate) fn role(r: &Role, users: &[User], groups: &[Group]) -> Value {
    json!({
        "ref": ObjKey::Role(r.id).to_ref(),
        "name": r.name,
        "description": r.description,
        "builtIn": r.superuser,
        "permissions": r.permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "users": users.iter().filter(|u| u.roles.contains(&r.id))
            .map(|u| member(&ObjKey::User(u.id), &u.name)).collect::<Vec<_>>(),
        "groups": groups.iter().filter(|g| g.roles.contains(&r.id))
            .map(|g| member(&ObjKey::Group(g.id), &g.name)).collect::<Vec<_>>(),
    })
}

/// A folder.
pub(crate) fn folder(f: &Folder) -> Value {
    json!({
        "ref": ObjKey::Folder(f.id).to_ref(),
        "name": f.name,
        "parentRef": f.parent.map(|p| ObjKey::Folder(p).to_ref()).unwrap_or_default(),
    })
}

/// A custom property definition.
pub(crate) fn property_definition(d: &PropertyDefinition) -> Value {
    use ipam_engine::model::PropertyType as T;
    json!({
        "ref": ObjKey::PropertyDefinition(d.id).to_ref(),
        "name": d.name,
        "type": match d.kind {
            T::String => "String",
            T::Integer => "Integer",
            T::Boolean => "Boolean",
            T::IpAddress => "IPAddress",
            T::HexStr => "HexStr",
            T::IpOrHostname => "IPOrHostname",
        },
        "system": false,
        "mandatory": d.mandatory,
        "readOnly": d.read_only,
        "multiLine": false,
        "defaultValue": d.default.clone().unwrap_or_default(),
        "listItems": [],
    })
}

/// A history event. Password hashes never leave: user images are described, not shown.
pub(crate) fn event(c: &Change) -> Value {
    let et = match c.event_type() {
        EventType::Creation => "Creation",
        EventType::Modification => "Modification",
        EventType::Deletion => "Deletion",
    };
    let obj = c.after.as_ref().or(c.before.as_ref());
    let name = obj.map(|o| o.display_name()).unwrap_or_default();
    json!({
        "id": c.seq,
        "eventType": et,
        "objType": c.key.obj_type().name(),
        "objRef": public_ref(&c.key),
        "objName": name,
        "timestamp": date(c.time),
        "username": &*c.user,
        // The account by id, so that a rename (or a name taken later) cannot pass one
        // user's changes off as another's; null for the engine's own changes.
        "userRef": (c.user_id != ipam_engine::SYSTEM_USER)
            .then(|| ObjKey::User(c.user_id).to_ref()),
        "saveComment": &*c.comment,
        "eventText": event_text(c),
    })
}

fn public_ref(k: &ObjKey) -> String {
    match k {
        ObjKey::IpamRecord { space, addr } => addr_ref(*space, *addr),
        other => other.to_ref(),
    }
}

/// What changed, in words: the fields whose values differ (values shown except secrets).
fn event_text(c: &Change) -> String {
    use ipam_engine::Object as O;
    let t = c.key.obj_type().name();
    let name = c
        .after
        .as_ref()
        .or(c.before.as_ref())
        .map(|o| o.display_name())
        .unwrap_or_default();
    match (&c.before, &c.after) {
        (None, Some(_)) => format!("{t} {name} created"),
        (Some(_), None) => format!("{t} {name} deleted"),
        (Some(b), Some(a)) => {
            let to_map = |o: &O| -> Map<String, Value> {
                let mut v: Value = serde_json::from_str(&o.to_json()).unwrap_or(Value::Null);
                if let Some(m) = v.as_object_mut() {
                    if m.contains_key("password_hash") {
                        m.insert("password_hash".into(), Value::String("(secret)".into()));
                    }
                    return m.clone();
                }
                Map::new()
            };
            let (bm, am) = (to_map(b), to_map(a));
            let mut parts = Vec::new();
            if let (Some(O::User(bu)), Some(O::User(au))) = (&c.before, &c.after) {
                if bu.password_hash != au.password_hash {
                    parts.push("password changed".to_string());
                }
            }
            for (k, av) in &am {
                let bv = bm.get(k).unwrap_or(&Value::Null);
                if bv != av && k != "password_hash" && k != "last_modified" {
                    parts.push(format!("{k}: {bv} -> {av}"));
                }
            }
            for (k, bv) in &bm {
                if !am.contains_key(k) {
                    parts.push(format!("{k}: {bv} -> (none)"));
                }
            }
            format!("{t} {name} changed: {}", parts.join("; "))
        }
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_micetro_form() {
        assert_eq!(date(0), "Jan 1, 1970 00:00:00");
        // 2023-05-19 13:29:15 UTC
        assert_eq!(date(1_684_502_955_000), "May 19, 2023 13:29:15");
        assert_eq!(date(951_782_400_000), "Feb 29, 2000 00:00:00");
    }

    #[test]
    fn states_round_trip() {
        for s in RecordState::ALL {
            assert_eq!(parse_state(&state_name(s).to_ascii_uppercase()), Some(s));
        }
        assert_eq!(parse_state("bogus"), None);
    }
}
