//! `_bulk`: NDJSON parsing with Elasticsearch's rules. A malformed action line fails
//! the whole request before anything is written; a malformed document fails alone.

use std::io::Write;
use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use cairn_core::EsError;
use cairn_store::{WriteKind, WriteRequest};
use serde_json::Value;

use crate::http::{body_bytes, json_bytes_response, refresh_param, ApiError, Params};
use crate::Shared;

pub async fn bulk(
    State(s): State<Shared>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    run(s, None, p, body_bytes(body)?).await
}

pub async fn bulk_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    run(s, Some(index), p, body_bytes(body)?).await
}

fn malformed(line: usize, what: &str) -> ApiError {
    ApiError(EsError::illegal_argument(format!(
        "Malformed action/metadata line [{line}], {what}"
    )))
}

/// Parses the NDJSON body into write requests.
/// Parses the NDJSON body: the write requests and, for each, the pipeline its action
/// line names.
pub fn parse_bulk(
    body: &[u8],
    default_index: Option<&str>,
    max_items: usize,
) -> Result<(Vec<WriteRequest>, Vec<Option<String>>), ApiError> {
    let mut lines = body.split(|b| *b == b'\n').enumerate().peekable();
    let mut out = Vec::new();
    let mut pipelines: Vec<Option<String>> = Vec::new();
    let mut item_pipeline: Option<String> = None;
    while let Some((i, line)) = lines.next() {
        pipelines.resize(out.len(), item_pipeline.clone());
        let line_no = i + 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        // Checked before parsing the next action so that an oversized request fails
        // early, before its items are all held in memory.
        if out.len() >= max_items {
            return Err(ApiError(EsError::illegal_argument(format!(
                "the bulk request has more than [{max_items}] actions, the limit of actions per request (--max-bulk-items): split it into smaller requests"
            ))));
        }
        let action: Value = serde_json::from_slice(trimmed).map_err(|e| {
            malformed(
                line_no,
                &format!("expected START_OBJECT but found a parse error: {e}"),
            )
        })?;
        let obj = action.as_object().ok_or_else(|| {
            malformed(
                line_no,
                &format!("expected START_OBJECT but found [{}]", json_kind(&action)),
            )
        })?;
        if obj.len() != 1 {
            return Err(malformed(
                line_no,
                "expected a simple value for field [_index] but found [START_OBJECT]",
            ));
        }
        let (name, meta) = obj
            .iter()
            .next()
            .ok_or_else(|| malformed(line_no, "empty action"))?;
        let meta = meta.as_object().ok_or_else(|| {
            malformed(
                line_no,
                &format!("expected START_OBJECT but found [{}]", json_kind(meta)),
            )
        })?;
        for k in meta.keys() {
            if ![
                "_index",
                "_id",
                "routing",
                "pipeline",
                "require_alias",
                "if_seq_no",
                "if_primary_term",
                "version",
                "version_type",
                "retry_on_conflict",
                "_source",
                "dynamic_templates",
                "op_type",
                "require_data_stream",
                "list_executed_pipelines",
            ]
            .contains(&k.as_str())
            {
                return Err(ApiError(EsError::illegal_argument(format!(
                    "Action/metadata line [{line_no}] contains an unknown parameter [{k}]"
                ))));
            }
        }
        let index = match meta.get("_index") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(malformed(line_no, "[_index] must be a string")),
            None => match default_index {
                Some(d) => d.to_string(),
                None => {
                    return Err(ApiError(EsError::action_request_validation(
                        "Validation Failed: 1: index is missing;",
                    )))
                }
            },
        };
        let id = match meta.get("_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Null) | None => None,
            Some(_) => return Err(malformed(line_no, "[_id] must be a string")),
        };
        item_pipeline = meta
            .get("pipeline")
            .and_then(Value::as_str)
            .map(str::to_string);
        let kind_name = name.as_str();
        if !["index", "create", "delete", "update"].contains(&kind_name) {
            return Err(malformed(
                line_no,
                &format!("expected field [create], [delete], [index] or [update] but found [{kind_name}]"),
            ));
        }
        if kind_name == "delete" {
            let Some(id) = id else {
                return Err(ApiError(EsError::action_request_validation(
                    "Validation Failed: 1: id is missing;",
                )));
            };
            out.push(WriteRequest {
                kind: WriteKind::Delete,
                index,
                id: Some(id),
                source: None,
                raw: None,
            });
            continue;
        }
        // The document line.
        let doc_line = match lines.next() {
            Some((_, l)) => l.trim_ascii(),
            None => {
                return Err(ApiError(EsError::illegal_argument(
                    "The bulk request must be terminated by a newline [\\n]",
                )))
            }
        };
        // Documents of index/create are parsed by the store, one at a time.
        let parse = || cairn_store::parse_document(doc_line);
        match kind_name {
            "update" => {
                let Some(id) = id else {
                    return Err(ApiError(EsError::action_request_validation(
                        "Validation Failed: 1: id is missing;",
                    )));
                };
                match parse() {
                    Ok(m) => {
                        let doc = m.get("doc").and_then(Value::as_object).cloned();
                        let upsert = m.get("upsert").and_then(Value::as_object).cloned();
                        let doc_as_upsert = m
                            .get("doc_as_upsert")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        if m.contains_key("script") {
                            out.push(WriteRequest {
                                kind: WriteKind::Update {
                                    doc: None,
                                    doc_as_upsert: false,
                                    upsert: None,
                                },
                                index,
                                id: Some(id),
                                source: Some(Err(EsError::illegal_argument(
                                    "scripted updates are not supported by cairn",
                                ))),
                                raw: None,
                            });
                            continue;
                        }
                        out.push(WriteRequest {
                            kind: WriteKind::Update {
                                doc,
                                doc_as_upsert,
                                upsert,
                            },
                            index,
                            id: Some(id),
                            source: None,
                            raw: None,
                        });
                    }
                    Err(e) => out.push(WriteRequest {
                        kind: WriteKind::Update {
                            doc: None,
                            doc_as_upsert: false,
                            upsert: None,
                        },
                        index,
                        id: Some(id),
                        source: Some(Err(e)),
                        raw: None,
                    }),
                }
            }
            k => {
                let op_create =
                    k == "create" || meta.get("op_type").and_then(Value::as_str) == Some("create");
                out.push(WriteRequest {
                    kind: if op_create {
                        WriteKind::Create
                    } else {
                        WriteKind::Index
                    },
                    index,
                    id,
                    raw: Some(doc_line.to_vec()),
                    source: None,
                });
            }
        }
    }
    pipelines.resize(out.len(), item_pipeline);
    Ok((out, pipelines))
}

