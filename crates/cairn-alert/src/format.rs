//! Alert subjects and bodies, formatted as ElastAlert formats them: Python `str.format`
//! for `alert_text`/`alert_subject` with `*_args` and `alert_text_kw`, Jinja for
//! `alert_text_type: alert_text_jinja` (MiniJinja), the rule type's paragraph, top
//! counts, then every field of the match sorted by name, and a summary table for
//! aggregated alerts.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::{AlertTextType, Rule};
use crate::ruletypes::{Match, RuleType};
use crate::value::{lookup, py_str};

pub const MISSING: &str = "<MISSING VALUE>";

/// Python `str.format` with positional and keyword arguments. Supports `{}`, `{0}`,
/// `{name}`, `{{`/`}}`, and the `.Nf`, `d` and `,` format specs; other specs are ignored.
pub fn py_format(template: &str, args: &[Value], kwargs: &BTreeMap<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let mut auto = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    field.push(c);
                }
                if !closed {
                    out.push('{');
                    out.push_str(&field);
                    break;
                }
                let (name, spec) = match field.split_once(':') {
                    Some((n, s)) => (n, Some(s)),
                    None => (field.as_str(), None),
                };
                let name = name.split_once('!').map_or(name, |(n, _)| n);
                let v = if name.is_empty() {
                    let v = args.get(auto);
                    auto += 1;
                    v
                } else if let Ok(i) = name.parse::<usize>() {
                    args.get(i)
                } else {
                    kwargs.get(name)
                };
                match v {
                    Some(v) => out.push_str(&apply_spec(v, spec)),
                    None => out.push_str(MISSING),
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn apply_spec(v: &Value, spec: Option<&str>) -> String {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return py_str(v);
    };
    let f = v.as_f64();
    if let (Some(prec), Some(f)) = (
        spec.strip_suffix('f')
            .and_then(|s| s.trim_start_matches(',').strip_prefix('.'))
            .and_then(|p| p.parse::<usize>().ok()),
        f,
    ) {
        return format!("{f:.prec$}");
    }
    if spec == "d" {
        if let Some(f) = f {
            return format!("{}", f as i64);
        }
    }
    if spec == "," {
        if let Some(i) = v.as_i64() {
            let s = i.abs().to_string();
            let mut grouped = String::new();
            for (n, ch) in s.chars().enumerate() {
                if n > 0 && (s.len() - n) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(ch);
            }
            return if i < 0 {
                format!("-{grouped}")
            } else {
                grouped
            };
        }
    }
    py_str(v)
}

