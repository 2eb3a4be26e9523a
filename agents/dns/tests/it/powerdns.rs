//! The PowerDNS driver against a real pdns_server.

use std::time::Instant;

use ipam_agent_dns::{
    DnsError, DnsServer, PowerDnsServer, RemoteError, RemoteErrorCode, ServerKind, ZoneSpec,
    ZoneType,
};

use crate::harness::{boxed, del, dig_until, record_set, rr, servers_available, PowerDns};

const PROGRAMS: &[&str] = &["pdns_server", "sqlite3", "dig", "curl"];

fn primary(name: &str) -> ZoneSpec {
    ZoneSpec {
        name: name.into(),
        view: None,
        zone_type: ZoneType::Primary,
        dynamic: true,
        masters: vec![],
    }
}

fn code(err: &DnsError) -> RemoteErrorCode {
    RemoteError::from(err.clone()).code
}

#[test]
fn powerdns_zone_lifecycle_records_and_outside_changes() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let pdns = PowerDns::start();
    eprintln!("pdns_server ready in {:?}", pdns.started_in);
    let servers: Vec<Box<dyn DnsServer>> = vec![boxed(pdns.driver())];
    let ns = &servers[0];
    assert_eq!(ns.kind(), ServerKind::PowerDns);

    let status = ns.status();
    assert!(status.running, "{status:?}");
    assert!(
        status
            .version
            .as_deref()
            .unwrap_or_default()
            .starts_with("4."),
        "{status:?}"
    );
    assert!(status.uptime_secs.is_some(), "{status:?}");

    ns.create_zone(&primary("life.test")).unwrap();
    let err = ns.create_zone(&primary("life.test")).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::AlreadyExists, "{err}");
    let zones = ns.list_zones().unwrap();
    let life = zones
        .iter()
        .find(|z| z.name == "life.test")
        .expect("life.test listed");
    assert_eq!((life.zone_type, life.dynamic), (ZoneType::Primary, true));
    assert!(life.serial.is_some());

    let fresh = ns.read_zone("life.test", None).unwrap();
    assert_eq!(fresh.records[0].rtype, "SOA");
    assert!(
        fresh.records[0]
            .data
            .starts_with("ns1.example.test. hostmaster.life.test. "),
        "{:?}",
        fresh.records[0]
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

    // One batch; the second A merges into the set the first one makes.
    let adds = vec![
        rr("host1.life.test", "A", 300, "192.0.2.10"),
        rr("host1.life.test.", "A", 300, "192.0.2.11"),
        rr("host1.life.test.", "AAAA", 300, "2001:DB8::10"),
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
    assert!(outcome.serial > life.serial, "{outcome:?} after {life:?}");
    let read = ns.read_zone("life.test", None).unwrap();
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

    let port = pdns.dns_port;
    dig_until(port, "host1.life.test", "A", &["192.0.2.10", "192.0.2.11"]);
    dig_until(port, "host1.life.test", "AAAA", &["2001:db8::10"]);
    dig_until(
        port,
        "host1.life.test",
        "TXT",
        &["\"managed-by-ipam\" \"second string\""],
    );
    dig_until(port, "ptr.life.test", "PTR", &["host1.life.test."]);
    dig_until(port, "www.life.test", "CNAME", &["host1.life.test."]);

    // An add into an existing set keeps the set's other records.
    ns.update_records(
        "life.test",
        None,
        &[],
        &[rr("host1.life.test.", "A", 300, "192.0.2.12")],
    )
    .unwrap();
    dig_until(
        port,
        "host1.life.test",
        "A",
        &["192.0.2.10", "192.0.2.11", "192.0.2.12"],
    );

    // Deletes (one record, a whole set, nothing) and adds in one batch.
    ns.update_records(
        "life.test",
        None,
        &[
            del("host1.life.test.", "A", Some("192.0.2.10")),
            del("host1.life.test.", "TXT", None),
            del("nothing.life.test.", "A", None),
            del("host1.life.test.", "AAAA", Some("2001:db8::99")),
        ],
        &[
            rr("host1.life.test.", "AAAA", 300, "2001:db8::10"),
            rr("host2.life.test.", "A", 300, "192.0.2.20"),
        ],
    )
    .unwrap();
    let set = record_set(&ns.read_zone("life.test", None).unwrap().records);
    assert!(!set.iter().any(|r| r.1 == "TXT"), "{set:?}");
    assert!(set.contains(&(
        "host1.life.test.".into(),
        "AAAA".into(),
        300,
        "2001:db8::10".into()
    )));
    assert!(set.contains(&(
        "host2.life.test.".into(),
        "A".into(),
        300,
        "192.0.2.20".into()
    )));
    dig_until(port, "host1.life.test", "A", &["192.0.2.11", "192.0.2.12"]);
    dig_until(port, "host1.life.test", "TXT", &[]);

    // A change made on the server directly is seen.
    pdns.curl_patch(
        "life.test",
        r#"{"rrsets":[{"name":"outside.life.test.","type":"A","ttl":120,"changetype":"REPLACE",
            "records":[{"content":"192.0.2.99","disabled":false}]}]}"#,
    );
    let set = record_set(&ns.read_zone("life.test", None).unwrap().records);
    assert!(set.contains(&(
        "outside.life.test.".into(),
        "A".into(),
        120,
        "192.0.2.99".into()
    )));

    // PowerDNS's own checks come back as a refusal with its reason.
    let err = ns
        .update_records(
            "life.test",
            None,
            &[],
            &[rr("www.life.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("HTTP 422"), "{err}");
    // Invalid input never leaves the agent.
    let err = ns
        .update_records(
            "life.test",
            None,
            &[],
            &[rr("x.other.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Invalid, "{err}");

    ns.delete_zone("life.test", None).unwrap();
    let err = ns.delete_zone("life.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::NotFound, "{err}");
    let err = ns.read_zone("life.test", None).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::NotFound, "{err}");
    let err = ns
        .update_records(
            "life.test",
            None,
            &[],
            &[rr("a.life.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::NotFound, "{err}");
    assert!(!ns
        .list_zones()
        .unwrap()
        .iter()
        .any(|z| z.name == "life.test"));
    dig_until(port, "host1.life.test", "A", &[]);
}

#[test]
fn powerdns_secondary_zone_and_bulk() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let pdns = PowerDns::start();
    let ns = pdns.driver();
    let secondary = ZoneSpec {
        name: "sec.test".into(),
        view: None,
        zone_type: ZoneType::Secondary,
        dynamic: false,
        masters: vec!["192.0.2.53".parse().unwrap()],
    };
    ns.create_zone(&secondary).unwrap();
    let zones = ns.list_zones().unwrap();
    let sec = zones
        .iter()
        .find(|z| z.name == "sec.test")
        .expect("sec.test listed");
    assert_eq!(sec.zone_type, ZoneType::Secondary);
    assert_eq!(sec.masters, secondary.masters);
    ns.delete_zone("sec.test", None).unwrap();

    ns.create_zone(&primary("bulk.test")).unwrap();
    let adds: Vec<_> = (0..2_000u32)
        .map(|i| {
            rr(
                &format!("h{i}.bulk.test."),
                "A",
                300,
                &format!("10.0.{}.{}", i >> 8, i & 0xff),
            )
        })
        .collect();
    let start = Instant::now();
    ns.update_records("bulk.test", None, &[], &adds).unwrap();
    let pushed = start.elapsed();
    let start = Instant::now();
    let read = ns.read_zone("bulk.test", None).unwrap();
    eprintln!(
        "PowerDNS: 2,000 A records in one PATCH in {pushed:?}, read back in {:?}",
        start.elapsed()
    );
    assert_eq!(record_set(&read.records).len(), 2_000 + 1);
}

#[test]
fn powerdns_stopped_server_and_wrong_key() {
    if !servers_available(PROGRAMS) {
        return;
    }
    let mut pdns = PowerDns::start();
    let mut config = pdns.config();
    config.api_key = "wrong-key".into();
    let wrong = PowerDnsServer::new(config).unwrap();
    let err = wrong.create_zone(&primary("never.test")).unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    assert!(err.to_string().contains("rejected the API key"), "{err}");
    let err = wrong.list_zones().unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::Refused, "{err}");
    let status = wrong.status();
    assert!(!status.running, "{status:?}");

    let ns = pdns.driver();
    assert!(ns.list_zones().unwrap().is_empty(), "nothing was created");
    pdns.process.stop();
    let err = ns.list_zones().unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    assert!(
        err.to_string()
            .starts_with("pdns-test: cannot reach PowerDNS API"),
        "{err}"
    );
    let err = ns
        .update_records(
            "x.test",
            None,
            &[],
            &[rr("a.x.test.", "A", 60, "192.0.2.1")],
        )
        .unwrap_err();
    assert_eq!(code(&err), RemoteErrorCode::ServerDown, "{err}");
    let status = ns.status();
    assert!(!status.running);
    assert!(status
        .message
        .unwrap_or_default()
        .contains("is the server running?"));
}
