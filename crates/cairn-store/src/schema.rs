//! The fixed tantivy schema every partition uses, and document building.
//!
//! Mappings change while an index lives, but a tantivy schema cannot, so every
//! partition of every index shares one schema, and the mapping decides what goes
//! where:
//! - `_id` (raw term, stored) and `_source` (the document as sent, zstd doc store);
//! - `@ts`: the document's `@timestamp` (or ingest time) as a fast date column, used
//!   for time sorting, time ranges and partition pruning;
//! - `text`: a JSON field holding every `text` leaf, tokenized (see [`TEXT_TOKENIZER`])
//!   with positions for phrases;
//! - `kw`: a JSON field holding every exact leaf (keywords, numbers, booleans, dates)
//!   as typed terms and columnar fast values (for sorting and aggregations).
//!
//! In `text` and `kw` each leaf is stored under its whole dotted path as one JSON key,
//! so a field `x` and its multi-field `x.keyword` never collide; [`json_path`] escapes
//! the dots to address such a key in tantivy.

use cairn_core::mapping::{Leaf, LeafValue};
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf, Value};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, Schema,
    TextFieldIndexing, STORED, STRING,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer, TokenizerManager};
use tantivy::{DateTime, TantivyDocument};

/// Tokenizer for `text` fields: split on every non-alphanumeric character, lowercase.
/// `cairn-query`'s in-memory evaluator analyzes text the same way.
pub const TEXT_TOKENIZER: &str = "cairn_text";

#[derive(Clone, Debug)]
pub struct Fields {
    pub id: Field,
    pub source: Field,
    pub ts: Field,
    pub version: Field,
    pub text: Field,
    pub kw: Field,
}

pub fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("_id", STRING | STORED);
    let source = b.add_bytes_field("_source", STORED);
    let version = b.add_u64_field("_version", STORED);
    let ts = b.add_date_field(
        "@ts",
        DateOptions::default()
            .set_indexed()
            .set_fast()
            .set_precision(DateTimePrecision::Microseconds),
    );
    let text_opts = JsonObjectOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let text = b.add_json_field("text", text_opts);
    let kw_opts = JsonObjectOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_fast("raw");
    let kw = b.add_json_field("kw", kw_opts);
    (
        b.build(),
        Fields {
            id,
            source,
            ts,
            version,
            text,
            kw,
        },
    )
}

pub fn tokenizers() -> TokenizerManager {
    let m = TokenizerManager::default();
    m.register(
        TEXT_TOKENIZER,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
    m
}

/// Key in `kw` listing the `text` fields a document has, so `exists` works on text
/// fields (which have no columnar values), like Elasticsearch's `_field_names`.
pub const TEXT_EXISTS_PATH: &str = "_text_fields";

/// Escapes a dotted field path so tantivy reads it as one JSON key.
pub fn json_path(path: &str) -> String {
    path.replace('.', "\\.")
}

/// Builds the tantivy document for one stored document.
///
/// The `text` and `kw` objects are handed to tantivy as borrowed views of the leaves
/// ([`View`]), grouped by path, so no intermediate maps or value copies are built.
pub fn build_document(
    f: &Fields,
    id: &str,
    source: &[u8],
    ts_micros: i64,
    version: u64,
    leaves: &[Leaf],
) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_text(f.id, id);
    doc.add_bytes(f.source, source);
    doc.add_u64(f.version, version);
    doc.add_date(f.ts, DateTime::from_timestamp_micros(ts_micros));
    let mut sorted: Vec<&Leaf> = leaves.iter().collect();
    // Stable: the values of one path keep their order.
    sorted.sort_by(|a, b| {
        is_text(a)
            .cmp(&is_text(b))
            .reverse()
            .then(a.path.cmp(&b.path))
    });
    let split = sorted.partition_point(|l| is_text(l));
    let (text, kw) = sorted.split_at(split);
    let text_groups = groups(text);
    let text_paths: Vec<&str> = text_groups.iter().map(|(p, _)| *p).collect();
    let mut kw_groups = groups(kw);
    if !text_paths.is_empty() {
        // The list of text fields takes the place of a keyword of the same name.
        kw_groups.retain(|(p, _)| *p != TEXT_EXISTS_PATH);
        let at = kw_groups.partition_point(|(p, _)| *p < TEXT_EXISTS_PATH);
        kw_groups.insert(at, (TEXT_EXISTS_PATH, Group::Strs(&text_paths)));
    }
    if !text_groups.is_empty() {
        doc.add_field_value(f.text, View::Object(&text_groups));
    }
    if !kw_groups.is_empty() {
        doc.add_field_value(f.kw, View::Object(&kw_groups));
    }
    doc
}

