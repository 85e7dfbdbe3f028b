//! Compiles the `cairn-query` AST into tantivy queries against one index's mapping.

use std::ops::Bound;
use std::sync::Arc;

use cairn_core::mapping::{FieldType, Mapping, StorageClass};
use cairn_core::EsError;
use cairn_query::{Operator, Query};
use cairn_store::schema::{json_path, Fields};
use serde_json::Value;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, EmptyQuery,
    ExistsQuery, InvertedIndexRangeQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query as TQuery,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Type};
use tantivy::{DateTime, Term};
use tantivy_fst::Automaton;

/// Where a field's values live in the partition schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Timestamp,
    Id,
    Text(String),
    Exact(String, FieldType),
}

pub struct Compiler<'a> {
    pub mapping: &'a Mapping,
    pub fields: &'a Fields,
    pub now_millis: i64,
}

fn query_err(e: cairn_query::QueryError) -> EsError {
    EsError::new(e.status(), e.type_name(), e.reason.clone())
}

/// Text analysis for `text` fields; must match the `cairn_text` tokenizer.
pub fn analyze(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Compiler<'_> {
    /// Resolves a field name or pattern to storage targets.
    pub fn targets(&self, field: &str) -> Vec<Target> {
        if field == "@timestamp" {
            return vec![Target::Timestamp];
        }
        if field == "_id" {
            return vec![Target::Id];
        }
        let leaf = |path: &str, ty: FieldType| -> Option<Target> {
            match ty.storage() {
                StorageClass::Text => Some(Target::Text(path.to_string())),
                StorageClass::Keyword
                | StorageClass::Integer
                | StorageClass::Float
                | StorageClass::Boolean
                | StorageClass::Date => Some(Target::Exact(path.to_string(), ty)),
                _ => None,
            }
        };
        if field.contains('*') {
            let all = field == "*";
            return self
                .mapping
                .fields
                .iter()
                .filter(|(p, fm)| fm.indexed() && cairn_core::mapping::wildcard_match(field, p))
                .filter(|(_, fm)| {
                    !all || matches!(fm.ty.storage(), StorageClass::Text | StorageClass::Keyword)
                })
                .filter_map(|(p, fm)| leaf(p, fm.ty))
                .collect();
        }
        if let Some((path, fm)) = self.mapping.resolve(field) {
            if fm.ty.storage() == StorageClass::Object {
                let prefix = format!("{path}.");
                return self
                    .mapping
                    .fields
                    .range(prefix.clone()..)
                    .take_while(|(p, _)| p.starts_with(&prefix))
                    .filter_map(|(p, f)| leaf(p, f.ty))
                    .collect();
            }
            if path == "@timestamp" {
                return vec![Target::Timestamp];
            }
            return leaf(path, fm.ty).into_iter().collect();
        }
        // Rules written for Elasticsearch query `x.keyword` where x is a keyword here.
        if let Some(base) = field.strip_suffix(".keyword") {
            if let Some((path, fm)) = self.mapping.resolve(base) {
                if fm.ty.storage() == StorageClass::Keyword {
                    return vec![Target::Exact(path.to_string(), fm.ty)];
                }
            }
        }
        vec![]
    }

    fn kw_term(&self, path: &str) -> Term {
        Term::from_field_json_path(self.fields.kw, &json_path(path), false)
    }

    /// A term-dictionary range over one JSON path and value type. Unbounded sides stop
    /// at the edges of that (path, type), so a range never leaks into other fields.
    /// (tantivy's fast-field range cannot address a JSON key that contains dots.)
    fn kw_range(&self, path: &str, ty: Type, lo: Bound<Term>, hi: Bound<Term>) -> Box<dyn TQuery> {
        let edge = |code: u8| {
            let mut t = self.kw_term(path);
            t.append_bytes(&[code]);
            t
        };
        let lo = match lo {
            Bound::Unbounded => Bound::Included(edge(ty.to_code())),
            b => b,
        };
        let hi = match hi {
            Bound::Unbounded => Bound::Excluded(edge(ty.to_code().saturating_add(1))),
            b => b,
        };
        Box::new(InvertedIndexRangeQuery::new(lo, hi))
    }

    fn text_term(&self, path: &str, token: &str) -> Term {
        let mut t = Term::from_field_json_path(self.fields.text, &json_path(path), false);
        t.append_type_and_str(token);
        t
    }

    /// An exact-value term on an exact field, or None if the value cannot be of the
    /// field's type (lenient skip).
    fn exact_term(&self, path: &str, ty: FieldType, v: &Value) -> Result<Option<Term>, EsError> {
        let mut t = self.kw_term(path);
        match ty.storage() {
            StorageClass::Keyword => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Ok(None),
                };
                t.append_type_and_str(&s);
            }
            StorageClass::Integer | StorageClass::Float => {
                let f = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                let Some(f) = f else { return Ok(None) };
                // tantivy stores integral numbers in JSON as i64 terms.
                if f.fract() == 0.0 && f.abs() < 9.0e18 {
                    t.append_type_and_fast_value::<i64>(f as i64);
                } else if ty.storage() == StorageClass::Integer {
                    return Ok(None);
                } else {
                    t.append_type_and_fast_value::<f64>(f);
                }
            }
            StorageClass::Boolean => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" => true,
                    Value::String(s) if s == "false" => false,
                    _ => return Ok(None),
                };
                t.append_type_and_fast_value(b);
            }
            _ => return Ok(None),
        }
        Ok(Some(t))
    }

    fn date_bounds(&self, q: &Query) -> Result<(Bound<i64>, Bound<i64>), EsError> {
        if let Query::Range {
            gt,
            gte,
            lt,
            lte,
            format,
            time_zone,
            ..
        } = q
        {
            cairn_query::datemath::resolve_range(
                gt.as_ref(),
                gte.as_ref(),
                lt.as_ref(),
                lte.as_ref(),
                format.as_deref(),
                time_zone.as_deref(),
                self.now_millis,
            )
            .map_err(query_err)
        } else {
            Ok((Bound::Unbounded, Bound::Unbounded))
        }
    }

    /// Compiles a query.
    pub fn compile(&self, q: &Query) -> Result<Box<dyn TQuery>, EsError> {
        let boosted = |inner: Box<dyn TQuery>, boost: &Option<f32>| -> Box<dyn TQuery> {
            match boost {
                Some(b) if (*b - 1.0).abs() > f32::EPSILON => Box::new(BoostQuery::new(inner, *b)),
                _ => inner,
            }
        };
        Ok(match q {
            Query::MatchAll { boost } => boosted(Box::new(AllQuery), boost),
            Query::MatchNone => Box::new(EmptyQuery),
            Query::Ids { values, boost } => {
                let terms = values
                    .iter()
                    .map(|v| Term::from_field_text(self.fields.id, v));
                boosted(
                    Box::new(ConstScoreQuery::new(
                        Box::new(TermSetQuery::new(terms)),
                        1.0,
                    )),
                    boost,
                )
            }
            Query::Term {
                field,
                value,
                boost,
                case_insensitive,
            } => {
                if *case_insensitive {
                    if let Some(v) = value.as_str() {
                        let body = regex_escape(v);
                        return Ok(boosted(self.pattern_query(field, &body, true)?, boost));
                    }
                }
                boosted(self.term_query(field, std::slice::from_ref(value))?, boost)
            }
            Query::Terms {
                field,
                values,
                boost,
            } => boosted(self.term_query(field, values)?, boost),
            Query::Range {
                field,
                boost,
                gt,
                gte,
                lt,
                lte,
                ..
            } => {
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                for t in self.targets(field) {
                    match t {
                        Target::Timestamp
                        | Target::Exact(_, FieldType::Date)
                        | Target::Exact(_, FieldType::DateNanos) => {
                            let (lo, hi) = self.date_bounds(q)?;
                            // Dates other than @timestamp are searched through the
                            // inverted index, which keeps them at second precision:
                            // widen the bounds to whole seconds.
                            let (lo, hi) = if matches!(t, Target::Timestamp) {
                                (lo, hi)
                            } else {
                                let floor = |ms: i64| ms.div_euclid(1000) * 1000;
                                let lo = match lo {
                                    Bound::Included(ms) => Bound::Included(floor(ms)),
                                    Bound::Excluded(ms) => Bound::Included(floor(ms + 1)),
                                    b => b,
                                };
                                let hi = match hi {
                                    Bound::Included(ms) => Bound::Excluded(floor(ms) + 999),
                                    Bound::Excluded(ms) => Bound::Excluded(floor(ms - 1) + 999),
                                    b => b,
                                };
                                (lo, hi)
                            };
                            let to_term = |ms: i64| -> Term {
                                // Indexed dates fit i64 nanoseconds; a bound past them
                                // is clamped (same matches, no overflow).
                                let ms = ms.clamp(i64::MIN / 1_000_000, i64::MAX / 1_000_000);
                                let dt = DateTime::from_timestamp_millis(ms);
                                match &t {
                                    Target::Timestamp => Term::from_field_date(self.fields.ts, dt),
                                    Target::Exact(p, _) => {
                                        let mut term = self.kw_term(p);
                                        term.append_type_and_fast_value(dt);
                                        term
                                    }
                                    _ => Term::from_field_date(self.fields.ts, dt),
                                }
                            };
                            // Millisecond bounds over microsecond values: an inclusive
                            // upper bound covers its whole millisecond.
                            let hi = match hi {
                                Bound::Included(ms) => Bound::Excluded(to_term(ms + 1)),
                                Bound::Excluded(ms) => Bound::Excluded(to_term(ms)),
                                Bound::Unbounded => Bound::Unbounded,
                            };
                            let lo = match lo {
                                Bound::Included(ms) => Bound::Included(to_term(ms)),
                                Bound::Excluded(ms) => Bound::Included(to_term(ms + 1)),
                                Bound::Unbounded => Bound::Unbounded,
                            };
                            match &t {
                                Target::Exact(p, _) => {
                                    parts.push(self.kw_range(p, Type::Date, lo, hi))
                                }
                                _ => parts.push(Box::new(RangeQuery::new(lo, hi))),
                            }
                        }
                        Target::Exact(p, ty) if ty.is_numeric() => {
                            let conv = |v: &Option<Value>| -> Result<Option<f64>, EsError> {
                                match v {
                                    None => Ok(None),
                                    Some(Value::Number(n)) => Ok(n.as_f64()),
                                    Some(Value::String(s)) => {
                                        s.trim().parse::<f64>().map(Some).map_err(|_| {
                                            EsError::new(
                                                400,
                                                "number_format_exception",
                                                format!("For input string: \"{s}\""),
                                            )
                                        })
                                    }
                                    Some(other) => Err(EsError::parsing(format!(
                                        "[range] query does not support value [{other}]"
                                    ))),
                                }
                            };
                            let (gt, gte, lt, lte) = (conv(gt)?, conv(gte)?, conv(lt)?, conv(lte)?);
                            // Integral values are i64 terms, others f64 terms: cover both.
                            let int_lo = match (gt, gte) {
                                (Some(v), _) => Some((v.floor() as i64).saturating_add(1)),
                                (None, Some(v)) => Some(v.ceil() as i64),
                                _ => None,
                            };
                            let int_hi = match (lt, lte) {
                                (Some(v), _) => Some((v.ceil() as i64).saturating_sub(1)),
                                (None, Some(v)) => Some(v.floor() as i64),
                                _ => None,
                            };
                            let mk_i = |v: Option<i64>| match v {
                                Some(v) => {
                                    let mut term = self.kw_term(&p);
                                    term.append_type_and_fast_value::<i64>(v);
                                    Bound::Included(term)
                                }
                                None => Bound::Unbounded,
                            };
                            parts.push(self.kw_range(&p, Type::I64, mk_i(int_lo), mk_i(int_hi)));
                            if ty.storage() == StorageClass::Float {
                                let mk_f = |v: f64| {
                                    let mut term = self.kw_term(&p);
                                    term.append_type_and_fast_value::<f64>(v);
                                    term
                                };
                                let lo = match (gt, gte) {
                                    (Some(v), _) => Bound::Excluded(mk_f(v)),
                                    (None, Some(v)) => Bound::Included(mk_f(v)),
                                    _ => Bound::Unbounded,
                                };
                                let hi = match (lt, lte) {
                                    (Some(v), _) => Bound::Excluded(mk_f(v)),
                                    (None, Some(v)) => Bound::Included(mk_f(v)),
                                    _ => Bound::Unbounded,
                                };
                                parts.push(self.kw_range(&p, Type::F64, lo, hi));
                            }
                        }
                        Target::Exact(p, ty) if ty.storage() == StorageClass::Keyword => {
                            let s = |v: &Option<Value>| {
                                v.as_ref().map(|v| {
                                    v.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| v.to_string())
                                })
                            };
                            let mk = |v: String| {
                                let mut term = self.kw_term(&p);
                                term.append_type_and_str(&v);
                                term
                            };
                            let lo = match (s(gt), s(gte)) {
                                (Some(v), _) => Bound::Excluded(mk(v)),
                                (None, Some(v)) => Bound::Included(mk(v)),
                                _ => Bound::Unbounded,
                            };
                            let hi = match (s(lt), s(lte)) {
                                (Some(v), _) => Bound::Excluded(mk(v)),
                                (None, Some(v)) => Bound::Included(mk(v)),
                                _ => Bound::Unbounded,
                            };
                            parts.push(self.kw_range(&p, Type::Str, lo, hi));
                        }
                        _ => {}
                    }
                }
                boosted(Box::new(ConstScoreQuery::new(any_of(parts), 1.0)), boost)
            }
            Query::Exists { field, boost } => {
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                for t in self.targets(field) {
                    match t {
                        Target::Timestamp | Target::Id => parts.push(Box::new(AllQuery)),
                        Target::Exact(p, _) => parts.push(Box::new(ExistsQuery::new(
                            format!("kw.{}", json_path(&p)),
                            false,
                        ))),
                        Target::Text(p) => {
                            let mut term = self.kw_term(cairn_store::schema::TEXT_EXISTS_PATH);
                            term.append_type_and_str(&p);
                            parts.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
                        }
                    }
                }
                boosted(Box::new(ConstScoreQuery::new(any_of(parts), 1.0)), boost)
            }
            Query::Match {
                field,
                query,
                operator,
                boost,
                minimum_should_match,
                fuzziness,
                zero_terms_query,
                ..
            } => {
                if analyze(query).is_empty()
                    && *zero_terms_query == cairn_query::ZeroTermsQuery::All
                {
                    return Ok(boosted(Box::new(AllQuery), boost));
                }
                let opts = MatchOpts {
                    op: *operator,
                    msm: minimum_should_match.as_ref(),
                    fuzziness: fuzziness.as_ref(),
                };
                boosted(self.match_query(field, query, &opts)?, boost)
            }
            Query::MultiMatch {
                fields,
                query,
                operator,
                boost,
                kind,
                minimum_should_match,
                fuzziness,
                slop,
                zero_terms_query,
                tie_breaker,
                ..
            } => {
                use cairn_query::MultiMatchType as M;
                let mut parts = Vec::new();
                let fields: Vec<(String, f32)> = if fields.is_empty() {
                    vec![("*".into(), 1.0)]
                } else {
                    fields.clone()
                };
                for (f, b) in fields {
                    let per_field = match kind {
                        M::Phrase => Query::MatchPhrase {
                            field: f.clone(),
                            query: query.clone(),
                            slop: *slop,
                            zero_terms_query: *zero_terms_query,
                            boost: None,
                        },
                        M::PhrasePrefix => Query::MatchPhrasePrefix {
                            field: f.clone(),
                            query: query.clone(),
                            slop: *slop,
                            max_expansions: 50,
                            boost: None,
                        },
                        M::BoolPrefix => Query::MatchBoolPrefix {
                            field: f.clone(),
                            query: query.clone(),
                            operator: *operator,
                            minimum_should_match: minimum_should_match.clone(),
                            boost: None,
                        },
                        _ => Query::Match {
                            field: f.clone(),
                            query: query.clone(),
                            operator: *operator,
                            minimum_should_match: minimum_should_match.clone(),
                            fuzziness: *fuzziness,
                            prefix_length: 0,
                            max_expansions: 50,
                            lenient: true,
                            zero_terms_query: *zero_terms_query,
                            boost: None,
                        },
                    };
                    parts.push(boosted(self.compile(&per_field)?, &Some(b)));
                }
                let combined: Box<dyn TQuery> = match kind {
                    M::MostFields | M::CrossFields => Box::new(BooleanQuery::new(
                        parts.into_iter().map(|p| (Occur::Should, p)).collect(),
                    )),
                    _ => match tie_breaker {
                        Some(t) => Box::new(DisjunctionMaxQuery::with_tie_breaker(parts, *t)),
                        None => Box::new(DisjunctionMaxQuery::new(parts)),
                    },
                };
                boosted(combined, boost)
            }
            Query::MatchPhrase {
                field,
                query,
                boost,
                slop,
                ..
            } => {
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                for t in self.targets(field) {
                    match t {
                        Target::Text(p) => {
                            let toks = analyze(query);
                            match toks.len() {
                                0 => {}
                                1 => parts.push(Box::new(TermQuery::new(
                                    self.text_term(&p, &toks[0]),
                                    IndexRecordOption::WithFreqs,
                                ))),
                                _ => {
                                    let terms = toks
                                        .iter()
                                        .enumerate()
                                        .map(|(i, tk)| (i, self.text_term(&p, tk)))
                                        .collect();
                                    parts.push(Box::new(PhraseQuery::new_with_offset_and_slop(
                                        terms, *slop,
                                    )));
                                }
                            }
                        }
                        other => {
                            parts.extend(self.exact_on(&other, &Value::String(query.clone()))?)
                        }
                    }
                }
                boosted(any_of(parts), boost)
            }
            Query::Bool {
                must,
                should,
                must_not,
                filter,
                minimum_should_match,
                boost,
            } => {
                let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
                for c in must {
                    clauses.push((Occur::Must, self.compile(c)?));
                }
                for c in filter {
                    clauses.push((
                        Occur::Must,
                        Box::new(ConstScoreQuery::new(self.compile(c)?, 0.0)),
                    ));
                }
                for c in must_not {
                    clauses.push((Occur::MustNot, self.compile(c)?));
                }
                let msm = q.bool_minimum_should_match().unwrap_or(0);
                if should.is_empty() || msm == 0 && (!must.is_empty() || !filter.is_empty()) {
                    for c in should {
                        clauses.push((Occur::Should, self.compile(c)?));
                    }
                    if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                        clauses.push((
                            Occur::Must,
                            Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
                        ));
                    }
                    boosted(Box::new(BooleanQuery::new(clauses)), boost)
                } else {
                    let subs: Vec<(Occur, Box<dyn TQuery>)> = should
                        .iter()
                        .map(|c| Ok((Occur::Should, self.compile(c)?)))
                        .collect::<Result<_, EsError>>()?;
                    let _ = minimum_should_match;
                    let should_q: Box<dyn TQuery> = Box::new(
                        BooleanQuery::with_minimum_required_clauses(subs, msm.max(1)),
                    );
                    clauses.push((Occur::Must, should_q));
                    boosted(Box::new(BooleanQuery::new(clauses)), boost)
                }
            }
            Query::ConstantScore { filter, boost } => Box::new(ConstScoreQuery::new(
                self.compile(filter)?,
                boost.unwrap_or(1.0),
            )),
            Query::DisMax { queries, boost, .. } => {
                let subs = queries
                    .iter()
                    .map(|c| self.compile(c))
                    .collect::<Result<Vec<_>, _>>()?;
                boosted(Box::new(DisjunctionMaxQuery::new(subs)), boost)
            }
            Query::Boosting {
                positive, boost, ..
            } => boosted(self.compile(positive)?, boost),
            Query::Prefix {
                field,
                value,
                case_insensitive,
                boost,
            } => {
                let body = format!("{}(?s:.*)", regex_escape(value));
                boosted(self.pattern_query(field, &body, *case_insensitive)?, boost)
            }
            Query::Wildcard {
                field,
                pattern,
                case_insensitive,
                boost,
            } => {
                let body = cairn_query::regexp::wildcard_body(pattern);
                boosted(self.pattern_query(field, &body, *case_insensitive)?, boost)
            }
            Query::Regexp {
                field,
                pattern,
                flags,
                case_insensitive,
                boost,
                ..
            } => {
                let body =
                    cairn_query::regexp::lucene_regex_body(pattern, *flags).map_err(query_err)?;
                boosted(self.pattern_query(field, &body, *case_insensitive)?, boost)
            }
            Query::Fuzzy {
                field,
                value,
                fuzziness,
                transpositions,
                boost,
                ..
            } => {
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                let edits = fuzziness.edits_for(value.chars().count()).min(2);
                for t in self.targets(field) {
                    let v = match &t {
                        Target::Text(_) => value.to_lowercase(),
                        Target::Exact(_, ty) if ty.storage() == StorageClass::Keyword => {
                            value.clone()
                        }
                        _ => continue,
                    };
                    parts.push(self.fuzzy_on(&t, &v, edits, *transpositions));
                }
                boosted(any_of(parts), boost)
            }
            Query::MatchPhrasePrefix {
                field,
                query,
                boost,
                ..
            } => {
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                for t in self.targets(field) {
                    if let Target::Text(p) = &t {
                        let toks = analyze(query);
                        match toks.len() {
                            0 => {}
                            1 => parts.push(self.pattern_on(
                                &t,
                                &format!("{}(?s:.*)", regex_escape(&toks[0])),
                                false,
                            )?),
                            _ => {
                                let terms = toks
                                    .iter()
                                    .enumerate()
                                    .map(|(i, tk)| (i, self.text_term(p, tk)))
                                    .collect();
                                parts.push(Box::new(PhrasePrefixQuery::new_with_offset(terms)));
                            }
                        }
                    } else {
                        parts.push(self.pattern_on(
                            &t,
                            &format!("{}(?s:.*)", regex_escape(query)),
                            false,
                        )?);
                    }
                }
                boosted(any_of(parts), boost)
            }
            Query::MatchBoolPrefix {
                field,
                query,
                operator,
                boost,
                ..
            } => {
                let toks = analyze(query);
                let occur = if *operator == Operator::And {
                    Occur::Must
                } else {
                    Occur::Should
                };
                let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
                for t in self.targets(field) {
                    if let Target::Text(p) = &t {
                        let mut subs: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
                        for (i, tk) in toks.iter().enumerate() {
                            if i + 1 == toks.len() {
                                subs.push((
                                    occur,
                                    self.pattern_on(
                                        &t,
                                        &format!("{}(?s:.*)", regex_escape(tk)),
                                        false,
                                    )?,
                                ));
                            } else {
                                subs.push((
                                    occur,
                                    Box::new(TermQuery::new(
                                        self.text_term(p, tk),
                                        IndexRecordOption::WithFreqs,
                                    )),
                                ));
                            }
                        }
                        if !subs.is_empty() {
                            parts.push(Box::new(BooleanQuery::new(subs)));
                        }
                    }
                }
                boosted(any_of(parts), boost)
            }
        })
    }

    /// A regular expression over the terms of each target field. Patterns on `text`
    /// fields are matched against lowercased tokens, as Elasticsearch normalizes them.
    fn pattern_query(
        &self,
        field: &str,
        body: &str,
        case_insensitive: bool,
    ) -> Result<Box<dyn TQuery>, EsError> {
        let mut parts = Vec::new();
        for t in self.targets(field) {
            match &t {
                Target::Text(_) => {
                    parts.push(self.pattern_on(&t, &body.to_lowercase(), case_insensitive)?)
                }
                Target::Exact(_, ty) if ty.storage() == StorageClass::Keyword => {
                    parts.push(self.pattern_on(&t, body, case_insensitive)?)
                }
                Target::Id => {
                    let re = compile_regex(&format!(
                        "{}{body}",
                        if case_insensitive { "(?i)" } else { "" }
                    ))?;
                    parts.push(Box::new(tantivy::query::RegexQuery::from_regex(
                        re,
                        self.fields.id,
                    )));
                }
                _ => {}
            }
        }
        Ok(Box::new(ConstScoreQuery::new(any_of(parts), 1.0)))
    }

    fn pattern_on(
        &self,
        t: &Target,
        body: &str,
        case_insensitive: bool,
    ) -> Result<Box<dyn TQuery>, EsError> {
        let Some((field, prefix)) = self.string_prefix(t) else {
            return Ok(Box::new(EmptyQuery));
        };
        let ci = if case_insensitive { "(?i)" } else { "" };
        let pattern = format!("{ci}(?:{body})");
        let regex = shared(&REGEXES, &pattern, || compile_regex(&pattern))?;
        Ok(Box::new(AutomatonQuery::new(field, prefix, regex)))
    }

    /// Terms of `t` within `edits` of `value` (a `fuzzy` query or a `match` with
    /// `fuzziness`).
    fn fuzzy_on(
        &self,
        t: &Target,
        value: &str,
        edits: u8,
        transpositions: bool,
    ) -> Box<dyn TQuery> {
        let Some((field, prefix)) = self.string_prefix(t) else {
            return Box::new(EmptyQuery);
        };
        let key = format!("{edits}{}{value}", if transpositions { 't' } else { 'n' });
        let dfa = shared::<_, std::convert::Infallible>(&LEVENSHTEIN, &key, || {
            Ok(Levenshtein(
                levenshtein_builder(edits, transpositions).build_dfa(value),
            ))
        })
        .unwrap_or_else(|never| match never {});
        Box::new(AutomatonQuery::new(field, prefix, dfa))
    }

    /// The field and term-dictionary prefix (JSON path and string type) of a target's
    /// string terms.
    fn string_prefix(&self, t: &Target) -> Option<(tantivy::schema::Field, Vec<u8>)> {
        let (field, mut term) = match t {
            Target::Text(p) => (
                self.fields.text,
                Term::from_field_json_path(self.fields.text, &json_path(p), false),
            ),
            Target::Exact(p, _) => (self.fields.kw, self.kw_term(p)),
            _ => return None,
        };
        term.append_type_and_str("");
        Some((field, term.serialized_value_bytes().to_vec()))
    }

    fn exact_on(&self, t: &Target, v: &Value) -> Result<Vec<Box<dyn TQuery>>, EsError> {
        let mut out: Vec<Box<dyn TQuery>> = Vec::new();
        match t {
            Target::Id => {
                if let Some(s) = v.as_str() {
                    out.push(Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.id, s),
                        IndexRecordOption::Basic,
                    )));
                }
            }
            Target::Timestamp
            | Target::Exact(_, FieldType::Date)
            | Target::Exact(_, FieldType::DateNanos) => {
                let r = Query::Range {
                    field: match t {
                        Target::Exact(p, _) => p.clone(),
                        _ => "@timestamp".into(),
                    },
                    gt: None,
                    gte: Some(v.clone()),
                    lt: None,
                    lte: Some(v.clone()),
                    format: None,
                    time_zone: None,
                    boost: None,
                };
                if cairn_query::datemath::resolve_value(
                    v,
                    self.now_millis,
                    false,
                    None,
                    &cairn_query::datemath::TimeZone::utc(),
                )
                .is_ok()
                {
                    out.push(self.compile(&r)?);
                }
            }
            Target::Exact(p, ty) => {
                if let Some(term) = self.exact_term(p, *ty, v)? {
                    out.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
                }
            }
            Target::Text(p) => {
                // `term` on a text field matches one indexed token exactly.
                let s = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                out.push(Box::new(TermQuery::new(
                    self.text_term(p, &s),
                    IndexRecordOption::WithFreqs,
                )));
            }
        }
        Ok(out)
    }

    fn term_query(&self, field: &str, values: &[Value]) -> Result<Box<dyn TQuery>, EsError> {
        let mut parts = Vec::new();
        for t in self.targets(field) {
            for v in values {
                parts.extend(self.exact_on(&t, v)?);
            }
        }
        Ok(Box::new(ConstScoreQuery::new(any_of(parts), 1.0)))
    }

    fn match_query(
        &self,
        field: &str,
        text: &str,
        opts: &MatchOpts<'_>,
    ) -> Result<Box<dyn TQuery>, EsError> {
        let mut parts: Vec<Box<dyn TQuery>> = Vec::new();
        for t in self.targets(field) {
            match &t {
                Target::Text(p) => {
                    let toks = analyze(text);
                    if toks.is_empty() {
                        continue;
                    }
                    let subs: Vec<Box<dyn TQuery>> = toks
                        .iter()
                        .map(|tk| -> Box<dyn TQuery> {
                            match opts.fuzziness {
                                Some(f) if f.edits_for(tk.chars().count()) > 0 => self.fuzzy_on(
                                    &t,
                                    tk,
                                    f.edits_for(tk.chars().count()).min(2),
                                    true,
                                ),
                                _ => Box::new(TermQuery::new(
                                    self.text_term(p, tk),
                                    IndexRecordOption::WithFreqs,
                                )),
                            }
                        })
                        .collect();
                    let n = subs.len();
                    let required = if opts.op == Operator::And {
                        n
                    } else {
                        opts.msm.map(|m| m.resolve(n)).unwrap_or(1).clamp(1, n)
                    };
                    let clauses: Vec<(Occur, Box<dyn TQuery>)> =
                        subs.into_iter().map(|q| (Occur::Should, q)).collect();
                    if required <= 1 {
                        parts.push(Box::new(BooleanQuery::new(clauses)));
                    } else if required >= n {
                        parts.push(Box::new(BooleanQuery::new(
                            clauses.into_iter().map(|(_, q)| (Occur::Must, q)).collect(),
                        )));
                    } else {
                        parts.push(Box::new(BooleanQuery::with_minimum_required_clauses(
                            clauses, required,
                        )));
                    }
                }
                other => parts.extend(self.exact_on(other, &Value::String(text.to_string()))?),
            }
        }
        Ok(any_of(parts))
    }
}

