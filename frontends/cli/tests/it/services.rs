//! `ipamctl dns` and `ipamctl dhcp` against a Central with an agent (the real agent code,
//! in this process) in front of a real PowerDNS and a real kea-dhcp4.
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam_agent::drivers::Drivers;
use ipam_agent::serve::{serve, AgentConfig};
use ipam_agent_dhcp::DhcpServer as _;
use ipam_agent_proto::Role;

use crate::dhcp_harness::{require, Kea};
use crate::dns_harness::{dig_until, servers_available, PowerDns};
use crate::{ipamctl, json, ok, Server};

/// A key as `head -c 32 /dev/urandom | base64` makes one (Central refuses weak keys).
const KEY: &str = "zIjjlcs4mRyrFMTVU7g8IoHzt2/ui7aOQFdSO7tDMEY=";

#[test]
fn dns_zones_records_and_dhcp_scopes_reservations_through_ipamctl() {
    if !servers_available(&["pdns_server", "sqlite3", "dig"]) {
        return;
    }
    let Some(tools) = require("ipamctl dhcp", &["kea-dhcp4"], false) else {
        return;
    };
    let pdns = PowerDns::start();
    let mut kea = Kea::new(&tools, None);
    kea.start();
    let mut pcfg = pdns.config();
    pcfg.name = "pdns-cli".into();
    let drivers = Drivers::new(
        vec![Box::new(ipam_agent_dns::PowerDnsServer::new(pcfg).unwrap())],
        vec![Box::new(kea.driver_named("kea-cli"))],
    )
    .unwrap();
    // The agent, on a runtime of its own.
    let agent_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tls_dir = kea.dir.join("agent-tls");
    let id =
        ipam_tls::load_or_create(&tls_dir, None, &[], ipam_tls::SelfSignedNames::Unnamed).unwrap();
    let listener = agent_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let agent = listener.local_addr().unwrap().to_string();
    agent_rt.spawn(serve(
        listener,
        id.config,
        Arc::new(AgentConfig::new(
            "cli-agent",
            vec![Role::Dns, Role::Dhcp],
            KEY.as_bytes().to_vec(),
        )),
        Arc::new(drivers),
        std::future::pending::<()>(),
    ));
    let s = Server::start_with("services", |c| {
        c.agents = vec![ipam_central::AgentSpec {
            address: agent.clone(),
            key: KEY.as_bytes().to_vec(),
        }];
    });
    let cfg = s.dir.join("cfg");
    let pw = [("IPAM_PASSWORD", "admin-password")];
    ok(&ipamctl(&s, &cfg, &["login", "administrator"], &pw));
    let run = |args: &[&str]| ipamctl(&s, &cfg, args, &[]);

    // Both servers show up, reachable.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = json(&run(&["dns", "servers", "-o", "json"]));
        let h = json(&run(&["dhcp", "servers", "-o", "json"]));
        if d["dnsServers"][0]["state"] == "OK" && h["dhcpServers"][0]["state"] == "OK" {
            break;
        }
        assert!(Instant::now() < deadline, "servers not up: {d} {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = ok(&run(&["dns", "servers"]));
    assert!(
        table.contains("pdns-cli") && table.contains("powerdns"),
        "{table}"
    );

    // DNS: a zone, a record seen by dig, a refused record, the listing, a delete.
    let out = ok(&run(&[
        "dns",
        "create-zone",
        "cli.test",
        "--server",
        "pdns-cli",
    ]));
    assert!(out.contains("dnsZones/"), "{out}");
    let out = ok(&run(&[
        "dns", "add", "cli.test", "www", "A", "10.8.0.5", "--ttl", "60",
    ]));
    let rec = out.trim().to_string();
    assert!(rec.starts_with("dnsRecords/"), "{out}");
    dig_until(pdns.dns_port, "www.cli.test", "A", &["10.8.0.5"]);
    let bad = run(&["dns", "add", "cli.test", "x", "A", "10.8.0.999"]);
    assert_eq!(bad.status.code(), Some(5), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("x A 10.8.0.999"),
        "{bad:?}"
    );
    let list = json(&run(&[
        "dns",
        "records",
        "cli.test.",
        "--filter",
        "type=A",
        "-o",
        "json",
    ]));
    assert_eq!(list["dnsRecords"][0]["name"], "www", "{list}");
    assert_eq!(list["totalResults"], 1, "{list}");
    let zones = ok(&run(&["dns", "zones", "--filter", "cli.test"]));
    assert!(
        zones.contains("cli.test.") && zones.contains("pdns-cli"),
        "{zones}"
    );
    ok(&run(&["dns", "delete", &rec]));
    dig_until(pdns.dns_port, "www.cli.test", "A", &[]);
    let missing = run(&["dns", "records", "nowhere.test."]);
    assert_eq!(missing.status.code(), Some(4), "{missing:?}");

    // DHCP: a scope with a pool and an option, a reservation Kea holds, then removed.
    ok(&run(&["ranges", "create", "192.0.2.0/24"]));
    let out = ok(&run(&[
        "dhcp",
        "create-scope",
        "192.0.2.0/24",
        "--server",
        "kea-cli",
        "--pool",
        "192.0.2.100-192.0.2.199",
        "--option",
        "routers=192.0.2.1",
    ]));
    assert!(out.contains("dhcpScopes/"), "{out}");
    let scopes = kea.driver().list_scopes().unwrap();
    assert_eq!(scopes.len(), 1, "{scopes:?}");
    assert_eq!(scopes[0].pools.len(), 1);
    let out = ok(&run(&[
        "dhcp",
        "reserve",
        "192.0.2.0/24",
        "02:00:00:00:00:42",
        "192.0.2.42",
        "--name",
        "printer",
    ]));
    let res = out.trim().to_string();
    let on_kea = kea.driver().list_reservations(None).unwrap();
    assert_eq!(on_kea.len(), 1, "{on_kea:?}");
    assert_eq!(
        on_kea[0].address,
        "192.0.2.42".parse::<std::net::IpAddr>().unwrap()
    );
    let list = json(&run(&[
        "dhcp",
        "reservations",
        "192.0.2.0/24",
        "-o",
        "json",
    ]));
    assert_eq!(list["dhcpReservations"][0]["name"], "printer", "{list}");
    let dup = run(&[
        "dhcp",
        "reserve",
        "192.0.2.0/24",
        "02:00:00:00:00:42",
        "192.0.2.43",
    ]);
    assert_eq!(dup.status.code(), Some(5), "{dup:?}");
    ok(&run(&["dhcp", "unreserve", &res]));
    assert!(kea.driver().list_reservations(None).unwrap().is_empty());
    let leases = json(&run(&["dhcp", "leases", "192.0.2.0/24", "-o", "json"]));
    assert_eq!(leases["totalResults"], 0, "{leases}");
    let out = ok(&run(&["dhcp", "sync", "kea-cli"]));
    assert!(out.contains("synchronized"), "{out}");
    drop(s);
    agent_rt.shutdown_background();
}
