//! Collection: per partition ("shard"), per segment, the matching documents are fed
//! through the aggregation tree, reading values from fast-field columns only (top_hits
//! alone loads `_source`, for its few hits).

use std::collections::HashMap;

use cairn_core::mapping::{Mapping, StorageClass};
use cairn_core::EsError;
use cairn_store::schema::json_path;
use serde_json::Value;
use tantivy::columnar::{DynamicColumn, StrColumn};
use tantivy::query::{EnableScoring, Scorer, Weight};
use tantivy::{DocId, DocSet, SegmentReader, TantivyDocument, TERMINATED};

use super::dates::Rounder;
use super::parse::{AggNode, Kind, MetricOp, SourceKind};
use super::partial::{Bucket, Hit, Key, OKey, Partial, F};
use super::sketch::{fmix64, hash_bytes};
use super::{AggContext, AggTarget};
use crate::compile::Compiler;

pub(crate) fn tantivy_err(e: impl std::fmt::Display) -> EsError {
    EsError::new(500, "exception", format!("aggregation failed: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValKind {
    Str,
    Int,
    Float,
    Bool,
    Date,
}

#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// `None` = the `@ts` column (`@timestamp`).
    pub path: Option<String>,
    pub kind: ValKind,
}

/// Resolves an aggregation's field against an index mapping. `Ok(None)` = unmapped.
pub(crate) fn resolve_field(
    mapping: &Mapping,
    index: &str,
    field: &str,
) -> Result<Option<Resolved>, EsError> {
    if field == "@timestamp" {
        return Ok(Some(Resolved {
            path: None,
            kind: ValKind::Date,
        }));
    }
    let found = mapping.resolve(field).or_else(|| {
        field
            .strip_suffix(".keyword")
            .and_then(|b| mapping.resolve(b))
            .filter(|(_, fm)| fm.ty.storage() == StorageClass::Keyword)
    });
    let Some((path, fm)) = found else {
        return Ok(None);
    };
    if path == "@timestamp" {
        return Ok(Some(Resolved {
            path: None,
            kind: ValKind::Date,
        }));
    }
    let kind = match fm.ty.storage() {
        StorageClass::Text => {
            return Err(EsError::illegal_argument(format!(
                "Fielddata is disabled on [{field}] in [{index}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
            )))
        }
        StorageClass::Keyword => ValKind::Str,
        StorageClass::Integer => ValKind::Int,
        StorageClass::Float => ValKind::Float,
        StorageClass::Boolean => ValKind::Bool,
        StorageClass::Date => ValKind::Date,
        StorageClass::Object | StorageClass::None => {
            return Err(EsError::illegal_argument(format!(
                "Field [{field}] of type [{}] is not supported for aggregation",
                fm.ty.name()
            )))
        }
    };
    Ok(Some(Resolved {
        path: Some(path.to_string()),
        kind,
    }))
}

fn numeric_only(
    r: &Option<Resolved>,
    field: &str,
    agg: &str,
    mapping: &Mapping,
) -> Result<(), EsError> {
    if let Some(r) = r {
        if r.kind == ValKind::Str {
            let ty = mapping
                .resolve(field)
                .map(|(_, fm)| fm.ty.name())
                .unwrap_or("keyword");
            return Err(EsError::illegal_argument(format!(
                "Field [{field}] of type [{ty}] is not supported for aggregation [{agg}]"
            )));
        }
    }
    Ok(())
}

/// A resolved range: `[from, to)` in the field's numeric domain (millis for dates).
#[derive(Debug, Clone)]
pub(crate) struct RangeB {
    pub key: Option<String>,
    pub from: Option<f64>,
    pub to: Option<f64>,
}

/// Resolves and sorts (by from, then to) the ranges of a range / date_range.
pub(crate) fn resolve_ranges(
    spec: &super::parse::RangeSpec,
    is_date: bool,
    now: i64,
) -> Result<Vec<RangeB>, EsError> {
    let conv = |v: &Option<Value>| -> Result<Option<f64>, EsError> {
        match v {
            None => Ok(None),
            Some(v) if is_date => cairn_query::datemath::resolve_value(
                v,
                now,
                false,
                spec.format.as_deref(),
                &spec.time_zone,
            )
            .map(|m| Some(m as f64))
            .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone())),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
                EsError::new(
                    400,
                    "number_format_exception",
                    format!("For input string: \"{s}\""),
                )
            }),
            Some(other) => Err(EsError::parsing(format!(
                "[range] from/to doesn't support value [{other}]"
            ))),
        }
    };
    let mut out = Vec::new();
    for r in &spec.ranges {
        out.push(RangeB {
            key: r.key.clone(),
            from: conv(&r.from)?,
            to: conv(&r.to)?,
        });
    }
    out.sort_by(|a, b| {
        let fa = a.from.unwrap_or(f64::NEG_INFINITY);
        let fb = b.from.unwrap_or(f64::NEG_INFINITY);
        fa.total_cmp(&fb).then(
            a.to.unwrap_or(f64::INFINITY)
                .total_cmp(&b.to.unwrap_or(f64::INFINITY)),
        )
    });
    Ok(out)
}

