//! The document as processors see it: `_source` fields addressed by dotted paths, plus the
//! `_index`, `_id` and `_ingest.*` metadata, with Elasticsearch's path errors.

use std::time::Instant;

use cairn_core::error::EsError;
use serde_json::{Map, Value};

/// One document going through a pipeline (what a bulk item or a `_simulate` doc carries).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestDocument {
    /// The document's `_source`.
    pub source: Map<String, Value>,
    /// `_index` (processors may change it by setting `_index`).
    pub index: String,
    /// `_id` (processors may set or remove it).
    pub id: Option<String>,
    /// `_ingest.timestamp`: when ingest started, epoch milliseconds.
    pub ingest_timestamp: i64,
}

impl IngestDocument {
    /// A document with the given source, index and id, stamped now.
    pub fn new(source: Map<String, Value>, index: impl Into<String>, id: Option<String>) -> Self {
        IngestDocument {
            source,
            index: index.into(),
            id,
            ingest_timestamp: chrono::Utc::now().timestamp_millis(),
        }
    }

    /// `_ingest.timestamp` as Elasticsearch renders it (RFC 3339, UTC, milliseconds).
    pub fn ingest_timestamp_string(&self) -> String {
        millis_to_rfc3339(self.ingest_timestamp)
    }
}

pub(crate) fn millis_to_rfc3339(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// The Java class name Elasticsearch prints for a value in its error messages.
pub(crate) fn java_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.HashMap",
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    "java.lang.Integer"
                } else {
                    "java.lang.Long"
                }
            } else if n.is_u64() {
                "java.math.BigInteger"
            } else {
                "java.lang.Double"
            }
        }
    }
}

fn iae(msg: String) -> EsError {
    EsError::illegal_argument(msg)
}

/// Where a path points.
enum Root<'p> {
    Source(Vec<&'p str>),
    Ingest(Vec<&'p str>),
    Index,
    Id,
}

fn split_path(path: &str) -> Result<Root<'_>, EsError> {
    if path.is_empty() {
        return Err(iae("path cannot be null nor empty".into()));
    }
    if path == "_index" {
        return Ok(Root::Index);
    }
    if path == "_id" {
        return Ok(Root::Id);
    }
    let (rest, ingest) = if let Some(r) = path.strip_prefix("_ingest.") {
        (r, true)
    } else if path == "_ingest" {
        return Ok(Root::Ingest(Vec::new()));
    } else if let Some(r) = path.strip_prefix("_source.") {
        (r, false)
    } else if path == "_source" {
        return Ok(Root::Source(Vec::new()));
    } else {
        (path, false)
    };
    let segs: Vec<&str> = rest.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(iae(format!("path [{path}] is not valid")));
    }
    Ok(if ingest {
        Root::Ingest(segs)
    } else {
        Root::Source(segs)
    })
}

/// Execution state of one document: the document, the ingest metadata beyond
/// `timestamp` (`on_failure_*`, `_grok_match_index`, values set under `_ingest.`), the
/// time budget and the chain of pipelines being run.
pub(crate) struct Ctx<'a> {
    pub doc: &'a mut IngestDocument,
    pub meta: Map<String, Value>,
    pub deadline: Instant,
    pub budget_desc: String,
    pub budget_exceeded: bool,
    pub stack: Vec<String>,
    pub trace: Option<Vec<Value>>,
}

impl<'a> Ctx<'a> {
    pub fn new(doc: &'a mut IngestDocument, budget: &crate::Budget, trace: bool) -> Self {
        Ctx {
            doc,
            meta: Map::new(),
            deadline: Instant::now() + budget.per_document,
            budget_desc: format!("{}ms", budget.per_document.as_millis()),
            budget_exceeded: false,
            stack: Vec::new(),
            trace: if trace { Some(Vec::new()) } else { None },
        }
    }

    /// Fails once the per-document budget is spent; `what` says where we were.
    pub fn check_budget(&mut self, what: &str) -> Result<(), EsError> {
        if self.budget_exceeded || Instant::now() >= self.deadline {
            self.budget_exceeded = true;
            let pipeline = self.stack.last().cloned().unwrap_or_default();
            return Err(iae(format!(
                "ingest pipeline [{pipeline}] exceeded the per-document time budget of {} while running {what}",
                self.budget_desc
            )));
        }
        Ok(())
    }

