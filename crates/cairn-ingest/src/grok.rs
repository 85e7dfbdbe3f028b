//! Grok: named pattern expansion over the Rust `regex` crate (linear time, so no pattern
//! can hang ingest). Oniguruma constructs are translated: `(?<name>..)` captures, atomic
//! groups `(?>..)` as `(?:..)`, possessive quantifiers as greedy ones. Look-around and
//! back-references have no linear-time equivalent: a pattern using them is rejected when
//! the pipeline is created. The stock library is logstash-patterns-core's legacy set
//! (see `patterns/NOTICE`); its few look-around definitions are replaced by
//! look-around-free equivalents ([`OVERRIDES`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

const GROK_PATTERNS: &str = include_str!("../patterns/grok-patterns");
const HTTPD_PATTERNS: &str = include_str!("../patterns/httpd");

/// Stock definitions rewritten without look-around (the originals use `(?<!..)`/`(?!..)`).
pub const OVERRIDES: &[(&str, &str)] = &[
    (
        "BASE10NUM",
        r"(?:[+-]?(?:(?:[0-9]+(?:\.[0-9]+)?)|(?:\.[0-9]+)))",
    ),
    ("BASE16NUM", r"(?:[+-]?(?:0x)?(?:[0-9A-Fa-f]+))"),
    (
        "BASE16FLOAT",
        r"\b(?:[+-]?(?:0x)?(?:(?:[0-9A-Fa-f]+(?:\.[0-9A-Fa-f]*)?)|(?:\.[0-9A-Fa-f]+)))\b",
    ),
    (
        "QUOTEDSTRING",
        r#"(?:"(?:\\.|[^\\"]+)+"|""|(?:'(?:\\.|[^\\']+)+')|''|(?:`(?:\\.|[^\\`]+)+`)|``)"#,
    ),
    (
        "IPV4",
        r"(?:(?:25[0-5]|2[0-4][0-9]|[0-1]?[0-9]{1,2})[.]){3}(?:25[0-5]|2[0-4][0-9]|[0-1]?[0-9]{1,2})",
    ),
    ("TIME", r"%{HOUR}:%{MINUTE}(?::%{SECOND})"),
];

/// The stock pattern bank (parsed once).
pub fn stock_patterns() -> &'static HashMap<String, String> {
    static BANK: OnceLock<HashMap<String, String>> = OnceLock::new();
    BANK.get_or_init(|| {
        let mut m = HashMap::new();
        for text in [GROK_PATTERNS, HTTPD_PATTERNS] {
            for line in text.lines() {
                let line = line.trim_end();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some((name, def)) = line.split_once(' ') {
                    m.insert(name.to_string(), def.trim_start().to_string());
                }
            }
        }
        for (k, v) in OVERRIDES {
            m.insert((*k).to_string(), (*v).to_string());
        }
        m
    })
}

/// Type conversion suffix of `%{NAME:field:type}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GrokType {
    Int,
    Long,
    Float,
    Double,
    Boolean,
    Str,
}

/// A compiled grok expression.
#[derive(Debug, Clone)]
pub struct Grok {
    regex: Regex,
    /// (regex group name, field, type)
    captures: Vec<(String, String, GrokType)>,
}

struct Compiler<'a> {
    custom: &'a HashMap<String, String>,
    stock: &'a HashMap<String, String>,
    captures: Vec<(String, String, GrokType)>,
}

fn is_quant_end(c: char) -> bool {
    matches!(c, '*' | '+' | '?' | '}')
}

