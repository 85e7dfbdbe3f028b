//! Cluster, index, template, data stream and ILM endpoints, the shipper handshakes
//! (`/`, `_license`, `_xpack`, `_nodes`) and metrics.

use std::sync::atomic::Ordering;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_core::EsError;
use cairn_store::admin::ResolveOptions;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::http::{
    body_bytes, json_body, json_response, ok, text_response, ApiError, ApiResult, Params,
};
use crate::search::resolve;
use crate::Shared;

pub const ES_VERSION: &str = "8.17.0";

fn ack() -> ApiResult {
    ok(json!({"acknowledged": true}))
}

pub async fn root(State(s): State<Shared>) -> ApiResult {
    ok(json!({
        "name": s.config.node_name,
        "cluster_name": s.config.cluster_name,
        "cluster_uuid": s.cluster_uuid,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "cairn",
            "build_date": "2024-12-11T12:08:05.663969764Z",
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    }))
}

pub async fn root_head() -> Response {
    StatusCode::OK.into_response()
}

pub async fn license() -> ApiResult {
    ok(json!({"license": {
        "status": "active",
        "uid": "cairn-basic",
        "type": "basic",
        "issue_date": "2024-01-01T00:00:00.000Z",
        "issue_date_in_millis": 1704067200000i64,
        "max_nodes": 1000,
        "max_resource_units": null,
        "issued_to": "cairn",
        "issuer": "elasticsearch",
        "start_date_in_millis": -1
    }}))
}

pub async fn xpack() -> ApiResult {
    let f = |enabled: bool| json!({"available": true, "enabled": enabled});
    ok(json!({
        "build": {"hash": "cairn", "date": "2024-12-11T12:08:05.663969764Z"},
        "license": {"uid": "cairn-basic", "type": "basic", "mode": "basic", "status": "active"},
        "features": {
            "ilm": f(true), "security": f(false), "monitoring": f(false), "watcher": f(false),
            "ml": {"available": false, "enabled": false}, "graph": f(false), "logstash": f(false),
            "rollup": f(false), "sql": f(false), "transform": f(false), "data_streams": f(true),
            "data_tiers": f(true), "enrich": f(false), "searchable_snapshots": f(false)
        },
        "tagline": "You know, for X"
    }))
}

pub async fn nodes(State(s): State<Shared>) -> ApiResult {
    let addr = s.config.listen.clone();
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    ok(json!({
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": s.config.cluster_name,
        "nodes": {
            "cairn-node-0": {
                "name": s.config.node_name,
                "transport_address": format!("{host}:9300"),
                "host": host, "ip": host,
                "version": ES_VERSION,
                "build_flavor": "default", "build_type": "tar", "build_hash": "cairn",
                "roles": ["data", "ingest", "master"],
                "attributes": {},
                "http": {"bound_address": [addr.clone()], "publish_address": addr, "max_content_length_in_bytes": s.config.max_body_bytes}
            }
        }
    }))
}

pub async fn cluster_health(State(s): State<Shared>) -> ApiResult {
    let n = s.store.index_names().len();
    ok(json!({
        "cluster_name": s.config.cluster_name,
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": n,
        "active_shards": n,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0
    }))
}

pub async fn refresh_all(State(s): State<Shared>) -> ApiResult {
    s.store.refresh().await?;
    ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
}

pub async fn flush_all(State(s): State<Shared>) -> ApiResult {
    s.store.flush().await?;
    ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
}

pub async fn create_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.unwrap_or(Value::Null);
    s.store.create_index(&index, &v)?;
    ok(json!({"acknowledged": true, "shards_acknowledged": true, "index": index}))
}

