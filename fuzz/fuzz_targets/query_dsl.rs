//! Fuzz the ES query DSL parser and the evaluator: no input may panic.
#![no_main]

use cairn_query::{dsl, matches, EvalContext, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let limits = Limits::default();
    if let Ok(query) = dsl::parse(&value, &limits) {
        let _ = limits.check_clauses(&query);
        let doc = serde_json::json!({"message": "a b c", "n": 1, "t": "2024-01-01T00:00:00Z"});
        let _ = matches(&query, &doc, &EvalContext::new(0));
    }
});
