//! `ipamctl import --netbox FILE...`: migration from NetBox's CSV exports of prefixes, IP
//! ranges and IP addresses.
//!
//! - VRFs become address spaces (no VRF: the default space).
//! - Prefixes and IP ranges become ranges: status `container` makes a container, other
//!   prefixes are subnets; `description` goes to the built-in Description.
//! - IP addresses become IPAM records: `active`, `dhcp`, `slaac` -> Assigned, `reserved` ->
//!   Reserved, `deprecated` -> Free; the NetBox status is kept in the `NetBoxStatus` property.
//! - `tenant`, `site`, `vlan`, `role`, `dns_name`, `description` (addresses) and custom fields
//!   (`cf_NAME`) become custom properties (defined as String properties when missing).
//! - Everything else (ids, dates, tags, comments, ...) is reported as not mapped.
//!
//! Headers are matched in either NetBox form: bulk-import names (`start_address`) or the
//! export's display names (`Start address`).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::conn::Session;
use crate::output::Output;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Prefixes,
    Ranges,
    Addresses,
}

/// One NetBox file, read.
struct Table {
    path: PathBuf,
    kind: Kind,
    headers: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn norm(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match h.as_str() {
        "ip_address" | "ipaddress" => "address".into(),
        "start" => "start_address".into(),
        "end" => "end_address".into(),
        "dns_name" | "dnsname" => "dns_name".into(),
        _ => h,
    }
}

fn read(path: &Path) -> Result<Table> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let headers: Vec<String> = r.headers()?.iter().map(norm).collect();
    let kind = if headers.iter().any(|h| h == "prefix") {
        Kind::Prefixes
    } else if headers.iter().any(|h| h == "start_address") {
        Kind::Ranges
    } else if headers.iter().any(|h| h == "address") {
        Kind::Addresses
    } else {
        bail!(
            "{}: not a NetBox export of prefixes (prefix), IP ranges (start_address) or IP addresses (address)",
            path.display()
        );
    };
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        let line = rec.position().map_or(0, |p| p.line());
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    Ok(Table {
        path: path.to_path_buf(),
        kind,
        headers,
        rows,
    })
}

/// Columns carried over as custom properties, by NetBox column.
fn property_of(col: &str) -> Option<String> {
    Some(match col {
        "tenant" => "Tenant".into(),
        "site" => "Site".into(),
        "vlan" => "VLAN".into(),
        "role" => "Role".into(),
        "dns_name" => "DNSName".into(),
        c if c.starts_with("cf_") && c.len() > 3 => c[3..].to_string(),
        _ => return None,
    })
}

/// What the migration did.
#[derive(Default)]
pub struct Migration {
    spaces: BTreeSet<String>,
    ranges: u64,
    records: u64,
    unmapped: BTreeMap<String, u64>,
    bad: Vec<(String, u64, String)>,
}

fn address_part(v: &str) -> Option<IpAddr> {
    v.split('/').next()?.trim().parse().ok()
}

