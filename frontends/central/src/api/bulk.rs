//! Our additions, under names Micetro does not use: atomic bulk allocation
//! (`addressAllocations`) and release (`addressReleases`), both with `Idempotency-Key`, and
//! the streamed NDJSON export of a range's records (`ranges/{ref}/recordExport`).
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use ipam_engine::{AllocMode, AllocRequest, Command, Outcome, Transaction};
use serde_json::{json, Value};

use super::params::{as_string, properties, property_text};
use super::ranges::{self, parse_cidr, space_id, space_param};
use super::records::render_record;
use super::{parse_addr, ApiError, ApiResult, Ctx, Reply, Target};

const ALLOC_FIELDS: [&str; 13] = [
    "pool",
    "rangeRef",
    "count",
    "mode",
    "holdSeconds",
    "temporaryClaimTime",
    "startAddress",
    "random",
    "exclude",
    "properties",
    "saveComment",
    "addressSpaceRef",
    "addressSpace",
];

fn idempotency_key(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    match ctx.headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be text"))?
                .trim();
            if s.is_empty() || s.len() > 255 {
                return Err(ApiError::invalid(
                    "Idempotency-Key must be 1 to 255 characters",
                ));
            }
            Ok(Some(format!("u{}:{s}", ctx.user)))
        }
    }
}

