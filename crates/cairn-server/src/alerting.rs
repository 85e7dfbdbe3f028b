//! The alert engine inside `cairn serve`: an in-process search backend for
//! `cairn-alert` and the rules API under `/_cairn/alerting/`.
//!
//! The backend sends each request through the server's own router with
//! `tower::ServiceExt::oneshot`: no network, and exactly the semantics (and the
//! authorization) an HTTP client would get. Every request carries
//! [`RunAs`](crate::auth::RunAs) with the rule owner, so a rule can read only what the
//! user who saved it may read.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{header, Request};
use axum::routing::{delete, get, post};
use axum::Router;
use bytes::Bytes;
use cairn_alert::backend::{BoxFut, Method, SearchBackend};
use cairn_alert::{AlertError, Engine, EngineConfig, SystemClock};
use cairn_core::EsError;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::auth::RunAs;
use crate::http::{json_response, ApiError, ApiResult};
use crate::Shared;

/// The engine of this process. The router is built from `AppState` alone and the
/// engine needs the router, so the rules API finds the engine here once it started.
static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();

/// Largest response body the engine reads from its own server (a page of hits).
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// Calls the server's router in-process.
pub struct InProcessBackend {
    router: Router,
}

impl InProcessBackend {
    pub fn new(state: Shared) -> Self {
        InProcessBackend {
            router: crate::router(state),
        }
    }
}

impl SearchBackend for InProcessBackend {
    fn request<'a>(
        &'a self,
        method: Method,
        path_and_query: &'a str,
        body: Option<&'a Value>,
        run_as: &'a str,
    ) -> BoxFut<'a, cairn_alert::Result<(u16, Value)>> {
        Box::pin(async move {
            let bytes = match body {
                Some(b) => {
                    serde_json::to_vec(b).map_err(|e| AlertError::Transport(e.to_string()))?
                }
                None => Vec::new(),
            };
            let req = Request::builder()
                .method(method.as_str())
                .uri(path_and_query)
                .header(header::CONTENT_TYPE, "application/json")
                .extension(RunAs(run_as.to_string()))
                .body(Body::from(bytes))
                .map_err(|e| AlertError::Transport(e.to_string()))?;
            let resp = match self.router.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| AlertError::Transport(e.to_string()))?;
            Ok((status, cairn_alert::backend::body_value(&bytes)))
        })
    }
}

/// Starts the engine for a server (rules from `rules_dir`, if any, and from the API).
pub async fn start(state: Shared, rules_dir: Option<PathBuf>) -> Result<Arc<Engine>, AlertError> {
    let backend = Arc::new(InProcessBackend::new(state));
    let cfg = EngineConfig {
        rules_dir,
        ..Default::default()
    };
    let engine = Engine::new(backend, Arc::new(SystemClock), cfg)?;
    engine.start().await?;
    let _ = ENGINE.set(engine.clone());
    Ok(engine)
}

/// Per-rule metrics, appended to `/_cairn/metrics`.
pub fn render_metrics(out: &mut String) {
    if let Some(e) = ENGINE.get() {
        e.render_metrics(out);
    }
}

/// The rules API routes (merged into the main router).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/_cairn/alerting/rules", get(list_rules).post(create_rule))
        .route("/_cairn/alerting/rules/_validate", post(validate_rule))
        .route("/_cairn/alerting/rules/_test", post(test_rule))
        .route(
            "/_cairn/alerting/rules/{id}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
        .route("/_cairn/alerting/rules/{id}/history", get(rule_history))
        .route(
            "/_cairn/alerting/rules/{id}/silences",
            get(list_silences).post(add_silence),
        )
        .route(
            "/_cairn/alerting/rules/{id}/silences/{key}",
            delete(remove_silence),
        )
        .route("/_cairn/alerting/history", get(all_history))
}

fn engine() -> Result<&'static Arc<Engine>, ApiError> {
    ENGINE.get().ok_or_else(|| {
        ApiError(EsError::new(
            503,
            "alerting_unavailable_exception",
            "the alert engine is not running",
        ))
    })
}

