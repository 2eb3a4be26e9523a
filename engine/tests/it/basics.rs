//! Behaviour of commands, reads, access checks, holds, idempotency and poisoning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_engine::model::{AccessEntry, Permission, Principal, PropertyType, RecordState};
use ipam_engine::{
    AllocMode, AllocRequest, BlockRequest, BlockSpec, Change, Command, CommitBatch, Engine,
    EngineConfig, EngineError, EventType, HistoryQuery, IdempotencyEntry, Membership, NewRange,
    ObjKey, ObjType, Object, Outcome, PropertyDefinitionSpec, RangePatch, RecordPatch, Store,
    StoreError, StoreMeta, StoreReader, Transaction, UserSpec, DEFAULT_SPACE,
};

use crate::{addresses, alloc, config, create_range, ip, open, store, submit, Clock, TempDir};

#[test]
fn first_start_creates_the_administrator_with_a_generated_password() {
    let d = TempDir::new("boot");
    let cfg = EngineConfig {
        admin_password: None,
        ..config(&d.0, false)
    };
    let (e, rep) = Engine::open(store(&d.0), cfg.clone()).expect("open");
    let pw = rep
        .admin_password
        .expect("a generated password is reported on first start");
    assert!(pw.len() >= 16, "password {pw:?} is too short");
    let admin = e
        .authenticate("Administrator", &pw)
        .expect("login with the generated password");
    assert!(matches!(
        e.authenticate("administrator", "wrong"),
        Err(EngineError::BadCredentials)
    ));
    let users = e.read(admin, |v| Ok(v.users())).expect("read users");
    assert_eq!(users.len(), 1);
    assert!(
        users[0].password_hash.is_empty(),
        "hashes are not shown by reads"
    );
    drop(e);
    let (e, rep) = Engine::open(store(&d.0), cfg).expect("reopen");
    assert!(
        rep.admin_password.is_none(),
        "no second administrator on later starts"
    );
    e.authenticate("administrator", &pw)
        .expect("same password after restart");
}

#[test]
fn ranges_nest_and_a_partial_overlap_changes_nothing() {
    let d = TempDir::new("nest");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let net = create_range(&e, admin, "10.0.0.0", "10.0.255.255");
    let lan = create_range(&e, admin, "10.0.1.0", "10.0.1.255");
    let v = e.read(admin, |v| v.range(lan)).expect("read");
    assert_eq!(v.parent, Some(net));
    assert_eq!(
        v.range.name, "10.0.1.0/24",
        "an unnamed prefix is named by its CIDR"
    );
    assert_eq!(v.prefix_len, Some(24));
    let seq = e.committed_seq();
    let before = e.read(admin, |v| v.objects()).expect("dump");
    let err = submit(
        &e,
        admin,
        Command::CreateRange(NewRange {
            from: Some(ip("10.0.1.128")),
            to: Some(ip("10.0.2.127")),
            ..Default::default()
        }),
    )
    .expect_err("partial overlap");
    assert!(err.to_string().contains("partially overlaps"), "{err}");
    let err = submit(
        &e,
        admin,
        Command::CreateRange(NewRange {
            from: Some(ip("10.0.9.0")),
            to: Some(ip("10.0.9.9")),
            subnet: true,
            ..Default::default()
        }),
    )
    .expect_err("not a CIDR");
    assert!(err.to_string().contains("cannot be a subnet"), "{err}");
    assert_eq!(e.committed_seq(), seq);
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), before);
    // Deleting the /16 hands the /24 to the top level; deleting with subtree removes all.
    submit(
        &e,
        admin,
        Command::DeleteRange {
            id: net,
            subtree: false,
        },
    )
    .expect("delete");
    assert_eq!(e.read(admin, |v| v.range(lan)).expect("read").parent, None);
    let net = create_range(&e, admin, "10.0.0.0", "10.0.255.255");
    assert_eq!(
        e.read(admin, |v| v.range(lan)).expect("read").parent,
        Some(net),
        "a new range adopts what it contains"
    );
    submit(
        &e,
        admin,
        Command::DeleteRange {
            id: net,
            subtree: true,
        },
    )
    .expect("delete subtree");
    assert!(matches!(
        e.read(admin, |v| v.range(lan)),
        Err(EngineError::NotFound(_))
    ));
}

