//! Elasticsearch's common response options, for every JSON response: `filter_path`
//! (response filtering) and `pretty`.
//!
//! `filter_path` is a comma-separated list of dotted paths. A segment may hold `*`
//! (any part of one field name: `items.*.status`, `nodes.*.ho*`), a segment `**`
//! matches any number of levels (`indices.**.version`), arrays are transparent (a
//! path applies to each element), and a leading `-` excludes (`-_shards`). As in
//! Elasticsearch, exclusions apply first and inclusions then filter what is left;
//! objects and arrays left with nothing selected are dropped, and a response of which
//! nothing is selected is `{}`. Shippers use it to shrink `_bulk` responses (Filebeat
//! and Logstash send `filter_path=errors,items.*.error,items.*.status`).

use axum::body::Body;
use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};

/// One segment of a filter path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// `**`: zero or more levels.
    AnyDepth,
    /// A field name, with `*` matching any run of characters.
    Name(String),
}

/// A parsed `filter_path`.
#[derive(Debug, Default)]
pub struct Filter {
    include: Vec<Vec<Seg>>,
    exclude: Vec<Vec<Seg>>,
}

/// Most segments a `filter_path` may have in all (each costs work for every field of
/// the response).
pub const MAX_SEGMENTS: usize = 512;

/// A filter still pending at some depth: (filter, index of its next segment).
type State = (u32, u32);

impl Filter {
    /// Parse the parameter's value (empty paths are ignored): None when nothing is
    /// left, an error when it has more than [`MAX_SEGMENTS`] segments.
    pub fn parse(spec: &str) -> Result<Option<Filter>, String> {
        let mut f = Filter::default();
        let mut total = 0;
        for raw in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (list, path) = match raw.strip_prefix('-') {
                Some(rest) => (&mut f.exclude, rest),
                None => (&mut f.include, raw),
            };
            let mut segs: Vec<Seg> = Vec::new();
            for s in path.split('.').filter(|s| !s.is_empty()) {
                let seg = if s == "**" {
                    Seg::AnyDepth
                } else {
                    Seg::Name(s.to_owned())
                };
                // `**.**` is `**`.
                if !(seg == Seg::AnyDepth && segs.last() == Some(&Seg::AnyDepth)) {
                    segs.push(seg);
                }
            }
            total += segs.len();
            if total > MAX_SEGMENTS {
                return Err(format!(
                    "[filter_path] has more than {MAX_SEGMENTS} path segments"
                ));
            }
            if !segs.is_empty() {
                list.push(segs);
            }
        }
        Ok((!f.include.is_empty() || !f.exclude.is_empty()).then_some(f))
    }

    /// The filtered response.
    pub fn apply(&self, v: Value) -> Value {
        let mut v = v;
        if !self.exclude.is_empty() {
            v = exclude(v, &self.exclude, &starts(&self.exclude));
        }
        if self.include.is_empty() {
            return v;
        }
        include(v, &self.include, &starts(&self.include))
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
}

fn starts(filters: &[Vec<Seg>]) -> Vec<State> {
    (0..filters.len() as u32).map(|i| (i, 0)).collect()
}

/// `*` matches any run of characters (including none).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// What the filters pending at an object say of its field `key`: whether one of them
/// ends there (the whole value is selected), and the states that go on below it.
fn step(filters: &[Vec<Seg>], states: &[State], key: &str) -> (bool, Vec<State>) {
    let mut whole = false;
    let mut next: Vec<State> = Vec::new();
    for &(f, pos) in states {
        let segs = &filters[f as usize];
        let mut pos = pos as usize;
        // `**` stands for zero levels (what follows it is tried on this key) or more
        // (it takes this key and stays pending). Consecutive `**` were merged.
        if segs.get(pos) == Some(&Seg::AnyDepth) {
            if pos + 1 == segs.len() {
                whole = true;
                continue;
            }
            next.push((f, pos as u32));
            pos += 1;
        }
        if let Some(Seg::Name(p)) = segs.get(pos) {
            if glob(p, key) {
                if pos + 1 == segs.len() {
                    whole = true;
                } else {
                    next.push((f, pos as u32 + 1));
                }
            }
        }
    }
    next.sort_unstable();
    next.dedup();
    (whole, next)
}

/// The part of `v` the pending inclusive filters select, or None.
fn include(v: Value, filters: &[Vec<Seg>], states: &[State]) -> Option<Value> {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let (whole, next) = step(filters, states, &k);
                if whole {
                    out.insert(k, child);
                } else if !next.is_empty() {
                    if let Some(c) = include(child, filters, &next) {
                        out.insert(k, c);
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a
                .into_iter()
                .filter_map(|e| include(e, filters, states))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        // A scalar with a path still pending below it is not selected.
        _ => None,
    }
}

/// `v` without what the pending exclusive filters name.
fn exclude(v: Value, filters: &[Vec<Seg>], states: &[State]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let (whole, next) = step(filters, states, &k);
                if whole {
                    continue;
                }
                let child = if next.is_empty() {
                    child
                } else {
                    exclude(child, filters, &next)
                };
                out.insert(k, child);
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            Value::Array(a.into_iter().map(|e| exclude(e, filters, states)).collect())
        }
        other => other,
    }
}

