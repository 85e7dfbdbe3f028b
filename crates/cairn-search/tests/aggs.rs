#![allow(clippy::result_large_err)]
//! Aggregations over a real store: generated documents over three days (three
//! partitions), every answer computed independently with plain loops.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cairn_search::aggs::{self, AggContext, AggTarget};
use cairn_search::compile::Compiler;
use cairn_store::{Refresh, Store, StoreConfig, WriteKind, WriteRequest};
use serde_json::{json, Value};

const DAY: i64 = 86_400_000;
/// 2024-01-30T00:00:00Z
const BASE: i64 = 1_706_572_800_000;
const N: usize = 900;
const LEVELS: [&str; 4] = ["info", "warn", "error", "debug"];

#[derive(Clone, Debug)]
struct Doc {
    ts: i64,
    level: &'static str,
    service: String,
    status: i64,
    dur: f64,
    tags: Vec<String>,
    user: Option<String>,
}

fn gen() -> Vec<Doc> {
    let mut x: u64 = 42;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as i64
    };
    (0..N)
        .map(|i| {
            let r = next();
            let ts = BASE + (i as i64) * (3 * DAY / N as i64) + r % 60_000;
            let level = LEVELS[(next() % 10).min(3) as usize % 4];
            let service = format!("svc-{}", next() % 7);
            let status = [200, 200, 200, 404, 500][(next() % 5) as usize];
            let dur = (next() % 10_000) as f64 / 10.0;
            let tags: Vec<String> = match next() % 3 {
                0 => vec![],
                1 => vec![format!("t{}", next() % 4)],
                _ => {
                    let a = next() % 4;
                    let b = (a + 1 + next() % 3) % 4;
                    vec![format!("t{a}"), format!("t{b}")]
                }
            };
            let user = if next() % 4 == 0 {
                None
            } else {
                Some(format!("u{}", next() % 250))
            };
            Doc {
                ts,
                level,
                service,
                status,
                dur,
                tags,
                user,
            }
        })
        .collect()
}

fn iso(ms: i64) -> String {
    // Days since epoch to civil date (UTC).
    let days = ms.div_euclid(DAY);
    let tod = ms.rem_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        tod / 3_600_000,
        tod / 60_000 % 60,
        tod / 1000 % 60,
        tod % 1000
    )
}

fn to_json(d: &Doc, i: usize) -> Value {
    let mut v = json!({
        "@timestamp": iso(d.ts),
        "log": {"level": d.level},
        "service": d.service,
        "http": {"status": d.status},
        "dur": d.dur,
        "message": format!("request {i} done"),
        "n": i,
    });
    if !d.tags.is_empty() {
        v["tags"] = json!(d.tags);
    }
    if let Some(u) = &d.user {
        v["user"] = json!(u);
    }
    v
}

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    docs: Vec<Doc>,
}

async fn setup() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = tokio::task::block_in_place(|| Store::open(StoreConfig::new(dir.path())))
        .expect("open store");
    let docs = gen();
    // A few bulks so partitions get more than one segment.
    for chunk in docs.iter().enumerate().collect::<Vec<_>>().chunks(300) {
        let reqs: Vec<WriteRequest> = chunk
            .iter()
            .map(|(i, d)| WriteRequest {
                kind: WriteKind::Index,
                index: "logs".into(),
                id: Some(format!("d{i}")),
                source: Some(Ok(to_json(d, *i).as_object().cloned().unwrap_or_default())),
                raw: None,
            })
            .collect();
        let res = store.bulk(reqs, Refresh::True).await;
        assert!(res.iter().all(|r| r.error.is_none()), "bulk failed");
    }
    Env {
        _dir: dir,
        store,
        docs,
    }
}

impl Env {
    fn run_with(&self, req: Value, ctx: AggContext) -> Result<Value, cairn_core::EsError> {
        let parsed = aggs::parse(&req)?;
        let h = self.store.index("logs").expect("index");
        let mapping = h.mapping();
        let parts = h.partitions_newest_first();
        assert!(
            parts.len() >= 3,
            "expected 3+ partitions, got {}",
            parts.len()
        );
        let searchers: Vec<tantivy::Searcher> = parts.iter().map(|p| p.reader.searcher()).collect();
        let c = Compiler {
            mapping: &mapping,
            fields: &parts[0].fields,
            now_millis: ctx.now_millis,
        };
        let q = c.compile(&cairn_query::Query::match_all())?;
        let targets: Vec<AggTarget<'_>> = parts
            .iter()
            .zip(&searchers)
            .map(|(p, s)| AggTarget {
                index: "logs",
                mapping: &mapping,
                fields: &p.fields,
                searcher: s,
                query: q.as_ref(),
            })
            .collect();
        aggs::run(&parsed, &targets, &ctx).map(|(v, _)| v)
    }