/// Python `%`-formatting with a mapping (`%(field)s`), used by the command alerter.
pub fn percent_format(template: &str, doc: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('%') {
            out.push('%');
            rest = a;
        } else if let Some(a) = after.strip_prefix('(') {
            match a.find(')') {
                Some(j) => {
                    let key = &a[..j];
                    let tail = &a[j + 1..];
                    let conv_len = tail.chars().next().map_or(0, char::len_utf8);
                    out.push_str(
                        &lookup(doc, key)
                            .map(py_str)
                            .unwrap_or_else(|| MISSING.into()),
                    );
                    rest = &tail[conv_len..];
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            }
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Validates a Jinja template (at rule load time, so a typo names `alert_text`).
pub fn check_jinja(text: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn render_jinja(text: &str, m: &Match, rule: &Rule) -> String {
    let env = minijinja::Environment::new();
    let mut ctx = m.doc.clone();
    ctx.insert("_data".into(), Value::Object(m.doc.clone()));
    ctx.insert("rule".into(), Value::Object(rule.raw.clone()));
    match env.render_str(text, Value::Object(ctx)) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(rule = %rule.name, error = %e, "alert_text jinja template failed");
            text.to_string()
        }
    }
}

/// ElastAlert's argument lookup: the match first, then the rule, else `<MISSING VALUE>`.
fn arg_values(rule: &Rule, m: &Match, args: &[String]) -> Vec<Value> {
    args.iter()
        .map(|a| {
            lookup(&m.doc, a)
                .filter(|v| !v.is_null())
                .cloned()
                .or_else(|| {
                    rule.raw
                        .get(a)
                        .filter(|v| crate::value::truthy(Some(v)))
                        .cloned()
                })
                .unwrap_or_else(|| Value::String(MISSING.into()))
        })
        .collect()
}

/// The query_key value of a match as a string (`a, b` for compound keys).
pub fn query_key_value(rule: &Rule, m: &Match) -> Option<String> {
    let name = rule.query_key_name()?;
    match lookup(&m.doc, &name) {
        Some(Value::Null) | None => {
            if rule.query_key.len() > 1 {
                let parts: Vec<String> = rule
                    .query_key
                    .iter()
                    .map(|k| {
                        lookup(&m.doc, k)
                            .map(py_str)
                            .unwrap_or_else(|| "None".into())
                    })
                    .collect();
                Some(parts.join(", "))
            } else {
                None
            }
        }
        Some(v) => Some(py_str(v)),
    }
}

pub fn subject(rule: &Rule, m: &Match) -> String {
    let mut s = match &rule.alert_subject {
        Some(t) => {
            let args = arg_values(rule, m, &rule.alert_subject_args);
            py_format(t, &args, &BTreeMap::new())
        }
        None => {
            let mut s = format!("ElastAlert: {}", rule.name);
            if let Some(qk) = query_key_value(rule, m) {
                s.push_str(&format!(" - {qk}"));
            }
            s
        }
    };
    if let Some(max) = rule
        .raw
        .get("alert_subject_max_len")
        .and_then(Value::as_u64)
    {
        if s.chars().count() > max as usize {
            s = s.chars().take(max as usize).collect();
        }
    }
    s
}

fn ensure_blank_line(s: &mut String) {
    if s.is_empty() {
        return;
    }
    while !s.ends_with("\n\n") {
        s.push('\n');
    }
}

/// Python's `json.dumps(v, sort_keys=True, indent=4, ensure_ascii=False)`.
fn pretty_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&o[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(&sorted(v), &mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// One match's text (ElastAlert's `BasicMatchString`).
pub fn match_body(rule: &Rule, rt: &dyn RuleType, m: &Match) -> String {
    let mut text = String::new();
    if rule.alert_text.is_none() {
        text.push_str(&rule.name);
        text.push_str("\n\n");
    }
    if let Some(t) = &rule.alert_text {
        let custom = if rule.alert_text_type == AlertTextType::Jinja {
            render_jinja(t, m, rule)
        } else if !rule.alert_text_kw.is_empty() {
            let kw: BTreeMap<String, Value> = rule
                .alert_text_kw
                .iter()
                .map(|(field, name)| {
                    let v = arg_values(rule, m, std::slice::from_ref(field))
                        .pop()
                        .unwrap_or(Value::Null);
                    (name.clone(), v)
                })
                .collect();
            py_format(t, &[], &kw)
        } else if !rule.alert_text_args.is_empty() {
            py_format(
                t,
                &arg_values(rule, m, &rule.alert_text_args),
                &BTreeMap::new(),
            )
        } else {
            t.clone()
        };
        text.push_str(&custom);
    }
    ensure_blank_line(&mut text);
    if matches!(
        rule.alert_text_type,
        AlertTextType::AlertTextOnly | AlertTextType::Jinja
    ) {
        return text;
    }
    text.push_str(&rt.match_str(m));
    ensure_blank_line(&mut text);
    let mut keys: Vec<&String> = m.doc.keys().collect();
    keys.sort();
    for k in &keys {
        if let (Some(field), Some(Value::Object(counts))) =
            (k.strip_prefix("top_events_"), m.doc.get(*k))
        {
            text.push_str(&format!("{field}:\n"));
            if counts.is_empty() {
                text.push_str("No events found.\n");
            }
            let mut items: Vec<(&String, &Value)> = counts.iter().collect();
            items.sort_by(|a, b| {
                b.1.as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&a.1.as_f64().unwrap_or(0.0))
            });
            for (term, n) in items {
                text.push_str(&format!("{term}: {}\n", py_str(n)));
            }
            text.push('\n');
        }
    }
    if rule.alert_text_type != AlertTextType::ExcludeFields {
        for k in keys {
            if k.starts_with("top_events_") {
                continue;
            }
            let v = &m.doc[k];
            let vs = match v {
                Value::Array(_) | Value::Object(_) => pretty_json(v),
                other => py_str(other),
            };
            text.push_str(&format!("{k}: {vs}\n"));
        }
    }
    text
}

/// The summary table of an aggregated alert (ElastAlert's ascii table).
pub fn summary_table(rule: &Rule, matches: &[Match]) -> String {
    if rule.summary_table_fields.is_empty() || rule.aggregation.is_none() {
        return String::new();
    }
    let mut text = rule
        .raw
        .get("summary_prefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut header: Vec<String> = rule.summary_table_fields.clone();
    header.push("count".into());
    text.push_str(&format!(
        "Aggregation resulted in the following data for summary_table_fields ==> [{}]:\n\n",
        header
            .iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Rows in first-seen order, like a Python dict.
    let mut rows: Vec<(Vec<String>, u64)> = Vec::new();
    for m in matches {
        let key: Vec<String> = rule
            .summary_table_fields
            .iter()
            .map(|f| {
                lookup(&m.doc, f)
                    .map(py_str)
                    .unwrap_or_else(|| "None".into())
            })
            .collect();
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some(r) => r.1 += 1,
            None => rows.push((key, 1)),
        }
    }
    let table_rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(mut k, n)| {
            k.push(n.to_string());
            k
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            table_rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(header[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: char| {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&c.to_string().repeat(w + 2));
            s.push('+');
        }
        s
    };
    let row = |cells: &[String]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!(" {c:<w$} |"));
        }
        s
    };
    let mut table = vec![line('-'), row(&header), line('=')];
    for r in &table_rows {
        table.push(row(r));
        table.push(line('-'));
    }
    text.push_str(&table.join("\n"));
    text.push_str("\n\n");
    text.push_str(
        rule.raw
            .get("summary_suffix")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    text
}

/// The body of an alert for one or more (aggregated) matches.
pub fn alert_body(rule: &Rule, rt: &dyn RuleType, matches: &[Match]) -> String {
    let mut body = summary_table(rule, matches);
    if rule.alert_text_type != AlertTextType::AggregationSummaryOnly || body.is_empty() {
        for m in matches {
            body.push_str(&match_body(rule, rt, m));
            if matches.len() > 1 {
                body.push_str("\n----------------------------------------\n");
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_format() {
        let args = vec![json!("web-1"), json!(12.3456), json!(1234567)];
        assert_eq!(
            py_format(
                "{} on {0}: {1:.2f} {2:,} {{x}} {9}",
                &args,
                &BTreeMap::new()
            ),
            "web-1 on web-1: 12.35 1,234,567 {x} <MISSING VALUE>"
        );
        let mut kw = BTreeMap::new();
        kw.insert("host".to_string(), json!("db"));
        assert_eq!(
            py_format("host={host} {other}", &[], &kw),
            "host=db <MISSING VALUE>"
        );
    }

    #[test]
    fn percent() {
        let doc = json!({"a": {"b": 1}, "s": "x"});
        let doc = doc.as_object().unwrap();
        assert_eq!(
            percent_format("%(a.b)s-%(s)s-%%-%(nope)s", doc),
            "1-x-%-<MISSING VALUE>"
        );
    }
}
