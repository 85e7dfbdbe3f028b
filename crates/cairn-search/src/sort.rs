//! Sorting: a top-k collector over any number of sort clauses (sortable columns,
//! `_score`, `_doc`), with `search_after` and a stable tiebreaker.
//!
//! Every hit carries a *tiebreak* number that identifies it within a snapshot
//! (target, segment, doc), so `search_after` with a point in time or a scroll never
//! skips or repeats documents that share a sort value.

use std::cmp::Ordering;

use cairn_core::mapping::{FieldType, Mapping, StorageClass};
use cairn_core::EsError;
use cairn_store::schema::json_path;
use serde_json::Value;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// A sort key value.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Missing,
    I(i64),
    F(f64),
    S(String),
}

impl Key {
    fn cmp_present(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::I(a), Key::I(b)) => a.cmp(b),
            (Key::F(a), Key::F(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::I(a), Key::F(b)) => (*a as f64).partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::F(a), Key::I(b)) => a.partial_cmp(&(*b as f64)).unwrap_or(Ordering::Equal),
            (Key::S(a), Key::S(b)) => a.cmp(b),
            (Key::S(_), _) => Ordering::Greater,
            (_, Key::S(_)) => Ordering::Less,
            _ => Ordering::Equal,
        }
    }

    /// The value shown in a hit's `sort` array.
    pub fn to_json(&self, kind: &SortKind) -> Value {
        match (self, kind) {
            (Key::Missing, _) => match kind {
                SortKind::Column { desc: true, .. } => Value::from(i64::MIN),
                _ => Value::from(i64::MAX),
            },
            (Key::I(v), SortKind::Timestamp { .. }) => Value::from(v.div_euclid(1000)),
            (
                Key::I(v),
                SortKind::Column {
                    column: ColumnKind::Date,
                    ..
                },
            ) => Value::from(v.div_euclid(1000)),
            (Key::I(v), _) => Value::from(*v),
            (Key::F(v), _) => serde_json::Number::from_f64(*v)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            (Key::S(s), _) => Value::from(s.clone()),
        }
    }

    /// Parses a `search_after` value for this sort.
    pub fn from_json(v: &Value, kind: &SortKind) -> Result<Key, EsError> {
        let bad = || {
            EsError::illegal_argument(format!(
                "Failed to parse search_after value [{v}] for the sort"
            ))
        };
        Ok(match kind {
            SortKind::Score => Key::F(v.as_f64().ok_or_else(bad)?),
            SortKind::Doc => Key::I(v.as_i64().ok_or_else(bad)?),
            SortKind::Timestamp { .. }
            | SortKind::Column {
                column: ColumnKind::Date,
                ..
            } => match v {
                Value::Number(n) => Key::I(n.as_i64().ok_or_else(bad)?.saturating_mul(1000)),
                Value::String(s) => Key::I(
                    cairn_core::time::parse_default(s)
                        .or_else(|| s.parse::<i64>().ok().map(|m| m * 1000))
                        .ok_or_else(bad)?,
                ),
                _ => return Err(bad()),
            },
            SortKind::Column {
                column: ColumnKind::I64 | ColumnKind::Bool,
                ..
            } => Key::I(v.as_i64().ok_or_else(bad)?),
            SortKind::Column {
                column: ColumnKind::F64,
                ..
            } => Key::F(v.as_f64().ok_or_else(bad)?),
            SortKind::Column {
                column: ColumnKind::Str,
                ..
            } => Key::S(
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            ),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnKind {
    I64,
    F64,
    Str,
    Date,
    Bool,
}

/// What a search sorts by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKind {
    Score,
    /// Index order (`_doc`).
    Doc,
    Timestamp {
        desc: bool,
    },
    Column {
        path: String,
        column: ColumnKind,
        desc: bool,
        missing_first: bool,
    },
}

impl SortKind {
    pub fn desc(&self) -> bool {
        match self {
            SortKind::Score => true,
            SortKind::Doc => false,
            SortKind::Timestamp { desc } | SortKind::Column { desc, .. } => *desc,
        }
    }

    /// Resolves a sort field against an index mapping. `unmapped_type` lets a field
    /// that the index does not map sort as missing.
    pub fn resolve(
        field: &str,
        desc: bool,
        missing_first: bool,
        mapping: &Mapping,
        unmapped_ok: bool,
    ) -> Result<SortKind, EsError> {
        match field {
            "_score" => return Ok(SortKind::Score),
            "_doc" | "_shard_doc" => return Ok(SortKind::Doc),
            "@timestamp" => return Ok(SortKind::Timestamp { desc }),
            _ => {}
        }
        let resolved = mapping
            .resolve(field)
            .map(|(p, fm)| (p.to_string(), fm.ty))
            .or_else(|| {
                field
                    .strip_suffix(".keyword")
                    .and_then(|b| mapping.resolve(b))
                    .filter(|(_, fm)| fm.ty.storage() == StorageClass::Keyword)
                    .map(|(p, fm)| (p.to_string(), fm.ty))
            });
        let Some((path, ty)) = resolved else {
            if unmapped_ok {
                return Ok(SortKind::Column {
                    path: field.to_string(),
                    column: ColumnKind::Str,
                    desc,
                    missing_first,
                });
            }
            return Err(EsError::new(
                400,
                "query_shard_exception",
                format!("No mapping found for [{field}] in order to sort on"),
            ));
        };
        let column = match ty.storage() {
            StorageClass::Integer => ColumnKind::I64,
            StorageClass::Float => ColumnKind::F64,
            StorageClass::Keyword => ColumnKind::Str,
            StorageClass::Date => ColumnKind::Date,
            StorageClass::Boolean => ColumnKind::Bool,
            StorageClass::Text => {
                return Err(EsError::illegal_argument(format!(
                    "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
                )))
            }
            _ => {
                return Err(EsError::illegal_argument(format!("can't sort on field [{field}] of type [{}]", ty.name())))
            }
        };
        let _ = FieldType::Keyword;
        Ok(SortKind::Column {
            path,
            column,
            desc,
            missing_first,
        })
    }

    /// Orders two keys of this clause: the better hit first.
    pub fn compare_one(&self, a: &Key, b: &Key) -> Ordering {
        let missing_first = matches!(
            self,
            SortKind::Column {
                missing_first: true,
                ..
            }
        );
        match (a, b) {
            (Key::Missing, Key::Missing) => Ordering::Equal,
            (Key::Missing, _) => {
                if missing_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (_, Key::Missing) => {
                if missing_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (x, y) => {
                let o = x.cmp_present(y);
                if self.desc() {
                    o.reverse()
                } else {
                    o
                }
            }
        }
    }
}

/// Orders two hits by every sort clause in turn, then by the snapshot tiebreak: the
/// better hit first.
pub fn compare(kinds: &[SortKind], a: (&[Key], u64), b: (&[Key], u64)) -> Ordering {
    for (i, k) in kinds.iter().enumerate() {
        let o = match (a.0.get(i), b.0.get(i)) {
            (Some(x), Some(y)) => k.compare_one(x, y),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.1.cmp(&b.1)
}

/// Packs (target, segment, doc) into one number, unique within a snapshot.
pub fn tiebreak(target: usize, segment: SegmentOrdinal, doc: DocId) -> u64 {
    ((target as u64) << 44) | (((segment as u64) & 0xfff) << 32) | doc as u64
}

pub struct Collected {
    /// One key per sort clause.
    pub key: Vec<Key>,
    pub tiebreak: u64,
    pub addr: DocAddress,
    pub score: Score,
}

/// Collects the best `k` hits of one target (partition), after `after` if given.
pub struct SortCollector {
    /// The sort clauses, primary first.
    pub kinds: Vec<SortKind>,
    pub k: usize,
    pub target: usize,
    pub after: Option<(Vec<Key>, u64)>,
}

enum Col {
    None,
    Ts(Column<tantivy::DateTime>),
    I(Column<i64>),
    F(Column<f64>),
    B(Column<bool>),
    S(StrColumn),
    D(Column<tantivy::DateTime>),
}

pub struct SortSegmentCollector {
    kinds: Vec<SortKind>,
    k: usize,
    target: usize,
    segment: SegmentOrdinal,
    after: Option<(Vec<Key>, u64)>,
    cols: Vec<Col>,
    hits: Vec<Collected>,
}

fn by_keys(kinds: &[SortKind]) -> impl Fn(&Collected, &Collected) -> Ordering + '_ {
    move |a, b| compare(kinds, (&a.key, a.tiebreak), (&b.key, b.tiebreak))
}

impl Collector for SortCollector {
    type Fruit = Vec<Collected>;
    type Child = SortSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let ff = reader.fast_fields();
        let mut cols = Vec::with_capacity(self.kinds.len());
        for kind in &self.kinds {
            let col = match kind {
                SortKind::Timestamp { .. } => Col::Ts(ff.date("@ts")?),
                SortKind::Column { path, column, .. } => {
                    let name = format!("kw.{}", json_path(path));
                    match column {
                        ColumnKind::I64 => {
                            // Integral floats are stored as integers and vice versa: read
                            // whichever column the segment has.
                            match ff.column_opt::<i64>(&name)? {
                                Some(c) => Col::I(c),
                                None => ff
                                    .column_opt::<f64>(&name)?
                                    .map(Col::F)
                                    .unwrap_or(Col::None),
                            }
                        }
                        ColumnKind::F64 => match ff.column_opt::<f64>(&name)? {
                            Some(c) => Col::F(c),
                            None => ff
                                .column_opt::<i64>(&name)?
                                .map(Col::I)
                                .unwrap_or(Col::None),
                        },
                        ColumnKind::Bool => ff
                            .column_opt::<bool>(&name)?
                            .map(Col::B)
                            .unwrap_or(Col::None),
                        ColumnKind::Date => ff
                            .column_opt::<tantivy::DateTime>(&name)?
                            .map(Col::D)
                            .unwrap_or(Col::None),
                        ColumnKind::Str => ff.str(&name)?.map(Col::S).unwrap_or(Col::None),
                    }
                }
                SortKind::Score | SortKind::Doc => Col::None,
            };
            cols.push(col);
        }
        Ok(SortSegmentCollector {
            kinds: self.kinds.clone(),
            k: self.k,
            target: self.target,
            segment,
            after: self.after.clone(),
            cols,
            hits: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.kinds.contains(&SortKind::Score)
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Collected>>) -> tantivy::Result<Vec<Collected>> {
        let mut all: Vec<Collected> = fruits.into_iter().flatten().collect();
        all.sort_by(by_keys(&self.kinds));
        all.truncate(self.k);
        Ok(all)
    }
}

impl SortSegmentCollector {
    fn keys_of(&self, doc: DocId, score: Score) -> Vec<Key> {
        self.cols
            .iter()
            .zip(&self.kinds)
            .map(|(col, kind)| self.key_of(col, kind, doc, score))
            .collect()
    }

    fn key_of(&self, col: &Col, kind: &SortKind, doc: DocId, score: Score) -> Key {
        match col {
            Col::None => match kind {
                SortKind::Score => Key::F(score as f64),
                SortKind::Doc => Key::I(tiebreak(self.target, self.segment, doc) as i64),
                _ => Key::Missing,
            },
            Col::Ts(c) | Col::D(c) => c
                .first(doc)
                .map(|d| Key::I(d.into_timestamp_micros()))
                .unwrap_or(Key::Missing),
            Col::I(c) => c.first(doc).map(Key::I).unwrap_or(Key::Missing),
            Col::F(c) => c.first(doc).map(Key::F).unwrap_or(Key::Missing),
            Col::B(c) => c
                .first(doc)
                .map(|b| Key::I(b as i64))
                .unwrap_or(Key::Missing),
            Col::S(c) => {
                let mut ords = c.term_ords(doc);
                match ords.next() {
                    Some(ord) => {
                        let mut s = String::new();
                        match c.ord_to_str(ord, &mut s) {
                            Ok(true) => Key::S(s),
                            _ => Key::Missing,
                        }
                    }
                    None => Key::Missing,
                }
            }
        }
    }
}

impl SegmentCollector for SortSegmentCollector {
    type Fruit = Vec<Collected>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let key = self.keys_of(doc, score);
        let tb = tiebreak(self.target, self.segment, doc);
        if let Some(after) = &self.after {
            if compare(&self.kinds, (&key, tb), (&after.0, after.1)) != Ordering::Greater {
                return;
            }
        }
        self.hits.push(Collected {
            key,
            tiebreak: tb,
            addr: DocAddress::new(self.segment, doc),
            score,
        });
        // Keep memory bounded: prune to k whenever the buffer doubles.
        if self.hits.len() >= self.k.max(1) * 2 + 64 {
            self.hits.sort_by(by_keys(&self.kinds));
            self.hits.truncate(self.k);
        }
    }

    fn harvest(mut self) -> Vec<Collected> {
        self.hits.sort_by(by_keys(&self.kinds));
        self.hits.truncate(self.k);
        self.hits
    }
}
