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

pub mod aggs;
pub mod compile;
mod par;
pub mod sort;

use std::sync::Arc;

use cairn_core::EsError;
use cairn_query::Query;
use cairn_store::partition::Partition;
use cairn_store::IndexHandle;
use serde_json::Value;
use tantivy::collector::Count;
use tantivy::schema::document::Value as _;
use tantivy::{Searcher, TantivyDocument};

use crate::compile::Compiler;
use crate::sort::{Collected, Key, SortCollector, SortKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrackTotalHits {
    Exact,
    UpTo(u64),
    Off,
}

/// One sort clause as requested (resolved per index against its mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct SortSpec {
    pub field: String,
    pub desc: bool,
    pub missing_first: bool,
    pub unmapped_type: bool,
}

impl SortSpec {
    pub fn timestamp_desc() -> SortSpec {
        SortSpec {
            field: "@timestamp".into(),
            desc: true,
            missing_first: false,
            unmapped_type: false,
        }
    }
    pub fn score() -> SortSpec {
        SortSpec {
            field: "_score".into(),
            desc: true,
            missing_first: false,
            unmapped_type: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub post_filter: Option<Query>,
    pub from: usize,
    pub size: usize,
    /// The sort clauses, primary first (at least one); remaining ties are broken by
    /// index order within the snapshot.
    pub sort: Vec<SortSpec>,
    pub track_total_hits: TrackTotalHits,
    pub now_millis: i64,
    /// `search_after`: the sort value, and the tiebreaker when the caller has one.
    pub search_after: Option<Vec<Value>>,
    pub min_score: Option<f32>,
    /// `terminate_after`: most documents collected per partition (Cairn's shard).
    pub terminate_after: Option<u64>,
    /// `timeout`: past it, the search stops and answers with what it has
    /// (`timed_out: true`).
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub index: String,
    pub id: String,
    pub score: Option<f32>,
    pub source: Vec<u8>,
    /// The sort values (one per clause) as shown in `sort`, and the snapshot
    /// tiebreaker.
    pub sort_value: Vec<Value>,
    pub tiebreak: u64,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    pub total: Option<(u64, bool)>,
    pub max_score: Option<f32>,
    /// `terminate_after` stopped collection in some partition.
    pub terminated_early: bool,
    /// `timeout` expired: the hits and total are partial.
    pub timed_out: bool,
}

/// One partition as seen by a search: a pinned searcher, so scrolls and points in
/// time read a consistent view (and keep the partition's files alive).
#[derive(Clone)]
pub struct SnapTarget {
    pub index: String,
    pub mapping: Arc<cairn_core::mapping::Mapping>,
    pub partition: Arc<Partition>,
    pub searcher: Searcher,
}

/// A consistent view over some indexes.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub targets: Vec<SnapTarget>,
}

impl Snapshot {
    pub fn of(indexes: &[Arc<IndexHandle>]) -> Snapshot {
        let mut targets = Vec::new();
        for h in indexes {
            let mapping = h.mapping();
            for p in h.partitions_newest_first() {
                targets.push(SnapTarget {
                    index: h.name.clone(),
                    mapping: mapping.clone(),
                    searcher: p.reader.searcher(),
                    partition: p,
                });
            }
        }
        Snapshot { targets }
    }

