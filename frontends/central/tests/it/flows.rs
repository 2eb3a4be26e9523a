//! The client shapes of Micetro's REST API, each as a flow that real clients
//! run: Terraform-style, Ansible-style, and the legacy base with PascalCase paths.
use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::json;

use super::{basic, login, Api, ADMIN_PW};

const V2: &str = "/mmws/api/v2";

fn addr(v: &serde_json::Value) -> IpAddr {
    v["address"].as_str().unwrap().parse().unwrap()
}

/// Terraform provider: create a range by CIDR, read it by CIDR, next free address with
/// temporaryClaimTime, free blocks by size and mask, GET-then-PUT a record with a custom
/// property, delete with a body.
pub async fn terraform<A: Api>(a: &mut A) {
    login(a, "administrator", ADMIN_PW).await;
    let c = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "10.20.0.0/16", "isContainer": true}, "saveComment": "tf"})),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let r = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "10.20.1.0/24", "from": "", "to": ""}, "saveComment": "tf"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sref = r.json["result"]["ref"].as_str().unwrap().to_string();
    assert!(sref.starts_with("ranges/"), "{sref}");

    // Read back by CIDR (two path segments): the ref is byte-identical.
    let g = a
        .call("GET", &format!("{V2}/ranges/10.20.1.0/24"), None)
        .await;
    let range = &g.ok("GET range by CIDR")["range"];
    assert_eq!(range["ref"], sref.as_str());
    assert_eq!(range["name"], "10.20.1.0/24");
    assert_eq!(range["from"], "10.20.1.0");
    assert_eq!(range["to"], "10.20.1.255");
    assert_eq!(range["subnet"], true);
    assert_eq!(range["childRanges"], json!([]));
    assert_eq!(range["dhcpScopes"], json!([]));
    assert_eq!(range["customProperties"]["Title"], "");
    assert!(range["parentRef"].as_str().unwrap().starts_with("ranges/"));
    let created = range["created"].as_str().unwrap();
    assert!(
        created.len() >= 19 && created.contains(", ") && created.contains(':'),
        "Micetro date form: {created}"
    );

    // Next free with a temporary claim (a hold), twice: two different addresses.
    let n1 = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.20.1.0/24/nextFreeAddress?temporaryClaimTime=60"),
            None,
        )
        .await;
    let a1 = addr(n1.ok("nextFreeAddress"));
    let n2 = a
        .call(
            "GET",
            &format!("{V2}/{sref}/nextFreeAddress?temporaryClaimTime=60"),
            None,
        )
        .await;
    let a2 = addr(n2.ok("nextFreeAddress 2"));
    assert_ne!(a1, a2, "a held address is not handed out again");
    for x in [a1, a2] {
        let s = x.to_string();
        assert!(
            s.starts_with("10.20.1.") && s != "10.20.1.0" && s != "10.20.1.255",
            "{s}"
        );
    }
    let h = a.call("GET", &format!("{V2}/ipamRecords/{a1}"), None).await;
    let rec = &h.ok("held record")["ipamRecord"];
    assert_eq!(rec["state"], "Held");
    assert_eq!(rec["holdInfo"]["username"], "administrator");
    // The same user's follow-up claim of a held address is not blocked.
    let p = a
        .call(
            "PUT",
            &format!("{V2}/ipamRecords/{a1}"),
            Some(json!({"properties": {"claimed": true}, "saveComment": "tf claim"})),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.text);

    // Free blocks by size and by mask in the container.
    let b = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.20.0.0/16/availableAddressBlocks?size=64&limit=2"),
            None,
        )
        .await;
    let blocks = b.ok("blocks by size")["addressBlocks"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(blocks.len(), 2);
    for bl in &blocks {
        let f: std::net::Ipv4Addr = bl["from"].as_str().unwrap().parse().unwrap();
        let t: std::net::Ipv4Addr = bl["to"].as_str().unwrap().parse().unwrap();
        assert_eq!(u32::from(t) - u32::from(f) + 1, 64);
        assert!(f.octets()[2] != 1, "blocks avoid the existing subnet: {f}");
    }
    let m = a
        .call(
            "GET",
            &format!("{V2}/ranges/10.20.0.0/16/availableAddressBlocks?mask=26"),
            None,
        )
        .await;
    let mb = &m.ok("blocks by mask")["addressBlocks"][0];
    let f: std::net::Ipv4Addr = mb["from"].as_str().unwrap().parse().unwrap();
    assert_eq!(u32::from(f) % 64, 0, "aligned /26");

    // A custom property, then GET-then-PUT of an address never stored.
    let pd = a
        .call(
            "POST",
            &format!("{V2}/ipamRecords/propertyDefinitions"),
            Some(json!({"propertyDefinition": {"name": "Owner", "type": "String"}})),
        )
        .await;
    assert_eq!(pd.status, 201, "{}", pd.text);
    let pd2 = a
        .call(
            "POST",
            &format!("{V2}/ipamRecords/propertyDefinitions"),
            Some(json!({"propertyDefinition": {"name": "Monitored", "type": "Boolean"}})),
        )
        .await;
    assert_eq!(pd2.status, 201, "{}", pd2.text);
    let g = a
        .call("GET", &format!("{V2}/ipamRecords/10.20.1.77"), None)
        .await;
    let rec = &g.ok("GET any address")["ipamRecord"];
    assert_eq!(rec["state"], "Free");
    assert_eq!(rec["addrRef"], "ipamRecords/10.20.1.77");
    assert_eq!(rec["customProperties"]["Owner"], "");
    let p = a
        .call(
            "PUT",
            &format!("{V2}/ipamRecords/10.20.1.77"),
            Some(
                json!({"ref": "ipamRecords/10.20.1.77", "saveComment": "tf", "properties": [
                {"name": "Owner", "value": "alice"}, {"name": "Monitored", "value": true}]}),
            ),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.text);
    let g = a
        .call("GET", &format!("{V2}/ipamRecords/10.20.1.77"), None)
        .await;
    let cp = &g.ok("read back")["ipamRecord"]["customProperties"];
    assert_eq!(cp["Owner"], "alice");
    assert_eq!(cp["Monitored"], "1", "booleans read back as \"1\"");

    // History of the record shows the change with its comment.
    let hi = a
        .call("GET", &format!("{V2}/ipamRecords/10.20.1.77/history"), None)
        .await;
    let ev = &hi.ok("history")["events"][0];
    assert_eq!(ev["saveComment"], "tf");
    assert_eq!(ev["username"], "administrator");
    assert_eq!(ev["objRef"], "ipamRecords/10.20.1.77");

    // Delete the subnet with a body; then it is gone (400 + 2049; legacy 16544).
    let d = a
        .call(
            "DELETE",
            &format!("{V2}/{sref}"),
            Some(json!({"saveComment": "bye", "forceRemoval": true, "objType": "Range"})),
        )
        .await;
    assert_eq!(d.status, 204, "{}", d.text);
    let gone = a.call("GET", &format!("{V2}/{sref}"), None).await;
    assert_eq!(gone.err("deleted range", 400), 2049);
    let gone = a.call("GET", &format!("/mmws/api/{sref}"), None).await;
    assert_eq!(gone.err("deleted range, legacy", 400), 16544);
    let d = a
        .call(
            "DELETE",
            &format!("{V2}/ipamRecords/propertyDefinitions/Owner"),
            None,
        )
        .await;
    assert_eq!(d.status, 204, "{}", d.text);
    let g = a
        .call(
            "GET",
            &format!("{V2}/ipamRecords/propertyDefinitions/Owner"),
            None,
        )
        .await;
    assert!((400..500).contains(&g.status), "{}", g.text);
}

