//! Parsing of the `aggs` request object into [`Aggs`], with Elasticsearch's checks
//! and error wording (unknown aggregation types, unknown keys, bad values).

use cairn_core::EsError;
use cairn_query::Query;
use serde_json::{Map, Value};

use super::dates::Interval;

/// A parsed aggregation tree (the object under `aggs` / `aggregations`).
#[derive(Debug, Clone)]
pub struct Aggs {
    pub(crate) nodes: Vec<AggNode>,
}

impl Aggs {
    /// True when the request had no aggregations.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AggNode {
    pub name: String,
    pub kind: Kind,
    pub subs: Vec<AggNode>,
    pub meta: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Terms(Box<TermsSpec>),
    DateHistogram(Box<DateHistSpec>),
    Histogram(Box<HistSpec>),
    Range(Box<RangeSpec>),
    DateRange(Box<RangeSpec>),
    Filter(Box<Query>),
    Filters(Box<FiltersSpec>),
    Composite(Box<CompositeSpec>),
    Metric(Box<MetricSpec>),
    Cardinality(Box<CardSpec>),
    Percentiles(Box<PctSpec>),
    TopHits(Box<TopHitsSpec>),
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Terms(_) => "terms",
            Kind::DateHistogram(_) => "date_histogram",
            Kind::Histogram(_) => "histogram",
            Kind::Range(_) => "range",
            Kind::DateRange(_) => "date_range",
            Kind::Filter(_) => "filter",
            Kind::Filters(_) => "filters",
            Kind::Composite(_) => "composite",
            Kind::Metric(m) => m.op.name(),
            Kind::Cardinality(_) => "cardinality",
            Kind::Percentiles(_) => "percentiles",
            Kind::TopHits(_) => "top_hits",
        }
    }

    pub fn is_bucket(&self) -> bool {
        !matches!(
            self,
            Kind::Metric(_) | Kind::Cardinality(_) | Kind::Percentiles(_) | Kind::TopHits(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OrderKey {
    Count,
    Key,
    /// A sub-aggregation (`name` or `name.metric`).
    Sub(String, Option<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub key: OrderKey,
    pub asc: bool,
}

type Matcher = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub(crate) enum IncExc {
    Regex(Matcher),
    Exact(Vec<String>),
}

impl std::fmt::Debug for IncExc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IncExc::Regex(_) => f.write_str("Regex"),
            IncExc::Exact(v) => write!(f, "Exact({v:?})"),
        }
    }
}

impl IncExc {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            IncExc::Regex(r) => r(s),
            IncExc::Exact(v) => v.iter().any(|x| x == s),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TermsSpec {
    pub field: String,
    pub size: usize,
    pub shard_size: Option<usize>,
    pub min_doc_count: u64,
    pub order: Vec<Order>,
    pub missing: Option<Value>,
    pub include: Option<IncExc>,
    pub exclude: Option<IncExc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    pub min: Option<Value>,
    pub max: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct DateHistSpec {
    pub field: String,
    pub interval: Interval,
    pub time_zone: cairn_query::datemath::TimeZone,
    pub offset: i64,
    pub min_doc_count: u64,
    pub extended_bounds: Option<Bounds>,
    pub hard_bounds: Option<Bounds>,
    pub format: Option<String>,
    pub keyed: bool,
    pub order: Option<Order>,
}

#[derive(Debug, Clone)]
pub(crate) struct HistSpec {
    pub field: String,
    pub interval: f64,
    pub offset: f64,
    pub min_doc_count: u64,
    pub extended_bounds: Option<(Option<f64>, Option<f64>)>,
    pub hard_bounds: Option<(Option<f64>, Option<f64>)>,
    pub keyed: bool,
    pub order: Option<Order>,
    pub missing: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct RangeItem {
    pub key: Option<String>,
    pub from: Option<Value>,
    pub to: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct RangeSpec {
    pub field: String,
    pub ranges: Vec<RangeItem>,
    pub keyed: bool,
    pub format: Option<String>,
    pub time_zone: cairn_query::datemath::TimeZone,
    pub missing: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct FiltersSpec {
    /// (name, query); names are `None` for the anonymous (array) form.
    pub filters: Vec<(Option<String>, Query)>,
    pub other_bucket: bool,
    pub other_bucket_key: String,
    pub keyed: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum SourceKind {
    Terms,
    DateHistogram(Interval, cairn_query::datemath::TimeZone, i64),
    Histogram(f64),
}

#[derive(Debug, Clone)]
pub(crate) struct CompositeSource {
    pub name: String,
    pub field: String,
    pub kind: SourceKind,
    pub desc: bool,
    pub missing_bucket: bool,
    pub format: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompositeSpec {
    pub sources: Vec<CompositeSource>,
    pub size: usize,
    pub after: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MetricOp {
    Avg,
    Sum,
    Min,
    Max,
    Stats,
    ExtendedStats,
    ValueCount,
}

impl MetricOp {
    pub fn name(self) -> &'static str {
        match self {
            MetricOp::Avg => "avg",
            MetricOp::Sum => "sum",
            MetricOp::Min => "min",
            MetricOp::Max => "max",
            MetricOp::Stats => "stats",
            MetricOp::ExtendedStats => "extended_stats",
            MetricOp::ValueCount => "value_count",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct MetricSpec {
    pub op: MetricOp,
    pub field: String,
    pub missing: Option<Value>,
    pub sigma: f64,
    pub format: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CardSpec {
    pub field: String,
    pub precision_threshold: usize,
    pub missing: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct PctSpec {
    pub field: String,
    pub percents: Vec<f64>,
    pub keyed: bool,
    pub compression: f64,
    pub missing: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) enum SourceFilter {
    All,
    None,
    Filter {
        includes: Vec<String>,
        excludes: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct TopHitsSpec {
    pub size: usize,
    pub from: usize,
    /// `Some(desc)` when sorted on `@timestamp`; `None` for the default (score/doc order).
    pub sort_ts: Option<bool>,
    pub source: SourceFilter,
}

pub(crate) const AGG_TYPES: &[&str] = &[
    "terms",
    "date_histogram",
    "histogram",
    "range",
    "date_range",
    "filter",
    "filters",
    "composite",
    "avg",
    "sum",
    "min",
    "max",
    "stats",
    "extended_stats",
    "value_count",
    "cardinality",
    "percentiles",
    "top_hits",
];

/// Aggregation types Elasticsearch has that Cairn does not implement yet.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "adjacency_matrix",
    "auto_date_histogram",
    "avg_bucket",
    "boxplot",
    "bucket_script",
    "bucket_selector",
    "bucket_sort",
    "children",
    "cumulative_sum",
    "derivative",
    "diversified_sampler",
    "geo_bounds",
    "geo_centroid",
    "geohash_grid",
    "geotile_grid",
    "global",
    "ip_range",
    "matrix_stats",
    "max_bucket",
    "median_absolute_deviation",
    "min_bucket",
    "missing",
    "moving_fn",
    "multi_terms",
    "nested",
    "parent",
    "percentile_ranks",
    "rare_terms",
    "reverse_nested",
    "sampler",
    "scripted_metric",
    "serial_diff",
    "significant_terms",
    "significant_text",
    "stats_bucket",
    "string_stats",
    "sum_bucket",
    "t_test",
    "top_metrics",
    "variable_width_histogram",
    "weighted_avg",
];

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ES-style " did you mean [x]?" / " did you mean any of [x, y]?" suffix.
fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let mut close: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| {
            let d = levenshtein(word, c);
            d <= 2 && d < word.len().max(c.len())
        })
        .collect();
    close.sort();
    match close.len() {
        0 => String::new(),
        1 => format!(" did you mean [{}]?", close[0]),
        _ => format!(" did you mean any of [{}]?", close.join(", ")),
    }
}

fn unknown_field(agg: &str, key: &str, allowed: &[&str]) -> EsError {
    EsError::new(
        400,
        "x_content_parse_exception",
        format!(
            "[{agg}] unknown field [{key}]{}",
            did_you_mean(key, allowed)
        ),
    )
}

fn check_keys(agg: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), EsError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(unknown_field(agg, k, allowed));
        }
    }
    Ok(())
}

fn xcontent(reason: String) -> EsError {
    EsError::new(400, "x_content_parse_exception", reason)
}

fn obj<'a>(agg: &str, v: &'a Value) -> Result<&'a Map<String, Value>, EsError> {
    v.as_object().ok_or_else(|| {
        EsError::parsing(format!(
            "Expected [START_OBJECT] under [{agg}], but got a [{}]",
            token_name(v)
        ))
    })
}

fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "START_OBJECT",
        Value::Array(_) => "START_ARRAY",
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Null => "VALUE_NULL",
    }
}

fn get_str(agg: &str, o: &Map<String, Value>, key: &str) -> Result<Option<String>, EsError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(xcontent(format!(
            "[{agg}] {key} doesn't support values of type: {}",
            token_name(other)
        ))),
    }
}

fn get_f64(agg: &str, o: &Map<String, Value>, key: &str) -> Result<Option<f64>, EsError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
            EsError::new(
                400,
                "number_format_exception",
                format!("For input string: \"{s}\""),
            )
        }),
        Some(other) => Err(xcontent(format!(
            "[{agg}] {key} doesn't support values of type: {}",
            token_name(other)
        ))),
    }
}

