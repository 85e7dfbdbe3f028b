//! The rule types, with ElastAlert 2's semantics.
//!
//! A rule type is a state machine fed, run after run, with what the queries returned:
//! documents ([`RuleType::add_data`]), a count ([`RuleType::add_count`]), terms buckets
//! ([`RuleType::add_terms`]) or an aggregation payload ([`RuleType::add_aggregation`]),
//! then [`RuleType::garbage_collect`] with the end of the queried window. Matches
//! accumulate until the runner takes them. The quirks are ElastAlert's on purpose (for
//! example a flatline is only checked on the last document of a batch, a spike's
//! reference window must be filled once before anything fires, a frequency window is
//! forgotten after it fires): the same rule file must alert the same way in both.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::config::{MetricSpec, Rule, RuleKind, SpikeType};
use crate::value::{
    insert_dotted, iso, lookup, lookup_some, pretty_ts, py_float, py_str, py_timedelta, truthy,
};

/// One document (or synthetic event) with its parsed timestamp.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub ts: i64,
    pub doc: Map<String, Value>,
}

/// A match: the event that triggered plus the rule type's extra fields.
pub type Match = Event;

const ALL: &str = "all";

/// The key used for per-value state: the query_key value as ElastAlert's `hashable()`
/// would see it, or `all`.
pub fn key_of(doc: &Map<String, Value>, qk: Option<&str>) -> String {
    match qk {
        None => ALL.to_string(),
        Some(k) => match lookup(doc, k) {
            None | Some(Value::Null) => "None".to_string(),
            Some(v) => py_str(v),
        },
    }
}

pub trait RuleType: Send + Sync {
    fn add_data(&mut self, _events: Vec<Event>) {}
    fn add_count(&mut self, _ts: i64, _count: u64) {}
    fn add_terms(&mut self, _ts: i64, _buckets: &[(Value, u64)]) {}
    fn add_aggregation(&mut self, _ts: i64, _payload: &Value) {}
    fn garbage_collect(&mut self, _ts: i64) {}
    fn take_matches(&mut self) -> Vec<Match>;
    /// The type's paragraph of the alert body (ElastAlert's `get_match_str`).
    fn match_str(&self, _m: &Match) -> String {
        String::new()
    }
    /// new_term: the terms already seen, loaded before the first run.
    fn set_seen_terms(&mut self, _field: usize, _values: Vec<String>) {}
    /// A question the runner asks the server before reading a window's documents; the
    /// answer can rule out any match in the window (frequency, cardinality).
    fn gate(&self) -> Option<Gate> {
        None
    }
    /// new_term: the single fields whose values the runner may ask the server for (a
    /// terms aggregation) before reading documents; None when documents are needed.
    fn term_gate(&self) -> Option<Vec<String>> {
        None
    }
    /// new_term: whether every one of `values` of field `field` is already known.
    fn all_seen(&self, _field: usize, _values: &[String]) -> bool {
        false
    }
}

/// What must hold in `(start - lookback, end]` (all query keys together) for a window
/// `(start, end]` to possibly match. Every event a rule type holds when it gains an event
/// at `t > start` lies in `[t - lookback, t]`, so when the server's answer rules a match
/// out, the window's documents need not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// At least `n` documents.
    Count { lookback: i64, n: u64 },
    /// More than `max` distinct values of `field`.
    Distinct {
        lookback: i64,
        field: String,
        max: u64,
    },
}

