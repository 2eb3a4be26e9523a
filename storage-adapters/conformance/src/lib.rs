//! `ipam-store-conformance`: the tests every [`Store`] implementation must pass.
//!
//! An adapter's test suite implements [`Harness`] (how to make an empty database and how to
//! open it again) and expands [`conformance_tests!`], which generates one `#[test]` per check:
//!
//! ```ignore
//! ipam_store_conformance::conformance_tests!(my_harness());
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use ipam_engine::model::{AddressSpace, IpamRecord, RecordState, User};
use ipam_engine::{
    AllocMode, AllocRequest, Change, Command, CommitBatch, Engine, EngineConfig, HistoryQuery,
    IdempotencyEntry, NewRange, ObjKey, Object, Outcome, PasswordCost, Store, Transaction,
    DEFAULT_SPACE,
};

/// How the suite gets databases.
pub trait Harness {
    /// A new, empty database (each call a different one).
    fn fresh(&mut self) -> Box<dyn Store>;
    /// The database last made by [`Harness::fresh`], opened again (as after a restart).
    fn reopen(&mut self) -> Box<dyn Store>;
}

/// Generates one `#[test]` per conformance check; `$h` builds a [`Harness`]. With
/// `skip_if = expr`, each test returns at once (saying so on stderr) when `expr` is true: for an
/// opt-out variable that the adapter's README documents.
#[macro_export]
macro_rules! conformance_tests {
    ($h:expr) => {
        $crate::conformance_tests!($h, skip_if = false);
    };
    ($h:expr, skip_if = $skip:expr) => {
        $crate::conformance_tests!(@each $h; $skip;
            empty_database, commit_and_read_back, survives_reopen, idempotency_keys,
            history_queries, large_batch, bulk_runs_read_back_per_change, engine_round_trip);
    };
    (@each $h:expr; $skip:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if $skip {
                    eprintln!("skipped by the documented opt-out");
                    return;
                }
                let mut h = $h;
                $crate::$name(&mut h);
            }
        )*
    };
}

fn change(seq: u64, key: ObjKey, before: Option<Object>, after: Option<Object>) -> Change {
    Change {
        seq,
        time: 1_700_000_000_000 + seq as i64,
        user_id: 7,
        user: Arc::from("alice"),
        comment: Arc::from(format!("change {seq}")),
        key,
        before,
        after,
    }
}

fn space(id: u64, name: &str) -> Object {
    Object::AddressSpace(AddressSpace {
        id,
        name: name.into(),
        description: String::new(),
    })
}

fn record(space: u64, addr: &str, state: RecordState) -> Object {
    Object::IpamRecord(IpamRecord {
        state,
        ..IpamRecord::free(space, addr.parse().unwrap())
    })
}

fn user(id: u64, name: &str) -> Object {
    Object::User(User {
        id,
        name: name.into(),
        full_name: String::new(),
        email: String::new(),
        password_hash: String::new(),
        roles: Default::default(),
    })
}

fn commit(s: &mut dyn Store, changes: &[Change], next_id: u64) {
    s.commit(&CommitBatch {
        changes,
        next_id,
        idempotency: &[],
        forget_idempotency_before: None,
    })
    .expect("commit");
}

/// A sample of changes: creations, a modification and a deletion, over several types and
/// both address families.
fn sample() -> Vec<Change> {
    let r4 = ObjKey::IpamRecord {
        space: 1,
        addr: "10.0.0.5".parse().unwrap(),
    };
    let r6 = ObjKey::IpamRecord {
        space: 1,
        addr: "2001:db8::5".parse().unwrap(),
    };
    vec![
        change(1, ObjKey::AddressSpace(1), None, Some(space(1, "default"))),
        change(2, ObjKey::User(2), None, Some(user(2, "alice"))),
        change(
            3,
            r4.clone(),
            None,
            Some(record(1, "10.0.0.5", RecordState::Assigned)),
        ),
        change(
            4,
            r6.clone(),
            None,
            Some(record(1, "2001:db8::5", RecordState::Claimed)),
        ),
        change(5, ObjKey::User(3), None, Some(user(3, "bob"))),
        change(
            6,
            r4,
            Some(record(1, "10.0.0.5", RecordState::Assigned)),
            Some(record(1, "10.0.0.5", RecordState::Reserved)),
        ),
        change(7, ObjKey::User(3), Some(user(3, "bob")), None),
        change(
            8,
            ObjKey::AddressSpace(1),
            Some(space(1, "default")),
            Some(space(1, "renamed")),
        ),
    ]
}

fn objects(s: &mut dyn Store) -> Vec<Object> {
    let mut v = Vec::new();
    s.load_objects(&mut |o| v.push(o)).expect("load objects");
    v.sort_by_key(Object::key);
    v
}

