//! Crash safety: a child process allocates as fast as it can and reports every
//! acknowledgment; it is killed with SIGKILL at random moments. After each kill the state on
//! disk must hold every acknowledged allocation, no transaction may be half-applied, and no
//! address may ever have been handed out twice.
//!
//! The child is this same test binary, started with `IPAM_CRASH_CHILD_DIR` set and filtered to
//! `crash::crash_child`; without that variable `crash_child` returns at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use ipam_engine::model::{PropertyType, RecordState};
use ipam_engine::{
    AllocMode, AllocRequest, Command, EngineConfig, ObjType, Object, PropertyDefinitionSpec,
    Transaction,
};

use crate::{addresses, config, ip, open, TempDir};

const ROUNDS: u32 = 50;
const WRITERS: usize = 4;
const CHILD_ENV: &str = "IPAM_CRASH_CHILD_DIR";

fn child_config(dir: &std::path::Path) -> EngineConfig {
    // Snapshots every few hundred changes, so kills also land on snapshot writes and
    // restarts load snapshots.
    EngineConfig {
        snapshot_every: Some(300),
        ..config(dir, true)
    }
}

/// The child: set up (idempotently), then allocate from `WRITERS` threads until killed,
/// printing `ACK <tag> <addr> <addr> ...` after each acknowledged transaction.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let round: u32 = std::env::var("IPAM_CRASH_ROUND")
        .expect("round")
        .parse()
        .expect("round number");
    let (e, admin) = open(&dir, child_config(&dir));
    let setup = Transaction {
        user: admin,
        comment: "crash test setup".into(),
        idempotency_key: Some("crash-setup".into()),
        commands: vec![
            Command::CreatePropertyDefinition(PropertyDefinitionSpec {
                obj_type: ObjType::IpamRecord,
                name: "Batch".into(),
                kind: PropertyType::String,
                mandatory: false,
                default: None,
                read_only: false,
            }),
            Command::CreateRange(ipam_engine::NewRange {
                from: Some(ip("10.40.0.0")),
                to: Some(ip("10.40.255.255")),
                name: "crash".into(),
                ..Default::default()
            }),
        ],
    };
    let r = e.submit(setup).expect("setup");
    let range: u64 = match &r.outcomes[1] {
        ipam_engine::Outcome::Created(s) => s.trim_start_matches("ranges/").parse().expect("ref"),
        o => panic!("{o:?}"),
    };
    let e = std::sync::Arc::new(e);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let e = &e;
            s.spawn(move || {
                for i in 0u64.. {
                    let n = 1 + (i % 7) as u32;
                    let plain = i % 4 == 1;
                    let tag = format!("{}r{round}w{w}i{i}n{n}", if plain { "plain-" } else { "" });
                    let req = AllocRequest {
                        pool: vec![range],
                        count: n,
                        start: None,
                        random: i % 3 == 0,
                        exclude: vec![],
                        mode: if i % 5 == 0 {
                            AllocMode::Claim
                        } else {
                            AllocMode::Assign
                        },
                        // Every fourth transaction carries no tag, so that plain bulk
                        // writes (which a store may pack into runs) are killed too.
                        properties: if plain {
                            Default::default()
                        } else {
                            [("Batch".to_string(), tag.clone())].into_iter().collect()
                        },
                    };
                    let t = Transaction {
                        user: admin,
                        comment: tag.clone(),
                        idempotency_key: None,
                        commands: vec![Command::AllocateAddresses(req)],
                    };
                    let got = addresses(e.submit(t).expect("allocation").outcomes.remove(0));
                    let line: Vec<String> = got.iter().map(ToString::to_string).collect();
                    // One write per line, so lines from threads never interleave.
                    let out = format!("ACK {tag} {}\n", line.join(" "));
                    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())
                        .expect("stdout");
                }
            });
        }
    });
}

fn tag_count(tag: &str) -> usize {
    tag.rsplit_once('n')
        .and_then(|(_, n)| n.parse().ok())
        .expect("tag ends in n<count>")
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged_and_never_hands_out_twice() {
    let d = TempDir::new("crash");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    let mut owner: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
    let t0 = Instant::now();
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Process::new(&exe)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &d.0)
            .env("IPAM_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            // Only whole lines count: the kill may cut the last one short.
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut l = String::new();
            while matches!(r.read_line(&mut l), Ok(n) if n > 0) {
                if let Some(whole) = l.strip_suffix('\n') {
                    lines.push(whole.to_string());
                }
                l.clear();
            }
            lines
        });
        // Let it get going, then kill it at a random moment.
        std::thread::sleep(Duration::from_millis(150 + seed % 250));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap");
        assert!(
            !status.success(),
            "round {round}: the child ended on its own: {status}"
        );
        for line in reader.join().expect("reader") {
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let mut parts = rest.split(' ');
            let tag = parts.next().expect("tag").to_string();
            let addrs: Vec<IpAddr> = parts.map(|a| a.parse().expect("address")).collect();
            assert_eq!(addrs.len(), tag_count(&tag), "round {round}: {line}");
            for a in &addrs {
                if let Some(prev) = owner.insert(*a, tag.clone()) {
                    panic!("round {round}: {a} was handed out twice: to {prev} and to {tag}");
                }
            }
            acked.insert(tag, addrs);
        }
        // Restart and check the state on disk.
        let (e, admin) = open(&d.0, child_config(&d.0));
        let objects = e.read(admin, |v| v.objects()).expect("dump");
        let mut by_tag: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        let mut untagged: BTreeSet<IpAddr> = BTreeSet::new();
        for o in &objects {
            if let Object::IpamRecord(r) = o {
                assert!(
                    matches!(r.state, RecordState::Assigned | RecordState::Claimed),
                    "{r:?}"
                );
                match r.properties.get("Batch") {
                    Some(tag) => {
                        by_tag.entry(tag.clone()).or_default().insert(r.addr);
                    }
                    None => {
                        untagged.insert(r.addr);
                    }
                }
            }
        }
        for (tag, addrs) in &by_tag {
            assert_eq!(
                addrs.len(),
                tag_count(tag),
                "round {round}: transaction {tag} is half-applied"
            );
        }
        for (tag, addrs) in &acked {
            if tag.starts_with("plain-") {
                for a in addrs {
                    assert!(
                        untagged.contains(a),
                        "round {round}: {a} of acknowledged {tag} is lost"
                    );
                }
                continue;
            }
            let on_disk = by_tag
                .get(tag)
                .unwrap_or_else(|| panic!("round {round}: acknowledged {tag} is lost"));
            assert_eq!(
                on_disk,
                &addrs.iter().copied().collect(),
                "round {round}: {tag} differs on disk"
            );
        }
        drop(e);
    }
    assert!(
        acked.len() > ROUNDS as usize,
        "too few acknowledgments ({}) to mean anything",
        acked.len()
    );
    eprintln!(
        "crash test: {ROUNDS} rounds, {} acknowledged transactions, {} addresses, {:?}",
        acked.len(),
        owner.len(),
        t0.elapsed()
    );
}