impl Compiler<'_> {
    fn lookup(&self, name: &str) -> Option<&String> {
        self.custom.get(name).or_else(|| self.stock.get(name))
    }

    fn new_group(&mut self, field: &str, ty: GrokType) -> String {
        let g = format!("g{}", self.captures.len());
        self.captures.push((g.clone(), field.to_string(), ty));
        g
    }

    fn expand(&mut self, pat: &str, stack: &mut Vec<String>) -> Result<String, String> {
        let chars: Vec<char> = pat.chars().collect();
        let mut out = String::with_capacity(pat.len());
        let mut i = 0;
        let mut last_quant = false;
        while i < chars.len() {
            let c = chars[i];
            // %{NAME:field:type}
            if c == '%' && chars.get(i + 1) == Some(&'{') {
                let close = chars[i + 2..].iter().position(|&x| x == '}');
                if let Some(rel) = close {
                    let inner: String = chars[i + 2..i + 2 + rel].iter().collect();
                    let mut parts = inner.splitn(3, ':');
                    let name = parts.next().unwrap_or_default().to_string();
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if valid {
                        let field = parts.next().map(str::to_string);
                        let ty = match parts.next() {
                            None => GrokType::Str,
                            Some("int") => GrokType::Int,
                            Some("long") => GrokType::Long,
                            Some("float") => GrokType::Float,
                            Some("double") => GrokType::Double,
                            Some("boolean") => GrokType::Boolean,
                            Some("string") => GrokType::Str,
                            Some(other) => {
                                return Err(format!(
                                    "unsupported grok conversion type [{other}] in [%{{{inner}}}]"
                                ))
                            }
                        };
                        if stack.contains(&name) {
                            return Err(format!(
                                "circular reference in pattern [{}][{name}]",
                                stack.last().cloned().unwrap_or_default()
                            ));
                        }
                        if stack.len() > 64 {
                            return Err("grok patterns nest too deeply".into());
                        }
                        let def = match self.lookup(&name) {
                            Some(d) => d.clone(),
                            None => {
                                return Err(format!(
                                    "Unable to find pattern [{name}] in Grok's pattern dictionary"
                                ))
                            }
                        };
                        stack.push(name.clone());
                        let inner_re = self.expand(&def, stack)?;
                        stack.pop();
                        match field.filter(|f| !f.is_empty()) {
                            Some(f) => {
                                let g = self.new_group(&f, ty);
                                out.push_str(&format!("(?P<{g}>{inner_re})"));
                            }
                            None => out.push_str(&format!("(?:{inner_re})")),
                        }
                        i += 3 + rel;
                        last_quant = false;
                        continue;
                    }
                }
            }
            match c {
                '\\' => {
                    let n = match chars.get(i + 1) {
                        Some(n) => *n,
                        None => return Err("pattern ends with a lone backslash".into()),
                    };
                    match n {
                        '1'..='9' => {
                            return Err(format!(
                                "back-reference \\{n} is not supported (cairn runs grok on a linear-time regex engine); rewrite the pattern without it"
                            ))
                        }
                        'k' | 'g' => {
                            return Err(format!(
                                "\\{n} references are not supported (cairn runs grok on a linear-time regex engine)"
                            ))
                        }
                        'Z' => out.push_str(r"(?:\n?\z)"),
                        'h' => out.push_str("[0-9a-fA-F]"),
                        'H' => out.push_str("[^0-9a-fA-F]"),
                        'G' => return Err("\\G is not supported".into()),
                        _ => {
                            out.push('\\');
                            out.push(n);
                        }
                    }
                    i += 2;
                    last_quant = false;
                }
                '[' => {
                    // Copy a character class verbatim (nested classes included).
                    let mut depth = 0usize;
                    let mut j = i;
                    while j < chars.len() {
                        let d = chars[j];
                        if d == '\\' {
                            out.push(d);
                            if let Some(e) = chars.get(j + 1) {
                                out.push(*e);
                            }
                            j += 2;
                            continue;
                        }
                        if d == '[' {
                            depth += 1;
                            out.push(d);
                            // `[]..]` and `[^]..]`: a leading `]` is literal.
                            if chars.get(j + 1) == Some(&'^') {
                                out.push('^');
                                j += 1;
                            }
                            if chars.get(j + 1) == Some(&']') {
                                out.push_str("\\]");
                                j += 1;
                            }
                            j += 1;
                            continue;
                        }
                        if d == ']' {
                            depth -= 1;
                            out.push(d);
                            j += 1;
                            if depth == 0 {
                                break;
                            }
                            continue;
                        }
                        out.push(d);
                        j += 1;
                    }
                    if depth != 0 {
                        return Err("unclosed character class".into());
                    }
                    i = j;
                    last_quant = false;
                }
                '(' => {
                    let rest: String = chars[i + 1..(i + 4).min(chars.len())].iter().collect();
                    if rest.starts_with("?<=")
                        || rest.starts_with("?<!")
                        || rest.starts_with("?=")
                        || rest.starts_with("?!")
                    {
                        return Err(format!(
                            "look-around ({}) is not supported: cairn runs grok on a linear-time regex engine; rewrite the pattern without it",
                            &rest[..rest.len().min(3)]
                        ));
                    }
                    if rest.starts_with("?>") {
                        out.push_str("(?:");
                        i += 3;
                    } else if rest.starts_with("?#") {
                        // Comment group.
                        match chars[i..].iter().position(|&x| x == ')') {
                            Some(p) => i += p + 1,
                            None => return Err("unclosed comment group".into()),
                        }
                    } else if rest.starts_with("?<") || rest.starts_with("?P<") {
                        let start = i + if rest.starts_with("?P<") { 4 } else { 3 };
                        let end = match chars[start..].iter().position(|&x| x == '>') {
                            Some(p) => start + p,
                            None => return Err("unclosed group name".into()),
                        };
                        let raw: String = chars[start..end].iter().collect();
                        let (field, ty) = match raw.split_once(':') {
                            Some((f, t)) => (
                                f.to_string(),
                                match t {
                                    "int" => GrokType::Int,
                                    "long" => GrokType::Long,
                                    "float" => GrokType::Float,
                                    "double" => GrokType::Double,
                                    "boolean" => GrokType::Boolean,
                                    _ => GrokType::Str,
                                },
                            ),
                            None => (raw.clone(), GrokType::Str),
                        };
                        let g = self.new_group(&field, ty);
                        out.push_str(&format!("(?P<{g}>"));
                        i = end + 1;
                    } else {
                        out.push('(');
                        i += 1;
                    }
                    last_quant = false;
                }
                '{' => {
                    // A repetition `{n}`, `{n,}`, `{n,m}`, `{,m}` or a literal brace.
                    let close = chars[i..].iter().position(|&x| x == '}');
                    let body: Option<String> = close.map(|p| chars[i + 1..i + p].iter().collect());
                    let is_rep = body.as_deref().is_some_and(|b| {
                        !b.is_empty()
                            && b.chars().all(|c| c.is_ascii_digit() || c == ',')
                            && b.matches(',').count() <= 1
                            && b != ","
                    });
                    if is_rep {
                        let b = body.unwrap_or_default();
                        let b = if b.starts_with(',') {
                            format!("0{b}")
                        } else {
                            b
                        };
                        out.push('{');
                        out.push_str(&b);
                        out.push('}');
                        i += close.unwrap_or(0) + 1;
                        last_quant = true;
                    } else {
                        out.push_str("\\{");
                        i += 1;
                        last_quant = false;
                    }
                }
                '}' => {
                    out.push_str("\\}");
                    i += 1;
                    last_quant = false;
                }
                '+' if last_quant => {
                    // Possessive quantifier: read as greedy.
                    i += 1;
                    last_quant = false;
                }
                c => {
                    out.push(c);
                    i += 1;
                    // `x??` (lazy) leaves last_quant false; `x?` sets it.
                    last_quant = is_quant_end(c) && !last_quant;
                }
            }
        }
        Ok(out)
    }
}