#[test]
fn allocation_honours_pools_starts_exclusions_locks_and_exhaustion() {
    let d = TempDir::new("alloc");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let a = create_range(&e, admin, "10.1.0.0", "10.1.0.7"); // /29: 6 usable
    let b = create_range(&e, admin, "10.1.1.0", "10.1.1.255");
    let got = addresses(submit(&e, admin, alloc(vec![a, b], 8, AllocMode::Assign)).expect("pool"));
    let want: Vec<_> = [
        "10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.1.1",
        "10.1.1.2",
    ]
    .iter()
    .map(|s| ip(s))
    .collect();
    assert_eq!(
        got, want,
        "network and broadcast are skipped, the pool is used in order"
    );
    let req = |start: Option<&str>, exclude: Vec<(&str, &str)>| {
        Command::AllocateAddresses(AllocRequest {
            pool: vec![b],
            count: 2,
            start: start.map(ip),
            random: false,
            exclude: exclude.into_iter().map(|(x, y)| (ip(x), ip(y))).collect(),
            mode: AllocMode::Claim,
            properties: Default::default(),
        })
    };
    assert_eq!(
        addresses(
            submit(
                &e,
                admin,
                req(Some("10.1.1.100"), vec![("10.1.1.101", "10.1.1.110")])
            )
            .expect("start")
        ),
        vec![ip("10.1.1.100"), ip("10.1.1.111")]
    );
    assert_eq!(
        e.read(admin, |v| v.record(DEFAULT_SPACE, ip("10.1.1.100")))
            .expect("read")
            .state,
        RecordState::Claimed
    );
    let err = submit(&e, admin, req(Some("10.9.9.9"), vec![])).expect_err("start outside the pool");
    assert!(err.to_string().contains("none of the pool"), "{err}");
    // Exhaustion is all-or-nothing.
    let seq = e.committed_seq();
    let err = submit(&e, admin, alloc(vec![a], 1, AllocMode::Assign)).expect_err("full");
    assert!(
        matches!(
            err.root(),
            EngineError::Exhausted {
                asked: 1,
                found: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = submit(&e, admin, alloc(vec![b], 300, AllocMode::Assign)).expect_err("not enough");
    assert!(
        matches!(err.root(), EngineError::Exhausted { asked: 300, .. }),
        "{err}"
    );
    assert_eq!(e.committed_seq(), seq, "a failed allocation writes nothing");
    // Random starts stay inside the range.
    let r = Command::AllocateAddresses(AllocRequest {
        pool: vec![b],
        count: 5,
        start: None,
        random: true,
        exclude: vec![],
        mode: AllocMode::Assign,
        properties: Default::default(),
    });
    for x in addresses(submit(&e, admin, r).expect("random")) {
        assert!(x > ip("10.1.1.0") && x < ip("10.1.1.255"), "{x}");
    }
    // Locked ranges and containers hand out nothing.
    submit(
        &e,
        admin,
        Command::UpdateRange {
            id: b,
            patch: RangePatch {
                locked: Some(true),
                ..Default::default()
            },
        },
    )
    .expect("lock");
    assert!(matches!(
        submit(&e, admin, alloc(vec![b], 1, AllocMode::Assign))
            .expect_err("locked")
            .root(),
        EngineError::RangeClosed { why: "locked", .. }
    ));
    let err = submit(
        &e,
        admin,
        Command::SetRecord {
            space: DEFAULT_SPACE,
            addr: ip("10.1.1.50"),
            patch: RecordPatch {
                state: Some(RecordState::Assigned),
                ..Default::default()
            },
        },
    )
    .expect_err("locked");
    assert!(
        matches!(err.root(), EngineError::RangeClosed { .. }),
        "{err}"
    );
    let c = create_range(&e, admin, "10.2.0.0", "10.2.255.255");
    submit(
        &e,
        admin,
        Command::UpdateRange {
            id: c,
            patch: RangePatch {
                is_container: Some(true),
                ..Default::default()
            },
        },
    )
    .expect("container");
    assert!(matches!(
        submit(&e, admin, alloc(vec![c], 1, AllocMode::Assign))
            .expect_err("container")
            .root(),
        EngineError::RangeClosed {
            why: "a container",
            ..
        }
    ));
}

#[test]
fn a_failing_command_undoes_its_whole_transaction() {
    let d = TempDir::new("atomic");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.3.0.0", "10.3.0.255");
    let before = e.read(admin, |v| v.objects()).expect("dump");
    let t = Transaction {
        user: admin,
        comment: "two steps".into(),
        idempotency_key: None,
        commands: vec![
            alloc(vec![r], 5, AllocMode::Assign),
            Command::CreateRange(NewRange {
                from: Some(ip("10.3.0.0")),
                to: Some(ip("10.3.0.255")),
                ..Default::default()
            }),
            Command::CreateRange(NewRange {
                from: Some(ip("10.3.0.0")),
                to: Some(ip("10.3.0.255")),
                ..Default::default()
            }),
        ],
    };
    let err = e.submit(t).expect_err("duplicate range");
    assert!(
        matches!(err, EngineError::Command { index: 1, .. }),
        "{err}"
    );
    assert_eq!(e.read(admin, |v| v.objects()).expect("dump"), before);
    assert_eq!(
        addresses(submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).expect("alloc")),
        vec![ip("10.3.0.1")],
        "the rolled-back addresses are free again"
    );
}

#[test]
fn free_blocks_are_found_and_created_as_subnets() {
    let d = TempDir::new("blocks");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.4.0.0", "10.4.0.255");
    create_range(&e, admin, "10.4.0.64", "10.4.0.127");
    let preview = e
        .read(admin, |v| v.free_blocks(r, BlockSpec::Prefix(26), None, 10))
        .expect("preview");
    assert_eq!(
        preview,
        vec![
            (ip("10.4.0.0"), ip("10.4.0.63")),
            (ip("10.4.0.128"), ip("10.4.0.191")),
            (ip("10.4.0.192"), ip("10.4.0.255"))
        ]
    );
    let req = BlockRequest {
        range: r,
        size: BlockSpec::Prefix(26),
        count: 2,
        start: None,
        create: Some(NewRange {
            subnet: true,
            ..Default::default()
        }),
    };
    let Outcome::Blocks { blocks, created } =
        submit(&e, admin, Command::AllocateBlocks(req.clone())).expect("blocks")
    else {
        panic!("no blocks")
    };
    assert_eq!(blocks, preview[..2].to_vec());
    assert_eq!(created.len(), 2);
    let made = e.read(admin, |v| v.range(created[1])).expect("read");
    assert_eq!(
        (made.range.name.as_str(), made.range.subnet, made.parent),
        ("10.4.0.128/26", true, Some(r))
    );
    let err = submit(&e, admin, Command::AllocateBlocks(req)).expect_err("only one left");
    assert!(
        matches!(
            err.root(),
            EngineError::Exhausted {
                asked: 2,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn custom_properties_are_typed_defaulted_and_case_insensitive() {
    let d = TempDir::new("props");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let def = |name: &str, kind, mandatory, default: Option<&str>| {
        Command::CreatePropertyDefinition(PropertyDefinitionSpec {
            obj_type: ObjType::Range,
            name: name.into(),
            kind,
            mandatory,
            default: default.map(Into::into),
            read_only: false,
        })
    };
    submit(
        &e,
        admin,
        def("VLAN", PropertyType::Integer, true, Some("1")),
    )
    .expect("define");
    submit(&e, admin, def("Routed", PropertyType::Boolean, false, None)).expect("define");
    let err =
        submit(&e, admin, def("vlan", PropertyType::String, false, None)).expect_err("duplicate");
    assert!(matches!(err.root(), EngineError::NameTaken { .. }), "{err}");
    let r = create_range(&e, admin, "10.5.0.0", "10.5.0.255");
    let props = |e: &Engine| {
        e.read(admin, |v| v.range(r))
            .expect("read")
            .range
            .properties
    };
    assert_eq!(
        props(&e).get("VLAN").map(String::as_str),
        Some("1"),
        "the default fills a mandatory property"
    );
    let set = |k: &str, v: &str| Command::UpdateRange {
        id: r,
        patch: RangePatch {
            properties: [(k.to_string(), v.to_string())].into_iter().collect(),
            ..Default::default()
        },
    };
    submit(&e, admin, set("vlan", " 42")).expect("set");
    submit(&e, admin, set("ROUTED", "true")).expect("set");
    submit(&e, admin, set("title", "Office")).expect("built-in");
    let p = props(&e);
    assert_eq!(
        (
            p["VLAN"].as_str(),
            p["Routed"].as_str(),
            p["Title"].as_str()
        ),
        ("42", "1", "Office")
    );
    for (k, v, why) in [
        ("VLAN", "forty", "not an integer"),
        ("Routed", "maybe", "not a boolean"),
        ("Colour", "red", "no such custom property"),
        ("VLAN", "", "mandatory"),
    ] {
        let err = submit(&e, admin, set(k, v)).expect_err(why);
        assert!(err.to_string().contains(why), "{k}={v}: {err}");
    }
}

#[test]
fn holds_expire_through_the_write_path_and_show_in_history() {
    let d = TempDir::new("holds");
    let clock = Clock::default();
    let c2 = clock.clone();
    let cfg = EngineConfig {
        clock: Arc::new(move || c2.0.load(Ordering::SeqCst)),
        ..config(&d.0, false)
    };
    let (e, admin) = open(&d.0, cfg);
    let r = create_range(&e, admin, "10.6.0.0", "10.6.0.255");
    submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("bob".into()),
            password: Some("pw".into()),
            ..Default::default()
        }),
    )
    .expect("user");
    let bob = e.authenticate("bob", "pw").expect("bob");
    let admins = e.read(admin, |v| Ok(v.roles())).expect("roles")[0].id;
    submit(
        &e,
        admin,
        Command::AddMembership(Membership::UserRole {
            user: bob,
            role: admins,
        }),
    )
    .expect("make bob an admin");
    let held = addresses(
        submit(
            &e,
            admin,
            alloc(vec![r], 1, AllocMode::Hold { seconds: 60 }),
        )
        .expect("hold"),
    )[0];
    let rec = e
        .read(admin, |v| v.record(DEFAULT_SPACE, held))
        .expect("read");
    assert_eq!(rec.state, RecordState::Held);
    assert_eq!(rec.hold.map(|h| h.user), Some(admin));
    // Not handed out again while held.
    assert_ne!(
        addresses(submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).expect("alloc"))[0],
        held
    );
    clock.advance_secs(61);
    let t0 = Instant::now();
    while e
        .read(admin, |v| v.record(DEFAULT_SPACE, held))
        .expect("read")
        .state
        != RecordState::Free
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the hold did not expire"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (h, _) = e
        .history(
            admin,
            &HistoryQuery {
                key: Some(ObjKey::IpamRecord {
                    space: DEFAULT_SPACE,
                    addr: held,
                }),
                limit: 10,
                ..Default::default()
            },
        )
        .expect("history");
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].user.as_ref(), h[0].comment.as_ref(), h[0].event_type()),
        ("system", "hold expired", EventType::Deletion)
    );
    let _ = bob;
}

