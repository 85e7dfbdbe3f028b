//! `POST _ingest/pipeline/_simulate` and `POST _ingest/pipeline/<id>/_simulate`.

use cairn_core::error::EsError;
use serde_json::{json, Map, Value};

use crate::doc::{java_type, IngestDocument};
use crate::{Budget, Outcome, Pipeline, PipelineLookup};

/// The id an inline `_simulate` pipeline runs under.
pub const SIMULATE_PIPELINE_ID: &str = "_simulate_pipeline";

/// `{"error": {"root_cause": [..], "type": .., "reason": ..}}`.
pub(crate) fn error_body(e: &EsError) -> Value {
    json!({ "error": error_object(e) })
}

/// `{"root_cause": [..], "type": .., "reason": ..}`.
pub(crate) fn error_object(e: &EsError) -> Value {
    let body = e.to_body();
    body.get("error").cloned().unwrap_or(Value::Null)
}

/// The `doc` object of a simulate result.
pub(crate) fn doc_json(doc: &IngestDocument, ingest: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("_index".into(), Value::String(doc.index.clone()));
    if let Some(id) = &doc.id {
        m.insert("_id".into(), Value::String(id.clone()));
    }
    m.insert("_version".into(), Value::String("-3".into()));
    m.insert("_source".into(), Value::Object(doc.source.clone()));
    m.insert("_ingest".into(), Value::Object(ingest.clone()));
    Value::Object(m)
}

fn parse_err(reason: &str) -> EsError {
    EsError::new(400, "parse_exception", reason)
}

/// One simulate input document.
struct SimDoc {
    doc: IngestDocument,
    version: Option<String>,
}

fn parse_docs(docs: &Value) -> Result<Vec<SimDoc>, EsError> {
    let arr = match docs {
        Value::Null => return Err(parse_err("[docs] required property is missing")),
        Value::Array(a) => a,
        other => {
            return Err(parse_err(&format!(
                "[docs] property isn't a list, but of type [{}]",
                java_type(other)
            )))
        }
    };
    if arr.is_empty() {
        return Err(EsError::illegal_argument(
            "must specify at least one document in [docs]",
        ));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(arr.len());
    for d in arr {
        let m = match d {
            Value::Object(m) => m,
            other => {
                return Err(parse_err(&format!(
                    "[docs] property isn't a list of maps, it contains a [{}]",
                    java_type(other)
                )))
            }
        };
        let source = match m.get("_source") {
            Some(Value::Object(s)) => s.clone(),
            Some(other) => {
                return Err(parse_err(&format!(
                    "[_source] property isn't a map, but of type [{}]",
                    java_type(other)
                )))
            }
            None => return Err(parse_err("[_source] required property is missing")),
        };
        let text = |k: &str, default: &str| match m.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => default.to_string(),
            Some(other) => other.to_string(),
        };
        let version = match m.get("_version") {
            Some(Value::Null) | None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        out.push(SimDoc {
            doc: IngestDocument {
                source,
                index: text("_index", "_index"),
                id: Some(text("_id", "_id")),
                ingest_timestamp: now,
            },
            version,
        });
    }
    Ok(out)
}

/// Runs `pipeline` over the `docs` array of a `_simulate` request and returns the
/// response body. `Err` only for a malformed `docs` array (a 400 for the whole request);
/// a document that fails gets an `error` object in its slot.
pub fn simulate(
    pipeline: &Pipeline,
    docs: &Value,
    verbose: bool,
    lookup: &dyn PipelineLookup,
) -> Result<Value, EsError> {
    simulate_with_budget(pipeline, docs, verbose, lookup, &Budget::default())
}

/// [`simulate`] with an explicit time budget.
pub fn simulate_with_budget(
    pipeline: &Pipeline,
    docs: &Value,
    verbose: bool,
    lookup: &dyn PipelineLookup,
    budget: &Budget,
) -> Result<Value, EsError> {
    let docs = parse_docs(docs)?;
    let mut results = Vec::with_capacity(docs.len());
    for mut sd in docs {
        let (r, trace, meta) = pipeline.execute_traced(&mut sd.doc, lookup, budget, verbose);
        let fix_version = |mut v: Value| {
            if let (Some(ver), Some(o)) = (&sd.version, v.as_object_mut()) {
                o.insert("_version".into(), Value::String(ver.clone()));
            }
            v
        };
        if verbose {
            let trace: Vec<Value> = trace
                .into_iter()
                .map(|mut e| {
                    if let Some(d) = e.get_mut("doc") {
                        let v = fix_version(d.take());
                        *d = v;
                    }
                    e
                })
                .collect();
            results.push(json!({ "processor_results": trace }));
            continue;
        }
        let mut ingest = meta;
        ingest.insert(
            "timestamp".into(),
            Value::String(sd.doc.ingest_timestamp_string()),
        );
        results.push(match r {
            Ok(Outcome::Keep) => json!({ "doc": fix_version(doc_json(&sd.doc, &ingest)) }),
            Ok(Outcome::Drop) => json!({}),
            Err(e) => error_body(&e),
        });
    }
    Ok(json!({ "docs": results }))
}

/// A whole `_simulate` request: `body` has `docs` and, unless `pipeline_id` names a stored
/// pipeline (looked up in `lookup`), an inline `pipeline` definition.
pub fn simulate_request(
    body: &Value,
    pipeline_id: Option<&str>,
    verbose: bool,
    lookup: &dyn PipelineLookup,
) -> Result<Value, EsError> {
    let empty = Value::Null;
    let docs = body.get("docs").unwrap_or(&empty);
    match pipeline_id {
        Some(id) => {
            let p = lookup.get(id).ok_or_else(|| {
                EsError::illegal_argument(format!("pipeline [{id}] does not exist"))
            })?;
            simulate(&p, docs, verbose, lookup)
        }
        None => {
            let def = match body.get("pipeline") {
                Some(v) if !v.is_null() => v,
                _ => return Err(parse_err("[pipeline] required property is missing")),
            };
            let p = Pipeline::parse(SIMULATE_PIPELINE_ID, def)?;
            simulate(&p, docs, verbose, lookup)
        }
    }
}