/// Options of a `match` query that shape its boolean.
pub struct MatchOpts<'a> {
    pub op: Operator,
    pub msm: Option<&'a cairn_query::MinimumShouldMatch>,
    pub fuzziness: Option<&'a cairn_query::Fuzziness>,
}

fn compile_regex(pattern: &str) -> Result<tantivy_fst::Regex, EsError> {
    tantivy_fst::Regex::new(pattern).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("states") || msg.contains("too big") {
            EsError::new(
                400,
                "too_complex_to_determinize_exception",
                format!("Determinizing the pattern would require too many states: {msg}"),
            )
        } else {
            EsError::illegal_argument(format!("invalid regular expression: {msg}"))
        }
    })
}

/// Escapes regex metacharacters.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Automata shared by every field and index a request targets, by pattern. A DFA can
/// take megabytes (tantivy-fst allows 1,000 states of 256 transitions; a Levenshtein DFA
/// at distance 2 is of that order too), and a pattern on an unqualified `q=` expands to
/// every field of every index: built per field, one fuzzy term cost 1.1 GiB and four
/// seconds on an index with a few hundred fields (found by fuzzing the HTTP path). The
/// caches hold weak references, so an automaton lives exactly as long as the queries
/// using it.
type AutomatonCache<A> =
    std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<A>>>>;
