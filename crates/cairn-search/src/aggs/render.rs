//! The final reduce: merged partial results to Elasticsearch's response JSON, with
//! `size` trimming, `min_doc_count`, empty-bucket filling and the bucket limit.

use cairn_core::EsError;
use serde_json::{json, Map, Value};

use super::collect::resolve_ranges;
use super::dates::{format_ms, Rounder};
use super::parse::{AggNode, Kind, MetricOp, Order, OrderKey, SourceFilter, SourceKind};
use super::partial::{cmp_buckets, java_double, sort_hits, Bucket, Key, Partial, F};
use super::{too_many_buckets, AggContext};

pub(crate) struct Counter {
    n: usize,
    limit: usize,
}

impl Counter {
    pub fn new(limit: usize) -> Self {
        Counter { n: 0, limit }
    }

    fn add(&mut self, k: usize) -> Result<(), EsError> {
        self.n = self.n.saturating_add(k);
        if self.n > self.limit {
            return Err(too_many_buckets(self.limit));
        }
        Ok(())
    }
}

pub(crate) fn render_level(
    nodes: &[AggNode],
    parts: Vec<Partial>,
    ctx: &AggContext,
    c: &mut Counter,
    out: &mut Map<String, Value>,
) -> Result<(), EsError> {
    for (node, p) in nodes.iter().zip(parts) {
        let v = render(node, p, ctx, c)?;
        out.insert(node.name.clone(), v);
    }
    Ok(())
}