fn get_i64(agg: &str, o: &Map<String, Value>, key: &str) -> Result<Option<i64>, EsError> {
    match get_f64(agg, o, key)? {
        None => Ok(None),
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
        Some(f) => Err(xcontent(format!(
            "[{agg}] failed to parse field [{key}]: value [{f}] is not an integer"
        ))),
    }
}

fn get_bool(agg: &str, o: &Map<String, Value>, key: &str) -> Result<Option<bool>, EsError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(xcontent(format!(
            "[{agg}] failed to parse field [{key}]: Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

fn required_field(agg: &str, name: &str, o: &Map<String, Value>) -> Result<String, EsError> {
    match get_str(agg, o, "field")? {
        Some(f) => Ok(f),
        None => Err(EsError::illegal_argument(format!(
            "Required one of fields [field, script], but none were specified. in aggregation [{name}]"
        ))
        .with("aggregation", name)),
    }
}

fn parse_query(v: &Value) -> Result<Query, EsError> {
    cairn_query::dsl::parse(v, &cairn_query::Limits::default())
        .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone()))
}

fn parse_tz(o: &Map<String, Value>, agg: &str) -> Result<cairn_query::datemath::TimeZone, EsError> {
    match get_str(agg, o, "time_zone")? {
        None => Ok(cairn_query::datemath::TimeZone::utc()),
        Some(s) => cairn_query::datemath::parse_time_zone(&s)
            .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone())),
    }
}

