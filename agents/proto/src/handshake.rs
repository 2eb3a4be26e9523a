//! The versioned handshake: `hello` (agent), `auth` (Central), `welcome` or `refused` (agent),
//! and the pure functions both sides use to make and check the two proofs of the shared key.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, HandshakeError, ValidationError};
use crate::net::{hex, parse_hex, serde_as_string};
use crate::validate::{validate_len, validate_name};

/// The newest protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Every protocol version this crate speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];
/// The domain-separation label at the start of every proof's input.
pub const AUTH_LABEL: &[u8] = b"ipam-agent-auth-v1";
/// The most versions a `hello` may offer.
pub const MAX_VERSIONS: usize = 64;
/// The most servers one agent may manage.
pub const MAX_SERVERS: usize = 1_024;

/// What an agent does: DNS, DHCP or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages DNS servers.
    Dns,
    /// Manages DHCP servers.
    Dhcp,
}

/// The kind of a managed server, which tells its driver and its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerKind {
    /// ISC BIND 9 (RFC 2136 updates with TSIG, AXFR, rndc).
    #[serde(rename = "bind")]
    Bind,
    /// PowerDNS Authoritative (HTTP API).
    #[serde(rename = "powerdns")]
    PowerDns,
    /// ISC Kea (control API).
    #[serde(rename = "kea")]
    Kea,
    /// ISC dhcpd (OMAPI, lease file).
    #[serde(rename = "isc_dhcpd")]
    IscDhcpd,
}

impl ServerKind {
    /// Whether this is a DNS or a DHCP server.
    pub fn role(self) -> Role {
        match self {
            ServerKind::Bind | ServerKind::PowerDns => Role::Dns,
            ServerKind::Kea | ServerKind::IscDhcpd => Role::Dhcp,
        }
    }
}

/// A server an agent manages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManagedServer {
    /// The server's name, unique within the agent; requests name it in `server`.
    pub name: String,
    /// Its kind.
    pub kind: ServerKind,
}

/// 32 random bytes the agent sends in `hello`; Central's proof covers them, so a recorded
/// `auth` cannot be replayed. Written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge(pub [u8; 32]);

/// Central's proof of the shared key: HMAC-SHA256 over [`AUTH_LABEL`], the challenge, Central's
/// name and the chosen version (see [`prove`]). Written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proof(pub [u8; 32]);

macro_rules! hex32 {
    ($t:ident, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self)
            }
        }

        impl FromStr for $t {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<$t, ValidationError> {
                parse_hex(s)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map($t)
                    .ok_or_else(|| ValidationError::Malformed {
                        field: $what,
                        value: excerpt(s),
                        reason: "expected 64 hex digits (32 bytes)",
                    })
            }
        }

        serde_as_string!($t, "64 hex digits");
    };
}

hex32!(Challenge, "challenge");
hex32!(Proof, "proof");

/// The agent's first message: what Central needs to prove the key, and nothing that tells
/// who the agent is (its name, roles and servers come in [`Welcome`], to a Central that
/// proved the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol versions the agent speaks.
    pub versions: Vec<u16>,
    /// Fresh random bytes for Central's proof ([`new_challenge`]).
    pub challenge: Challenge,
}

impl Hello {
    /// Checks the list of versions.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.versions.is_empty() {
            return Err(ValidationError::Empty { field: "versions" });
        }
        validate_len("versions", self.versions.len(), MAX_VERSIONS)
    }
}

/// The agent's answer to an `auth` whose proof it accepted: its own proof of the key, and who
/// it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version from `auth`; both sides speak it from now on.
    pub version: u16,
    /// The agent's proof of the key over Central's challenge ([`prove_agent`]).
    pub proof: Proof,
    /// The agent's name (its host name by default), for Central's logs and UI; covered by
    /// the proof.
    pub agent_name: String,
    /// What the agent does.
    pub roles: Vec<Role>,
    /// The servers it manages.
    pub servers: Vec<ManagedServer>,
}

