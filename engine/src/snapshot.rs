//! Start-up (full load from the store, snapshots, replay) and snapshot files.
//!
//! A snapshot file is a 64-byte header and an rkyv archive:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `IPAMSNP1` |
//! | 8 | 4 | format version (LE u32, currently 2) |
//! | 12 | 4 | CRC-32 of the payload (LE) |
//! | 16 | 8 | sequence number of the last change it contains (LE u64) |
//! | 24 | 8 | payload length (LE u64) |
//! | 32 | 32 | zero |
//! | 64 | n | rkyv archive of `Image` |
//!
//! The file is written beside its final name, synced, and renamed into place, so a reader
//! sees a whole file or none. Loading checks the header, the length, the checksum, the
//! archive (bytecheck) and every index invariant; a file that fails any check is skipped.

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipam_index::{AnyRangeId, RangeId, Space, SpaceImage};

use crate::error::{EngineError, StoreError};
use crate::idx::SpaceIndex;
use crate::model::{Hold, IpamRecord, ObjType, Object, Properties, Range, RecordState};
use crate::state::{replay_error, RangeEntry, SpaceState, State};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"IPAMSNP1";
const VERSION: u32 = 2;
const HEADER: usize = 64;
const KEEP: usize = 2;
/// Bytes of a snapshot written between two syncs.
const SYNC_EVERY: usize = 8 << 20;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Image {
    seq: u64,
    next_id: u64,
    spaces: Vec<SpaceImg>,
    ranges: Vec<RangeImg>,
    records: Vec<RecordImg>,
    /// Small objects (users, roles, ...) as (type name, JSON).
    others: Vec<(String, String)>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SpaceImg {
    json: String,
    v4: SpaceImage,
    v6: SpaceImage,
    ids_v4: Vec<u64>,
    ids_v6: Vec<u64>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct RangeImg {
    id: u64,
    /// The range's id in its space's index (family given by `v6`).
    rid: u32,
    space: u64,
    from: [u8; 16],
    to: [u8; 16],
    v6: bool,
    name: String,
    /// subnet, container, locked, autoAssign as bits 0 to 3.
    flags: u8,
    /// 0: none.
    folder: u64,
    created: i64,
    last_modified: i64,
    properties: Vec<(String, String)>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct RecordImg {
    space: u64,
    addr: [u8; 16],
    v6: bool,
    state: u8,
    /// 0 when not held.
    hold_expires: i64,
    hold_user: u64,
    properties: Vec<(String, String)>,
    usage: Vec<(String, String)>,
}

fn ip_bytes(a: IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v.octets());
            (b, false)
        }
        IpAddr::V6(v) => (v.octets(), true),
    }
}

fn ip_from(b: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from(*b)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    }
}