pub async fn get_index(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> ApiResult {
    let hs = resolve(&s, &index, &p)?;
    let mut out = Map::new();
    for h in hs {
        if let Some(v) = s.store.index_json(&h.name) {
            out.insert(h.name.clone(), v);
        }
    }
    ok(Value::Object(out))
}

pub async fn head_index(State(s): State<Shared>, Path(index): Path<String>) -> Response {
    match s.store.resolve_indices(
        &index,
        ResolveOptions {
            allow_no_indices: false,
            ..Default::default()
        },
    ) {
        Ok(v) if !v.is_empty() => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn delete_index(State(s): State<Shared>, Path(index): Path<String>) -> ApiResult {
    s.store.delete_indices(&index).await?;
    s.auth
        .audit
        .event("index_deleted", serde_json::json!({"index": index}));
    ack()
}

pub async fn get_mapping(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> ApiResult {
    let hs = resolve(&s, &index, &p)?;
    let mut out = Map::new();
    for h in hs {
        out.insert(h.name.clone(), json!({"mappings": h.mapping().to_json()}));
    }
    ok(Value::Object(out))
}

pub async fn get_mapping_all(State(s): State<Shared>, Query(p): Query<Params>) -> ApiResult {
    get_mapping(State(s), Path("_all".into()), Query(p)).await
}

pub async fn put_mapping(
    State(s): State<Shared>,
    Path(index): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| {
        ApiError(EsError::action_request_validation(
            "Validation Failed: 1: mapping source is missing;",
        ))
    })?;
    let hs = resolve(&s, &index, &Params::new())?;
    if hs.is_empty() {
        return Err(ApiError(EsError::index_not_found(&index)));
    }
    for h in hs {
        s.store.put_mapping(&h.name, &v)?;
    }
    ack()
}

pub async fn get_settings(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> ApiResult {
    let hs = resolve(&s, &index, &p)?;
    let mut out = Map::new();
    for h in hs {
        if let Some(st) = s.store.index_settings(&h.name) {
            out.insert(
                h.name.clone(),
                json!({"settings": cairn_store::admin::nest_settings(&st)}),
            );
        }
    }
    ok(Value::Object(out))
}

pub async fn put_settings(
    State(s): State<Shared>,
    Path(index): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.unwrap_or(Value::Null);
    for h in resolve(&s, &index, &Params::new())? {
        s.store.update_settings(&h.name, &v)?;
    }
    ack()
}

fn index_stats(h: &cairn_store::IndexHandle) -> Value {
    let docs = h.doc_count();
    let bytes = h.disk_bytes();
    let part = json!({
        "docs": {"count": docs, "deleted": 0},
        "store": {"size_in_bytes": bytes, "reserved_in_bytes": 0},
        "indexing": {"index_total": h.docs_ingested.load(Ordering::Relaxed)},
    });
    json!({"uuid": h.uuid_str, "health": "green", "status": "open", "primaries": part.clone(), "total": part})
}

async fn stats_for(s: Shared, expr: &str, p: &Params) -> ApiResult {
    let hs = resolve(&s, expr, p)?;
    let stats = tokio::task::spawn_blocking(move || {
        let mut indices = Map::new();
        let (mut docs, mut bytes) = (0u64, 0u64);
        for h in &hs {
            let v = index_stats(h);
            docs += v["primaries"]["docs"]["count"].as_u64().unwrap_or(0);
            bytes += v["primaries"]["store"]["size_in_bytes"].as_u64().unwrap_or(0);
            indices.insert(h.name.clone(), v);
        }
        let n = hs.len();
        let all = json!({"docs": {"count": docs, "deleted": 0}, "store": {"size_in_bytes": bytes, "reserved_in_bytes": 0}});
        json!({
            "_shards": {"total": n, "successful": n, "failed": 0},
            "_all": {"primaries": all.clone(), "total": all},
            "indices": indices
        })
    })
    .await
    .map_err(|e| ApiError(EsError::internal(e.to_string())))?;
    ok(stats)
}

pub async fn stats(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> ApiResult {
    stats_for(s, &index, &p).await
}

pub async fn stats_all(State(s): State<Shared>, Query(p): Query<Params>) -> ApiResult {
    stats_for(s, "_all", &p).await
}

// ---- templates -------------------------------------------------------------

fn require_patterns(v: &Value) -> Result<(), ApiError> {
    match v.get("index_patterns") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if !a.is_empty() => Ok(()),
        _ => Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: index patterns are missing;",
        ))),
    }
}

fn validate_template_body(v: &Value) -> Result<(), ApiError> {
    if let Some(m) = v.pointer("/template/mappings").or(v.get("mappings")) {
        cairn_core::mapping::Mapping::from_json(m)?;
    }
    Ok(())
}

pub async fn put_index_template(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    require_patterns(&v)?;
    validate_template_body(&v)?;
    let mut st = s.store.meta();
    st.index_templates.insert(name, v);
    s.store.save_meta(&st)?;
    ack()
}

fn matching<'a>(
    map: &'a std::collections::BTreeMap<String, Value>,
    expr: &str,
) -> Vec<(&'a String, &'a Value)> {
    map.iter()
        .filter(|(n, _)| {
            expr.split(',')
                .any(|p| cairn_core::mapping::wildcard_match(p, n))
        })
        .collect()
}

