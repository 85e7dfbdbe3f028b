//! Cairn's read path: compiles `cairn-query` ASTs into tantivy queries per index
//! mapping ([`compile`]), and searches across indexes and their time partitions.
//!
//! Partitions outside the query's `@timestamp` range are skipped. For `@timestamp`
//! sorts, partitions are visited newest (or oldest) first and the walk stops as soon
//! as the page is full and no later partition could hold a better hit, so "the last
//! 100 lines" never touches old data. Totals follow `track_total_hits`.

// EsError carries Elasticsearch's whole error object; errors are the cold path, so
// returning it by value is simpler than boxing it everywhere.
#![allow(clippy::result_large_err)]

pub mod compile;

use std::cmp::Ordering as CmpOrdering;
use std::sync::Arc;

use cairn_core::EsError;
use cairn_query::Query;
use cairn_store::partition::Partition;
use cairn_store::IndexHandle;
use serde_json::Value;
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::document::Value as _;
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument};

use crate::compile::Compiler;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrackTotalHits {
    Exact,
    UpTo(u64),
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// `@timestamp`; `true` = descending.
    Timestamp(bool),
    /// `_score` (descending).
    Score,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub from: usize,
    pub size: usize,
    pub sort: SortKey,
    pub track_total_hits: TrackTotalHits,
    pub now_millis: i64,
    /// `search_after` for the `@timestamp` sort: (millis, tiebreak doc key).
    pub search_after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub index: String,
    pub id: String,
    pub score: Option<f32>,
    pub source: Vec<u8>,
    /// `@timestamp` in microseconds.
    pub ts: i64,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    pub total: Option<(u64, bool)>,
    pub max_score: Option<f32>,
}

struct Target<'a> {
    handle: &'a Arc<IndexHandle>,
    partition: Arc<Partition>,
    query: Arc<dyn tantivy::query::Query>,
}

/// `@timestamp` bounds (microseconds) a query implies, for partition pruning.
fn time_bounds(q: &Query, now_millis: i64) -> (i64, i64) {
    match q {
        Query::Range { field, .. } if field == "@timestamp" => {
            if let Query::Range {
                gt,
                gte,
                lt,
                lte,
                format,
                time_zone,
                ..
            } = q
            {
                if let Ok((lo, hi)) = cairn_query::datemath::resolve_range(
                    gt.as_ref(),
                    gte.as_ref(),
                    lt.as_ref(),
                    lte.as_ref(),
                    format.as_deref(),
                    time_zone.as_deref(),
                    now_millis,
                ) {
                    use std::ops::Bound::*;
                    let lo = match lo {
                        Included(m) | Excluded(m) => m.saturating_mul(1000),
                        Unbounded => i64::MIN,
                    };
                    let hi = match hi {
                        Included(m) | Excluded(m) => m.saturating_add(1).saturating_mul(1000),
                        Unbounded => i64::MAX,
                    };
                    return (lo, hi);
                }
            }
            (i64::MIN, i64::MAX)
        }
        Query::Bool { must, filter, .. } => {
            let mut lo = i64::MIN;
            let mut hi = i64::MAX;
            for c in must.iter().chain(filter.iter()) {
                let (l, h) = time_bounds(c, now_millis);
                lo = lo.max(l);
                hi = hi.min(h);
            }
            (lo, hi)
        }
        Query::ConstantScore { filter, .. } => time_bounds(filter, now_millis),
        _ => (i64::MIN, i64::MAX),
    }
}

fn targets<'a>(
    indexes: &'a [Arc<IndexHandle>],
    req_query: &Query,
    now_millis: i64,
) -> Result<Vec<Target<'a>>, EsError> {
    let (lo, hi) = time_bounds(req_query, now_millis);
    let mut out = Vec::new();
    for h in indexes {
        let mapping = h.mapping();
        let parts = h.partitions_newest_first();
        let Some(first) = parts.first() else { continue };
        let c = Compiler {
            mapping: &mapping,
            fields: &first.fields,
            now_millis,
        };
        let q: Arc<dyn tantivy::query::Query> = Arc::from(c.compile(req_query)?);
        for p in parts {
            if p.end <= lo || p.key >= hi {
                continue;
            }
            out.push(Target {
                handle: h,
                partition: p,
                query: q.clone(),
            });
        }
    }
    Ok(out)
}

