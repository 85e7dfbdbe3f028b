//! Fuzz the Lucene query_string and simple_query_string parsers: no input may panic.
#![no_main]

use cairn_query::{lucene, matches, simple, EvalContext, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let doc = serde_json::json!({"message": "a b c", "n": 1, "t": "2024-01-01T00:00:00Z"});
    if let Ok(query) = lucene::parse(text, &limits) {
        let _ = limits.check_clauses(&query);
        let _ = matches(&query, &doc, &EvalContext::new(0));
    }
    if let Ok(query) = simple::parse(text, &simple::SimpleQueryStringOptions::default(), &limits) {
        let _ = matches(&query, &doc, &EvalContext::new(0));
    }
    // The regexp query's translation, all syntax flags on, with the server's size bound.
    let _ = cairn_query::regexp::compile_lucene_regex(
        text,
        u32::MAX,
        false,
        limits.max_determinized_states,
    );
});