static REGEXES: AutomatonCache<tantivy_fst::Regex> = std::sync::LazyLock::new(Default::default);
static LEVENSHTEIN: AutomatonCache<Levenshtein> = std::sync::LazyLock::new(Default::default);

fn shared<A, E>(
    cache: &AutomatonCache<A>,
    key: &str,
    build: impl FnOnce() -> Result<A, E>,
) -> Result<Arc<A>, E> {
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = lock().get(key).and_then(std::sync::Weak::upgrade) {
        return Ok(a);
    }
    let a = Arc::new(build()?);
    let mut map = lock();
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key.to_owned(), Arc::downgrade(&a));
    Ok(a)
}

/// One Levenshtein automaton builder per (distance, transpositions): building one takes
/// a while, building DFAs from it is cheap.
fn levenshtein_builder(
    edits: u8,
    transpositions: bool,
) -> &'static levenshtein_automata::LevenshteinAutomatonBuilder {
    static BUILDERS: [[std::sync::OnceLock<levenshtein_automata::LevenshteinAutomatonBuilder>; 2];
        3] = [const { [const { std::sync::OnceLock::new() }; 2] }; 3];
    let edits = edits.min(2);
    BUILDERS[edits as usize][transpositions as usize].get_or_init(|| {
        levenshtein_automata::LevenshteinAutomatonBuilder::new(edits, transpositions)
    })
}

