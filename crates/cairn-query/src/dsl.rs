//! The Elasticsearch query DSL (the object under `"query"`) into [`Query`].
//!
//! Accepts short and long forms (`{"term":{"f":"v"}}` / `{"term":{"f":{"value":"v"}}}`),
//! a single object or an array for bool clauses, and reports errors with ES 8's types
//! and reasons. `_name` is accepted and ignored everywhere; `analyzer`, `rewrite` and
//! similar tuning keys are accepted and ignored (Cairn has one analyzer per field type).
//! Cairn extension: `{"kql": {"query": "...", "default_field": "...", "case_insensitive": bool,
//! "time_zone": "..."}}` (the same keys as ES 8.18's `kql` query).

use serde_json::{Map, Value};

use crate::ast::*;
use crate::error::{ErrorKind, QueryError};
use crate::limits::Limits;
use crate::regexp;
use crate::{kql, lucene, simple};

/// Parse an ES query DSL object (the value of `"query"`).
pub fn parse(value: &Value, limits: &Limits) -> Result<Query, QueryError> {
    let mut p = DslParser { limits, leaves: 0 };
    let q = p.inner(value, 1)?;
    // Clause counting during parsing stops hostile input early; this final pass also
    // covers the leaves that query strings produced.
    limits.check_clauses(&q)?;
    Ok(q)
}

struct DslParser<'a> {
    limits: &'a Limits,
    leaves: usize,
}

type Obj = Map<String, Value>;

/// (field, long-form body, short-form value, boost next to the field).
type TermLevelBody<'v> = (String, Option<&'v Obj>, Option<String>, Option<f32>);

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Text of a scalar as ES's `parser.text()` gives it.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_str(q: &str, key: &str, v: &Value) -> Result<String, QueryError> {
    scalar_text(v).ok_or_else(|| {
        QueryError::parsing(format!(
            "[{q}] query does not support [{key}] with value of type [{}]",
            type_name(v)
        ))
    })
}

fn get_f32(q: &str, key: &str, v: &Value) -> Result<f32, QueryError> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() => Ok(f as f32),
        _ => Err(QueryError::x_content(format!(
            "[{q}] failed to parse field [{key}]"
        ))),
    }
}

fn get_u32(q: &str, key: &str, v: &Value) -> Result<u32, QueryError> {
    let n = match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| QueryError::x_content(format!("[{q}] failed to parse field [{key}]")))
}

fn get_bool(q: &str, key: &str, v: &Value) -> Result<bool, QueryError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(QueryError::x_content(format!(
            "[{q}] failed to parse field [{key}]"
        ))),
    }
}

fn boost(q: &str, v: &Value) -> Result<Option<f32>, QueryError> {
    let b = get_f32(q, "boost", v)?;
    if b < 0.0 {
        return Err(QueryError::illegal_argument(
            "negative [boost] are not allowed.",
        ));
    }
    Ok(Some(b))
}

fn unsupported(q: &str, key: &str) -> QueryError {
    QueryError::parsing(format!("[{q}] query does not support [{key}]"))
}

/// ObjectParser-based builders (match_all, bool, ids, ...) word it differently, with
/// ES's "did you mean" suggestions.
fn unknown_field(q: &str, key: &str) -> QueryError {
    let candidates: &[&str] = match q {
        "bool" => &[
            "must",
            "should",
            "must_not",
            "filter",
            "minimum_should_match",
            "adjust_pure_negative",
            "boost",
            "_name",
        ],
        "ids" => &["values", "boost", "_name"],
        "kql" => &[
            "query",
            "default_field",
            "case_insensitive",
            "time_zone",
            "boost",
            "_name",
        ],
        _ => &["boost", "_name"],
    };
    QueryError::x_content(format!(
        "[{q}] unknown field [{key}]{}",
        suggest(key, candidates)
    ))
}

/// Query names Elasticsearch 8 registers (for suggestions and for naming the ones Cairn
/// does not implement).
const ES_QUERIES: &[&str] = &[
    "bool",
    "boosting",
    "combined_fields",
    "constant_score",
    "dis_max",
    "distance_feature",
    "exists",
    "function_score",
    "fuzzy",
    "geo_bounding_box",
    "geo_distance",
    "geo_grid",
    "geo_polygon",
    "geo_shape",
    "has_child",
    "has_parent",
    "ids",
    "intervals",
    "knn",
    "kql",
    "match",
    "match_all",
    "match_bool_prefix",
    "match_none",
    "match_phrase",
    "match_phrase_prefix",
    "more_like_this",
    "multi_match",
    "nested",
    "parent_id",
    "percolate",
    "pinned",
    "prefix",
    "query_string",
    "range",
    "rank_feature",
    "regexp",
    "rule",
    "script",
    "script_score",
    "semantic",
    "shape",
    "simple_query_string",
    "span_containing",
    "span_field_masking",
    "span_first",
    "span_multi",
    "span_near",
    "span_not",
    "span_or",
    "span_term",
    "span_within",
    "sparse_vector",
    "term",
    "terms",
    "terms_set",
    "text_expansion",
    "weighted_tokens",
    "wildcard",
    "wrapper",
];

/// Lucene's `LevenshteinDistance.getDistance`: 1 - edits / longest length.
fn similarity(a: &str, b: &str) -> f32 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    1.0 - prev[b.len()] as f32 / longest as f32
}

