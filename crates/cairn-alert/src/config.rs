//! Rule files: reading ElastAlert's YAML into a validated [`Rule`].
//!
//! Rules are read as ElastAlert reads them (PyYAML, YAML 1.1 scalars, `$VAR` expansion,
//! `import:` of shared fragments merged under the rule's own keys), then every key the
//! engine uses is checked here, once, with an error naming the key. The raw map is kept
//! on the rule because alerters read their own options from it, as ElastAlert's do.

use std::path::{Path, PathBuf};

use cairn_core::yaml;
use serde_json::{Map, Value};

use crate::cron::Cron;
use crate::error::{AlertError, Result};

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;

/// Engine-wide defaults (ElastAlert's `config.yaml` keys that matter to rules).
#[derive(Clone, Debug)]
pub struct Globals {
    pub run_every: i64,
    pub buffer_time: i64,
    pub old_query_limit: i64,
    pub alert_time_limit: i64,
    pub max_query_size: u64,
    pub max_scrolling_count: u64,
    /// Keys merged under every rule (ElastAlert lets config.yaml carry alerter settings
    /// such as `smtp_host`).
    pub rule_defaults: Map<String, Value>,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            run_every: MINUTE,
            buffer_time: 45 * MINUTE,
            old_query_limit: 7 * 24 * 60 * MINUTE,
            alert_time_limit: 2 * 24 * 60 * MINUTE,
            max_query_size: 10_000,
            max_scrolling_count: 990,
            rule_defaults: Map::new(),
        }
    }
}

impl Globals {
    /// Reads ElastAlert's global `config.yaml` keys; unknown keys (es_host, writeback_index...)
    /// are irrelevant inside Cairn and ignored; alerter settings become rule defaults.
    pub fn from_value(v: &Value) -> Result<Globals> {
        let mut g = Globals::default();
        let Some(m) = v.as_object() else {
            return Ok(g);
        };
        if let Some(d) = opt_duration(m, "run_every")? {
            g.run_every = d;
        }
        if let Some(d) = opt_duration(m, "buffer_time")? {
            g.buffer_time = d;
        }
        if let Some(d) = opt_duration(m, "old_query_limit")? {
            g.old_query_limit = d;
        }
        if let Some(d) = opt_duration(m, "alert_time_limit")? {
            g.alert_time_limit = d;
        }
        if let Some(n) = opt_u64(m, "max_query_size")? {
            g.max_query_size = n.max(1);
        }
        if let Some(n) = opt_u64(m, "max_scrolling_count")? {
            g.max_scrolling_count = n;
        }
        const ENGINE_ONLY: &[&str] = &[
            "rules_folder",
            "run_every",
            "buffer_time",
            "old_query_limit",
            "alert_time_limit",
            "max_query_size",
            "max_scrolling_count",
            "es_host",
            "es_port",
            "es_username",
            "es_password",
            "writeback_index",
            "use_ssl",
            "verify_certs",
            "scroll_keepalive",
        ];
        for (k, v) in m {
            if !ENGINE_ONLY.contains(&k.as_str()) {
                g.rule_defaults.insert(k.clone(), v.clone());
            }
        }
        Ok(g)
    }
}

