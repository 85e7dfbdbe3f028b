//! `cairn alert test RULE.yaml`: validate a rule and dry-run it over stored data, like
//! ElastAlert's `elastalert-test-rule`, against any Elasticsearch-compatible server.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cairn_alert::backend::{Es, HttpAuth, HttpBackend};
use cairn_alert::config::{Globals, RuleKind};
use cairn_alert::value::iso;
use cairn_alert::{alerters, RuleState, Runner};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct AlertArgs {
    #[command(subcommand)]
    cmd: AlertCmd,
}

#[derive(Subcommand, Debug)]
enum AlertCmd {
    /// Validate a rule, count its hits, and print the alerts it would send.
    Test(TestArgs),
}

#[derive(Args, Debug)]
struct TestArgs {
    /// The rule file (ElastAlert YAML).
    rule: PathBuf,
    /// Elasticsearch-compatible server to query.
    #[arg(long, env = "CAIRN_URL", default_value = "http://127.0.0.1:9200")]
    server: String,
    /// User for basic authentication.
    #[arg(long, env = "CAIRN_USER")]
    user: Option<String>,
    /// Password for basic authentication.
    #[arg(long, env = "CAIRN_PASSWORD")]
    password: Option<String>,
    /// API key (the base64 `id:key` form Elasticsearch uses).
    #[arg(long, env = "CAIRN_API_KEY")]
    api_key: Option<String>,
    /// Run over the last N days (default 1).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    days: Option<f64>,
    /// Start of the period (ISO 8601).
    #[arg(long)]
    start: Option<String>,
    /// End of the period (ISO 8601; default now).
    #[arg(long)]
    end: Option<String>,
    /// Really send the alerts through the rule's alerters.
    #[arg(long)]
    alert: bool,
    /// Output: text or json.
    #[arg(long, default_value = "text")]
    format: String,
    /// ElastAlert global config file (run_every, buffer_time, alerter defaults...).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: AlertArgs) -> Result<()> {
    match args.cmd {
        AlertCmd::Test(t) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(test(t))
        }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Fields the rule reads from documents.
fn referenced_fields(rule: &cairn_alert::Rule) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> =
        vec![("timestamp_field".into(), rule.timestamp_field.clone())];
    for k in &rule.query_key {
        f.push(("query_key".into(), k.clone()));
    }
    for k in &rule.top_count_keys {
        f.push(("top_count_keys".into(), k.clone()));
    }
    for k in &rule.alert_text_args {
        f.push(("alert_text_args".into(), k.clone()));
    }
    for k in &rule.alert_subject_args {
        f.push(("alert_subject_args".into(), k.clone()));
    }
    if let Some(k) = &rule.aggregation_key {
        f.push(("aggregation_key".into(), k.clone()));
    }
    match &rule.kind {
        RuleKind::Blacklist { compare_key, .. } | RuleKind::Whitelist { compare_key, .. } => {
            f.push(("compare_key".into(), compare_key.clone()))
        }
        RuleKind::Change { compare_keys, .. } => f.extend(
            compare_keys
                .iter()
                .map(|k| ("compare_key".into(), k.clone())),
        ),
        RuleKind::Cardinality { field, .. } => f.push(("cardinality_field".into(), field.clone())),
        RuleKind::MetricAggregation(s) | RuleKind::SpikeAggregation { metric: s, .. } => {
            f.push(("metric_agg_key".into(), s.agg_key.clone()))
        }
        RuleKind::NewTerm { fields, .. } => {
            f.extend(
                fields
                    .iter()
                    .flatten()
                    .map(|k| ("fields".into(), k.clone())),
            );
        }
        _ => {}
    }
    f
}

