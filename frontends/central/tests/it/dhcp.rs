//! DHCP end to end: the real `ipam-central` binary, an agent (the real agent code, in this
//! process) and a real kea-dhcp4 serving a network namespace, with real DHCP clients
//! (udhcpc) in another.
//!
//! A scope and a reservation made through Central reach Kea, and a client with the reserved
//! MAC gets the reserved address; a pool lease a client obtains shows on its IPAM record and
//! next free no longer offers the address; `excludeDHCP` keeps next free out of the pool; a
//! stopped server gives a clear error and changes nothing.
use std::net::IpAddr;

use ipam_agent::drivers::Drivers;
use ipam_agent_proto::Role;
use serde_json::json;

use super::dhcp_harness::{require, udhcpc, Kea, NetnsPair};
use super::dns::{get, start_agent, start_central, wait_for};
use super::{basic, Api, TempDir, ADMIN_PW};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scopes_reservations_and_leases_through_central_with_kea_and_real_clients() {
    let Some(tools) = require(
        "scopes_reservations_and_leases_through_central",
        &["kea-dhcp4", "udhcpc", "ip"],
        true,
    ) else {
        return;
    };
    let dir = TempDir::new("dhcp-e2e");
    let pair = NetnsPair::new(&tools);
    let mut kea = Kea::new(&tools, Some((&pair, &tools)));
    kea.start();
    let drivers = Drivers::new(vec![], vec![Box::new(kea.driver_named("kea-lab"))]).unwrap();
    let agent = start_agent(&dir.0, vec![Role::Dhcp], drivers).await;
    let server = start_central(&dir.0, &agent.addr);
    let mut c = server.client().await;
    *c.auth() = Some(basic("administrator", ADMIN_PW));
    wait_for(30, "the Kea server up", async || {
        let s = get(&mut c, "/mmws/api/v2/dhcpServers").await;
        (s["dhcpServers"][0]["name"] == "kea-lab" && s["dhcpServers"][0]["state"] == "OK")
            .then_some(())
    })
    .await;

    // A subnet and its scope with a pool and a router option.
    c.call(
        "POST",
        "/mmws/api/v2/ranges",
        Some(json!({"range": {"name": "192.0.2.0/24", "subnet": true}})),
    )
    .await
    .ok("range");
    let bad = c
        .call(
            "POST",
            "/mmws/api/v2/dhcpScopes",
            Some(
                json!({"dhcpScope": {"rangeRef": "192.0.2.0/24", "dhcpServerRef": "kea-lab",
                "pools": [{"from": "192.0.2.100", "to": "192.0.3.10"}]}}),
            ),
        )
        .await;
    assert_eq!(bad.err("a pool outside the subnet", 400), 4001);
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/dhcpScopes",
            Some(json!({"dhcpScope": {"name": "lab", "rangeRef": "ranges/192.0.2.0/24", "dhcpServerRef": "dhcpServers/kea-lab",
                "pools": [{"from": "192.0.2.100", "to": "192.0.2.199"}],
                "dhcpOptions": [{"option": "routers", "value": "192.0.2.1"}]},
                "saveComment": "lab scope"})),
        )
        .await;
    let scope = r.ok("create scope")["ref"].as_str().unwrap().to_string();
    let range = get(&mut c, "/mmws/api/v2/ranges/192.0.2.0/24").await;
    assert_eq!(
        range["range"]["dhcpScopes"][0]["ref"],
        scope.as_str(),
        "{range}"
    );
    let opts = get(&mut c, &format!("/mmws/api/v2/{scope}/options")).await;
    assert_eq!(opts["dhcpOptions"][0]["option"], "routers", "{opts}");

    // A reservation through Central (the scope named by its subnet, under the servers).
    let r = c
        .call(
            "POST",
            "/mmws/api/v2/DHCPServers/DHCPScopes/192.0.2.0/24/DHCPReservations",
            Some(json!({"dhcpReservation": {"name": "printer", "clientIdentifier": "02-00-00-00-00-42",
                "addresses": ["192.0.2.42"], "reservationMethod": "HardwareAddress"}})),
        )
        .await;
    let res = r.ok("create reservation")["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let dup = c
        .call(
            "POST",
            &format!("/mmws/api/v2/{scope}/dhcpReservations"),
            Some(
                json!({"dhcpReservation": {"name": "copy", "clientIdentifier": "02:00:00:00:00:42",
                "addresses": ["192.0.2.43"]}}),
            ),
        )
        .await;
    assert_eq!(dup.err("a second reservation for one client", 400), 4003);
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/192.0.2.42").await;
    assert_eq!(rec["ipamRecord"]["state"], "Assigned", "{rec}");
    assert_eq!(
        rec["ipamRecord"]["dhcpReservations"][0]["name"], "printer",
        "{rec}"
    );
    assert_eq!(
        rec["ipamRecord"]["dhcpReservations"][0]["clientIdentifier"],
        "02:00:00:00:00:42"
    );

    // Real clients: the reserved MAC gets the reserved address, another a pool address.
    let got =
        tokio::task::block_in_place(|| udhcpc(&tools, &pair, &kea.dir, "02:00:00:00:00:42", None));
    assert_eq!(IpAddr::V4(got.ip), ip("192.0.2.42"));
    assert_eq!(got.hostname.as_deref(), Some("printer"));
    let got = tokio::task::block_in_place(|| {
        udhcpc(&tools, &pair, &kea.dir, "02:00:00:00:00:99", Some("laptop"))
    });
    let leased = IpAddr::V4(got.ip);
    assert!(
        ip("192.0.2.100") <= leased && leased <= ip("192.0.2.199"),
        "{leased}"
    );

    // The agent's watcher sees the new leases and Central reads them: the pool lease shows
    // on its IPAM record without anyone asking.
    let rec = wait_for(20, "the pool lease read from Kea", async || {
        let rec = get(&mut c, &format!("/mmws/api/v2/ipamRecords/{leased}")).await;
        (rec["ipamRecord"]["dhcpLeases"][0]["mac"] == "02:00:00:00:00:99").then_some(rec)
    })
    .await;
    let h = get(&mut c, "/mmws/api/v2/changes").await;
    assert!(
        h["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["objType"] == "DHCPLease"
                && e["saveComment"] == "synchronized from DHCP server kea-lab"),
        "{h}"
    );
    // On demand too: nothing is left to change.
    let r = c
        .call("POST", "/mmws/api/v2/dhcpServers/kea-lab/synchronize", None)
        .await;
    assert_eq!(r.ok("synchronize")["created"], 0, "{}", r.text);
    assert_eq!(rec["ipamRecord"]["state"], "Assigned", "{rec}");
    assert_eq!(
        rec["ipamRecord"]["dhcpLeases"][0]["mac"], "02:00:00:00:00:99",
        "{rec}"
    );
    assert_eq!(
        rec["ipamRecord"]["dhcpLeases"][0]["name"], "laptop",
        "{rec}"
    );
    let leases = get(&mut c, &format!("/mmws/api/v2/{scope}/leases")).await;
    assert_eq!(leases["totalResults"], 2, "{leases}");
    let by_range = get(&mut c, "/mmws/api/v2/ranges/192.0.2.0/24/leases").await;
    assert_eq!(by_range["totalResults"], 2);
    // Next free does not offer the leased address; excludeDHCP keeps out of the pool.
    let nf = get(
        &mut c,
        &format!("/mmws/api/v2/ranges/192.0.2.0/24/nextFreeAddress?startAddress={leased}"),
    )
    .await;
    assert_ne!(nf["address"], leased.to_string().as_str(), "{nf}");
    let nf = get(
        &mut c,
        "/mmws/api/v2/ranges/192.0.2.0/24/nextFreeAddress?startAddress=192.0.2.100&excludeDHCP=true",
    )
    .await;
    let a = ip(nf["address"].as_str().unwrap());
    assert!(!(ip("192.0.2.100") <= a && a <= ip("192.0.2.199")), "{a}");
    // Releasing a leased address by hand is refused.
    let r = c
        .call(
            "DELETE",
            &format!("/mmws/api/v2/ipamRecords/{leased}"),
            None,
        )
        .await;
    assert_eq!(r.err("release a leased address", 400), 4008);

    // A reservation changed and deleted through Central.
    let r = c
        .call(
            "PUT",
            &format!("/mmws/api/v2/{res}"),
            Some(json!({"properties": {"addresses": ["192.0.2.44"]}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/192.0.2.44").await;
    assert_eq!(
        rec["ipamRecord"]["dhcpReservations"][0]["name"], "printer",
        "{rec}"
    );
    let r = c.call("DELETE", &format!("/mmws/api/v2/{res}"), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let h = get(&mut c, &format!("/mmws/api/v2/{res}/history")).await;
    assert_eq!(h["events"][0]["eventType"], "Deletion", "{h}");

    // A stopped server: a clear error, nothing changes.
    kea.stop();
    let r = c
        .call(
            "POST",
            &format!("/mmws/api/v2/{scope}/dhcpReservations"),
            Some(
                json!({"dhcpReservation": {"name": "late", "clientIdentifier": "02:00:00:00:00:50",
                "addresses": ["192.0.2.50"]}}),
            ),
        )
        .await;
    assert_eq!(r.err("a reservation while Kea is down", 503), 4060);
    let list = get(&mut c, &format!("/mmws/api/v2/{scope}/dhcpReservations")).await;
    assert_eq!(list["totalResults"], 0, "{list}");
    let rec = get(&mut c, "/mmws/api/v2/ipamRecords/192.0.2.50").await;
    assert_eq!(rec["ipamRecord"]["state"], "Free");
    drop(agent);
}
