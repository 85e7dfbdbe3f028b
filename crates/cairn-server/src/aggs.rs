//! Glue between `_search`'s `aggs` and the aggregation engine in cairn-search.

use cairn_core::EsError;
use cairn_search::{SearchRequest, Snapshot};
use serde_json::Value;

/// The `aggregations` object, and whether the deadline cut it short.
pub fn run(
    snap: &Snapshot,
    req: &SearchRequest,
    aggs: &Value,
    deadline: Option<std::time::Instant>,
) -> Result<(Value, bool), EsError> {
    cairn_search::aggregate(snap, &req.query, aggs, req.now_millis, deadline)
}