    pub fn index_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.targets.iter().map(|t| t.index.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// `@timestamp` bounds (microseconds) a query implies, for partition pruning.
fn time_bounds(q: &Query, now_millis: i64) -> (i64, i64) {
    match cairn_query::plan::time_range(q, "@timestamp", now_millis)
        .ok()
        .flatten()
    {
        Some((lo, hi)) => {
            use std::ops::Bound::*;
            let lo = match lo {
                Included(m) | Excluded(m) => m.saturating_mul(1000),
                Unbounded => i64::MIN,
            };
            let hi = match hi {
                Included(m) | Excluded(m) => m.saturating_add(1).saturating_mul(1000),
                Unbounded => i64::MAX,
            };
            (lo, hi)
        }
        None => (i64::MIN, i64::MAX),
    }
}

/// Resolves clauses on the `_index` metadata field for one index: they become
/// match_all or match_none before compilation.
pub fn bind_index(q: &Query, index: &str) -> Query {
    let yes = |b: bool| {
        if b {
            Query::match_all()
        } else {
            Query::MatchNone
        }
    };
    let recur = |v: &[Query]| v.iter().map(|c| bind_index(c, index)).collect::<Vec<_>>();
    match q {
        Query::Term { field, value, .. } if field == "_index" => yes(value.as_str() == Some(index)),
        Query::Terms { field, values, .. } if field == "_index" => {
            yes(values.iter().any(|v| v.as_str() == Some(index)))
        }
        Query::Prefix { field, value, .. } if field == "_index" => {
            yes(index.starts_with(value.as_str()))
        }
        Query::Wildcard { field, pattern, .. } if field == "_index" => {
            yes(cairn_core::mapping::wildcard_match(pattern, index))
        }
        Query::Exists { field, .. } if field == "_index" => Query::match_all(),
        Query::Bool {
            must,
            should,
            must_not,
            filter,
            minimum_should_match,
            boost,
        } => Query::Bool {
            must: recur(must),
            should: recur(should),
            must_not: recur(must_not),
            filter: recur(filter),
            minimum_should_match: minimum_should_match.clone(),
            boost: *boost,
        },
        Query::ConstantScore { filter, boost } => Query::ConstantScore {
            filter: Box::new(bind_index(filter, index)),
            boost: *boost,
        },
        Query::DisMax {
            queries,
            tie_breaker,
            boost,
        } => Query::DisMax {
            queries: recur(queries),
            tie_breaker: *tie_breaker,
            boost: *boost,
        },
        Query::Boosting {
            positive,
            negative,
            negative_boost,
            boost,
        } => Query::Boosting {
            positive: Box::new(bind_index(positive, index)),
            negative: Box::new(bind_index(negative, index)),
            negative_boost: *negative_boost,
            boost: *boost,
        },
        other => other.clone(),
    }
}

/// Compiled queries per target, skipping partitions outside the time range.
struct Planned<'a> {
    target: &'a SnapTarget,
    ord: usize,
    query: Arc<dyn tantivy::query::Query>,
}

fn plan<'a>(
    snap: &'a Snapshot,
    query: &Query,
    post_filter: Option<&Query>,
    now_millis: i64,
) -> Result<Vec<Planned<'a>>, EsError> {
    let (lo, hi) = time_bounds(query, now_millis);
    let mut cache: std::collections::HashMap<String, Arc<dyn tantivy::query::Query>> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for (ord, t) in snap.targets.iter().enumerate() {
        if t.partition.end <= lo || t.partition.key >= hi {
            continue;
        }
        let q = match cache.get(&t.index) {
            Some(q) => q.clone(),
            None => {
                let c = Compiler {
                    mapping: &t.mapping,
                    fields: &t.partition.fields,
                    now_millis,
                };
                let mut q = c.compile(&bind_index(query, &t.index))?;
                if let Some(pf) = post_filter {
                    q = Box::new(tantivy::query::BooleanQuery::new(vec![
                        (tantivy::query::Occur::Must, q),
                        (
                            tantivy::query::Occur::Must,
                            Box::new(tantivy::query::ConstScoreQuery::new(c.compile(pf)?, 0.0)),
                        ),
                    ]));
                }
                let q: Arc<dyn tantivy::query::Query> = Arc::from(q);
                cache.insert(t.index.clone(), q.clone());
                q
            }
        };
        out.push(Planned {
            target: t,
            ord,
            query: q,
        });
    }
    Ok(out)
}

/// One partition's count (when counted) and best hits.
type PartitionRun = (Option<u64>, Vec<Collected>);