fn props(p: &Properties) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn image(st: &State) -> Image {
    let mut others = Vec::new();
    let mut push = |o: Object| others.push((o.key().obj_type().name().to_string(), o.to_json()));
    st.propdefs
        .values()
        .cloned()
        .map(Object::PropertyDefinition)
        .for_each(&mut push);
    st.folders
        .values()
        .cloned()
        .map(Object::Folder)
        .for_each(&mut push);
    st.users
        .values()
        .cloned()
        .map(Object::User)
        .for_each(&mut push);
    st.groups
        .values()
        .cloned()
        .map(Object::Group)
        .for_each(&mut push);
    st.roles
        .values()
        .cloned()
        .map(Object::Role)
        .for_each(&mut push);
    st.access
        .values()
        .map(|v| Object::Access(crate::model::AccessList::clone(v)))
        .for_each(&mut push);
    st.dns_servers
        .values()
        .cloned()
        .map(Object::DnsServer)
        .for_each(&mut push);
    st.zones
        .values()
        .map(|v| Object::DnsZone(crate::model::DnsZone::clone(v)))
        .for_each(&mut push);
    st.dns_records
        .values()
        .map(|v| Object::DnsRecord(crate::model::DnsRecord::clone(v)))
        .for_each(&mut push);
    st.dhcp_servers
        .values()
        .cloned()
        .map(Object::DhcpServer)
        .for_each(&mut push);
    st.scopes
        .values()
        .map(|v| Object::DhcpScope(crate::model::DhcpScope::clone(v)))
        .for_each(&mut push);
    st.reservations
        .values()
        .map(|v| Object::DhcpReservation(crate::model::DhcpReservation::clone(v)))
        .for_each(&mut push);
    st.leases
        .values()
        .map(|v| Object::DhcpLease(crate::model::DhcpLease::clone(v)))
        .for_each(&mut push);
    Image {
        seq: st.applied_seq,
        next_id: st.next_id,
        spaces: st
            .spaces
            .values()
            .map(|s| SpaceImg {
                json: Object::AddressSpace(s.meta.clone()).to_json(),
                v4: s.idx.index.v4().to_image(),
                v6: s.idx.index.v6().to_image(),
                ids_v4: s.idx.ids_v4.iter().copied().collect(),
                ids_v6: s.idx.ids_v6.iter().copied().collect(),
            })
            .collect(),
        ranges: st
            .ranges
            .values()
            .map(|e| {
                let r = &e.range;
                let (from, v6) = ip_bytes(r.from);
                let rid = match e.rid {
                    AnyRangeId::V4(x) | AnyRangeId::V6(x) => x.get(),
                };
                RangeImg {
                    id: r.id,
                    rid,
                    space: r.space,
                    from,
                    to: ip_bytes(r.to).0,
                    v6,
                    name: r.name.clone(),
                    flags: u8::from(r.subnet)
                        | u8::from(r.is_container) << 1
                        | u8::from(r.locked) << 2
                        | u8::from(r.auto_assign) << 3,
                    folder: r.folder.unwrap_or(0),
                    created: r.created,
                    last_modified: r.last_modified,
                    properties: props(&r.properties),
                }
            })
            .collect(),
        records: st
            .records
            .values()
            .map(|r| {
                let (addr, v6) = ip_bytes(r.addr);
                RecordImg {
                    space: r.space,
                    addr,
                    v6,
                    state: r.state.code(),
                    hold_expires: r.hold.map_or(0, |h| h.expires),
                    hold_user: r.hold.map_or(0, |h| h.user),
                    properties: props(&r.properties),
                    usage: props(&r.usage),
                }
            })
            .collect(),
        others,
    }
}

fn bad(what: impl Into<String>) -> String {
    what.into()
}

fn pairs(
    v: &rkyv::vec::ArchivedVec<
        rkyv::tuple::ArchivedTuple2<rkyv::string::ArchivedString, rkyv::string::ArchivedString>,
    >,
) -> Properties {
    v.iter()
        .map(|t| (t.0.as_str().to_string(), t.1.as_str().to_string()))
        .collect()
}