fn num(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn opt_num(f: Option<f64>) -> Value {
    f.map(num).unwrap_or(Value::Null)
}

fn bucket_obj(
    node: &AggNode,
    mut head: Map<String, Value>,
    b: Bucket,
    ctx: &AggContext,
    c: &mut Counter,
) -> Result<Value, EsError> {
    head.insert("doc_count".into(), json!(b.doc_count));
    render_level(&node.subs, b.subs, ctx, c, &mut head)?;
    Ok(Value::Object(head))
}

fn key_json(k: &Key) -> (Value, Option<String>) {
    match k {
        Key::Null => (Value::Null, None),
        Key::Bool(b) => (json!(i64::from(*b)), Some(b.to_string())),
        Key::Int(i) => (json!(i), None),
        Key::Num(f) => (num(f.0), None),
        Key::Date(ms) => (
            json!(ms),
            Some(format_ms(
                *ms,
                &cairn_query::datemath::TimeZone::utc(),
                None,
            )),
        ),
        Key::Str(s) => (json!(s), None),
        Key::Ord(o) => (json!(o), None),
    }
}

fn sort_hist(v: &mut [(i64, Bucket)], order: &Option<Order>, subs: &[AggNode]) {
    if let Some(o) = order {
        if !(o.key == OrderKey::Key && o.asc) {
            let ord = [o.clone()];
            v.sort_by(|a, b| {
                cmp_buckets(&ord, subs, (&Key::Int(a.0), &a.1), (&Key::Int(b.0), &b.1))
            });
        }
    }
}

fn render(node: &AggNode, p: Partial, ctx: &AggContext, c: &mut Counter) -> Result<Value, EsError> {
    let mut out = Map::new();
    if let Some(m) = &node.meta {
        out.insert("meta".into(), m.clone());
    }
    match (&node.kind, p) {
        (Kind::Terms(t), Partial::Terms(tp)) => {
            let mut all: Vec<(Key, Bucket)> = tp.buckets.into_iter().collect();
            all.sort_by(|a, b| cmp_buckets(&t.order, &node.subs, (&a.0, &a.1), (&b.0, &b.1)));
            let mut other = tp.other;
            let mut kept = Vec::new();
            for (k, b) in all {
                if b.doc_count < t.min_doc_count {
                    continue;
                }
                if kept.len() < t.size {
                    kept.push((k, b));
                } else {
                    other += b.doc_count;
                }
            }
            c.add(kept.len())?;
            let mut buckets = Vec::new();
            for (k, b) in kept {
                let mut head = Map::new();
                let (kv, ks) = key_json(&k);
                head.insert("key".into(), kv);
                if let Some(s) = ks {
                    head.insert("key_as_string".into(), json!(s));
                }
                buckets.push(bucket_obj(node, head, b, ctx, c)?);
            }
            out.insert("doc_count_error_upper_bound".into(), json!(tp.error));
            out.insert("sum_other_doc_count".into(), json!(other));
            out.insert("buckets".into(), Value::Array(buckets));
        }
        (Kind::DateHistogram(d), Partial::Hist(map)) => {
            let rounder = Rounder {
                interval: d.interval,
                tz: d.time_zone,
                offset: d.offset,
            };
            let resolve = |v: &Option<Value>| -> Result<Option<i64>, EsError> {
                match v {
                    None => Ok(None),
                    Some(v) => cairn_query::datemath::resolve_value(
                        v,
                        ctx.now_millis,
                        false,
                        d.format.as_deref(),
                        &d.time_zone,
                    )
                    .map(Some)
                    .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone())),
                }
            };
            let mut list: Vec<(i64, Bucket)> = Vec::new();
            if d.min_doc_count == 0 {
                let (mut lo, mut hi) =
                    (map.keys().next().copied(), map.keys().next_back().copied());
                if let Some(eb) = &d.extended_bounds {
                    if let Some(m) = resolve(&eb.min)? {
                        let k = rounder.round(m);
                        lo = Some(lo.map_or(k, |l| l.min(k)));
                    }
                    if let Some(m) = resolve(&eb.max)? {
                        let k = rounder.round(m);
                        hi = Some(hi.map_or(k, |h| h.max(k)));
                    }
                }
                if let Some(hb) = &d.hard_bounds {
                    if let (Some(l), Some(m)) = (lo, resolve(&hb.min)?) {
                        lo = Some(l.max(rounder.round(m)));
                    }
                    if let (Some(h), Some(m)) = (hi, resolve(&hb.max)?) {
                        hi = Some(h.min(rounder.round(m)));
                    }
                }
                let mut map = map;
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    let mut k = lo;
                    let mut n = 0usize;
                    while k <= hi {
                        n += 1;
                        c.add(1)?;
                        let b = map.remove(&k).unwrap_or_else(|| Bucket::new(&node.subs));
                        list.push((k, b));
                        k = rounder.next(k);
                        if n > ctx.max_buckets {
                            return Err(too_many_buckets(ctx.max_buckets));
                        }
                    }
                }
                // Keys outside [lo, hi] (hard bounds) are dropped; stray keys that do
                // not fall on the rounding grid cannot exist.
            } else {
                list = map
                    .into_iter()
                    .filter(|(_, b)| b.doc_count >= d.min_doc_count)
                    .collect();
                c.add(list.len())?;
            }
            sort_hist(&mut list, &d.order, &node.subs);
            let mut buckets = Vec::new();
            let mut keyed = Map::new();
            for (k, b) in list {
                let ks = format_ms(k, &d.time_zone, d.format.as_deref());
                let mut head = Map::new();
                head.insert("key_as_string".into(), json!(ks));
                head.insert("key".into(), json!(k));
                let v = bucket_obj(node, head, b, ctx, c)?;
                if d.keyed {
                    keyed.insert(ks, v);
                } else {
                    buckets.push(v);
                }
            }
            out.insert(
                "buckets".into(),
                if d.keyed {
                    Value::Object(keyed)
                } else {
                    Value::Array(buckets)
                },
            );
        }
        (Kind::Histogram(h), Partial::Hist(map)) => {
            let idx = |v: f64| ((v - h.offset) / h.interval).floor() as i64;
            let mut list: Vec<(i64, Bucket)> = Vec::new();
            if h.min_doc_count == 0 {
                let (mut lo, mut hi) =
                    (map.keys().next().copied(), map.keys().next_back().copied());
                if let Some((emin, emax)) = h.extended_bounds {
                    if let Some(m) = emin {
                        lo = Some(lo.map_or(idx(m), |l| l.min(idx(m))));
                    }
                    if let Some(m) = emax {
                        hi = Some(hi.map_or(idx(m), |x| x.max(idx(m))));
                    }
                }
                if let Some((hmin, hmax)) = h.hard_bounds {
                    if let (Some(l), Some(m)) = (lo, hmin) {
                        lo = Some(l.max(idx(m)));
                    }
                    if let (Some(x), Some(m)) = (hi, hmax) {
                        hi = Some(x.min(idx(m)));
                    }
                }
                let mut map = map;
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if hi >= lo {
                        let n = (hi - lo) as u128 + 1;
                        if n > ctx.max_buckets as u128 {
                            return Err(too_many_buckets(ctx.max_buckets));
                        }
                        c.add(n as usize)?;
                        for k in lo..=hi {
                            let b = map.remove(&k).unwrap_or_else(|| Bucket::new(&node.subs));
                            list.push((k, b));
                        }
                    }
                }
            } else {
                list = map
                    .into_iter()
                    .filter(|(_, b)| b.doc_count >= h.min_doc_count)
                    .collect();
                c.add(list.len())?;
            }
            sort_hist(&mut list, &h.order, &node.subs);
            let mut buckets = Vec::new();
            let mut keyed = Map::new();
            for (k, b) in list {
                let key = k as f64 * h.interval + h.offset;
                let mut head = Map::new();
                head.insert("key".into(), num(key));
                let v = bucket_obj(node, head, b, ctx, c)?;
                if h.keyed {
                    keyed.insert(java_double(key), v);
                } else {
                    buckets.push(v);
                }
            }
            out.insert(
                "buckets".into(),
                if h.keyed {
                    Value::Object(keyed)
                } else {
                    Value::Array(buckets)
                },
            );
        }
        (Kind::Range(r) | Kind::DateRange(r), Partial::Ranges(bs)) => {
            let is_date = matches!(node.kind, Kind::DateRange(_));
            let ranges = resolve_ranges(r, is_date, ctx.now_millis)?;
            c.add(ranges.len())?;
            let fmt = |f: f64| -> String {
                if is_date {
                    format_ms(f as i64, &r.time_zone, r.format.as_deref())
                } else {
                    java_double(f)
                }
            };
            let mut buckets = Vec::new();
            let mut keyed = Map::new();
            for (rg, b) in ranges.iter().zip(bs) {
                let key = rg.key.clone().unwrap_or_else(|| {
                    format!(
                        "{}-{}",
                        rg.from.map(fmt).unwrap_or_else(|| "*".into()),
                        rg.to.map(fmt).unwrap_or_else(|| "*".into())
                    )
                });
                let mut head = Map::new();
                if !r.keyed {
                    head.insert("key".into(), json!(key));
                }
                if let Some(f) = rg.from {
                    head.insert("from".into(), num(f));
                    if is_date {
                        head.insert("from_as_string".into(), json!(fmt(f)));
                    }
                }
                if let Some(t) = rg.to {
                    head.insert("to".into(), num(t));
                    if is_date {
                        head.insert("to_as_string".into(), json!(fmt(t)));
                    }
                }
                let v = bucket_obj(node, head, b, ctx, c)?;
                if r.keyed {
                    keyed.insert(key, v);
                } else {
                    buckets.push(v);
                }
            }
            out.insert(
                "buckets".into(),
                if r.keyed {
                    Value::Object(keyed)
                } else {
                    Value::Array(buckets)
                },
            );
        }
        (Kind::Filter(_), Partial::Single(b)) => {
            out.insert("doc_count".into(), json!(b.doc_count));
            render_level(&node.subs, b.subs, ctx, c, &mut out)?;
        }
        (Kind::Filters(f), Partial::Filters(bs, other)) => {
            c.add(bs.len() + usize::from(f.other_bucket))?;
            if f.keyed {
                let mut m = Map::new();
                for ((name, _), b) in f.filters.iter().zip(bs) {
                    let v = bucket_obj(node, Map::new(), b, ctx, c)?;
                    m.insert(name.clone().unwrap_or_default(), v);
                }
                if f.other_bucket {
                    let v = bucket_obj(node, Map::new(), *other, ctx, c)?;
                    m.insert(f.other_bucket_key.clone(), v);
                }
                out.insert("buckets".into(), Value::Object(m));
            } else {
                let mut a = Vec::new();
                for ((name, _), b) in f.filters.iter().zip(bs) {
                    let mut head = Map::new();
                    if let Some(n) = name {
                        head.insert("key".into(), json!(n));
                    }
                    a.push(bucket_obj(node, head, b, ctx, c)?);
                }
                if f.other_bucket {
                    let mut head = Map::new();
                    if f.filters.iter().any(|(n, _)| n.is_some()) {
                        head.insert("key".into(), json!(f.other_bucket_key));
                    }
                    a.push(bucket_obj(node, head, *other, ctx, c)?);
                }
                out.insert("buckets".into(), Value::Array(a));
            }
        }
        (Kind::Composite(cs), Partial::Composite(map)) => {
            let list: Vec<_> = map.into_iter().take(cs.size).collect();
            c.add(list.len())?;
            let key_obj = |k: &[super::partial::OKey]| -> Value {
                let mut m = Map::new();
                for (s, ok) in cs.sources.iter().zip(k) {
                    let v = match (&ok.key, &s.kind) {
                        (Key::Date(ms), SourceKind::DateHistogram(_, tz, _)) => match &s.format {
                            Some(f) => json!(format_ms(*ms, tz, Some(f))),
                            None => json!(ms),
                        },
                        (Key::Date(ms), _) => match &s.format {
                            Some(f) => json!(format_ms(
                                *ms,
                                &cairn_query::datemath::TimeZone::utc(),
                                Some(f)
                            )),
                            None => json!(ms),
                        },
                        (Key::Bool(b), _) => json!(b),
                        (k, _) => key_json(k).0,
                    };
                    m.insert(s.name.clone(), v);
                }
                Value::Object(m)
            };
            if let Some((k, _)) = list.last() {
                out.insert("after_key".into(), key_obj(k));
            }
            let mut buckets = Vec::new();
            for (k, b) in list {
                let mut head = Map::new();
                head.insert("key".into(), key_obj(&k));
                buckets.push(bucket_obj(node, head, b, ctx, c)?);
            }
            out.insert("buckets".into(), Value::Array(buckets));
        }
        (Kind::Metric(m), Partial::Stats(s)) => {
            let n = s.count as f64;
            let has = s.count > 0;
            let date_str = |v: f64| {
                format_ms(
                    v as i64,
                    &cairn_query::datemath::TimeZone::utc(),
                    m.format.as_deref(),
                )
            };
            let avg = if has { Some(s.sum / n) } else { None };
            let (min, max) = if has {
                (Some(s.min), Some(s.max))
            } else {
                (None, None)
            };
            match m.op {
                MetricOp::Avg | MetricOp::Min | MetricOp::Max | MetricOp::Sum => {
                    let v = match m.op {
                        MetricOp::Avg => avg,
                        MetricOp::Min => min,
                        MetricOp::Max => max,
                        _ => Some(s.sum),
                    };
                    out.insert("value".into(), opt_num(v));
                    if s.is_date && m.op != MetricOp::Sum {
                        if let Some(v) = v {
                            out.insert("value_as_string".into(), json!(date_str(v)));
                        }
                    }
                }
                MetricOp::ValueCount => {
                    out.insert("value".into(), json!(s.count));
                }
                MetricOp::Stats | MetricOp::ExtendedStats => {
                    out.insert("count".into(), json!(s.count));
                    out.insert("min".into(), opt_num(min));
                    out.insert("max".into(), opt_num(max));
                    out.insert("avg".into(), opt_num(avg));
                    out.insert("sum".into(), num(s.sum));
                    if m.op == MetricOp::ExtendedStats {
                        let var_pop = avg.map(|a| (s.sum_sq / n - a * a).max(0.0));
                        let var_samp = if s.count > 1 {
                            Some(((s.sum_sq - s.sum * s.sum / n) / (n - 1.0)).max(0.0))
                        } else {
                            None
                        };
                        let sd_pop = var_pop.map(f64::sqrt);
                        let sd_samp = var_samp.map(f64::sqrt);
                        out.insert(
                            "sum_of_squares".into(),
                            if has { num(s.sum_sq) } else { Value::Null },
                        );
                        out.insert("variance".into(), opt_num(var_pop));
                        out.insert("variance_population".into(), opt_num(var_pop));
                        out.insert("variance_sampling".into(), opt_num(var_samp));
                        out.insert("std_deviation".into(), opt_num(sd_pop));
                        out.insert("std_deviation_population".into(), opt_num(sd_pop));
                        out.insert("std_deviation_sampling".into(), opt_num(sd_samp));
                        let b = |sd: Option<f64>, sign: f64| -> Value {
                            match (avg, sd) {
                                (Some(a), Some(sd)) => num(a + sign * m.sigma * sd),
                                _ => Value::Null,
                            }
                        };
                        out.insert(
                            "std_deviation_bounds".into(),
                            json!({
                                "upper": b(sd_pop, 1.0),
                                "lower": b(sd_pop, -1.0),
                                "upper_population": b(sd_pop, 1.0),
                                "lower_population": b(sd_pop, -1.0),
                                "upper_sampling": b(sd_samp, 1.0),
                                "lower_sampling": b(sd_samp, -1.0),
                            }),
                        );
                    }
                    if s.is_date && has {
                        out.insert("min_as_string".into(), json!(date_str(s.min)));
                        out.insert("max_as_string".into(), json!(date_str(s.max)));
                        if let Some(a) = avg {
                            out.insert("avg_as_string".into(), json!(date_str(a)));
                        }
                    }
                }
            }
        }
        (Kind::Cardinality(_), Partial::Card(cp)) => {
            out.insert("value".into(), json!(cp.sketch.estimate()));
        }
        (Kind::Percentiles(ps), Partial::Pct(mut d)) => {
            let vals: Vec<(f64, Option<f64>)> = ps
                .percents
                .iter()
                .map(|p| (*p, d.quantile(p / 100.0)))
                .collect();
            if ps.keyed {
                let mut m = Map::new();
                for (p, v) in vals {
                    m.insert(java_double(p), opt_num(v));
                }
                out.insert("values".into(), Value::Object(m));
            } else {
                out.insert(
                    "values".into(),
                    Value::Array(
                        vals.into_iter()
                            .map(|(p, v)| json!({"key": p, "value": opt_num(v)}))
                            .collect(),
                    ),
                );
            }
        }
        (Kind::TopHits(t), Partial::Top(mut tp)) => {
            sort_hits(&mut tp.hits, t.sort_ts);
            let mut hits = Vec::new();
            for h in tp.hits.into_iter().skip(t.from).take(t.size) {
                let mut o = Map::new();
                o.insert("_index".into(), json!(h.index));
                o.insert("_id".into(), json!(h.id));
                o.insert(
                    "_score".into(),
                    if t.sort_ts.is_some() {
                        Value::Null
                    } else {
                        json!(1.0)
                    },
                );
                match &t.source {
                    SourceFilter::None => {}
                    SourceFilter::All => {
                        let v: Value = serde_json::from_slice(&h.source).unwrap_or(Value::Null);
                        o.insert("_source".into(), v);
                    }
                    SourceFilter::Filter { includes, excludes } => {
                        let v: Value = serde_json::from_slice(&h.source).unwrap_or(Value::Null);
                        o.insert("_source".into(), filter_source(&v, includes, excludes));
                    }
                }
                if t.sort_ts.is_some() {
                    o.insert("sort".into(), json!([h.sort]));
                }
                hits.push(Value::Object(o));
            }
            let max_score = if t.sort_ts.is_none() && !hits.is_empty() {
                json!(1.0)
            } else {
                Value::Null
            };
            out.insert(
                "hits".into(),
                json!({
                    "total": {"value": tp.total, "relation": "eq"},
                    "max_score": max_score,
                    "hits": hits,
                }),
            );
        }
        _ => {}
    }
    let _ = F(0.0);
    Ok(Value::Object(out))
}

