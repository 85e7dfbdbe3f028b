//! Running one rule: ElastAlert's `run_rule`, window by window.
//!
//! Each run queries from a start time to `now - query_delay` (the start follows
//! ElastAlert: the previous end, or `buffer_time` back for document queries so late
//! documents are caught and de-duplicated by `_id`), split into segments of
//! `buffer_time` (documents, aggregations) or `run_every` (counts, terms). Matches then
//! go through silences and `realert` (per query_key value, exponential if asked), and
//! either become an alert at once or join a pending aggregate. The result is a list of
//! [`AlertDraft`]s with deterministic ids — the idempotency keys — and the rule's
//! [`RuleState`], which the engine persists so a restart resumes at the last end time.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::backend::Es;
use crate::config::{Aggregation, Rule, RuleKind, TimestampType, MINUTE};
use crate::error::Result;
use crate::format;
use crate::ruletypes::{self, Event, Gate, Match, RuleType};
use crate::value::{iso, lookup, pretty_ts, py_str};

/// A silence or realert window for one rule + query_key value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Silence {
    pub until: i64,
    pub exponent: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingAggregate {
    pub agg_key: Option<String>,
    pub alert_time: i64,
    pub matches: Vec<Event>,
}

/// What survives a restart, stored in the state index.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RuleState {
    pub previous_endtime: Option<i64>,
    #[serde(default)]
    pub silences: BTreeMap<String, Silence>,
    #[serde(default)]
    pub pending_aggregates: Vec<PendingAggregate>,
    /// query_key values currently alerting (for `notify_on_recovery`), with the time
    /// their condition started.
    #[serde(default)]
    pub active: BTreeMap<String, i64>,
}

/// An alert ready to be recorded and sent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertDraft {
    /// Deterministic from rule + match (+ query_key): the idempotency key.
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub query_key: Option<String>,
    pub match_time: i64,
    pub subject: String,
    pub body: String,
    pub matches: Vec<Value>,
    pub recovery: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub start: i64,
    pub end: i64,
    pub hits: u64,
    pub matches: usize,
    pub silenced: usize,
    pub alerts: Vec<AlertDraft>,
    /// False when the run had nothing to do (start in the future, partial aggregation window).
    pub ran: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Docs,
    Count,
    Terms,
    Aggregation,
}

