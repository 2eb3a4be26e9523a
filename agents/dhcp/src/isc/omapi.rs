//! A minimal OMAPI client (ISC dhcpd's Object Management API, TCP port 7911 by default), enough
//! to open, create and delete `host` objects, authenticated with an HMAC-SHA256 key.
//!
//! # Wire format
//!
//! OMAPI is ISC's own protocol and, unlike our formats, **big-endian** (network order)
//! throughout. Both sides first send an 8-byte introduction: protocol version (u32, 100) and
//! header size (u32, 24). Then each message is:
//!
//! ```text
//! authid u32 | authlen u32 | op u32 | handle u32 | id u32 | rid u32     (24-byte header)
//! message values: { name_len u16, name, value_len u32, value }* , u16 0
//! object values:  { name_len u16, name, value_len u32, value }* , u16 0
//! signature: authlen bytes
//! ```
//!
//! `op` is 1 open, 2 refresh, 3 update, 4 notify, 5 status, 6 delete. `rid` in an answer is the
//! `id` of the request it answers. Integers in values (`create`, `hardware-type`) are u32.
//!
//! Authentication: the client opens an object of type `authenticator` whose object values are
//! the key's `name` and `algorithm` (`hmac-sha256.SIG-ALG.REG.INT.`), unsigned. dhcpd answers
//! with an update whose `handle` is the authenticator id. Every later message carries that id in
//! `authid`, `authlen` = 32, and the signature HMAC-SHA256(secret, every byte from `authlen` to
//! the end of the object values). dhcpd checks it (a bad one is answered with status
//! `DHCP_R_INVALIDKEY`) and signs its answers the same way; this client accepts a successful
//! answer to a signed request only when its signature verifies. Failure statuses are reported
//! whether signed or not, since they change nothing.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ring::hmac;

/// OMAPI protocol version.
const PROTOCOL_VERSION: u32 = 100;
/// Size of the message header this client sends.
const HEADER_SIZE: u32 = 24;
/// The algorithm name on the wire.
pub(crate) const HMAC_SHA256: &str = "hmac-sha256.SIG-ALG.REG.INT.";
/// HMAC-SHA256 output length.
const SIGNATURE_LEN: u32 = 32;

/// Open (look up, optionally create) an object.
pub(crate) const OP_OPEN: u32 = 1;
/// An object's values (the answer to open).
pub(crate) const OP_UPDATE: u32 = 3;
/// The outcome of a request: value `result` (u32) and maybe `message`.
pub(crate) const OP_STATUS: u32 = 5;
/// Delete the object with the given handle.
pub(crate) const OP_DELETE: u32 = 6;

/// ISC result codes dhcpd sends in status messages.
pub(crate) const ISC_R_EXISTS: u32 = 18;
/// The object was not found.
pub(crate) const ISC_R_NOTFOUND: u32 = 23;
/// DHCP-specific results are offset by this class (`ISC_RESULTCLASS_DHCP`).
const DHCP_RESULT_CLASS: u32 = 6 << 16;
/// The authenticator id of a message is unknown to dhcpd.
pub(crate) const DHCP_R_KEY_UNKNOWN: u32 = DHCP_RESULT_CLASS + 10;
/// A message's signature does not verify with the key: the secret is wrong.
pub(crate) const DHCP_R_INVALIDKEY: u32 = DHCP_RESULT_CLASS + 11;

/// Bounds on what the server may send.
const MAX_VALUE_LEN: u32 = 1024 * 1024;
const MAX_VALUES: usize = 1024;
const MAX_AUTH_LEN: u32 = 64;
const MAX_HEADER_SIZE: u32 = 1024;
/// Messages skipped while waiting for the answer to a request.
const MAX_SKIPPED: usize = 16;

/// One OMAPI message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub authid: u32,
    pub op: u32,
    pub handle: u32,
    pub id: u32,
    pub rid: u32,
    /// Values about the message itself (`type`, `create`, `result`).
    pub message: Vec<(String, Vec<u8>)>,
    /// The object's values (`name`, `hardware-address`).
    pub object: Vec<(String, Vec<u8>)>,
    pub signature: Vec<u8>,
}

