//! `ipam-store-postgres`: the PostgreSQL store for ipam's engine.
//!
//! The same tables as the SQLite store (`meta`, `changes`, `objects`, `ipam_records`,
//! `idempotency`) in one schema of one database. A group commit is one database transaction;
//! its change rows and object images go in with a handful of `INSERT ... SELECT FROM unnest(...)`
//! statements (one per table, whatever the batch size), so that commits of thousands of changes
//! cost a few round trips.
//!
//! High availability: several Centrals may share one schema. The writer holds a session-level
//! advisory lock on the connection it commits with (so a writer that loses its connection can
//! no longer commit) and records its name in `active_writer`; every commit sends a
//! notification that standbys LISTEN for before catching up by sequence number.
//!
//! The schema is versioned: [`SCHEMA_VERSION`] steps, applied in order under an advisory
//! lock, each in its own transaction; a database from a newer version is refused.

use std::collections::HashMap;
use std::sync::Arc;

use ipam_engine::{
    expand_run, record_from_row, record_row_addr, run_length, Change, CommitBatch, HistoryQuery,
    IdempotencyEntry, Millis, ObjKey, ObjType, Object, Store, StoreError, StoreMeta, StoreReader,
    MAX_RUN,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Row};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Schema migrations: step `i` moves the schema from version `i` to `i + 1` (step 0 creates
/// it).
const MIGRATIONS: [&str; 3] = [
    SCHEMA,
    // 2: the active writer's name (high availability), history by user.
    "CREATE TABLE IF NOT EXISTS active_writer (id INT PRIMARY KEY, instance TEXT NOT NULL, since BIGINT NOT NULL);
     CREATE INDEX IF NOT EXISTS changes_by_user ON changes (user_id, seq);",
    // 3: runs: one change-log row for a run of bulk-allocated addresses (`run_length`).
    "ALTER TABLE changes ADD COLUMN IF NOT EXISTS run INT NOT NULL DEFAULT 1;",
];

/// The first schema version with the `run` column.
const RUNS: i64 = 3;

/// The PostgreSQL store.
pub struct PostgresStore {
    client: Client,
    url: String,
    schema: String,
    /// A second connection that LISTENs for other instances' commits (standbys only).
    listener: Option<Client>,
    /// The schema version this handle opened (older only in migration tests).
    version: i64,
    /// The group commit statement, prepared on first use.
    commit_stmt: Option<postgres::Statement>,
}

/// The advisory lock key of a schema's writer role.
fn lock_key(schema: &str, what: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in what.bytes().chain([b':']).chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

fn channel(schema: &str) -> String {
    format!("ipam_changes_{schema}")
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn db(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> StoreError {
    let context = context.into();
    move |e| StoreError::backend(context, e)
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    seq BIGINT PRIMARY KEY,
    time BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    comment TEXT NOT NULL,
    obj_type TEXT NOT NULL,
    obj_ref TEXT NOT NULL,
    obj_key BIGINT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS changes_by_object ON changes (obj_key, seq);
CREATE TABLE IF NOT EXISTS objects (
    obj_type TEXT NOT NULL,
    id BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (obj_type, id)
);
CREATE TABLE IF NOT EXISTS ipam_records (
    space BIGINT NOT NULL,
    addr BYTEA NOT NULL,
    state SMALLINT NOT NULL,
    data TEXT,
    PRIMARY KEY (space, addr)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    hash BYTEA NOT NULL,
    result TEXT NOT NULL,
    time BIGINT NOT NULL
);
";

fn quote_ident(s: &str) -> Result<String, StoreError> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Corrupt {
            what: format!("schema name {s:?}: use letters, digits and _ only"),
        });
    }
    Ok(format!("\"{s}\""))
}

fn connect(url: &str, schema: &str) -> Result<Client, StoreError> {
    let mut cfg: postgres::Config = url.parse().map_err(db("parsing the connection string"))?;
    // Bounded waits: a server that vanishes (host down, network cut) is noticed in about
    // 20 s by the client, so a commit fails (and the engine stops) instead of hanging.
    let secs = std::time::Duration::from_secs;
    cfg.connect_timeout(secs(10))
        .keepalives(true)
        .keepalives_idle(secs(5))
        .keepalives_interval(secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(secs(20));
    let mut client = cfg.connect(NoTls).map_err(db("connecting to PostgreSQL"))?;
    let q = quote_ident(schema)?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}"
        ))
        .map_err(db(format!("selecting schema {schema}")))?;
    Ok(client)
}