impl Welcome {
    /// Checks the lists' sizes, the names, that server names are unique and that each server's
    /// role is among the agent's roles.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("agent name", &self.agent_name)?;
        if self.roles.is_empty() {
            return Err(ValidationError::Empty { field: "roles" });
        }
        validate_len("roles", self.roles.len(), 2)?;
        validate_len("servers", self.servers.len(), MAX_SERVERS)?;
        let mut names = HashSet::new();
        for server in &self.servers {
            validate_name("server name", &server.name)?;
            if !names.insert(server.name.as_str()) {
                return Err(ValidationError::Duplicate {
                    field: "servers",
                    value: server.name.clone(),
                });
            }
            if !self.roles.contains(&server.kind.role()) {
                return Err(ValidationError::Malformed {
                    field: "servers",
                    value: server.name.clone(),
                    reason: "the server's role (dns or dhcp) is not among the agent's roles",
                });
            }
        }
        Ok(())
    }
}

/// Central's answer to `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// The version chosen ([`negotiate`]); both sides speak it from the agent's `welcome` on.
    pub version: u16,
    /// Central's name, covered by the proof.
    pub central_name: String,
    /// [`prove`] of the shared key.
    pub proof: Proof,
    /// Fresh random bytes for the agent's proof in `welcome` ([`prove_agent`]): the agent
    /// must show it holds the key too.
    pub challenge: Challenge,
}

impl Auth {
    /// Checks Central's name.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("central name", &self.central_name)
    }
}

/// Makes a fresh challenge from the operating system's random number generator.
pub fn new_challenge() -> Result<Challenge, HandshakeError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| HandshakeError::Random)?;
    Ok(Challenge(bytes))
}

/// What ties a proof to one TLS connection: 32 bytes both ends of the connection derive
/// from its keys (RFC 5705 keying material exporter, label [`BINDING_LABEL`], no context).
/// A proof made for one connection is worthless on another, so a machine in the middle
/// cannot relay Central's proof from its connection with Central to its own with the agent.
pub type Binding = [u8; 32];

/// The exporter label of the [`Binding`].
pub const BINDING_LABEL: &[u8] = b"EXPORTER-ipam-agent-auth";

/// The bytes a proof covers: [`AUTH_LABEL`] || binding (32 bytes) || challenge (32 bytes) ||
/// Central's name (UTF-8) || version (2 bytes, little-endian). Only the name varies in
/// length, and it sits between fixed-length parts, so two different inputs never give the
/// same bytes.
fn proof_input(
    binding: &Binding,
    challenge: &Challenge,
    central_name: &str,
    version: u16,
) -> Vec<u8> {
    let mut input = Vec::with_capacity(AUTH_LABEL.len() + 64 + central_name.len() + 2);
    input.extend_from_slice(AUTH_LABEL);
    input.extend_from_slice(binding);
    input.extend_from_slice(&challenge.0);
    input.extend_from_slice(central_name.as_bytes());
    input.extend_from_slice(&version.to_le_bytes());
    input
}

/// Central's proof that it holds `key`: HMAC-SHA256(key, [`AUTH_LABEL`] || binding ||
/// challenge || central_name || version as 2 little-endian bytes). Fails only on an empty key.
pub fn prove(
    key: &[u8],
    binding: &Binding,
    challenge: &Challenge,
    central_name: &str,
    version: u16,
) -> Result<Proof, HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(
        &key,
        &proof_input(binding, challenge, central_name, version),
    );
    let mut proof = [0u8; 32];
    proof.copy_from_slice(tag.as_ref());
    Ok(Proof(proof))
}

/// Checks Central's proof in constant time. Fails with [`HandshakeError::BadProof`] when it
/// was not made with this key, connection, challenge, name and version, and with
/// [`HandshakeError::EmptyKey`] on an empty key (never accepted).
pub fn verify(
    key: &[u8],
    binding: &Binding,
    challenge: &Challenge,
    central_name: &str,
    version: u16,
    proof: &Proof,
) -> Result<(), HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(
        &key,
        &proof_input(binding, challenge, central_name, version),
        &proof.0,
    )
    .map_err(|_| HandshakeError::BadProof)
}

/// The highest version both lists hold, or `None` when they share none.
pub fn negotiate(ours: &[u16], theirs: &[u16]) -> Option<u16> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max()
}