/// Builds the rule type for a rule.
pub fn build(rule: &Rule) -> Box<dyn RuleType> {
    let c = Common::new(rule);
    match &rule.kind {
        RuleKind::Any => Box::new(AnyRule { c }),
        RuleKind::Blacklist { compare_key, list } => Box::new(CompareRule {
            c,
            compare_key: compare_key.clone(),
            list: list.iter().cloned().collect(),
            white: None,
        }),
        RuleKind::Whitelist {
            compare_key,
            list,
            ignore_null,
        } => Box::new(CompareRule {
            c,
            compare_key: compare_key.clone(),
            list: list.iter().cloned().collect(),
            white: Some(*ignore_null),
        }),
        RuleKind::Change {
            compare_keys,
            ignore_null,
        } => Box::new(ChangeRule {
            c,
            compare_keys: compare_keys.clone(),
            ignore_null: *ignore_null,
            timeframe: rule.timeframe,
            occurrences: HashMap::new(),
            occurrence_time: HashMap::new(),
            change_map: HashMap::new(),
        }),
        RuleKind::Frequency { num_events } => Box::new(FrequencyRule {
            timeframe: rule.timeframe.unwrap_or(0),
            num_events: *num_events,
            occurrences: BTreeMap::new(),
            c,
        }),
        RuleKind::Flatline {
            threshold,
            forget_keys,
        } => Box::new(FlatlineRule {
            timeframe: rule.timeframe.unwrap_or(0),
            threshold: *threshold,
            forget_keys: *forget_keys,
            occurrences: BTreeMap::new(),
            first_event: HashMap::new(),
            c,
        }),
        RuleKind::Spike {
            spike_height,
            spike_type,
            threshold_ref,
            threshold_cur,
            field_value,
            alert_on_new_data,
        } => Box::new(SpikeRule::new(
            c,
            rule.timeframe.unwrap_or(0),
            SpikeParams {
                height: *spike_height,
                kind: *spike_type,
                threshold_ref: *threshold_ref,
                threshold_cur: *threshold_cur,
                field_value: field_value.clone(),
                alert_on_new_data: *alert_on_new_data,
                metric: None,
            },
        )),
        RuleKind::SpikeAggregation {
            metric,
            spike_height,
            spike_type,
            threshold_ref,
            threshold_cur,
            alert_on_new_data,
        } => Box::new(SpikeRule::new(
            c,
            rule.timeframe.unwrap_or(0),
            SpikeParams {
                height: *spike_height,
                kind: *spike_type,
                threshold_ref: *threshold_ref,
                threshold_cur: *threshold_cur,
                field_value: None,
                alert_on_new_data: *alert_on_new_data,
                metric: Some(metric.clone()),
            },
        )),
        RuleKind::NewTerm {
            fields,
            alert_on_missing_field,
            ..
        } => Box::new(NewTermRule {
            c,
            fields: fields.clone(),
            seen: vec![HashSet::new(); fields.len()],
            alert_on_missing_field: *alert_on_missing_field,
        }),
        RuleKind::Cardinality { field, max, min } => Box::new(CardinalityRule {
            c,
            timeframe: rule.timeframe.unwrap_or(0),
            field: field.clone(),
            max: *max,
            min: *min,
            cache: BTreeMap::new(),
            first_event: HashMap::new(),
        }),
        RuleKind::MetricAggregation(spec) => Box::new(MetricAggregationRule {
            c,
            spec: spec.clone(),
        }),
        RuleKind::PercentageMatch {
            min_percentage,
            max_percentage,
            min_denominator,
            ..
        } => Box::new(PercentageMatchRule {
            c,
            min: *min_percentage,
            max: *max_percentage,
            min_denominator: *min_denominator,
        }),
    }
}

/// What every type needs from the rule.
struct Common {
    ts_field: String,
    qk: Option<String>,
    tz: Option<chrono_tz::Tz>,
    matches: Vec<Match>,
}

impl Common {
    fn new(rule: &Rule) -> Self {
        Common {
            ts_field: rule.timestamp_field.clone(),
            qk: rule.query_key_name(),
            tz: rule.query_timezone,
            matches: Vec::new(),
        }
    }

    fn key(&self, doc: &Map<String, Value>) -> String {
        key_of(doc, self.qk.as_deref())
    }

    /// A synthetic event at `ts` (ElastAlert's `{timestamp_field: ts}` placeholders).
    fn synthetic(&self, ts: i64) -> Event {
        let mut doc = Map::new();
        doc.insert(self.ts_field.clone(), Value::String(iso(ts)));
        Event { ts, doc }
    }

    fn with_key(&self, mut e: Event, key: &str) -> Event {
        if let Some(qk) = &self.qk {
            if key != ALL {
                e.doc.insert(qk.clone(), Value::String(key.to_string()));
            }
        }
        e
    }

    fn take(&mut self) -> Vec<Match> {
        std::mem::take(&mut self.matches)
    }
}

// ---- any / blacklist / whitelist / change ------------------------------------------

struct AnyRule {
    c: Common,
}

