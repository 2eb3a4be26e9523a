//! Feeds arbitrary bytes, cut into arbitrary chunks, to the agent protocol's `FrameDecoder`.
//!
//! Input layout: byte 0 picks the frame limit, byte 1 the number of chunk sizes (0 to 15),
//! then that many bytes of chunk sizes (cycled; 0 is an empty push); the rest is the stream.
//!
//! Checks: nothing panics; every decoded message re-encodes and decodes equal; an error fails
//! the decoder for good and its buffer is released.

#![no_main]

use ipam_agent_proto::{decode_payload, encode, FrameDecoder, DEFAULT_MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (limit, rest) = data.split_first().map_or((0, data), |(b, r)| (*b, r));
    let (count, rest) = rest.split_first().map_or((0, rest), |(b, r)| (*b, r));
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, mut stream) = rest.split_at(count);
    let max = match limit % 4 {
        0 => 16,
        1 => 256,
        2 => 4096,
        _ => DEFAULT_MAX_FRAME_LEN,
    };
    let mut decoder = FrameDecoder::with_max_frame_len(max);
    let mut sizes = sizes.iter().map(|s| usize::from(*s)).cycle();
    let mut empty_pushes = 0;
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    let frame = encode(&message).expect("a decoded message encodes");
                    let again = decode_payload(&frame[4..]).expect("its encoding decodes");
                    assert_eq!(again, message, "re-encoded message differs");
                }
                Ok(None) => break,
                Err(err) => {
                    assert!(decoder.is_failed());
                    assert_eq!(decoder.buffered_len(), 0);
                    decoder.push(stream);
                    assert_eq!(
                        decoder.next_message(),
                        Err(err),
                        "decoder did not stay failed"
                    );
                    return;
                }
            }
        }
        if stream.is_empty() {
            break;
        }
        let mut size = sizes.next().unwrap_or(stream.len()).min(stream.len());
        if size == 0 {
            empty_pushes += 1;
            if empty_pushes > 64 {
                size = stream.len();
            }
        }
        let (chunk, tail) = stream.split_at(size);
        decoder.push(chunk);
        stream = tail;
    }
    assert!(decoder.buffered_len() <= data.len());
});
