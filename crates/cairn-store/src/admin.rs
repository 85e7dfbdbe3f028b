//! Index administration with Elasticsearch's rules: index names, settings,
//! composable/component/legacy templates, data streams, ILM policies, retention and
//! the resolution of index expressions (comma lists, wildcards, exclusions).

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_core::mapping::{wildcard_match, Mapping};
use cairn_core::time::{self, now_micros};
use cairn_core::EsError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::meta::{DataStreamMeta, IlmPolicyMeta, IndexMeta, MetaState};
use crate::{IndexHandle, Store};

/// Settings, mapping and aliases that templates give a new index.
type TemplateDefaults = (BTreeMap<String, Value>, Mapping, Map<String, Value>);

/// Checks an index (or data stream) name against Elasticsearch's rules.
pub fn validate_index_name(name: &str) -> Result<(), EsError> {
    let bad = |why: &str| Err(EsError::invalid_index_name(name, why));
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name != name.to_lowercase() {
        return bad("must be lowercase");
    }
    if let Some(c) = name.chars().find(|c| "\\/*?\"<>| ,#:".contains(*c)) {
        return bad(&format!(
            "must not contain the following characters [{}]",
            if c == ' ' {
                "' '".to_string()
            } else {
                c.to_string()
            }
        ));
    }
    // Cairn's own rule: control characters (NUL, escapes) would reach logs, `_cat`
    // tables and terminals unescaped.
    if name.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    if name.starts_with(['-', '_', '+']) {
        return bad("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return bad("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return bad("index name is too long, (".to_string().as_str());
    }
    Ok(())
}

/// Flattens `{"index":{"number_of_shards":1}}` / `{"number_of_shards":"1"}` into
/// `index.number_of_shards = "1"`, with values as strings as Elasticsearch keeps them.
pub fn flatten_settings(v: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            Value::Null => {}
            other => {
                let key = if prefix.starts_with("index.") {
                    prefix.to_string()
                } else {
                    format!("index.{prefix}")
                };
                let val = match other {
                    Value::String(s) => Value::String(s.clone()),
                    Value::Array(a) => Value::Array(
                        a.iter()
                            .map(|x| {
                                Value::String(
                                    x.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| x.to_string()),
                                )
                            })
                            .collect(),
                    ),
                    x => Value::String(x.to_string()),
                };
                out.insert(key, val);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}

/// Nests flat settings back: `{"index":{"number_of_shards":"1"}}`.
pub fn nest_settings(flat: &BTreeMap<String, Value>) -> Value {
    fn put(obj: &mut Map<String, Value>, parts: &[&str], v: &Value) {
        match parts {
            [] => {}
            [last] => {
                obj.insert(last.to_string(), v.clone());
            }
            [head, rest @ ..] => {
                let e = obj.entry(head.to_string()).or_insert_with(|| json!({}));
                if !e.is_object() {
                    *e = json!({});
                }
                if let Value::Object(child) = e {
                    put(child, rest, v);
                }
            }
        }
    }
    let mut root = Map::new();
    for (k, v) in flat {
        let parts: Vec<&str> = k.split('.').collect();
        put(&mut root, &parts, v);
    }
    Value::Object(root)
}

fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether a template pattern applies to an index name. Cairn's internal `.cairn-*`
/// indices (UI objects, alert state) take only templates that name dot-indices
/// explicitly, so a user's catch-all `*` template (with its retention or mappings)
/// never reaches them, as Elasticsearch keeps global templates off hidden indices.
fn template_matches(pattern: &str, name: &str) -> bool {
    wildcard_match(pattern, name) && (!name.starts_with(".cairn-") || pattern.starts_with('.'))
}

/// Options of index expression resolution.
#[derive(Debug, Clone, Copy)]
pub struct ResolveOptions {
    pub ignore_unavailable: bool,
    pub allow_no_indices: bool,
    pub expand_hidden: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            ignore_unavailable: false,
            allow_no_indices: true,
            expand_hidden: false,
        }
    }
}