/// A Levenshtein DFA as a term automaton.
struct Levenshtein(levenshtein_automata::DFA);

impl std::fmt::Debug for Levenshtein {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Levenshtein")
    }
}

impl Automaton for Levenshtein {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(
            self.0.distance(*state),
            levenshtein_automata::Distance::Exact(_)
        )
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// A term automaton: the literal bytes of a JSON path prefix, then a shared automaton.
#[derive(Debug)]
struct Prefixed<A> {
    prefix: Box<[u8]>,
    inner: Arc<A>,
}

#[derive(Clone, Debug)]
enum PrefixedState<S> {
    /// This many bytes of the prefix matched.
    Prefix(usize),
    Inner(S),
    Dead,
}

impl<A: Automaton> Automaton for Prefixed<A> {
    type State = PrefixedState<A::State>;

    fn start(&self) -> Self::State {
        if self.prefix.is_empty() {
            PrefixedState::Inner(self.inner.start())
        } else {
            PrefixedState::Prefix(0)
        }
    }

    fn is_match(&self, state: &Self::State) -> bool {
        match state {
            PrefixedState::Inner(s) => self.inner.is_match(s),
            _ => false,
        }
    }

    fn can_match(&self, state: &Self::State) -> bool {
        match state {
            PrefixedState::Prefix(_) => true,
            PrefixedState::Inner(s) => self.inner.can_match(s),
            PrefixedState::Dead => false,
        }
    }