/// Runs ingest pipelines, then the store, and puts the results back in request order.
pub(crate) async fn write_with_pipelines(
    s: &Shared,
    reqs: Vec<WriteRequest>,
    pipelines: &[Option<String>],
    request_pipeline: Option<&str>,
    refresh: cairn_store::Refresh,
) -> Vec<cairn_store::ItemResult> {
    // Each item needs the privilege of its action on its own index; a refused item
    // fails alone with a 403, as in Elasticsearch, and the others land.
    let denied = authorize_items(&reqs);
    if denied.iter().all(Option::is_none) {
        return write_authorized(s, reqs, pipelines, request_pipeline, refresh).await;
    }
    let mut kept = Vec::new();
    let mut kept_pipelines = Vec::new();
    for (i, (r, d)) in reqs.into_iter().zip(denied.iter()).enumerate() {
        if d.is_none() {
            kept.push(r);
            kept_pipelines.push(pipelines.get(i).cloned().flatten());
        }
    }
    let mut stored = write_authorized(s, kept, &kept_pipelines, request_pipeline, refresh)
        .await
        .into_iter();
    denied
        .into_iter()
        .filter_map(|d| d.or_else(|| stored.next()))
        .collect()
}

fn authorize_items(reqs: &[WriteRequest]) -> Vec<Option<cairn_store::ItemResult>> {
    use crate::auth::IndexPriv;
    let Some(authz) = crate::auth::Authz::current() else {
        // Outside a request: internal writes when authentication is off; with it on,
        // a lost context is a bug and the items are refused.
        if !crate::auth::AUTH_ON.load(std::sync::atomic::Ordering::Relaxed) {
            return vec![None; reqs.len()];
        }
        return reqs
            .iter()
            .map(|r| {
                Some(cairn_store::ItemResult {
                    action: "index",
                    index: r.index.clone(),
                    id: r.id.clone().unwrap_or_default(),
                    status: 403,
                    result: None,
                    error: Some(EsError::new(
                        403,
                        "security_exception",
                        "no authorization context for this write",
                    )),
                    seq_no: 0,
                    version: 0,
                })
            })
            .collect();
    };
    reqs.iter()
        .map(|r| {
            let (action, need) = match r.kind {
                WriteKind::Index if r.id.is_none() => ("index", IndexPriv::CreateDoc),
                WriteKind::Index => ("index", IndexPriv::Index),
                WriteKind::Create => ("create", IndexPriv::CreateDoc),
                WriteKind::Delete => ("delete", IndexPriv::Delete),
                WriteKind::Update { .. } => ("update", IndexPriv::Index),
            };
            if authz.principal.index(need, &r.index) {
                return None;
            }
            Some(cairn_store::ItemResult {
                action,
                index: r.index.clone(),
                id: r.id.clone().unwrap_or_default(),
                status: 403,
                result: None,
                error: Some(authz.principal.denied_index(need, &r.index)),
                seq_no: 0,
                version: 0,
            })
        })
        .collect()
}

