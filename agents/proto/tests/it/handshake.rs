//! The handshake: proofs, version negotiation, the whole exchange.

use ipam_agent_proto::{
    answer_hello, check_auth, negotiate, new_challenge, prove, prove_agent, verify, verify_agent,
    Challenge, HandshakeError, Hello, ManagedServer, Message, Proof, Role, ServerKind, Welcome,
    PROTOCOL_VERSION, SUPPORTED_VERSIONS,
};
use proptest::collection::vec;
use proptest::prelude::*;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// The TLS connection's binding, as both ends derive it.
const B: [u8; 32] = [5; 32];

fn hello() -> Hello {
    Hello {
        versions: SUPPORTED_VERSIONS.to_vec(),
        challenge: new_challenge().unwrap(),
    }
}

fn welcome() -> Welcome {
    Welcome {
        version: 1,
        proof: Proof([3; 32]),
        agent_name: "dns-agent-1".into(),
        roles: vec![Role::Dns],
        servers: vec![ManagedServer {
            name: "ns1".into(),
            kind: ServerKind::Bind,
        }],
    }
}

#[test]
fn a_proof_is_bound_to_its_connection() {
    let c = new_challenge().unwrap();
    let proof = prove(KEY, &B, &c, "central", 1).unwrap();
    assert_eq!(
        verify(KEY, &[6; 32], &c, "central", 1, &proof),
        Err(HandshakeError::BadProof),
        "relayed to another TLS connection"
    );
}

#[test]
fn the_agent_proves_the_key_too() {
    let hello = Hello {
        versions: vec![1],
        challenge: new_challenge().unwrap(),
    };
    let auth = answer_hello(KEY, &B, "central", SUPPORTED_VERSIONS, &hello).unwrap();
    let p = prove_agent(KEY, &B, &auth, "agent-1").unwrap();
    assert_eq!(verify_agent(KEY, &B, &auth, "agent-1", &p), Ok(()));
    let bad = Err(HandshakeError::BadProof);
    assert_eq!(
        verify_agent(b"not the key", &B, &auth, "agent-1", &p),
        bad,
        "key"
    );
    assert_eq!(
        verify_agent(KEY, &[6; 32], &auth, "agent-1", &p),
        bad,
        "connection"
    );
    assert_eq!(verify_agent(KEY, &B, &auth, "agent-2", &p), bad, "name");
    // Central's own proof, reflected back, is not an agent proof.
    assert_eq!(
        verify_agent(KEY, &B, &auth, "agent-1", &auth.proof),
        bad,
        "reflection"
    );
    let again = answer_hello(KEY, &B, "central", SUPPORTED_VERSIONS, &hello).unwrap();
    assert_ne!(
        again.challenge, auth.challenge,
        "a fresh challenge each time"
    );
    assert_eq!(
        verify_agent(KEY, &B, &again, "agent-1", &p),
        bad,
        "replayed"
    );
}

#[test]
fn prove_and_verify() {
    let c = new_challenge().unwrap();
    let proof = prove(KEY, &B, &c, "central", 1).unwrap();
    assert_eq!(verify(KEY, &B, &c, "central", 1, &proof), Ok(()));

    let bad = Err(HandshakeError::BadProof);
    assert_eq!(
        verify(b"another key", &B, &c, "central", 1, &proof),
        bad,
        "wrong key"
    );
    let other = new_challenge().unwrap();
    assert_eq!(
        verify(KEY, &B, &other, "central", 1, &proof),
        bad,
        "wrong challenge"
    );
    assert_eq!(verify(KEY, &B, &c, "centrak", 1, &proof), bad, "wrong name");
    assert_eq!(
        verify(KEY, &B, &c, "central", 2, &proof),
        bad,
        "wrong version"
    );
    let mut flipped = proof;
    flipped.0[31] ^= 1;
    assert_eq!(
        verify(KEY, &B, &c, "central", 1, &flipped),
        bad,
        "altered proof"
    );

    assert_eq!(
        prove(b"", &B, &c, "central", 1),
        Err(HandshakeError::EmptyKey)
    );
    assert_eq!(
        verify(b"", &B, &c, "central", 1, &proof),
        Err(HandshakeError::EmptyKey)
    );
}

#[test]
fn negotiate_picks_the_highest_common_version() {
    assert_eq!(negotiate(&[1], &[1]), Some(1));
    assert_eq!(negotiate(&[1, 2, 3], &[3, 2]), Some(3));
    assert_eq!(negotiate(&[1, 2], &[2, 3, 4]), Some(2));
    assert_eq!(negotiate(&[2, 1], &[1]), Some(1));
    assert_eq!(negotiate(&[1], &[2]), None);
    assert_eq!(negotiate(&[], &[1]), None);
    assert_eq!(negotiate(&[1], &[]), None);
    assert_eq!(SUPPORTED_VERSIONS, &[PROTOCOL_VERSION]);
    assert_eq!(PROTOCOL_VERSION, 1);
}

