//! The BIND driver against a real named.

use std::time::{Duration, Instant};

use ipam_agent_dns::{
    BindServer, DnsError, DnsServer, RemoteErrorCode, ServerKind, TsigKey, ZoneSpec, ZoneType,
};

use crate::harness::{boxed, del, dig, dig_until, record_set, rr, servers_available, Bind};

const PROGRAMS: &[&str] = &["named", "rndc", "nsupdate", "dig"];

fn primary(name: &str, dynamic: bool) -> ZoneSpec {
    ZoneSpec {
        name: name.into(),
        view: None,
        zone_type: ZoneType::Primary,
        dynamic,
        masters: vec![],
    }
}

fn code(err: &DnsError) -> RemoteErrorCode {
    ipam_agent_dns::RemoteError::from(err.clone()).code
}

#[test]
fn bind_zone_lifecycle_records_and_outside_changes() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let bind = Bind::start();
    eprintln!("named ready in {:?}", bind.started_in);
    let servers: Vec<Box<dyn DnsServer>> = vec![boxed(bind.driver())];
    let ns = &servers[0];
    assert_eq!(ns.kind(), ServerKind::Bind);
    assert_eq!(ns.name(), "bind-test");

    // Status.
    let status = ns.status();
    assert!(status.running, "{status:?}");
    assert!(
        status
            .version
            .as_deref()
            .unwrap_or_default()
            .starts_with("9."),
        "{status:?}"
    );
    assert!(status.uptime_secs.is_some(), "{status:?}");

    // Create a dynamic primary and a reverse zone.
    ns.create_zone(&primary("life.test", true)).unwrap();
    ns.create_zone(&primary("2.0.192.in-addr.arpa", true))
        .unwrap();
    let err = ns.create_zone(&primary("life.test", true)).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::AlreadyExists, "{err}");
    let zones = ns.list_zones().unwrap();
    let life = zones
        .iter()
        .find(|z| z.name == "life.test")
        .expect("life.test listed");
    assert_eq!(
        (life.zone_type, life.dynamic, life.serial),
        (ZoneType::Primary, true, Some(1))
    );
    let conf = zones
        .iter()
        .find(|z| z.name == "conf.test")
        .expect("conf.test listed");
    assert!(conf.dynamic, "{conf:?}");
    assert!(zones.iter().any(|z| z.name == "2.0.192.in-addr.arpa"));

    let fresh = ns.read_zone("life.test", None).unwrap();
    assert_eq!(fresh.records[0].rtype, "SOA");
    assert_eq!(
        fresh.records[0].data,
        "ns1.example.test. hostmaster.life.test. 1 3600 600 1209600 300"
    );
    assert_eq!(
        record_set(&fresh.records).into_iter().collect::<Vec<_>>(),
        vec![(
            "life.test.".into(),
            "NS".into(),
            300,
            "ns1.example.test.".into()
        )]
    );

    // One batch of A, AAAA, TXT, PTR, CNAME (and a second A in the same set).
    let adds = vec![
        rr("host1.life.test", "A", 300, "192.0.2.10"),
        rr("host1.life.test.", "A", 300, "192.0.2.11"),
        rr("host1.life.test.", "AAAA", 300, "2001:db8::10"),
        rr(
            "host1.life.test.",
            "TXT",
            600,
            "\"managed-by-ipam\" \"second string\"",
        ),
        rr("ptr.life.test.", "PTR", 300, "host1.life.test"),
        rr("www.life.test.", "CNAME", 300, "host1.life.test."),
        rr("mail.life.test.", "MX", 300, "10 host1.life.test."),
    ];
    let outcome = ns.update_records("life.test", None, &[], &adds).unwrap();
    assert_eq!(outcome.requests, 1);
    assert_eq!(outcome.serial, Some(2));
    let read = ns.read_zone("life.test", None).unwrap();
    assert_eq!(read.zone.serial, Some(2));
    let mut expected = record_set(&fresh.records);
    for r in [
        rr("host1.life.test.", "A", 300, "192.0.2.10"),
        rr("host1.life.test.", "A", 300, "192.0.2.11"),
        rr("host1.life.test.", "AAAA", 300, "2001:db8::10"),
        rr(
            "host1.life.test.",
            "TXT",
            600,
            "\"managed-by-ipam\" \"second string\"",
        ),
        rr("ptr.life.test.", "PTR", 300, "host1.life.test."),
        rr("www.life.test.", "CNAME", 300, "host1.life.test."),
        rr("mail.life.test.", "MX", 300, "10 host1.life.test."),
    ] {
        expected.extend(record_set(&[r]));
    }
    assert_eq!(record_set(&read.records), expected);

    // The server answers them.
    let port = bind.dns_port;
    assert_eq!(
        dig(port, "host1.life.test", "A"),
        ["192.0.2.10", "192.0.2.11"]
    );
    assert_eq!(dig(port, "host1.life.test", "AAAA"), ["2001:db8::10"]);
    assert_eq!(
        dig(port, "host1.life.test", "TXT"),
        ["\"managed-by-ipam\" \"second string\""]
    );
    assert_eq!(dig(port, "ptr.life.test", "PTR"), ["host1.life.test."]);
    assert_eq!(dig(port, "www.life.test", "CNAME"), ["host1.life.test."]);

    // A reverse zone batch.
    ns.update_records(
        "2.0.192.in-addr.arpa",
        None,
        &[],
        &[rr(
            "10.2.0.192.in-addr.arpa.",
            "PTR",
            300,
            "host1.life.test.",
        )],
    )
    .unwrap();
    assert_eq!(
        dig(port, "10.2.0.192.in-addr.arpa", "PTR"),
        ["host1.life.test."]
    );

    // Deletes (one record, a whole set) and an add in one batch; adding what exists and
    // deleting what does not are no-ops.
    let outcome = ns
        .update_records(
            "life.test",
            None,
            &[
                del("host1.life.test.", "A", Some("192.0.2.10")),
                del("host1.life.test.", "TXT", None),
                del("nothing.life.test.", "A", None),
            ],
            &[
                rr("host1.life.test.", "AAAA", 300, "2001:db8::10"),
                rr("host2.life.test.", "A", 300, "192.0.2.20"),
            ],
        )
        .unwrap();
    assert_eq!(outcome.serial, Some(3));
    let read = ns.read_zone("life.test", None).unwrap();
    let set = record_set(&read.records);
    assert!(!set.iter().any(|r| r.1 == "TXT"), "{set:?}");
    assert!(!set.contains(&(
        "host1.life.test.".into(),
        "A".into(),
        300,
        "192.0.2.10".into()
    )));
    assert!(set.contains(&(
        "host1.life.test.".into(),
        "A".into(),
        300,
        "192.0.2.11".into()
    )));
    assert!(set.contains(&(
        "host2.life.test.".into(),
        "A".into(),
        300,
        "192.0.2.20".into()
    )));
    assert_eq!(dig(port, "host1.life.test", "A"), ["192.0.2.11"]);
    assert!(dig(port, "host1.life.test", "TXT").is_empty());

    // A change made on the server directly is seen.
    bind.nsupdate("zone life.test\nupdate add outside.life.test. 120 A 192.0.2.99");
    let read = ns.read_zone("life.test", None).unwrap();
    assert!(record_set(&read.records).contains(&(
        "outside.life.test.".into(),
        "A".into(),
        120,
        "192.0.2.99".into()
    )));
    assert_eq!(read.zone.serial, Some(4));

    // Invalid input is refused before anything is sent.
    let err = ns
        .update_records(
            "life.test",
            None,
            &[],
            &[rr("x.other.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Invalid, "{err}");
    assert!(err.to_string().contains("outside zone life.test"), "{err}");
    let err = ns
        .update_records(
            "life.test",
            None,
            &[],
            &[rr("x.life.test.", "A", 60, "300.1.2.3")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Invalid, "{err}");
    let err = ns.read_zone("life.test", Some("internal")).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Unsupported, "{err}");

    // A zone from named.conf can be read and updated too.
    ns.update_records(
        "conf.test",
        None,
        &[],
        &[rr("new.conf.test.", "A", 60, "192.0.2.81")],
    )
    .unwrap();
    let conf = ns.read_zone("conf.test", None).unwrap();
    assert!(conf
        .records
        .iter()
        .any(|r| r.name == "www.conf.test." && r.data == "192.0.2.80"));
    assert!(conf.records.iter().any(|r| r.name == "new.conf.test."));

    // Delete the zones.
    ns.delete_zone("life.test", None).unwrap();
    ns.delete_zone("2.0.192.in-addr.arpa", None).unwrap();
    let err = ns.delete_zone("life.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::NotFound, "{err}");
    let err = ns.read_zone("life.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::NotFound, "{err}");
    assert!(!ns
        .list_zones()
        .unwrap()
        .iter()
        .any(|z| z.name == "life.test"));
    // named removes a deleted zone asynchronously.
    let start = Instant::now();
    while !dig(port, "host1.life.test", "A").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "life.test still answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !bind.dir.path().join("life.test.zone").exists(),
        "delzone -clean removes the zone file"
    );

    // The name can be created again, fresh.
    ns.create_zone(&primary("life.test", true)).unwrap();
    let again = ns.read_zone("life.test", None).unwrap();
    assert_eq!(record_set(&again.records), record_set(&fresh.records));
    dig_until(port, "life.test", "NS", &["ns1.example.test."]);
}

#[test]
fn bind_static_and_secondary_zones() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let bind = Bind::start();
    let ns = bind.driver();

    ns.create_zone(&primary("static.test", false)).unwrap();
    let info = ns.read_zone("static.test", None).unwrap().zone;
    assert_eq!((info.zone_type, info.dynamic), (ZoneType::Primary, false));
    let err = ns
        .update_records(
            "static.test",
            None,
            &[],
            &[rr("a.static.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("allow-update"), "{err}");

    let secondary = ZoneSpec {
        name: "sec.test".into(),
        view: None,
        zone_type: ZoneType::Secondary,
        dynamic: false,
        masters: vec![
            "192.0.2.53".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ],
    };
    ns.create_zone(&secondary).unwrap();
    let zones = ns.list_zones().unwrap();
    let sec = zones
        .iter()
        .find(|z| z.name == "sec.test")
        .expect("sec.test listed");
    assert_eq!(sec.zone_type, ZoneType::Secondary);
    assert_eq!(sec.masters, secondary.masters);
    assert_eq!(sec.serial, None, "not transferred yet");
    let err = ns.read_zone("sec.test", None).unwrap_err();
    eprintln!("reading a secondary that never transferred: {err}");
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    ns.delete_zone("sec.test", None).unwrap();
    ns.delete_zone("static.test", None).unwrap();
}

#[test]
fn bind_split_batch_failing_midway_reports_what_was_applied() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let bind = Bind::start();
    let mut config = bind.config();
    config.max_message_len = 600;
    let ns = BindServer::new(config).unwrap();
    // policy.test lets the key update names under ok.policy.test only: the message holding
    // the last record is refused, the ones before it were applied.
    let mut adds: Vec<_> = (0..30u32)
        .map(|i| {
            rr(
                &format!("h{i:02}.ok.policy.test."),
                "A",
                60,
                &format!("192.0.2.{i}"),
            )
        })
        .collect();
    adds.push(rr("bad.policy.test.", "A", 60, "192.0.2.200"));
    let err = ns
        .update_records("policy.test", None, &[], &adds)
        .unwrap_err();
    let DnsError::Partial {
        applied,
        total,
        messages,
        ..
    } = &err
    else {
        panic!("expected a partial failure, got {err}");
    };
    assert_eq!(*total, 31);
    assert!(*messages > 2, "{err}");
    assert!(*applied > 0 && *applied < 31, "{err}");
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("only the first {applied} of 31")),
        "{err}"
    );
    let set = record_set(&ns.read_zone("policy.test", None).unwrap().records);
    let applied_names: Vec<_> = set
        .iter()
        .filter(|r| r.1 == "A")
        .map(|r| r.0.clone())
        .collect();
    let expected: Vec<_> = adds[..*applied].iter().map(|r| r.name.clone()).collect();
    assert_eq!(applied_names, expected);
}

#[test]
fn bind_stopped_server_is_server_down() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let mut bind = Bind::start();
    let ns = bind.driver();
    ns.create_zone(&primary("down.test", true)).unwrap();
    bind.process.stop();

    let err = ns.read_zone("down.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    assert!(err.to_string().starts_with("bind-test: "), "{err}");
    let err = ns
        .update_records(
            "down.test",
            None,
            &[],
            &[rr("a.down.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("DNS 127.0.0.1:{}", bind.dns_port)),
        "{err}"
    );
    let err = ns.list_zones().unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    let err = ns.create_zone(&primary("other.test", true)).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    let status = ns.status();
    assert!(!status.running);
    let message = status.message.unwrap_or_default();
    assert!(message.contains("is the server running?"), "{message}");
}

#[test]
fn bind_wrong_keys_are_refused() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let bind = Bind::start();
    let good = bind.driver();
    good.create_zone(&primary("keys.test", true)).unwrap();

    let mut config = bind.config();
    config.tsig_key = TsigKey::hmac_sha256("ddns-key", crate::harness::random_secret());
    let wrong_tsig = BindServer::new(config).unwrap();
    let err = wrong_tsig
        .update_records(
            "keys.test",
            None,
            &[],
            &[rr("a.keys.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("BADSIG"), "{err}");
    let err = wrong_tsig.read_zone("keys.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");

    let mut config = bind.config();
    config.tsig_key = TsigKey::hmac_sha256("unknown-key", crate::harness::random_secret());
    let unknown = BindServer::new(config).unwrap();
    let err = unknown
        .update_records(
            "keys.test",
            None,
            &[],
            &[rr("a.keys.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("BADKEY"), "{err}");

    let mut config = bind.config();
    config.rndc_key = TsigKey::hmac_sha256("rndc-key", crate::harness::random_secret());
    let wrong_rndc = BindServer::new(config).unwrap();
    let err = wrong_rndc
        .create_zone(&primary("never.test", true))
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("rejected rndc key"), "{err}");
    let status = wrong_rndc.status();
    assert!(!status.running, "{status:?}");

    // Nothing changed.
    let read = good.read_zone("keys.test", None).unwrap();
    assert!(!read.records.iter().any(|r| r.name == "a.keys.test."));
    assert!(!good
        .list_zones()
        .unwrap()
        .iter()
        .any(|z| z.name == "never.test"));
}

#[test]
fn bind_ten_thousand_records_in_batches() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let bind = Bind::start();
    let ns = bind.driver();
    ns.create_zone(&primary("bulk.test", true)).unwrap();
    let adds: Vec<_> = (0..10_000u32)
        .map(|i| {
            rr(
                &format!("host-{i:05}.bulk.test."),
                "A",
                300,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff),
            )
        })
        .collect();
    let start = Instant::now();
    let outcome = ns.update_records("bulk.test", None, &[], &adds).unwrap();
    let pushed = start.elapsed();
    let start = Instant::now();
    let read = ns.read_zone("bulk.test", None).unwrap();
    let transferred = start.elapsed();
    eprintln!(
        "BIND: 10,000 A records pushed in {} UPDATE messages in {pushed:?}; read back by AXFR \
         ({} records) in {transferred:?}",
        outcome.requests,
        read.records.len()
    );
    assert!(
        outcome.requests > 1,
        "a 10,000-record batch does not fit in one message"
    );
    let got = record_set(&read.records);
    for a in &adds {
        assert!(
            got.contains(&(a.name.clone(), "A".into(), 300, a.data.clone())),
            "{} missing",
            a.name
        );
    }
    assert_eq!(got.len(), 10_000 + 1, "the records and the NS");
    assert_eq!(
        dig(bind.dns_port, "host-09999.bulk.test", "A"),
        ["10.0.39.15"]
    );

    // Deleting them all in one call works the same way.
    let deletes: Vec<_> = adds.iter().map(|a| del(&a.name, "A", None)).collect();
    let start = Instant::now();
    let outcome = ns.update_records("bulk.test", None, &deletes, &[]).unwrap();
    eprintln!(
        "BIND: 10,000 A record sets deleted in {} UPDATE messages in {:?}",
        outcome.requests,
        start.elapsed()
    );
    assert_eq!(
        record_set(&ns.read_zone("bulk.test", None).unwrap().records).len(),
        1
    );
}
