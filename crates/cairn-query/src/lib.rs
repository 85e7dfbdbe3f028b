//! Cairn's query languages, without tantivy: one AST, three syntaxes, Elasticsearch date
//! math, and an evaluator that runs a query against one in-memory JSON document.
//!
//! This crate knows nothing of HTTP or of the index. `cairn-search` compiles the
//! [`Query`] AST into tantivy queries (resolving field names against the mapping); the
//! agent and the alert engine use [`matches`] to filter documents in memory.
//!
//! # The AST ([`ast`])
//! [`Query`] mirrors Elasticsearch's query DSL: `match_all`, `match_none`, `term`,
//! `terms`, `range` (raw bounds, date math unresolved), `exists`, `prefix`, `wildcard`,
//! `regexp`, `fuzzy`, `ids`, `match`, `match_phrase`, `match_phrase_prefix`,
//! `match_bool_prefix`, `multi_match`, `bool`, `constant_score`, `dis_max`, `boosting`.
//! Field names stay as written (patterns like `kubernetes.*`, a `.keyword` suffix).
//! Unqualified terms of the string syntaxes target [`ALL_FIELDS`] (`"*"`), the pattern
//! meaning "the index default fields". `query_string`, `simple_query_string` and `kql`
//! are not AST nodes: they are parsed into the AST when the DSL is parsed.
//!
//! # The languages
//! - **ES query DSL** ([`dsl::parse`]): every clause above plus `query_string`,
//!   `simple_query_string` and Cairn's `{"kql": {"query": "..."}}`; short and long forms;
//!   errors with ES 8's `type` and `reason` ([`QueryError`]); limits ([`Limits`]) on nesting
//!   depth (30), leaf clauses (4096), regex length (1000), terms count (65536).
//! - **Lucene `query_string`** ([`lucene`]): fields, phrases with slop, wildcards, fuzzy,
//!   boosts, inclusive/exclusive/open ranges, `>=`-style comparisons, boolean operators
//!   with Lucene's classic precedence rules, `+`/`-`, groups, `_exists_`, regexes,
//!   escapes, default fields and operator. Errors read like ES's ("Failed to parse
//!   query [...]") and carry the character offset.
//! - **`simple_query_string`** ([`simple`]): `+ | - " * ( ) ~N`, flags; never a syntax error.
//! - **KQL** ([`kql`]): Kibana's grammar: `field:value`, value lists `field:(a or b)`,
//!   phrases, wildcards in values and field names, `field:*`, range operators, `and`/`or`/
//!   `not` in any case, nested groups, unqualified values, escapes, `a:{ b:c }`. Syntax
//!   errors are Kibana-style `KQLSyntaxError`s with an offset.
//!
//! # Date math ([`datemath`])
//! `now-15m/m`, `2024-01-01||+1M/d`, ES rounding (`gt`/`lte` round up), fixed-offset and
//! IANA time zones, ES's default and named date formats and Java-style patterns. "Now"
//! is always passed in.
//!
//! # Evaluation ([`eval`])
//! [`matches`] evaluates a query against a `serde_json::Value`: dotted keys and nested
//! objects address the same field, arrays match if any element does, text fields are
//! analyzed with [`analyze`] (identical to tantivy's `SimpleTokenizer` + `LowerCaser`),
//! other fields compare exactly, numbers numerically, dates through date math.
//!
//! # Planning helpers ([`plan`])
//! [`plan::referenced_fields`] and [`plan::time_range`] (the `@timestamp` window a query
//! requires, for partition pruning).
//!
//! # Example
//! ```
//! use cairn_query::{dsl, kql, matches, EvalContext, Limits};
//! use serde_json::json;
//!
//! let limits = Limits::default();
//! let q = kql::parse("log.level:error and message:timeout", &Default::default(), &limits)?;
//! let doc = json!({"log": {"level": "error"}, "message": "Upstream Timeout after 30s"});
//! assert!(matches(&q, &doc, &EvalContext::new(0))?);
//!
//! let q = dsl::parse(&json!({"range": {"@timestamp": {"gte": "now-15m"}}}), &limits)?;
//! let doc = json!({"@timestamp": "2024-01-01T00:00:00Z"});
//! let now = 1_704_067_200_000; // 2024-01-01T00:00:00Z
//! assert!(matches(&q, &doc, &EvalContext::new(now))?);
//! # Ok::<(), cairn_query::QueryError>(())
//! ```
//!
//! # Departures from Elasticsearch / Kibana
//! - No scoring semantics beyond carrying boosts; `dis_max` and multi-field expansion are
//!   plain disjunctions for matching purposes.
//! - Default fields given explicitly expand to a `bool` `should` (ES: `dis_max`).
//! - Regexps: Lucene's intersection `&` and complement `~` operators are rejected;
//!   `<n-m>` intervals are limited to 1000 values; `max_determinized_states` bounds the
//!   compiled program size instead of DFA states.
//! - Term-level patterns on text fields are lowercased (ES's query_string does this; ES's
//!   DSL `wildcard`/`prefix` on a text field do not normalize and would miss upper-case
//!   patterns).
//! - KQL: `not` is a keyword only at the start of a word (Kibana: anywhere in an unquoted
//!   value); `kql` errors keep the `KQLSyntaxError` type even inside the DSL. Kibana
//!   chooses the query per field type from the data view (term for keyword, range for
//!   dates, match for text); Cairn emits `match` / `match_phrase` and lets the mapping
//!   decide (a match on a keyword field is an exact term), so `case_insensitive` applies
//!   to wildcard/prefix values only.
//! - DSL positions (`line`/`col`) are not reported: the DSL is parsed from a
//!   `serde_json::Value`, which has no positions.
//! - `terms` lookup, `nested`, `has_child`, scripts, `geo_*`, `more_like_this` and other
//!   queries not listed above are rejected as unknown queries (or, for terms lookup, with
//!   an `illegal_argument_exception`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
pub mod datemath;
pub mod dsl;
pub mod error;
pub mod eval;
pub mod kql;
pub mod limits;
pub mod lucene;
pub mod plan;
pub mod regexp;
pub mod simple;

pub use ast::{
    Fuzziness, MinimumShouldMatch, MsmCondition, MsmValue, MultiMatchType, Operator, Query,
    ZeroTermsQuery, ALL_FIELDS,
};
pub use error::{ErrorKind, QueryError};
pub use eval::{analyze, matches, EvalContext, FieldKind, Matcher};
pub use limits::Limits;
