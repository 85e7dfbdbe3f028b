//! Elasticsearch aggregations over Cairn partitions.
//!
//! [`parse`] turns the request's `aggs` object into an [`Aggs`] tree, rejecting unknown
//! types and keys with Elasticsearch's errors. [`run`] executes it over every target
//! (one per partition of every index searched; each is treated as a shard): documents
//! matching the target's query are fed through the tree segment by segment, reading
//! values from fast-field columns only (`_source` is loaded for top_hits alone). Each
//! target's result is trimmed like a shard response (terms keep `shard_size` buckets
//! and record their error bound), then the targets are merged and rendered in ES's
//! response shape (the `aggregations` object), counting buckets against
//! `search.max_buckets`.
//!
//! Supported: terms, date_histogram, histogram, range, date_range, filter, filters,
//! composite, avg, sum, min, max, stats, extended_stats, value_count, cardinality,
//! percentiles, top_hits — nested at any depth.

mod collect;
mod dates;
mod fast;
mod parse;
mod partial;
mod render;
mod sketch;

use cairn_core::mapping::Mapping;
use cairn_core::EsError;
use cairn_store::schema::Fields;
use serde_json::{Map, Value};

pub use parse::{parse, Aggs};

/// One partition to aggregate over: its index's name and mapping, the partition's
/// fields and searcher, and the request query compiled for that index.
pub struct AggTarget<'a> {
    pub index: &'a str,
    pub mapping: &'a Mapping,
    pub fields: &'a Fields,
    pub searcher: &'a tantivy::Searcher,
    pub query: &'a dyn tantivy::query::Query,
}

/// Request-wide settings.
#[derive(Debug, Clone, Copy)]
pub struct AggContext {
    /// "now" for date math (`date_range`, bounds), epoch millis.
    pub now_millis: i64,
    /// `search.max_buckets`.
    pub max_buckets: usize,
    /// The search's `timeout`: past it, collection stops and the answer is partial.
    pub deadline: Option<std::time::Instant>,
}

impl AggContext {
    /// Whether the search's time is up.
    pub(crate) fn expired(&self) -> bool {
        self.deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
    }
}

/// Elasticsearch's default `search.max_buckets`.
pub const DEFAULT_MAX_BUCKETS: usize = 65_536;

impl Default for AggContext {
    fn default() -> Self {
        AggContext {
            now_millis: 0,
            max_buckets: DEFAULT_MAX_BUCKETS,
            deadline: None,
        }
    }
}

pub(crate) fn too_many_buckets(limit: usize) -> EsError {
    EsError::new(
        400,
        "too_many_buckets_exception",
        format!(
            "Trying to create too many buckets. Must be less than or equal to: [{limit}] but this number of buckets was exceeded. This limit can be set by changing the [search.max_buckets] cluster level setting."
        ),
    )
    .with("max_buckets", limit as u64)
}

/// Runs the aggregations over all targets and returns the `aggregations` object, and
/// whether the deadline cut collection short (the buckets are then partial).
pub fn run(
    aggs: &Aggs,
    targets: &[AggTarget<'_>],
    ctx: &AggContext,
) -> Result<(Value, bool), EsError> {
    let single = targets.len() <= 1;
    let mut acc: Vec<partial::Partial> = aggs.nodes.iter().map(partial::Partial::empty).collect();
    let cut = std::sync::atomic::AtomicBool::new(false);
    let shard = |i: usize, t: &AggTarget<'_>| -> Result<Vec<partial::Partial>, EsError> {
        if ctx.expired() {
            cut.store(true, std::sync::atomic::Ordering::Relaxed);
            return Ok(aggs.nodes.iter().map(partial::Partial::empty).collect());
        }
        let (mut parts, truncated) = collect::collect_target(&aggs.nodes, t, ctx, i)?;
        if truncated {
            cut.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        partial::finalize_shard(&aggs.nodes, &mut parts, single);
        Ok(parts)
    };
    // Partitions are collected concurrently, then merged in partition order.
    let results = crate::par::map(targets, shard);
    for parts in results {
        for (a, b) in acc.iter_mut().zip(parts?) {
            a.merge(b);
        }
    }
    let mut out = Map::new();
    let mut counter = render::Counter::new(ctx.max_buckets);
    render::render_level(&aggs.nodes, acc, ctx, &mut counter, &mut out)?;
    Ok((
        Value::Object(out),
        cut.load(std::sync::atomic::Ordering::Relaxed),
    ))
}
