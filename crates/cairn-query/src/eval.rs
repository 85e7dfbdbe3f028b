//! Evaluate a [`Query`] against one in-memory JSON document (agent filters, alert rules).
//!
//! Field addressing: `a.b.c` finds `{"a":{"b":{"c":..}}}`, `{"a.b.c":..}` and any mix
//! (`{"a":{"b.c":..}}`); arrays anywhere on the path match if any element matches. Field
//! patterns (`kubernetes.*`, `*`) match every leaf path they cover. `x.keyword` falls back
//! to `x` compared exactly when the document has no `x.keyword`. `_id` is the context's
//! document id (or a top-level `_id` key).
//!
//! Field kinds decide how values compare: **text** fields are analyzed with [`analyze`]
//! (the same tokens as tantivy's `SimpleTokenizer` + `LowerCaser`, which the search
//! layer uses for text fields), everything else is exact. Default rule (override with
//! [`EvalContext::with_field_kinds`]): `message`, `error.message`, `error.stack_trace` and
//! `*.text` are text; `@timestamp` and `event.created/ingested/start/end` are dates; other
//! fields are exact, with numbers compared numerically when the document holds a number,
//! and ranges compared as dates when the bounds use date math (`now-15m`, `...||+1d`) or
//! both sides parse as dates.
//!
//! Evaluation never fails on data; it fails only on invalid queries (bad regex, bad date
//! math, unknown time zone).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use serde_json::Value;

use crate::ast::*;
use crate::datemath::{self, TimeZone};
use crate::error::QueryError;
use crate::regexp;

/// Split on every char that is not alphanumeric and lowercase each token: the tokens
/// tantivy's `SimpleTokenizer` + `LowerCaser` produce.
pub fn analyze(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
        .collect()
}

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Analyzed full text.
    Text,
    /// Exact values (keyword); numbers and booleans in the document still compare by value.
    Keyword,
    /// Dates (strings in ES's default formats, or epoch millis).
    Date,
    /// Numbers.
    Numeric,
    /// Booleans.
    Boolean,
}

/// Cairn's default field-kind rule (see the module doc).
pub fn default_field_kind(field: &str) -> FieldKind {
    match field {
        "message" | "error.message" | "error.stack_trace" => FieldKind::Text,
        "@timestamp" | "event.created" | "event.ingested" | "event.start" | "event.end" => {
            FieldKind::Date
        }
        f if f.ends_with(".text") => FieldKind::Text,
        _ => FieldKind::Keyword,
    }
}

/// A field-kind lookup, e.g. backed by an index mapping.
pub type FieldKindFn = dyn Fn(&str) -> Option<FieldKind> + Sync;

/// Everything evaluation needs besides the query and the document.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    /// "now" for date math, epoch millis (injected, never read from the clock).
    pub now_millis: i64,
    /// The document's `_id`, for `ids` queries.
    pub doc_id: Option<&'a str>,
    /// Field kinds from a mapping; `None` for a field falls back to [`default_field_kind`].
    pub field_kinds: Option<&'a FieldKindFn>,
    /// Precompiled patterns (set by [`Matcher`]).
    compiled: Option<&'a RegexCache>,
}

/// Compiled regexes keyed by their Rust regex source.
type RegexCache = HashMap<String, regex::Regex>;

/// A query with its regex and wildcard patterns compiled once, for evaluating many
/// documents (agent filters, alert rules). Construction validates the patterns.
#[derive(Debug, Clone)]
pub struct Matcher {
    query: Query,
    compiled: RegexCache,
}

impl Matcher {
    /// Compile the patterns of `query`.
    pub fn new(query: Query) -> Result<Matcher, QueryError> {
        let mut compiled = RegexCache::new();
        let mut stack = vec![&query];
        while let Some(q) = stack.pop() {
            stack.extend(q.children());
            let mut add = |src: String, max: u32, original: &str| -> Result<(), QueryError> {
                if let std::collections::hash_map::Entry::Vacant(slot) = compiled.entry(src) {
                    let re = regexp::build_regex(slot.key(), max, original)?;
                    slot.insert(re);
                }
                Ok(())
            };
            match q {
                Query::Wildcard {
                    pattern,
                    case_insensitive,
                    ..
                } => {
                    add(
                        regexp::wildcard_to_rust(pattern, *case_insensitive),
                        10_000,
                        pattern,
                    )?;
                    let lower = pattern.to_lowercase();
                    add(
                        regexp::wildcard_to_rust(&lower, *case_insensitive),
                        10_000,
                        pattern,
                    )?;
                }
                Query::Regexp {
                    pattern,
                    flags,
                    case_insensitive,
                    max_determinized_states,
                    ..
                } => {
                    let src = regexp::lucene_regex_to_rust(pattern, *flags, *case_insensitive)?;
                    add(src, *max_determinized_states, pattern)?;
                }
                _ => {}
            }
            for f in field_names(q) {
                if f.contains('*') {
                    add(regexp::wildcard_to_rust(f, false), 10_000, f)?;
                }
            }
        }
        Ok(Matcher { query, compiled })
    }

