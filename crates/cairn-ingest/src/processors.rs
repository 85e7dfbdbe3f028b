//! The processors: configuration (Elasticsearch's option names and defaults) and what
//! each does to a document.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use cairn_core::error::EsError;
use cairn_formats::Format;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::config::Cfg;
use crate::date::{self, JavaPattern, Zone};
use crate::dissect::Dissect;
use crate::doc::{java_type, Ctx};
use crate::grok::Grok;
use crate::template::{Template, ValueTemplate};

/// Processor types this crate implements (Elasticsearch names).
pub const PROCESSOR_TYPES: &[&str] = &[
    "append",
    "convert",
    "date",
    "dissect",
    "dot_expander",
    "drop",
    "fail",
    "foreach",
    "grok",
    "gsub",
    "join",
    "json",
    "kv",
    "lowercase",
    "pipeline",
    "remove",
    "rename",
    "set",
    "split",
    "trim",
    "uppercase",
    "urldecode",
];

/// Elasticsearch processors cairn does not implement (named in the creation error).
pub const ES_ONLY_TYPES: &[&str] = &[
    "attachment",
    "bytes",
    "circle",
    "community_id",
    "csv",
    "date_index_name",
    "enrich",
    "fingerprint",
    "geo_grid",
    "geoip",
    "html_strip",
    "inference",
    "network_direction",
    "redact",
    "registered_domain",
    "reroute",
    "script",
    "set_security_user",
    "sort",
    "terminate",
    "uri_parts",
    "user_agent",
];

fn iae(msg: String) -> EsError {
    EsError::illegal_argument(msg)
}

/// A float as Elasticsearch stores a Java `float`: its shortest decimal form.
pub(crate) fn float_value(s: &str) -> Option<Value> {
    let t = s.trim();
    let t = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    let f: f32 = t.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let d: f64 = f.to_string().parse().ok()?;
    serde_json::Number::from_f64(d).map(Value::Number)
}