impl PostgresStore {
    /// Connects (`url` as libpq key/value or URI, no TLS: use a local socket or loopback),
    /// creates or checks the schema `schema`, and refuses data from a newer version.
    pub fn open(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        Self::open_at_version(url, schema, SCHEMA_VERSION)
    }

    /// Opens, migrating the schema only up to `version` (tests of migrations).
    #[doc(hidden)]
    pub fn open_at_version(
        url: &str,
        schema: &str,
        version: i64,
    ) -> Result<PostgresStore, StoreError> {
        let mut client = connect(url, schema)?;
        let current = schema_version(&mut client)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: current as u32,
                supported: SCHEMA_VERSION as u32,
            });
        }
        while schema_version(&mut client)? < version {
            let mut tx = client.transaction().map_err(db("starting a migration"))?;
            // One migrator at a time; the others find the work done.
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&lock_key(schema, "migrate")],
            )
            .map_err(db("waiting for the migration lock"))?;
            let has_meta: bool = tx
                .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
                .map_err(db("checking the schema"))?
                .get(0);
            let v: i64 = if has_meta {
                tx.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                    .map_err(db("reading the schema version"))?
                    .map_or(0, |r| r.get(0))
            } else {
                0
            };
            if v >= version {
                break;
            }
            let ctx = format!("migrating the schema from version {v} to {}", v + 1);
            tx.batch_execute(MIGRATIONS[v as usize])
                .map_err(db(ctx.clone()))?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1), ('next_id', 1), ('last_seq', 0) ON CONFLICT DO NOTHING",
                &[&(v + 1)],
            )
            .map_err(db(ctx.clone()))?;
            tx.execute(
                "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                &[&(v + 1)],
            )
            .map_err(db(ctx.clone()))?;
            tx.commit().map_err(db(ctx))?;
        }
        let version = schema_version(&mut client)?;
        Ok(PostgresStore {
            client,
            url: url.to_string(),
            schema: schema.to_string(),
            listener: None,
            version,
            commit_stmt: None,
        })
    }
}

/// The schema's version; 0 when it has no tables yet.
fn schema_version(client: &mut Client) -> Result<i64, StoreError> {
    let has_meta: bool = client
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .map_err(db("checking the schema"))?
        .get(0);
    if !has_meta {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .map_err(db("reading the schema version"))?
        .map_or(0, |r| r.get(0)))
}