    /// The query.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Does `doc` match?
    pub fn matches(&self, doc: &Value, ctx: &EvalContext) -> Result<bool, QueryError> {
        let mut c = *ctx;
        c.compiled = Some(&self.compiled);
        eval(&self.query, doc, &c, 0)
    }
}

fn field_names(q: &Query) -> Vec<&str> {
    match q {
        Query::Term { field, .. }
        | Query::Terms { field, .. }
        | Query::Range { field, .. }
        | Query::Exists { field, .. }
        | Query::Prefix { field, .. }
        | Query::Wildcard { field, .. }
        | Query::Regexp { field, .. }
        | Query::Fuzzy { field, .. }
        | Query::Match { field, .. }
        | Query::MatchPhrase { field, .. }
        | Query::MatchPhrasePrefix { field, .. }
        | Query::MatchBoolPrefix { field, .. } => vec![field.as_str()],
        Query::MultiMatch { fields, .. } => fields.iter().map(|(f, _)| f.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// A compiled regex for `src`: from the context's cache, or compiled now.
fn regex_for(
    ctx: &EvalContext,
    src: &str,
    max_states: u32,
    original: &str,
) -> Result<regex::Regex, QueryError> {
    if let Some(re) = ctx.compiled.and_then(|c| c.get(src)) {
        return Ok(re.clone());
    }
    regexp::build_regex(src, max_states, original)
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("now_millis", &self.now_millis)
            .field("doc_id", &self.doc_id)
            .field("field_kinds", &self.field_kinds.map(|_| "<fn>"))
            .finish()
    }
}

impl<'a> EvalContext<'a> {
    /// Default rules, the given "now".
    pub fn new(now_millis: i64) -> Self {
        EvalContext {
            now_millis,
            doc_id: None,
            field_kinds: None,
            compiled: None,
        }
    }

    /// With the document id.
    pub fn with_doc_id(mut self, id: &'a str) -> Self {
        self.doc_id = Some(id);
        self
    }

    /// With a field-kind lookup (e.g. from a mapping).
    pub fn with_field_kinds(mut self, f: &'a FieldKindFn) -> Self {
        self.field_kinds = Some(f);
        self
    }

    /// The kind of a (concrete) field.
    pub fn kind(&self, field: &str) -> FieldKind {
        self.field_kinds
            .and_then(|f| f(field))
            .unwrap_or_else(|| default_field_kind(field))
    }
}

const MAX_EVAL_DEPTH: usize = 512;

/// Does `doc` match `query`?
pub fn matches(query: &Query, doc: &Value, ctx: &EvalContext) -> Result<bool, QueryError> {
    eval(query, doc, ctx, 0)
}

fn eval(q: &Query, doc: &Value, ctx: &EvalContext, depth: usize) -> Result<bool, QueryError> {
    if depth > MAX_EVAL_DEPTH {
        return Err(QueryError::illegal_argument(
            "query is nested too deeply to evaluate",
        ));
    }
    Ok(match q {
        Query::MatchAll { .. } => true,
        Query::MatchNone => false,
        Query::Bool {
            must,
            should,
            must_not,
            filter,
            ..
        } => {
            for c in must.iter().chain(filter.iter()) {
                if !eval(c, doc, ctx, depth + 1)? {
                    return Ok(false);
                }
            }
            for c in must_not {
                if eval(c, doc, ctx, depth + 1)? {
                    return Ok(false);
                }
            }
            let need = q.bool_minimum_should_match().unwrap_or(0);
            if need == 0 {
                return Ok(true);
            }
            let mut got = 0usize;
            for c in should {
                if eval(c, doc, ctx, depth + 1)? {
                    got += 1;
                    if got >= need {
                        return Ok(true);
                    }
                }
            }
            false
        }
        Query::ConstantScore { filter, .. } => eval(filter, doc, ctx, depth + 1)?,
        Query::DisMax { queries, .. } => {
            for c in queries {
                if eval(c, doc, ctx, depth + 1)? {
                    return Ok(true);
                }
            }
            false
        }
        Query::Boosting { positive, .. } => eval(positive, doc, ctx, depth + 1)?,
        Query::Ids { values, .. } => {
            let id = ctx
                .doc_id
                .map(str::to_string)
                .or_else(|| doc.get("_id").and_then(scalar_text));
            match id {
                Some(id) => values.contains(&id),
                None => false,
            }
        }
        Query::Exists { field, .. } => {
            let mut found = false;
            for_each_field(doc, field, ctx, &mut |_, _, v| {
                if !v.is_null() {
                    found = true;
                }
                found
            });
            found
        }
        Query::Term {
            field,
            value,
            case_insensitive,
            ..
        } => {
            let ci = *case_insensitive;
            any_value(doc, field, ctx, |kind, v| term_eq(kind, v, value, ci, ctx))?
        }
        Query::Terms { field, values, .. } => any_value(doc, field, ctx, |kind, v| {
            for t in values {
                if term_eq(kind, v, t, false, ctx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        })?,
        Query::Range {
            field,
            gt,
            gte,
            lt,
            lte,
            format,
            time_zone,
            ..
        } => {
            let r = RangeSpec {
                gt: gt.as_ref(),
                gte: gte.as_ref(),
                lt: lt.as_ref(),
                lte: lte.as_ref(),
                format: format.as_deref(),
                time_zone: time_zone.as_deref(),
            };
            any_value(doc, field, ctx, |kind, v| range_match(kind, v, &r, ctx))?
        }
        Query::Prefix {
            field,
            value,
            case_insensitive,
            ..
        } => {
            let ci = *case_insensitive;
            any_string(doc, field, ctx, |kind, s| {
                Ok(if kind == FieldKind::Text {
                    let p = value.to_lowercase();
                    analyze(s).iter().any(|t| t.starts_with(&p))
                } else if ci {
                    s.to_lowercase().starts_with(&value.to_lowercase())
                } else {
                    s.starts_with(value.as_str())
                })
            })?
        }
        Query::Wildcard {
            field,
            pattern,
            case_insensitive,
            ..
        } => {
            let exact = regex_for(
                ctx,
                &regexp::wildcard_to_rust(pattern, *case_insensitive),
                10_000,
                pattern,
            )?;
            let lowered = regex_for(
                ctx,
                &regexp::wildcard_to_rust(&pattern.to_lowercase(), *case_insensitive),
                10_000,
                pattern,
            )?;
            any_string(doc, field, ctx, |kind, s| {
                Ok(if kind == FieldKind::Text {
                    analyze(s).iter().any(|t| lowered.is_match(t))
                } else {
                    exact.is_match(s)
                })
            })?
        }
        Query::Regexp {
            field,
            pattern,
            flags,
            case_insensitive,
            max_determinized_states,
            ..
        } => {
            let src = regexp::lucene_regex_to_rust(pattern, *flags, *case_insensitive)?;
            let exact = regex_for(ctx, &src, *max_determinized_states, pattern)?;
            any_string(doc, field, ctx, |kind, s| {
                Ok(if kind == FieldKind::Text {
                    analyze(s).iter().any(|t| exact.is_match(t))
                } else {
                    exact.is_match(s)
                })
            })?
        }
        Query::Fuzzy {
            field,
            value,
            fuzziness,
            prefix_length,
            transpositions,
            ..
        } => {
            let edits = fuzziness.edits_for(value.chars().count());
            let (pl, tr) = (*prefix_length as usize, *transpositions);
            any_string(doc, field, ctx, |kind, s| {
                Ok(if kind == FieldKind::Text {
                    let v = value.to_lowercase();
                    analyze(s).iter().any(|t| fuzzy_eq(&v, t, edits, pl, tr))
                } else {
                    fuzzy_eq(value, s, edits, pl, tr)
                })
            })?
        }
        Query::Match {
            field,
            query,
            operator,
            minimum_should_match,
            fuzziness,
            prefix_length,
            zero_terms_query,
            ..
        } => {
            let spec = MatchSpec {
                operator: *operator,
                msm: minimum_should_match.as_ref(),
                fuzziness: *fuzziness,
                prefix_length: *prefix_length as usize,
                zero_terms: *zero_terms_query,
                last_is_prefix: false,
            };
            match_query(doc, field, query, &spec, ctx)?
        }
        Query::MatchBoolPrefix {
            field,
            query,
            operator,
            minimum_should_match,
            ..
        } => {
            let spec = MatchSpec {
                operator: *operator,
                msm: minimum_should_match.as_ref(),
                fuzziness: None,
                prefix_length: 0,
                zero_terms: ZeroTermsQuery::None,
                last_is_prefix: true,
            };
            match_query(doc, field, query, &spec, ctx)?
        }
        Query::MatchPhrase {
            field,
            query,
            slop,
            zero_terms_query,
            ..
        } => phrase_query(doc, field, query, *slop, false, *zero_terms_query, ctx)?,
        Query::MatchPhrasePrefix {
            field, query, slop, ..
        } => phrase_query(doc, field, query, *slop, true, ZeroTermsQuery::None, ctx)?,
        Query::MultiMatch {
            fields,
            query,
            kind,
            operator,
            minimum_should_match,
            fuzziness,
            slop,
            zero_terms_query,
            ..
        } => {
            let default = [(ALL_FIELDS.to_string(), 1.0f32)];
            let fields: &[(String, f32)] = if fields.is_empty() { &default } else { fields };
            if *kind == MultiMatchType::CrossFields {
                cross_fields(
                    doc,
                    fields,
                    query,
                    *operator,
                    minimum_should_match.as_ref(),
                    ctx,
                )?
            } else {
                let mut any = false;
                for (f, _) in fields {
                    let hit = match kind {
                        MultiMatchType::Phrase => {
                            phrase_query(doc, f, query, *slop, false, *zero_terms_query, ctx)?
                        }
                        MultiMatchType::PhrasePrefix => {
                            phrase_query(doc, f, query, *slop, true, *zero_terms_query, ctx)?
                        }
                        _ => {
                            let spec = MatchSpec {
                                operator: *operator,
                                msm: minimum_should_match.as_ref(),
                                fuzziness: *fuzziness,
                                prefix_length: 0,
                                zero_terms: *zero_terms_query,
                                last_is_prefix: *kind == MultiMatchType::BoolPrefix,
                            };
                            match_query(doc, f, query, &spec, ctx)?
                        }
                    };
                    if hit {
                        any = true;
                        break;
                    }
                }
                any
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// Field access

/// Visit every (concrete path, kind, value) addressed by `field` (a name or a pattern).
/// Arrays are flattened. `visit` returns true to stop early.
fn for_each_field(
    doc: &Value,
    field: &str,
    ctx: &EvalContext,
    visit: &mut dyn FnMut(&str, FieldKind, &Value) -> bool,
) {
    if field == "_id" {
        if let Some(id) = ctx.doc_id {
            let v = Value::String(id.to_string());
            visit("_id", FieldKind::Keyword, &v);
            return;
        }
    }
    if field.contains('*') {
        let Ok(re) = regex_for(ctx, &regexp::wildcard_to_rust(field, false), 10_000, field) else {
            return;
        };
        let mut stop = false;
        walk_leaves(doc, &mut String::new(), 0, &mut |path, v| {
            if !stop && re.is_match(path) {
                stop = visit(path, ctx.kind(path), v);
            }
            stop
        });
        return;
    }
    let mut found = false;
    let mut stop = false;
    let segments: Vec<&str> = field.split('.').collect();
    let kind = ctx.kind(field);
    lookup(doc, &segments, &mut |v| {
        found = true;
        if !stop {
            stop = visit(field, kind, v);
        }
        stop
    });
    if !found {
        if let Some(base) = field.strip_suffix(".keyword") {
            let segments: Vec<&str> = base.split('.').collect();
            lookup(doc, &segments, &mut |v| {
                if !stop {
                    stop = visit(field, FieldKind::Keyword, v);
                }
                stop
            });
        }
    }
}

/// Find values at `segments`, trying every split of the remaining path into an object key
/// (so dotted keys and nested objects both work). Leaf arrays are flattened.
fn lookup(v: &Value, segments: &[&str], out: &mut dyn FnMut(&Value) -> bool) -> bool {
    if segments.is_empty() {
        return emit_flat(v, out, 0);
    }
    match v {
        Value::Object(map) => {
            let mut key = String::new();
            for i in 0..segments.len() {
                if i > 0 {
                    key.push('.');
                }
                key.push_str(segments[i]);
                if let Some(child) = map.get(&key) {
                    if lookup(child, &segments[i + 1..], out) {
                        return true;
                    }
                }
            }
            false
        }
        Value::Array(items) => {
            for item in items {
                if (item.is_object() || item.is_array()) && lookup(item, segments, out) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

fn emit_flat(v: &Value, out: &mut dyn FnMut(&Value) -> bool, depth: usize) -> bool {
    match v {
        Value::Array(items) if depth < 64 => {
            for i in items {
                if emit_flat(i, out, depth + 1) {
                    return true;
                }
            }
            false
        }
        Value::Array(_) => false,
        other => out(other),
    }
}

/// Visit every leaf (non-object) with its dotted path; arrays flattened.
fn walk_leaves(
    v: &Value,
    path: &mut String,
    depth: usize,
    visit: &mut dyn FnMut(&str, &Value) -> bool,
) -> bool {
    if depth > 64 {
        return false;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let stop = walk_leaves(child, path, depth + 1, visit);
                path.truncate(len);
                if stop {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => {
            for i in items {
                if walk_leaves(i, path, depth + 1, visit) {
                    return true;
                }
            }
            false
        }
        other => {
            if path.is_empty() {
                false
            } else {
                visit(path, other)
            }
        }
    }
}

fn any_value(
    doc: &Value,
    field: &str,
    ctx: &EvalContext,
    mut pred: impl FnMut(FieldKind, &Value) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    let mut result = Ok(false);
    for_each_field(doc, field, ctx, &mut |_, kind, v| {
        if v.is_null() {
            return false;
        }
        match pred(kind, v) {
            Ok(true) => {
                result = Ok(true);
                true
            }
            Ok(false) => false,
            Err(e) => {
                result = Err(e);
                true
            }
        }
    });
    result
}

fn any_string(
    doc: &Value,
    field: &str,
    ctx: &EvalContext,
    mut pred: impl FnMut(FieldKind, &str) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    any_value(doc, field, ctx, |kind, v| match scalar_text(v) {
        Some(s) => pred(kind, &s),
        None => Ok(false),
    })
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

fn doc_date_millis(v: &Value) -> Option<i64> {
    let utc = TimeZone::utc();
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => datemath::parse_date(s, None, &utc, false)
            .or_else(|_| datemath::parse_date(s, Some("date_optional_time"), &utc, false))
            .ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Term-level comparisons

fn term_eq(
    kind: FieldKind,
    doc_v: &Value,
    q: &Value,
    ci: bool,
    ctx: &EvalContext,
) -> Result<bool, QueryError> {
    let Some(q_text) = scalar_text(q) else {
        return Ok(false);
    };
    Ok(match kind {
        FieldKind::Text => {
            let Some(s) = scalar_text(doc_v) else {
                return Ok(false);
            };
            analyze(&s).iter().any(|t| {
                if ci {
                    t.eq_ignore_ascii_case(&q_text)
                } else {
                    *t == q_text
                }
            })
        }
        FieldKind::Date => date_eq(doc_v, &q_text, ctx),
        _ => exact_eq(doc_v, &q_text, ci),
    })
}

/// A date term matches the whole interval the value denotes (`2024-01-01` = that day), as
/// ES's date term query does.
fn date_eq(doc_v: &Value, q_text: &str, ctx: &EvalContext) -> bool {
    let utc = TimeZone::utc();
    let Some(d) = doc_date_millis(doc_v) else {
        return false;
    };
    let lo = datemath::resolve(q_text, ctx.now_millis, false, None, &utc);
    let hi = datemath::resolve(q_text, ctx.now_millis, true, None, &utc);
    matches!((lo, hi), (Ok(lo), Ok(hi)) if d >= lo && d <= hi)
}

fn exact_eq(doc_v: &Value, q_text: &str, ci: bool) -> bool {
    match doc_v {
        Value::Number(n) => match (n.as_f64(), q_text.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        Value::Bool(b) => as_bool(&Value::String(q_text.to_string())) == Some(*b),
        Value::String(s) => {
            if ci {
                s.to_lowercase() == q_text.to_lowercase()
            } else {
                s == q_text
            }
        }
        _ => false,
    }
}

struct RangeSpec<'a> {
    gt: Option<&'a Value>,
    gte: Option<&'a Value>,
    lt: Option<&'a Value>,
    lte: Option<&'a Value>,
    format: Option<&'a str>,
    time_zone: Option<&'a str>,
}

impl RangeSpec<'_> {
    fn bounds(&self) -> impl Iterator<Item = &Value> {
        [self.gt, self.gte, self.lt, self.lte].into_iter().flatten()
    }
    fn uses_date_math(&self) -> bool {
        self.bounds().any(|b| match b {
            Value::String(s) => s.starts_with("now") || s.contains("||"),
            _ => false,
        })
    }
}

fn in_bounds<T: PartialOrd>(v: &T, lo: &Bound<T>, hi: &Bound<T>) -> bool {
    let lo_ok = match lo {
        Bound::Included(l) => v >= l,
        Bound::Excluded(l) => v > l,
        Bound::Unbounded => true,
    };
    let hi_ok = match hi {
        Bound::Included(h) => v <= h,
        Bound::Excluded(h) => v < h,
        Bound::Unbounded => true,
    };
    lo_ok && hi_ok
}

fn range_match(
    kind: FieldKind,
    doc_v: &Value,
    r: &RangeSpec,
    ctx: &EvalContext,
) -> Result<bool, QueryError> {
    let date_mode = kind == FieldKind::Date
        || r.uses_date_math()
        || r.format.is_some()
        || (matches!(doc_v, Value::String(_))
            && doc_date_millis(doc_v).is_some()
            && as_f64(doc_v).is_none()
            && r.bounds()
                .all(|b| doc_date_millis(b).is_some() && as_f64(b).is_none()));
    if date_mode {
        let Some(d) = doc_date_millis(doc_v) else {
            return Ok(false);
        };
        let (lo, hi) = datemath::resolve_range(
            r.gt,
            r.gte,
            r.lt,
            r.lte,
            r.format,
            r.time_zone,
            ctx.now_millis,
        )?;
        return Ok(in_bounds(&d, &lo, &hi));
    }
    let numeric = kind == FieldKind::Numeric || matches!(doc_v, Value::Number(_));
    if numeric {
        let Some(d) = as_f64(doc_v) else {
            return Ok(false);
        };
        let num = |v: Option<&Value>| v.map(as_f64);
        // A bound that is not a number cannot match a numeric value.
        let (gt, gte, lt, lte) = (num(r.gt), num(r.gte), num(r.lt), num(r.lte));
        if [gt, gte, lt, lte].iter().any(|b| matches!(b, Some(None))) {
            return Ok(false);
        }
        let lo = pick_lower(gt.flatten(), gte.flatten());
        let hi = pick_upper(lt.flatten(), lte.flatten());
        return Ok(in_bounds(&d, &lo, &hi));
    }
    // Strings: lexicographic, like a keyword range.
    let Some(s) = scalar_text(doc_v) else {
        return Ok(false);
    };
    let txt = |v: Option<&Value>| v.and_then(scalar_text);
    let lo = pick_lower(txt(r.gt), txt(r.gte));
    let hi = pick_upper(txt(r.lt), txt(r.lte));
    Ok(in_bounds(&s, &lo, &hi))
}

fn pick_lower<T: PartialOrd>(gt: Option<T>, gte: Option<T>) -> Bound<T> {
    match (gt, gte) {
        (Some(a), Some(b)) => {
            if a >= b {
                Bound::Excluded(a)
            } else {
                Bound::Included(b)
            }
        }
        (Some(a), None) => Bound::Excluded(a),
        (None, Some(b)) => Bound::Included(b),
        (None, None) => Bound::Unbounded,
    }
}

fn pick_upper<T: PartialOrd>(lt: Option<T>, lte: Option<T>) -> Bound<T> {
    match (lt, lte) {
        (Some(a), Some(b)) => {
            if a <= b {
                Bound::Excluded(a)
            } else {
                Bound::Included(b)
            }
        }
        (Some(a), None) => Bound::Excluded(a),
        (None, Some(b)) => Bound::Included(b),
        (None, None) => Bound::Unbounded,
    }
}

/// Edit distance within `max` (Damerau/OSA when `transpositions`), with an exact prefix.
pub fn fuzzy_eq(
    query: &str,
    candidate: &str,
    max: u8,
    prefix_length: usize,
    transpositions: bool,
) -> bool {
    let a: Vec<char> = query.chars().collect();
    let b: Vec<char> = candidate.chars().collect();
    let p = prefix_length.min(a.len());
    if b.len() < p || a[..p] != b[..p] {
        return false;
    }
    let (a, b) = (&a[p..], &b[p..]);
    let max = usize::from(max);
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let n = b.len();
    let mut prev2: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if transpositions && i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return false;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n] <= max
}

// ---------------------------------------------------------------------------------------
// Full-text

struct MatchSpec<'a> {
    operator: Operator,
    msm: Option<&'a MinimumShouldMatch>,
    fuzziness: Option<Fuzziness>,
    prefix_length: usize,
    zero_terms: ZeroTermsQuery,
    last_is_prefix: bool,
}

fn term_hit(term: &str, tokens: &HashSet<String>, spec: &MatchSpec, is_last: bool) -> bool {
    if tokens.contains(term) {
        return true;
    }
    if is_last && spec.last_is_prefix && tokens.iter().any(|t| t.starts_with(term)) {
        return true;
    }
    if let Some(f) = spec.fuzziness {
        let edits = f.edits_for(term.chars().count());
        if edits > 0 {
            return tokens
                .iter()
                .any(|t| fuzzy_eq(term, t, edits, spec.prefix_length, true));
        }
    }
    false
}

fn combine(hits: usize, total: usize, spec: &MatchSpec) -> bool {
    match spec.operator {
        Operator::And => hits == total,
        Operator::Or => {
            let need = spec.msm.map(|m| m.resolve(total)).unwrap_or(1).max(1);
            hits >= need
        }
    }
}

fn match_query(
    doc: &Value,
    field: &str,
    query: &str,
    spec: &MatchSpec,
    ctx: &EvalContext,
) -> Result<bool, QueryError> {
    let terms = analyze(query);
    let mut result = false;
    // Text fields: gather all tokens of every value per concrete field.
    let mut per_field: Vec<(String, HashSet<String>)> = Vec::new();
    let mut exact_hit = false;
    for_each_field(doc, field, ctx, &mut |path, kind, v| {
        if v.is_null() {
            return false;
        }
        match kind {
            FieldKind::Text => {
                if let Some(s) = scalar_text(v) {
                    let toks = analyze(&s);
                    match per_field.iter_mut().find(|(p, _)| p == path) {
                        Some((_, set)) => set.extend(toks),
                        None => per_field.push((path.to_string(), toks.into_iter().collect())),
                    }
                }
                false
            }
            FieldKind::Date => {
                exact_hit = date_eq(v, query, ctx);
                exact_hit
            }
            _ => {
                // Keyword analyzer: the whole query is one term (fuzzy on the whole value).
                exact_hit = match spec.fuzziness {
                    Some(f) if matches!(v, Value::String(_)) => {
                        let s = scalar_text(v).unwrap_or_default();
                        fuzzy_eq(
                            query,
                            &s,
                            f.edits_for(query.chars().count()),
                            spec.prefix_length,
                            true,
                        )
                    }
                    _ => exact_eq(v, query, false),
                } || (spec.last_is_prefix
                    && scalar_text(v).is_some_and(|s| s.starts_with(query)));
                exact_hit
            }
        }
    });
    if exact_hit {
        return Ok(true);
    }
    if per_field.is_empty() {
        return Ok(false);
    }
    if terms.is_empty() {
        return Ok(spec.zero_terms == ZeroTermsQuery::All);
    }
    for (_, tokens) in &per_field {
        let hits = terms
            .iter()
            .enumerate()
            .filter(|(i, t)| term_hit(t, tokens, spec, *i + 1 == terms.len()))
            .count();
        if combine(hits, terms.len(), spec) {
            result = true;
            break;
        }
    }
    Ok(result)
}

fn cross_fields(
    doc: &Value,
    fields: &[(String, f32)],
    query: &str,
    operator: Operator,
    msm: Option<&MinimumShouldMatch>,
    ctx: &EvalContext,
) -> Result<bool, QueryError> {
    let terms = analyze(query);
    if terms.is_empty() {
        return Ok(false);
    }
    let mut tokens: HashSet<String> = HashSet::new();
    for (f, _) in fields {
        for_each_field(doc, f, ctx, &mut |_, kind, v| {
            if let Some(s) = scalar_text(v) {
                if kind == FieldKind::Text {
                    tokens.extend(analyze(&s));
                } else {
                    tokens.insert(s.to_lowercase());
                }
            }
            false
        });
    }
    let spec = MatchSpec {
        operator,
        msm,
        fuzziness: None,
        prefix_length: 0,
        zero_terms: ZeroTermsQuery::None,
        last_is_prefix: false,
    };
    let hits = terms.iter().filter(|t| tokens.contains(*t)).count();
    Ok(combine(hits, terms.len(), &spec))
}

/// Gap between the positions of two values of one field (ES `position_increment_gap`).
const POSITION_GAP: usize = 100;

fn phrase_query(
    doc: &Value,
    field: &str,
    query: &str,
    slop: u32,
    last_prefix: bool,
    zero_terms: ZeroTermsQuery,
    ctx: &EvalContext,
) -> Result<bool, QueryError> {
    let terms = analyze(query);
    let mut per_field: Vec<(String, Vec<String>)> = Vec::new();
    let mut exact_hit = false;
    for_each_field(doc, field, ctx, &mut |path, kind, v| {
        if v.is_null() {
            return false;
        }
        match kind {
            FieldKind::Text => {
                if let Some(s) = scalar_text(v) {
                    let toks = analyze(&s);
                    match per_field.iter_mut().find(|(p, _)| p == path) {
                        Some((_, list)) => {
                            list.extend(std::iter::repeat_n(String::new(), POSITION_GAP));
                            list.extend(toks);
                        }
                        None => per_field.push((path.to_string(), toks)),
                    }
                }
                false
            }
            FieldKind::Date => {
                exact_hit = date_eq(v, query, ctx);
                exact_hit
            }
            _ => {
                exact_hit = exact_eq(v, query, false)
                    || (last_prefix && scalar_text(v).is_some_and(|s| s.starts_with(query)));
                exact_hit
            }
        }
    });
    if exact_hit {
        return Ok(true);
    }
    if per_field.is_empty() {
        return Ok(false);
    }
    if terms.is_empty() {
        return Ok(zero_terms == ZeroTermsQuery::All);
    }
    for (_, tokens) in &per_field {
        if phrase_in(tokens, &terms, slop as usize, last_prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Is the phrase in `tokens` within `slop`? Slop is measured like Lucene's sloppy phrase
/// matching: the spread of (position - index in phrase) over the chosen positions.
fn phrase_in(tokens: &[String], terms: &[String], slop: usize, last_prefix: bool) -> bool {
    let n = terms.len();
    // offsets[i] = sorted list of (pos - i) for each position where term i occurs.
    let mut lists: Vec<Vec<i64>> = Vec::with_capacity(n);
    for (i, term) in terms.iter().enumerate() {
        let is_last = i + 1 == n;
        let list: Vec<i64> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                !t.is_empty()
                    && (*t == term || (is_last && last_prefix && t.starts_with(term.as_str())))
            })
            .map(|(p, _)| p as i64 - i as i64)
            .collect();
        if list.is_empty() {
            return false;
        }
        lists.push(list);
    }
    // Smallest range that contains one element of every list (k-way sweep).
    let mut idx = vec![0usize; n];
    let slop = slop as i64;
    loop {
        let mut min_i = 0;
        let mut min_v = i64::MAX;
        let mut max_v = i64::MIN;
        for (li, list) in lists.iter().enumerate() {
            let v = list[idx[li]];
            if v < min_v {
                min_v = v;
                min_i = li;
            }
            max_v = max_v.max(v);
        }
        if max_v - min_v <= slop {
            return true;
        }
        idx[min_i] += 1;
        if idx[min_i] >= lists[min_i].len() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_matches_simple_tokenizer_and_lowercaser() {
        assert_eq!(
            analyze("Hello, World! foo_bar x-y 42"),
            vec!["hello", "world", "foo", "bar", "x", "y", "42"]
        );
        assert_eq!(
            analyze("Ünïcode ÉTÉ straße"),
            vec!["ünïcode", "été", "straße"]
        );
        assert_eq!(analyze("  "), Vec::<String>::new());
        assert_eq!(analyze("a\u{3000}b"), vec!["a", "b"]);
    }

    #[test]
    fn fuzzy_distance() {
        assert!(fuzzy_eq("quikc", "quick", 1, 0, true));
        assert!(!fuzzy_eq("quikc", "quick", 1, 0, false));
        assert!(fuzzy_eq("quikc", "quick", 2, 0, false));
        assert!(fuzzy_eq("foo", "foo", 0, 0, true));
        assert!(!fuzzy_eq("foo", "bar", 2, 0, true));
        assert!(!fuzzy_eq("abc", "xbc", 1, 1, true));
    }

    #[test]
    fn sloppy_phrases() {
        let toks = analyze("the quick brown fox jumps");
        let t = |s: &str| analyze(s);
        assert!(phrase_in(&toks, &t("quick brown"), 0, false));
        assert!(!phrase_in(&toks, &t("quick fox"), 0, false));
        assert!(phrase_in(&toks, &t("quick fox"), 1, false));
        assert!(!phrase_in(&toks, &t("fox quick"), 1, false));
        assert!(phrase_in(&toks, &t("fox quick"), 4, false));
        assert!(phrase_in(&toks, &t("brown fo"), 0, true));
    }
}