fn unknown_fields(ctx: &Ctx, known: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = ctx
        .params
        .keys()
        .find(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
    {
        return Err(ApiError::invalid(format!(
            "unknown field {k:?}; known: {}",
            known.join(", ")
        )));
    }
    Ok(())
}

fn exclusion(s: &str) -> Result<(IpAddr, IpAddr), ApiError> {
    if let Some(b) = parse_cidr(s) {
        return Ok(b);
    }
    if let Some((a, b)) = s.split_once('-') {
        return Ok((parse_addr("exclude", a)?, parse_addr("exclude", b)?));
    }
    let a = parse_addr("exclude", s)?;
    Ok((a, a))
}

/// `POST addressAllocations`: `count` addresses from the ranges of `pool` (refs, in order),
/// all or nothing; `mode` assign (default), claim or hold (`holdSeconds`).
pub(crate) async fn allocate(ctx: &Ctx) -> ApiResult {
    unknown_fields(ctx, &ALLOC_FIELDS)?;
    let refs: Vec<String> = match (ctx.params.get("pool"), ctx.params.string("rangeRef")?) {
        (Some(Value::Array(a)), None) => a
            .iter()
            .map(|v| as_string("pool", v))
            .collect::<Result<_, _>>()?,
        (Some(v), None) => vec![as_string("pool", v)?],
        (None, Some(r)) => vec![r],
        (Some(_), Some(_)) => return Err(ApiError::invalid("give pool or rangeRef, not both")),
        (None, None) => return Err(ApiError::invalid("pool (a list of range refs) is required")),
    };
    if refs.is_empty() || refs.len() > 1024 {
        return Err(ApiError::invalid("pool must name 1 to 1024 ranges"));
    }
    let count = ctx
        .params
        .u64("count")?
        .ok_or_else(|| ApiError::invalid("count is required"))?;
    if count == 0 || count > ctx.app.max_bulk as u64 {
        return Err(ApiError::invalid(format!(
            "count must be 1 to {} (the bulk limit)",
            ctx.app.max_bulk
        )));
    }
    let hold = match (
        ctx.params.u64("holdSeconds")?,
        ctx.params.u64("temporaryClaimTime")?,
    ) {
        (Some(a), _) | (None, Some(a)) => Some(a),
        _ => None,
    };
    let mode = match ctx
        .params
        .string("mode")?
        .map(|m| m.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("assign") | Some("assigned") => match hold {
            Some(s) if ctx.params.get("mode").is_none() => AllocMode::Hold { seconds: s },
            _ => AllocMode::Assign,
        },
        Some("claim") | Some("claimed") => AllocMode::Claim,
        Some("hold") | Some("held") => AllocMode::Hold {
            seconds: hold
                .filter(|s| *s > 0)
                .ok_or_else(|| ApiError::invalid("mode hold needs holdSeconds"))?,
        },
        Some(m) => {
            return Err(ApiError::invalid(format!(
                "mode {m:?}: use assign, claim or hold"
            )))
        }
    };
    let start = ctx
        .params
        .string("startAddress")?
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_addr("startAddress", &s))
        .transpose()?;
    let random = ctx.params.bool("random")?.unwrap_or(false);
    let exclude = match ctx.params.get("exclude") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| exclusion(&as_string("exclude", v)?))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("exclude must be a list")),
    };
    let mut props = std::collections::BTreeMap::new();
    if let Some(p) = ctx.params.get("properties") {
        for (k, v) in properties(p)? {
            props.insert(k.clone(), property_text(&k, &v)?);
        }
    }
    let space = space_param(ctx)?;
    let pool = ctx
        .lookup(move |v| {
            let s = space_id(v, space.as_deref())?;
            refs.iter()
                .map(|r| {
                    let t = super::records::range_target(r);
                    let obj = t
                        .obj
                        .ok_or_else(|| ipam_engine::EngineError::NotFound(format!("range {r}")))?;
                    let id = ranges::range_id(v, s, &obj)?;
                    v.range(id)?;
                    Ok(id)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let r = ctx
        .submit_txn(Transaction {
            user: ctx.user,
            comment: ctx.params.string("saveComment")?.unwrap_or_default(),
            idempotency_key: idempotency_key(ctx)?,
            commands: vec![Command::AllocateAddresses(AllocRequest {
                pool,
                count: u32::try_from(count).unwrap_or(u32::MAX),
                start,
                random,
                exclude,
                mode,
                properties: props,
            })],
        })
        .await?;
    let addrs = match r.outcomes.into_iter().next() {
        Some(Outcome::Addresses(a)) => a,
        other => return Err(ApiError::invalid(format!("unexpected outcome {other:?}"))),
    };
    if !r.replayed {
        ctx.app
            .metrics
            .allocations
            .fetch_add(addrs.len() as u64, Relaxed);
    }
    Ok(Reply::Created(json!({
        "addresses": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "replayed": r.replayed,
        "sequence": r.seq,
    })))
}

/// `POST addressReleases`: frees `addresses` (and drops their data), all or nothing.
pub(crate) async fn release(ctx: &Ctx) -> ApiResult {
    unknown_fields(
        ctx,
        &[
            "addresses",
            "saveComment",
            "addressSpaceRef",
            "addressSpace",
        ],
    )?;
    let list = match ctx.params.get("addresses") {
        Some(Value::Array(a)) => a.clone(),
        _ => return Err(ApiError::invalid("addresses (a list) is required")),
    };
    if list.is_empty() || list.len() > ctx.app.max_bulk {
        return Err(ApiError::invalid(format!(
            "addresses must hold 1 to {} entries (the bulk limit)",
            ctx.app.max_bulk
        )));
    }
    let addrs: Vec<IpAddr> = list
        .iter()
        .map(|v| parse_addr("addresses", &as_string("addresses", v)?))
        .collect::<Result<_, _>>()?;
    let space = space_param(ctx)?;
    let space = ctx.lookup(move |v| space_id(v, space.as_deref())).await?;
    let n = addrs.len();
    let r = ctx
        .submit_txn(Transaction {
            user: ctx.user,
            comment: ctx.params.string("saveComment")?.unwrap_or_default(),
            idempotency_key: idempotency_key(ctx)?,
            commands: addrs
                .into_iter()
                .map(|addr| Command::ReleaseRecord { space, addr })
                .collect(),
        })
        .await?;
    if !r.replayed {
        ctx.app.metrics.releases.fetch_add(n as u64, Relaxed);
    }
    Ok(Reply::Ok(
        json!({"released": n, "replayed": r.replayed, "sequence": r.seq}),
    ))
}

/// Addresses per chunk of the export (each chunk is one consistent read).
const EXPORT_CHUNK: usize = 4096;

/// `GET ranges/{ref}/recordExport`: one JSON record per line, every address of the range
/// (`onlyUsed=true`: used or annotated ones only), streamed in chunks, never truncated.
pub(crate) async fn export(ctx: &Ctx, t: &Target) -> ApiResult {
    let id = ranges::resolve(ctx, t).await?;
    let only_used = ctx.params.bool("onlyUsed")?.unwrap_or(false);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let app = ctx.app.clone();
    let user = ctx.user;
    tokio::spawn(async move {
        let mut next: Option<IpAddr> = None;
        loop {
            let a = app.clone();
            let start = next;
            // Each chunk is a heavy read of its own: admitted like the others (so an export
            // yields its place between chunks) and run on the low-priority scan threads.
            let deadline = std::time::Instant::now() + app.read_limits.timeout;
            let Ok(admitted) = app.heavy_reads.admit(user, deadline).await else {
                let line = json!({"error": {"code": super::codes::BUSY, "message": "too many listings or searches are running: the export stopped; start it again from nextCursor of the last record"}});
                let _ = tx.send(Ok(Bytes::from(format!("{line}\n")))).await;
                let _ = tx.send(Err(std::io::Error::other("export stopped"))).await;
                return;
            };
            let chunk = app
                .scans
                .run(move || {
                    let _admitted = admitted;
                    a.engine.read(user, move |v| {
                        let r = v.range(id)?.range;
                        let from = start.unwrap_or(r.from);
                        let mut out = Vec::with_capacity(EXPORT_CHUNK * 200);
                        let mut last = None;
                        let recs = if only_used {
                            v.records(id, Some(from), EXPORT_CHUNK)?
                        } else {
                            let mut recs = Vec::with_capacity(EXPORT_CHUNK);
                            let mut a = Some(from);
                            while let Some(x) = a.filter(|x| *x <= r.to) {
                                if recs.len() == EXPORT_CHUNK {
                                    break;
                                }
                                recs.push(v.record(r.space, x)?);
                                a = super::records::next_addr(x);
                            }
                            recs
                        };
                        let full = recs.len() == EXPORT_CHUNK;
                        for rec in &recs {
                            serde_json::to_writer(&mut out, &render_record(v, rec))
                                .expect("JSON values serialize");
                            out.push(b'\n');
                            last = Some(rec.addr);
                        }
                        let next = last
                            .and_then(super::records::next_addr)
                            .filter(|n| full && *n <= r.to);
                        Ok((out, next))
                    })
                })
                .await;
            let (bytes, n) = match chunk {
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    // Headers are gone: end the stream with an error line the client can see
                    // (a request id; the database's words go to the log).
                    let id = super::request_id();
                    tracing::error!(request_id = %id, code = 5010, "export: {e}");
                    let line = json!({"error": {"code": 5010, "requestId": id, "message": format!(
                        "the database failed during the export (request id {id}: the server's log has the details)"
                    )}});
                    let _ = tx.send(Ok(Bytes::from(format!("{line}\n")))).await;
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
                None => return,
            };
            if !bytes.is_empty() && tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return; // the client went away
            }
            match n {
                Some(n) => next = Some(n),
                None => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        super::stream_body(stream),
    )
        .into_response();
    Ok(Reply::Raw(resp))
}

fn batch_items<'a>(ctx: &'a Ctx, key: &str) -> Result<&'a Vec<Value>, ApiError> {
    let items = match ctx.params.get(key) {
        Some(Value::Array(a)) => a,
        _ => return Err(ApiError::invalid(format!("{key} (a list) is required"))),
    };
    if items.is_empty() || items.len() > ctx.app.max_bulk {
        return Err(ApiError::invalid(format!(
            "{key} must hold 1 to {} entries (the bulk limit)",
            ctx.app.max_bulk
        )));
    }
    Ok(items)
}

/// `POST rangeBatches`: `{"ranges": [range objects as POST ranges takes], "saveComment"}`,
/// all created in one transaction (a parent before its children, in any order given).
pub(crate) async fn range_batch(ctx: &Ctx) -> ApiResult {
    unknown_fields(
        ctx,
        &["ranges", "saveComment", "addressSpaceRef", "addressSpace"],
    )?;
    let items = batch_items(ctx, "ranges")?;
    let mut ranges = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let o = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("each range is an object").at(i))?;
        let (nr, space) = ranges::new_range(o).map_err(|e| e.at(i))?;
        if space.is_some() {
            return Err(ApiError::invalid(
                "give addressSpaceRef once for the batch, not per range",
            )
            .at(i));
        }
        ranges.push(nr);
    }
    let space = space_param(ctx)?;
    let space = ctx.lookup(move |v| space_id(v, space.as_deref())).await?;
    let n = ranges.len();
    let r = ctx
        .submit_txn(Transaction {
            user: ctx.user,
            comment: ctx.params.string("saveComment")?.unwrap_or_default(),
            idempotency_key: idempotency_key(ctx)?,
            commands: ranges
                .into_iter()
                .map(|nr| {
                    Command::CreateRange(ipam_engine::NewRange {
                        space: Some(space),
                        ..nr
                    })
                })
                .collect(),
        })
        .await?;
    let refs: Vec<String> = r
        .outcomes
        .into_iter()
        .filter_map(|o| match o {
            Outcome::Created(r) => Some(r),
            _ => None,
        })
        .collect();
    Ok(Reply::Created(
        json!({"created": n, "refs": refs, "replayed": r.replayed, "sequence": r.seq}),
    ))
}

/// `POST ipamRecordBatches`: `{"records": [{"address", "state", "properties"}], ...}`, all
/// set in one transaction; properties are merged (`deleteUnspecified` per batch).
pub(crate) async fn record_batch(ctx: &Ctx) -> ApiResult {
    unknown_fields(
        ctx,
        &[
            "records",
            "saveComment",
            "addressSpaceRef",
            "addressSpace",
            "deleteUnspecified",
        ],
    )?;
    let items = batch_items(ctx, "records")?;
    let delete_unspecified = ctx.params.bool("deleteUnspecified")?.unwrap_or(false);
    let mut recs = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let o = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("each record is an object").at(i))?;
        let mut patch = ipam_engine::RecordPatch {
            delete_unspecified,
            ..Default::default()
        };
        let mut addr = None;
        for (k, v) in o {
            match k.to_ascii_lowercase().as_str() {
                "address" => {
                    addr = Some(
                        parse_addr("address", &as_string(k, v).map_err(|e| e.at(i))?)
                            .map_err(|e| e.at(i))?,
                    )
                }
                "state" => {
                    let s = as_string(k, v).map_err(|e| e.at(i))?;
                    patch.state = Some(super::render::parse_state(&s).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "state {s:?}: use Free, Assigned, Claimed, Held or Reserved"
                        ))
                        .at(i)
                    })?);
                }
                "holdseconds" => {
                    patch.hold_seconds =
                        Some(super::params::as_u64(k, v).map_err(|e| e.at(i))?)
                }
                "properties" | "customproperties" => {
                    for (pk, pv) in properties(v).map_err(|e| e.at(i))? {
                        let text = property_text(&pk, &pv).map_err(|e| e.at(i))?;
                        patch.properties.insert(pk, text);
                    }
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "unknown field {other:?} in a record; known: address, state, holdSeconds, properties"
                    ))
                    .at(i))
                }
            }
        }
        let addr = addr.ok_or_else(|| ApiError::invalid("each record needs an address").at(i))?;
        recs.push((addr, patch));
    }
    let space = space_param(ctx)?;
    let space = ctx.lookup(move |v| space_id(v, space.as_deref())).await?;
    let n = recs.len();
    let r = ctx
        .submit_txn(Transaction {
            user: ctx.user,
            comment: ctx.params.string("saveComment")?.unwrap_or_default(),
            idempotency_key: idempotency_key(ctx)?,
            commands: recs
                .into_iter()
                .map(|(addr, patch)| Command::SetRecord { space, addr, patch })
                .collect(),
        })
        .await?;
    Ok(Reply::Ok(
        json!({"applied": n, "replayed": r.replayed, "sequence": r.seq}),
    ))
}