/// Which ElastAlert rule type, with its parameters.
#[derive(Clone, Debug)]
pub enum RuleKind {
    Any,
    Blacklist {
        compare_key: String,
        list: Vec<String>,
    },
    Whitelist {
        compare_key: String,
        list: Vec<String>,
        ignore_null: bool,
    },
    Change {
        compare_keys: Vec<String>,
        ignore_null: bool,
    },
    Frequency {
        num_events: u64,
    },
    Spike {
        spike_height: f64,
        spike_type: SpikeType,
        threshold_ref: f64,
        threshold_cur: f64,
        field_value: Option<String>,
        alert_on_new_data: bool,
    },
    Flatline {
        threshold: u64,
        forget_keys: bool,
    },
    NewTerm {
        /// Each entry is one field or a composite of fields.
        fields: Vec<Vec<String>>,
        terms_window_size: i64,
        window_step_size: i64,
        alert_on_missing_field: bool,
    },
    Cardinality {
        field: String,
        max: Option<f64>,
        min: Option<f64>,
    },
    MetricAggregation(MetricSpec),
    SpikeAggregation {
        metric: MetricSpec,
        spike_height: f64,
        spike_type: SpikeType,
        threshold_ref: f64,
        threshold_cur: f64,
        alert_on_new_data: bool,
    },
    PercentageMatch {
        match_bucket_filter: Value,
        min_percentage: Option<f64>,
        max_percentage: Option<f64>,
        min_denominator: u64,
        bucket_interval: Option<i64>,
    },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Any => "any",
            RuleKind::Blacklist { .. } => "blacklist",
            RuleKind::Whitelist { .. } => "whitelist",
            RuleKind::Change { .. } => "change",
            RuleKind::Frequency { .. } => "frequency",
            RuleKind::Spike { .. } => "spike",
            RuleKind::Flatline { .. } => "flatline",
            RuleKind::NewTerm { .. } => "new_term",
            RuleKind::Cardinality { .. } => "cardinality",
            RuleKind::MetricAggregation(_) => "metric_aggregation",
            RuleKind::SpikeAggregation { .. } => "spike_aggregation",
            RuleKind::PercentageMatch { .. } => "percentage_match",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpikeType {
    Up,
    Down,
    Both,
}

#[derive(Clone, Debug)]
pub struct MetricSpec {
    pub agg_key: String,
    pub agg_type: String,
    pub max_threshold: Option<f64>,
    pub min_threshold: Option<f64>,
    pub percentile_range: Option<f64>,
    pub bucket_interval: Option<i64>,
    /// `metric_<key>_<type>`, the name ElastAlert gives the aggregation and the match field.
    pub metric_key: String,
}

/// When aggregated matches are sent.
#[derive(Clone, Debug)]
pub enum Aggregation {
    Every(i64),
    Schedule(Cron),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlertTextType {
    Default,
    AlertTextOnly,
    ExcludeFields,
    AggregationSummaryOnly,
    Jinja,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TimestampType {
    Iso,
    Unix,
    UnixMs,
    Custom(String),
}

/// A validated rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Stable identity: the file stem for `--rules-dir` rules, the API id otherwise.
    pub id: String,
    pub name: String,
    pub indices: Vec<String>,
    pub use_strftime_index: bool,
    pub kind: RuleKind,
    /// Filter clauses (ES DSL), `kql:` strings already turned into Cairn's `kql` query.
    pub filter: Vec<Value>,
    pub timestamp_field: String,
    pub timestamp_type: TimestampType,
    pub run_every: i64,
    pub buffer_time: i64,
    pub query_delay: i64,
    pub timeframe: Option<i64>,
    pub realert: i64,
    pub exponential_realert: Option<i64>,
    /// The query_key fields; more than one is a compound key.
    pub query_key: Vec<String>,
    pub aggregation: Option<Aggregation>,
    pub aggregation_key: Option<String>,
    pub aggregate_by_match_time: bool,
    pub summary_table_fields: Vec<String>,
    pub alert_subject: Option<String>,
    pub alert_subject_args: Vec<String>,
    pub alert_text: Option<String>,
    pub alert_text_args: Vec<String>,
    pub alert_text_kw: Vec<(String, String)>,
    pub alert_text_type: AlertTextType,
    pub top_count_keys: Vec<String>,
    pub top_count_number: u64,
    pub include: Vec<String>,
    pub use_count_query: bool,
    pub use_terms_query: bool,
    pub terms_size: u64,
    pub scan_entire_timeframe: bool,
    pub is_enabled: bool,
    pub limit_execution: Option<Cron>,
    pub query_timezone: Option<chrono_tz::Tz>,
    pub max_query_size: u64,
    pub max_scrolling_count: u64,
    pub alert_time_limit: i64,
    pub old_query_limit: i64,
    pub notify_on_recovery: bool,
    pub use_run_every_query_size: bool,
    /// Alerter names in order (`post`, `email`, ...).
    pub alerters: Vec<String>,
    /// The whole rule after imports, env expansion and global defaults.
    pub raw: Map<String, Value>,
}

impl Rule {
    /// The query_key as ElastAlert names it (`a,b` for a compound key).
    pub fn query_key_name(&self) -> Option<String> {
        if self.query_key.is_empty() {
            None
        } else {
            Some(self.query_key.join(","))
        }
    }