struct BoundedRun {
    hits: Vec<Collected>,
    count: u64,
    terminated: bool,
    timed_out: bool,
}

/// Runs a query over one partition the way tantivy's `Searcher::search` does, but
/// stopping after `limit` documents (`terminate_after`) or at `deadline` (`timeout`,
/// checked every few thousand documents), counting as it goes.
fn collect_bounded(
    searcher: &Searcher,
    query: &dyn tantivy::query::Query,
    collector: &SortCollector,
    limit: Option<u64>,
    deadline: Option<std::time::Instant>,
    want_hits: bool,
) -> Result<BoundedRun, EsError> {
    use tantivy::collector::{Collector, SegmentCollector};
    use tantivy::query::EnableScoring;
    use tantivy::DocSet;
    let scoring = if want_hits && collector.requires_scoring() {
        EnableScoring::enabled_from_searcher(searcher)
    } else {
        EnableScoring::disabled_from_searcher(searcher)
    };
    let weight = query.weight(scoring).map_err(search_err)?;
    let mut run = BoundedRun {
        hits: Vec::new(),
        count: 0,
        terminated: false,
        timed_out: false,
    };
    let mut fruits = Vec::new();
    'segments: for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let mut seg = collector
            .for_segment(ord as u32, reader)
            .map_err(search_err)?;
        let mut scorer = weight.scorer(reader, 1.0).map_err(search_err)?;
        let alive = reader.alive_bitset();
        let mut doc = scorer.doc();
        let mut n: u32 = 0;
        while doc != tantivy::TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                if limit.is_some_and(|l| run.count >= l) {
                    run.terminated = true;
                    fruits.push(seg.harvest());
                    break 'segments;
                }
                run.count += 1;
                if want_hits {
                    seg.collect(doc, scorer.score());
                }
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                run.timed_out = true;
                fruits.push(seg.harvest());
                break 'segments;
            }
            doc = scorer.advance();
        }
        fruits.push(seg.harvest());
    }
    run.hits = collector.merge_fruits(fruits).map_err(search_err)?;
    Ok(run)
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
    let snap = Snapshot::of(indexes);
    let mut n = 0u64;
    for p in plan(&snap, query, None, now_millis)? {
        n += p
            .target
            .searcher
            .search(p.query.as_ref(), &Count)
            .map_err(search_err)? as u64;
    }
    Ok(n)
}

pub fn search(indexes: &[Arc<IndexHandle>], req: &SearchRequest) -> Result<SearchResult, EsError> {
    search_snapshot(&Snapshot::of(indexes), req)
}

