//! Random transaction sequences against a simple reference model, with restarts (from the
//! database alone and from a snapshot) that must give back the identical state.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipam_engine::model::RecordState;
use ipam_engine::{
    AllocMode, Command, Engine, EngineError, Id, NewRange, Object, Outcome, RecordPatch,
    Transaction, DEFAULT_SPACE,
};
use proptest::prelude::*;

use crate::{alloc, config, open, TempDir};

const BASE: u32 = 0x0a32_0000; // 10.50.0.0/22

/// Candidate ranges: the /22, its two /23s, four /24s and eight /25s.
fn candidates() -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for (len, n) in [(22u32, 1u32), (23, 2), (24, 4), (25, 8)] {
        let size = 1u32 << (32 - len);
        for i in 0..n {
            v.push((BASE + i * size, BASE + (i + 1) * size - 1));
        }
    }
    v
}

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Delete(usize, bool),
    Alloc(usize, u32, bool),
    Set(u32, u8),
    FailingPair(usize, u32),
    Restart(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..15usize).prop_map(Op::Create),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, s)| Op::Delete(i, s)),
        5 => (any::<usize>(), 1..40u32, any::<bool>()).prop_map(|(i, n, c)| Op::Alloc(i, n, c)),
        2 => (0..1024u32, 0..3u8).prop_map(|(a, s)| Op::Set(a, s)),
        1 => (any::<usize>(), 1..5u32).prop_map(|(i, n)| Op::FailingPair(i, n)),
        1 => any::<bool>().prop_map(Op::Restart),
    ]
}

#[derive(Default)]
struct Model {
    ranges: BTreeMap<Id, (u32, u32)>,
    used: BTreeMap<u32, RecordState>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<(Id, (u32, u32))> {
        (!self.ranges.is_empty()).then(|| {
            let (id, b) = self
                .ranges
                .iter()
                .nth(i % self.ranges.len())
                .expect("non-empty");
            (*id, *b)
        })
    }

