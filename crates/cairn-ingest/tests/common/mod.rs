//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use cairn_ingest::{Budget, EsError, IngestDocument, NoPipelines, Outcome, Pipeline};
use serde_json::{Map, Value};

pub fn pipeline(body: Value) -> Pipeline {
    match Pipeline::parse("test", &body) {
        Ok(p) => p,
        Err(e) => panic!("pipeline should parse: {e:?}"),
    }
}

pub fn doc(source: Value) -> IngestDocument {
    let source: Map<String, Value> = match source {
        Value::Object(m) => m,
        _ => panic!("source must be an object"),
    };
    IngestDocument {
        source,
        index: "logs".into(),
        id: Some("1".into()),
        ingest_timestamp: 1_478_634_183_850, // 2016-11-08T19:43:03.850Z
    }
}

/// Runs a one-pipeline body over a source; returns the outcome and the document.
pub fn run(body: Value, source: Value) -> (Result<Outcome, EsError>, IngestDocument) {
    let p = pipeline(body);
    let mut d = doc(source);
    let r = p.execute(&mut d, &NoPipelines, &Budget::default());
    (r, d)
}

/// Runs one processor and returns the resulting source (panics on failure).
pub fn one(processor: Value, source: Value) -> Value {
    let (r, d) = run(serde_json::json!({ "processors": [processor] }), source);
    match r {
        Ok(Outcome::Keep) => Value::Object(d.source),
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Runs one processor and returns its error (panics on success).
pub fn one_err(processor: Value, source: Value) -> EsError {
    let (r, _) = run(serde_json::json!({ "processors": [processor] }), source);
    match r {
        Err(e) => e,
        Ok(o) => panic!("expected a failure, got {o:?}"),
    }
}

pub fn parse_err(body: Value) -> EsError {
    match Pipeline::parse("test", &body) {
        Ok(_) => panic!("expected a parse error"),
        Err(e) => e,
    }
}

/// Replaces every `timestamp` under an `_ingest` object with "<ts>".
pub fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "_ingest" {
                    if let Some(o) = x.as_object_mut() {
                        if o.contains_key("timestamp") {
                            o.insert("timestamp".into(), Value::String("<ts>".into()));
                        }
                    }
                }
                scrub(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

pub fn lookup(pipes: Vec<(&str, Value)>) -> HashMap<String, Arc<Pipeline>> {
    pipes
        .into_iter()
        .map(|(id, body)| {
            let p = Pipeline::parse(id, &body).unwrap_or_else(|e| panic!("{e:?}"));
            (id.to_string(), Arc::new(p))
        })
        .collect()
}