/// Runs a search over a snapshot.
pub fn search_snapshot(snap: &Snapshot, req: &SearchRequest) -> Result<SearchResult, EsError> {
    let mut planned = plan(snap, &req.query, req.post_filter.as_ref(), req.now_millis)?;
    // Resolve the sort per index; all indexes must agree on its kinds.
    let by_score = [SortSpec::score()];
    let specs: &[SortSpec] = if req.sort.is_empty() {
        &by_score
    } else {
        &req.sort
    };
    let resolve_all = |mapping: &cairn_core::mapping::Mapping, unmapped: bool| {
        specs
            .iter()
            .map(|s| {
                SortKind::resolve(
                    &s.field,
                    s.desc,
                    s.missing_first,
                    mapping,
                    s.unmapped_type || unmapped,
                )
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut by_index: std::collections::HashMap<String, Vec<SortKind>> =
        std::collections::HashMap::new();
    for p in &planned {
        if !by_index.contains_key(&p.target.index) {
            let k = resolve_all(&p.target.mapping, snap.index_names().len() > 1)?;
            by_index.insert(p.target.index.clone(), k);
        }
    }
    let kinds: Vec<SortKind> = match by_index.values().next() {
        Some(k) => k.clone(),
        None => resolve_all(&cairn_core::mapping::Mapping::default(), true)?,
    };
    let kind = kinds[0].clone();
    let after: Option<(Vec<Key>, u64)> = match &req.search_after {
        Some(vals) if !vals.is_empty() => {
            if vals.len() < kinds.len() || vals.len() > kinds.len() + 1 {
                return Err(EsError::illegal_argument(format!(
                    "search_after has {} value(s) but sort has {}.",
                    vals.len(),
                    kinds.len()
                )));
            }
            let keys = kinds
                .iter()
                .zip(vals)
                .map(|(k, v)| Key::from_json(v, k))
                .collect::<Result<Vec<_>, _>>()?;
            // `_doc` is itself the tiebreak; otherwise a trailing value is ours (from
            // a point in time), and without one the hit after every tie is wanted.
            let tb = match (kinds.last(), keys.last()) {
                (Some(SortKind::Doc), Some(k)) => key_as_u64(k),
                _ => vals
                    .get(kinds.len())
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX),
            };
            Some((keys, tb))
        }
        _ => None,
    };
    let time_sort = match &kind {
        SortKind::Timestamp { desc } => Some(*desc),
        _ => None,
    };
    // Visit partitions newest first for descending time sorts (and scores), oldest
    // first for ascending ones, so early termination can kick in.
    match time_sort {
        Some(false) => planned.sort_by_key(|p| p.target.partition.key),
        _ => planned.sort_by_key(|p| std::cmp::Reverse(p.target.partition.end)),
    }
    let k = req.from + req.size;
    let mut cands: Vec<(Collected, usize)> = Vec::new();
    let mut total: u64 = 0;
    let mut counted_all = true;
    let mut max_score: Option<f32> = None;
    let deadline = req.timeout.map(|t| std::time::Instant::now() + t);
    // `terminate_after` needs a pass that can stop mid-segment; a deadline alone is
    // checked between partitions, so searches keep tantivy's fast paths (counts from
    // doc frequencies, block-wise collection).
    let limited = req.terminate_after.is_some();
    let mut terminated_early = false;
    let mut timed_out = false;
    // Without a time sort there is no early termination to gain from visiting
    // partitions in order: count and collect them all at once, merge below.
    let parallel = time_sort.is_none() && !limited && planned.len() > 1;
    let mut prefetched: Vec<Option<Result<PartitionRun, EsError>>> = if parallel {
        crate::par::map(&planned, |_, p| {
            let count = match req.track_total_hits {
                TrackTotalHits::Off => None,
                _ => Some(
                    p.target
                        .searcher
                        .search(p.query.as_ref(), &Count)
                        .map_err(search_err)? as u64,
                ),
            };
            let hits = if k == 0 {
                Vec::new()
            } else {
                let collector = SortCollector {
                    kinds: kinds.clone(),
                    k,
                    target: p.ord,
                    after: after.clone(),
                };
                p.target
                    .searcher
                    .search(p.query.as_ref(), &collector)
                    .map_err(search_err)?
            };
            Ok((count, hits))
        })
        .into_iter()
        .map(Some)
        .collect()
    } else {
        Vec::new()
    };
    for (pi, p) in planned.iter().enumerate() {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            timed_out = true;
            counted_all = false;
            break;
        }
        let need_count = match req.track_total_hits {
            TrackTotalHits::Exact => true,
            TrackTotalHits::UpTo(n) => total < n,
            TrackTotalHits::Off => false,
        };
        let worst = if k > 0 && cands.len() >= k {
            cands.last().and_then(|(c, _)| c.key.first().cloned())
        } else {
            None
        };
        let cannot_improve = match (time_sort, &worst) {
            (Some(true), Some(Key::I(ts))) => *ts >= p.target.partition.end,
            (Some(false), Some(Key::I(ts))) => *ts < p.target.partition.key,
            _ => false,
        };
        let collector = SortCollector {
            kinds: kinds.clone(),
            k,
            target: p.ord,
            after: after.clone(),
        };
        let hits = if let Some(done) = prefetched.get_mut(pi).and_then(Option::take) {
            let (count, hits) = done?;
            match count {
                Some(c) if need_count => total += c,
                _ => counted_all = false,
            }
            hits
        } else if limited {
            // One bounded pass that counts and collects together.
            let run = collect_bounded(
                &p.target.searcher,
                p.query.as_ref(),
                &collector,
                req.terminate_after,
                deadline,
                k > 0 && !cannot_improve,
            )?;
            total += run.count;
            terminated_early |= run.terminated;
            if run.timed_out {
                timed_out = true;
                counted_all = false;
            }
            run.hits
        } else {
            if need_count {
                total += p
                    .target
                    .searcher
                    .search(p.query.as_ref(), &Count)
                    .map_err(search_err)? as u64;
            } else {
                counted_all = false;
            }
            if cannot_improve || k == 0 {
                continue;
            }
            p.target
                .searcher
                .search(p.query.as_ref(), &collector)
                .map_err(search_err)?
        };
        for h in hits {
            if let Some(min) = req.min_score {
                if h.score < min {
                    continue;
                }
            }
            if kinds.contains(&SortKind::Score) {
                max_score = Some(max_score.map_or(h.score, |m: f32| m.max(h.score)));
            }
            cands.push((h, p.ord));
        }
        cands.sort_by(|a, b| {
            sort::compare(&kinds, (&a.0.key, a.0.tiebreak), (&b.0.key, b.0.tiebreak))
        });
        cands.truncate(k);
    }
    let mut hits = Vec::new();
    for (c, ord) in cands.into_iter().skip(req.from) {
        let t = &snap.targets[ord];
        let doc: TantivyDocument = t.searcher.doc(c.addr).map_err(search_err)?;
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
        hits.push(Hit {
            index: t.index.clone(),
            id,
            score: if kinds.contains(&SortKind::Score) {
                Some(c.score)
            } else {
                None
            },
            source,
            sort_value: c
                .key
                .iter()
                .zip(&kinds)
                .map(|(k, kind)| k.to_json(kind))
                .collect(),
            tiebreak: c.tiebreak,
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
        terminated_early,
        timed_out,
    })
}

fn key_as_u64(k: &Key) -> u64 {
    match k {
        Key::I(v) => *v as u64,
        _ => 0,
    }
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
    let snap = Snapshot::of(indexes);
    let mut out = Vec::new();
    for p in plan(&snap, query, None, now_millis)? {
        let s = &p.target.searcher;
        let docs = s
            .search(p.query.as_ref(), &tantivy::collector::DocSetCollector)
            .map_err(search_err)?;
        for addr in docs {
            let doc: TantivyDocument = s.doc(addr).map_err(search_err)?;
            if let Some(id) = doc
                .get_first(p.target.partition.fields.id)
                .and_then(|v| v.as_str())
            {
                out.push((p.target.index.clone(), id.to_string()));
            }
        }
    }
    Ok(out)
}

/// Runs the `aggs` of a search over a snapshot (on the query, not the post_filter).
/// Runs `aggs` over the snapshot; the flag says the `deadline` cut collection short.
pub fn aggregate(
    snap: &Snapshot,
    query: &Query,
    aggs: &Value,
    now_millis: i64,
    deadline: Option<std::time::Instant>,
) -> Result<(Value, bool), EsError> {
    let parsed = aggs::parse(aggs)?;
    let planned = plan(snap, query, None, now_millis)?;
    let targets: Vec<aggs::AggTarget<'_>> = planned
        .iter()
        .map(|p| aggs::AggTarget {
            index: &p.target.index,
            mapping: &p.target.mapping,
            fields: &p.target.partition.fields,
            searcher: &p.target.searcher,
            query: p.query.as_ref(),
        })
        .collect();
    aggs::run(
        &parsed,
        &targets,
        &aggs::AggContext {
            now_millis,
            max_buckets: aggs::DEFAULT_MAX_BUCKETS,
            deadline,
        },
    )
}
