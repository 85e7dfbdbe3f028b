//! `cairn-ingest`: Elasticsearch-compatible ingest pipelines. Pure: JSON in, JSON out; no
//! HTTP, no storage.
//!
//! # API
//!
//! * [`Pipeline::parse`] validates a pipeline definition as Elasticsearch does
//!   (`parse_exception` with `processor_type` / `property_name` / `processor_tag`).
//! * [`Pipeline::execute`] runs it over an [`IngestDocument`] within a [`Budget`];
//!   `Ok(Outcome::Drop)` when a `drop` processor ran, `Err(EsError)` with the failing
//!   processor's exception when the document fails (as a bulk item reports it).
//! * [`PipelineLookup`] resolves the `pipeline` processor's targets (cycles fail with
//!   `graph_structure_exception` "Cycle detected for pipeline: x").
//! * [`simulate`] / [`simulate_request`] produce the `_simulate` response body, verbose
//!   or not.
//! * [`builtin`] makes the pipeline behind `?pipeline=<format-name>`: parse `message`
//!   with a `cairn-formats` parser and merge the ECS fields.
//!
//! ```
//! use cairn_ingest::{Budget, IngestDocument, NoPipelines, Outcome, Pipeline};
//! use serde_json::json;
//!
//! let p = Pipeline::parse("web", &json!({"processors": [
//!     {"grok": {"field": "message", "patterns": ["%{IP:client.ip} %{WORD:http.method}"]}},
//!     {"set": {"field": "seen", "value": true, "if": "ctx.http?.method == 'GET'"}}
//! ]}))?;
//! let source = json!({"message": "10.0.0.1 GET"}).as_object().cloned().unwrap_or_default();
//! let mut doc = IngestDocument::new(source, "logs", None);
//! assert_eq!(p.execute(&mut doc, &NoPipelines, &Budget::default())?, Outcome::Keep);
//! assert_eq!(doc.source["client"]["ip"], "10.0.0.1");
//! assert_eq!(doc.source["seen"], true);
//! # Ok::<(), cairn_ingest::EsError>(())
//! ```
//!
//! # Processors
//!
//! `append`, `convert`, `date`, `dissect`, `dot_expander`, `drop`, `fail`, `foreach`,
//! `grok`, `gsub`, `join`, `json`, `kv`, `lowercase`, `pipeline`, `remove`, `rename`,
//! `set`, `split`, `trim`, `uppercase`, `urldecode`, with
//! Elasticsearch's option names and defaults, plus the common options `if`,
//! `on_failure`, `ignore_failure`, `tag` and `description`. Field paths are dotted paths
//! into nested objects (numeric segments index arrays); `_index`, `_id`,
//! `_ingest.timestamp` and other `_ingest.*` metadata, and `_source.`-prefixed paths are
//! understood. `{{field}}` / `{{{field}}}` templates work where Elasticsearch allows them
//! (`set`/`append` values and field names, `remove`/`rename` fields, `fail` message,
//! `pipeline` name, `date` timezone).
//!
//! Grok uses the stock legacy pattern library (logstash-patterns-core's `grok-patterns`
//! and `httpd`, Apache-2.0, see `patterns/NOTICE`) on the Rust `regex` crate, which
//! runs in linear time: no input can make a pattern backtrack forever. Oniguruma-only
//! syntax is translated (`(?<name>..)`, atomic groups, possessive quantifiers);
//! look-around and back-references are rejected when the pipeline is created.
//!
//! # Conditions (`if`)
//!
//! Elasticsearch runs Painless; cairn evaluates a small, safe subset that covers the
//! conditions people write:
//!
//! * field access: `ctx.a.b`, `ctx['a']['b']`, null-safe `ctx.a?.b` and `ctx.a?.b?.c`;
//!   `params.x` (from `{"source": .., "params": {..}}`);
//! * literals: `'single'` or `"double"` quoted strings, integers, decimals, `true`,
//!   `false`, `null`;
//! * operators: `==`, `!=` (also `===`/`!==`), `<`, `<=`, `>`, `>=` (numbers), `&&`, `||`,
//!   `!`, parentheses, `x instanceof String|Number|Integer|Long|Double|Boolean|Map|List`;
//! * methods: `contains`, `startsWith`, `endsWith`, `equals`, `equalsIgnoreCase`,
//!   `isEmpty`, `length`, `size`, `toLowerCase`, `toUpperCase`, `trim`, `containsKey`,
//!   `get`;
//! * an optional leading `return` and trailing `;`.
//!
//! Anything else is rejected when the pipeline is created with a `script_exception` that
//! says "cairn supports this subset of Painless: ...". As in Painless, reading a field of
//! `null` with `.` (not `?.`) fails the processor at run time.
//!
//! # Time budget
//!
//! Each document gets a [`Budget`] (100 ms by default), checked before every processor
//! and inside per-item loops; when it runs out the document fails with an
//! `illegal_argument_exception` naming the pipeline and processor, which neither
//! `ignore_failure` nor `on_failure` can swallow.