    fn accept(&self, state: &Self::State, byte: u8) -> Self::State {
        match state {
            PrefixedState::Prefix(i) if self.prefix.get(*i) == Some(&byte) => {
                if i + 1 == self.prefix.len() {
                    PrefixedState::Inner(self.inner.start())
                } else {
                    PrefixedState::Prefix(i + 1)
                }
            }
            PrefixedState::Inner(s) => PrefixedState::Inner(self.inner.accept(s, byte)),
            _ => PrefixedState::Dead,
        }
    }
}

/// The terms of one JSON path (and string type) that an automaton accepts.
#[derive(Debug)]
struct AutomatonQuery<A> {
    field: tantivy::schema::Field,
    automaton: Arc<Prefixed<A>>,
}

impl<A> AutomatonQuery<A> {
    fn new(field: tantivy::schema::Field, prefix: Vec<u8>, inner: Arc<A>) -> Self {
        AutomatonQuery {
            field,
            automaton: Arc::new(Prefixed {
                prefix: prefix.into_boxed_slice(),
                inner,
            }),
        }
    }
}

impl<A> Clone for AutomatonQuery<A> {
    fn clone(&self) -> Self {
        AutomatonQuery {
            field: self.field,
            automaton: self.automaton.clone(),
        }
    }
}

impl<A> TQuery for AutomatonQuery<A>
where
    A: Automaton + std::fmt::Debug + Send + Sync + 'static,
    A::State: Clone,
{
    fn weight(
        &self,
        _: tantivy::query::EnableScoring<'_>,
    ) -> tantivy::Result<Box<dyn tantivy::query::Weight>> {
        Ok(Box::new(
            tantivy::query::AutomatonWeight::<Prefixed<A>>::new_for_json_path(
                self.field,
                self.automaton.clone(),
                &self.automaton.prefix,
            ),
        ))
    }
}

fn any_of(mut parts: Vec<Box<dyn TQuery>>) -> Box<dyn TQuery> {
    match parts.len() {
        0 => Box::new(EmptyQuery),
        1 => parts.remove(0),
        _ => Box::new(BooleanQuery::new(
            parts.into_iter().map(|p| (Occur::Should, p)).collect(),
        )),
    }
}
