//! `ipam-bench agents`: DNS records pushed to a real BIND through Central's API (bulk
//! `POST dnsRecords`, then the agent link) and through the agent link alone, and a full zone
//! read back (Central: a synchronization of a zone made on named directly), against the same
//! work done by the BIND driver directly (the baseline: no TLS, no agent, same process, same
//! named).
//!
//! The agent runs in this process on loopback TLS with the BIND driver behind it; Central's
//! side is [`ipam_agent_link`]. Records go in batches of 1,000 (RFC 2136 UPDATE with TSIG,
//! split under the 64 KiB message limit); the zone is read by AXFR and paged through the
//! link. Each round uses a fresh zone, and every round checks that what was read back holds
//! every record pushed.
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ipam_agent::drivers::Drivers;
use ipam_agent::serve::{serve, AgentConfig, Handler};
use ipam_agent_dns::DnsServer;
use ipam_agent_link::pins::Pins;
use ipam_agent_link::LinkConfig;
use ipam_agent_proto::{
    DnsOp, RequestBody, ResourceRecord, ResponseBody, Role, ZoneSpec, ZoneType,
};
use ipam_benches::report::Report;
use ipam_client::{Client, Trust};
use serde_json::{json, Value};

use crate::engine_suite::{median, Scratch};
use crate::{Mode, Options};

// The DNS drivers' test harness: named on free loopback ports in a temp dir, killed on drop.
#[allow(dead_code)]
#[path = "../../agents/dns/tests/it/harness.rs"]
mod harness;

/// A key as `head -c 32 /dev/urandom | base64` makes one (Central refuses weak keys).
const KEY: &[u8] = b"bkxE/vJoDu+tyAkA2u+XVyWC+4h52Nz9qOz4VRY0yhA=";
const BATCH: usize = 1_000;

fn records(zone: &str, n: usize) -> Vec<ResourceRecord> {
    (0..n)
        .map(|i| ResourceRecord {
            name: format!("h{i}.{zone}"),
            rtype: "A".into(),
            ttl: 300,
            data: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        })
        .collect()
}

fn spec(zone: &str) -> ZoneSpec {
    ZoneSpec {
        name: zone.into(),
        view: None,
        zone_type: ZoneType::Primary,
        dynamic: true,
        masters: vec![],
    }
}