fn parse_order(agg: &str, v: &Value) -> Result<Vec<Order>, EsError> {
    let mut out = Vec::new();
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    for it in items {
        let o = obj(agg, it)?;
        for (k, dir) in o {
            let asc = match dir.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("asc") => true,
                Some("desc") => false,
                _ => return Err(EsError::parsing(format!("Unknown order direction [{dir}]"))),
            };
            let key = match k.as_str() {
                "_count" => OrderKey::Count,
                "_key" | "_term" | "_time" => OrderKey::Key,
                path => match path.split_once('.') {
                    Some((a, m)) => OrderKey::Sub(a.to_string(), Some(m.to_string())),
                    None => match path.split_once('[') {
                        Some((a, rest)) => OrderKey::Sub(
                            a.to_string(),
                            Some(rest.trim_end_matches(']').to_string()),
                        ),
                        None => OrderKey::Sub(path.to_string(), None),
                    },
                },
            };
            out.push(Order { key, asc });
        }
    }
    Ok(out)
}

fn parse_inc_exc(agg: &str, v: &Value) -> Result<IncExc, EsError> {
    match v {
        Value::String(s) => cairn_query::regexp::compile_lucene_regex(s, 0xffff, false, 10_000)
            .map(|r| IncExc::Regex(std::sync::Arc::new(move |s: &str| r.is_match(s))))
            .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone())),
        Value::Array(a) => Ok(IncExc::Exact(
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        )),
        Value::Object(o) if o.contains_key("partition") => Err(EsError::illegal_argument(format!(
            "[{agg}] include partitions are not supported by cairn yet"
        ))),
        other => Err(xcontent(format!(
            "[{agg}] include/exclude doesn't support values of type: {}",
            token_name(other)
        ))),
    }
}

fn parse_bounds(agg: &str, v: Option<&Value>, key: &str) -> Result<Option<Bounds>, EsError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => {
            check_keys(key, o, &["min", "max"])?;
            Ok(Some(Bounds {
                min: o.get("min").cloned().filter(|v| !v.is_null()),
                max: o.get("max").cloned().filter(|v| !v.is_null()),
            }))
        }
        Some(other) => Err(xcontent(format!(
            "[{agg}] {key} doesn't support values of type: {}",
            token_name(other)
        ))),
    }
}

type NumBounds = Option<(Option<f64>, Option<f64>)>;

fn num_bounds(agg: &str, b: Option<Bounds>) -> Result<NumBounds, EsError> {
    let conv = |v: Option<Value>| -> Result<Option<f64>, EsError> {
        match v {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .parse::<f64>()
                .map(Some)
                .map_err(|_| xcontent(format!("[{agg}] failed to parse bounds value [{s}]"))),
            Some(other) => Err(xcontent(format!(
                "[{agg}] bounds doesn't support values of type: {}",
                token_name(&other)
            ))),
        }
    };
    match b {
        None => Ok(None),
        Some(b) => Ok(Some((conv(b.min)?, conv(b.max)?))),
    }
}

/// Parses the object under `aggs` / `aggregations`.
pub fn parse(aggs: &Value) -> Result<Aggs, EsError> {
    parse_level(aggs, 0).map(|nodes| Aggs { nodes })
}

const MAX_DEPTH: usize = 20;

