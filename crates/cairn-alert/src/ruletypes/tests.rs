//! Rule types on generated data with known answers, driven both directly (to pin
//! ElastAlert's window semantics) and through the runner over a small in-memory
//! Elasticsearch stand-in (filters evaluated by `cairn-query`, terms/metric/filters
//! aggregations computed here).

use std::collections::HashMap;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::*;
use crate::backend::{BoxFut, Es, Method, SearchBackend};
use crate::config::{parse_rule, Globals, Rule, MINUTE, SECOND};
use crate::runner::{RuleState, Runner};

fn t(s: &str) -> i64 {
    cairn_core::time::parse_default(s).expect("test timestamp")
}

fn rule(yaml: &str) -> Rule {
    parse_rule("test", yaml, None, &Globals::default()).expect("test rule")
}

fn ev(ts: &str, fields: Value) -> Event {
    let mut doc = fields.as_object().cloned().unwrap_or_default();
    doc.insert("@timestamp".into(), json!(ts));
    Event { ts: t(ts), doc }
}

/// An in-memory stand-in for the search API.
struct Fake {
    docs: Vec<Value>,
    kv: Mutex<HashMap<String, Value>>,
    /// Documents returned by searches so far (what a rule "pulled").
    pulled: std::sync::atomic::AtomicUsize,
}

impl Fake {
    fn new(docs: Vec<Value>) -> Self {
        Fake {
            docs,
            kv: Mutex::new(HashMap::new()),
            pulled: Default::default(),
        }
    }

    fn filter(&self, body: &Value) -> Vec<(usize, &Value)> {
        let q = body
            .get("query")
            .cloned()
            .unwrap_or(json!({"match_all": {}}));
        let q = cairn_query::dsl::parse(&q, &cairn_query::Limits::default()).expect("query parses");
        let ctx = cairn_query::EvalContext::new(0);
        self.docs
            .iter()
            .enumerate()
            .filter(|(_, d)| cairn_query::matches(&q, d, &ctx).unwrap_or(false))
            .collect()
    }
}

fn field<'a>(d: &'a Value, f: &str) -> Option<&'a Value> {
    d.as_object().and_then(|o| crate::value::lookup(o, f))
}

fn aggs(docs: &[&Value], spec: &Value) -> Value {
    let mut out = Map::new();
    for (name, a) in spec.as_object().into_iter().flatten() {
        let sub = a.get("aggs");
        let r = if let Some(terms) = a.get("terms") {
            let f = terms["field"].as_str().unwrap_or_default();
            let size = terms.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
            let mut groups: Vec<(Value, Vec<&Value>)> = Vec::new();
            for d in docs {
                if let Some(v) = field(d, f) {
                    match groups.iter_mut().find(|(k, _)| k == v) {
                        Some(g) => g.1.push(d),
                        None => groups.push((v.clone(), vec![d])),
                    }
                }
            }
            groups.sort_by(|a, b| {
                b.1.len()
                    .cmp(&a.1.len())
                    .then(a.0.to_string().cmp(&b.0.to_string()))
            });
            let buckets: Vec<Value> = groups
                .into_iter()
                .take(size)
                .map(|(k, ds)| {
                    let mut b = json!({"key": k, "doc_count": ds.len()});
                    if let Some(s) = sub {
                        if let Value::Object(inner) = aggs(&ds, s) {
                            b.as_object_mut().unwrap().extend(inner);
                        }
                    }
                    b
                })
                .collect();
            json!({"buckets": buckets})
        } else if let Some(filters) = a.get("filters") {
            let mut buckets = Map::new();
            let mut matched_any = vec![false; docs.len()];
            for (bname, q) in filters["filters"].as_object().into_iter().flatten() {
                let q = cairn_query::dsl::parse(q, &cairn_query::Limits::default()).unwrap();
                let ctx = cairn_query::EvalContext::new(0);
                let mut n = 0;
                for (i, d) in docs.iter().enumerate() {
                    if cairn_query::matches(&q, d, &ctx).unwrap_or(false) {
                        n += 1;
                        matched_any[i] = true;
                    }
                }
                buckets.insert(bname.clone(), json!({"doc_count": n}));
            }
            if filters.get("other_bucket") == Some(&json!(true)) {
                buckets.insert(
                    "_other_".into(),
                    json!({"doc_count": matched_any.iter().filter(|m| !**m).count()}),
                );
            }
            json!({"buckets": buckets})
        } else {
            let (kind, body) = a.as_object().and_then(|o| o.iter().next()).unwrap();
            let f = body["field"].as_str().unwrap_or_default();
            let vals: Vec<f64> = docs
                .iter()
                .filter_map(|d| field(d, f).and_then(Value::as_f64))
                .collect();
            let v = match kind.as_str() {
                "avg" if !vals.is_empty() => json!(vals.iter().sum::<f64>() / vals.len() as f64),
                "sum" => json!(vals.iter().sum::<f64>()),
                "max" => vals
                    .iter()
                    .cloned()
                    .reduce(f64::max)
                    .map_or(Value::Null, |v| json!(v)),
                "min" => vals
                    .iter()
                    .cloned()
                    .reduce(f64::min)
                    .map_or(Value::Null, |v| json!(v)),
                "value_count" => json!(vals.len()),
                "cardinality" => {
                    let mut s: Vec<String> = docs
                        .iter()
                        .filter_map(|d| field(d, f))
                        .map(|v| v.to_string())
                        .collect();
                    s.sort();
                    s.dedup();
                    json!(s.len())
                }
                _ => Value::Null,
            };
            json!({"value": v})
        };
        out.insert(name.clone(), r);
    }
    Value::Object(out)
}

