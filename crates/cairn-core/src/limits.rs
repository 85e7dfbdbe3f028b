//! Bounds on one document's shape, checked before it is mapped and indexed.
//!
//! Nesting depth needs no check of its own here: every JSON parse goes through
//! serde_json, which refuses input nested deeper than 128 levels, and the mapping refuses
//! objects nested deeper than `index.mapping.depth.limit`.

use serde_json::{Map, Value};

use crate::EsError;

/// Per-document limits (all write paths: `_bulk`, `_doc`, `_create`, `_update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocLimits {
    /// Most values in one document: object members and array elements at any depth.
    /// Bounds the mapping and indexing work one document can cause even where
    /// `index.mapping.total_fields.limit` does not apply (`dynamic: false`, long arrays).
    pub max_fields: usize,
    /// Longest string value, in bytes (Elasticsearch's `max_string_length`-like bound).
    pub max_string_bytes: usize,
}

impl Default for DocLimits {
    fn default() -> Self {
        DocLimits {
            max_fields: 100_000,
            // Above any genuine log line, below the default body size.
            max_string_bytes: 32 * 1024 * 1024,
        }
    }
}

impl DocLimits {
    /// Checks a parsed document; the error names the limit and, for strings, the field.
    /// Iterative, so its stack use does not depend on the document.
    pub fn check(&self, doc: &Map<String, Value>) -> Result<(), EsError> {
        let mut count = 0usize;
        let mut stack: Vec<&Value> = Vec::new();
        let mut too_long = false;
        let mut visit = |v: &'_ Value, count: &mut usize| -> bool {
            *count += 1;
            if let Value::String(s) = v {
                if s.len() > self.max_string_bytes {
                    too_long = true;
                }
            }
            *count > self.max_fields
        };
        for v in doc.values() {
            if visit(v, &mut count) {
                return Err(self.fields_error());
            }
            stack.push(v);
        }
        while let Some(v) = stack.pop() {
            let children: Box<dyn Iterator<Item = &Value>> = match v {
                Value::Object(m) => Box::new(m.values()),
                Value::Array(a) => Box::new(a.iter()),
                _ => continue,
            };
            for c in children {
                if visit(c, &mut count) {
                    return Err(self.fields_error());
                }
                stack.push(c);
            }
        }
        if too_long {
            // Rare: walk again, this time keeping paths, to name the field.
            let (path, len) = self.find_long_string(doc).unwrap_or_default();
            return Err(EsError::document_parsing(format!(
                "failed to parse field [{path}]: the string value is {len} bytes long, more than the maximum allowed [{}] (--max-string-size)",
                self.max_string_bytes
            )));
        }
        Ok(())
    }

    fn fields_error(&self) -> EsError {
        EsError::illegal_argument(format!(
            "Limit of fields per document [{}] has been exceeded: the document has more values (object members and array elements) than that (--max-document-fields)",
            self.max_fields
        ))
    }

    /// The dotted path and length of the first string over the limit.
    fn find_long_string(&self, doc: &Map<String, Value>) -> Option<(String, usize)> {
        let mut stack: Vec<(String, &Value)> = doc.iter().map(|(k, v)| (k.clone(), v)).collect();
        while let Some((path, v)) = stack.pop() {
            match v {
                Value::String(s) if s.len() > self.max_string_bytes => {
                    return Some((path, s.len()))
                }
                Value::Object(m) => {
                    stack.extend(m.iter().map(|(k, c)| (format!("{path}.{k}"), c)));
                }
                // Array elements share their field's path, as in the mapping.
                Value::Array(a) => stack.extend(a.iter().map(|c| (path.clone(), c))),
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test documents are objects"),
        }
    }

    #[test]
    fn counts_members_and_elements_at_any_depth() {
        let l = DocLimits {
            max_fields: 5,
            max_string_bytes: 100,
        };
        // a, b, b.c, d, d[0], d[1] = 6 values
        let d = doc(json!({"a": 1, "b": {"c": 2}, "d": [1, 2]}));
        let e = l.check(&d).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, "illegal_argument_exception");
        assert!(e.reason.contains("[5]"), "{}", e.reason);
        let ok = DocLimits {
            max_fields: 6,
            ..l.clone()
        };
        assert!(ok.check(&d).is_ok());
    }

    #[test]
    fn names_the_long_string_field() {
        let l = DocLimits {
            max_fields: 100,
            max_string_bytes: 4,
        };
        let d = doc(json!({"a": "1234", "b": {"c": ["ok", "12345"]}}));
        let e = l.check(&d).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, "document_parsing_exception");
        assert!(e.reason.contains("[b.c]"), "{}", e.reason);
        assert!(e.reason.contains("5 bytes"), "{}", e.reason);
        assert!(l.check(&doc(json!({"a": "1234"}))).is_ok());
    }

    #[test]
    fn deep_documents_do_not_recurse() {
        // Built by hand: `json!` would serialize (and so recurse into) its argument.
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let mut m = Map::new();
        m.insert("deep".into(), v);
        let l = DocLimits {
            max_fields: 200_000,
            ..DocLimits::default()
        };
        let checked = l.check(&m);
        // Dropping a Value recurses: take it apart one level at a time instead.
        let mut cur = m.remove("deep");
        while let Some(Value::Array(mut a)) = cur {
            cur = a.pop();
        }
        assert!(checked.is_ok());
    }
}