impl Message {
    /// A message value.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        find(&self.message, name)
    }

    /// An object value.
    #[cfg(test)]
    pub fn object_value(&self, name: &str) -> Option<&[u8]> {
        find(&self.object, name)
    }

    /// The bytes covered by the signature: from `authlen` to the end of the object values.
    fn signed_part(&self, authlen: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        for n in [authlen, self.op, self.handle, self.id, self.rid] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        for list in [&self.message, &self.object] {
            for (name, value) in list {
                let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&name_len.to_be_bytes());
                out.extend_from_slice(
                    name.as_bytes()
                        .get(..usize::from(name_len))
                        .unwrap_or_default(),
                );
                let value_len = u32::try_from(value.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&value_len.to_be_bytes());
                out.extend_from_slice(value);
            }
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        out
    }

    /// The message on the wire, signed with `key` when given (then `authid` must be the
    /// authenticator's id).
    pub fn encode(&self, key: Option<&hmac::Key>) -> Vec<u8> {
        let authlen = if key.is_some() { SIGNATURE_LEN } else { 0 };
        let signed = self.signed_part(authlen);
        let mut out = Vec::with_capacity(signed.len() + 36);
        out.extend_from_slice(&self.authid.to_be_bytes());
        out.extend_from_slice(&signed);
        if let Some(key) = key {
            out.extend_from_slice(hmac::sign(key, &signed).as_ref());
        }
        out
    }
}

fn find<'a>(list: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// A u32 value as OMAPI writes integers.
pub(crate) fn int_value(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Why an OMAPI exchange failed.
#[derive(Debug)]
pub(crate) enum OmapiError {
    /// The TCP connection could not be made.
    Connect(std::io::Error),
    /// The connection failed while talking (includes timeouts).
    Io(std::io::Error),
    /// The server closed the connection. `after_signed` tells whether a signed message had been
    /// sent, which is how dhcpd reacts to a wrong key.
    Closed { after_signed: bool },
    /// The server broke the protocol.
    Protocol(String),
    /// The server answered a request with a failure status.
    Status {
        result: u32,
        message: Option<String>,
    },
    /// A signed answer's signature does not match the key.
    BadSignature,
}

impl std::fmt::Display for OmapiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OmapiError::Connect(err) => write!(f, "connecting: {err}"),
            OmapiError::Io(err) => write!(f, "{err}"),
            OmapiError::Closed { .. } => f.write_str("the server closed the connection"),
            OmapiError::Protocol(detail) => f.write_str(detail),
            OmapiError::Status { result, message } => match message {
                Some(message) => write!(f, "dhcpd answered \"{message}\" (result {result})"),
                None => write!(f, "dhcpd answered result {result}"),
            },
            OmapiError::BadSignature => f.write_str("an answer's signature does not match the key"),
        }
    }
}

fn read_exact(
    stream: &mut impl Read,
    buf: &mut [u8],
    after_signed: bool,
) -> Result<(), OmapiError> {
    stream.read_exact(buf).map_err(|err| match err.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => OmapiError::Closed { after_signed },
        _ => OmapiError::Io(err),
    })
}

fn read_u32(
    stream: &mut impl Read,
    raw: &mut Vec<u8>,
    after_signed: bool,
) -> Result<u32, OmapiError> {
    let mut b = [0u8; 4];
    read_exact(stream, &mut b, after_signed)?;
    raw.extend_from_slice(&b);
    Ok(u32::from_be_bytes(b))
}

fn read_values(
    stream: &mut impl Read,
    raw: &mut Vec<u8>,
    after_signed: bool,
) -> Result<Vec<(String, Vec<u8>)>, OmapiError> {
    let mut out = Vec::new();
    loop {
        let mut b = [0u8; 2];
        read_exact(stream, &mut b, after_signed)?;
        raw.extend_from_slice(&b);
        let name_len = u16::from_be_bytes(b);
        if name_len == 0 {
            return Ok(out);
        }
        if out.len() >= MAX_VALUES {
            return Err(OmapiError::Protocol(format!(
                "a message holds more than {MAX_VALUES} values"
            )));
        }
        let mut name = vec![0u8; usize::from(name_len)];
        read_exact(stream, &mut name, after_signed)?;
        raw.extend_from_slice(&name);
        let value_len = read_u32(stream, raw, after_signed)?;
        if value_len > MAX_VALUE_LEN {
            return Err(OmapiError::Protocol(format!(
                "a value of {value_len} bytes is over the limit of {MAX_VALUE_LEN}"
            )));
        }
        let mut value = vec![0u8; usize::try_from(value_len).unwrap_or_default()];
        read_exact(stream, &mut value, after_signed)?;
        raw.extend_from_slice(&value);
        out.push((String::from_utf8_lossy(&name).into_owned(), value));
    }
}