impl SearchBackend for Fake {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a Value>,
        _u: &'a str,
    ) -> BoxFut<'a, crate::Result<(u16, Value)>> {
        Box::pin(async move {
            let p = path.split('?').next().unwrap_or("");
            let empty = json!({});
            let body = body.unwrap_or(&empty);
            if p.ends_with("/_count") {
                return Ok((200, json!({"count": self.filter(body).len()})));
            }
            if p.ends_with("/_search") {
                // As Elasticsearch answers a terms aggregation on a text field.
                if body.pointer("/aggs/values/terms/field") == Some(&json!("message")) {
                    return Ok((
                        400,
                        json!({"error": {"type": "illegal_argument_exception", "reason": "Fielddata is disabled on [message] in [logs]"}, "status": 400}),
                    ));
                }
                let mut hits = self.filter(body);
                hits.sort_by_key(|(_, d)| {
                    field(d, "@timestamp")
                        .and_then(|v| cairn_core::time::parse_value(v, None))
                        .unwrap_or(0)
                });
                let total = hits.len();
                let size = body.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
                let docs: Vec<&Value> = hits.iter().map(|(_, d)| *d).collect();
                self.pulled
                    .fetch_add(total.min(size), std::sync::atomic::Ordering::Relaxed);
                let mut res = json!({
                    "hits": {"total": {"value": total, "relation": "eq"}, "hits": hits.iter().take(size).map(|(i, d)| json!({"_id": format!("doc{i}"), "_index": "logs", "_source": d})).collect::<Vec<_>>()}
                });
                if let Some(a) = body.get("aggs") {
                    res["aggregations"] = aggs(&docs, a);
                }
                return Ok((200, res));
            }
            let mut kv = self.kv.lock();
            match method {
                Method::Get => Ok(match kv.get(p) {
                    Some(v) => (200, json!({"_source": v})),
                    None => (404, json!({})),
                }),
                Method::Put if p.contains("/_create/") => {
                    let key = p.replace("/_create/", "/_doc/");
                    match kv.entry(key) {
                        std::collections::hash_map::Entry::Occupied(_) => Ok((409, json!({}))),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(body.clone());
                            Ok((201, json!({})))
                        }
                    }
                }
                Method::Put => {
                    kv.insert(p.to_string(), body.clone());
                    Ok((200, json!({})))
                }
                Method::Delete => Ok((if kv.remove(p).is_some() { 200 } else { 404 }, json!({}))),
                Method::Post => Ok((400, json!({}))),
            }
        })
    }
}

fn docs_every(start: &str, step: i64, n: usize, fields: Value) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut d = fields.clone();
            d["@timestamp"] = json!(crate::value::iso(t(start) + i as i64 * step));
            d
        })
        .collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---- direct rule-type tests ---------------------------------------------------------

#[test]
fn frequency_counts_within_timeframe_per_query_key() {
    let r = rule("name: f\nindex: logs\ntype: frequency\nnum_events: 3\ntimeframe: {minutes: 5}\nquery_key: host\n");
    let mut rt = build(&r);
    rt.add_data(vec![
        ev("2024-01-01T10:00:00Z", json!({"host": "a"})),
        ev("2024-01-01T10:01:00Z", json!({"host": "b"})),
        ev("2024-01-01T10:02:00Z", json!({"host": "a"})),
        // Exactly one timeframe after the first a: the first falls out of the window.
        ev("2024-01-01T10:05:00Z", json!({"host": "a"})),
        ev("2024-01-01T10:06:00Z", json!({"host": "a"})),
        ev("2024-01-01T10:07:00Z", json!({"host": "b"})),
    ]);
    let m = rt.take_matches();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].doc["host"], "a");
    assert_eq!(m[0].ts, t("2024-01-01T10:06:00Z"));
    // The window is forgotten after a match: two more events are not enough.
    rt.add_data(vec![
        ev("2024-01-01T10:06:30Z", json!({"host": "a"})),
        ev("2024-01-01T10:06:40Z", json!({"host": "a"})),
    ]);
    assert!(rt.take_matches().is_empty());
    assert!(rt.match_str(&m[0]).starts_with(
        "At least 3 events occurred between 2024-01-01 10:01 UTC and 2024-01-01 10:06 UTC"
    ));
}