/// `GET` of composable or component templates: `{"<kind>s":[{"name","<kind>"}]}`.
fn list_templates(
    map: &std::collections::BTreeMap<String, Value>,
    name: &str,
    kind: &str,
) -> ApiResult {
    let found: Vec<Value> = matching(map, name)
        .into_iter()
        .map(|(n, t)| json!({"name": n, kind: t}))
        .collect();
    if found.is_empty() && !name.contains('*') {
        let what = kind.replace('_', " ");
        return Err(ApiError(EsError::resource_not_found(format!(
            "{what} matching [{name}] not found"
        ))));
    }
    ok(json!({ format!("{kind}s"): found }))
}

pub async fn get_index_templates(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    list_templates(&s.store.meta().index_templates, &name, "index_template")
}

pub async fn get_index_templates_all(State(s): State<Shared>) -> ApiResult {
    get_index_templates(State(s), Path("*".into())).await
}

pub async fn head_index_template(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    if s.store.meta().index_templates.contains_key(&name) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
    .into_response()
}

/// Removes a stored template (of the map `pick` selects) or answers `missing`.
fn remove_template(
    s: &Shared,
    name: &str,
    pick: fn(&mut cairn_store::meta::MetaState) -> &mut std::collections::BTreeMap<String, Value>,
    missing: EsError,
) -> ApiResult {
    let mut st = s.store.meta();
    if pick(&mut st).remove(name).is_none() {
        return Err(ApiError(missing));
    }
    s.store.save_meta(&st)?;
    ack()
}

pub async fn delete_index_template(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let missing = EsError::resource_not_found(format!("index_template [{name}] missing"));
    remove_template(&s, &name, |st| &mut st.index_templates, missing)
}

pub async fn put_component_template(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    if v.get("template").is_none() {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: template is missing;",
        )));
    }
    validate_template_body(&v)?;
    let mut st = s.store.meta();
    st.component_templates.insert(name, v);
    s.store.save_meta(&st)?;
    ack()
}

pub async fn get_component_templates(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    list_templates(
        &s.store.meta().component_templates,
        &name,
        "component_template",
    )
}

pub async fn get_component_templates_all(State(s): State<Shared>) -> ApiResult {
    get_component_templates(State(s), Path("*".into())).await
}

pub async fn delete_component_template(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    let missing = EsError::resource_not_found(format!("component_template [{name}] missing"));
    remove_template(&s, &name, |st| &mut st.component_templates, missing)
}

pub async fn put_legacy_template(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let mut v =
        json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    // 5.x-era shippers send `template` instead of `index_patterns`.
    if v.get("index_patterns").is_none() {
        if let Some(t) = v.get("template").cloned() {
            v["index_patterns"] = json!([t]);
        }
    }
    require_patterns(&v)?;
    validate_template_body(&v)?;
    let mut st = s.store.meta();
    st.legacy_templates.insert(name, v);
    s.store.save_meta(&st)?;
    ack()
}

pub async fn get_legacy_templates(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let st = s.store.meta();
    let mut out = Map::new();
    for (n, t) in matching(&st.legacy_templates, &name) {
        let mut t = t.clone();
        if let Some(settings) = t.get("settings") {
            t["settings"] =
                cairn_store::admin::nest_settings(&cairn_store::admin::flatten_settings(settings));
        }
        if t.get("order").is_none() {
            t["order"] = json!(0);
        }
        out.insert(n.clone(), t);
    }
    if out.is_empty() && !name.contains('*') {
        return Ok(json_response(404, &json!({})));
    }
    ok(Value::Object(out))
}

pub async fn get_legacy_templates_all(State(s): State<Shared>) -> ApiResult {
    get_legacy_templates(State(s), Path("*".into())).await
}

pub async fn head_legacy_template(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    if s.store.meta().legacy_templates.contains_key(&name) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
    .into_response()
}

