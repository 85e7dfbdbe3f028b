//! The web UI: static assets embedded in the binary and served under `/ui/`, plus the
//! small native API the UI needs beyond the Elasticsearch endpoints: the server's clock
//! (`/_cairn/ui/config`) and saved objects (saved searches, dashboards, data views)
//! kept in the hidden internal index `.cairn-ui`.
//!
//! Assets are listed once in [`ASSETS`] (a unit test checks the list matches `ui/`).
//! For development, `CAIRN_UI_DIR=/path/to/ui` serves the files from disk instead, so
//! editing JavaScript needs a browser reload, not a rebuild.

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_core::EsError;
use cairn_search::{SearchRequest, SortSpec, TrackTotalHits};
use cairn_store::{Refresh, WriteKind, WriteRequest};
use serde_json::{json, Map, Value};

use crate::http::{body_bytes, json_body, ok, ApiError, ApiResult};
use crate::Shared;

/// The hidden index holding saved objects.
pub const UI_INDEX: &str = ".cairn-ui";
/// Saved object types the UI knows.
const TYPES: &[&str] = &["search", "dashboard", "data-view"];
/// Upper bound of objects listed or exported per type.
const MAX_OBJECTS: usize = 10_000;

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/", $path)) as &[u8])),*]
    };
}

/// Every file under `ui/`, relative to it.
static ASSETS: &[(&str, &[u8])] = assets![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/alerts.js",
    "js/api.js",
    "js/app.js",
    "js/context.js",
    "js/dashboards.js",
    "js/data.js",
    "js/discover.js",
    "js/histogram.js",
    "js/indices.js",
    "js/login.js",
    "js/time.js",
    "js/timepicker.js",
    "js/util.js",
    "vendor/uplot/LICENSE",
    "vendor/uplot/VERSION",
    "vendor/uplot/uPlot.esm.js",
    "vendor/uplot/uPlot.min.css",
];

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

/// A strong validator per embedded file, computed once (FNV-1a over the bytes).
fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|(_, b)| etag_of(b)).collect())
}

fn etag_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}-{}\"", bytes.len())
}

/// The development directory, when `CAIRN_UI_DIR` names one.
fn dev_dir() -> Option<PathBuf> {
    std::env::var_os("CAIRN_UI_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
}

/// Finds an asset: from `CAIRN_UI_DIR` when set, else from the embedded list.
fn lookup(path: &str) -> Option<(Vec<u8>, String)> {
    if let Some(dir) = dev_dir() {
        let rel = std::path::Path::new(path);
        // Only plain relative components: no `..`, no absolute paths.
        if rel.components().all(|c| matches!(c, Component::Normal(_))) {
            if let Ok(b) = std::fs::read(dir.join(rel)) {
                let tag = etag_of(&b);
                return Some((b, tag));
            }
        }
        return None;
    }
    let i = ASSETS.iter().position(|(p, _)| *p == path)?;
    Some((ASSETS[i].1.to_vec(), etags()[i].clone()))
}

fn asset_response(path: &str, headers: &HeaderMap) -> Response {
    let Some((bytes, tag)) = lookup(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    // Vendored libraries change only with an upgrade of the binary; the app's own files
    // are revalidated every time (a 304 costs one round trip, and an upgrade is seen at once).
    let cache = if path.starts_with("vendor/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(bytes))
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if path.ends_with(".html") {
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        );
    }
    r
}

/// Header the UI sets on every API call.
const UI_MARKER: &str = "x-cairn-ui";

/// Browsers answer a 401 carrying a `Basic` challenge with their own sign-in dialog,
/// which would hide the UI's login page; so the UI's calls (marked with `X-Cairn-UI`)
/// get their 401 without `WWW-Authenticate`. Other clients keep the challenge.
pub async fn no_basic_challenge(req: Request<Body>, next: Next) -> Response {
    let from_ui = req.headers().contains_key(UI_MARKER);
    let mut r = next.run(req).await;
    if from_ui && r.status() == StatusCode::UNAUTHORIZED {
        r.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    r
}

/// `GET /ui`: the UI lives under `/ui/`.
pub async fn redirect_root() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/ui/"));
    r
}

/// `GET /ui/`: the application shell.
pub async fn index(headers: HeaderMap) -> Response {
    asset_response("index.html", &headers)
}

/// `GET /ui/{*path}`: a file, or the shell for client-side routes (no extension).
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let last = path.rsplit('/').next().unwrap_or("");
    if lookup(&path).is_some() || last.contains('.') {
        asset_response(&path, &headers)
    } else {
        asset_response("index.html", &headers)
    }
}

/// `GET /_cairn/ui/config`: what the UI needs from the server, above all its clock
/// (`CAIRN_NOW` makes "last 24 hours" mean the same over old sample data).
pub async fn config() -> ApiResult {
    ok(json!({
        "now": cairn_core::time::now_micros() / 1000,
        "version": env!("CARGO_PKG_VERSION"),
        "saved_object_types": TYPES,
    }))
}

// ---------------------------------------------------------------------------------------
// Saved objects

fn check_type(t: &str) -> Result<(), ApiError> {
    if TYPES.contains(&t) {
        Ok(())
    } else {
        Err(ApiError(EsError::illegal_argument(format!(
            "unknown saved object type [{t}]; expected one of {}",
            TYPES.join(", ")
        ))))
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ApiError(EsError::illegal_argument(format!(
            "invalid saved object id [{id}]: use 1 to 100 letters, digits, '-' or '_'"
        ))))
    }
}