#[test]
fn frequency_reads_documents_only_when_a_match_is_possible() {
    // A trickle of one event every 3 minutes from 10:00 to 10:33 (never 5 within 10
    // minutes), then 10:34:30, 10:35 and 10:36: 10:35 is the fifth event within 10
    // minutes (10:27 to 10:35); the window then starts over.
    let mut docs = docs_every("2024-01-01T10:00:00Z", 3 * MINUTE, 12, json!({"host": "a"}));
    for ts in ["10:34:30", "10:35:00", "10:36:00"] {
        docs.push(json!({"@timestamp": format!("2024-01-01T{ts}Z"), "host": "a"}));
    }
    let yaml = "name: f\nindex: logs\ntype: frequency\nnum_events: 5\ntimeframe: {minutes: 10}\nbuffer_time: {minutes: 2}\nrealert: {minutes: 0}\n";
    // What reading every document gives (the reference).
    let mut rt = build(&rule(yaml));
    rt.add_data(
        docs.iter()
            .map(|d| ev(d["@timestamp"].as_str().unwrap(), d.clone()))
            .collect(),
    );
    let expected: Vec<i64> = rt.take_matches().iter().map(|m| m.ts).collect();
    assert_eq!(expected, vec![t("2024-01-01T10:35:00Z")]);

    let fake = Fake::new(docs.clone());
    let es = Es::new(&fake, "u");
    let mut runner = Runner::new(rule(yaml), RuleState::default());
    let mut got = Vec::new();
    let mut hits = 0;
    for minute in 1..=45 {
        let rep = block_on(runner.run(es, t("2024-01-01T10:00:00Z") + minute * MINUTE)).unwrap();
        hits += rep.hits;
        got.extend(rep.alerts.iter().map(|a| a.match_time));
    }
    assert_eq!(got, expected);
    // Every run still reports its hits: each document falls in two overlapping
    // 2-minute windows, but for 10:00, before the first run's window.
    assert_eq!(hits, 2 * docs.len() as u64 - 1);
    // Documents were read only once a match was possible: at 10:35 the four unread ones
    // still within 10 minutes (10:24 to 10:33) and the two new ones, then the windows
    // up to 10:37 that the count still let through (3 + 1). Reading every window
    // returns 29.
    let pulled = fake.pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pulled, 10);
}

#[test]
fn frequency_with_count_query() {
    let r = rule("name: f\nindex: logs\ntype: frequency\nnum_events: 10\ntimeframe: {minutes: 3}\nuse_count_query: true\n");
    let mut rt = build(&r);
    rt.add_count(t("2024-01-01T10:01:00Z"), 4);
    rt.add_count(t("2024-01-01T10:02:00Z"), 5);
    assert!(rt.take_matches().is_empty());
    // 10:01..10:04 spans exactly the timeframe: the 10:01 count drops out (5 + 1 < 10).
    rt.add_count(t("2024-01-01T10:04:00Z"), 1);
    assert!(rt.take_matches().is_empty());
    rt.add_count(t("2024-01-01T10:05:00Z"), 4);
    assert!(rt.take_matches().is_empty());
    rt.add_count(t("2024-01-01T10:06:00Z"), 9);
    assert_eq!(rt.take_matches().len(), 1);
}