#[test]
fn a_hold_blocks_other_users_but_not_the_holder() {
    let d = TempDir::new("holders");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.7.0.0", "10.7.0.255");
    submit(
        &e,
        admin,
        Command::CreateRole {
            name: "operators".into(),
            description: String::new(),
            permissions: [Permission::Read, Permission::Modify, Permission::Allocate]
                .into_iter()
                .collect(),
        },
    )
    .expect("role");
    let role = e
        .read(admin, |v| Ok(v.roles()))
        .expect("roles")
        .into_iter()
        .find(|r| r.name == "operators")
        .expect("role")
        .id;
    for u in ["carol", "dave"] {
        submit(
            &e,
            admin,
            Command::CreateUser(UserSpec {
                name: Some(u.into()),
                password: Some("pw".into()),
                ..Default::default()
            }),
        )
        .expect("user");
        let id = e.authenticate(u, "pw").expect("login");
        submit(
            &e,
            admin,
            Command::AddMembership(Membership::UserRole { user: id, role }),
        )
        .expect("role");
    }
    let carol = e.authenticate("carol", "pw").expect("carol");
    let dave = e.authenticate("dave", "pw").expect("dave");
    let a = addresses(
        submit(
            &e,
            carol,
            alloc(vec![r], 1, AllocMode::Hold { seconds: 300 }),
        )
        .expect("hold"),
    )[0];
    let claim = Command::SetRecord {
        space: DEFAULT_SPACE,
        addr: a,
        patch: RecordPatch {
            state: Some(RecordState::Assigned),
            ..Default::default()
        },
    };
    let err = submit(&e, dave, claim.clone()).expect_err("held for carol");
    assert!(matches!(err.root(), EngineError::Held { .. }), "{err}");
    assert!(err.to_string().contains("carol"), "{err}");
    submit(&e, carol, claim).expect("the holder may claim her own hold");
    assert_eq!(
        e.read(dave, |v| v.record(DEFAULT_SPACE, a))
            .expect("read")
            .state,
        RecordState::Assigned
    );
}