    /// The `_ingest` object: metadata plus `timestamp`.
    pub fn ingest_object(&self) -> Map<String, Value> {
        let mut m = self.meta.clone();
        m.insert(
            "timestamp".into(),
            Value::String(self.doc.ingest_timestamp_string()),
        );
        m
    }

    /// `Ok(Some)` when the path resolves, `Ok(None)`/`Err` as Elasticsearch's `getFieldValue`.
    pub fn get(&self, path: &str) -> Result<Value, EsError> {
        match split_path(path)? {
            Root::Index => Ok(Value::String(self.doc.index.clone())),
            Root::Id => Ok(self
                .doc
                .id
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null)),
            Root::Ingest(segs) => {
                if segs.is_empty() {
                    return Ok(Value::Object(self.ingest_object()));
                }
                if segs.len() == 1 && segs[0] == "timestamp" {
                    return Ok(Value::String(self.doc.ingest_timestamp_string()));
                }
                resolve(&self.meta, &segs, path).cloned()
            }
            Root::Source(segs) => {
                if segs.is_empty() {
                    return Ok(Value::Object(self.doc.source.clone()));
                }
                resolve(&self.doc.source, &segs, path).cloned()
            }
        }
    }

    /// The value, or `None` if the path does not resolve (Elasticsearch's `hasField` false).
    pub fn get_opt(&self, path: &str) -> Option<Value> {
        self.get(path).ok()
    }

    /// Does the path resolve? (no copy of the value)
    pub fn has(&self, path: &str) -> bool {
        self.peek(path, |_| ()).is_some()
    }

    /// Does the path resolve to something other than `null`?
    pub fn has_non_null(&self, path: &str) -> bool {
        self.peek(path, |v| !v.is_null()).unwrap_or(false)
    }

    /// Applies `f` to the value at `path` without copying it (metadata values are built).
    fn peek<R>(&self, path: &str, f: impl FnOnce(&Value) -> R) -> Option<R> {
        match split_path(path).ok()? {
            Root::Source(segs) if !segs.is_empty() => {
                resolve(&self.doc.source, &segs, path).ok().map(f)
            }
            Root::Ingest(segs) if !(segs.is_empty() || segs == ["timestamp"]) => {
                resolve(&self.meta, &segs, path).ok().map(f)
            }
            _ => self.get(path).ok().as_ref().map(f),
        }
    }

    /// Sets a field, creating intermediate objects.
    pub fn set(&mut self, path: &str, value: Value) -> Result<(), EsError> {
        match split_path(path)? {
            Root::Index => {
                self.doc.index = value_to_plain_string(&value);
                Ok(())
            }
            Root::Id => {
                self.doc.id = match value {
                    Value::Null => None,
                    v => Some(value_to_plain_string(&v)),
                };
                Ok(())
            }
            Root::Ingest(segs) => {
                if segs.is_empty() {
                    return Err(iae("cannot set [_ingest]: it is ingest metadata".into()));
                }
                if segs.len() == 1 && segs[0] == "timestamp" {
                    return Err(iae(
                        "cannot set [_ingest.timestamp]: it is read-only ingest metadata".into(),
                    ));
                }
                put(&mut self.meta, &segs, path, value, None)
            }
            Root::Source(segs) => {
                if segs.is_empty() {
                    return match value {
                        Value::Object(m) => {
                            self.doc.source = m;
                            Ok(())
                        }
                        other => Err(iae(format!(
                            "cannot set [_source] to a value of type [{}]",
                            java_type(&other)
                        ))),
                    };
                }
                put(&mut self.doc.source, &segs, path, value, None)
            }
        }
    }

    /// Appends to a field (Elasticsearch's `appendFieldValue`): a missing field becomes a
    /// list, a scalar becomes a list of itself and the new values.
    pub fn append(
        &mut self,
        path: &str,
        values: Vec<Value>,
        allow_duplicates: bool,
    ) -> Result<(), EsError> {
        match split_path(path)? {
            Root::Index | Root::Id => Err(iae(format!("cannot append to metadata field [{path}]"))),
            Root::Ingest(segs) if !segs.is_empty() => put(
                &mut self.meta,
                &segs,
                path,
                Value::Null,
                Some((values, allow_duplicates)),
            ),
            Root::Source(segs) if !segs.is_empty() => put(
                &mut self.doc.source,
                &segs,
                path,
                Value::Null,
                Some((values, allow_duplicates)),
            ),
            _ => Err(iae(format!("cannot append to [{path}]"))),
        }
    }

    /// Removes a field; errors as Elasticsearch's `removeField`.
    pub fn remove(&mut self, path: &str) -> Result<Value, EsError> {
        match split_path(path)? {
            Root::Index => Err(iae("cannot remove metadata field [_index]".into())),
            Root::Id => Ok(self.doc.id.take().map(Value::String).unwrap_or(Value::Null)),
            Root::Ingest(segs) => {
                if segs.is_empty() || (segs.len() == 1 && segs[0] == "timestamp") {
                    return Err(iae(format!("cannot remove ingest metadata [{path}]")));
                }
                take(&mut self.meta, &segs, path)
            }
            Root::Source(segs) => {
                if segs.is_empty() {
                    return Ok(Value::Object(std::mem::take(&mut self.doc.source)));
                }
                take(&mut self.doc.source, &segs, path)
            }
        }
    }
}