pub async fn delete_legacy_template(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    let missing = EsError::new(
        404,
        "index_template_missing_exception",
        format!("index_template [{name}] missing"),
    );
    remove_template(&s, &name, |st| &mut st.legacy_templates, missing)
}

// ---- data streams ----------------------------------------------------------

pub async fn put_data_stream(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    s.store.create_data_stream(&name)?;
    ack()
}

pub async fn get_data_streams(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    ok(s.store.get_data_streams(&name)?)
}

pub async fn get_data_streams_all(State(s): State<Shared>) -> ApiResult {
    ok(s.store.get_data_streams("*")?)
}

pub async fn delete_data_stream(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    s.store.delete_data_streams(&name).await?;
    ack()
}

pub async fn put_ds_lifecycle(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.unwrap_or(json!({}));
    s.store.put_data_stream_lifecycle(&name, &v)?;
    ack()
}

pub async fn get_ds_lifecycle(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let names = s.store.data_stream_names(&name);
    if names.is_empty() {
        return Err(ApiError(EsError::index_not_found(&name)));
    }
    let st = s.store.meta();
    let out: Vec<Value> = names
        .iter()
        .map(|n| {
            let l = st.data_streams.get(n).and_then(|d| d.lifecycle.clone());
            match l {
                Some(l) => json!({"name": n, "lifecycle": l}),
                None => json!({"name": n}),
            }
        })
        .collect();
    ok(json!({"data_streams": out}))
}

// ---- ILM -------------------------------------------------------------------

fn ilm_json(st: &cairn_store::meta::MetaState, name: &str) -> Option<Value> {
    let p = st.ilm_policies.get(name)?;
    let modified = DateTime::<Utc>::from_timestamp_millis(p.modified_millis)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let in_use: Vec<&String> = st
        .indexes
        .iter()
        .filter(|(_, im)| {
            im.settings
                .get("index.lifecycle.name")
                .and_then(Value::as_str)
                == Some(name)
        })
        .map(|(n, _)| n)
        .collect();
    Some(json!({
        "version": p.version,
        "modified_date": modified,
        "policy": p.policy,
        "in_use_by": {"indices": in_use, "data_streams": [], "composable_templates": []}
    }))
}

pub async fn put_ilm(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b = body_bytes(body)?;
    let v = json_body(&b)?.ok_or_else(|| ApiError(EsError::parsing("request body is required")))?;
    s.store.put_ilm_policy(&name, &v)?;
    ack()
}

pub async fn get_ilm(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let st = s.store.meta();
    let mut out = Map::new();
    for n in name.split(',') {
        match ilm_json(&st, n) {
            Some(v) => {
                out.insert(n.to_string(), v);
            }
            None => {
                return Err(ApiError(EsError::resource_not_found(format!(
                    "Lifecycle policy not found: {n}"
                ))));
            }
        }
    }
    ok(Value::Object(out))
}

pub async fn get_ilm_all(State(s): State<Shared>) -> ApiResult {
    let st = s.store.meta();
    let mut out = Map::new();
    for n in st.ilm_policies.keys() {
        if let Some(v) = ilm_json(&st, n) {
            out.insert(n.clone(), v);
        }
    }
    ok(Value::Object(out))
}

pub async fn delete_ilm(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let mut st = s.store.meta();
    if st.ilm_policies.remove(&name).is_none() {
        return Err(ApiError(EsError::resource_not_found(format!(
            "Lifecycle policy not found: {name}"
        ))));
    }
    s.store.save_meta(&st)?;
    ack()
}

// ---- resolve, metrics, retention --------------------------------------------