/// A whole group commit as one statement (data-modifying CTEs run even when unreferenced;
/// each key appears at most once per table, so they never touch the same row twice). The
/// notification for standbys is delivered when it commits.
fn commit_sql(runs: bool) -> String {
    let (run_col, run_arr) = if runs {
        (", run", ", $30::int[]")
    } else {
        ("", "")
    };
    format!("
WITH
 c AS (INSERT INTO changes (seq, time, user_id, user_name, comment, obj_type, obj_ref, obj_key, before, after{run_col})
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[]{run_arr})),
 r AS (INSERT INTO ipam_records (space, addr, state, data)
       SELECT * FROM unnest($11::bigint[], $12::bytea[], $13::smallint[], $14::text[])
       ON CONFLICT (space, addr) DO UPDATE SET state = excluded.state, data = excluded.data),
 rd AS (DELETE FROM ipam_records x USING unnest($15::bigint[], $16::bytea[]) AS d(space, addr)
        WHERE x.space = d.space AND x.addr = d.addr),
 o AS (INSERT INTO objects (obj_type, id, data) SELECT * FROM unnest($17::text[], $18::bigint[], $19::text[])
       ON CONFLICT (obj_type, id) DO UPDATE SET data = excluded.data),
 od AS (DELETE FROM objects x USING unnest($20::text[], $21::bigint[]) AS d(obj_type, id)
        WHERE x.obj_type = d.obj_type AND x.id = d.id),
 i AS (INSERT INTO idempotency (key, hash, result, time)
       SELECT * FROM unnest($22::text[], $23::bytea[], $24::text[], $25::bigint[])
       ON CONFLICT (key) DO UPDATE SET hash = excluded.hash, result = excluded.result, time = excluded.time),
 m AS (UPDATE meta SET value = CASE key WHEN 'next_id' THEN $26::bigint ELSE COALESCE($27::bigint, value) END
       WHERE key IN ('next_id', 'last_seq'))
SELECT pg_notify($29::text, $28::text) WHERE $28::text IS NOT NULL
")
}

/// The change log's columns as this build reads them (`run` is 1 before version 3).
fn change_columns(version: i64) -> &'static str {
    if version >= RUNS {
        "seq, time, user_id, user_name, comment, obj_type, obj_ref, before, after, run"
    } else {
        "seq, time, user_id, user_name, comment, obj_type, obj_ref, before, after, 1 AS run"
    }
}

fn decode_changes(row: &Row) -> Result<Vec<Change>, StoreError> {
    let seq: i64 = row.get(0);
    let obj_type: String = row.get(5);
    let obj_ref: String = row.get(6);
    let t = ObjType::from_name(&obj_type)
        .ok_or_else(|| corrupt(format!("change {seq}: unknown object type {obj_type:?}")))?;
    let key = ObjKey::parse_ref(&obj_ref)
        .ok_or_else(|| corrupt(format!("change {seq}: bad object ref {obj_ref:?}")))?;
    let image = |v: Option<String>| -> Result<Option<Object>, StoreError> {
        v.map(|j| {
            Object::from_json(t, &j).map_err(|e| corrupt(format!("change {seq}: bad image: {e}")))
        })
        .transpose()
    };
    let first = Change {
        seq: seq as u64,
        time: row.get(1),
        user_id: row.get::<_, i64>(2) as u64,
        user: Arc::from(row.get::<_, String>(3)),
        comment: Arc::from(row.get::<_, String>(4)),
        key,
        before: image(row.get(7))?,
        after: image(row.get(8))?,
    };
    expand_run(first, i64::from(row.get::<_, i32>(9)))
}

impl Store for PostgresStore {
    fn meta(&mut self) -> Result<StoreMeta, StoreError> {
        let rows = self
            .client
            .query("SELECT key, value FROM meta", &[])
            .map_err(db("reading counters"))?;
        let get = |k: &str| {
            rows.iter()
                .find(|r| r.get::<_, String>(0) == k)
                .map(|r| r.get::<_, i64>(1))
        };
        Ok(StoreMeta {
            last_seq: get("last_seq").ok_or_else(|| corrupt("meta has no last_seq"))? as u64,
            next_id: get("next_id").ok_or_else(|| corrupt("meta has no next_id"))? as u64,
        })
    }

    fn load_objects(&mut self, f: &mut dyn FnMut(Object)) -> Result<(), StoreError> {
        for row in self
            .client
            .query("SELECT obj_type, id, data FROM objects", &[])
            .map_err(db("loading objects"))?
        {
            let t: String = row.get(0);
            let id: i64 = row.get(1);
            let data: String = row.get(2);
            let ty = ObjType::from_name(&t)
                .ok_or_else(|| corrupt(format!("object {t}/{id}: unknown type")))?;
            f(Object::from_json(ty, &data)
                .map_err(|e| corrupt(format!("object {t}/{id}: {e}")))?);
        }
        for row in self
            .client
            .query("SELECT space, addr, state, data FROM ipam_records", &[])
            .map_err(db("loading address records"))?
        {
            let data: Option<String> = row.get(3);
            let addr: Vec<u8> = row.get(1);
            f(Object::IpamRecord(record_from_row(
                row.get(0),
                &addr,
                i64::from(row.get::<_, i16>(2)),
                data.as_deref(),
            )?));
        }
        Ok(())
    }