fn alert_err(e: AlertError) -> ApiError {
    match e {
        AlertError::Config { .. } => ApiError(EsError::new(
            400,
            "rule_validation_exception",
            e.to_string(),
        )),
        other => ApiError(EsError::new(500, "alerting_exception", other.to_string())),
    }
}

/// The user saving a rule becomes its owner; with authentication off everyone is the
/// administrator.
fn current_user() -> String {
    match crate::auth::Authz::current() {
        Some(a) if a.principal.realm != "anonymous" => a.principal.username.clone(),
        _ => "admin".into(),
    }
}

/// A rule body: `{"id": ..., "yaml": "..."}`, a JSON rule object, or raw YAML text.
fn rule_text(body: &Bytes) -> Result<(Option<String>, String), ApiError> {
    let bad = |m: &str| ApiError(EsError::new(400, "parse_exception", m.to_string()));
    if body.is_empty() {
        return Err(bad(
            "request body is required: the rule as YAML, or {\"yaml\": \"...\"}",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => {
            let id = o.get("id").and_then(Value::as_str).map(str::to_string);
            match o.remove("yaml") {
                Some(Value::String(y)) => Ok((id, y)),
                Some(_) => Err(bad("[yaml] must be a string")),
                None => {
                    o.remove("id");
                    Ok((id, Value::Object(o).to_string()))
                }
            }
        }
        Ok(_) => Err(bad("expected a rule object")),
        Err(_) => std::str::from_utf8(body)
            .map(|s| (None, s.to_string()))
            .map_err(|_| bad("the rule must be UTF-8 text")),
    }
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "rule".into()
    } else {
        s
    }
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 200
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || id.starts_with('.')
    {
        return Err(ApiError(EsError::new(
            400,
            "rule_validation_exception",
            format!("invalid rule id [{id}]: use letters, digits, '-', '_' and '.'"),
        )));
    }
    Ok(())
}

async fn list_rules() -> ApiResult {
    let e = engine()?;
    let rules = e.list_rules().await;
    Ok(json_response(200, &json!({"rules": rules})))
}

async fn create_rule(body: Bytes) -> ApiResult {
    let e = engine()?;
    let (id, yaml) = rule_text(&body)?;
    let id = match id {
        Some(id) => id,
        None => {
            let rule = e.validate("new", &yaml).map_err(alert_err)?;
            slug(&rule.name)
        }
    };
    valid_id(&id)?;
    if e.rule_exists(&id).await {
        return Err(ApiError(EsError::new(
            409,
            "version_conflict_engine_exception",
            format!(
                "rule [{id}] already exists: use PUT /_cairn/alerting/rules/{id} to replace it"
            ),
        )));
    }
    let v = e
        .put_rule(&id, &yaml, &current_user())
        .await
        .map_err(alert_err)?;
    Ok(json_response(201, &v))
}

async fn put_rule(Path(id): Path<String>, body: Bytes) -> ApiResult {
    let e = engine()?;
    valid_id(&id)?;
    let (_, yaml) = rule_text(&body)?;
    let v = e
        .put_rule(&id, &yaml, &current_user())
        .await
        .map_err(alert_err)?;
    Ok(json_response(200, &v))
}

async fn validate_rule(body: Bytes) -> ApiResult {
    let e = engine()?;
    let (id, yaml) = rule_text(&body)?;
    match e.validate(id.as_deref().unwrap_or("rule"), &yaml) {
        Ok(r) => Ok(json_response(
            200,
            &json!({"valid": true, "name": r.name, "type": r.kind.name()}),
        )),
        Err(err @ AlertError::Config { .. }) => {
            let key = match &err {
                AlertError::Config { key, .. } => key.clone(),
                _ => String::new(),
            };
            Ok(json_response(
                200,
                &json!({"valid": false, "key": key, "error": err.to_string()}),
            ))
        }
        Err(other) => Err(alert_err(other)),
    }
}

/// `POST /_cairn/alerting/rules/_test?hours=N` with a rule (as for `_validate`): what
/// it would have sent over the last N hours (default 24), run with the caller's
/// privileges; nothing is sent or saved.
async fn test_rule(
    Query(p): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let e = engine()?;
    let (id, yaml) = rule_text(&body)?;
    let hours = match p.get("hours") {
        None => 24.0,
        Some(h) => match h.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 24.0 * 366.0 => v,
            _ => {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "[hours] must be a number of hours between 0 and 8784, found [{h}]"
                ))))
            }
        },
    };
    let rule = e
        .validate(id.as_deref().unwrap_or("preview"), &yaml)
        .map_err(alert_err)?;
    let out = e
        .dry_run(&rule, &current_user(), hours)
        .await
        .map_err(alert_err)?;
    Ok(json_response(200, &out))
}

