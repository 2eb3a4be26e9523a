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
