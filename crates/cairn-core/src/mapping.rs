//! Index mappings with Elasticsearch semantics, and the logs-oriented dynamic template.
//!
//! A mapping is kept flat: one [`FieldMapping`] per dotted path (objects and multi-fields
//! included), which makes lookups by path cheap on the ingest hot path. It is converted
//! to and from Elasticsearch's nested `properties` JSON at the API boundary.
//!
//! ## Types and how they are stored
//! Every type Elasticsearch log templates use is accepted. Cairn stores each field in
//! one of a few storage classes, so some types degrade to a close relative:
//! - full text (tokenized, positions): `text`, `match_only_text`;
//! - exact values (indexed term + columnar value): `keyword`, `wildcard`,
//!   `constant_keyword`, `version`, `ip` (validated and canonicalised, compared as
//!   strings: CIDR queries are not supported yet), leaves under `flattened`;
//! - numbers: `long`, `integer`, `short`, `byte`, `unsigned_long` as 64-bit integers;
//!   `double`, `float`, `half_float`, `scaled_float` as 64-bit floats (no precision loss
//!   from `half_float` or `scaled_float` rounding);
//! - `boolean`; `date` and `date_nanos` (microsecond precision);
//! - kept in `_source` only: `binary`, `geo_point`, objects with `enabled: false`,
//!   fields with `index: false`;
//! - `nested` is stored as `object` (its sub-documents are not isolated);
//! - `alias` resolves to its `path` at query time and refuses writes.
//!
//! ## Dynamic mapping (logs template)
//! Unless `dynamic_templates` say otherwise, a new string field becomes `keyword`
//! (`ignore_above: 1024`), except `message`, `error.message` and `error.stack_trace`
//! (`text`) and `event.original` (stored only, as ECS says); strings that look like
//! `strict_date_optional_time` dates become `date` (`date_detection`, on by default);
//! integers become `long`, other numbers `float`, booleans `boolean`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::error::EsError;
use crate::time;

/// Default for `index.mapping.total_fields.limit`.
pub const DEFAULT_TOTAL_FIELDS_LIMIT: usize = 1000;
/// Default for `index.mapping.depth.limit`.
pub const DEFAULT_DEPTH_LIMIT: usize = 20;

/// String fields the logs template maps as full text.
pub const TEXT_FIELDS: &[&str] = &["message", "error.message", "error.stack_trace"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    MatchOnlyText,
    Keyword,
    Wildcard,
    ConstantKeyword,
    Version,
    Long,
    Integer,
    Short,
    Byte,
    UnsignedLong,
    Double,
    Float,
    HalfFloat,
    ScaledFloat,
    Boolean,
    Date,
    DateNanos,
    Ip,
    Object,
    Nested,
    Flattened,
    Alias,
    Binary,
    GeoPoint,
}

/// How a field is stored in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageClass {
    Text,
    Keyword,
    Integer,
    Float,
    Boolean,
    Date,
    /// Kept in `_source` only.
    None,
    /// An object: its children carry the values.
    Object,
}

