//! Errors in Elasticsearch's shape.

use serde_json::{json, Map, Value};

/// An error as Elasticsearch reports it: an HTTP status, an exception `type` and a
/// human `reason`, plus optional extra keys (`index`, `resource.id`, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[{kind}] {reason}")]
pub struct EsError {
    pub status: u16,
    pub kind: String,
    pub reason: String,
    pub extra: Map<String, Value>,
    pub caused_by: Option<Box<EsError>>,
}

impl EsError {
    pub fn new(status: u16, kind: impl Into<String>, reason: impl Into<String>) -> Self {
        EsError {
            status,
            kind: kind.into(),
            reason: reason.into(),
            extra: Map::new(),
            caused_by: None,
        }
    }

    /// Adds an extra key (e.g. `index`) to the error object.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn caused_by(mut self, cause: EsError) -> Self {
        self.caused_by = Some(Box::new(cause));
        self
    }

    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(400, "illegal_argument_exception", reason)
    }

    pub fn parsing(reason: impl Into<String>) -> Self {
        Self::new(400, "parsing_exception", reason)
    }

    pub fn mapper_parsing(reason: impl Into<String>) -> Self {
        Self::new(400, "mapper_parsing_exception", reason)
    }

    pub fn document_parsing(reason: impl Into<String>) -> Self {
        Self::new(400, "document_parsing_exception", reason)
    }

    pub fn action_request_validation(reason: impl Into<String>) -> Self {
        Self::new(400, "action_request_validation_exception", reason)
    }

    pub fn index_not_found(index: &str) -> Self {
        Self::new(
            404,
            "index_not_found_exception",
            "no such index [".to_string() + index + "]",
        )
        .with("resource.type", "index_or_alias")
        .with("resource.id", index)
        .with("index_uuid", "_na_")
        .with("index", index)
    }

    pub fn resource_not_found(reason: impl Into<String>) -> Self {
        Self::new(404, "resource_not_found_exception", reason)
    }

    pub fn resource_already_exists(index: &str, uuid: &str) -> Self {
        Self::new(
            400,
            "resource_already_exists_exception",
            format!("index [{index}/{uuid}] already exists"),
        )
        .with("index_uuid", uuid)
        .with("index", index)
    }

    pub fn version_conflict(id: &str, reason: &str, index: &str, uuid: &str) -> Self {
        Self::new(
            409,
            "version_conflict_engine_exception",
            format!("[{id}]: {reason}"),
        )
        .with("index_uuid", uuid)
        .with("shard", "0")
        .with("index", index)
    }

    pub fn invalid_index_name(index: &str, why: &str) -> Self {
        Self::new(
            400,
            "invalid_index_name_exception",
            format!("Invalid index name [{index}], {why}"),
        )
        .with("index_uuid", "_na_")
        .with("index", index)
    }

    pub fn rejected_execution(reason: impl Into<String>) -> Self {
        Self::new(429, "es_rejected_execution_exception", reason)
    }

    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(500, "exception", reason)
    }

    /// A storage failure (disk full, I/O error): the write was not acknowledged.
    pub fn storage(reason: impl Into<String>) -> Self {
        Self::new(500, "translog_exception", reason)
    }

    /// The inner error object: `{"type":..,"reason":..,...}`.
    pub fn to_object(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(self.kind.clone()));
        obj.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        if let Some(cause) = &self.caused_by {
            obj.insert("caused_by".into(), cause.to_object());
        }
        Value::Object(obj)
    }

    /// The full response body: `{"error":{"root_cause":[..],..},"status":N}`.
    pub fn to_body(&self) -> Value {
        let mut root = self;
        while let Some(c) = &root.caused_by {
            // Elasticsearch reports the innermost cause that is not a wrapper as the root
            // cause; for our shallow chains the top error is the one users look for
            // unless it is a search-phase wrapper.
            if self.kind == "search_phase_execution_exception" {
                root = c;
            } else {
                break;
            }
        }
        let mut root_obj = root.to_object();
        if let Value::Object(o) = &mut root_obj {
            o.remove("caused_by");
        }
        let mut error = self.to_object();
        if let Value::Object(o) = &mut error {
            let mut with_root = Map::new();
            with_root.insert("root_cause".into(), json!([root_obj]));
            for (k, v) in std::mem::take(o) {
                with_root.insert(k, v);
            }
            *o = with_root;
        }
        json!({ "error": error, "status": self.status })
    }
}

/// Result alias for fallible operations that report Elasticsearch-shaped errors.
pub type EsResult<T> = Result<T, EsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_root_cause_and_status() {
        let e = EsError::index_not_found("logs");
        let b = e.to_body();
        assert_eq!(b["status"], 404);
        assert_eq!(b["error"]["type"], "index_not_found_exception");
        assert_eq!(
            b["error"]["root_cause"][0]["reason"],
            "no such index [logs]"
        );
        assert_eq!(b["error"]["index"], "logs");
    }
}
