//! Output: readable tables, or the API's JSON for scripts.
use clap::ValueEnum;
use serde_json::Value;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// The API's `result`, as JSON.
    Json,
}

/// A JSON value as plain text.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows under headers (or the raw result as JSON).
pub fn list(out: Output, raw: &Value, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(raw).unwrap_or_default());
        return;
    }
    let rows: Vec<Vec<String>> = rows.collect();
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count()).min(60);
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            let c: String = c.chars().take(60).collect();
            if i + 1 == cells.len() {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    let n = rows.len();
    for r in rows {
        line(r);
    }
    if let Some(t) = raw["totalResults"].as_u64() {
        if t as usize > n {
            eprintln!("({n} of {t} shown)");
        }
    }
}

/// Prints one object: `key: value` lines (or JSON).
pub fn object(out: Output, v: &Value) {
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    if let Some(o) = v.as_object() {
        let w = o.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in o {
            let shown = match val {
                Value::Object(m) if !m.is_empty() => m
                    .iter()
                    .map(|(a, b)| format!("{a}={}", text(b)))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.get("name").map_or_else(|| text(x), text))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => text(other),
            };
            println!("{k:<w$}  {shown}");
        }
    }
}

/// A one-line confirmation (or the result as JSON).
pub fn message(out: Output, raw: &Value, msg: &str) {
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(raw).unwrap_or_default());
    } else {
        println!("{msg}");
    }
}