fn parse_level(v: &Value, depth: usize) -> Result<Vec<AggNode>, EsError> {
    if depth > MAX_DEPTH {
        return Err(EsError::illegal_argument(format!(
            "The nesting depth of aggregations exceeds the limit of [{MAX_DEPTH}]"
        )));
    }
    let o = match v {
        Value::Object(o) => o,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(EsError::parsing(format!(
                "Expected [START_OBJECT] under [aggregations], but got a [{}].",
                token_name(other)
            )))
        }
    };
    let mut out = Vec::new();
    for (name, def) in o {
        if name.contains(['[', ']', '>']) {
            return Err(EsError::parsing(format!(
                "Invalid aggregation name [{name}]. Aggregation names can contain any character except '[', ']', and '>'"
            )));
        }
        out.push(parse_node(name, def, depth)?);
    }
    Ok(out)
}

fn parse_node(name: &str, def: &Value, depth: usize) -> Result<AggNode, EsError> {
    let o = def.as_object().ok_or_else(|| {
        EsError::parsing(format!(
            "Aggregation definition for [{name}] starts with a [{}], expected a [START_OBJECT].",
            token_name(def)
        ))
    })?;
    let mut kind: Option<(String, &Value)> = None;
    let mut subs_v: Option<&Value> = None;
    let mut meta = None;
    for (k, v) in o {
        match k.as_str() {
            "aggs" | "aggregations" => {
                if subs_v.is_some() {
                    return Err(EsError::parsing(format!(
                        "Found two sub aggregation definitions under [{name}]"
                    )));
                }
                subs_v = Some(v);
            }
            "meta" => {
                if !v.is_object() {
                    return Err(EsError::parsing(format!(
                        "Expected [START_OBJECT] under [meta], but got a [{}] in [{name}]",
                        token_name(v)
                    )));
                }
                meta = Some(v.clone());
            }
            t => {
                if let Some((prev, _)) = &kind {
                    return Err(EsError::parsing(format!(
                        "Found two aggregation type definitions in [{name}]: [{prev}] and [{t}]"
                    )));
                }
                if !AGG_TYPES.contains(&t) {
                    if KNOWN_UNSUPPORTED.contains(&t) {
                        return Err(EsError::illegal_argument(format!(
                            "[{t}] aggregations are not supported by cairn yet"
                        )));
                    }
                    let mut all: Vec<&str> = AGG_TYPES.to_vec();
                    all.extend_from_slice(KNOWN_UNSUPPORTED);
                    return Err(EsError::parsing(format!(
                        "Unknown aggregation type [{t}]{}",
                        did_you_mean(t, &all)
                    ))
                    .caused_by(EsError::new(
                        400,
                        "named_object_not_found_exception",
                        format!("[1:1] unknown field [{t}]"),
                    )));
                }
                kind = Some((t.to_string(), v));
            }
        }
    }
    let Some((ty, body)) = kind else {
        return Err(EsError::parsing(format!(
            "Missing definition for aggregation [{name}]"
        )));
    };
    let kind = parse_kind(name, &ty, body)?;
    let subs = match subs_v {
        Some(v) => parse_level(v, depth + 1)?,
        None => Vec::new(),
    };
    if !subs.is_empty() && !kind.is_bucket() {
        return Err(EsError::new(
            400,
            "aggregation_initialization_exception",
            format!("Aggregator [{name}] of type [{ty}] cannot accept sub-aggregations"),
        ));
    }
    // Validate order paths against the sub-aggregations.
    let orders: Vec<&Order> = match &kind {
        Kind::Terms(t) => t.order.iter().collect(),
        Kind::DateHistogram(d) => d.order.iter().collect(),
        Kind::Histogram(h) => h.order.iter().collect(),
        _ => Vec::new(),
    };
    for o in orders {
        if let OrderKey::Sub(a, _) = &o.key {
            if !subs.iter().any(|s| &s.name == a) {
                return Err(EsError::new(
                    400,
                    "aggregation_execution_exception",
                    format!(
                        "Invalid aggregation order path [{a}]. The provided aggregation [{a}] either does not exist, or is a pipeline aggregation and cannot be used to sort the buckets."
                    ),
                ));
            }
        }
    }
    Ok(AggNode {
        name: name.to_string(),
        kind,
        subs,
        meta,
    })
}