fn from_archived(img: &ArchivedImage) -> Result<State, String> {
    let mut st = State::new();
    st.applied_seq = img.seq.to_native();
    st.next_id = img.next_id.to_native();
    for s in img.spaces.iter() {
        let Object::AddressSpace(meta) = Object::from_json(ObjType::AddressSpace, s.json.as_str())
            .map_err(|e| bad(format!("address space: {e}")))?
        else {
            return Err(bad("address space image of another type"));
        };
        let mut idx = SpaceIndex::default();
        *idx.index.v4_mut() = Space::<u32>::from_archived(&s.v4)
            .map_err(|e| bad(format!("IPv4 index of space {}: {e}", meta.id)))?;
        *idx.index.v6_mut() = Space::<u128>::from_archived(&s.v6)
            .map_err(|e| bad(format!("IPv6 index of space {}: {e}", meta.id)))?;
        idx.ids_v4 = s.ids_v4.iter().map(|x| x.to_native()).collect();
        idx.ids_v6 = s.ids_v6.iter().map(|x| x.to_native()).collect();
        st.spaces
            .insert(meta.id, std::sync::Arc::new(SpaceState { meta, idx }));
    }
    let indexed: usize = st
        .spaces
        .values()
        .map(|s| {
            s.idx
                .ids_v4
                .iter()
                .chain(s.idx.ids_v6.iter())
                .filter(|&&id| id != 0)
                .count()
        })
        .sum();
    for r in img.ranges.iter() {
        let flags = r.flags;
        let from = ip_from(&r.from, r.v6);
        let to = ip_from(&r.to, r.v6);
        let range = Range {
            id: r.id.to_native(),
            space: r.space.to_native(),
            from,
            to,
            name: r.name.as_str().to_string(),
            subnet: flags & 1 != 0,
            is_container: flags & 2 != 0,
            locked: flags & 4 != 0,
            auto_assign: flags & 8 != 0,
            folder: Some(r.folder.to_native()).filter(|f| *f != 0),
            created: r.created.to_native(),
            last_modified: r.last_modified.to_native(),
            properties: pairs(&r.properties),
        };
        let idx = &st
            .spaces
            .get(&range.space)
            .ok_or_else(|| bad(format!("range {} names a missing address space", range.id)))?
            .idx;
        let x = RangeId::from_raw(r.rid.to_native());
        let (rid, placed) = if r.v6 {
            let p = idx.index.v6().get(x).map(|i| {
                (
                    ipam_index::Addr::to_ip(i.from),
                    ipam_index::Addr::to_ip(i.to),
                )
            });
            (AnyRangeId::V6(x), p)
        } else {
            let p = idx.index.v4().get(x).map(|i| {
                (
                    ipam_index::Addr::to_ip(i.from),
                    ipam_index::Addr::to_ip(i.to),
                )
            });
            (AnyRangeId::V4(x), p)
        };
        if placed != Some((from, to)) || idx.id_of(rid) != range.id {
            return Err(bad(format!(
                "range {} is not where the index has it",
                range.id
            )));
        }
        st.ranges
            .insert(range.id, std::sync::Arc::new(RangeEntry { range, rid }));
    }
    if st.ranges.len() != indexed || st.ranges.len() != img.ranges.len() {
        return Err(bad("the index holds ranges the snapshot does not describe"));
    }
    for r in img.records.iter() {
        let state = RecordState::from_code(r.state).ok_or_else(|| bad("unknown record state"))?;
        let addr = ip_from(&r.addr, r.v6);
        let space = r.space.to_native();
        let rec = IpamRecord {
            space,
            addr,
            state,
            hold: (r.hold_expires.to_native() != 0).then(|| Hold {
                expires: r.hold_expires.to_native(),
                user: r.hold_user.to_native(),
            }),
            properties: pairs(&r.properties),
            usage: pairs(&r.usage),
        };
        let s = st
            .spaces
            .get(&space)
            .ok_or_else(|| bad("record in a missing address space"))?;
        if s.idx.is_used(addr) != state.is_used() {
            return Err(bad(format!("record {addr} disagrees with the index")));
        }
        if let Some(h) = rec.hold {
            st.holds.insert((h.expires, space, addr));
        }
        st.records.insert((space, addr), std::sync::Arc::new(rec));
    }
    for (t, json) in img.others.iter().map(|t| (t.0.as_str(), t.1.as_str())) {
        let t = ObjType::from_name(t).ok_or_else(|| bad(format!("unknown object type {t}")))?;
        let o = Object::from_json(t, json).map_err(|e| bad(format!("{t}: {e}")))?;
        st.put(&o.key(), Some(o)).map_err(|e| bad(e.to_string()))?;
    }
    Ok(st)
}

/// Where a loaded snapshot came from.
pub(crate) struct SnapshotSource {
    pub(crate) path: PathBuf,
    pub(crate) seq: u64,
}

/// The snapshot files in `dir` with the last change each holds, newest first.
pub fn snapshot_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq = name
                .strip_prefix("snapshot-")?
                .strip_suffix(".ipam")?
                .parse()
                .ok()?;
            Some((seq, e.path()))
        })
        .collect();
    v.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
    v
}

/// Loads one snapshot file, checking everything.
fn load_file(path: &Path) -> Result<State, String> {
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let map = map_file(&f)?;
    let bytes: &[u8] = &map;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a snapshot file (bad magic or too short)".into());
    }
    let word = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let dword = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    if word(8) != VERSION {
        return Err(format!("format version {} is not {VERSION}", word(8)));
    }
    let (crc, seq, len) = (word(12), dword(16), dword(24));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!(
            "truncated: payload is {} bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let img = rkyv::access::<ArchivedImage, rkyv::rancor::Error>(payload)
        .map_err(|e| format!("archive: {e}"))?;
    if img.seq.to_native() != seq {
        return Err("header and archive disagree on the sequence number".into());
    }
    from_archived(img)
}

fn map_file(f: &File) -> Result<memmap2::Mmap, String> {
    crate::mmap::map(f).map_err(|e| format!("cannot map: {e}"))
}

/// The newest snapshot in `dir` that loads and is not ahead of the database.
pub(crate) fn load_newest(
    dir: Option<&Path>,
    db_seq: u64,
    rejected: &mut Vec<(PathBuf, String)>,
) -> Option<(State, SnapshotSource)> {
    let dir = dir?;
    for (seq, path) in snapshot_files(dir) {
        if seq > db_seq {
            rejected.push((
                path,
                format!("it holds change {seq}, but the database ends at {db_seq}"),
            ));
            continue;
        }
        match load_file(&path) {
            Ok(st) => return Some((st, SnapshotSource { path, seq })),
            Err(why) => rejected.push((path, why)),
        }
    }
    None
}