async fn test(a: TestArgs) -> Result<()> {
    let globals = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Globals::from_value(&cairn_core::yaml::parse(&text)?)?
        }
        None => Globals::default(),
    };
    let rule = match cairn_alert::config::load_file(&a.rule, &globals) {
        Ok(r) => r,
        Err(e) => {
            if a.format == "json" {
                println!("{}", json!({"valid": false, "error": e.to_string()}));
            }
            bail!("invalid rule {}: {e}", a.rule.display());
        }
    };
    let now = cairn_core::time::now_micros();
    let end = match &a.end {
        Some(s) => {
            cairn_core::time::parse_default(s).with_context(|| format!("invalid --end [{s}]"))?
        }
        None => now,
    };
    let start = match (&a.start, a.days) {
        (Some(s), _) => {
            cairn_core::time::parse_default(s).with_context(|| format!("invalid --start [{s}]"))?
        }
        (None, days) => end - (days.unwrap_or(1.0) * 86_400e6) as i64,
    };
    if start >= end {
        bail!("the start of the period must be before its end");
    }
    let auth = match (&a.api_key, &a.user) {
        (Some(k), _) => HttpAuth::ApiKey(k.clone()),
        (None, Some(u)) => HttpAuth::Basic {
            user: u.clone(),
            password: a.password.clone().unwrap_or_default(),
        },
        _ => HttpAuth::None,
    };
    let backend = HttpBackend::new(&a.server, auth)?;
    let es = Es::new(&backend, "admin");
    let mut runner = Runner::new(rule.clone(), RuleState::default());
    let index = runner.index(start, end);
    let mut filters =
        vec![json!({"range": {rule.timestamp_field.clone(): {"gt": iso(start), "lte": iso(end)}}})];
    filters.extend(rule.filter.iter().cloned());
    let query = json!({"bool": {"filter": filters}});
    let hits = es.count(&index, &json!({"query": query})).await?;
    let sample = es
        .search(
            &index,
            &json!({"query": query, "size": 1, "sort": [{rule.timestamp_field.clone(): "desc"}]}),
            None,
        )
        .await?;
    let mut fields = BTreeSet::new();
    if let Some(src) = sample.pointer("/hits/hits/0/_source") {
        flatten("", src, &mut fields);
    }
    let mut warnings = Vec::new();
    if hits > 0 {
        let src = sample
            .pointer("/hits/hits/0/_source")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (key, field) in referenced_fields(&rule) {
            let base = field.strip_suffix(".keyword").unwrap_or(&field);
            if cairn_alert::value::lookup(&src, base).is_none()
                && !fields.iter().any(|f| f.starts_with(&format!("{base}.")))
            {
                warnings.push(format!(
                    "{key}: field [{field}] is not in the sample document"
                ));
            }
        }
    } else {
        warnings.push("no documents matched the rule's filters in this period".into());
    }

    let report = runner.run_window(es, start, end, end + 1).await?;
    let mut drafts = report.alerts;
    drafts.extend(runner.due_aggregates(i64::MAX));
    let mut sent = Vec::new();
    if a.alert {
        let client = alerters::http_client()?;
        let names = if rule.alerters.is_empty() {
            vec!["debug".to_string()]
        } else {
            rule.alerters.clone()
        };
        for d in &drafts {
            for n in &names {
                let r = alerters::send(n, &rule, d, &client).await;
                sent.push(json!({"alert": d.id, "alerter": n, "ok": r.is_ok(), "error": r.err().map(|e| e.to_string())}));
            }
        }
    }

    if a.format == "json" {
        let out = json!({
            "valid": true,
            "name": rule.name,
            "type": rule.kind.name(),
            "index": index,
            "start": iso(start),
            "end": iso(end),
            "hits": hits,
            "fields": fields,
            "warnings": warnings,
            "matches": report.matches,
            "alerts": drafts.iter().map(|d| {
                let mut m = Map::new();
                m.insert("id".into(), json!(d.id));
                m.insert("subject".into(), json!(d.subject));
                m.insert("body".into(), json!(d.body));
                m.insert("query_key".into(), json!(d.query_key));
                m.insert("match_time".into(), json!(iso(d.match_time)));
                m.insert("matches".into(), json!(d.matches));
                Value::Object(m)
            }).collect::<Vec<_>>(),
            "sent": sent,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("Rule {} ({}) is valid.", rule.name, rule.kind.name());
        println!(
            "Got {hits} hits from {} to {} in {index}",
            iso(start),
            iso(end)
        );
        if !fields.is_empty() {
            println!("\nFields of a sample hit:");
            for f in &fields {
                println!("  {f}");
            }
        }
        for w in &warnings {
            println!("\nWARNING: {w}");
        }
        println!(
            "\n{} matches, {} alerts would be sent{}",
            report.matches,
            drafts.len(),
            if a.alert { " (sending them)" } else { "" }
        );
        for d in &drafts {
            println!("\n=== {} [{}]\n{}", d.subject, d.id, d.body);
        }
        for s in &sent {
            println!("{s}");
        }
    }
    Ok(())
}