#[test]
fn flatline_fires_until_threshold_is_met_again_and_forget_keys() {
    let r = rule("name: f\nindex: logs\ntype: flatline\nthreshold: 3\ntimeframe: {minutes: 10}\n");
    let mut rt = build(&r);
    // Steady traffic: 1 event a minute for 15 minutes, checked every minute.
    for i in 0..15 {
        let ts = t("2024-01-01T10:00:00Z") + i * MINUTE;
        rt.add_data(vec![Event {
            ts,
            doc: json!({"@timestamp": crate::value::iso(ts)})
                .as_object()
                .cloned()
                .unwrap(),
        }]);
        rt.garbage_collect(ts);
    }
    assert!(rt.take_matches().is_empty());
    // Traffic stops at 10:14; at 10:22 the window drops 10:12 (a span of exactly the
    // timeframe is too long), leaving 2 events: under the threshold.
    let mut fired = Vec::new();
    for i in 15..30 {
        let ts = t("2024-01-01T10:00:00Z") + i * MINUTE;
        rt.garbage_collect(ts);
        fired.extend(
            rt.take_matches()
                .into_iter()
                .map(|m| (m.ts, m.doc["count"].clone())),
        );
    }
    assert_eq!(
        fired.first().cloned(),
        Some((t("2024-01-01T10:22:00Z"), json!(2))),
        "{fired:?}"
    );
    // Keeps firing each run while the condition holds.
    assert!(fired.len() >= 5, "{fired:?}");

    let r = rule("name: f\nindex: logs\ntype: flatline\nthreshold: 1\ntimeframe: {minutes: 5}\nquery_key: host\nforget_keys: true\n");
    let mut rt = build(&r);
    rt.add_data(vec![ev("2024-01-01T10:00:00Z", json!({"host": "a"}))]);
    for i in 1..20 {
        rt.garbage_collect(t("2024-01-01T10:00:00Z") + i * MINUTE);
    }
    let m = rt.take_matches();
    assert_eq!(
        m.len(),
        1,
        "forget_keys: one alert, then the key is forgotten: {m:?}"
    );
    assert_eq!(m[0].doc["key"], "a");
    assert_eq!(m[0].doc["host"], "a");
}

#[test]
fn spike_compares_reference_and_current_windows() {
    let r = rule("name: s\nindex: logs\ntype: spike\nspike_height: 3\nspike_type: up\ntimeframe: {minutes: 30}\nthreshold_cur: 5\n");
    let mut rt = build(&r);
    let base = t("2024-01-01T10:00:00Z");
    // 1 event every 10 minutes for 2 hours: steady, no spike.
    for i in 0..12 {
        let ts = base + i * 10 * MINUTE;
        rt.add_data(vec![Event {
            ts,
            doc: Map::new(),
        }]);
        rt.garbage_collect(ts);
    }
    assert!(rt.take_matches().is_empty());
    // Then 12 events within 6 minutes.
    let burst = base + 120 * MINUTE;
    for i in 0..12 {
        rt.add_data(vec![Event {
            ts: burst + i * 30 * SECOND,
            doc: Map::new(),
        }]);
    }
    let m = rt.take_matches();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].doc["reference_count"], json!(3));
    assert!(m[0].doc["spike_count"].as_i64().unwrap() >= 9);
    assert!(rt
        .match_str(&m[0])
        .contains("Preceding that time, there were only 3 events within 0:30:00"));
}

#[test]
fn blacklist_whitelist_change() {
    let mut rt = build(&rule(
        "name: b\nindex: l\ntype: blacklist\ncompare_key: user\nblacklist: [root, admin]\n",
    ));
    rt.add_data(vec![
        ev("2024-01-01T10:00:00Z", json!({"user": "root"})),
        ev("2024-01-01T10:00:01Z", json!({"user": "bob"})),
    ]);
    assert_eq!(rt.take_matches().len(), 1);

    let mut rt = build(&rule("name: w\nindex: l\ntype: whitelist\ncompare_key: user\nwhitelist: [bob]\nignore_null: true\n"));
    rt.add_data(vec![
        ev("2024-01-01T10:00:00Z", json!({"user": "root"})),
        ev("2024-01-01T10:00:01Z", json!({"user": "bob"})),
        ev("2024-01-01T10:00:02Z", json!({})),
    ]);
    assert_eq!(rt.take_matches().len(), 1);

    let mut rt = build(&rule("name: c\nindex: l\ntype: change\ncompare_key: country\nquery_key: user\nignore_null: true\ntimeframe: {hours: 1}\n"));
    rt.add_data(vec![
        ev(
            "2024-01-01T10:00:00Z",
            json!({"user": "u1", "country": "FR"}),
        ),
        ev(
            "2024-01-01T10:10:00Z",
            json!({"user": "u2", "country": "DE"}),
        ),
        ev(
            "2024-01-01T10:20:00Z",
            json!({"user": "u1", "country": "US"}),
        ),
        ev(
            "2024-01-01T13:00:00Z",
            json!({"user": "u2", "country": "JP"}),
        ), // beyond timeframe
        ev("2024-01-01T13:10:00Z", json!({"user": "u1"})), // null ignored
    ]);
    let m = rt.take_matches();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].doc["old_value"], json!(["FR"]));
    assert_eq!(m[0].doc["new_value"], json!(["US"]));
}

