//! `_cat` APIs: aligned text with `v` and `h=`, or `format=json`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::http::{json_response, text_response, ApiError, Params};
use crate::Shared;

/// Elasticsearch's human byte sizes: `225b`, `4.5kb`, `1.2gb`.
pub fn human_bytes(n: u64) -> String {
    let units = ["b", "kb", "mb", "gb", "tb", "pb"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}b")
    } else {
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").unwrap_or(&s).to_string();
        format!("{s}{}", units[i])
    }
}

fn render(
    rows: Vec<Vec<(&'static str, String)>>,
    defaults: &[&'static str],
    p: &Params,
) -> Result<Response, ApiError> {
    let cols: Vec<String> = match p.get("h") {
        Some(h) => h.split(',').map(|s| s.trim().to_string()).collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    let pick = |row: &Vec<(&'static str, String)>, c: &str| -> String {
        row.iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if p.get("format").map(String::as_str) == Some("json") {
        let arr: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut o = Map::new();
                for c in &cols {
                    o.insert(c.clone(), json!(pick(r, c)));
                }
                Value::Object(o)
            })
            .collect();
        return Ok(json_response(200, &Value::Array(arr)));
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    if p.contains_key("v") {
        table.push(cols.clone());
    }
    for r in &rows {
        table.push(cols.iter().map(|c| pick(r, c)).collect());
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join(" ").trim_end());
        out.push('\n');
    }
    Ok(text_response(200, out, "text/plain; charset=UTF-8"))
}

async fn indices_rows(
    s: &Shared,
    expr: &str,
    p: &Params,
) -> Result<Vec<Vec<(&'static str, String)>>, ApiError> {
    let opts = cairn_store::admin::ResolveOptions {
        ignore_unavailable: true,
        allow_no_indices: true,
        expand_hidden: p
            .get("expand_wildcards")
            .is_some_and(|w| w.contains("hidden") || w == "all")
            || expr != "*",
    };
    let hs = s.store.resolve_indices(expr, opts)?;
    let bytes_unit = p.get("bytes").cloned();
    let store = s.store.clone();
    let rows = tokio::task::spawn_blocking(move || {
        hs.iter()
            .map(|h| {
                let docs = h.doc_count();
                let size = h.disk_bytes();
                let sz = match bytes_unit.as_deref() {
                    Some("b") => size.to_string(),
                    Some("kb") => (size / 1024).to_string(),
                    Some("mb") => (size / (1024 * 1024)).to_string(),
                    Some("gb") => (size / (1024 * 1024 * 1024)).to_string(),
                    _ => human_bytes(size),
                };
                let retention = store
                    .retention_of(&h.name)
                    .map(|r| {
                        format!("{}d", r / cairn_core::time::MICROS_PER_DAY)
                            .replace("0d", &format!("{}s", r / 1_000_000))
                    })
                    .unwrap_or_else(|| "-".to_string());
                vec![
                    ("health", "green".to_string()),
                    ("status", "open".to_string()),
                    ("index", h.name.clone()),
                    ("uuid", h.uuid_str.clone()),
                    ("pri", "1".to_string()),
                    ("rep", "0".to_string()),
                    ("docs.count", docs.to_string()),
                    ("docs.deleted", "0".to_string()),
                    ("store.size", sz.clone()),
                    ("pri.store.size", sz.clone()),
                    ("dataset.size", sz),
                    ("retention", retention),
                ]
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError(cairn_core::EsError::internal(e.to_string())))?;
    Ok(rows)
}

const INDICES_COLS: &[&str] = &[
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
    "dataset.size",
    "retention",
];

pub async fn indices(
    State(s): State<Shared>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let rows = indices_rows(&s, "*", &p).await?;
    render(rows, INDICES_COLS, &p)
}

pub async fn indices_for(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let rows = indices_rows(&s, &index, &p).await?;
    render(rows, INDICES_COLS, &p)
}

pub async fn health(
    State(s): State<Shared>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let n = s.store.index_names().len().to_string();
    let row = vec![
        ("epoch", now.timestamp().to_string()),
        ("timestamp", now.format("%H:%M:%S").to_string()),
        ("cluster", s.config.cluster_name.clone()),
        ("status", "green".to_string()),
        ("node.total", "1".to_string()),
        ("node.data", "1".to_string()),
        ("shards", n.clone()),
        ("pri", n),
        ("relo", "0".to_string()),
        ("init", "0".to_string()),
        ("unassign", "0".to_string()),
        ("unassign.pri", "0".to_string()),
        ("pending_tasks", "0".to_string()),
        ("max_task_wait_time", "-".to_string()),
        ("active_shards_percent", "100.0%".to_string()),
    ];
    render(
        vec![row],
        &[
            "epoch",
            "timestamp",
            "cluster",
            "status",
            "node.total",
            "node.data",
            "shards",
            "pri",
            "relo",
            "init",
            "unassign",
            "unassign.pri",
            "pending_tasks",
            "max_task_wait_time",
            "active_shards_percent",
        ],
        &p,
    )
}

async fn count_rows(s: &Shared, expr: &str, p: &Params) -> Result<Response, ApiError> {
    let hs = s.store.resolve_indices(expr, Default::default())?;
    let n: u64 = tokio::task::spawn_blocking(move || hs.iter().map(|h| h.doc_count()).sum())
        .await
        .map_err(|e| ApiError(cairn_core::EsError::internal(e.to_string())))?;
    let now = chrono::Utc::now();
    render(
        vec![vec![
            ("epoch", now.timestamp().to_string()),
            ("timestamp", now.format("%H:%M:%S").to_string()),
            ("count", n.to_string()),
        ]],
        &["epoch", "timestamp", "count"],
        p,
    )
}

pub async fn count_all(
    State(s): State<Shared>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    count_rows(&s, "*", &p).await
}

pub async fn count_for(
    State(s): State<Shared>,
    Path(index): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    count_rows(&s, &index, &p).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn human() {
        assert_eq!(super::human_bytes(225), "225b");
        assert_eq!(super::human_bytes(4608), "4.5kb");
        assert_eq!(super::human_bytes(1024 * 1024), "1mb");
    }
}
