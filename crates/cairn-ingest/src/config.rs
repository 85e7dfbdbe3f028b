//! Reading processor options with Elasticsearch's configuration errors
//! (`parse_exception` with `processor_type` / `processor_tag` / `property_name`).

use cairn_core::error::EsError;
use serde_json::{Map, Value};

use crate::doc::java_type;

/// A `parse_exception` about one processor (and optionally one of its properties).
pub(crate) fn config_error(
    processor_type: &str,
    tag: Option<&str>,
    property: Option<&str>,
    reason: &str,
) -> EsError {
    let reason = match property {
        Some(p) => format!("[{p}] {reason}"),
        None => reason.to_string(),
    };
    let mut e = EsError::new(400, "parse_exception", reason);
    if let Some(t) = tag {
        e = e.with("processor_tag", t);
    }
    e = e.with("processor_type", processor_type);
    if let Some(p) = property {
        e = e.with("property_name", p);
    }
    e
}

/// One processor's options, consumed as they are read; [`Cfg::finish`] rejects leftovers.
pub(crate) struct Cfg {
    pub ty: String,
    pub tag: Option<String>,
    map: Map<String, Value>,
}

impl Cfg {
    pub fn new(ty: &str, tag: Option<String>, map: Map<String, Value>) -> Cfg {
        Cfg {
            ty: ty.to_string(),
            tag,
            map,
        }
    }

    pub fn err(&self, property: Option<&str>, reason: &str) -> EsError {
        config_error(&self.ty, self.tag.as_deref(), property, reason)
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.shift_remove(key)
    }

    pub fn opt_str(&mut self, key: &str) -> Result<Option<String>, EsError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(
                Some(key),
                &format!(
                    "property isn't a string, but of type [{}]",
                    java_type(&other)
                ),
            )),
        }
    }

    pub fn req_str(&mut self, key: &str) -> Result<String, EsError> {
        match self.opt_str(key)? {
            Some(s) => Ok(s),
            None => Err(self.err(Some(key), "required property is missing")),
        }
    }

    pub fn opt_bool(&mut self, key: &str, default: bool) -> Result<bool, EsError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(other) => Err(self.err(
                Some(key),
                &format!(
                    "property isn't a boolean, but of type [{}]",
                    java_type(&other)
                ),
            )),
        }
    }

    /// A string or a list of strings.
    pub fn opt_str_list(&mut self, key: &str) -> Result<Option<Vec<String>>, EsError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s])),
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for v in a {
                    match v {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(self.err(
                                Some(key),
                                &format!(
                                    "property isn't a list of strings, it contains a [{}]",
                                    java_type(&other)
                                ),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(self.err(
                Some(key),
                &format!("property isn't a list, but of type [{}]", java_type(&other)),
            )),
        }
    }

    pub fn req_str_list(&mut self, key: &str) -> Result<Vec<String>, EsError> {
        match self.opt_str_list(key)? {
            Some(v) => Ok(v),
            None => Err(self.err(Some(key), "required property is missing")),
        }
    }

    pub fn opt_map(&mut self, key: &str) -> Result<Option<Map<String, Value>>, EsError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.err(
                Some(key),
                &format!("property isn't a map, but of type [{}]", java_type(&other)),
            )),
        }
    }

    /// Errors if options are left that the processor does not know.
    pub fn finish(self) -> Result<(), EsError> {
        if self.map.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = self.map.keys().map(String::as_str).collect();
        Err(config_error(
            &self.ty,
            self.tag.as_deref(),
            None,
            &format!(
                "processor [{}] doesn't support one or more provided configuration parameters [{}]",
                self.ty,
                keys.join(", ")
            ),
        ))
    }
}
