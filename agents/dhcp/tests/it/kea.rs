//! The Kea driver against a real kea-dhcp4 (and kea-ctrl-agent), and real DHCP clients.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipam_agent_dhcp::{execute, DhcpError, DhcpServer, KeaConfig, KeaServer};
use ipam_agent_proto::{
    Cidr, ClientIdentifier, DhcpOp, DhcpOption, LeaseState, Pool, RemoteError, RemoteErrorCode,
    Reservation, ResponseBody, Scope,
};
use serde_json::Value;

use crate::harness::{free_port, require, udhcpc, wait_for, Kea, NetnsPair, Proc};

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn pool(from: &str, to: &str) -> Pool {
    Pool {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
    }
}

fn named(name: &str, value: &str) -> DhcpOption {
    DhcpOption {
        code: None,
        name: Some(name.into()),
        value: value.into(),
    }
}

fn mac(s: &str) -> ClientIdentifier {
    ClientIdentifier::Mac(s.parse().unwrap())
}

fn reservation(
    subnet: Option<&str>,
    id: ClientIdentifier,
    addr: &str,
    host: Option<&str>,
) -> Reservation {
    Reservation {
        subnet: subnet.map(cidr),
        identifier: id,
        address: addr.parse().unwrap(),
        hostname: host.map(str::to_owned),
    }
}

fn lab_scope() -> Scope {
    Scope {
        subnet: cidr("192.0.2.0/24"),
        name: Some("lab".into()),
        pools: vec![pool("192.0.2.100", "192.0.2.199")],
        options: vec![
            named("routers", "192.0.2.1"),
            named("domain-name-servers", "192.0.2.1, 192.0.2.2"),
            named("domain-name", "lab.example.test"),
        ],
        lease_time: Some(600),
    }
}

/// Options as (name, value) pairs, to compare what was set with what Kea reports (which adds
/// the codes).
fn option_pairs(options: &[DhcpOption]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|o| (o.name.clone().unwrap_or_default(), o.value.clone()))
        .collect()
}

fn assert_scope(got: &Scope, want: &Scope) {
    assert_eq!(got.subnet, want.subnet);
    assert_eq!(got.name, want.name);
    assert_eq!(got.pools, want.pools);
    assert_eq!(option_pairs(&got.options), option_pairs(&want.options));
    assert_eq!(got.lease_time, want.lease_time);
}

