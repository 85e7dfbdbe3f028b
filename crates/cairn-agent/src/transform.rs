//! Transforms: `parse`, `multiline`, `add_fields`, `rename`, `filter` and `drop`.
//!
//! Stateful transforms (`parse` for CRI/Docker partial lines, `multiline`) keep state
//! per stream and report the first byte offset they still hold ([`Transform::pending_start`])
//! so the source's checkpoint never passes data that has not reached a sink yet.

use std::collections::HashMap;

use cairn_formats::{
    Format, LineOutcome, LineParser, MultilineConfig, MultilineJoiner, MultilineRule, ParseOptions,
    SkipReason,
};
use cairn_query::{kql, EvalContext, Limits, Matcher};
use serde_json::Value;

use crate::config::TransformConfig;
use crate::{get_path, now_millis, set_path, take_path, Event};

/// A transform instance (each source thread owns its own instances).
#[derive(Debug)]
pub enum Transform {
    Parse(Parse),
    Multiline(Multiline),
    AddFields(Vec<(String, Value)>),
    Rename(Vec<(String, String)>),
    /// Keep events matching (`filter`), or drop them (`drop`: `keep_matching` false).
    Condition {
        matcher: Box<Matcher>,
        keep_matching: bool,
    },
}

#[derive(Debug)]
pub struct Parse {
    format: Format,
    field: String,
    keep_original: bool,
    parsers: HashMap<u64, LineParser>,
    /// The first piece of a CRI/Docker line still waiting for its final piece: the
    /// joined event takes its offset and id.
    pending: HashMap<u64, Event>,
}

#[derive(Debug)]
pub struct Multiline {
    cfg: MultilineConfig,
    field: String,
    streams: HashMap<u64, (MultilineJoiner, Option<Event>)>,
}