impl FieldType {
    pub fn parse(s: &str) -> Option<FieldType> {
        use FieldType::*;
        Some(match s {
            "text" => Text,
            "match_only_text" => MatchOnlyText,
            "keyword" => Keyword,
            "wildcard" => Wildcard,
            "constant_keyword" => ConstantKeyword,
            "version" => Version,
            "long" => Long,
            "integer" => Integer,
            "short" => Short,
            "byte" => Byte,
            "unsigned_long" => UnsignedLong,
            "double" => Double,
            "float" => Float,
            "half_float" => HalfFloat,
            "scaled_float" => ScaledFloat,
            "boolean" => Boolean,
            "date" => Date,
            "date_nanos" => DateNanos,
            "ip" => Ip,
            "object" => Object,
            "nested" => Nested,
            "flattened" => Flattened,
            "alias" => Alias,
            "binary" => Binary,
            "geo_point" => GeoPoint,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use FieldType::*;
        match self {
            Text => "text",
            MatchOnlyText => "match_only_text",
            Keyword => "keyword",
            Wildcard => "wildcard",
            ConstantKeyword => "constant_keyword",
            Version => "version",
            Long => "long",
            Integer => "integer",
            Short => "short",
            Byte => "byte",
            UnsignedLong => "unsigned_long",
            Double => "double",
            Float => "float",
            HalfFloat => "half_float",
            ScaledFloat => "scaled_float",
            Boolean => "boolean",
            Date => "date",
            DateNanos => "date_nanos",
            Ip => "ip",
            Object => "object",
            Nested => "nested",
            Flattened => "flattened",
            Alias => "alias",
            Binary => "binary",
            GeoPoint => "geo_point",
        }
    }

    pub fn storage(self) -> StorageClass {
        use FieldType::*;
        match self {
            Text | MatchOnlyText => StorageClass::Text,
            Keyword | Wildcard | ConstantKeyword | Version | Ip | Flattened => {
                StorageClass::Keyword
            }
            Long | Integer | Short | Byte | UnsignedLong => StorageClass::Integer,
            Double | Float | HalfFloat | ScaledFloat => StorageClass::Float,
            Boolean => StorageClass::Boolean,
            Date | DateNanos => StorageClass::Date,
            Object | Nested => StorageClass::Object,
            Alias | Binary | GeoPoint => StorageClass::None,
        }
    }

    /// The type reported by `_field_caps` and used by query compilation.
    pub fn is_numeric(self) -> bool {
        matches!(self.storage(), StorageClass::Integer | StorageClass::Float)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    True,
    False,
    Strict,
    Runtime,
}

impl Dynamic {
    fn parse(v: &Value) -> Option<Dynamic> {
        match v {
            Value::Bool(true) => Some(Dynamic::True),
            Value::Bool(false) => Some(Dynamic::False),
            Value::String(s) => match s.as_str() {
                "true" => Some(Dynamic::True),
                "false" => Some(Dynamic::False),
                "strict" => Some(Dynamic::Strict),
                "runtime" => Some(Dynamic::Runtime),
                _ => None,
            },
            _ => None,
        }
    }
    fn to_json(self) -> Value {
        match self {
            Dynamic::True => json!(true),
            Dynamic::False => json!(false),
            Dynamic::Strict => json!("strict"),
            Dynamic::Runtime => json!("runtime"),
        }
    }
}

/// One field, at one dotted path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    pub ty: FieldType,
    /// Set for a multi-field (`x.keyword` under `x`'s `fields`).
    pub multi_field: bool,
    /// All parameters as given (echoed back by `GET _mapping`), minus `type`,
    /// `properties` and `fields`.
    pub params: Map<String, Value>,
}

impl FieldMapping {
    pub fn new(ty: FieldType) -> Self {
        FieldMapping {
            ty,
            multi_field: false,
            params: Map::new(),
        }
    }
    fn with(mut self, k: &str, v: Value) -> Self {
        self.params.insert(k.into(), v);
        self
    }
    pub fn indexed(&self) -> bool {
        self.params.get("index") != Some(&Value::Bool(false))
            && self.params.get("enabled") != Some(&Value::Bool(false))
    }
    pub fn enabled(&self) -> bool {
        self.params.get("enabled") != Some(&Value::Bool(false))
    }
    pub fn ignore_above(&self) -> Option<usize> {
        self.params
            .get("ignore_above")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
    }
    pub fn format(&self) -> Option<&str> {
        self.params.get("format").and_then(Value::as_str)
    }
    pub fn alias_path(&self) -> Option<&str> {
        self.params.get("path").and_then(Value::as_str)
    }
    fn ignore_malformed(&self) -> bool {
        matches!(self.params.get("ignore_malformed"), Some(Value::Bool(true)))
    }
    fn dynamic(&self) -> Option<Dynamic> {
        self.params.get("dynamic").and_then(Dynamic::parse)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DynamicTemplate {
    pub name: String,
    pub body: Map<String, Value>,
}

impl DynamicTemplate {
    fn matches(&self, path: &str, leaf_name: &str, json_type: &str) -> bool {
        let regex_mode = self.body.get("match_pattern").and_then(Value::as_str) == Some("regex");
        let check = |key: &str, target: &str, negate: bool| -> bool {
            match self.body.get(key) {
                None => true,
                Some(v) => {
                    let pats: Vec<&str> = match v {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        _ => vec![],
                    };
                    let any = pats.iter().any(|p| {
                        if regex_mode {
                            simple_regex_match(p, target)
                        } else {
                            wildcard_match(p, target)
                        }
                    });
                    any != negate
                }
            }
        };
        let type_ok = match self.body.get("match_mapping_type") {
            None => true,
            Some(Value::String(s)) => s == "*" || s == json_type,
            Some(Value::Array(a)) => a
                .iter()
                .any(|v| v.as_str() == Some(json_type) || v.as_str() == Some("*")),
            _ => false,
        };
        type_ok
            && check("match", leaf_name, false)
            && check("unmatch", leaf_name, true)
            && check("path_match", path, false)
            && check("path_unmatch", path, true)
    }
}

/// `match_pattern: regex` with the few regex features templates use: anchors are
/// implicit, `.*` and `.` wildcards, and `|` alternatives at top level.
fn simple_regex_match(pattern: &str, target: &str) -> bool {
    pattern.split('|').any(|alt| {
        let alt = alt.trim_start_matches('^').trim_end_matches('$');
        let glob: String = alt.replace(".*", "*").replace('.', "?").replace("\\?", ".");
        wildcard_match(&glob, target)
    })
}

/// Elasticsearch's simple wildcard match (`*` any run, `?` one char in our regex shim).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// An index mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub dynamic: Dynamic,
    pub date_detection: bool,
    pub numeric_detection: bool,
    pub dynamic_templates: Vec<DynamicTemplate>,
    /// Flat: dotted path -> field. Sorted, so a parent comes before its children.
    pub fields: BTreeMap<String, FieldMapping>,
    /// Other root parameters (`_meta`, `_source`, `_routing`, ...), echoed back.
    pub root_params: Map<String, Value>,
    pub total_fields_limit: usize,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            dynamic: Dynamic::True,
            date_detection: true,
            numeric_detection: false,
            dynamic_templates: Vec::new(),
            fields: BTreeMap::new(),
            root_params: Map::new(),
            total_fields_limit: DEFAULT_TOTAL_FIELDS_LIMIT,
        }
    }
}

/// A typed value extracted from a document, ready to index.
#[derive(Debug, Clone, PartialEq)]
pub enum LeafValue {
    Text(String),
    Keyword(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Microseconds since the epoch.
    Date(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub path: String,
    pub value: LeafValue,
}

/// The result of preparing one document for indexing.
#[derive(Debug, Default)]
pub struct Prepared {
    pub leaves: Vec<Leaf>,
    /// Fields whose value was skipped by `ignore_malformed` (ES's `_ignored`).
    pub ignored: Vec<String>,
}

const ROOT_KEYS: &[&str] = &[
    "properties",
    "dynamic",
    "date_detection",
    "numeric_detection",
    "dynamic_templates",
    "_meta",
    "_source",
    "_routing",
    "_data_stream_timestamp",
    "dynamic_date_formats",
    "runtime",
    "_field_names",
    "_size",
    "_all",
];

impl Mapping {
    /// Parses a mapping body as sent to `PUT /{index}` (`mappings`) or `PUT _mapping`.
    pub fn from_json(v: &Value) -> Result<Mapping, EsError> {
        let mut m = Mapping::default();
        m.merge_json(v)?;
        Ok(m)
    }

    /// Merges a mapping update into this one, as `PUT /{index}/_mapping` does.
    pub fn merge_json(&mut self, v: &Value) -> Result<(), EsError> {
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => return Ok(()),
            _ => {
                return Err(EsError::mapper_parsing(
                    "Failed to parse mapping: Expected map for property [mappings]",
                ))
            }
        };
        // Typed mappings from 6.x/7.x era shippers: `{"_doc": {...}}`.
        if obj.len() == 1 {
            if let Some((k, inner @ Value::Object(io))) = obj.iter().next() {
                if !ROOT_KEYS.contains(&k.as_str())
                    && (io.contains_key("properties") || io.contains_key("dynamic_templates"))
                {
                    return self.merge_json(inner);
                }
            }
        }
        let unsupported: Vec<String> = obj
            .iter()
            .filter(|(k, _)| !ROOT_KEYS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} : {v}"))
            .collect();
        if !unsupported.is_empty() {
            return Err(EsError::mapper_parsing(format!(
                "Root mapping definition has unsupported parameters:  [{}]",
                unsupported.join("] [")
            )));
        }
        let mut next = self.clone();
        for (k, v) in obj {
            match k.as_str() {
                "properties" => next.merge_properties("", v)?,
                "dynamic" => {
                    next.dynamic = Dynamic::parse(v).ok_or_else(|| {
                        EsError::mapper_parsing(format!(
                            "Could not convert [dynamic] to boolean: {v}"
                        ))
                    })?
                }
                "date_detection" => next.date_detection = bool_param(v, "date_detection")?,
                "numeric_detection" => next.numeric_detection = bool_param(v, "numeric_detection")?,
                "dynamic_templates" => {
                    let arr = v.as_array().ok_or_else(|| {
                        EsError::mapper_parsing(
                            "Dynamic template syntax error. An array of named objects is expected.",
                        )
                    })?;
                    let mut tpls = Vec::new();
                    for t in arr {
                        let (name, body) = t
                            .as_object()
                            .filter(|o| o.len() == 1)
                            .and_then(|o| o.iter().next())
                            .and_then(|(n, b)| b.as_object().map(|b| (n.clone(), b.clone())))
                            .ok_or_else(|| {
                                EsError::mapper_parsing("Dynamic template syntax error. An array of named objects is expected.")
                            })?;
                        if !body.contains_key("mapping") && !body.contains_key("runtime") {
                            return Err(EsError::mapper_parsing(format!(
                                "template [{name}] must have either mapping or runtime set"
                            )));
                        }
                        tpls.push(DynamicTemplate { name, body });
                    }
                    next.dynamic_templates = tpls;
                }
                other => {
                    next.root_params.insert(other.to_string(), v.clone());
                }
            }
        }
        if next.fields.len() > next.total_fields_limit {
            return Err(EsError::illegal_argument(format!(
                "Limit of total fields [{}] has been exceeded",
                next.total_fields_limit
            )));
        }
        *self = next;
        Ok(())
    }

    fn merge_properties(&mut self, prefix: &str, props: &Value) -> Result<(), EsError> {
        let props = props
            .as_object()
            .ok_or_else(|| EsError::mapper_parsing("Expected map for property [properties]"))?;
        for (name, def) in props {
            if name.is_empty() {
                return Err(EsError::mapper_parsing(
                    "field name cannot be an empty string",
                ));
            }
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            // Dotted names in mappings are expanded into objects, as Elasticsearch does.
            if let Some((head, _)) = name.split_once('.') {
                let _ = head;
                let parts: Vec<&str> = path.split('.').collect();
                for i in 1..parts.len() {
                    let parent = parts[..i].join(".");
                    self.fields
                        .entry(parent)
                        .or_insert_with(|| FieldMapping::new(FieldType::Object));
                }
            }
            self.merge_field(&path, def, false)?;
        }
        Ok(())
    }

    fn merge_field(&mut self, path: &str, def: &Value, multi: bool) -> Result<(), EsError> {
        let def = def.as_object().ok_or_else(|| {
            EsError::mapper_parsing(format!("Expected map for property [fields] on field [{path}] but got a class java.lang.String"))
        })?;
        let ty = match def.get("type") {
            Some(Value::String(t)) => FieldType::parse(t).ok_or_else(|| {
                EsError::mapper_parsing(format!(
                    "No handler for type [{t}] declared on field [{}]",
                    path.rsplit('.').next().unwrap_or(path)
                ))
            })?,
            Some(other) => {
                return Err(EsError::mapper_parsing(format!(
                    "No handler for type [{other}] declared on field [{path}]"
                )))
            }
            None if def.contains_key("properties") || !def.contains_key("fields") => {
                FieldType::Object
            }
            None => {
                return Err(EsError::mapper_parsing(format!(
                    "No type specified for field [{path}]"
                )))
            }
        };
        if let Some(existing) = self.fields.get(path) {
            let compatible = existing.ty == ty
                || (existing.ty == FieldType::Object && ty == FieldType::Nested)
                || (existing.ty == FieldType::Nested && ty == FieldType::Object);
            if !compatible {
                return Err(EsError::illegal_argument(format!(
                    "mapper [{path}] cannot be changed from type [{}] to [{}]",
                    existing.ty.name(),
                    ty.name()
                )));
            }
        }
        let mut params = Map::new();
        for (k, v) in def {
            if k != "type" && k != "properties" && k != "fields" {
                params.insert(k.clone(), v.clone());
            }
        }
        if ty == FieldType::Alias && params.get("path").and_then(Value::as_str).is_none() {
            return Err(EsError::mapper_parsing(format!(
                "The [path] property must be specified for field [{path}]."
            )));
        }
        if ty == FieldType::ScaledFloat && !params.contains_key("scaling_factor") {
            return Err(EsError::mapper_parsing(format!(
                "Field [scaling_factor] is required for field [{path}]"
            )));
        }
        if let Some(d) = params.get("dynamic") {
            if Dynamic::parse(d).is_none() {
                return Err(EsError::mapper_parsing(format!(
                    "Could not convert [dynamic] to boolean: {d}"
                )));
            }
        }
        let mut fm = FieldMapping {
            ty,
            multi_field: multi,
            params,
        };
        if let Some(existing) = self.fields.get(path) {
            // Keep parameters that the update does not mention.
            for (k, v) in &existing.params {
                fm.params.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        self.fields.insert(path.to_string(), fm);
        if let Some(props) = def.get("properties") {
            self.merge_properties(path, props)?;
        }
        if let Some(fields) = def.get("fields") {
            let fields = fields.as_object().ok_or_else(|| {
                EsError::mapper_parsing(format!(
                    "Expected map for property [fields] on field [{path}]"
                ))
            })?;
            for (sub, subdef) in fields {
                self.merge_field(&format!("{path}.{sub}"), subdef, true)?;
            }
        }
        Ok(())
    }

    /// The mapping in Elasticsearch's JSON form (`{"properties":{...}}`).
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        if self.dynamic != Dynamic::True {
            root.insert("dynamic".into(), self.dynamic.to_json());
        }
        if !self.date_detection {
            root.insert("date_detection".into(), json!(false));
        }
        if self.numeric_detection {
            root.insert("numeric_detection".into(), json!(true));
        }
        if !self.dynamic_templates.is_empty() {
            let t: Vec<Value> = self
                .dynamic_templates
                .iter()
                .map(|t| json!({ t.name.clone(): Value::Object(t.body.clone()) }))
                .collect();
            root.insert("dynamic_templates".into(), Value::Array(t));
        }
        for (k, v) in &self.root_params {
            root.insert(k.clone(), v.clone());
        }
        let mut props = Map::new();
        for (path, fm) in &self.fields {
            insert_tree(&mut props, path, fm, &self.fields);
        }
        if !props.is_empty() {
            root.insert("properties".into(), Value::Object(props));
        }
        Value::Object(root)
    }

    pub fn get(&self, path: &str) -> Option<&FieldMapping> {
        self.fields.get(path)
    }

    /// Resolves aliases: the path whose values a query on `path` should read.
    pub fn resolve<'a>(&'a self, path: &'a str) -> Option<(&'a str, &'a FieldMapping)> {
        let fm = self.fields.get(path)?;
        if fm.ty == FieldType::Alias {
            let target = fm.alias_path()?;
            return self
                .fields
                .get_key_value(target)
                .map(|(k, v)| (k.as_str(), v));
        }
        Some((path, fm))
    }

    /// The effective `dynamic` setting for new fields under `parent` ("" = root).
    fn dynamic_for(&self, parent: &str) -> Dynamic {
        let mut p = parent;
        loop {
            if p.is_empty() {
                return self.dynamic;
            }
            if let Some(d) = self.fields.get(p).and_then(FieldMapping::dynamic) {
                return d;
            }
            p = match p.rfind('.') {
                Some(i) => &p[..i],
                None => "",
            };
        }
    }

    /// Turns a document into typed leaves. New fields are added to `self` following
    /// the dynamic rules; callers work on a copy and persist it when it changed.
    pub fn prepare(&mut self, doc: &Map<String, Value>, id: &str) -> Result<Prepared, EsError> {
        let mut out = Prepared::default();
        let mut added = 0usize;
        self.walk_object("", doc, id, &mut out, &mut added, 0)?;
        if added > 0 && self.fields.len() > self.total_fields_limit {
            return Err(EsError::document_parsing(format!(
                "Limit of total fields [{}] has been exceeded while adding new fields [{}]",
                self.total_fields_limit, added
            )));
        }
        Ok(out)
    }

    fn walk_object(
        &mut self,
        prefix: &str,
        obj: &Map<String, Value>,
        id: &str,
        out: &mut Prepared,
        added: &mut usize,
        depth: usize,
    ) -> Result<(), EsError> {
        if depth > DEFAULT_DEPTH_LIMIT {
            return Err(EsError::document_parsing(format!(
                "Limit of mapping depth [{DEFAULT_DEPTH_LIMIT}] has been exceeded due to object field [{prefix}]"
            )));
        }
        for (key, value) in obj {
            if key.is_empty() || key.starts_with('.') || key.ends_with('.') || key.contains("..") {
                return Err(EsError::document_parsing(format!(
                    "field name cannot contain only whitespace or be empty: ['{key}']"
                )));
            }
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if prefix.is_empty() && key.starts_with('_') && is_metadata_field(key) {
                return Err(EsError::document_parsing(format!(
                    "Field [{key}] is a metadata field and cannot be added inside a document. Use the index API request parameters."
                )));
            }
            // A dotted key `a.b` means objects `a` then `b`.
            if key.contains('.') {
                let parts: Vec<&str> = path.split('.').collect();
                for i in 1..parts.len() {
                    let parent = parts[..i].join(".");
                    match self.fields.get(&parent) {
                        Some(fm) if fm.ty.storage() == StorageClass::Object => {
                            if !fm.enabled() {
                                return Ok(());
                            }
                        }
                        Some(fm) if fm.ty == FieldType::Flattened => {
                            self.add_value(&path, value, id, out, added, depth)?;
                            return Ok(());
                        }
                        Some(fm) => {
                            return Err(EsError::document_parsing(format!(
                                "Could not dynamically add mapping for field [{path}]. Existing mapping for [{parent}] must be of type object but found [{}].",
                                fm.ty.name()
                            )))
                        }
                        None => {
                            let grand = parts[..i - 1].join(".");
                            match self.dynamic_for(&grand) {
                                Dynamic::True | Dynamic::Runtime => {
                                    self.fields.insert(parent, FieldMapping::new(FieldType::Object));
                                    *added += 1;
                                }
                                Dynamic::False => return Ok(()),
                                Dynamic::Strict => return Err(strict_error(parts[i - 1], &grand)),
                            }
                        }
                    }
                }
            }
            self.add_value(&path, value, id, out, added, depth)?;
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        path: &str,
        value: &Value,
        id: &str,
        out: &mut Prepared,
        added: &mut usize,
        depth: usize,
    ) -> Result<(), EsError> {
        match value {
            Value::Null => Ok(()),
            Value::Array(items) => {
                for item in items {
                    self.add_value(path, item, id, out, added, depth + 1)?;
                }
                Ok(())
            }
            Value::Object(obj) => {
                match self.fields.get(path) {
                    Some(fm) if fm.ty.storage() == StorageClass::Object => {
                        if !fm.enabled() {
                            return Ok(());
                        }
                    }
                    Some(fm) if fm.ty == FieldType::Flattened => {
                        flatten_into(path, obj, out, fm.ignore_above());
                        return Ok(());
                    }
                    Some(fm) if matches!(fm.ty, FieldType::GeoPoint | FieldType::Binary) => {
                        return Ok(());
                    }
                    Some(fm) => {
                        return Err(EsError::document_parsing(format!(
                            "failed to parse field [{path}] of type [{}] in document with id '{id}'. Preview of field's value: '{}'",
                            fm.ty.name(),
                            preview(value)
                        )))
                    }
                    None => {
                        let (parent, _) = split_parent(path);
                        match self.dynamic_for(parent) {
                            Dynamic::True | Dynamic::Runtime => {
                                let fm = self
                                    .template_for(path, "object")
                                    .unwrap_or_else(|| FieldMapping::new(FieldType::Object));
                                let is_obj = fm.ty.storage() == StorageClass::Object;
                                self.fields.insert(path.to_string(), fm);
                                *added += 1;
                                if !is_obj {
                                    return self.add_value(path, value, id, out, added, depth);
                                }
                            }
                            Dynamic::False => return Ok(()),
                            Dynamic::Strict => {
                                return Err(strict_error(split_parent(path).1, parent))
                            }
                        }
                    }
                }
                self.walk_object(path, obj, id, out, added, depth + 1)
            }
            scalar => {
                if !self.fields.contains_key(path) {
                    let (parent, leaf) = split_parent(path);
                    match self.dynamic_for(parent) {
                        Dynamic::True | Dynamic::Runtime => {
                            let fm = self.dynamic_field_for(path, scalar);
                            let subs: Vec<(String, FieldMapping)> = multi_fields_of(&fm, path);
                            self.fields.insert(path.to_string(), fm);
                            *added += 1;
                            for (p, f) in subs {
                                self.fields.insert(p, f);
                                *added += 1;
                            }
                        }
                        Dynamic::False => return Ok(()),
                        Dynamic::Strict => return Err(strict_error(leaf, parent)),
                    }
                }
                let fm = match self.fields.get(path) {
                    Some(fm) => fm,
                    None => return Ok(()),
                };
                if fm.ty.storage() == StorageClass::Object {
                    return Err(EsError::document_parsing(format!(
                        "object mapping for [{path}] tried to parse field [{}] as object, but found a concrete value",
                        split_parent(path).1
                    )));
                }
                if fm.ty == FieldType::Alias {
                    return Err(EsError::document_parsing(format!(
                        "Cannot write to a field alias [{path}]."
                    )));
                }
                match coerce(scalar, fm) {
                    Ok(Some(v)) => out.leaves.push(Leaf { path: path.to_string(), value: v }),
                    Ok(None) => {}
                    Err(()) if fm.ignore_malformed() => out.ignored.push(path.to_string()),
                    Err(()) => {
                        return Err(EsError::document_parsing(format!(
                            "failed to parse field [{path}] of type [{}] in document with id '{id}'. Preview of field's value: '{}'",
                            fm.ty.name(),
                            preview(scalar)
                        )))
                    }
                }
                // Multi-fields index the same value again.
                let prefix = format!("{path}.");
                let subs: Vec<(String, FieldMapping)> = self
                    .fields
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, f)| f.multi_field && !k[prefix.len()..].contains('.'))
                    .map(|(k, f)| (k.clone(), f.clone()))
                    .collect();
                for (sub_path, sub) in subs {
                    if let Ok(Some(v)) = coerce(scalar, &sub) {
                        out.leaves.push(Leaf {
                            path: sub_path,
                            value: v,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    fn template_for(&self, path: &str, json_type: &str) -> Option<FieldMapping> {
        let leaf = split_parent(path).1;
        for t in &self.dynamic_templates {
            if t.matches(path, leaf, json_type) {
                let mapping = t.body.get("mapping")?;
                let dynamic_type = match json_type {
                    "string" => "text",
                    other => other,
                };
                let text = mapping
                    .to_string()
                    .replace("{name}", leaf)
                    .replace("{dynamic_type}", dynamic_type);
                let v: Value = serde_json::from_str(&text).ok()?;
                let mut tmp = Mapping::default();
                let mut def = v.as_object()?.clone();
                if !def.contains_key("type") {
                    def.insert(
                        "type".into(),
                        json!(match json_type {
                            "string" => "keyword",
                            "long" => "long",
                            "double" => "float",
                            "boolean" => "boolean",
                            "date" => "date",
                            _ => "object",
                        }),
                    );
                }
                tmp.merge_field(path, &Value::Object(def), false).ok()?;
                let mut fm = tmp.fields.remove(path)?;
                // Keep the multi-fields definition for the caller.
                if let Some(f) = v.get("fields") {
                    fm.params.insert("__fields".into(), f.clone());
                }
                return Some(fm);
            }
        }
        None
    }

    fn dynamic_field_for(&self, path: &str, v: &Value) -> FieldMapping {
        let json_type = match v {
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "double",
            Value::Number(_) => "long",
            Value::String(s) => {
                if self.date_detection
                    && s.len() >= 10
                    && time::parse_iso(s).is_some_and(time::indexable_micros)
                {
                    "date"
                } else if self.numeric_detection && s.parse::<i64>().is_ok() {
                    "long"
                } else if self.numeric_detection && s.parse::<f64>().is_ok() {
                    "double"
                } else {
                    "string"
                }
            }
            _ => "object",
        };
        if let Some(fm) = self.template_for(path, json_type) {
            return fm;
        }
        match json_type {
            "boolean" => FieldMapping::new(FieldType::Boolean),
            "double" => FieldMapping::new(FieldType::Float),
            "long" => FieldMapping::new(FieldType::Long),
            "date" => FieldMapping::new(FieldType::Date),
            _ if TEXT_FIELDS.contains(&path) => FieldMapping::new(FieldType::Text),
            _ if path == "event.original" => FieldMapping::new(FieldType::Keyword)
                .with("index", json!(false))
                .with("doc_values", json!(false)),
            _ => FieldMapping::new(FieldType::Keyword).with("ignore_above", json!(1024)),
        }
    }
}

fn multi_fields_of(fm: &FieldMapping, path: &str) -> Vec<(String, FieldMapping)> {
    let mut out = Vec::new();
    if let Some(Value::Object(f)) = fm.params.get("__fields") {
        let mut tmp = Mapping::default();
        for (sub, def) in f {
            let p = format!("{path}.{sub}");
            if tmp.merge_field(&p, def, true).is_ok() {
                if let Some(sf) = tmp.fields.remove(&p) {
                    out.push((p, sf));
                }
            }
        }
    }
    out
}

fn strict_error(leaf: &str, parent: &str) -> EsError {
    let within = if parent.is_empty() { "_doc" } else { parent };
    EsError::new(
        400,
        "strict_dynamic_mapping_exception",
        format!("[1:1] mapping set to strict, dynamic introduction of [{leaf}] within [{within}] is not allowed"),
    )
}

fn is_metadata_field(key: &str) -> bool {
    matches!(
        key,
        "_id"
            | "_index"
            | "_source"
            | "_routing"
            | "_version"
            | "_seq_no"
            | "_primary_term"
            | "_ignored"
            | "_field_names"
            | "_tier"
            | "_doc_count"
            | "_data_stream_timestamp"
    )
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('.') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn bool_param(v: &Value, name: &str) -> Result<bool, EsError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(EsError::mapper_parsing(format!(
            "Failed to parse value [{v}] as only [true] or [false] are allowed for [{name}]"
        ))),
    }
}

fn preview(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        s.chars().take(40).collect::<String>() + "..."
    } else {
        s
    }
}

fn flatten_into(
    path: &str,
    obj: &Map<String, Value>,
    out: &mut Prepared,
    ignore_above: Option<usize>,
) {
    for (k, v) in obj {
        let p = format!("{path}.{k}");
        match v {
            Value::Object(o) => flatten_into(&p, o, out, ignore_above),
            Value::Array(a) => {
                for item in a {
                    if let Some(s) = scalar_string(item) {
                        if ignore_above.is_none_or(|n| s.chars().count() <= n) {
                            out.leaves.push(Leaf {
                                path: p.clone(),
                                value: LeafValue::Keyword(s),
                            });
                        }
                    }
                }
            }
            other => {
                if let Some(s) = scalar_string(other) {
                    if ignore_above.is_none_or(|n| s.chars().count() <= n) {
                        out.leaves.push(Leaf {
                            path: p,
                            value: LeafValue::Keyword(s),
                        });
                    }
                }
            }
        }
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Coerces a scalar to the field's type, as Elasticsearch does with `coerce: true`.
/// `Ok(None)`: nothing to index (not indexed, over `ignore_above`).
fn coerce(v: &Value, fm: &FieldMapping) -> Result<Option<LeafValue>, ()> {
    if !fm.indexed() {
        return Ok(None);
    }
    match fm.ty.storage() {
        StorageClass::Text => Ok(scalar_string(v).map(LeafValue::Text)),
        StorageClass::Keyword => {
            let s = scalar_string(v).ok_or(())?;
            if fm.ignore_above().is_some_and(|n| s.chars().count() > n) {
                return Ok(None);
            }
            if fm.ty == FieldType::Ip {
                let ip: IpAddr = s.trim().parse().map_err(|_| ())?;
                return Ok(Some(LeafValue::Keyword(ip.to_string())));
            }
            Ok(Some(LeafValue::Keyword(s)))
        }
        StorageClass::Integer => {
            let n = match v {
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        LeafValue::I64(i)
                    } else if let Some(u) = n.as_u64() {
                        LeafValue::U64(u)
                    } else {
                        let f = n.as_f64().ok_or(())?;
                        if !f.is_finite() || f.abs() > 9.2e18 {
                            return Err(());
                        }
                        LeafValue::I64(f.trunc() as i64)
                    }
                }
                Value::String(s) => {
                    let s = s.trim();
                    if let Ok(i) = s.parse::<i64>() {
                        LeafValue::I64(i)
                    } else if let Ok(u) = s.parse::<u64>() {
                        LeafValue::U64(u)
                    } else {
                        let f: f64 = s.parse().map_err(|_| ())?;
                        if !f.is_finite() || f.abs() > 9.2e18 {
                            return Err(());
                        }
                        LeafValue::I64(f.trunc() as i64)
                    }
                }
                _ => return Err(()),
            };
            let (lo, hi): (i64, i64) = match fm.ty {
                FieldType::Integer => (i32::MIN as i64, i32::MAX as i64),
                FieldType::Short => (i16::MIN as i64, i16::MAX as i64),
                FieldType::Byte => (i8::MIN as i64, i8::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            match n {
                LeafValue::I64(i) if i < lo || i > hi => Err(()),
                LeafValue::I64(i) if fm.ty == FieldType::UnsignedLong && i < 0 => Err(()),
                LeafValue::U64(_) if fm.ty != FieldType::UnsignedLong => Err(()),
                other => Ok(Some(other)),
            }
        }
        StorageClass::Float => {
            let f = match v {
                Value::Number(n) => n.as_f64().ok_or(())?,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| ())?,
                _ => return Err(()),
            };
            if !f.is_finite() {
                return Err(());
            }
            Ok(Some(LeafValue::F64(f)))
        }
        StorageClass::Boolean => match v {
            Value::Bool(b) => Ok(Some(LeafValue::Bool(*b))),
            Value::String(s) if s == "true" => Ok(Some(LeafValue::Bool(true))),
            Value::String(s) if s == "false" || s.is_empty() => Ok(Some(LeafValue::Bool(false))),
            _ => Err(()),
        },
        StorageClass::Date => time::parse_value(v, fm.format())
            .filter(|t| time::indexable_micros(*t))
            .map(|t| Some(LeafValue::Date(t)))
            .ok_or(()),
        StorageClass::None | StorageClass::Object => Ok(None),
    }
}

fn insert_tree(
    props: &mut Map<String, Value>,
    path: &str,
    fm: &FieldMapping,
    all: &BTreeMap<String, FieldMapping>,
) {
    // Walk down from the root to the parent's container.
    let parts: Vec<&str> = path.split('.').collect();
    let mut container = props;
    let mut cur = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            cur.push('.');
        }
        cur.push_str(part);
        if i == parts.len() - 1 {
            break;
        }
        let is_multi_parent = all
            .get(&format!("{cur}.{}", parts[i + 1]))
            .is_some_and(|f| f.multi_field)
            && i + 1 == parts.len() - 1;
        let key = if is_multi_parent {
            "fields"
        } else {
            "properties"
        };
        let entry = container
            .entry(part.to_string())
            .or_insert_with(|| json!({}));
        let obj = match entry.as_object_mut() {
            Some(o) => o,
            None => return,
        };
        container = match obj.entry(key).or_insert_with(|| json!({})).as_object_mut() {
            Some(c) => c,
            None => return,
        };
    }
    let leaf = parts.last().copied().unwrap_or(path);
    let mut def = Map::new();
    if fm.ty != FieldType::Object || fm.params.contains_key("enabled") {
        def.insert("type".into(), json!(fm.ty.name()));
    }
    for (k, v) in &fm.params {
        if !k.starts_with("__") {
            def.insert(k.clone(), v.clone());
        }
    }
    let entry = container
        .entry(leaf.to_string())
        .or_insert_with(|| json!({}));
    if let Some(o) = entry.as_object_mut() {
        for (k, v) in def {
            o.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn dynamic_logs_template() {
        let mut m = Mapping::default();
        let p = m
            .prepare(
                &doc(json!({"@timestamp":"2024-01-01T00:00:00Z","message":"Hello World","level":"info","http":{"status":200},"dur":1.5,"ok":true,"event":{"original":"raw"}})),
                "1",
            )
            .unwrap();
        assert_eq!(m.get("message").unwrap().ty, FieldType::Text);
        assert_eq!(m.get("level").unwrap().ty, FieldType::Keyword);
        assert_eq!(m.get("@timestamp").unwrap().ty, FieldType::Date);
        assert_eq!(m.get("http.status").unwrap().ty, FieldType::Long);
        assert_eq!(m.get("dur").unwrap().ty, FieldType::Float);
        assert_eq!(m.get("ok").unwrap().ty, FieldType::Boolean);
        assert!(!m.get("event.original").unwrap().indexed());
        assert!(p.leaves.contains(&Leaf {
            path: "http.status".into(),
            value: LeafValue::I64(200)
        }));
        assert!(!p.leaves.iter().any(|l| l.path == "event.original"));
    }

    #[test]
    fn conflicts_are_errors() {
        let mut m = Mapping::from_json(&json!({"properties":{"n":{"type":"long"}}})).unwrap();
        let e = m.prepare(&doc(json!({"n":"abc"})), "7").unwrap_err();
        assert_eq!(e.kind, "document_parsing_exception");
        assert!(e
            .reason
            .contains("failed to parse field [n] of type [long] in document with id '7'"));
        assert!(m.prepare(&doc(json!({"n":"12"})), "8").is_ok());
        let mut m2 = Mapping::default();
        m2.prepare(&doc(json!({"a":{"b":1}})), "1").unwrap();
        assert!(m2.prepare(&doc(json!({"a":"x"})), "2").is_err());
    }

    #[test]
    fn dotted_keys_equal_objects() {
        let mut m = Mapping::default();
        let p = m
            .prepare(&doc(json!({"source.ip":"10.0.0.1"})), "1")
            .unwrap();
        assert_eq!(m.get("source").unwrap().ty, FieldType::Object);
        assert_eq!(p.leaves[0].path, "source.ip");
    }

    #[test]
    fn roundtrip_json_with_multi_fields() {
        let src = json!({"properties":{"msg":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":256}}},"host":{"properties":{"name":{"type":"keyword"}}}}});
        let m = Mapping::from_json(&src).unwrap();
        assert_eq!(m.to_json(), src);
        assert!(m.get("msg.keyword").unwrap().multi_field);
        let mut m = m;
        let p = m.prepare(&doc(json!({"msg":"Hi there"})), "1").unwrap();
        assert_eq!(p.leaves.len(), 2);
    }

    #[test]
    fn change_of_type_rejected_and_unknown_type() {
        let mut m = Mapping::from_json(&json!({"properties":{"a":{"type":"keyword"}}})).unwrap();
        let e = m
            .merge_json(&json!({"properties":{"a":{"type":"long"}}}))
            .unwrap_err();
        assert_eq!(
            e.reason,
            "mapper [a] cannot be changed from type [keyword] to [long]"
        );
        let e = Mapping::from_json(&json!({"properties":{"a":{"type":"bogus"}}})).unwrap_err();
        assert_eq!(e.kind, "mapper_parsing_exception");
    }

    #[test]
    fn strict_and_templates() {
        let mut m =
            Mapping::from_json(&json!({"dynamic":"strict","properties":{"a":{"type":"keyword"}}}))
                .unwrap();
        assert_eq!(
            m.prepare(&doc(json!({"b":1})), "1").unwrap_err().kind,
            "strict_dynamic_mapping_exception"
        );
        let mut m = Mapping::from_json(&json!({"dynamic_templates":[{"strings_as_text":{"match_mapping_type":"string","match":"*_txt","mapping":{"type":"text"}}}]})).unwrap();
        m.prepare(&doc(json!({"a_txt":"x y","b":"z"})), "1")
            .unwrap();
        assert_eq!(m.get("a_txt").unwrap().ty, FieldType::Text);
        assert_eq!(m.get("b").unwrap().ty, FieldType::Keyword);
    }

    #[test]
    fn total_fields_limit() {
        let mut m = Mapping {
            total_fields_limit: 3,
            ..Default::default()
        };
        let e = m
            .prepare(&doc(json!({"a":1,"b":2,"c":3,"d":4})), "1")
            .unwrap_err();
        assert!(e.reason.contains("Limit of total fields [3]"));
    }

    #[test]
    fn dates_the_index_cannot_hold() {
        // Past 2262 a date overflows the index's nanoseconds: a new field holding one
        // is not detected as a date, and a date field refuses it.
        let mut m = Mapping::default();
        let p = m
            .prepare(&doc(json!({"far": "9181-11-27T10:00:00Z"})), "1")
            .expect("a string field");
        assert!(p
            .leaves
            .iter()
            .all(|l| !matches!(l.value, LeafValue::Date(_))));
        let mut m = Mapping::default();
        m.prepare(&doc(json!({"seen": "2026-11-27T10:00:00Z"})), "1")
            .expect("a date field");
        assert!(m
            .prepare(&doc(json!({"seen": "9181-11-27T10:00:00Z"})), "2")
            .is_err());
    }

    #[test]
    fn wildcard() {
        assert!(wildcard_match("logs-*", "logs-app"));
        assert!(!wildcard_match("logs-*", "metrics"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
    }
}
