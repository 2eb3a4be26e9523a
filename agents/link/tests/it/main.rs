//! Central's side of the link against peers that are not the agent: an impostor at the
//! agent's address. (The link against the real agent is tested in `ipam-agent`'s tests.)
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use ipam_agent_link::{link, wire, LinkConfig, LinkError, Pins};
use ipam_agent_proto::{new_challenge, Hello, Message, Proof, Role, Welcome};

const KEY: &[u8] = b"Mj6IyMSyYYnTPrICUfiBKa3a6rJRq444MrHiDQYL2pk=";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ipam-agent-link-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_that_welcomes_without_the_key_is_refused_and_not_pinned() {
    let dir = TempDir::new("impostor");
    let id = ipam_tls::load_or_create(
        &dir.0.join("tls"),
        None,
        &[],
        ipam_tls::SelfSignedNames::Unnamed,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // It says hello like an agent, then welcomes whatever Central sends.
    let acceptor = tokio_rustls::TlsAcceptor::from(id.config);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let (r, mut w) = tokio::io::split(tls);
        let hello = Message::Hello(Hello {
            versions: vec![1],
            challenge: new_challenge().unwrap(),
        });
        wire::write(&mut w, &hello, 1 << 20).await.unwrap();
        let mut reader = wire::Reader::new(r, 1 << 20);
        if let Ok(Message::Auth(a)) = reader.next().await {
            let welcome = Message::Welcome(Welcome {
                version: a.version,
                proof: Proof([0; 32]),
                agent_name: "impostor".into(),
                roles: vec![Role::Dns],
                servers: vec![],
            });
            let _ = wire::write(&mut w, &welcome, 1 << 20).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    match link::connect(&LinkConfig::new(&addr, KEY.to_vec(), "central"), &pins).await {
        Err(LinkError::Refused { reason, .. }) => {
            assert!(reason.contains("does not prove the shared key"), "{reason}")
        }
        other => panic!("an impostor must be refused, got {other:?}"),
    }
    assert!(pins.get(&addr).is_none(), "an impostor is never pinned");
    assert!(!dir.0.join("known_agents").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_that_breaks_the_rules_is_refused_and_not_pinned() {
    let dir = TempDir::new("bad-welcome");
    let id = ipam_tls::load_or_create(
        &dir.0.join("tls"),
        None,
        &[],
        ipam_tls::SelfSignedNames::Unnamed,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // A peer that holds the key and proves it, but says it is a DNS agent managing a DHCP
    // server.
    let acceptor = tokio_rustls::TlsAcceptor::from(id.config);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let binding = wire::binding(tls.get_ref().1).unwrap();
        let (r, mut w) = tokio::io::split(tls);
        let hello = Hello {
            versions: vec![1],
            challenge: new_challenge().unwrap(),
        };
        wire::write(&mut w, &Message::Hello(hello.clone()), 1 << 20)
            .await
            .unwrap();
        let mut reader = wire::Reader::new(r, 1 << 20);
        if let Ok(Message::Auth(a)) = reader.next().await {
            let version = ipam_agent_proto::check_auth(KEY, &binding, &hello, &a).unwrap();
            let welcome = Message::Welcome(Welcome {
                version,
                proof: ipam_agent_proto::prove_agent(KEY, &binding, &a, "agent").unwrap(),
                agent_name: "agent".into(),
                roles: vec![Role::Dns],
                servers: vec![ipam_agent_proto::ManagedServer {
                    name: "kea1".into(),
                    kind: ipam_agent_proto::ServerKind::Kea,
                }],
            });
            let _ = wire::write(&mut w, &welcome, 1 << 20).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let pins = Pins::open(&dir.0.join("known_agents")).unwrap();
    match link::connect(&LinkConfig::new(&addr, KEY.to_vec(), "central"), &pins).await {
        Err(LinkError::Down { message, .. }) => {
            assert!(message.contains("bad welcome"), "{message}")
        }
        other => panic!("a welcome that breaks the rules must be refused, got {other:?}"),
    }
    assert!(pins.get(&addr).is_none(), "nothing is pinned");
}
