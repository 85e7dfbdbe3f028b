//! The query AST shared by the ES query DSL, Lucene `query_string` and KQL.
//!
//! Field names are unresolved strings exactly as the user wrote them: they may be
//! patterns (`kubernetes.*`, `*`), carry a `.keyword` suffix, or name fields the index
//! does not map. The search layer resolves them against the mapping; the evaluator
//! resolves them against the document.
//!
//! **Default fields.** An unqualified term (Lucene `foo`, KQL `foo`, `query_string`
//! without `default_field`, `simple_query_string` without `fields`) is a leaf whose field
//! is [`ALL_FIELDS`] (`"*"`). `"*"` is an ordinary field pattern meaning "the index's
//! default fields" (`index.query.default_field`, which defaults to `*` = every searchable
//! field). Queries over a pattern are lenient: a field whose type cannot hold the value
//! (text in a numeric field) simply does not match instead of failing the query, as ES
//! does for `*` expansion. When explicit default fields are given (`default_field`,
//! `fields: ["a^2", "b*"]`), the parsers build one leaf per field pattern, OR'ed in a
//! [`Query::Bool`] `should` (ES uses `dis_max`; only scores differ), each carrying the
//! per-field boost.

use serde::Serialize;
use serde_json::Value;

/// Field pattern meaning "the index's default fields" (see the module doc).
pub const ALL_FIELDS: &str = "*";

/// Boolean operator joining the terms of an analyzed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Any term may match (ES default).
    #[default]
    Or,
    /// Every term must match.
    And,
}

/// What a `match` query does when analysis removes every term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroTermsQuery {
    /// Match nothing (ES default).
    #[default]
    None,
    /// Match everything.
    All,
}

/// `multi_match` `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiMatchType {
    /// Best single field's score (default).
    #[default]
    BestFields,
    /// Sum of the fields' scores.
    MostFields,
    /// Fields treated as one big field (term-centric).
    CrossFields,
    /// `match_phrase` on each field.
    Phrase,
    /// `match_phrase_prefix` on each field.
    PhrasePrefix,
    /// `match_bool_prefix` on each field.
    BoolPrefix,
}

/// Fuzziness: `AUTO`, `AUTO:low,high` or a fixed number of edits (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fuzziness {
    /// Edits chosen from the term length: `< low` chars: 0, `< high`: 1, else 2.
    Auto {
        /// default 3
        low: u32,
        /// default 6
        high: u32,
    },
    /// A fixed number of edits (ES caps at 2).
    Edits(u8),
}

impl Default for Fuzziness {
    fn default() -> Self {
        Fuzziness::Auto { low: 3, high: 6 }
    }
}

impl Fuzziness {
    /// The maximum edit distance for a term of `term_chars` characters.
    pub fn edits_for(&self, term_chars: usize) -> u8 {
        match *self {
            Fuzziness::Edits(n) => n.min(2),
            Fuzziness::Auto { low, high } => {
                let len = u32::try_from(term_chars).unwrap_or(u32::MAX);
                if len < low {
                    0
                } else if len < high {
                    1
                } else {
                    2
                }
            }
        }
    }
}

/// One part of a `minimum_should_match` combination: "if more than `above` optional
/// clauses, require `then`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MsmCondition {
    /// Applies when the optional clause count is greater than this.
    pub above: u32,
    /// The requirement then.
    pub then: MsmValue,
}

/// A simple `minimum_should_match` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MsmValue {
    /// `3` (at least 3) or `-2` (all but 2).
    Count(i32),
    /// `75%` (75 % rounded down) or `-25%` (all but 25 % rounded down).
    Percent(i32),
}

impl MsmValue {
    fn apply(self, optional: i64) -> i64 {
        match self {
            MsmValue::Count(n) => {
                let n = i64::from(n);
                if n < 0 {
                    optional + n
                } else {
                    n
                }
            }
            MsmValue::Percent(p) => {
                // ES computes (count * percent) * (1/100f) as float and truncates toward zero.
                let calc = (optional as f64 * f64::from(p)) / 100.0;
                if calc < 0.0 {
                    optional + calc as i64
                } else {
                    calc as i64
                }
            }
        }
    }
}

/// `minimum_should_match` as ES accepts it: `3`, `-2`, `75%`, `-25%`, `3<90%`, `2<-25% 9<-3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MinimumShouldMatch {
    /// A single value.
    Value(MsmValue),
    /// Conditional combination (`N<value` parts, ascending).
    Conditional(Vec<MsmCondition>),
}

