//! CSV import (batched, all-or-nothing per batch, idempotent, with progress) and CSV or
//! NDJSON export (streamed).
//!
//! Two layouts, told apart by the header:
//! - records: `address` (required), `state`, `hold_seconds`, and one column per custom
//!   property;
//! - ranges: `cidr`, or `from` and `to`; `name`, `subnet`, `container`, `locked`,
//!   `auto_assign`, and one column per custom property.
//!
//! Empty cells are left out. Export writes the same layouts, so export then import
//! round-trips.
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde_json::{json, Map, Value};

use crate::conn::{encode_query, ApiFailure, Session};
use crate::output::Output;

/// Export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// CSV with a header.
    Csv,
    /// One JSON object per line, as the API shows it.
    Ndjson,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Records,
    Ranges,
}

/// What an import (or a dry run) did.
#[derive(Default)]
pub struct Report {
    rows: u64,
    applied: u64,
    batches: u64,
    replayed: u64,
    skipped_batches: u64,
    bad: Vec<(u64, String)>,
    elapsed: Duration,
    dry_run: bool,
}

/// Prints the report; answers the exit code (7 when rows were refused).
pub fn report(r: &Report, out: Output) -> i32 {
    let rate = r.rows as f64 / r.elapsed.as_secs_f64().max(1e-9);
    if out == Output::Json {
        let v = json!({
            "rows": r.rows, "applied": r.applied, "batches": r.batches,
            "replayedBatches": r.replayed, "skippedBatches": r.skipped_batches,
            "badRows": r.bad.iter().map(|(l, why)| json!({"line": l, "reason": why})).collect::<Vec<_>>(),
            "seconds": r.elapsed.as_secs_f64(), "dryRun": r.dry_run,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (line, why) in r.bad.iter().take(100) {
            eprintln!("line {line}: {why}");
        }
        if r.bad.len() > 100 {
            eprintln!("... and {} more bad rows", r.bad.len() - 100);
        }
        if r.dry_run {
            println!(
                "dry run: {} rows checked, {} bad; nothing was sent",
                r.rows,
                r.bad.len()
            );
        } else {
            println!(
                "{} rows read, {} applied in {} batches ({} already applied before: replayed), {} batches refused, {} bad rows; {:.1} s, {:.0} rows/s",
                r.rows,
                r.applied,
                r.batches,
                r.replayed,
                r.skipped_batches,
                r.bad.len(),
                r.elapsed.as_secs_f64(),
                rate
            );
        }
    }
    if r.bad.is_empty() {
        0
    } else {
        7
    }
}

fn flag(col: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" | "" => Ok(false),
        _ => Err(format!("{col}: {v:?} is not true/false")),
    }
}

const STATES: [&str; 5] = ["Free", "Assigned", "Claimed", "Held", "Reserved"];

/// One row as an API batch item, or why it is bad.
fn item(kind: Kind, headers: &[String], row: &csv::StringRecord) -> Result<Value, String> {
    let mut o = Map::new();
    let mut props = Map::new();
    let mut cidr = false;
    for (h, v) in headers.iter().zip(row.iter()) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match (kind, h.as_str()) {
            (Kind::Records, "address") => {
                v.parse::<IpAddr>()
                    .map_err(|_| format!("address: {v:?} is not an IP address"))?;
                o.insert("address".into(), json!(v));
            }
            (Kind::Records, "state") => {
                let s = STATES
                    .iter()
                    .find(|s| s.eq_ignore_ascii_case(v))
                    .ok_or_else(|| format!("state: {v:?} is not one of {}", STATES.join(", ")))?;
                o.insert("state".into(), json!(s));
            }
            (Kind::Records, "hold_seconds") => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("hold_seconds: {v:?} is not a number"))?;
                o.insert("holdSeconds".into(), json!(n));
            }
            (Kind::Ranges, "cidr") => {
                let (f, t) = cidr_bounds(v).ok_or_else(|| format!("cidr: {v:?} is not a CIDR"))?;
                o.insert("from".into(), json!(f.to_string()));
                o.insert("to".into(), json!(t.to_string()));
                o.entry("name").or_insert(json!(v));
                cidr = true;
            }
            (Kind::Ranges, "from" | "to") => {
                v.parse::<IpAddr>()
                    .map_err(|_| format!("{h}: {v:?} is not an IP address"))?;
                o.insert(h.clone(), json!(v));
            }
            (Kind::Ranges, "name") => {
                o.insert("name".into(), json!(v));
            }
            (Kind::Ranges, "subnet" | "container" | "locked" | "auto_assign") => {
                let key = match h.as_str() {
                    "container" => "isContainer",
                    "auto_assign" => "autoAssign",
                    other => other,
                };
                o.insert(key.into(), json!(flag(h, v)?));
            }
            _ => {
                props.insert(h.clone(), json!(v));
            }
        }
    }
    match kind {
        Kind::Records if !o.contains_key("address") => return Err("no address".into()),
        Kind::Ranges if !o.contains_key("from") || !o.contains_key("to") => {
            return Err("no cidr, and no from and to".into())
        }
        _ => {}
    }
    if cidr && !o.contains_key("subnet") {
        let container = o.get("isContainer") == Some(&Value::Bool(true));
        o.insert("subnet".into(), json!(!container));
    }
    if !props.is_empty() {
        let k = if kind == Kind::Records {
            "properties"
        } else {
            "customProperties"
        };
        o.insert(k.into(), Value::Object(props));
    }
    Ok(Value::Object(o))
}

