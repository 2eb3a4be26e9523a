//! Snapshots: start-up from the newest good snapshot plus replay; bad snapshots are skipped.

use ipam_engine::{AllocMode, Engine, LoadSource};

use crate::{addresses, alloc, config, create_range, open, store, submit, TempDir};

fn snapshot_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("snapshots"))
        .expect("snapshot dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ipam"))
        .collect();
    v.sort();
    v
}

#[test]
fn start_up_maps_the_snapshot_and_replays_only_later_changes() {
    let d = TempDir::new("snap");
    let (e, admin) = open(&d.0, config(&d.0, true));
    let r = create_range(&e, admin, "10.20.0.0", "10.20.255.255");
    create_range(&e, admin, "2001:db8::", "2001:db8::ffff");
    addresses(submit(&e, admin, alloc(vec![r], 500, AllocMode::Assign)).expect("alloc"));
    addresses(
        submit(
            &e,
            admin,
            alloc(vec![r], 3, AllocMode::Hold { seconds: 3600 }),
        )
        .expect("hold"),
    );
    let path = e
        .snapshot_now()
        .expect("snapshot")
        .expect("a snapshot dir is configured");
    let snap_seq = e.committed_seq();
    addresses(submit(&e, admin, alloc(vec![r], 7, AllocMode::Claim)).expect("alloc"));
    let want = e.read(admin, |v| v.objects()).expect("dump");
    let last = e.committed_seq();
    drop(e);
    let (e, rep) = Engine::open(store(&d.0), config(&d.0, true)).expect("reopen");
    assert_eq!(
        rep.source,
        LoadSource::Snapshot {
            path,
            seq: snap_seq
        }
    );
    assert_eq!(rep.replayed, last - snap_seq);
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), want);
    // The restored index allocates where the old one left off.
    assert_eq!(
        addresses(submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).expect("alloc")),
        vec![crate::ip("10.20.1.255")]
    );
    drop(e);
    // Without snapshots the database alone gives the same state.
    let (e, rep) = Engine::open(store(&d.0), config(&d.0, false)).expect("reopen");
    assert_eq!(rep.source, LoadSource::Database);
    let mut want2 = e.read(admin, |v| v.objects()).expect("dump");
    want2.retain(
        |o| !matches!(o, ipam_engine::Object::IpamRecord(r) if r.addr == crate::ip("10.20.1.255")),
    );
    assert_eq!(want2, want);
}

#[test]
fn corrupt_truncated_or_future_snapshots_are_skipped_never_trusted() {
    let d = TempDir::new("badsnap");
    let (e, admin) = open(&d.0, config(&d.0, true));
    let r = create_range(&e, admin, "10.21.0.0", "10.21.0.255");
    addresses(submit(&e, admin, alloc(vec![r], 10, AllocMode::Assign)).expect("alloc"));
    let older = e.snapshot_now().expect("snapshot").expect("path");
    addresses(submit(&e, admin, alloc(vec![r], 10, AllocMode::Assign)).expect("alloc"));
    let newer = e.snapshot_now().expect("snapshot").expect("path");
    let want = e.read(admin, |v| v.objects()).expect("dump");
    drop(e);
    assert_eq!(snapshot_files(&d.0), vec![older.clone(), newer.clone()]);
    // Flip one payload byte of the newer snapshot: the older one is used, then replay.
    let mut bytes = std::fs::read(&newer).expect("read");
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&newer, &bytes).expect("corrupt");
    let (e, rep) = Engine::open(store(&d.0), config(&d.0, true)).expect("reopen");
    assert!(
        matches!(&rep.source, LoadSource::Snapshot { path, .. } if *path == older),
        "{rep:?}"
    );
    assert!(
        rep.rejected_snapshots
            .iter()
            .any(|(p, why)| *p == newer && why.contains("checksum")),
        "{rep:?}"
    );
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), want);
    drop(e);
    // Truncate the older one too: start-up falls back to the database.
    let b = std::fs::read(&older).expect("read");
    std::fs::write(&older, &b[..b.len() - 100]).expect("truncate");
    let (e, rep) = Engine::open(store(&d.0), config(&d.0, true)).expect("reopen");
    assert_eq!(rep.source, LoadSource::Database, "{rep:?}");
    assert!(
        rep.rejected_snapshots
            .iter()
            .any(|(_, why)| why.contains("truncated")),
        "{rep:?}"
    );
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), want);
    let good = e.snapshot_now().expect("snapshot").expect("path");
    drop(e);
    // A snapshot ahead of its database (a restored backup) is refused.
    let d2 = TempDir::new("future");
    let (e2, _) = open(&d2.0, config(&d2.0, true));
    drop(e2);
    std::fs::create_dir_all(d2.0.join("snapshots")).expect("dir");
    std::fs::copy(
        &good,
        d2.0.join("snapshots").join(good.file_name().expect("name")),
    )
    .expect("copy");
    let (_e2, rep) = Engine::open(store(&d2.0), config(&d2.0, true)).expect("open");
    assert_eq!(rep.source, LoadSource::Database);
    assert!(
        rep.rejected_snapshots
            .iter()
            .any(|(_, why)| why.contains("database ends at")),
        "{rep:?}"
    );
}
