//! YAML configuration files (agent configs, alert rules), read the way their users'
//! tools read them.
//!
//! ElastAlert reads rules with PyYAML, which implements YAML 1.1: plain `yes`/`no`/
//! `on`/`off` are booleans (PyYAML leaves `y`/`n` strings), `~` and `null` are null, `0x1F` and `0o17` are
//! integers. A YAML 1.2 loader would hand those back as strings, so rules that work
//! under ElastAlert would mean something else here. This module builds a
//! `serde_json::Value` from the parser's events and resolves *plain* scalars with the
//! 1.1 rules; quoted scalars always stay strings (`"yes"` is the string yes).
//!
//! [`from_value`] then deserialises into a typed config with an error that names the
//! key path (`sinks.store.endpoints[0]: invalid type ...`), which is what a user
//! editing a file at 3 a.m. needs.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML document that could not be read or did not fit the expected shape.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum YamlError {
    /// Not valid YAML; `line` and `column` are 1-based.
    #[error("invalid YAML at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid YAML with something JSON cannot hold (a non-scalar mapping key, an
    /// unknown alias).
    #[error("{0}")]
    Unsupported(String),
    /// Valid YAML of the wrong shape; `path` names the key (`a.b[2].c`).
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

/// Parses the first document of `text` (an empty text is `null`).
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|e| YamlError::Syntax {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Value::Null))
}

/// Parses `text` and deserialises it into `T`, naming the key path on a shape error.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    from_value(parse(text)?)
}

/// Deserialises an already-parsed value, naming the key path on a shape error.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, YamlError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        YamlError::Shape {
            path: if path == "." {
                "(top level)".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// Replaces `$VAR` and `${VAR}` in every string of `value` with the environment
/// variable's value (ElastAlert expands `$VAR` the same way; an unset variable is
/// left as written so the mistake stays visible).
pub fn expand_env(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) if s.contains('$') => *s = expand_str(s, lookup),
        Value::Array(items) => items.iter_mut().for_each(|v| expand_env(v, lookup)),
        Value::Object(map) => map.values_mut().for_each(|v| expand_env(v, lookup)),
        _ => {}
    }
}

fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match (name.is_empty(), lookup(name)) {
            (false, Some(v)) => out.push_str(&v),
            _ => out.push_str(&rest[pos..pos + 1 + consumed]),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Resolves a plain (unquoted) scalar with YAML 1.1's rules, as PyYAML does.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, digits) = match cleaned.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let radix_int = |body: &str, radix: u32| {
        i64::from_str_radix(body, radix)
            .ok()
            .map(|v| Value::from(if neg { -v } else { v }))
    };
    if let Some(hex) = digits.strip_prefix("0x") {
        if let Some(v) = radix_int(hex, 16) {
            return v;
        }
    } else if let Some(oct) = digits.strip_prefix("0o") {
        if let Some(v) = radix_int(oct, 8) {
            return v;
        }
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        // YAML 1.1 octal: 017 is 15.
        if let Some(v) = radix_int(&digits[1..], 8) {
            return v;
        }
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = cleaned.parse::<i64>() {
            return Value::from(v);
        }
        if let Ok(v) = cleaned.parse::<u64>() {
            return Value::from(v);
        }
    }
    match digits {
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" => return Value::String(s.into()),
        _ => {}
    }
    let looks_float = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.contains(['.', 'e', 'E']);
    if looks_float {
        if let Some(n) = cleaned.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(Map<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    anchors: HashMap<usize, Value>,
    error: Option<YamlError>,
    done: bool,
}

impl Builder {
    fn push_value(&mut self, value: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(value);
                }
            }
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(map, key, _)) => match key.take() {
                None => match value {
                    Value::String(s) => *key = Some(s),
                    Value::Null => *key = Some("null".into()),
                    Value::Bool(b) => *key = Some(b.to_string()),
                    Value::Number(n) => *key = Some(n.to_string()),
                    _ => {
                        if self.error.is_none() {
                            self.error = Some(YamlError::Unsupported(
                                "a mapping key must be a scalar".into(),
                            ));
                        }
                        *key = Some(String::new());
                    }
                },
                Some(k) => {
                    // `<<: *base` merges the anchored mapping (keys written here win).
                    if k == "<<" {
                        let merged: Vec<Value> = match value {
                            Value::Array(items) => items,
                            other => vec![other],
                        };
                        for m in merged {
                            if let Value::Object(src) = m {
                                for (mk, mv) in src {
                                    map.entry(mk).or_insert(mv);
                                }
                            }
                        }
                    } else {
                        map.insert(k, value);
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::DocumentEnd if self.root.is_some() => self.done = true,
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::String(text)
                };
                self.push_value(value, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), anchor)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, anchor)) = self.stack.pop() {
                    self.push_value(Value::Array(items), anchor);
                }
            }
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Map::new(), None, anchor)),
            Event::MappingEnd => {
                if let Some(Frame::Map(map, _, anchor)) = self.stack.pop() {
                    self.push_value(Value::Object(map), anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => self.push_value(v, 0),
                None => {
                    if self.error.is_none() {
                        self.error = Some(YamlError::Unsupported("unknown alias".into()));
                    }
                    self.push_value(Value::Null, 0);
                }
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_11_scalars() {
        let v = parse(
            "a: yes\nb: off\nc: \"yes\"\nd: 017\ne: 0x1f\nf: 1.5\ng: ~\nh: 1_000\ni: 12:30\nj: -3\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": "yes", "d": 15, "e": 31, "f": 1.5,
                   "g": null, "h": 1000, "i": "12:30", "j": -3})
        );
    }

    #[test]
    fn nesting_anchors_and_merge() {
        let v =
            parse("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\nlist:\n  - *b\n  - [a, 'b']\n")
                .unwrap();
        assert_eq!(v["item"], json!({"y": 3, "x": 1}));
        assert_eq!(v["list"], json!([{"x": 1, "y": 2}, ["a", "b"]]));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: c").unwrap_err();
        assert!(matches!(err, YamlError::Syntax { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn shape_error_names_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Sink {
            endpoints: Vec<u16>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Cfg {
            sinks: std::collections::BTreeMap<String, Sink>,
        }
        let err = from_str::<Cfg>("sinks:\n  store:\n    endpoints: [1, x]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sinks.store.endpoints[1]: invalid type: string \"x\", expected u16"
        );
    }

    #[test]
    fn env_expansion() {
        let mut v = json!({"a": "$HOST:${PORT}/x", "b": ["$NOPE"], "c": "$"});
        let lookup = |k: &str| match k {
            "HOST" => Some("h".to_string()),
            "PORT" => Some("9".to_string()),
            _ => None,
        };
        expand_env(&mut v, &lookup);
        assert_eq!(v, json!({"a": "h:9/x", "b": ["$NOPE"], "c": "$"}));
    }
}
