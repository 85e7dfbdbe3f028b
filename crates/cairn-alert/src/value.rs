//! Small helpers over JSON documents with ElastAlert's conventions: dotted key lookup,
//! Python-style `str()` of values (used in query_key values, silence keys and alert
//! text), and ElastAlert's timestamp formats.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// ElastAlert's `lookup_es_key`: a literal key (`"a.b"` as one key) wins, else the dotted
/// path is walked through nested objects.
pub fn lookup<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(key) {
        return Some(v);
    }
    let mut parts = key.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Value::Object(o) => o.get(p)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Like [`lookup`], with `null` treated as absent.
pub fn lookup_some<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    lookup(doc, key).filter(|v| !v.is_null())
}

/// Python's `str()` of a JSON value, as ElastAlert renders query_key values and text args.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                py_float(f)
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => py_str(other),
    }
}

/// Python's float `str()`: `1.0`, `0.5`, `1e+20`.
pub fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python truthiness (ElastAlert skips "falsy" values in several places).
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Microseconds as ISO 8601 UTC (`2024-01-01T10:00:00Z`, fractional seconds when present).
pub fn iso(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(d) if micros % 1_000_000 == 0 => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => micros.to_string(),
    }
}

/// ElastAlert's `pretty_ts`: `2024-01-01 10:00 UTC`, in the rule's time zone if it has one.
pub fn pretty_ts(micros: i64, tz: Option<chrono_tz::Tz>) -> String {
    let Some(d) = DateTime::<Utc>::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    match tz {
        Some(tz) => d.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => d.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// Python's `str(timedelta)`: `0:05:00`, `1 day, 2:00:00`.
pub fn py_timedelta(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let hms = format!("{}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    match days {
        0 => hms,
        1 | -1 => format!("{days} day, {hms}"),
        _ => format!("{days} days, {hms}"),
    }
}

/// Inserts `value` at a dotted path, creating objects (ElastAlert's `expand_string_into_dict`).
pub fn insert_dotted(doc: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else {
        return;
    };
    let mut cur = doc;
    for p in parts {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(o) => cur = o,
            _ => return,
        }
    }
    cur.insert(last.to_string(), value);
}