    pub fn timeframe_or(&self, d: i64) -> i64 {
        self.timeframe.unwrap_or(d)
    }
}

/// Reads a rule file (with `import:` resolved relative to it).
pub fn load_file(path: &Path, globals: &Globals) -> Result<Rule> {
    let text = std::fs::read_to_string(path).map_err(|e| AlertError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("rule")
        .to_string();
    let base = path.parent().map(Path::to_path_buf);
    parse_rule(&id, &text, base.as_deref(), globals)
}

/// Parses and validates a rule from YAML text. `base_dir` resolves `import:`.
pub fn parse_rule(
    id: &str,
    text: &str,
    base_dir: Option<&Path>,
    globals: &Globals,
) -> Result<Rule> {
    let value = yaml::parse(text).map_err(|e| AlertError::config("(yaml)", e.to_string()))?;
    let mut map = match value {
        Value::Object(m) => m,
        Value::Null => return Err(AlertError::config("(top level)", "the rule is empty")),
        _ => {
            return Err(AlertError::config(
                "(top level)",
                "a rule must be a mapping of keys to values",
            ))
        }
    };
    resolve_imports(&mut map, base_dir, 0)?;
    let mut v = Value::Object(map);
    yaml::expand_env(&mut v, &|name| std::env::var(name).ok());
    let Value::Object(mut map) = v else {
        return Err(AlertError::config("(top level)", "not a mapping"));
    };
    for (k, v) in &globals.rule_defaults {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
    build_rule(id, map, globals)
}

fn resolve_imports(
    map: &mut Map<String, Value>,
    base_dir: Option<&Path>,
    depth: usize,
) -> Result<()> {
    let Some(import) = map.remove("import") else {
        return Ok(());
    };
    if depth > 8 {
        return Err(AlertError::config(
            "import",
            "imports nested more than 8 deep (a cycle?)",
        ));
    }
    let paths: Vec<String> = match import {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(AlertError::config(
                    "import",
                    "expected a path or a list of paths",
                )),
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(AlertError::config(
                "import",
                "expected a path or a list of paths",
            ))
        }
    };
    for p in paths {
        let mut path = PathBuf::from(&p);
        if path.is_relative() {
            match base_dir {
                Some(b) => path = b.join(path),
                None => {
                    return Err(AlertError::config(
                        "import",
                        format!("relative import [{p}] needs a rules directory"),
                    ))
                }
            }
        }
        let text = std::fs::read_to_string(&path).map_err(|e| AlertError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let v =
            yaml::parse(&text).map_err(|e| AlertError::config("import", format!("{p}: {e}")))?;
        let Value::Object(mut imported) = v else {
            return Err(AlertError::config("import", format!("{p}: not a mapping")));
        };
        resolve_imports(&mut imported, path.parent(), depth + 1)?;
        // The rule's own keys win over imported ones, as in ElastAlert.
        for (k, v) in imported {
            map.entry(k).or_insert(v);
        }
    }
    Ok(())
}

// ---- typed accessors that name the key on error ----------------------------------

pub(crate) fn opt_str(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(AlertError::config(key, "expected a string")),
    }
}

pub(crate) fn req_str(m: &Map<String, Value>, key: &str) -> Result<String> {
    opt_str(m, key)?.ok_or_else(|| AlertError::config(key, "missing required key"))
}

pub(crate) fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(AlertError::config(
            key,
            "expected a boolean (true/false, yes/no)",
        )),
    }
}

pub(crate) fn opt_f64(m: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| AlertError::config(key, "expected a number")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| AlertError::config(key, format!("expected a number, got [{s}]"))),
        Some(_) => Err(AlertError::config(key, "expected a number")),
    }
}

pub(crate) fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<u64>> {
    match opt_f64(m, key)? {
        None => Ok(None),
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.0e15 => Ok(Some(f as u64)),
        Some(f) => Err(AlertError::config(
            key,
            format!("expected a non-negative integer, got {f}"),
        )),
    }
}

/// A string or a list of strings.
pub(crate) fn str_list(m: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(if *b { "True".into() } else { "False".into() }),
                _ => Err(AlertError::config(
                    format!("{key}[{i}]"),
                    "expected a string",
                )),
            })
            .collect(),
        Some(_) => Err(AlertError::config(
            key,
            "expected a string or a list of strings",
        )),
    }
}

/// ElastAlert durations are timedelta keyword maps (`{minutes: 5}`); Cairn also accepts
/// ES-style strings (`5m`) and bare seconds.
pub fn parse_duration_value(v: &Value, key: &str) -> Result<i64> {
    match v {
        Value::Object(m) => {
            let mut total = 0f64;
            for (unit, n) in m {
                let n = n.as_f64().ok_or_else(|| {
                    AlertError::config(format!("{key}.{unit}"), "expected a number")
                })?;
                let mult = match unit.as_str() {
                    "weeks" => 7.0 * 86_400e6,
                    "days" => 86_400e6,
                    "hours" => 3_600e6,
                    "minutes" => 60e6,
                    "seconds" => 1e6,
                    "milliseconds" => 1e3,
                    "microseconds" => 1.0,
                    other => return Err(AlertError::config(
                        format!("{key}.{other}"),
                        "unknown unit: use weeks, days, hours, minutes, seconds or milliseconds",
                    )),
                };
                total += n * mult;
            }
            if !(0.0..9.0e18).contains(&total) {
                return Err(AlertError::config(key, "duration out of range"));
            }
            Ok(total as i64)
        }
        Value::String(s) => cairn_core::time::parse_duration(s)
            .or_else(|| {
                let t = s.trim();
                t.strip_suffix('w')
                    .and_then(|n| n.parse::<i64>().ok())
                    .map(|w| w * 7 * 86_400 * SECOND)
            })
            .ok_or_else(|| {
                AlertError::config(
                    key,
                    format!("invalid duration [{s}]: use e.g. {{minutes: 5}} or 5m"),
                )
            }),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| (0.0..9.0e12).contains(f))
            .map(|f| (f * 1e6) as i64)
            .ok_or_else(|| AlertError::config(key, "invalid duration")),
        _ => Err(AlertError::config(
            key,
            "expected a duration such as {minutes: 5}",
        )),
    }
}