/// Central's side: chooses the version from `hello` and proves the key. Fails when no version
/// is common (Central then sends `refused` and closes) or the key is empty.
pub fn answer_hello(
    key: &[u8],
    binding: &Binding,
    central_name: &str,
    ours: &[u16],
    hello: &Hello,
) -> Result<Auth, HandshakeError> {
    let version =
        negotiate(ours, &hello.versions).ok_or_else(|| HandshakeError::NoCommonVersion {
            ours: ours.to_vec(),
            theirs: hello.versions.clone(),
        })?;
    let proof = prove(key, binding, &hello.challenge, central_name, version)?;
    Ok(Auth {
        version,
        central_name: central_name.to_owned(),
        proof,
        challenge: new_challenge()?,
    })
}

/// The label of the agent's proof, unlike Central's so that neither proof can be reflected
/// back as the other.
pub const WELCOME_LABEL: &[u8] = b"ipam-agent-welcome-v1";

fn agent_input(binding: &Binding, auth: &Auth, agent_name: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(WELCOME_LABEL.len() + 64 + agent_name.len() + 2);
    input.extend_from_slice(WELCOME_LABEL);
    input.extend_from_slice(binding);
    input.extend_from_slice(&auth.challenge.0);
    input.extend_from_slice(agent_name.as_bytes());
    input.extend_from_slice(&auth.version.to_le_bytes());
    input
}

/// The agent's proof that it holds `key`, for [`Welcome`]: HMAC-SHA256(key, [`WELCOME_LABEL`]
/// || binding || Central's challenge from `auth` || agent_name || version as 2 little-endian
/// bytes). Fails only on an empty key.
pub fn prove_agent(
    key: &[u8],
    binding: &Binding,
    auth: &Auth,
    agent_name: &str,
) -> Result<Proof, HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &agent_input(binding, auth, agent_name));
    let mut proof = [0u8; 32];
    proof.copy_from_slice(tag.as_ref());
    Ok(Proof(proof))
}

/// Central's side: checks the agent's proof in `welcome` (constant time). Without it, a
/// server answering at the agent's address could welcome Central without the key.
pub fn verify_agent(
    key: &[u8],
    binding: &Binding,
    auth: &Auth,
    agent_name: &str,
    proof: &Proof,
) -> Result<(), HandshakeError> {
    if key.is_empty() {
        return Err(HandshakeError::EmptyKey);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, &agent_input(binding, auth, agent_name), &proof.0)
        .map_err(|_| HandshakeError::BadProof)
}

/// The agent's side: checks that Central chose a version the agent offered and proved the key
/// over the agent's own challenge. On success the agent sends `welcome` with the returned
/// version; on failure `refused` with the error's text, and closes.
pub fn check_auth(
    key: &[u8],
    binding: &Binding,
    hello: &Hello,
    auth: &Auth,
) -> Result<u16, HandshakeError> {
    if !hello.versions.contains(&auth.version) {
        return Err(HandshakeError::VersionNotOffered {
            chosen: auth.version,
            offered: hello.versions.clone(),
        });
    }
    verify(
        key,
        binding,
        &hello.challenge,
        &auth.central_name,
        auth.version,
        &auth.proof,
    )?;
    Ok(auth.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_matches_an_independent_hmac() {
        // The input layout is part of the protocol: check it byte by byte.
        let challenge = Challenge([7; 32]);
        let mut input = b"ipam-agent-auth-v1".to_vec();
        input.extend([9u8; 32]);
        input.extend([7u8; 32]);
        input.extend(b"central-1");
        input.extend([1, 0]);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let expected = hmac::sign(&key, &input);
        let proof = prove(b"k", &[9; 32], &challenge, "central-1", 1).unwrap();
        assert_eq!(proof.0.as_slice(), expected.as_ref());
    }

    #[test]
    fn challenges_are_fresh_and_print_as_hex() {
        let a = new_challenge().unwrap();
        let b = new_challenge().unwrap();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Challenge>().unwrap(), a);
        assert!("00".parse::<Challenge>().is_err());
    }
}
