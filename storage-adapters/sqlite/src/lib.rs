//! `ipam-store-sqlite`: the embedded SQLite store for ipam's engine.
//!
//! One database file in WAL mode (the bundled SQLite: nothing to install). Tables:
//!
//! | table | key | holds |
//! |---|---|---|
//! | `meta` | `key` | `schema_version`, `next_id`, `last_seq` |
//! | `changes` | `seq` | the change log and history: time, user, comment, object type and ref, before and after images (JSON); indexed by `obj_key`, a 64-bit key of the ref that keeps neighbouring addresses neighbours. A row with `run` = n > 1 stands for n changes: consecutive sequence numbers creating consecutive addresses with the same state and nothing else, by one user at one time (what bulk allocation writes); its ref and image are those of the first address |
//! | `objects` | `obj_type`, `id` | the latest image of every object but IPAM records (JSON) |
//! | `ipam_records` | `space`, `addr` | every stored address record: address as 4 or 16 big-endian bytes, state as a number (Free 0, Assigned 1, Claimed 2, Held 3, Reserved 4), and the whole record as JSON only when it carries more than its state (a hold, properties, usage) |
//! | `idempotency` | `key` | remembered idempotency keys, content hashes and answers |
//!
//! A group commit is one `BEGIN IMMEDIATE ... COMMIT` with cached prepared statements.
//! Checkpoints (copying the write-ahead log into the database file) run on a background
//! thread with its own connection, off the writer's path. With
//! [`Durability::Full`] (the default) SQLite syncs the write-ahead log at every commit, so an
//! acknowledged change survives a power loss; [`Durability::Normal`] survives a crash of the
//! process but not of the machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipam_engine::{
    expand_run, record_from_row, record_row_addr, run_length, Change, CommitBatch, HistoryQuery,
    IdempotencyEntry, Millis, ObjKey, ObjType, Object, Store, StoreError, StoreMeta, StoreReader,
    MAX_RUN,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// When a commit counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Sync the log at every commit (SQLite `synchronous=FULL`): survives power loss.
    #[default]
    Full,
    /// Sync only at checkpoints (`synchronous=NORMAL`): survives a crash of the process, but a
    /// power loss may lose the last commits.
    Normal,
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// `DB.writer.lock`, locked while this handle is the database's writer.
    writer_lock: Option<std::fs::File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |e| StoreError::backend(context, e)
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    user TEXT NOT NULL,
    comment TEXT NOT NULL,
    obj_type TEXT NOT NULL,
    obj_ref TEXT NOT NULL,
    obj_key INTEGER NOT NULL,
    before TEXT,
    after TEXT,
    run INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS changes_by_object ON changes (obj_key, seq);
CREATE TABLE IF NOT EXISTS objects (
    obj_type TEXT NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (obj_type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ipam_records (
    space INTEGER NOT NULL,
    addr BLOB NOT NULL,
    state INTEGER NOT NULL,
    data TEXT,
    PRIMARY KEY (space, addr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    result TEXT NOT NULL,
    time INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Schema migrations: step `i` moves the schema from version `i` to `i + 1` (step 0 creates
/// it). Each runs in its own transaction with the version update, so a crash leaves the
/// database at one version or the next.
const MIGRATIONS: [&str; 2] = [
    SCHEMA,
    // 2: history by user (`HistoryQuery::user_id`) without scanning the log.
    "CREATE INDEX IF NOT EXISTS changes_by_user ON changes (user_id, seq);",
];

fn migrate(conn: &Connection, from: u32, to: u32) -> Result<(), StoreError> {
    for v in from..to {
        let ctx = format!("migrating the schema from version {v} to {}", v + 1);
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(db(ctx.clone()))?;
        let step = || -> rusqlite::Result<()> {
            conn.execute_batch(MIGRATIONS[v as usize])?;
            if v == 0 {
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 0), ('next_id', 1), ('last_seq', 0)",
                    [],
                )?;
            }
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [v + 1],
            )?;
            Ok(())
        };
        match step() {
            Ok(()) => conn.execute_batch("COMMIT").map_err(db(ctx))?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::backend(ctx, e));
            }
        }
    }
    Ok(())
}

fn ref_key(k: &ObjKey) -> i64 {
    k.index_key()
}

