//! Presentation format (zone-file text) of names, types and record data: the one canonical
//! form of record data, used by both DNS drivers (so that BIND and PowerDNS report a record
//! in the same words) and by Central (so that what it wrote compares equal to what it reads
//! back). Parsing is hickory-proto's (no I/O).
//!
//! Rules:
//! - Names are absolute, whether or not they end with a dot (`host.example.com` is
//!   `host.example.com.`); they are written with the final dot. This holds for owner names and
//!   for names inside data (CNAME, PTR, NS, MX, SRV targets).
//! - Character strings (TXT, SPF-style data) are written as quoted strings, one per string,
//!   with `"` and `\` escaped by a backslash and bytes outside printable ASCII as `\DDD`.
//! - A type the parser does not know is accepted and written in the generic form of RFC 3597
//!   (`\# 4 c0000201`); its mnemonic is `TYPEnnn`.

use std::fmt::Write as _;
use std::str::FromStr;

use hickory_proto::rr::rdata::{CNAME, HINFO, MX, NAPTR, NS, NULL, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};

/// The most bytes of one character string (RFC 1035).
const MAX_CHARACTER_STRING: usize = 255;

/// Parses an absolute domain name; the final dot is optional. Labels may hold any byte
/// (`0/25` of RFC 2317 reverse zones); `\.`, `\X` and `\DDD` escapes are understood.
pub fn parse_name(text: &str) -> Result<Name, String> {
    let bad = |why: &str| format!("{text:?} is not a valid DNS name: {why}");
    let body = text.trim();
    if body.is_empty() {
        return Err(bad("it is empty"));
    }
    if body == "." {
        return Ok(Name::root());
    }
    let bytes = body.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'.' => {
                if label.is_empty() {
                    return Err(bad("it has an empty label"));
                }
                labels.push(std::mem::take(&mut label));
                i += 1;
            }
            b'\\' => {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let value = d
                        .iter()
                        .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
                    label.push(u8::try_from(value).map_err(|_| bad("an escape is over 255"))?);
                    i += 4;
                } else {
                    label.push(
                        *bytes
                            .get(i + 1)
                            .ok_or_else(|| bad("it ends with a backslash"))?,
                    );
                    i += 2;
                }
            }
            _ if b.is_ascii_whitespace() || b.is_ascii_control() => {
                return Err(bad("it holds a space or control character"));
            }
            _ => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut name = Name::from_labels(labels).map_err(|e| bad(&e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The name in presentation format, absolute with the final dot, case kept; bytes that are
/// special in zone files are escaped (`\.`, `\DDD`), `/` is not.
pub fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let mut out = String::new();
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
    }
    out
}

/// The name as text, lower case, without the final dot: the form of zone names in
/// [`ZoneInfo`](crate::ZoneInfo).
pub fn zone_text(name: &Name) -> String {
    let text = name_text(&name.to_lowercase());
    match text.strip_suffix('.') {
        Some(body) if !body.is_empty() => body.to_owned(),
        _ => text,
    }
}

/// Parses a type mnemonic (`AAAA`) or the generic `TYPEnnn`.
pub fn parse_type(text: &str) -> Result<RecordType, String> {
    if let Some(number) = text.strip_prefix("TYPE") {
        if let Ok(code) = number.parse::<u16>() {
            return Ok(RecordType::from(code));
        }
    }
    match RecordType::from_str(text) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(format!(
            "record type {text:?} is unknown; write it as TYPEnnn with its number"
        )),
        Ok(rtype) => Ok(rtype),
    }
}

/// The type's mnemonic, or `TYPEnnn` for a type without one.
pub fn type_text(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        other => other.to_string(),
    }
}