#[test]
fn idempotency_keys_answer_repeats_refuse_reuse_and_survive_restarts() {
    let d = TempDir::new("idem");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.8.0.0", "10.8.0.255");
    let t = Transaction {
        user: admin,
        comment: "bulk".into(),
        idempotency_key: Some("job-1".into()),
        commands: vec![alloc(vec![r], 3, AllocMode::Assign)],
    };
    let first = e.submit(t.clone()).expect("first");
    assert!(!first.replayed);
    let seq = e.committed_seq();
    let again = e.submit(t.clone()).expect("repeat");
    assert!(again.replayed);
    assert_eq!(again.outcomes, first.outcomes);
    assert_eq!(e.committed_seq(), seq, "a repeat applies nothing");
    let mut other = t.clone();
    other.commands = vec![alloc(vec![r], 4, AllocMode::Assign)];
    assert!(matches!(
        e.submit(other.clone()),
        Err(EngineError::IdempotencyConflict { .. })
    ));
    drop(e);
    let (e, _) = open(&d.0, config(&d.0, false));
    let after = e.submit(t).expect("repeat after restart");
    assert!(after.replayed);
    assert_eq!(after.outcomes, first.outcomes);
    assert!(matches!(
        e.submit(other),
        Err(EngineError::IdempotencyConflict { .. })
    ));
}

