//! No answer mentions what its caller may not read: every GET route of the API (from
//! `/openapi.json`), called as a read-only user with a Deny Read entry on a subtree, with the
//! hidden objects' refs, CIDRs and addresses in the path and in filters.
use serde_json::{json, Value};

use super::handlers::Local;
use super::{basic, Api};

const V2: &str = "/mmws/api/v2";

/// Text only the hidden subtree holds (property values and titles), never typed by the
/// auditor: no answer may contain any of it.
const SECRETS: [&str; 3] = ["SECRET-OWNER", "TopSecret", "SECRET-DESC"];
/// Addresses and bounds of the hidden subtree: an answer may contain one only when the
/// request named it.
const HIDDEN_ADDRS: [&str; 4] = ["10.70.130.5", "10.70.200.7", "10.70.128.0", "10.70.200.0"];

/// Asserts that an answer shows nothing of the hidden subtree. Listings of every address of
/// a range show the hidden ones too, but only as blank, free records (as a free address of
/// the range reads); past those, a hidden address may appear only where the request named it.
fn check_answer(url: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "GET {url} shows {s}: {}", cut(text));
    }
    let mut rest = Vec::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        strip_blank_hidden_records(url, &mut v);
        rest.push(v.to_string());
    }
    let rest = rest.join("\n");
    for h in HIDDEN_ADDRS {
        // As a whole address (a JSON string, or a CIDR's start), not a prefix of another.
        let shown = rest.contains(&format!("{h}\"")) || rest.contains(&format!("{h}/"));
        assert!(
            url.contains(h) || !shown,
            "GET {url} shows the hidden {h}: {}",
            cut(text)
        );
    }
}

fn cut(s: &str) -> &str {
    &s[..s.len().min(2000)]
}

/// Replaces every IPAM record of an address in the hidden subtree (10.70.128.0/17) by null,
/// after checking that it is blank.
fn strip_blank_hidden_records(url: &str, v: &mut Value) {
    match v {
        Value::Object(o) if o.contains_key("addrRef") => {
            let addr = o["address"].as_str().unwrap_or_default().to_string();
            let in_hidden = addr
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| (u32::from(a) >> 15) == (0x0a46_8000u32 >> 15));
            if in_hidden {
                assert_eq!(o["state"], "Free", "GET {url}: hidden {addr} is not blank");
                let props = o["customProperties"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                assert!(
                    props.values().all(|p| p == ""),
                    "GET {url}: hidden {addr} shows properties {props:?}"
                );
                *v = Value::Null;
            }
        }
        Value::Object(o) => o
            .values_mut()
            .for_each(|x| strip_blank_hidden_records(url, x)),
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| strip_blank_hidden_records(url, x)),
        _ => {}
    }
}

async fn admin_setup(a: &mut Local) -> (u64, u64, u64) {
    let ok = |r: super::Resp, what: &str| {
        assert!((200..300).contains(&r.status), "{what}: {}", r.text);
        r
    };
    ok(
        a.call(
            "POST",
            &format!("{V2}/ipamRecords/propertyDefinitions"),
            Some(json!({"propertyDefinition": {"name": "Owner", "type": "String"}})),
        )
        .await,
        "property",
    );
    let mut ids = Vec::new();
    for (cidr, title) in [
        ("10.70.0.0/16", "OpenTitle"),
        ("10.70.128.0/17", "TopSecret"),
        ("10.70.200.0/24", "TopSecret"),
    ] {
        let r = ok(
            a.call(
                "POST",
                &format!("{V2}/ranges"),
                Some(json!({"range": {"name": cidr, "customProperties": {"Title": title, "Description": if title == "TopSecret" { "SECRET-DESC" } else { "" }}}})),
            )
            .await,
            cidr,
        );
        let r = r.json["result"]["ref"].as_str().unwrap().to_string();
        ids.push(r.trim_start_matches("ranges/").parse::<u64>().unwrap());
    }
    for (addr, owner) in [
        ("10.70.1.5", "visible-owner"),
        ("10.70.130.5", "SECRET-OWNER"),
        ("10.70.200.7", "SECRET-OWNER"),
    ] {
        let r = a
            .call(
                "PUT",
                &format!("{V2}/ipamRecords/{addr}"),
                Some(json!({"properties": {"claimed": true, "Owner": owner}})),
            )
            .await;
        assert_eq!(r.status, 204, "{addr}: {}", r.text);
    }
    let u = ok(
        a.call(
            "POST",
            &format!("{V2}/users"),
            Some(json!({"user": {"name": "auditor", "password": "auditor-pw-1"}})),
        )
        .await,
        "user",
    );
    let uref = u.json["result"]["ref"].as_str().unwrap().to_string();
    ok(
        a.call(
            "POST",
            &format!("{V2}/roles"),
            Some(json!({"role": {"name": "readers", "permissions": ["Read"]}})),
        )
        .await,
        "role",
    );
    let m = a
        .call("PUT", &format!("{V2}/users/auditor/roles/readers"), None)
        .await;
    assert_eq!(m.status, 204, "{}", m.text);
    ok(
        a.call(
            "PUT",
            &format!("{V2}/ranges/10.70.128.0/17/access"),
            Some(json!({"accessEntries": [{"identityRef": uref, "allow": [], "deny": ["Read"]}]})),
        )
        .await,
        "deny read",
    );
    (ids[0], ids[1], ids[2])
}