fn parse_kind(name: &str, ty: &str, body: &Value) -> Result<Kind, EsError> {
    if ty == "filter" {
        return Ok(Kind::Filter(Box::new(parse_query(body)?)));
    }
    let o = obj(ty, body)?;
    Ok(match ty {
        "terms" => {
            check_keys(
                ty,
                o,
                &[
                    "field",
                    "size",
                    "shard_size",
                    "min_doc_count",
                    "shard_min_doc_count",
                    "order",
                    "missing",
                    "include",
                    "exclude",
                    "execution_hint",
                    "collect_mode",
                    "show_term_doc_count_error",
                    "value_type",
                    "format",
                ],
            )?;
            let size = get_i64(ty, o, "size")?.unwrap_or(10);
            if size < 1 {
                return Err(EsError::illegal_argument(format!(
                    "[size] must be greater than 0. Found [{size}] in [{name}]"
                )));
            }
            let shard_size = get_i64(ty, o, "shard_size")?;
            if let Some(s) = shard_size {
                if s < 1 {
                    return Err(EsError::illegal_argument(format!(
                        "[shard_size] must be greater than 0. Found [{s}] in [{name}]"
                    )));
                }
            }
            let min_doc_count = get_i64(ty, o, "min_doc_count")?.unwrap_or(1);
            if min_doc_count < 0 {
                return Err(EsError::illegal_argument(format!(
                    "[min_doc_count] must be greater than or equal to 0. Found [{min_doc_count}] in [{name}]"
                )));
            }
            let mut order = match o.get("order") {
                Some(v) => parse_order(ty, v)?,
                None => Vec::new(),
            };
            if order.is_empty() {
                order.push(Order {
                    key: OrderKey::Count,
                    asc: false,
                });
            }
            Kind::Terms(Box::new(TermsSpec {
                field: required_field(ty, name, o)?,
                size: size as usize,
                shard_size: shard_size.map(|s| s as usize),
                min_doc_count: min_doc_count as u64,
                order,
                missing: o.get("missing").cloned().filter(|v| !v.is_null()),
                include: o.get("include").map(|v| parse_inc_exc(ty, v)).transpose()?,
                exclude: o.get("exclude").map(|v| parse_inc_exc(ty, v)).transpose()?,
            }))
        }
        "date_histogram" => {
            check_keys(
                ty,
                o,
                &[
                    "field",
                    "fixed_interval",
                    "calendar_interval",
                    "time_zone",
                    "offset",
                    "extended_bounds",
                    "hard_bounds",
                    "min_doc_count",
                    "format",
                    "keyed",
                    "order",
                    "missing",
                ],
            )?;
            let fixed = get_str(ty, o, "fixed_interval")?;
            let cal = get_str(ty, o, "calendar_interval")?;
            let interval = match (fixed, cal) {
                (Some(_), Some(_)) => return Err(EsError::illegal_argument(
                    "Cannot use [fixed_interval] with [calendar_interval] configuration option.",
                )),
                (Some(f), None) => Interval::parse_fixed(&f)?,
                (None, Some(c)) => Interval::parse_calendar(&c)?,
                (None, None) => {
                    return Err(EsError::illegal_argument(format!(
                        "Invalid interval specified, must be non-null and non-empty for [{name}]"
                    )))
                }
            };
            let offset = match o.get("offset") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(Value::String(s)) => super::dates::parse_offset(s)?,
                Some(other) => {
                    return Err(xcontent(format!(
                        "[{ty}] offset doesn't support values of type: {}",
                        token_name(other)
                    )))
                }
            };
            let order = match o.get("order") {
                Some(v) => parse_order(ty, v)?.into_iter().next(),
                None => None,
            };
            Kind::DateHistogram(Box::new(DateHistSpec {
                field: required_field(ty, name, o)?,
                interval,
                time_zone: parse_tz(o, ty)?,
                offset,
                min_doc_count: get_i64(ty, o, "min_doc_count")?.unwrap_or(0).max(0) as u64,
                extended_bounds: parse_bounds(ty, o.get("extended_bounds"), "extended_bounds")?,
                hard_bounds: parse_bounds(ty, o.get("hard_bounds"), "hard_bounds")?,
                format: get_str(ty, o, "format")?,
                keyed: get_bool(ty, o, "keyed")?.unwrap_or(false),
                order,
            }))
        }
        "histogram" => {
            check_keys(
                ty,
                o,
                &[
                    "field",
                    "interval",
                    "offset",
                    "min_doc_count",
                    "extended_bounds",
                    "hard_bounds",
                    "keyed",
                    "order",
                    "missing",
                    "format",
                ],
            )?;
            let interval = get_f64(ty, o, "interval")?.unwrap_or(0.0);
            if interval <= 0.0 || !interval.is_finite() {
                return Err(xcontent(format!(
                    "[histogram] failed to parse field [interval]: [interval] must be >0 for histogram aggregation [{name}]"
                )));
            }
            let order = match o.get("order") {
                Some(v) => parse_order(ty, v)?.into_iter().next(),
                None => None,
            };
            Kind::Histogram(Box::new(HistSpec {
                field: required_field(ty, name, o)?,
                interval,
                offset: get_f64(ty, o, "offset")?.unwrap_or(0.0),
                min_doc_count: get_i64(ty, o, "min_doc_count")?.unwrap_or(0).max(0) as u64,
                extended_bounds: num_bounds(
                    ty,
                    parse_bounds(ty, o.get("extended_bounds"), "extended_bounds")?,
                )?,
                hard_bounds: num_bounds(
                    ty,
                    parse_bounds(ty, o.get("hard_bounds"), "hard_bounds")?,
                )?,
                keyed: get_bool(ty, o, "keyed")?.unwrap_or(false),
                order,
                missing: get_f64(ty, o, "missing")?,
            }))
        }
        "range" | "date_range" => {
            let mut allowed = vec!["field", "ranges", "keyed", "format", "missing"];
            if ty == "date_range" {
                allowed.push("time_zone");
            }
            check_keys(ty, o, &allowed)?;
            let ranges_v = o.get("ranges").and_then(Value::as_array).ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "No [ranges] specified for the [{name}] aggregation"
                ))
            })?;
            if ranges_v.is_empty() {
                return Err(EsError::illegal_argument(format!(
                    "No [ranges] specified for the [{name}] aggregation"
                )));
            }
            let mut ranges = Vec::new();
            for r in ranges_v {
                let ro = obj("ranges", r)?;
                check_keys("range", ro, &["key", "from", "to"])?;
                ranges.push(RangeItem {
                    key: get_str("range", ro, "key")?,
                    from: ro.get("from").cloned().filter(|v| !v.is_null()),
                    to: ro.get("to").cloned().filter(|v| !v.is_null()),
                });
            }
            let spec = Box::new(RangeSpec {
                field: required_field(ty, name, o)?,
                ranges,
                keyed: get_bool(ty, o, "keyed")?.unwrap_or(false),
                format: get_str(ty, o, "format")?,
                time_zone: parse_tz(o, ty)?,
                missing: o.get("missing").cloned().filter(|v| !v.is_null()),
            });
            if ty == "range" {
                Kind::Range(spec)
            } else {
                Kind::DateRange(spec)
            }
        }
        "filters" => {
            check_keys(
                ty,
                o,
                &["filters", "other_bucket", "other_bucket_key", "keyed"],
            )?;
            let mut filters = Vec::new();
            let named;
            match o.get("filters") {
                Some(Value::Object(f)) => {
                    named = true;
                    for (k, q) in f {
                        filters.push((Some(k.clone()), parse_query(q)?));
                    }
                }
                Some(Value::Array(a)) => {
                    named = false;
                    for q in a {
                        filters.push((None, parse_query(q)?));
                    }
                }
                _ => {
                    return Err(EsError::parsing(format!(
                        "[filters] cannot be empty. in [{name}]"
                    )))
                }
            }
            let other_key = get_str(ty, o, "other_bucket_key")?;
            Kind::Filters(Box::new(FiltersSpec {
                filters,
                other_bucket: get_bool(ty, o, "other_bucket")?.unwrap_or(other_key.is_some()),
                other_bucket_key: other_key.unwrap_or_else(|| "_other_".to_string()),
                keyed: named && get_bool(ty, o, "keyed")?.unwrap_or(true),
            }))
        }
        "composite" => {
            check_keys(ty, o, &["sources", "size", "after"])?;
            let size = get_i64(ty, o, "size")?.unwrap_or(10);
            if size < 1 {
                return Err(EsError::illegal_argument(format!(
                    "[size] must be greater than 0. Found [{size}] in [{name}]"
                )));
            }
            let srcs = o.get("sources").and_then(Value::as_array).ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "Composite [sources] cannot be null or empty in [{name}]"
                ))
            })?;
            if srcs.is_empty() {
                return Err(EsError::illegal_argument(format!(
                    "Composite [sources] cannot be null or empty in [{name}]"
                )));
            }
            let mut sources = Vec::new();
            for s in srcs {
                let so = obj("sources", s)?;
                let Some((sname, sdef)) = so.iter().next() else {
                    return Err(EsError::parsing("[composite] empty source"));
                };
                if so.len() > 1 {
                    return Err(EsError::parsing(format!(
                        "[composite] source [{sname}] has more than one definition"
                    )));
                }
                let sd = obj(sname, sdef)?;
                let Some((stype, sbody)) = sd.iter().next() else {
                    return Err(EsError::parsing(format!(
                        "Missing definition for composite source [{sname}]"
                    )));
                };
                let sb = obj(stype, sbody)?;
                let common = [
                    "field",
                    "order",
                    "missing_bucket",
                    "missing_order",
                    "format",
                ];
                let kind = match stype.as_str() {
                    "terms" => {
                        check_keys(stype, sb, &common)?;
                        SourceKind::Terms
                    }
                    "histogram" => {
                        let mut a = common.to_vec();
                        a.push("interval");
                        check_keys(stype, sb, &a)?;
                        let i = get_f64(stype, sb, "interval")?.unwrap_or(0.0);
                        if i <= 0.0 {
                            return Err(EsError::illegal_argument(
                                "[interval] must be greater than 0 for [histogram] source",
                            ));
                        }
                        SourceKind::Histogram(i)
                    }
                    "date_histogram" => {
                        let mut a = common.to_vec();
                        a.extend(["fixed_interval", "calendar_interval", "time_zone", "offset"]);
                        check_keys(stype, sb, &a)?;
                        let iv = match (
                            get_str(stype, sb, "fixed_interval")?,
                            get_str(stype, sb, "calendar_interval")?,
                        ) {
                            (Some(f), None) => Interval::parse_fixed(&f)?,
                            (None, Some(c)) => Interval::parse_calendar(&c)?,
                            _ => {
                                return Err(EsError::illegal_argument(format!(
                                    "Invalid interval specified, must be non-null and non-empty for [{sname}]"
                                )))
                            }
                        };
                        let off = match get_str(stype, sb, "offset")? {
                            Some(s) => super::dates::parse_offset(&s)?,
                            None => 0,
                        };
                        SourceKind::DateHistogram(iv, parse_tz(sb, stype)?, off)
                    }
                    other => {
                        return Err(EsError::parsing(format!(
                            "Unknown CompositeValuesSourceBuilder type [{other}]"
                        )))
                    }
                };
                let desc = match get_str(stype, sb, "order")?.as_deref() {
                    None | Some("asc") => false,
                    Some("desc") => true,
                    Some(other) => {
                        return Err(EsError::illegal_argument(format!(
                            "Unknown order direction [{other}]"
                        )))
                    }
                };
                sources.push(CompositeSource {
                    name: sname.clone(),
                    field: required_field(stype, sname, sb)?,
                    kind,
                    desc,
                    missing_bucket: get_bool(stype, sb, "missing_bucket")?.unwrap_or(false),
                    format: get_str(stype, sb, "format")?,
                });
            }
            let after = match o.get("after") {
                None | Some(Value::Null) => None,
                Some(Value::Object(a)) => {
                    if a.len() != sources.len() || sources.iter().any(|s| !a.contains_key(&s.name))
                    {
                        return Err(EsError::illegal_argument(
                            "[after] has 0 value(s) but [sources] has ".to_string()
                                + &sources.len().to_string(),
                        ));
                    }
                    Some(a.clone())
                }
                Some(other) => {
                    return Err(xcontent(format!(
                        "[composite] after doesn't support values of type: {}",
                        token_name(other)
                    )))
                }
            };
            Kind::Composite(Box::new(CompositeSpec {
                sources,
                size: size as usize,
                after,
            }))
        }
        "avg" | "sum" | "min" | "max" | "stats" | "extended_stats" | "value_count" => {
            let op = match ty {
                "avg" => MetricOp::Avg,
                "sum" => MetricOp::Sum,
                "min" => MetricOp::Min,
                "max" => MetricOp::Max,
                "stats" => MetricOp::Stats,
                "extended_stats" => MetricOp::ExtendedStats,
                _ => MetricOp::ValueCount,
            };
            let mut allowed = vec!["field", "missing", "format", "value_type"];
            if op == MetricOp::ExtendedStats {
                allowed.push("sigma");
            }
            check_keys(ty, o, &allowed)?;
            let sigma = get_f64(ty, o, "sigma")?.unwrap_or(2.0);
            if sigma < 0.0 {
                return Err(EsError::illegal_argument(format!(
                    "[sigma] must be greater than or equal to 0. Found [{sigma}] in [{name}]"
                )));
            }
            Kind::Metric(Box::new(MetricSpec {
                op,
                field: required_field(ty, name, o)?,
                missing: o.get("missing").cloned().filter(|v| !v.is_null()),
                sigma,
                format: get_str(ty, o, "format")?,
            }))
        }
        "cardinality" => {
            check_keys(
                ty,
                o,
                &[
                    "field",
                    "precision_threshold",
                    "missing",
                    "execution_hint",
                    "rehash",
                ],
            )?;
            let pt = get_i64(ty, o, "precision_threshold")?.unwrap_or(3000);
            if pt < 0 {
                return Err(EsError::illegal_argument(format!(
                    "[precision_threshold] must be greater than or equal to 0. Found [{pt}] in [{name}]"
                )));
            }
            Kind::Cardinality(Box::new(CardSpec {
                field: required_field(ty, name, o)?,
                precision_threshold: (pt as usize).min(40_000),
                missing: o.get("missing").cloned().filter(|v| !v.is_null()),
            }))
        }
        "percentiles" => {
            check_keys(
                ty,
                o,
                &["field", "percents", "keyed", "tdigest", "missing", "format"],
            )?;
            let percents = match o.get("percents") {
                None => vec![1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0],
                Some(Value::Array(a)) => {
                    let mut p = Vec::new();
                    for x in a {
                        let f = x.as_f64().ok_or_else(|| {
                            xcontent("[percentiles] percents must be numbers".to_string())
                        })?;
                        if !(0.0..=100.0).contains(&f) {
                            return Err(EsError::illegal_argument(format!(
                                "percent must be in [0,100], got [{f}]: [{name}]"
                            )));
                        }
                        p.push(f);
                    }
                    if p.is_empty() {
                        return Err(EsError::illegal_argument(format!(
                            "[percents] must not be empty: [{name}]"
                        )));
                    }
                    p
                }
                Some(other) => {
                    return Err(xcontent(format!(
                        "[percentiles] percents doesn't support values of type: {}",
                        token_name(other)
                    )))
                }
            };
            let compression = match o.get("tdigest") {
                Some(Value::Object(t)) => {
                    check_keys("tdigest", t, &["compression", "execution_hint"])?;
                    get_f64("tdigest", t, "compression")?.unwrap_or(100.0)
                }
                _ => 100.0,
            };
            Kind::Percentiles(Box::new(PctSpec {
                field: required_field(ty, name, o)?,
                percents,
                keyed: get_bool(ty, o, "keyed")?.unwrap_or(true),
                compression: compression.max(20.0),
                missing: o.get("missing").cloned().filter(|v| !v.is_null()),
            }))
        }
        "top_hits" => {
            check_keys(
                ty,
                o,
                &[
                    "size",
                    "from",
                    "sort",
                    "_source",
                    "track_scores",
                    "version",
                    "seq_no_primary_term",
                    "explain",
                ],
            )?;
            let size = get_i64(ty, o, "size")?.unwrap_or(3);
            let from = get_i64(ty, o, "from")?.unwrap_or(0);
            if size < 0 || from < 0 || size + from > 100 {
                return Err(EsError::illegal_argument(format!(
                    "Top hits result window is too large, the top hits aggregator [{name}]'s from + size must be less than or equal to: [100] but was [{}]. This limit can be set by changing the [index.max_inner_result_window] index level setting.",
                    size + from
                )));
            }
            let sort_ts = match o.get("sort") {
                None => None,
                Some(v) => parse_top_sort(v)?,
            };
            let source = match o.get("_source") {
                None | Some(Value::Bool(true)) => SourceFilter::All,
                Some(Value::Bool(false)) => SourceFilter::None,
                Some(Value::String(s)) => SourceFilter::Filter {
                    includes: vec![s.clone()],
                    excludes: vec![],
                },
                Some(Value::Array(a)) => SourceFilter::Filter {
                    includes: a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    excludes: vec![],
                },
                Some(Value::Object(so)) => {
                    check_keys(
                        "_source",
                        so,
                        &["includes", "excludes", "include", "exclude"],
                    )?;
                    let list = |k1: &str, k2: &str| -> Vec<String> {
                        match so.get(k1).or_else(|| so.get(k2)) {
                            Some(Value::String(s)) => vec![s.clone()],
                            Some(Value::Array(a)) => a
                                .iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect(),
                            _ => vec![],
                        }
                    };
                    SourceFilter::Filter {
                        includes: list("includes", "include"),
                        excludes: list("excludes", "exclude"),
                    }
                }
                Some(other) => {
                    return Err(xcontent(format!(
                        "[top_hits] _source doesn't support values of type: {}",
                        token_name(other)
                    )))
                }
            };
            Kind::TopHits(Box::new(TopHitsSpec {
                size: size as usize,
                from: from as usize,
                sort_ts,
                source,
            }))
        }
        other => {
            return Err(EsError::parsing(format!(
                "Unknown aggregation type [{other}]"
            )))
        }
    })
}

/// `sort` of top_hits: `@timestamp` (asc/desc) or `_score`; `None` = default order.
fn parse_top_sort(v: &Value) -> Result<Option<bool>, EsError> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let (field, desc) = match first {
        Value::String(s) => (s.clone(), s != "@timestamp" && s != "_doc"),
        Value::Object(o) => {
            let Some((f, spec)) = o.iter().next() else {
                return Ok(None);
            };
            let dir = match spec {
                Value::String(s) => s.clone(),
                Value::Object(so) => so
                    .get("order")
                    .and_then(Value::as_str)
                    .unwrap_or(if f == "_score" { "desc" } else { "asc" })
                    .to_string(),
                _ => "asc".into(),
            };
            (f.clone(), dir.eq_ignore_ascii_case("desc"))
        }
        _ => return Err(EsError::parsing("[top_hits] malformed sort")),
    };
    match field.as_str() {
        "@timestamp" => Ok(Some(desc)),
        "_score" | "_doc" => Ok(None),
        other => Err(EsError::illegal_argument(format!(
            "[top_hits] sorting on [{other}] is not supported by cairn yet (only @timestamp and _score)"
        ))),
    }
}
