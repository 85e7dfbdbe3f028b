//! Structured application logs: JSON lines and logfmt.

use serde_json::{Map, Value};

use crate::time;
use crate::Event;

/// Fields tried, in order, for `@timestamp` when a record has none.
const TIME_KEYS: [&str; 5] = ["timestamp", "time", "ts", "@t", "datetime"];

fn derive_timestamp(ev: &mut Event, offset: i32) {
    if ev.contains_key("@timestamp") {
        return;
    }
    for k in TIME_KEYS {
        let ts = match ev.get(k) {
            Some(Value::String(s)) => time::parse_any(s, offset),
            Some(Value::Number(n)) => n.as_f64().and_then(time::from_epoch_number),
            _ => None,
        };
        if let Some(ts) = ts {
            ev.insert("@timestamp".to_owned(), Value::String(ts.to_rfc3339()));
            return;
        }
    }
}

/// One JSON object per line, kept as sent (nested objects and dotted keys alike), plus
/// `@timestamp` from a time field when the record has none.
pub(crate) fn parse_json(line: &str, offset: i32) -> Result<Event, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    match v {
        Value::Object(mut m) => {
            derive_timestamp(&mut m, offset);
            Ok(m)
        }
        _ => Err("JSON line is not an object".into()),
    }
}

/// `key=value key2="quoted \" value" flag` → string fields (a bare key is `true`).
pub(crate) fn parse_logfmt(line: &str, offset: i32) -> Result<Event, String> {
    let b = line.as_bytes();
    let mut ev = Map::new();
    let mut i = 0;
    let mut pairs = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' && b[i] != b'\t' && b[i] != b'"' {
            i += 1;
        }
        let key = &line[ks..i];
        if key.is_empty() {
            return Err(format!("logfmt: unexpected character at byte {i}"));
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut out = String::new();
                let mut closed = false;
                let mut seg = i;
                while i < b.len() {
                    match b[i] {
                        b'\\' if i + 1 < b.len() && b[i + 1].is_ascii() => {
                            out.push_str(&line[seg..i]);
                            match b[i + 1] {
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'"' => out.push('"'),
                                b'\\' => out.push('\\'),
                                c => {
                                    out.push('\\');
                                    out.push(c as char);
                                }
                            }
                            i += 2;
                            seg = i;
                        }
                        b'"' => {
                            out.push_str(&line[seg..i]);
                            i += 1;
                            closed = true;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return Err(format!("logfmt: unterminated quoted value for `{key}`"));
                }
                out
            } else {
                let vs = i;
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                line[vs..i].to_owned()
            };
            ev.insert(key.to_owned(), Value::String(value));
        } else {
            if i < b.len() && b[i] == b'"' {
                return Err(format!("logfmt: unexpected quote at byte {i}"));
            }
            ev.insert(key.to_owned(), Value::Bool(true));
        }
        pairs += 1;
    }
    if pairs == 0 || !line.contains('=') {
        return Err("logfmt: no key=value pairs".into());
    }
    derive_timestamp(&mut ev, offset);
    Ok(ev)
}