fn not_found(id: &str) -> ApiError {
    ApiError(EsError::new(
        404,
        "resource_not_found_exception",
        format!("rule [{id}] not found"),
    ))
}

async fn get_rule(Path(id): Path<String>) -> ApiResult {
    let e = engine()?;
    match e.get_rule(&id).await {
        Some(v) => Ok(json_response(200, &v)),
        None => Err(not_found(&id)),
    }
}

async fn delete_rule(Path(id): Path<String>) -> ApiResult {
    let e = engine()?;
    if e.delete_rule(&id).await.map_err(alert_err)? {
        Ok(json_response(200, &json!({"acknowledged": true})))
    } else {
        Err(not_found(&id))
    }
}

#[derive(serde::Deserialize)]
struct HistoryParams {
    size: Option<u64>,
}

async fn rule_history(Path(id): Path<String>, Query(p): Query<HistoryParams>) -> ApiResult {
    let e = engine()?;
    let items = e
        .history(Some(&id), p.size.unwrap_or(100))
        .await
        .map_err(alert_err)?;
    Ok(json_response(200, &json!({"alerts": items})))
}

async fn all_history(Query(p): Query<HistoryParams>) -> ApiResult {
    let e = engine()?;
    let items = e
        .history(None, p.size.unwrap_or(100))
        .await
        .map_err(alert_err)?;
    Ok(json_response(200, &json!({"alerts": items})))
}

async fn list_silences(Path(id): Path<String>) -> ApiResult {
    let e = engine()?;
    if !e.rule_exists(&id).await {
        return Err(not_found(&id));
    }
    Ok(json_response(
        200,
        &json!({"silences": e.list_silences(&id)}),
    ))
}

/// `{"query_key": "web-1"?, "until": "2024-01-01T00:00:00Z"}` or `{"duration": "2h"}`.
async fn add_silence(Path(id): Path<String>, body: Bytes) -> ApiResult {
    let e = engine()?;
    let bad = |m: String| ApiError(EsError::new(400, "parse_exception", m));
    let v: Value =
        serde_json::from_slice(&body).map_err(|err| bad(format!("invalid JSON: {err}")))?;
    let until = if let Some(u) = v.get("until").and_then(Value::as_str) {
        cairn_core::time::parse_default(u)
            .ok_or_else(|| bad(format!("invalid [until] date [{u}]")))?
    } else if let Some(d) = v.get("duration").and_then(Value::as_str) {
        e.now()
            + cairn_core::time::parse_duration(d)
                .ok_or_else(|| bad(format!("invalid [duration] [{d}]")))?
    } else {
        return Err(bad("[until] or [duration] is required".into()));
    };
    let qk = v.get("query_key").and_then(Value::as_str);
    let key = e.silence(&id, qk, until).await.map_err(alert_err)?;
    Ok(json_response(
        200,
        &json!({"acknowledged": true, "key": key, "until": cairn_alert::value::iso(until)}),
    ))
}

async fn remove_silence(Path((id, key)): Path<(String, String)>) -> ApiResult {
    let e = engine()?;
    if e.unsilence(&id, &key).await.map_err(alert_err)? {
        Ok(json_response(200, &json!({"acknowledged": true})))
    } else {
        Err(ApiError(EsError::new(
            404,
            "resource_not_found_exception",
            format!("silence [{key}] not found"),
        )))
    }
}
