//! `cairn query`: search from the terminal through any Elasticsearch-compatible URL.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The query: KQL by default, Lucene query_string syntax with --lucene. Empty = all.
    #[arg(default_value = "")]
    pub query: String,
    /// Server URL.
    #[arg(long, env = "CAIRN_SERVER", default_value = "http://127.0.0.1:9200")]
    pub server: String,
    #[command(flatten)]
    pub client: crate::client::ClientAuth,
    /// Index pattern, data stream or comma list.
    #[arg(long, default_value = "*")]
    pub index: String,
    /// Relative window ending now, e.g. 15m, 2h, 7d (ignored with --from/--to).
    #[arg(long, default_value = "15m")]
    pub since: String,
    /// Absolute or date-math start (e.g. 2026-11-27T10:00:00Z, now-1d/d).
    #[arg(long)]
    pub from: Option<String>,
    /// Absolute or date-math end.
    #[arg(long)]
    pub to: Option<String>,
    /// Read QUERY as Lucene query_string syntax.
    #[arg(long)]
    pub lucene: bool,
    /// Number of lines (newest), printed oldest first.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub size: usize,
    /// Output: table or json (one document per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Keep polling and print new matches as they arrive.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

fn query_clause(a: &QueryArgs) -> Value {
    if a.query.trim().is_empty() {
        json!({"match_all": {}})
    } else if a.lucene {
        json!({"query_string": {"query": a.query}})
    } else {
        json!({"kql": {"query": a.query}})
    }
}

fn time_filter(a: &QueryArgs) -> Result<Value> {
    if a.from.is_some() || a.to.is_some() {
        let mut r = serde_json::Map::new();
        if let Some(f) = &a.from {
            r.insert("gte".into(), json!(f));
        }
        if let Some(t) = &a.to {
            r.insert("lte".into(), json!(t));
        }
        return Ok(json!({"range": {"@timestamp": r}}));
    }
    if cairn_core::time::parse_duration(&a.since).is_none() {
        bail!(
            "invalid --since [{}]: use a time value such as 15m, 2h or 7d",
            a.since
        );
    }
    Ok(json!({"range": {"@timestamp": {"gte": format!("now-{}", a.since)}}}))
}

fn post(client: &reqwest::blocking::Client, url: &str, body: &Value) -> Result<Value> {
    let resp = client
        .post(url)
        .json(body)
        .send()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().context("the server did not answer with JSON")?;
    if !status.is_success() {
        let reason = v
            .pointer("/error/reason")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        let kind = v
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("error");
        bail!("{kind}: {reason} (HTTP {status})");
    }
    Ok(v)
}

fn print_hit(h: &Value, format: &str) {
    let src = h.get("_source").cloned().unwrap_or(Value::Null);
    if format == "json" {
        println!("{}", src);
        return;
    }
    let ts = src.get("@timestamp").and_then(Value::as_str).unwrap_or("-");
    let level = src
        .pointer("/log/level")
        .or_else(|| src.get("level"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let msg = match src.get("message") {
        Some(Value::String(m)) => m.clone(),
        _ => {
            let mut o = src.clone();
            if let Value::Object(m) = &mut o {
                m.remove("@timestamp");
            }
            o.to_string()
        }
    };
    if level.is_empty() {
        println!("{ts}  {msg}");
    } else {
        println!("{ts}  {level:<5}  {msg}");
    }
}

pub fn run(a: QueryArgs) -> Result<()> {
    if a.format != "table" && a.format != "json" {
        bail!("invalid --format [{}]: use table or json", a.format);
    }
    let client = a.client.blocking_client(Duration::from_secs(60))?;
    let url = format!(
        "{}/{}/_search?ignore_unavailable=true",
        a.server.trim_end_matches('/'),
        a.index
    );
    let body = json!({
        "query": {"bool": {"filter": [query_clause(&a), time_filter(&a)?]}},
        "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
        "size": a.size,
    });
    let v = post(&client, &url, &body)?;
    let hits = v
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut last_sort: Option<Value> = hits.first().and_then(|h| h.get("sort")).cloned();
    for h in hits.iter().rev() {
        print_hit(h, &a.format);
    }
    if !a.follow {
        if a.format == "table" {
            let total = v
                .pointer("/hits/total/value")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            eprintln!(
                "-- {} shown of {}{} matching",
                hits.len(),
                total,
                if v.pointer("/hits/total/relation").and_then(Value::as_str) == Some("gte") {
                    "+"
                } else {
                    ""
                }
            );
        }
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let mut body = json!({
            "query": {"bool": {"filter": [query_clause(&a)]}},
            "sort": [{"@timestamp": {"order": "asc", "unmapped_type": "date"}}],
            "size": 1000,
        });
        match &last_sort {
            Some(s) => body["search_after"] = s.clone(),
            None => body["query"]["bool"]["filter"]
                .as_array_mut()
                .map(|f| f.push(json!({"range": {"@timestamp": {"gte": "now-1m"}}})))
                .unwrap_or(()),
        }
        let v = match post(&client, &url, &body) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("cairn query: {e:#}; retrying");
                continue;
            }
        };
        for h in v
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            print_hit(h, &a.format);
            last_sort = h.get("sort").cloned();
        }
    }
}
