//! DNS and DHCP objects: validation, cascading deletes, the link to IPAM records (a named
//! address is used, next free skips it, it cannot be freed by hand) and reloads.

use ipam_engine::model::{
    DhcpLease, DhcpReservation, DhcpScope, DhcpServer, DnsRecord, DnsServer, DnsZone, RecordState,
};
use ipam_engine::{
    AllocMode, Command, Engine, EngineError, Id, ObjKey, Outcome, RecordPatch, ServiceObject,
    DEFAULT_SPACE, LINKED_BY,
};

use crate::{addresses, alloc, config, create_range, ip, open, store, submit, TempDir};

pub fn created(o: Outcome) -> Id {
    match o {
        Outcome::Created(r) => r.rsplit('/').next().unwrap().parse().unwrap(),
        other => panic!("expected a creation, got {other:?}"),
    }
}

fn put(e: &Engine, user: Id, o: ServiceObject) -> Result<Id, EngineError> {
    submit(e, user, Command::PutService(o)).map(created)
}

fn server(e: &Engine, user: Id) -> Id {
    put(
        e,
        user,
        ServiceObject::DnsServer(DnsServer {
            id: 0,
            name: "ns1".into(),
            agent: "127.0.0.1:1337".into(),
            kind: "bind".into(),
        }),
    )
    .expect("server")
}

fn zone(e: &Engine, user: Id, server: Id, name: &str) -> Id {
    put(
        e,
        user,
        ServiceObject::DnsZone(DnsZone {
            id: 0,
            server,
            view: String::new(),
            name: name.into(),
            primary: true,
            dynamic: true,
            masters: vec![],
            serial: None,
            properties: Default::default(),
            created: 0,
            last_modified: 0,
        }),
    )
    .expect("zone")
}

fn record(zone: Id, name: &str, rtype: &str, data: &str) -> ServiceObject {
    ServiceObject::DnsRecord(DnsRecord {
        id: 0,
        zone,
        name: name.into(),
        rtype: rtype.into(),
        ttl: 300,
        data: data.into(),
        comment: String::new(),
        enabled: true,
        address: None,
    })
}

fn state(e: &Engine, user: Id, a: &str) -> (RecordState, bool) {
    let r = e
        .read(user, move |v| v.record(DEFAULT_SPACE, ip(a)))
        .expect("record");
    (r.state, r.usage.contains_key(LINKED_BY))
}

#[test]
fn dns_records_make_their_addresses_used_until_they_go() {
    let d = TempDir::new("dnslink");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let r = create_range(&e, admin, "10.1.0.0", "10.1.0.255");
    let s = server(&e, admin);
    let z = zone(&e, admin, s, "Example.TEST");
    let rz = zone(&e, admin, s, "0.1.10.in-addr.arpa");
    let zone_name = e.read(admin, move |v| v.dns_zone(z)).unwrap().name;
    assert_eq!(zone_name, "example.test.", "names are absolute, lower case");

    // An absolute name is made relative; the address becomes used.
    let www = put(&e, admin, record(z, "www.example.test.", "A", "10.1.0.0")).unwrap();
    let rec = e.read(admin, move |v| v.dns_record(www)).unwrap();
    assert_eq!(rec.name, "www");
    assert_eq!(rec.address, Some(ip("10.1.0.0")));
    assert_eq!(state(&e, admin, "10.1.0.0"), (RecordState::Assigned, true));
    // Next free skips it.
    let got = addresses(submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).unwrap());
    assert_eq!(got, vec![ip("10.1.0.1")]);
    // The PTR record links to the same address; the links show both.
    let ptr = put(&e, admin, record(rz, "0", "PTR", "www.example.test.")).unwrap();
    let links = e
        .read(
            admin,
            |v| Ok(v.address_links(DEFAULT_SPACE, ip("10.1.0.0"))),
        )
        .unwrap();
    assert_eq!(links.dns.len(), 2);
    // Freeing it by hand is refused and changes nothing.
    let err = submit(
        &e,
        admin,
        Command::ReleaseRecord {
            space: DEFAULT_SPACE,
            addr: ip("10.1.0.0"),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("DNS record"), "{err}");
    assert_eq!(state(&e, admin, "10.1.0.0"), (RecordState::Assigned, true));
    // One record gone: still used; both gone: free again.
    submit(&e, admin, Command::DeleteService(ObjKey::DnsRecord(www))).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.0"), (RecordState::Assigned, true));
    submit(&e, admin, Command::DeleteService(ObjKey::DnsRecord(ptr))).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.0"), (RecordState::Free, false));

    // An address a user assigned stays assigned after its record goes.
    let h = put(&e, admin, record(z, "host", "A", "10.1.0.1")).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.1"), (RecordState::Assigned, false));
    submit(&e, admin, Command::DeleteService(ObjKey::DnsRecord(h))).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.1"), (RecordState::Assigned, false));

    // Deleting a zone deletes its records and frees their addresses.
    put(&e, admin, record(z, "a", "A", "10.1.0.7")).unwrap();
    put(&e, admin, record(z, "txt", "TXT", "hello world")).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.7"), (RecordState::Assigned, true));
    submit(&e, admin, Command::DeleteService(ObjKey::DnsZone(z))).unwrap();
    assert_eq!(state(&e, admin, "10.1.0.7"), (RecordState::Free, false));
    assert!(e.read(admin, move |v| v.dns_records(z)).is_err());
}