fn configure(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(db("setting up the SQLite connection"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db("setting the busy timeout"))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, creates or migrates the schema,
    /// and refuses a database written by a newer version.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let ctx = format!("opening {}", path.display());
        let conn = Connection::open(&path).map_err(db(ctx))?;
        configure(&conn, durability)?;
        let existing: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // No meta table yet: a new database.
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })
            .map_err(db("reading the schema version"))?;
        if let Some(v) = existing {
            if v > i64::from(SCHEMA_VERSION) {
                return Err(StoreError::TooNew {
                    found: v as u32,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        migrate(&conn, existing.unwrap_or(0) as u32, SCHEMA_VERSION)?;
        Ok(SqliteStore {
            conn,
            path,
            writer_lock: None,
        })
    }

    /// Opens a database, creating it only up to schema `version` (tests of migrations).
    #[doc(hidden)]
    pub fn open_at_version(
        path: impl AsRef<Path>,
        version: u32,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(db("opening"))?;
        configure(&conn, Durability::Full)?;
        migrate(&conn, 0, version)?;
        Ok(SqliteStore {
            conn,
            path,
            writer_lock: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What [`backup`] copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// The last change in the copy.
    pub last_seq: u64,
    /// Pages copied.
    pub pages: i32,
}

/// Copies the database at `src` into `dst` with SQLite's online backup API: a consistent
/// image of one moment, taken while a Central keeps writing to `src` (each step holds the
/// read lock briefly). `dst` is written beside itself and renamed into place once synced,
/// so a reader of `dst` sees the old copy or the new one, never half of one.
pub fn backup(src: &Path, dst: &Path) -> Result<BackupReport, StoreError> {
    let ctx = |what: &str| format!("{what} ({} to {})", src.display(), dst.display());
    let from = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db(ctx("opening the database to back up")))?;
    from.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db("setting the busy timeout"))?;
    let mut tmp = dst.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut to = Connection::open(&tmp).map_err(db(ctx("creating the copy")))?;
    let pages = {
        let b = rusqlite::backup::Backup::new(&from, &mut to)
            .map_err(db(ctx("starting the backup")))?;
        b.run_to_completion(4096, std::time::Duration::from_millis(1), None)
            .map_err(db(ctx("copying")))?;
        b.progress().pagecount
    };
    // The copy is a plain rollback-journal database until a Central opens it.
    to.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(db(ctx("finishing the copy")))?;
    let last_seq: i64 = to
        .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
            r.get(0)
        })
        .map_err(db(ctx("reading the copy's last change")))?;
    drop(to);
    let io = |what: &str, e: std::io::Error| StoreError::backend(ctx(what), e);
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("syncing the copy", e))?;
    for suffix in ["-wal", "-shm"] {
        let mut p = dst.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::rename(&tmp, dst).map_err(|e| io("moving the copy into place", e))?;
    if let Some(dir) = dst.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(BackupReport {
        last_seq: last_seq as u64,
        pages,
    })
}

/// Runs SQLite's integrity check; answers its complaints (empty when the file is sound).
pub fn integrity_check(path: &Path) -> Result<Vec<String>, StoreError> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db(format!("opening {}", path.display())))?;
    let mut st = c
        .prepare("PRAGMA integrity_check")
        .map_err(db("checking integrity"))?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db("checking integrity"))?;
    let mut out = Vec::new();
    for r in rows {
        let r = r.map_err(db("checking integrity"))?;
        if r != "ok" {
            out.push(r);
        }
    }
    Ok(out)
}

fn decode_changes(row: &rusqlite::Row<'_>) -> Result<Vec<Change>, StoreError> {
    let get = |i: usize| -> Result<rusqlite::types::Value, StoreError> {
        row.get(i).map_err(db("reading a change"))
    };
    let text = |v: rusqlite::types::Value| -> Option<String> {
        match v {
            rusqlite::types::Value::Text(s) => Some(s),
            _ => None,
        }
    };
    let int = |v: rusqlite::types::Value| -> i64 {
        match v {
            rusqlite::types::Value::Integer(i) => i,
            _ => -1,
        }
    };
    let seq = int(get(0)?) as u64;
    let obj_type = text(get(5)?).unwrap_or_default();
    let obj_ref = text(get(6)?).unwrap_or_default();
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
        seq,
        time: int(get(1)?),
        user_id: int(get(2)?) as u64,
        user: Arc::from(text(get(3)?).unwrap_or_default()),
        comment: Arc::from(text(get(4)?).unwrap_or_default()),
        key,
        before: image(text(get(7)?))?,
        after: image(text(get(8)?))?,
    };
    expand_run(first, int(get(9)?))
}

const CHANGE_COLUMNS: &str =
    "seq, time, user_id, user, comment, obj_type, obj_ref, before, after, run";