/// Ansible collection: claim an address, set properties, find a range by a bare address,
/// users/groups/roles and memberships.
pub async fn ansible<A: Api>(a: &mut A) {
    *a.auth() = Some(basic("administrator", ADMIN_PW));
    let r = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": "172.16.5.0/24", "customProperties": {"title": "lab"}}})),
        )
        .await;
    let rref = r.ok("create")["ref"].as_str().unwrap().to_string();
    let p = a
        .call(
            "PUT",
            &format!("{V2}/ipamRecords/172.16.5.10"),
            Some(json!({"properties": {"claimed": true}, "saveComment": "ansible"})),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.text);
    let g = a
        .call("GET", &format!("{V2}/ipamRecords/172.16.5.10"), None)
        .await;
    let rec = &g.ok("claimed")["ipamRecord"];
    assert_eq!(rec["state"], "Claimed");
    assert_eq!(rec["claimed"], true);
    assert_eq!(rec["rangeRef"], rref.as_str());

    let p = a
        .call(
            "PUT",
            &format!("{V2}/{rref}"),
            Some(json!({"ref": rref, "properties": {"description": "rack 4", "locked": "false"}})),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.text);
    let g = a.call("GET", &format!("{V2}/{rref}"), None).await;
    let cp = &g.ok("read back")["range"]["customProperties"];
    assert_eq!(cp["Title"], "lab", "built-ins come back capitalised");
    assert_eq!(cp["Description"], "rack 4");

    // A bare address finds the ranges containing it.
    let f = a
        .call("GET", &format!("{V2}/ranges?filter=172.16.5.10"), None)
        .await;
    let list = f.ok("bare address")["ranges"].as_array().unwrap().clone();
    assert!(list.iter().any(|r| r["ref"] == rref.as_str()), "{}", f.text);
    let none = a
        .call(
            "GET",
            &format!("{V2}/ranges?filter=name%3Dnothing-here"),
            None,
        )
        .await;
    assert_eq!(none.ok("no match")["totalResults"], 0);

    // Users, groups, roles and memberships.
    let u = a
        .call(
            "POST",
            &format!("{V2}/users"),
            Some(json!({"user": {"name": "bob", "password": "bob-pw-123", "fullName": "Bob", "authenticationType": "Internal"}})),
        )
        .await;
    let uref = u.ok("user")["ref"].as_str().unwrap().to_string();
    let g = a
        .call(
            "POST",
            &format!("{V2}/groups"),
            Some(json!({"group": {"name": "netops"}})),
        )
        .await;
    g.ok("group");
    let ro = a
        .call(
            "POST",
            &format!("{V2}/roles"),
            Some(json!({"role": {"name": "readers", "permissions": ["Read"]}})),
        )
        .await;
    ro.ok("role");
    for (path, what) in [
        ("groups/netops/users/bob", "group user"),
        ("users/bob/roles/readers", "user role"),
        ("groups/netops/roles/readers", "group role"),
    ] {
        let m = a
            .call(
                "PUT",
                &format!("{V2}/{path}"),
                Some(json!({"saveComment": what})),
            )
            .await;
        assert_eq!(m.status, 204, "{what}: {}", m.text);
    }
    let ub = a.call("GET", &format!("{V2}/{uref}"), None).await;
    let user = &ub.ok("user")["user"];
    assert_eq!(user["groups"][0]["name"], "netops");
    assert_eq!(user["groups"][0]["objType"], "Group");
    assert_eq!(user["roles"][0]["name"], "readers");
    let gl = a
        .call("GET", &format!("{V2}/groups?filter=name%3Dnetops"), None)
        .await;
    let grp = &gl.ok("groups")["groups"][0];
    assert_eq!(grp["groupMembers"][0]["ref"], uref.as_str());

    // bob reads, and may not administer.
    let admin = a.auth().clone();
    *a.auth() = Some(basic("bob", "bob-pw-123"));
    let r = a.call("GET", &format!("{V2}/{rref}"), None).await;
    r.ok("bob reads");
    let no = a
        .call(
            "POST",
            &format!("{V2}/users"),
            Some(json!({"user": {"name": "eve", "password": "x-123456"}})),
        )
        .await;
    assert_eq!(no.err("bob creates a user", 400), 1028);
    *a.auth() = admin;
    let m = a
        .call("DELETE", &format!("{V2}/users/bob/roles/readers"), None)
        .await;
    assert_eq!(m.status, 204, "{}", m.text);
    let ub = a.call("GET", &format!("{V2}/users/bob/roles"), None).await;
    assert_eq!(ub.ok("roles of bob")["totalResults"], 0);
}

