//! `_search`, `_count` and `_delete_by_query`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use cairn_core::EsError;
use cairn_query::Query as Q;
use cairn_search::{SearchRequest, TrackTotalHits};
use cairn_store::admin::ResolveOptions;
use cairn_store::{IndexHandle, WriteKind, WriteRequest};
use serde_json::{json, Map, Value};

use crate::http::{body_bytes, json_body, ok, param_bool, ApiError, Params};
use crate::{contexts, Shared};

pub const MAX_RESULT_WINDOW: usize = 10_000;

pub(crate) fn resolve(
    s: &Shared,
    expr: &str,
    p: &Params,
) -> Result<Vec<Arc<IndexHandle>>, ApiError> {
    let opts = ResolveOptions {
        ignore_unavailable: param_bool(p, "ignore_unavailable", false)?,
        allow_no_indices: param_bool(p, "allow_no_indices", true)?,
        expand_hidden: p
            .get("expand_wildcards")
            .is_some_and(|w| w.contains("hidden") || w == "all"),
    };
    // Concrete names in the expression (also those of `_msearch` bodies, which the
    // middleware cannot see) need the route's privilege; wildcards are filtered by
    // the store's visibility hook.
    if let Some(a) = crate::auth::Authz::current() {
        crate::auth::check_expression(a.need.unwrap_or(crate::auth::IndexPriv::Read), expr)
            .map_err(ApiError)?;
    }
    s.store.resolve_indices(expr, opts).map_err(ApiError)
}

pub(crate) fn now_millis() -> i64 {
    cairn_core::time::now_micros() / 1000
}

pub(crate) fn query_of(body: &Option<Value>, p: &Params) -> Result<Q, ApiError> {
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

pub(crate) fn shards(n: usize) -> Value {
    json!({"total": n, "successful": n, "skipped": 0, "failed": 0})
}

/// Parses `sort` (body or `?sort=f:asc,g:desc`): every clause, primary first.
fn parse_sort(v: Option<&Value>, p: &Params) -> Result<Vec<cairn_search::SortSpec>, ApiError> {
    let mk = |field: &str,
              order: Option<&str>,
              missing: Option<&Value>,
              unmapped: bool|
     -> Result<cairn_search::SortSpec, ApiError> {
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
        let missing_first = match missing.and_then(Value::as_str) {
            Some("_first") => true,
            Some("_last") | None => false,
            Some(other) => {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "cairn supports only _first and _last for [missing], found [{other}]"
                ))))
            }
        };
        Ok(cairn_search::SortSpec {
            field: field.to_string(),
            desc,
            missing_first,
            unmapped_type: unmapped,
        })
    };
    if let Some(s) = p.get("sort") {
        return s
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| {
                let (f, o) = c
                    .split_once(':')
                    .map(|(a, b)| (a, Some(b)))
                    .unwrap_or((c, None));
                mk(f, o, None, false)
            })
            .collect();
    }
    let clauses: Vec<&Value> = match v {
        None => return Ok(vec![cairn_search::SortSpec::score()]),
        Some(Value::Array(a)) if a.is_empty() => return Ok(vec![cairn_search::SortSpec::score()]),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    };
    clauses
        .into_iter()
        .map(|clause| match clause {
            Value::String(f) => mk(f, None, None, false),
            Value::Object(o) => {
                let (f, spec) = o
                    .iter()
                    .next()
                    .ok_or_else(|| ApiError(EsError::parsing("empty sort")))?;
                match spec {
                    Value::String(ord) => mk(f, Some(ord), None, false),
                    Value::Object(so) => mk(
                        f,
                        so.get("order").and_then(Value::as_str),
                        so.get("missing"),
                        so.contains_key("unmapped_type"),
                    ),
                    _ => Err(ApiError(EsError::parsing(format!(
                        "malformed sort for [{f}]"
                    )))),
                }
            }
            _ => Err(ApiError(EsError::parsing("malformed sort"))),
        })
        .collect()
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

