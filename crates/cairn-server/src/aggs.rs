//! Glue between `_search`'s `aggs` and the aggregation engine in cairn-search.

use cairn_core::EsError;
use cairn_search::{SearchRequest, Snapshot};
use serde_json::Value;

pub fn run(snap: &Snapshot, req: &SearchRequest, aggs: &Value) -> Result<Value, EsError> {
    cairn_search::aggregate(snap, &req.query, aggs, req.now_millis)
}