#[test]
fn cardinality_max_and_min() {
    let mut rt = build(&rule("name: c\nindex: l\ntype: cardinality\ncardinality_field: user\nmax_cardinality: 2\ntimeframe: {hours: 1}\nquery_key: ip\n"));
    rt.add_data(vec![
        ev("2024-01-01T10:00:00Z", json!({"ip": "1", "user": "a"})),
        ev("2024-01-01T10:01:00Z", json!({"ip": "1", "user": "b"})),
        ev("2024-01-01T10:02:00Z", json!({"ip": "2", "user": "c"})),
        ev("2024-01-01T10:03:00Z", json!({"ip": "1", "user": "a"})),
        ev("2024-01-01T10:04:00Z", json!({"ip": "1", "user": "c"})),
    ]);
    let m = rt.take_matches();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].doc["ip"], "1");
    assert_eq!(m[0].ts, t("2024-01-01T10:04:00Z"));

    let mut rt = build(&rule("name: c\nindex: l\ntype: cardinality\ncardinality_field: user\nmin_cardinality: 2\ntimeframe: {minutes: 30}\n"));
    rt.add_data(vec![ev("2024-01-01T10:00:00Z", json!({"user": "a"}))]);
    rt.garbage_collect(t("2024-01-01T10:20:00Z"));
    assert!(rt.take_matches().is_empty());
    rt.garbage_collect(t("2024-01-01T10:31:00Z"));
    assert_eq!(rt.take_matches().len(), 1);
}

#[test]
fn spike_aggregation_on_metric_values() {
    let r = rule("name: s\nindex: l\ntype: spike_aggregation\nmetric_agg_key: latency\nmetric_agg_type: avg\nspike_height: 2\nspike_type: up\ntimeframe: {minutes: 10}\n");
    let mut rt = build(&r);
    let base = t("2024-01-01T10:00:00Z");
    for i in 0..6 {
        rt.add_aggregation(
            base + i * 5 * MINUTE,
            &json!({"metric_latency_avg": {"value": 100.0}}),
        );
    }
    assert!(rt.take_matches().is_empty());
    rt.add_aggregation(
        base + 30 * MINUTE,
        &json!({"metric_latency_avg": {"value": 500.0}}),
    );
    let m = rt.take_matches();
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        rt.match_str(&m[0])
            .starts_with("An abnormal avg of latency (300.0)"),
        "{}",
        rt.match_str(&m[0])
    );
}

// ---- through the runner -------------------------------------------------------------

#[test]
fn any_rule_realert_per_query_key() {
    let mut docs = docs_every(
        "2024-01-01T10:00:00Z",
        10 * SECOND,
        3,
        json!({"host": "a", "level": "error"}),
    );
    docs.extend(docs_every(
        "2024-01-01T10:00:05Z",
        10 * SECOND,
        2,
        json!({"host": "b", "level": "error"}),
    ));
    docs.extend(docs_every(
        "2024-01-01T10:00:07Z",
        10 * SECOND,
        2,
        json!({"host": "c", "level": "info"}),
    ));
    docs.extend(docs_every(
        "2024-01-01T10:20:00Z",
        10 * SECOND,
        1,
        json!({"host": "a", "level": "error"}),
    ));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: errs\nindex: logs\ntype: any\nquery_key: host\nrealert: {minutes: 30}\nfilter:\n- kql: 'level:error'\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    let subjects: Vec<&str> = rep.alerts.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec!["ElastAlert: errs - a", "ElastAlert: errs - b"]
    );
    assert_eq!(rep.silenced, 3);
    // 10:20 is inside the 30-minute realert of host a.
    let rep = block_on(runner.run(es, t("2024-01-01T10:21:00Z"))).unwrap();
    assert!(rep.alerts.is_empty());
    assert_eq!(rep.silenced, 1);
    // The body lists every field sorted, with ElastAlert's extras.
    let r = rule(
        "name: errs\nindex: logs\ntype: any\nfilter:\n- kql: 'host:b'\nrealert: {minutes: 0}\n",
    );
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 2);
    assert_eq!(
        rep.alerts[0].body,
        "errs\n\n@timestamp: 2024-01-01T10:00:05Z\n_id: doc3\n_index: logs\nhost: b\nlevel: error\nnum_hits: 2\nnum_matches: 2\n"
    );
}