pub(crate) fn opt_duration(m: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_duration_value(v, key).map(Some),
    }
}

fn spike_type(m: &Map<String, Value>) -> Result<SpikeType> {
    match req_str(m, "spike_type")?.as_str() {
        "up" => Ok(SpikeType::Up),
        "down" => Ok(SpikeType::Down),
        "both" => Ok(SpikeType::Both),
        other => Err(AlertError::config(
            "spike_type",
            format!("[{other}]: use up, down or both"),
        )),
    }
}

fn spike_height(m: &Map<String, Value>) -> Result<f64> {
    let h = opt_f64(m, "spike_height")?
        .ok_or_else(|| AlertError::config("spike_height", "missing required key"))?;
    if h <= 0.0 {
        return Err(AlertError::config("spike_height", "must be greater than 0"));
    }
    Ok(h)
}

fn require_timeframe(tf: Option<i64>, t: &str) -> Result<i64> {
    tf.ok_or_else(|| AlertError::config("timeframe", format!("required by type {t}")))
}

fn metric_spec(m: &Map<String, Value>, spike: bool) -> Result<MetricSpec> {
    let agg_key = req_str(m, "metric_agg_key")?;
    let agg_type = req_str(m, "metric_agg_type")?;
    const ALLOWED: &[&str] = &[
        "min",
        "max",
        "avg",
        "sum",
        "cardinality",
        "value_count",
        "percentiles",
    ];
    if !ALLOWED.contains(&agg_type.as_str()) {
        return Err(AlertError::config(
            "metric_agg_type",
            format!("[{agg_type}] must be one of {}", ALLOWED.join(", ")),
        ));
    }
    let percentile_range = opt_f64(m, "percentile_range")?;
    if agg_type == "percentiles" && percentile_range.is_none() {
        return Err(AlertError::config(
            "percentile_range",
            "required for the percentiles aggregation",
        ));
    }
    let max_threshold = opt_f64(m, "max_threshold")?;
    let min_threshold = opt_f64(m, "min_threshold")?;
    if !spike && max_threshold.is_none() && min_threshold.is_none() {
        return Err(AlertError::config(
            "max_threshold",
            "metric_aggregation needs max_threshold or min_threshold",
        ));
    }
    let bucket_interval = opt_duration(m, "bucket_interval")?;
    if spike && bucket_interval.is_some() {
        return Err(AlertError::config(
            "bucket_interval",
            "not supported for spike_aggregation",
        ));
    }
    Ok(MetricSpec {
        metric_key: format!("metric_{agg_key}_{agg_type}"),
        agg_key,
        agg_type,
        max_threshold,
        min_threshold,
        percentile_range,
        bucket_interval,
    })
}

/// Turns `filter:` into ES DSL clauses: ES DSL objects pass, `query_string` too, and the
/// Cairn shorthands `{kql: "..."}` / `{lucene: "..."}` become the matching queries. Each
/// clause is parsed once here so a typo is reported at load time with its index.
fn build_filter(m: &Map<String, Value>) -> Result<Vec<Value>> {
    let clauses = match m.get("filter") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => vec![Value::Object(o.clone())],
        Some(_) => {
            return Err(AlertError::config(
                "filter",
                "expected a list of query clauses",
            ))
        }
    };
    let limits = cairn_query::Limits::default();
    let mut out = Vec::with_capacity(clauses.len());
    for (i, c) in clauses.into_iter().enumerate() {
        let key = format!("filter[{i}]");
        let c = match c {
            Value::Object(mut o) => {
                if let Some(Value::String(q)) = o.get("kql").cloned() {
                    serde_json::json!({"kql": {"query": q}})
                } else if let Some(Value::String(q)) = o.get("lucene").cloned() {
                    serde_json::json!({"query_string": {"query": q}})
                } else if let Some(inner) = o.remove("query") {
                    // ElastAlert drops a legacy `query:` wrapper for ES >= 5.
                    inner
                } else {
                    Value::Object(o)
                }
            }
            _ => {
                return Err(AlertError::config(
                    key,
                    "expected a query clause (a mapping)",
                ))
            }
        };
        cairn_query::dsl::parse(&c, &limits)
            .map_err(|e| AlertError::config(key.clone(), e.to_string()))?;
        out.push(c);
    }
    Ok(out)
}