pub async fn resolve_index(
    State(s): State<Shared>,
    Path(expr): Path<String>,
    Query(p): Query<Params>,
) -> ApiResult {
    let expand_hidden = p
        .get("expand_wildcards")
        .is_some_and(|w| w.contains("hidden") || w == "all");
    let hs = s.store.resolve_indices(
        &expr,
        ResolveOptions {
            ignore_unavailable: true,
            expand_hidden,
            ..Default::default()
        },
    )?;
    let st = s.store.meta();
    // Backing indices are hidden: wildcards list their data stream, not them.
    let named: Vec<&str> = expr.split(',').collect();
    let hs: Vec<_> = hs
        .into_iter()
        .filter(|h| {
            expand_hidden
                || named.contains(&h.name.as_str())
                || st
                    .indexes
                    .get(&h.name)
                    .and_then(|im| im.settings.get("index.hidden"))
                    .and_then(Value::as_str)
                    != Some("true")
        })
        .collect();
    let indices: Vec<Value> = hs
        .iter()
        .map(|h| {
            let mut attrs = vec!["open"];
            if st
                .indexes
                .get(&h.name)
                .and_then(|im| im.settings.get("index.hidden"))
                .and_then(Value::as_str)
                == Some("true")
            {
                attrs.push("hidden");
            }
            let mut o = json!({"name": h.name, "attributes": attrs});
            if let Some(ds) = &h.data_stream {
                o["data_stream"] = json!(ds);
            }
            o
        })
        .collect();
    let streams: Vec<Value> = st
        .data_streams
        .iter()
        .filter(|(n, _)| {
            expr.split(',').any(|p| cairn_core::mapping::wildcard_match(p, n))
                && s.store.visible(n)
        })
        .map(|(n, d)| json!({"name": n, "backing_indices": d.backing_indices, "timestamp_field": "@timestamp"}))
        .collect();
    ok(json!({"indices": indices, "aliases": [], "data_streams": streams}))
}

pub async fn run_retention(State(s): State<Shared>) -> ApiResult {
    let n = s.store.run_retention().await;
    ok(json!({"acknowledged": true, "partitions_deleted": n}))
}

pub async fn metrics(State(s): State<Shared>) -> Response {
    use std::fmt::Write;
    let m = s.store.metrics();
    for us in s.store.wal_fsync_latencies() {
        m.wal_fsync_latency
            .observe(std::time::Duration::from_micros(us));
    }
    let mut out = String::new();
    let _ = writeln!(out, "# HELP cairn_ingested_documents_total Documents acknowledged by the store.\n# TYPE cairn_ingested_documents_total counter\ncairn_ingested_documents_total {}", m.docs_ingested.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP cairn_ingested_bytes_total Source bytes acknowledged by the store.\n# TYPE cairn_ingested_bytes_total counter\ncairn_ingested_bytes_total {}", m.bytes_ingested.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP cairn_bulk_requests_total Write requests (bulk and single-document).\n# TYPE cairn_bulk_requests_total counter\ncairn_bulk_requests_total {}", m.bulk_requests.load(Ordering::Relaxed));
    m.bulk_latency.render(
        "cairn_bulk_latency_seconds",
        "Latency of write requests, from parse to acknowledgement.",
        &mut out,
    );
    m.wal_fsync_latency.render(
        "cairn_wal_fsync_latency_seconds",
        "Latency of WAL fsyncs (group commits).",
        &mut out,
    );
    m.commit_latency.render(
        "cairn_commit_latency_seconds",
        "Latency of refresh and flush commits.",
        &mut out,
    );
    let store = s.store.clone();
    let per_index = tokio::task::spawn_blocking(move || {
        store
            .all_indexes()
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    h.partitions.read().len(),
                    h.disk_bytes(),
                    h.docs_ingested.load(Ordering::Relaxed),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let _ = writeln!(out, "# HELP cairn_partitions_open Time partitions per index.\n# TYPE cairn_partitions_open gauge");
    for (n, p, _, _) in &per_index {
        let _ = writeln!(out, "cairn_partitions_open{{index=\"{n}\"}} {p}");
    }
    let _ = writeln!(out, "# HELP cairn_index_disk_bytes Bytes on disk per index.\n# TYPE cairn_index_disk_bytes gauge");
    for (n, _, b, _) in &per_index {
        let _ = writeln!(out, "cairn_index_disk_bytes{{index=\"{n}\"}} {b}");
    }
    let _ = writeln!(out, "# HELP cairn_index_ingested_documents_total Documents acknowledged per index.\n# TYPE cairn_index_ingested_documents_total counter");
    for (n, _, _, d) in &per_index {
        let _ = writeln!(
            out,
            "cairn_index_ingested_documents_total{{index=\"{n}\"}} {d}"
        );
    }
    crate::alerting::render_metrics(&mut out);
    text_response(200, out, "text/plain; version=0.0.4")
}
