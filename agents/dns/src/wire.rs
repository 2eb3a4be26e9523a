//! DNS over TCP with TSIG, blocking: signed queries, AXFR and RFC 2136 UPDATE.
//!
//! Every request is signed with the configured key and every answer's signature is checked
//! (an AXFR's messages as a chain, RFC 8945 section 5.3.1). Messages are framed with the
//! two-byte length of RFC 1035 section 4.2.2, so one message is at most 65,535 bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::error::{io_error, DnsError};

/// The largest DNS message over TCP.
pub(crate) const MAX_MESSAGE_LEN: usize = 65_535;

/// A DNS endpoint and how to report on it.
pub(crate) struct DnsEndpoint<'a> {
    /// The server's configured name, for errors.
    pub server: &'a str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// The key that signs every request.
    pub signer: &'a TSigner,
}

impl DnsEndpoint<'_> {
    fn label(&self) -> String {
        format!("DNS {}", self.addr)
    }

    fn io(&self, action: &str, err: &std::io::Error) -> DnsError {
        io_error(self.server, action, &self.label(), self.timeout, err)
    }

    fn protocol(&self, action: &str, detail: impl Into<String>) -> DnsError {
        DnsError::Protocol {
            server: self.server.to_owned(),
            action: action.to_owned(),
            endpoint: self.label(),
            detail: detail.into(),
        }
    }

    /// Opens a TCP connection with the timeouts set.
    pub(crate) fn connect(&self, action: &str) -> Result<Connection<'_>, DnsError> {
        let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
            .map_err(|e| self.io(action, &e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| self.io(action, &e))?;
        Ok(Connection { ep: self, stream })
    }
}

/// One TCP connection to a DNS server; several messages may go over it in turn.
pub(crate) struct Connection<'a> {
    ep: &'a DnsEndpoint<'a>,
    stream: TcpStream,
}

/// What the caller asked, to word errors (`update of zone example.com`).
pub(crate) struct Ask<'a> {
    /// The action, for messages.
    pub action: &'a str,
    /// The zone, for not-found errors.
    pub zone: &'a str,
    /// What REFUSED means for this request, with the likely fix.
    pub refused_hint: &'a str,
}

