//! Framing: a 4-byte little-endian payload length, then the payload, a JSON-encoded [`Message`].

use crate::error::{FrameError, ProtoError};
use crate::message::Message;

/// The default largest payload, in bytes: 16 MiB.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;
/// The length of the prefix before each payload.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Past this capacity, an emptied buffer is shrunk back so that one large frame does not pin
/// its memory for the life of the connection.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Encodes a message as one frame, refusing a payload over [`DEFAULT_MAX_FRAME_LEN`].
pub fn encode(message: &Message) -> Result<Vec<u8>, ProtoError> {
    encode_with_limit(message, DEFAULT_MAX_FRAME_LEN)
}

/// Encodes a message as one frame, refusing a payload over `max_frame_len` bytes with
/// [`FrameError::MessageTooLarge`] (nothing is sent; the caller should send less per message).
pub fn encode_with_limit(message: &Message, max_frame_len: u32) -> Result<Vec<u8>, ProtoError> {
    let mut frame = vec![0u8; LENGTH_PREFIX_LEN];
    serde_json::to_writer(&mut frame, message).map_err(|e| FrameError::Encode {
        message: message.name(),
        detail: e.to_string(),
    })?;
    let len = frame.len() - LENGTH_PREFIX_LEN;
    let prefix = u32::try_from(len)
        .ok()
        .filter(|len| *len <= max_frame_len)
        .ok_or(FrameError::MessageTooLarge {
            message: message.name(),
            len: len as u64,
            max: max_frame_len,
        })?;
    frame[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_le_bytes());
    Ok(frame)
}

/// Decodes one payload (a frame without its length prefix).
pub fn decode_payload(payload: &[u8]) -> Result<Message, ProtoError> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    serde_json::from_slice(payload).map_err(|e| {
        let detail = e.to_string();
        let err = if e.is_data() {
            FrameError::InvalidMessage { len, detail }
        } else {
            FrameError::InvalidJson { len, detail }
        };
        ProtoError::Frame(err)
    })
}

