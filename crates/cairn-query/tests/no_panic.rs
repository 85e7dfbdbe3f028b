//! Property tests: no input panics the parsers, and parsed queries evaluate without panic.

use cairn_query::*;
use proptest::prelude::*;
use serde_json::json;

/// Strings biased toward the syntax characters of all three languages.
fn query_like() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a", "foo", "b.c", ":", " ", "(", ")", "[", "]", "{", "}", "\"", "\\", "*", "?", "~", "^",
        "/", "+", "-", "!", "&&", "||", "AND", "OR", "NOT", "and", "or", "not", "TO", "<", ">",
        "<=", ">=", "=", "2", "0.5", "now-1d/d", "_exists_", "\u{e9}", "\u{3000}", "\t", "|", "@",
        "#", "&", "'", "\u{0}", "\\u00e9", "\\u12",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

fn doc() -> serde_json::Value {
    json!({"a": "foo bar", "b": {"c": [1, "x"]}, "message": "foo a b", "@timestamp": 0, "foo": true})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lucene_never_panics(s in query_like()) {
        if let Ok(q) = lucene::parse(&s, &Limits::default()) {
            let _ = matches(&q, &doc(), &EvalContext::new(0));
        }
        let opts = lucene::QueryStringOptions {
            default_operator: Operator::And,
            allow_leading_wildcard: false,
            default_fields: vec![("a".into(), 2.0), ("b*".into(), 1.0)],
            ..Default::default()
        };
        let _ = lucene::parse_query_string(&s, &opts, &Limits::default());
    }

    #[test]
    fn kql_never_panics(s in query_like()) {
        if let Ok(q) = kql::parse(&s, &kql::KqlOptions::default(), &Limits::default()) {
            let _ = matches(&q, &doc(), &EvalContext::new(0));
        }
    }

    #[test]
    fn simple_never_panics(s in query_like()) {
        let q = simple::parse(&s, &simple::SimpleQueryStringOptions::default(), &Limits::default());
        prop_assert!(q.is_ok());
        if let Ok(q) = q {
            let _ = matches(&q, &doc(), &EvalContext::new(0));
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(s in "\\PC{0,60}") {
        let _ = lucene::parse(&s, &Limits::default());
        let _ = kql::parse(&s, &kql::KqlOptions::default(), &Limits::default());
        let _ = simple::parse(&s, &simple::SimpleQueryStringOptions::default(), &Limits::default());
        let _ = datemath::resolve(&s, 0, true, None, &datemath::TimeZone::utc());
        let _ = datemath::parse_time_zone(&s);
        let _ = regexp::lucene_regex_to_rust(&s, regexp::flags::ALL, false);
    }

    #[test]
    fn regex_and_dates_never_panic(s in query_like()) {
        let _ = regexp::compile_lucene_regex(&s, regexp::flags::ALL, true, 10_000);
        let _ = datemath::resolve(&format!("now{s}"), 0, false, None, &datemath::TimeZone::utc());
        let _ = datemath::parse_date(&s, Some("yyyy-MM-dd'T'HH:mm:ss.SSSZ||epoch_second"), &datemath::TimeZone::utc(), true);
    }

    #[test]
    fn dsl_never_panics(
        name in prop::sample::select(vec!["match", "term", "range", "bool", "query_string", "kql", "multi_match", "regexp", "fuzzy", "wildcard", "prefix", "terms", "ids", "exists", "simple_query_string", "nope"]),
        key in prop::sample::select(vec!["f", "query", "value", "must", "should", "fields", "gte", "boost", "flags", "fuzziness", "minimum_should_match", "values", "field"]),
        s in query_like(),
        n in any::<i64>(),
    ) {
        for body in [
            json!({name: {key: s}}),
            json!({name: {key: n}}),
            json!({name: {key: {"query": s, "value": s, "boost": n}}}),
            json!({name: {key: [s, n]}}),
            json!({name: {key: [{"match": {"f": s}}]}}),
            json!({name: {key: null}}),
        ] {
            if let Ok(q) = dsl::parse(&body, &Limits::default()) {
                let _ = matches(&q, &doc(), &EvalContext::new(0));
            }
        }
    }
}

#[test]
fn hostile_sizes_are_bounded() {
    let limits = Limits::default();
    // 100k-deep nesting in every string syntax: an error, no stack overflow.
    for s in [
        "(".repeat(100_000),
        format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000)),
    ] {
        assert!(lucene::parse(&s, &limits).is_err());
        assert!(kql::parse(&s, &kql::KqlOptions::default(), &limits).is_err());
        assert!(simple::parse(&s, &simple::SimpleQueryStringOptions::default(), &limits).is_err());
    }
    // 100k clauses: the clause limit.
    let s = vec!["a"; 100_000].join(" OR ");
    assert_eq!(
        lucene::parse(&s, &limits).unwrap_err().kind,
        ErrorKind::TooManyNestedClauses
    );
    let s = vec!["a"; 100_000].join(" or ");
    assert_eq!(
        kql::parse(&s, &kql::KqlOptions::default(), &limits)
            .unwrap_err()
            .kind,
        ErrorKind::TooManyNestedClauses
    );
    // Over-long query strings.
    let s = "a".repeat(limits.max_query_string_length + 1);
    assert!(lucene::parse(&s, &limits).is_err());
    assert!(kql::parse(&s, &kql::KqlOptions::default(), &limits).is_err());
}