#[test]
fn access_entries_and_roles_are_enforced_for_writes_and_reads() {
    let d = TempDir::new("access");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r1 = create_range(&e, admin, "10.9.1.0", "10.9.1.255");
    let r2 = create_range(&e, admin, "10.9.2.0", "10.9.2.255");
    submit(
        &e,
        admin,
        Command::CreateRole {
            name: "readers".into(),
            description: String::new(),
            permissions: [Permission::Read].into_iter().collect(),
        },
    )
    .expect("role");
    let readers = e
        .read(admin, |v| Ok(v.roles()))
        .expect("roles")
        .into_iter()
        .find(|r| r.name == "readers")
        .expect("role")
        .id;
    submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("erin".into()),
            password: Some("pw".into()),
            ..Default::default()
        }),
    )
    .expect("user");
    let erin = e.authenticate("erin", "pw").expect("login");
    submit(
        &e,
        admin,
        Command::CreateGroup {
            name: "netops".into(),
            description: String::new(),
        },
    )
    .expect("group");
    let netops = e.read(admin, |v| Ok(v.groups())).expect("groups")[0].id;
    submit(
        &e,
        admin,
        Command::AddMembership(Membership::GroupUser {
            group: netops,
            user: erin,
        }),
    )
    .expect("member");
    submit(
        &e,
        admin,
        Command::AddMembership(Membership::GroupRole {
            group: netops,
            role: readers,
        }),
    )
    .expect("group role");
    // Reading is allowed by the role; writing is not.
    assert!(e.read(erin, |v| v.range(r1)).is_ok());
    let err = submit(&e, erin, alloc(vec![r1], 1, AllocMode::Assign)).expect_err("no Allocate");
    assert!(
        matches!(
            err.root(),
            EngineError::AccessDenied {
                permission: Permission::Allocate,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        submit(
            &e,
            erin,
            Command::CreateRange(NewRange {
                from: Some(ip("10.9.3.0")),
                to: Some(ip("10.9.3.255")),
                ..Default::default()
            })
        )
        .expect_err("no Create")
        .root(),
        EngineError::AccessDenied { .. }
    ));
    // An access entry on r1 for the group allows allocation there only; one on r2 hides it.
    let entry = |p, allow: &[Permission], deny: &[Permission]| AccessEntry {
        principal: p,
        allow: allow.iter().copied().collect(),
        deny: deny.iter().copied().collect(),
    };
    submit(
        &e,
        admin,
        Command::SetAccess {
            obj_type: ObjType::Range,
            obj_id: r1,
            entries: vec![entry(
                Principal::Group(netops),
                &[Permission::Allocate],
                &[],
            )],
        },
    )
    .expect("grant");
    submit(
        &e,
        admin,
        Command::SetAccess {
            obj_type: ObjType::Range,
            obj_id: r2,
            entries: vec![entry(Principal::User(erin), &[], &[Permission::Read])],
        },
    )
    .expect("deny");
    assert_eq!(
        addresses(submit(&e, erin, alloc(vec![r1], 1, AllocMode::Assign)).expect("allowed now")),
        vec![ip("10.9.1.1")]
    );
    assert!(submit(&e, erin, alloc(vec![r2], 1, AllocMode::Assign)).is_err());
    // A range the user may not read looks exactly like one that does not exist.
    let hidden = e.read(erin, |v| v.range(r2)).expect_err("hidden");
    let missing = e
        .read(erin, |v| v.range(r2 + 1_000_000))
        .expect_err("missing");
    assert!(matches!(hidden, EngineError::NotFound(_)), "{hidden}");
    assert_eq!(
        hidden.to_string().replace(&r2.to_string(), "N"),
        missing
            .to_string()
            .replace(&(r2 + 1_000_000).to_string(), "N")
    );
    let top = e
        .read(erin, |v| v.children(DEFAULT_SPACE, None, false, None, 100))
        .expect("list");
    assert_eq!(
        top.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1],
        "a listing leaves out what the user may not read"
    );
    assert!(matches!(
        e.history(erin, &HistoryQuery::default()),
        Err(EngineError::AccessDenied { .. })
    ));
    // Administrators are never locked out.
    let admins = e
        .read(admin, |v| Ok(v.roles()))
        .expect("roles")
        .into_iter()
        .find(|r| r.superuser)
        .expect("admin role")
        .id;
    let err = submit(
        &e,
        admin,
        Command::RemoveMembership(Membership::UserRole {
            user: admin,
            role: admins,
        }),
    )
    .expect_err("last administrator");
    assert!(
        err.to_string()
            .contains("no user in the administrators role"),
        "{err}"
    );
}