pub struct Runner {
    pub rule: Rule,
    rt: Box<dyn RuleType>,
    pub state: RuleState,
    mode: Mode,
    started: bool,
    starttime: Option<i64>,
    minimum_starttime: Option<i64>,
    processed: HashMap<String, i64>,
    /// With a gate: every document up to this time has been read into the rule type (or
    /// was before the first run); documents after it that a skipped window left unread
    /// are read when a later window needs them.
    fed_until: Option<i64>,
    terms_loaded: bool,
    /// Silences set through the API (silence key -> until), refreshed by the engine.
    pub manual_silences: BTreeMap<String, i64>,
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let out = h.finalize();
    out.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Runner {
    pub fn new(rule: Rule, state: RuleState) -> Self {
        let mode = match &rule.kind {
            RuleKind::MetricAggregation(_)
            | RuleKind::SpikeAggregation { .. }
            | RuleKind::PercentageMatch { .. } => Mode::Aggregation,
            _ if rule.use_count_query => Mode::Count,
            _ if rule.use_terms_query => Mode::Terms,
            _ => Mode::Docs,
        };
        Runner {
            rt: ruletypes::build(&rule),
            rule,
            state,
            mode,
            started: false,
            starttime: None,
            minimum_starttime: None,
            processed: HashMap::new(),
            fed_until: None,
            terms_loaded: false,
            manual_silences: BTreeMap::new(),
        }
    }

    pub fn rule_type(&self) -> &dyn RuleType {
        self.rt.as_ref()
    }

    fn segment_size(&self) -> i64 {
        match self.mode {
            Mode::Docs => self.rule.buffer_time,
            Mode::Aggregation if self.rule.use_run_every_query_size => self.rule.run_every,
            Mode::Aggregation => self.rule.buffer_time,
            Mode::Count | Mode::Terms => self.rule.run_every,
        }
    }

    fn set_starttime(&mut self, end: i64, now: i64) {
        if !self.started {
            self.started = true;
            if !self.rule.scan_entire_timeframe {
                if let Some(prev) = self.state.previous_endtime {
                    if now - prev < self.rule.old_query_limit {
                        self.starttime = Some(prev);
                        self.minimum_starttime = Some(prev);
                        return;
                    }
                    tracing::warn!(rule = %self.rule.name, "previous run is older than old_query_limit: not catching up");
                }
            }
            self.state.previous_endtime = None;
        }
        let prev = self.state.previous_endtime;
        if self.mode == Mode::Docs || self.mode == Mode::Aggregation {
            let delta = if self.rule.scan_entire_timeframe {
                end - self.rule.timeframe_or(self.rule.buffer_time)
            } else {
                end - self.rule.buffer_time
            };
            self.starttime = Some(match (self.minimum_starttime, prev) {
                (Some(min), _) if min > delta => min,
                (_, Some(p)) if p < delta => p,
                _ => delta,
            });
        } else if self.rule.scan_entire_timeframe {
            self.starttime = Some(end - self.rule.timeframe_or(self.rule.run_every));
        } else {
            self.starttime = Some(prev.unwrap_or(end - self.rule.run_every));
        }
    }

    /// One scheduled run at wall-clock `now` (the engine's clock).
    pub async fn run(&mut self, es: Es<'_>, now: i64) -> Result<RunReport> {
        let end = now - self.rule.query_delay;
        self.set_starttime(end, now);
        let start = self.starttime.unwrap_or(end);
        self.run_window(es, start, end, now).await
    }

    /// Runs over an explicit window (`cairn alert test`, backfills).
    pub async fn run_window(
        &mut self,
        es: Es<'_>,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<RunReport> {
        self.started = true;
        let mut report = RunReport {
            start,
            end,
            ..Default::default()
        };
        if now <= start {
            tracing::warn!(rule = %self.rule.name, "query start time is in the future: skipping this run");
            return Ok(report);
        }
        if !self.terms_loaded {
            self.load_terms(es, start).await?;
            self.terms_loaded = true;
        }
        let seg = self.segment_size().max(1);
        let mut s = start;
        let mut tmp_end = start;
        let mut end = end;
        while end - s > seg {
            tmp_end += seg;
            report.hits += self.run_query(es, s, tmp_end).await?;
            s = tmp_end;
            self.rt.garbage_collect(tmp_end);
        }
        if self.mode == Mode::Aggregation {
            if end - tmp_end == seg {
                report.hits += self.run_query(es, tmp_end, end).await?;
            } else if tmp_end == start {
                // Less than one whole aggregation window: wait for the next run.
                self.starttime = Some(start);
                return Ok(report);
            } else {
                end = tmp_end;
            }
        } else {
            report.hits += self.run_query(es, s, end).await?;
            self.rt.garbage_collect(end);
        }
        report.end = end;
        report.ran = true;
        let mut matches = self.rt.take_matches();
        report.matches = matches.len();
        if !self.rule.top_count_keys.is_empty() {
            for m in &mut matches {
                self.add_top_counts(es, m).await?;
            }
        }
        let mut matched_keys: Vec<String> = Vec::new();
        let num_matches = matches.len();
        for mut m in matches {
            // ElastAlert adds these to every match (they show in the alert body).
            m.doc.insert("num_hits".into(), json!(report.hits));
            m.doc.insert("num_matches".into(), json!(num_matches));
            let qk = format::query_key_value(&self.rule, &m);
            matched_keys.push(qk.clone().unwrap_or_else(|| "all".into()));
            let mut silence_key = self.rule.name.clone();
            if let Some(q) = &qk {
                silence_key.push('.');
                silence_key.push_str(q);
            }
            if self.is_silenced(&format!("{}._silence", self.rule.name), now)
                || self.is_silenced(&silence_key, now)
            {
                tracing::info!(rule = %self.rule.name, key = %silence_key, "ignoring match for silenced rule");
                report.silenced += 1;
                continue;
            }
            if self.rule.realert > 0 {
                let (until, exponent) = self.next_alert_time(&silence_key, now);
                self.state
                    .silences
                    .insert(silence_key, Silence { until, exponent });
            }
            match &self.rule.aggregation {
                None => report.alerts.push(self.draft(vec![m], qk)),
                Some(agg) => self.add_aggregated(m, agg.clone(), now),
            }
        }
        if self.rule.notify_on_recovery {
            self.recoveries(es, &matched_keys, end, now, &mut report)
                .await?;
        }
        self.state.previous_endtime = Some(end);
        self.starttime = Some(end);
        // Forget processed ids that can no longer be queried again.
        let horizon = end - self.rule.buffer_time - self.rule.query_delay - MINUTE;
        self.processed.retain(|_, ts| *ts >= horizon);
        self.state
            .silences
            .retain(|_, s| s.until > now || s.exponent > 0);
        Ok(report)
    }

    fn is_silenced(&self, key: &str, now: i64) -> bool {
        self.state.silences.get(key).is_some_and(|s| now < s.until)
            || self
                .manual_silences
                .get(key)
                .is_some_and(|until| now < *until)
    }

    /// ElastAlert's `next_alert_time`: with `exponential_realert` the wait doubles while
    /// alerts keep coming and decays back when they stop.
    fn next_alert_time(&self, key: &str, now: i64) -> (i64, u32) {
        let realert = self.rule.realert;
        let Some(prev) = self.state.silences.get(key) else {
            return (now + realert, 0);
        };
        let Some(max) = self.rule.exponential_realert else {
            return (now + realert, 0);
        };
        let mut exponent = prev.exponent;
        let mut diff = now - prev.until;
        let step = |e: u32| realert.saturating_mul(1i64 << e.min(40));
        if diff < step(exponent) {
            exponent += 1;
        } else {
            while diff > step(exponent) && exponent > 0 {
                diff -= step(exponent);
                exponent -= 1;
            }
        }
        let wait = step(exponent);
        if wait >= max {
            return (now + max, exponent.saturating_sub(1));
        }
        (now + wait, exponent)
    }

    fn add_aggregated(&mut self, m: Match, agg: Aggregation, now: i64) {
        let agg_key = self.rule.aggregation_key.as_ref().map(|k| {
            lookup(&m.doc, k)
                .map(py_str)
                .unwrap_or_else(|| "_missing".into())
        });
        if let Some(p) = self
            .state
            .pending_aggregates
            .iter_mut()
            .find(|p| p.agg_key == agg_key && p.alert_time >= m.ts)
        {
            p.matches.push(m);
            return;
        }
        let base = if self.rule.aggregate_by_match_time {
            m.ts
        } else {
            now
        };
        let alert_time = match agg {
            Aggregation::Every(d) => base + d,
            Aggregation::Schedule(c) => c.next_after(now, self.rule.query_timezone).unwrap_or(now),
        };
        self.state.pending_aggregates.push(PendingAggregate {
            agg_key,
            alert_time,
            matches: vec![m],
        });
    }

    /// Aggregated alerts whose time has come.
    pub fn due_aggregates(&mut self, now: i64) -> Vec<AlertDraft> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.state.pending_aggregates)
            .into_iter()
            .partition(|p| p.alert_time <= now);
        self.state.pending_aggregates = keep;
        due.into_iter()
            .filter(|p| !p.matches.is_empty())
            .map(|p| {
                let qk = p
                    .matches
                    .first()
                    .and_then(|m| format::query_key_value(&self.rule, m));
                self.draft(p.matches, qk)
            })
            .collect()
    }

    fn draft(&self, matches: Vec<Match>, qk: Option<String>) -> AlertDraft {
        let first = &matches[0];
        let identity: Vec<String> = matches
            .iter()
            .map(|m| match m.doc.get("_id").and_then(Value::as_str) {
                Some(id) => format!("{}|{id}", m.ts),
                None => {
                    // Run-dependent extras would make the key differ on a re-run.
                    let stable: Map<String, Value> = m
                        .doc
                        .iter()
                        .filter(|(k, _)| {
                            *k != "num_hits" && *k != "num_matches" && !k.starts_with("top_events_")
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    format!("{}|{}", m.ts, Value::Object(stable))
                }
            })
            .collect();
        let id = digest(&[
            &self.rule.id,
            qk.as_deref().unwrap_or(""),
            &identity.join(","),
        ]);
        AlertDraft {
            id,
            rule_id: self.rule.id.clone(),
            rule_name: self.rule.name.clone(),
            query_key: qk,
            match_time: first.ts,
            subject: format::subject(&self.rule, first),
            body: format::alert_body(&self.rule, self.rt.as_ref(), &matches),
            matches: matches.into_iter().map(|m| Value::Object(m.doc)).collect(),
            recovery: false,
        }
    }

    async fn recoveries(
        &mut self,
        es: Es<'_>,
        matched: &[String],
        end: i64,
        now: i64,
        report: &mut RunReport,
    ) -> Result<()> {
        if !matches!(
            self.rule.kind,
            RuleKind::Frequency { .. }
                | RuleKind::Flatline { .. }
                | RuleKind::MetricAggregation(_)
                | RuleKind::SpikeAggregation { .. }
                | RuleKind::PercentageMatch { .. }
                | RuleKind::Cardinality { .. }
        ) {
            return Ok(());
        }
        let candidates: Vec<(String, i64)> = self
            .state
            .active
            .iter()
            .filter(|(k, _)| !matched.contains(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (key, since) in candidates {
            // A frequency rule forgets its window after firing, so "no match this run"
            // does not mean the rate dropped: ask the server for the current count.
            if let RuleKind::Frequency { num_events } = self.rule.kind {
                let tf = self.rule.timeframe_or(self.rule.buffer_time);
                let mut filters = vec![self.range(end - tf, end)];
                filters.extend(self.rule.filter.iter().cloned());
                if key != "all" && self.rule.query_key.len() == 1 {
                    filters.push(json!({"term": {self.rule.query_key[0].clone(): key.clone()}}));
                }
                let n = es
                    .count(
                        &self.index(end - tf, end),
                        &json!({"query": {"bool": {"filter": filters}}}),
                    )
                    .await?;
                if n >= num_events {
                    continue;
                }
            }
            self.state.active.remove(&key);
            let qk = (key != "all").then(|| key.clone());
            let mut subject = format!("RESOLVED: {}", self.rule.name);
            if let Some(q) = &qk {
                subject.push_str(&format!(" - {q}"));
            }
            report.alerts.push(AlertDraft {
                id: digest(&[&self.rule.id, "resolved", &key, &since.to_string()]),
                rule_id: self.rule.id.clone(),
                rule_name: self.rule.name.clone(),
                query_key: qk,
                match_time: end,
                subject,
                body: format!(
                    "{}\n\nThe alert condition has cleared as of {}.\n",
                    self.rule.name,
                    pretty_ts(end, self.rule.query_timezone)
                ),
                matches: Vec::new(),
                recovery: true,
            });
        }
        for k in matched {
            self.state.active.entry(k.clone()).or_insert(now);
        }
        Ok(())
    }

    // ---- queries -------------------------------------------------------------------

    fn ts_query_value(&self, micros: i64) -> Value {
        match &self.rule.timestamp_type {
            TimestampType::Unix => json!(micros / 1_000_000),
            TimestampType::UnixMs => json!(micros / 1_000),
            TimestampType::Iso | TimestampType::Custom(_) => Value::String(iso(micros)),
        }
    }

    fn range(&self, start: i64, end: i64) -> Value {
        json!({"range": {self.rule.timestamp_field.clone(): {"gt": self.ts_query_value(start), "lte": self.ts_query_value(end)}}})
    }

    fn query(&self, start: i64, end: i64) -> Value {
        let mut filters = vec![self.range(start, end)];
        filters.extend(self.rule.filter.iter().cloned());
        json!({"bool": {"filter": filters}})
    }

    /// The index expression for a window (strftime patterns expanded day by day).
    pub fn index(&self, start: i64, end: i64) -> String {
        if !self.rule.use_strftime_index {
            return self.rule.indices.join(",");
        }
        let mut out: Vec<String> = Vec::new();
        let hourly = self.rule.indices.iter().any(|i| i.contains("%H"));
        let step = if hourly {
            3_600_000_000
        } else {
            86_400_000_000
        };
        for pattern in &self.rule.indices {
            let mut t = start;
            loop {
                let name = strftime(pattern, t, self.rule.query_timezone);
                if !out.contains(&name) {
                    out.push(name);
                }
                if t >= end || out.len() > 1000 {
                    break;
                }
                t = (t + step).min(end);
            }
        }
        out.join(",")
    }

    fn event_ts(&self, doc: &Map<String, Value>) -> Option<i64> {
        let v = lookup(doc, &self.rule.timestamp_field)?;
        match &self.rule.timestamp_type {
            TimestampType::Iso => cairn_core::time::parse_value(v, None),
            TimestampType::Unix => v
                .as_f64()
                .or_else(|| v.as_str()?.parse().ok())
                .map(|s| (s * 1e6) as i64),
            TimestampType::UnixMs => v
                .as_f64()
                .or_else(|| v.as_str()?.parse().ok())
                .map(|s| (s * 1e3) as i64),
            TimestampType::Custom(f) => {
                let s = v.as_str()?;
                chrono::DateTime::parse_from_str(s, f)
                    .map(|d| d.timestamp_micros())
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDateTime::parse_from_str(s, f)
                            .ok()
                            .map(|d| d.and_utc().timestamp_micros())
                    })
            }
        }
    }

    async fn run_query(&mut self, es: Es<'_>, start: i64, end: i64) -> Result<u64> {
        let index = self.index(start, end);
        match self.mode {
            Mode::Count => {
                let n = es
                    .count(&index, &json!({"query": self.query(start, end)}))
                    .await?;
                self.rt.add_count(end, n);
                Ok(n)
            }
            Mode::Terms => {
                let field = self.rule.query_key.first().cloned().unwrap_or_default();
                let body = json!({
                    "size": 0,
                    "query": self.query(start, end),
                    "aggs": {"counts": {"terms": {"field": field, "size": self.rule.terms_size, "min_doc_count": 1}}}
                });
                let res = es.search(&index, &body, None).await?;
                let buckets: Vec<(Value, u64)> = res
                    .pointer("/aggregations/counts/buckets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|b| {
                        (
                            b.get("key_as_string")
                                .or_else(|| b.get("key"))
                                .cloned()
                                .unwrap_or(Value::Null),
                            b.get("doc_count").and_then(Value::as_u64).unwrap_or(0),
                        )
                    })
                    .collect();
                let hits = buckets.iter().map(|b| b.1).sum();
                self.rt.add_terms(end, &buckets);
                Ok(hits)
            }
            Mode::Aggregation => {
                let body = json!({"size": 0, "query": self.query(start, end), "aggs": self.aggregation_body()});
                let res = es.search(&index, &body, None).await?;
                let hits = total_hits(&res);
                let payload = res
                    .get("aggregations")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                self.rt.add_aggregation(end, &payload);
                Ok(hits)
            }
            Mode::Docs => {
                if let Some(gate) = self.rt.gate() {
                    return self.gated_docs(es, start, end, gate).await;
                }
                if let Some(fields) = self.rt.term_gate() {
                    if let Some(hits) = self
                        .known_terms_only(es, &index, start, end, &fields)
                        .await?
                    {
                        return Ok(hits);
                    }
                }
                self.query_docs(es, &index, start, end).await
            }
        }
    }

    /// Documents for a rule type with a gate: one question to the server decides whether
    /// a match is possible in `(start, end]`; only then are documents read, starting
    /// early enough to include those of earlier skipped windows that still fall within
    /// the gate's lookback. In the usual case (no alert) a run costs a count or an
    /// aggregation instead of reading `buffer_time` worth of documents. The matches are
    /// exactly those of reading every window (the rule types' windows are ordered by
    /// timestamp, whatever the feeding order).
    async fn gated_docs(&mut self, es: Es<'_>, start: i64, end: i64, gate: Gate) -> Result<u64> {
        let fed = *self.fed_until.get_or_insert(start);
        let lookback = match &gate {
            Gate::Count { lookback, .. } | Gate::Distinct { lookback, .. } => *lookback,
        };
        let from = start.saturating_sub(lookback);
        let index = self.index(from, end);
        // A question the server cannot answer (a field it cannot aggregate, say) only
        // means the documents are read, as without a gate.
        let possible = match &gate {
            Gate::Count { n, .. } => es
                .count(&index, &json!({"query": self.query(from, end)}))
                .await
                .map_or(true, |c| c >= *n),
            Gate::Distinct { field, max, .. } => {
                self.more_distinct_than(es, &index, from, end, field, *max)
                    .await
            }
        };
        if !possible {
            tracing::debug!(rule = %self.rule.name, ?gate, "gate: no match possible, documents not read");
            return es
                .count(
                    &self.index(start, end),
                    &json!({"query": self.query(start, end)}),
                )
                .await;
        }
        if fed < start {
            let unread_from = fed.max(from);
            let index = self.index(unread_from, start);
            self.query_docs(es, &index, unread_from, start).await?;
        }
        let hits = self
            .query_docs(es, &self.index(start, end), start, end)
            .await?;
        self.fed_until = Some(end);
        Ok(hits)
    }

    /// Whether `field` may have more than `max` distinct values in `(start, end]`, as
    /// the documents would count them: true also when the aggregation cannot tell
    /// (more buckets than it returns, keys that are not strings, documents with several
    /// values, an error).
    async fn more_distinct_than(
        &self,
        es: Es<'_>,
        index: &str,
        start: i64,
        end: i64,
        field: &str,
        max: u64,
    ) -> bool {
        let size = max.saturating_add(1).min(GATE_TERMS);
        match es
            .search(index, &self.values_body(start, end, field, size), None)
            .await
        {
            Ok(res) => string_terms(&res).is_none_or(|values| values.len() as u64 > max),
            Err(e) => {
                tracing::debug!(rule = %self.rule.name, error = %e, "gate unanswered: reading documents");
                true
            }
        }
    }

    /// A size-0 search for the values of `field` in `(start, end]` (at most `size`),
    /// with the number of documents that have the field.
    fn values_body(&self, start: i64, end: i64, field: &str, size: u64) -> Value {
        json!({
            "size": 0,
            "track_total_hits": true,
            "query": self.query(start, end),
            "aggs": {
                "values": {"terms": {"field": field, "size": size}},
                "has": {"filters": {"filters": {"field": {"exists": {"field": field}}}}}
            }
        })
    }

    /// new_term's gate: one terms aggregation per field over `(start, end]`. When every
    /// value the server reports is already known, the window's documents cannot match
    /// and are not read: returns the window's hit count. Returns None (read the
    /// documents) when any value is new, or when the aggregation cannot vouch for every
    /// document: more distinct values than it returns, keys that are not strings (their
    /// text may differ from the documents'), or documents with several values of the
    /// field (a document's array is one term in ElastAlert's sense).
    async fn known_terms_only(
        &self,
        es: Es<'_>,
        index: &str,
        start: i64,
        end: i64,
        fields: &[String],
    ) -> Result<Option<u64>> {
        let mut hits = 0;
        for (i, field) in fields.iter().enumerate() {
            let res = match es
                .search(
                    index,
                    &self.values_body(start, end, field, GATE_TERMS),
                    None,
                )
                .await
            {
                Ok(res) => res,
                Err(e) => {
                    tracing::debug!(rule = %self.rule.name, error = %e, "term gate unanswered: reading documents");
                    return Ok(None);
                }
            };
            hits = total_hits(&res);
            match string_terms(&res) {
                Some(values) if self.rt.all_seen(i, &values) => {}
                _ => return Ok(None),
            }
        }
        tracing::debug!(rule = %self.rule.name, hits, "term gate: every term is known, documents not read");
        Ok(Some(hits))
    }

    fn aggregation_body(&self) -> Value {
        let mut inner = Map::new();
        match &self.rule.kind {
            RuleKind::MetricAggregation(spec) | RuleKind::SpikeAggregation { metric: spec, .. } => {
                let mut agg = json!({"field": spec.agg_key});
                if let Some(p) = spec.percentile_range {
                    agg["percents"] = json!([p]);
                }
                if let Some(script) = self.rule.raw.get("metric_agg_script") {
                    agg = match script {
                        Value::Object(_) => script.clone(),
                        other => json!({"script": other}),
                    };
                }
                inner.insert(spec.metric_key.clone(), json!({spec.agg_type.clone(): agg}));
            }
            RuleKind::PercentageMatch {
                match_bucket_filter,
                ..
            } => {
                let must = match match_bucket_filter {
                    Value::Array(a) => Value::Array(a.clone()),
                    other => json!([other]),
                };
                inner.insert(
                    "percentage_match_aggs".into(),
                    json!({"filters": {"other_bucket": true, "filters": {"match_bucket": {"bool": {"must": must}}}}}),
                );
            }
            _ => {}
        }
        let interval = match &self.rule.kind {
            RuleKind::MetricAggregation(spec) => spec.bucket_interval,
            RuleKind::PercentageMatch {
                bucket_interval, ..
            } => *bucket_interval,
            _ => None,
        };
        let mut body = Value::Object(inner);
        if let Some(iv) = interval {
            body = json!({"interval_aggs": {
                "date_histogram": {"field": self.rule.timestamp_field, "fixed_interval": format!("{}s", iv / 1_000_000), "min_doc_count": 1},
                "aggs": body
            }});
        }
        for qk in self.rule.query_key.iter().rev() {
            body = json!({"bucket_aggs": {
                "terms": {"field": qk, "size": self.rule.terms_size, "min_doc_count": self.rule.raw.get("min_doc_count").and_then(Value::as_u64).unwrap_or(1)},
                "aggs": body
            }});
        }
        body
    }

    async fn query_docs(&mut self, es: Es<'_>, index: &str, start: i64, end: i64) -> Result<u64> {
        let mut body = json!({
            "query": self.query(start, end),
            "sort": [{self.rule.timestamp_field.clone(): {"order": "asc"}}],
            "size": self.rule.max_query_size,
        });
        if !self.rule.include.is_empty() {
            let mut inc = self.rule.include.clone();
            inc.push(self.rule.timestamp_field.clone());
            inc.extend(self.rule.query_key.iter().cloned());
            inc.extend(self.rule.top_count_keys.iter().cloned());
            body["_source"] = json!({"includes": inc});
        }
        let mut res = es.search(index, &body, Some("30s")).await?;
        let total = total_hits(&res);
        let mut hits = 0u64;
        let mut scrolls = 0u64;
        loop {
            let page: Vec<Value> = res
                .pointer("/hits/hits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if page.is_empty() {
                break;
            }
            hits += page.len() as u64;
            let events = self.process_hits(page);
            self.rt.add_data(events);
            if hits >= total || scrolls >= self.rule.max_scrolling_count {
                break;
            }
            let Some(sid) = res
                .get("_scroll_id")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                break;
            };
            scrolls += 1;
            res = es.scroll(&sid, "30s").await?;
        }
        if let Some(sid) = res.get("_scroll_id").and_then(Value::as_str) {
            es.clear_scroll(sid).await;
        }
        Ok(hits)
    }

    fn process_hits(&mut self, page: Vec<Value>) -> Vec<Event> {
        let mut out = Vec::with_capacity(page.len());
        for hit in page {
            let id = hit
                .get("_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(Value::Object(mut doc)) = hit.get("_source").cloned() else {
                continue;
            };
            let Some(ts) = self.event_ts(&doc) else {
                tracing::debug!(rule = %self.rule.name, id = %id, "hit without a usable timestamp");
                continue;
            };
            if !id.is_empty() {
                if self.processed.contains_key(&id) {
                    continue;
                }
                self.processed.insert(id.clone(), ts);
            }
            doc.insert("_id".into(), Value::String(id));
            if let Some(ix) = hit.get("_index") {
                doc.insert("_index".into(), ix.clone());
            }
            if self.rule.query_key.len() > 1 {
                let joined: Vec<String> = self
                    .rule
                    .query_key
                    .iter()
                    .map(|k| lookup(&doc, k).map(py_str).unwrap_or_else(|| "None".into()))
                    .collect();
                doc.insert(
                    self.rule.query_key.join(","),
                    Value::String(joined.join(", ")),
                );
            }
            out.push(Event { ts, doc });
        }
        out
    }

    async fn add_top_counts(&self, es: Es<'_>, m: &mut Match) -> Result<()> {
        let tf = if matches!(self.rule.kind, RuleKind::Flatline { .. }) {
            2 * self.rule.timeframe_or(10 * MINUTE)
        } else {
            self.rule.timeframe_or(10 * MINUTE)
        };
        let (start, end) = (m.ts - tf, m.ts + 10 * MINUTE);
        let mut filters = vec![self.range(start, end)];
        filters.extend(self.rule.filter.iter().cloned());
        if let (Some(name), Some(v)) = (
            self.rule.query_key_name(),
            format::query_key_value(&self.rule, m),
        ) {
            if self.rule.query_key.len() == 1 {
                filters.push(json!({"term": {name: v}}));
            }
        }
        for key in &self.rule.top_count_keys {
            let body = json!({
                "size": 0,
                "query": {"bool": {"filter": filters}},
                "aggs": {"counts": {"terms": {"field": key, "size": self.rule.top_count_number}}}
            });
            let res = es.search(&self.index(start, end), &body, None).await?;
            let mut counts = Map::new();
            for b in res
                .pointer("/aggregations/counts/buckets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = b
                    .get("key_as_string")
                    .or_else(|| b.get("key"))
                    .map(py_str)
                    .unwrap_or_default();
                counts.insert(k, b.get("doc_count").cloned().unwrap_or(json!(0)));
            }
            m.doc
                .insert(format!("top_events_{key}"), Value::Object(counts));
        }
        Ok(())
    }

    /// new_term: every value seen in `terms_window_size` before the first run.
    async fn load_terms(&mut self, es: Es<'_>, first_start: i64) -> Result<()> {
        let RuleKind::NewTerm {
            fields,
            terms_window_size,
            window_step_size,
            ..
        } = &self.rule.kind
        else {
            return Ok(());
        };
        let fields = fields.clone();
        let end = first_start;
        let start = end - terms_window_size;
        let step = (*window_step_size).max(MINUTE);
        for (i, field) in fields.iter().enumerate() {
            let mut s = start;
            while s < end {
                let e = (s + step).min(end);
                let mut aggs = json!({});
                // Composite keys: nested terms, one level per part.
                for f in field.iter().rev() {
                    let mut t = json!({"terms": {"field": f, "size": 2_147_483_647u64}});
                    if aggs.as_object().is_some_and(|o| !o.is_empty()) {
                        t["aggs"] = aggs;
                    }
                    aggs = json!({"values": t});
                }
                let mut filters = vec![
                    json!({"range": {self.rule.timestamp_field.clone(): {"gte": self.ts_query_value(s), "lt": self.ts_query_value(e)}}}),
                ];
                filters.extend(self.rule.filter.iter().cloned());
                let body = json!({"size": 0, "query": {"bool": {"filter": filters}}, "aggs": aggs});
                let res = es.search(&self.index(s, e), &body, None).await?;
                let mut values = Vec::new();
                if let Some(root) = res.pointer("/aggregations/values") {
                    flatten_terms(root, &mut Vec::new(), &mut values);
                }
                self.rt.set_seen_terms(i, values);
                s = e;
            }
        }
        Ok(())
    }
}

