//! `_search`, `_count` and `_delete_by_query`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use cairn_core::EsError;
use cairn_query::Query as Q;
use cairn_search::{SearchRequest, SortKey, TrackTotalHits};
use cairn_store::admin::ResolveOptions;
use cairn_store::{IndexHandle, WriteKind, WriteRequest};
use serde_json::{json, Map, Value};

use crate::http::{body_bytes, json_body, ok, param_bool, ApiError, Params};
use crate::Shared;

pub const MAX_RESULT_WINDOW: usize = 10_000;

fn resolve(s: &Shared, expr: &str, p: &Params) -> Result<Vec<Arc<IndexHandle>>, ApiError> {
    let opts = ResolveOptions {
        ignore_unavailable: param_bool(p, "ignore_unavailable", false)?,
        allow_no_indices: param_bool(p, "allow_no_indices", true)?,
        expand_hidden: p
            .get("expand_wildcards")
            .is_some_and(|w| w.contains("hidden") || w == "all"),
    };
    s.store.resolve_indices(expr, opts).map_err(ApiError)
}

fn now_millis() -> i64 {
    cairn_core::time::now_micros() / 1000
}

fn query_of(body: &Option<Value>, p: &Params) -> Result<Q, ApiError> {
    if let Some(q) = p.get("q") {
        let mut opts = cairn_query::lucene::QueryStringOptions::default();
        if let Some(df) = p.get("df") {
            opts.default_fields = vec![(df.clone(), 1.0)];
        }
        if p.get("default_operator")
            .is_some_and(|o| o.eq_ignore_ascii_case("and"))
        {
            opts.default_operator = cairn_query::Operator::And;
        }
        return cairn_query::lucene::parse_query_string(q, &opts, &cairn_query::Limits::default())
            .map_err(|e| ApiError(EsError::new(e.status(), e.type_name(), e.reason.clone())));
    }
    cairn_search::parse_query(body.as_ref().and_then(|b| b.get("query"))).map_err(ApiError)
}

fn shards(n: usize) -> Value {
    json!({"total": n, "successful": n, "skipped": 0, "failed": 0})
}

fn parse_sort(v: Option<&Value>, p: &Params) -> Result<SortKey, ApiError> {
    let unsupported = |f: &str| {
        ApiError(EsError::illegal_argument(format!(
            "sorting on [{f}] is not supported by cairn yet; sort on [@timestamp] or [_score]"
        )))
    };
    let one = |field: &str, order: Option<&str>| -> Result<SortKey, ApiError> {
        let desc = match order {
            None => field == "_score",
            Some("desc") => true,
            Some("asc") => false,
            Some(o) => {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "Unknown SortOrder [{o}]"
                ))))
            }
        };
        match field {
            "@timestamp" => Ok(SortKey::Timestamp(desc)),
            "_score" => Ok(SortKey::Score),
            f => Err(unsupported(f)),
        }
    };
    if let Some(s) = p.get("sort") {
        let (f, o) = s
            .split_once(':')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((s.as_str(), None));
        return one(f, o);
    }
    let first = match v {
        None => return Ok(SortKey::Score),
        Some(Value::Array(a)) if a.is_empty() => return Ok(SortKey::Score),
        Some(Value::Array(a)) => &a[0],
        Some(other) => other,
    };
    match first {
        Value::String(f) => one(f, None),
        Value::Object(o) => {
            let (f, spec) = o
                .iter()
                .next()
                .ok_or_else(|| ApiError(EsError::parsing("empty sort")))?;
            match spec {
                Value::String(ord) => one(f, Some(ord)),
                Value::Object(so) => one(f, so.get("order").and_then(Value::as_str)),
                _ => Err(ApiError(EsError::parsing(format!(
                    "malformed sort for [{f}]"
                )))),
            }
        }
        _ => Err(ApiError(EsError::parsing("malformed sort"))),
    }
}

fn usize_of(
    body: &Option<Value>,
    p: &Params,
    key: &str,
    default: usize,
) -> Result<usize, ApiError> {
    if let Some(v) = p.get(key) {
        return v.parse().map_err(|_| {
            ApiError(EsError::illegal_argument(format!(
                "Failed to parse int parameter [{key}] with value [{v}]"
            )))
        });
    }
    match body.as_ref().and_then(|b| b.get(key)) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).ok_or_else(|| {
            ApiError(EsError::illegal_argument(format!(
                "[{key}] parameter cannot be negative, found [{n}]"
            )))
        }),
        Some(other) => Err(ApiError(EsError::parsing(format!(
            "[{key}] must be a number, found [{other}]"
        )))),
    }
}