/// An empty database has no objects, no changes, and counters at their start.
pub fn empty_database(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let m = s.meta().expect("meta");
    assert_eq!((m.last_seq, m.next_id), (0, 1));
    assert!(objects(&mut *s).is_empty());
    assert!(s.changes_after(0, 100).expect("changes").is_empty());
    assert!(s.idempotency_keys(0).expect("keys").is_empty());
}

/// Committed changes come back exactly, in order, and the object tables hold the latest
/// image of each object (deleted ones gone).
pub fn commit_and_read_back(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let c = sample();
    commit(&mut *s, &c[..3], 5);
    commit(&mut *s, &c[3..], 9);
    assert_eq!(s.changes_after(0, 100).expect("changes"), c);
    assert_eq!(s.changes_after(5, 2).expect("changes"), c[5..7].to_vec());
    let m = s.meta().expect("meta");
    assert_eq!((m.last_seq, m.next_id), (8, 9));
    let want = vec![
        space(1, "renamed"),
        record(1, "10.0.0.5", RecordState::Reserved),
        record(1, "2001:db8::5", RecordState::Claimed),
        user(2, "alice"),
    ];
    let mut want = want;
    want.sort_by_key(Object::key);
    assert_eq!(objects(&mut *s), want);
}

/// What was committed is there after the database is opened again.
pub fn survives_reopen(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let c = sample();
    commit(&mut *s, &c, 9);
    let before = objects(&mut *s);
    drop(s);
    let mut s = h.reopen();
    assert_eq!(s.meta().expect("meta").last_seq, 8);
    assert_eq!(s.changes_after(0, 100).expect("changes"), c);
    assert_eq!(objects(&mut *s), before);
}

/// Idempotency keys are stored with the batch, read back by age, and forgotten on request.
pub fn idempotency_keys(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let e = |k: &str, t: i64| IdempotencyEntry {
        key: k.into(),
        hash: [t as u8; 32],
        result: format!("{{\"n\":{t}}}"),
        time: t,
    };
    let c = sample();
    s.commit(&CommitBatch {
        changes: &c[..1],
        next_id: 2,
        idempotency: &[e("a", 10), e("b", 20)],
        forget_idempotency_before: None,
    })
    .expect("commit");
    let mut keys = s.idempotency_keys(0).expect("keys");
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(keys, vec![e("a", 10), e("b", 20)]);
    assert_eq!(s.idempotency_keys(15).expect("keys"), vec![e("b", 20)]);
    s.commit(&CommitBatch {
        changes: &[],
        next_id: 2,
        idempotency: &[e("c", 30)],
        forget_idempotency_before: Some(20),
    })
    .expect("commit");
    let mut keys = s.idempotency_keys(0).expect("keys");
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(keys, vec![e("b", 20), e("c", 30)]);
    drop(s);
    let mut s = h.reopen();
    assert_eq!(s.idempotency_keys(0).expect("keys").len(), 2);
}