/// The subnets of the written file as (id, prefix).
fn file_subnets(file: &Value) -> Vec<(u64, String)> {
    file["Dhcp4"]["subnet4"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["subnet"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn kea_scopes_options_and_persistence() {
    let Some(tools) = require("kea_scopes_options_and_persistence", &["kea-dhcp4"], false) else {
        return;
    };
    let mut kea = Kea::new(&tools, None);
    let ready = kea.start();
    eprintln!("kea-dhcp4 ready in {ready:?}");
    let kea1 = kea.driver();
    assert_eq!(kea1.list_scopes().unwrap(), vec![]);

    // Create a scope with a pool and options, and read it back.
    let lab = lab_scope();
    kea1.create_scope(&lab).unwrap();
    let scopes = kea1.list_scopes().unwrap();
    assert_eq!(scopes.len(), 1);
    assert_scope(&scopes[0], &lab);
    let routers = scopes[0]
        .options
        .iter()
        .find(|o| o.name.as_deref() == Some("routers"));
    assert_eq!(
        routers.unwrap().code,
        Some(3),
        "Kea reports the option code too"
    );

    // The same subnet again; an IPv6 subnet; a pool outside the subnet (protocol validation).
    let err = kea1.create_scope(&lab).unwrap_err();
    assert!(matches!(err, DhcpError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("192.0.2.0/24") && err.to_string().contains("kea1"));
    let v6 = Scope {
        subnet: cidr("2001:db8::/64"),
        pools: vec![],
        ..lab.clone()
    };
    assert!(matches!(
        kea1.create_scope(&v6),
        Err(DhcpError::Invalid { .. })
    ));
    let bad_pool = Scope {
        pools: vec![pool("198.51.100.1", "198.51.100.9")],
        ..lab.clone()
    };
    let err = execute(&kea1, &DhcpOp::CreateScope { scope: bad_pool }).unwrap_err();
    assert_eq!(RemoteError::from(err).code, RemoteErrorCode::Invalid);

    // A second scope gets the next id; both are in the written file.
    let other = Scope {
        subnet: cidr("198.51.100.0/24"),
        name: None,
        pools: vec![pool("198.51.100.10", "198.51.100.20")],
        options: vec![],
        lease_time: None,
    };
    kea1.create_scope(&other).unwrap();
    assert_eq!(
        kea1.list_scopes().unwrap()[1].lease_time,
        Some(3600),
        "Kea 2.2's config-get shows the inherited global lease time"
    );
    assert_eq!(
        file_subnets(&kea.file()),
        vec![
            (1, "192.0.2.0/24".to_owned()),
            (2, "198.51.100.0/24".to_owned())
        ]
    );

    // Update: name, pools, options and lease time change; the id stays.
    let updated = Scope {
        name: Some("lab-2".into()),
        pools: vec![
            pool("192.0.2.100", "192.0.2.149"),
            pool("192.0.2.200", "192.0.2.209"),
        ],
        options: vec![named("routers", "192.0.2.254")],
        lease_time: Some(1200),
        ..lab.clone()
    };
    kea1.update_scope(&updated).unwrap();
    assert_scope(&kea1.list_scopes().unwrap()[0], &updated);
    assert_eq!(file_subnets(&kea.file())[0], (1, "192.0.2.0/24".to_owned()));
    let missing = Scope {
        subnet: cidr("203.0.113.0/24"),
        pools: vec![],
        ..lab.clone()
    };
    assert!(matches!(
        kea1.update_scope(&missing),
        Err(DhcpError::NotFound { .. })
    ));

    // Options: server-wide, then a value Kea's config-test refuses (nothing changes).
    kea1.set_options(None, &[named("domain-name", "example.test")])
        .unwrap();
    let global = &kea.file()["Dhcp4"]["option-data"];
    assert_eq!(global[0]["name"], "domain-name");
    assert_eq!(global[0]["data"], "example.test");
    let err = kea1
        .set_options(Some(lab.subnet), &[named("routers", "not-an-address")])
        .unwrap_err();
    assert!(matches!(err, DhcpError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("config-test"), "{err}");
    eprintln!("bad option value: {err}");
    assert_scope(&kea1.list_scopes().unwrap()[0], &updated);
    kea1.set_options(Some(lab.subnet), &[named("routers", "192.0.2.1")])
        .unwrap();
    assert_eq!(kea1.list_scopes().unwrap()[0].options[0].value, "192.0.2.1");

    // Delete the second scope.
    kea1.delete_scope(other.subnet).unwrap();
    assert!(matches!(
        kea1.delete_scope(other.subnet),
        Err(DhcpError::NotFound { .. })
    ));
    assert_eq!(
        file_subnets(&kea.file()),
        vec![(1, "192.0.2.0/24".to_owned())]
    );

    // The configuration survives a restart from the written file.
    let before = kea1.list_scopes().unwrap();
    kea.stop();
    let ready = kea.start();
    eprintln!("kea-dhcp4 restarted from its written file in {ready:?}");
    assert_eq!(kea1.list_scopes().unwrap(), before);

    // Status, through the protocol's op too.
    let status = kea1.status();
    assert!(status.running, "{status:?}");
    assert!(
        status
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with('2')),
        "{status:?}"
    );
    assert!(status.uptime_secs.is_some());
    match execute(&kea1, &DhcpOp::ListScopes {}).unwrap() {
        ResponseBody::Scopes { scopes } => assert_eq!(scopes, before),
        other => panic!("unexpected answer {other:?}"),
    }

    // A stopped server: every call is ServerDown, status says not running.
    kea.stop();
    let err = kea1.list_scopes().unwrap_err();
    assert!(matches!(err, DhcpError::ServerDown { .. }), "{err}");
    assert!(
        err.to_string().contains("kea1") && err.to_string().contains("config-get"),
        "{err}"
    );
    assert_eq!(RemoteError::from(err).code, RemoteErrorCode::ServerDown);
    let err = kea1.add_reservation(&reservation(
        None,
        mac("02:00:00:00:00:42"),
        "192.0.2.42",
        None,
    ));
    assert!(matches!(err, Err(DhcpError::ServerDown { .. })));
    let status = kea1.status();
    assert!(!status.running && status.message.is_some(), "{status:?}");
}

#[test]
fn kea_reservation_checks() {
    let Some(tools) = require("kea_reservation_checks", &["kea-dhcp4"], false) else {
        return;
    };
    let mut kea = Kea::new(&tools, None);
    kea.start();
    let kea1 = kea.driver();
    kea1.create_scope(&lab_scope()).unwrap();
    kea1.create_scope(&Scope {
        subnet: cidr("198.51.100.0/24"),
        name: None,
        pools: vec![],
        options: vec![],
        lease_time: None,
    })
    .unwrap();

    let r42 = reservation(None, mac("02:00:00:00:00:42"), "192.0.2.42", Some("res42"));
    kea1.add_reservation(&r42).unwrap();
    let listed = kea1.list_reservations(None).unwrap();
    assert_eq!(
        listed,
        vec![Reservation {
            subnet: Some(cidr("192.0.2.0/24")),
            ..r42.clone()
        }]
    );
    assert_eq!(
        kea1.list_reservations(Some(cidr("192.0.2.0/24"))).unwrap(),
        listed
    );
    assert_eq!(
        kea1.list_reservations(Some(cidr("198.51.100.0/24")))
            .unwrap(),
        vec![]
    );
    assert!(matches!(
        kea1.list_reservations(Some(cidr("203.0.113.0/24"))),
        Err(DhcpError::NotFound { .. })
    ));

    // Refused before anything is sent: same client, same address, no scope for the address.
    let err = kea1
        .add_reservation(&reservation(
            None,
            mac("02:00:00:00:00:42"),
            "192.0.2.43",
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, DhcpError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("02:00:00:00:00:42"), "{err}");
    let err = kea1
        .add_reservation(&reservation(
            None,
            mac("02:00:00:00:00:44"),
            "192.0.2.42",
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, DhcpError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("192.0.2.42"), "{err}");
    let err = kea1
        .add_reservation(&reservation(
            None,
            mac("02:00:00:00:00:45"),
            "203.0.113.5",
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, DhcpError::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains("none of the server's scopes"),
        "{err}"
    );
    let err = kea1
        .add_reservation(&reservation(
            Some("203.0.113.0/24"),
            mac("02:00:00:00:00:45"),
            "203.0.113.5",
            None,
        ))
        .unwrap_err();
    assert!(matches!(err, DhcpError::NotFound { .. }), "{err}");
    // The same MAC in another scope is fine.
    kea1.add_reservation(&reservation(
        Some("198.51.100.0/24"),
        mac("02:00:00:00:00:42"),
        "198.51.100.42",
        None,
    ))
    .unwrap();

    // By client id.
    let by_id = reservation(
        Some("192.0.2.0/24"),
        ClientIdentifier::ClientId("01:02:00:00:00:00:46".parse().unwrap()),
        "192.0.2.46",
        None,
    );
    kea1.add_reservation(&by_id).unwrap();
    assert!(kea1
        .list_reservations(Some(by_id.subnet.unwrap()))
        .unwrap()
        .contains(&by_id));

    // Delete: ambiguous without a scope, then by scope; the written file follows.
    let err = kea1.delete_reservation(None, &r42.identifier).unwrap_err();
    assert!(matches!(err, DhcpError::Invalid { .. }), "{err}");
    kea1.delete_reservation(Some(cidr("198.51.100.0/24")), &r42.identifier)
        .unwrap();
    kea1.delete_reservation(None, &r42.identifier).unwrap();
    assert!(matches!(
        kea1.delete_reservation(None, &r42.identifier),
        Err(DhcpError::NotFound { .. })
    ));
    assert_eq!(kea1.list_reservations(None).unwrap(), vec![by_id.clone()]);
    let file = kea.file();
    let written = file["Dhcp4"]["subnet4"][0]["reservations"]
        .as_array()
        .unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["ip-address"], "192.0.2.46");
}

#[test]
fn kea_control_agent() {
    let Some(tools) = require("kea_control_agent", &["kea-dhcp4", "kea-ctrl-agent"], false) else {
        return;
    };
    let mut kea = Kea::new(&tools, None);
    kea.start();
    let port = free_port();
    let ca_config = kea.dir.join("kea-ctrl-agent.json");
    std::fs::write(
        &ca_config,
        format!(
            r#"{{ "Control-agent": {{
  "http-host": "127.0.0.1", "http-port": {port},
  "authentication": {{ "type": "basic", "realm": "kea",
                      "clients": [ {{ "user": "kea", "password": "kea-test-pw" }} ] }},
  "control-sockets": {{ "dhcp4": {{ "socket-type": "unix", "socket-name": "{}" }} }},
  "loggers": [ {{ "name": "kea-ctrl-agent", "severity": "INFO",
                 "output_options": [ {{ "output": "stdout" }} ] }} ] }} }}"#,
            kea.socket().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tools.path("kea-ctrl-agent"));
    cmd.arg("-c")
        .arg(&ca_config)
        .env("KEA_PIDFILE_DIR", &kea.dir.path)
        .env("KEA_LOCKFILE_DIR", &kea.dir.path);
    let _ca = Proc::spawn(
        "kea-ctrl-agent",
        &mut cmd,
        &kea.dir.join("kea-ctrl-agent.log"),
    );
    let addr = format!("127.0.0.1:{port}");
    let via_ca = KeaServer::new(
        KeaConfig::control_agent("kea1", &addr)
            .with_credentials("kea", "kea-test-pw")
            .with_timeout(Duration::from_secs(10)),
    );
    wait_for("kea-ctrl-agent", Duration::from_secs(10), || {
        via_ca.status().running
    });

    via_ca.create_scope(&lab_scope()).unwrap();
    assert_eq!(
        via_ca.list_scopes().unwrap(),
        kea.driver().list_scopes().unwrap()
    );
    via_ca
        .add_reservation(&reservation(
            None,
            mac("02:00:00:00:00:42"),
            "192.0.2.42",
            None,
        ))
        .unwrap();
    assert_eq!(kea.driver().list_reservations(None).unwrap().len(), 1);
    assert_eq!(via_ca.list_leases(None, None, None).unwrap().leases, vec![]);

    let wrong =
        KeaServer::new(KeaConfig::control_agent("kea1", &addr).with_credentials("kea", "wrong"));
    let err = wrong.list_scopes().unwrap_err();
    assert!(matches!(err, DhcpError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("401"), "{err}");

    // kea-dhcp4 stops; the control agent still answers, but cannot forward.
    kea.stop();
    let err = via_ca.list_scopes().unwrap_err();
    assert!(matches!(err, DhcpError::ServerDown { .. }), "{err}");
    assert!(!via_ca.status().running);
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn kea_real_clients() {
    let Some(tools) = require("kea_real_clients", &["kea-dhcp4", "udhcpc", "ip"], true) else {
        return;
    };
    let pair = NetnsPair::new(&tools);
    let mut kea = Kea::new(&tools, Some((&pair, &tools)));
    let ready = kea.start();
    eprintln!("kea-dhcp4 (netns) ready in {ready:?}");
    let kea1 = kea.driver();
    let lab = lab_scope();
    kea1.create_scope(&lab).unwrap();

    // A reservation, then a real client with that MAC gets the address and host name.
    let r42 = reservation(
        Some("192.0.2.0/24"),
        mac("02:00:00:00:00:42"),
        "192.0.2.42",
        Some("res42"),
    );
    kea1.add_reservation(&r42).unwrap();
    let t = Instant::now();
    let got = udhcpc(&tools, &pair, &kea.dir, "02:00:00:00:00:42", None);
    eprintln!("udhcpc got {got:?} in {:?}", t.elapsed());
    assert_eq!(IpAddr::V4(got.ip), r42.address);
    assert_eq!(got.hostname.as_deref(), Some("res42"));

    // Another MAC gets a pool address; both leases show, one per page.
    let got = udhcpc(&tools, &pair, &kea.dir, "02:00:00:00:00:99", Some("cli99"));
    assert!(lab.pools[0].from <= IpAddr::V4(got.ip) && IpAddr::V4(got.ip) <= lab.pools[0].to);
    let mut leases = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = kea1.list_leases(None, cursor.as_deref(), Some(1)).unwrap();
        assert!(page.leases.len() <= 1);
        leases.extend(page.leases);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert_eq!(leases[0].address, r42.address);
    let pool_lease = &leases[1];
    assert_eq!(pool_lease.address, IpAddr::V4(got.ip));
    assert_eq!(pool_lease.mac, Some("02:00:00:00:00:99".parse().unwrap()));
    assert_eq!(pool_lease.subnet, Some(lab.subnet));
    assert_eq!(pool_lease.state, LeaseState::Active);
    assert_eq!(pool_lease.hostname.as_deref(), Some("cli99"));
    assert!(pool_lease.client_id.is_some(), "udhcpc sends a client id");
    let expires = pool_lease.expires.unwrap();
    assert!(
        expires > now_secs() && expires <= now_secs() + 600 + 5,
        "{expires}"
    );
    let other = kea1
        .list_leases(Some(cidr("198.51.100.0/24")), None, None)
        .unwrap();
    assert_eq!(other.leases, vec![]);
    match execute(
        &kea1,
        &DhcpOp::ListLeases {
            subnet: Some(lab.subnet),
            cursor: None,
            limit: None,
        },
    )
    .unwrap()
    {
        ResponseBody::Leases {
            leases,
            next_cursor,
        } => {
            assert_eq!(leases.len(), 2);
            assert_eq!(next_cursor, None);
        }
        other => panic!("unexpected answer {other:?}"),
    }

    // A reservation by client identifier: udhcpc sends 01 + its MAC.
    let r43 = reservation(
        None,
        ClientIdentifier::ClientId("01:02:00:00:00:00:43".parse().unwrap()),
        "192.0.2.43",
        None,
    );
    kea1.add_reservation(&r43).unwrap();
    let got = udhcpc(&tools, &pair, &kea.dir, "02:00:00:00:00:43", None);
    assert_eq!(IpAddr::V4(got.ip), r43.address);
    kea1.delete_reservation(None, &r43.identifier).unwrap();

    // Delete the reservation; it is gone from the server and from the written file.
    kea1.delete_reservation(Some(lab.subnet), &r42.identifier)
        .unwrap();
    assert_eq!(kea1.list_reservations(None).unwrap(), vec![]);
    let file = kea.file();
    let written = &file["Dhcp4"]["subnet4"][0]["reservations"];
    assert!(written.as_array().is_none_or(Vec::is_empty), "{written}");
}
