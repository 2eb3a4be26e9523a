//! The rule a shared key must pass, checked where a key is loaded: by `ipam-agent` at start
//! and by Central when it reads its `[[agents]]`.
//!
//! The key is what the file (or setting) holds, surrounding whitespace removed, and both
//! sides use those bytes as the HMAC key. It must come from a random source; make one with
//!
//! ```sh
//! head -c 32 /dev/urandom | base64 > agent.key
//! ```
//!
//! No rule can measure where bytes came from, so the rule refuses what is clearly not 128
//! random bits, and nothing more:
//!
//! 1. The key is written in base64 (RFC 4648, standard alphabet; padding and line breaks
//!    inside are allowed), as `base64` and `openssl rand -base64` print it.
//! 2. It decodes to at least [`MIN_KEY_BYTES`] (16) bytes: 128 bits.
//! 3. The decoded bytes do not repeat a pattern: no period of at most half their length
//!    (one byte repeated, `abcabc...`).
//! 4. The decoded bytes are not text: not all printable ASCII (`0x20..=0x7e`, tab, line
//!    breaks), as the base64 of a password or phrase is. Random bytes are all printable with
//!    a chance under 1 in 4 million for 16 bytes, under 1 in 10^13 for 32.
//!
//! A phrase that happens to be valid base64 (letters and digits only, a length a multiple of
//! four) decodes to bytes that look random and passes: generate keys, do not type them.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// The fewest bytes a shared key may decode to (128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// How to make a good key, as the errors say it.
pub const MAKE_A_KEY: &str =
    "make one with `head -c 32 /dev/urandom | base64 > agent.key` and give that file to the \
     agent (--key-file) and to Central (key_file in [[agents]])";

/// Why a shared key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("the shared key is not base64 ({reason}): {MAKE_A_KEY}", reason = .0)]
    NotBase64(String),
    /// Fewer than [`MIN_KEY_BYTES`] bytes once decoded.
    #[error(
        "the shared key decodes to {0} bytes; at least {MIN_KEY_BYTES} random bytes are needed: \
         {MAKE_A_KEY}"
    )]
    TooShort(usize),
    /// The decoded bytes repeat a pattern of this many bytes.
    #[error("the shared key repeats a pattern of {0} byte(s), so it is not random: {MAKE_A_KEY}")]
    Repeated(usize),
    /// The decoded bytes are printable text.
    #[error(
        "the shared key decodes to printable text (a password or phrase in base64), not random \
         bytes: {MAKE_A_KEY}"
    )]
    Text,
}

/// Checks `key` (as configured, surrounding whitespace already removed) against the rule
/// of this module.
pub fn check_shared_key(key: &[u8]) -> Result<(), KeyError> {
    let compact: Vec<u8> = key
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(&compact)
        .map_err(|e| KeyError::NotBase64(e.to_string()))?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort(bytes.len()));
    }
    if let Some(period) = (1..=bytes.len() / 2).find(|&p| bytes[p..] == bytes[..bytes.len() - p]) {
        return Err(KeyError::Repeated(period));
    }
    if bytes
        .iter()
        .all(|b| (0x20..=0x7e).contains(b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Err(KeyError::Text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    #[test]
    fn random_keys_pass() {
        for len in [16, 32, 64] {
            let mut k = vec![0u8; len];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k).unwrap();
            assert_eq!(check_shared_key(&b64(&k)), Ok(()), "{len} bytes");
        }
        // What `head -c 64 /dev/urandom | base64` writes: wrapped at 76 characters.
        let text = "mNKwl2S5tmtzE1h0Y1kvg5i3Y7Rk8D3hUrGvkCO0v7bOhwJiXwP2BbeqbSk2XaJ5QyU3rU3ZqMcP\nfTRC1DJvE7I1pQ==";
        assert_eq!(check_shared_key(text.as_bytes()), Ok(()));
        // Without padding, and hex (whose digits are base64 too).
        assert_eq!(
            check_shared_key(b"7gKc9y0TkD2sV8mXbqR1ZwLh4uEoPa3NfJ6iYtC5"),
            Ok(())
        );
        assert_eq!(
            check_shared_key(b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
            Ok(())
        );
    }

    #[test]
    fn weak_keys_are_refused_with_the_reason() {
        assert!(matches!(
            check_shared_key(b"not base64!"),
            Err(KeyError::NotBase64(_))
        ));
        assert!(matches!(check_shared_key(b""), Err(KeyError::TooShort(0))));
        assert_eq!(
            check_shared_key(&b64(&[7; 15])),
            Err(KeyError::TooShort(15))
        );
        assert_eq!(check_shared_key(&b64(&[0; 32])), Err(KeyError::Repeated(1)));
        assert_eq!(
            check_shared_key(&b64(
                b"\x01\x02\x03\x01\x02\x03\x01\x02\x03\x01\x02\x03\x01\x02\x03\x01\x02"
            )),
            Err(KeyError::Repeated(3))
        );
        assert_eq!(
            check_shared_key(&b64(b"correct horse battery staple")),
            Err(KeyError::Text)
        );
        assert_eq!(
            check_shared_key(&b64(b"passwordpassword1234")),
            Err(KeyError::Text)
        );
        let err = check_shared_key(b"short").unwrap_err().to_string();
        assert!(err.contains("head -c 32 /dev/urandom | base64"), "{err}");
    }
}