fn is_text(l: &Leaf) -> bool {
    matches!(l.value, LeafValue::Text(_))
}

/// Runs of leaves with the same path (the leaves are sorted by path).
fn groups<'a>(leaves: &'a [&'a Leaf]) -> Vec<(&'a str, Group<'a>)> {
    let mut out = Vec::new();
    let mut rest = leaves;
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|l| l.path == first.path).count();
        out.push((first.path.as_str(), Group::Leaves(&rest[..n])));
        rest = &rest[n..];
    }
    out
}

/// The values of one path: one is a leaf, more are an array.
#[derive(Debug, Clone, Copy)]
enum Group<'a> {
    Leaves(&'a [&'a Leaf]),
    Strs(&'a [&'a str]),
}

/// A borrowed JSON value over a document's leaves, as tantivy's [`Value`] trait
/// reads it.
#[derive(Debug, Clone, Copy)]
enum View<'a> {
    Object(&'a [(&'a str, Group<'a>)]),
    Group(Group<'a>),
    Leaf(&'a LeafValue),
    Str(&'a str),
}

#[derive(Debug)]
enum GroupIter<'a> {
    Leaves(std::slice::Iter<'a, &'a Leaf>),
    Strs(std::slice::Iter<'a, &'a str>),
}

impl<'a> Iterator for GroupIter<'a> {
    type Item = View<'a>;
    fn next(&mut self) -> Option<View<'a>> {
        match self {
            GroupIter::Leaves(it) => it.next().map(|l| View::Leaf(&l.value)),
            GroupIter::Strs(it) => it.next().map(|s| View::Str(s)),
        }
    }
}

type ObjectIter<'a> = std::iter::Map<
    std::slice::Iter<'a, (&'a str, Group<'a>)>,
    fn(&'a (&'a str, Group<'a>)) -> (&'a str, View<'a>),
>;

impl<'a> Value<'a> for View<'a> {
    type ArrayIter = GroupIter<'a>;
    type ObjectIter = ObjectIter<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        match *self {
            View::Object(entries) => {
                let entry: fn(&'a (&'a str, Group<'a>)) -> (&'a str, View<'a>) =
                    |(k, g)| (*k, View::Group(*g));
                ReferenceValue::Object(entries.iter().map(entry))
            }
            View::Group(Group::Leaves([one])) => View::Leaf(&one.value).as_value(),
            View::Group(Group::Strs([one])) => View::Str(one).as_value(),
            View::Group(Group::Leaves(all)) => ReferenceValue::Array(GroupIter::Leaves(all.iter())),
            View::Group(Group::Strs(all)) => ReferenceValue::Array(GroupIter::Strs(all.iter())),
            View::Str(s) => ReferenceValue::Leaf(ReferenceValueLeaf::Str(s)),
            View::Leaf(v) => ReferenceValue::Leaf(match v {
                LeafValue::Text(s) | LeafValue::Keyword(s) => ReferenceValueLeaf::Str(s),
                LeafValue::I64(n) => ReferenceValueLeaf::I64(*n),
                LeafValue::U64(n) => ReferenceValueLeaf::U64(*n),
                LeafValue::F64(n) => ReferenceValueLeaf::F64(*n),
                LeafValue::Bool(b) => ReferenceValueLeaf::Bool(*b),
                LeafValue::Date(t) => ReferenceValueLeaf::Date(DateTime::from_timestamp_micros(*t)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tantivy::schema::document::Document;
    use tantivy::schema::OwnedValue;

    use super::*;

    /// The document as maps of owned values (how it was built before [`View`]).
    fn with_maps(f: &Fields, leaves: &[Leaf]) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, "x");
        doc.add_bytes(f.source, b"{}");
        doc.add_u64(f.version, 1);
        doc.add_date(f.ts, DateTime::from_timestamp_micros(5));
        let mut text: BTreeMap<String, Vec<OwnedValue>> = BTreeMap::new();
        let mut kw: BTreeMap<String, Vec<OwnedValue>> = BTreeMap::new();
        for leaf in leaves {
            let (target, v) = match &leaf.value {
                LeafValue::Text(s) => (&mut text, OwnedValue::Str(s.clone())),
                LeafValue::Keyword(s) => (&mut kw, OwnedValue::Str(s.clone())),
                LeafValue::I64(n) => (&mut kw, OwnedValue::I64(*n)),
                LeafValue::U64(n) => (&mut kw, OwnedValue::U64(*n)),
                LeafValue::F64(n) => (&mut kw, OwnedValue::F64(*n)),
                LeafValue::Bool(b) => (&mut kw, OwnedValue::Bool(*b)),
                LeafValue::Date(t) => (
                    &mut kw,
                    OwnedValue::Date(DateTime::from_timestamp_micros(*t)),
                ),
            };
            target.entry(leaf.path.clone()).or_default().push(v);
        }
        let paths: Vec<OwnedValue> = text.keys().map(|k| OwnedValue::Str(k.clone())).collect();
        if !paths.is_empty() {
            kw.insert(TEXT_EXISTS_PATH.to_string(), paths);
        }
        let collapse = |m: BTreeMap<String, Vec<OwnedValue>>| -> BTreeMap<String, OwnedValue> {
            m.into_iter()
                .map(|(k, mut v)| {
                    let v = if v.len() == 1 {
                        v.pop().unwrap()
                    } else {
                        OwnedValue::Array(v)
                    };
                    (k, v)
                })
                .collect()
        };
        if !text.is_empty() {
            doc.add_object(f.text, collapse(text));
        }
        if !kw.is_empty() {
            doc.add_object(f.kw, collapse(kw));
        }
        doc
    }

    #[test]
    fn views_build_the_same_document_as_maps() {
        let (schema, f) = build_schema();
        let leaf = |p: &str, value: LeafValue| Leaf {
            path: p.into(),
            value,
        };
        let cases: Vec<Vec<Leaf>> = vec![
            vec![],
            vec![leaf("a", LeafValue::Keyword("x".into()))],
            vec![
                leaf("message", LeafValue::Text("hello world".into())),
                leaf("z.n", LeafValue::I64(-3)),
                leaf("b", LeafValue::Keyword("one".into())),
                leaf("message", LeafValue::Text("second value".into())),
                leaf("b", LeafValue::Keyword("two".into())),
                leaf("f", LeafValue::F64(1.5)),
                leaf("u", LeafValue::U64(u64::MAX)),
                leaf("ok", LeafValue::Bool(true)),
                leaf("when", LeafValue::Date(1_700_000_000_123_456)),
                leaf("a.text", LeafValue::Text("t".into())),
                leaf("b", LeafValue::Keyword("three".into())),
            ],
            // A keyword named like the list of text fields gives way to it.
            vec![
                leaf(TEXT_EXISTS_PATH, LeafValue::Keyword("k".into())),
                leaf("m", LeafValue::Text("t".into())),
            ],
            vec![leaf(TEXT_EXISTS_PATH, LeafValue::Keyword("k".into()))],
        ];
        for leaves in cases {
            let a = build_document(&f, "x", b"{}", 5, 1, &leaves);
            let b = with_maps(&f, &leaves);
            assert_eq!(a.to_json(&schema), b.to_json(&schema), "{leaves:?}");
        }
    }
}
