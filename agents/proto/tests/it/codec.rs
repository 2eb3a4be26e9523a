//! Framing and JSON: round trips, chunking, limits, garbage.

use ipam_agent_proto::{
    decode_payload, encode, encode_with_limit, FrameDecoder, FrameError, Message, ProtoError,
    DEFAULT_MAX_FRAME_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::strategies::message;

/// Feeds `bytes` cut into chunks of the given sizes (cycled; 0 means an empty push), taking
/// messages after every push. Stops at the first error.
fn feed(
    decoder: &mut FrameDecoder,
    bytes: &[u8],
    chunks: &[usize],
) -> (Vec<Message>, Option<ProtoError>) {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        if rest.is_empty() {
            return (out, None);
        }
        let size = sizes.next().copied().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        decoder.push(chunk);
        rest = tail;
        if size == 0 && chunks.iter().all(|s| *s == 0) {
            decoder.push(rest);
            rest = &[];
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_message_round_trips(m in message()) {
        let bytes = encode(&m).unwrap();
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        prop_assert_eq!(len, bytes.len() - 4);
        prop_assert_eq!(decode_payload(&bytes[4..]).unwrap(), m.clone());
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        prop_assert_eq!(d.next_message().unwrap(), Some(m));
        prop_assert_eq!(d.next_message().unwrap(), None);
        prop_assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn messages_round_trip_in_any_chunking(
        ms in vec(message(), 1..6),
        chunks in vec(0usize..64, 1..16),
    ) {
        let mut bytes = Vec::new();
        for m in &ms {
            bytes.extend_from_slice(&encode(m).unwrap());
        }
        let mut d = FrameDecoder::new();
        let (got, err) = feed(&mut d, &bytes, &chunks);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, ms);
        prop_assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn a_truncated_frame_needs_more_bytes(m in message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&m).unwrap();
        let cut = cut.index(bytes.len()); // 0..len: always short of the whole frame
        let mut d = FrameDecoder::new();
        d.push(&bytes[..cut]);
        prop_assert_eq!(d.next_message(), Ok(None));
        prop_assert_eq!(d.buffered_len(), cut);
        d.push(&bytes[cut..]);
        prop_assert_eq!(d.next_message(), Ok(Some(m)));
    }

    #[test]
    fn garbage_never_panics_and_failures_stick(
        bytes in vec(any::<u8>(), 0..512),
        chunks in vec(0usize..40, 1..8),
    ) {
        let mut d = FrameDecoder::with_max_frame_len(256);
        let (got, err) = feed(&mut d, &bytes, &chunks);
        for m in got {
            // Whatever decodes re-encodes and decodes equal.
            let again = encode(&m).unwrap();
            prop_assert_eq!(decode_payload(&again[4..]).unwrap(), m);
        }
        if let Some(err) = err {
            prop_assert!(d.is_failed());
            prop_assert_eq!(d.next_message(), Err(err));
            prop_assert_eq!(d.buffered_len(), 0);
        }
    }

    #[test]
    fn a_complete_frame_of_garbage_is_an_error(payload in vec(any::<u8>(), 0..200)) {
        prop_assume!(serde_json::from_slice::<Message>(&payload).is_err());
        let mut d = FrameDecoder::new();
        d.push(&frame(&payload));
        let err = d.next_message().unwrap_err();
        prop_assert!(matches!(
            err,
            ProtoError::Frame(FrameError::InvalidJson { .. } | FrameError::InvalidMessage { .. })
        ), "{err:?}");
    }
}

#[test]
fn oversize_prefix_is_refused_at_once() {
    let mut d = FrameDecoder::with_max_frame_len(1000);
    d.push(&1001u32.to_le_bytes());
    let err = d.next_message().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the peer announced a frame of 1001 bytes, over the limit of 1000 bytes"
    );
    assert_eq!(d.buffered_len(), 0);

    // Exactly the limit is fine.
    let m = Message::Refused {
        reason: "r".repeat(100),
    };
    let bytes = encode(&m).unwrap();
    let mut d = FrameDecoder::with_max_frame_len(u32::try_from(bytes.len() - 4).unwrap());
    d.push(&bytes);
    assert_eq!(d.next_message(), Ok(Some(m)));
}

#[test]
fn encode_refuses_a_message_over_the_limit() {
    let m = Message::Refused {
        reason: "r".repeat(100),
    };
    let err = encode_with_limit(&m, 50).unwrap_err();
    assert!(matches!(
        err,
        ProtoError::Frame(FrameError::MessageTooLarge {
            message: "refused",
            max: 50,
            ..
        })
    ));
    assert!(
        err.to_string().contains("over the frame limit of 50 bytes"),
        "{err}"
    );
    let big = Message::Refused {
        reason: "r".repeat(DEFAULT_MAX_FRAME_LEN as usize),
    };
    assert!(encode(&big).is_err());
}

#[test]
fn errors_name_what_was_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not valid JSON"),
        (b"{\"ping\":", "not valid JSON"),
        (b"{\"ping\":{\"nonce\":1}} x", "not valid JSON"),
        (b"{\"teleport\":{}}", "unknown variant `teleport`"),
        (b"{\"ping\":{}}", "missing field `nonce`"),
        (b"{\"ping\":{\"nonce\":-1}}", "not a known message"),
        (b"\"welcome\"", "not a known message"),
        (b"\xff\xfe", "not valid JSON"),
    ];
    for (payload, want) in cases {
        let mut d = FrameDecoder::new();
        d.push(&frame(payload));
        let err = d.next_message().unwrap_err().to_string();
        assert!(err.contains(want), "{payload:?}: {err}");
    }
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let payload = br#"{"ping":{"nonce":7,"sent_at":"2025-01-01","extra":[[[]]]}}"#;
    assert_eq!(decode_payload(payload), Ok(Message::Ping { nonce: 7 }));
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // serde_json skips unknown values without recursing, and the message types are not
    // recursive, so no payload can nest deeper than the types allow.
    for depth in [200, 100_000] {
        let mut ignored = br#"{"ping":{"nonce":7,"x":"#.to_vec();
        ignored.extend(std::iter::repeat_n(b'[', depth));
        ignored.extend(std::iter::repeat_n(b']', depth));
        ignored.extend_from_slice(b"}}");
        assert_eq!(decode_payload(&ignored), Ok(Message::Ping { nonce: 7 }));

        let mut typed = br#"{"request":{"id":1,"body":"#.to_vec();
        typed.extend(std::iter::repeat_n(b'{', depth));
        assert!(decode_payload(&typed).is_err());
    }
}

#[test]
fn zero_length_and_empty_pushes() {
    let mut d = FrameDecoder::new();
    d.push(&[]);
    assert_eq!(d.next_message(), Ok(None));
    d.push(&[0, 0, 0, 0]);
    assert!(matches!(
        d.next_message(),
        Err(ProtoError::Frame(FrameError::InvalidJson { len: 0, .. }))
    ));
}
