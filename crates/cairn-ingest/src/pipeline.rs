//! Pipelines: parsing (with Elasticsearch's validation errors) and execution (with
//! `if`, `ignore_failure`, processor- and pipeline-level `on_failure`, nested pipelines,
//! the time budget and the verbose `_simulate` trace).

use std::sync::Arc;

use cairn_core::error::EsError;
use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::config::{config_error, Cfg};
use crate::doc::{java_type, Ctx, IngestDocument};
use crate::processors::{build_kind, Flow, Kind, ProcNode};
use crate::{Budget, Outcome, PipelineLookup};

/// A parsed ingest pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    id: String,
    description: Option<String>,
    version: Option<i64>,
    processors: Vec<ProcNode>,
    on_failure: Vec<ProcNode>,
    body: Value,
}

/// A failure travelling up the processor tree.
pub(crate) struct Failure {
    pub err: EsError,
    pub processor_type: Option<String>,
    pub tag: Option<String>,
    pub pipeline: Option<String>,
    /// Time budget exceeded: no handler may catch it.
    pub fatal: bool,
}

impl Failure {
    fn new(err: EsError, fatal: bool) -> Failure {
        Failure {
            err,
            processor_type: None,
            tag: None,
            pipeline: None,
            fatal,
        }
    }
}

