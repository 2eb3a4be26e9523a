//! Cold standby on SQLite: `ipam-central backup --to DIR` copies a running Central's data
//! directory (a consistent online copy of the database, the newest snapshot that copy
//! covers, the TLS certificate), and `ipam-central promote` checks such a copy and makes it
//! the active data directory.
use std::path::{Path, PathBuf};

use crate::{CentralError, Config, Database};

/// The marker a copy carries until it is promoted (or started).
pub const STANDBY_MARKER: &str = "STANDBY";

/// What a backup wrote.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    /// The last change in the copy.
    pub last_seq: u64,
    /// The snapshot copied with it, if any covered the copy.
    pub snapshot: Option<PathBuf>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> CentralError {
    move |source| CentralError::Io { context, source }
}

fn sqlite_path(cfg: &Config) -> Result<&Path, CentralError> {
    match &cfg.database {
        Database::Sqlite(p) => Ok(p),
        Database::Postgres { .. } => Err(CentralError::Config(
            "backup and promote are the cold standby for the embedded SQLite database; on \
             PostgreSQL run standby Centrals on the same database (they take over by \
             themselves) and back the database up with PostgreSQL's own tools"
                .into(),
        )),
    }
}

/// Whether a Central is running on the database at `db` (it holds the writer lock).
fn in_use(db: &Path) -> Result<bool, CentralError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".writer.lock");
    let name = PathBuf::from(name);
    if !name.exists() {
        return Ok(false);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&name)
        .map_err(io(format!("opening {}", name.display())))?;
    Ok(matches!(
        f.try_lock(),
        Err(std::fs::TryLockError::WouldBlock)
    ))
}

fn copy_atomic(from: &Path, to: &Path) -> Result<(), CentralError> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::copy(from, &tmp).map_err(io(format!("copying {}", from.display())))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", tmp.display())))?;
    std::fs::rename(&tmp, to).map_err(io(format!("renaming {}", tmp.display())))
}

/// Copies the data directory of `cfg` into `to` while Central may keep running.
pub fn backup(cfg: &Config, to: &Path) -> Result<BackupSummary, CentralError> {
    let db = sqlite_path(cfg)?;
    if !db.exists() {
        return Err(CentralError::Config(format!(
            "no database at {} to back up",
            db.display()
        )));
    }
    std::fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))?;
    let same = std::fs::canonicalize(to).ok() == std::fs::canonicalize(&cfg.data_dir).ok();
    if same {
        return Err(CentralError::Config(
            "the backup directory is the data directory itself".into(),
        ));
    }
    let dst = to.join("ipam.db");
    if in_use(&dst)? {
        return Err(CentralError::Config(format!(
            "a Central is running on {}: stop it before feeding it a new copy",
            to.display()
        )));
    }
    let r = ipam_store_sqlite::backup(db, &dst).map_err(ipam_engine::EngineError::from)?;
    // The newest snapshot the copy covers (a newer one would be refused as ahead of it).
    let snap_dir = to.join("snapshots");
    std::fs::create_dir_all(&snap_dir).map_err(io(format!("creating {}", snap_dir.display())))?;
    let chosen = ipam_engine::snapshot_files(&cfg.data_dir.join("snapshots"))
        .into_iter()
        .find(|(seq, _)| *seq <= r.last_seq);
    let mut copied = None;
    if let Some((_, p)) = &chosen {
        let target = snap_dir.join(p.file_name().expect("snapshot files have names"));
        copy_atomic(p, &target)?;
        copied = Some(target);
    }
    for (_, old) in ipam_engine::snapshot_files(&snap_dir) {
        if Some(&old) != copied.as_ref() {
            let _ = std::fs::remove_file(old);
        }
    }
    if cfg.tls.is_none() {
        let tls = cfg.data_dir.join("tls");
        if tls.join("cert.pem").exists() {
            let t = to.join("tls");
            std::fs::create_dir_all(&t).map_err(io(format!("creating {}", t.display())))?;
            copy_atomic(&tls.join("cert.pem"), &t.join("cert.pem"))?;
            copy_atomic(&tls.join("key.pem"), &t.join("key.pem"))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(
                    t.join("key.pem"),
                    std::fs::Permissions::from_mode(0o600),
                );
            }
        }
    }
    std::fs::write(
        to.join(STANDBY_MARKER),
        format!(
            "cold standby copy of {} at change {}, made at {} ms since the epoch\n",
            cfg.data_dir.display(),
            r.last_seq,
            ipam_engine::system_millis()
        ),
    )
    .map_err(io(format!("writing the marker in {}", to.display())))?;
    Ok(BackupSummary {
        last_seq: r.last_seq,
        snapshot: copied,
    })
}

/// Checks the copy in `cfg`'s data directory and removes its standby marker; answers the
/// last change it holds.
pub fn promote(cfg: &Config) -> Result<u64, CentralError> {
    let db = sqlite_path(cfg)?;
    if !db.exists() {
        return Err(CentralError::Config(format!(
            "no database at {} to promote",
            db.display()
        )));
    }
    if in_use(db)? {
        return Err(CentralError::Config(format!(
            "a Central is already running on {}",
            db.display()
        )));
    }
    let problems =
        ipam_store_sqlite::integrity_check(db).map_err(ipam_engine::EngineError::from)?;
    if !problems.is_empty() {
        return Err(CentralError::Config(format!(
            "the copy at {} is damaged: {}",
            db.display(),
            problems.join("; ")
        )));
    }
    let mut store = ipam_store_sqlite::SqliteStore::open(db, Default::default())
        .map_err(ipam_engine::EngineError::from)?;
    let meta = ipam_engine::Store::meta(&mut store).map_err(ipam_engine::EngineError::from)?;
    drop(store);
    let marker = cfg.data_dir.join(STANDBY_MARKER);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(io(format!("removing {}", marker.display())))?;
    }
    Ok(meta.last_seq)
}