/// Applies `_source` filtering (`false`, a pattern, a list, or includes/excludes).
fn filter_source(src: Value, spec: Option<&Value>) -> Option<Value> {
    let (includes, excludes): (Vec<String>, Vec<String>) = match spec {
        None | Some(Value::Bool(true)) => return Some(src),
        Some(Value::Bool(false)) => return None,
        Some(Value::String(s)) => (vec![s.clone()], vec![]),
        Some(Value::Array(a)) => (
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            vec![],
        ),
        Some(Value::Object(o)) => {
            let list = |k: &str| -> Vec<String> {
                match o.get(k) {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                }
            };
            (list("includes"), list("excludes"))
        }
        Some(_) => return Some(src),
    };
    fn walk(
        prefix: &str,
        v: &Map<String, Value>,
        inc: &[String],
        exc: &[String],
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, val) in v {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if exc
                .iter()
                .any(|e| cairn_core::mapping::wildcard_match(e, &path))
            {
                continue;
            }
            let included = inc.is_empty()
                || inc
                    .iter()
                    .any(|i| cairn_core::mapping::wildcard_match(i, &path));
            match val {
                Value::Object(o) if !included => {
                    let child = walk(&path, o, inc, exc);
                    if !child.is_empty() {
                        out.insert(k.clone(), Value::Object(child));
                    }
                }
                Value::Object(o) => {
                    out.insert(k.clone(), Value::Object(walk(&path, o, &[], exc)));
                }
                _ if included => {
                    out.insert(k.clone(), val.clone());
                }
                _ => {}
            }
        }
        out
    }
    match src {
        Value::Object(o) => Some(Value::Object(walk("", &o, &includes, &excludes))),
        other => Some(other),
    }
}

async fn do_search(
    s: Shared,
    expr: String,
    p: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    if let Some(Value::Object(o)) = &body {
        for k in o.keys() {
            if ![
                "query",
                "from",
                "size",
                "sort",
                "track_total_hits",
                "_source",
                "search_after",
                "timeout",
                "terminate_after",
                "version",
                "seq_no_primary_term",
                "stored_fields",
                "explain",
            ]
            .contains(&k.as_str())
            {
                return Err(ApiError(EsError::parsing(format!(
                    "Unknown key for a {} in [{k}].",
                    if o[k].is_object() {
                        "START_OBJECT"
                    } else {
                        "VALUE"
                    }
                ))));
            }
        }
    }
    let indexes = resolve(&s, &expr, &p)?;
    let query = query_of(&body, &p)?;
    let from = usize_of(&body, &p, "from", 0)?;
    let size = usize_of(&body, &p, "size", 10)?;
    if from + size > MAX_RESULT_WINDOW {
        return Err(ApiError(EsError::new(400, "search_phase_execution_exception", "all shards failed").caused_by(
            EsError::illegal_argument(format!(
                "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
                from + size
            )),
        )));
    }
    let sort = parse_sort(body.as_ref().and_then(|b| b.get("sort")), &p)?;
    let track = match body
        .as_ref()
        .and_then(|b| b.get("track_total_hits"))
        .or(None)
    {
        Some(Value::Bool(true)) => TrackTotalHits::Exact,
        Some(Value::Bool(false)) => TrackTotalHits::Off,
        Some(Value::Number(n)) => TrackTotalHits::UpTo(n.as_u64().unwrap_or(10_000)),
        _ => match p.get("track_total_hits").map(String::as_str) {
            Some("true") => TrackTotalHits::Exact,
            Some("false") => TrackTotalHits::Off,
            Some(n) => TrackTotalHits::UpTo(n.parse().unwrap_or(10_000)),
            None => TrackTotalHits::UpTo(10_000),
        },
    };
    let search_after = match body.as_ref().and_then(|b| b.get("search_after")) {
        Some(Value::Array(a)) => a.first().and_then(Value::as_i64),
        _ => None,
    };
    let req = SearchRequest {
        query,
        from,
        size,
        sort: sort.clone(),
        track_total_hits: track,
        now_millis: now_millis(),
        search_after,
    };
    let n_shards = indexes.len();
    let source_spec = body.as_ref().and_then(|b| b.get("_source")).cloned();
    let source_spec = source_spec.or_else(|| {
        p.get("_source").map(|s| {
            if s == "false" {
                Value::Bool(false)
            } else {
                Value::String(s.clone())
            }
        })
    });
    let res = tokio::task::spawn_blocking(move || cairn_search::search(&indexes, &req))
        .await
        .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    let hits: Vec<Value> = res
        .hits
        .into_iter()
        .map(|h| {
            let src: Value = serde_json::from_slice(&h.source).unwrap_or(Value::Null);
            let mut o = Map::new();
            o.insert("_index".into(), json!(h.index));
            o.insert("_id".into(), json!(h.id));
            o.insert(
                "_score".into(),
                h.score.map(|s| json!(s)).unwrap_or(Value::Null),
            );
            if let Some(src) = filter_source(src, source_spec.as_ref()) {
                o.insert("_source".into(), src);
            }
            match sort {
                SortKey::Timestamp(_) => {
                    o.insert("sort".into(), json!([h.ts.div_euclid(1000)]));
                }
                SortKey::Score => {}
            }
            Value::Object(o)
        })
        .collect();
    let mut hits_obj = Map::new();
    if let Some((value, eq)) = res.total {
        if param_bool(&p, "rest_total_hits_as_int", false)? {
            hits_obj.insert("total".into(), json!(value));
        } else {
            hits_obj.insert(
                "total".into(),
                json!({"value": value, "relation": if eq { "eq" } else { "gte" }}),
            );
        }
    }
    hits_obj.insert(
        "max_score".into(),
        res.max_score.map(|m| json!(m)).unwrap_or(Value::Null),
    );
    hits_obj.insert("hits".into(), Value::Array(hits));
    ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": shards(n_shards),
        "hits": hits_obj,
    }))
}