/// Converts a JSON value (`missing`, composite `after`) to a key of a field kind.
pub(crate) fn json_to_key(v: &Value, kind: Option<ValKind>, now: i64) -> Key {
    match (v, kind) {
        (Value::Null, _) => Key::Null,
        (Value::Bool(b), _) => Key::Bool(*b),
        (Value::Number(n), Some(ValKind::Int)) => Key::Int(
            n.as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        ),
        (Value::Number(n), Some(ValKind::Date)) => Key::Date(n.as_i64().unwrap_or(0)),
        (Value::Number(n), _) => match n.as_i64() {
            Some(i) if kind.is_none() => Key::Int(i),
            _ => Key::Num(F(n.as_f64().unwrap_or(0.0))),
        },
        (Value::String(s), Some(ValKind::Date)) => cairn_query::datemath::resolve_value(
            v,
            now,
            false,
            None,
            &cairn_query::datemath::TimeZone::utc(),
        )
        .map(Key::Date)
        .unwrap_or_else(|_| Key::Str(s.clone())),
        (Value::String(s), Some(ValKind::Int)) => s
            .parse::<i64>()
            .map(Key::Int)
            .unwrap_or_else(|_| Key::Str(s.clone())),
        (Value::String(s), Some(ValKind::Float)) => s
            .parse::<f64>()
            .map(|f| Key::Num(F(f)))
            .unwrap_or_else(|_| Key::Str(s.clone())),
        (Value::String(s), Some(ValKind::Bool)) => Key::Bool(s == "true"),
        (Value::String(s), _) => Key::Str(s.clone()),
        (other, _) => Key::Str(other.to_string()),
    }
}

fn key_to_f64(k: &Key) -> Option<f64> {
    match k {
        Key::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Key::Int(i) => Some(*i as f64),
        Key::Num(f) => Some(f.0),
        Key::Date(d) => Some(*d as f64),
        _ => None,
    }
}

/// Per-target preparation of one aggregation node (field resolution, filter weights).
pub(crate) struct Prep {
    field: Option<Resolved>,
    missing_key: Option<Key>,
    weights: Vec<Box<dyn Weight>>,
    comp: Vec<Option<Resolved>>,
    comp_after: Option<Vec<OKey>>,
    ranges: Vec<RangeB>,
    rounder: Option<Rounder>,
    hard: Option<(Option<f64>, Option<f64>)>,
    subs: Vec<Prep>,
}

impl Prep {
    /// A histogram over the `@timestamp` column with no `missing` and no hard bounds
    /// (what the fast path in `fast.rs` can answer).
    pub(crate) fn is_plain_timestamp_histogram(&self) -> bool {
        self.field.as_ref().is_some_and(|f| f.path.is_none())
            && self.missing_key.is_none()
            && self.hard.is_none()
    }

    pub(crate) fn rounder(&self) -> Option<&Rounder> {
        self.rounder.as_ref()
    }
}

fn bound_ms(
    v: &Option<Value>,
    d: &super::parse::DateHistSpec,
    now: i64,
) -> Result<Option<f64>, EsError> {
    match v {
        None => Ok(None),
        Some(v) => {
            cairn_query::datemath::resolve_value(v, now, false, d.format.as_deref(), &d.time_zone)
                .map(|m| Some(m as f64))
                .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone()))
        }
    }
}

