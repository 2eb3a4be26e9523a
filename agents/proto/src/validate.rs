//! Cheap validation helpers for the text fields of messages, with their limits.
//!
//! Decoding checks only the shape of a message; these checks are the application's: an agent
//! validates each request ([`Request::validate`](crate::Request::validate)) and answers
//! [`RemoteErrorCode::Invalid`](crate::RemoteErrorCode::Invalid) instead of passing a bad value
//! to its server.

use crate::error::{excerpt, ValidationError};

/// The longest DNS name, in characters without the final dot (RFC 1035: 255 octets on the
/// wire).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// The longest label of a DNS name (RFC 1035).
pub const MAX_DNS_LABEL_LEN: usize = 63;
/// The longest record type mnemonic (`NSEC3PARAM` has 10, `TYPE65535` 9).
pub const MAX_RECORD_TYPE_LEN: usize = 16;
/// The largest TTL (RFC 2181: 2^31 - 1 seconds).
pub const MAX_TTL: u32 = 2_147_483_647;
/// The longest record data in presentation format: 64 KiB of RDATA written as `\#` hex, and
/// room to spare.
pub const MAX_RECORD_DATA_LEN: usize = 262_144;
/// The longest name of an agent, a Central, a managed server, a view or a DHCP option, and the
/// longest scope name.
pub const MAX_NAME_LEN: usize = 255;
/// The longest free text: a DHCP option value, an error message, a status message.
pub const MAX_TEXT_LEN: usize = 65_536;

/// Checks a DNS name: a zone, an owner name or a host name, absolute or relative, with or
/// without the final dot. The root is written `"."`. At most [`MAX_DNS_NAME_LEN`] characters
/// without the final dot, labels of 1 to [`MAX_DNS_LABEL_LEN`] characters, made of ASCII
/// letters, digits and `-`, `_`, `*`, `/` (RFC 2317 delegations) and `\` (presentation-format
/// escapes, whose length is counted as written).
pub fn validate_dns_name(name: &str) -> Result<(), ValidationError> {
    let bad = |reason: String| ValidationError::DnsName {
        name: excerpt(name),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty (the root is written \".\")".into()));
    }
    if name == "." {
        return Ok(());
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.len() > MAX_DNS_NAME_LEN {
        return Err(bad(format!(
            "it has {} characters, over the limit of {MAX_DNS_NAME_LEN} (without the final dot)",
            body.len()
        )));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(bad(
                "it has an empty label (two dots in a row, or a leading dot)".into(),
            ));
        }
        if label.len() > MAX_DNS_LABEL_LEN {
            return Err(bad(format!(
                "label {:?} has {} characters, over the limit of {MAX_DNS_LABEL_LEN}",
                excerpt(label),
                label.len()
            )));
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '/' | '\\')))
        {
            return Err(bad(format!(
                "it contains {ch:?}; allowed are ASCII letters, digits, '-', '_', '*', '/' and \
                 '\\' escapes"
            )));
        }
    }
    Ok(())
}

/// Checks a record type mnemonic: 1 to [`MAX_RECORD_TYPE_LEN`] upper-case ASCII letters and
/// digits, starting with a letter (`A`, `AAAA`, `NSEC3`, `TYPE65534`).
pub fn validate_record_type(rtype: &str) -> Result<(), ValidationError> {
    let field = "record type";
    if rtype.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if rtype.len() > MAX_RECORD_TYPE_LEN {
        return Err(ValidationError::TooLong {
            field,
            len: rtype.len(),
            max: MAX_RECORD_TYPE_LEN,
        });
    }
    let why = "a record type is upper-case ASCII letters and digits, starting with a letter";
    let mut chars = rtype.chars();
    let bad_first = chars.next().filter(|c| !c.is_ascii_uppercase());
    let bad_rest = chars.find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()));
    match bad_first.or(bad_rest) {
        Some(ch) => Err(ValidationError::BadCharacter {
            field,
            value: excerpt(rtype),
            ch,
            why,
        }),
        None => Ok(()),
    }
}

/// Checks a TTL: at most [`MAX_TTL`] seconds.
pub fn validate_ttl(ttl: u32) -> Result<(), ValidationError> {
    if ttl > MAX_TTL {
        return Err(ValidationError::OutOfRange {
            field: "TTL",
            value: u64::from(ttl),
            min: 0,
            max: u64::from(MAX_TTL),
        });
    }
    Ok(())
}