fn double_value(s: &str) -> Option<Value> {
    let t = s.trim();
    let t = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    let f: f64 = t.parse().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// Java's `toString` of a value, for processors that read fields as text.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// `Integer.parseInt` / `Long.parseLong`, with `0x` hex as Elasticsearch decodes it.
fn parse_java_int(s: &str) -> Option<i64> {
    let t = s;
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(h) = t.strip_prefix("-0x").or_else(|| t.strip_prefix("-0X")) {
        return i64::from_str_radix(h, 16).ok().map(|v| -v);
    }
    if t.starts_with('+') && t.len() > 1 && t[1..].bytes().all(|b| b.is_ascii_digit()) {
        return t[1..].parse().ok();
    }
    t.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConvType {
    Integer,
    Long,
    Float,
    Double,
    Str,
    Boolean,
    Ip,
    Auto,
}

impl ConvType {
    fn name(self) -> &'static str {
        match self {
            ConvType::Integer => "integer",
            ConvType::Long => "long",
            ConvType::Float => "float",
            ConvType::Double => "double",
            ConvType::Str => "string",
            ConvType::Boolean => "boolean",
            ConvType::Ip => "ip",
            ConvType::Auto => "auto",
        }
    }

    fn convert(self, v: &Value) -> Result<Value, EsError> {
        let s = to_text(v);
        let fail = || iae(format!("unable to convert [{s}] to {}", self.name()));
        match self {
            ConvType::Integer => match parse_java_int(&s) {
                Some(i) if i32::try_from(i).is_ok() => Ok(Value::from(i)),
                _ => Err(fail()),
            },
            ConvType::Long => parse_java_int(&s).map(Value::from).ok_or_else(fail),
            ConvType::Float => float_value(&s).ok_or_else(fail),
            ConvType::Double => double_value(&s).ok_or_else(fail),
            ConvType::Str => Ok(Value::String(s)),
            ConvType::Boolean => {
                if s.eq_ignore_ascii_case("true") {
                    Ok(Value::Bool(true))
                } else if s.eq_ignore_ascii_case("false") {
                    Ok(Value::Bool(false))
                } else {
                    Err(iae(format!(
                        "[{s}] is not a boolean value, cannot convert to boolean"
                    )))
                }
            }
            ConvType::Ip => {
                if s.parse::<IpAddr>().is_ok() {
                    Ok(Value::String(s))
                } else {
                    Err(iae(format!("'{s}' is not an IP string literal.")))
                }
            }
            ConvType::Auto => {
                if !v.is_string() {
                    return Ok(v.clone());
                }
                for t in [
                    ConvType::Boolean,
                    ConvType::Integer,
                    ConvType::Long,
                    ConvType::Float,
                    ConvType::Double,
                ] {
                    if let Ok(x) = t.convert(v) {
                        return Ok(x);
                    }
                }
                Ok(v.clone())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum DateFmt {
    Iso,
    Unix,
    UnixMs,
    Tai64n,
    Java(JavaPattern),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StrOp {
    Lower,
    Upper,
    Trim,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Set {
        field: Template,
        value: Option<ValueTemplate>,
        copy_from: Option<String>,
        override_: bool,
        ignore_empty_value: bool,
    },
    Remove {
        fields: Vec<Template>,
        keep: Vec<Template>,
        ignore_missing: bool,
    },
    Rename {
        field: Template,
        target: Template,
        ignore_missing: bool,
        override_: bool,
    },
    Convert {
        field: String,
        target: String,
        ty: ConvType,
        ignore_missing: bool,
    },
    Date {
        field: String,
        target: String,
        formats: Vec<DateFmt>,
        timezone: Option<Template>,
        output: JavaPattern,
    },
    Dissect {
        field: String,
        dissect: Dissect,
        ignore_missing: bool,
    },
    Grok {
        field: String,
        groks: Vec<Grok>,
        ignore_missing: bool,
        trace_match: bool,
    },
    Json {
        field: String,
        target: String,
        add_to_root: bool,
        merge: bool,
    },
    Kv {
        field: String,
        field_split: Regex,
        value_split: Regex,
        value_split_src: String,
        target: Option<String>,
        include: Option<HashSet<String>>,
        exclude: HashSet<String>,
        ignore_missing: bool,
        prefix: String,
        trim_key: Option<String>,
        trim_value: Option<String>,
        strip_brackets: bool,
    },
    Str {
        op: StrOp,
        field: String,
        target: String,
        ignore_missing: bool,
    },
    Split {
        field: String,
        separator: Regex,
        target: String,
        ignore_missing: bool,
        preserve_trailing: bool,
    },
    Gsub {
        field: String,
        pattern: Regex,
        replacement: String,
        target: String,
        ignore_missing: bool,
    },
    Append {
        field: Template,
        value: ValueTemplate,
        allow_duplicates: bool,
    },
    Drop,
    Fail {
        message: Template,
    },
    Foreach {
        field: String,
        processor: Box<ProcNode>,
        ignore_missing: bool,
    },
    DotExpander {
        field: String,
        path: Option<String>,
        override_: bool,
    },
    Join {
        field: String,
        separator: String,
        target: String,
    },
    UrlDecode {
        field: String,
        target: String,
        ignore_missing: bool,
    },
    Pipeline {
        name: Template,
        ignore_missing_pipeline: bool,
    },
    Builtin(Format),
}

/// A configured processor with the options every processor has.
#[derive(Debug, Clone)]
pub(crate) struct ProcNode {
    pub ty: String,
    pub tag: Option<String>,
    pub description: Option<String>,
    pub cond: Option<Condition>,
    pub ignore_failure: bool,
    pub on_failure: Vec<ProcNode>,
    pub kind: Kind,
}

fn tmpl(cfg: &Cfg, key: &str, s: &str) -> Result<Template, EsError> {
    Template::parse(s).map_err(|e| cfg.err(Some(key), &e))
}

fn regex(cfg: &Cfg, key: &str, s: &str) -> Result<Regex, EsError> {
    RegexBuilder::new(s)
        .size_limit(1 << 24)
        .build()
        .map_err(|e| cfg.err(Some(key), &format!("invalid regular expression [{s}]: {e}")))
}

/// Java's `Matcher.replaceAll` replacement syntax (`$1`, `${name}`, `\$`) in regex-crate syntax.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut it = r.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                if it.peek() == Some(&'{') {
                    out.push('$');
                    for x in it.by_ref() {
                        out.push(x);
                        if x == '}' {
                            break;
                        }
                    }
                } else {
                    let mut digits = String::new();
                    while let Some(d) = it.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(d);
                        it.next();
                    }
                    if digits.is_empty() {
                        out.push_str("$$");
                    } else {
                        out.push_str(&format!("${{{digits}}}"));
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_date_format(cfg: &Cfg, f: &str) -> Result<DateFmt, EsError> {
    Ok(match f {
        "ISO8601"
        | "iso8601"
        | "strict_date_optional_time"
        | "date_optional_time"
        | "strict_date_time"
        | "date_time" => DateFmt::Iso,
        "UNIX" | "epoch_second" => DateFmt::Unix,
        "UNIX_MS" | "epoch_millis" => DateFmt::UnixMs,
        "TAI64N" => DateFmt::Tai64n,
        p => DateFmt::Java(JavaPattern::parse(p).map_err(|e| cfg.err(Some("formats"), &e))?),
    })
}

/// Builds a processor's kind from its options (common options already removed).
pub(crate) fn build_kind(cfg: &mut Cfg) -> Result<Kind, EsError> {
    let ty = cfg.ty.clone();
    let kind = match ty.as_str() {
        "set" => {
            let field = cfg.req_str("field")?;
            let field = tmpl(cfg, "field", &field)?;
            let value = cfg.take("value");
            let copy_from = cfg.opt_str("copy_from")?;
            if value.is_some() && copy_from.is_some() {
                return Err(cfg.err(
                    Some("copy_from"),
                    "cannot set both `copy_from` and `value` in the same processor",
                ));
            }
            let value = match (value, &copy_from) {
                (Some(v), _) => {
                    Some(ValueTemplate::parse(&v).map_err(|e| cfg.err(Some("value"), &e))?)
                }
                (None, Some(_)) => None,
                (None, None) => return Err(cfg.err(Some("value"), "required property is missing")),
            };
            let _ = cfg.opt_str("media_type")?;
            Kind::Set {
                field,
                value,
                copy_from,
                override_: cfg.opt_bool("override", true)?,
                ignore_empty_value: cfg.opt_bool("ignore_empty_value", false)?,
            }
        }
        "remove" => {
            let fields = cfg.opt_str_list("field")?;
            let keep = cfg.opt_str_list("keep")?;
            let (fields, keep) = match (fields, keep) {
                (Some(_), Some(_)) => {
                    return Err(cfg.err(
                        Some("keep"),
                        "and [field] cannot both be used in the same processor",
                    ))
                }
                (None, None) => return Err(cfg.err(Some("field"), "required property is missing")),
                (f, k) => (f.unwrap_or_default(), k.unwrap_or_default()),
            };
            let fields = fields
                .iter()
                .map(|f| tmpl(cfg, "field", f))
                .collect::<Result<_, _>>()?;
            let keep = keep
                .iter()
                .map(|f| tmpl(cfg, "keep", f))
                .collect::<Result<_, _>>()?;
            Kind::Remove {
                fields,
                keep,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "rename" => {
            let field = cfg.req_str("field")?;
            let target = cfg.req_str("target_field")?;
            Kind::Rename {
                field: tmpl(cfg, "field", &field)?,
                target: tmpl(cfg, "target_field", &target)?,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
                override_: cfg.opt_bool("override", false)?,
            }
        }
        "convert" => {
            let field = cfg.req_str("field")?;
            let t = cfg.req_str("type")?;
            let ty = match t.to_ascii_lowercase().as_str() {
                "integer" => ConvType::Integer,
                "long" => ConvType::Long,
                "float" => ConvType::Float,
                "double" => ConvType::Double,
                "string" => ConvType::Str,
                "boolean" => ConvType::Boolean,
                "ip" => ConvType::Ip,
                "auto" => ConvType::Auto,
                _ => {
                    return Err(cfg.err(
                        Some("type"),
                        &format!("type [{t}] not supported, cannot convert field."),
                    ))
                }
            };
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::Convert {
                field,
                target,
                ty,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "date" => {
            let field = cfg.req_str("field")?;
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| "@timestamp".into());
            let formats_raw = cfg.req_str_list("formats")?;
            let formats = formats_raw
                .iter()
                .map(|f| parse_date_format(cfg, f))
                .collect::<Result<Vec<_>, _>>()?;
            let timezone = match cfg.opt_str("timezone")? {
                Some(z) => {
                    let t = tmpl(cfg, "timezone", &z)?;
                    if t.is_constant() {
                        Zone::parse(&z).map_err(|e| cfg.err(Some("timezone"), &e))?;
                    }
                    Some(t)
                }
                None => None,
            };
            // Only English names are supported; other locales are accepted and read as English.
            let _locale = cfg.opt_str("locale")?;
            let out = cfg
                .opt_str("output_format")?
                .unwrap_or_else(|| "yyyy-MM-dd'T'HH:mm:ss.SSSXXX".into());
            let output =
                JavaPattern::parse(&out).map_err(|e| cfg.err(Some("output_format"), &e))?;
            Kind::Date {
                field,
                target,
                formats,
                timezone,
                output,
            }
        }
        "dissect" => {
            let field = cfg.req_str("field")?;
            let pattern = cfg.req_str("pattern")?;
            let sep = cfg.opt_str("append_separator")?.unwrap_or_default();
            let dissect = Dissect::parse(&pattern, &sep).map_err(|e| {
                EsError::new(400, "dissect_exception", e).with("processor_type", "dissect")
            })?;
            Kind::Dissect {
                field,
                dissect,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "grok" => {
            let field = cfg.req_str("field")?;
            let patterns = cfg.req_str_list("patterns")?;
            if patterns.is_empty() {
                return Err(cfg.err(Some("patterns"), "List of patterns must not be empty"));
            }
            let mut defs = HashMap::new();
            if let Some(m) = cfg.opt_map("pattern_definitions")? {
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            defs.insert(k, s);
                        }
                        other => {
                            return Err(cfg.err(
                                Some("pattern_definitions"),
                                &format!(
                                    "pattern [{k}] isn't a string, but of type [{}]",
                                    java_type(&other)
                                ),
                            ))
                        }
                    }
                }
            }
            if let Some(ecs) = cfg.opt_str("ecs_compatibility")? {
                match ecs.as_str() {
                    "disabled" => {}
                    "v1" => {
                        return Err(cfg.err(
                            Some("ecs_compatibility"),
                            "[v1] is not supported by cairn: only the legacy (disabled) pattern set is built in",
                        ))
                    }
                    other => {
                        return Err(cfg.err(
                            Some("ecs_compatibility"),
                            &format!("unsupported mode '{other}'"),
                        ))
                    }
                }
            }
            let mut groks = Vec::with_capacity(patterns.len());
            for p in &patterns {
                groks.push(Grok::compile(p, &defs).map_err(|e| {
                    cfg.err(
                        Some("patterns"),
                        &format!("Invalid regex pattern found in: [{p}]. {e}"),
                    )
                })?);
            }
            Kind::Grok {
                field,
                groks,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
                trace_match: cfg.opt_bool("trace_match", false)?,
            }
        }
        "json" => {
            let field = cfg.req_str("field")?;
            let target = cfg.opt_str("target_field")?;
            let add_to_root = cfg.opt_bool("add_to_root", false)?;
            if add_to_root && target.is_some() {
                return Err(cfg.err(
                    Some("target_field"),
                    "Cannot set a target field while also setting `add_to_root` to true",
                ));
            }
            let strategy = cfg.opt_str("add_to_root_conflict_strategy")?;
            let merge = match strategy.as_deref() {
                None | Some("replace") => false,
                Some("merge") => true,
                Some(other) => {
                    return Err(cfg.err(
                        Some("add_to_root_conflict_strategy"),
                        &format!(
                            "conflict strategy [{other}] not supported, cannot convert field."
                        ),
                    ))
                }
            };
            if strategy.is_some() && !add_to_root {
                return Err(cfg.err(
                    Some("add_to_root_conflict_strategy"),
                    "Cannot set `add_to_root_conflict_strategy` if `add_to_root` is false",
                ));
            }
            let _ = cfg.opt_bool("allow_duplicate_keys", false)?;
            let _ = cfg.opt_bool("strict_json_parsing", true)?;
            Kind::Json {
                target: target.unwrap_or_else(|| field.clone()),
                field,
                add_to_root,
                merge,
            }
        }
        "kv" => {
            let field = cfg.req_str("field")?;
            let fs = cfg.req_str("field_split")?;
            let vs = cfg.req_str("value_split")?;
            let field_split = regex(cfg, "field_split", &fs)?;
            let value_split = regex(cfg, "value_split", &vs)?;
            let include = cfg
                .opt_str_list("include_keys")?
                .map(|v| v.into_iter().collect::<HashSet<_>>());
            let exclude = cfg
                .opt_str_list("exclude_keys")?
                .unwrap_or_default()
                .into_iter()
                .collect();
            Kind::Kv {
                field,
                field_split,
                value_split,
                value_split_src: vs,
                target: cfg.opt_str("target_field")?,
                include,
                exclude,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
                prefix: cfg.opt_str("prefix")?.unwrap_or_default(),
                trim_key: cfg.opt_str("trim_key")?,
                trim_value: cfg.opt_str("trim_value")?,
                strip_brackets: cfg.opt_bool("strip_brackets", false)?,
            }
        }
        "lowercase" | "uppercase" | "trim" => {
            let field = cfg.req_str("field")?;
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::Str {
                op: match ty.as_str() {
                    "lowercase" => StrOp::Lower,
                    "uppercase" => StrOp::Upper,
                    _ => StrOp::Trim,
                },
                field,
                target,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "split" => {
            let field = cfg.req_str("field")?;
            let sep = cfg.req_str("separator")?;
            let separator = regex(cfg, "separator", &sep)?;
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::Split {
                field,
                separator,
                target,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
                preserve_trailing: cfg.opt_bool("preserve_trailing", false)?,
            }
        }
        "gsub" => {
            let field = cfg.req_str("field")?;
            let p = cfg.req_str("pattern")?;
            let pattern = regex(cfg, "pattern", &p)?;
            let replacement = java_replacement(&cfg.req_str("replacement")?);
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::Gsub {
                field,
                pattern,
                replacement,
                target,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "append" => {
            let field = cfg.req_str("field")?;
            let field = tmpl(cfg, "field", &field)?;
            let value = match cfg.take("value") {
                Some(v) => ValueTemplate::parse(&v).map_err(|e| cfg.err(Some("value"), &e))?,
                None => return Err(cfg.err(Some("value"), "required property is missing")),
            };
            let _ = cfg.opt_str("media_type")?;
            Kind::Append {
                field,
                value,
                allow_duplicates: cfg.opt_bool("allow_duplicates", true)?,
            }
        }
        "drop" => Kind::Drop,
        "foreach" => {
            let field = cfg.req_str("field")?;
            let ignore_missing = cfg.opt_bool("ignore_missing", false)?;
            let inner = match cfg.opt_map("processor")? {
                Some(m) => m,
                None => return Err(cfg.err(Some("processor"), "required property is missing")),
            };
            let mut it = inner.into_iter();
            let (ity, icfg) = match (it.next(), it.next()) {
                (Some(p), None) => p,
                _ => {
                    return Err(
                        cfg.err(Some("processor"), "Must specify exactly one processor type")
                    )
                }
            };
            let node = crate::pipeline::parse_processor(&ity, &icfg, "")?;
            Kind::Foreach {
                field,
                processor: Box::new(node),
                ignore_missing,
            }
        }
        "dot_expander" => {
            let field = cfg.req_str("field")?;
            if field != "*"
                && (!field.contains('.')
                    || field.starts_with('.')
                    || field.ends_with('.')
                    || field.contains(".."))
            {
                return Err(cfg.err(
                    Some("field"),
                    "field does not contain a dot and is not a wildcard",
                ));
            }
            Kind::DotExpander {
                field,
                path: cfg.opt_str("path")?,
                override_: cfg.opt_bool("override", false)?,
            }
        }
        "join" => {
            let field = cfg.req_str("field")?;
            let separator = cfg.req_str("separator")?;
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::Join {
                field,
                separator,
                target,
            }
        }
        "urldecode" => {
            let field = cfg.req_str("field")?;
            let target = cfg
                .opt_str("target_field")?
                .unwrap_or_else(|| field.clone());
            Kind::UrlDecode {
                field,
                target,
                ignore_missing: cfg.opt_bool("ignore_missing", false)?,
            }
        }
        "fail" => {
            let m = cfg.req_str("message")?;
            Kind::Fail {
                message: tmpl(cfg, "message", &m)?,
            }
        }
        "pipeline" => {
            let n = cfg.req_str("name")?;
            Kind::Pipeline {
                name: tmpl(cfg, "name", &n)?,
                ignore_missing_pipeline: cfg.opt_bool("ignore_missing_pipeline", false)?,
            }
        }
        other => {
            return Err(crate::config::config_error(
                other,
                cfg.tag.as_deref(),
                None,
                &format!("No processor type exists with name [{other}]"),
            ))
        }
    };
    Ok(kind)
}

/// Reads a field for processors with `ignore_missing`: `Ok(None)` means "nothing to do".
fn read(
    ctx: &Ctx<'_>,
    field: &str,
    ignore_missing: bool,
    null_msg: &str,
) -> Result<Option<Value>, EsError> {
    read_with(ctx, field, ignore_missing, || {
        format!("field [{field}] is null, {null_msg}")
    })
}

/// [`read`] with the message for a `null` value built by `null_err`.
fn read_with(
    ctx: &Ctx<'_>,
    field: &str,
    ignore_missing: bool,
    null_err: impl FnOnce() -> String,
) -> Result<Option<Value>, EsError> {
    if ignore_missing {
        return Ok(match ctx.get_opt(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        });
    }
    let v = ctx.get(field)?;
    if v.is_null() {
        return Err(iae(null_err()));
    }
    Ok(Some(v))
}

fn cast_str(field: &str, v: Value) -> Result<String, EsError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(iae(format!(
            "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
            java_type(&other)
        ))),
    }
}

/// Java `String.split(regex, limit)`: `limit` 0 drops trailing empty strings, -1 keeps them.
pub(crate) fn java_split<'s>(
    re: &Regex,
    s: &'s str,
    keep_trailing: bool,
    max: Option<usize>,
) -> Vec<&'s str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut out = Vec::new();
    let mut last = 0;
    for m in re.find_iter(s) {
        if let Some(mx) = max {
            if out.len() + 1 >= mx {
                break;
            }
        }
        if m.end() == 0 {
            continue;
        }
        if m.start() == m.end() && m.start() >= s.len() {
            break;
        }
        out.push(&s[last..m.start()]);
        last = m.end();
    }
    out.push(&s[last..]);
    if !keep_trailing && max.is_none() {
        while out.last().is_some_and(|x| x.is_empty()) {
            out.pop();
        }
    }
    out
}

fn strip_brackets(v: &str) -> &str {
    for (o, c) in [('(', ')'), ('<', '>'), ('[', ']'), ('"', '"'), ('\'', '\'')] {
        if v.len() >= 2 && v.starts_with(o) && v.ends_with(c) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn deep_merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => deep_merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Copies the value at `path` from `from` into `to` (nested objects kept).
fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    let segs: Vec<&str> = path.split('.').collect();
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    let Some(v) = from.get(*first) else { return };
    if rest.is_empty() {
        to.insert((*first).to_string(), v.clone());
        return;
    }
    if let Value::Object(inner) = v {
        let entry = to
            .entry((*first).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = entry {
            copy_path(inner, t, &rest.join("."));
        }
    }
}

/// What a processor asks the pipeline to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Flow {
    Continue,
    Drop,
}

impl Kind {
    /// Runs a processor other than `pipeline` (the pipeline runner handles that one).
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> Result<Flow, EsError> {
        match self {
            Kind::Set {
                field,
                value,
                copy_from,
                override_,
                ignore_empty_value,
            } => {
                let path = field.render(ctx);
                if *override_ || !ctx.has_non_null(&path) {
                    let v = match (value, copy_from) {
                        (Some(t), _) => t.render(ctx),
                        (None, Some(src)) => {
                            if *ignore_empty_value {
                                ctx.get_opt(src).unwrap_or(Value::Null)
                            } else {
                                ctx.get(src)?
                            }
                        }
                        (None, None) => Value::Null,
                    };
                    if *ignore_empty_value && (v.is_null() || v.as_str() == Some("")) {
                        return Ok(Flow::Continue);
                    }
                    ctx.set(&path, v)?;
                }
            }
            Kind::Remove {
                fields,
                keep,
                ignore_missing,
            } => {
                if !keep.is_empty() {
                    let paths: Vec<String> = keep.iter().map(|t| t.render(ctx)).collect();
                    let mut kept = Map::new();
                    for p in &paths {
                        copy_path(&ctx.doc.source, &mut kept, p);
                    }
                    ctx.doc.source = kept;
                } else {
                    for t in fields {
                        let p = t.render(ctx);
                        if *ignore_missing && !ctx.has(&p) {
                            continue;
                        }
                        ctx.remove(&p)?;
                    }
                }
            }
            Kind::Rename {
                field,
                target,
                ignore_missing,
                override_,
            } => {
                let from = field.render(ctx);
                let to = target.render(ctx);
                if !ctx.has(&from) {
                    if *ignore_missing {
                        return Ok(Flow::Continue);
                    }
                    return Err(iae(format!("field [{from}] doesn't exist")));
                }
                if ctx.has(&to) && !*override_ {
                    return Err(iae(format!("field [{to}] already exists")));
                }
                let v = ctx.remove(&from)?;
                if let Err(e) = ctx.set(&to, v.clone()) {
                    let _ = ctx.set(&from, v);
                    return Err(e);
                }
            }
            Kind::Convert {
                field,
                target,
                ty,
                ignore_missing,
            } => {
                let Some(v) = read_with(ctx, field, *ignore_missing, || {
                    format!(
                        "Field [{field}] is null, cannot be converted to type [{}]",
                        ty.name()
                    )
                })?
                else {
                    return Ok(Flow::Continue);
                };
                let out = match &v {
                    Value::Array(a) => {
                        let mut o = Vec::with_capacity(a.len());
                        for x in a {
                            ctx.check_budget("convert")?;
                            o.push(ty.convert(x)?);
                        }
                        Value::Array(o)
                    }
                    other => ty.convert(other)?,
                };
                ctx.set(target, out)?;
            }
            Kind::Date {
                field,
                target,
                formats,
                timezone,
                output,
            } => {
                let v = ctx.get(field)?;
                let text = to_text(&v);
                let zone = match timezone {
                    Some(t) => Zone::parse(&t.render(ctx)).map_err(iae)?,
                    None => Zone::Fixed(
                        chrono::FixedOffset::east_opt(0).unwrap_or_else(|| chrono::Utc.fix()),
                    ),
                };
                let now_year = chrono::Datelike::year(&chrono::Utc::now());
                let mut last_err = String::new();
                let mut parsed = None;
                for f in formats {
                    let r = match f {
                        DateFmt::Iso => date::parse_iso8601(&text, &zone),
                        DateFmt::Unix => date::parse_unix(&text),
                        DateFmt::UnixMs => date::parse_unix_ms(&text),
                        DateFmt::Tai64n => date::parse_tai64n(&text),
                        DateFmt::Java(p) => p.parse_date(&text, &zone, now_year),
                    };
                    match r {
                        Ok(t) => {
                            parsed = Some(t);
                            break;
                        }
                        Err(e) => last_err = e,
                    }
                }
                let Some(t) = parsed else {
                    return Err(
                        iae(format!("unable to parse date [{text}]")).caused_by(iae(last_err))
                    );
                };
                ctx.set(target, Value::String(output.format(t, &zone)))?;
            }
            Kind::Dissect {
                field,
                dissect,
                ignore_missing,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot process it.")? else {
                    return Ok(Flow::Continue);
                };
                let s = cast_str(field, v)?;
                let pairs = dissect
                    .apply(&s)
                    .map_err(|e| EsError::new(400, "dissect_exception", e))?;
                for (k, v) in pairs {
                    ctx.set(&k, Value::String(v))?;
                }
            }
            Kind::Grok {
                field,
                groks,
                ignore_missing,
                trace_match,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot process it.")? else {
                    return Ok(Flow::Continue);
                };
                let s = cast_str(field, v)?;
                for (i, g) in groks.iter().enumerate() {
                    ctx.check_budget("grok")?;
                    if let Some(caps) = g.captures(&s) {
                        for (f, v) in caps {
                            ctx.set(&f, v)?;
                        }
                        if *trace_match {
                            ctx.meta
                                .insert("_grok_match_index".into(), Value::String(i.to_string()));
                        }
                        return Ok(Flow::Continue);
                    }
                }
                return Err(iae(format!(
                    "Provided Grok expressions do not match field value: [{s}]"
                )));
            }
            Kind::Json {
                field,
                target,
                add_to_root,
                merge,
            } => {
                let v = ctx.get(field)?;
                let text = to_text(&v);
                let parsed: Value = serde_json::from_str(&text)
                    .map_err(|e| iae(format!("cannot parse JSON in field [{field}]: {e}")))?;
                if *add_to_root {
                    match parsed {
                        Value::Object(m) => {
                            if *merge {
                                deep_merge(&mut ctx.doc.source, m);
                            } else {
                                for (k, v) in m {
                                    ctx.doc.source.insert(k, v);
                                }
                            }
                        }
                        _ => {
                            return Err(iae("cannot add non-map fields to root of document".into()))
                        }
                    }
                } else {
                    ctx.set(target, parsed)?;
                }
            }
            Kind::Kv {
                field,
                field_split,
                value_split,
                value_split_src,
                target,
                include,
                exclude,
                ignore_missing,
                prefix,
                trim_key,
                trim_value,
                strip_brackets: strip,
            } => {
                let Some(v) = read(
                    ctx,
                    field,
                    *ignore_missing,
                    "cannot extract key-value pairs.",
                )?
                else {
                    return Ok(Flow::Continue);
                };
                let s = cast_str(field, v)?;
                for part in java_split(field_split, &s, false, None) {
                    ctx.check_budget("kv")?;
                    let kv = java_split(value_split, part, true, Some(2));
                    if kv.len() != 2 {
                        return Err(iae(format!(
                            "field [{field}] does not contain value_split [{value_split_src}]"
                        )));
                    }
                    let mut key = kv[0];
                    let mut val = kv[1];
                    if let Some(t) = trim_key {
                        key = key.trim_matches(|c| t.contains(c));
                    }
                    if let Some(t) = trim_value {
                        val = val.trim_matches(|c| t.contains(c));
                    }
                    if *strip {
                        val = strip_brackets(val);
                    }
                    if include.as_ref().is_some_and(|inc| !inc.contains(key))
                        || exclude.contains(key)
                    {
                        continue;
                    }
                    let path = match target {
                        Some(t) => format!("{t}.{prefix}{key}"),
                        None => format!("{prefix}{key}"),
                    };
                    let value = Value::String(val.to_string());
                    if ctx.has(&path) {
                        ctx.append(&path, vec![value], true)?;
                    } else {
                        ctx.set(&path, value)?;
                    }
                }
            }
            Kind::Str {
                op,
                field,
                target,
                ignore_missing,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot process it.")? else {
                    return Ok(Flow::Continue);
                };
                let f = |s: &str| match op {
                    StrOp::Lower => s.to_lowercase(),
                    StrOp::Upper => s.to_uppercase(),
                    StrOp::Trim => s.trim().to_string(),
                };
                let out = match v {
                    Value::String(s) => Value::String(f(&s)),
                    Value::Array(a) => {
                        let mut o = Vec::with_capacity(a.len());
                        for x in a {
                            match x {
                                Value::String(s) => o.push(Value::String(f(&s))),
                                other => {
                                    return Err(iae(format!(
                                        "value [{}] of type [{}] in list field [{field}] cannot be cast to [java.lang.String]",
                                        to_text(&other),
                                        java_type(&other)
                                    )))
                                }
                            }
                        }
                        Value::Array(o)
                    }
                    other => {
                        return Err(iae(format!(
                            "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
                            java_type(&other)
                        )))
                    }
                };
                ctx.set(target, out)?;
            }
            Kind::Split {
                field,
                separator,
                target,
                ignore_missing,
                preserve_trailing,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot split.")? else {
                    return Ok(Flow::Continue);
                };
                let s = cast_str(field, v)?;
                let parts: Vec<Value> = java_split(separator, &s, *preserve_trailing, None)
                    .into_iter()
                    .map(|p| Value::String(p.to_string()))
                    .collect();
                ctx.set(target, Value::Array(parts))?;
            }
            Kind::Gsub {
                field,
                pattern,
                replacement,
                target,
                ignore_missing,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot process it.")? else {
                    return Ok(Flow::Continue);
                };
                let out = match v {
                    Value::String(s) => {
                        Value::String(pattern.replace_all(&s, replacement.as_str()).into_owned())
                    }
                    Value::Array(a) => {
                        let mut o = Vec::with_capacity(a.len());
                        for x in a {
                            ctx.check_budget("gsub")?;
                            let s = cast_str(field, x)?;
                            o.push(Value::String(
                                pattern.replace_all(&s, replacement.as_str()).into_owned(),
                            ));
                        }
                        Value::Array(o)
                    }
                    other => {
                        return Err(iae(format!(
                            "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
                            java_type(&other)
                        )))
                    }
                };
                ctx.set(target, out)?;
            }
            Kind::Append {
                field,
                value,
                allow_duplicates,
            } => {
                let path = field.render(ctx);
                let values = match value.render(ctx) {
                    Value::Array(a) => a,
                    v => vec![v],
                };
                ctx.append(&path, values, *allow_duplicates)?;
            }
            Kind::Drop => return Ok(Flow::Drop),
            Kind::Foreach { .. } => {
                return Err(EsError::internal(
                    "foreach processor must be run by the pipeline runner",
                ))
            }
            Kind::DotExpander {
                field,
                path,
                override_,
            } => {
                let container = match path {
                    Some(p) => match ctx.get_opt(p) {
                        Some(Value::Object(_)) => Some(p.clone()),
                        _ => return Ok(Flow::Continue),
                    },
                    None => None,
                };
                let mut map = match &container {
                    Some(p) => match ctx.remove(p)? {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    },
                    None => std::mem::take(&mut ctx.doc.source),
                };
                let keys: Vec<String> = if field == "*" {
                    map.keys().filter(|k| k.contains('.')).cloned().collect()
                } else if map.contains_key(field.as_str()) {
                    vec![field.clone()]
                } else {
                    Vec::new()
                };
                let mut result = Ok(());
                for k in keys {
                    let Some(v) = map.shift_remove(&k) else {
                        continue;
                    };
                    if let Err(e) = expand_into(&mut map, &k, v, *override_) {
                        result = Err(e);
                        break;
                    }
                }
                match &container {
                    Some(p) => ctx.set(p, Value::Object(map))?,
                    None => ctx.doc.source = map,
                }
                result?;
            }
            Kind::Join {
                field,
                separator,
                target,
            } => {
                let v = ctx.get(field)?;
                let Value::Array(a) = v else {
                    return Err(iae(format!(
                        "field [{field}] of type [{}] cannot be cast to [java.util.List]",
                        java_type(&v)
                    )));
                };
                let joined = a.iter().map(to_text).collect::<Vec<_>>().join(separator);
                ctx.set(target, Value::String(joined))?;
            }
            Kind::UrlDecode {
                field,
                target,
                ignore_missing,
            } => {
                let Some(v) = read(ctx, field, *ignore_missing, "cannot process it.")? else {
                    return Ok(Flow::Continue);
                };
                let out = match v {
                    Value::String(s) => Value::String(url_decode(&s)?),
                    Value::Array(a) => {
                        let mut o = Vec::with_capacity(a.len());
                        for x in a {
                            let s = cast_str(field, x)?;
                            o.push(Value::String(url_decode(&s)?));
                        }
                        Value::Array(o)
                    }
                    other => {
                        return Err(iae(format!(
                            "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
                            java_type(&other)
                        )))
                    }
                };
                ctx.set(target, out)?;
            }
            Kind::Fail { message } => {
                return Err(EsError::new(
                    400,
                    "fail_processor_exception",
                    message.render(ctx),
                ))
            }
            Kind::Pipeline { .. } => {
                return Err(EsError::internal(
                    "pipeline processor must be run by the pipeline runner",
                ))
            }
            Kind::Builtin(format) => crate::builtin::apply(*format, ctx)?,
        }
        Ok(Flow::Continue)
    }
}

use chrono::Offset as _;

/// `dot_expander`: puts `value` at the dotted `key` inside `map` as nested objects; an
/// existing leaf becomes a list of both values unless `override_`.
fn expand_into(
    map: &mut Map<String, Value>,
    key: &str,
    value: Value,
    override_: bool,
) -> Result<(), EsError> {
    let segs: Vec<&str> = key.split('.').collect();
    let Some((leaf, parents)) = segs.split_last() else {
        return Ok(());
    };
    let mut cur = map;
    for p in parents {
        let entry = cur
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        cur = match entry {
            Value::Object(m) => m,
            other => {
                return Err(iae(format!(
                "cannot expend [{key}], because [{p}] is not an object field, but a value field",
                p = p
            ))
                .caused_by(iae(format!("found [{}]", java_type(other)))))
            }
        };
    }
    match cur.get_mut(*leaf) {
        Some(existing) if !override_ => {
            let prev = std::mem::take(existing);
            let mut list = match prev {
                Value::Array(a) => a,
                v => vec![v],
            };
            match value {
                Value::Array(a) => list.extend(a),
                v => list.push(v),
            }
            *existing = Value::Array(list);
        }
        _ => {
            cur.insert((*leaf).to_string(), value);
        }
    }
    Ok(())
}

/// `java.net.URLDecoder.decode(s, UTF-8)`.
fn url_decode(s: &str) -> Result<String, EsError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        return Err(iae(
                            "URLDecoder: Illegal hex characters in escape (%) pattern".into(),
                        ))
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