/// Reads one message; returns it with the bytes its signature covers.
fn read_message(
    stream: &mut impl Read,
    header_size: u32,
    after_signed: bool,
) -> Result<(Message, Vec<u8>), OmapiError> {
    let mut first = [0u8; 4];
    read_exact(stream, &mut first, after_signed)?;
    let authid = u32::from_be_bytes(first);
    let mut raw = Vec::with_capacity(128);
    let authlen = read_u32(stream, &mut raw, after_signed)?;
    if authlen > MAX_AUTH_LEN {
        return Err(OmapiError::Protocol(format!(
            "a signature of {authlen} bytes is over the limit of {MAX_AUTH_LEN}"
        )));
    }
    let op = read_u32(stream, &mut raw, after_signed)?;
    let handle = read_u32(stream, &mut raw, after_signed)?;
    let id = read_u32(stream, &mut raw, after_signed)?;
    let rid = read_u32(stream, &mut raw, after_signed)?;
    if header_size > HEADER_SIZE {
        let mut extra = vec![0u8; usize::try_from(header_size - HEADER_SIZE).unwrap_or_default()];
        read_exact(stream, &mut extra, after_signed)?;
        raw.extend_from_slice(&extra);
    }
    let message = read_values(stream, &mut raw, after_signed)?;
    let object = read_values(stream, &mut raw, after_signed)?;
    let mut signature = vec![0u8; usize::try_from(authlen).unwrap_or_default()];
    read_exact(stream, &mut signature, after_signed)?;
    Ok((
        Message {
            authid,
            op,
            handle,
            id,
            rid,
            message,
            object,
            signature,
        },
        raw,
    ))
}

/// An authenticated OMAPI connection.
pub(crate) struct Client {
    stream: TcpStream,
    key: hmac::Key,
    authid: u32,
    header_size: u32,
    next_id: u32,
    signed_sent: bool,
}