/// A string for `_index`/`_id`: strings as-is, others as JSON text.
pub(crate) fn value_to_plain_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn step<'v>(cur: &'v Value, seg: &str, path: &str) -> Result<&'v Value, EsError> {
    match cur {
        Value::Object(m) => m.get(seg).ok_or_else(|| {
            iae(format!(
                "field [{seg}] not present as part of path [{path}]"
            ))
        }),
        Value::Array(a) => {
            let i: usize = seg.parse().map_err(|_| {
                iae(format!(
                    "[{seg}] is not an integer, cannot be used as an index as part of path [{path}]"
                ))
            })?;
            a.get(i).ok_or_else(|| {
                iae(format!(
                    "[{i}] is out of bounds for array with length [{}] as part of path [{path}]",
                    a.len()
                ))
            })
        }
        Value::Null => Err(iae(format!(
            "cannot resolve [{seg}] from null as part of path [{path}]"
        ))),
        other => Err(iae(format!(
            "cannot resolve [{seg}] from object of type [{}] as part of path [{path}]",
            java_type(other)
        ))),
    }
}

fn resolve<'v>(
    root: &'v Map<String, Value>,
    segs: &[&str],
    path: &str,
) -> Result<&'v Value, EsError> {
    let (first, rest) = match segs.split_first() {
        Some(x) => x,
        None => return Err(iae("path cannot be null nor empty".into())),
    };
    let mut cur = root.get(*first).ok_or_else(|| {
        iae(format!(
            "field [{first}] not present as part of path [{path}]"
        ))
    })?;
    for seg in rest {
        cur = step(cur, seg, path)?;
    }
    Ok(cur)
}

fn step_mut<'v>(cur: &'v mut Value, seg: &str, path: &str) -> Result<&'v mut Value, EsError> {
    match cur {
        Value::Object(m) => Ok(m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()))),
        Value::Array(a) => {
            let len = a.len();
            let i: usize = seg.parse().map_err(|_| {
                iae(format!(
                    "[{seg}] is not an integer, cannot be used as an index as part of path [{path}]"
                ))
            })?;
            a.get_mut(i).ok_or_else(|| {
                iae(format!(
                    "[{i}] is out of bounds for array with length [{len}] as part of path [{path}]"
                ))
            })
        }
        Value::Null => Err(iae(format!(
            "cannot resolve [{seg}] from null as part of path [{path}]"
        ))),
        other => Err(iae(format!(
            "cannot resolve [{seg}] from object of type [{}] as part of path [{path}]",
            java_type(other)
        ))),
    }
}

fn append_values(existing: Option<Value>, values: Vec<Value>, allow_dup: bool) -> Value {
    let mut list = match existing {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => vec![v],
    };
    for v in values {
        if allow_dup || !list.contains(&v) {
            list.push(v);
        }
    }
    Value::Array(list)
}

