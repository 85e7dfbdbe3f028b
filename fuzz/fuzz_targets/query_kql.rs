//! Fuzz the KQL parser: no input may panic.
#![no_main]

use cairn_query::{kql, matches, EvalContext, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    if let Ok(query) = kql::parse(text, &kql::KqlOptions::default(), &limits) {
        let _ = limits.check_clauses(&query);
        let doc = serde_json::json!({"message": "a b c", "n": 1, "t": "2024-01-01T00:00:00Z"});
        let _ = matches(&query, &doc, &EvalContext::new(0));
    }
});