#[test]
fn users_groups_and_folders_validate_names_and_references() {
    let d = TempDir::new("users");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let err = submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("ADMINISTRATOR".into()),
            password: Some("x".into()),
            ..Default::default()
        }),
    )
    .expect_err("taken");
    assert!(matches!(err.root(), EngineError::NameTaken { .. }), "{err}");
    let err = submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("frank".into()),
            ..Default::default()
        }),
    )
    .expect_err("no password");
    assert!(err.to_string().contains("password"), "{err}");
    let Outcome::Created(f) = submit(
        &e,
        admin,
        Command::CreateFolder {
            name: "Sites".into(),
            parent: None,
        },
    )
    .expect("folder") else {
        panic!()
    };
    let f: u64 = f.trim_start_matches("folders/").parse().expect("id");
    let err = submit(
        &e,
        admin,
        Command::UpdateFolder {
            id: f,
            name: None,
            parent: Some(Some(f)),
        },
    )
    .expect_err("cycle");
    assert!(err.to_string().contains("inside itself"), "{err}");
    let r = create_range(&e, admin, "10.10.0.0", "10.10.0.255");
    submit(
        &e,
        admin,
        Command::UpdateRange {
            id: r,
            patch: RangePatch {
                folder: Some(Some(f)),
                ..Default::default()
            },
        },
    )
    .expect("file");
    assert!(matches!(
        submit(&e, admin, Command::DeleteFolder { id: f })
            .expect_err("in use")
            .root(),
        EngineError::InUse { .. }
    ));
    assert!(matches!(
        submit(
            &e,
            admin,
            Command::UpdateRange {
                id: r,
                patch: RangePatch {
                    folder: Some(Some(999)),
                    ..Default::default()
                }
            }
        )
        .expect_err("no folder")
        .root(),
        EngineError::NotFound(_)
    ));
}

/// A store that fails commits on demand, around a real SQLite store.
struct Failing {
    inner: Box<dyn Store>,
    fail: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Injected;
impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected I/O failure")
    }
}
impl std::error::Error for Injected {}

impl Store for Failing {
    fn meta(&mut self) -> Result<StoreMeta, StoreError> {
        self.inner.meta()
    }
    fn load_objects(&mut self, f: &mut dyn FnMut(Object)) -> Result<(), StoreError> {
        self.inner.load_objects(f)
    }
    fn changes_after(&mut self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.inner.changes_after(after, limit)
    }
    fn commit(&mut self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::backend("committing", Injected));
        }
        self.inner.commit(batch)
    }
    fn idempotency_keys(&mut self, since: i64) -> Result<Vec<IdempotencyEntry>, StoreError> {
        self.inner.idempotency_keys(since)
    }
    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        self.inner.reader()
    }
}

#[test]
fn a_failed_commit_poisons_the_engine_and_nothing_unacknowledged_survives() {
    let d = TempDir::new("poison");
    let fail = Arc::new(AtomicBool::new(false));
    let (e, _) = Engine::open(
        Box::new(Failing {
            inner: store(&d.0),
            fail: fail.clone(),
        }),
        config(&d.0, false),
    )
    .expect("open");
    let admin = e.authenticate("administrator", "admin-pw").expect("login");
    let r = create_range(&e, admin, "10.11.0.0", "10.11.0.255");
    addresses(submit(&e, admin, alloc(vec![r], 2, AllocMode::Assign)).expect("alloc"));
    let good = e.read(admin, |v| v.objects()).expect("dump");
    fail.store(true, Ordering::SeqCst);
    let err = submit(&e, admin, alloc(vec![r], 2, AllocMode::Assign)).expect_err("commit fails");
    assert!(matches!(err, EngineError::Poisoned { .. }), "{err}");
    fail.store(false, Ordering::SeqCst);
    let err = submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).expect_err("still poisoned");
    assert!(
        err.to_string().contains("injected I/O failure"),
        "every error names the cause: {err}"
    );
    assert!(
        matches!(
            e.read(admin, |v| v.objects()),
            Err(EngineError::Poisoned { .. })
        ),
        "reads refuse to show the unknown state"
    );
    drop(e);
    let (e, admin) = open(&d.0, config(&d.0, false));
    assert_eq!(
        e.read(admin, |v| v.objects()).expect("dump"),
        good,
        "the restart shows exactly the acknowledged state"
    );
}

