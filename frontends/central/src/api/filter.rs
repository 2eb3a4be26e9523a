//! The filter grammar of the Micetro-compatible REST API list endpoints (`?filter=...`).
//!
//! A filter is a boolean expression over the fields of one object of a list:
//!
//! * Conditions: `field=value` (case-insensitive equality), `field==value` (exact equality),
//!   `!=`, `<`, `<=`, `>`, `>=`, `=@` / `!@` (contains / does not contain), `=^` / `!^`
//!   (starts with / does not), `=$` / `!$` (ends with / does not), `=~` / `!~` (regular
//!   expression matches / does not, case-insensitive), `field in(v1, v2)` and
//!   `field not in(v1, v2)` (keywords in any case, with or without a space before `(`).
//! * Conditions combine with `and` / `or` (any case), `&` / `&&` (and), `||` (or) and
//!   parentheses; `and` binds tighter than `or`.
//! * Values are unquoted (running until whitespace, `)`, `&`, `||` or the end, so
//!   `2001:db8::1`, `10.0.0.0/24` and `www.example.com` need no quotes) or quoted with `"..."`
//!   or `'...'`; inside quotes a backslash escapes the quote character or a backslash, any
//!   other backslash is kept as is (so `"\d+"` is the regular expression `\d+`).
//! * A value without a field and operator (`10.0.1.50`, `myhost`, `"my host"`) is a bare term,
//!   answered by [`Fields::free_text`].
//! * Field names are identifiers `[A-Za-z_][A-Za-z0-9_.-]*`, or any quoted string followed by an
//!   operator.
//!
//! Comparisons: `<`, `<=`, `>`, `>=` compare as integers when both sides parse as `i128`,
//! else as IP addresses when both parse as [`IpAddr`], else as case-insensitive strings.
//! An object without the field fails every positive condition and passes every negative one
//! (`!=`, `!@`, `!^`, `!$`, `!~`, `not in`).
//!
//! Filters are limited to [`MAX_FILTER_LEN`] bytes and [`MAX_FILTER_DEPTH`] levels of
//! parentheses, so a hostile filter can neither exhaust the stack nor take long to parse.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use regex_lite::{Regex, RegexBuilder};

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;

/// The deepest nesting of parentheses accepted.
pub const MAX_FILTER_DEPTH: usize = 64;

/// The largest compiled regular expression accepted (bytes of the regex engine's program):
/// enough for any pattern a person writes, small enough that one match costs microseconds.
const MAX_REGEX_SIZE: usize = 8 * 1024;

/// A parsed filter.
#[derive(Clone, Debug)]
pub struct Filter {
    /// `None`: the empty filter, which matches everything.
    root: Option<Node>,
}

/// A filter that does not parse: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter syntax error at position {position}: {message}")]
pub struct FilterError {
    /// Where the problem is: a 0-based offset in characters (not bytes) into the filter string.
    pub position: usize,
    /// What is wrong, for humans.
    pub message: String,
}

/// What a filter is evaluated against: one object of a list.
pub trait Fields {
    /// The value of a field as text (field names are matched case-insensitively by the implementor;
    /// the caller passes the name as written in the filter). `None`: the object has no such field.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
    /// Whether a bare term (a value with no field) matches this object, e.g. free text in its name,
    /// or, for ranges, an address the range contains.
    fn free_text(&self, term: &str) -> bool;
}

impl Filter {
    /// Parses a filter. An empty or all-whitespace filter matches everything.
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        if s.len() > MAX_FILTER_LEN {
            // The first character that does not fit in the limit.
            let position = s
                .char_indices()
                .take_while(|&(at, c)| at + c.len_utf8() <= MAX_FILTER_LEN)
                .count();
            return Err(error(
                position,
                format!("the filter is longer than {MAX_FILTER_LEN} bytes"),
            ));
        }
        let mut parser = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        parser.skip_ws();
        if parser.at_end() {
            return Ok(Filter { root: None });
        }
        let root = parser.parse_or(0, &Context::Start)?;
        parser.skip_ws();
        match parser.peek() {
            None => Ok(Filter { root: Some(root) }),
            Some(')') => Err(error(parser.pos, "unmatched `)`")),
            Some(_) => Err(error(
                parser.pos,
                format!(
                    "expected `and` or `or`, found `{}`",
                    parser.snippet(parser.pos)
                ),
            )),
        }
    }

    /// Whether `obj` passes.
    pub fn matches(&self, obj: &dyn Fields) -> bool {
        self.root.as_ref().is_none_or(|root| root.matches(obj))
    }

    /// The bare terms in the filter (in order), for callers that can answer them from an index.
    pub fn bare_terms(&self) -> Vec<&str> {
        let mut terms = Vec::new();
        if let Some(root) = &self.root {
            root.collect_bare_terms(&mut terms);
        }
        terms
    }

    /// True when the filter is only one bare term (no fields, no and/or). Parentheses around
    /// the term do not count: `(myhost)` is a single bare term.
    pub fn is_single_bare_term(&self) -> bool {
        matches!(self.root, Some(Node::Bare(_)))
    }

    /// The addresses an object must lie in to match, when the filter says: bounds implied by
    /// conditions on the IP address field `field` (`=`, `==`, `<`, `<=`, `>`, `>=`, `in(...)`
    /// with addresses, `=^` with whole leading octets such as `10.16.`) and by bare terms that
    /// are addresses when `bare_is_address`; `and` intersects, `or` joins. `None`: no bound
    /// (the filter may match any address). Listings walk only these addresses.
    pub fn ip_bounds(&self, field: &str, bare_is_address: bool) -> Option<(IpAddr, IpAddr)> {
        match self.root.as_ref()?.ip_bounds(field, bare_is_address) {
            Bound::Any => None,
            Bound::Within(lo, hi) => Some((lo, hi)),
            // Nothing can match: an empty window.
            Bound::Nothing => Some((IpAddr::from([0, 0, 0, 1]), IpAddr::from([0, 0, 0, 0]))),
        }
    }

    /// A relative cost of testing one object, for work budgets: 1, plus the size of the
    /// regular expressions the filter runs (a long pattern costs more per object).
    pub fn cost(&self) -> u64 {
        self.root.as_ref().map_or(1, |n| 1 + n.regex_cost())
    }
}

/// What a filter implies about an address field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// Any address may match.
    Any,
    /// Only addresses in `lo..=hi` may match.
    Within(IpAddr, IpAddr),
    /// No address can match.
    Nothing,
}

const IP_MIN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
const IP_MAX: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
));

fn ip_step(a: IpAddr, up: bool) -> Option<IpAddr> {
    match a {
        IpAddr::V4(x) => {
            let n = u32::from(x);
            if up {
                n.checked_add(1)
            } else {
                n.checked_sub(1)
            }
            .map(|n| IpAddr::V4(n.into()))
        }
        IpAddr::V6(x) => {
            let n = u128::from(x);
            if up {
                n.checked_add(1)
            } else {
                n.checked_sub(1)
            }
            .map(|n| IpAddr::V6(n.into()))
        }
    }
}