impl Store for SqliteStore {
    fn meta(&mut self) -> Result<StoreMeta, StoreError> {
        let get = |k: &str| -> Result<i64, StoreError> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .map_err(db(format!("reading {k}")))
        };
        Ok(StoreMeta {
            last_seq: get("last_seq")? as u64,
            next_id: get("next_id")? as u64,
        })
    }

    fn load_objects(&mut self, f: &mut dyn FnMut(Object)) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT obj_type, id, data FROM objects")
            .map_err(db("loading objects"))?;
        let mut rows = st.query([]).map_err(db("loading objects"))?;
        while let Some(row) = rows.next().map_err(db("loading objects"))? {
            let t: String = row.get(0).map_err(db("loading objects"))?;
            let id: i64 = row.get(1).map_err(db("loading objects"))?;
            let data: String = row.get(2).map_err(db("loading objects"))?;
            let ty = ObjType::from_name(&t)
                .ok_or_else(|| corrupt(format!("object {t}/{id}: unknown type")))?;
            f(Object::from_json(ty, &data)
                .map_err(|e| corrupt(format!("object {t}/{id}: {e}")))?);
        }
        let mut st = self
            .conn
            .prepare("SELECT space, addr, state, data FROM ipam_records")
            .map_err(db("loading address records"))?;
        let mut rows = st.query([]).map_err(db("loading address records"))?;
        while let Some(row) = rows.next().map_err(db("loading address records"))? {
            let ctx = "loading address records";
            let data: Option<String> = row.get(3).map_err(db(ctx))?;
            let addr: Vec<u8> = row.get(1).map_err(db(ctx))?;
            f(Object::IpamRecord(record_from_row(
                row.get(0).map_err(db(ctx))?,
                &addr,
                row.get(2).map_err(db(ctx))?,
                data.as_deref(),
            )?));
        }
        Ok(())
    }

    fn changes_after(&mut self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        // A run row starts at most MAX_RUN - 1 before the first change it holds.
        let sql =
            format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(db("reading the change log"))?;
        let from = after.saturating_sub(MAX_RUN as u64) as i64;
        let mut rows = st
            .query(params![from, (limit + MAX_RUN) as i64])
            .map_err(db("reading the change log"))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db("reading the change log"))? {
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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db(ctx()))?;
        {
            let mut ins_change = tx
                .prepare_cached("INSERT INTO changes (seq, time, user_id, user, comment, obj_type, obj_ref, obj_key, before, after, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
                .map_err(db(ctx()))?;
            let mut put_obj = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO objects (obj_type, id, data) VALUES (?1, ?2, ?3)",
                )
                .map_err(db(ctx()))?;
            let mut del_obj = tx
                .prepare_cached("DELETE FROM objects WHERE obj_type = ?1 AND id = ?2")
                .map_err(db(ctx()))?;
            let mut put_rec = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO ipam_records (space, addr, state, data) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db(ctx()))?;
            let mut del_rec = tx
                .prepare_cached("DELETE FROM ipam_records WHERE space = ?1 AND addr = ?2")
                .map_err(db(ctx()))?;
            let mut i = 0;
            while i < b.changes.len() {
                let run = run_length(&b.changes[i..]);
                let c = &b.changes[i];
                let t = c.key.obj_type().name();
                let before = c.before.as_ref().map(Object::to_json);
                let after = c.after.as_ref().map(Object::to_json);
                ins_change
                    .execute(params![
                        c.seq as i64,
                        c.time,
                        c.user_id as i64,
                        &*c.user,
                        &*c.comment,
                        t,
                        c.key.to_ref(),
                        ref_key(&c.key),
                        before,
                        after,
                        run as i64
                    ])
                    .map_err(db(ctx()))?;
                for c in &b.changes[i..i + run] {
                    let after = if run == 1 { after.clone() } else { None };
                    match (&c.key, &c.after) {
                        (ObjKey::IpamRecord { space, addr }, Some(Object::IpamRecord(rec))) => {
                            let data = if rec.is_state_only() { None } else { after };
                            put_rec.execute(params![
                                *space as i64,
                                record_row_addr(*addr),
                                i64::from(rec.state.code()),
                                data
                            ])
                        }
                        (ObjKey::IpamRecord { .. }, Some(_)) => {
                            return Err(corrupt(format!(
                                "change {}: a record key with another image",
                                c.seq
                            )))
                        }
                        (ObjKey::IpamRecord { space, addr }, None) => {
                            del_rec.execute(params![*space as i64, record_row_addr(*addr)])
                        }
                        (k, Some(_)) => {
                            put_obj.execute(params![t, k.id().unwrap_or_default() as i64, after])
                        }
                        (k, None) => del_obj.execute(params![t, k.id().unwrap_or_default() as i64]),
                    }
                    .map_err(db(ctx()))?;
                }
                i += run;
            }
            if let Some(before) = b.forget_idempotency_before {
                tx.execute("DELETE FROM idempotency WHERE time < ?1", [before])
                    .map_err(db(ctx()))?;
            }
            let mut ins_key = tx.prepare_cached("INSERT OR REPLACE INTO idempotency (key, hash, result, time) VALUES (?1, ?2, ?3, ?4)").map_err(db(ctx()))?;
            for e in b.idempotency {
                ins_key
                    .execute(params![e.key, &e.hash[..], e.result, e.time])
                    .map_err(db(ctx()))?;
            }
            let mut meta = tx
                .prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
                .map_err(db(ctx()))?;
            meta.execute(params!["next_id", b.next_id as i64])
                .map_err(db(ctx()))?;
            if let Some(last) = b.changes.last() {
                meta.execute(params!["last_seq", last.seq as i64])
                    .map_err(db(ctx()))?;
            }
        }
        tx.commit().map_err(db(ctx()))
    }

    fn idempotency_keys(&mut self, since: Millis) -> Result<Vec<IdempotencyEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT key, hash, result, time FROM idempotency WHERE time >= ?1")
            .map_err(db("loading idempotency keys"))?;
        let rows = st
            .query_map([since], |r| {
                let hash: Vec<u8> = r.get(1)?;
                Ok((
                    r.get::<_, String>(0)?,
                    hash,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db("loading idempotency keys"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, hash, result, time) = row.map_err(db("loading idempotency keys"))?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| corrupt(format!("idempotency key {key:?}: bad hash")))?;
            out.push(IdempotencyEntry {
                key,
                hash,
                result,
                time,
            });
        }
        Ok(out)
    }

    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db(format!("opening {} for reading", self.path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db("setting the busy timeout"))?;
        Ok(Box::new(SqliteReader { conn }))
    }

    /// One writer per database file: an exclusive lock on `DB.writer.lock`, released when
    /// this handle (or its process) goes. A second engine on the same file becomes a standby
    /// instead of writing beside the first.
    fn try_become_writer(&mut self, _instance: &str) -> Result<bool, StoreError> {
        if self.writer_lock.is_some() {
            return Ok(true);
        }
        let mut name = self.path.clone().into_os_string();
        name.push(".writer.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&name)
            .map_err(|e| StoreError::backend(format!("opening {name:?}"), e))?;
        match f.try_lock() {
            Ok(()) => {
                self.writer_lock = Some(f);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StoreError::backend(format!("locking {name:?}"), e))
            }
        }
    }
}