impl RuleType for AnyRule {
    fn add_data(&mut self, events: Vec<Event>) {
        self.c.matches.extend(events);
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
}

struct CompareRule {
    c: Common,
    compare_key: String,
    list: HashSet<String>,
    /// None: blacklist; Some(ignore_null): whitelist.
    white: Option<bool>,
}

impl RuleType for CompareRule {
    fn add_data(&mut self, events: Vec<Event>) {
        for e in events {
            let term = lookup_some(&e.doc, &self.compare_key).map(py_str);
            let hit = match (self.white, term) {
                (None, Some(t)) => self.list.contains(&t),
                (None, None) => false,
                (Some(ignore_null), None) => !ignore_null,
                (Some(_), Some(t)) => !self.list.contains(&t),
            };
            if hit {
                self.c.matches.push(e);
            }
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
}

struct ChangeRule {
    c: Common,
    compare_keys: Vec<String>,
    ignore_null: bool,
    timeframe: Option<i64>,
    occurrences: HashMap<String, Vec<Value>>,
    occurrence_time: HashMap<String, i64>,
    change_map: HashMap<String, (Vec<Value>, Vec<Value>)>,
}

impl RuleType for ChangeRule {
    fn add_data(&mut self, events: Vec<Event>) {
        for mut e in events {
            let key = self.c.key(&e.doc);
            let values: Vec<Value> = self
                .compare_keys
                .iter()
                .map(|k| lookup(&e.doc, k).cloned().unwrap_or(Value::Null))
                .collect();
            if self.ignore_null && values.iter().any(|v| !v.is_boolean() && !truthy(Some(v))) {
                continue;
            }
            let mut changed = false;
            if let Some(prev) = self.occurrences.get(&key) {
                changed = prev.iter().zip(&values).any(|(a, b)| a != b);
                if changed {
                    self.change_map
                        .insert(key.clone(), (prev.clone(), values.clone()));
                    if let (Some(tf), Some(t0)) = (self.timeframe, self.occurrence_time.get(&key)) {
                        changed = e.ts - t0 <= tf;
                    }
                }
            }
            self.occurrences.insert(key.clone(), values);
            if self.timeframe.is_some() {
                self.occurrence_time.insert(key.clone(), e.ts);
            }
            if changed {
                if let Some((old, new)) = self.change_map.get(&key) {
                    e.doc.insert("old_value".into(), Value::Array(old.clone()));
                    e.doc.insert("new_value".into(), Value::Array(new.clone()));
                }
                self.c.matches.push(e);
            }
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
}

// ---- event windows -----------------------------------------------------------------

/// Events of one key ordered by time; appending drops the oldest until the window spans
/// less than `timeframe` (ElastAlert's `EventWindow`). Counts are f64 because spike
/// aggregations put metric values where counts usually are.
#[derive(Clone, Debug)]
struct EventWindow {
    timeframe: i64,
    data: Vec<(Event, f64, bool)>, // (event, count, is_placeholder)
    running: f64,
}

impl EventWindow {
    fn new(timeframe: i64) -> Self {
        EventWindow {
            timeframe,
            data: Vec::new(),
            running: 0.0,
        }
    }

    /// Adds an event; returns the events pushed out of the window.
    fn append(&mut self, e: Event, count: f64, placeholder: bool) -> Vec<(Event, f64, bool)> {
        // Sorted insert after equal timestamps (a sorted list's bisect_right).
        let pos = self.data.partition_point(|(x, _, _)| x.ts <= e.ts);
        self.data.insert(pos, (e, count, placeholder));
        self.running += count;
        let mut removed = Vec::new();
        while self.duration() >= self.timeframe && !self.data.is_empty() {
            let old = self.data.remove(0);
            self.running -= old.1;
            removed.push(old);
        }
        removed
    }

    fn duration(&self) -> i64 {
        match (self.data.first(), self.data.last()) {
            (Some(a), Some(b)) => b.0.ts - a.0.ts,
            _ => 0,
        }
    }

    fn count(&self) -> f64 {
        self.running
    }

    fn clear(&mut self) {
        self.data.clear();
        self.running = 0.0;
    }

    fn mean(&self) -> Option<f64> {
        let vals: Vec<f64> = self.data.iter().filter(|d| !d.2).map(|d| d.1).collect();
        if vals.is_empty() {
            None
        } else {
            Some(vals.iter().sum::<f64>() / vals.len() as f64)
        }
    }

    fn min(&self) -> Option<f64> {
        self.data.iter().map(|d| d.1).reduce(f64::min)
    }

    fn max(&self) -> Option<f64> {
        self.data.iter().map(|d| d.1).reduce(f64::max)
    }
}

// ---- frequency / flatline ----------------------------------------------------------

struct FrequencyRule {
    c: Common,
    timeframe: i64,
    num_events: u64,
    occurrences: BTreeMap<String, EventWindow>,
}

impl FrequencyRule {
    fn push(&mut self, key: &str, e: Event, count: f64) {
        self.occurrences
            .entry(key.to_string())
            .or_insert_with(|| EventWindow::new(self.timeframe))
            .append(e, count, false);
        self.check(key);
    }

    fn check(&mut self, key: &str) {
        let Some(w) = self.occurrences.get(key) else {
            return;
        };
        if w.count() >= self.num_events as f64 {
            if let Some((e, _, _)) = w.data.last() {
                self.c.matches.push(e.clone());
            }
            self.occurrences.remove(key);
        }
    }
}

impl RuleType for FrequencyRule {
    fn add_data(&mut self, events: Vec<Event>) {
        for e in events {
            let key = self.c.key(&e.doc);
            self.push(&key, e, 1.0);
        }
    }
    fn add_count(&mut self, ts: i64, count: u64) {
        let e = self.c.synthetic(ts);
        self.push(ALL, e, count as f64);
    }
    fn add_terms(&mut self, ts: i64, buckets: &[(Value, u64)]) {
        for (k, n) in buckets {
            let key = py_str(k);
            let mut e = self.c.synthetic(ts);
            if let Some(qk) = &self.c.qk {
                e.doc.insert(qk.clone(), k.clone());
            }
            self.push(&key, e, *n as f64);
        }
    }
    fn garbage_collect(&mut self, ts: i64) {
        let tf = self.timeframe;
        self.occurrences
            .retain(|_, w| w.data.last().is_some_and(|(e, _, _)| ts - e.ts <= tf));
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    /// A window holds at most the events of one timeframe, and every event of a window
    /// that gains an event at `t >= start` lies in `[start - timeframe, end]`: fewer
    /// than `num_events` documents there (all keys together) means no key can match.
    fn gate(&self) -> Option<Gate> {
        Some(Gate::Count {
            lookback: self.timeframe,
            n: self.num_events,
        })
    }
    fn match_str(&self, m: &Match) -> String {
        format!(
            "At least {} events occurred between {} and {}\n\n",
            self.num_events,
            pretty_ts(m.ts - self.timeframe, self.c.tz),
            pretty_ts(m.ts, self.c.tz)
        )
    }
}

struct FlatlineRule {
    c: Common,
    timeframe: i64,
    threshold: u64,
    forget_keys: bool,
    occurrences: BTreeMap<String, EventWindow>,
    first_event: HashMap<String, i64>,
}

impl FlatlineRule {
    fn push(&mut self, key: &str, e: Event, count: f64) {
        self.occurrences
            .entry(key.to_string())
            .or_insert_with(|| EventWindow::new(self.timeframe))
            .append(e, count, count == 0.0);
    }

    /// ElastAlert only checks at the end of a batch: mid-batch counts would be partial.
    fn check(&mut self, key: &str) {
        let Some(w) = self.occurrences.get(key) else {
            return;
        };
        let (Some(last), Some(first)) = (w.data.last(), w.data.first()) else {
            return;
        };
        let most_recent = last.0.ts;
        let least_recent = first.0.ts;
        let start = *self
            .first_event
            .entry(key.to_string())
            .or_insert(most_recent);
        if most_recent - start < self.timeframe {
            return;
        }
        let count = w.count();
        if count < self.threshold as f64 {
            let mut e = last.0.clone();
            e.doc.insert("key".into(), Value::String(key.to_string()));
            e.doc.insert("count".into(), json!(count as u64));
            e.doc.insert("threshold".into(), json!(self.threshold));
            self.c.matches.push(e);
            if !self.forget_keys {
                // Keep alerting every run until the threshold is met again.
                self.first_event.insert(
                    key.to_string(),
                    least_recent.min(most_recent - self.timeframe),
                );
            } else {
                self.first_event.remove(key);
                self.occurrences.remove(key);
            }
        }
    }
}

impl RuleType for FlatlineRule {
    fn add_data(&mut self, events: Vec<Event>) {
        let mut last_key = None;
        for e in events {
            let key = self.c.key(&e.doc);
            self.push(&key, e, 1.0);
            last_key = Some(key);
        }
        if let Some(k) = last_key {
            self.check(&k);
        }
    }
    fn add_count(&mut self, ts: i64, count: u64) {
        let e = self.c.synthetic(ts);
        self.occurrences
            .entry(ALL.to_string())
            .or_insert_with(|| EventWindow::new(self.timeframe))
            .append(e, count as f64, false);
        self.check(ALL);
    }
    fn add_terms(&mut self, ts: i64, buckets: &[(Value, u64)]) {
        for (k, n) in buckets {
            let key = py_str(k);
            let mut e = self.c.synthetic(ts);
            if let Some(qk) = &self.c.qk {
                e.doc.insert(qk.clone(), k.clone());
            }
            self.occurrences
                .entry(key.clone())
                .or_insert_with(|| EventWindow::new(self.timeframe))
                .append(e, *n as f64, false);
            self.check(&key);
        }
    }
    fn garbage_collect(&mut self, ts: i64) {
        let mut keys: Vec<String> = self.occurrences.keys().cloned().collect();
        if keys.is_empty() && self.c.qk.is_none() {
            keys.push(ALL.to_string());
        }
        for key in keys {
            let e = self.c.with_key(self.c.synthetic(ts), &key);
            self.push(&key, e, 0.0);
            self.first_event.entry(key.clone()).or_insert(ts);
            self.check(&key);
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    fn match_str(&self, m: &Match) -> String {
        format!(
            "An abnormally low number of events occurred around {}.\nBetween {} and {}, there were less than {} events.\n\n",
            pretty_ts(m.ts, self.c.tz),
            pretty_ts(m.ts - self.timeframe, self.c.tz),
            pretty_ts(m.ts, self.c.tz),
            self.threshold
        )
    }
}

// ---- spike / spike_aggregation -----------------------------------------------------

struct SpikeParams {
    height: f64,
    kind: SpikeType,
    threshold_ref: f64,
    threshold_cur: f64,
    field_value: Option<String>,
    alert_on_new_data: bool,
    metric: Option<MetricSpec>,
}

struct SpikeRule {
    c: Common,
    timeframe: i64,
    p: SpikeParams,
    ref_windows: BTreeMap<String, EventWindow>,
    cur_windows: BTreeMap<String, EventWindow>,
    first_event: HashMap<String, i64>,
    skip_checks: HashMap<String, i64>,
    ref_window_filled_once: bool,
}

impl SpikeRule {
    fn new(c: Common, timeframe: i64, p: SpikeParams) -> Self {
        SpikeRule {
            c,
            timeframe,
            p,
            ref_windows: BTreeMap::new(),
            cur_windows: BTreeMap::new(),
            first_event: HashMap::new(),
            skip_checks: HashMap::new(),
            ref_window_filled_once: false,
        }
    }

    fn values(&self, qk: &str) -> (Option<f64>, Option<f64>) {
        let (Some(r), Some(c)) = (self.ref_windows.get(qk), self.cur_windows.get(qk)) else {
            return (None, None);
        };
        if self.p.field_value.is_some() {
            return (r.mean(), c.mean());
        }
        match self.p.metric.as_ref().map(|m| m.agg_type.as_str()) {
            Some("avg") => (r.mean(), c.mean()),
            Some("min") => (r.min(), c.min()),
            Some("max") => (r.max(), c.max()),
            _ => (Some(r.count()), Some(c.count())),
        }
    }

    fn find_matches(&self, r: Option<f64>, c: Option<f64>) -> bool {
        let (r, c) = match (r, c) {
            (Some(r), Some(c)) if self.p.field_value.is_none() => {
                if c < self.p.threshold_cur || r < self.p.threshold_ref {
                    return false;
                }
                (r, c)
            }
            (Some(r), Some(c)) if r != 0.0 && c != 0.0 => (r, c),
            _ => return false,
        };
        let down = c <= r / self.p.height;
        let up = c >= r * self.p.height;
        match self.p.kind {
            SpikeType::Both => up || down,
            SpikeType::Up => up,
            SpikeType::Down => down,
        }
    }

    fn handle_event(&mut self, e: Event, count: f64, placeholder: bool, qk: &str) {
        let ts = e.ts;
        let first = *self.first_event.entry(qk.to_string()).or_insert(ts);
        let tf = self.timeframe;
        self.ref_windows
            .entry(qk.to_string())
            .or_insert_with(|| EventWindow::new(tf));
        let removed = self
            .cur_windows
            .entry(qk.to_string())
            .or_insert_with(|| EventWindow::new(tf))
            .append(e, count, placeholder);
        if let Some(rw) = self.ref_windows.get_mut(qk) {
            for (ev, n, ph) in removed {
                rw.append(ev, n, ph);
            }
        }
        if ts - first < 2 * tf {
            if !self.ref_window_filled_once {
                return;
            }
            if !(self.c.qk.is_some() && self.p.alert_on_new_data) {
                return;
            }
            if self.skip_checks.get(qk).is_some_and(|s| ts < *s) {
                return;
            }
        } else {
            self.ref_window_filled_once = true;
        }
        let (r, c) = self.values(qk);
        if self.find_matches(r, c) {
            let Some(cw) = self.cur_windows.get(qk) else {
                return;
            };
            // The first real event of the current window (placeholders carry no data).
            let found = if self.p.field_value.is_some() {
                cw.data.iter().find(|d| !d.2).or(cw.data.last())
            } else {
                cw.data.iter().find(|d| d.1 != 0.0).or(cw.data.last())
            };
            let Some((m, _, _)) = found.cloned() else {
                return;
            };
            let mut m = m;
            m.doc.insert("spike_count".into(), num(c));
            m.doc.insert("reference_count".into(), num(r));
            let mts = m.ts;
            self.c.matches.push(m);
            if let Some(rw) = self.ref_windows.get_mut(qk) {
                rw.clear();
            }
            self.first_event.remove(qk);
            self.skip_checks.insert(qk.to_string(), mts + 2 * tf);
        }
    }

    fn metric_value(&self, data: &Value) -> Option<f64> {
        let spec = self.p.metric.as_ref()?;
        metric_value(spec, data)
    }

    fn unwrap_terms(&mut self, ts: i64, buckets: &Value, qk: &mut Vec<String>) {
        for b in buckets
            .get("buckets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            qk.push(b.get("key").map(py_str).unwrap_or_default());
            if let Some(inner) = b.get("bucket_aggs") {
                self.unwrap_terms(ts, inner, qk);
            } else if let Some(v) = self.metric_value(b) {
                let key = qk.join(",");
                let mut e = self.c.synthetic(ts);
                if let Some(name) = &self.c.qk {
                    e.doc.insert(name.clone(), Value::String(key.clone()));
                }
                self.handle_event(e, v, false, &key);
            }
            qk.pop();
        }
    }
}

fn num(v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => json!(f as i64),
        Some(f) => json!(f),
    }
}

impl RuleType for SpikeRule {
    fn add_data(&mut self, events: Vec<Event>) {
        for e in events {
            let qk = match &self.c.qk {
                None => ALL.to_string(),
                Some(k) => match lookup_some(&e.doc, k) {
                    None => "other".to_string(),
                    Some(v) => py_str(v),
                },
            };
            match &self.p.field_value {
                Some(f) => {
                    let n = lookup_some(&e.doc, f).and_then(|v| match v {
                        Value::Number(n) => n.as_f64().map(f64::trunc),
                        Value::String(s) => s.trim().parse::<i64>().ok().map(|i| i as f64),
                        _ => None,
                    });
                    if let Some(n) = n {
                        self.handle_event(e, n, false, &qk);
                    }
                }
                None => self.handle_event(e, 1.0, false, &qk),
            }
        }
    }
    fn add_count(&mut self, ts: i64, count: u64) {
        let e = self.c.synthetic(ts);
        self.handle_event(e, count as f64, false, ALL);
    }
    fn add_terms(&mut self, ts: i64, buckets: &[(Value, u64)]) {
        for (k, n) in buckets {
            let key = py_str(k);
            let mut e = self.c.synthetic(ts);
            if let Some(qk) = &self.c.qk {
                e.doc.insert(qk.clone(), k.clone());
            }
            self.handle_event(e, *n as f64, false, &key);
        }
    }
    fn add_aggregation(&mut self, ts: i64, payload: &Value) {
        if let Some(b) = payload.get("bucket_aggs") {
            let b = b.clone();
            self.unwrap_terms(ts, &b, &mut Vec::new());
        } else if let Some(v) = self.metric_value(payload) {
            let e = self.c.synthetic(ts);
            self.handle_event(e, v, false, ALL);
        }
    }
    fn garbage_collect(&mut self, ts: i64) {
        let keys: Vec<String> = self.cur_windows.keys().cloned().collect();
        for qk in keys {
            let empty = self.ref_windows.get(&qk).is_none_or(|w| w.count() == 0.0)
                && self.cur_windows.get(&qk).is_none_or(|w| w.count() == 0.0);
            if qk != ALL && empty {
                self.cur_windows.remove(&qk);
                self.ref_windows.remove(&qk);
                continue;
            }
            let mut e = self.c.with_key(self.c.synthetic(ts), &qk);
            e.doc.insert("placeholder".into(), Value::Bool(true));
            self.handle_event(e, 0.0, true, &qk);
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    fn match_str(&self, m: &Match) -> String {
        let spike = m
            .doc
            .get("spike_count")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let reference = m
            .doc
            .get("reference_count")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let tf = py_timedelta(self.timeframe);
        let at = pretty_ts(m.ts, self.c.tz);
        if let Some(spec) = &self.p.metric {
            format!(
                "An abnormal {t} of {k} ({s}) occurred around {at}.\nPreceding that time, there was a {t} of {k} of ({r}) within {tf}\n\n",
                t = spec.agg_type,
                k = spec.agg_key,
                s = py_float((spike * 100.0).round() / 100.0),
                r = py_float((reference * 100.0).round() / 100.0),
            )
        } else if let Some(f) = &self.p.field_value {
            format!(
                "An abnormal average value ({spike:.2}) of field '{f}' occurred around {at}.\nPreceding that time, the field had an average value of ({reference:.2}) within {tf}\n\n"
            )
        } else {
            format!(
                "An abnormal number ({}) of events occurred around {at}.\nPreceding that time, there were only {} events within {tf}\n\n",
                spike as i64, reference as i64
            )
        }
    }
}

// ---- new_term ----------------------------------------------------------------------

struct NewTermRule {
    c: Common,
    fields: Vec<Vec<String>>,
    seen: Vec<HashSet<String>>,
    alert_on_missing_field: bool,
}

/// The value of a (possibly composite) field as a comparable string; None when any
/// part is missing or falsy, as in ElastAlert.
pub fn term_value(doc: &Map<String, Value>, field: &[String]) -> Option<String> {
    let mut parts = Vec::with_capacity(field.len());
    for f in field {
        let v = lookup(doc, f);
        if !truthy(v) {
            return None;
        }
        parts.push(py_str(v?));
    }
    Some(parts.join("\u{1f}"))
}

impl RuleType for NewTermRule {
    fn set_seen_terms(&mut self, field: usize, values: Vec<String>) {
        if let Some(s) = self.seen.get_mut(field) {
            s.extend(values);
        }
    }
    fn add_data(&mut self, events: Vec<Event>) {
        for e in events {
            for (i, field) in self.fields.iter().enumerate() {
                let name = if field.len() == 1 {
                    Value::String(field[0].clone())
                } else {
                    Value::Array(field.iter().cloned().map(Value::String).collect())
                };
                match term_value(&e.doc, field) {
                    None if self.alert_on_missing_field => {
                        let mut m = e.clone();
                        m.doc.insert("missing_field".into(), name);
                        self.c.matches.push(m);
                    }
                    Some(v) if self.seen[i].insert(v.clone()) => {
                        let mut m = e.clone();
                        m.doc.insert("new_field".into(), name);
                        self.c.matches.push(m);
                    }
                    _ => {}
                }
            }
        }
    }
    fn add_terms(&mut self, ts: i64, buckets: &[(Value, u64)]) {
        let Some(field) = self.fields.first().and_then(|f| f.first()).cloned() else {
            return;
        };
        for (k, n) in buckets {
            if *n == 0 {
                continue;
            }
            if self.seen[0].insert(py_str(k)) {
                let mut e = self.c.synthetic(ts);
                e.doc.insert(field.clone(), k.clone());
                e.doc
                    .insert("new_field".into(), Value::String(field.clone()));
                self.c.matches.push(e);
            }
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    /// A document whose terms are all known neither matches nor changes the state, so
    /// a window whose terms the server reports as all known needs no documents. Not
    /// with `alert_on_missing_field` (documents without the field match) nor composite
    /// fields (their parts are aggregated separately).
    fn term_gate(&self) -> Option<Vec<String>> {
        if self.alert_on_missing_field {
            return None;
        }
        self.fields
            .iter()
            .map(|f| match f.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            })
            .collect()
    }
    fn all_seen(&self, field: usize, values: &[String]) -> bool {
        self.seen
            .get(field)
            .is_some_and(|s| values.iter().all(|v| s.contains(v)))
    }
}

// ---- cardinality -------------------------------------------------------------------

struct CardinalityRule {
    c: Common,
    timeframe: i64,
    field: String,
    max: Option<f64>,
    min: Option<f64>,
    cache: BTreeMap<String, HashMap<String, i64>>,
    first_event: HashMap<String, i64>,
}

impl CardinalityRule {
    fn check(&mut self, key: &str, e: &Event, gc: bool) {
        let n = self.cache.get(key).map_or(0, HashMap::len) as f64;
        let first = self.first_event.get(key).copied().unwrap_or(e.ts);
        let elapsed = e.ts - first > self.timeframe;
        let over = self.max.is_some_and(|m| n > m);
        let under = self.min.is_some_and(|m| n < m) && elapsed;
        if over || under {
            if gc {
                // Outdated terms are only dropped in GC; run it before concluding.
                self.garbage_collect(e.ts);
                self.check(key, e, false);
            } else {
                self.first_event.remove(key);
                self.c.matches.push(e.clone());
            }
        }
    }
}

impl RuleType for CardinalityRule {
    fn add_data(&mut self, events: Vec<Event>) {
        for e in events {
            let key = self.c.key(&e.doc);
            self.cache.entry(key.clone()).or_default();
            self.first_event.entry(key.clone()).or_insert(e.ts);
            if let Some(v) = lookup_some(&e.doc, &self.field) {
                let v = py_str(v);
                if let Some(c) = self.cache.get_mut(&key) {
                    c.insert(v, e.ts);
                }
                self.check(&key, &e, true);
            }
        }
    }
    fn garbage_collect(&mut self, ts: i64) {
        let tf = self.timeframe;
        let keys: Vec<String> = self.cache.keys().cloned().collect();
        for key in keys {
            if let Some(terms) = self.cache.get_mut(&key) {
                terms.retain(|_, last| ts - *last <= tf);
            }
            if self.min.is_some() {
                let e = self.c.with_key(self.c.synthetic(ts), &key);
                self.check(&key, &e, false);
            }
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    /// With `max_cardinality` only (`min_cardinality` matches on too few values, which
    /// no count can rule out): a key's values within one timeframe are a subset of all
    /// keys' values there.
    fn gate(&self) -> Option<Gate> {
        match (self.max, self.min) {
            (Some(max), None) if max >= 0.0 => Some(Gate::Distinct {
                lookback: self.timeframe,
                field: self.field.clone(),
                max: max as u64,
            }),
            _ => None,
        }
    }
    fn match_str(&self, m: &Match) -> String {
        let start = pretty_ts(m.ts - self.timeframe, self.c.tz);
        let end = pretty_ts(m.ts, self.c.tz);
        match self.max {
            Some(max) => format!(
                "A maximum of {} unique {}(s) occurred since last alert or between {start} and {end}\n\n",
                max as i64, self.field
            ),
            None => format!(
                "Less than {} unique {}(s) occurred since last alert or between {start} and {end}\n\n",
                self.min.unwrap_or(0.0) as i64,
                self.field
            ),
        }
    }
}

// ---- metric_aggregation / percentage_match -----------------------------------------

/// The metric's value in an aggregation bucket (`percentiles` take their only value).
pub fn metric_value(spec: &MetricSpec, data: &Value) -> Option<f64> {
    let agg = data.get(&spec.metric_key)?;
    if spec.agg_type == "percentiles" {
        agg.get("values")?.as_object()?.values().next()?.as_f64()
    } else {
        agg.get("value")?.as_f64()
    }
}

/// Walks ElastAlert's aggregation payload shape: optional `bucket_aggs` (query_key
/// terms, nested for compound keys) and optional `interval_aggs` (bucket_interval).
fn walk_buckets(
    ts: i64,
    payload: &Value,
    qk: &mut Vec<String>,
    out: &mut Vec<(i64, Option<String>, Value)>,
) {
    if let Some(b) = payload.get("bucket_aggs") {
        for tb in b
            .get("buckets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            qk.push(tb.get("key").map(py_str).unwrap_or_default());
            walk_buckets(ts, tb, qk, out);
            qk.pop();
        }
    } else if let Some(iv) = payload.get("interval_aggs") {
        for ib in iv
            .get("buckets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let bts = ib
                .get("key_as_string")
                .and_then(Value::as_str)
                .and_then(cairn_core::time::parse_default)
                .or_else(|| ib.get("key").and_then(Value::as_i64).map(|ms| ms * 1000))
                .unwrap_or(ts);
            out.push((bts, (!qk.is_empty()).then(|| qk.join(",")), ib.clone()));
        }
    } else {
        out.push((ts, (!qk.is_empty()).then(|| qk.join(",")), payload.clone()));
    }
}

struct MetricAggregationRule {
    c: Common,
    spec: MetricSpec,
}

impl RuleType for MetricAggregationRule {
    fn add_aggregation(&mut self, ts: i64, payload: &Value) {
        let mut items = Vec::new();
        walk_buckets(ts, payload, &mut Vec::new(), &mut items);
        for (bts, qk, data) in items {
            let Some(v) = metric_value(&self.spec, &data) else {
                continue;
            };
            let crossed = self.spec.max_threshold.is_some_and(|m| v > m)
                || self.spec.min_threshold.is_some_and(|m| v < m);
            if !crossed {
                continue;
            }
            let mut e = self.c.synthetic(bts);
            e.doc.insert(self.spec.metric_key.clone(), json!(v));
            e.doc.insert("metric_agg_value".into(), json!(v));
            if let (Some(name), Some(qk)) = (&self.c.qk, qk) {
                insert_dotted(&mut e.doc, name, Value::String(qk));
            }
            self.c.matches.push(e);
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    fn match_str(&self, m: &Match) -> String {
        let v = m
            .doc
            .get(&self.spec.metric_key)
            .map(py_str)
            .unwrap_or_default();
        let opt = |o: Option<f64>| o.map(py_float_or_int).unwrap_or_else(|| "None".into());
        format!(
            "Threshold violation, {}:{} {} (min: {} max : {}) \n\n",
            self.spec.agg_type,
            self.spec.agg_key,
            v,
            opt(self.spec.min_threshold),
            opt(self.spec.max_threshold)
        )
    }
}

/// YAML `10` stays an int in Python, `10.5` a float.
fn py_float_or_int(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

struct PercentageMatchRule {
    c: Common,
    min: Option<f64>,
    max: Option<f64>,
    min_denominator: u64,
}

impl RuleType for PercentageMatchRule {
    fn add_aggregation(&mut self, ts: i64, payload: &Value) {
        let mut items = Vec::new();
        walk_buckets(ts, payload, &mut Vec::new(), &mut items);
        for (bts, qk, data) in items {
            let buckets = data.pointer("/percentage_match_aggs/buckets");
            let matched = buckets
                .and_then(|b| b.pointer("/match_bucket/doc_count"))
                .and_then(Value::as_u64);
            let other = buckets
                .and_then(|b| b.pointer("/_other_/doc_count"))
                .and_then(Value::as_u64);
            let (Some(matched), Some(other)) = (matched, other) else {
                continue;
            };
            let total = matched + other;
            if total == 0 || total < self.min_denominator {
                continue;
            }
            let pct = matched as f64 / total as f64 * 100.0;
            if self.max.is_some_and(|m| pct > m) || self.min.is_some_and(|m| pct < m) {
                let mut e = self.c.synthetic(bts);
                e.doc.insert("percentage".into(), json!(pct));
                e.doc.insert("denominator".into(), json!(total));
                if let (Some(name), Some(qk)) = (&self.c.qk, qk) {
                    insert_dotted(&mut e.doc, name, Value::String(qk));
                }
                self.c.matches.push(e);
            }
        }
    }
    fn take_matches(&mut self) -> Vec<Match> {
        self.c.take()
    }
    fn match_str(&self, m: &Match) -> String {
        let opt = |o: Option<f64>| o.map(py_float_or_int).unwrap_or_else(|| "None".into());
        format!(
            "Percentage violation, value: {} (min: {} max : {}) of {} items\n\n",
            m.doc.get("percentage").map(py_str).unwrap_or_default(),
            opt(self.min),
            opt(self.max),
            m.doc.get("denominator").map(py_str).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests;