impl Bound {
    fn within(lo: IpAddr, hi: IpAddr) -> Bound {
        if lo <= hi {
            Bound::Within(lo, hi)
        } else {
            Bound::Nothing
        }
    }

    fn and(self, other: Bound) -> Bound {
        match (self, other) {
            (Bound::Nothing, _) | (_, Bound::Nothing) => Bound::Nothing,
            (Bound::Any, b) | (b, Bound::Any) => b,
            (Bound::Within(a, b), Bound::Within(c, d)) => Bound::within(a.max(c), b.min(d)),
        }
    }

    fn or(self, other: Bound) -> Bound {
        match (self, other) {
            (Bound::Any, _) | (_, Bound::Any) => Bound::Any,
            (Bound::Nothing, b) | (b, Bound::Nothing) => b,
            (Bound::Within(a, b), Bound::Within(c, d)) => Bound::Within(a.min(c), b.max(d)),
        }
    }
}

/// The addresses that start with `text` as dotted IPv4 text, when `text` is one to three
/// whole octets followed by a dot (`10.`, `10.16.`, `192.168.1.`).
fn ipv4_prefix_bounds(text: &str) -> Option<(IpAddr, IpAddr)> {
    let body = text.strip_suffix('.')?;
    let octets: Vec<u8> = body
        .split('.')
        .map(|o| {
            (!o.is_empty() && o.len() <= 3)
                .then(|| o.parse::<u8>().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    if octets.is_empty() || octets.len() > 3 {
        return None;
    }
    let mut lo = [0u8; 4];
    let mut hi = [255u8; 4];
    for (i, o) in octets.iter().enumerate() {
        lo[i] = *o;
        hi[i] = *o;
    }
    Some((IpAddr::from(lo), IpAddr::from(hi)))
}

impl Node {
    fn ip_bounds(&self, field: &str, bare_is_address: bool) -> Bound {
        match self {
            Node::And(nodes) => nodes.iter().fold(Bound::Any, |b, n| {
                b.and(n.ip_bounds(field, bare_is_address))
            }),
            Node::Or(nodes) => nodes.iter().fold(Bound::Nothing, |b, n| {
                b.or(n.ip_bounds(field, bare_is_address))
            }),
            Node::Bare(term) => match term.parse::<IpAddr>() {
                Ok(a) if bare_is_address => Bound::Within(a, a),
                _ => Bound::Any,
            },
            Node::Condition(c) if c.negated || !c.field.eq_ignore_ascii_case(field) => Bound::Any,
            Node::Condition(c) => match &c.test {
                Test::Equal(v) | Test::Exact(v) => match v.ip {
                    Some(a) => Bound::Within(a, a),
                    None => Bound::Any,
                },
                Test::Compare(op, v) => match (v.ip, v.int) {
                    (Some(a), None) => match op {
                        Compare::Less => {
                            ip_step(a, false).map_or(Bound::Nothing, |b| Bound::within(IP_MIN, b))
                        }
                        Compare::LessOrEqual => Bound::Within(IP_MIN, a),
                        Compare::Greater => {
                            ip_step(a, true).map_or(Bound::Any, |b| Bound::within(b, IP_MAX))
                        }
                        Compare::GreaterOrEqual => Bound::Within(a, IP_MAX),
                    },
                    _ => Bound::Any,
                },
                Test::In(values) => values.iter().fold(Bound::Nothing, |b, v| match v.ip {
                    Some(a) => b.or(Bound::Within(a, a)),
                    None => Bound::Any,
                }),
                Test::StartsWith(v) => match ipv4_prefix_bounds(&v.raw) {
                    Some((lo, hi)) => Bound::Within(lo, hi),
                    None => Bound::Any,
                },
                _ => Bound::Any,
            },
        }
    }

    fn regex_cost(&self) -> u64 {
        match self {
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().map(Node::regex_cost).sum(),
            Node::Condition(Condition {
                test: Test::Regex(r),
                ..
            }) => r.as_str().len() as u64 / 8,
            _ => 0,
        }
    }
}

/// A node of the parsed expression. `And`/`Or` are flat lists, so a long chain of conditions
/// does not nest; only parentheses nest, and they are limited to [`MAX_FILTER_DEPTH`].
#[derive(Clone, Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Condition(Condition),
    Bare(String),
}

impl Node {
    fn matches(&self, obj: &dyn Fields) -> bool {
        match self {
            Node::And(nodes) => nodes.iter().all(|n| n.matches(obj)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(obj)),
            Node::Condition(condition) => condition.matches(obj),
            Node::Bare(term) => obj.free_text(term),
        }
    }

    fn collect_bare_terms<'a>(&'a self, terms: &mut Vec<&'a str>) {
        match self {
            Node::And(nodes) | Node::Or(nodes) => {
                for node in nodes {
                    node.collect_bare_terms(terms);
                }
            }
            Node::Condition(_) => {}
            Node::Bare(term) => terms.push(term),
        }
    }
}

/// `field <test>`, possibly negated (`!=`, `!@`, `!^`, `!$`, `!~`, `not in`).
#[derive(Clone, Debug)]
struct Condition {
    field: String,
    test: Test,
    negated: bool,
}

impl Condition {
    fn matches(&self, obj: &dyn Fields) -> bool {
        match obj.field(&self.field) {
            // A missing field fails the positive test, so it passes the negated one.
            None => self.negated,
            Some(value) => self.test.matches(&value) != self.negated,
        }
    }
}

/// The positive form of a condition's test.
#[derive(Clone, Debug)]
enum Test {
    /// `=`: case-insensitive equality.
    Equal(Value),
    /// `==`: exact equality.
    Exact(Value),
    /// `<`, `<=`, `>`, `>=`.
    Compare(Compare, Value),
    /// `=@`: case-insensitive substring.
    Contains(Value),
    /// `=^`: case-insensitive prefix.
    StartsWith(Value),
    /// `=$`: case-insensitive suffix.
    EndsWith(Value),
    /// `=~`: case-insensitive regular expression.
    Regex(Regex),
    /// `in(...)`: case-insensitive equality with any.
    In(Vec<Value>),
}

impl Test {
    fn matches(&self, field: &str) -> bool {
        match self {
            Test::Equal(value) => lowercase(field) == value.lower.as_str(),
            Test::Exact(value) => field == value.raw,
            Test::Compare(compare, value) => compare.accepts(compare_values(field, value)),
            Test::Contains(value) => lowercase(field).contains(value.lower.as_str()),
            Test::StartsWith(value) => lowercase(field).starts_with(value.lower.as_str()),
            Test::EndsWith(value) => lowercase(field).ends_with(value.lower.as_str()),
            Test::Regex(regex) => regex.is_match(field),
            Test::In(values) => {
                let field = lowercase(field);
                values.iter().any(|v| field == v.lower.as_str())
            }
        }
    }
}

/// An ordering comparison.
#[derive(Clone, Copy, Debug)]
enum Compare {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Compare {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Compare::Less => ordering == Ordering::Less,
            Compare::LessOrEqual => ordering != Ordering::Greater,
            Compare::Greater => ordering == Ordering::Greater,
            Compare::GreaterOrEqual => ordering != Ordering::Less,
        }
    }
}