impl Transform {
    /// Builds a transform; errors are for the config validator.
    pub fn build(_name: &str, cfg: &TransformConfig) -> Result<Transform, String> {
        Ok(match cfg {
            TransformConfig::Parse(c) => {
                let format: Format = c
                    .format
                    .parse()
                    .map_err(|e: cairn_formats::FormatError| format!("format: {e}"))?;
                Transform::Parse(Parse {
                    format,
                    field: c.field.clone(),
                    keep_original: c.keep_original,
                    parsers: HashMap::new(),
                    pending: HashMap::new(),
                })
            }
            TransformConfig::Multiline(c) => {
                let rule = match c.rule.as_str() {
                    "java" => MultilineRule::Java,
                    "python" => MultilineRule::Python,
                    "go" => MultilineRule::Go,
                    "ruby" => MultilineRule::Ruby,
                    "node" => MultilineRule::Node,
                    "custom" => {
                        MultilineRule::custom(c.start.as_deref(), c.continuation.as_deref())
                            .map_err(|e| e.to_string())?
                    }
                    other => {
                        return Err(format!(
                            "rule: unknown rule `{other}` (java, python, go, ruby, node, custom)"
                        ))
                    }
                };
                let mut cfg = MultilineConfig::new(rule);
                cfg.timeout_ms = c.timeout.as_millis() as u64;
                cfg.max_lines = c.max_lines.max(1);
                Transform::Multiline(Multiline {
                    cfg,
                    field: c.field.clone(),
                    streams: HashMap::new(),
                })
            }
            TransformConfig::AddFields(c) => Transform::AddFields(
                c.fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            TransformConfig::Rename(c) => Transform::Rename(
                c.fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            TransformConfig::Filter(c) | TransformConfig::Drop(c) => {
                let q = kql::parse(&c.condition, &Default::default(), &Limits::default())
                    .map_err(|e| format!("condition: {e}"))?;
                let matcher = Matcher::new(q).map_err(|e| format!("condition: {e}"))?;
                Transform::Condition {
                    matcher: Box::new(matcher),
                    keep_matching: matches!(cfg, TransformConfig::Filter(_)),
                }
            }
        })
    }

    /// Processes one event, appending what comes out to `out`.
    pub fn process(&mut self, mut ev: Event, out: &mut Vec<Event>) {
        match self {
            Transform::Parse(p) => p.process(ev, out),
            Transform::Multiline(m) => m.process(ev, out),
            Transform::AddFields(fields) => {
                for (k, v) in fields.iter() {
                    set_path(&mut ev.fields, k, v.clone());
                }
                out.push(ev);
            }
            Transform::Rename(pairs) => {
                for (from, to) in pairs.iter() {
                    if let Some(v) = take_path(&mut ev.fields, from) {
                        set_path(&mut ev.fields, to, v);
                    }
                }
                out.push(ev);
            }
            Transform::Condition {
                matcher,
                keep_matching,
            } => {
                let doc = Value::Object(std::mem::take(&mut ev.fields));
                let ctx = EvalContext::new(now_millis() as i64);
                // A condition that cannot be evaluated on this event keeps it: losing
                // data silently is worse than shipping one event too many.
                let hit = matcher.matches(&doc, &ctx).unwrap_or(!*keep_matching);
                if let Value::Object(m) = doc {
                    ev.fields = m;
                }
                if hit == *keep_matching {
                    out.push(ev);
                }
            }
        }
    }

    /// Emits what timed out (multiline).
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        if let Transform::Multiline(m) = self {
            for (joiner, head) in m.streams.values_mut() {
                if let Some(text) = joiner.flush_expired(now_ms) {
                    if let Some(mut h) = head.take() {
                        set_path(&mut h.fields, &m.field, Value::String(text));
                        out.push(h);
                    }
                }
            }
        }
    }

    /// The stream ended (file released): emit what is held for it.
    pub fn end_stream(&mut self, stream: u64, out: &mut Vec<Event>) {
        match self {
            Transform::Multiline(m) => {
                if let Some((mut joiner, head)) = m.streams.remove(&stream) {
                    if let (Some(text), Some(mut h)) = (joiner.flush(), head) {
                        set_path(&mut h.fields, &m.field, Value::String(text));
                        out.push(h);
                    }
                }
            }
            Transform::Parse(p) => {
                if let Some(mut parser) = p.parsers.remove(&stream) {
                    let head = p.pending.remove(&stream);
                    for (i, parsed) in parser.finish().into_iter().enumerate() {
                        if let Some(h) = &head {
                            let mut ev = h.clone();
                            if i > 0 {
                                ev.id = format!("{}-{i}", h.id);
                            }
                            merge(&mut ev, parsed);
                            out.push(ev);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The first byte offset of `stream` this transform still holds.
    pub fn pending_start(&self, stream: u64) -> Option<u64> {
        match self {
            Transform::Multiline(m) => m
                .streams
                .get(&stream)
                .and_then(|(_, h)| h.as_ref())
                .map(|h| h.start),
            Transform::Parse(p) => p.pending.get(&stream).map(|h| h.start),
            _ => None,
        }
    }
}

/// Overlays parsed fields on the event (parsed values win; the read-time
/// `@timestamp` stays only when the line had none).
fn merge(ev: &mut Event, parsed: serde_json::Map<String, Value>) {
    for (k, v) in parsed {
        ev.fields.insert(k, v);
    }
}

impl Parse {
    fn process(&mut self, mut ev: Event, out: &mut Vec<Event>) {
        let text = match get_path(&ev.fields, &self.field) {
            Some(Value::String(s)) => s.clone(),
            _ => {
                out.push(ev);
                return;
            }
        };
        let opts = ParseOptions {
            keep_original: self.keep_original,
            reference_time: Some((now_millis() / 1000) as i64),
            ..Default::default()
        };
        let format = self.format;
        let parser = self
            .parsers
            .entry(ev.stream)
            .or_insert_with(|| LineParser::new(format, opts));
        match parser.parse_line(text.as_bytes()) {
            LineOutcome::Event(parsed) => {
                if let Some(head) = self.pending.remove(&ev.stream) {
                    ev.id = head.id;
                    ev.start = head.start;
                }
                if parsed.contains_key("message") || self.field != "message" {
                    let _ = take_path(&mut ev.fields, &self.field);
                }
                merge(&mut ev, parsed);
                out.push(ev);
            }
            LineOutcome::Events(list) => {
                for (i, parsed) in list.into_iter().enumerate() {
                    let mut e = ev.clone();
                    e.id = format!("{}-{i}", ev.id);
                    let _ = take_path(&mut e.fields, &self.field);
                    merge(&mut e, parsed);
                    out.push(e);
                }
            }
            LineOutcome::Skipped(SkipReason::Partial) => {
                self.pending.entry(ev.stream).or_insert(ev);
            }
            LineOutcome::Skipped(_) => {}
        }
    }
}

impl Multiline {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>) {
        let Some(Value::String(text)) = get_path(&ev.fields, &self.field) else {
            out.push(ev);
            return;
        };
        let text = text.clone();
        let cfg = &self.cfg;
        let (joiner, head) = self
            .streams
            .entry(ev.stream)
            .or_insert_with(|| (MultilineJoiner::new(cfg.clone()), None));
        for joined in joiner.push(&text, now_millis()) {
            if let Some(mut h) = head.take() {
                set_path(&mut h.fields, &self.field, Value::String(joined));
                out.push(h);
            }
        }
        if head.is_none() {
            *head = Some(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn line(stream: u64, start: u64, text: &str) -> Event {
        let mut fields = serde_json::Map::new();
        fields.insert("message".into(), json!(text));
        Event {
            fields,
            stream,
            start,
            id: format!("id{start}"),
        }
    }

    fn build(yaml: &str) -> Transform {
        let cfg = Config::from_yaml(&format!(
            "data_dir: /tmp\nsources: {{s: {{type: stdin}}}}\ntransforms:\n  t: {yaml}\nsinks: {{o: {{type: stdout, inputs: [t]}}}}\n"
        ))
        .expect("config");
        Transform::build("t", &cfg.transforms["t"]).expect("build")
    }

    #[test]
    fn multiline_java_holds_checkpoint() {
        let mut t = build("{type: multiline, inputs: [s], rule: java}");
        let mut out = Vec::new();
        t.process(
            line(
                1,
                0,
                "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            ),
            &mut out,
        );
        t.process(
            line(1, 60, "\tat com.example.Main.run(Main.java:10)"),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(t.pending_start(1), Some(0));
        t.process(line(1, 100, "next event"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "id0");
        assert!(out[0].fields["message"]
            .as_str()
            .unwrap_or("")
            .contains("Main.java:10"));
        assert_eq!(t.pending_start(1), Some(100));
    }

    #[test]
    fn cri_partial_lines_join_with_first_offset() {
        let mut t = build("{type: parse, inputs: [s], format: cri}");
        let mut out = Vec::new();
        t.process(
            line(3, 0, "2024-01-01T00:00:00.000000001Z stdout P hello "),
            &mut out,
        );
        assert_eq!(t.pending_start(3), Some(0));
        t.process(
            line(3, 50, "2024-01-01T00:00:00.000000002Z stdout F world"),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "id0");
        assert_eq!(out[0].fields["message"], json!("hello world"));
        assert_eq!(t.pending_start(3), None);
    }

    #[test]
    fn filter_and_drop() {
        let mut f = build("{type: filter, inputs: [s], condition: 'message:keep'}");
        let mut d = build("{type: drop, inputs: [s], condition: 'message:keep'}");
        let mut out = Vec::new();
        f.process(line(1, 0, "keep me"), &mut out);
        f.process(line(1, 1, "other"), &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        d.process(line(1, 0, "keep me"), &mut out);
        d.process(line(1, 1, "other"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].fields["message"], json!("other"));
    }

    #[test]
    fn add_and_rename() {
        let mut a = build("{type: add_fields, inputs: [s], fields: {service.name: api}}");
        let mut r = build("{type: rename, inputs: [s], fields: {service.name: service.id}}");
        let mut out = Vec::new();
        a.process(line(1, 0, "x"), &mut out);
        let ev = out.pop().expect("event");
        r.process(ev, &mut out);
        assert_eq!(out[0].fields["service"], json!({"id": "api"}));
    }
}