fn parse_processors(list: &Value, pipeline_id: &str, what: &str) -> Result<Vec<ProcNode>, EsError> {
    let arr = match list {
        Value::Array(a) => a,
        other => {
            return Err(EsError::new(
                400,
                "parse_exception",
                format!(
                    "[{what}] property isn't a list, but of type [{}]",
                    java_type(other)
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for item in arr {
        let obj = match item {
            Value::Object(m) => m,
            other => {
                return Err(EsError::new(
                    400,
                    "parse_exception",
                    format!(
                        "[{what}] property isn't a list of maps, it contains a [{}]",
                        java_type(other)
                    ),
                ))
            }
        };
        for (ty, cfg) in obj {
            out.push(parse_processor(ty, cfg, pipeline_id)?);
        }
    }
    Ok(out)
}

pub(crate) fn parse_processor(
    ty: &str,
    cfg: &Value,
    pipeline_id: &str,
) -> Result<ProcNode, EsError> {
    let mut map = match cfg {
        Value::Object(m) => m.clone(),
        // `"drop": {}` is common; ES also reads a bare string for the script processor.
        other => {
            return Err(config_error(
                ty,
                None,
                None,
                &format!(
                    "processor [{ty}] config isn't a map, but of type [{}]",
                    java_type(other)
                ),
            ))
        }
    };
    let tag = match map.shift_remove("tag") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    if !crate::processors::PROCESSOR_TYPES.contains(&ty) {
        let reason = if crate::processors::ES_ONLY_TYPES.contains(&ty) {
            format!(
                "No processor type exists with name [{ty}]: cairn does not implement this Elasticsearch processor; supported processors: {}",
                crate::processors::PROCESSOR_TYPES.join(", ")
            )
        } else {
            format!("No processor type exists with name [{ty}]")
        };
        return Err(config_error(ty, tag.as_deref(), None, &reason));
    }
    let mut cfg = Cfg::new(ty, tag.clone(), map);
    let description = cfg.opt_str("description")?;
    let ignore_failure = cfg.opt_bool("ignore_failure", false)?;
    let cond = match cfg.take("if") {
        Some(Value::Null) | None => None,
        Some(v) => Some(Condition::parse(&v).map_err(|e| {
            let mut e = e.with("processor_type", ty);
            if let Some(t) = &tag {
                e = e.with("processor_tag", t.as_str());
            }
            e
        })?),
    };
    let on_failure = match cfg.take("on_failure") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => {
            let list = parse_processors(&v, pipeline_id, "on_failure")?;
            if list.is_empty() {
                return Err(cfg.err(Some("on_failure"), "processors list cannot be empty"));
            }
            list
        }
    };
    let kind = build_kind(&mut cfg)?;
    cfg.finish()?;
    Ok(ProcNode {
        ty: ty.to_string(),
        tag,
        description,
        cond,
        ignore_failure,
        on_failure,
        kind,
    })
}

impl Pipeline {
    /// Parses a pipeline definition (the body of `PUT _ingest/pipeline/<id>`).
    pub fn parse(id: &str, body: &Value) -> Result<Pipeline, EsError> {
        let obj = match body {
            Value::Object(m) => m,
            other => {
                return Err(EsError::new(
                    400,
                    "parse_exception",
                    format!(
                        "pipeline body must be an object, got [{}]",
                        java_type(other)
                    ),
                ))
            }
        };
        let processors = match obj.get("processors") {
            None | Some(Value::Null) => {
                return Err(EsError::new(
                    400,
                    "parse_exception",
                    "[processors] required property is missing",
                ))
            }
            Some(v) => parse_processors(v, id, "processors")?,
        };
        let on_failure = match obj.get("on_failure") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => {
                let l = parse_processors(v, id, "on_failure")?;
                if l.is_empty() {
                    return Err(EsError::new(
                        400,
                        "parse_exception",
                        format!("pipeline [{id}] cannot have an empty on-failure option defined"),
                    ));
                }
                l
            }
        };
        let description = match obj.get("description") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let version = match obj.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
            Some(other) => {
                return Err(EsError::new(
                    400,
                    "parse_exception",
                    format!(
                        "[version] property isn't an integer, but of type [{}]",
                        java_type(other)
                    ),
                ))
            }
        };
        Ok(Pipeline {
            id: id.to_string(),
            description,
            version,
            processors,
            on_failure,
            body: body.clone(),
        })
    }

    pub(crate) fn from_nodes(id: &str, description: &str, processors: Vec<ProcNode>) -> Pipeline {
        Pipeline {
            id: id.to_string(),
            description: Some(description.to_string()),
            version: None,
            processors,
            on_failure: Vec::new(),
            body: serde_json::json!({ "description": description, "processors": [] }),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The definition as it was given (for `GET _ingest/pipeline`).
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// Runs the pipeline over one document. `Ok(Outcome::Drop)`: a `drop` processor ran;
    /// `Err`: the document fails with this error (as a bulk item would).
    pub fn execute(
        &self,
        doc: &mut IngestDocument,
        lookup: &dyn PipelineLookup,
        budget: &Budget,
    ) -> Result<Outcome, EsError> {
        let mut ctx = Ctx::new(doc, budget, false);
        match run_pipeline(self, &mut ctx, lookup) {
            Ok(Flow::Continue) => Ok(Outcome::Keep),
            Ok(Flow::Drop) => Ok(Outcome::Drop),
            Err(f) => Err(f.err),
        }
    }

    /// Runs with a verbose trace (for `_simulate?verbose`): the outcome and one entry per
    /// processor run.
    pub(crate) fn execute_traced(
        &self,
        doc: &mut IngestDocument,
        lookup: &dyn PipelineLookup,
        budget: &Budget,
        verbose: bool,
    ) -> (Result<Outcome, EsError>, Vec<Value>, Map<String, Value>) {
        let mut ctx = Ctx::new(doc, budget, verbose);
        let r = run_pipeline(self, &mut ctx, lookup);
        let trace = ctx.trace.take().unwrap_or_default();
        let meta = ctx.meta.clone();
        let r = match r {
            Ok(Flow::Continue) => Ok(Outcome::Keep),
            Ok(Flow::Drop) => Ok(Outcome::Drop),
            Err(f) => Err(f.err),
        };
        (r, trace, meta)
    }
}

const FAILURE_KEYS: [&str; 4] = [
    "on_failure_message",
    "on_failure_processor_type",
    "on_failure_processor_tag",
    "on_failure_pipeline",
];

/// Runs `handlers` with the `_ingest.on_failure_*` metadata of `f`, then restores it.
fn run_handlers(
    handlers: &[ProcNode],
    f: &Failure,
    ctx: &mut Ctx<'_>,
    lookup: &dyn PipelineLookup,
) -> Result<Flow, Failure> {
    let saved: Vec<Option<Value>> = FAILURE_KEYS
        .iter()
        .map(|k| ctx.meta.get(*k).cloned())
        .collect();
    let vals = [
        Some(Value::String(f.err.reason.clone())),
        f.processor_type.clone().map(Value::String),
        f.tag.clone().map(Value::String),
        f.pipeline.clone().map(Value::String),
    ];
    for (k, v) in FAILURE_KEYS.iter().zip(vals) {
        match v {
            Some(v) => {
                ctx.meta.insert((*k).to_string(), v);
            }
            None => {
                ctx.meta.shift_remove(*k);
            }
        }
    }
    let r = run_list(handlers, ctx, lookup);
    for (k, v) in FAILURE_KEYS.iter().zip(saved) {
        match v {
            Some(v) => {
                ctx.meta.insert((*k).to_string(), v);
            }
            None => {
                ctx.meta.shift_remove(*k);
            }
        }
    }
    r
}

pub(crate) fn run_pipeline(
    p: &Pipeline,
    ctx: &mut Ctx<'_>,
    lookup: &dyn PipelineLookup,
) -> Result<Flow, Failure> {
    if ctx.stack.iter().any(|id| id == &p.id) {
        let mut f = Failure::new(
            EsError::new(
                400,
                "graph_structure_exception",
                format!("Cycle detected for pipeline: {}", p.id),
            ),
            false,
        );
        f.pipeline = Some(p.id.clone());
        return Err(f);
    }
    ctx.stack.push(p.id.clone());
    let prev = ctx
        .meta
        .insert("pipeline".into(), Value::String(p.id.clone()));
    let mut r = run_list(&p.processors, ctx, lookup);
    if let Err(f) = &r {
        if !f.fatal && !p.on_failure.is_empty() {
            let f = Failure {
                err: f.err.clone(),
                processor_type: f.processor_type.clone(),
                tag: f.tag.clone(),
                pipeline: f.pipeline.clone().or_else(|| Some(p.id.clone())),
                fatal: false,
            };
            r = run_handlers(&p.on_failure, &f, ctx, lookup);
        }
    }
    match prev {
        Some(v) => {
            ctx.meta.insert("pipeline".into(), v);
        }
        None => {
            ctx.meta.shift_remove("pipeline");
        }
    }
    ctx.stack.pop();
    r
}

fn run_list(
    list: &[ProcNode],
    ctx: &mut Ctx<'_>,
    lookup: &dyn PipelineLookup,
) -> Result<Flow, Failure> {
    for node in list {
        if run_node(node, ctx, lookup)? == Flow::Drop {
            return Ok(Flow::Drop);
        }
    }
    Ok(Flow::Continue)
}

/// A `_simulate` verbose snapshot of the document.
fn snapshot(ctx: &Ctx<'_>) -> Value {
    crate::simulate::doc_json(ctx.doc, &ctx.ingest_object())
}

fn trace_entry(node: &ProcNode, status: &str, cond: Option<(&str, bool)>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("processor_type".into(), Value::String(node.ty.clone()));
    m.insert("status".into(), Value::String(status.into()));
    if let Some(d) = &node.description {
        m.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(t) = &node.tag {
        m.insert("tag".into(), Value::String(t.clone()));
    }
    if let Some((c, r)) = cond {
        m.insert(
            "if".into(),
            serde_json::json!({ "condition": c, "result": r }),
        );
    }
    m
}

fn push_trace(ctx: &mut Ctx<'_>, entry: Map<String, Value>) {
    if let Some(t) = ctx.trace.as_mut() {
        t.push(Value::Object(entry));
    }
}

fn run_node(
    node: &ProcNode,
    ctx: &mut Ctx<'_>,
    lookup: &dyn PipelineLookup,
) -> Result<Flow, Failure> {
    let what = match &node.tag {
        Some(t) => format!("processor [{}] with tag [{t}]", node.ty),
        None => format!("processor [{}]", node.ty),
    };
    if let Err(e) = ctx.check_budget(&what) {
        return Err(Failure::new(e, true));
    }
    let tracing = ctx.trace.is_some();
    let mut cond_info: Option<(&str, bool)> = None;
    let result: Result<Flow, Failure> = 'run: {
        if let Some(c) = &node.cond {
            match c.eval(ctx) {
                Ok(true) => cond_info = Some((c.source(), true)),
                Ok(false) => {
                    if tracing {
                        let e = trace_entry(node, "skipped", Some((c.source(), false)));
                        push_trace(ctx, e);
                    }
                    return Ok(Flow::Continue);
                }
                Err(e) => break 'run Err(Failure::new(e, false)),
            }
        }
        match &node.kind {
            Kind::Pipeline {
                name,
                ignore_missing_pipeline,
            } => {
                let n = name.render(ctx);
                match lookup.get(&n) {
                    Some(p) => {
                        if tracing {
                            let e = trace_entry(node, "success", cond_info);
                            push_trace(ctx, e);
                        }
                        let p: Arc<crate::Pipeline> = p;
                        match run_pipeline(&p, ctx, lookup) {
                            Ok(f) => return Ok(f),
                            Err(f) => break 'run Err(f),
                        }
                    }
                    None if *ignore_missing_pipeline => Ok(Flow::Continue),
                    None => Err(Failure::new(
                        EsError::new(
                            500,
                            "illegal_state_exception",
                            format!(
                                "Pipeline processor configured for non-existent pipeline [{n}]"
                            ),
                        ),
                        false,
                    )),
                }
            }
            Kind::Foreach {
                field,
                processor,
                ignore_missing,
            } => run_foreach(field, processor, *ignore_missing, ctx, lookup),
            k => k.run(ctx).map_err(|e| {
                let fatal = ctx.budget_exceeded;
                Failure::new(e, fatal)
            }),
        }
    };
    match result {
        Ok(flow) => {
            if tracing {
                let status = if flow == Flow::Drop {
                    "dropped"
                } else {
                    "success"
                };
                let mut e = trace_entry(node, status, cond_info);
                if flow == Flow::Continue {
                    e.insert("doc".into(), snapshot(ctx));
                }
                push_trace(ctx, e);
            }
            Ok(flow)
        }
        Err(mut f) => {
            if f.processor_type.is_none() {
                f.processor_type = Some(node.ty.clone());
                f.tag = node.tag.clone();
                f.pipeline = ctx.stack.last().cloned();
            }
            if f.fatal || ctx.budget_exceeded {
                f.fatal = true;
                return Err(f);
            }
            if node.ignore_failure {
                if tracing {
                    let mut e = trace_entry(node, "error_ignored", cond_info);
                    e.insert("ignored_error".into(), crate::simulate::error_body(&f.err));
                    e.insert("doc".into(), snapshot(ctx));
                    push_trace(ctx, e);
                }
                return Ok(Flow::Continue);
            }
            if tracing {
                let mut e = trace_entry(node, "error", cond_info);
                e.insert("error".into(), crate::simulate::error_object(&f.err));
                push_trace(ctx, e);
            }
            if !node.on_failure.is_empty() {
                return run_handlers(&node.on_failure, &f, ctx, lookup);
            }
            Err(f)
        }
    }
}

/// `foreach`: runs `inner` once per element (or map entry) with `_ingest._value` (and
/// `_ingest._key`) set, writing back what the processor left there.
fn run_foreach(
    field: &str,
    inner: &ProcNode,
    ignore_missing: bool,
    ctx: &mut Ctx<'_>,
    lookup: &dyn PipelineLookup,
) -> Result<Flow, Failure> {
    let plain = |e: EsError| Failure::new(e, false);
    let value = if ignore_missing {
        match ctx.get_opt(field) {
            None | Some(Value::Null) => return Ok(Flow::Continue),
            Some(v) => v,
        }
    } else {
        let v = ctx.get(field).map_err(plain)?;
        if v.is_null() {
            return Err(plain(EsError::illegal_argument(format!(
                "field [{field}] is null, cannot loop over its elements."
            ))));
        }
        v
    };
    let saved_value = ctx.meta.get("_value").cloned();
    let saved_key = ctx.meta.get("_key").cloned();
    let restore = |ctx: &mut Ctx<'_>| {
        for (k, v) in [("_value", &saved_value), ("_key", &saved_key)] {
            match v {
                Some(v) => {
                    ctx.meta.insert(k.into(), v.clone());
                }
                None => {
                    ctx.meta.shift_remove(k);
                }
            }
        }
    };
    let result: Result<Option<Value>, Failure> = (|| match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                ctx.check_budget("processor [foreach]")
                    .map_err(|e| Failure::new(e, true))?;
                ctx.meta.insert("_value".into(), item);
                if run_node(inner, ctx, lookup)? == Flow::Drop {
                    return Ok(None);
                }
                out.push(ctx.meta.get("_value").cloned().unwrap_or(Value::Null));
            }
            Ok(Some(Value::Array(out)))
        }
        Value::Object(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                ctx.check_budget("processor [foreach]")
                    .map_err(|e| Failure::new(e, true))?;
                ctx.meta.insert("_key".into(), Value::String(k.clone()));
                ctx.meta.insert("_value".into(), v);
                if run_node(inner, ctx, lookup)? == Flow::Drop {
                    return Ok(None);
                }
                let key = match ctx.meta.get("_key") {
                    Some(Value::String(s)) => s.clone(),
                    _ => k,
                };
                out.insert(key, ctx.meta.get("_value").cloned().unwrap_or(Value::Null));
            }
            Ok(Some(Value::Object(out)))
        }
        other => Err(plain(EsError::illegal_argument(format!(
            "field [{field}] of type [{}] cannot be cast to a list or map",
            java_type(&other)
        )))),
    })();
    restore(ctx);
    match result? {
        None => Ok(Flow::Drop),
        Some(v) => {
            ctx.set(field, v).map_err(plain)?;
            Ok(Flow::Continue)
        }
    }
}