/// Scans stop at the budget's cap, at its cancellation flag and at its deadline, with the
/// error saying which; an unlimited read of the same data answers.
#[test]
fn reads_stop_at_their_budget() {
    use ipam_engine::{Budget, BudgetExceeded};
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;
    let d = TempDir::new("budget");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.40.0.0", "10.40.3.255");
    addresses(submit(&e, admin, alloc(vec![r], 600, AllocMode::Assign)).expect("alloc"));
    let all = e.read(admin, |v| v.records(r, None, 10_000)).unwrap();
    assert_eq!(all.len(), 600);
    let capped = Budget::unlimited().with_max_examined(100);
    let err = e
        .read_with(admin, &capped, |v| v.records(r, None, 10_000))
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Budget(BudgetExceeded::TooMuchWork { limit: 100 })
        ),
        "{err}"
    );
    let flag = Arc::new(AtomicBool::new(true));
    let cancelled = Budget::unlimited().with_cancel(flag);
    let err = e
        .read_with(admin, &cancelled, |v| v.records(r, None, 10_000))
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Budget(BudgetExceeded::Cancelled)),
        "{err}"
    );
    let late = Budget::unlimited().with_timeout(Duration::ZERO);
    let err = e
        .read_with(admin, &late, |v| v.ranges_where(DEFAULT_SPACE, |_| true))
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Budget(BudgetExceeded::Deadline { .. })),
        "{err}"
    );
}

/// A Deny Read entry on a sub-range hides its records from every listing of its parent, and
/// its addresses read like addresses in no range.
#[test]
fn hidden_subranges_stay_hidden_in_listings() {
    use ipam_engine::model::{AccessEntry, Permission, Principal};
    use ipam_engine::UserSpec;
    let d = TempDir::new("hidden");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let parent = create_range(&e, admin, "10.41.0.0", "10.41.0.255");
    let secret = create_range(&e, admin, "10.41.0.128", "10.41.0.191");
    addresses(submit(&e, admin, alloc(vec![parent], 3, AllocMode::Assign)).unwrap());
    addresses(submit(&e, admin, alloc(vec![secret], 4, AllocMode::Assign)).unwrap());
    submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("auditor".into()),
            password: Some("auditor-pw".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    let auditor = e.authenticate("auditor", "auditor-pw").unwrap();
    let everything = |perms: &[Permission]| AccessEntry {
        principal: Principal::User(auditor),
        allow: perms.iter().copied().collect(),
        deny: Default::default(),
    };
    submit(
        &e,
        admin,
        Command::SetAccess {
            obj_type: ipam_engine::ObjType::Range,
            obj_id: parent,
            entries: vec![everything(&[Permission::Read])],
        },
    )
    .unwrap();
    submit(
        &e,
        admin,
        Command::SetAccess {
            obj_type: ipam_engine::ObjType::Range,
            obj_id: secret,
            entries: vec![AccessEntry {
                principal: Principal::User(auditor),
                allow: Default::default(),
                deny: [Permission::Read].into_iter().collect(),
            }],
        },
    )
    .unwrap();
    let listed = e
        .read(auditor, |v| v.records(parent, None, 1000))
        .expect("the parent is readable");
    let addrs: Vec<String> = listed.iter().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["10.41.0.1", "10.41.0.2", "10.41.0.3"], "{addrs:?}");
    let hidden = e
        .read(auditor, |v| v.record(DEFAULT_SPACE, ip("10.41.0.129")))
        .unwrap();
    let outside = e
        .read(auditor, |v| v.record(DEFAULT_SPACE, ip("10.99.0.1")))
        .unwrap();
    assert_eq!(hidden.state, ipam_engine::model::RecordState::Free);
    assert_eq!(
        (hidden.state, hidden.properties.len(), hidden.hold),
        (outside.state, outside.properties.len(), outside.hold),
        "a hidden address reads like one in no range"
    );
    // The administrator still sees all seven.
    let all = e.read(admin, |v| v.records(parent, None, 1000)).unwrap();
    assert_eq!(all.len(), 7);
}