/// Legacy base: PascalCase and lower-case collections, repeated collection segments,
/// trailing slashes, `command/GetIPAMRecords`, and code 16544 for not found.
pub async fn legacy<A: Api>(a: &mut A) {
    *a.auth() = Some(basic("administrator", ADMIN_PW));
    let r = a
        .call(
            "POST",
            "/mmws/api/Ranges/",
            Some(json!({"range": {"name": "192.168.77.0/24"}})),
        )
        .await;
    let rref = r.ok("create")["ref"].as_str().unwrap().to_string();
    let id = rref.trim_start_matches("ranges/");
    let f = a
        .call(
            "GET",
            "/mmws/api/Ranges?filter=name%3D192.168.77.0/24",
            None,
        )
        .await;
    assert_eq!(f.ok("filter")["ranges"][0]["ref"], rref.as_str());
    let recs = a
        .call(
            "GET",
            &format!("/mmws/api/Ranges/Ranges/{id}/IPAMRecords?limit=5"),
            None,
        )
        .await;
    let list = recs.ok("records")["ipamRecords"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 5);
    assert_eq!(recs.json["result"]["totalResults"], 256);
    let set: HashSet<&str> = list
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(set.len(), 5);
    let p = a
        .call(
            "PUT",
            "/mmws/api/IPAMRecords/192.168.77.9",
            Some(json!({"properties": [{"name": "claimed", "value": "1"}]})),
        )
        .await;
    assert_eq!(p.status, 204, "{}", p.text);
    let g = a
        .call(
            "GET",
            "/mmws/api/command/GetIPAMRecords",
            Some(json!({"rangeRef": rref, "filter": "state=Claimed"})),
        )
        .await;
    let got = g.ok("GetIPAMRecords")["ipamRecords"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(got.len(), 1, "{}", g.text);
    assert_eq!(got[0]["address"], "192.168.77.9");
    let nf = a.call("GET", "/mmws/api/ranges/999999", None).await;
    assert_eq!(nf.err("legacy not found", 400), 16544);
    let nf = a.call("GET", "/mmws/api/v2/ranges/999999", None).await;
    assert_eq!(nf.err("v2 not found", 400), 2049);
    let again = a
        .call("DELETE", "/mmws/api/IPAMRecords/192.168.77.9", None)
        .await;
    assert_eq!(again.status, 204, "{}", again.text);
    let v6 = a
        .call("GET", "/mmws/api/IPAMRecords/::192:168:2:15", None)
        .await;
    assert_eq!(v6.ok("ipv6 record")["ipamRecord"]["state"], "Free");
}
