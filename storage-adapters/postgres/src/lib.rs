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
    record_from_row, record_row_addr, Change, CommitBatch, HistoryQuery, IdempotencyEntry, Millis,
    ObjKey, ObjType, Object, Store, StoreError, StoreMeta, StoreReader,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Row};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Schema migrations: step `i` moves the schema from version `i` to `i + 1` (step 0 creates
/// it).
const MIGRATIONS: [&str; 2] = [
    SCHEMA,
    // 2: the active writer's name (high availability), history by user.
    "CREATE TABLE IF NOT EXISTS active_writer (id INT PRIMARY KEY, instance TEXT NOT NULL, since BIGINT NOT NULL);
     CREATE INDEX IF NOT EXISTS changes_by_user ON changes (user_id, seq);",
];

/// The PostgreSQL store.
pub struct PostgresStore {
    client: Client,
    url: String,
    schema: String,
    /// A second connection that LISTENs for other instances' commits (standbys only).
    listener: Option<Client>,
    /// The schema version this handle opened (older only in migration tests).
    version: i64,
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
    let mut client = Client::connect(url, NoTls).map_err(db("connecting to PostgreSQL"))?;
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

const CHANGE_COLUMNS: &str =
    "seq, time, user_id, user_name, comment, obj_type, obj_ref, before, after";

fn decode_change(row: &Row) -> Result<Change, StoreError> {
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
    Ok(Change {
        seq: seq as u64,
        time: row.get(1),
        user_id: row.get::<_, i64>(2) as u64,
        user: Arc::from(row.get::<_, String>(3)),
        comment: Arc::from(row.get::<_, String>(4)),
        key,
        before: image(row.get(7))?,
        after: image(row.get(8))?,
    })
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
        let sql =
            format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = self
            .client
            .query(&sql, &[&(after as i64), &(limit as i64)])
            .map_err(db("reading the change log"))?;
        rows.iter().map(decode_change).collect()
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
        // The latest image per object: the object tables need only that.
        let mut last: HashMap<&ObjKey, usize> = HashMap::new();
        for (i, c) in b.changes.iter().enumerate() {
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
            last.insert(&c.key, i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        let (mut rs, mut ra, mut rst, mut rd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ds, mut da) = (Vec::new(), Vec::new());
        let (mut pt, mut pi, mut pd) = (Vec::new(), Vec::new(), Vec::new());
        let (mut xt, mut xi) = (Vec::new(), Vec::new());
        for i in order {
            let c = &b.changes[i];
            match (&c.key, &c.after) {
                (ObjKey::IpamRecord { space, addr }, Some(Object::IpamRecord(rec))) => {
                    let only_state = rec.is_state_only();
                    rs.push(*space as i64);
                    ra.push(record_row_addr(*addr));
                    rst.push(i16::from(rec.state.code()));
                    rd.push(if only_state { None } else { after[i].clone() });
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
                (k, Some(_)) => {
                    pt.push(otype[i].clone());
                    pi.push(k.id().unwrap_or_default() as i64);
                    pd.push(after[i].clone().unwrap_or_default());
                }
                (k, None) => {
                    xt.push(otype[i].clone());
                    xi.push(k.id().unwrap_or_default() as i64);
                }
            }
        }
        let mut tx = self.client.transaction().map_err(db(ctx()))?;
        if n > 0 {
            tx.execute(
                "INSERT INTO changes (seq, time, user_id, user_name, comment, obj_type, obj_ref, obj_key, before, after)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[])",
                &[&seq, &time, &uid, &uname, &comment, &otype, &oref, &okey, &before, &after],
            )
            .map_err(db(ctx()))?;
        }
        if !rs.is_empty() {
            tx.execute(
                "INSERT INTO ipam_records (space, addr, state, data) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::smallint[], $4::text[])
                 ON CONFLICT (space, addr) DO UPDATE SET state = excluded.state, data = excluded.data",
                &[&rs, &ra, &rst, &rd],
            )
            .map_err(db(ctx()))?;
        }
        if !ds.is_empty() {
            tx.execute("DELETE FROM ipam_records r USING unnest($1::bigint[], $2::bytea[]) AS d(space, addr) WHERE r.space = d.space AND r.addr = d.addr", &[&ds, &da])
                .map_err(db(ctx()))?;
        }
        if !pt.is_empty() {
            tx.execute(
                "INSERT INTO objects (obj_type, id, data) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
                 ON CONFLICT (obj_type, id) DO UPDATE SET data = excluded.data",
                &[&pt, &pi, &pd],
            )
            .map_err(db(ctx()))?;
        }
        if !xt.is_empty() {
            tx.execute("DELETE FROM objects o USING unnest($1::text[], $2::bigint[]) AS d(obj_type, id) WHERE o.obj_type = d.obj_type AND o.id = d.id", &[&xt, &xi])
                .map_err(db(ctx()))?;
        }
        if let Some(t) = b.forget_idempotency_before {
            tx.execute("DELETE FROM idempotency WHERE time < $1", &[&t])
                .map_err(db(ctx()))?;
        }
        for e in b.idempotency {
            tx.execute(
                "INSERT INTO idempotency (key, hash, result, time) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET hash = excluded.hash, result = excluded.result, time = excluded.time",
                &[&e.key, &&e.hash[..], &e.result, &e.time],
            )
            .map_err(db(ctx()))?;
        }
        tx.execute(
            "UPDATE meta SET value = $1 WHERE key = 'next_id'",
            &[&(b.next_id as i64)],
        )
        .map_err(db(ctx()))?;
        if let Some(c) = b.changes.last() {
            tx.execute(
                "UPDATE meta SET value = $1 WHERE key = 'last_seq'",
                &[&(c.seq as i64)],
            )
            .map_err(db(ctx()))?;
            // Delivered to standbys at commit.
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&channel(&self.schema), &c.seq.to_string()],
            )
            .map_err(db(ctx()))?;
        }
        tx.commit().map_err(db(ctx()))
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
}

impl StoreReader for PostgresReader {
    fn history(&mut self, q: &HistoryQuery) -> Result<(Vec<Change>, u64), StoreError> {
        let mut cond = vec!["TRUE".to_string()];
        let mut args: Vec<Box<dyn postgres::types::ToSql + Sync>> = Vec::new();
        if let Some(k) = &q.key {
            args.push(Box::new(k.index_key()));
            cond.push(format!("obj_key = ${}", args.len()));
            args.push(Box::new(k.to_ref()));
            cond.push(format!("obj_ref = ${}", args.len()));
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
        let total: i64 = self
            .client
            .query_one(
                &format!("SELECT count(*) FROM changes WHERE {filter}"),
                &params,
            )
            .map_err(db("counting history"))?
            .get(0);
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(10_000)
        };
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE {filter} ORDER BY seq DESC LIMIT {limit} OFFSET {}", q.offset);
        let rows = self
            .client
            .query(&sql, &params)
            .map_err(db("reading history"))?;
        Ok((
            rows.iter().map(decode_change).collect::<Result<_, _>>()?,
            total as u64,
        ))
    }
}