/// Bounds of a CIDR block with no host bits set.
fn cidr_bounds(s: &str) -> Option<(IpAddr, IpAddr)> {
    let (a, l) = s.split_once('/')?;
    let l: u32 = l.parse().ok()?;
    match a.parse::<IpAddr>().ok()? {
        IpAddr::V4(x) if l <= 32 => {
            let host = if l == 32 { 0 } else { u32::MAX >> l };
            let n = u32::from(x);
            (n & host == 0).then(|| (IpAddr::V4(x), IpAddr::V4((n | host).into())))
        }
        IpAddr::V6(x) if l <= 128 => {
            let host = if l == 128 { 0 } else { u128::MAX >> l };
            let n = u128::from(x);
            (n & host == 0).then(|| (IpAddr::V6(x), IpAddr::V6((n | host).into())))
        }
        _ => None,
    }
}

fn open(path: &Path) -> Result<(csv::Reader<std::fs::File>, Kind, Vec<String>, u64)> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(f);
    let headers: Vec<String> = r
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let lower: Vec<String> = headers
        .iter()
        .map(|h| match h.to_ascii_lowercase().as_str() {
            x @ ("address" | "state" | "hold_seconds" | "cidr" | "from" | "to" | "name"
            | "subnet" | "container" | "locked" | "auto_assign") => x.to_string(),
            _ => h.clone(),
        })
        .collect();
    let kind = if lower.iter().any(|h| h == "address") {
        Kind::Records
    } else if lower.iter().any(|h| h == "cidr")
        || (lower.iter().any(|h| h == "from") && lower.iter().any(|h| h == "to"))
    {
        Kind::Ranges
    } else {
        bail!(
            "{}: the header needs `address` (records) or `cidr` / `from,to` (ranges)",
            path.display()
        );
    };
    Ok((r, kind, lower, size))
}

/// Reads the file in batches and sends each to `session` (or only checks it: `None`).
async fn batches(
    path: &Path,
    size: usize,
    progress: bool,
    mut session: Option<&mut Session>,
) -> Result<Report> {
    let t0 = Instant::now();
    let (mut r, kind, headers, total) = open(path)?;
    let bar = if progress {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30.cyan/blue} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .expect("a valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut rep = Report::default();
    let mut cur: Vec<(u64, Value)> = Vec::with_capacity(size);
    let mut cur_bad: Vec<(u64, String)> = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let more = match r.read_record(&mut rec) {
            Ok(m) => m,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                cur_bad.push((line, format!("unreadable row: {e}")));
                rep.rows += 1;
                continue;
            }
        };
        if more {
            rep.rows += 1;
            let line = rec.position().map_or(0, |p| p.line());
            match item(kind, &headers, &rec) {
                Ok(v) => cur.push((line, v)),
                Err(why) => cur_bad.push((line, why)),
            }
        }
        let pending = !(cur.is_empty() && cur_bad.is_empty());
        if cur.len() + cur_bad.len() >= size || (!more && pending) {
            if cur_bad.is_empty() {
                let items = std::mem::take(&mut cur);
                let res = match session.as_deref_mut() {
                    Some(s) => send(s, path, kind, items).await?,
                    None => BatchResult {
                        applied: items.len() as u64,
                        replayed: false,
                        bad: None,
                    },
                };
                rep.batches += 1;
                rep.applied += res.applied;
                rep.replayed += u64::from(res.replayed);
                if let Some(bad) = res.bad {
                    rep.skipped_batches += 1;
                    rep.bad.push(bad);
                }
            } else {
                // Nothing of a batch with a bad row is applied.
                rep.skipped_batches += 1;
                rep.bad.append(&mut cur_bad);
                cur.clear();
            }
            let el = t0.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(r.position().byte());
            bar.set_message(format!(
                "{} rows, {:.0} rows/s",
                rep.rows,
                rep.rows as f64 / el
            ));
        }
        if !more {
            break;
        }
    }
    bar.finish_and_clear();
    rep.elapsed = t0.elapsed();
    Ok(rep)
}

