//! Built-in pipelines: one per `cairn-formats` format, parsing `message` with that
//! format's line parser and merging the ECS fields into the document.

use cairn_core::error::EsError;
use cairn_formats::{is_failure, Format, LineOutcome, LineParser, ParseOptions};
use serde_json::{Map, Value};

use crate::doc::Ctx;

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Parses `message` with `format` and merges the result (parsed fields win). A document
/// without a string `message` is left as it is; a line the parser skips (blank, header)
/// too. A `_parse_failure` keeps the document and adds `error.message` and the tag.
pub(crate) fn apply(format: Format, ctx: &mut Ctx<'_>) -> Result<(), EsError> {
    let Some(Value::String(msg)) = ctx.doc.source.get("message") else {
        return Ok(());
    };
    let opts = ParseOptions {
        reference_time: Some(ctx.doc.ingest_timestamp.div_euclid(1000)),
        ..ParseOptions::default()
    };
    let mut parser = LineParser::new(format, opts);
    let mut events = match parser.parse_line(msg.as_bytes()) {
        LineOutcome::Event(e) => vec![e],
        LineOutcome::Events(v) => v,
        LineOutcome::Skipped(_) => Vec::new(),
    };
    events.extend(parser.finish());
    let Some(event) = events.into_iter().next() else {
        return Ok(());
    };
    if is_failure(&event) {
        let reason = event
            .get("error")
            .and_then(|e| e.get("message"))
            .cloned()
            .unwrap_or_else(|| Value::String(format!("{format}: parse failure")));
        ctx.set("error.message", reason)?;
        let already = matches!(ctx.doc.source.get("tags"), Some(Value::Array(t)) if t.iter().any(|v| v == "_parse_failure"));
        if !already {
            ctx.append("tags", vec![Value::String("_parse_failure".into())], true)?;
        }
        return Ok(());
    }
    merge(&mut ctx.doc.source, event);
    Ok(())
}