/// Migrates the given NetBox CSV files.
pub async fn migrate(s: &mut Session, files: &[PathBuf], out: Output) -> Result<i32> {
    let mut tables: Vec<Table> = files.iter().map(|f| read(f)).collect::<Result<_>>()?;
    tables.sort_by_key(|t| t.kind as u8);
    let mut m = Migration::default();
    // Address spaces for VRFs, and property definitions for the carried columns.
    let spaces = s.call("GET", "/mmws/api/v2/addressSpaces", None).await?;
    let mut known: BTreeSet<String> = spaces["addressSpaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    let mut want_props: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for t in &tables {
        let coll = if t.kind == Kind::Addresses {
            "ipamRecords"
        } else {
            "ranges"
        };
        let vrf = t.headers.iter().position(|h| h == "vrf");
        for (_, row) in &t.rows {
            if let Some(v) = vrf.and_then(|i| row.get(i)).filter(|v| !v.is_empty()) {
                if known.insert(v.to_ascii_lowercase()) {
                    s.call(
                        "POST",
                        "/mmws/api/v2/addressSpaces",
                        Some(json!({"addressSpace": {"name": v, "description": "NetBox VRF"}})),
                    )
                    .await?;
                    m.spaces.insert(v.clone());
                }
            }
        }
        let e = want_props.entry(coll).or_default();
        for h in &t.headers {
            if let Some(p) = property_of(h) {
                e.insert(p);
            }
        }
        if t.kind == Kind::Addresses {
            e.insert("NetBoxStatus".into());
            if t.headers.iter().any(|h| h == "description") {
                e.insert("Description".into());
            }
        } else {
            e.insert("NetBoxStatus".into());
        }
    }
    for (coll, props) in &want_props {
        let have = s
            .call(
                "GET",
                &format!("/mmws/api/v2/{coll}/propertyDefinitions"),
                None,
            )
            .await?;
        let have: BTreeSet<String> = have["propertyDefinitions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["name"].as_str().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        for p in props {
            let builtin = *coll == "ranges" && (p == "Title" || p == "Description");
            if !builtin && !have.contains(&p.to_ascii_lowercase()) {
                s.call(
                    "POST",
                    &format!("/mmws/api/v2/{coll}/propertyDefinitions"),
                    Some(json!({"propertyDefinition": {"name": p, "type": "String"}})),
                )
                .await?;
            }
        }
    }
    for t in &tables {
        import_table(s, t, &mut m).await?;
    }
    if out == Output::Json {
        let v = json!({
            "addressSpacesCreated": m.spaces, "ranges": m.ranges, "records": m.records,
            "notMapped": m.unmapped,
            "badRows": m.bad.iter().map(|(f, l, w)| json!({"file": f, "line": l, "reason": w})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "NetBox migration: {} ranges, {} IPAM records, {} address spaces created ({})",
            m.ranges,
            m.records,
            m.spaces.len(),
            m.spaces.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if !m.unmapped.is_empty() {
            println!("not mapped (column: rows with a value):");
            for (c, n) in &m.unmapped {
                println!("  {c}: {n}");
            }
        }
        for (f, l, w) in m.bad.iter().take(100) {
            eprintln!("{f} line {l}: {w}");
        }
    }
    Ok(if m.bad.is_empty() { 0 } else { 7 })
}

async fn import_table(s: &mut Session, t: &Table, m: &mut Migration) -> Result<()> {
    let file = t.path.display().to_string();
    // Items grouped by VRF (address space), each with its line.
    let mut by_space: HashMap<String, Vec<(u64, Value)>> = HashMap::new();
    for (line, row) in &t.rows {
        let mut o = serde_json::Map::new();
        let mut props = serde_json::Map::new();
        let mut vrf = String::new();
        let mut status = String::new();
        let mut bad = None;
        for (h, v) in t.headers.iter().zip(row) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match (t.kind, h.as_str()) {
                (_, "vrf") => vrf = v.to_string(),
                (_, "status") => status = v.to_ascii_lowercase(),
                (Kind::Prefixes, "prefix") => {
                    o.insert("name".into(), json!(v));
                }
                (Kind::Ranges, "start_address") => match address_part(v) {
                    Some(a) => {
                        o.insert("from".into(), json!(a.to_string()));
                    }
                    None => bad = Some(format!("start_address {v:?} is not an address")),
                },
                (Kind::Ranges, "end_address") => match address_part(v) {
                    Some(a) => {
                        o.insert("to".into(), json!(a.to_string()));
                    }
                    None => bad = Some(format!("end_address {v:?} is not an address")),
                },
                (Kind::Addresses, "address") => match address_part(v) {
                    Some(a) => {
                        o.insert("address".into(), json!(a.to_string()));
                    }
                    None => bad = Some(format!("address {v:?} is not an address")),
                },
                (_, "description") => {
                    props.insert("Description".into(), json!(v));
                }
                (_, col) => match property_of(col) {
                    Some(p) => {
                        props.insert(p, json!(v));
                    }
                    None => {
                        *m.unmapped
                            .entry(format!("{}: {col}", kind_name(t.kind)))
                            .or_default() += 1
                    }
                },
            }
        }
        if let Some(b) = bad {
            m.bad.push((file.clone(), *line, b));
            continue;
        }
        if !status.is_empty() {
            props.insert("NetBoxStatus".into(), json!(status));
        }
        match t.kind {
            Kind::Addresses => {
                let state = match status.as_str() {
                    "reserved" => "Reserved",
                    "deprecated" => "Free",
                    _ => "Assigned",
                };
                o.insert("state".into(), json!(state));
                o.insert("properties".into(), Value::Object(props));
            }
            Kind::Prefixes | Kind::Ranges => {
                let container = status == "container";
                o.insert("isContainer".into(), json!(container));
                if t.kind == Kind::Prefixes {
                    o.insert("subnet".into(), json!(!container));
                }
                o.insert("customProperties".into(), Value::Object(props));
            }
        }
        by_space
            .entry(vrf)
            .or_default()
            .push((*line, Value::Object(o)));
    }
    let (url, field) = match t.kind {
        Kind::Addresses => ("/mmws/api/v2/ipamRecordBatches", "records"),
        _ => ("/mmws/api/v2/rangeBatches", "ranges"),
    };
    for (vrf, items) in by_space {
        for chunk in items.chunks(5000) {
            let mut body = json!({ field: chunk.iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "saveComment": format!("ipamctl import --netbox {file}") });
            if !vrf.is_empty() {
                body["addressSpaceRef"] = json!(vrf);
            }
            let key = format!("netbox-{}", short_hash(&body.to_string()));
            match s
                .call_h("POST", url, Some(body), &[("Idempotency-Key", &key)])
                .await
            {
                Ok(_) => {
                    if t.kind == Kind::Addresses {
                        m.records += chunk.len() as u64;
                    } else {
                        m.ranges += chunk.len() as u64;
                    }
                }
                Err(e) => match e.downcast_ref::<crate::conn::ApiFailure>() {
                    Some(f) if f.status == 400 => {
                        let line = f
                            .index
                            .and_then(|i| chunk.get(i as usize))
                            .map_or(chunk[0].0, |(l, _)| *l);
                        m.bad.push((
                            file.clone(),
                            line,
                            format!(
                                "{} (the {} rows of its batch were not imported)",
                                f.message,
                                chunk.len()
                            ),
                        ));
                    }
                    _ => return Err(e),
                },
            }
        }
    }
    Ok(())
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Prefixes => "prefixes",
        Kind::Ranges => "ip ranges",
        Kind::Addresses => "ip addresses",
    }
}

fn short_hash(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