/// Builds the state from the store's object tables.
pub(crate) fn load_store(store: &mut dyn Store) -> Result<State, EngineError> {
    let mut st = State::new();
    let mut spaces = Vec::new();
    let mut ranges: Vec<Range> = Vec::new();
    let mut records: Vec<IpamRecord> = Vec::new();
    let mut others = Vec::new();
    store.load_objects(&mut |o| match o {
        Object::AddressSpace(a) => spaces.push(a),
        Object::Range(r) => ranges.push(r),
        Object::IpamRecord(r) => records.push(r),
        other => others.push(other),
    })?;
    for a in spaces {
        let key = crate::model::ObjKey::AddressSpace(a.id);
        st.put(&key, Some(Object::AddressSpace(a)))?;
    }
    // Outer ranges first: each insert then only nests, never adopts.
    ranges.sort_by(|a, b| {
        (a.space, a.from, std::cmp::Reverse(a.to)).cmp(&(b.space, b.from, std::cmp::Reverse(b.to)))
    });
    for r in ranges {
        let key = crate::model::ObjKey::Range(r.id);
        st.put(&key, Some(Object::Range(r)))
            .map_err(|e| corrupt_db(format!("range {key}: {e}")))?;
    }
    records.sort_by_key(|r| (r.space, r.addr));
    for r in records {
        let key = crate::model::ObjKey::IpamRecord {
            space: r.space,
            addr: r.addr,
        };
        st.put(&key, Some(Object::IpamRecord(r)))
            .map_err(|e| corrupt_db(format!("record {key}: {e}")))?;
    }
    for o in others {
        st.put(&o.key(), Some(o))?;
    }
    let meta = store.meta()?;
    st.applied_seq = meta.last_seq;
    st.next_id = meta.next_id.max(1);
    Ok(st)
}

fn corrupt_db(what: String) -> EngineError {
    EngineError::Store(StoreError::Corrupt { what })
}

/// Applies the store's changes after the state's last one.
pub(crate) fn replay(st: &mut State, store: &mut dyn Store) -> Result<(), EngineError> {
    loop {
        let page = store.changes_after(st.applied_seq, 10_000)?;
        if page.is_empty() {
            return Ok(());
        }
        apply_changes(st, page)?;
    }
}

/// Applies changes that follow `st.applied_seq` without a gap.
pub(crate) fn apply_changes(st: &mut State, page: Vec<crate::Change>) -> Result<(), EngineError> {
    for c in page {
        let at = st.applied_seq;
        if c.seq != at + 1 {
            return Err(corrupt_db(format!(
                "the change log jumps from {at} to {}",
                c.seq
            )));
        }
        st.put(&c.key, c.after)
            .map_err(|e| replay_error(c.seq, e))?;
        st.applied_seq = c.seq;
    }
    Ok(())
}

/// Writes a snapshot of `st` (a committed version of the state) into `dir` and answers its
/// path; keeps the newest [`KEEP`] files. Runs on any thread: it only reads the version,
/// which no writer changes (the engine's writer works on its own copy).
pub(crate) fn write(dir: &Path, st: &State) -> Result<PathBuf, EngineError> {
    let img = image(st);
    let io = |what: &str, e: std::io::Error| {
        EngineError::Store(StoreError::backend(
            format!("{what} in {}", dir.display()),
            e,
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the snapshot directory", e))?;
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&img)
        .map_err(|e| EngineError::invalid("snapshot", e.to_string()))?;
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    header[16..24].copy_from_slice(&img.seq.to_le_bytes());
    header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let path = dir.join(format!("snapshot-{:020}.ipam", img.seq));
    let tmp = dir.join(format!(".snapshot-{:020}.tmp", img.seq));
    {
        let mut f = File::create(&tmp).map_err(|e| io("creating a snapshot file", e))?;
        f.write_all(&header)
            .map_err(|e| io("writing a snapshot", e))?;
        // In slices, each synced: a large snapshot flushed at once would queue the disk
        // behind hundreds of megabytes, and the store's commits (fsync) with it.
        for part in payload.chunks(SYNC_EVERY) {
            f.write_all(part).map_err(|e| io("writing a snapshot", e))?;
            f.sync_data().map_err(|e| io("syncing a snapshot", e))?;
        }
        f.sync_all().map_err(|e| io("syncing a snapshot", e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io("renaming a snapshot into place", e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    for (_, old) in snapshot_files(dir).into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}