    fn changes_after(&mut self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        // A run row starts at most MAX_RUN - 1 before the first change it holds.
        let sql = format!(
            "SELECT {} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            change_columns(self.version)
        );
        let from = after.saturating_sub(MAX_RUN as u64) as i64;
        let rows = self
            .client
            .query(&sql, &[&from, &((limit + MAX_RUN) as i64)])
            .map_err(db("reading the change log"))?;
        let mut out = Vec::new();
        for row in &rows {
            for c in decode_changes(row)? {
                if c.seq > after && out.len() < limit {
                    out.push(c);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn commit(&mut self, b: &CommitBatch<'_>) -> Result<(), StoreError> {
        let ctx = || format!("committing a batch of {} changes", b.changes.len());
        // Column arrays for the log.
        let n = b.changes.len();
        let (mut seq, mut time, mut uid, mut uname, mut comment) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut otype, mut oref, mut okey, mut before, mut after) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // One log row per run of bulk-allocated addresses (one per change otherwise); the
        // latest image per object for the object tables.
        let mut runs: Vec<i32> = Vec::new();
        let mut last: HashMap<&ObjKey, &Change> = HashMap::new();
        let mut i = 0;
        while i < n {
            let c = &b.changes[i];
            let run = if self.version >= RUNS {
                run_length(&b.changes[i..])
            } else {
                1
            };
            seq.push(c.seq as i64);
            time.push(c.time);
            uid.push(c.user_id as i64);
            uname.push(c.user.to_string());
            comment.push(c.comment.to_string());
            otype.push(c.key.obj_type().name().to_string());
            oref.push(c.key.to_ref());
            okey.push(c.key.index_key());
            before.push(c.before.as_ref().map(Object::to_json));
            after.push(c.after.as_ref().map(Object::to_json));
            runs.push(run as i32);
            for c in &b.changes[i..i + run] {
                last.insert(&c.key, c);
            }
            i += run;
        }
        let mut order: Vec<&Change> = last.into_values().collect();
        order.sort_unstable_by_key(|c| c.seq);
        let (mut rs, mut ra, mut rst, mut rd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ds, mut da) = (Vec::new(), Vec::new());
        let (mut pt, mut pi, mut pd) = (Vec::new(), Vec::new(), Vec::new());
        let (mut xt, mut xi) = (Vec::new(), Vec::new());
        for c in order {
            match (&c.key, &c.after) {
                (ObjKey::IpamRecord { space, addr }, Some(Object::IpamRecord(rec))) => {
                    rs.push(*space as i64);
                    ra.push(record_row_addr(*addr));
                    rst.push(i16::from(rec.state.code()));
                    rd.push(
                        (!rec.is_state_only()).then(|| Object::IpamRecord(rec.clone()).to_json()),
                    );
                }
                (ObjKey::IpamRecord { .. }, Some(_)) => {
                    return Err(corrupt(format!(
                        "change {}: a record key with another image",
                        c.seq
                    )))
                }
                (ObjKey::IpamRecord { space, addr }, None) => {
                    ds.push(*space as i64);
                    da.push(record_row_addr(*addr));
                }
                (k, Some(o)) => {
                    pt.push(k.obj_type().name().to_string());
                    pi.push(k.id().unwrap_or_default() as i64);
                    pd.push(o.to_json());
                }
                (k, None) => {
                    xt.push(k.obj_type().name().to_string());
                    xi.push(k.id().unwrap_or_default() as i64);
                }
            }
        }
        let (mut ik, mut ih, mut ir, mut it) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for e in b.idempotency {
            ik.push(e.key.as_str());
            ih.push(&e.hash[..]);
            ir.push(e.result.as_str());
            it.push(e.time);
        }
        let last_seq = b.changes.last().map(|c| c.seq as i64);
        let note = last_seq.map(|s| s.to_string());
        let ch = channel(&self.schema);
        if self.commit_stmt.is_none() {
            self.commit_stmt = Some(
                self.client
                    .prepare(&commit_sql(self.version >= RUNS))
                    .map_err(db("preparing the commit statement"))?,
            );
        }
        let stmt = self.commit_stmt.clone().expect("prepared above");
        let next_id = b.next_id as i64;
        let all: [&(dyn postgres::types::ToSql + Sync); 30] = [
            &seq, &time, &uid, &uname, &comment, &otype, &oref, &okey, &before, &after, &rs, &ra,
            &rst, &rd, &ds, &da, &pt, &pi, &pd, &xt, &xi, &ik, &ih, &ir, &it, &next_id, &last_seq,
            &note, &ch, &runs,
        ];
        let params = if self.version >= RUNS {
            &all[..]
        } else {
            &all[..29]
        };
        match b.forget_idempotency_before {
            // The usual case: one statement, its own transaction, one round trip.
            None => {
                self.client.query(&stmt, params).map_err(db(ctx()))?;
                Ok(())
            }
            // About once a minute: forgetting old keys goes first, in the same transaction.
            Some(t) => {
                let mut tx = self.client.transaction().map_err(db(ctx()))?;
                tx.execute("DELETE FROM idempotency WHERE time < $1", &[&t])
                    .map_err(db(ctx()))?;
                tx.query(&stmt, params).map_err(db(ctx()))?;
                tx.commit().map_err(db(ctx()))
            }
        }
    }

    fn idempotency_keys(&mut self, since: Millis) -> Result<Vec<IdempotencyEntry>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT key, hash, result, time FROM idempotency WHERE time >= $1",
                &[&since],
            )
            .map_err(db("loading idempotency keys"))?;
        rows.iter()
            .map(|r| {
                let key: String = r.get(0);
                let hash: Vec<u8> = r.get(1);
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| corrupt(format!("idempotency key {key:?}: bad hash")))?;
                Ok(IdempotencyEntry {
                    key,
                    hash,
                    result: r.get(2),
                    time: r.get(3),
                })
            })
            .collect()
    }

    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        Ok(Box::new(PostgresReader {
            client: connect(&self.url, &self.schema)?,
            version: self.version,
        }))
    }

    fn try_become_writer(&mut self, instance: &str) -> Result<bool, StoreError> {
        let got: bool = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1)",
                &[&lock_key(&self.schema, "writer")],
            )
            .map_err(db("trying to take the writer lock"))?
            .get(0);
        if got && self.version >= 2 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.client
                .execute(
                    "INSERT INTO active_writer (id, instance, since) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, since = excluded.since",
                    &[&instance, &now],
                )
                .map_err(db("recording the active instance"))?;
            self.listener = None;
        }
        Ok(got)
    }

    fn active_instance(&mut self) -> Result<Option<String>, StoreError> {
        if self.version < 2 {
            return Ok(None);
        }
        Ok(self
            .client
            .query_opt("SELECT instance FROM active_writer WHERE id = 1", &[])
            .map_err(db("reading the active instance"))?
            .map(|r| r.get(0)))
    }

    fn wait_for_changes(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        if self.listener.is_none() {
            let mut c = connect(&self.url, &self.schema)?;
            c.batch_execute(&format!("LISTEN {}", quote_ident(&channel(&self.schema))?))
                .map_err(db("listening for changes"))?;
            self.listener = Some(c);
        }
        let l = self.listener.as_mut().expect("set above");
        let mut n = l.notifications();
        let first = n
            .timeout_iter(timeout)
            .next()
            .map_err(db("waiting for changes"))?;
        if first.is_some() {
            // Drain what else arrived: one catch-up covers all of it.
            let mut it = n.iter();
            while it.next().map_err(db("reading notifications"))?.is_some() {}
        }
        Ok(())
    }
}