async fn write_authorized(
    s: &Shared,
    mut reqs: Vec<WriteRequest>,
    pipelines: &[Option<String>],
    request_pipeline: Option<&str>,
    refresh: cairn_store::Refresh,
) -> Vec<cairn_store::ItemResult> {
    let dropped = crate::ingest::apply(s, &mut reqs, pipelines, request_pipeline);
    if dropped.iter().all(Option::is_none) {
        return s.store.bulk(reqs, refresh).await;
    }
    let kept: Vec<WriteRequest> = reqs
        .into_iter()
        .zip(dropped.iter())
        .filter(|(_, d)| d.is_none())
        .map(|(r, _)| r)
        .collect();
    let mut stored = s.store.bulk(kept, refresh).await.into_iter();
    dropped
        .into_iter()
        .filter_map(|d| d.or_else(|| stored.next()))
        .collect()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

async fn run(
    s: Shared,
    default_index: Option<String>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let refresh = refresh_param(&p)?;
    let request_pipeline = p.get("pipeline").cloned();
    let max_items = s.config.max_bulk_items;
    let authz = crate::auth::Authz::current();
    // Parsing, pipelines and mapping are CPU work: keep them off the async workers.
    let items = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let (reqs, pipelines) = parse_bulk(&body, default_index.as_deref(), max_items)?;
        drop(body);
        if reqs.is_empty() {
            return Err(ApiError(EsError::action_request_validation(
                "Validation Failed: 1: no requests added;",
            )));
        }
        let rt = tokio::runtime::Handle::current();
        let write =
            write_with_pipelines(&s, reqs, &pipelines, request_pipeline.as_deref(), refresh);
        // The caller's authorization is task-local: carry it into this thread.
        Ok(match authz {
            Some(a) => rt.block_on(crate::auth::Authz::scope(a, write)),
            None => rt.block_on(write),
        })
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))??;
    let errors = items.iter().any(|i| i.error.is_some());
    // Written as text directly: one item per document.
    let mut out = Vec::with_capacity(64 + items.len() * 200);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"errors\":{errors},\"took\":{},\"items\":[",
        started.elapsed().as_millis()
    );
    for (k, i) in items.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        i.write_json(&mut out);
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes_response(200, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_items_are_the_serialized_values() {
        let ok_item = cairn_store::ItemResult {
            action: "create",
            index: "logs-\"x\"".into(),
            id: "a\u{1}b".into(),
            status: 201,
            result: Some("created"),
            error: None,
            seq_no: 7,
            version: 1,
        };
        let failed = cairn_store::ItemResult {
            action: "index",
            status: 400,
            result: None,
            error: Some(EsError::document_parsing("failed to parse field [n]")),
            ..ok_item.clone()
        };
        for item in [ok_item, failed] {
            let mut out = Vec::new();
            item.write_json(&mut out);
            let expected = serde_json::to_vec(&json!({ item.action: item.to_json() })).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn parses_actions() {
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"create\":{}}\n{bad\n";
        let (r, _) = parse_bulk(body, Some("d"), 100).unwrap();
        assert_eq!(r.len(), 3);
        assert!(matches!(r[1].kind, WriteKind::Delete));
        assert_eq!(r[2].index, "d");
        assert!(cairn_store::parse_document(r[2].raw.as_ref().unwrap()).is_err());
    }

    #[test]
    fn malformed_action_fails_whole_request() {
        let e = parse_bulk(b"{\"index\":{}}\n{}\n{\"nope\":{}}\n{}\n", Some("d"), 100).unwrap_err();
        assert_eq!(e.0.kind, "illegal_argument_exception");
        assert!(e.0.reason.contains("line [3]"));
    }

    #[test]
    fn too_many_items_fails_whole_request() {
        let body = b"{\"index\":{}}\n{}\n{\"delete\":{\"_id\":\"1\"}}\n{\"index\":{}}\n{}\n";
        assert_eq!(
            parse_bulk(body, Some("d"), 3).map(|r| r.0.len()).ok(),
            Some(3)
        );
        let e = parse_bulk(body, Some("d"), 2).unwrap_err();
        assert_eq!(e.0.status, 400);
        assert_eq!(e.0.kind, "illegal_argument_exception");
        assert!(e.0.reason.contains("[2]"), "{}", e.0.reason);
        assert!(e.0.reason.contains("--max-bulk-items"), "{}", e.0.reason);
    }
}