/// Parses record data of a type.
pub fn parse_rdata(rtype: RecordType, data: &str) -> Result<RData, String> {
    let trimmed = data.trim();
    if let Some(rest) = trimmed.strip_prefix("\\#") {
        return parse_generic(rtype, rest);
    }
    match rtype {
        RecordType::TXT => {
            let strings = parse_character_strings(trimmed)?;
            if strings.is_empty() {
                return Err("TXT data is empty; write at least one quoted string".into());
            }
            Ok(RData::TXT(TXT::from_bytes(
                strings.iter().map(Vec::as_slice).collect(),
            )))
        }
        RecordType::HINFO => {
            let strings = parse_character_strings(trimmed)?;
            let [cpu, os] = <[Vec<u8>; 2]>::try_from(strings)
                .map_err(|_| "HINFO data must be exactly two strings (CPU and OS)".to_owned())?;
            Ok(RData::HINFO(HINFO::from_bytes(cpu.into(), os.into())))
        }
        RecordType::CNAME => Ok(RData::CNAME(CNAME(parse_name(trimmed)?))),
        RecordType::PTR => Ok(RData::PTR(PTR(parse_name(trimmed)?))),
        RecordType::NS => Ok(RData::NS(NS(parse_name(trimmed)?))),
        RecordType::Unknown(_) => Err(format!(
            "data of {} must be in the generic form \\# LENGTH HEX (RFC 3597)",
            type_text(rtype)
        )),
        _ => RData::try_from_str(rtype, trimmed)
            .map(absolute)
            .map_err(|e| format!("{} data {trimmed:?} does not parse: {e}", type_text(rtype))),
    }
}

/// Makes the names inside record data absolute (the parser leaves `host.example.com`
/// relative, which would be written without its final dot).
fn absolute(rdata: RData) -> RData {
    let fqdn = |mut name: Name| {
        name.set_fqdn(true);
        name
    };
    match rdata {
        RData::CNAME(CNAME(n)) => RData::CNAME(CNAME(fqdn(n))),
        RData::PTR(PTR(n)) => RData::PTR(PTR(fqdn(n))),
        RData::NS(NS(n)) => RData::NS(NS(fqdn(n))),
        RData::MX(mx) => RData::MX(MX::new(mx.preference, fqdn(mx.exchange))),
        RData::SRV(srv) => RData::SRV(SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            fqdn(srv.target),
        )),
        RData::SOA(soa) => RData::SOA(SOA::new(
            fqdn(soa.mname),
            fqdn(soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        )),
        RData::NAPTR(n) => RData::NAPTR(NAPTR::new(
            n.order,
            n.preference,
            n.flags,
            n.services,
            n.regexp,
            fqdn(n.replacement),
        )),
        other => other,
    }
}

/// Parses the generic form's rest: `LENGTH HEX...`.
fn parse_generic(rtype: RecordType, rest: &str) -> Result<RData, String> {
    let mut words = rest.split_whitespace();
    let len: usize = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| "generic data \\# must be followed by its length in bytes".to_owned())?;
    let hex: String = words.collect();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "generic data {hex:?} is not an even number of hex digits"
        ));
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| hex.get(i..i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect();
    if bytes.len() != len {
        return Err(format!(
            "generic data says {len} bytes but holds {}",
            bytes.len()
        ));
    }
    Ok(RData::Unknown {
        code: rtype,
        rdata: NULL::with(bytes),
    })
}

/// Splits text into character strings: quoted (`"a b"`) or bare words, with `\X` and `\DDD`
/// escapes.
pub fn parse_character_strings(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = text.as_bytes();
    let mut strings = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(&b) = bytes.get(i) else { break };
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let quoted = b == b'"';
        if quoted {
            i += 1;
        }
        let mut out = Vec::new();
        let mut closed = !quoted;
        while let Some(&c) = bytes.get(i) {
            if quoted && c == b'"' {
                closed = true;
                i += 1;
                break;
            }
            if !quoted && c.is_ascii_whitespace() {
                break;
            }
            if c == b'\\' {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let value = d
                        .iter()
                        .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
                    let byte = u8::try_from(value)
                        .map_err(|_| format!("escape \\{value:03} in {text:?} is over 255"))?;
                    out.push(byte);
                    i += 4;
                } else if let Some(&next) = bytes.get(i + 1) {
                    out.push(next);
                    i += 2;
                } else {
                    return Err(format!("{text:?} ends with a lone backslash"));
                }
                continue;
            }
            out.push(c);
            i += 1;
        }
        if !closed {
            return Err(format!("{text:?} has an unclosed quoted string"));
        }
        if out.len() > MAX_CHARACTER_STRING {
            return Err(format!(
                "a string of {} bytes is over the DNS limit of {MAX_CHARACTER_STRING}; split it \
                 into several quoted strings",
                out.len()
            ));
        }
        strings.push(out);
    }
    Ok(strings)
}