impl Grok {
    /// Compiles `pattern` with the stock bank plus `custom` definitions (which win).
    pub fn compile(pattern: &str, custom: &HashMap<String, String>) -> Result<Grok, String> {
        let mut c = Compiler {
            custom,
            stock: stock_patterns(),
            captures: Vec::new(),
        };
        let mut stack = Vec::new();
        let re = c.expand(pattern, &mut stack)?;
        let regex = RegexBuilder::new(&re)
            .size_limit(1 << 26)
            .build()
            .map_err(|e| format!("invalid grok pattern [{pattern}]: {e}"))?;
        Ok(Grok {
            regex,
            captures: c.captures,
        })
    }

    /// Matches anywhere in `text`; `None` when it does not match. Fields in pattern
    /// order; a field captured twice keeps its first non-empty match.
    pub fn captures(&self, text: &str) -> Option<Vec<(String, Value)>> {
        let caps = self.regex.captures(text)?;
        let mut out: Vec<(String, Value)> = Vec::new();
        for (g, field, ty) in &self.captures {
            let Some(m) = caps.name(g) else { continue };
            if out.iter().any(|(f, _)| f == field) {
                continue;
            }
            out.push((field.clone(), convert(m.as_str(), *ty)));
        }
        Some(out)
    }
}

fn convert(s: &str, ty: GrokType) -> Value {
    match ty {
        GrokType::Str => Value::String(s.to_string()),
        GrokType::Int | GrokType::Long => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(s.to_string())),
        GrokType::Float => {
            crate::processors::float_value(s).unwrap_or_else(|| Value::String(s.to_string()))
        }
        GrokType::Double => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(s.to_string())),
        GrokType::Boolean => Value::Bool(s.eq_ignore_ascii_case("true")),
    }
}