    fn run(&self, req: Value) -> Value {
        self.run_with(
            req,
            AggContext {
                now_millis: BASE + 3 * DAY,
                max_buckets: 65_536,
                deadline: None,
            },
        )
        .unwrap_or_else(|e| panic!("aggs failed: {e:?}"))
    }

    fn shutdown(self) {
        tokio::task::block_in_place(|| self.store.shutdown());
    }
}

fn count_by<K: Ord, F: Fn(&Doc) -> Vec<K>>(docs: &[Doc], f: F) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for d in docs {
        let mut ks = f(d);
        ks.sort();
        ks.dedup();
        for k in ks {
            *m.entry(k).or_insert(0) += 1;
        }
    }
    m
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_and_nesting() {
    let env = setup().await;
    let docs = &env.docs;
    // Plain terms, all buckets, with a nested avg and a nested terms.
    let r = env.run(json!({
        "svc": {"terms": {"field": "service", "size": 20},
                "aggs": {"d": {"avg": {"field": "dur"}},
                         "lv": {"terms": {"field": "log.level"}}}}
    }));
    let want = count_by(docs, |d| vec![d.service.clone()]);
    let b = r["svc"]["buckets"].as_array().expect("buckets");
    assert_eq!(b.len(), want.len());
    assert_eq!(r["svc"]["sum_other_doc_count"], 0);
    assert_eq!(r["svc"]["doc_count_error_upper_bound"], 0);
    let mut prev = u64::MAX;
    for bk in b {
        let k = bk["key"].as_str().expect("key");
        let n = bk["doc_count"].as_u64().expect("count");
        assert_eq!(n, want[k], "{k}");
        assert!(n <= prev);
        prev = n;
        let sel: Vec<&Doc> = docs.iter().filter(|d| d.service == k).collect();
        let avg = sel.iter().map(|d| d.dur).sum::<f64>() / sel.len() as f64;
        assert!(close(bk["d"]["value"].as_f64().unwrap_or(f64::NAN), avg));
        let lv = count_by(&sel.iter().map(|d| (*d).clone()).collect::<Vec<_>>(), |d| {
            vec![d.level]
        });
        for lb in bk["lv"]["buckets"].as_array().expect("lv") {
            assert_eq!(
                lb["doc_count"].as_u64(),
                Some(lv[lb["key"].as_str().unwrap_or("")])
            );
        }
    }
    // size 2: other count; order by key; multi-valued; missing; include/exclude.
    let r = env.run(json!({
        "top2": {"terms": {"field": "service", "size": 2}},
        "bykey": {"terms": {"field": "service", "order": {"_key": "desc"}, "size": 3}},
        "tags": {"terms": {"field": "tags", "missing": "none"}},
        "inc": {"terms": {"field": "service", "include": "svc-[0-2]", "exclude": ["svc-1"]}},
        "st": {"terms": {"field": "http.status", "order": {"d": "desc"}}, "aggs": {"d": {"max": {"field": "dur"}}}},
        "kw": {"terms": {"field": "service.keyword", "size": 1}}
    }));
    let top: u64 = r["top2"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["doc_count"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(
        top + r["top2"]["sum_other_doc_count"].as_u64().unwrap_or(0),
        N as u64
    );
    let keys: Vec<&str> = r["bykey"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, vec!["svc-6", "svc-5", "svc-4"]);
    let tags = count_by(docs, |d| {
        if d.tags.is_empty() {
            vec!["none".to_string()]
        } else {
            d.tags.clone()
        }
    });
    for b in r["tags"]["buckets"].as_array().expect("tags") {
        assert_eq!(
            b["doc_count"].as_u64(),
            Some(tags[b["key"].as_str().unwrap_or("")])
        );
    }
    let inc: Vec<&str> = r["inc"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["key"].as_str()).collect())
        .unwrap_or_default();
    let mut inc_sorted = inc.clone();
    inc_sorted.sort();
    assert_eq!(inc_sorted, vec!["svc-0", "svc-2"]);
    let st: Vec<f64> = r["st"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["d"]["value"].as_f64()).collect())
        .unwrap_or_default();
    assert_eq!(st.len(), 3);
    assert!(st.windows(2).all(|w| w[0] >= w[1]));
    assert!(r["st"]["buckets"][0]["key"].is_i64());
    assert_eq!(r["kw"]["buckets"].as_array().map(Vec::len), Some(1));
    env.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics() {
    let env = setup().await;
    let docs = &env.docs;
    let r = env.run(json!({
        "avg": {"avg": {"field": "dur"}},
        "sum": {"sum": {"field": "dur"}},
        "min": {"min": {"field": "dur"}},
        "max": {"max": {"field": "dur"}},
        "st": {"stats": {"field": "http.status"}},
        "ex": {"extended_stats": {"field": "dur"}},
        "vc": {"value_count": {"field": "tags"}},
        "card": {"cardinality": {"field": "user"}},
        "card_hll": {"cardinality": {"field": "n", "precision_threshold": 100}},
        "pct": {"percentiles": {"field": "dur", "percents": [50, 95, 99.9]}},
        "pct_list": {"percentiles": {"field": "dur", "percents": [50], "keyed": false}},
        "tmax": {"max": {"field": "@timestamp"}},
        "none": {"avg": {"field": "no_such_field"}}
    }));
    let durs: Vec<f64> = docs.iter().map(|d| d.dur).collect();
    let n = durs.len() as f64;
    let sum: f64 = durs.iter().sum();
    let mn = durs.iter().cloned().fold(f64::INFINITY, f64::min);
    let mx = durs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(close(r["avg"]["value"].as_f64().unwrap_or(0.0), sum / n));
    assert!(close(r["sum"]["value"].as_f64().unwrap_or(0.0), sum));
    assert_eq!(r["min"]["value"].as_f64(), Some(mn));
    assert_eq!(r["max"]["value"].as_f64(), Some(mx));
    let sts: Vec<f64> = docs.iter().map(|d| d.status as f64).collect();
    assert_eq!(r["st"]["count"], N as u64);
    assert!(close(
        r["st"]["sum"].as_f64().unwrap_or(0.0),
        sts.iter().sum()
    ));
    assert_eq!(r["st"]["min"].as_f64(), Some(200.0));
    let var = durs.iter().map(|v| (v - sum / n).powi(2)).sum::<f64>() / n;
    assert!(close(r["ex"]["variance"].as_f64().unwrap_or(0.0), var));
    assert!(close(
        r["ex"]["std_deviation"].as_f64().unwrap_or(0.0),
        var.sqrt()
    ));
    let var_s = durs.iter().map(|v| (v - sum / n).powi(2)).sum::<f64>() / (n - 1.0);
    assert!(close(
        r["ex"]["variance_sampling"].as_f64().unwrap_or(0.0),
        var_s
    ));
    assert!(close(
        r["ex"]["std_deviation_bounds"]["upper"]
            .as_f64()
            .unwrap_or(0.0),
        sum / n + 2.0 * var.sqrt()
    ));
    let vc: usize = docs.iter().map(|d| d.tags.len()).sum();
    assert_eq!(r["vc"]["value"], vc as u64);
    let users: BTreeSet<&String> = docs.iter().filter_map(|d| d.user.as_ref()).collect();
    assert_eq!(r["card"]["value"], users.len() as u64);
    let hll = r["card_hll"]["value"].as_f64().unwrap_or(0.0);
    assert!((hll - N as f64).abs() / (N as f64) < 0.05, "hll {hll}");
    let mut sorted = durs.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        let pos = p / 100.0 * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    assert!(close(
        r["pct"]["values"]["50.0"].as_f64().unwrap_or(0.0),
        q(50.0)
    ));
    assert!(close(
        r["pct"]["values"]["95.0"].as_f64().unwrap_or(0.0),
        q(95.0)
    ));
    assert!(close(
        r["pct"]["values"]["99.9"].as_f64().unwrap_or(0.0),
        q(99.9)
    ));
    assert_eq!(r["pct_list"]["values"][0]["key"], 50.0);
    let tmax = docs.iter().map(|d| d.ts).max().unwrap_or(0);
    assert_eq!(r["tmax"]["value"].as_f64(), Some(tmax as f64));
    assert_eq!(r["tmax"]["value_as_string"], json!(iso(tmax)));
    assert_eq!(r["none"]["value"], Value::Null);
    env.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_and_ranges() {
    let env = setup().await;
    let docs = &env.docs;
    let r = env.run(json!({
        "hourly": {"date_histogram": {"field": "@timestamp", "fixed_interval": "6h"},
                   "aggs": {"s": {"sum": {"field": "dur"}}}},
        "daily_tz": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day", "time_zone": "-05:00"}},
        "monthly": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1M", "format": "yyyy-MM"}},
        "weekly_paris": {"date_histogram": {"field": "@timestamp", "calendar_interval": "week", "time_zone": "Europe/Paris"}},
        "filled": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day",
                   "min_doc_count": 0,
                   "extended_bounds": {"min": "2024-01-28", "max": "2024-02-03"}}},
        "off": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d", "offset": "+6h"}},
        "h": {"histogram": {"field": "dur", "interval": 100}},
        "hb": {"histogram": {"field": "dur", "interval": 250, "extended_bounds": {"min": -500, "max": 1500}}},
        "rg": {"range": {"field": "dur", "ranges": [{"from": 500}, {"to": 100}, {"from": 100, "to": 500, "key": "mid"}]}},
        "dr": {"date_range": {"field": "@timestamp", "ranges": [{"to": "now-2d/d"}, {"from": "now-2d/d"}]}}
    }));
    let check_hist = |name: &str, key_of: &dyn Fn(&Doc) -> i64| {
        let want = count_by(docs, |d| vec![key_of(d)]);
        let got: BTreeMap<i64, u64> = r[name]["buckets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["doc_count"].as_u64().unwrap_or(0) > 0)
                    .map(|b| {
                        (
                            b["key"].as_i64().unwrap_or(0),
                            b["doc_count"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, want, "{name}");
    };
    check_hist("hourly", &|d| {
        d.ts.div_euclid(6 * 3_600_000) * 6 * 3_600_000
    });
    let tz = 5 * 3_600_000;
    check_hist("daily_tz", &|d| (d.ts - tz).div_euclid(DAY) * DAY + tz);
    assert!(r["daily_tz"]["buckets"][0]["key_as_string"]
        .as_str()
        .unwrap_or("")
        .ends_with("T00:00:00.000-05:00"));
    // Calendar months: the data spans January and February.
    let feb = BASE + 2 * DAY;
    check_hist("monthly", &|d| {
        if d.ts >= feb {
            feb
        } else {
            1_704_067_200_000
        }
    });
    assert_eq!(r["monthly"]["buckets"][0]["key_as_string"], "2024-01");
    assert_eq!(r["monthly"]["buckets"][1]["key_as_string"], "2024-02");
    // Weeks in Paris (UTC+1 in winter) start Monday 00:00 local = Sunday 23:00 UTC.
    // 2024-01-29 is a Monday.
    let monday = BASE - DAY - 3_600_000;
    check_hist("weekly_paris", &|d| {
        monday + (d.ts - monday).div_euclid(7 * DAY) * 7 * DAY
    });
    assert!(r["weekly_paris"]["buckets"][0]["key_as_string"]
        .as_str()
        .unwrap_or("")
        .ends_with("+01:00"));
    // Empty buckets filled from the extended bounds.
    let filled = r["filled"]["buckets"].as_array().expect("filled");
    assert_eq!(filled.len(), 7);
    assert_eq!(filled[0]["key_as_string"], "2024-01-28T00:00:00.000Z");
    assert_eq!(filled[0]["doc_count"], 0);
    assert_eq!(filled[6]["doc_count"], 0);
    let total: u64 = filled.iter().filter_map(|b| b["doc_count"].as_u64()).sum();
    assert_eq!(total, N as u64);
    check_hist("off", &|d| {
        (d.ts - 6 * 3_600_000).div_euclid(DAY) * DAY + 6 * 3_600_000
    });
    // Numeric histograms.
    let want = count_by(docs, |d| vec![(d.dur / 100.0).floor() as i64]);
    for b in r["h"]["buckets"].as_array().expect("h") {
        let k = b["key"].as_f64().unwrap_or(0.0);
        assert_eq!(
            b["doc_count"].as_u64(),
            Some(*want.get(&((k / 100.0) as i64)).unwrap_or(&0))
        );
    }
    let hb = r["hb"]["buckets"].as_array().expect("hb");
    assert_eq!(hb.first().map(|b| b["key"].clone()), Some(json!(-500.0)));
    assert_eq!(hb.last().map(|b| b["key"].clone()), Some(json!(1500.0)));
    assert_eq!(hb.len(), 9);
    // Ranges come back sorted by from.
    let rg = r["rg"]["buckets"].as_array().expect("rg");
    assert_eq!(rg[0]["key"], "*-100.0");
    assert_eq!(rg[1]["key"], "mid");
    assert_eq!(rg[2]["key"], "500.0-*");
    assert_eq!(
        rg[0]["doc_count"],
        docs.iter().filter(|d| d.dur < 100.0).count() as u64
    );
    assert_eq!(
        rg[1]["doc_count"],
        docs.iter()
            .filter(|d| d.dur >= 100.0 && d.dur < 500.0)
            .count() as u64
    );
    assert_eq!(
        rg[2]["doc_count"],
        docs.iter().filter(|d| d.dur >= 500.0).count() as u64
    );
    let cut = BASE + DAY;
    let dr = r["dr"]["buckets"].as_array().expect("dr");
    assert_eq!(dr[0]["to_as_string"], json!(iso(cut)));
    assert_eq!(
        dr[0]["doc_count"],
        docs.iter().filter(|d| d.ts < cut).count() as u64
    );
    assert_eq!(
        dr[1]["doc_count"],
        docs.iter().filter(|d| d.ts >= cut).count() as u64
    );
    env.shutdown();
}

/// A lone `date_histogram` on `@timestamp` takes the batched fast path; alongside other
/// aggregations (as in `histograms_and_ranges`) it takes the general one. Both must
/// agree, bucket for bucket, including offsets, fixed time zones and calendar units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_timestamp_histogram_matches_general_path() {
    let env = setup().await;
    let specs = [
        json!({"field": "@timestamp", "fixed_interval": "1m"}),
        json!({"field": "@timestamp", "fixed_interval": "7m", "offset": "+90s"}),
        json!({"field": "@timestamp", "calendar_interval": "hour", "time_zone": "+05:30"}),
        json!({"field": "@timestamp", "calendar_interval": "day", "time_zone": "-05:00", "min_doc_count": 0}),
        json!({"field": "@timestamp", "fixed_interval": "3h", "format": "yyyy-MM-dd HH:mm"}),
    ];
    for spec in specs {
        let alone = env.run(json!({"h": {"date_histogram": spec.clone()}}));
        let general = env.run(json!({
            "h": {"date_histogram": spec.clone()},
            "other": {"max": {"field": "dur"}}
        }));
        assert_eq!(alone["h"], general["h"], "{spec}");
        let total: u64 = alone["h"]["buckets"]
            .as_array()
            .map(|a| a.iter().filter_map(|b| b["doc_count"].as_u64()).sum())
            .unwrap_or(0);
        assert_eq!(total, N as u64, "{spec}");
    }
    // Too many buckets is the same error on both paths.
    let err = env
        .run_with(
            json!({"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1s"}}}),
            AggContext {
                now_millis: BASE + 3 * DAY,
                max_buckets: 10,
                deadline: None,
            },
        )
        .expect_err("too many buckets");
    assert_eq!(err.kind, "too_many_buckets_exception");
    env.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_composite_top_hits() {
    let env = setup().await;
    let docs = &env.docs;
    let r = env.run(json!({
        "errs": {"filter": {"term": {"log.level": "error"}},
                 "aggs": {"svc": {"terms": {"field": "service"}}}},
        "named": {"filters": {"filters": {"e": {"term": {"log.level": "error"}},
                                          "slow": {"range": {"dur": {"gte": 900}}}},
                              "other_bucket_key": "rest"}},
        "anon": {"filters": {"filters": [{"term": {"http.status": 500}}], "other_bucket": true}},
        "last": {"top_hits": {"size": 2, "sort": [{"@timestamp": {"order": "desc"}}],
                              "_source": {"includes": ["service", "http.*"]}}},
        "by_lvl": {"terms": {"field": "log.level"},
                   "aggs": {"first": {"top_hits": {"size": 1, "sort": [{"@timestamp": "asc"}]}}}}
    }));
    let errs: Vec<&Doc> = docs.iter().filter(|d| d.level == "error").collect();
    assert_eq!(r["errs"]["doc_count"], errs.len() as u64);
    let sum: u64 = r["errs"]["svc"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["doc_count"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(sum, errs.len() as u64);
    assert_eq!(r["named"]["buckets"]["e"]["doc_count"], errs.len() as u64);
    let slow = docs.iter().filter(|d| d.dur >= 900.0).count() as u64;
    assert_eq!(r["named"]["buckets"]["slow"]["doc_count"], slow);
    let rest = docs
        .iter()
        .filter(|d| d.level != "error" && d.dur < 900.0)
        .count() as u64;
    assert_eq!(r["named"]["buckets"]["rest"]["doc_count"], rest);
    let s500 = docs.iter().filter(|d| d.status == 500).count() as u64;
    assert_eq!(r["anon"]["buckets"][0]["doc_count"], s500);
    assert_eq!(r["anon"]["buckets"][1]["doc_count"], N as u64 - s500);
    // top_hits across partitions.
    let mut by_ts: Vec<(i64, usize)> = docs.iter().enumerate().map(|(i, d)| (d.ts, i)).collect();
    by_ts.sort();
    let hits = r["last"]["hits"]["hits"].as_array().expect("hits");
    assert_eq!(r["last"]["hits"]["total"]["value"], N as u64);
    assert_eq!(hits.len(), 2);
    let (ts0, i0) = by_ts[N - 1];
    assert_eq!(hits[0]["_id"], json!(format!("d{i0}")));
    assert_eq!(hits[0]["sort"], json!([ts0]));
    assert_eq!(hits[0]["_index"], "logs");
    assert_eq!(
        hits[0]["_source"],
        json!({"service": docs[i0].service, "http": {"status": docs[i0].status}})
    );
    for b in r["by_lvl"]["buckets"].as_array().expect("by_lvl") {
        let lvl = b["key"].as_str().unwrap_or("");
        let first = docs
            .iter()
            .filter(|d| d.level == lvl)
            .map(|d| d.ts)
            .min()
            .unwrap_or(0);
        assert_eq!(b["first"]["hits"]["hits"][0]["sort"], json!([first]));
    }
    // Composite paging: every (service, day) pair exactly once, in order.
    let want = count_by(docs, |d| {
        vec![(d.service.clone(), d.ts.div_euclid(DAY) * DAY)]
    });
    let mut got: Vec<((String, i64), u64)> = Vec::new();
    let mut after: Option<Value> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"sources": [
            {"s": {"terms": {"field": "service"}}},
            {"d": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1d"}}}
        ], "size": 4});
        if let Some(a) = &after {
            body["after"] = a.clone();
        }
        let r = env.run(json!({"c": {"composite": body}}));
        let b = r["c"]["buckets"].as_array().cloned().unwrap_or_default();
        if b.is_empty() {
            break;
        }
        pages += 1;
        for x in &b {
            got.push((
                (
                    x["key"]["s"].as_str().unwrap_or("").to_string(),
                    x["key"]["d"].as_i64().unwrap_or(0),
                ),
                x["doc_count"].as_u64().unwrap_or(0),
            ));
        }
        after = Some(r["c"]["after_key"].clone());
        assert!(pages < 100);
    }
    let want_v: Vec<((String, i64), u64)> = want.into_iter().collect();
    assert_eq!(got, want_v);
    assert!(pages > 2);
    // Composite desc + missing_bucket.
    let r = env.run(json!({"c": {"composite": {"size": 3, "sources": [
        {"u": {"terms": {"field": "user", "order": "desc", "missing_bucket": true}}}]}}}));
    let users: BTreeSet<&String> = docs.iter().filter_map(|d| d.user.as_ref()).collect();
    let top: Vec<&String> = users.iter().rev().take(3).copied().collect();
    let got: Vec<&str> = r["c"]["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["key"]["u"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(got, top.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    env.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_reduce_error_bounds() {
    let env = setup().await;
    // shard_size 1 over 3+ partitions: each partition sends one term.
    let r = env.run(json!({"t": {"terms": {"field": "service", "size": 1, "shard_size": 1}}}));
    let b = &r["t"]["buckets"][0];
    let err = r["t"]["doc_count_error_upper_bound"].as_i64().unwrap_or(-1);
    assert!(err > 0);
    let n =
        b["doc_count"].as_u64().unwrap_or(0) + r["t"]["sum_other_doc_count"].as_u64().unwrap_or(0);
    assert_eq!(n, N as u64);
    // The true count of the returned term is within the error bound.
    let key = b["key"].as_str().unwrap_or("");
    let truth = env.docs.iter().filter(|d| d.service == key).count() as i64;
    let got = b["doc_count"].as_i64().unwrap_or(0);
    assert!(got <= truth && truth <= got + err);
    env.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors() {
    let env = setup().await;
    let err = |req: Value| {
        env.run_with(
            req,
            AggContext {
                now_millis: BASE,
                max_buckets: 65_536,
                deadline: None,
            },
        )
        .expect_err("error")
    };
    let e = err(json!({"a": {"term": {"field": "service"}}}));
    assert_eq!(e.kind, "parsing_exception");
    assert_eq!(
        e.reason,
        "Unknown aggregation type [term] did you mean [terms]?"
    );
    let e = err(json!({"a": {"foo": {"field": "service"}}}));
    assert_eq!(e.reason, "Unknown aggregation type [foo]");
    let e = err(json!({"a": {"terms": {"field": "service", "bar": 1}}}));
    assert_eq!(e.kind, "x_content_parse_exception");
    assert_eq!(e.reason, "[terms] unknown field [bar]");
    let e = err(json!({"a": {"terms": {"field": "service", "sise": 1}}}));
    assert_eq!(
        e.reason,
        "[terms] unknown field [sise] did you mean [size]?"
    );
    let e = err(json!({"a": {"terms": {"field": "message"}}}));
    assert_eq!(e.kind, "illegal_argument_exception");
    assert!(
        e.reason
            .starts_with("Fielddata is disabled on [message] in [logs]."),
        "{}",
        e.reason
    );
    let e = err(json!({"a": {"avg": {"field": "service"}}}));
    assert_eq!(
        e.reason,
        "Field [service] of type [keyword] is not supported for aggregation [avg]"
    );
    let e = err(json!({"a": {"avg": {"field": "dur"}, "aggs": {"b": {"max": {"field": "dur"}}}}}));
    assert_eq!(e.kind, "aggregation_initialization_exception");
    let e =
        err(json!({"a": {"date_histogram": {"field": "@timestamp", "calendar_interval": "2d"}}}));
    assert_eq!(
        e.reason,
        "The supplied interval [2d] could not be parsed as a calendar interval."
    );
    let e = err(json!({"a": {"terms": {"field": "service", "order": {"nope": "asc"}}}}));
    assert_eq!(e.kind, "aggregation_execution_exception");
    let e = env
        .run_with(
            json!({"a": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}}),
            AggContext {
                now_millis: BASE,
                max_buckets: 100,
                deadline: None,
            },
        )
        .expect_err("too many");
    assert_eq!(e.kind, "too_many_buckets_exception");
    assert_eq!(e.status, 400);
    assert!(e
        .reason
        .starts_with("Trying to create too many buckets. Must be less than or equal to: [100]"));
    // Filled empty buckets count too.
    let e = env
        .run_with(
            json!({"a": {"terms": {"field": "service", "size": 20}, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h", "min_doc_count": 0}}}}}),
            AggContext { now_millis: BASE, max_buckets: 200, deadline: None },
        )
        .expect_err("too many");
    assert_eq!(e.kind, "too_many_buckets_exception");
    // Counts per service at the limit's edge are fine.
    let ok = env.run_with(
        json!({"a": {"terms": {"field": "service", "size": 20}}}),
        AggContext {
            now_millis: BASE,
            max_buckets: 7,
            deadline: None,
        },
    );
    assert!(ok.is_ok());
    let _: HashMap<(), ()> = HashMap::new();
    env.shutdown();
}