/// A value from the filter, with the forms comparisons need computed once at parse time.
#[derive(Clone, Debug)]
struct Value {
    raw: String,
    lower: String,
    int: Option<i128>,
    ip: Option<IpAddr>,
}

impl Value {
    fn new(raw: String) -> Value {
        Value {
            lower: raw.to_lowercase(),
            int: raw.parse().ok(),
            ip: raw.parse().ok(),
            raw,
        }
    }
}

/// Orders a field's value against a filter value: as integers when both are integers, else as
/// IP addresses when both are addresses, else as case-insensitive strings.
fn compare_values(field: &str, value: &Value) -> Ordering {
    if let Some(int) = value.int {
        if let Ok(field) = field.parse::<i128>() {
            return field.cmp(&int);
        }
    }
    if let Some(ip) = value.ip {
        if let Ok(field) = field.parse::<IpAddr>() {
            return field.cmp(&ip);
        }
    }
    lowercase(field).as_ref().cmp(value.lower.as_str())
}

/// `s` in lower case, without allocating when it already is (the common case).
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// The operators of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    Exact,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Contains,
    NotContains,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Regex,
    NotRegex,
}

/// The operators as written, longest first so that `==` wins over `=`.
const OPERATORS: [(&str, Op); 15] = [
    ("==", Op::Exact),
    ("=@", Op::Contains),
    ("=^", Op::StartsWith),
    ("=$", Op::EndsWith),
    ("=~", Op::Regex),
    ("!=", Op::NotEqual),
    ("!@", Op::NotContains),
    ("!^", Op::NotStartsWith),
    ("!$", Op::NotEndsWith),
    ("!~", Op::NotRegex),
    ("<=", Op::LessOrEqual),
    (">=", Op::GreaterOrEqual),
    ("=", Op::Equal),
    ("<", Op::Less),
    (">", Op::Greater),
];

impl Op {
    /// Whether a missing value means the empty value (`name=`) rather than an error.
    fn allows_empty_value(self) -> bool {
        matches!(self, Op::Equal | Op::Exact | Op::NotEqual)
    }
}

/// `and` or `or`, however written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conjunction {
    And,
    Or,
}

/// What came before the condition being parsed, for error messages.
enum Context {
    /// The start of the filter.
    Start,
    /// A token, as written: `and`, `OR`, `&`, `(`.
    After(String),
}

fn error(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'')
}