fn not_found(t: &str, id: &str) -> ApiError {
    ApiError(EsError::new(
        404,
        "resource_not_found_exception",
        format!("saved object [{t}/{id}] not found"),
    ))
}

fn doc_id(t: &str, id: &str) -> String {
    format!("{t}:{id}")
}

/// The stored form: attributes kept as one JSON string, so that arbitrary panel
/// configurations never conflict with the index's dynamic mapping.
fn to_stored(t: &str, id: &str, attrs: &Map<String, Value>) -> Map<String, Value> {
    let title = attrs
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut m = Map::new();
    m.insert("type".into(), json!(t));
    m.insert("id".into(), json!(id));
    m.insert("title".into(), json!(title));
    m.insert(
        "updated_at".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    m.insert(
        "attributes".into(),
        json!(Value::Object(attrs.clone()).to_string()),
    );
    m
}

/// The API form of a stored document.
fn from_stored(src: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(src).ok()?;
    let attrs: Value = serde_json::from_str(v.get("attributes")?.as_str()?).ok()?;
    Some(json!({
        "type": v.get("type")?,
        "id": v.get("id")?,
        "updated_at": v.get("updated_at").cloned().unwrap_or(Value::Null),
        "attributes": attrs,
    }))
}

/// The `attributes` object of a request body (`{"attributes": {...}}`), which must
/// have a non-empty `title`.
fn attributes_of(body: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    let attrs = match body {
        Some(Value::Object(mut o)) => match o.remove("attributes") {
            Some(Value::Object(a)) => a,
            _ => {
                return Err(ApiError(EsError::action_request_validation(
                    "Validation Failed: 1: [attributes] must be an object;",
                )))
            }
        },
        _ => {
            return Err(ApiError(EsError::action_request_validation(
                "Validation Failed: 1: the body must be a JSON object with [attributes];",
            )))
        }
    };
    match attrs.get("title").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => Ok(attrs),
        _ => Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: [attributes.title] is required;",
        ))),
    }
}

async fn write(s: &Shared, reqs: Vec<WriteRequest>) -> Result<(), ApiError> {
    let s2 = s.clone();
    let items = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(s2.store.bulk(reqs, Refresh::True))
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    match items.into_iter().find_map(|i| i.error) {
        Some(e) => Err(ApiError(e)),
        None => Ok(()),
    }
}

async fn put_object(
    s: &Shared,
    t: &str,
    id: &str,
    attrs: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let src = to_stored(t, id, attrs);
    let raw = serde_json::to_vec(&Value::Object(src.clone()))
        .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    write(
        s,
        vec![WriteRequest {
            kind: WriteKind::Index,
            index: UI_INDEX.into(),
            id: Some(doc_id(t, id)),
            source: Some(Ok(src)),
            raw: Some(raw.clone()),
        }],
    )
    .await?;
    from_stored(&raw).ok_or_else(|| ApiError(EsError::internal("saved object not readable")))
}

async fn get_object(s: &Shared, t: &str, id: &str) -> Option<Value> {
    let idx = s.store.index(UI_INDEX)?;
    let src = s.store.get_source(&idx, &doc_id(t, id)).await?;
    from_stored(&src)
}

