//! Every request's reads are bounded: a scan that would examine too much answers 422 code
//! 4070, one past its deadline 503 code 5013, a page found before the budget ran out is
//! answered with an inexact total, and a request whose client went away stops its scan.
//! Also: changing one's own password needs the current one, and history names users by ref.
use std::time::Duration;

use axum::body::Body;
use serde_json::json;
use tower::ServiceExt;

use super::handlers::Local;
use super::{basic, Api, ADMIN_PW};

const V2: &str = "/mmws/api/v2";

async fn fill(a: &mut Local, cidr: &str, n: u32) -> String {
    let r = a
        .call(
            "POST",
            &format!("{V2}/ranges"),
            Some(json!({"range": {"name": cidr}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rref = r.json["result"]["ref"].as_str().unwrap().to_string();
    let r = a
        .call(
            "POST",
            &format!("{V2}/addressAllocations"),
            Some(json!({"pool": [cidr], "count": n})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    rref
}

#[tokio::test]
async fn scans_stop_at_the_request_budget_with_a_clear_answer() {
    let mut a = Local::with("budget", |c| {
        c.read_limits.max_examined = 5_000;
        c.max_bulk_items = 20_000;
    });
    let rref = fill(&mut a, "10.60.0.0/16", 20_000).await;
    // Nothing matches: every used address would be examined, past the cap.
    let r = a
        .call(
            "GET",
            &format!("{V2}/{rref}/ipamRecords?filter=state%3DReserved"),
            None,
        )
        .await;
    assert_eq!(r.err("over the cap", 422), 4070, "{}", r.text);
    assert!(
        r.text.contains("more than 5000"),
        "the answer says what to do: {}",
        r.text
    );
    // Matches come early: the page is answered, with an inexact total and a cursor.
    let r = a
        .call(
            "GET",
            &format!("{V2}/{rref}/ipamRecords?filter=state%3DAssigned&limit=10"),
            None,
        )
        .await;
    let res = r.ok("page before the cap");
    assert_eq!(res["ipamRecords"].as_array().unwrap().len(), 10);
    assert_eq!(res["totalResultsExact"], false, "{}", r.text);
    assert!(res["nextCursor"].is_string(), "{}", r.text);
    // Conditions on the address narrow the walk to what they allow: no cap reached.
    let r = a
        .call(
            "GET",
            &format!(
                "{V2}/{rref}/ipamRecords?filter={}",
                "address%3E%3D10.60.1.0%20and%20address%3C%3D10.60.1.255%20and%20state%3DReserved"
            ),
            None,
        )
        .await;
    assert_eq!(r.ok("bounded by address")["totalResults"], 0, "{}", r.text);
    // Writes go on meanwhile and after.
    let w = a
        .call(
            "GET",
            &format!("{V2}/{rref}/nextFreeAddress?claim=true"),
            None,
        )
        .await;
    w.ok("a write after the refused scans");
}

#[tokio::test]
async fn a_scan_past_its_deadline_answers_503() {
    let mut a = Local::with("deadline", |c| {
        c.read_limits.timeout = Duration::ZERO;
    });
    let rref = fill(&mut a, "10.61.0.0/24", 100).await;
    let r = a
        .call(
            "GET",
            &format!("{V2}/{rref}/ipamRecords?filter=state%3DReserved"),
            None,
        )
        .await;
    assert_eq!(r.err("deadline", 503), 5013, "{}", r.text);
    assert!(r.text.contains("deadline"), "{}", r.text);
}

/// A request dropped while its scan runs (what the server does when the client goes away)
/// stops the scan: the metric of cancelled reads counts it.
#[tokio::test]
async fn a_dropped_request_stops_its_scan() {
    let mut a = Local::with("cancel", |c| {
        c.max_bulk_items = 100_000;
        c.metrics_public = true;
    });
    let rref = fill(&mut a, "10.62.0.0/15", 100_000).await;
    let router = a.app.router();
    let req = axum::http::Request::builder()
        .method("GET")
        .uri(format!(
            "{V2}/{rref}/ipamRecords?filter=address%3D~%22(.*)(.*)(.*)x%24%22"
        ))
        .header("authorization", basic("administrator", ADMIN_PW))
        .body(Body::empty())
        .unwrap();
    let call = tokio::spawn(router.oneshot(req));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the scan should still be running");
    call.abort();
    let mut stopped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = a.send("GET", "/metrics", None, &[]).await;
        if m.text
            .contains("ipam_reads_stopped_total{reason=\"cancelled\"} 1")
        {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the scan of a dropped request did not stop");
}

#[tokio::test]
async fn own_password_needs_the_current_one_and_history_names_users_by_ref() {
    let mut a = Local::new("ownpw");
    let u = a
        .call(
            "POST",
            &format!("{V2}/users"),
            Some(json!({"user": {"name": "carol", "password": "carol-pw-1"}})),
        )
        .await;
    let uref = u.ok("user")["ref"].as_str().unwrap().to_string();
    // The administrator sets another user's password without knowing it.
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"password": "carol-pw-2"}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    *a.auth() = Some(basic("carol", "carol-pw-2"));
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"password": "carol-pw-3"}})),
        )
        .await;
    assert_eq!(r.err("no current password", 400), 4001, "{}", r.text);
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"password": "carol-pw-3"}, "currentPassword": "wrong"})),
        )
        .await;
    assert_eq!(r.err("wrong current password", 400), 5001, "{}", r.text);
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"password": "carol-pw-3", "currentPassword": "carol-pw-2"}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    *a.auth() = Some(basic("carol", "carol-pw-3"));
    // carol may not take the engine's name.
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"name": "system"}})),
        )
        .await;
    assert!(r.status == 400, "{}", r.text);
    *a.auth() = Some(basic("administrator", ADMIN_PW));
    let r = a
        .call(
            "PUT",
            &format!("{V2}/{uref}"),
            Some(json!({"user": {"name": "system"}})),
        )
        .await;
    assert!(r.text.contains("reserved"), "{}", r.text);
    let h = a.call("GET", &format!("{V2}/{uref}/history"), None).await;
    let events = h.ok("history")["events"].as_array().unwrap().clone();
    assert!(!events.is_empty());
    for ev in &events {
        assert!(
            ev["userRef"]
                .as_str()
                .is_some_and(|r| r.starts_with("users/")),
            "{ev}"
        );
    }
}
