//! HTTP plumbing shared by the handlers: ES-shaped errors, headers, bodies, params.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_core::EsError;
use serde_json::Value;

/// An error answered in Elasticsearch's shape.
#[derive(Debug)]
pub struct ApiError(pub EsError);

impl From<EsError> for ApiError {
    fn from(e: EsError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.0.status, &self.0.to_body())
    }
}

pub type ApiResult = Result<Response, ApiError>;

pub fn json_response(status: u16, v: &Value) -> Response {
    json_bytes_response(status, serde_json::to_vec(v).unwrap_or_default())
}

/// A response whose body is JSON text already written.
pub fn json_bytes_response(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn ok(v: Value) -> ApiResult {
    Ok(json_response(200, &v))
}

pub fn text_response(status: u16, s: String, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(s));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Adds `X-Elastic-Product` to every response and redirects browsers asking for `/`.
pub async fn es_headers(req: Request<Body>, next: Next) -> Response {
    let browser_root = req.uri().path() == "/"
        && req.method() == Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let mut resp = if browser_root {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/ui/"));
        r
    } else {
        next.run(req).await
    };
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let e = if path.starts_with("/_") || path.matches('/').count() > 2 {
        EsError::new(
            405,
            "illegal_argument_exception",
            format!("Incorrect HTTP method for uri [{uri}] and method [{method}], or the endpoint is not supported by cairn"),
        )
    } else {
        EsError::new(
            400,
            "illegal_argument_exception",
            format!("no handler found for uri [{uri}] and method [{method}]"),
        )
    };
    json_response(e.status, &e.to_body())
}

/// The request body, or an ES-shaped 413/400.
pub fn body_bytes(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|rej| {
        let status = rej.status().as_u16();
        if status == 413 {
            ApiError(EsError::new(
                413,
                "content_too_long_exception",
                "request body is larger than the configured limit (--max-body-size)",
            ))
        } else {
            ApiError(EsError::new(
                400,
                "parse_exception",
                format!("cannot read the request body: {rej}"),
            ))
        }
    })
}

/// Parses an optional JSON object body. Empty body -> None.
pub fn json_body(b: &Bytes) -> Result<Option<Value>, ApiError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(None);
    }
    serde_json::from_slice::<Value>(b).map(Some).map_err(|e| {
        ApiError(EsError::new(
            400,
            "x_content_parse_exception",
            format!(
                "[{}:{}] failed to parse the request body: {e}",
                e.line(),
                e.column()
            ),
        ))
    })
}

pub type Params = HashMap<String, String>;

pub fn param_bool(p: &Params, name: &str, default: bool) -> Result<bool, ApiError> {
    match p.get(name).map(String::as_str) {
        None => Ok(default),
        Some("") | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ApiError(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        )))),
    }
}

pub fn refresh_param(p: &Params) -> Result<cairn_store::Refresh, ApiError> {
    match p.get("refresh").map(String::as_str) {
        None | Some("false") => Ok(cairn_store::Refresh::False),
        Some("") | Some("true") => Ok(cairn_store::Refresh::True),
        Some("wait_for") => Ok(cairn_store::Refresh::WaitFor),
        Some(o) => Err(ApiError(EsError::illegal_argument(format!(
            "Unknown value for refresh: [{o}]."
        )))),
    }
}