fn prepare(nodes: &[AggNode], t: &AggTarget<'_>, ctx: &AggContext) -> Result<Vec<Prep>, EsError> {
    let mut out = Vec::new();
    for n in nodes {
        let mut p = Prep {
            field: None,
            missing_key: None,
            weights: Vec::new(),
            comp: Vec::new(),
            comp_after: None,
            ranges: Vec::new(),
            rounder: None,
            hard: None,
            subs: prepare(&n.subs, t, ctx)?,
        };
        let res = |f: &str| resolve_field(t.mapping, t.index, f);
        let compile = |q: &cairn_query::Query| -> Result<Box<dyn Weight>, EsError> {
            let c = Compiler {
                mapping: t.mapping,
                fields: t.fields,
                now_millis: ctx.now_millis,
            };
            let tq = c.compile(q)?;
            tq.weight(EnableScoring::disabled_from_searcher(t.searcher))
                .map_err(tantivy_err)
        };
        match &n.kind {
            Kind::Terms(s) => {
                p.field = res(&s.field)?;
                p.missing_key = s
                    .missing
                    .as_ref()
                    .map(|m| json_to_key(m, p.field.as_ref().map(|r| r.kind), ctx.now_millis));
            }
            Kind::DateHistogram(d) => {
                p.field = res(&d.field)?;
                numeric_only(&p.field, &d.field, "date_histogram", t.mapping)?;
                p.rounder = Some(Rounder {
                    interval: d.interval,
                    tz: d.time_zone,
                    offset: d.offset,
                });
                if let Some(h) = &d.hard_bounds {
                    p.hard = Some((
                        bound_ms(&h.min, d, ctx.now_millis)?,
                        bound_ms(&h.max, d, ctx.now_millis)?,
                    ));
                }
            }
            Kind::Histogram(h) => {
                p.field = res(&h.field)?;
                numeric_only(&p.field, &h.field, "histogram", t.mapping)?;
                p.hard = h.hard_bounds;
                p.missing_key = h.missing.map(|m| Key::Num(F(m)));
            }
            Kind::Range(r) | Kind::DateRange(r) => {
                p.field = res(&r.field)?;
                numeric_only(&p.field, &r.field, n.kind.type_name(), t.mapping)?;
                let is_date = matches!(n.kind, Kind::DateRange(_))
                    || p.field.as_ref().is_some_and(|f| f.kind == ValKind::Date);
                p.ranges = resolve_ranges(r, is_date, ctx.now_millis)?;
                p.missing_key = r
                    .missing
                    .as_ref()
                    .map(|m| json_to_key(m, p.field.as_ref().map(|r| r.kind), ctx.now_millis));
            }
            Kind::Filter(q) => p.weights.push(compile(q)?),
            Kind::Filters(f) => {
                for (_, q) in &f.filters {
                    p.weights.push(compile(q)?);
                }
            }
            Kind::Composite(c) => {
                for s in &c.sources {
                    let r = res(&s.field)?;
                    if !matches!(s.kind, SourceKind::Terms) {
                        numeric_only(&r, &s.field, "composite", t.mapping)?;
                    }
                    p.comp.push(r);
                }
                if let Some(after) = &c.after {
                    let mut keys = Vec::new();
                    for (s, r) in c.sources.iter().zip(&p.comp) {
                        let v = after.get(&s.name).unwrap_or(&Value::Null);
                        let kind = match s.kind {
                            SourceKind::Terms => r.as_ref().map(|r| r.kind),
                            SourceKind::DateHistogram(..) => Some(ValKind::Date),
                            SourceKind::Histogram(_) => Some(ValKind::Float),
                        };
                        keys.push(OKey {
                            key: json_to_key(v, kind, ctx.now_millis),
                            desc: s.desc,
                        });
                    }
                    p.comp_after = Some(keys);
                }
            }
            Kind::Metric(m) => {
                p.field = res(&m.field)?;
                if m.op != MetricOp::ValueCount {
                    numeric_only(&p.field, &m.field, m.op.name(), t.mapping)?;
                }
                p.missing_key = m
                    .missing
                    .as_ref()
                    .map(|v| json_to_key(v, p.field.as_ref().map(|r| r.kind), ctx.now_millis));
            }
            Kind::Cardinality(c) => {
                p.field = res(&c.field)?;
                p.missing_key = c
                    .missing
                    .as_ref()
                    .map(|v| json_to_key(v, p.field.as_ref().map(|r| r.kind), ctx.now_millis));
            }
            Kind::Percentiles(pc) => {
                p.field = res(&pc.field)?;
                numeric_only(&p.field, &pc.field, "percentiles", t.mapping)?;
                p.missing_key = pc
                    .missing
                    .as_ref()
                    .map(|v| json_to_key(v, p.field.as_ref().map(|r| r.kind), ctx.now_millis));
            }
            Kind::TopHits(_) => {
                p.field = Some(Resolved {
                    path: None,
                    kind: ValKind::Date,
                });
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// The columns of one field in one segment.
pub(crate) struct Source {
    kind: ValKind,
    cols: Vec<DynamicColumn>,
}

impl Source {
    fn open(sr: &SegmentReader, r: &Resolved) -> Result<Source, EsError> {
        let ff = sr.fast_fields();
        let mut cols = Vec::new();
        match &r.path {
            None => {
                if let Some(c) = ff
                    .column_opt::<tantivy::DateTime>("@ts")
                    .map_err(tantivy_err)?
                {
                    cols.push(DynamicColumn::DateTime(c));
                }
            }
            Some(p) => {
                for h in ff
                    .dynamic_column_handles(&format!("kw.{}", json_path(p)))
                    .map_err(tantivy_err)?
                {
                    let c = h.open().map_err(tantivy_err)?;
                    let keep = matches!(
                        (&c, r.kind),
                        (DynamicColumn::Str(_), ValKind::Str)
                            | (
                                DynamicColumn::I64(_)
                                    | DynamicColumn::U64(_)
                                    | DynamicColumn::F64(_),
                                ValKind::Int | ValKind::Float
                            )
                            | (DynamicColumn::Bool(_), ValKind::Bool)
                            | (DynamicColumn::DateTime(_), ValKind::Date)
                    );
                    if keep {
                        cols.push(c);
                    }
                }
            }
        }
        Ok(Source { kind: r.kind, cols })
    }

    fn keys(&self, doc: DocId, out: &mut Vec<Key>) {
        out.clear();
        for c in &self.cols {
            match c {
                DynamicColumn::Str(s) => out.extend(s.term_ords(doc).map(Key::Ord)),
                DynamicColumn::I64(c) => out.extend(
                    c.values_for_doc(doc)
                        .map(|v| self.num_key(v as f64, Some(v))),
                ),
                DynamicColumn::U64(c) => out.extend(
                    c.values_for_doc(doc)
                        .map(|v| self.num_key(v as f64, i64::try_from(v).ok())),
                ),
                DynamicColumn::F64(c) => {
                    out.extend(c.values_for_doc(doc).map(|v| self.num_key(v, None)))
                }
                DynamicColumn::Bool(c) => out.extend(c.values_for_doc(doc).map(Key::Bool)),
                DynamicColumn::DateTime(c) => out.extend(
                    c.values_for_doc(doc)
                        .map(|d| Key::Date(d.into_timestamp_micros().div_euclid(1000))),
                ),
                _ => {}
            }
        }
    }

    fn num_key(&self, f: f64, i: Option<i64>) -> Key {
        match self.kind {
            ValKind::Int => Key::Int(i.unwrap_or(f as i64)),
            _ => Key::Num(F(f)),
        }
    }

    fn nums(&self, doc: DocId, out: &mut Vec<f64>) {
        out.clear();
        for c in &self.cols {
            match c {
                DynamicColumn::I64(c) => out.extend(c.values_for_doc(doc).map(|v| v as f64)),
                DynamicColumn::U64(c) => out.extend(c.values_for_doc(doc).map(|v| v as f64)),
                DynamicColumn::F64(c) => out.extend(c.values_for_doc(doc)),
                DynamicColumn::Bool(c) => {
                    out.extend(c.values_for_doc(doc).map(|b| if b { 1.0 } else { 0.0 }))
                }
                DynamicColumn::DateTime(c) => out.extend(
                    c.values_for_doc(doc)
                        .map(|d| d.into_timestamp_micros().div_euclid(1000) as f64),
                ),
                _ => {}
            }
        }
    }

    fn str_col(&self) -> Option<&StrColumn> {
        self.cols.iter().find_map(|c| match c {
            DynamicColumn::Str(s) => Some(s),
            _ => None,
        })
    }

    /// Resolves many ordinals at once, streaming through the dictionary in order
    /// (one block decompression per block, instead of one per ordinal).
    fn ords_to_strs(
        &self,
        ords: &mut [u64],
        mut cb: impl FnMut(u64, &[u8]),
    ) -> Result<(), EsError> {
        let Some(c) = self.str_col() else {
            return Ok(());
        };
        ords.sort_unstable();
        let mut i = 0;
        c.dictionary()
            .sorted_ords_to_term_cb(ords, |bytes| {
                if let Some(o) = ords.get(i) {
                    cb(*o, bytes);
                }
                i += 1;
            })
            .map_err(|e| EsError::internal(format!("reading a terms dictionary: {e}")))?;
        Ok(())
    }

    fn ord_str(&self, ord: u64) -> Result<String, EsError> {
        let mut s = String::new();
        if let Some(c) = self.str_col() {
            c.ord_to_str(ord, &mut s).map_err(tantivy_err)?;
        }
        Ok(s)
    }
}

struct Seg<'a> {
    node: &'a AggNode,
    prep: &'a Prep,
    src: Option<Source>,
    comp: Vec<Option<Source>>,
    comp_cache: Vec<HashMap<u64, String>>,
    matchers: Vec<Box<dyn Scorer>>,
    subs: Vec<Seg<'a>>,
    kbuf: Vec<Key>,
    nbuf: Vec<f64>,
}

fn open_segs<'a>(
    nodes: &'a [AggNode],
    preps: &'a [Prep],
    sr: &SegmentReader,
) -> Result<Vec<Seg<'a>>, EsError> {
    let mut out = Vec::new();
    for (node, prep) in nodes.iter().zip(preps) {
        let src = match &prep.field {
            Some(r) => Some(Source::open(sr, r)?),
            None => None,
        };
        let mut comp = Vec::new();
        for r in &prep.comp {
            comp.push(match r {
                Some(r) => Some(Source::open(sr, r)?),
                None => None,
            });
        }
        let mut matchers = Vec::new();
        for w in &prep.weights {
            matchers.push(w.scorer(sr, 1.0).map_err(tantivy_err)?);
        }
        out.push(Seg {
            node,
            prep,
            src,
            comp_cache: vec![HashMap::new(); comp.len()],
            comp,
            matchers,
            subs: open_segs(&node.subs, &prep.subs, sr)?,
            kbuf: Vec::new(),
            nbuf: Vec::new(),
        });
    }
    Ok(out)
}

fn matches(s: &mut dyn Scorer, doc: DocId) -> bool {
    if s.doc() < doc {
        s.seek(doc);
    }
    s.doc() == doc
}

fn collect_bucket(
    subs: &mut [Seg<'_>],
    b: &mut Bucket,
    doc: DocId,
    ctx: &AggContext,
) -> Result<(), EsError> {
    b.doc_count += 1;
    for (s, p) in subs.iter_mut().zip(b.subs.iter_mut()) {
        collect(s, p, doc, ctx)?;
    }
    Ok(())
}

pub(crate) fn too_many(limit: usize, _n: usize) -> EsError {
    super::too_many_buckets(limit)
}

fn collect(
    seg: &mut Seg<'_>,
    part: &mut Partial,
    doc: DocId,
    ctx: &AggContext,
) -> Result<(), EsError> {
    let Seg {
        node,
        prep,
        src,
        comp,
        comp_cache,
        matchers,
        subs,
        kbuf,
        nbuf,
    } = seg;
    match (&node.kind, part) {
        (Kind::Terms(_), Partial::Terms(tp)) => {
            match src {
                Some(s) => s.keys(doc, kbuf),
                None => kbuf.clear(),
            }
            if kbuf.is_empty() {
                if let Some(m) = &prep.missing_key {
                    kbuf.push(m.clone());
                }
            }
            kbuf.sort();
            kbuf.dedup();
            for k in kbuf.iter() {
                let b = match tp.buckets.get_mut(k) {
                    Some(b) => b,
                    None => tp
                        .buckets
                        .entry(k.clone())
                        .or_insert_with(|| Bucket::new(&node.subs)),
                };
                collect_bucket(subs, b, doc, ctx)?;
            }
        }
        (Kind::DateHistogram(_), Partial::Hist(map)) | (Kind::Histogram(_), Partial::Hist(map)) => {
            match src {
                Some(s) => s.nums(doc, nbuf),
                None => nbuf.clear(),
            }
            if nbuf.is_empty() {
                if let Some(v) = prep.missing_key.as_ref().and_then(key_to_f64) {
                    nbuf.push(v);
                }
            }
            kbuf.clear();
            // Most documents have one value: no allocation on that path.
            let mut single: Option<i64> = None;
            let mut keys: Vec<i64> = Vec::new();
            for &v in nbuf.iter() {
                if let Some((lo, hi)) = prep.hard {
                    if lo.is_some_and(|l| v < l) || hi.is_some_and(|h| v > h) {
                        continue;
                    }
                }
                let k = match (&node.kind, &prep.rounder) {
                    (Kind::Histogram(h), _) => ((v - h.offset) / h.interval).floor() as i64,
                    (_, Some(r)) => r.round(v as i64),
                    _ => continue,
                };
                match single {
                    None if keys.is_empty() => single = Some(k),
                    Some(s0) if s0 == k => {}
                    _ => {
                        keys.extend(single.take());
                        keys.push(k);
                    }
                }
            }
            if !keys.is_empty() {
                keys.extend(single.take());
                keys.sort_unstable();
                keys.dedup();
            }
            let ks: &[i64] = if keys.is_empty() {
                single.as_slice()
            } else {
                &keys
            };
            for &k in ks {
                // One map lookup on the common path (the bucket exists).
                let b = match map.get_mut(&k) {
                    Some(b) => b,
                    None => {
                        if map.len() >= ctx.max_buckets {
                            return Err(too_many(ctx.max_buckets, map.len() + 1));
                        }
                        map.entry(k).or_insert_with(|| Bucket::new(&node.subs))
                    }
                };
                collect_bucket(subs, b, doc, ctx)?;
            }
        }
        (Kind::Range(_) | Kind::DateRange(_), Partial::Ranges(bs)) => {
            match src {
                Some(s) => s.nums(doc, nbuf),
                None => nbuf.clear(),
            }
            if nbuf.is_empty() {
                if let Some(v) = prep.missing_key.as_ref().and_then(key_to_f64) {
                    nbuf.push(v);
                }
            }
            for (i, r) in prep.ranges.iter().enumerate() {
                let hit = nbuf
                    .iter()
                    .any(|&v| r.from.is_none_or(|f| v >= f) && r.to.is_none_or(|t| v < t));
                if hit {
                    if let Some(b) = bs.get_mut(i) {
                        collect_bucket(subs, b, doc, ctx)?;
                    }
                }
            }
        }
        (Kind::Filter(_), Partial::Single(b)) => {
            if let Some(m) = matchers.first_mut() {
                if matches(m.as_mut(), doc) {
                    collect_bucket(subs, b, doc, ctx)?;
                }
            }
        }
        (Kind::Filters(f), Partial::Filters(bs, other)) => {
            let mut any = false;
            for (i, m) in matchers.iter_mut().enumerate() {
                if matches(m.as_mut(), doc) {
                    any = true;
                    if let Some(b) = bs.get_mut(i) {
                        collect_bucket(subs, b, doc, ctx)?;
                    }
                }
            }
            if !any && f.other_bucket {
                collect_bucket(subs, other, doc, ctx)?;
            }
        }
        (Kind::Composite(c), Partial::Composite(map)) => {
            let mut per_source: Vec<Vec<OKey>> = Vec::with_capacity(c.sources.len());
            for (i, s) in c.sources.iter().enumerate() {
                let mut keys: Vec<Key> = Vec::new();
                if let Some(Some(src)) = comp.get(i) {
                    match &s.kind {
                        SourceKind::Terms => {
                            src.keys(doc, kbuf);
                            for k in kbuf.iter() {
                                keys.push(match k {
                                    Key::Ord(o) => {
                                        let cache = &mut comp_cache[i];
                                        match cache.get(o) {
                                            Some(s) => Key::Str(s.clone()),
                                            None => {
                                                let st = src.ord_str(*o)?;
                                                cache.insert(*o, st.clone());
                                                Key::Str(st)
                                            }
                                        }
                                    }
                                    other => other.clone(),
                                });
                            }
                        }
                        SourceKind::DateHistogram(iv, tz, off) => {
                            src.nums(doc, nbuf);
                            let r = Rounder {
                                interval: *iv,
                                tz: *tz,
                                offset: *off,
                            };
                            keys.extend(nbuf.iter().map(|&v| Key::Date(r.round(v as i64))));
                        }
                        SourceKind::Histogram(iv) => {
                            src.nums(doc, nbuf);
                            keys.extend(nbuf.iter().map(|&v| Key::Num(F((v / iv).floor() * iv))));
                        }
                    }
                }
                keys.sort();
                keys.dedup();
                if keys.is_empty() {
                    if s.missing_bucket {
                        keys.push(Key::Null);
                    } else {
                        return Ok(());
                    }
                }
                per_source.push(
                    keys.into_iter()
                        .map(|key| OKey { key, desc: s.desc })
                        .collect(),
                );
            }
            // Cartesian product of the sources' values.
            let mut combos: Vec<Vec<OKey>> = vec![Vec::new()];
            for vals in &per_source {
                let mut next = Vec::with_capacity(combos.len() * vals.len());
                for c0 in &combos {
                    for v in vals {
                        let mut c1 = c0.clone();
                        c1.push(v.clone());
                        next.push(c1);
                    }
                }
                combos = next;
            }
            for key in combos {
                if let Some(after) = &prep.comp_after {
                    if key <= *after {
                        continue;
                    }
                }
                if !map.contains_key(&key) {
                    if map.len() >= c.size {
                        if let Some(last) = map.keys().next_back() {
                            if key > *last {
                                continue;
                            }
                        }
                    }
                    map.insert(key.clone(), Bucket::new(&node.subs));
                }
                if let Some(b) = map.get_mut(&key) {
                    collect_bucket(subs, b, doc, ctx)?;
                }
                while map.len() > c.size {
                    map.pop_last();
                }
            }
        }
        (Kind::Metric(m), Partial::Stats(st)) => {
            if m.op == MetricOp::ValueCount {
                match src {
                    Some(s) => s.keys(doc, kbuf),
                    None => kbuf.clear(),
                }
                if kbuf.is_empty() && prep.missing_key.is_some() {
                    st.count += 1;
                }
                st.count += kbuf.len() as u64;
                return Ok(());
            }
            match src {
                Some(s) => {
                    s.nums(doc, nbuf);
                    st.is_date |= s.kind == ValKind::Date;
                }
                None => nbuf.clear(),
            }
            if nbuf.is_empty() {
                if let Some(v) = prep.missing_key.as_ref().and_then(key_to_f64) {
                    nbuf.push(v);
                }
            }
            for &v in nbuf.iter() {
                st.add(v);
            }
        }
        (Kind::Cardinality(_), Partial::Card(cp)) => {
            match src {
                Some(s) => s.keys(doc, kbuf),
                None => kbuf.clear(),
            }
            if kbuf.is_empty() {
                if let Some(m) = &prep.missing_key {
                    kbuf.push(m.clone());
                }
            }
            for k in kbuf.iter() {
                match k {
                    Key::Ord(o) => {
                        cp.ords.insert(*o);
                    }
                    other => cp.sketch.add_hash(hash_key(other)),
                }
            }
        }
        (Kind::Percentiles(_), Partial::Pct(d)) => {
            match src {
                Some(s) => s.nums(doc, nbuf),
                None => nbuf.clear(),
            }
            if nbuf.is_empty() {
                if let Some(v) = prep.missing_key.as_ref().and_then(key_to_f64) {
                    nbuf.push(v);
                }
            }
            for &v in nbuf.iter() {
                d.add(v);
            }
        }
        (Kind::TopHits(t), Partial::Top(tp)) => {
            tp.total += 1;
            let ts = match src {
                Some(s) => {
                    s.nums(doc, nbuf);
                    nbuf.first().map(|v| *v as i64).unwrap_or(i64::MIN)
                }
                None => i64::MIN,
            };
            tp.seg.push((ts, doc));
            let k = t.from + t.size;
            if tp.seg.len() > 2 * k + 64 {
                sort_seg(&mut tp.seg, t.sort_ts);
                tp.seg.truncate(k);
            }
        }
        _ => {}
    }
    Ok(())
}

fn sort_seg(v: &mut [(i64, u32)], sort_ts: Option<bool>) {
    v.sort_by(|a, b| {
        let c = match sort_ts {
            Some(true) => b.0.cmp(&a.0),
            Some(false) => a.0.cmp(&b.0),
            None => std::cmp::Ordering::Equal,
        };
        c.then(a.1.cmp(&b.1))
    });
}

pub(crate) fn hash_key(k: &Key) -> u64 {
    match k {
        Key::Str(s) => hash_bytes(s.as_bytes()),
        Key::Int(i) => fmix64(*i as u64 ^ 0x1111),
        Key::Num(f) => {
            if f.0.fract() == 0.0 && f.0.abs() < 9e15 {
                fmix64(f.0 as i64 as u64 ^ 0x1111)
            } else {
                fmix64(f.0.to_bits())
            }
        }
        Key::Date(d) => fmix64(*d as u64 ^ 0x2222),
        Key::Bool(b) => fmix64(u64::from(*b) ^ 0x3333),
        Key::Null => 0,
        Key::Ord(o) => fmix64(*o),
    }
}

struct HarvestCtx<'a> {
    sr: &'a SegmentReader,
    target: &'a AggTarget<'a>,
    tidx: usize,
    seg_ord: usize,
}

/// Turns a segment's partial result into a segment-independent one: term ordinals
/// become strings (include/exclude applied), cardinality ordinals become hashes,
/// top hits load their documents.
fn harvest(segs: &[Seg<'_>], parts: &mut [Partial], h: &HarvestCtx<'_>) -> Result<(), EsError> {
    for (seg, part) in segs.iter().zip(parts.iter_mut()) {
        match (&seg.node.kind, part) {
            (Kind::Terms(t), Partial::Terms(tp)) => {
                let old = std::mem::take(&mut tp.buckets);
                let mut ords: Vec<u64> = old
                    .keys()
                    .filter_map(|k| match k {
                        Key::Ord(o) => Some(*o),
                        _ => None,
                    })
                    .collect();
                let mut names: HashMap<u64, String> = HashMap::with_capacity(ords.len());
                if let Some(s) = &seg.src {
                    s.ords_to_strs(&mut ords, |o, b| {
                        names.insert(o, String::from_utf8_lossy(b).into_owned());
                    })?;
                }
                for (k, mut b) in old {
                    let k = match k {
                        Key::Ord(o) => match names.remove(&o) {
                            Some(s) => Key::Str(s),
                            None => continue,
                        },
                        other => other,
                    };
                    if t.include.is_some() || t.exclude.is_some() {
                        let s = k.as_string();
                        if t.include.as_ref().is_some_and(|i| !i.matches(&s))
                            || t.exclude.as_ref().is_some_and(|e| e.matches(&s))
                        {
                            continue;
                        }
                    }
                    harvest(&seg.subs, &mut b.subs, h)?;
                    match tp.buckets.get_mut(&k) {
                        Some(x) => x.merge(b),
                        None => {
                            tp.buckets.insert(k, b);
                        }
                    }
                }
            }
            (_, Partial::Hist(m)) => {
                for b in m.values_mut() {
                    harvest(&seg.subs, &mut b.subs, h)?;
                }
            }
            (_, Partial::Ranges(v)) => {
                for b in v.iter_mut() {
                    harvest(&seg.subs, &mut b.subs, h)?;
                }
            }
            (_, Partial::Single(b)) => harvest(&seg.subs, &mut b.subs, h)?,
            (_, Partial::Filters(v, o)) => {
                for b in v.iter_mut() {
                    harvest(&seg.subs, &mut b.subs, h)?;
                }
                harvest(&seg.subs, &mut o.subs, h)?;
            }
            (_, Partial::Composite(m)) => {
                for b in m.values_mut() {
                    harvest(&seg.subs, &mut b.subs, h)?;
                }
            }
            (_, Partial::Card(cp)) => {
                let mut ords: Vec<u64> = std::mem::take(&mut cp.ords).into_iter().collect();
                if let Some(s) = &seg.src {
                    let sketch = &mut cp.sketch;
                    s.ords_to_strs(&mut ords, |_, b| sketch.add_hash(hash_bytes(b)))?;
                }
            }
            (Kind::TopHits(t), Partial::Top(tp)) => {
                let mut cands = std::mem::take(&mut tp.seg);
                sort_seg(&mut cands, t.sort_ts);
                cands.truncate(t.from + t.size);
                if cands.is_empty() {
                    continue;
                }
                let store = h.sr.get_store_reader(1).map_err(tantivy_err)?;
                for (sort, doc) in cands {
                    let d: TantivyDocument = store.get(doc).map_err(tantivy_err)?;
                    use tantivy::schema::document::Value as _;
                    let id = d
                        .get_first(h.target.fields.id)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string();
                    let source = d
                        .get_first(h.target.fields.source)
                        .and_then(|v| v.as_bytes())
                        .unwrap_or_default()
                        .to_vec();
                    tp.hits.push(Hit {
                        sort,
                        tie: (h.tidx, h.seg_ord, doc),
                        index: h.target.index.to_string(),
                        id,
                        source,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Collects one target (partition) over all its segments; the result is merged over
/// segments but not yet trimmed per shard.
pub(crate) fn collect_target(
    nodes: &[AggNode],
    t: &AggTarget<'_>,
    ctx: &AggContext,
    tidx: usize,
) -> Result<(Vec<Partial>, bool), EsError> {
    let preps = prepare(nodes, t, ctx)?;
    let weight = t
        .query
        .weight(EnableScoring::disabled_from_searcher(t.searcher))
        .map_err(tantivy_err)?;
    if let Some(fast) = super::fast::FastHist::new(nodes, &preps) {
        return fast.collect(t, weight.as_ref(), ctx);
    }
    let mut acc: Vec<Partial> = nodes.iter().map(Partial::empty).collect();
    let mut truncated = false;
    for (seg_ord, sr) in t.searcher.segment_readers().iter().enumerate() {
        if ctx.expired() {
            truncated = true;
            break;
        }
        let mut segs = open_segs(nodes, &preps, sr)?;
        let mut parts: Vec<Partial> = nodes.iter().map(Partial::empty).collect();
        let mut scorer = weight.scorer(sr, 1.0).map_err(tantivy_err)?;
        let alive = sr.alive_bitset();
        let mut doc = scorer.doc();
        let mut n: u32 = 0;
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                for (s, p) in segs.iter_mut().zip(parts.iter_mut()) {
                    collect(s, p, doc, ctx)?;
                }
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(65_536) && ctx.expired() {
                truncated = true;
                break;
            }
            doc = scorer.advance();
        }
        let h = HarvestCtx {
            sr,
            target: t,
            tidx,
            seg_ord,
        };
        harvest(&segs, &mut parts, &h)?;
        for (a, b) in acc.iter_mut().zip(parts) {
            a.merge(b);
        }
        if truncated {
            break;
        }
    }
    Ok((acc, truncated))
}
