//! The statement syntax shared by `dhcpd.conf` and `dhcpd.leases`: words, quoted strings,
//! commas, statements ended by `;`, and blocks in braces that nest (`subnet ... { ... }`,
//! `lease ... { on expiry { ... } }`). Comments run from `#` to the end of the line.
//!
//! The input is untrusted text: nothing here panics or indexes without a check, and nesting
//! deeper than [`MAX_DEPTH`] is refused.

/// The deepest nesting of blocks accepted.
pub(crate) const MAX_DEPTH: usize = 64;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A bare word: keyword, address, number, MAC (`02:00:00:00:00:42`).
    Word(String),
    /// A quoted string with its escapes (`\"`, `\\`, octal `\001`) decoded.
    Str(Vec<u8>),
    /// `,`.
    Comma,
}

impl Token {
    /// The word, if this is one.
    pub fn word(&self) -> Option<&str> {
        match self {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }

    /// The text of a word or string (strings decoded lossily as UTF-8).
    pub fn text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Str(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Token::Comma => ",".to_owned(),
        }
    }
}

/// A statement: its tokens up to `;` or `{`, and its block when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    /// The tokens before `;` or `{`.
    pub tokens: Vec<Token>,
    /// The statements inside `{ ... }`.
    pub block: Option<Vec<Statement>>,
    /// The line where the statement starts (1-based).
    pub line: usize,
}

impl Statement {
    /// The `i`-th token as a word.
    pub fn word(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).and_then(Token::word)
    }

    /// Whether the statement starts with these words.
    pub fn starts_with(&self, words: &[&str]) -> bool {
        words.len() <= self.tokens.len()
            && words
                .iter()
                .zip(&self.tokens)
                .all(|(w, t)| t.word().is_some_and(|t| t.eq_ignore_ascii_case(w)))
    }

    /// The statements of its block (none when it has no block).
    pub fn children(&self) -> &[Statement] {
        self.block.as_deref().unwrap_or_default()
    }
}

/// Where and why the text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lexeme {
    Token(Token),
    Open,
    Close,
    Semi,
}

fn lex(text: &str) -> Result<Vec<(Lexeme, usize)>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            b'#' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'{' | b'}' | b';' | b',' => {
                let lexeme = match b {
                    b'{' => Lexeme::Open,
                    b'}' => Lexeme::Close,
                    b';' => Lexeme::Semi,
                    _ => Lexeme::Token(Token::Comma),
                };
                out.push((lexeme, line));
                i += 1;
            }
            b'"' => {
                let start_line = line;
                i += 1;
                let mut value = Vec::new();
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return Err(SyntaxError {
                            line: start_line,
                            reason: "a quoted string is not closed",
                        });
                    };
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\n' => {
                            line += 1;
                            value.push(c);
                        }
                        b'\\' => {
                            let Some(&e) = bytes.get(i) else { continue };
                            i += 1;
                            match e {
                                b'0'..=b'7' => {
                                    let mut v = u32::from(e - b'0');
                                    for _ in 0..2 {
                                        match bytes.get(i) {
                                            Some(&d @ b'0'..=b'7') => {
                                                v = v * 8 + u32::from(d - b'0');
                                                i += 1;
                                            }
                                            _ => break,
                                        }
                                    }
                                    value.push(u8::try_from(v & 0xff).unwrap_or_default());
                                }
                                b'n' => value.push(b'\n'),
                                b't' => value.push(b'\t'),
                                b'r' => value.push(b'\r'),
                                other => value.push(other),
                            }
                        }
                        other => value.push(other),
                    }
                }
                out.push((Lexeme::Token(Token::Str(value)), start_line));
            }
            _ => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|&c| !c.is_ascii_whitespace() && !b"{};,\"#".contains(&c))
                {
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or_default().to_owned();
                out.push((Lexeme::Token(Token::Word(word)), line));
            }
        }
    }
    Ok(out)
}

/// Parses a whole file into statements.
pub(crate) fn parse(text: &str) -> Result<Vec<Statement>, SyntaxError> {
    let lexemes = lex(text)?;
    let mut pos = 0;
    let statements = parse_block(&lexemes, &mut pos, 0)?;
    Ok(statements)
}