#[test]
fn exponential_realert_doubles_then_caps() {
    let docs = docs_every("2024-01-01T10:00:30Z", MINUTE, 40, json!({"msg": "x"}));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: e\nindex: logs\ntype: any\nrealert: {minutes: 1}\nexponential_realert: {minutes: 10}\nbuffer_time: {minutes: 1}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let mut alert_minutes = Vec::new();
    for i in 1..40 {
        let now = t("2024-01-01T10:00:00Z") + i * MINUTE + 45 * SECOND;
        let rep = block_on(runner.run(es, now)).unwrap();
        if !rep.alerts.is_empty() {
            alert_minutes.push(i);
        }
    }
    // Waits of 1, 2, 4, 8 minutes, then capped at exponential_realert (10).
    assert_eq!(
        alert_minutes,
        vec![1, 2, 4, 8, 16, 26, 36],
        "{alert_minutes:?}"
    );
}

#[test]
fn aggregation_sends_one_summary_alert() {
    let mut docs = docs_every(
        "2024-01-01T10:00:00Z",
        10 * SECOND,
        2,
        json!({"host": "web-1", "status": 500}),
    );
    docs.extend(docs_every(
        "2024-01-01T10:00:05Z",
        10 * SECOND,
        1,
        json!({"host": "web-2", "status": 500}),
    ));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule(
        "name: agg\nindex: logs\ntype: any\nrealert: {minutes: 0}\naggregation: {minutes: 10}\nsummary_table_fields: [host]\nalert_text_type: aggregation_summary_only\n",
    );
    let mut runner = Runner::new(r, RuleState::default());
    let now = t("2024-01-01T10:01:00Z");
    let rep = block_on(runner.run(es, now)).unwrap();
    assert_eq!(rep.matches, 3);
    assert!(rep.alerts.is_empty());
    assert!(runner.due_aggregates(now + 9 * MINUTE).is_empty());
    let due = runner.due_aggregates(now + 10 * MINUTE);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].matches.len(), 3);
    assert_eq!(
        due[0].body,
        "Aggregation resulted in the following data for summary_table_fields ==> ['host', 'count']:\n\n\
+-------+-------+\n| host  | count |\n+=======+=======+\n| web-1 | 2     |\n+-------+-------+\n| web-2 | 1     |\n+-------+-------+\n\n"
    );
}

#[test]
fn metric_aggregation_and_percentage_match_use_server_aggregations() {
    let mut docs = docs_every(
        "2024-01-01T10:00:00Z",
        10 * SECOND,
        6,
        json!({"host": "a", "latency": 50, "status": 200}),
    );
    docs.extend(docs_every(
        "2024-01-01T10:00:00Z",
        10 * SECOND,
        4,
        json!({"host": "b", "latency": 300, "status": 500}),
    ));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: lat\nindex: logs\ntype: metric_aggregation\nmetric_agg_key: latency\nmetric_agg_type: avg\nmax_threshold: 100\nquery_key: host\nbuffer_time: {minutes: 5}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:03:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1);
    assert_eq!(rep.alerts[0].query_key.as_deref(), Some("b"));
    assert!(
        rep.alerts[0]
            .body
            .contains("Threshold violation, avg:latency 300.0 (min: None max : 100)"),
        "{}",
        rep.alerts[0].body
    );

    let r = rule("name: pct\nindex: logs\ntype: percentage_match\nmatch_bucket_filter:\n- term: {status: 500}\nmax_percentage: 30\nbuffer_time: {minutes: 5}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:03:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1);
    assert!(
        rep.alerts[0]
            .body
            .contains("Percentage violation, value: 40.0 (min: None max : 30) of 10 items"),
        "{}",
        rep.alerts[0].body
    );
}

#[test]
fn new_term_knows_terms_from_before_the_first_run() {
    let mut docs = docs_every("2023-12-20T10:00:00Z", MINUTE, 3, json!({"user": "alice"}));
    docs.extend(docs_every(
        "2024-01-01T10:00:10Z",
        10 * SECOND,
        2,
        json!({"user": "alice"}),
    ));
    docs.extend(docs_every(
        "2024-01-01T10:00:15Z",
        10 * SECOND,
        2,
        json!({"user": "mallory"}),
    ));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: nt\nindex: logs\ntype: new_term\nfields: [user]\nrealert: {minutes: 0}\nbuffer_time: {minutes: 5}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1, "{:?}", rep.alerts);
    assert_eq!(rep.alerts[0].matches[0]["user"], "mallory");
    assert_eq!(rep.alerts[0].matches[0]["new_field"], "user");
}