/// Writes one character string, quoted and escaped.
fn write_character_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

/// Record data in presentation format.
pub fn render_rdata(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => {
            let mut out = String::new();
            for (i, s) in txt.txt_data.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_character_string(&mut out, s);
            }
            out
        }
        RData::HINFO(h) => {
            let mut out = String::new();
            write_character_string(&mut out, &h.cpu);
            out.push(' ');
            write_character_string(&mut out, &h.os);
            out
        }
        RData::CAA(caa) => {
            let mut out = format!("{} {} ", caa.flags(), caa.tag);
            write_character_string(&mut out, &caa.value);
            out
        }
        RData::CNAME(CNAME(n)) | RData::PTR(PTR(n)) | RData::NS(NS(n)) => name_text(n),
        RData::MX(mx) => format!("{} {}", mx.preference, name_text(&mx.exchange)),
        RData::SRV(srv) => format!(
            "{} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            name_text(&srv.target)
        ),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name_text(&soa.mname),
            name_text(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::Unknown { rdata, .. } => generic(&rdata.anything),
        RData::NULL(null) => generic(&null.anything),
        other => other.to_string(),
    }
}

/// The generic form of RFC 3597.
fn generic(bytes: &[u8]) -> String {
    let mut out = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        out.push(' ');
        for b in bytes {
            let _ = write!(out, "{b:02x}");
        }
    }
    out
}

/// Record data in the canonical form (see the module docs: absolute names with the final dot,
/// lower-case IPv6, TXT as quoted strings, ...), or the text as given (trimmed) when it does
/// not parse. The drivers report records in this form, and Central stores data in it.
pub fn canonical_data(rtype: &str, data: &str) -> String {
    parse_type(rtype)
        .and_then(|t| parse_rdata(t, data))
        .map(|rdata| render_rdata(&rdata))
        .unwrap_or_else(|_| data.trim().to_owned())
}

/// The owner name as reported: absolute, with the final dot, case kept.
pub fn canonical_name(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// Checks record data for its type as the drivers will parse it; the error says what is wrong.
pub fn check_record_data(rtype: &str, data: &str) -> Result<(), String> {
    parse_rdata(parse_type(rtype)?, data).map(|_| ())
}

/// TXT-style text (any bytes) in the quoted form: strings of at most 255 bytes, `"` and `\`
/// escaped, bytes outside printable ASCII as `\DDD`; `""` for empty text. What Central sends
/// for the unquoted text it keeps.
pub fn txt_to_presentation(text: &str) -> String {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return "\"\"".into();
    }
    let mut out = String::new();
    for chunk in bytes.chunks(MAX_CHARACTER_STRING) {
        if !out.is_empty() {
            out.push(' ');
        }
        write_character_string(&mut out, chunk);
    }
    out
}