#[tokio::test]
async fn no_get_route_mentions_a_hidden_subtree() {
    let mut a = Local::new("leaks");
    let (parent, hidden, hidden_child) = admin_setup(&mut a).await;
    // The administrator sees the hidden records: the markers are real.
    let all = a
        .call(
            "GET",
            &format!("{V2}/ranges/{parent}/ipamRecords?filter=Owner%3DSECRET-OWNER"),
            None,
        )
        .await;
    assert_eq!(all.json["result"]["totalResults"], 2, "{}", all.text);

    let doc = a.send("GET", "/openapi.json", None, &[]).await;
    *a.auth() = Some(basic("auditor", "auditor-pw-1"));
    let refs = [
        parent.to_string(),
        hidden.to_string(),
        hidden_child.to_string(),
        "10.70.0.0/16".to_string(),
        "10.70.128.0/17".to_string(),
        "10.70.200.0/24".to_string(),
        "ranges/".to_string() + &hidden.to_string(),
        "1".to_string(),
    ];
    let addresses = ["10.70.1.5", "10.70.130.5", "10.70.200.7"];
    let queries = [
        "",
        "?filter=Owner%3DSECRET-OWNER",
        "?filter=10.70.130",
        "?filter=TopSecret",
        "?filter=Title%3DTopSecret",
        "?filter=address%3E%3D10.70.0.0",
        "?onlyUsed=true",
        "?cursor=10.70.128.0&limit=2000",
    ];
    let mut calls = 0;
    for (template, item) in doc.json["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let mut paths: Vec<String> = vec![template.clone()];
        for (ph, values) in [
            ("{ref}", &refs[..]),
            ("{address}", &addresses.map(String::from)[..]),
            ("{name}", &["Owner".to_string()][..]),
            ("{token}", &["abc".to_string()][..]),
            ("{memberRef}", &["readers".to_string()][..]),
        ] {
            paths = paths
                .into_iter()
                .flat_map(|p| {
                    if p.contains(ph) {
                        values.iter().map(|v| p.replace(ph, v)).collect::<Vec<_>>()
                    } else {
                        vec![p]
                    }
                })
                .collect();
        }
        // Query strings matter to listings (the path ends in a collection), not to one object.
        let listing = !template.ends_with('}');
        let qs: &[&str] = if template.ends_with("recordExport") {
            // An export ignores filters; a full one streams every address (slow to repeat).
            &["?onlyUsed=true", "?onlyUsed=false"]
        } else if listing {
            &queries
        } else {
            &queries[..1]
        };
        for p in paths {
            for &q in qs {
                if q == "?onlyUsed=false" && !p.contains(&format!("/{parent}/")) {
                    continue;
                }
                let q = if template == "/ipamRecords" && q.is_empty() {
                    "?rangeRef=10.70.0.0/16"
                } else {
                    q
                };
                let url = format!("{V2}{p}{q}");
                let r = a.call("GET", &url, None).await;
                calls += 1;
                check_answer(&url, &r.text);
            }
        }
    }
    assert!(calls > 200, "{calls} calls");

    // A hidden address reads like one in no range; the visible one keeps its data.
    for (addr, state) in [("10.70.130.5", "Free"), ("10.70.1.5", "Claimed")] {
        let r = a
            .call("GET", &format!("{V2}/ipamRecords/{addr}"), None)
            .await;
        assert_eq!(r.ok(addr)["ipamRecord"]["state"], state, "{}", r.text);
    }
    // A hidden address reads exactly like a free address of the range the user may read.
    let free = a
        .call("GET", &format!("{V2}/ipamRecords/10.70.50.5"), None)
        .await;
    let hidden_rec = a
        .call("GET", &format!("{V2}/ipamRecords/10.70.130.5"), None)
        .await;
    assert_eq!(
        free.text.replace("10.70.50.5", "X"),
        hidden_rec.text.replace("10.70.130.5", "X"),
        "a hidden address and a free one answer alike"
    );
    // A hidden range and a missing one answer alike, by id and by CIDR.
    for (hidden_ref, missing_ref) in [
        (hidden.to_string(), "999999".to_string()),
        ("10.70.128.0/17".to_string(), "10.99.0.0/17".to_string()),
    ] {
        let h = a
            .call("GET", &format!("{V2}/ranges/{hidden_ref}"), None)
            .await;
        let m = a
            .call("GET", &format!("{V2}/ranges/{missing_ref}"), None)
            .await;
        assert_eq!(h.status, m.status, "{} / {}", h.text, m.text);
        assert_eq!(
            h.text.replace(&hidden_ref, "X"),
            m.text.replace(&missing_ref, "X"),
            "hidden and missing differ"
        );
    }
    // Writing to the hidden subtree answers as for a missing range, too.
    let w = a
        .call(
            "PUT",
            &format!("{V2}/ranges/{hidden}"),
            Some(json!({"properties": {"Title": "x"}})),
        )
        .await;
    let wm = a
        .call(
            "PUT",
            &format!("{V2}/ranges/999999"),
            Some(json!({"properties": {"Title": "x"}})),
        )
        .await;
    assert_eq!(
        (w.status, w.json["error"]["code"].clone()),
        (wm.status, wm.json["error"]["code"].clone()),
        "{} / {}",
        w.text,
        wm.text
    );
}