struct SqliteReader {
    conn: Connection,
}

impl StoreReader for SqliteReader {
    fn history(&mut self, q: &HistoryQuery) -> Result<(Vec<Change>, u64), StoreError> {
        let mut cond = vec!["1 = 1".to_string()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        match &q.key {
            // An address may sit inside a run row that starts up to MAX_RUN - 1 keys before it.
            Some(k @ ObjKey::IpamRecord { .. }) => {
                let key = ref_key(k);
                args.push(key.saturating_sub(MAX_RUN as i64 - 1).into());
                cond.push(format!("obj_key >= ?{}", args.len()));
                args.push(key.into());
                cond.push(format!("obj_key <= ?{}", args.len()));
            }
            Some(k) => {
                args.push(ref_key(k).into());
                cond.push(format!("obj_key = ?{}", args.len()));
                args.push(k.to_ref().into());
                cond.push(format!("obj_ref = ?{}", args.len()));
            }
            None => {}
        }
        if let Some(u) = q.user_id {
            args.push((u as i64).into());
            cond.push(format!("user_id = ?{}", args.len()));
        }
        if let Some(t) = q.since {
            args.push(t.into());
            cond.push(format!("time >= ?{}", args.len()));
        }
        if let Some(t) = q.until {
            args.push(t.into());
            cond.push(format!("time <= ?{}", args.len()));
        }
        let filter = cond.join(" AND ");
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(10_000)
        } as usize;
        let offset = q.offset as usize;
        if let Some(k @ ObjKey::IpamRecord { .. }) = &q.key {
            // One address: few rows; expand them and keep its own changes.
            let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE {filter}");
            let mut st = self.conn.prepare(&sql).map_err(db("reading history"))?;
            let mut rows = st
                .query(rusqlite::params_from_iter(args.iter()))
                .map_err(db("reading history"))?;
            let mut all = Vec::new();
            while let Some(row) = rows.next().map_err(db("reading history"))? {
                all.extend(decode_changes(row)?.into_iter().filter(|c| c.key == *k));
            }
            all.sort_by_key(|c| std::cmp::Reverse(c.seq));
            let total = all.len() as u64;
            return Ok((all.into_iter().skip(offset).take(limit).collect(), total));
        }
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT coalesce(sum(run), 0) FROM changes WHERE {filter}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )
            .map_err(db("counting history"))?;
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE {filter} ORDER BY seq DESC");
        let mut st = self.conn.prepare(&sql).map_err(db("reading history"))?;
        let mut rows = st
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(db("reading history"))?;
        let mut out = Vec::new();
        let mut skipped = 0;
        while let Some(row) = rows.next().map_err(db("reading history"))? {
            let cs = decode_changes(row)?;
            if skipped + cs.len() <= offset {
                skipped += cs.len();
                continue;
            }
            for c in cs.into_iter().rev() {
                if skipped < offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push(c);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok((out, total as u64))
    }
}