/// Middleware: applies `filter_path` and `pretty` to JSON responses.
pub async fn middleware(req: Request<Body>, next: Next) -> Response {
    // Most requests (every `_bulk` of a shipper) name neither option: no query parsing.
    let query = req.uri().query().unwrap_or("");
    if !query.contains("filter_path") && !query.contains("pretty") {
        return next.run(req).await;
    }
    // A query string that does not parse is the handler's to refuse.
    let params = axum::extract::Query::<crate::http::Params>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let filter = match params.get("filter_path").map(|f| Filter::parse(f)) {
        None => None,
        Some(Ok(f)) => f,
        // Refused before the handler runs, so nothing was done.
        Some(Err(reason)) => {
            let e = cairn_core::EsError::new(400, "illegal_argument_exception", reason);
            return crate::http::json_response(e.status, &e.to_body());
        }
    };
    let pretty = params.get("pretty").is_some_and(|v| v != "false");
    let resp = next.run(req).await;
    if filter.is_none() && !pretty {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json") && !ct.contains("ndjson"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Responses are built in memory; collecting one again costs what it holds.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "could not read a response to filter it");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(f) = &filter {
        v = f.apply(v);
    }
    let out = if pretty {
        serde_json::to_vec_pretty(&v)
    } else {
        serde_json::to_vec(&v)
    }
    .unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len() as u64));
    Response::from_parts(parts, Body::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filtered(spec: &str, v: Value) -> Value {
        Filter::parse(spec)
            .expect("valid")
            .expect("filter")
            .apply(v)
    }

    #[test]
    fn bulk_response_as_shippers_filter_it() {
        let resp = json!({"took": 3, "errors": true, "items": [
            {"create": {"_index": "x", "_id": "1", "_version": 1, "result": "created",
                        "_shards": {"total": 1, "successful": 1, "failed": 0}, "status": 201}},
            {"create": {"_index": "x", "_id": "2", "status": 409,
                        "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}}
        ]});
        assert_eq!(
            filtered("errors,items.*.error,items.*.status", resp),
            json!({"errors": true, "items": [
                {"create": {"status": 201}},
                {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}}
            ]})
        );
    }

    #[test]
    fn wildcards_double_star_and_exclusions() {
        let v = json!({"took": 1, "hits": {"total": {"value": 2}, "hits": [
            {"_id": "a", "_score": 1.0, "_source": {"host": {"name": "h1"}, "msg": "x"}},
            {"_id": "b", "_score": 0.5, "_source": {"msg": "y"}}
        ]}});
        assert_eq!(
            filtered("took,hits.hits._id", v.clone()),
            json!({"took": 1, "hits": {"hits": [{"_id": "a"}, {"_id": "b"}]}})
        );
        assert_eq!(
            filtered("hits.hits._s*", v.clone()),
            json!({"hits": {"hits": [
                {"_score": 1.0, "_source": {"host": {"name": "h1"}, "msg": "x"}},
                {"_score": 0.5, "_source": {"msg": "y"}}
            ]}})
        );
        assert_eq!(
            filtered("**.name", v.clone()),
            json!({"hits": {"hits": [{"_source": {"host": {"name": "h1"}}}]}})
        );
        assert_eq!(
            filtered("-hits.hits._source,-took", v.clone()),
            json!({"hits": {"total": {"value": 2}, "hits": [
                {"_id": "a", "_score": 1.0}, {"_id": "b", "_score": 0.5}
            ]}})
        );
        // Exclusions first, then inclusions.
        assert_eq!(
            filtered("hits.hits.*,-**._score", v.clone()),
            json!({"hits": {"hits": [
                {"_id": "a", "_source": {"host": {"name": "h1"}, "msg": "x"}},
                {"_id": "b", "_source": {"msg": "y"}}
            ]}})
        );
        assert_eq!(filtered("nothing.here", v), json!({}));
    }

    #[test]
    fn parse_and_glob() {
        assert!(Filter::parse("").expect("valid").is_none());
        assert!(Filter::parse(" , ").expect("valid").is_none());
        // Hostile: many `**` collapse; too many segments are refused.
        let stars = vec!["**"; 5000].join(".");
        let f = Filter::parse(&format!("{stars}.x"))
            .expect("valid")
            .expect("filter");
        assert_eq!(f.include[0].len(), 2);
        let many = vec!["a"; MAX_SEGMENTS + 1].join(".");
        assert!(Filter::parse(&many).is_err());
        assert_eq!(
            filtered("**.**.x", json!({"a": {"b": {"x": 1, "y": 2}}})),
            json!({"a": {"b": {"x": 1}}})
        );
        assert!(glob("ho*", "host"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b", "ac"));
        assert!(!glob("status", "statuses"));
    }
}
