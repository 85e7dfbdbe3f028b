//! Dry runs: what a rule would have sent over a past period, without sending anything
//! or touching its state. `cairn alert test` (against any Elasticsearch-compatible URL)
//! and the UI's "test on the last N hours" (in-process) both use [`dry_run`], like
//! ElastAlert's `elastalert-test-rule`.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::backend::Es;
use crate::config::{Rule, RuleKind};
use crate::runner::{AlertDraft, RuleState, Runner};
use crate::value::iso;
use crate::Result;

/// What a dry run found.
pub struct DryRun {
    pub index: String,
    pub start: i64,
    pub end: i64,
    /// Documents matching the rule's filters in the period.
    pub hits: u64,
    /// Field names of the newest matching document.
    pub fields: BTreeSet<String>,
    /// Fields the rule refers to that the sample document lacks, and an empty period.
    pub warnings: Vec<String>,
    pub matches: usize,
    /// The alerts the rule would send (aggregations flushed).
    pub alerts: Vec<AlertDraft>,
}

impl DryRun {
    pub fn to_json(&self, rule: &Rule) -> Value {
        json!({
            "valid": true,
            "name": rule.name,
            "type": rule.kind.name(),
            "index": self.index,
            "start": iso(self.start),
            "end": iso(self.end),
            "hits": self.hits,
            "fields": self.fields,
            "warnings": self.warnings,
            "matches": self.matches,
            "alerts": self.alerts.iter().map(|d| {
                let mut m = Map::new();
                m.insert("id".into(), json!(d.id));
                m.insert("subject".into(), json!(d.subject));
                m.insert("body".into(), json!(d.body));
                m.insert("query_key".into(), json!(d.query_key));
                m.insert("match_time".into(), json!(iso(d.match_time)));
                m.insert("matches".into(), json!(d.matches));
                Value::Object(m)
            }).collect::<Vec<_>>(),
        })
    }
}

/// Runs `rule` over `[start, end]` (micros) with a fresh state.
pub async fn dry_run(es: Es<'_>, rule: &Rule, start: i64, end: i64) -> Result<DryRun> {
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
        for (key, field) in referenced_fields(rule) {
            let base = field.strip_suffix(".keyword").unwrap_or(&field);
            if crate::value::lookup(&src, base).is_none()
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
    let mut alerts = report.alerts;
    alerts.extend(runner.due_aggregates(i64::MAX));
    Ok(DryRun {
        index,
        start,
        end,
        hits,
        fields,
        warnings,
        matches: report.matches,
        alerts,
    })
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
fn referenced_fields(rule: &Rule) -> Vec<(String, String)> {
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
