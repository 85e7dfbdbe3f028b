//! Partial (mergeable) aggregation results: what one segment or one partition
//! ("shard") produces, merged segment by segment, trimmed per shard like an
//! Elasticsearch shard response, then merged across shards and rendered.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use super::parse::{AggNode, Kind, MetricOp, Order, OrderKey};
use super::sketch::{Cardinality, Digest};

/// An f64 with a total order, usable as a map key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct F(pub f64);

impl F {
    fn norm(self) -> f64 {
        if self.0 == 0.0 {
            0.0
        } else {
            self.0
        }
    }
}

impl PartialEq for F {
    fn eq(&self, o: &Self) -> bool {
        self.norm().to_bits() == o.norm().to_bits()
    }
}
impl Eq for F {}
impl std::hash::Hash for F {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.norm().to_bits().hash(h)
    }
}
impl PartialOrd for F {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for F {
    fn cmp(&self, o: &Self) -> Ordering {
        self.norm().total_cmp(&o.norm())
    }
}

/// A bucket key (terms, composite sources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// No value (composite `missing_bucket`).
    Null,
    Bool(bool),
    Int(i64),
    Num(F),
    /// Epoch millis.
    Date(i64),
    Str(String),
    /// A segment-local term ordinal, resolved to `Str` when the segment is harvested.
    Ord(u64),
}

impl Key {
    /// The key as ES prints it in `key_as_string` / matches it in include/exclude.
    pub fn as_string(&self) -> String {
        match self {
            Key::Null => "null".into(),
            Key::Bool(b) => b.to_string(),
            Key::Int(i) => i.to_string(),
            Key::Num(f) => java_double(f.0),
            Key::Date(ms) => ms.to_string(),
            Key::Str(s) => s.clone(),
            Key::Ord(o) => o.to_string(),
        }
    }
}

/// Java's `Double.toString` for common values (`100.0`, `1.5`).
pub(crate) fn java_double(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f.is_nan() {
        return "NaN".into();
    }
    let s = format!("{f:?}");
    if let Some((m, e)) = s.split_once('e') {
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        return format!("{m}E{e}");
    }
    s
}

/// A composite key component with its source's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OKey {
    pub key: Key,
    pub desc: bool,
}