fn put(
    root: &mut Map<String, Value>,
    segs: &[&str],
    path: &str,
    value: Value,
    append: Option<(Vec<Value>, bool)>,
) -> Result<(), EsError> {
    let (leaf, parents) = match segs.split_last() {
        Some(x) => x,
        None => return Err(iae("path cannot be null nor empty".into())),
    };
    match parents.split_first() {
        None => {
            match append {
                None => {
                    root.insert(leaf.to_string(), value);
                }
                Some((vals, dup)) => {
                    let existing = root.remove(*leaf);
                    root.insert(leaf.to_string(), append_values(existing, vals, dup));
                }
            }
            Ok(())
        }
        Some((first, rest)) => {
            let mut cur = root
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            for seg in rest {
                cur = step_mut(cur, seg, path)?;
            }
            put_leaf(cur, leaf, path, value, append)
        }
    }
}

fn put_leaf(
    container: &mut Value,
    leaf: &str,
    path: &str,
    value: Value,
    append: Option<(Vec<Value>, bool)>,
) -> Result<(), EsError> {
    match container {
        Value::Object(m) => {
            match append {
                None => {
                    m.insert(leaf.to_string(), value);
                }
                Some((vals, dup)) => {
                    let existing = m.remove(leaf);
                    m.insert(leaf.to_string(), append_values(existing, vals, dup));
                }
            }
            Ok(())
        }
        Value::Array(a) => {
            let len = a.len();
            let i: usize = leaf.parse().map_err(|_| {
                iae(format!(
                    "[{leaf}] is not an integer, cannot be used as an index as part of path [{path}]"
                ))
            })?;
            let slot = a.get_mut(i).ok_or_else(|| {
                iae(format!(
                    "[{i}] is out of bounds for array with length [{len}] as part of path [{path}]"
                ))
            })?;
            match append {
                None => *slot = value,
                Some((vals, dup)) => {
                    let existing = std::mem::take(slot);
                    *slot = append_values(Some(existing), vals, dup);
                }
            }
            Ok(())
        }
        Value::Null => Err(iae(format!(
            "cannot set [{leaf}] with null parent as part of path [{path}]"
        ))),
        other => Err(iae(format!(
            "cannot set [{leaf}] with parent object of type [{}] as part of path [{path}]",
            java_type(other)
        ))),
    }
}

fn take(root: &mut Map<String, Value>, segs: &[&str], path: &str) -> Result<Value, EsError> {
    let (leaf, parents) = match segs.split_last() {
        Some(x) => x,
        None => return Err(iae("path cannot be null nor empty".into())),
    };
    if parents.is_empty() {
        return root.shift_remove(*leaf).ok_or_else(|| {
            iae(format!(
                "field [{leaf}] not present as part of path [{path}]"
            ))
        });
    }
    let (first, rest) = match parents.split_first() {
        Some(x) => x,
        None => return Err(iae("path cannot be null nor empty".into())),
    };
    let mut cur = root.get_mut(*first).ok_or_else(|| {
        iae(format!(
            "field [{first}] not present as part of path [{path}]"
        ))
    })?;
    for seg in rest {
        cur = match cur {
            Value::Object(m) => m.get_mut(*seg).ok_or_else(|| {
                iae(format!(
                    "field [{seg}] not present as part of path [{path}]"
                ))
            })?,
            other => step_mut(other, seg, path)?,
        };
    }
    match cur {
        Value::Object(m) => m.shift_remove(*leaf).ok_or_else(|| {
            iae(format!(
                "field [{leaf}] not present as part of path [{path}]"
            ))
        }),
        Value::Array(a) => {
            let len = a.len();
            let i: usize = leaf.parse().map_err(|_| {
                iae(format!(
                    "[{leaf}] is not an integer, cannot be used as an index as part of path [{path}]"
                ))
            })?;
            if i >= len {
                return Err(iae(format!(
                    "[{i}] is out of bounds for array with length [{len}] as part of path [{path}]"
                )));
            }
            Ok(a.remove(i))
        }
        Value::Null => Err(iae(format!(
            "cannot remove [{leaf}] from null as part of path [{path}]"
        ))),
        other => Err(iae(format!(
            "cannot remove [{leaf}] from object of type [{}] as part of path [{path}]",
            java_type(other)
        ))),
    }
}