const SEARCH_KEYS: &[&str] = &[
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
    "aggs",
    "aggregations",
    "post_filter",
    "min_score",
    "highlight",
    "fields",
    "docvalue_fields",
    "pit",
    "track_scores",
    "runtime_mappings",
    "indices_boost",
    "collapse",
    "rescore",
    "suggest",
    "profile",
];

/// A parsed search body plus the options that shape the response.
pub struct ParsedSearch {
    pub req: SearchRequest,
    /// `format` of each sort clause (dates): its sort values are then strings in
    /// that format.
    pub sort_format: Vec<Option<String>>,
    pub source_spec: Option<Value>,
    pub highlight: Option<Value>,
    pub fields: Vec<String>,
    pub rest_total_as_int: bool,
    pub aggs: Option<Value>,
}

pub(crate) fn parse_search(body: &Option<Value>, p: &Params) -> Result<ParsedSearch, ApiError> {
    if let Some(b) = body {
        let o = b
            .as_object()
            .ok_or_else(|| ApiError(EsError::parsing("request body must be an object")))?;
        for k in o.keys() {
            if !SEARCH_KEYS.contains(&k.as_str()) {
                return Err(ApiError(EsError::parsing(format!(
                    "Unknown key for a {} in [{k}].",
                    if o[k].is_object() {
                        "START_OBJECT"
                    } else {
                        "VALUE_STRING"
                    }
                ))));
            }
        }
        for k in ["collapse", "rescore", "suggest", "runtime_mappings"] {
            if o.contains_key(k) {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "[{k}] is not supported by cairn"
                ))));
            }
        }
    }
    let query = query_of(body, p)?;
    let post_filter = match body.as_ref().and_then(|b| b.get("post_filter")) {
        Some(v) => Some(cairn_search::parse_query(Some(v)).map_err(ApiError)?),
        None => None,
    };
    let from = usize_of(body, p, "from", 0)?;
    let size = usize_of(body, p, "size", 10)?;
    if from + size > MAX_RESULT_WINDOW {
        return Err(ApiError(EsError::new(400, "search_phase_execution_exception", "all shards failed").caused_by(
            EsError::illegal_argument(format!(
                "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
                from + size
            )),
        )));
    }
    let sort = parse_sort(body.as_ref().and_then(|b| b.get("sort")), p)?;
    let track = match body.as_ref().and_then(|b| b.get("track_total_hits")) {
        Some(Value::Bool(true)) => TrackTotalHits::Exact,
        Some(Value::Bool(false)) => TrackTotalHits::Off,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(-1) => TrackTotalHits::Exact,
            Some(v) if v >= 0 => TrackTotalHits::UpTo(v as u64),
            _ => {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "[track_total_hits] parameter must be positive or equals to -1, got {n}"
                ))))
            }
        },
        Some(other) => {
            return Err(ApiError(EsError::parsing(format!(
                "[track_total_hits] must be a boolean or a number, found [{other}]"
            ))))
        }
        None => match p.get("track_total_hits").map(String::as_str) {
            Some("true") => TrackTotalHits::Exact,
            Some("false") => TrackTotalHits::Off,
            Some(n) => TrackTotalHits::UpTo(n.parse().unwrap_or(10_000)),
            None => TrackTotalHits::UpTo(10_000),
        },
    };
    let search_after = match body.as_ref().and_then(|b| b.get("search_after")) {
        Some(Value::Array(a)) => Some(a.clone()),
        Some(other) => {
            return Err(ApiError(EsError::parsing(format!(
                "[search_after] must be an array, found [{other}]"
            ))))
        }
        None => None,
    };
    if search_after.is_some() && from > 0 {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: [from] parameter must be set to 0 when [search_after] is used;",
        )));
    }
    let min_score = body
        .as_ref()
        .and_then(|b| b.get("min_score"))
        .and_then(Value::as_f64)
        .map(|f| f as f32);
    let list = |k: &str| {
        p.get(k)
            .map(|v| Value::Array(v.split(',').map(|s| Value::String(s.to_string())).collect()))
    };
    let source_spec = body
        .as_ref()
        .and_then(|b| b.get("_source"))
        .cloned()
        .or_else(|| {
            p.get("_source").map(|s| match s.as_str() {
                "false" => Value::Bool(false),
                "true" => Value::Bool(true),
                other => Value::Array(
                    other
                        .split(',')
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
            })
        });
    let source_spec = match (list("_source_includes"), list("_source_excludes")) {
        (None, None) => source_spec,
        (inc, exc) => Some(
            json!({"includes": inc.unwrap_or(json!([])), "excludes": exc.unwrap_or(json!([]))}),
        ),
    };
    let mut fields = Vec::new();
    for key in ["fields", "docvalue_fields"] {
        if let Some(Value::Array(a)) = body.as_ref().and_then(|b| b.get(key)) {
            for f in a {
                match f {
                    Value::String(s) => fields.push(s.clone()),
                    Value::Object(o) => {
                        if let Some(s) = o.get("field").and_then(Value::as_str) {
                            fields.push(s.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let sort_format = sort_format(body.as_ref().and_then(|b| b.get("sort")));
    let timeout = match body
        .as_ref()
        .and_then(|b| b.get("timeout"))
        .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
        .or_else(|| p.get("timeout").cloned())
    {
        None => None,
        Some(t) if t == "-1" => None,
        Some(t) => match cairn_core::time::parse_duration(&t) {
            Some(us) => Some(std::time::Duration::from_micros(us as u64)),
            None => {
                return Err(ApiError(EsError::new(
                    400,
                    "parse_exception",
                    format!("failed to parse setting [timeout] with value [{t}] as a time value: unit is missing or unrecognized"),
                )))
            }
        },
    };
    let terminate_after = match body
        .as_ref()
        .and_then(|b| b.get("terminate_after"))
        .cloned()
        .or_else(|| p.get("terminate_after").map(|v| Value::String(v.clone())))
    {
        None => None,
        Some(v) => {
            let n = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    ApiError(EsError::parsing(format!(
                        "[terminate_after] must be an integer, found [{v}]"
                    )))
                })?;
            if n < 0 {
                return Err(ApiError(EsError::action_request_validation(
                    "Validation Failed: 1: terminateAfter must be > 0;",
                )));
            }
            (n > 0).then_some(n as u64)
        }
    };
    Ok(ParsedSearch {
        sort_format,
        req: SearchRequest {
            query,
            post_filter,
            from,
            size,
            sort,
            track_total_hits: track,
            now_millis: now_millis(),
            search_after,
            min_score,
            terminate_after,
            timeout,
        },
        source_spec,
        highlight: body.as_ref().and_then(|b| b.get("highlight")).cloned(),
        fields,
        rest_total_as_int: param_bool(p, "rest_total_hits_as_int", false)?,
        aggs: body
            .as_ref()
            .and_then(|b| b.get("aggs").or_else(|| b.get("aggregations")))
            .cloned(),
    })
}

/// The `format` of the first sort clause, as Kibana sends it
/// (`{"@timestamp": {"order": "desc", "format": "strict_date_optional_time"}}`).
fn sort_format(v: Option<&Value>) -> Vec<Option<String>> {
    let clauses: Vec<&Value> = match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    clauses
        .into_iter()
        .map(|c| {
            c.as_object()?
                .values()
                .next()?
                .get("format")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Renders a date sort value (epoch millis) in a `format`: the epoch formats as
/// numbers in a string, every other format as ISO 8601 with milliseconds.
fn format_sort_date(ms: i64, format: &str) -> Value {
    match format.split("||").next().unwrap_or(format) {
        "epoch_millis" => Value::String(ms.to_string()),
        "epoch_second" => Value::String(ms.div_euclid(1000).to_string()),
        _ => Value::String(cairn_core::time::format_millis(ms.saturating_mul(1000))),
    }
}

/// Values of `fields` requested, read from `_source` (dotted keys and nested objects).
fn fields_of(src: &Value, patterns: &[String]) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, child, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(prefix, x, out);
                }
            }
            Value::Null => {}
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut leaves = Vec::new();
    walk("", src, &mut leaves);
    let mut out: Map<String, Value> = Map::new();
    for (path, v) in leaves {
        if patterns
            .iter()
            .any(|p| cairn_core::mapping::wildcard_match(p, &path))
        {
            if let Value::Array(a) = out.entry(path).or_insert_with(|| Value::Array(vec![])) {
                a.push(v);
            }
        }
    }
    out
}

/// Renders hits in Elasticsearch's shape.
pub(crate) fn render_hits(
    res: cairn_search::SearchResult,
    ps: &ParsedSearch,
    with_tiebreak: bool,
) -> Value {
    let hl = ps
        .highlight
        .as_ref()
        .map(|h| crate::highlight::Highlighter::new(h, &ps.req.query));
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
            if let Some(hl) = &hl {
                let frags = hl.highlight(&src);
                if !frags.is_empty() {
                    o.insert("highlight".into(), Value::Object(frags));
                }
            }
            if !ps.fields.is_empty() {
                o.insert("fields".into(), Value::Object(fields_of(&src, &ps.fields)));
            }
            if let Some(src) = filter_source(src, ps.source_spec.as_ref()) {
                o.insert("_source".into(), src);
            }
            let by_score_only = ps.req.sort.len() == 1 && ps.req.sort[0].field == "_score";
            if !by_score_only || with_tiebreak {
                let mut sort: Vec<Value> = h
                    .sort_value
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let field = ps.req.sort.get(i).map(|s| s.field.as_str()).unwrap_or("");
                        match (ps.sort_format.get(i).and_then(Option::as_ref), v.as_i64()) {
                            (Some(f), Some(ms)) if field != "_score" && field != "_doc" => {
                                format_sort_date(ms, f)
                            }
                            _ => v.clone(),
                        }
                    })
                    .collect();
                if with_tiebreak {
                    sort.push(json!(h.tiebreak));
                }
                o.insert("sort".into(), Value::Array(sort));
            }
            Value::Object(o)
        })
        .collect();
    let mut hits_obj = Map::new();
    if let Some((value, eq)) = res.total {
        if ps.rest_total_as_int {
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
    Value::Object(hits_obj)
}

/// Runs one search over a snapshot and renders the whole response body.
pub(crate) fn run_search(
    snap: &cairn_search::Snapshot,
    ps: &ParsedSearch,
    with_tiebreak: bool,
    started: Instant,
) -> Result<(Value, cairn_search::SearchResult), EsError> {
    let res = cairn_search::search_snapshot(snap, &ps.req)?;
    let n = snap.index_names().len();
    let mut body = json!({"took": 0, "timed_out": res.timed_out, "_shards": shards(n)});
    if ps.req.terminate_after.is_some() {
        body["terminated_early"] = json!(res.terminated_early);
    }
    if let Some(aggs) = &ps.aggs {
        let deadline = ps.req.timeout.map(|t| started + t);
        let (v, cut) = crate::aggs::run(snap, &ps.req, aggs, deadline)?;
        body["aggregations"] = v;
        if cut {
            body["timed_out"] = json!(true);
        }
    }
    body["took"] = json!(started.elapsed().as_millis() as u64);
    let copy = res.clone();
    body["hits"] = render_hits(res, ps, with_tiebreak);
    Ok((body, copy))
}

async fn do_search(
    s: Shared,
    expr: Option<String>,
    p: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let mut ps = parse_search(&body, &p)?;
    if ps.req.timeout.is_none() {
        ps.req.timeout = s.config.search_timeout;
    }
    // Point in time: search the pinned snapshot.
    if let Some(pit) = body.as_ref().and_then(|b| b.get("pit")) {
        if expr.is_some() {
            return Err(ApiError(EsError::action_request_validation(
                "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;",
            )));
        }
        let id = pit
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError(EsError::parsing("[pit] requires [id]")))?;
        let keep = pit.get("keep_alive").and_then(Value::as_str);
        let snap = s.contexts.touch_pit(id, keep)?;
        let snap2 = snap.clone();
        let body = tokio::task::spawn_blocking(move || run_search(&snap2, &ps, true, started))
            .await
            .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
        let mut out = body.0;
        out["pit_id"] = json!(id);
        return ok(out);
    }
    let expr = expr.unwrap_or_else(|| "_all".to_string());
    let indexes = resolve(&s, &expr, &p)?;
    let snap = cairn_search::Snapshot::of(&indexes);
    if let Some(keep) = p.get("scroll").cloned() {
        // Scrolls page with search_after over a pinned snapshot.
        if ps.req.from > 0 {
            return Err(ApiError(EsError::action_request_validation(
                "Validation Failed: 1: using [from] is not allowed in a scroll context;",
            )));
        }
        let ttl = contexts::keep_alive(&keep)?;
        let snap2 = snap.clone();
        ps.req.track_total_hits = TrackTotalHits::Exact;
        let (ps, out) = tokio::task::spawn_blocking(move || {
            let r = run_search(&snap2, &ps, false, started);
            (ps, r)
        })
        .await
        .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
        let (mut body, res) = out?;
        let id = s.contexts.open_scroll(snap, ps, &res, ttl)?;
        body["_scroll_id"] = json!(id);
        return ok(body);
    }
    let (body, _) = tokio::task::spawn_blocking(move || run_search(&snap, &ps, false, started))
        .await
        .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    ok(body)
}

pub async fn search_all(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_search(s, None, p, body).await
}

pub async fn search_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_search(s, Some(index), p, body).await
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
            raw: None,
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

// ---- scroll ----------------------------------------------------------------

fn scroll_params(
    body: &Option<Value>,
    p: &Params,
    id_from_path: Option<String>,
) -> (Option<String>, Option<String>) {
    let id = id_from_path
        .or_else(|| {
            body.as_ref()
                .and_then(|b| b.get("scroll_id"))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .or_else(|| p.get("scroll_id").cloned());
    let keep = body
        .as_ref()
        .and_then(|b| b.get("scroll"))
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| p.get("scroll").cloned());
    (id, keep)
}

async fn scroll_next(
    s: Shared,
    p: Params,
    body: Bytes,
    id_from_path: Option<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        Some(v)
    } else {
        // Old clients send the bare scroll id as the body.
        Some(json!({"scroll_id": String::from_utf8_lossy(&body).trim()}))
    };
    let (id, keep) = scroll_params(&body, &p, id_from_path);
    let id = id.ok_or_else(|| {
        ApiError(EsError::action_request_validation(
            "Validation Failed: 1: scrollId is missing;",
        ))
    })?;
    let mut sc = s.contexts.take_scroll(&id)?;
    if let Some(k) = keep {
        sc.expires = Instant::now() + contexts::keep_alive(&k)?;
    }
    let (sc, out) = tokio::task::spawn_blocking(move || {
        let mut sc = sc;
        let res = match &sc.after {
            None => Ok(cairn_search::SearchResult {
                hits: vec![],
                total: sc.total,
                max_score: None,
                terminated_early: false,
                timed_out: false,
            }),
            Some((v, tb)) => {
                let mut req = sc.search.req.clone();
                let mut after = v.clone();
                after.push(json!(tb));
                req.search_after = Some(after);
                req.track_total_hits = TrackTotalHits::Off;
                cairn_search::search_snapshot(&sc.snapshot, &req)
            }
        };
        let out = res.map(|mut r| {
            sc.after = r
                .hits
                .last()
                .map(|h| (h.sort_value.clone(), h.tiebreak))
                .or(None);
            r.total = sc.total;
            let n = sc.snapshot.index_names().len();
            json!({
                "took": started.elapsed().as_millis() as u64,
                "timed_out": false,
                "_shards": shards(n),
                "hits": render_hits(r, &sc.search, false),
            })
        });
        (sc, out)
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    let mut body = out?;
    body["_scroll_id"] = json!(id);
    s.contexts.put_scroll(id, sc);
    ok(body)
}

pub async fn scroll(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    scroll_next(s, p, body_bytes(body)?, None).await
}

pub async fn scroll_by_id(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    scroll_next(s, p, body_bytes(body)?, Some(id)).await
}

pub async fn clear_scroll(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let ids: Vec<String> = match body.as_ref().and_then(|b| b.get("scroll_id")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec!["_all".to_string()],
    };
    let n = s.contexts.clear_scrolls(&ids);
    ok(json!({"succeeded": true, "num_freed": n}))
}

pub async fn clear_scroll_by_id(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ids: Vec<String> = id.split(',').map(String::from).collect();
    let n = s.contexts.clear_scrolls(&ids);
    ok(json!({"succeeded": true, "num_freed": n}))
}

// ---- point in time -----------------------------------------------------------

pub async fn open_pit(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let keep = p.get("keep_alive").ok_or_else(|| {
        ApiError(EsError::action_request_validation(
            "Validation Failed: 1: [keep_alive] is not specified;",
        ))
    })?;
    let ttl = contexts::keep_alive(keep)?;
    let indexes = resolve(&s, &index, &p)?;
    let n = indexes.len();
    let snap = cairn_search::Snapshot::of(&indexes);
    let id = s.contexts.open_pit(snap, ttl);
    ok(json!({"id": id, "_shards": shards(n)}))
}

pub async fn close_pit(
    State(s): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let id = body
        .as_ref()
        .and_then(|b| b.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError(EsError::action_request_validation(
                "Validation Failed: 1: point-in-time id was not specified;",
            ))
        })?;
    if s.contexts.close_pit(id) {
        ok(json!({"succeeded": true, "num_freed": 1}))
    } else {
        Ok(crate::http::json_response(
            404,
            &json!({"succeeded": true, "num_freed": 0}),
        ))
    }
}

// ---- msearch -----------------------------------------------------------------

async fn do_msearch(
    s: Shared,
    default_index: Option<String>,
    p: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let b = body_bytes(body)?;
    let lines: Vec<&[u8]> = b
        .split(|c| *c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    if !lines.len().is_multiple_of(2) {
        return Err(ApiError(EsError::illegal_argument(
            "The msearch request must be terminated by a newline [\n]",
        )));
    }
    let mut responses = Vec::new();
    for pair in lines.chunks(2) {
        let header: Value = serde_json::from_slice(pair[0]).map_err(|e| {
            ApiError(EsError::parsing(format!(
                "failed to parse an msearch header: {e}"
            )))
        })?;
        let index = match header.get("index") {
            Some(Value::String(i)) => Some(i.clone()),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => default_index.clone(),
        };
        let one = async {
            let body: Option<Value> = Some(serde_json::from_slice(pair[1]).map_err(|e| {
                ApiError(EsError::new(
                    400,
                    "x_content_parse_exception",
                    format!("failed to parse a search body: {e}"),
                ))
            })?);
            let mut ps = parse_search(&body, &p)?;
            if ps.req.timeout.is_none() {
                ps.req.timeout = s.config.search_timeout;
            }
            let indexes = resolve(&s, index.as_deref().unwrap_or("_all"), &p)?;
            let snap = cairn_search::Snapshot::of(&indexes);
            let t = Instant::now();
            tokio::task::spawn_blocking(move || run_search(&snap, &ps, false, t).map(|r| r.0))
                .await
                .map_err(|e| ApiError(EsError::internal(e.to_string())))?
                .map_err(ApiError)
        };
        match one.await {
            Ok(mut v) => {
                v["status"] = json!(200);
                responses.push(v);
            }
            Err(ApiError(e)) => {
                let mut v = e.to_body();
                v["status"] = json!(e.status);
                responses.push(v);
            }
        }
    }
    ok(json!({"took": started.elapsed().as_millis() as u64, "responses": responses}))
}

pub async fn msearch(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_msearch(s, None, p, body).await
}

pub async fn msearch_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    do_msearch(s, Some(index), p, body).await
}

// ---- field caps, validate -----------------------------------------------------

/// For one field: type name -> (searchable, aggregatable, indices having that type).
type FieldTypes = std::collections::BTreeMap<String, (bool, bool, Vec<String>)>;

async fn do_field_caps(s: Shared, expr: String, p: Params) -> Result<Response, ApiError> {
    use cairn_core::mapping::StorageClass;
    let patterns: Vec<String> = p
        .get("fields")
        .map(|f| f.split(',').map(String::from).collect())
        .unwrap_or_else(|| vec!["*".into()]);
    let indexes = resolve(&s, &expr, &p)?;
    let mut fields: std::collections::BTreeMap<String, FieldTypes> = Default::default();
    for h in &indexes {
        let m = h.mapping();
        for (path, fm) in &m.fields {
            if !patterns
                .iter()
                .any(|pt| cairn_core::mapping::wildcard_match(pt, path))
            {
                continue;
            }
            let st = fm.ty.storage();
            let searchable = fm.indexed() && !matches!(st, StorageClass::None);
            let aggregatable = matches!(
                st,
                StorageClass::Keyword
                    | StorageClass::Integer
                    | StorageClass::Float
                    | StorageClass::Boolean
                    | StorageClass::Date
            ) && fm.indexed();
            let e = fields
                .entry(path.clone())
                .or_default()
                .entry(fm.ty.name().to_string())
                .or_insert((searchable, aggregatable, vec![]));
            e.2.push(h.name.clone());
        }
    }
    for meta in ["_id", "_index", "_source"] {
        if patterns
            .iter()
            .any(|pt| cairn_core::mapping::wildcard_match(pt, meta))
            && !indexes.is_empty()
        {
            let ty = if meta == "_source" { "_source" } else { meta };
            fields.entry(meta.to_string()).or_default().insert(
                ty.to_string(),
                (meta != "_source", meta != "_source", vec![]),
            );
        }
    }
    let n = indexes.len();
    let mut out = Map::new();
    for (name, types) in fields {
        let mut t = Map::new();
        let multi = types.len() > 1;
        for (ty, (searchable, aggregatable, idx)) in types {
            let mut o = json!({"type": ty, "metadata_field": name.starts_with('_'), "searchable": searchable, "aggregatable": aggregatable});
            if (multi || idx.len() < n) && !idx.is_empty() {
                o["indices"] = json!(idx);
            }
            t.insert(ty, o);
        }
        out.insert(name, Value::Object(t));
    }
    let names: Vec<String> = indexes.iter().map(|h| h.name.clone()).collect();
    ok(json!({"indices": names, "fields": out}))
}

pub async fn field_caps_all(
    State(s): State<Shared>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    do_field_caps(s, "_all".into(), p).await
}

pub async fn field_caps(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    do_field_caps(s, index, p).await
}

pub async fn validate_query(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let indexes = resolve(&s, &index, &p)?;
    let n = indexes.len();
    let explain = param_bool(&p, "explain", false)?;
    let check = query_of(&body, &p).and_then(|q| {
        for h in &indexes {
            let m = h.mapping();
            let (_, fields) = cairn_store::schema::build_schema();
            let c = cairn_search::compile::Compiler {
                mapping: &m,
                fields: &fields,
                now_millis: now_millis(),
            };
            c.compile(&q).map_err(ApiError)?;
        }
        Ok(q)
    });
    match check {
        Ok(q) => {
            let mut v = json!({"_shards": shards(n), "valid": true});
            if explain {
                v["explanations"] = json!(indexes
                    .iter()
                    .map(
                        |h| json!({"index": h.name, "valid": true, "explanation": format!("{q:?}")})
                    )
                    .collect::<Vec<_>>());
            }
            ok(v)
        }
        Err(ApiError(e)) => {
            let mut v = json!({"_shards": shards(n), "valid": false});
            if explain {
                v["error"] = json!(format!("{}: {}", e.kind, e.reason));
            }
            ok(v)
        }
    }
}