    /// What allocation must hand out: ascending, skipping network and broadcast, used
    /// addresses and addresses of sub-ranges.
    fn next_free(&self, (f, t): (u32, u32), n: usize) -> Vec<u32> {
        (f + 1..t)
            .filter(|a| !self.used.contains_key(a))
            .filter(|a| {
                !self.ranges.values().any(|&(cf, ct)| {
                    (cf, ct) != (f, t) && f <= cf && ct <= t && cf <= *a && *a <= ct
                })
            })
            .take(n)
            .collect()
    }
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn state_of(e: &Engine, admin: Id) -> (BTreeMap<Id, (u32, u32)>, BTreeMap<u32, RecordState>) {
    let mut ranges = BTreeMap::new();
    let mut used = BTreeMap::new();
    for o in e.read(admin, |v| v.objects()).expect("dump") {
        let ip = |a: IpAddr| match a {
            IpAddr::V4(x) => u32::from(x),
            IpAddr::V6(_) => panic!("no IPv6 here"),
        };
        match o {
            Object::Range(r) => {
                ranges.insert(r.id, (ip(r.from), ip(r.to)));
            }
            Object::IpamRecord(r) => {
                used.insert(ip(r.addr), r.state);
            }
            _ => {}
        }
    }
    (ranges, used)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let d = TempDir::new("props");
    let (mut e, admin) = open(&d.0, config(&d.0, true));
    let mut m = Model::default();
    let cands = candidates();
    for op in ops {
        match op {
            Op::Create(i) => {
                let (f, t) = cands[i];
                let r = e.submit(Transaction::one(
                    admin,
                    Command::CreateRange(NewRange {
                        from: Some(v4(f)),
                        to: Some(v4(t)),
                        ..Default::default()
                    }),
                ));
                let exists = m.ranges.values().any(|&b| b == (f, t));
                match r {
                    Ok(res) => {
                        prop_assert!(!exists, "duplicate range accepted");
                        let Outcome::Created(rf) = &res.outcomes[0] else {
                            panic!()
                        };
                        m.ranges.insert(
                            rf.trim_start_matches("ranges/").parse().expect("id"),
                            (f, t),
                        );
                    }
                    Err(err) => prop_assert!(exists, "create refused: {err}"),
                }
            }
            Op::Delete(i, subtree) => {
                let Some((id, (f, t))) = m.pick(i) else {
                    continue;
                };
                e.submit(Transaction::one(
                    admin,
                    Command::DeleteRange { id, subtree },
                ))
                .expect("delete");
                m.ranges.remove(&id);
                if subtree {
                    m.ranges.retain(|_, &mut (cf, ct)| !(f <= cf && ct <= t));
                }
            }
            Op::Alloc(i, n, claim) => {
                let Some((id, b)) = m.pick(i) else { continue };
                let want = m.next_free(b, n as usize);
                let mode = if claim {
                    AllocMode::Claim
                } else {
                    AllocMode::Assign
                };
                match e.submit(Transaction::one(admin, alloc(vec![id], n, mode))) {
                    Ok(mut res) => {
                        let Outcome::Addresses(got) = res.outcomes.remove(0) else {
                            panic!()
                        };
                        prop_assert_eq!(got, want.iter().map(|&a| v4(a)).collect::<Vec<_>>());
                        for a in want {
                            m.used.insert(
                                a,
                                if claim {
                                    RecordState::Claimed
                                } else {
                                    RecordState::Assigned
                                },
                            );
                        }
                    }
                    Err(err) => {
                        prop_assert!(want.len() < n as usize, "allocation refused: {err}");
                        prop_assert!(matches!(err.root(), EngineError::Exhausted { .. }), "{err}");
                    }
                }
            }
            Op::Set(off, s) => {
                let a = BASE + off;
                let state = [
                    RecordState::Assigned,
                    RecordState::Reserved,
                    RecordState::Free,
                ][s as usize];
                let cmd = if state == RecordState::Free {
                    Command::ReleaseRecord {
                        space: DEFAULT_SPACE,
                        addr: v4(a),
                    }
                } else {
                    Command::SetRecord {
                        space: DEFAULT_SPACE,
                        addr: v4(a),
                        patch: RecordPatch {
                            state: Some(state),
                            ..Default::default()
                        },
                    }
                };
                let in_range = m.ranges.values().any(|&(f, t)| f <= a && a <= t);
                if state != RecordState::Free && !in_range {
                    let err = e.submit(Transaction::one(admin, cmd)).expect_err("outside");
                    prop_assert!(err.to_string().contains("in no range"), "{err}");
                    continue;
                }
                e.submit(Transaction::one(admin, cmd)).expect("set record");
                if state == RecordState::Free {
                    m.used.remove(&a);
                } else {
                    m.used.insert(a, state);
                }
            }
            Op::FailingPair(i, n) => {
                let Some((id, _)) = m.pick(i) else { continue };
                let bad = Command::CreateRange(NewRange {
                    from: Some(v4(BASE + 9)),
                    to: Some(v4(BASE + 3)),
                    ..Default::default()
                });
                let t = Transaction {
                    user: admin,
                    comment: String::new(),
                    idempotency_key: None,
                    commands: vec![alloc(vec![id], n, AllocMode::Assign), bad],
                };
                prop_assert!(e.submit(t).is_err(), "a reversed range must be refused");
            }
            Op::Restart(with_snapshot) => {
                let before = e.read(admin, |v| v.objects()).expect("dump");
                if with_snapshot {
                    e.snapshot_now().expect("snapshot");
                }
                drop(e);
                let (e2, _) = open(&d.0, config(&d.0, with_snapshot));
                e = e2;
                prop_assert_eq!(
                    e.read(admin, |v| v.objects()).expect("dump"),
                    before,
                    "restart (snapshot: {}) changed the state",
                    with_snapshot
                );
            }
        }
        let (ranges, used) = state_of(&e, admin);
        prop_assert_eq!(&ranges, &m.ranges);
        prop_assert_eq!(&used, &m.used);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transactions_match_the_reference_model_across_restarts(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