fn path_matches(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| {
        cairn_core::mapping::wildcard_match(p, path)
            || path
                .char_indices()
                .filter(|(_, ch)| *ch == '.')
                .any(|(i, _)| cairn_core::mapping::wildcard_match(p, &path[..i]))
    })
}

fn could_match_below(patterns: &[String], prefix: &str) -> bool {
    patterns.iter().any(|p| {
        let pre = format!("{prefix}.");
        p.starts_with(&pre)
            || p.contains('*') && {
                let fixed: &str = p.split('*').next().unwrap_or("");
                pre.starts_with(fixed) || fixed.starts_with(&pre)
            }
    })
}

/// `_source` filtering: `includes` / `excludes` with wildcards on dotted paths.
pub(crate) fn filter_source(v: &Value, includes: &[String], excludes: &[String]) -> Value {
    fn walk(v: &Value, prefix: &str, inc: &[String], exc: &[String]) -> Option<Value> {
        match v {
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, child) in o {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if !exc.is_empty() && path_matches(exc, &path) {
                        continue;
                    }
                    let included = inc.is_empty() || path_matches(inc, &path);
                    if included {
                        if let Some(x) = walk_all(child, &path, exc) {
                            out.insert(k.clone(), x);
                        }
                    } else if (child.is_object() || child.is_array())
                        && could_match_below(inc, &path)
                    {
                        if let Some(x) = walk(child, &path, inc, exc) {
                            let empty = x.as_object().is_some_and(|m| m.is_empty())
                                || x.as_array().is_some_and(|a| a.is_empty());
                            if !empty {
                                out.insert(k.clone(), x);
                            }
                        }
                    }
                }
                Some(Value::Object(out))
            }
            Value::Array(a) => Some(Value::Array(
                a.iter().filter_map(|x| walk(x, prefix, inc, exc)).collect(),
            )),
            other => {
                if inc.is_empty() || path_matches(inc, prefix) {
                    Some(other.clone())
                } else {
                    None
                }
            }
        }
    }
    fn walk_all(v: &Value, prefix: &str, exc: &[String]) -> Option<Value> {
        if exc.is_empty() {
            return Some(v.clone());
        }
        walk(v, prefix, &[], exc)
    }
    walk(v, "", includes, excludes).unwrap_or(Value::Null)
}