#[test]
fn whole_exchange() {
    let hello = hello();
    assert_eq!(hello.validate(), Ok(()));
    let auth = answer_hello(KEY, &B, "central.example.net", SUPPORTED_VERSIONS, &hello).unwrap();
    assert_eq!(auth.version, 1);
    assert_eq!(check_auth(KEY, &B, &hello, &auth), Ok(1));

    // A Central with another key is refused, and the reason tells the operator what to check.
    let wrong = answer_hello(b"not the key", &B, "central.example.net", &[1], &hello).unwrap();
    let err = check_auth(KEY, &B, &hello, &wrong).unwrap_err();
    assert_eq!(err, HandshakeError::BadProof);
    assert!(err.to_string().contains("same key"));

    // A replayed auth (made for another challenge) is refused.
    let mut later = hello.clone();
    later.challenge = new_challenge().unwrap();
    assert_eq!(
        check_auth(KEY, &B, &later, &auth),
        Err(HandshakeError::BadProof)
    );

    // Central may not pick a version the agent did not offer, even with a good proof.
    let mut auth2 = auth.clone();
    auth2.version = 2;
    auth2.proof = prove(KEY, &B, &hello.challenge, &auth2.central_name, 2).unwrap();
    assert!(matches!(
        check_auth(KEY, &B, &hello, &auth2),
        Err(HandshakeError::VersionNotOffered { chosen: 2, .. })
    ));

    // No common version: Central refuses.
    let mut future = hello.clone();
    future.versions = vec![7, 8];
    let err = answer_hello(KEY, &B, "c", SUPPORTED_VERSIONS, &future).unwrap_err();
    assert!(
        err.to_string().contains("no common protocol version"),
        "{err}"
    );
}

#[test]
fn hello_and_welcome_validation() {
    let mut h = hello();
    h.versions.clear();
    assert!(h.validate().is_err());
    assert_eq!(welcome().validate(), Ok(()));
    let mut w = welcome();
    w.servers.push(ManagedServer {
        name: "ns1".into(),
        kind: ServerKind::PowerDns,
    });
    assert!(w.validate().unwrap_err().to_string().contains("twice"));
    let mut w = welcome();
    w.servers[0].kind = ServerKind::Kea;
    assert!(w.validate().is_err(), "a DHCP server on a DNS-only agent");
    let mut w = welcome();
    w.roles.clear();
    assert!(w.validate().is_err());
    let mut w = welcome();
    w.agent_name.clear();
    assert!(w.validate().is_err());
    assert!(Message::Welcome(welcome()).validate().is_ok());
}

#[test]
fn hello_tells_nothing_of_the_agent() {
    // Sent before Central proves the key: the versions and the challenge, nothing else.
    let json = serde_json::to_value(Message::Hello(hello())).unwrap();
    let mut keys: Vec<_> = json["hello"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["challenge", "versions"]);
}

#[test]
fn challenge_is_hex_on_the_wire() {
    let mut h = hello();
    h.challenge = Challenge([0xab; 32]);
    let json = serde_json::to_value(Message::Hello(h)).unwrap();
    assert_eq!(json["hello"]["challenge"], "ab".repeat(32));
    let mut bad = json.clone();
    bad["hello"]["challenge"] = "abcd".into();
    let err = serde_json::from_value::<Message>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("64 hex digits"), "{err}");
}

proptest! {
    #[test]
    fn proofs_verify_only_with_their_inputs(
        key in vec(any::<u8>(), 1..64),
        other_key in vec(any::<u8>(), 1..64),
        challenge in any::<[u8; 32]>(),
        name in ".{0,20}",
        other_name in ".{0,20}",
        version in any::<u16>(),
    ) {
        let c = Challenge(challenge);
        let proof = prove(&key, &B, &c, &name, version).unwrap();
        prop_assert_eq!(verify(&key, &B, &c, &name, version, &proof), Ok(()));
        // HMAC pads short keys with zeros, so keys that differ only by trailing zeros are the
        // same key.
        let trim = |k: &[u8]| k.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        if other_key[..trim(&other_key)] != key[..trim(&key)] {
            prop_assert!(verify(&other_key, &B, &c, &name, version, &proof).is_err());
        }
        if other_name != name {
            prop_assert!(verify(&key, &B, &c, &other_name, version, &proof).is_err());
        }
        prop_assert!(verify(&key, &B, &c, &name, version.wrapping_add(1), &proof).is_err());
    }
}