fn parse_block(
    lexemes: &[(Lexeme, usize)],
    pos: &mut usize,
    depth: usize,
) -> Result<Vec<Statement>, SyntaxError> {
    if depth > MAX_DEPTH {
        return Err(SyntaxError {
            line: lexemes.get(*pos).map_or(0, |(_, l)| *l),
            reason: "blocks are nested too deeply",
        });
    }
    let mut out = Vec::new();
    loop {
        let Some((lexeme, line)) = lexemes.get(*pos) else {
            if depth > 0 {
                return Err(SyntaxError {
                    line: lexemes.last().map_or(0, |(_, l)| *l),
                    reason: "a block is not closed with }",
                });
            }
            return Ok(out);
        };
        let line = *line;
        match lexeme {
            Lexeme::Close => {
                if depth == 0 {
                    return Err(SyntaxError {
                        line,
                        reason: "a } closes no block",
                    });
                }
                *pos += 1;
                return Ok(out);
            }
            Lexeme::Semi => {
                *pos += 1;
            }
            _ => {
                let mut tokens = Vec::new();
                loop {
                    match lexemes.get(*pos) {
                        Some((Lexeme::Token(t), _)) => {
                            tokens.push(t.clone());
                            *pos += 1;
                        }
                        Some((Lexeme::Semi, _)) => {
                            *pos += 1;
                            out.push(Statement {
                                tokens,
                                block: None,
                                line,
                            });
                            break;
                        }
                        Some((Lexeme::Open, _)) => {
                            *pos += 1;
                            let block = parse_block(lexemes, pos, depth + 1)?;
                            out.push(Statement {
                                tokens,
                                block: Some(block),
                                line,
                            });
                            break;
                        }
                        // A statement cut short by } or the end: dhcpd would refuse it; keep
                        // what is there, since the server accepted the file.
                        Some((Lexeme::Close, _)) | None => {
                            out.push(Statement {
                                tokens,
                                block: None,
                                line,
                            });
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A dhcpd time, the tokens after `starts`/`ends`: `3 2026/11/25 15:18:53` (UTC),
/// `epoch 1764083933`, or `never`. `Ok(None)` is `never`; `Err(())` is unreadable.
pub(crate) fn parse_time(tokens: &[Token]) -> Result<Option<u64>, ()> {
    let words: Vec<&str> = tokens.iter().filter_map(Token::word).collect();
    match words.as_slice() {
        ["never"] => Ok(None),
        ["epoch", secs, ..] => secs.parse().map(Some).map_err(|_| ()),
        [_weekday, date, time, ..] => {
            let mut d = date.split('/').map(str::parse::<i64>);
            let mut t = time.split(':').map(str::parse::<i64>);
            let (Some(Ok(y)), Some(Ok(mo)), Some(Ok(da))) = (d.next(), d.next(), d.next()) else {
                return Err(());
            };
            let (Some(Ok(h)), Some(Ok(mi)), Some(Ok(s))) = (t.next(), t.next(), t.next()) else {
                return Err(());
            };
            if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
                return Err(());
            }
            let secs = days_from_civil(y, mo, da) * 86_400 + h * 3_600 + mi * 60 + s;
            u64::try_from(secs).map(Some).map_err(|_| ())
        }
        _ => Err(()),
    }
}

/// Decodes an identifier written as a quoted string (`"\001\002..."`) or as hex pairs
/// (`01:02:00:00:00:00:55`).
pub(crate) fn identifier_bytes(token: &Token) -> Option<Vec<u8>> {
    match token {
        Token::Str(bytes) => Some(bytes.clone()),
        Token::Word(w) => w
            .split(':')
            .map(|pair| {
                if pair.is_empty() || pair.len() > 2 {
                    return None;
                }
                u8::from_str_radix(pair, 16).ok()
            })
            .collect(),
        Token::Comma => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_blocks_and_strings() {
        let text = "# comment\nsubnet 192.0.2.0 netmask 255.255.255.0 {\n  range 192.0.2.10 192.0.2.20;\n  option domain-name-servers 192.0.2.1, 192.0.2.2; # trailing\n  pool { range 192.0.2.30 192.0.2.40; }\n}\nlease 192.0.2.5 { uid \"\\001\\002\\000U\"; on expiry { set x = \"a\\\"b\"; } }\n";
        let statements = parse(text).unwrap();
        assert_eq!(statements.len(), 2);
        let subnet = &statements[0];
        assert!(subnet.starts_with(&["subnet"]));
        assert_eq!(subnet.line, 2);
        assert_eq!(subnet.children().len(), 3);
        assert_eq!(
            subnet.children()[1].tokens,
            vec![
                Token::Word("option".into()),
                Token::Word("domain-name-servers".into()),
                Token::Word("192.0.2.1".into()),
                Token::Comma,
                Token::Word("192.0.2.2".into()),
            ]
        );
        assert_eq!(subnet.children()[2].children().len(), 1);
        let lease = &statements[1];
        assert_eq!(
            lease.children()[0].tokens[1],
            Token::Str(vec![1, 2, 0, b'U'])
        );
        assert_eq!(
            lease.children()[1].children()[0].tokens[3],
            Token::Str(b"a\"b".to_vec())
        );
    }

    #[test]
    fn refuses_broken_input() {
        assert!(parse("subnet x {").is_err());
        assert!(parse("}").is_err());
        assert!(parse("option x \"open").is_err());
        let deep = "a {".repeat(MAX_DEPTH + 2) + &"}".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
        // Nothing panics on odd input.
        for text in ["\"\\", "\\", "{;}", ";;;", "a \"\\7", "# only"] {
            let _ = parse(text);
        }
    }

    #[test]
    fn times_and_identifiers() {
        let toks = |s: &str| parse(&format!("x {s};")).unwrap()[0].tokens[1..].to_vec();
        assert_eq!(
            parse_time(&toks("3 2026/11/25 15:18:53")),
            Ok(Some(1_795_619_933))
        );
        assert_eq!(parse_time(&toks("4 1970/01/01 00:00:01")), Ok(Some(1)));
        assert_eq!(
            parse_time(&toks("epoch 1764083933")),
            Ok(Some(1_764_083_933))
        );
        assert_eq!(parse_time(&toks("never")), Ok(None));
        assert_eq!(parse_time(&toks("3 2026/13/25 15:18:53")), Err(()));
        assert_eq!(
            identifier_bytes(&Token::Word("01:02:0a".into())),
            Some(vec![1, 2, 10])
        );
        assert_eq!(identifier_bytes(&Token::Word("01::02".into())), None);
    }
}