#[test]
fn bad_dns_data_is_refused_and_changes_nothing() {
    let d = TempDir::new("dnsbad");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let s = server(&e, admin);
    let z = zone(&e, admin, s, "example.test");
    let seq = e.committed_seq();
    for (o, want) in [
        (record(z, "x", "A", "10.0.0.256"), "IPv4"),
        (record(z, "x", "AAAA", "10.0.0.1"), "IPv6"),
        (
            record(z, "x.other.test.", "A", "10.0.0.1"),
            "not in the zone",
        ),
        (record(z, "bad name", "A", "10.0.0.1"), "not a DNS name"),
        (record(z, "x", "SOA", "a b 1 2 3 4 5"), "SOA"),
        (record(z, "x", "TXT", ""), "data"),
        (record(9999, "x", "A", "10.0.0.1"), "does not exist"),
    ] {
        let err = put(&e, admin, o).unwrap_err().to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
    // A second zone of the same name on the same server and view is refused.
    let err = submit(
        &e,
        admin,
        Command::PutService(ServiceObject::DnsZone(DnsZone {
            id: 0,
            server: s,
            view: String::new(),
            name: "EXAMPLE.test.".into(),
            primary: true,
            dynamic: false,
            masters: vec![],
            serial: None,
            properties: Default::default(),
            created: 0,
            last_modified: 0,
        })),
    )
    .unwrap_err();
    assert!(err.to_string().contains("example.test."), "{err}");
    assert_eq!(e.committed_seq(), seq, "nothing was written");
}

#[test]
fn dhcp_reservations_and_leases_link_and_reload_from_the_database_and_a_snapshot() {
    let d = TempDir::new("dhcplink");
    let (e, admin) = open(&d.0, config(&d.0, true));
    let r = create_range(&e, admin, "192.0.2.0", "192.0.2.255");
    let srv = put(
        &e,
        admin,
        ServiceObject::DhcpServer(DhcpServer {
            id: 0,
            name: "kea1".into(),
            agent: "127.0.0.1:4151".into(),
            kind: "kea".into(),
        }),
    )
    .unwrap();
    let bad_pool = put(
        &e,
        admin,
        ServiceObject::DhcpScope(DhcpScope {
            id: 0,
            server: srv,
            range: r,
            space: 0,
            name: String::new(),
            description: String::new(),
            enabled: true,
            pools: vec![(ip("192.0.2.100"), ip("192.0.3.1"))],
            options: vec![],
        }),
    )
    .unwrap_err();
    assert!(bad_pool.to_string().contains("pool"), "{bad_pool}");
    let scope = put(
        &e,
        admin,
        ServiceObject::DhcpScope(DhcpScope {
            id: 0,
            server: srv,
            range: r,
            space: 0,
            name: String::new(),
            description: String::new(),
            enabled: true,
            pools: vec![(ip("192.0.2.100"), ip("192.0.2.199"))],
            options: vec![("routers".into(), "192.0.2.1".into())],
        }),
    )
    .unwrap();
    let res = ServiceObject::DhcpReservation(DhcpReservation {
        id: 0,
        scope,
        space: 0,
        name: "printer".into(),
        client_identifier: "02:00:00:00:00:42".into(),
        method: "HardwareAddress".into(),
        addresses: vec![ip("192.0.2.42")],
    });
    put(&e, admin, res.clone()).unwrap();
    let dup = put(&e, admin, res).unwrap_err();
    assert!(dup.to_string().contains("02:00:00:00:00:42"), "{dup}");
    let lease = put(
        &e,
        admin,
        ServiceObject::DhcpLease(DhcpLease {
            id: 0,
            scope,
            space: 0,
            addr: ip("192.0.2.100"),
            mac: "02:00:00:00:00:99".into(),
            hostname: "laptop".into(),
            expires: None,
            state: "Active".into(),
        }),
    )
    .unwrap();
    let check = |e: &Engine| {
        assert_eq!(state(e, admin, "192.0.2.42"), (RecordState::Assigned, true));
        assert_eq!(
            state(e, admin, "192.0.2.100"),
            (RecordState::Assigned, true)
        );
        let l = e
            .read(admin, |v| {
                Ok(v.address_links(DEFAULT_SPACE, ip("192.0.2.100")))
            })
            .unwrap();
        assert_eq!(l.leases.len(), 1);
        assert_eq!(l.leases[0].hostname, "laptop");
    };
    check(&e);
    e.snapshot_now().unwrap();
    let want = e.read(admin, |v| v.objects()).unwrap();
    drop(e);
    // From the snapshot, then from the database alone: the same objects and links.
    let (e, _) = Engine::open(store(&d.0), config(&d.0, true)).unwrap();
    check(&e);
    assert_eq!(e.read(admin, |v| v.objects()).unwrap(), want);
    drop(e);
    let (e, _) = Engine::open(store(&d.0), config(&d.0, false)).unwrap();
    check(&e);
    assert_eq!(e.read(admin, |v| v.objects()).unwrap(), want);
    // An expired lease frees its address; deleting the scope removes the reservation too.
    let mut l = e
        .read(admin, move |v| Ok(v.dhcp_leases(scope)))
        .unwrap()
        .remove(0);
    assert_eq!(l.id, lease);
    l.state = "Expired".into();
    submit(&e, admin, Command::PutService(ServiceObject::DhcpLease(l))).unwrap();
    assert_eq!(state(&e, admin, "192.0.2.100"), (RecordState::Free, false));
    // A claimed address with a reservation keeps its claim after the reservation goes.
    submit(
        &e,
        admin,
        Command::SetRecord {
            space: DEFAULT_SPACE,
            addr: ip("192.0.2.42"),
            patch: RecordPatch {
                state: Some(RecordState::Claimed),
                ..Default::default()
            },
        },
    )
    .unwrap();
    submit(&e, admin, Command::DeleteService(ObjKey::DhcpScope(scope))).unwrap();
    assert!(e
        .read(admin, |v| Ok(v.dhcp_reservations(None)))
        .unwrap()
        .is_empty());
    assert_eq!(state(&e, admin, "192.0.2.42").0, RecordState::Claimed);
}

#[test]
fn a_refused_transaction_leaves_no_record_link_or_index_entry_behind() {
    let d = TempDir::new("dnsrollback");
    let (e, admin) = open(&d.0, config(&d.0, false));
    create_range(&e, admin, "10.2.0.0", "10.2.0.255");
    let s = server(&e, admin);
    let z = zone(&e, admin, s, "roll.test");
    let seq = e.committed_seq();
    // The first two commands apply, the third is refused: all three are undone.
    let err = e
        .submit(ipam_engine::Transaction {
            user: admin,
            comment: String::new(),
            idempotency_key: None,
            commands: vec![
                Command::PutService(record(z, "a", "A", "10.2.0.9")),
                Command::PutService(record(z, "9", "PTR", "a.roll.test.")),
                Command::PutService(record(z, "b", "A", "not-an-address")),
            ],
        })
        .unwrap_err();
    assert!(err.to_string().contains("IPv4"), "{err}");
    assert_eq!(e.committed_seq(), seq);
    assert_eq!(state(&e, admin, "10.2.0.9"), (RecordState::Free, false));
    let (links, records, found) = e
        .read(admin, move |v| {
            Ok((
                v.address_links(DEFAULT_SPACE, ip("10.2.0.9")),
                v.dns_records(z)?,
                v.find_dns_record(z, "a", "A", "10.2.0.9"),
            ))
        })
        .unwrap();
    assert_eq!(links, Default::default());
    assert!(records.is_empty());
    assert_eq!(found, None);
    // The same records then go in normally, and a rename keeps the content index right.
    let a = put(&e, admin, record(z, "a", "A", "10.2.0.9")).unwrap();
    let mut r = e.read(admin, move |v| v.dns_record(a)).unwrap();
    r.name = "renamed".into();
    submit(&e, admin, Command::PutService(ServiceObject::DnsRecord(r))).unwrap();
    let (old, new) = e
        .read(admin, move |v| {
            Ok((
                v.find_dns_record(z, "a", "A", "10.2.0.9"),
                v.find_dns_record(z, "renamed", "A", "10.2.0.9"),
            ))
        })
        .unwrap();
    assert_eq!((old, new), (None, Some(a)));
    assert_eq!(state(&e, admin, "10.2.0.9"), (RecordState::Assigned, true));
}

#[test]
fn ranges_made_later_count_named_addresses_scoped_ranges_stay_and_zone_entries_decide() {
    use ipam_engine::model::{AccessEntry, Permission, Principal};
    use ipam_engine::{NewRange, UserSpec};
    let d = TempDir::new("dnslater");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let s = server(&e, admin);
    let z1 = zone(&e, admin, s, "one.test");
    let z2 = zone(&e, admin, s, "two.test");
    // A record naming an address before any range holds it: counted once the range exists.
    put(&e, admin, record(z1, "early", "A", "10.3.0.1")).unwrap();
    assert_eq!(state(&e, admin, "10.3.0.1"), (RecordState::Free, false));
    let r = create_range(&e, admin, "10.3.0.0", "10.3.0.255");
    assert_eq!(state(&e, admin, "10.3.0.1"), (RecordState::Assigned, true));
    let got = addresses(submit(&e, admin, alloc(vec![r], 1, AllocMode::Assign)).unwrap());
    assert_eq!(
        got,
        vec![ip("10.3.0.2")],
        ".0 is the network, .1 is named by DNS"
    );

    // A range a DHCP scope serves cannot be deleted from under it.
    let dhcp = put(
        &e,
        admin,
        ServiceObject::DhcpServer(DhcpServer {
            id: 0,
            name: "kea".into(),
            agent: "127.0.0.1:4151".into(),
            kind: "kea".into(),
        }),
    )
    .unwrap();
    let sub = submit(
        &e,
        admin,
        Command::CreateRange(NewRange {
            from: Some(ip("10.4.0.0")),
            to: Some(ip("10.4.0.255")),
            ..Default::default()
        }),
    )
    .map(created)
    .unwrap();
    put(
        &e,
        admin,
        ServiceObject::DhcpScope(DhcpScope {
            id: 0,
            server: dhcp,
            range: sub,
            space: 0,
            name: String::new(),
            description: String::new(),
            enabled: true,
            pools: vec![],
            options: vec![],
        }),
    )
    .unwrap();
    let err = submit(
        &e,
        admin,
        Command::DeleteRange {
            id: sub,
            subtree: false,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("DHCP scope"), "{err}");

    // Creating records is checked on the zone: a denial there wins over the role.
    submit(
        &e,
        admin,
        Command::CreateRole {
            name: "dns-writers".into(),
            description: String::new(),
            permissions: [Permission::Read, Permission::Create].into_iter().collect(),
        },
    )
    .unwrap();
    let role = e.read(admin, |v| Ok(v.roles())).unwrap();
    let role = role.iter().find(|r| r.name == "dns-writers").unwrap().id;
    submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("dana".into()),
            password: Some("pw".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    let dana = e.authenticate("dana", "pw").unwrap();
    submit(
        &e,
        admin,
        Command::AddMembership(ipam_engine::Membership::UserRole { user: dana, role }),
    )
    .unwrap();
    submit(
        &e,
        admin,
        Command::SetAccess {
            obj_type: ipam_engine::ObjType::DnsZone,
            obj_id: z2,
            entries: vec![AccessEntry {
                principal: Principal::User(dana),
                allow: Default::default(),
                deny: [Permission::Create].into_iter().collect(),
            }],
        },
    )
    .unwrap();
    put(&e, dana, record(z1, "ok", "TXT", "fine")).unwrap();
    let err = put(&e, dana, record(z2, "no", "TXT", "refused")).unwrap_err();
    assert!(err.to_string().contains("dnsZones/"), "{err}");
}

#[test]
fn duplicate_records_are_refused_and_unlocked_ranges_count_named_addresses() {
    use ipam_engine::RangePatch;
    let d = TempDir::new("dnsdup");
    let (e, admin) = open(&d.0, config(&d.0, false));
    let s = server(&e, admin);
    let z = zone(&e, admin, s, "dup.test");
    put(&e, admin, record(z, "www", "A", "10.5.0.7")).unwrap();
    let err = put(&e, admin, record(z, "WWW.dup.test.", "A", "10.5.0.7")).unwrap_err();
    assert!(err.to_string().contains("www A 10.5.0.7"), "{err}");
    // A locked range is left as it is; unlocking it counts the named address.
    let r = create_range(&e, admin, "10.6.0.0", "10.6.0.255");
    submit(
        &e,
        admin,
        Command::UpdateRange {
            id: r,
            patch: RangePatch {
                locked: Some(true),
                ..Default::default()
            },
        },
    )
    .unwrap();
    put(&e, admin, record(z, "locked", "A", "10.6.0.9")).unwrap();
    assert_eq!(state(&e, admin, "10.6.0.9"), (RecordState::Free, false));
    submit(
        &e,
        admin,
        Command::UpdateRange {
            id: r,
            patch: RangePatch {
                locked: Some(false),
                ..Default::default()
            },
        },
    )
    .unwrap();
    assert_eq!(state(&e, admin, "10.6.0.9"), (RecordState::Assigned, true));
}

/// A Deny Read entry on a zone hides it and its records everywhere: listings, lookups by
/// name, the records naming an address, and its history; it answers like a missing zone.
#[test]
fn a_hidden_zone_is_missing_for_the_user_it_hides_from() {
    use ipam_engine::model::{AccessEntry, Permission, Principal};
    use ipam_engine::{HistoryQuery, UserSpec};
    let d = TempDir::new("hiddenzone");
    let (e, admin) = open(&d.0, config(&d.0, false));
    create_range(&e, admin, "10.8.0.0", "10.8.0.255");
    let s = server(&e, admin);
    let open_zone = zone(&e, admin, s, "open.test");
    let secret = zone(&e, admin, s, "secret.test");
    put(&e, admin, record(open_zone, "www", "A", "10.8.0.1")).unwrap();
    let hidden_rr = put(&e, admin, record(secret, "db", "A", "10.8.0.1")).unwrap();
    submit(
        &e,
        admin,
        Command::CreateUser(UserSpec {
            name: Some("viewer".into()),
            password: Some("viewer-pw".into()),
            ..Default::default()
        }),
    )
    .unwrap();
    let viewer = e.authenticate("viewer", "viewer-pw").unwrap();
    let entry = |allow: &[Permission], deny: &[Permission]| AccessEntry {
        principal: Principal::User(viewer),
        allow: allow.iter().copied().collect(),
        deny: deny.iter().copied().collect(),
    };
    for (id, allow, deny) in [
        (open_zone, &[Permission::Read][..], &[][..]),
        (secret, &[][..], &[Permission::Read][..]),
    ] {
        submit(
            &e,
            admin,
            Command::SetAccess {
                obj_type: ipam_engine::ObjType::DnsZone,
                obj_id: id,
                entries: vec![entry(allow, deny)],
            },
        )
        .unwrap();
    }
    let (names, named, links) = e
        .read(viewer, |v| {
            Ok((
                v.dns_zones()
                    .into_iter()
                    .map(|z| z.name)
                    .collect::<Vec<_>>(),
                v.dns_zones_named("secret.test.").len(),
                v.address_links(DEFAULT_SPACE, ip("10.8.0.1")).dns.len(),
            ))
        })
        .unwrap();
    assert_eq!(names, ["open.test."]);
    assert_eq!((named, links), (0, 1));
    let hidden = e.read(viewer, move |v| v.dns_zone(secret)).unwrap_err();
    let missing = e.read(viewer, |v| v.dns_zone(999_999)).unwrap_err();
    assert!(matches!(hidden, EngineError::NotFound(_)), "{hidden}");
    assert!(matches!(missing, EngineError::NotFound(_)), "{missing}");
    assert!(matches!(
        e.read(viewer, move |v| v.dns_record(hidden_rr)),
        Err(EngineError::NotFound(_))
    ));
    // Changing it answers the same as for a zone that does not exist.
    let err = submit(&e, viewer, Command::DeleteService(ObjKey::DnsZone(secret))).unwrap_err();
    assert!(matches!(err.root(), EngineError::NotFound(_)), "{err}");
    let err = e
        .history(
            viewer,
            &HistoryQuery {
                key: Some(ObjKey::DnsZone(secret)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound(_)), "{err}");
}