#[test]
fn new_term_reads_documents_only_for_windows_with_a_new_term() {
    // Known users all along; one new user at 10:20; an array value at 10:30 (one term
    // in ElastAlert's sense, which the terms aggregation cannot vouch for).
    let mut docs = docs_every("2023-12-31T10:00:00Z", MINUTE, 2, json!({"user": "alice"}));
    docs.extend(docs_every(
        "2023-12-31T11:00:00Z",
        MINUTE,
        2,
        json!({"user": "bob"}),
    ));
    for m in 0..40 {
        let user = if m % 2 == 0 { "alice" } else { "bob" };
        docs.push(json!({"@timestamp": format!("2024-01-01T10:{m:02}:30Z"), "user": user}));
    }
    docs.push(json!({"@timestamp": "2024-01-01T10:20:40Z", "user": "mallory"}));
    docs.push(json!({"@timestamp": "2024-01-01T10:30:40Z", "user": ["alice", "bob"]}));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: nt\nindex: logs\ntype: new_term\nfields: [user]\nrealert: {minutes: 0}\nbuffer_time: {minutes: 1}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let mut users = Vec::new();
    for minute in 1..=40 {
        let rep = block_on(runner.run(es, t("2024-01-01T10:00:00Z") + minute * MINUTE)).unwrap();
        users.extend(rep.alerts.iter().map(|a| a.matches[0]["user"].clone()));
    }
    assert_eq!(users, vec![json!("mallory"), json!(["alice", "bob"])]);
    // Documents were read for the two windows with something unknown only.
    let pulled = fake.pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pulled, 4, "pulled {pulled} documents");
}

#[test]
fn cardinality_reads_documents_only_when_too_many_values_are_possible() {
    // Two users alternate every 2 minutes (never more than 3 distinct in 10 minutes);
    // carol at 10:26:30 makes three; dave at 10:29:30 makes four within 10 minutes, and
    // every event matches again until carol leaves the timeframe after 10:36.
    let mut docs = Vec::new();
    for m in (0..40).step_by(2) {
        let user = if m % 4 == 0 { "alice" } else { "bob" };
        docs.push(json!({"@timestamp": format!("2024-01-01T10:{m:02}:00Z"), "user": user}));
    }
    docs.push(json!({"@timestamp": "2024-01-01T10:26:30Z", "user": "carol"}));
    docs.push(json!({"@timestamp": "2024-01-01T10:29:30Z", "user": "dave"}));
    let yaml = "name: c\nindex: logs\ntype: cardinality\ncardinality_field: user\nmax_cardinality: 3\ntimeframe: {minutes: 10}\nbuffer_time: {minutes: 2}\nrealert: {minutes: 0}\n";
    let mut sorted = docs.clone();
    sorted.sort_by(|a, b| a["@timestamp"].as_str().cmp(&b["@timestamp"].as_str()));
    let mut rt = build(&rule(yaml));
    rt.add_data(
        sorted
            .iter()
            .map(|d| ev(d["@timestamp"].as_str().unwrap(), d.clone()))
            .collect(),
    );
    let expected: Vec<i64> = rt.take_matches().iter().map(|m| m.ts).collect();
    let at = |hms: &str| t(&format!("2024-01-01T{hms}Z"));
    assert_eq!(
        expected,
        vec![
            at("10:29:30"),
            at("10:30:00"),
            at("10:32:00"),
            at("10:34:00"),
            at("10:36:00")
        ]
    );

    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let mut runner = Runner::new(rule(yaml), RuleState::default());
    let mut got = Vec::new();
    for minute in 1..=40 {
        let rep = block_on(runner.run(es, t("2024-01-01T10:00:00Z") + minute * MINUTE)).unwrap();
        got.extend(rep.alerts.iter().map(|a| a.match_time));
    }
    assert_eq!(got, expected);
    // Read only from the 10:30 run, when four users fall within the gate's 12 minutes:
    // the 6 unread documents of the timeframe before its window, its 2, then each
    // window's while carol stays within the gate (9) - 17 instead of every document
    // twice (43).
    let pulled = fake.pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(pulled, 17);

    // A field the server cannot aggregate (a text field): the gate stands aside and the
    // documents are read, as without it.
    let docs: Vec<Value> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"@timestamp": format!("2024-01-01T10:00:{:02}Z", 10 * i + 5), "message": m}))
        .collect();
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: c\nindex: logs\ntype: cardinality\ncardinality_field: message\nmax_cardinality: 2\ntimeframe: {minutes: 10}\nrealert: {minutes: 0}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1, "{:?}", rep.alerts);
    assert_eq!(rep.alerts[0].matches[0]["message"], "c");
}