pub fn run(opts: &Options) -> Result<Report> {
    let (n, rounds) = match opts.mode {
        Mode::Full => (100_000usize, 5),
        Mode::Quick => (100_000, 3),
        Mode::Smoke => (2_000, 1),
    };
    if !harness::servers_available(&["named", "rndc"]) {
        bail!("IPAM_SKIP_DNS=1: the agents suite needs BIND");
    }
    let bind = harness::Bind::start();
    // The same named twice: behind the agent, and called directly (the baseline).
    let behind = ipam_agent_dns::BindServer::new(ipam_agent_dns::BindConfig {
        name: "bind-bench".into(),
        ..bind.config()
    })
    .context("the BIND driver")?;
    let drivers = Drivers::new(vec![Box::new(behind)], vec![]).map_err(anyhow::Error::msg)?;
    let direct = ipam_agent_dns::BindServer::new(bind.config()).context("the BIND driver")?;

    let scratch = Scratch::new("agents")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let id = ipam_tls::load_or_create(
        &scratch.0.join("tls"),
        None,
        &[],
        ipam_tls::SelfSignedNames::Unnamed,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?.to_string();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let handler: Arc<dyn Handler> = Arc::new(drivers);
    rt.spawn(serve(
        listener,
        id.config,
        Arc::new(AgentConfig::new(
            "bench-agent",
            vec![Role::Dns],
            KEY.to_vec(),
        )),
        handler,
        async move {
            let _ = stopped.changed().await;
        },
    ));
    let pins = Pins::open(&scratch.0.join("known_agents"))?;
    let link = rt
        .block_on(ipam_agent_link::link::connect(
            &LinkConfig::new(&addr, KEY.to_vec(), "bench-central"),
            &pins,
        ))
        .context("linking to the agent")?;
    let request = |body: RequestBody| rt.block_on(link.request(body));
    let dns = |op: DnsOp| RequestBody::Dns {
        server: "bind-bench".into(),
        op,
    };

    let mut push_link = Vec::new();
    let mut push_direct = Vec::new();
    let mut read_link = Vec::new();
    let mut read_direct = Vec::new();
    for round in 0..rounds {
        // Through the agent.
        let zone = format!("link{round}.bench.");
        request(dns(DnsOp::CreateZone { zone: spec(&zone) }))?;
        let all = records(&zone, n);
        let t = Instant::now();
        for chunk in all.chunks(BATCH) {
            request(dns(DnsOp::UpdateRecords {
                zone: zone.clone(),
                view: None,
                deletes: vec![],
                adds: chunk.to_vec(),
            }))?;
        }
        push_link.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (mut got, mut cursor) = (0usize, None);
        loop {
            let page = request(dns(DnsOp::ReadZone {
                zone: zone.clone(),
                view: None,
                cursor: cursor.take(),
                limit: None,
            }))?;
            let ResponseBody::Zone {
                records,
                next_cursor,
                ..
            } = page
            else {
                bail!("not a zone answer: {page:?}")
            };
            got += records.len();
            match next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        read_link.push(t.elapsed().as_secs_f64());
        ensure!(
            got >= n,
            "read {got} records back through the agent, pushed {n}"
        );
        request(dns(DnsOp::DeleteZone { zone, view: None }))?;

        // The driver directly.
        let zone = format!("direct{round}.bench.");
        direct.create_zone(&spec(&zone))?;
        let all = records(&zone, n);
        let t = Instant::now();
        for chunk in all.chunks(BATCH) {
            direct.update_records(&zone, None, &[], chunk)?;
        }
        push_direct.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let c = direct.read_zone(&zone, None)?;
        read_direct.push(t.elapsed().as_secs_f64());
        ensure!(
            c.records.len() >= n,
            "read {} records back directly, pushed {n}",
            c.records.len()
        );
        direct.delete_zone(&zone, None)?;
        println!(
            "round {}: push {:.0}/s via agent, {:.0}/s direct; zone read {:.2} s via agent, {:.2} s direct",
            round + 1,
            push_link.last().unwrap(),
            push_direct.last().unwrap(),
            read_link.last().unwrap(),
            read_direct.last().unwrap()
        );
    }
    let (push_central, sync_central) = via_central(&rt, &addr, &direct, n, rounds)?;
    let _ = stop.send(true);
    drop(bind);

    let mut r = Report::new("agents");
    let (pl, pd) = (median(&mut push_link), median(&mut push_direct));
    let (rl, rd) = (median(&mut read_link), median(&mut read_direct));
    r.add("records", n as f64, "records");
    r.add("push_via_agent", pl, "records/s");
    r.add("push_direct", pd, "records/s");
    r.ratio("push_via_agent", "push_direct", pl / pd);
    r.add("zone_read_via_agent", rl, "s");
    r.add("zone_read_direct", rd, "s");
    r.ratio("zone_read_via_agent", "zone_read_direct", rl / rd);
    let (pc, sc) = (
        median(&mut push_central.clone()),
        median(&mut sync_central.clone()),
    );
    r.add("push_via_central", pc, "records/s");
    r.ratio("push_via_central", "push_direct", pc / pd);
    r.add("zone_sync_via_central", sc, "s");
    r.ratio("zone_sync_via_central", "zone_read_direct", sc / rd);
    println!(
        "agents via Central: push {pc:.0}/s ({:.2}x direct); full zone synchronization {sc:.2} s ({:.2}x the direct zone read)",
        pc / pd,
        sc / rd
    );
    println!(
        "agents: {n} records; push {pl:.0}/s via the agent ({:.2}x direct {pd:.0}/s); full zone read {rl:.2} s via the agent ({:.2}x direct {rd:.2} s); medians of {rounds}",
        pl / pd,
        rl / rd
    );
    Ok(r)
}

/// Checks a 2xx answer and gives its `result`.
fn result(r: ipam_client::Response, what: &str) -> Result<Value> {
    ensure!(
        (200..300).contains(&r.status),
        "{what}: HTTP {} {}",
        r.status,
        r.text()
    );
    Ok(r.json()?["result"].clone())
}

/// The same pushes through Central's API (bulk `POST dnsRecords` of 1,000 records), and a
/// full synchronization of a zone of `n` records made on named directly. Central runs in
/// this process with the agent in its configuration.
fn via_central(
    rt: &tokio::runtime::Runtime,
    agent: &str,
    direct: &ipam_agent_dns::BindServer,
    n: usize,
    rounds: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let dir = Scratch::new("agents-central")?;
    let mut cfg = ipam_central::Config::for_tests(&dir.0);
    cfg.log = "error".into();
    cfg.agents = vec![ipam_central::AgentSpec {
        address: agent.to_string(),
        key: KEY.to_vec(),
    }];
    let central = crate::http_suite::LocalCentral::start(rt, &cfg)?;
    let (addr, fp) = (central.addr, central.fingerprint.clone());
    let out = rt.block_on(async move {
        let mut c = Client::connect(addr, Trust::Fingerprint(fp)).await?;
        c.login("administrator", "admin-password").await?;
        let t0 = Instant::now();
        loop {
            let s = result(c.request("GET", "/mmws/api/v2/dnsServers", None).await?, "dnsServers")?;
            if s["dnsServers"][0]["state"] == "OK" {
                break;
            }
            ensure!(t0.elapsed().as_secs() < 30, "Central did not reach the agent: {s}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (mut push, mut sync) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let zone = format!("central{round}.bench.");
            let z = result(
                c.request(
                    "POST",
                    "/mmws/api/v2/dnsZones",
                    Some(&json!({"dnsZone": {"name": zone, "dynamic": true, "authority": "bind-bench"}})),
                )
                .await?,
                "create zone",
            )?;
            let zref = z["ref"].as_str().unwrap_or_default().to_string();
            let all = records(&zone, n);
            let t = Instant::now();
            for chunk in all.chunks(BATCH) {
                let body = json!({"dnsZoneRef": zref, "dnsRecords": chunk.iter().map(|r| json!({
                    "name": r.name, "type": r.rtype, "ttl": r.ttl, "data": r.data})).collect::<Vec<_>>()});
                let res = result(
                    c.request("POST", "/mmws/api/v2/dnsRecords", Some(&body)).await?,
                    "records",
                )?;
                ensure!(
                    res["errors"].as_array().is_some_and(Vec::is_empty),
                    "records refused: {}",
                    res["errors"]
                );
            }
            push.push(n as f64 / t.elapsed().as_secs_f64());
            let got = result(
                c.request("GET", &format!("/mmws/api/v2/{zref}/dnsRecords?limit=1"), None)
                    .await?,
                "records",
            )?;
            ensure!(
                got["totalResults"].as_u64().unwrap_or(0) >= n as u64,
                "Central holds {} records of the zone, pushed {n}",
                got["totalResults"]
            );
            let r = c.request("DELETE", &format!("/mmws/api/v2/{zref}"), None).await?;
            ensure!(r.status == 204, "delete zone: {}", r.text());

            // A zone made on named behind Central's back, read in by a synchronization.
            let zone = format!("sync{round}.bench.");
            direct.create_zone(&spec(&zone))?;
            for chunk in all.chunks(BATCH) {
                let moved: Vec<ResourceRecord> = chunk
                    .iter()
                    .map(|r| ResourceRecord {
                        name: r.name.replace(&format!("central{round}"), &format!("sync{round}")),
                        ..r.clone()
                    })
                    .collect();
                direct.update_records(&zone, None, &[], &moved)?;
            }
            let t = Instant::now();
            let rep = result(
                c.request("POST", "/mmws/api/v2/dnsServers/bind-bench/synchronize", None)
                    .await?,
                "synchronize",
            )?;
            sync.push(t.elapsed().as_secs_f64());
            ensure!(
                rep["created"].as_u64().unwrap_or(0) >= n as u64,
                "the synchronization created {} records, the zone has {n}",
                rep["created"]
            );
            direct.delete_zone(&zone, None)?;
            let _ = c
                .request("POST", "/mmws/api/v2/dnsServers/bind-bench/synchronize", None)
                .await?;
            println!(
                "round {}: push {:.0}/s via Central; synchronization of a {n}-record zone {:.2} s",
                round + 1,
                push.last().unwrap(),
                sync.last().unwrap()
            );
        }
        Ok::<_, anyhow::Error>((push, sync))
    });
    central.stop(rt);
    out
}