/// The character strings of TXT-style data joined, unquoted (`"a b" "c"` -> `a bc`; bytes
/// that are not UTF-8 replaced), or the data as it is when it does not parse: the form
/// Central keeps.
pub fn txt_from_presentation(data: &str) -> String {
    match parse_character_strings(data) {
        Ok(parts) => String::from_utf8_lossy(&parts.concat()).into_owned(),
        Err(_) => data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(rtype: &str, data: &str) -> String {
        let t = parse_type(rtype).unwrap();
        render_rdata(&parse_rdata(t, data).unwrap())
    }

    #[test]
    fn common_types_round_trip_in_canonical_form() {
        assert_eq!(round("A", "192.0.2.1"), "192.0.2.1");
        assert_eq!(round("AAAA", "2001:DB8::1"), "2001:db8::1");
        assert_eq!(round("CNAME", "www.example.test"), "www.example.test.");
        assert_eq!(round("PTR", "host.example.test."), "host.example.test.");
        assert_eq!(round("MX", "10 mail.example.test"), "10 mail.example.test.");
        assert_eq!(
            round("SRV", "0 5 5060 sip.example.test"),
            "0 5 5060 sip.example.test."
        );
        assert_eq!(round("NS", "ns1.example.test"), "ns1.example.test.");
    }

    #[test]
    fn txt_strings_are_quoted_and_escaped() {
        assert_eq!(round("TXT", "\"managed-by-ipam\""), "\"managed-by-ipam\"");
        assert_eq!(round("TXT", "bare word"), "\"bare\" \"word\"");
        assert_eq!(round("TXT", r#""a \"q\" \\ b""#), r#""a \"q\" \\ b""#);
        assert_eq!(round("TXT", r#""\065\010""#), r#""A\010""#);
        assert_eq!(round("TXT", "\"\""), "\"\"");
        let long = format!("\"{}\"", "x".repeat(256));
        let err = parse_rdata(RecordType::TXT, &long).unwrap_err();
        assert!(err.contains("split it"), "{err}");
        assert!(parse_rdata(RecordType::TXT, "\"open").is_err());
    }

    #[test]
    fn txt_round_trips_through_the_quoted_form() {
        for t in [
            "",
            "plain",
            "with \"quotes\" and \\",
            "é ü",
            &"x".repeat(600),
        ] {
            assert_eq!(txt_from_presentation(&txt_to_presentation(t)), t, "{t}");
        }
        assert_eq!(txt_to_presentation("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            txt_to_presentation(&"y".repeat(300)).matches('"').count(),
            4
        );
        assert_eq!(txt_from_presentation("\"open"), "\"open");
        assert_eq!(check_record_data("A", "192.0.2.1"), Ok(()));
        assert!(check_record_data("A", "x").is_err());
        assert!(check_record_data("BOGUS", "x").is_err());
    }

    #[test]
    fn unknown_types_use_the_generic_form() {
        assert_eq!(parse_type("TYPE65534").unwrap(), RecordType::Unknown(65534));
        assert_eq!(type_text(RecordType::Unknown(65534)), "TYPE65534");
        assert_eq!(round("TYPE65534", "\\# 3 0a0B0c"), "\\# 3 0a0b0c");
        assert!(parse_rdata(RecordType::Unknown(65534), "abc").is_err());
        assert!(parse_rdata(RecordType::Unknown(65534), "\\# 2 0a").is_err());
        assert!(parse_type("BOGUS").is_err());
    }

    #[test]
    fn bad_data_names_the_type() {
        let err = parse_rdata(RecordType::A, "not-an-address").unwrap_err();
        assert!(err.starts_with("A data \"not-an-address\""), "{err}");
    }

    #[test]
    fn names_and_zones() {
        assert_eq!(
            zone_text(&parse_name("Example.TEST").unwrap()),
            "example.test"
        );
        assert_eq!(zone_text(&Name::root()), ".");
        assert_eq!(canonical_name("a.example.test"), "a.example.test.");
        assert_eq!(canonical_data("CNAME", "x.test"), "x.test.");
        assert_eq!(canonical_data("A", " bogus "), "bogus");
        let classless = parse_name("0/25.2.0.192.IN-ADDR.ARPA").unwrap();
        assert_eq!(name_text(&classless), "0/25.2.0.192.IN-ADDR.ARPA.");
        assert_eq!(zone_text(&classless), "0/25.2.0.192.in-addr.arpa");
        assert_eq!(
            round("CNAME", "10.0/25.2.0.192.in-addr.arpa"),
            "10.0/25.2.0.192.in-addr.arpa."
        );
        assert_eq!(
            name_text(&parse_name(r"a\.b.c\032d").unwrap()),
            r"a\.b.c\032d."
        );
        assert_eq!(
            name_text(&parse_name("*.Example.test.").unwrap()),
            "*.Example.test."
        );
        assert!(parse_name("a..b").is_err());
        assert!(parse_name("").is_err());
        assert!(parse_name(&"a".repeat(64)).is_err());
        assert!(parse_name(&["a"; 128].join(".")).is_err());
    }
}