#[test]
fn time_zones_offsets_index_names_and_pretty_times() {
    // 11:55+02:00 is 09:55Z: inside a window ending 10:00Z; 12:05+02:00 is not.
    let docs = vec![
        json!({"@timestamp": "2024-01-01T11:55:00+02:00", "n": 1}),
        json!({"@timestamp": "2024-01-01T12:05:00+02:00", "n": 2}),
    ];
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: tz\nindex: logs\ntype: frequency\nnum_events: 1\ntimeframe: {minutes: 5}\nquery_timezone: Europe/Paris\nbuffer_time: {minutes: 10}\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:00:00Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1);
    assert_eq!(rep.alerts[0].matches[0]["n"], 1);
    // Times in the text are in the rule's time zone.
    assert!(
        rep.alerts[0]
            .body
            .contains("between 2024-01-01 10:50 CET and 2024-01-01 10:55 CET"),
        "{}",
        rep.alerts[0].body
    );

    // strftime index names follow query_timezone: 23:30Z is already Jan 2 in Tokyo.
    let r = rule("name: ix\nindex: logs-%Y.%m.%d\nuse_strftime_index: true\ntype: any\nquery_timezone: Asia/Tokyo\n");
    let runner = Runner::new(r, RuleState::default());
    assert_eq!(
        runner.index(t("2024-01-01T14:00:00Z"), t("2024-01-01T16:00:00Z")),
        "logs-2024.01.01,logs-2024.01.02"
    );
}

#[test]
fn resumed_runs_produce_the_same_idempotency_keys() {
    let docs = docs_every("2024-01-01T10:00:00Z", 10 * SECOND, 4, json!({"host": "a"}));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let yaml = "name: idem\nindex: logs\ntype: any\nrealert: {minutes: 0}\n";
    let mut a = Runner::new(rule(yaml), RuleState::default());
    let ra = block_on(a.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    // A restarted engine re-runs the window from the saved state with a later clock.
    let saved = RuleState {
        previous_endtime: Some(t("2024-01-01T09:59:00Z")),
        ..Default::default()
    };
    let mut b = Runner::new(rule(yaml), saved);
    let rb = block_on(b.run(es, t("2024-01-01T10:02:30Z"))).unwrap();
    let ids =
        |r: &crate::runner::RunReport| r.alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&ra).len(), 4);
    assert_eq!(ids(&ra), ids(&rb));
}

#[test]
fn alert_text_args_and_jinja() {
    let fake = Fake::new(docs_every(
        "2024-01-01T10:00:00Z",
        SECOND,
        1,
        json!({"host": "web-1", "code": 503}),
    ));
    let es = Es::new(&fake, "u");
    let r = rule("name: txt\nindex: logs\ntype: any\nalert_subject: 'Down: {0}'\nalert_subject_args: [host]\nalert_text: '{0} returned {1} ({2})'\nalert_text_args: [host, code, missing]\nalert_text_type: alert_text_only\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    assert_eq!(rep.alerts[0].subject, "Down: web-1");
    assert_eq!(
        rep.alerts[0].body,
        "web-1 returned 503 (<MISSING VALUE>)\n\n"
    );
    let r = rule("name: j\nindex: logs\ntype: any\nalert_text: '{{ host }} {% if code >= 500 %}is failing{% endif %} ({{ _data.code }})'\nalert_text_type: alert_text_jinja\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:01:00Z"))).unwrap();
    assert_eq!(rep.alerts[0].body, "web-1 is failing (503)\n\n");
}

#[test]
fn notify_on_recovery_sends_a_resolved_alert_once() {
    let mut docs = docs_every(
        "2024-01-01T10:00:00Z",
        30 * SECOND,
        8,
        json!({"host": "a", "latency": 400}),
    );
    docs.extend(docs_every(
        "2024-01-01T10:05:00Z",
        30 * SECOND,
        8,
        json!({"host": "a", "latency": 20}),
    ));
    let fake = Fake::new(docs);
    let es = Es::new(&fake, "u");
    let r = rule("name: lat\nindex: logs\ntype: metric_aggregation\nmetric_agg_key: latency\nmetric_agg_type: avg\nmax_threshold: 100\nquery_key: host\nbuffer_time: {minutes: 5}\nrealert: {minutes: 0}\nnotify_on_recovery: true\n");
    let mut runner = Runner::new(r, RuleState::default());
    let rep = block_on(runner.run(es, t("2024-01-01T10:04:59Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1);
    assert!(!rep.alerts[0].recovery);
    let rep = block_on(runner.run(es, t("2024-01-01T10:09:59Z"))).unwrap();
    assert_eq!(rep.alerts.len(), 1, "{:?}", rep.alerts);
    assert!(rep.alerts[0].recovery);
    assert_eq!(rep.alerts[0].subject, "RESOLVED: lat - a");
    let rep = block_on(runner.run(es, t("2024-01-01T10:14:59Z"))).unwrap();
    assert!(rep.alerts.is_empty());
}
