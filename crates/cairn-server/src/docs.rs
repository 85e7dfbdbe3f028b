//! Single-document APIs: index, create, get (realtime), delete, update.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_core::EsError;
use cairn_store::{ItemResult, WriteKind, WriteRequest};
use serde_json::{json, Map, Value};

use crate::http::{body_bytes, json_response, refresh_param, ApiError, Params};
use crate::Shared;

fn doc_source(b: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError(EsError::document_parsing(
            "[1:1] failed to parse: the document must be a JSON object",
        ))),
        Err(_) if b.is_empty() => Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: source is missing;",
        ))),
        Err(e) => Err(ApiError(EsError::document_parsing(format!(
            "[{}:{}] failed to parse: {e}",
            e.line(),
            e.column()
        )))),
    }
}

async fn write_one(s: &Shared, req: WriteRequest, p: &Params) -> Result<Response, ApiError> {
    let refresh = refresh_param(p)?;
    let pipeline = p.get("pipeline").cloned();
    let s2 = s.clone();
    let authz = crate::auth::Authz::current();
    let mut items = tokio::task::spawn_blocking(move || {
        let write = crate::bulk::write_with_pipelines(
            &s2,
            vec![req],
            &[None],
            pipeline.as_deref(),
            refresh,
        );
        // The caller's authorization is task-local: carry it into this thread.
        let rt = tokio::runtime::Handle::current();
        match authz {
            Some(a) => rt.block_on(crate::auth::Authz::scope(a, write)),
            None => rt.block_on(write),
        }
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    let item: ItemResult = items
        .pop()
        .ok_or_else(|| ApiError(EsError::internal("no result")))?;
    if let Some(e) = item.error {
        return Err(ApiError(e));
    }
    // Single-document responses are a bulk item without its `status`.
    let mut body = item.to_json();
    if let Value::Object(o) = &mut body {
        o.remove("status");
    }
    Ok(json_response(item.status, &body))
}

fn op_type(p: &Params) -> Result<WriteKind, ApiError> {
    match p.get("op_type").map(String::as_str) {
        None | Some("index") => Ok(WriteKind::Index),
        Some("create") => Ok(WriteKind::Create),
        Some(o) => Err(ApiError(EsError::illegal_argument(format!(
            "opType must be 'create' or 'index', found: [{o}]"
        )))),
    }
}

/// Index or create one document sent as the request body.
async fn write_body(
    s: &Shared,
    index: String,
    id: Option<String>,
    kind: WriteKind,
    p: &Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let src = doc_source(&b)?;
    let req = WriteRequest {
        kind,
        index,
        id,
        source: Some(Ok(src)),
        raw: Some(b.to_vec()),
    };
    write_one(s, req, p).await
}

pub async fn index_auto_id(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = op_type(&p)?;
    write_body(&s, index, None, kind, &p, body).await
}

pub async fn index_with_id(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kind = op_type(&p)?;
    write_body(&s, index, Some(id), kind, &p, body).await
}

pub async fn create_with_id(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    write_body(&s, index, Some(id), WriteKind::Create, &p, body).await
}

pub async fn update_doc(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b = body_bytes(body)?;
    let m = doc_source(&b)?;
    if m.contains_key("script") {
        return Err(ApiError(EsError::illegal_argument(
            "scripted updates are not supported by cairn",
        )));
    }
    let kind = WriteKind::Update {
        doc: m.get("doc").and_then(Value::as_object).cloned(),
        doc_as_upsert: m
            .get("doc_as_upsert")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        upsert: m.get("upsert").and_then(Value::as_object).cloned(),
    };
    write_one(
        &s,
        WriteRequest {
            kind,
            index,
            id: Some(id),
            source: None,
            raw: None,
        },
        &p,
    )
    .await
}

pub async fn delete_doc(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let concrete = concrete_index(&s, &index)?;
    let refresh = refresh_param(&p)?;
    let store = s.store.clone();
    let req = WriteRequest {
        kind: WriteKind::Delete,
        index: concrete,
        id: Some(id),
        source: None,
        raw: None,
    };
    let mut items = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(store.bulk(vec![req], refresh))
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    let item = items
        .pop()
        .ok_or_else(|| ApiError(EsError::internal("no result")))?;
    if let Some(e) = item.error {
        return Err(ApiError(e));
    }
    // Single-document responses are a bulk item without its `status`.
    let mut body = item.to_json();
    if let Value::Object(o) = &mut body {
        o.remove("status");
    }
    Ok(json_response(item.status, &body))
}

/// Reads never auto-create: the index (or data stream's write index) must exist.
fn concrete_index(s: &Shared, index: &str) -> Result<String, ApiError> {
    let hs = s
        .store
        .resolve_indices(index, cairn_store::admin::ResolveOptions::default())
        .map_err(ApiError)?;
    match hs.len() {
        0 => Err(ApiError(EsError::index_not_found(index))),
        1 => Ok(hs[0].name.clone()),
        _ => Err(ApiError(EsError::illegal_argument(format!(
            "[{index}] matches more than one index; single-document APIs need one"
        )))),
    }
}

async fn lookup(
    s: &Shared,
    index: &str,
    id: &str,
) -> Result<(String, Option<(Vec<u8>, u64)>), ApiError> {
    let hs = s
        .store
        .resolve_indices(index, cairn_store::admin::ResolveOptions::default())
        .map_err(ApiError)?;
    if hs.is_empty() {
        return Err(ApiError(EsError::index_not_found(index)));
    }
    for h in &hs {
        if let Some(found) = s.store.get_doc(h, id).await {
            return Ok((h.name.clone(), Some(found)));
        }
    }
    Ok((hs[0].name.clone(), None))
}

pub async fn get_doc(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (name, src) = lookup(&s, &index, &id).await?;
    match src {
        Some((src, version)) => {
            let v: Value = serde_json::from_slice(&src).unwrap_or(Value::Null);
            Ok(json_response(
                200,
                &json!({
                    "_index": name, "_id": id, "_version": version, "_seq_no": 0, "_primary_term": 1,
                    "found": true, "_source": v
                }),
            ))
        }
        None => Ok(json_response(
            404,
            &json!({"_index": name, "_id": id, "found": false}),
        )),
    }
}

pub async fn head_doc(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
) -> Response {
    match lookup(&s, &index, &id).await {
        Ok((_, Some(_))) => axum::http::StatusCode::OK.into_response(),
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn get_source(
    State(s): State<Shared>,
    Path((index, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (name, src) = lookup(&s, &index, &id).await?;
    match src {
        Some((src, _)) => Ok(json_response(
            200,
            &serde_json::from_slice::<Value>(&src).unwrap_or(Value::Null),
        )),
        None => Err(ApiError(EsError::resource_not_found(format!(
            "Document not found [{name}]/[{id}]"
        )))),
    }
}
