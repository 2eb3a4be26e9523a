//! Request parameters: the query string and a JSON body merged into one map (clients send
//! either, even on GET and DELETE), with the loose typing real clients use.
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::{codes, ApiError};
use axum::http::StatusCode;

/// Path segments after the base, percent-decoded; an encoded `/` (`10.0.0.0%2F24`) splits
/// like a plain one, and empty segments (trailing slashes) are dropped.
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .flat_map(|s| {
            percent_decode_str(s)
                .decode_utf8_lossy()
                .split('/')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Merged parameters. Keys are matched case-insensitively.
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: Map<String, Value>,
}

impl Params {
    /// Query parameters first; body keys fill in what the query does not give.
    pub fn from_request(query: Option<&str>, body: &[u8]) -> Result<Params, ApiError> {
        let mut map = Map::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            // A `+` is not a space to Micetro: decode percent escapes only.
            let k = percent_decode_str(k).decode_utf8_lossy().into_owned();
            let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
            map.insert(k, Value::String(v));
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_JSON,
                    format!("the request body is not valid JSON: {e}"),
                )
            })?;
            match v {
                Value::Object(o) => {
                    for (k, v) in o {
                        if !map.keys().any(|q| q.eq_ignore_ascii_case(&k)) {
                            map.insert(k, v);
                        }
                    }
                }
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        codes::BAD_JSON,
                        "the request body must be a JSON object",
                    ))
                }
            }
        }
        Ok(Params { map })
    }

    /// A parameter, by case-insensitive name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map
            .get(key)
            .or_else(|| {
                self.map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    /// Every parameter name.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// A text parameter (numbers and booleans are accepted as text).
    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        self.get(key).map(|v| as_string(key, v)).transpose()
    }

    /// A boolean: `true`/`false`, `"true"`/`"false"`, `1`/`0`, `"1"`/`"0"`, `"yes"`/`"no"`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.get(key).map(|v| as_bool(key, v)).transpose()
    }

    /// A non-negative integer (a number or a numeric string).
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.get(key).map(|v| as_u64(key, v)).transpose()
    }

    /// An object parameter.
    pub fn object(&self, key: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(ApiError::invalid(format!("{key} must be a JSON object"))),
        }
    }

    /// Paging: `offset` and `limit` (default and maximum `max`).
    pub fn paging(&self, max: u64) -> Result<(u64, u64), ApiError> {
        self.paging_with(max, max)
    }

    /// `offset` and `limit`, with `default` when no limit is given.
    pub fn paging_with(&self, default: u64, max: u64) -> Result<(u64, u64), ApiError> {
        let offset = self.u64("offset")?.unwrap_or(0);
        let limit = self.u64("limit")?.unwrap_or(default);
        if limit > max {
            return Err(ApiError::invalid(format!(
                "limit {limit} is larger than the most one page may hold ({max}); page with offset, or use cursor"
            )));
        }
        Ok((offset, limit))
    }
}

/// A value as text.
pub(crate) fn as_string(key: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(ApiError::invalid(format!(
            "{key} must be a string, not {}",
            kind(v)
        ))),
    }
}

/// A loose boolean.
pub(crate) fn as_bool(key: &str, v: &Value) -> Result<bool, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "{key} must be a boolean (true/false or 1/0), not {v}"
        ))
    };
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(bad()),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// A loose non-negative integer.
pub(crate) fn as_u64(key: &str, v: &Value) -> Result<u64, ApiError> {
    let bad = || ApiError::invalid(format!("{key} must be a non-negative integer, not {v}"));
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `properties` as a map or as a list of `{"name": ..., "value": ...}`; values become text
/// (booleans as `1`/`0`, as Micetro stores them).
pub(crate) fn properties(v: &Value) -> Result<Vec<(String, Value)>, ApiError> {
    match v {
        Value::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Value::Array(a) => {
            a.iter()
                .map(|e| {
                    let name = e.get("name").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::invalid("each properties entry needs a \"name\"")
                    })?;
                    Ok((
                        name.to_string(),
                        e.get("value").cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect()
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(ApiError::invalid(
            "properties must be a map or a list of {\"name\", \"value\"}",
        )),
    }
}

/// A custom property value as stored: text, booleans as `1`/`0`.
pub(crate) fn property_text(key: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        other => as_string(key, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_decode_and_drop_empty() {
        assert_eq!(
            segments("v2/Ranges/10.0.0.0%2F24/NextFreeAddress/"),
            ["v2", "Ranges", "10.0.0.0", "24", "NextFreeAddress"]
        );
        assert_eq!(segments("ipamRecords/%3A%3A1"), ["ipamRecords", "::1"]);
    }

    #[test]
    fn query_and_body_merge_loosely() {
        let p = Params::from_request(
            Some("&filter=a%20b+c&limit=5&x"),
            br#"{"limit": 9, "saveComment": "hi", "ok": "1", "n": "12"}"#,
        )
        .unwrap();
        assert_eq!(p.string("FILTER").unwrap().unwrap(), "a b+c");
        assert_eq!(p.u64("limit").unwrap(), Some(5));
        assert_eq!(p.string("saveComment").unwrap().unwrap(), "hi");
        assert_eq!(p.bool("ok").unwrap(), Some(true));
        assert_eq!(p.u64("n").unwrap(), Some(12));
        assert_eq!(p.string("x").unwrap().unwrap(), "");
        assert!(p.bool("saveComment").is_err());
        assert!(Params::from_request(None, b"[1]").is_err());
        let e = Params::from_request(None, b"{\"a\": ").unwrap_err();
        assert_eq!(e.code, codes::BAD_JSON);
    }

    #[test]
    fn properties_map_or_list() {
        let m = properties(&serde_json::json!({"A": true, "B": 3})).unwrap();
        assert_eq!(property_text("A", &m[0].1).unwrap(), "1");
        assert_eq!(property_text("B", &m[1].1).unwrap(), "3");
        let l = properties(&serde_json::json!([{"name": "A", "value": "x"}])).unwrap();
        assert_eq!(l, vec![("A".to_string(), Value::String("x".into()))]);
        assert!(properties(&serde_json::json!("x")).is_err());
    }
}