/// `hits.total.value` of a search answer.
fn total_hits(res: &Value) -> u64 {
    res.pointer("/hits/total/value")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Most values a gate asks the server for (well under `search.max_buckets`).
const GATE_TERMS: u64 = 10_000;

/// The values of a [`Runner::values_body`] answer, when they stand for every document
/// exactly as the documents' own values would: None with truncated buckets, keys that
/// are not strings (their text may differ from the documents'), or documents with
/// several values (a document's array is one value to the rule types).
fn string_terms(res: &Value) -> Option<Vec<String>> {
    let other = res
        .pointer("/aggregations/values/sum_other_doc_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let with_field = res
        .pointer("/aggregations/has/buckets/field/doc_count")
        .and_then(Value::as_u64)?;
    let buckets = res
        .pointer("/aggregations/values/buckets")
        .and_then(Value::as_array)?;
    let mut values = Vec::with_capacity(buckets.len());
    let mut counted = 0;
    for b in buckets {
        match b.get("key") {
            Some(Value::String(k)) if b.get("key_as_string").is_none() => values.push(k.clone()),
            _ => return None,
        }
        counted += b.get("doc_count").and_then(Value::as_u64).unwrap_or(0);
    }
    (other == 0 && counted == with_field).then_some(values)
}

fn flatten_terms(agg: &Value, prefix: &mut Vec<String>, out: &mut Vec<String>) {
    for b in agg
        .get("buckets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = b
            .get("key_as_string")
            .or_else(|| b.get("key"))
            .map(py_str)
            .unwrap_or_default();
        prefix.push(key);
        match b.get("values") {
            Some(inner) => flatten_terms(inner, prefix, out),
            None => out.push(prefix.join("\u{1f}")),
        }
        prefix.pop();
    }
}

/// strftime for index patterns (`logs-%Y.%m.%d`).
pub fn strftime(pattern: &str, micros: i64, tz: Option<chrono_tz::Tz>) -> String {
    use std::fmt::Write;
    let Some(d) = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros) else {
        return pattern.to_string();
    };
    let mut out = String::new();
    let ok = match tz {
        Some(tz) => write!(out, "{}", d.with_timezone(&tz).format(pattern)),
        None => write!(out, "{}", d.format(pattern)),
    };
    if ok.is_err() {
        return pattern.to_string();
    }
    out
}