/// What the server did with one batch.
pub struct BatchResult {
    applied: u64,
    replayed: bool,
    /// The row it refused (and so nothing of the batch was applied).
    bad: Option<(u64, String)>,
}

/// Checks every row; sends nothing.
pub async fn check_file(path: &Path, size: usize) -> Result<Report> {
    let mut rep = batches(path, size.max(1), false, None).await?;
    rep.applied = 0;
    rep.dry_run = true;
    Ok(rep)
}

fn key_of(kind: Kind, items: &[(u64, Value)]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(if kind == Kind::Records {
        b"records"
    } else {
        b"ranges!"
    });
    for (_, v) in items {
        ctx.update(v.to_string().as_bytes());
        ctx.update(b"\n");
    }
    let d = ctx.finish();
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("import-{hex}")
}

/// Imports a CSV file in batches through the bulk API.
pub async fn import(s: &mut Session, path: &Path, size: usize, progress: bool) -> Result<Report> {
    batches(path, size.clamp(1, 100_000), progress, Some(s)).await
}

/// Sends one batch, all or nothing, with an idempotency key made from its content (so a
/// rerun after an interruption replays what was applied instead of applying it twice).
async fn send(
    s: &mut Session,
    path: &Path,
    kind: Kind,
    items: Vec<(u64, Value)>,
) -> Result<BatchResult> {
    let key = key_of(kind, &items);
    let (url, field) = match kind {
        Kind::Records => ("/mmws/api/v2/ipamRecordBatches", "records"),
        Kind::Ranges => ("/mmws/api/v2/rangeBatches", "ranges"),
    };
    let body = json!({ field: items.iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "saveComment": format!("ipamctl import {}", path.display()) });
    match s
        .call_h("POST", url, Some(body), &[("Idempotency-Key", &key)])
        .await
    {
        Ok(r) => Ok(BatchResult {
            applied: items.len() as u64,
            replayed: r["replayed"] == true,
            bad: None,
        }),
        Err(e) => match e.downcast_ref::<ApiFailure>() {
            Some(f) if f.status == 400 || f.status == 409 => {
                let line = f
                    .index
                    .and_then(|i| items.get(i as usize))
                    .map_or(items[0].0, |(l, _)| *l);
                Ok(BatchResult {
                    applied: 0,
                    replayed: false,
                    bad: Some((line, f.message.clone())),
                })
            }
            _ => Err(e),
        },
    }
}

/// One line on stdout (an error, not a panic, when the reader has gone).
fn line_out(s: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.write_all(b"\n")
}

fn csv_out() -> csv::Writer<std::io::Stdout> {
    csv::Writer::from_writer(std::io::stdout())
}

