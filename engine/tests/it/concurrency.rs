//! Many submitters at once: no duplicates, no errors, everything durable.

use std::collections::BTreeSet;
use std::sync::Arc;

use ipam_engine::{AllocMode, DEFAULT_SPACE};

use crate::{addresses, alloc, config, create_range, open, submit, TempDir};

#[test]
fn sixty_four_threads_allocating_from_one_range_never_share_an_address() {
    const THREADS: usize = 64;
    const EACH: usize = 40;
    let d = TempDir::new("conc");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.30.0.0", "10.30.255.255");
    let e = Arc::new(e);
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|_| {
                        addresses(
                            submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign))
                                .expect("allocation must not fail"),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("thread").into_iter().flatten());
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), THREADS * EACH);
    assert_eq!(unique.len(), all.len(), "an address was handed out twice");
    let u = e.read(admin, |v| v.range(r)).expect("read").utilization;
    assert_eq!(u.used, (THREADS * EACH) as u64);
    let e = Arc::try_unwrap(e).expect("threads done");
    drop(e);
    let (e, admin) = open(&d.0, config(&d.0, false));
    for a in &unique {
        assert!(
            e.read(admin, |v| v.record(DEFAULT_SPACE, *a))
                .expect("read")
                .state
                .is_used(),
            "{a} lost after restart"
        );
    }
}

/// A read that runs as long as it likes blocks nobody: writes are applied and acknowledged,
/// other reads answer, a snapshot is written, and the long read keeps seeing the version it
/// started on. (With one state lock, the writer waited for the long reader and every reader
/// after it queued behind the writer.)
#[test]
fn a_long_read_blocks_neither_writes_nor_other_reads_and_keeps_its_version() {
    use std::sync::mpsc;
    use std::time::Duration;
    let d = TempDir::new("longread");
    let (e, admin) = open(&d.0, config(&d.0, true));
    let r = create_range(&e, admin, "10.31.0.0", "10.31.0.255");
    let e = Arc::new(e);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let long = {
        let e = Arc::clone(&e);
        std::thread::spawn(move || {
            e.read(admin, move |v| {
                let before = v.range(r)?.utilization.used;
                started_tx.send(()).expect("test alive");
                // Hold this read open until the writes below are acknowledged.
                release_rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("released");
                let after = v.range(r)?.utilization.used;
                Ok((before, after, v.records(r, None, 100)?.len()))
            })
        })
    };
    started_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("long read started");
    // Writes and reads go through while the long read is open (bounded waits: a hang fails).
    let (done_tx, done_rx) = mpsc::channel();
    {
        let e = Arc::clone(&e);
        std::thread::spawn(move || {
            let got = addresses(submit(&e, admin, alloc(vec![r], 5, AllocMode::Assign)).unwrap());
            let used = e.read(admin, |v| Ok(v.range(r)?.utilization.used)).unwrap();
            let snap = e.snapshot_now().unwrap();
            done_tx.send((got.len(), used, snap.is_some())).unwrap();
        });
    }
    let (n, used, snap) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a write, a read and a snapshot finish while a long read is open");
    assert_eq!((n, used, snap), (5, 5, true));
    release_tx.send(()).unwrap();
    let (before, after, listed) = long.join().unwrap().unwrap();
    assert_eq!(
        (before, after, listed),
        (0, 0, 0),
        "the long read sees one version throughout"
    );
}
