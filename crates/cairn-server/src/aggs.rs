//! Glue between `_search`'s `aggs` and the aggregation engine.

use cairn_core::EsError;
use cairn_search::{SearchRequest, Snapshot};
use serde_json::Value;

pub fn run(_snap: &Snapshot, _req: &SearchRequest, _aggs: &Value) -> Result<Value, EsError> {
    Err(EsError::illegal_argument(
        "aggregations are not supported by this cairn build yet",
    ))
}