impl Client {
    /// Connects to `addr`, exchanges introductions and opens the authenticator for the key
    /// `key_name` with `secret`. Every read and write waits at most `timeout`.
    pub fn connect(
        addr: &str,
        key_name: &str,
        secret: &[u8],
        timeout: Duration,
    ) -> Result<Client, OmapiError> {
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(OmapiError::Connect)?
            .collect();
        let mut last_err = None;
        let mut stream = None;
        for sa in &addrs {
            match TcpStream::connect_timeout(sa, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(err) => last_err = Some(err),
            }
        }
        let stream = stream.ok_or_else(|| {
            OmapiError::Connect(last_err.unwrap_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the address resolves to nothing",
                )
            }))
        })?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(OmapiError::Io)?;
        let mut client = Client {
            stream,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            authid: 0,
            header_size: HEADER_SIZE,
            next_id: 1,
            signed_sent: false,
        };
        client.introduce()?;
        client.authenticate(key_name)?;
        Ok(client)
    }

    fn introduce(&mut self) -> Result<(), OmapiError> {
        let mut intro = Vec::with_capacity(8);
        intro.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        intro.extend_from_slice(&HEADER_SIZE.to_be_bytes());
        self.write(&intro)?;
        let mut answer = [0u8; 8];
        read_exact(&mut self.stream, &mut answer, false)?;
        let (version, size) = answer.split_at(4);
        let version = u32::from_be_bytes(version.try_into().unwrap_or_default());
        let size = u32::from_be_bytes(size.try_into().unwrap_or_default());
        if version != PROTOCOL_VERSION {
            return Err(OmapiError::Protocol(format!(
                "the server speaks OMAPI version {version}, this client {PROTOCOL_VERSION}"
            )));
        }
        if !(HEADER_SIZE..=MAX_HEADER_SIZE).contains(&size) {
            return Err(OmapiError::Protocol(format!(
                "the server announced a header size of {size} bytes"
            )));
        }
        self.header_size = size;
        Ok(())
    }

    fn authenticate(&mut self, key_name: &str) -> Result<(), OmapiError> {
        let open = Message {
            op: OP_OPEN,
            message: vec![("type".into(), b"authenticator".to_vec())],
            object: vec![
                ("name".into(), key_name.as_bytes().to_vec()),
                ("algorithm".into(), HMAC_SHA256.as_bytes().to_vec()),
            ],
            ..Message::default()
        };
        let answer = self.request(open, false)?;
        if answer.handle == 0 {
            return Err(OmapiError::Protocol(
                "the server opened the authenticator with handle 0".into(),
            ));
        }
        self.authid = answer.handle;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), OmapiError> {
        let after_signed = self.signed_sent;
        self.stream
            .write_all(bytes)
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    OmapiError::Closed { after_signed }
                }
                _ => OmapiError::Io(err),
            })
    }

    /// Sends `message` (signed when `signed`) and returns the answer to it: an update, or
    /// [`OmapiError::Status`] for a failure status. A success status is returned as is.
    fn request(&mut self, mut message: Message, signed: bool) -> Result<Message, OmapiError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        message.id = id;
        message.authid = if signed { self.authid } else { 0 };
        let bytes = message.encode(signed.then_some(&self.key));
        self.write(&bytes)?;
        if signed {
            self.signed_sent = true;
        }
        for _ in 0..MAX_SKIPPED {
            let (answer, raw) = read_message(&mut self.stream, self.header_size, self.signed_sent)?;
            if answer.rid != id {
                continue;
            }
            // A failure is reported as such, signed or not: it changes nothing.
            if answer.op == OP_STATUS {
                let result = answer
                    .value("result")
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map_or(u32::MAX, u32::from_be_bytes);
                if result != 0 {
                    return Err(OmapiError::Status {
                        result,
                        message: answer
                            .value("message")
                            .map(|m| String::from_utf8_lossy(m).trim_end_matches('\0').to_owned()),
                    });
                }
            }
            // dhcpd signs its answers to signed requests: a success must carry our signature.
            if signed {
                if answer.authid != self.authid {
                    return Err(OmapiError::BadSignature);
                }
                hmac::verify(&self.key, &raw, &answer.signature)
                    .map_err(|_| OmapiError::BadSignature)?;
            }
            return Ok(answer);
        }
        Err(OmapiError::Protocol(format!(
            "no answer to request {id} among {MAX_SKIPPED} messages"
        )))
    }

    /// Opens an object of `kind` (`host`) matching `object` values, creating it when `create`
    /// (failing with ISC_R_EXISTS if it exists, since creation is exclusive). Returns the
    /// server's update: the object's handle and values.
    pub fn open(
        &mut self,
        kind: &str,
        object: Vec<(String, Vec<u8>)>,
        create: bool,
    ) -> Result<Message, OmapiError> {
        let mut message = vec![("type".to_owned(), kind.as_bytes().to_vec())];
        if create {
            message.push(("create".into(), int_value(1)));
            message.push(("exclusive".into(), int_value(1)));
        }
        let answer = self.request(
            Message {
                op: OP_OPEN,
                message,
                object,
                ..Message::default()
            },
            true,
        )?;
        if answer.op != OP_UPDATE {
            return Err(OmapiError::Protocol(format!(
                "expected an update in answer to open, got op {}",
                answer.op
            )));
        }
        Ok(answer)
    }

    /// Deletes the object with `handle` (from [`Client::open`]).
    pub fn delete(&mut self, handle: u32) -> Result<(), OmapiError> {
        let answer = self.request(
            Message {
                op: OP_DELETE,
                handle,
                ..Message::default()
            },
            true,
        )?;
        if answer.op != OP_STATUS {
            return Err(OmapiError::Protocol(format!(
                "expected a status in answer to delete, got op {}",
                answer.op
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_read_round_trip_and_signature() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        let message = Message {
            authid: 7,
            op: OP_OPEN,
            handle: 0,
            id: 42,
            rid: 0,
            message: vec![
                ("type".into(), b"host".to_vec()),
                ("create".into(), int_value(1)),
            ],
            object: vec![
                ("hardware-address".into(), vec![2, 0, 0, 0, 0, 0x77]),
                ("hardware-type".into(), int_value(1)),
            ],
            signature: Vec::new(),
        };
        let bytes = message.encode(Some(&key));
        assert_eq!(bytes.get(..4), Some(&[0, 0, 0, 7][..]), "big-endian authid");
        assert_eq!(bytes.get(4..8), Some(&[0, 0, 0, 32][..]), "authlen 32");
        let (back, raw) = read_message(&mut bytes.as_slice(), HEADER_SIZE, false).unwrap();
        assert!(hmac::verify(&key, &raw, &back.signature).is_ok());
        assert_eq!(back.signature.len(), 32);
        assert_eq!(
            Message {
                signature: Vec::new(),
                ..back.clone()
            },
            message
        );
        assert_eq!(back.value("type"), Some(&b"host"[..]));
        assert_eq!(back.object_value("hardware-type"), Some(&[0, 0, 0, 1][..]));
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other");
        assert!(hmac::verify(&other, &raw, &back.signature).is_err());

        let unsigned = Message {
            authid: 0,
            ..message
        }
        .encode(None);
        let (back, _) = read_message(&mut unsigned.as_slice(), HEADER_SIZE, false).unwrap();
        assert!(back.signature.is_empty());
    }

    /// A fake dhcpd that authenticates the client, then answers its first signed request with
    /// an update signed by `answer_key` (unsigned when `None`).
    fn fake_server(answer_key: Option<&'static [u8]>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut intro = [0u8; 8];
            stream.read_exact(&mut intro).unwrap();
            stream.write_all(&intro).unwrap();
            let (auth, _) = read_message(&mut stream, HEADER_SIZE, false).unwrap();
            assert_eq!(auth.value("type"), Some(&b"authenticator"[..]));
            let update = Message {
                op: OP_UPDATE,
                handle: 5,
                rid: auth.id,
                ..Message::default()
            };
            stream.write_all(&update.encode(None)).unwrap();
            let (open, raw) = read_message(&mut stream, HEADER_SIZE, true).unwrap();
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"right");
            assert_eq!(open.authid, 5);
            assert!(hmac::verify(&key, &raw, &open.signature).is_ok());
            let answer = Message {
                authid: if answer_key.is_some() { 5 } else { 0 },
                op: OP_UPDATE,
                handle: 9,
                rid: open.id,
                ..Message::default()
            };
            let signer = answer_key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, k));
            stream.write_all(&answer.encode(signer.as_ref())).unwrap();
        });
        addr
    }

    #[test]
    fn successful_answers_must_be_signed() {
        let timeout = Duration::from_secs(5);
        let open = |addr: &str| {
            Client::connect(addr, "k", b"right", timeout).unwrap().open(
                "host",
                vec![("name".into(), b"h".to_vec())],
                false,
            )
        };
        assert_eq!(open(&fake_server(Some(b"right"))).unwrap().handle, 9);
        assert!(matches!(
            open(&fake_server(Some(b"wrong"))),
            Err(OmapiError::BadSignature)
        ));
        assert!(matches!(
            open(&fake_server(None)),
            Err(OmapiError::BadSignature)
        ));
    }

    #[test]
    fn truncated_and_oversized_input_is_refused() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let bytes = Message {
            op: OP_STATUS,
            message: vec![("result".into(), int_value(23))],
            ..Message::default()
        }
        .encode(Some(&key));
        for cut in 0..bytes.len() {
            let short = bytes.get(..cut).unwrap();
            assert!(matches!(
                read_message(&mut &short[..], HEADER_SIZE, true),
                Err(OmapiError::Closed { after_signed: true })
            ));
        }
        let mut huge = vec![0u8; 24];
        huge[4..8].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            read_message(&mut huge.as_slice(), HEADER_SIZE, false),
            Err(OmapiError::Protocol(_))
        ));
        let mut big_value = vec![0u8; 24];
        big_value.extend_from_slice(&1u16.to_be_bytes());
        big_value.push(b'x');
        big_value.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_message(&mut big_value.as_slice(), HEADER_SIZE, false),
            Err(OmapiError::Protocol(_))
        ));
    }
}
