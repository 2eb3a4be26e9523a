//! Central's side of the link, through the real `ipam-agent` binary managing a real BIND and a
//! real PowerDNS: zones and records written through the agent are served, changes made on
//! named directly are read back and announced by the agent's watcher, and a stopped server
//! gives a clear error.
use std::time::Instant;

use ipam_agent_link::link;
use ipam_agent_link::pins::Pins;
use ipam_agent_link::{LinkConfig, LinkError};
use ipam_agent_proto::{
    DnsOp, EventBody, RemoteErrorCode, RequestBody, ResourceRecord, ResponseBody, ServerKind,
    ZoneSpec, ZoneType,
};

use crate::harness::{dig, dig_until, find_program, servers_available, Bind, PowerDns};
use crate::{Binary, TempDir, KEY};

fn dns(op: DnsOp) -> RequestBody {
    RequestBody::Dns {
        server: "bind-test".into(),
        op,
    }
}

fn rr(name: &str, rtype: &str, data: &str) -> ResourceRecord {
    ResourceRecord {
        name: name.into(),
        rtype: rtype.into(),
        ttl: 300,
        data: data.into(),
    }
}

/// The serial of agent.test as the agent lists it.
async fn serial_of(l: &ipam_agent_link::AgentLink) -> Option<u32> {
    match l.request(dns(DnsOp::ListZones {})).await.unwrap() {
        ResponseBody::Zones { zones } => zones
            .into_iter()
            .find(|z| z.name.trim_end_matches('.') == "agent.test")
            .and_then(|z| z.serial),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_drives_bind_and_powerdns_through_one_agent_binary() {
    if !servers_available(&["named", "rndc", "nsupdate", "dig", "pdns_server"]) {
        return;
    }
    // The harnesses wait on the drivers, which block: not on the runtime's threads.
    let bind = tokio::task::spawn_blocking(Bind::start).await.unwrap();
    // The same agent manages a PowerDNS too.
    let pdns = tokio::task::spawn_blocking(PowerDns::start).await.unwrap();
    let dir = TempDir::new("agent-bind");
    let config = dir.0.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[bind]]
name = "bind-test"
dns = "127.0.0.1:{dns}"
rndc = "127.0.0.1:{rndc}"
stats = "127.0.0.1:{stats}"
zone_dir = "{zdir}"
rndc_program = "{rndc_program}"
tsig_key = {{ name = "ddns-key", secret = "{tsig}" }}
rndc_key = {{ name = "rndc-key", secret = "{rndc_secret}" }}
nameservers = ["ns1.example.test."]

[[powerdns]]
name = "pdns-test"
api = "127.0.0.1:{pdns_api}"
api_key = "{pdns_key}"
nameservers = ["ns1.example.test."]
"#,
            dns = bind.dns_port,
            rndc = bind.rndc_port,
            stats = bind.stats_port,
            zdir = bind.dir.path().display(),
            rndc_program = find_program("rndc").unwrap().display(),
            tsig = bind.tsig_secret,
            rndc_secret = bind.rndc_secret,
            pdns_api = pdns.api_port,
            pdns_key = pdns.api_key,
        ),
    )
    .unwrap();
    let agent = Binary::start_with(
        &dir.0,
        "127.0.0.1:0",
        &["--config", config.to_str().unwrap(), "--watch-secs", "1"],
    );
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    let l = link::connect(
        &LinkConfig::new(&agent.addr, KEY.to_vec(), "central"),
        &pins,
    )
    .await
    .unwrap();
    let kinds: Vec<(String, ServerKind)> = l
        .welcome()
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bind-test".to_string(), ServerKind::Bind),
            ("pdns-test".to_string(), ServerKind::PowerDns)
        ]
    );

    // PowerDNS through the same link: a zone and a record, served.
    let on_pdns = |op| RequestBody::Dns {
        server: "pdns-test".into(),
        op,
    };
    l.request(on_pdns(DnsOp::CreateZone {
        zone: ZoneSpec {
            name: "pdns.test.".into(),
            view: None,
            zone_type: ZoneType::Primary,
            dynamic: true,
            masters: vec![],
        },
    }))
    .await
    .unwrap();
    l.request(on_pdns(DnsOp::UpdateRecords {
        zone: "pdns.test.".into(),
        view: None,
        deletes: vec![],
        adds: vec![rr("api.pdns.test.", "A", "192.0.2.53")],
    }))
    .await
    .unwrap();
    dig_until(pdns.dns_port, "api.pdns.test", "A", &["192.0.2.53"]);

    // A zone and records, written through the agent, served by named.
    let zone = ZoneSpec {
        name: "agent.test.".into(),
        view: None,
        zone_type: ZoneType::Primary,
        dynamic: true,
        masters: vec![],
    };
    assert!(matches!(
        l.request(dns(DnsOp::CreateZone { zone })).await.unwrap(),
        ResponseBody::Done {}
    ));
    let adds = vec![
        rr("www.agent.test.", "A", "192.0.2.10"),
        rr("www.agent.test.", "AAAA", "2001:db8::10"),
        rr("_acme-challenge.agent.test.", "TXT", "\"token-1\""),
        rr("10.2.0.192.in-addr.agent.test.", "PTR", "www.agent.test."),
    ];
    let r = l
        .request(dns(DnsOp::UpdateRecords {
            zone: "agent.test.".into(),
            view: None,
            deletes: vec![],
            adds,
        }))
        .await
        .unwrap();
    assert!(
        matches!(r, ResponseBody::RecordsUpdated { serial: Some(_) }),
        "{r:?}"
    );
    dig_until(bind.dns_port, "www.agent.test", "A", &["192.0.2.10"]);
    dig_until(
        bind.dns_port,
        "_acme-challenge.agent.test",
        "TXT",
        &["\"token-1\""],
    );

    // A change made on named directly: the agent's watcher tells Central (a new serial of
    // the zone), and the server's data is what the agent reads.
    let mut events = l.events();
    let serial_before = serial_of(&l).await;
    bind.nsupdate("update add direct.agent.test. 300 A 192.0.2.99");
    let t0 = Instant::now();
    loop {
        let left = std::time::Duration::from_secs(15).saturating_sub(t0.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(EventBody::ZoneChanged {
                server,
                zone,
                serial,
                ..
            })) if zone.trim_end_matches('.') == "agent.test" => {
                assert_eq!(server, "bind-test");
                if serial > serial_before {
                    break;
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("no zone change event for the direct update: {other:?}"),
        }
    }
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = l
            .request(dns(DnsOp::ReadZone {
                zone: "agent.test.".into(),
                view: None,
                cursor: cursor.clone(),
                limit: Some(2),
            }))
            .await
            .unwrap();
        let ResponseBody::Zone {
            records,
            next_cursor,
            ..
        } = page
        else {
            panic!("not a zone: {page:?}")
        };
        assert!(records.len() <= 2, "pages hold at most the limit");
        names.extend(
            records
                .into_iter()
                .map(|r| format!("{} {} {}", r.name, r.rtype, r.data)),
        );
        match next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for want in [
        "www.agent.test. A 192.0.2.10",
        "direct.agent.test. A 192.0.2.99",
        "_acme-challenge.agent.test. TXT \"token-1\"",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    // Thousands of records in batches through the link (timing printed, not asserted).
    let t0 = Instant::now();
    for b in 0..5 {
        let adds = (0..1000)
            .map(|i| {
                rr(
                    &format!("h{b}-{i}.agent.test."),
                    "A",
                    &format!("198.51.{b}.{}", i % 250),
                )
            })
            .collect();
        l.request(dns(DnsOp::UpdateRecords {
            zone: "agent.test.".into(),
            view: None,
            deletes: vec![],
            adds,
        }))
        .await
        .unwrap();
    }
    eprintln!(
        "5,000 records through Central's link, the agent and RFC 2136: {:?}",
        t0.elapsed()
    );
    assert_eq!(
        dig(bind.dns_port, "h4-999.agent.test", "A"),
        ["198.51.4.249"]
    );

    // Status, then the server stops: a clear ServerDown, and the link stays up.
    match l
        .request(RequestBody::ServerStatus {
            server: "bind-test".into(),
        })
        .await
        .unwrap()
    {
        ResponseBody::Status { status } => assert!(status.running, "{status:?}"),
        other => panic!("{other:?}"),
    }
    let mut bind = bind;
    bind.process.stop();
    match l.request(dns(DnsOp::ListZones {})).await {
        Err(LinkError::Remote(e)) => {
            assert_eq!(e.code, RemoteErrorCode::ServerDown, "{e}");
            assert!(e.message.contains("bind-test"), "{e}");
        }
        other => panic!("a stopped server must be reported down, got {other:?}"),
    }
    assert!(l.closed().is_none());
    // The watcher reports the server down.
    let t0 = Instant::now();
    loop {
        let left = std::time::Duration::from_secs(15).saturating_sub(t0.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(EventBody::ServerStatusChanged { status })) if !status.running => {
                assert_eq!(status.server, "bind-test");
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("no event for the stopped server: {other:?}"),
        }
    }
}