impl Connection<'_> {
    /// Signs and sends a message; returns the verifier of its answers.
    fn send(&mut self, mut message: Message, ask: &Ask<'_>) -> Result<Sent, DnsError> {
        let verifier = message
            .finalize(self.ep.signer, unix_now())
            .map_err(|e| {
                self.ep
                    .protocol(ask.action, format!("signing the request: {e}"))
            })?
            .ok_or_else(|| self.ep.protocol(ask.action, "signing gave no verifier"))?;
        let bytes = message.to_vec().map_err(|e| {
            self.ep
                .protocol(ask.action, format!("encoding the request: {e}"))
        })?;
        let len = u16::try_from(bytes.len()).map_err(|_| DnsError::Invalid {
            server: self.ep.server.to_owned(),
            action: ask.action.to_owned(),
            reason: format!(
                "the DNS message is {} bytes, over the limit of {MAX_MESSAGE_LEN}",
                bytes.len()
            ),
        })?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        self.stream
            .write_all(&framed)
            .map_err(|e| self.ep.io(ask.action, &e))?;
        Ok(Sent {
            id: message.metadata.id,
            verifier,
        })
    }

    /// Reads one framed message.
    fn recv(&mut self, action: &str) -> Result<Vec<u8>, DnsError> {
        let mut len = [0u8; 2];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| self.ep.io(action, &e))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| self.ep.io(action, &e))?;
        Ok(buf)
    }

    /// Reads the next answer to `sent`, checks its id, TSIG and response code.
    fn answer(&mut self, sent: &mut Sent, ask: &Ask<'_>) -> Result<Message, DnsError> {
        let bytes = self.recv(ask.action)?;
        let message = Message::from_vec(&bytes).map_err(|e| {
            self.ep
                .protocol(ask.action, format!("malformed answer: {e}"))
        })?;
        if message.metadata.id != sent.id {
            return Err(self.ep.protocol(
                ask.action,
                format!(
                    "answer id {} for request id {}",
                    message.metadata.id, sent.id
                ),
            ));
        }
        if let Some(error) = message.signature().and_then(|sig| sig.data.error) {
            return Err(self.tsig_refused(ask, error));
        }
        let rcode = message.metadata.response_code;
        if rcode != ResponseCode::NoError {
            return Err(self.rcode_error(rcode, ask));
        }
        if message.signature().is_none() {
            return Err(self.ep.protocol(
                ask.action,
                "the answer is not TSIG-signed, so it cannot be trusted",
            ));
        }
        sent.verifier.verify(&bytes).map_err(|e| {
            self.ep.protocol(
                ask.action,
                format!(
                    "the answer's TSIG signature does not verify with key {} ({e})",
                    self.ep.signer.signer_name()
                ),
            )
        })?;
        Ok(message)
    }

    fn tsig_refused(&self, ask: &Ask<'_>, error: TsigError) -> DnsError {
        let why = match error {
            TsigError::BadSig => "BADSIG: the key's secret differs from the server's",
            TsigError::BadKey => "BADKEY: the server does not know this key name or algorithm",
            TsigError::BadTime => "BADTIME: the clocks of the agent and the server differ",
            TsigError::BadTrunc => "BADTRUNC: truncated signature",
            TsigError::Unknown(_) => "unknown TSIG error",
        };
        DnsError::Refused {
            server: self.ep.server.to_owned(),
            action: ask.action.to_owned(),
            reason: format!(
                "the server rejected TSIG key {} ({why})",
                self.ep.signer.signer_name()
            ),
        }
    }

    fn rcode_error(&self, rcode: ResponseCode, ask: &Ask<'_>) -> DnsError {
        let server = self.ep.server.to_owned();
        let action = ask.action.to_owned();
        match rcode {
            ResponseCode::NotAuth | ResponseCode::NXDomain => DnsError::NotFound {
                server,
                zone: ask.zone.to_owned(),
                action: format!("{action}: the server is not authoritative for it ({rcode})"),
            },
            ResponseCode::Refused => DnsError::Refused {
                server,
                action,
                reason: format!("REFUSED: {}", ask.refused_hint),
            },
            ResponseCode::NotZone => DnsError::Invalid {
                server,
                action,
                reason: format!("NOTZONE: a record name is outside zone {}", ask.zone),
            },
            ResponseCode::FormErr => DnsError::Invalid {
                server,
                action,
                reason: "FORMERR: the server could not parse the request".into(),
            },
            ResponseCode::YXDomain | ResponseCode::YXRRSet | ResponseCode::NXRRSet => {
                DnsError::Refused {
                    server,
                    action,
                    reason: format!("a prerequisite failed ({rcode})"),
                }
            }
            ResponseCode::ServFail => DnsError::ServerFailure {
                server,
                action,
                reason: format!(
                    "SERVFAIL: the server cannot serve zone {} (a secondary that has not \
                     transferred it yet, or a zone that did not load: see the server's log)",
                    ask.zone
                ),
            },
            other => DnsError::ServerFailure {
                server,
                action,
                reason: format!("the server answered {other}"),
            },
        }
    }

    /// Sends one request and returns its single answer.
    pub(crate) fn exchange(
        &mut self,
        message: Message,
        ask: &Ask<'_>,
    ) -> Result<Message, DnsError> {
        let mut sent = self.send(message, ask)?;
        self.answer(&mut sent, ask)
    }

    /// Transfers a zone (AXFR): every record, the SOA first, without the closing SOA.
    pub(crate) fn axfr(&mut self, zone: &Name, ask: &Ask<'_>) -> Result<Vec<Record>, DnsError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(query(zone.clone(), RecordType::AXFR));
        let mut sent = self.send(message, ask)?;
        let mut records = Vec::new();
        loop {
            let answer = self.answer(&mut sent, ask)?;
            for record in answer.answers {
                let is_soa = record.record_type() == RecordType::SOA;
                if records.is_empty() && !is_soa {
                    return Err(self.ep.protocol(
                        ask.action,
                        format!(
                            "the transfer starts with {} instead of SOA",
                            record.record_type()
                        ),
                    ));
                }
                if is_soa && !records.is_empty() {
                    return Ok(records);
                }
                records.push(record);
            }
        }
    }

    /// Reads the zone's SOA serial.
    pub(crate) fn soa_serial(&mut self, zone: &Name, ask: &Ask<'_>) -> Result<u32, DnsError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(query(zone.clone(), RecordType::SOA));
        let answer = self.exchange(message, ask)?;
        answer
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
            .ok_or_else(|| {
                self.ep
                    .protocol(ask.action, "the SOA answer holds no SOA record")
            })
    }

    /// Sends an UPDATE of `zone` with these update-section records, in order.
    pub(crate) fn update(
        &mut self,
        zone: &Name,
        records: Vec<Record>,
        ask: &Ask<'_>,
    ) -> Result<(), DnsError> {
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_query(query(zone.clone(), RecordType::SOA));
        message.add_authorities(records);
        self.exchange(message, ask).map(|_| ())
    }
}