/// A recursive-descent parser over the filter's characters; positions are character offsets.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.char_at(self.pos)
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    /// Whether the characters at `i` are exactly `s`.
    fn starts_with_at(&self, i: usize, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, c)| self.char_at(i + k) == Some(c))
    }

    /// The length of the keyword `word` (any case) at `i`, if it is there as a whole word.
    fn word_at(&self, i: usize, word: &str) -> Option<usize> {
        let len = word.chars().count();
        let matched = word.chars().enumerate().all(|(k, c)| {
            self.char_at(i + k)
                .is_some_and(|d| d.eq_ignore_ascii_case(&c))
        });
        let whole = !self.char_at(i + len).is_some_and(is_ident_char);
        (matched && whole).then_some(len)
    }

    /// The conjunction at `i` and its length in characters.
    fn conjunction_at(&self, i: usize) -> Option<(Conjunction, usize)> {
        if self.starts_with_at(i, "&&") {
            Some((Conjunction::And, 2))
        } else if self.starts_with_at(i, "&") {
            Some((Conjunction::And, 1))
        } else if self.starts_with_at(i, "||") {
            Some((Conjunction::Or, 2))
        } else if let Some(len) = self.word_at(i, "and") {
            Some((Conjunction::And, len))
        } else {
            self.word_at(i, "or").map(|len| (Conjunction::Or, len))
        }
    }

    /// The operator at `i` and its length in characters.
    fn operator_at(&self, i: usize) -> Option<(&'static str, Op)> {
        OPERATORS
            .iter()
            .find(|(symbol, _)| self.starts_with_at(i, symbol))
            .copied()
    }

    /// Where an unquoted value (or bare term) starting at `from` ends.
    fn unquoted_end(&self, from: usize, in_list: bool) -> usize {
        let mut i = from;
        while let Some(c) = self.char_at(i) {
            let ends = c.is_whitespace()
                || c == ')'
                || c == '&'
                || (c == '|' && self.char_at(i + 1) == Some('|'))
                || (in_list && c == ',');
            if ends {
                break;
            }
            i += 1;
        }
        i
    }

    /// A short quote of what is at `i`, for error messages.
    fn snippet(&self, i: usize) -> String {
        if let Some((_, len)) = self.conjunction_at(i) {
            return self.text(i, i + len);
        }
        match self.char_at(i) {
            None => return "the end of the filter".to_string(),
            Some(c @ ('(' | ')' | ',')) => return c.to_string(),
            Some(_) => {}
        }
        const MAX: usize = 24;
        let mut end = i;
        while self
            .char_at(end)
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, '(' | ')'))
        {
            if end - i == MAX {
                return format!("{}…", self.text(i, end));
            }
            end += 1;
        }
        self.text(i, end)
    }

    /// Conditions joined by `or`.
    fn parse_or(&mut self, depth: usize, context: &Context) -> Result<Node, FilterError> {
        let mut nodes = vec![self.parse_and(depth, context)?];
        loop {
            self.skip_ws();
            match self.conjunction_at(self.pos) {
                Some((Conjunction::Or, len)) => {
                    let after = Context::After(self.text(self.pos, self.pos + len));
                    self.pos += len;
                    nodes.push(self.parse_and(depth, &after)?);
                }
                _ => break,
            }
        }
        Ok(if nodes.len() == 1 {
            nodes.swap_remove(0)
        } else {
            Node::Or(nodes)
        })
    }

    /// Conditions joined by `and`.
    fn parse_and(&mut self, depth: usize, context: &Context) -> Result<Node, FilterError> {
        let mut nodes = vec![self.parse_primary(depth, context)?];
        loop {
            self.skip_ws();
            match self.conjunction_at(self.pos) {
                Some((Conjunction::And, len)) => {
                    let after = Context::After(self.text(self.pos, self.pos + len));
                    self.pos += len;
                    nodes.push(self.parse_primary(depth, &after)?);
                }
                _ => break,
            }
        }
        Ok(if nodes.len() == 1 {
            nodes.swap_remove(0)
        } else {
            Node::And(nodes)
        })
    }

    /// The error for a missing condition at the current position.
    fn expected_condition(&self, context: &Context) -> FilterError {
        let found = self.snippet(self.pos);
        let message = match (context, self.peek()) {
            (Context::Start, Some(')')) => "unmatched `)`".to_string(),
            (Context::Start, _) => format!("expected a condition before `{found}`"),
            (Context::After(token), None) => format!("expected a condition after `{token}`"),
            (Context::After(token), Some(_)) => {
                format!("expected a condition after `{token}`, found `{found}`")
            }
        };
        error(self.pos, message)
    }

    /// A parenthesized expression, a condition or a bare term.
    fn parse_primary(&mut self, depth: usize, context: &Context) -> Result<Node, FilterError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.expected_condition(context));
        };
        if c == '(' {
            if depth >= MAX_FILTER_DEPTH {
                return Err(error(
                    start,
                    format!("parentheses nest deeper than {MAX_FILTER_DEPTH} levels"),
                ));
            }
            self.pos += 1;
            let inner = self.parse_or(depth + 1, &Context::After("(".to_string()))?;
            self.skip_ws();
            return match self.peek() {
                Some(')') => {
                    self.pos += 1;
                    Ok(inner)
                }
                None => Err(error(
                    self.pos,
                    format!("unclosed `(` opened at position {start}"),
                )),
                Some(_) => Err(error(
                    self.pos,
                    format!(
                        "expected `and`, `or` or `)`, found `{}`",
                        self.snippet(self.pos)
                    ),
                )),
            };
        }
        if c == ')' || self.conjunction_at(start).is_some() {
            return Err(self.expected_condition(context));
        }
        if let Some((symbol, _)) = self.operator_at(start) {
            return Err(error(
                start,
                format!("expected a field name before `{symbol}`"),
            ));
        }
        if is_quote(c) {
            let text = self.parse_quoted()?;
            return Ok(match self.parse_condition_after_field(&text)? {
                Some(condition) => Node::Condition(condition),
                None => Node::Bare(text),
            });
        }
        if is_ident_start(c) {
            let mut end = start;
            while self.char_at(end).is_some_and(is_ident_char) {
                end += 1;
            }
            let field = self.text(start, end);
            self.pos = end;
            if let Some(condition) = self.parse_condition_after_field(&field)? {
                return Ok(Node::Condition(condition));
            }
            self.pos = start;
        }
        // A bare term: it runs like an unquoted value. An operator inside it means the text
        // before the operator was meant as a field name but is not an identifier.
        let end = self.unquoted_end(start, false);
        if let Some(op_at) = (start..end).find(|&i| self.operator_at(i).is_some()) {
            return Err(error(
                start,
                format!(
                    "`{}` is not a valid field name (use letters, digits, `_`, `.` and `-`, \
                     or quote it)",
                    self.text(start, op_at)
                ),
            ));
        }
        if end == start {
            // Not reachable: the characters that end an unquoted value at `start` were
            // handled above, but an error beats a loop that makes no progress.
            return Err(self.expected_condition(context));
        }
        self.pos = end;
        Ok(Node::Bare(self.text(start, end)))
    }

    /// After a field name: an operator and its value, or `in(...)` / `not in(...)`.
    /// `None` (with the position unchanged) when neither follows.
    fn parse_condition_after_field(
        &mut self,
        field: &str,
    ) -> Result<Option<Condition>, FilterError> {
        let after_field = self.pos;
        self.skip_ws();
        let op_pos = self.pos;
        if let Some((symbol, op)) = self.operator_at(op_pos) {
            self.pos += symbol.len(); // Operators are ASCII: bytes are characters.
            return self.parse_value(field, symbol, op).map(Some);
        }
        if let Some(len) = self.word_at(op_pos, "in") {
            self.pos = op_pos + len;
            return self.parse_in_list(field, false).map(Some);
        }
        if let Some(len) = self.word_at(op_pos, "not") {
            let mut i = op_pos + len;
            while self.char_at(i).is_some_and(char::is_whitespace) {
                i += 1;
            }
            if i > op_pos + len {
                if let Some(len) = self.word_at(i, "in") {
                    self.pos = i + len;
                    return self.parse_in_list(field, true).map(Some);
                }
            }
        }
        self.pos = after_field;
        Ok(None)
    }

    /// The value after an operator, and the condition it makes.
    fn parse_value(&mut self, field: &str, symbol: &str, op: Op) -> Result<Condition, FilterError> {
        let after_op = self.pos;
        self.skip_ws();
        let value_pos = self.pos;
        let raw = if self.peek().is_some_and(is_quote) {
            self.parse_quoted()?
        } else {
            let end = self.unquoted_end(value_pos, false);
            // `name= and x=1`: with a space after the operator, `and`/`or` is the conjunction.
            let conjunction_follows =
                value_pos > after_op && self.conjunction_at(value_pos).is_some();
            if end == value_pos || conjunction_follows {
                if !op.allows_empty_value() {
                    return Err(error(
                        value_pos,
                        format!("expected a value after `{symbol}`"),
                    ));
                }
                String::new()
            } else {
                self.pos = end;
                self.text(value_pos, end)
            }
        };
        let value = Value::new(raw);
        let (test, negated) = match op {
            Op::Equal => (Test::Equal(value), false),
            Op::NotEqual => (Test::Equal(value), true),
            Op::Exact => (Test::Exact(value), false),
            Op::Less => (Test::Compare(Compare::Less, value), false),
            Op::LessOrEqual => (Test::Compare(Compare::LessOrEqual, value), false),
            Op::Greater => (Test::Compare(Compare::Greater, value), false),
            Op::GreaterOrEqual => (Test::Compare(Compare::GreaterOrEqual, value), false),
            Op::Contains => (Test::Contains(value), false),
            Op::NotContains => (Test::Contains(value), true),
            Op::StartsWith => (Test::StartsWith(value), false),
            Op::NotStartsWith => (Test::StartsWith(value), true),
            Op::EndsWith => (Test::EndsWith(value), false),
            Op::NotEndsWith => (Test::EndsWith(value), true),
            Op::Regex | Op::NotRegex => {
                let regex = RegexBuilder::new(&format!("(?i){}", value.raw))
                    .size_limit(MAX_REGEX_SIZE)
                    .build()
                    .map_err(|e| error(value_pos, format!("invalid regular expression: {e}")))?;
                (Test::Regex(regex), op == Op::NotRegex)
            }
        };
        Ok(Condition {
            field: field.to_string(),
            test,
            negated,
        })
    }

    /// `(v1, v2, ...)` after `in` / `not in`.
    fn parse_in_list(&mut self, field: &str, negated: bool) -> Result<Condition, FilterError> {
        self.skip_ws();
        let open = self.pos;
        if self.peek() != Some('(') {
            let keyword = if negated { "not in" } else { "in" };
            return Err(error(
                open,
                format!(
                    "expected `(` after `{keyword}`, found `{}`",
                    self.snippet(open)
                ),
            ));
        }
        self.pos += 1;
        let unclosed = |pos: usize| error(pos, format!("unclosed `(` opened at position {open}"));
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let value_pos = self.pos;
            match self.peek() {
                None => return Err(unclosed(value_pos)),
                Some(')') if values.is_empty() => {
                    return Err(error(
                        value_pos,
                        "empty `in()` list: expected at least one value",
                    ));
                }
                Some(')') => return Err(error(value_pos, "expected a value after `,`")),
                Some(',') if values.is_empty() => {
                    return Err(error(value_pos, "expected a value before `,`"));
                }
                Some(',') => return Err(error(value_pos, "expected a value after `,`")),
                Some(c) if is_quote(c) => values.push(Value::new(self.parse_quoted()?)),
                Some(_) => {
                    let end = self.unquoted_end(value_pos, true);
                    if end == value_pos {
                        return Err(error(
                            value_pos,
                            format!(
                                "expected a value in the `in(...)` list, found `{}`",
                                self.snippet(value_pos)
                            ),
                        ));
                    }
                    values.push(Value::new(self.text(value_pos, end)));
                    self.pos = end;
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(unclosed(self.pos)),
                Some(_) => {
                    return Err(error(
                        self.pos,
                        format!(
                            "expected `,` or `)` in the `in(...)` list, found `{}`",
                            self.snippet(self.pos)
                        ),
                    ));
                }
            }
        }
        Ok(Condition {
            field: field.to_string(),
            test: Test::In(values),
            negated,
        })
    }

    /// A quoted string starting at the current position (which is a quote character).
    fn parse_quoted(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        let Some(quote) = self.peek() else {
            return Err(error(open, "expected a quoted string"));
        };
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(error(
                        self.pos,
                        format!("unterminated `{quote}` opened at position {open}"),
                    ));
                }
                Some('\\') => match self.char_at(self.pos + 1) {
                    Some(c) if c == quote || c == '\\' => {
                        text.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        text.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test object: named fields and a free-text name; if `range` is set, bare IPv4 terms
    /// match when the range contains them.
    struct Obj {
        fields: Vec<(&'static str, &'static str)>,
        name: &'static str,
        range: Option<(u32, u32)>,
    }

    fn obj(fields: &[(&'static str, &'static str)]) -> Obj {
        let name = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("name"))
            .map_or("", |(_, v)| *v);
        Obj {
            fields: fields.to_vec(),
            name,
            range: None,
        }
    }

    fn range(cidr: &'static str) -> Obj {
        let (addr, len) = cidr.split_once('/').unwrap();
        let addr = u32::from(addr.parse::<std::net::Ipv4Addr>().unwrap());
        let len: u32 = len.parse().unwrap();
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let mut o = obj(&[("name", cidr)]);
        o.range = Some((addr & mask, (addr & mask) | !mask));
        o
    }

    impl Fields for Obj {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            self.fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| Cow::Borrowed(*v))
        }
        fn free_text(&self, term: &str) -> bool {
            if let (Some((lo, hi)), Ok(ip)) = (self.range, term.parse::<std::net::Ipv4Addr>()) {
                let ip = u32::from(ip);
                return lo <= ip && ip <= hi;
            }
            self.name.to_lowercase().contains(&term.to_lowercase())
        }
    }

    fn parse(s: &str) -> Filter {
        Filter::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn m(filter: &str, o: &Obj) -> bool {
        parse(filter).matches(o)
    }

    fn err(s: &str) -> FilterError {
        match Filter::parse(s) {
            Ok(f) => panic!("{s:?} should not parse, got {f:?}"),
            Err(e) => e,
        }
    }

    fn err_at(s: &str, position: usize, message_part: &str) {
        let e = err(s);
        assert_eq!(e.position, position, "{s:?}: {e}");
        assert!(
            e.message.contains(message_part),
            "{s:?}: message {:?} should contain {message_part:?}",
            e.message
        );
    }

    fn www() -> Obj {
        obj(&[
            ("name", "www.Example.com"),
            ("type", "A"),
            ("ttl", "3600"),
            ("data", "10.0.0.10"),
        ])
    }

    // --- empty ---

    #[test]
    fn empty_matches_everything() {
        for s in ["", "   ", "\t\n "] {
            let f = parse(s);
            assert!(f.matches(&www()));
            assert!(f.matches(&obj(&[])));
            assert!(f.bare_terms().is_empty());
            assert!(!f.is_single_bare_term());
        }
    }

    // --- operators ---

    #[test]
    fn equal_is_case_insensitive() {
        assert!(m("name=www.example.com", &www()));
        assert!(m("name=WWW.EXAMPLE.COM", &www()));
        assert!(m("NAME=www.example.com", &www()));
        assert!(!m("name=www.example", &www()));
        assert!(!m("name=ww.example.com", &www()));
    }

    #[test]
    fn exact_is_case_sensitive() {
        assert!(m("name==www.Example.com", &www()));
        assert!(!m("name==www.example.com", &www()));
        assert!(!m("name==www.Example.co", &www()));
    }

    #[test]
    fn not_equal_negates_equal() {
        assert!(!m("type!=A", &www()));
        assert!(!m("type!=a", &www()));
        assert!(m("type!=AAAA", &www()));
    }

    #[test]
    fn contains() {
        assert!(m("name=@example", &www()));
        assert!(m("name=@EXAMPLE", &www()));
        assert!(!m("name=@sample", &www()));
        assert!(!m("name!@example", &www()));
        assert!(m("name!@sample", &www()));
    }

    #[test]
    fn starts_with() {
        assert!(m("name=^WWW.", &www()));
        assert!(!m("name=^example", &www()));
        assert!(!m("name!^www", &www()));
        assert!(m("name!^example", &www()));
    }

    #[test]
    fn ends_with() {
        assert!(m("name=$.COM", &www()));
        assert!(!m("name=$www", &www()));
        assert!(!m("name!$com", &www()));
        assert!(m("name!$www", &www()));
    }

    #[test]
    fn regex_is_case_insensitive() {
        assert!(m("name=~^www\\.example", &www()));
        assert!(m("name=~^WWW", &www()));
        assert!(m("name=~'^w+\\.[a-z]+\\.com$'", &www()));
        assert!(m("name=~\"^(www|mail)\\.\"", &www()));
        assert!(!m("name=~^mail", &www()));
        assert!(!m("name!~^www", &www()));
        assert!(m("name!~^mail", &www()));
        assert!(m("ttl=~\"^\\d+$\"", &www()));
        // Unquoted `|` is part of the value (only `||` is a conjunction).
        assert!(m("name=~^mail|^www", &www()));
    }

    #[test]
    fn bad_regex_is_an_error_at_the_value() {
        err_at("name=~(abc", 6, "invalid regular expression");
        err_at("name =~ \"[a-\"", 8, "invalid regular expression");
        err_at("type=A and name!~*x", 17, "invalid regular expression");
    }

    #[test]
    fn comparisons_numeric() {
        // As strings "3600" < "900", as integers 3600 > 900.
        assert!(m("ttl>900", &www()));
        assert!(m("ttl>=3600", &www()));
        assert!(!m("ttl>3600", &www()));
        assert!(m("ttl<=3600", &www()));
        assert!(!m("ttl<3600", &www()));
        assert!(m("ttl<36000", &www()));
        assert!(m("ttl>-1", &www()));
    }

    #[test]
    fn comparisons_ip() {
        // As strings "10.0.0.10" < "10.0.0.9", as addresses it is greater.
        assert!(m("data>10.0.0.9", &www()));
        assert!(!m("data<10.0.0.9", &www()));
        assert!(m("data>=10.0.0.10", &www()));
        assert!(m("data<=10.0.0.10", &www()));
        assert!(!m("data<10.0.0.10", &www()));
        let v6 = obj(&[("address", "2001:db8::10")]);
        assert!(m("address>2001:db8::9", &v6));
        assert!(m("address<2001:db8::1:0", &v6));
        assert!(!m("address<2001:db8::f", &v6));
    }

    #[test]
    fn comparisons_string() {
        assert!(m("name>www.a", &www()));
        assert!(m("name>WWW.A", &www()));
        assert!(m("name<www.f", &www()));
        assert!(m("name<=WWW.EXAMPLE.COM", &www()));
        assert!(m("name>=www.example.com", &www()));
        assert!(!m("name<www.example.com", &www()));
        // Mixed kinds fall back to strings: "3600" vs "abc".
        assert!(m("ttl<abc", &www()));
        // An integer value against a non-integer field compares as strings.
        assert!(m("name>5", &www()));
    }

    #[test]
    fn in_and_not_in() {
        assert!(m("type in(A, AAAA)", &www()));
        assert!(m("type in (a,aaaa)", &www()));
        assert!(m("type IN(cname,'a')", &www()));
        assert!(!m("type in(AAAA,CNAME)", &www()));
        assert!(!m("type not in(A,AAAA)", &www()));
        assert!(m("type NOT IN (aaaa, \"cname\")", &www()));
        assert!(m("type Not In(MX)", &www()));
        assert!(m("name in(\"www.example.com\")", &www()));
        assert!(m("type in( A )", &www()));
        assert!(m("(type in(A)) and ttl in(3600)", &www()));
        // Values with spaces or commas need quotes.
        let o = obj(&[("location", "Room 1, floor 2")]);
        assert!(m("location in(\"room 1, floor 2\", x)", &o));
    }

    #[test]
    fn missing_field_fails_positive_passes_negative() {
        let o = www();
        for positive in [
            "nope=x",
            "nope=",
            "nope==x",
            "nope<5",
            "nope<=5",
            "nope>5",
            "nope>=5",
            "nope=@x",
            "nope=^x",
            "nope=$x",
            "nope=~.*",
            "nope in(x)",
        ] {
            assert!(!m(positive, &o), "{positive}");
        }
        for negative in [
            "nope!=x",
            "nope!=",
            "nope!@x",
            "nope!^x",
            "nope!$x",
            "nope!~.*",
            "nope not in(x)",
        ] {
            assert!(m(negative, &o), "{negative}");
        }
    }

    #[test]
    fn empty_value_after_equality() {
        let o = obj(&[("comment", ""), ("name", "x")]);
        assert!(m("comment=", &o));
        assert!(m("comment==", &o));
        assert!(!m("comment!=", &o));
        assert!(!m("name=", &o));
        assert!(m("name!=", &o));
        assert!(m("comment= and name=x", &o));
        assert!(m("comment=&name=x", &o));
        assert!(m("(comment=)", &o));
        assert!(m("comment=\"\"", &o));
        assert!(m("name=@\"\"", &o));
        // Without a space, `and` right after the operator is the value.
        assert!(m("name=and", &obj(&[("name", "AND")])));
    }

    #[test]
    fn whitespace_around_operators() {
        assert!(m("name = www.example.com", &www()));
        assert!(m("name    =@   example", &www()));
        assert!(m("ttl >= 3600 and type != AAAA", &www()));
        assert!(m("  type=A  ", &www()));
    }

    #[test]
    fn field_names() {
        let o = obj(&[
            ("custom.prop-1", "x"),
            ("_private", "y"),
            ("My Property", "z"),
        ]);
        assert!(m("custom.prop-1=x", &o));
        assert!(m("_private=Y", &o));
        assert!(m("\"My Property\"=z", &o));
        assert!(m("'my property' in(z)", &o));
        assert!(m("\"my property\" not in(a)", &o));
    }

    #[test]
    fn identifiers_starting_with_keywords() {
        let o = obj(&[
            ("order", "1"),
            ("android", "2"),
            ("index", "3"),
            ("notes", "4"),
            ("in", "5"),
        ]);
        assert!(m("order=1 and android=2 or index=0", &o));
        assert!(m("notes=4 && in=5", &o));
        assert!(m("in in(5) and notes not in(5)", &o));
        assert!(m("ornament", &obj(&[("name", "Ornaments")])));
        assert!(parse("in").is_single_bare_term());
        assert!(parse("not").is_single_bare_term());
    }

    #[test]
    fn field_name_is_passed_as_written() {
        struct Recorder(std::cell::RefCell<Vec<String>>);
        impl Fields for Recorder {
            fn field(&self, name: &str) -> Option<Cow<'_, str>> {
                self.0.borrow_mut().push(name.to_string());
                None
            }
            fn free_text(&self, _: &str) -> bool {
                false
            }
        }
        let r = Recorder(Default::default());
        parse("Location=@x or 'Custom Prop'=y").matches(&r);
        assert_eq!(*r.0.borrow(), ["Location", "Custom Prop"]);
    }

    // --- and / or ---

    #[test]
    fn and_binds_tighter_than_or() {
        let o = obj(&[("a", "1"), ("b", "0"), ("c", "0")]);
        // a or (b and c)
        assert!(m("a=1 or b=1 and c=1", &o));
        // (a or b) and c
        assert!(!m("(a=1 or b=1) and c=1", &o));
        // (b and c) or a
        assert!(m("b=1 and c=1 or a=1", &o));
        let o = obj(&[("a", "0"), ("b", "1"), ("c", "0")]);
        assert!(!m("a=1 or b=1 and c=1", &o));
        assert!(m("a=1 or b=1 and c=0", &o));
    }

    #[test]
    fn conjunctions_any_case_and_symbols() {
        let o = www();
        assert!(m("type=A AND ttl=3600", &o));
        assert!(m("type=A And ttl=3600", &o));
        assert!(!m("type=A aNd ttl=1", &o));
        assert!(m("type=MX OR ttl=3600", &o));
        assert!(m("type=MX Or ttl=3600", &o));
        assert!(m("type=A&ttl=3600", &o));
        assert!(!m("type=A&ttl=1", &o));
        assert!(m("type=A && ttl=3600", &o));
        assert!(m("type=A&&ttl=3600", &o));
        assert!(m("type=MX || ttl=3600", &o));
        assert!(m("type=MX||ttl=3600", &o));
        assert!(!m("type=MX||ttl=1", &o));
        assert!(m("(type=MX)or(ttl=3600)", &o));
        assert!(m("type=\"A\"and ttl=3600", &o));
    }

    #[test]
    fn parentheses() {
        let o = www();
        assert!(m("(type=A)", &o));
        assert!(m("((((type=A))))", &o));
        assert!(m("(type=MX or type=A) and (ttl=1 or ttl=3600)", &o));
        assert!(!m("(type=MX or type=A) and (ttl=1 or ttl=2)", &o));
        assert!(m("type=MX or (type=A and (ttl=1 or name=@example))", &o));
        assert!(m("( type = A )", &o));
    }

    #[test]
    fn long_flat_chain_does_not_nest() {
        let chain = vec!["type=A"; 500].join(" and ");
        assert!(m(&chain, &www()));
        let chain = vec!["type=MX"; 500].join(" or ") + " or type=A";
        assert!(m(&chain, &www()));
    }

    // --- values ---

    #[test]
    fn quoted_values() {
        let o = obj(&[
            ("name", "my host"),
            ("comment", "a: b (c) & d"),
            ("q", "say \"hi\""),
            ("s", "it's"),
            ("b", "back\\slash"),
        ]);
        assert!(m("name=\"my host\"", &o));
        assert!(m("name='MY HOST'", &o));
        assert!(m("comment=\"a: b (c) & d\"", &o));
        assert!(m("comment=@': b (c) &'", &o));
        assert!(m("q=\"say \\\"hi\\\"\"", &o));
        assert!(m("q='say \"hi\"'", &o));
        assert!(m("s='it\\'s'", &o));
        assert!(m("s=\"it's\"", &o));
        assert!(m("b=\"back\\\\slash\"", &o));
        // A backslash before anything else is kept.
        assert!(m("b=\"back\\slash\"", &o));
        assert!(m("b=back\\slash", &o));
        assert!(!m("name=my", &o));
    }

    #[test]
    fn unquoted_values_with_colons_slashes_dots() {
        let o = obj(&[
            ("name", "192.168.2.0/24"),
            ("address", "2001:db8::1"),
            ("host", "_acme-challenge.www.example.com."),
            ("url", "http://x/y?a=b"),
        ]);
        assert!(m("name=192.168.2.0/24", &o));
        assert!(m("address=2001:DB8::1", &o));
        assert!(m("host=_acme-challenge.www.example.com.", &o));
        assert!(m("url=http://x/y?a=b", &o));
    }

    // --- bare terms ---

    #[test]
    fn bare_terms() {
        let f = parse("10.0.1.50");
        assert!(f.is_single_bare_term());
        assert_eq!(f.bare_terms(), ["10.0.1.50"]);
        assert!(f.matches(&range("10.0.1.0/24")));
        assert!(!f.matches(&range("10.0.2.0/24")));

        let f = parse("myhost");
        assert!(f.is_single_bare_term());
        assert!(f.matches(&obj(&[("name", "MyHost.example.com")])));
        assert!(!f.matches(&obj(&[("name", "other")])));

        let f = parse("\"my host\"");
        assert!(f.is_single_bare_term());
        assert_eq!(f.bare_terms(), ["my host"]);
        assert!(f.matches(&obj(&[("name", "is my host")])));

        let f = parse("(myhost)");
        assert!(f.is_single_bare_term());

        let f = parse("a and type=A or (b or 'c d')");
        assert!(!f.is_single_bare_term());
        assert_eq!(f.bare_terms(), ["a", "b", "c d"]);
        assert!(!parse("type=A").is_single_bare_term());
        assert!(parse("type=A").bare_terms().is_empty());
        assert!(!parse("a or b").is_single_bare_term());
    }

    #[test]
    fn ipv6_bare_terms() {
        for term in [
            "2001:db8::1",
            "fe80::1",
            "::1",
            "::",
            "2001:DB8:0:0:1::/64",
            "::ffff:10.0.0.1",
        ] {
            let f = parse(term);
            assert!(f.is_single_bare_term(), "{term}");
            assert_eq!(f.bare_terms(), [term]);
        }
        let f = parse("2001:db8::1 or fe80::1 and type=AAAA");
        assert_eq!(f.bare_terms(), ["2001:db8::1", "fe80::1"]);
        let o = obj(&[("name", "host 2001:db8::1")]);
        assert!(parse("2001:db8::1").matches(&o));
    }

    #[test]
    fn bare_terms_combined_with_conditions() {
        let o = obj(&[("name", "web1"), ("type", "A")]);
        assert!(m("web and type=A", &o));
        assert!(!m("web and type=MX", &o));
        assert!(m("mail or type=A", &o));
        assert!(m("!web1", &obj(&[("name", "!web1")])));
    }

    // --- the filters real clients send ---

    #[test]
    fn client_examples() {
        let net = obj(&[("name", "192.168.2.0/24")]);
        assert!(m("name=192.168.2.0/24", &net));
        assert!(!m("name=192.168.2.0/25", &net));

        let f = parse("10.0.1.50");
        assert!(f.is_single_bare_term());
        assert!(f.matches(&range("10.0.0.0/16")));

        let rec = obj(&[("name", "www"), ("type", "A")]);
        assert!(m("type=A and name=www", &rec));
        assert!(!m("type=A and name=mail", &rec));

        let acme = obj(&[("name", "_acme-challenge.www"), ("type", "TXT")]);
        assert!(m("name=_acme-challenge.www&type=TXT", &acme));
        assert!(!m("name=_acme-challenge.www&type=A", &acme));

        let f = "(state=Assigned or state=Claimed) and Location=@here";
        assert!(m(
            f,
            &obj(&[("state", "Claimed"), ("location", "over HERE")])
        ));
        assert!(m(f, &obj(&[("state", "assigned"), ("location", "here")])));
        assert!(!m(f, &obj(&[("state", "Free"), ("location", "here")])));
        assert!(!m(
            f,
            &obj(&[("state", "Assigned"), ("location", "basement")])
        ));
        assert!(!m(f, &obj(&[("state", "Assigned")])));

        let f = "name=\"my host\" AND type!=PTR";
        assert!(m(f, &obj(&[("name", "My Host"), ("type", "A")])));
        assert!(m(f, &obj(&[("name", "my host")])));
        assert!(!m(f, &obj(&[("name", "my host"), ("type", "PTR")])));
        assert!(!m(f, &obj(&[("name", "my"), ("type", "A")])));
    }

    // --- errors ---

    #[test]
    fn error_unbalanced_parentheses() {
        err_at("(type=A", 7, "unclosed `(` opened at position 0");
        err_at("type=A and (ttl=1 or (name=x)", 29, "opened at position 11");
        err_at("type=A)", 6, "unmatched `)`");
        err_at("(type=A))", 8, "unmatched `)`");
        err_at(")", 0, "unmatched `)`");
        err_at("()", 1, "expected a condition after `(`, found `)`");
        err_at(
            "(type=A name=x)",
            8,
            "expected `and`, `or` or `)`, found `name=x`",
        );
    }

    #[test]
    fn error_operator_without_field() {
        err_at("=foo", 0, "expected a field name before `=`");
        err_at("type=A and =@foo", 11, "expected a field name before `=@`");
        err_at("( !~x)", 2, "expected a field name before `!~`");
        err_at(">= 5", 0, "expected a field name before `>=`");
        err_at("10.0.0.1=x", 0, "`10.0.0.1` is not a valid field name");
        err_at("a=1 or 1abc>2", 7, "`1abc` is not a valid field name");
    }

    #[test]
    fn error_field_without_operator() {
        err_at("name foo", 5, "expected `and` or `or`, found `foo`");
        err_at("type=A name=x", 7, "expected `and` or `or`, found `name=x`");
        err_at("\"my host\" x", 10, "found `x`");
        err_at("name in", 7, "expected `(` after `in`");
        err_at(
            "name not in x",
            12,
            "expected `(` after `not in`, found `x`",
        );
        err_at("name not x", 5, "expected `and` or `or`, found `not`");
        err_at("a=1 | b=2", 4, "expected `and` or `or`, found `|`");
    }

    #[test]
    fn error_missing_value() {
        for op in [
            "=@", "!@", "=^", "!^", "=$", "!$", "=~", "!~", "<", "<=", ">", ">=",
        ] {
            let s = format!("name{op}");
            let e = err(&s);
            assert_eq!(e.position, s.len(), "{s}");
            assert_eq!(e.message, format!("expected a value after `{op}`"));
        }
        err_at("name=@ and type=A", 7, "expected a value after `=@`");
        err_at("name=@&type=A", 6, "expected a value after `=@`");
        err_at("(name<)", 6, "expected a value after `<`");
        err_at("name >  ", 8, "expected a value after `>`");
    }

    #[test]
    fn error_unterminated_quote() {
        err_at(
            "name=\"my host",
            13,
            "unterminated `\"` opened at position 5",
        );
        err_at("'abc", 4, "unterminated `'` opened at position 0");
        err_at("name='it\\'s", 11, "opened at position 5");
        err_at("name in(\"a", 10, "unterminated `\"` opened at position 8");
    }

    #[test]
    fn error_dangling_conjunction() {
        err_at("type=A and", 10, "expected a condition after `and`");
        err_at("type=A OR ", 10, "expected a condition after `OR`");
        err_at("type=A &", 8, "expected a condition after `&`");
        err_at("type=A ||", 9, "expected a condition after `||`");
        err_at(
            "(type=A and)",
            11,
            "expected a condition after `and`, found `)`",
        );
        err_at("and type=A", 0, "expected a condition before `and`");
        err_at("&type=A", 0, "expected a condition before `&`");
        err_at(
            "type=A and or ttl=1",
            11,
            "expected a condition after `and`, found `or`",
        );
        err_at("type=A & & ttl=1", 9, "found `&`");
    }

    #[test]
    fn error_in_lists() {
        err_at("type in()", 8, "empty `in()` list");
        err_at("type in ( )", 10, "empty `in()` list");
        err_at("type not in()", 12, "empty `in()` list");
        err_at("type in(A,)", 10, "expected a value after `,`");
        err_at("type in(A,,B)", 10, "expected a value after `,`");
        err_at("type in(,A)", 8, "expected a value before `,`");
        err_at("type in(A", 9, "unclosed `(` opened at position 7");
        err_at("type in(A, ", 11, "unclosed `(` opened at position 7");
        err_at("type in(A B)", 10, "expected `,` or `)`");
        err_at("type in(A&B)", 9, "expected `,` or `)`");
    }

    #[test]
    fn error_positions_count_characters_not_bytes() {
        err_at("name=\"héllo wörld", 17, "opened at position 5");
        err_at("\"ünïcode\"=x and", 15, "expected a condition after `and`");
        // Unquoted field names are ASCII identifiers.
        err_at("x=1 or ünïcode=x", 7, "`ünïcode` is not a valid field name");
    }

    #[test]
    fn error_display() {
        let e = err("(a=1");
        assert_eq!(
            e.to_string(),
            "filter syntax error at position 4: unclosed `(` opened at position 0"
        );
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{}type=A{}", "(".repeat(n), ")".repeat(n));
        assert!(m(&nested(MAX_FILTER_DEPTH), &www()));
        err_at(
            &nested(MAX_FILTER_DEPTH + 1),
            MAX_FILTER_DEPTH,
            "nest deeper than 64",
        );
        // Far deeper than the limit fails the same way, without overflowing the stack.
        err_at(&nested(4000), MAX_FILTER_DEPTH, "nest deeper than 64");
        err_at(&"(".repeat(8000), MAX_FILTER_DEPTH, "nest deeper than 64");
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("name={}", "x".repeat(MAX_FILTER_LEN - 5));
        assert_eq!(at_limit.len(), MAX_FILTER_LEN);
        assert!(Filter::parse(&at_limit).is_ok());
        let over = format!("{at_limit}x");
        err_at(&over, MAX_FILTER_LEN, "longer than 8192 bytes");
        // Positions are characters: 4096 two-byte characters fill the limit.
        let wide = "é".repeat(MAX_FILTER_LEN / 2 + 10);
        err_at(&wide, MAX_FILTER_LEN / 2, "longer than");
    }

    #[test]
    fn unmatched_paren_after_unquoted_value() {
        err_at("name=192.168.2.0/24)", 19, "unmatched `)`");
    }

    #[test]
    fn address_conditions_give_the_walk_its_bounds() {
        let b = |f: &str| Filter::parse(f).unwrap().ip_bounds("address", true);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            b("address=10.1.2.3"),
            Some((ip("10.1.2.3"), ip("10.1.2.3")))
        );
        assert_eq!(
            b("address>=10.1.0.0 and address<10.1.1.0 and Owner=x"),
            Some((ip("10.1.0.0"), ip("10.1.0.255")))
        );
        assert_eq!(
            b("address in(10.0.0.9, 10.0.0.3) or 10.0.0.5"),
            Some((ip("10.0.0.3"), ip("10.0.0.9")))
        );
        assert_eq!(
            b("address=^10.16."),
            Some((ip("10.16.0.0"), ip("10.16.255.255")))
        );
        // Anything the address does not bound leaves the walk whole.
        for f in [
            "",
            "Owner=x",
            "address!=10.0.0.1",
            "address=10.0.0.1 or Owner=x",
            "address=~\"^10\"",
            "address=^10.1",
        ] {
            assert_eq!(b(f), None, "{f}");
        }
        // Contradictions: an empty window.
        let (lo, hi) = b("address>10.0.0.9 and address<10.0.0.3").unwrap();
        assert!(lo > hi);
        assert_eq!(Filter::parse("x=~\"(a)(b)\"").unwrap().cost(), 2);
        assert!(Filter::parse(&format!("x=~\"{}\"", "(.{0,9}){0,9}".repeat(20))).is_err());
    }
}