impl PartialOrd for OKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OKey {
    fn cmp(&self, o: &Self) -> Ordering {
        let c = self.key.cmp(&o.key);
        if self.desc {
            c.reverse()
        } else {
            c
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub doc_count: u64,
    pub subs: Vec<Partial>,
}

impl Bucket {
    pub fn new(subs: &[AggNode]) -> Bucket {
        Bucket {
            doc_count: 0,
            subs: subs.iter().map(Partial::empty).collect(),
        }
    }

    pub fn merge(&mut self, other: Bucket) {
        self.doc_count += other.doc_count;
        for (a, b) in self.subs.iter_mut().zip(other.subs) {
            a.merge(b);
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TermsP {
    pub buckets: HashMap<Key, Bucket>,
    pub other: u64,
    /// Sum of shard errors; -1 when unknown.
    pub error: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sum_sq: f64,
    /// The field is a date: ES adds `*_as_string`.
    pub is_date: bool,
}

impl Stats {
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub sort: i64,
    /// (target, segment, doc): the tie-break, like ES's shard index then doc id.
    pub tie: (usize, usize, u32),
    pub index: String,
    pub id: String,
    pub source: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopP {
    pub total: u64,
    /// Segment-local candidates: (sort key, doc).
    pub seg: Vec<(i64, u32)>,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone)]
pub(crate) struct CardP {
    pub sketch: Cardinality,
    /// Segment-local string ordinals, hashed at harvest.
    pub ords: std::collections::HashSet<u64>,
}

#[derive(Debug, Clone)]
pub(crate) enum Partial {
    Terms(TermsP),
    /// date_histogram (key = epoch millis) and histogram (key = bucket index).
    Hist(BTreeMap<i64, Bucket>),
    /// range / date_range, in sorted range order.
    Ranges(Vec<Bucket>),
    Single(Box<Bucket>),
    Filters(Vec<Bucket>, Box<Bucket>),
    Composite(BTreeMap<Vec<OKey>, Bucket>),
    Stats(Stats),
    Card(Box<CardP>),
    Pct(Box<Digest>),
    Top(TopP),
}

impl Partial {
    pub fn empty(node: &AggNode) -> Partial {
        match &node.kind {
            Kind::Terms(_) => Partial::Terms(TermsP {
                buckets: HashMap::new(),
                other: 0,
                error: 0,
            }),
            Kind::DateHistogram(_) | Kind::Histogram(_) => Partial::Hist(BTreeMap::new()),
            Kind::Range(r) | Kind::DateRange(r) => Partial::Ranges(
                (0..r.ranges.len())
                    .map(|_| Bucket::new(&node.subs))
                    .collect(),
            ),
            Kind::Filter(_) => Partial::Single(Box::new(Bucket::new(&node.subs))),
            Kind::Filters(f) => Partial::Filters(
                (0..f.filters.len())
                    .map(|_| Bucket::new(&node.subs))
                    .collect(),
                Box::new(Bucket::new(&node.subs)),
            ),
            Kind::Composite(_) => Partial::Composite(BTreeMap::new()),
            Kind::Metric(_) => Partial::Stats(Stats {
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                sum_sq: 0.0,
                is_date: false,
            }),
            Kind::Cardinality(c) => Partial::Card(Box::new(CardP {
                sketch: Cardinality::new(c.precision_threshold),
                ords: Default::default(),
            })),
            Kind::Percentiles(p) => Partial::Pct(Box::new(Digest::new(p.compression))),
            Kind::TopHits(_) => Partial::Top(TopP {
                total: 0,
                seg: Vec::new(),
                hits: Vec::new(),
            }),
        }
    }

    pub fn merge(&mut self, other: Partial) {
        match (self, other) {
            (Partial::Terms(a), Partial::Terms(b)) => {
                for (k, bk) in b.buckets {
                    match a.buckets.get_mut(&k) {
                        Some(x) => x.merge(bk),
                        None => {
                            a.buckets.insert(k, bk);
                        }
                    }
                }
                a.other += b.other;
                a.error = if a.error < 0 || b.error < 0 {
                    -1
                } else {
                    a.error + b.error
                };
            }
            (Partial::Hist(a), Partial::Hist(b)) => {
                for (k, bk) in b {
                    match a.get_mut(&k) {
                        Some(x) => x.merge(bk),
                        None => {
                            a.insert(k, bk);
                        }
                    }
                }
            }
            (Partial::Ranges(a), Partial::Ranges(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
            }
            (Partial::Single(a), Partial::Single(b)) => a.merge(*b),
            (Partial::Filters(a, ao), Partial::Filters(b, bo)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                ao.merge(*bo);
            }
            (Partial::Composite(a), Partial::Composite(b)) => {
                for (k, bk) in b {
                    match a.get_mut(&k) {
                        Some(x) => x.merge(bk),
                        None => {
                            a.insert(k, bk);
                        }
                    }
                }
            }
            (Partial::Stats(a), Partial::Stats(b)) => {
                a.count += b.count;
                a.sum += b.sum;
                a.sum_sq += b.sum_sq;
                a.min = a.min.min(b.min);
                a.max = a.max.max(b.max);
                a.is_date |= b.is_date;
            }
            (Partial::Card(a), Partial::Card(b)) => a.sketch.merge(b.sketch),
            (Partial::Pct(a), Partial::Pct(b)) => a.merge(*b),
            (Partial::Top(a), Partial::Top(b)) => {
                a.total += b.total;
                a.hits.extend(b.hits);
            }
            _ => {}
        }
    }
}

/// Numeric value of a sub-aggregation, for `order` by a sub-aggregation path.
pub(crate) fn sub_value(node: &AggNode, p: &Partial, metric: Option<&str>) -> f64 {
    match (&node.kind, p) {
        (Kind::Metric(m), Partial::Stats(s)) => {
            let op = match metric {
                None => m.op,
                Some("avg") => MetricOp::Avg,
                Some("sum") => MetricOp::Sum,
                Some("min") => MetricOp::Min,
                Some("max") => MetricOp::Max,
                Some("count") => MetricOp::ValueCount,
                Some("variance") | Some("std_deviation") | Some("sum_of_squares") => {
                    let n = s.count as f64;
                    if n == 0.0 {
                        return f64::NAN;
                    }
                    let var = (s.sum_sq / n - (s.sum / n).powi(2)).max(0.0);
                    return match metric {
                        Some("variance") => var,
                        Some("std_deviation") => var.sqrt(),
                        _ => s.sum_sq,
                    };
                }
                Some(_) => m.op,
            };
            match op {
                MetricOp::Sum => s.sum,
                MetricOp::ValueCount => s.count as f64,
                _ if s.count == 0 => f64::NAN,
                MetricOp::Avg => s.sum / s.count as f64,
                MetricOp::Min => s.min,
                MetricOp::Max => s.max,
                _ => s.sum / s.count as f64,
            }
        }
        (Kind::Cardinality(_), Partial::Card(c)) => c.sketch.estimate() as f64,
        (Kind::Percentiles(_), Partial::Pct(d)) => {
            let q = metric.and_then(|m| m.parse::<f64>().ok()).unwrap_or(50.0);
            let mut d2 = (**d).clone();
            d2.quantile(q / 100.0).unwrap_or(f64::NAN)
        }
        (_, Partial::Single(b)) => b.doc_count as f64,
        _ => f64::NAN,
    }
}

/// Compares two buckets by an `order` list, ES style; ties break on the key ascending.
pub(crate) fn cmp_buckets(
    order: &[Order],
    subs: &[AggNode],
    a: (&Key, &Bucket),
    b: (&Key, &Bucket),
) -> Ordering {
    for o in order {
        let c = match &o.key {
            OrderKey::Count => a.1.doc_count.cmp(&b.1.doc_count),
            OrderKey::Key => a.0.cmp(b.0),
            OrderKey::Sub(name, metric) => {
                let Some(i) = subs.iter().position(|s| &s.name == name) else {
                    continue;
                };
                let va =
                    a.1.subs
                        .get(i)
                        .map(|p| sub_value(&subs[i], p, metric.as_deref()));
                let vb =
                    b.1.subs
                        .get(i)
                        .map(|p| sub_value(&subs[i], p, metric.as_deref()));
                let (va, vb) = (va.unwrap_or(f64::NAN), vb.unwrap_or(f64::NAN));
                // Missing values (NaN) sort last whatever the direction, like ES.
                match (va.is_nan(), vb.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => return Ordering::Greater,
                    (false, true) => return Ordering::Less,
                    _ => va.total_cmp(&vb),
                }
            }
        };
        let c = if o.asc { c } else { c.reverse() };
        if c != Ordering::Equal {
            return c;
        }
    }
    a.0.cmp(b.0)
}

pub(crate) fn sort_hits(hits: &mut [Hit], sort_ts: Option<bool>) {
    hits.sort_by(|a, b| {
        let c = match sort_ts {
            Some(true) => b.sort.cmp(&a.sort),
            Some(false) => a.sort.cmp(&b.sort),
            None => Ordering::Equal,
        };
        c.then(a.tie.cmp(&b.tie))
    });
}

/// Trims one shard's result the way an Elasticsearch shard does before sending it
/// to the coordinating node: terms keep their top `shard_size` buckets (the rest is
/// counted in `sum_other_doc_count`, and the error bound is recorded), composite keeps
/// `size` buckets, top_hits keeps `from + size` hits.
/// Default number of terms buckets a partition keeps for the merge.
pub(crate) const PARTITION_SHARD_SIZE: usize = 10_000;

pub(crate) fn finalize_shard(nodes: &[AggNode], parts: &mut [Partial], single: bool) {
    for (node, p) in nodes.iter().zip(parts.iter_mut()) {
        match (&node.kind, p) {
            (Kind::Terms(t), Partial::Terms(tp)) => {
                let shard_size = if single {
                    t.size
                } else {
                    // Partitions are a storage detail of one index, where users
                    // expect exact counts: keep far more than a shard would.
                    t.shard_size
                        .unwrap_or((t.size.saturating_mul(3) / 2 + 10).max(PARTITION_SHARD_SIZE))
                        .max(t.size)
                };
                if tp.buckets.len() > shard_size {
                    let mut all: Vec<(Key, Bucket)> = tp.buckets.drain().collect();
                    all.sort_by(|a, b| {
                        cmp_buckets(&t.order, &node.subs, (&a.0, &a.1), (&b.0, &b.1))
                    });
                    let rest = all.split_off(shard_size);
                    tp.other += rest.iter().map(|(_, b)| b.doc_count).sum::<u64>();
                    let last = all.last().map(|(_, b)| b.doc_count).unwrap_or(0);
                    let err = match t.order.first().map(|o| (&o.key, o.asc)) {
                        _ if single => 0,
                        Some((OrderKey::Count, false)) => last as i64,
                        Some((OrderKey::Key, _)) => 0,
                        _ => -1,
                    };
                    tp.error = if tp.error < 0 || err < 0 {
                        -1
                    } else {
                        tp.error + err
                    };
                    tp.buckets = all.into_iter().collect();
                }
                for b in tp.buckets.values_mut() {
                    finalize_shard(&node.subs, &mut b.subs, single);
                }
            }
            (Kind::Composite(c), Partial::Composite(m)) => {
                while m.len() > c.size {
                    m.pop_last();
                }
                for b in m.values_mut() {
                    finalize_shard(&node.subs, &mut b.subs, single);
                }
            }
            (_, Partial::Hist(m)) => {
                for b in m.values_mut() {
                    finalize_shard(&node.subs, &mut b.subs, single);
                }
            }
            (_, Partial::Ranges(v)) => {
                for b in v.iter_mut() {
                    finalize_shard(&node.subs, &mut b.subs, single);
                }
            }
            (_, Partial::Single(b)) => finalize_shard(&node.subs, &mut b.subs, single),
            (_, Partial::Filters(v, o)) => {
                for b in v.iter_mut() {
                    finalize_shard(&node.subs, &mut b.subs, single);
                }
                finalize_shard(&node.subs, &mut o.subs, single);
            }
            (Kind::TopHits(t), Partial::Top(tp)) => {
                sort_hits(&mut tp.hits, t.sort_ts);
                tp.hits.truncate(t.from + t.size);
            }
            _ => {}
        }
    }
}