impl MinimumShouldMatch {
    /// How many of `optional_clauses` should clauses must match (ES's
    /// `Queries.calculateMinShouldMatch`), clamped to `0..=optional_clauses`.
    pub fn resolve(&self, optional_clauses: usize) -> usize {
        let optional = i64::try_from(optional_clauses).unwrap_or(i64::MAX);
        let result = match self {
            MinimumShouldMatch::Value(v) => v.apply(optional),
            MinimumShouldMatch::Conditional(parts) => {
                let mut result = optional;
                for part in parts {
                    if optional <= i64::from(part.above) {
                        break;
                    }
                    result = part.then.apply(optional);
                }
                result
            }
        };
        let result = result.clamp(0, optional);
        usize::try_from(result).unwrap_or(0)
    }
}

/// The query AST. See the module doc for field-name conventions.
///
/// `boost: Option<f32>`: `None` means the default 1.0.
// Variants differ in size (Range is the largest); a query tree is built once per request,
// so flat variants that pattern-match easily are worth more than the bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// Every document.
    MatchAll {
        /// Score boost.
        boost: Option<f32>,
    },
    /// No document.
    MatchNone,
    /// Exact value (not analyzed). On a text field it is compared with the indexed
    /// tokens as is (so `"Foo"` never matches a lowercased token, as in ES).
    Term {
        /// Field (pattern).
        field: String,
        /// JSON string, number or boolean.
        value: Value,
        /// ASCII case-insensitive comparison (keyword fields).
        case_insensitive: bool,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Any of several exact values.
    Terms {
        /// Field (pattern).
        field: String,
        /// The values.
        values: Vec<Value>,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Range on numbers, dates (raw values: date math is resolved by the consumer, who
    /// knows from the mapping whether the field is a date; see [`crate::datemath`]) or strings.
    Range {
        /// Field (pattern).
        field: String,
        /// Exclusive lower bound.
        gt: Option<Value>,
        /// Inclusive lower bound.
        gte: Option<Value>,
        /// Exclusive upper bound.
        lt: Option<Value>,
        /// Inclusive upper bound.
        lte: Option<Value>,
        /// Date format of the bounds (`epoch_second`, `yyyy-MM-dd`, `a||b`, ...).
        format: Option<String>,
        /// Time zone for dates without an offset and for rounding (`+01:00`, `Europe/Paris`).
        time_zone: Option<String>,
        /// Score boost.
        boost: Option<f32>,
    },
    /// The field has at least one non-null value.
    Exists {
        /// Field (pattern).
        field: String,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Value starts with a prefix (not analyzed).
    Prefix {
        /// Field (pattern).
        field: String,
        /// The prefix.
        value: String,
        /// ASCII case-insensitive.
        case_insensitive: bool,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Wildcard pattern: `*` any sequence, `?` any one char, `\` escapes.
    Wildcard {
        /// Field (pattern).
        field: String,
        /// The pattern.
        pattern: String,
        /// ASCII case-insensitive.
        case_insensitive: bool,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Lucene regular expression (anchored, Lucene syntax; see [`crate::regexp`]).
    Regexp {
        /// Field (pattern).
        field: String,
        /// Lucene regex.
        pattern: String,
        /// Lucene `RegExp` syntax flags (bit set, see [`crate::regexp::flags`]).
        flags: u32,
        /// ASCII case-insensitive.
        case_insensitive: bool,
        /// Automaton complexity limit (default 10000).
        max_determinized_states: u32,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Terms within an edit distance.
    Fuzzy {
        /// Field (pattern).
        field: String,
        /// The term.
        value: String,
        /// Allowed edits.
        fuzziness: Fuzziness,
        /// Leading chars that must match exactly (default 0).
        prefix_length: u32,
        /// Max terms the query expands to (default 50).
        max_expansions: u32,
        /// Count a transposition as one edit (default true).
        transpositions: bool,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Documents by `_id`.
    Ids {
        /// The ids.
        values: Vec<String>,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Analyzed full-text query (exact term on keyword fields, numeric/date equality on typed fields).
    Match {
        /// Field (pattern).
        field: String,
        /// The text (or number/bool rendered as a string).
        query: String,
        /// How the analyzed terms combine.
        operator: Operator,
        /// Minimum number of terms that must match (with `Or`).
        minimum_should_match: Option<MinimumShouldMatch>,
        /// Fuzzy matching of each term.
        fuzziness: Option<Fuzziness>,
        /// Fuzzy prefix length (default 0).
        prefix_length: u32,
        /// Fuzzy max expansions (default 50).
        max_expansions: u32,
        /// Ignore type errors (text in a numeric field).
        lenient: bool,
        /// What to do when analysis yields no term.
        zero_terms_query: ZeroTermsQuery,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Analyzed phrase: terms in order, with up to `slop` moves.
    MatchPhrase {
        /// Field (pattern).
        field: String,
        /// The phrase.
        query: String,
        /// Allowed position moves (default 0).
        slop: u32,
        /// What to do when analysis yields no term.
        zero_terms_query: ZeroTermsQuery,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Phrase whose last term is a prefix.
    MatchPhrasePrefix {
        /// Field (pattern).
        field: String,
        /// The phrase.
        query: String,
        /// Allowed position moves.
        slop: u32,
        /// Max expansions of the last term (default 50).
        max_expansions: u32,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Analyzed terms, the last one as a prefix, OR'ed (`match_bool_prefix`).
    MatchBoolPrefix {
        /// Field (pattern).
        field: String,
        /// The text.
        query: String,
        /// How the terms combine.
        operator: Operator,
        /// Minimum should match.
        minimum_should_match: Option<MinimumShouldMatch>,
        /// Score boost.
        boost: Option<f32>,
    },
    /// One text query over several fields.
    MultiMatch {
        /// `(field pattern, per-field boost)`; empty = index default fields ([`ALL_FIELDS`]).
        fields: Vec<(String, f32)>,
        /// The text.
        query: String,
        /// `type`.
        kind: MultiMatchType,
        /// Operator between terms.
        operator: Operator,
        /// Minimum should match.
        minimum_should_match: Option<MinimumShouldMatch>,
        /// Fuzziness.
        fuzziness: Option<Fuzziness>,
        /// Phrase slop (phrase types).
        slop: u32,
        /// Combine scores of non-best fields.
        tie_breaker: Option<f32>,
        /// Ignore type errors.
        lenient: bool,
        /// Zero terms behaviour.
        zero_terms_query: ZeroTermsQuery,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Boolean combination.
    ///
    /// Matching: every `must` and `filter`, no `must_not`, and at least
    /// [`Query::bool_minimum_should_match`] of `should`.
    Bool {
        /// Must match, scores.
        must: Vec<Query>,
        /// Should match.
        should: Vec<Query>,
        /// Must not match.
        must_not: Vec<Query>,
        /// Must match, no score.
        filter: Vec<Query>,
        /// How many `should` must match.
        minimum_should_match: Option<MinimumShouldMatch>,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Wraps a filter; every match scores `boost`.
    ConstantScore {
        /// The filter.
        filter: Box<Query>,
        /// Score (default 1.0).
        boost: Option<f32>,
    },
    /// Disjunction scored by its best clause (+ tie_breaker × the others).
    DisMax {
        /// The clauses.
        queries: Vec<Query>,
        /// Tie breaker (default 0).
        tie_breaker: f32,
        /// Score boost.
        boost: Option<f32>,
    },
    /// Positive query with scores lowered for documents matching `negative`.
    Boosting {
        /// Must match.
        positive: Box<Query>,
        /// Lowers the score.
        negative: Box<Query>,
        /// Factor applied to documents matching `negative`.
        negative_boost: f32,
        /// Score boost.
        boost: Option<f32>,
    },
}

impl Query {
    /// `match_all` with no boost.
    pub fn match_all() -> Query {
        Query::MatchAll { boost: None }
    }

    /// A `bool` with no clause.
    pub fn empty_bool() -> Query {
        Query::Bool {
            must: Vec::new(),
            should: Vec::new(),
            must_not: Vec::new(),
            filter: Vec::new(),
            minimum_should_match: None,
            boost: None,
        }
    }

    /// A `match` query with ES defaults.
    pub fn match_text(field: impl Into<String>, query: impl Into<String>) -> Query {
        Query::Match {
            field: field.into(),
            query: query.into(),
            operator: Operator::Or,
            minimum_should_match: None,
            fuzziness: None,
            prefix_length: 0,
            max_expansions: 50,
            lenient: false,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None,
        }
    }

    /// A `term` query with defaults.
    pub fn term(field: impl Into<String>, value: impl Into<Value>) -> Query {
        Query::Term {
            field: field.into(),
            value: value.into(),
            case_insensitive: false,
            boost: None,
        }
    }

    /// The boost of this query (`None` = 1.0).
    pub fn boost(&self) -> Option<f32> {
        match self {
            Query::MatchNone => None,
            Query::MatchAll { boost }
            | Query::Term { boost, .. }
            | Query::Terms { boost, .. }
            | Query::Range { boost, .. }
            | Query::Exists { boost, .. }
            | Query::Prefix { boost, .. }
            | Query::Wildcard { boost, .. }
            | Query::Regexp { boost, .. }
            | Query::Fuzzy { boost, .. }
            | Query::Ids { boost, .. }
            | Query::Match { boost, .. }
            | Query::MatchPhrase { boost, .. }
            | Query::MatchPhrasePrefix { boost, .. }
            | Query::MatchBoolPrefix { boost, .. }
            | Query::MultiMatch { boost, .. }
            | Query::Bool { boost, .. }
            | Query::ConstantScore { boost, .. }
            | Query::DisMax { boost, .. }
            | Query::Boosting { boost, .. } => *boost,
        }
    }

    /// Multiply this query's boost by `factor` (no-op on `MatchNone`).
    pub fn with_boost(mut self, factor: f32) -> Query {
        match &mut self {
            Query::MatchNone => {}
            Query::MatchAll { boost }
            | Query::Term { boost, .. }
            | Query::Terms { boost, .. }
            | Query::Range { boost, .. }
            | Query::Exists { boost, .. }
            | Query::Prefix { boost, .. }
            | Query::Wildcard { boost, .. }
            | Query::Regexp { boost, .. }
            | Query::Fuzzy { boost, .. }
            | Query::Ids { boost, .. }
            | Query::Match { boost, .. }
            | Query::MatchPhrase { boost, .. }
            | Query::MatchPhrasePrefix { boost, .. }
            | Query::MatchBoolPrefix { boost, .. }
            | Query::MultiMatch { boost, .. }
            | Query::Bool { boost, .. }
            | Query::ConstantScore { boost, .. }
            | Query::DisMax { boost, .. }
            | Query::Boosting { boost, .. } => {
                *boost = Some(boost.unwrap_or(1.0) * factor);
            }
        }
        self
    }

    /// For a `Bool`: how many `should` clauses must match. ES rule: an explicit
    /// `minimum_should_match` resolved against the should count; otherwise 1 when the bool
    /// has only `should` clauses (no must/filter), else 0. `None` for other variants.
    pub fn bool_minimum_should_match(&self) -> Option<usize> {
        match self {
            Query::Bool {
                must,
                should,
                filter,
                minimum_should_match,
                ..
            } => Some(match minimum_should_match {
                Some(m) => m.resolve(should.len()),
                None if must.is_empty() && filter.is_empty() && !should.is_empty() => 1,
                None => 0,
            }),
            _ => None,
        }
    }

    /// Number of nodes in the tree (compound nodes included).
    pub fn node_count(&self) -> usize {
        let mut count = 0usize;
        let mut stack: Vec<&Query> = vec![self];
        while let Some(q) = stack.pop() {
            count += 1;
            stack.extend(q.children());
        }
        count
    }

    /// Number of leaf (non-compound) queries in the tree.
    pub fn leaf_count(&self) -> usize {
        let mut count = 0usize;
        let mut stack: Vec<&Query> = vec![self];
        while let Some(q) = stack.pop() {
            let before = stack.len();
            stack.extend(q.children());
            if stack.len() == before && !q.is_compound() {
                count += 1;
            }
        }
        count
    }

    /// True for queries that hold other queries.
    pub fn is_compound(&self) -> bool {
        matches!(
            self,
            Query::Bool { .. }
                | Query::ConstantScore { .. }
                | Query::DisMax { .. }
                | Query::Boosting { .. }
        )
    }

    /// The direct sub-queries.
    pub fn children(&self) -> Vec<&Query> {
        match self {
            Query::Bool {
                must,
                should,
                must_not,
                filter,
                ..
            } => must
                .iter()
                .chain(should.iter())
                .chain(must_not.iter())
                .chain(filter.iter())
                .collect(),
            Query::ConstantScore { filter, .. } => vec![filter.as_ref()],
            Query::DisMax { queries, .. } => queries.iter().collect(),
            Query::Boosting {
                positive, negative, ..
            } => vec![positive.as_ref(), negative.as_ref()],
            _ => Vec::new(),
        }
    }

    /// Depth of the tree (a leaf is 1).
    pub fn depth(&self) -> usize {
        let mut max = 0usize;
        let mut stack: Vec<(&Query, usize)> = vec![(self, 1)];
        while let Some((q, d)) = stack.pop() {
            max = max.max(d);
            for c in q.children() {
                stack.push((c, d + 1));
            }
        }
        max
    }
}