/// `system` and `administrator` are not for anyone to take; renaming oneself needs Modify on
/// one's own account; a password reaches the store only as an argon2id hash.
#[test]
fn reserved_names_self_renames_and_password_hashes() {
    use ipam_engine::UserSpec;
    let d = TempDir::new("names");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let user = |name: &str| {
        Command::CreateUser(UserSpec {
            name: Some(name.into()),
            password: Some("pw-123".into()),
            ..Default::default()
        })
    };
    let rename_admin = |to: &str| Command::UpdateUser {
        id: admin,
        spec: UserSpec {
            name: Some(to.into()),
            ..Default::default()
        },
    };
    // With the built-in account renamed, its name is still not free for others.
    submit(&e, admin, rename_admin("root")).unwrap();
    for reserved in ["system", "SYSTEM", "Administrator"] {
        let err = submit(&e, admin, user(reserved)).expect_err(reserved);
        assert!(err.to_string().contains("reserved"), "{err}");
    }
    submit(&e, admin, user("mallory")).unwrap();
    let mallory = e.authenticate("mallory", "pw-123").unwrap();
    let rename = |to: &str| Command::UpdateUser {
        id: mallory,
        spec: UserSpec {
            name: Some(to.into()),
            ..Default::default()
        },
    };
    // mallory has no role: it may not rename itself, to anything.
    let err = submit(&e, mallory, rename("malloryx")).expect_err("self rename");
    assert!(
        matches!(err.root(), EngineError::AccessDenied { .. }),
        "{err}"
    );
    let err = submit(&e, admin, rename("system")).expect_err("to system");
    assert!(err.to_string().contains("reserved"), "{err}");
    // It may change its own password; the stored image holds an argon2id hash only.
    submit(
        &e,
        mallory,
        Command::UpdateUser {
            id: mallory,
            spec: UserSpec {
                password: Some("new-pw-456".into()),
                ..Default::default()
            },
        },
    )
    .unwrap();
    assert!(e.authenticate("mallory", "new-pw-456").is_ok());
    let objects = e.read(admin, |v| v.objects()).unwrap();
    let stored = objects
        .iter()
        .find_map(|o| match o {
            Object::User(u) if u.id == mallory => Some(u.password_hash.clone()),
            _ => None,
        })
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    // A hash that is not argon2id is refused.
    let err = submit(
        &e,
        admin,
        Command::UpdateUser {
            id: mallory,
            spec: UserSpec {
                password_hash: Some("plain-text".into()),
                ..Default::default()
            },
        },
    )
    .expect_err("bad hash");
    assert!(err.to_string().contains("argon2id"), "{err}");
    // The built-in account may take its name back.
    submit(&e, admin, rename_admin("administrator")).unwrap();
}

/// A range whose name is written as a CIDR holds exactly that block: an impossible CIDR, or
/// one naming other addresses, is refused on creation and on rename.
#[test]
fn a_cidr_name_must_be_the_range_itself() {
    let d = TempDir::new("cidrname");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let named = |name: &str, from: &str, to: &str| {
        Command::CreateRange(NewRange {
            name: name.into(),
            from: Some(ip(from)),
            to: Some(ip(to)),
            ..Default::default()
        })
    };
    for (name, from, to) in [
        ("10.20.300.0/24", "10.21.44.0", "10.21.44.255"),
        ("10.20.1.0/24", "10.20.2.0", "10.20.2.255"),
        ("10.20.1.0/25", "10.20.1.0", "10.20.1.255"),
        (
            "2001:db8::/48",
            "2001:db8:1::",
            "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
        ),
    ] {
        let err = submit(&e, admin, named(name, from, to)).expect_err(name);
        assert!(
            err.to_string().contains("written as a CIDR"),
            "{name}: {err}"
        );
    }
    let ok = submit(&e, admin, named("10.20.1.0/24", "10.20.1.0", "10.20.1.255")).unwrap();
    let id: ipam_engine::Id = match ok {
        Outcome::Created(r) => r.trim_start_matches("ranges/").parse().unwrap(),
        o => panic!("{o:?}"),
    };
    submit(&e, admin, named("lab/west", "10.20.2.0", "10.20.2.255")).expect("not a CIDR");
    let err = submit(
        &e,
        admin,
        Command::UpdateRange {
            id,
            patch: RangePatch {
                name: Some("10.20.9.0/24".into()),
                ..Default::default()
            },
        },
    )
    .expect_err("rename to another block");
    assert!(err.to_string().contains("written as a CIDR"), "{err}");
}