/// ES's `SuggestingErrorOnUnknown.suggest`: `" did you mean [x]?"`, `" did you mean any of
/// [x, y]?"` or `""`.
fn suggest(unknown: &str, candidates: &[&str]) -> String {
    // Bound the work on hostile names.
    if unknown.chars().count() > 256 {
        return String::new();
    }
    let mut scored: Vec<(f32, &str)> = candidates
        .iter()
        .map(|c| (similarity(unknown, c), *c))
        .filter(|(d, _)| *d > 0.5)
        .collect();
    if scored.is_empty() {
        return String::new();
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    if scored.len() == 1 {
        format!(" did you mean [{}]?", scored[0].1)
    } else {
        let names: Vec<&str> = scored.iter().map(|(_, n)| *n).collect();
        format!(" did you mean any of [{}]?", names.join(", "))
    }
}

/// Parse `operator` (`or`/`and`, case-insensitive).
pub fn parse_operator(s: &str) -> Result<Operator, QueryError> {
    match s.to_ascii_lowercase().as_str() {
        "or" => Ok(Operator::Or),
        "and" => Ok(Operator::And),
        _ => Err(QueryError::illegal_argument(format!(
            "No enum constant org.elasticsearch.index.query.Operator.{}",
            s.to_ascii_uppercase()
        ))),
    }
}

fn parse_zero_terms(s: &str) -> Result<ZeroTermsQuery, QueryError> {
    match s.to_ascii_lowercase().as_str() {
        "none" => Ok(ZeroTermsQuery::None),
        "all" => Ok(ZeroTermsQuery::All),
        _ => Err(QueryError::parse(format!(
            "Unsupported zero_terms_query value [{s}]"
        ))),
    }
}

/// Parse ES `fuzziness`: `AUTO`, `AUTO:3,6`, `0`/`1`/`2` (number or string).
pub fn parse_fuzziness(v: &Value) -> Result<Fuzziness, QueryError> {
    let s = scalar_text(v).ok_or_else(|| {
        QueryError::parse(format!("failed to parse fuzziness [{}]", type_name(v)))
    })?;
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    if upper == "AUTO" {
        return Ok(Fuzziness::default());
    }
    if let Some(rest) = upper.strip_prefix("AUTO:") {
        let mut parts = rest.split(',');
        let low = parts.next().and_then(|p| p.trim().parse::<u32>().ok());
        let high = parts.next().and_then(|p| p.trim().parse::<u32>().ok());
        return match (low, high, parts.next()) {
            (Some(low), Some(high), None) if low <= high => Ok(Fuzziness::Auto { low, high }),
            _ => Err(QueryError::parse(format!(
                "failed to find low and high distance values in fuzziness [{s}]"
            ))),
        };
    }
    match t.parse::<f64>() {
        Ok(f) if (0.0..=2.0).contains(&f) => Ok(Fuzziness::Edits(f as u8)),
        Ok(f) if f > 2.0 && f.is_finite() => Ok(Fuzziness::Edits(2)),
        _ => Err(QueryError::illegal_argument(format!(
            "Invalid fuzziness value: {s}. Fuzziness must be a non-negative number or 'AUTO'"
        ))),
    }
}

fn parse_msm_value(s: &str) -> Option<MsmValue> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        p.trim().parse::<i32>().ok().map(MsmValue::Percent)
    } else {
        s.parse::<i32>().ok().map(MsmValue::Count)
    }
}

/// Parse `minimum_should_match`: `3`, `-2`, `75%`, `-25%`, `3<90%`, `2<-25% 9<-3`.
pub fn parse_minimum_should_match(v: &Value) -> Result<MinimumShouldMatch, QueryError> {
    let s = scalar_text(v).ok_or_else(|| {
        QueryError::x_content("[minimum_should_match] must be a string or a number")
    })?;
    let bad = || QueryError::illegal_argument(format!("Invalid minimum_should_match value [{s}]"));
    if s.contains('<') {
        let mut parts = Vec::new();
        for part in s.split_whitespace() {
            let (above, then) = part.split_once('<').ok_or_else(bad)?;
            let above = above.trim().parse::<u32>().map_err(|_| bad())?;
            let then = parse_msm_value(then).ok_or_else(bad)?;
            parts.push(MsmCondition { above, then });
        }
        if parts.is_empty() {
            return Err(bad());
        }
        Ok(MinimumShouldMatch::Conditional(parts))
    } else {
        parse_msm_value(&s)
            .map(MinimumShouldMatch::Value)
            .ok_or_else(bad)
    }
}

/// Parse a `fields` entry `name^boost` into `(name, boost)`.
pub fn parse_field_spec(spec: &str) -> Result<(String, f32), QueryError> {
    if let Some((name, b)) = spec.rsplit_once('^') {
        let boost = b.trim().parse::<f32>().map_err(|_| {
            QueryError::illegal_argument(format!("invalid boost value [{b}] in field [{spec}]"))
        })?;
        if !boost.is_finite() || boost < 0.0 {
            return Err(QueryError::illegal_argument(
                "negative [boost] are not allowed.",
            ));
        }
        Ok((name.trim().to_string(), boost))
    } else {
        Ok((spec.trim().to_string(), 1.0))
    }
}

fn parse_fields(q: &str, v: &Value) -> Result<Vec<(String, f32)>, QueryError> {
    match v {
        Value::String(s) => Ok(vec![parse_field_spec(s)?]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => parse_field_spec(s),
                other => Err(QueryError::parsing(format!(
                    "[{q}] query does not support [fields] with value of type [{}]",
                    type_name(other)
                ))),
            })
            .collect(),
        other => Err(QueryError::parsing(format!(
            "[{q}] query does not support [fields] with value of type [{}]",
            type_name(other)
        ))),
    }
}

