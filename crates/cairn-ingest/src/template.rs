//! Mustache-style `{{field}}` / `{{{field}}}` snippets, as Elasticsearch's ingest
//! processors accept them in `value`, `field`, `message`, `timezone`, ... (rendered as
//! plain text, no HTML escaping).

use serde_json::Value;

use crate::doc::Ctx;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A compiled template. A string without `{{` is a constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

impl Template {
    /// Compiles a template; `Err` names the problem (unclosed tag, sections).
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut lit = String::new();
        while let Some(pos) = rest.find("{{") {
            lit.push_str(&rest[..pos]);
            let after = &rest[pos..];
            let (open, close) = if after.starts_with("{{{") {
                ("{{{", "}}}")
            } else {
                ("{{", "}}")
            };
            let inner_start = &after[open.len()..];
            let end = match inner_start.find(close) {
                Some(e) => e,
                None => return Err(format!("unclosed mustache tag in template [{s}]")),
            };
            let name = inner_start[..end].trim();
            if let Some(c) = name.chars().next() {
                if matches!(c, '#' | '^' | '/' | '>' | '!' | '=' | '&') {
                    if c == '!' {
                        rest = &inner_start[end + close.len()..];
                        continue;
                    }
                    return Err(format!(
                        "mustache tag [{{{{{name}}}}}] is not supported: cairn templates support {{{{field}}}} and {{{{{{field}}}}}} only"
                    ));
                }
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &inner_start[end + close.len()..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts,
            source: s.to_string(),
        })
    }

    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    pub(crate) fn render(&self, ctx: &Ctx<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(path) => {
                    if path == "." {
                        continue;
                    }
                    if let Some(v) = ctx.get_opt(path) {
                        push_value(&mut out, &v);
                    }
                }
            }
        }
        out
    }
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

/// A configured value whose strings are templates (set/append `value`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueTemplate {
    Str(Template),
    List(Vec<ValueTemplate>),
    Map(Vec<(String, ValueTemplate)>),
    Plain(Value),
}

impl ValueTemplate {
    pub fn parse(v: &Value) -> Result<ValueTemplate, String> {
        Ok(match v {
            Value::String(s) => ValueTemplate::Str(Template::parse(s)?),
            Value::Array(a) => ValueTemplate::List(
                a.iter()
                    .map(ValueTemplate::parse)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => ValueTemplate::Map(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), ValueTemplate::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => ValueTemplate::Plain(other.clone()),
        })
    }

    pub fn render(&self, ctx: &Ctx<'_>) -> Value {
        match self {
            ValueTemplate::Str(t) => Value::String(t.render(ctx)),
            ValueTemplate::List(l) => Value::Array(l.iter().map(|t| t.render(ctx)).collect()),
            ValueTemplate::Map(m) => {
                Value::Object(m.iter().map(|(k, t)| (k.clone(), t.render(ctx))).collect())
            }
            ValueTemplate::Plain(v) => v.clone(),
        }
    }
}