/// Reads `!file /path` entries of black/whitelists, as ElastAlert does.
fn expand_list(m: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in str_list(m, key)? {
        if let Some(rest) = entry.strip_prefix("!file") {
            let path = rest.trim();
            let text = std::fs::read_to_string(path).map_err(|e| AlertError::Io {
                path: path.to_string(),
                source: e,
            })?;
            out.extend(text.lines().map(|l| l.trim_end().to_string()));
        } else {
            out.push(entry);
        }
    }
    Ok(out)
}

const KNOWN_ALERTERS: &[&str] = &[
    "post",
    "post2",
    "slack",
    "email",
    "command",
    "pagerduty",
    "opsgenie",
    "ms_teams",
    "ms_power_automate",
    "telegram",
    "debug",
];

fn build_rule(id: &str, m: Map<String, Value>, g: &Globals) -> Result<Rule> {
    let name = req_str(&m, "name")?;
    if name.trim().is_empty() {
        return Err(AlertError::config("name", "must not be empty"));
    }
    let indices: Vec<String> = str_list(&m, "index")?
        .iter()
        .flat_map(|s| s.split(',').map(|p| p.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect();
    if indices.is_empty() {
        return Err(AlertError::config("index", "missing required key"));
    }
    let type_name = req_str(&m, "type")?;
    let timeframe = opt_duration(&m, "timeframe")?;
    let query_key = str_list(&m, "query_key")?;
    let kind = match type_name.as_str() {
        "any" => RuleKind::Any,
        "blacklist" => RuleKind::Blacklist {
            compare_key: req_str(&m, "compare_key")?,
            list: expand_list(&m, "blacklist")?,
        },
        "whitelist" => RuleKind::Whitelist {
            compare_key: req_str(&m, "compare_key")?,
            list: expand_list(&m, "whitelist")?,
            ignore_null: opt_bool(&m, "ignore_null")?
                .ok_or_else(|| AlertError::config("ignore_null", "required by type whitelist"))?,
        },
        "change" => {
            if query_key.is_empty() {
                return Err(AlertError::config("query_key", "required by type change"));
            }
            let compare_keys = str_list(&m, "compare_key")?;
            if compare_keys.is_empty() {
                return Err(AlertError::config("compare_key", "required by type change"));
            }
            RuleKind::Change {
                compare_keys,
                ignore_null: opt_bool(&m, "ignore_null")?
                    .ok_or_else(|| AlertError::config("ignore_null", "required by type change"))?,
            }
        }
        "frequency" => {
            require_timeframe(timeframe, "frequency")?;
            RuleKind::Frequency {
                num_events: opt_u64(&m, "num_events")?
                    .ok_or_else(|| AlertError::config("num_events", "required by type frequency"))?,
            }
        }
        "spike" => {
            require_timeframe(timeframe, "spike")?;
            RuleKind::Spike {
                spike_height: spike_height(&m)?,
                spike_type: spike_type(&m)?,
                threshold_ref: opt_f64(&m, "threshold_ref")?.unwrap_or(0.0),
                threshold_cur: opt_f64(&m, "threshold_cur")?.unwrap_or(0.0),
                field_value: opt_str(&m, "field_value")?,
                alert_on_new_data: opt_bool(&m, "alert_on_new_data")?.unwrap_or(false),
            }
        }
        "flatline" => {
            require_timeframe(timeframe, "flatline")?;
            RuleKind::Flatline {
                threshold: opt_u64(&m, "threshold")?
                    .ok_or_else(|| AlertError::config("threshold", "required by type flatline"))?,
                forget_keys: opt_bool(&m, "forget_keys")?.unwrap_or(false),
            }
        }
        "new_term" => {
            let fields: Vec<Vec<String>> = match m.get("fields") {
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| match f {
                        Value::String(s) => Ok(vec![s.clone()]),
                        Value::Array(parts) => parts
                            .iter()
                            .map(|p| {
                                p.as_str().map(str::to_string).ok_or_else(|| {
                                    AlertError::config(format!("fields[{i}]"), "expected field names")
                                })
                            })
                            .collect(),
                        _ => Err(AlertError::config(format!("fields[{i}]"), "expected a field name")),
                    })
                    .collect::<Result<_>>()?,
                Some(Value::String(s)) => vec![vec![s.clone()]],
                Some(_) => return Err(AlertError::config("fields", "expected a list of fields")),
                None if !query_key.is_empty() => vec![query_key.clone()],
                None => {
                    return Err(AlertError::config(
                        "fields",
                        "new_term needs fields or query_key",
                    ))
                }
            };
            if fields.is_empty() {
                return Err(AlertError::config("fields", "must not be an empty list"));
            }
            RuleKind::NewTerm {
                fields,
                terms_window_size: opt_duration(&m, "terms_window_size")?.unwrap_or(30 * 86_400 * SECOND),
                window_step_size: opt_duration(&m, "window_step_size")?.unwrap_or(86_400 * SECOND),
                alert_on_missing_field: opt_bool(&m, "alert_on_missing_field")?.unwrap_or(false),
            }
        }
        "cardinality" => {
            require_timeframe(timeframe, "cardinality")?;
            let max = opt_f64(&m, "max_cardinality")?;
            let min = opt_f64(&m, "min_cardinality")?;
            if max.is_none() && min.is_none() {
                return Err(AlertError::config(
                    "max_cardinality",
                    "cardinality needs max_cardinality or min_cardinality",
                ));
            }
            RuleKind::Cardinality {
                field: req_str(&m, "cardinality_field")?,
                max,
                min,
            }
        }
        "metric_aggregation" => RuleKind::MetricAggregation(metric_spec(&m, false)?),
        "spike_aggregation" => {
            require_timeframe(timeframe, "spike_aggregation")?;
            RuleKind::SpikeAggregation {
                metric: metric_spec(&m, true)?,
                spike_height: spike_height(&m)?,
                spike_type: spike_type(&m)?,
                threshold_ref: opt_f64(&m, "threshold_ref")?.unwrap_or(0.0),
                threshold_cur: opt_f64(&m, "threshold_cur")?.unwrap_or(0.0),
                alert_on_new_data: opt_bool(&m, "alert_on_new_data")?.unwrap_or(false),
            }
        }
        "percentage_match" => {
            let mbf = m
                .get("match_bucket_filter")
                .cloned()
                .ok_or_else(|| AlertError::config("match_bucket_filter", "required by type percentage_match"))?;
            let min_p = opt_f64(&m, "min_percentage")?;
            let max_p = opt_f64(&m, "max_percentage")?;
            if min_p.is_none() && max_p.is_none() {
                return Err(AlertError::config(
                    "max_percentage",
                    "percentage_match needs min_percentage or max_percentage",
                ));
            }
            RuleKind::PercentageMatch {
                match_bucket_filter: mbf,
                min_percentage: min_p,
                max_percentage: max_p,
                min_denominator: opt_u64(&m, "min_denominator")?.unwrap_or(0),
                bucket_interval: opt_duration(&m, "bucket_interval")?,
            }
        }
        other => {
            return Err(AlertError::config(
                "type",
                format!(
                    "unknown rule type [{other}]: use any, blacklist, whitelist, change, frequency, spike, flatline, new_term, cardinality, metric_aggregation, spike_aggregation or percentage_match"
                ),
            ))
        }
    };

    let mut filter = build_filter(&m)?;
    // ElastAlert adds black/whitelists to the query (filter_by_list, default on), so
    // the server does the comparison and only candidate documents are fetched.
    if opt_bool(&m, "filter_by_list")?.unwrap_or(true) {
        let (list, ck, negate) = match &kind {
            RuleKind::Blacklist { list, compare_key } => (list, compare_key, false),
            RuleKind::Whitelist {
                list, compare_key, ..
            } => (list, compare_key, true),
            _ => (&Vec::new(), &String::new(), false),
        };
        if !list.is_empty() {
            let terms: Vec<String> = list
                .iter()
                .map(|t| {
                    if t.len() > 1 && t.starts_with('/') && t.ends_with('/') {
                        format!("{ck}:{t}")
                    } else {
                        format!("{ck}:\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                })
                .collect();
            let q = if negate {
                format!("NOT {}", terms.join(" AND NOT "))
            } else {
                terms.join(" OR ")
            };
            filter.push(serde_json::json!({"query_string": {"query": q}}));
        }
    }

    let timestamp_type = match opt_str(&m, "timestamp_type")?.as_deref() {
        None | Some("iso") => TimestampType::Iso,
        Some("unix") => TimestampType::Unix,
        Some("unix_ms") => TimestampType::UnixMs,
        Some("custom") => TimestampType::Custom(
            opt_str(&m, "timestamp_format")?.unwrap_or_else(|| "%Y-%m-%dT%H:%M:%SZ".into()),
        ),
        Some(o) => {
            return Err(AlertError::config(
                "timestamp_type",
                format!("[{o}]: use iso, unix, unix_ms or custom"),
            ))
        }
    };
    let aggregation = match m.get("aggregation") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) if o.contains_key("schedule") => {
            let s = o.get("schedule").and_then(Value::as_str).ok_or_else(|| {
                AlertError::config("aggregation.schedule", "expected a cron string")
            })?;
            Some(Aggregation::Schedule(Cron::parse(s).map_err(|e| {
                AlertError::config("aggregation.schedule", e)
            })?))
        }
        Some(v) => Some(Aggregation::Every(parse_duration_value(v, "aggregation")?)),
    };
    let limit_execution = match opt_str(&m, "limit_execution")? {
        Some(s) => Some(Cron::parse(&s).map_err(|e| AlertError::config("limit_execution", e))?),
        None => None,
    };
    let query_timezone = match opt_str(&m, "query_timezone")? {
        Some(s) => Some(s.parse::<chrono_tz::Tz>().map_err(|_| {
            AlertError::config("query_timezone", format!("unknown time zone [{s}]"))
        })?),
        None => None,
    };
    let alert_text_type = match opt_str(&m, "alert_text_type")?.as_deref() {
        None => AlertTextType::Default,
        Some("alert_text_only") => AlertTextType::AlertTextOnly,
        Some("exclude_fields") => AlertTextType::ExcludeFields,
        Some("aggregation_summary_only") => AlertTextType::AggregationSummaryOnly,
        Some("alert_text_jinja") => AlertTextType::Jinja,
        Some(o) => {
            return Err(AlertError::config(
                "alert_text_type",
                format!("[{o}]: use alert_text_only, alert_text_jinja, exclude_fields or aggregation_summary_only"),
            ))
        }
    };
    if alert_text_type == AlertTextType::Jinja {
        if let Some(t) = opt_str(&m, "alert_text")? {
            crate::format::check_jinja(&t).map_err(|e| AlertError::config("alert_text", e))?;
        }
    }
    let alert_text_kw = match m.get("alert_text_kw") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(AlertError::config(
                    format!("alert_text_kw.{k}"),
                    "expected a string",
                )),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(AlertError::config("alert_text_kw", "expected a mapping")),
    };
    let alerters: Vec<String> = match m.get("alert") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                Value::String(s) => Ok(s.clone()),
                // ElastAlert allows `- email: {options}`: options merged into the rule.
                Value::Object(o) if o.len() == 1 => {
                    Ok(o.keys().next().cloned().unwrap_or_default())
                }
                _ => Err(AlertError::config(
                    format!("alert[{i}]"),
                    "expected an alerter name",
                )),
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(AlertError::config(
                "alert",
                "expected an alerter name or a list",
            ))
        }
    };
    let mut raw = m;
    if let Some(Value::Array(items)) = raw.get("alert").cloned() {
        for item in items {
            if let Value::Object(o) = item {
                for (_, opts) in o {
                    if let Value::Object(opts) = opts {
                        for (k, v) in opts {
                            raw.entry(k).or_insert(v);
                        }
                    }
                }
            }
        }
    }
    let m = &raw;
    for (i, a) in alerters.iter().enumerate() {
        if !KNOWN_ALERTERS.contains(&a.as_str()) {
            return Err(AlertError::config(
                format!("alert[{i}]"),
                format!("unknown alerter [{a}]: use {}", KNOWN_ALERTERS.join(", ")),
            ));
        }
        crate::alerters::validate(a, m)?;
    }
    if opt_bool(m, "use_terms_query")?.unwrap_or(false) && query_key.len() != 1 {
        return Err(AlertError::config(
            "use_terms_query",
            "needs exactly one query_key",
        ));
    }
    let run_every = opt_duration(m, "run_every")?.unwrap_or(g.run_every);
    if run_every < SECOND {
        return Err(AlertError::config("run_every", "must be at least 1 second"));
    }
    Ok(Rule {
        id: id.to_string(),
        name,
        indices,
        use_strftime_index: opt_bool(m, "use_strftime_index")?.unwrap_or(false),
        kind,
        filter,
        timestamp_field: opt_str(m, "timestamp_field")?.unwrap_or_else(|| "@timestamp".into()),
        timestamp_type,
        run_every,
        buffer_time: opt_duration(m, "buffer_time")?.unwrap_or(g.buffer_time),
        query_delay: opt_duration(m, "query_delay")?.unwrap_or(0),
        timeframe,
        realert: opt_duration(m, "realert")?.unwrap_or(MINUTE),
        exponential_realert: opt_duration(m, "exponential_realert")?,
        query_key,
        aggregation,
        aggregation_key: opt_str(m, "aggregation_key")?,
        aggregate_by_match_time: opt_bool(m, "aggregate_by_match_time")?.unwrap_or(false),
        summary_table_fields: str_list(m, "summary_table_fields")?,
        alert_subject: opt_str(m, "alert_subject")?,
        alert_subject_args: str_list(m, "alert_subject_args")?,
        alert_text: opt_str(m, "alert_text")?,
        alert_text_args: str_list(m, "alert_text_args")?,
        alert_text_kw,
        alert_text_type,
        top_count_keys: str_list(m, "top_count_keys")?,
        top_count_number: opt_u64(m, "top_count_number")?.unwrap_or(5),
        include: str_list(m, "include")?,
        use_count_query: opt_bool(m, "use_count_query")?.unwrap_or(false),
        use_terms_query: opt_bool(m, "use_terms_query")?.unwrap_or(false),
        terms_size: opt_u64(m, "terms_size")?.unwrap_or(50),
        scan_entire_timeframe: opt_bool(m, "scan_entire_timeframe")?.unwrap_or(false),
        is_enabled: opt_bool(m, "is_enabled")?.unwrap_or(true),
        limit_execution,
        query_timezone,
        max_query_size: opt_u64(m, "max_query_size")?
            .unwrap_or(g.max_query_size)
            .max(1),
        max_scrolling_count: opt_u64(m, "max_scrolling_count")?.unwrap_or(g.max_scrolling_count),
        alert_time_limit: opt_duration(m, "alert_time_limit")?.unwrap_or(g.alert_time_limit),
        old_query_limit: opt_duration(m, "old_query_limit")?.unwrap_or(g.old_query_limit),
        notify_on_recovery: opt_bool(m, "notify_on_recovery")?.unwrap_or(false),
        use_run_every_query_size: opt_bool(m, "use_run_every_query_size")?.unwrap_or(false),
        alerters,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Rule> {
        parse_rule("r", t, None, &Globals::default())
    }

    #[test]
    fn yaml11_booleans_and_durations() {
        let r = parse(
            "name: x\nindex: logs-*\ntype: frequency\nnum_events: 3\ntimeframe: {minutes: 5}\nuse_count_query: yes\nrealert: {hours: 1}\n",
        )
        .unwrap();
        assert!(r.use_count_query);
        assert_eq!(r.timeframe, Some(5 * MINUTE));
        assert_eq!(r.realert, 60 * MINUTE);
        assert_eq!(r.buffer_time, 45 * MINUTE);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("name: x\nindex: a\ntype: frequency\ntimeframe: {minutes: 5}\n").unwrap_err();
        assert!(e.to_string().starts_with("num_events:"), "{e}");
        let e = parse("name: x\nindex: a\ntype: any\nfilter:\n- term: {a: 1}\n- bogus_query: {}\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("filter[1]:"), "{e}");
        let e = parse("name: x\nindex: a\ntype: spike\ntimeframe: {hours: x}\n").unwrap_err();
        assert!(e.to_string().starts_with("timeframe.hours:"), "{e}");
        let e = parse("name: x\nindex: a\ntype: any\nalert: [nope]\n").unwrap_err();
        assert!(e.to_string().starts_with("alert[0]:"), "{e}");
    }

    #[test]
    fn kql_filter_and_env_and_import() {
        let dir = std::env::temp_dir().join(format!("cairn-alert-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("shared.yaml"),
            "index: shared-*\nrealert: {minutes: 0}\n",
        )
        .unwrap();
        std::env::set_var("CAIRN_ALERT_TEST_NAME", "from-env");
        std::fs::write(
            dir.join("r.yaml"),
            "import: shared.yaml\nname: $CAIRN_ALERT_TEST_NAME\ntype: any\nfilter:\n- kql: 'level:error'\n",
        )
        .unwrap();
        let r = load_file(&dir.join("r.yaml"), &Globals::default()).unwrap();
        assert_eq!(r.name, "from-env");
        assert_eq!(r.indices, vec!["shared-*"]);
        assert_eq!(r.realert, 0);
        assert_eq!(
            r.filter[0],
            serde_json::json!({"kql": {"query": "level:error"}})
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn blacklist_adds_query_string() {
        let r = parse(
            "name: x\nindex: a\ntype: blacklist\ncompare_key: user\nblacklist: [bob, \"/ev.l/\"]\n",
        )
        .unwrap();
        assert_eq!(
            r.filter[0],
            serde_json::json!({"query_string": {"query": "user:\"bob\" OR user:/ev.l/"}})
        );
    }
}