/// History: newest first, by object, by user, by time, paged, with totals.
pub fn history_queries(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let mut c = sample();
    c[4].user_id = 9; // bob's creation was made by someone else
    commit(&mut *s, &c, 9);
    let mut r = s.reader().expect("reader");
    let (all, total) = r
        .history(&HistoryQuery {
            limit: 100,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(total, 8);
    assert_eq!(
        all.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [8, 7, 6, 5, 4, 3, 2, 1]
    );
    let rec = ObjKey::IpamRecord {
        space: 1,
        addr: "10.0.0.5".parse().unwrap(),
    };
    let (h1, t1) = r
        .history(&HistoryQuery {
            key: Some(rec),
            limit: 100,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (h1.iter().map(|c| c.seq).collect::<Vec<_>>(), t1),
        (vec![6, 3], 2)
    );
    let (h2, t2) = r
        .history(&HistoryQuery {
            user_id: Some(9),
            limit: 100,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (h2.iter().map(|c| c.seq).collect::<Vec<_>>(), t2),
        (vec![5], 1)
    );
    let base = 1_700_000_000_000;
    let (h3, t3) = r
        .history(&HistoryQuery {
            since: Some(base + 3),
            until: Some(base + 4),
            limit: 100,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (h3.iter().map(|c| c.seq).collect::<Vec<_>>(), t3),
        (vec![4, 3], 2)
    );
    let (h4, t4) = r
        .history(&HistoryQuery {
            offset: 2,
            limit: 3,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (h4.iter().map(|c| c.seq).collect::<Vec<_>>(), t4),
        (vec![6, 5, 4], 8)
    );
    assert_eq!(h4[0], c[5], "a history entry carries the whole change");
}

/// A group commit of 20,000 changes is one batch and reads back whole.
pub fn large_batch(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let mut c = vec![change(
        1,
        ObjKey::AddressSpace(1),
        None,
        Some(space(1, "default")),
    )];
    for i in 0..20_000u32 {
        let addr = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
        c.push(change(
            u64::from(i) + 2,
            ObjKey::IpamRecord { space: 1, addr },
            None,
            Some(record(1, &addr.to_string(), RecordState::Assigned)),
        ));
    }
    commit(&mut *s, &c, 2);
    assert_eq!(s.meta().expect("meta").last_seq, 20_001);
    assert_eq!(objects(&mut *s).len(), 20_001);
    let tail = s.changes_after(19_990, 100).expect("changes");
    assert_eq!(tail, c[19_990..].to_vec());
}

/// Bulk allocation writes many consecutive new records at once (a store may pack them); they
/// must still read back one change per address: replay from any point, history of one
/// address, and paged history.
pub fn bulk_runs_read_back_per_change(h: &mut dyn Harness) {
    let mut s = h.fresh();
    let mut c = vec![change(
        1,
        ObjKey::AddressSpace(1),
        None,
        Some(space(1, "default")),
    )];
    // 10.0.0.1 .. 10.0.0.20 created in one transaction, then 10.0.0.22 (a gap), then a claim.
    let base = 0x0a00_0001u32;
    for i in 0..20u32 {
        let a = IpAddr::from((base + i).to_be_bytes());
        c.push(change(
            u64::from(i) + 2,
            ObjKey::IpamRecord { space: 1, addr: a },
            None,
            Some(record(1, &a.to_string(), RecordState::Assigned)),
        ));
    }
    for ch in &mut c[1..] {
        ch.time = 1_700_000_000_000;
        ch.comment = Arc::from("bulk");
    }
    let gap: IpAddr = "10.0.0.22".parse().unwrap();
    c.push(change(
        22,
        ObjKey::IpamRecord {
            space: 1,
            addr: gap,
        },
        None,
        Some(record(1, "10.0.0.22", RecordState::Assigned)),
    ));
    commit(&mut *s, &c, 2);
    let mid: IpAddr = "10.0.0.10".parse().unwrap();
    let m = change(
        23,
        ObjKey::IpamRecord {
            space: 1,
            addr: mid,
        },
        Some(record(1, "10.0.0.10", RecordState::Assigned)),
        Some(record(1, "10.0.0.10", RecordState::Claimed)),
    );
    commit(&mut *s, std::slice::from_ref(&m), 2);
    c.push(m);
    assert_eq!(s.changes_after(0, 1000).expect("all"), c);
    for (after, limit) in [(0usize, 1usize), (3, 4), (9, 30), (20, 2), (21, 5), (23, 5)] {
        let want: Vec<Change> = c
            .iter()
            .filter(|x| x.seq > after as u64)
            .take(limit)
            .cloned()
            .collect();
        assert_eq!(
            s.changes_after(after as u64, limit).expect("page"),
            want,
            "after {after}, limit {limit}"
        );
    }
    assert_eq!(objects(&mut *s).len(), 22);
    let mut r = s.reader().expect("reader");
    let (hm, tm) = r
        .history(&HistoryQuery {
            key: Some(ObjKey::IpamRecord {
                space: 1,
                addr: mid,
            }),
            limit: 10,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (hm.iter().map(|x| x.seq).collect::<Vec<_>>(), tm),
        (vec![23, 11], 2)
    );
    assert_eq!(
        hm[1], c[10],
        "the creation inside the bulk write reads back whole"
    );
    let (hg, tg) = r
        .history(&HistoryQuery {
            key: Some(ObjKey::IpamRecord {
                space: 1,
                addr: gap,
            }),
            limit: 10,
            ..Default::default()
        })
        .expect("history");
    assert_eq!(
        (hg.iter().map(|x| x.seq).collect::<Vec<_>>(), tg),
        (vec![22], 1)
    );
    let nothing: IpAddr = "10.0.0.21".parse().unwrap();
    let (hn, tn) = r
        .history(&HistoryQuery {
            key: Some(ObjKey::IpamRecord {
                space: 1,
                addr: nothing,
            }),
            limit: 10,
            ..Default::default()
        })
        .expect("history");
    assert!(hn.is_empty() && tn == 0, "{hn:?}");
    let (page, total) = r
        .history(&HistoryQuery {
            offset: 5,
            limit: 4,
            ..Default::default()
        })
        .expect("page");
    assert_eq!(
        (page.iter().map(|x| x.seq).collect::<Vec<_>>(), total),
        (vec![18, 17, 16, 15], 23)
    );
    let (bulk, n) = r
        .history(&HistoryQuery {
            since: Some(1_700_000_000_000),
            until: Some(1_700_000_000_000),
            offset: 18,
            limit: 10,
            ..Default::default()
        })
        .expect("page");
    assert_eq!(
        (bulk.iter().map(|x| x.seq).collect::<Vec<_>>(), n),
        (vec![3, 2], 20)
    );
}

/// The engine on this store: allocate, restart on the same database, and find the same
/// state, history included.
pub fn engine_round_trip(h: &mut dyn Harness) {
    let cfg = EngineConfig {
        admin_password: Some("pw".into()),
        password_cost: PasswordCost::InsecureFast,
        ..EngineConfig::default()
    };
    let (e, rep) = Engine::open(h.fresh(), cfg.clone()).expect("open engine");
    assert!(
        rep.admin_password.is_none(),
        "the configured password is used, not a generated one"
    );
    let admin = e
        .authenticate("administrator", "pw")
        .expect("administrator logs in");
    let r = e
        .submit(Transaction::one(
            admin,
            Command::CreateRange(NewRange {
                from: Some("10.1.0.0".parse().unwrap()),
                to: Some("10.1.0.255".parse().unwrap()),
                ..Default::default()
            }),
        ))
        .expect("create range");
    let Outcome::Created(rref) = &r.outcomes[0] else {
        panic!("no range created: {r:?}")
    };
    let rid: u64 = rref.trim_start_matches("ranges/").parse().unwrap();
    let a = e
        .submit(Transaction::one(
            admin,
            Command::AllocateAddresses(AllocRequest {
                pool: vec![rid],
                count: 10,
                start: None,
                random: false,
                exclude: vec![],
                mode: AllocMode::Assign,
                properties: Default::default(),
            }),
        ))
        .expect("allocate");
    let Outcome::Addresses(got) = &a.outcomes[0] else {
        panic!("no addresses: {a:?}")
    };
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], "10.1.0.1".parse::<IpAddr>().unwrap());
    let before = e.read(admin, |v| v.objects()).expect("dump");
    drop(e);
    let (e, rep) = Engine::open(h.reopen(), cfg).expect("reopen engine");
    assert_eq!(rep.source, ipam_engine::LoadSource::Database);
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), before);
    let (hist, total) = e
        .history(
            admin,
            &HistoryQuery {
                key: Some(ObjKey::IpamRecord {
                    space: DEFAULT_SPACE,
                    addr: got[3],
                }),
                limit: 10,
                ..Default::default()
            },
        )
        .expect("history");
    assert_eq!(total, 1);
    assert_eq!(hist[0].user.as_ref(), "administrator");
}

/// A database written at an older schema version keeps everything when this build opens it:
/// `old` is a store created at that version; `current` reopens it with this build (which
/// migrates it). Adapters check the schema itself (version number, new tables) on top.
pub fn migration_keeps_data(old: Box<dyn Store>, current: impl FnOnce() -> Box<dyn Store>) {
    let cfg = EngineConfig {
        admin_password: Some("pw".into()),
        password_cost: PasswordCost::InsecureFast,
        ..EngineConfig::default()
    };
    let (e, _) = Engine::open(old, cfg.clone()).expect("open the engine on the old schema");
    let admin = e.authenticate("administrator", "pw").expect("log in");
    let r = e
        .submit(Transaction::one(
            admin,
            Command::CreateRange(NewRange {
                from: Some("10.9.0.0".parse().unwrap()),
                to: Some("10.9.0.255".parse().unwrap()),
                ..Default::default()
            }),
        ))
        .expect("create range");
    let Outcome::Created(rref) = &r.outcomes[0] else {
        panic!("no range created: {r:?}")
    };
    let rid: u64 = rref.trim_start_matches("ranges/").parse().unwrap();
    e.submit(Transaction::one(
        admin,
        Command::AllocateAddresses(AllocRequest {
            pool: vec![rid],
            count: 5,
            start: None,
            random: false,
            exclude: vec![],
            mode: AllocMode::Claim,
            properties: Default::default(),
        }),
    ))
    .expect("allocate");
    let before = e.read(admin, |v| v.objects()).expect("dump");
    drop(e);
    let (e, _) = Engine::open(current(), cfg).expect("open the engine after migrating");
    assert_eq!(
        e.read(admin, |v| v.objects()).expect("dump"),
        before,
        "the migrated database holds the same objects"
    );
    let (_, total) = e
        .history(
            admin,
            &HistoryQuery {
                user_id: Some(admin),
                limit: 100,
                ..Default::default()
            },
        )
        .expect("history by user");
    assert_eq!(
        total, 6,
        "history by the administrator after the migration: one range and five addresses"
    );
}