/// Splits a byte stream into messages. Feed it whatever the socket gives with
/// [`push`](FrameDecoder::push) and take complete messages with
/// [`next_message`](FrameDecoder::next_message) until it returns `Ok(None)`.
///
/// It checks each length prefix as soon as its 4 bytes arrive: a frame over the limit fails the
/// decoder without its body ever being buffered (the bytes that follow are dropped). Memory is
/// bounded by the limit plus the bytes pushed since the last complete frame was taken.
///
/// After any error the decoder stays failed: `next_message` returns the same error again and
/// `push` drops its input. The caller logs the error and closes the connection.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_len: u32,
    /// Bytes received and not yet taken; `buf[start..]` is live.
    buf: Vec<u8>,
    /// Where the next frame to take begins.
    start: usize,
    /// Where the next length prefix not yet checked begins. Past `buf.len()` while a frame's
    /// body is still arriving; `buf.len() - scan < 4` when a prefix is partly in.
    scan: usize,
    /// An oversize prefix seen at `buf.len()` (the buffer was cut there): reported once the
    /// frames before it are taken.
    pending: Option<FrameError>,
    /// The error that failed the decoder.
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder that accepts payloads of up to [`DEFAULT_MAX_FRAME_LEN`] bytes.
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder that accepts payloads of up to `max_frame_len` bytes.
    pub fn with_max_frame_len(max_frame_len: u32) -> FrameDecoder {
        FrameDecoder {
            max_frame_len,
            buf: Vec::new(),
            start: 0,
            scan: 0,
            pending: None,
            failed: None,
        }
    }

    /// The largest payload accepted, in bytes.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// How many received bytes are held and not yet returned as messages. Non-zero when the
    /// peer closes means it stopped in the middle of a frame.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the bytes received and not yet returned as messages, to go on with another
    /// decoder (say, with a larger limit once the peer is trusted). `None` when the decoder
    /// has failed or has seen an oversize prefix (then those bytes are not all there).
    pub fn take_buffered(&mut self) -> Option<Vec<u8>> {
        if self.failed.is_some() || self.pending.is_some() {
            return None;
        }
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        Some(rest)
    }

    /// Whether an error has failed the decoder.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Adds received bytes. Never fails: a problem is reported by the next
    /// [`next_message`](FrameDecoder::next_message). Dropped when the decoder has failed or
    /// has seen an oversize prefix.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.failed.is_some() || self.pending.is_some() {
            return;
        }
        self.compact();
        while !data.is_empty() {
            let body_missing = self.scan.saturating_sub(self.buf.len());
            if body_missing > 0 {
                // Inside a body whose prefix was checked: take as much of it as there is.
                let (body, rest) = data.split_at(body_missing.min(data.len()));
                self.buf.extend_from_slice(body);
                data = rest;
                continue;
            }
            // At a prefix, possibly partly received.
            let prefix_have = self.buf.len() - self.scan;
            let (prefix, rest) = data.split_at((LENGTH_PREFIX_LEN - prefix_have).min(data.len()));
            self.buf.extend_from_slice(prefix);
            data = rest;
            if let Some(len) = self.prefix_at(self.scan) {
                if len > self.max_frame_len {
                    self.pending = Some(FrameError::FrameTooLarge {
                        len: u64::from(len),
                        max: self.max_frame_len,
                    });
                    self.buf.truncate(self.scan);
                    return;
                }
                self.scan += LENGTH_PREFIX_LEN + len as usize;
            }
        }
    }

    /// Takes the next complete message. `Ok(None)` means more bytes are needed (a partial
    /// frame is not an error). An error fails the decoder for good: oversize frame, payload
    /// that is not JSON or not a known message.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone().into());
        }
        let Some(len) = self.prefix_at(self.start) else {
            return self.fail_if_pending();
        };
        let body_start = self.start + LENGTH_PREFIX_LEN;
        let body_end = body_start + len as usize;
        let Some(payload) = self.buf.get(body_start..body_end) else {
            return Ok(None);
        };
        let decoded = decode_payload(payload);
        self.start = body_end;
        match decoded {
            Ok(message) => {
                if self.start == self.buf.len() {
                    self.compact();
                }
                Ok(Some(message))
            }
            Err(ProtoError::Frame(err)) => Err(self.fail(err).into()),
            Err(other) => Err(other),
        }
    }

    /// Reports an oversize prefix once every frame before it has been taken.
    fn fail_if_pending(&mut self) -> Result<Option<Message>, ProtoError> {
        if self.start == self.buf.len() {
            if let Some(err) = self.pending.take() {
                return Err(self.fail(err).into());
            }
        }
        Ok(None)
    }

    fn fail(&mut self, err: FrameError) -> FrameError {
        self.failed = Some(err.clone());
        self.buf = Vec::new();
        self.start = 0;
        self.scan = 0;
        err
    }

    /// The length prefix at `at`, when its 4 bytes are in.
    fn prefix_at(&self, at: usize) -> Option<u32> {
        let bytes = self.buf.get(at..at.checked_add(LENGTH_PREFIX_LEN)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// Drops the bytes already taken, and shrinks an emptied buffer that grew large.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.scan -= self.start;
        self.start = 0;
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_bytes_move_to_a_decoder_with_another_limit() {
        let a = encode(&Message::Ping { nonce: 1 }).unwrap();
        let b = encode(&Message::Pong { nonce: 2 }).unwrap();
        let mut d = FrameDecoder::with_max_frame_len(64);
        d.push(&a);
        d.push(&b[..5]);
        assert_eq!(d.next_message(), Ok(Some(Message::Ping { nonce: 1 })));
        let rest = d.take_buffered().unwrap();
        assert_eq!(rest, b[..5]);
        let mut e = FrameDecoder::with_max_frame_len(1 << 20);
        e.push(&rest);
        e.push(&b[5..]);
        assert_eq!(e.next_message(), Ok(Some(Message::Pong { nonce: 2 })));
        let mut f = FrameDecoder::with_max_frame_len(16);
        f.push(&u32::MAX.to_le_bytes());
        assert!(f.take_buffered().is_none(), "not after an oversize prefix");
    }

    fn ping(nonce: u64) -> Message {
        Message::Ping { nonce }
    }

    #[test]
    fn oversize_prefix_fails_before_the_body_is_buffered() {
        let mut d = FrameDecoder::new();
        d.push(&u32::MAX.to_le_bytes());
        d.push(&[b'{'; 1000]);
        assert_eq!(d.buf.len(), 0, "neither the prefix nor the body is kept");
        assert!(d.buf.capacity() < 1024);
        let err = d.next_message().unwrap_err();
        assert_eq!(
            err,
            ProtoError::Frame(FrameError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: DEFAULT_MAX_FRAME_LEN
            })
        );
        assert!(err.to_string().contains("over the limit of 16777216 bytes"));
        assert!(d.is_failed());
        d.push(&encode(&ping(1)).unwrap());
        assert_eq!(d.next_message(), Err(err), "stays failed");
    }

    #[test]
    fn frames_before_an_oversize_prefix_are_still_delivered() {
        let mut bytes = encode(&ping(1)).unwrap();
        bytes.extend_from_slice(&encode(&ping(2)).unwrap());
        bytes.extend_from_slice(&(DEFAULT_MAX_FRAME_LEN + 1).to_le_bytes());
        bytes.extend_from_slice(b"garbage that is never buffered");
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_message(), Ok(Some(ping(1))));
        assert_eq!(d.next_message(), Ok(Some(ping(2))));
        assert!(matches!(
            d.next_message(),
            Err(ProtoError::Frame(FrameError::FrameTooLarge { .. }))
        ));
    }

    #[test]
    fn buffer_is_compacted_and_shrunk() {
        let big = Message::Refused {
            reason: "x".repeat(200_000),
        };
        let mut d = FrameDecoder::new();
        d.push(&encode(&big).unwrap());
        assert_eq!(d.next_message(), Ok(Some(big)));
        assert_eq!(d.buffered_len(), 0);
        assert!(d.buf.capacity() <= KEEP_CAPACITY);
        let frame = encode(&ping(3)).unwrap();
        d.push(&frame[..5]);
        assert_eq!(d.next_message(), Ok(None));
        d.push(&frame[5..]);
        assert_eq!(d.next_message(), Ok(Some(ping(3))));
        assert_eq!((d.buf.len(), d.start, d.scan), (0, 0, 0));
    }
}