/// A request in flight.
struct Sent {
    id: u16,
    verifier: TSigVerifier,
}

fn query(name: Name, rtype: RecordType) -> Query {
    let mut q = Query::new();
    q.set_name(name)
        .set_query_type(rtype)
        .set_query_class(DNSClass::IN);
    q
}

/// Seconds since the Unix epoch, for TSIG.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The encoded size of a record without name compression (an upper bound of its size in a
/// message).
pub(crate) fn encoded_len(record: &Record) -> Result<usize, String> {
    let mut buf = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut buf);
    record.emit(&mut encoder).map_err(|e| {
        format!(
            "record {} {} cannot be encoded: {e}",
            record.name,
            record.record_type()
        )
    })?;
    Ok(buf.len())
}

/// Bytes of a message besides its update records: header (12), zone section (name + 4) and
/// the TSIG record (key name, algorithm name, 16 bytes of fields, a MAC of up to 64 bytes).
pub(crate) fn update_overhead(zone: &Name, signer: &TSigner) -> usize {
    let name_len = |n: &Name| n.len() + 2;
    12 + name_len(zone) + 4 + name_len(signer.signer_name()) + 10 + 32 + 16 + 64
}

/// Splits update records into groups whose messages stay within `limit` bytes; keeps order.
/// Fails when one record alone does not fit.
pub(crate) fn split_by_size(
    records: Vec<Record>,
    overhead: usize,
    limit: usize,
) -> Result<Vec<Vec<Record>>, String> {
    let budget = limit.saturating_sub(overhead);
    let mut groups = Vec::new();
    let mut current = Vec::new();
    let mut used = 0usize;
    for record in records {
        let len = encoded_len(&record)?;
        if len > budget {
            return Err(format!(
                "record {} {} is {len} bytes, more than fits in one DNS message ({budget} bytes \
                 left of {limit})",
                record.name,
                record.record_type()
            ));
        }
        // The header counts records in 16 bits.
        if used + len > budget || current.len() == usize::from(u16::MAX) {
            groups.push(std::mem::take(&mut current));
            used = 0;
        }
        used += len;
        current.push(record);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::rdata::A;

    #[test]
    fn batches_split_under_the_limit_in_order() {
        let zone = Name::from_ascii("bulk.test.").unwrap();
        let signer = TSigner::new(
            vec![1; 32],
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("k.").unwrap(),
            300,
        )
        .unwrap();
        let records: Vec<Record> = (0..5000u32)
            .map(|i| {
                let name = Name::from_ascii(format!("host-{i:05}.bulk.test.")).unwrap();
                Record::from_rdata(name, 300, RData::A(A::from(std::net::Ipv4Addr::from(i))))
            })
            .collect();
        let overhead = update_overhead(&zone, &signer);
        let groups = split_by_size(records.clone(), overhead, MAX_MESSAGE_LEN).unwrap();
        assert!(groups.len() > 1);
        assert_eq!(groups.concat(), records);
        for group in &groups {
            let mut m = Message::query();
            m.metadata.op_code = OpCode::Update;
            m.add_query(query(zone.clone(), RecordType::SOA));
            m.add_authorities(group.clone());
            m.finalize(&signer, 1_700_000_000).unwrap();
            assert!(m.to_vec().unwrap().len() <= MAX_MESSAGE_LEN);
        }
        let err = split_by_size(records, overhead, 100).unwrap_err();
        assert!(err.contains("more than fits"), "{err}");
    }
}