async fn property_names(s: &mut Session, coll: &str) -> Result<Vec<String>> {
    let r = s
        .call(
            "GET",
            &format!("/mmws/api/v2/{coll}/propertyDefinitions"),
            None,
        )
        .await?;
    Ok(r["propertyDefinitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn b(v: &Value) -> &'static str {
    if v == &Value::Bool(true) {
        "true"
    } else {
        "false"
    }
}

/// Exports ranges (every page, in address order).
pub async fn export_ranges(s: &mut Session, filter: Option<&str>, format: Format) -> Result<()> {
    let mut props = vec!["Title".to_string(), "Description".to_string()];
    props.extend(property_names(s, "ranges").await?);
    let mut w = csv_out();
    if format == Format::Csv {
        let mut h = vec![
            "from",
            "to",
            "name",
            "subnet",
            "container",
            "locked",
            "auto_assign",
        ];
        h.extend(props.iter().map(String::as_str));
        w.write_record(&h)?;
    }
    let mut cursor: Option<String> = None;
    loop {
        let mut q = "limit=10000".to_string();
        if let Some(f) = filter {
            q.push_str(&format!("&filter={}", encode_query(f)));
        }
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={}", encode_query(c)));
        }
        let r = s
            .call("GET", &format!("/mmws/api/v2/ranges?{q}"), None)
            .await?;
        for x in r["ranges"].as_array().cloned().unwrap_or_default() {
            match format {
                Format::Ndjson => line_out(&x.to_string())?,
                Format::Csv => {
                    let mut row = vec![
                        crate::output::text(&x["from"]),
                        crate::output::text(&x["to"]),
                        crate::output::text(&x["name"]),
                        b(&x["subnet"]).into(),
                        b(&x["isContainer"]).into(),
                        b(&x["locked"]).into(),
                        b(&x["autoAssign"]).into(),
                    ];
                    row.extend(
                        props
                            .iter()
                            .map(|p| crate::output::text(&x["customProperties"][p])),
                    );
                    w.write_record(&row)?;
                }
            }
        }
        match r["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    w.flush()?;
    Ok(())
}

fn record_header(w: &mut csv::Writer<std::io::Stdout>, props: &[String]) -> Result<()> {
    let mut h = vec!["address", "state"];
    h.extend(props.iter().map(String::as_str));
    w.write_record(&h)?;
    Ok(())
}

fn record_row(v: &Value, props: &[String]) -> Vec<String> {
    let mut row = vec![
        crate::output::text(&v["address"]),
        crate::output::text(&v["state"]),
    ];
    row.extend(
        props
            .iter()
            .map(|p| crate::output::text(&v["customProperties"][p])),
    );
    row
}

/// Exports the records of a range that match `filter`, page by page (cursor paging).
pub async fn export_records_filtered(
    s: &mut Session,
    range: &str,
    filter: &str,
    format: Format,
) -> Result<()> {
    let props = property_names(s, "ipamRecords").await?;
    let mut w = csv_out();
    if format == Format::Csv {
        record_header(&mut w, &props)?;
    }
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("limit=10000&filter={}", encode_query(filter));
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={}", encode_query(c)));
        }
        let r = s
            .call("GET", &format!("{range}/ipamRecords?{q}"), None)
            .await?;
        for v in r["ipamRecords"].as_array().cloned().unwrap_or_default() {
            match format {
                Format::Ndjson => line_out(&v.to_string())?,
                Format::Csv => w.write_record(record_row(&v, &props))?,
            }
        }
        match r["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    w.flush()?;
    Ok(())
}

/// Exports a range's records, streamed from `recordExport`.
pub async fn export_records(
    s: &mut Session,
    range: &str,
    only_used: bool,
    format: Format,
) -> Result<()> {
    let props = property_names(s, "ipamRecords").await?;
    let mut w = csv_out();
    if format == Format::Csv {
        record_header(&mut w, &props)?;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut failure: Option<String> = None;
    let stdout = std::io::stdout();
    let path = format!("{range}/recordExport?onlyUsed={only_used}");
    s.client
        .stream(&path, |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let v: Value = serde_json::from_slice(&line)
                    .map_err(|e| std::io::Error::other(format!("bad export line: {e}")))?;
                if v.get("error").is_some() {
                    failure = Some(
                        v["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    continue;
                }
                match format {
                    Format::Ndjson => {
                        let mut o = stdout.lock();
                        o.write_all(&line)?;
                    }
                    Format::Csv => w
                        .write_record(record_row(&v, &props))
                        .map_err(std::io::Error::other)?,
                }
            }
            Ok(())
        })
        .await?;
    w.flush()?;
    if let Some(f) = failure {
        bail!("the export stopped early: {f}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(v.to_vec())
    }

    #[test]
    fn rows_become_items_or_reasons() {
        let h: Vec<String> = ["address", "state", "Owner"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = item(Kind::Records, &h, &row(&["10.0.0.1", "assigned", "alice"])).unwrap();
        assert_eq!(
            v,
            json!({"address": "10.0.0.1", "state": "Assigned", "properties": {"Owner": "alice"}})
        );
        assert!(item(Kind::Records, &h, &row(&["10.0.0.300", "", ""]))
            .unwrap_err()
            .contains("not an IP"));
        assert!(item(Kind::Records, &h, &row(&["10.0.0.1", "sideways", ""]))
            .unwrap_err()
            .contains("state"));
        let h: Vec<String> = ["cidr", "name", "container", "Title"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = item(Kind::Ranges, &h, &row(&["10.1.0.0/16", "lab", "yes", "t"])).unwrap();
        assert_eq!(
            v,
            json!({"from": "10.1.0.0", "to": "10.1.255.255", "name": "lab", "isContainer": true,
                   "subnet": false, "customProperties": {"Title": "t"}})
        );
        assert!(item(Kind::Ranges, &h, &row(&["10.1.0.1/16", "", "", ""]))
            .unwrap_err()
            .contains("not a CIDR"));
    }
}
