//! Ingest pipelines: the `_ingest/pipeline` API and running pipelines on writes.
//!
//! A write runs, in order, the pipeline the item or the request names (`pipeline` in
//! the bulk action, `?pipeline=`) or else the index's `index.default_pipeline`, then
//! its `index.final_pipeline`; `_none` skips the default one. A name that is not a
//! stored pipeline but a cairn-formats format name (`aws-alb`, `nginx-access`, ...)
//! runs that format's built-in parser on `message`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use cairn_core::EsError;
use cairn_ingest::{Budget, IngestDocument, Outcome, Pipeline};
use cairn_store::{ItemResult, WriteKind, WriteRequest};
use parking_lot::RwLock;
use serde_json::{json, Map, Value};

use crate::http::{body_bytes, json_body, ok, param_bool, ApiError, Params};
use crate::Shared;

/// Stored pipelines, parsed.
#[derive(Default)]
pub struct Pipelines {
    map: RwLock<HashMap<String, Arc<Pipeline>>>,
}

impl Pipelines {
    /// Parses the pipelines kept in the metastore.
    pub fn load(store: &cairn_store::Store) -> Pipelines {
        let p = Pipelines::default();
        let bodies: Vec<(String, Value)> = store
            .meta()
            .pipelines
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, body) in bodies {
            match Pipeline::parse(&id, &body) {
                Ok(pl) => {
                    p.map.write().insert(id, Arc::new(pl));
                }
                Err(e) => {
                    tracing::error!(pipeline = %id, error = %e.reason, "stored pipeline no longer parses; skipped")
                }
            }
        }
        p
    }

    fn snapshot(&self) -> HashMap<String, Arc<Pipeline>> {
        self.map.read().clone()
    }

    fn resolve(&self, id: &str) -> Option<Arc<Pipeline>> {
        if let Some(p) = self.map.read().get(id) {
            return Some(p.clone());
        }
        cairn_ingest::builtin_by_name(id).map(Arc::new)
    }
}

/// Runs the pipelines that apply to each index/create request. Returns the results of
/// items a `drop` processor removed (by position); failed items carry their error in
/// `source` so the store reports them like Elasticsearch.
pub fn apply(
    s: &Shared,
    reqs: &mut [WriteRequest],
    item_pipelines: &[Option<String>],
    request_pipeline: Option<&str>,
) -> Vec<Option<ItemResult>> {
    let mut dropped: Vec<Option<ItemResult>> = vec![None; reqs.len()];
    let mut settings_cache: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let lookup = s.pipelines.snapshot();
    let budget = Budget::new(s.config.ingest_timeout);
    for (i, r) in reqs.iter_mut().enumerate() {
        if !matches!(r.kind, WriteKind::Index | WriteKind::Create) {
            continue;
        }
        let defaults = settings_cache.entry(r.index.clone()).or_insert_with(|| {
            let st = s.store.effective_settings(&r.index);
            let get = |k: &str| st.get(k).and_then(Value::as_str).map(str::to_string);
            (get("index.default_pipeline"), get("index.final_pipeline"))
        });
        let first = item_pipelines
            .get(i)
            .cloned()
            .flatten()
            .or_else(|| request_pipeline.map(str::to_string))
            .or_else(|| defaults.0.clone());
        let mut chain: Vec<String> = Vec::new();
        if let Some(f) = first.filter(|f| f != "_none") {
            chain.push(f);
        }
        if let Some(f) = defaults.1.clone().filter(|f| f != "_none") {
            chain.push(f);
        }
        if chain.is_empty() {
            continue;
        }
        let source = match r.source.take() {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                r.source = Some(Err(e));
                continue;
            }
            None => match r.raw.as_deref().map(cairn_store::parse_document) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    r.source = Some(Err(e));
                    continue;
                }
                None => continue,
            },
        };
        let mut doc = IngestDocument::new(source, r.index.clone(), r.id.clone());
        let mut outcome = Ok(Outcome::Keep);
        for id in &chain {
            let Some(p) = s.pipelines.resolve(id) else {
                outcome = Err(EsError::illegal_argument(format!(
                    "pipeline with id [{id}] does not exist"
                )));
                break;
            };
            match p.execute(&mut doc, &lookup, &budget) {
                Ok(Outcome::Keep) => {}
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        match outcome {
            Ok(Outcome::Keep) => {
                r.index = doc.index;
                r.id = doc.id;
                r.source = Some(Ok(doc.source));
                r.raw = None;
            }
            Ok(Outcome::Drop) => {
                dropped[i] = Some(ItemResult {
                    action: if matches!(r.kind, WriteKind::Create) {
                        "create"
                    } else {
                        "index"
                    },
                    index: r.index.clone(),
                    id: r.id.clone().unwrap_or_default(),
                    status: 200,
                    result: Some("noop"),
                    error: None,
                    seq_no: 0,
                    version: 0,
                });
            }
            Err(e) => r.source = Some(Err(e)),
        }
    }
    dropped
}

pub async fn put(
    State(s): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    let p = Pipeline::parse(&id, &v)?;
    {
        let mut st = s.store.meta();
        st.pipelines.insert(id.clone(), v);
        s.store.save_meta(&st)?;
    }
    s.pipelines.map.write().insert(id, Arc::new(p));
    ok(json!({"acknowledged": true}))
}

fn matching(s: &Shared, expr: &str) -> Map<String, Value> {
    let st = s.store.meta();
    st.pipelines
        .iter()
        .filter(|(k, _)| {
            expr.split(',')
                .any(|p| cairn_core::mapping::wildcard_match(p, k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub async fn get(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let found = matching(&s, &id);
    if found.is_empty() {
        return Ok(crate::http::json_response(404, &json!({})));
    }
    ok(Value::Object(found))
}

pub async fn get_all(State(s): State<Shared>) -> Result<Response, ApiError> {
    ok(Value::Object(matching(&s, "*")))
}

pub async fn delete(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let ids: Vec<String> = matching(&s, &id).keys().cloned().collect();
    if ids.is_empty() {
        return Err(ApiError(EsError::resource_not_found(format!(
            "pipeline [{id}] is missing"
        ))));
    }
    let mut st = s.store.meta();
    for i in &ids {
        st.pipelines.remove(i);
        s.pipelines.map.write().remove(i);
    }
    s.store.save_meta(&st)?;
    ok(json!({"acknowledged": true}))
}

async fn simulate(
    s: Shared,
    id: Option<String>,
    p: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    let verbose = param_bool(&p, "verbose", false)?;
    let mut lookup = s.pipelines.snapshot();
    if let Some(i) = &id {
        if !lookup.contains_key(i) {
            if let Some(b) = cairn_ingest::builtin_by_name(i) {
                lookup.insert(i.clone(), Arc::new(b));
            }
        }
    }
    let out = tokio::task::spawn_blocking(move || {
        cairn_ingest::simulate_request(&v, id.as_deref(), verbose, &lookup)
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    ok(out)
}

pub async fn simulate_anon(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    simulate(s, None, p, body).await
}

pub async fn simulate_id(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    simulate(s, Some(id), p, body).await
}
