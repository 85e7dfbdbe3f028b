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

use std::collections::BTreeMap;

use cairn_core::mapping::{Leaf, LeafValue};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, OwnedValue,
    Schema, TextFieldIndexing, STORED, STRING,
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
    let text_paths: Vec<OwnedValue> = text.keys().map(|k| OwnedValue::Str(k.clone())).collect();
    if !text_paths.is_empty() {
        kw.insert(TEXT_EXISTS_PATH.to_string(), text_paths);
    }
    let collapse = |m: BTreeMap<String, Vec<OwnedValue>>| -> BTreeMap<String, OwnedValue> {
        m.into_iter()
            .map(|(k, mut v)| {
                let v = if v.len() == 1 {
                    v.pop().unwrap_or(OwnedValue::Null)
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