/// Every object of the given types, sorted by title.
async fn list_objects(s: &Shared, types: &[&str]) -> Result<Vec<Value>, ApiError> {
    let Some(idx) = s.store.index(UI_INDEX) else {
        return Ok(Vec::new());
    };
    let query =
        cairn_search::parse_query(Some(&json!({"terms": {"type": types}}))).map_err(ApiError)?;
    let req = SearchRequest {
        query,
        post_filter: None,
        from: 0,
        size: MAX_OBJECTS,
        sort: vec![SortSpec::score()],
        track_total_hits: TrackTotalHits::Off,
        now_millis: crate::search::now_millis(),
        search_after: None,
        min_score: None,
        terminate_after: None,
        timeout: None,
    };
    let res = tokio::task::spawn_blocking(move || cairn_search::search(&[idx], &req))
        .await
        .map_err(|e| ApiError(EsError::internal(e.to_string())))?
        .map_err(ApiError)?;
    let mut out: Vec<Value> = res
        .hits
        .iter()
        .filter_map(|h| from_stored(&h.source))
        .collect();
    let key = |v: &Value| {
        v.pointer("/attributes/title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()
    };
    out.sort_by_key(key);
    Ok(out)
}

/// `GET /_cairn/saved_objects/{type}`
pub async fn list(State(s): State<Shared>, Path(t): Path<String>) -> ApiResult {
    check_type(&t)?;
    let objects = list_objects(&s, &[t.as_str()]).await?;
    ok(json!({"total": objects.len(), "saved_objects": objects}))
}

/// `POST /_cairn/saved_objects/{type}`: creates an object with a new id.
pub async fn create(
    State(s): State<Shared>,
    Path(t): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    check_type(&t)?;
    let b = body_bytes(body)?;
    let attrs = attributes_of(json_body(&b)?)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let obj = put_object(&s, &t, &id, &attrs).await?;
    Ok(crate::http::json_response(201, &obj))
}

/// `GET /_cairn/saved_objects/{type}/{id}`
pub async fn get(State(s): State<Shared>, Path((t, id)): Path<(String, String)>) -> ApiResult {
    check_type(&t)?;
    check_id(&id)?;
    get_object(&s, &t, &id)
        .await
        .map(ok)
        .ok_or_else(|| not_found(&t, &id))?
}

/// `PUT /_cairn/saved_objects/{type}/{id}`: creates or replaces.
pub async fn put(
    State(s): State<Shared>,
    Path((t, id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    check_type(&t)?;
    check_id(&id)?;
    let b = body_bytes(body)?;
    let attrs = attributes_of(json_body(&b)?)?;
    ok(put_object(&s, &t, &id, &attrs).await?)
}

/// `DELETE /_cairn/saved_objects/{type}/{id}`
pub async fn delete(State(s): State<Shared>, Path((t, id)): Path<(String, String)>) -> ApiResult {
    check_type(&t)?;
    check_id(&id)?;
    if get_object(&s, &t, &id).await.is_none() {
        return Err(not_found(&t, &id));
    }
    write(
        &s,
        vec![WriteRequest {
            kind: WriteKind::Delete,
            index: UI_INDEX.into(),
            id: Some(doc_id(&t, &id)),
            source: None,
            raw: None,
        }],
    )
    .await?;
    ok(json!({"deleted": true, "type": t, "id": id}))
}

/// `GET /_cairn/saved_objects/_export`: every saved object, as one JSON document that
/// `_import` accepts.
pub async fn export(State(s): State<Shared>) -> ApiResult {
    let objects = list_objects(&s, TYPES).await?;
    let mut r = crate::http::json_response(
        200,
        &json!({"cairn_saved_objects": 1, "saved_objects": objects}),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cairn-saved-objects.json\""),
    );
    Ok(r)
}

/// `POST /_cairn/saved_objects/_import`: creates or replaces the objects of an export
/// (`{"saved_objects": [{"type", "id", "attributes"}...]}`), all or nothing on validation.
pub async fn import(State(s): State<Shared>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let b = body_bytes(body)?;
    let body = json_body(&b)?;
    let Some(items) = body
        .as_ref()
        .and_then(|v| v.get("saved_objects"))
        .and_then(Value::as_array)
    else {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: the body must be an export: {\"saved_objects\": [...]};",
        )));
    };
    let mut reqs = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let field = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (t, id) = (field("type"), field("id"));
        let checked = check_type(&t)
            .and_then(|_| check_id(&id))
            .and_then(|_| attributes_of(Some(json!({"attributes": item.get("attributes")}))));
        let attrs = checked.map_err(|ApiError(e)| {
            ApiError(EsError::action_request_validation(format!(
                "Validation Failed: 1: saved_objects[{n}]: {};",
                e.reason
            )))
        })?;
        let src = to_stored(&t, &id, &attrs);
        let raw = serde_json::to_vec(&Value::Object(src.clone()))
            .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
        reqs.push(WriteRequest {
            kind: WriteKind::Index,
            index: UI_INDEX.into(),
            id: Some(doc_id(&t, &id)),
            source: Some(Ok(src)),
            raw: Some(raw),
        });
    }
    let n = reqs.len();
    if n > 0 {
        write(&s, reqs).await?;
    }
    ok(json!({"success": true, "imported": n}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded list and the `ui/` directory hold the same files.
    #[test]
    fn asset_list_matches_ui_dir() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read ui dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "update ASSETS in ui.rs");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("vendor/uplot/LICENSE"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn stored_round_trip() {
        let mut a = Map::new();
        a.insert("title".into(), json!("errors"));
        a.insert("panels".into(), json!([{"type": "metric"}]));
        let raw = serde_json::to_vec(&Value::Object(to_stored("dashboard", "d1", &a)))
            .expect("serialize");
        let v = from_stored(&raw).expect("readable");
        assert_eq!(v["attributes"]["panels"][0]["type"], "metric");
        assert_eq!(v["id"], "d1");
        assert!(check_id("../x").is_err());
        assert!(check_type("user").is_err());
    }
}