#![allow(clippy::result_large_err)]

mod builtin;
mod condition;
mod config;
mod date;
mod dissect;
mod doc;
mod grok;
mod pipeline;
mod processors;
mod simulate;
mod template;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use cairn_core::error::EsError;
pub use condition::SUBSET as CONDITION_SUBSET;
pub use doc::IngestDocument;
pub use pipeline::Pipeline;
pub use processors::PROCESSOR_TYPES;
pub use simulate::{simulate, simulate_request, simulate_with_budget, SIMULATE_PIPELINE_ID};

/// What happened to a document that went through without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Index it.
    Keep,
    /// A `drop` processor ran: do not index it (the bulk item reports success).
    Drop,
}

/// Resolves pipeline ids for the `pipeline` processor.
pub trait PipelineLookup {
    fn get(&self, id: &str) -> Option<Arc<Pipeline>>;
}

/// A lookup with no pipelines.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPipelines;

impl PipelineLookup for NoPipelines {
    fn get(&self, _id: &str) -> Option<Arc<Pipeline>> {
        None
    }
}

impl PipelineLookup for HashMap<String, Arc<Pipeline>> {
    fn get(&self, id: &str) -> Option<Arc<Pipeline>> {
        HashMap::get(self, id).cloned()
    }
}

/// Per-document time budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time one document may spend in a pipeline (nested pipelines included).
    pub per_document: Duration,
}

impl Budget {
    pub fn new(per_document: Duration) -> Budget {
        Budget { per_document }
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            per_document: Duration::from_millis(100),
        }
    }
}

/// The built-in pipeline for a `cairn-formats` format, named after it (`aws-alb`,
/// `nginx-access`, ...): parses the document's `message` with that format's line parser
/// and merges the parsed ECS fields into the document (parsed fields win; `message`
/// stays unless the parser produced one). A `_parse_failure` keeps the document and adds
/// `error.message` and the `_parse_failure` tag. Documents without a string `message`
/// pass unchanged.
pub fn builtin(format: cairn_formats::Format) -> Pipeline {
    let node = processors::ProcNode {
        ty: format!("cairn-{}", format.name()),
        tag: None,
        description: None,
        cond: None,
        ignore_failure: false,
        on_failure: Vec::new(),
        kind: processors::Kind::Builtin(format),
    };
    Pipeline::from_nodes(
        format.name(),
        &format!("cairn built-in parser for {} logs", format.name()),
        vec![node],
    )
}

#[allow(dead_code)]
fn assert_thread_safe() {
    fn is<T: Send + Sync>() {}
    is::<Pipeline>();
    is::<IngestDocument>();
}

/// [`builtin`] by format name; `None` for an unknown name.
pub fn builtin_by_name(name: &str) -> Option<Pipeline> {
    name.parse::<cairn_formats::Format>().ok().map(builtin)
}