struct PostgresReader {
    client: Client,
    version: i64,
}

impl StoreReader for PostgresReader {
    fn history(&mut self, q: &HistoryQuery) -> Result<(Vec<Change>, u64), StoreError> {
        let mut cond = vec!["TRUE".to_string()];
        let mut args: Vec<Box<dyn postgres::types::ToSql + Sync>> = Vec::new();
        match &q.key {
            // An address may sit inside a run row that starts up to MAX_RUN - 1 keys before it.
            Some(k @ ObjKey::IpamRecord { .. }) => {
                let key = k.index_key();
                args.push(Box::new(key.saturating_sub(MAX_RUN as i64 - 1)));
                cond.push(format!("obj_key >= ${}", args.len()));
                args.push(Box::new(key));
                cond.push(format!("obj_key <= ${}", args.len()));
            }
            Some(k) => {
                args.push(Box::new(k.index_key()));
                cond.push(format!("obj_key = ${}", args.len()));
                args.push(Box::new(k.to_ref()));
                cond.push(format!("obj_ref = ${}", args.len()));
            }
            None => {}
        }
        if let Some(u) = q.user_id {
            args.push(Box::new(u as i64));
            cond.push(format!("user_id = ${}", args.len()));
        }
        if let Some(t) = q.since {
            args.push(Box::new(t));
            cond.push(format!("time >= ${}", args.len()));
        }
        if let Some(t) = q.until {
            args.push(Box::new(t));
            cond.push(format!("time <= ${}", args.len()));
        }
        let filter = cond.join(" AND ");
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|b| &**b).collect();
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(10_000)
        } as usize;
        let offset = q.offset as usize;
        let cols = change_columns(self.version);
        if let Some(k @ ObjKey::IpamRecord { .. }) = &q.key {
            // One address: few rows; expand them and keep its own changes.
            let rows = self
                .client
                .query(
                    &format!("SELECT {cols} FROM changes WHERE {filter}"),
                    &params,
                )
                .map_err(db("reading history"))?;
            let mut all = Vec::new();
            for row in &rows {
                all.extend(decode_changes(row)?.into_iter().filter(|c| c.key == *k));
            }
            all.sort_by_key(|c| std::cmp::Reverse(c.seq));
            let total = all.len() as u64;
            return Ok((all.into_iter().skip(offset).take(limit).collect(), total));
        }
        let run = if self.version >= RUNS { "run" } else { "1" };
        let total: i64 = self
            .client
            .query_one(
                &format!("SELECT coalesce(sum({run}), 0)::bigint FROM changes WHERE {filter}"),
                &params,
            )
            .map_err(db("counting history"))?
            .get(0);
        // Newest first, expanding runs, skipping `offset` changes (runs count by their size).
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut before_seq = i64::MAX;
        'pages: loop {
            let mut page_args: Vec<&(dyn postgres::types::ToSql + Sync)> = params.clone();
            page_args.push(&before_seq);
            let sql = format!(
                "SELECT {cols} FROM changes WHERE {filter} AND seq < ${} ORDER BY seq DESC LIMIT 1000",
                page_args.len()
            );
            let rows = self
                .client
                .query(&sql, &page_args)
                .map_err(db("reading history"))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                before_seq = row.get::<_, i64>(0);
                let mut cs = decode_changes(row)?;
                if skipped + cs.len() <= offset {
                    skipped += cs.len();
                    continue;
                }
                cs.reverse();
                for c in cs {
                    if skipped < offset {
                        skipped += 1;
                        continue;
                    }
                    out.push(c);
                    if out.len() >= limit {
                        break 'pages;
                    }
                }
            }
        }
        Ok((out, total as u64))
    }
}