impl Store {
    /// The composable template that applies to `name`, if any: (template name, body).
    fn matching_template(state: &MetaState, name: &str) -> Option<(String, Value)> {
        let mut best: Option<(i64, String, Value)> = None;
        for (tname, t) in &state.index_templates {
            let pats = patterns_of(t.get("index_patterns"));
            if pats.iter().any(|p| template_matches(p, name)) {
                let prio = t.get("priority").and_then(Value::as_i64).unwrap_or(0);
                if best.as_ref().is_none_or(|b| prio > b.0) {
                    best = Some((prio, tname.clone(), t.clone()));
                }
            }
        }
        best.map(|(_, n, t)| (n, t))
    }

    /// Settings and mappings that templates give a new index called `name`.
    fn template_defaults(state: &MetaState, name: &str) -> Result<TemplateDefaults, EsError> {
        let mut settings = BTreeMap::new();
        let mut mapping = Mapping::default();
        let mut aliases = Map::new();
        if let Some((_, t)) = Self::matching_template(state, name) {
            let mut parts: Vec<Value> = Vec::new();
            for c in t
                .get("composed_of")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(ct) = c.as_str().and_then(|c| state.component_templates.get(c)) {
                    parts.push(ct.get("template").cloned().unwrap_or(Value::Null));
                }
            }
            parts.push(t.get("template").cloned().unwrap_or(Value::Null));
            for p in parts {
                if let Some(s) = p.get("settings") {
                    settings.extend(flatten_settings(s));
                }
                if let Some(m) = p.get("mappings") {
                    mapping.merge_json(m)?;
                }
                if let Some(Value::Object(a)) = p.get("aliases") {
                    aliases.extend(a.clone());
                }
            }
            return Ok((settings, mapping, aliases));
        }
        // Legacy templates, lowest order first so higher orders win.
        let mut legacy: Vec<(i64, &Value)> = state
            .legacy_templates
            .values()
            .filter(|t| {
                patterns_of(t.get("index_patterns").or(t.get("template")))
                    .iter()
                    .any(|p| template_matches(p, name))
            })
            .map(|t| (t.get("order").and_then(Value::as_i64).unwrap_or(0), t))
            .collect();
        legacy.sort_by_key(|(o, _)| *o);
        for (_, t) in legacy {
            if let Some(s) = t.get("settings") {
                settings.extend(flatten_settings(s));
            }
            if let Some(m) = t.get("mappings") {
                mapping.merge_json(m)?;
            }
            if let Some(Value::Object(a)) = t.get("aliases") {
                aliases.extend(a.clone());
            }
        }
        Ok((settings, mapping, aliases))
    }

    /// The settings an index has, or would get from templates if a write created it
    /// now (for data streams: those of the write index).
    pub fn effective_settings(&self, name: &str) -> BTreeMap<String, Value> {
        let state = self.inner.meta.lock();
        let concrete = state
            .data_streams
            .get(name)
            .and_then(|ds| ds.backing_indices.last().cloned())
            .unwrap_or_else(|| name.to_string());
        if let Some(im) = state.indexes.get(&concrete) {
            let mut s = im.settings.clone();
            // Data streams read pipelines from their template, as they roll over.
            if let Some(ds) = im
                .data_stream
                .as_ref()
                .and_then(|d| state.data_streams.get(d))
            {
                if let Some(t) = state
                    .index_templates
                    .get(&ds.template)
                    .and_then(|t| t.pointer("/template/settings"))
                {
                    for (k, v) in flatten_settings(t) {
                        s.entry(k).or_insert(v);
                    }
                }
            }
            return s;
        }
        Self::template_defaults(&state, name)
            .map(|(s, _, _)| s)
            .unwrap_or_default()
    }

    /// `PUT /{index}`.
    pub fn create_index(&self, name: &str, body: &Value) -> Result<Arc<IndexHandle>, EsError> {
        validate_index_name(name)?;
        let mut state = self.inner.meta.lock();
        self.create_index_locked(&mut state, name, body, None)
    }

    fn create_index_locked(
        &self,
        state: &mut MetaState,
        name: &str,
        body: &Value,
        data_stream: Option<String>,
    ) -> Result<Arc<IndexHandle>, EsError> {
        if let Some(im) = state.indexes.get(name) {
            return Err(EsError::resource_already_exists(name, &im.uuid));
        }
        if state.data_streams.contains_key(name) {
            return Err(EsError::invalid_index_name(
                name,
                "already exists as data stream",
            ));
        }
        if let Some(b) = body.as_object() {
            for k in b.keys() {
                if !["settings", "mappings", "aliases"].contains(&k.as_str()) {
                    return Err(EsError::parsing(format!(
                        "unknown key [{k}] for create index"
                    )));
                }
            }
        } else if !body.is_null() {
            return Err(EsError::parsing("request body must be an object"));
        }
        // A data stream's backing index takes the templates of the stream's name.
        let template_name = data_stream.as_deref().unwrap_or(name);
        let (mut settings, mut mapping, mut aliases) =
            Self::template_defaults(state, template_name)?;
        if let Some(s) = body.get("settings") {
            settings.extend(flatten_settings(s));
        }
        if let Some(m) = body.get("mappings") {
            mapping.merge_json(m)?;
        }
        if let Some(Value::Object(a)) = body.get("aliases") {
            aliases.extend(a.clone());
        }
        if let Some(l) = settings.get("index.mapping.total_fields.limit") {
            mapping.total_fields_limit = crate::setting_u64(l).ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "Failed to parse value [{l}] for setting [index.mapping.total_fields.limit]"
                ))
            })? as usize;
        }
        for key in ["index.cairn.retention", "index.lifecycle.retention"] {
            if let Some(r) = settings.get(key).and_then(Value::as_str) {
                if time::parse_duration(r).is_none() {
                    return Err(EsError::illegal_argument(format!(
                        "failed to parse setting [{key}] with value [{r}] as a time value"
                    )));
                }
            }
        }
        let uuid = uuid::Uuid::new_v4();
        let now_ms = now_micros() / 1000;
        settings
            .entry("index.number_of_shards".into())
            .or_insert(json!("1"));
        settings
            .entry("index.number_of_replicas".into())
            .or_insert(json!("0"));
        settings.insert("index.uuid".into(), json!(uuid.to_string()));
        settings.insert("index.creation_date".into(), json!(now_ms.to_string()));
        settings.insert("index.provided_name".into(), json!(name));
        settings.insert("index.version.created".into(), json!("8512000"));
        if data_stream.is_some() || is_hidden_name(name) {
            settings
                .entry("index.hidden".into())
                .or_insert(json!("true"));
        }
        let im = IndexMeta {
            uuid: uuid.to_string(),
            created_millis: now_ms,
            settings,
            mappings: mapping.to_json(),
            aliases,
            data_stream,
        };
        let h = self.register_index(state, name, im, mapping);
        self.save_meta(state)?;
        tracing::info!(index = name, uuid = %h.uuid_str, "index created");
        Ok(h)
    }

    /// The index a write to `name` goes to, creating it (or its data stream) as
    /// Elasticsearch's auto-create does.
    pub async fn resolve_write_index(&self, name: &str) -> Result<Arc<IndexHandle>, EsError> {
        {
            let state = self.inner.meta.lock();
            if let Some(ds) = state.data_streams.get(name) {
                let w = ds.backing_indices.last().cloned().unwrap_or_default();
                drop(state);
                return self.index(&w).ok_or_else(|| EsError::index_not_found(&w));
            }
        }
        if let Some(h) = self.index(name) {
            return Ok(h);
        }
        validate_index_name(name)?;
        let mut state = self.inner.meta.lock();
        // Re-check under the lock: another request may have created it.
        if let Some(h) = self.index(name) {
            return Ok(h);
        }
        if let Some(ds) = state.data_streams.get(name) {
            let w = ds.backing_indices.last().cloned().unwrap_or_default();
            return self.index(&w).ok_or_else(|| EsError::index_not_found(&w));
        }
        if let Some((tname, t)) = Self::matching_template(&state, name) {
            if t.get("data_stream").is_some_and(|d| !d.is_null()) {
                return self.create_data_stream_locked(&mut state, name, &tname);
            }
        }
        self.create_index_locked(&mut state, name, &Value::Null, None)
    }

    fn create_data_stream_locked(
        &self,
        state: &mut MetaState,
        name: &str,
        template: &str,
    ) -> Result<Arc<IndexHandle>, EsError> {
        let date = DateTime::<Utc>::from_timestamp_micros(now_micros())
            .unwrap_or_default()
            .format("%Y.%m.%d");
        let backing = format!(".ds-{name}-{date}-000001");
        // Data streams always map @timestamp as a date.
        let body = json!({"mappings": {"properties": {"@timestamp": {"type": "date"}}}});
        let lifecycle = state
            .index_templates
            .get(template)
            .and_then(|t| t.pointer("/template/lifecycle").cloned());
        let h = self.create_index_locked(state, &backing, &body, Some(name.to_string()))?;
        state.data_streams.insert(
            name.to_string(),
            DataStreamMeta {
                backing_indices: vec![backing],
                generation: 1,
                template: template.to_string(),
                created_millis: now_micros() / 1000,
                lifecycle,
            },
        );
        self.save_meta(state)?;
        tracing::info!(data_stream = name, "data stream created");
        Ok(h)
    }

    /// `PUT /_data_stream/{name}`.
    pub fn create_data_stream(&self, name: &str) -> Result<(), EsError> {
        validate_index_name(name)?;
        let mut state = self.inner.meta.lock();
        if state.data_streams.contains_key(name) {
            return Err(EsError::new(
                400,
                "resource_already_exists_exception",
                format!("data_stream [{name}] already exists"),
            ));
        }
        if state.indexes.contains_key(name) {
            return Err(EsError::illegal_argument(format!(
                "data_stream [{name}] conflicts with index [{name}]"
            )));
        }
        match Self::matching_template(&state, name) {
            Some((tname, t)) if t.get("data_stream").is_some_and(|d| !d.is_null()) => self
                .create_data_stream_locked(&mut state, name, &tname)
                .map(|_| ()),
            _ => Err(EsError::illegal_argument(format!(
                "no matching index template found for data stream [{name}]"
            ))),
        }
    }

    /// Names of the data streams matching an expression (comma list, wildcards).
    pub fn data_stream_names(&self, expr: &str) -> Vec<String> {
        let state = self.inner.meta.lock();
        let pats: Vec<&str> = if expr.is_empty() || expr == "_all" {
            vec!["*"]
        } else {
            expr.split(',').collect()
        };
        state
            .data_streams
            .keys()
            .filter(|n| {
                pats.iter()
                    .any(|p| wildcard_match(p, n) && (!p.contains('*') || self.visible(n)))
            })
            .cloned()
            .collect()
    }

    /// `GET /_data_stream/{name}` body.
    pub fn get_data_streams(&self, expr: &str) -> Result<Value, EsError> {
        let names = self.data_stream_names(expr);
        if names.is_empty() && !expr.contains('*') && !expr.is_empty() && expr != "_all" {
            return Err(EsError::index_not_found(expr));
        }
        let state = self.inner.meta.lock();
        let mut out = Vec::new();
        for n in names {
            let Some(ds) = state.data_streams.get(&n) else {
                continue;
            };
            let indices: Vec<Value> = ds
                .backing_indices
                .iter()
                .map(|b| {
                    json!({
                        "index_name": b,
                        "index_uuid": state.indexes.get(b).map(|i| i.uuid.clone()).unwrap_or_default(),
                        "prefer_ilm": false,
                        "managed_by": if ds.lifecycle.is_some() { "Data stream lifecycle" } else { "Unmanaged" }
                    })
                })
                .collect();
            let mut o = json!({
                "name": n,
                "timestamp_field": {"name": "@timestamp"},
                "indices": indices,
                "generation": ds.generation,
                "status": "GREEN",
                "template": ds.template,
                "hidden": false,
                "system": false,
                "allow_custom_routing": false,
                "replicated": false,
                "rollover_on_write": false,
            });
            if let Some(l) = &ds.lifecycle {
                o["lifecycle"] = l.clone();
            }
            out.push(o);
        }
        Ok(json!({ "data_streams": out }))
    }

    /// `DELETE /_data_stream/{name}`.
    pub async fn delete_data_streams(&self, expr: &str) -> Result<(), EsError> {
        let names = self.data_stream_names(expr);
        if names.is_empty() && !expr.contains('*') {
            return Err(EsError::index_not_found(expr));
        }
        for n in names {
            let backing = {
                let mut state = self.inner.meta.lock();
                let ds = state.data_streams.remove(&n);
                let backing = ds.map(|d| d.backing_indices).unwrap_or_default();
                for b in &backing {
                    state.indexes.remove(b);
                }
                self.save_meta(&state)?;
                backing
            };
            for b in backing {
                self.unregister_index(&b).await?;
            }
        }
        Ok(())
    }

    /// `PUT /_data_stream/{name}/_lifecycle`.
    pub fn put_data_stream_lifecycle(&self, expr: &str, body: &Value) -> Result<(), EsError> {
        if let Some(r) = body.get("data_retention").and_then(Value::as_str) {
            if time::parse_duration(r).is_none() {
                return Err(EsError::illegal_argument(format!(
                    "failed to parse setting [data_retention] with value [{r}] as a time value"
                )));
            }
        }
        let names = self.data_stream_names(expr);
        if names.is_empty() {
            return Err(EsError::index_not_found(expr));
        }
        let mut state = self.inner.meta.lock();
        for n in names {
            if let Some(ds) = state.data_streams.get_mut(&n) {
                ds.lifecycle = Some(body.clone());
            }
        }
        self.save_meta(&state)
    }

    /// Resolves an index expression to live indexes (data streams to their backing
    /// indices), with Elasticsearch's wildcard and exclusion rules.
    pub fn resolve_indices(
        &self,
        expr: &str,
        opts: ResolveOptions,
    ) -> Result<Vec<Arc<IndexHandle>>, EsError> {
        let state = self.inner.meta.lock();
        let mut selected: Vec<String> = Vec::new();
        let parts: Vec<&str> = if expr.is_empty() || expr == "_all" {
            vec!["*"]
        } else {
            expr.split(',').map(str::trim).collect()
        };
        for part in parts {
            if part.is_empty() {
                continue;
            }
            if let Some(excl) = part.strip_prefix('-').filter(|_| !selected.is_empty()) {
                selected.retain(|n| !wildcard_match(excl, n));
                continue;
            }
            if part.contains('*') {
                let hidden_ok = opts.expand_hidden || part.starts_with('.');
                for (n, im) in &state.indexes {
                    let hidden = im.settings.get("index.hidden").and_then(Value::as_str)
                        == Some("true")
                        || is_hidden_name(n);
                    if wildcard_match(part, n)
                        && (!hidden || hidden_ok)
                        && !n.starts_with(".cairn-")
                        && self.visible(n)
                    {
                        selected.push(n.clone());
                    }
                }
                for (n, ds) in &state.data_streams {
                    if wildcard_match(part, n) && self.visible(n) {
                        selected.extend(ds.backing_indices.iter().cloned());
                    }
                }
                for (n, im) in &state.indexes {
                    if im.aliases.keys().any(|a| wildcard_match(part, a)) && self.visible(n) {
                        selected.push(n.clone());
                    }
                }
            } else if state.indexes.contains_key(part) {
                selected.push(part.to_string());
            } else if let Some(ds) = state.data_streams.get(part) {
                selected.extend(ds.backing_indices.iter().cloned());
            } else {
                let by_alias: Vec<String> = state
                    .indexes
                    .iter()
                    .filter(|(_, im)| im.aliases.contains_key(part))
                    .map(|(n, _)| n.clone())
                    .collect();
                if !by_alias.is_empty() {
                    selected.extend(by_alias);
                } else if !opts.ignore_unavailable {
                    return Err(EsError::index_not_found(part));
                }
            }
        }
        selected.sort();
        selected.dedup();
        drop(state);
        let out: Vec<Arc<IndexHandle>> = selected.iter().filter_map(|n| self.index(n)).collect();
        if out.is_empty() && !opts.allow_no_indices {
            return Err(EsError::index_not_found(expr));
        }
        Ok(out)
    }

    /// `DELETE /{index}`: names or comma lists; wildcards refused
    /// (`action.destructive_requires_name: true`).
    pub async fn delete_indices(&self, expr: &str) -> Result<(), EsError> {
        if expr.is_empty() || expr == "_all" || expr.contains('*') {
            return Err(EsError::illegal_argument(
                "Wildcard expressions or all indices are not allowed",
            ));
        }
        let mut names = Vec::new();
        {
            let state = self.inner.meta.lock();
            for part in expr.split(',') {
                if let Some(im) = state.indexes.get(part) {
                    if let Some(ds) = &im.data_stream {
                        return Err(EsError::illegal_argument(format!(
                            "index [{part}] is the write index for data stream [{ds}] and cannot be deleted"
                        )));
                    }
                    names.push(part.to_string());
                } else if state.data_streams.contains_key(part) {
                    return Err(EsError::illegal_argument(format!(
                        "The provided expression [{part}] matches a data stream, specify the corresponding concrete indices instead."
                    )));
                } else {
                    return Err(EsError::index_not_found(part));
                }
            }
        }
        for n in names {
            {
                let mut state = self.inner.meta.lock();
                state.indexes.remove(&n);
                self.save_meta(&state)?;
            }
            self.unregister_index(&n).await?;
            tracing::info!(index = %n, "index deleted");
        }
        Ok(())
    }

    /// `GET /{index}` entry for one index.
    pub fn index_json(&self, name: &str) -> Option<Value> {
        let state = self.inner.meta.lock();
        let im = state.indexes.get(name)?;
        let h = self.index(name)?;
        let mut o = json!({
            "aliases": im.aliases,
            "mappings": h.mapping().to_json(),
            "settings": nest_settings(&im.settings),
        });
        if let Some(ds) = &im.data_stream {
            o["data_stream"] = json!(ds);
        }
        Some(o)
    }

    pub fn index_settings(&self, name: &str) -> Option<BTreeMap<String, Value>> {
        self.inner
            .meta
            .lock()
            .indexes
            .get(name)
            .map(|im| im.settings.clone())
    }

    /// `PUT /{index}/_settings` for the dynamic settings Cairn honours.
    pub fn update_settings(&self, name: &str, body: &Value) -> Result<(), EsError> {
        let flat = flatten_settings(body.get("settings").unwrap_or(body));
        let mut state = self.inner.meta.lock();
        let im = state
            .indexes
            .get_mut(name)
            .ok_or_else(|| EsError::index_not_found(name))?;
        for (k, v) in flat {
            if [
                "index.number_of_shards",
                "index.uuid",
                "index.creation_date",
                "index.provided_name",
            ]
            .contains(&k.as_str())
            {
                return Err(EsError::illegal_argument(format!(
                    "Can't update non dynamic settings [[{k}]] for open indices [[{name}]]"
                )));
            }
            im.settings.insert(k, v);
        }
        let limit = im
            .settings
            .get("index.mapping.total_fields.limit")
            .and_then(crate::setting_u64);
        if let (Some(l), Some(h)) = (limit, self.index(name)) {
            let mut m = (*h.mapping()).clone();
            m.total_fields_limit = l as usize;
            *h.mapping.write() = Arc::new(m);
        }
        self.save_meta(&state)
    }

    /// `PUT /{index}/_mapping`.
    pub fn put_mapping(&self, name: &str, body: &Value) -> Result<(), EsError> {
        let h = self
            .index(name)
            .ok_or_else(|| EsError::index_not_found(name))?;
        let mut state = self.inner.meta.lock();
        let mut current = h.mapping.write();
        let mut m = (**current).clone();
        m.merge_json(body)?;
        if let Some(im) = state.indexes.get_mut(name) {
            im.mappings = m.to_json();
        }
        self.save_meta(&state)?;
        *current = Arc::new(m);
        Ok(())
    }

    /// Retention of an index in microseconds: data stream lifecycle, then the ILM
    /// policy's delete phase, then `index.cairn.retention`.
    pub fn retention_of(&self, name: &str) -> Option<i64> {
        let state = self.inner.meta.lock();
        let im = state.indexes.get(name)?;
        if let Some(ds) = im
            .data_stream
            .as_ref()
            .and_then(|d| state.data_streams.get(d))
        {
            if let Some(r) = ds
                .lifecycle
                .as_ref()
                .and_then(|l| l.get("data_retention"))
                .and_then(Value::as_str)
                .and_then(time::parse_duration)
            {
                return Some(r);
            }
        }
        let policy = im
            .settings
            .get("index.lifecycle.name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                im.data_stream
                    .as_ref()
                    .and_then(|d| state.data_streams.get(d))
                    .and_then(|ds| {
                        state
                            .index_templates
                            .get(&ds.template)
                            .and_then(|t| t.pointer("/template/settings"))
                            .map(flatten_settings)
                            .and_then(|s| {
                                s.get("index.lifecycle.name")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                            })
                    })
            });
        if let Some(p) = policy.and_then(|p| state.ilm_policies.get(&p)) {
            if let Some(r) = p
                .policy
                .pointer("/phases/delete/min_age")
                .and_then(Value::as_str)
                .and_then(time::parse_duration)
            {
                return Some(r);
            }
        }
        ["index.cairn.retention", "index.lifecycle.retention"]
            .iter()
            .find_map(|k| {
                im.settings
                    .get(*k)
                    .and_then(Value::as_str)
                    .and_then(time::parse_duration)
            })
    }

    /// Deletes every partition past its index's retention. Returns how many.
    pub async fn run_retention(&self) -> usize {
        let now = now_micros();
        let mut n = 0;
        for h in self.all_indexes() {
            if let Some(r) = self.retention_of(&h.name) {
                n += self.drop_partitions_before(&h, now - r).await;
            }
        }
        n
    }

    pub fn put_ilm_policy(&self, name: &str, body: &Value) -> Result<u64, EsError> {
        let policy = body.get("policy").cloned().ok_or_else(|| {
            EsError::parsing("[put_lifecycle_request] failed to parse field [policy]")
        })?;
        if let Some(min_age) = policy
            .pointer("/phases/delete/min_age")
            .and_then(Value::as_str)
        {
            if time::parse_duration(min_age).is_none() {
                return Err(EsError::illegal_argument(format!(
                    "failed to parse [min_age] with value [{min_age}] as a time value"
                )));
            }
        }
        let mut state = self.inner.meta.lock();
        let version = state
            .ilm_policies
            .get(name)
            .map(|p| p.version + 1)
            .unwrap_or(1);
        state.ilm_policies.insert(
            name.to_string(),
            IlmPolicyMeta {
                policy,
                version,
                modified_millis: now_micros() / 1000,
            },
        );
        self.save_meta(&state)?;
        Ok(version)
    }
}

fn patterns_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}