/// Checks record data in presentation format: not empty, at most [`MAX_RECORD_DATA_LEN`]
/// bytes, no control character but tab (a line break would inject a line into a zone file or
/// an update script; presentation format escapes them as `\DDD`).
pub fn validate_record_data(data: &str) -> Result<(), ValidationError> {
    validate_text("record data", data, MAX_RECORD_DATA_LEN)
}

/// Checks a name (of an agent, a Central, a server, a view, a scope, a DHCP option): not
/// empty, at most [`MAX_NAME_LEN`] bytes, no control character.
pub fn validate_name(field: &'static str, name: &str) -> Result<(), ValidationError> {
    validate_text(field, name, MAX_NAME_LEN)?;
    match name.chars().find(|c| *c == '\t') {
        Some(ch) => Err(ValidationError::BadCharacter {
            field,
            value: excerpt(name),
            ch,
            why: "names may not contain control characters",
        }),
        None => Ok(()),
    }
}

/// Checks free text: not empty, at most `max` bytes, no control character but tab.
pub fn validate_text(field: &'static str, text: &str, max: usize) -> Result<(), ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if text.len() > max {
        return Err(ValidationError::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    match text.chars().find(|c| c.is_control() && *c != '\t') {
        Some(ch) => Err(ValidationError::BadCharacter {
            field,
            value: excerpt(text),
            ch,
            why: "control characters other than tab are not allowed",
        }),
        None => Ok(()),
    }
}

/// Checks the length of a list.
pub(crate) fn validate_len(
    field: &'static str,
    len: usize,
    max: usize,
) -> Result<(), ValidationError> {
    if len > max {
        return Err(ValidationError::TooLong { field, len, max });
    }
    Ok(())
}

/// Checks an optional name with [`validate_name`].
pub(crate) fn validate_opt_name(
    field: &'static str,
    name: Option<&str>,
) -> Result<(), ValidationError> {
    name.map_or(Ok(()), |n| validate_name(field, n))
}

/// Checks a page size: at least 1.
pub(crate) fn validate_limit(limit: Option<u32>) -> Result<(), ValidationError> {
    match limit {
        Some(0) => Err(ValidationError::OutOfRange {
            field: "page limit",
            value: 0,
            min: 1,
            max: u64::from(u32::MAX),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for ok in [
            ".",
            "example.com",
            "example.com.",
            "*.example.com",
            "_sip._tcp.example.com",
            "0/25.2.0.192.in-addr.arpa.",
            "host1",
        ] {
            assert_eq!(validate_dns_name(ok), Ok(()), "{ok}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let max_label = format!("{}.com", "a".repeat(63));
        assert_eq!(validate_dns_name(&max_label), Ok(()));
        let name_253 = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(name_253.len(), 253);
        assert_eq!(validate_dns_name(&name_253), Ok(()));
        assert_eq!(validate_dns_name(&format!("{name_253}.")), Ok(()));
        let name_254 = format!("{name_253}e");
        for bad in [
            "",
            "..",
            ".example.com",
            "a..b",
            "a b.com",
            "a\nb",
            "a;b",
            &long_label,
        ] {
            assert!(
                matches!(validate_dns_name(bad), Err(ValidationError::DnsName { .. })),
                "{bad:?}"
            );
        }
        let err = validate_dns_name(&name_254).unwrap_err().to_string();
        assert!(
            err.contains("254 characters, over the limit of 253"),
            "{err}"
        );
    }

    #[test]
    fn record_types_ttls_and_text() {
        for ok in ["A", "AAAA", "NSEC3PARAM", "TYPE65534"] {
            assert_eq!(validate_record_type(ok), Ok(()));
        }
        for bad in ["", "a", "Aaaa", "3A", "A-B", "ABCDEFGHIJKLMNOPQ"] {
            assert!(validate_record_type(bad).is_err(), "{bad:?}");
        }
        assert_eq!(validate_ttl(MAX_TTL), Ok(()));
        assert!(validate_ttl(MAX_TTL + 1).is_err());
        assert_eq!(validate_record_data("10 mail.example.com."), Ok(()));
        assert_eq!(validate_record_data("\"a\tb\""), Ok(()));
        assert!(validate_record_data("1.2.3.4\nwww IN A 6.6.6.6").is_err());
        assert!(validate_record_data("").is_err());
        assert!(validate_name("server", "ns1\tx").is_err());
        assert!(validate_name("server", &"n".repeat(256)).is_err());
        assert_eq!(validate_name("server", "ns1 (primary)"), Ok(()));
    }
}