fn search_err(e: tantivy::TantivyError) -> EsError {
    EsError::new(
        500,
        "search_phase_execution_exception",
        format!("all shards failed: {e}"),
    )
}

/// Counts matching documents.
pub fn count(indexes: &[Arc<IndexHandle>], query: &Query, now_millis: i64) -> Result<u64, EsError> {
    let mut n = 0u64;
    for t in targets(indexes, query, now_millis)? {
        n += t
            .partition
            .reader
            .searcher()
            .search(t.query.as_ref(), &Count)
            .map_err(search_err)? as u64;
    }
    Ok(n)
}

struct Candidate {
    target: usize,
    addr: DocAddress,
    score: f32,
    ts: i64,
}

pub fn search(indexes: &[Arc<IndexHandle>], req: &SearchRequest) -> Result<SearchResult, EsError> {
    let mut targets = targets(indexes, &req.query, req.now_millis)?;
    let desc = !matches!(req.sort, SortKey::Timestamp(false));
    // Newest first for descending (and score) sorts, oldest first for ascending.
    targets.sort_by(|a, b| {
        if desc {
            b.partition.end.cmp(&a.partition.end)
        } else {
            a.partition.key.cmp(&b.partition.key)
        }
    });
    let k = req.from + req.size;
    let searchers: Vec<Searcher> = targets
        .iter()
        .map(|t| t.partition.reader.searcher())
        .collect();
    let mut cands: Vec<Candidate> = Vec::new();
    let mut total: u64 = 0;
    let mut counted_all = true;
    let mut max_score: Option<f32> = None;
    for (i, t) in targets.iter().enumerate() {
        let s = &searchers[i];
        let need_count = match req.track_total_hits {
            TrackTotalHits::Exact => true,
            TrackTotalHits::UpTo(n) => total < n,
            TrackTotalHits::Off => false,
        };
        // Early termination for time sorts: the page is full and this partition cannot
        // beat the worst hit we keep.
        let page_full = k > 0 && cands.len() >= k;
        let cannot_improve = page_full
            && match req.sort {
                SortKey::Timestamp(true) => cands.last().is_some_and(|c| c.ts >= t.partition.end),
                SortKey::Timestamp(false) => cands.last().is_some_and(|c| c.ts < t.partition.key),
                SortKey::Score => false,
            };
        if cannot_improve && !need_count {
            counted_all = false;
            continue;
        }
        if need_count {
            total += s.search(t.query.as_ref(), &Count).map_err(search_err)? as u64;
        } else {
            counted_all = false;
        }
        if cannot_improve || k == 0 {
            continue;
        }
        match req.sort {
            SortKey::Timestamp(d) => {
                let order = if d { Order::Desc } else { Order::Asc };
                let q: Box<dyn tantivy::query::Query> = match req.search_after {
                    Some(after_ms) => {
                        let bound = tantivy::Term::from_field_date(
                            t.partition.fields.ts,
                            DateTime::from_timestamp_millis(after_ms),
                        );
                        let range = if d {
                            tantivy::query::RangeQuery::new(
                                std::ops::Bound::Unbounded,
                                std::ops::Bound::Excluded(bound),
                            )
                        } else {
                            let b2 = tantivy::Term::from_field_date(
                                t.partition.fields.ts,
                                DateTime::from_timestamp_millis(after_ms + 1),
                            );
                            let _ = bound;
                            tantivy::query::RangeQuery::new(
                                std::ops::Bound::Included(b2),
                                std::ops::Bound::Unbounded,
                            )
                        };
                        Box::new(tantivy::query::BooleanQuery::new(vec![
                            (tantivy::query::Occur::Must, t.query.box_clone()),
                            (tantivy::query::Occur::Must, Box::new(range)),
                        ]))
                    }
                    None => t.query.box_clone(),
                };
                let top = s
                    .search(
                        q.as_ref(),
                        &TopDocs::with_limit(k).order_by_fast_field::<DateTime>("@ts", order),
                    )
                    .map_err(search_err)?;
                for (ts, addr) in top {
                    let ts = ts.map(|d| d.into_timestamp_micros()).unwrap_or(0);
                    cands.push(Candidate {
                        target: i,
                        addr,
                        score: f32::NAN,
                        ts,
                    });
                }
                cands.sort_by(|a, b| if d { b.ts.cmp(&a.ts) } else { a.ts.cmp(&b.ts) });
                cands.truncate(k);
            }
            SortKey::Score => {
                let top = s
                    .search(t.query.as_ref(), &TopDocs::with_limit(k).order_by_score())
                    .map_err(search_err)?;
                for (score, addr) in top {
                    max_score = Some(max_score.map_or(score, |m: f32| m.max(score)));
                    cands.push(Candidate {
                        target: i,
                        addr,
                        score,
                        ts: 0,
                    });
                }
                cands.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(CmpOrdering::Equal));
                cands.truncate(k);
            }
        }
    }
    let mut hits = Vec::new();
    for c in cands.into_iter().skip(req.from) {
        let t = &targets[c.target];
        let doc: TantivyDocument = searchers[c.target].doc(c.addr).map_err(search_err)?;
        let f = &t.partition.fields;
        let id = doc
            .get_first(f.id)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let source = doc
            .get_first(f.source)
            .and_then(|v| v.as_bytes())
            .unwrap_or_default()
            .to_vec();
        let ts = match req.sort {
            SortKey::Score => doc
                .get_first(f.ts)
                .and_then(|v| v.as_datetime())
                .map(|d| d.into_timestamp_micros())
                .unwrap_or(0),
            _ => c.ts,
        };
        hits.push(Hit {
            index: t.handle.name.clone(),
            id,
            score: if c.score.is_nan() {
                None
            } else {
                Some(c.score)
            },
            source,
            ts,
        });
    }
    let total = match req.track_total_hits {
        TrackTotalHits::Off => None,
        TrackTotalHits::Exact => Some((total, true)),
        TrackTotalHits::UpTo(n) => {
            if total >= n && (!counted_all || total > n) {
                Some((n, false))
            } else {
                Some((total, counted_all))
            }
        }
    };
    Ok(SearchResult {
        hits,
        total,
        max_score,
    })
}

/// Parses the `query` object of a request body.
pub fn parse_query(v: Option<&Value>) -> Result<Query, EsError> {
    match v {
        None => Ok(Query::match_all()),
        Some(v) => cairn_query::dsl::parse(v, &cairn_query::Limits::default())
            .map_err(|e| EsError::new(e.status(), e.type_name(), e.reason.clone())),
    }
}

/// Every matching document as (index, id), for `_delete_by_query`.
pub fn matching_ids(
    indexes: &[Arc<IndexHandle>],
    query: &Query,
    now_millis: i64,
) -> Result<Vec<(String, String)>, EsError> {
    let mut out = Vec::new();
    for t in targets(indexes, query, now_millis)? {
        let s = t.partition.reader.searcher();
        let docs = s
            .search(t.query.as_ref(), &tantivy::collector::DocSetCollector)
            .map_err(search_err)?;
        for addr in docs {
            let doc: TantivyDocument = s.doc(addr).map_err(search_err)?;
            if let Some(id) = doc
                .get_first(t.partition.fields.id)
                .and_then(|v| v.as_str())
            {
                out.push((t.handle.name.clone(), id.to_string()));
            }
        }
    }
    Ok(out)
}