pub async fn search_all(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_search(s, "_all".into(), p, body).await
}

pub async fn search_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_search(s, index, p, body).await
}

async fn do_count(
    s: Shared,
    expr: String,
    p: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let indexes = resolve(&s, &expr, &p)?;
    let query = query_of(&body, &p)?;
    let n_shards = indexes.len();
    let now = now_millis();
    let count = tokio::task::spawn_blocking(move || cairn_search::count(&indexes, &query, now))
        .await
        .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    ok(json!({"count": count, "_shards": shards(n_shards)}))
}

pub async fn count_all(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_count(s, "_all".into(), p, body).await
}

pub async fn count_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_count(s, index, p, body).await
}

pub async fn delete_by_query(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    if body.as_ref().and_then(|b| b.get("query")).is_none() && !p.contains_key("q") {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: query is missing;",
        )));
    }
    let indexes = resolve(&s, &index, &p)?;
    let query = query_of(&body, &p)?;
    // Work on a refreshed snapshot, as a scroll would.
    s.store.refresh().await.map_err(ApiError)?;
    let now = now_millis();
    let ids =
        tokio::task::spawn_blocking(move || cairn_search::matching_ids(&indexes, &query, now))
            .await
            .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    let total = ids.len();
    let reqs: Vec<WriteRequest> = ids
        .into_iter()
        .map(|(index, id)| WriteRequest {
            kind: WriteKind::Delete,
            index,
            id: Some(id),
            source: None,
        })
        .collect();
    let refresh = if param_bool(&p, "refresh", false)? {
        cairn_store::Refresh::True
    } else {
        cairn_store::Refresh::False
    };
    let mut deleted = 0;
    let mut failures = Vec::new();
    let mut batches = 0;
    for chunk in reqs.chunks(1000) {
        batches += 1;
        for item in s.store.bulk(chunk.to_vec(), refresh).await {
            match item.error {
                None if item.status < 300 => deleted += 1,
                None => {}
                Some(e) => failures.push(json!({"index": item.index, "id": item.id, "cause": e.to_object(), "status": e.status})),
            }
        }
    }
    ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "total": total,
        "deleted": deleted,
        "batches": batches,
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": failures,
    }))
}