/// The single `field: body` entry of a field-keyed query (term, match, range, ...);
/// `boost`/`_name` siblings at this level are accepted for the short form as ES does.
fn single_field<'v>(
    q: &str,
    body: &'v Obj,
) -> Result<(&'v str, &'v Value, Option<f32>), QueryError> {
    let mut found: Option<(&str, &Value)> = None;
    let mut outer_boost = None;
    for (k, v) in body {
        // Only `range` accepts `boost`/`_name` next to the field; elsewhere ES treats any
        // key as a field name.
        if q == "range" && !v.is_object() {
            match k.as_str() {
                "boost" => outer_boost = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
            continue;
        }
        if let Some((prev, _)) = found {
            return Err(QueryError::parsing(format!(
                "[{q}] query doesn't support multiple fields, found [{prev}] and [{k}]"
            )));
        }
        found = Some((k.as_str(), v));
    }
    match found {
        Some((f, v)) => Ok((f, v, outer_boost)),
        None if q.starts_with("match") => Err(QueryError::illegal_argument(format!(
            "[{q}] requires fieldName"
        ))),
        None => Err(QueryError::illegal_argument("field name is null or empty")),
    }
}

impl DslParser<'_> {
    fn count_leaf(&mut self) -> Result<(), QueryError> {
        self.leaves += 1;
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(())
    }

    /// Parse one query object `{ "<name>": { ... } }` at nesting `depth` (top level = 1).
    fn inner(&mut self, value: &Value, depth: usize) -> Result<Query, QueryError> {
        if depth > self.limits.max_nested_depth {
            return Err(self.limits.nested_depth_error());
        }
        let obj = match value {
            Value::Object(o) => o,
            _ => {
                return Err(QueryError::parsing(
                    "[_na] query malformed, must start with start_object",
                ))
            }
        };
        let mut iter = obj.iter();
        let Some((name, body)) = iter.next() else {
            return Err(QueryError::parsing("query malformed, empty clause found"));
        };
        if let Some((next, _)) = iter.next() {
            let _ = next;
            return Err(QueryError::parsing(format!(
                "[{name}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"
            )));
        }
        let Value::Object(body) = body else {
            return Err(QueryError::parsing(format!(
                "[{name}] query malformed, no start_object after query name"
            )));
        };
        let q = match name.as_str() {
            "match_all" => self.match_all(body)?,
            "match_none" => self.match_none(body)?,
            "term" => self.term(body)?,
            "terms" => self.terms(body)?,
            "range" => self.range(body)?,
            "exists" => self.exists(body)?,
            "prefix" => self.prefix(body)?,
            "wildcard" => self.wildcard(body)?,
            "regexp" => self.regexp(body)?,
            "fuzzy" => self.fuzzy(body)?,
            "ids" => self.ids(body)?,
            "match" => self.match_query(body)?,
            "match_phrase" => self.match_phrase(body)?,
            "match_phrase_prefix" => self.match_phrase_prefix(body)?,
            "match_bool_prefix" => self.match_bool_prefix(body)?,
            "multi_match" => self.multi_match(body)?,
            "bool" => return self.bool_query(body, depth),
            "constant_score" => return self.constant_score(body, depth),
            "dis_max" => return self.dis_max(body, depth),
            "boosting" => return self.boosting(body, depth),
            "query_string" => return self.query_string(body),
            "simple_query_string" => return self.simple_query_string(body),
            "kql" => return self.kql(body),
            other if ES_QUERIES.contains(&other) => {
                return Err(QueryError::parsing(format!(
                    "[{other}] query is not supported by Cairn"
                )))
            }
            other => {
                return Err(QueryError::parsing(format!(
                    "unknown query [{other}]{}",
                    suggest(other, ES_QUERIES)
                )))
            }
        };
        self.count_leaf()?;
        Ok(q)
    }

    fn match_all(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "boost" => b = boost("match_all", v)?,
                "_name" => {}
                _ => return Err(unknown_field("match_all", k)),
            }
        }
        Ok(Query::MatchAll { boost: b })
    }

    fn match_none(&mut self, body: &Obj) -> Result<Query, QueryError> {
        for (k, v) in body {
            match k.as_str() {
                "boost" => {
                    boost("match_none", v)?;
                }
                "_name" => {}
                _ => return Err(unsupported("match_none", k)),
            }
        }
        Ok(Query::MatchNone)
    }

    fn term(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "term";
        let (field, v, outer_boost) = single_field(q, body)?;
        let mut value = None;
        let mut case_insensitive = false;
        let mut b = outer_boost;
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "value" => value = Some(v.clone()),
                        "case_insensitive" => case_insensitive = get_bool(q, k, v)?,
                        "boost" => b = boost(q, v)?,
                        "_name" => {}
                        _ => return Err(unsupported(q, k)),
                    }
                }
            }
            Value::Array(_) => {
                return Err(QueryError::parsing(
                    "[term] query does not support array of values",
                ))
            }
            other => value = Some(other.clone()),
        }
        let value = match value {
            None | Some(Value::Null) => {
                return Err(QueryError::illegal_argument("value cannot be null"))
            }
            Some(Value::Array(_)) | Some(Value::Object(_)) => {
                return Err(QueryError::parsing(
                    "[term] query does not support array of values",
                ))
            }
            Some(v) => v,
        };
        Ok(Query::Term {
            field: field.to_string(),
            value,
            case_insensitive,
            boost: b,
        })
    }

    fn terms(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "terms";
        let mut field: Option<(&str, &Vec<Value>)> = None;
        let mut b = None;
        for (k, v) in body {
            match (k.as_str(), v) {
                ("boost", _) => b = boost(q, v)?,
                ("_name", _) => {}
                (_, Value::Array(values)) => {
                    if field.is_some() {
                        return Err(QueryError::parsing(
                            "[terms] query does not support multiple fields",
                        ));
                    }
                    field = Some((k.as_str(), values));
                }
                (_, Value::Object(_)) => {
                    return Err(QueryError::illegal_argument(
                        "[terms] query: terms lookup is not supported by Cairn",
                    ))
                }
                _ => return Err(unsupported(q, k)),
            }
        }
        let Some((field, values)) = field else {
            return Err(QueryError::parsing(
                "[terms] query requires a field name, followed by array of terms or a document lookup specification",
            ));
        };
        if values.len() > self.limits.max_terms_count {
            return Err(self.limits.terms_count_error(values.len()));
        }
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => out.push(v.clone()),
                Value::Null => {
                    return Err(QueryError::illegal_argument(
                        "No value specified for terms query",
                    ))
                }
                _ => {
                    return Err(QueryError::illegal_argument(format!(
                        "[terms] query does not support values of type [{}]",
                        type_name(v)
                    )))
                }
            }
        }
        Ok(Query::Terms {
            field: field.to_string(),
            values: out,
            boost: b,
        })
    }

    fn range(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "range";
        let (field, v, outer_boost) = single_field(q, body)?;
        let Value::Object(o) = v else {
            return Err(QueryError::parsing(
                "[range] query malformed, after field missing start object",
            ));
        };
        let (mut gt, mut gte, mut lt, mut lte) = (None, None, None, None);
        let (mut from, mut to): (Option<Value>, Option<Value>) = (None, None);
        let (mut include_lower, mut include_upper) = (true, true);
        let mut format = None;
        let mut time_zone = None;
        let mut b = outer_boost;
        let bound = |v: &Value| -> Result<Option<Value>, QueryError> {
            match v {
                Value::Null => Ok(None),
                Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(Some(v.clone())),
                _ => Err(QueryError::parsing(format!(
                    "[range] query does not support values of type [{}]",
                    type_name(v)
                ))),
            }
        };
        for (k, v) in o {
            match k.as_str() {
                "gt" => gt = bound(v)?,
                "gte" => gte = bound(v)?,
                "lt" => lt = bound(v)?,
                "lte" => lte = bound(v)?,
                "from" => from = bound(v)?,
                "to" => to = bound(v)?,
                "include_lower" => include_lower = get_bool(q, k, v)?,
                "include_upper" => include_upper = get_bool(q, k, v)?,
                "format" => format = Some(get_str(q, k, v)?),
                "time_zone" => time_zone = Some(get_str(q, k, v)?),
                "relation" => {
                    let r = get_str(q, k, v)?;
                    if !matches!(
                        r.to_ascii_lowercase().as_str(),
                        "intersects" | "contains" | "within"
                    ) {
                        return Err(QueryError::illegal_argument(format!(
                            "{r} is not a valid relation"
                        )));
                    }
                }
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        if from.is_some() {
            if include_lower {
                gte = gte.or(from);
            } else {
                gt = gt.or(from);
            }
        }
        if to.is_some() {
            if include_upper {
                lte = lte.or(to);
            } else {
                lt = lt.or(to);
            }
        }
        if let Some(tz) = &time_zone {
            crate::datemath::parse_time_zone(tz)?;
        }
        Ok(Query::Range {
            field: field.to_string(),
            gt,
            gte,
            lt,
            lte,
            format,
            time_zone,
            boost: b,
        })
    }

    fn exists(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "exists";
        let mut field = None;
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "field" => field = Some(get_str(q, k, v)?),
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        let Some(field) = field else {
            return Err(QueryError::illegal_argument(
                "[exists] must be provided with a [field]",
            ));
        };
        Ok(Query::Exists { field, boost: b })
    }

    /// prefix / wildcard / regexp / fuzzy share this shape: short form or `{value: ...}`.
    fn term_level_body<'v>(&self, q: &str, body: &'v Obj) -> Result<TermLevelBody<'v>, QueryError> {
        let (field, v, outer_boost) = single_field(q, body)?;
        match v {
            Value::Object(o) => Ok((field.to_string(), Some(o), None, outer_boost)),
            other => {
                let s = scalar_text(other).ok_or_else(|| {
                    QueryError::parsing(format!(
                        "[{q}] query does not support values of type [{}]",
                        type_name(other)
                    ))
                })?;
                Ok((field.to_string(), None, Some(s), outer_boost))
            }
        }
    }

    fn prefix(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "prefix";
        let (field, long, mut value, mut b) = self.term_level_body(q, body)?;
        let mut case_insensitive = false;
        if let Some(o) = long {
            for (k, v) in o {
                match k.as_str() {
                    "value" | "prefix" => value = Some(get_str(q, k, v)?),
                    "case_insensitive" => case_insensitive = get_bool(q, k, v)?,
                    "rewrite" => {}
                    "boost" => b = boost(q, v)?,
                    "_name" => {}
                    _ => return Err(unsupported(q, k)),
                }
            }
        }
        let value = value.ok_or_else(|| QueryError::illegal_argument("value cannot be null"))?;
        Ok(Query::Prefix {
            field,
            value,
            case_insensitive,
            boost: b,
        })
    }

    fn wildcard(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "wildcard";
        let (field, long, mut value, mut b) = self.term_level_body(q, body)?;
        let mut case_insensitive = false;
        if let Some(o) = long {
            for (k, v) in o {
                match k.as_str() {
                    "value" | "wildcard" => value = Some(get_str(q, k, v)?),
                    "case_insensitive" => case_insensitive = get_bool(q, k, v)?,
                    "rewrite" => {}
                    "boost" => b = boost(q, v)?,
                    "_name" => {}
                    _ => return Err(unsupported(q, k)),
                }
            }
        }
        let pattern = value.ok_or_else(|| {
            QueryError::parsing("failed to parse wildcard query: value cannot be null")
        })?;
        Ok(Query::Wildcard {
            field,
            pattern,
            case_insensitive,
            boost: b,
        })
    }

    fn regexp(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "regexp";
        let (field, long, mut value, mut b) = self.term_level_body(q, body)?;
        let mut case_insensitive = false;
        let mut flags = regexp::flags::ALL;
        let mut max_states = self.limits.max_determinized_states;
        if let Some(o) = long {
            for (k, v) in o {
                match k.as_str() {
                    "value" => value = Some(get_str(q, k, v)?),
                    "flags" => flags = regexp::parse_flags(&get_str(q, k, v)?)?,
                    "flags_value" => flags = get_u32(q, k, v)?,
                    "case_insensitive" => case_insensitive = get_bool(q, k, v)?,
                    "max_determinized_states" => max_states = get_u32(q, k, v)?,
                    "rewrite" => {}
                    "boost" => b = boost(q, v)?,
                    "_name" => {}
                    _ => return Err(unsupported(q, k)),
                }
            }
        }
        let pattern = value.ok_or_else(|| QueryError::illegal_argument("value cannot be null"))?;
        let len = pattern.chars().count();
        if len > self.limits.max_regex_length {
            return Err(self.limits.regex_length_error(len));
        }
        Ok(Query::Regexp {
            field,
            pattern,
            flags,
            case_insensitive,
            max_determinized_states: max_states,
            boost: b,
        })
    }

    fn fuzzy(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "fuzzy";
        let (field, long, mut value, mut b) = self.term_level_body(q, body)?;
        let mut fuzziness = Fuzziness::default();
        let mut prefix_length = 0;
        let mut max_expansions = 50;
        let mut transpositions = true;
        if let Some(o) = long {
            for (k, v) in o {
                match k.as_str() {
                    "value" => value = Some(get_str(q, k, v)?),
                    "fuzziness" => fuzziness = parse_fuzziness(v)?,
                    "prefix_length" => prefix_length = get_u32(q, k, v)?,
                    "max_expansions" => max_expansions = get_u32(q, k, v)?,
                    "transpositions" => transpositions = get_bool(q, k, v)?,
                    "rewrite" => {}
                    "boost" => b = boost(q, v)?,
                    "_name" => {}
                    _ => return Err(unsupported(q, k)),
                }
            }
        }
        let value =
            value.ok_or_else(|| QueryError::illegal_argument("query value cannot be null"))?;
        Ok(Query::Fuzzy {
            field,
            value,
            fuzziness,
            prefix_length,
            max_expansions,
            transpositions,
            boost: b,
        })
    }

    fn ids(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "ids";
        let mut values = Vec::new();
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "values" => {
                    let Value::Array(items) = v else {
                        return Err(QueryError::x_content(
                            "[ids] failed to parse field [values]",
                        ));
                    };
                    if items.len() > self.limits.max_terms_count {
                        return Err(self.limits.terms_count_error(items.len()));
                    }
                    for i in items {
                        match i {
                            Value::String(s) => values.push(s.clone()),
                            Value::Number(n) => values.push(n.to_string()),
                            _ => {
                                return Err(QueryError::x_content(
                                    "[ids] failed to parse field [values]",
                                ))
                            }
                        }
                    }
                }
                "types" => {
                    return Err(unknown_field(q, k));
                }
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unknown_field(q, k)),
            }
        }
        Ok(Query::Ids { values, boost: b })
    }

    fn match_query(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "match";
        let (field, v, outer_boost) = single_field(q, body)?;
        let mut query = None;
        let mut operator = Operator::Or;
        let mut msm = None;
        let mut fuzziness = None;
        let mut prefix_length = 0;
        let mut max_expansions = 50;
        let mut lenient = false;
        let mut zero = ZeroTermsQuery::None;
        let mut b = outer_boost;
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "query" => query = Some(get_str(q, k, v)?),
                        "operator" => operator = parse_operator(&get_str(q, k, v)?)?,
                        "minimum_should_match" => msm = Some(parse_minimum_should_match(v)?),
                        "fuzziness" => fuzziness = Some(parse_fuzziness(v)?),
                        "prefix_length" => prefix_length = get_u32(q, k, v)?,
                        "max_expansions" => max_expansions = get_u32(q, k, v)?,
                        "lenient" => lenient = get_bool(q, k, v)?,
                        "zero_terms_query" => zero = parse_zero_terms(&get_str(q, k, v)?)?,
                        "analyzer"
                        | "fuzzy_transpositions"
                        | "fuzzy_rewrite"
                        | "auto_generate_synonyms_phrase_query" => {}
                        "boost" => b = boost(q, v)?,
                        "_name" => {}
                        _ => return Err(unsupported(q, k)),
                    }
                }
            }
            other => {
                query = Some(scalar_text(other).ok_or_else(|| {
                    QueryError::parsing(format!(
                        "[match] unknown token [{}] after [{field}]",
                        type_name(other)
                    ))
                })?)
            }
        }
        let query = query.ok_or_else(|| QueryError::parsing("No text specified for text query"))?;
        Ok(Query::Match {
            field: field.to_string(),
            query,
            operator,
            minimum_should_match: msm,
            fuzziness,
            prefix_length,
            max_expansions,
            lenient,
            zero_terms_query: zero,
            boost: b,
        })
    }

    fn match_phrase(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "match_phrase";
        let (field, v, outer_boost) = single_field(q, body)?;
        let mut query = None;
        let mut slop = 0;
        let mut zero = ZeroTermsQuery::None;
        let mut b = outer_boost;
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "query" => query = Some(get_str(q, k, v)?),
                        "slop" => slop = get_u32(q, k, v)?,
                        "zero_terms_query" => zero = parse_zero_terms(&get_str(q, k, v)?)?,
                        "analyzer" => {}
                        "boost" => b = boost(q, v)?,
                        "_name" => {}
                        _ => return Err(unsupported(q, k)),
                    }
                }
            }
            other => {
                query = Some(scalar_text(other).ok_or_else(|| {
                    QueryError::parsing(format!(
                        "[match_phrase] unknown token [{}] after [{field}]",
                        type_name(other)
                    ))
                })?)
            }
        }
        let query = query.ok_or_else(|| QueryError::parsing("No text specified for text query"))?;
        Ok(Query::MatchPhrase {
            field: field.to_string(),
            query,
            slop,
            zero_terms_query: zero,
            boost: b,
        })
    }

    fn match_phrase_prefix(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "match_phrase_prefix";
        let (field, v, outer_boost) = single_field(q, body)?;
        let mut query = None;
        let mut slop = 0;
        let mut max_expansions = 50;
        let mut b = outer_boost;
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "query" => query = Some(get_str(q, k, v)?),
                        "slop" => slop = get_u32(q, k, v)?,
                        "max_expansions" => max_expansions = get_u32(q, k, v)?,
                        "analyzer" | "zero_terms_query" => {}
                        "boost" => b = boost(q, v)?,
                        "_name" => {}
                        _ => return Err(unsupported(q, k)),
                    }
                }
            }
            other => {
                query = Some(scalar_text(other).ok_or_else(|| {
                    QueryError::parsing(format!(
                        "[match_phrase_prefix] unknown token [{}] after [{field}]",
                        type_name(other)
                    ))
                })?)
            }
        }
        let query = query.ok_or_else(|| QueryError::parsing("No text specified for text query"))?;
        Ok(Query::MatchPhrasePrefix {
            field: field.to_string(),
            query,
            slop,
            max_expansions,
            boost: b,
        })
    }

    fn match_bool_prefix(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "match_bool_prefix";
        let (field, v, outer_boost) = single_field(q, body)?;
        let mut query = None;
        let mut operator = Operator::Or;
        let mut msm = None;
        let mut b = outer_boost;
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match k.as_str() {
                        "query" => query = Some(get_str(q, k, v)?),
                        "operator" => operator = parse_operator(&get_str(q, k, v)?)?,
                        "minimum_should_match" => msm = Some(parse_minimum_should_match(v)?),
                        "analyzer"
                        | "fuzziness"
                        | "prefix_length"
                        | "max_expansions"
                        | "fuzzy_transpositions"
                        | "fuzzy_rewrite" => {}
                        "boost" => b = boost(q, v)?,
                        "_name" => {}
                        _ => return Err(unsupported(q, k)),
                    }
                }
            }
            other => {
                query = Some(scalar_text(other).ok_or_else(|| {
                    QueryError::parsing(format!(
                        "[match_bool_prefix] unknown token [{}] after [{field}]",
                        type_name(other)
                    ))
                })?)
            }
        }
        let query = query.ok_or_else(|| QueryError::parsing("No text specified for text query"))?;
        Ok(Query::MatchBoolPrefix {
            field: field.to_string(),
            query,
            operator,
            minimum_should_match: msm,
            boost: b,
        })
    }

    fn multi_match(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "multi_match";
        let mut fields = Vec::new();
        let mut query = None;
        let mut kind = MultiMatchType::BestFields;
        let mut operator = Operator::Or;
        let mut msm = None;
        let mut fuzziness = None;
        let mut slop = 0;
        let mut tie_breaker = None;
        let mut lenient = false;
        let mut zero = ZeroTermsQuery::None;
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "query" => query = Some(get_str(q, k, v)?),
                "fields" => fields = parse_fields(q, v)?,
                "type" => {
                    let t = get_str(q, k, v)?;
                    kind = match t.to_ascii_lowercase().as_str() {
                        "best_fields" | "boolean" => MultiMatchType::BestFields,
                        "most_fields" => MultiMatchType::MostFields,
                        "cross_fields" => MultiMatchType::CrossFields,
                        "phrase" => MultiMatchType::Phrase,
                        "phrase_prefix" => MultiMatchType::PhrasePrefix,
                        "bool_prefix" => MultiMatchType::BoolPrefix,
                        _ => {
                            return Err(QueryError::parse(format!(
                                "failed to parse [multi_match] query type [{t}]. unknown type."
                            )))
                        }
                    };
                }
                "operator" => operator = parse_operator(&get_str(q, k, v)?)?,
                "minimum_should_match" => msm = Some(parse_minimum_should_match(v)?),
                "fuzziness" => fuzziness = Some(parse_fuzziness(v)?),
                "slop" => slop = get_u32(q, k, v)?,
                "tie_breaker" => tie_breaker = Some(get_f32(q, k, v)?),
                "lenient" => lenient = get_bool(q, k, v)?,
                "zero_terms_query" => zero = parse_zero_terms(&get_str(q, k, v)?)?,
                "analyzer"
                | "prefix_length"
                | "max_expansions"
                | "fuzzy_rewrite"
                | "fuzzy_transpositions"
                | "auto_generate_synonyms_phrase_query" => {}
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        let query =
            query.ok_or_else(|| QueryError::parsing("No text specified for multi_match query"))?;
        if slop != 0 && kind == MultiMatchType::BoolPrefix {
            return Err(QueryError::parsing(
                "slop not allowed for type [bool_prefix]",
            ));
        }
        if fuzziness.is_some()
            && matches!(
                kind,
                MultiMatchType::CrossFields | MultiMatchType::Phrase | MultiMatchType::PhrasePrefix
            )
        {
            let t = match kind {
                MultiMatchType::CrossFields => "cross_fields",
                MultiMatchType::Phrase => "phrase",
                _ => "phrase_prefix",
            };
            return Err(QueryError::parsing(format!(
                "Fuzziness not allowed for type [{t}]"
            )));
        }
        Ok(Query::MultiMatch {
            fields,
            query,
            kind,
            operator,
            minimum_should_match: msm,
            fuzziness,
            slop,
            tie_breaker,
            lenient,
            zero_terms_query: zero,
            boost: b,
        })
    }

    fn clause_list(
        &mut self,
        q: &str,
        key: &str,
        v: &Value,
        depth: usize,
        out: &mut Vec<Query>,
    ) -> Result<(), QueryError> {
        match v {
            Value::Null => Ok(()),
            Value::Object(_) => {
                out.push(self.inner(v, depth + 1)?);
                Ok(())
            }
            Value::Array(items) => {
                for item in items {
                    if !item.is_object() {
                        return Err(QueryError::x_content(format!(
                            "[{q}] failed to parse field [{key}]"
                        )));
                    }
                    out.push(self.inner(item, depth + 1)?);
                    if out.len() > self.limits.max_clause_count {
                        return Err(self.limits.too_many_clauses_error());
                    }
                }
                Ok(())
            }
            _ => Err(QueryError::x_content(format!(
                "[{q}] failed to parse field [{key}]"
            ))),
        }
    }

    fn bool_query(&mut self, body: &Obj, depth: usize) -> Result<Query, QueryError> {
        let q = "bool";
        let (mut must, mut should, mut must_not, mut filter) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut msm = None;
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "must" => self.clause_list(q, k, v, depth, &mut must)?,
                "should" => self.clause_list(q, k, v, depth, &mut should)?,
                "must_not" | "mustNot" => self.clause_list(q, k, v, depth, &mut must_not)?,
                "filter" => self.clause_list(q, k, v, depth, &mut filter)?,
                "minimum_should_match" | "minimumShouldMatch" => {
                    msm = Some(parse_minimum_should_match(v)?)
                }
                "adjust_pure_negative" => {
                    get_bool(q, k, v)?;
                }
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unknown_field(q, k)),
            }
            if must.len() + should.len() + must_not.len() + filter.len()
                > self.limits.max_clause_count
            {
                return Err(self.limits.too_many_clauses_error());
            }
        }
        Ok(Query::Bool {
            must,
            should,
            must_not,
            filter,
            minimum_should_match: msm,
            boost: b,
        })
    }

    fn constant_score(&mut self, body: &Obj, depth: usize) -> Result<Query, QueryError> {
        let q = "constant_score";
        let mut filter = None;
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "filter" => {
                    if !v.is_object() {
                        return Err(QueryError::parsing(format!(
                            "unexpected token [{}]",
                            type_name(v)
                        )));
                    }
                    filter = Some(self.inner(v, depth + 1)?)
                }
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        let filter = filter
            .ok_or_else(|| QueryError::parsing("[constant_score] requires a 'filter' element"))?;
        Ok(Query::ConstantScore {
            filter: Box::new(filter),
            boost: b,
        })
    }

    fn dis_max(&mut self, body: &Obj, depth: usize) -> Result<Query, QueryError> {
        let q = "dis_max";
        let mut queries = Vec::new();
        let mut tie_breaker = 0.0;
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "queries" => self.clause_list(q, k, v, depth, &mut queries)?,
                "tie_breaker" => tie_breaker = get_f32(q, k, v)?,
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        if queries.is_empty() {
            return Err(QueryError::parsing(
                "[dis_max] requires 'queries' field with at least one clause",
            ));
        }
        Ok(Query::DisMax {
            queries,
            tie_breaker,
            boost: b,
        })
    }

    fn boosting(&mut self, body: &Obj, depth: usize) -> Result<Query, QueryError> {
        let q = "boosting";
        let (mut positive, mut negative, mut negative_boost) = (None, None, None);
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "positive" => positive = Some(self.inner(v, depth + 1)?),
                "negative" => negative = Some(self.inner(v, depth + 1)?),
                "negative_boost" => negative_boost = Some(get_f32(q, k, v)?),
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        let positive = positive
            .ok_or_else(|| QueryError::parsing("[boosting] query requires 'positive' query"))?;
        let negative = negative
            .ok_or_else(|| QueryError::parsing("[boosting] query requires 'negative' query"))?;
        let negative_boost = negative_boost.ok_or_else(|| {
            QueryError::parsing(
                "[boosting] query requires 'negative_boost' to be set to be a positive value'",
            )
        })?;
        if negative_boost < 0.0 {
            return Err(QueryError::illegal_argument(
                "[boosting] query requires negativeBoost to be set to positive value",
            ));
        }
        Ok(Query::Boosting {
            positive: Box::new(positive),
            negative: Box::new(negative),
            negative_boost,
            boost: b,
        })
    }

    fn query_string(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "query_string";
        let mut text = None;
        let mut opts = lucene::QueryStringOptions::default();
        let mut default_field = None;
        let mut fields = None;
        let mut b = None;
        let mut msm = None;
        for (k, v) in body {
            match k.as_str() {
                "query" => text = Some(get_str(q, k, v)?),
                "default_field" => default_field = Some(get_str(q, k, v)?),
                "fields" => fields = Some(parse_fields(q, v)?),
                "default_operator" => opts.default_operator = parse_operator(&get_str(q, k, v)?)?,
                "analyze_wildcard" => opts.analyze_wildcard = get_bool(q, k, v)?,
                "allow_leading_wildcard" => opts.allow_leading_wildcard = get_bool(q, k, v)?,
                "lenient" => opts.lenient = get_bool(q, k, v)?,
                "fuzziness" => opts.fuzziness = parse_fuzziness(v)?,
                "fuzzy_prefix_length" => opts.fuzzy_prefix_length = get_u32(q, k, v)?,
                "fuzzy_max_expansions" => opts.fuzzy_max_expansions = get_u32(q, k, v)?,
                "fuzzy_transpositions" => opts.fuzzy_transpositions = get_bool(q, k, v)?,
                "phrase_slop" => opts.phrase_slop = get_u32(q, k, v)?,
                "max_determinized_states" => opts.max_determinized_states = get_u32(q, k, v)?,
                "time_zone" => {
                    let tz = get_str(q, k, v)?;
                    crate::datemath::parse_time_zone(&tz)?;
                    opts.time_zone = Some(tz)
                }
                "minimum_should_match" => msm = Some(parse_minimum_should_match(v)?),
                "analyzer"
                | "quote_analyzer"
                | "quote_field_suffix"
                | "auto_generate_synonyms_phrase_query"
                | "enable_position_increments"
                | "escape"
                | "fuzzy_rewrite"
                | "rewrite"
                | "type"
                | "tie_breaker" => {}
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported(q, k)),
            }
        }
        let text = text
            .ok_or_else(|| QueryError::parsing("[query_string] must be provided with a [query]"))?;
        match (default_field, fields) {
            (Some(_), Some(f)) if !f.is_empty() => {
                let reason = "Validation Failed: 1: cannot use [fields] parameter in conjunction with [default_field];";
                return Err(QueryError::new(
                    ErrorKind::QueryShardException,
                    format!("failed to create query: {reason}"),
                )
                .caused_by(QueryError::new(ErrorKind::QueryValidationException, reason)));
            }
            (Some(df), _) => opts.default_fields = vec![(df, 1.0)],
            (None, Some(f)) if !f.is_empty() => opts.default_fields = f,
            _ => {}
        }
        opts.minimum_should_match = msm;
        let mut parsed = lucene::parse_query_string(&text, &opts, self.limits)?;
        if let Some(b) = b {
            parsed = parsed.with_boost(b);
        }
        self.leaves += parsed.leaf_count();
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(parsed)
    }

    fn simple_query_string(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "simple_query_string";
        let unsupported_sqs =
            |k: &str| QueryError::parsing(format!("[simple_query_string] unsupported field [{k}]"));
        let mut text = None;
        let mut opts = simple::SimpleQueryStringOptions::default();
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "query" => text = Some(get_str(q, k, v)?),
                "fields" => opts.fields = parse_fields(q, v)?,
                "default_operator" => opts.default_operator = parse_operator(&get_str(q, k, v)?)?,
                "flags" => {
                    opts.flags = match v {
                        Value::Number(n) => n
                            .as_i64()
                            .and_then(|n| u32::try_from(n).ok())
                            .or_else(|| n.as_i64().map(|n| n as u32))
                            .unwrap_or(simple::flags::ALL),
                        other => simple::parse_flags(&get_str(q, k, other)?)?,
                    }
                }
                "lenient" => opts.lenient = get_bool(q, k, v)?,
                "analyze_wildcard" => opts.analyze_wildcard = get_bool(q, k, v)?,
                "minimum_should_match" => {
                    opts.minimum_should_match = Some(parse_minimum_should_match(v)?)
                }
                "fuzzy_prefix_length" => opts.fuzzy_prefix_length = get_u32(q, k, v)?,
                "fuzzy_max_expansions" => opts.fuzzy_max_expansions = get_u32(q, k, v)?,
                "fuzzy_transpositions" => opts.fuzzy_transpositions = get_bool(q, k, v)?,
                "analyzer" | "quote_field_suffix" | "auto_generate_synonyms_phrase_query" => {}
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unsupported_sqs(k)),
            }
        }
        let text =
            text.ok_or_else(|| QueryError::parsing("[simple_query_string] query text missing"))?;
        let mut parsed = simple::parse(&text, &opts, self.limits)?;
        if let Some(b) = b {
            parsed = parsed.with_boost(b);
        }
        self.leaves += parsed.leaf_count();
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(parsed)
    }

    fn kql(&mut self, body: &Obj) -> Result<Query, QueryError> {
        let q = "kql";
        let mut text = None;
        let mut opts = kql::KqlOptions::default();
        let mut b = None;
        for (k, v) in body {
            match k.as_str() {
                "query" => text = Some(get_str(q, k, v)?),
                "default_field" => opts.default_fields = vec![(get_str(q, k, v)?, 1.0)],
                "case_insensitive" => opts.case_insensitive = get_bool(q, k, v)?,
                "time_zone" => {
                    let tz = get_str(q, k, v)?;
                    crate::datemath::parse_time_zone(&tz)?;
                    opts.time_zone = Some(tz)
                }
                "boost" => b = boost(q, v)?,
                "_name" => {}
                _ => return Err(unknown_field(q, k)),
            }
        }
        let text =
            text.ok_or_else(|| QueryError::parsing("[kql] must be provided with a [query]"))?;
        let mut parsed = kql::parse(&text, &opts, self.limits)?;
        if let Some(b) = b {
            parsed = parsed.with_boost(b);
        }
        self.leaves += parsed.leaf_count();
        if self.leaves > self.limits.max_clause_count {
            return Err(self.limits.too_many_nested_clauses_error());
        }
        Ok(parsed)
    }
}
