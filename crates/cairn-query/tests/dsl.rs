//! ES query DSL parsing: every clause, short and long forms, errors and limits.

use cairn_query::dsl::parse;
use cairn_query::*;
use serde_json::{json, Value};

fn ok(v: Value) -> Query {
    parse(&v, &Limits::default()).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

fn err(v: Value) -> QueryError {
    parse(&v, &Limits::default()).unwrap_err()
}

fn assert_err(v: Value, kind: ErrorKind, reason: &str) {
    let e = err(v.clone());
    assert_eq!(e.kind, kind, "{v}: {e:?}");
    assert_eq!(e.reason, reason, "{v}");
}

#[test]
fn match_all_and_none() {
    assert_eq!(
        ok(json!({"match_all": {}})),
        Query::MatchAll { boost: None }
    );
    assert_eq!(
        ok(json!({"match_all": {"boost": 1.5, "_name": "x"}})),
        Query::MatchAll { boost: Some(1.5) }
    );
    assert_eq!(ok(json!({"match_none": {}})), Query::MatchNone);
    assert_err(
        json!({"match_all": {"foo": 1}}),
        ErrorKind::XContentParseException,
        "[match_all] unknown field [foo]",
    );
}

#[test]
fn term_short_and_long() {
    assert_eq!(
        ok(json!({"term": {"status": 200}})),
        Query::Term {
            field: "status".into(),
            value: json!(200),
            case_insensitive: false,
            boost: None
        }
    );
    assert_eq!(
        ok(json!({"term": {"user.id": {"value": "Kimchy", "boost": 2, "case_insensitive": true}}})),
        Query::Term {
            field: "user.id".into(),
            value: json!("Kimchy"),
            case_insensitive: true,
            boost: Some(2.0)
        }
    );
    assert_err(
        json!({"term": {"a": {"value": 1, "bar": 2}}}),
        ErrorKind::ParsingException,
        "[term] query does not support [bar]",
    );
    assert_err(
        json!({"term": {"a": 1, "b": 2}}),
        ErrorKind::ParsingException,
        "[term] query doesn't support multiple fields, found [a] and [b]",
    );
    assert_err(
        json!({"term": {"a": [1, 2]}}),
        ErrorKind::ParsingException,
        "[term] query does not support array of values",
    );
    assert_err(
        json!({"term": {"a": {"boost": 2}}}),
        ErrorKind::IllegalArgumentException,
        "value cannot be null",
    );
}

#[test]
fn terms() {
    assert_eq!(
        ok(json!({"terms": {"host": ["a", "b"], "boost": 1.0}})),
        Query::Terms {
            field: "host".into(),
            values: vec![json!("a"), json!("b")],
            boost: Some(1.0)
        }
    );
    assert_err(
        json!({"terms": {"a": ["x"], "b": ["y"]}}),
        ErrorKind::ParsingException,
        "[terms] query does not support multiple fields",
    );
    assert_err(
        json!({"terms": {"boost": 1}}),
        ErrorKind::ParsingException,
        "[terms] query requires a field name, followed by array of terms or a document lookup specification",
    );
    let many: Vec<Value> = (0..70_000).map(|i| json!(i)).collect();
    let e = err(json!({"terms": {"f": many}}));
    assert!(e.reason.starts_with("The number of terms [70000] used in the Terms Query request has exceeded the allowed maximum of [65536]"));
}

#[test]
fn range_forms() {
    assert_eq!(
        ok(
            json!({"range": {"@timestamp": {"gte": "now-15m/m", "lt": "now", "format": "strict_date_optional_time", "time_zone": "+01:00"}}})
        ),
        Query::Range {
            field: "@timestamp".into(),
            gt: None,
            gte: Some(json!("now-15m/m")),
            lt: Some(json!("now")),
            lte: None,
            format: Some("strict_date_optional_time".into()),
            time_zone: Some("+01:00".into()),
            boost: None
        }
    );
    // Legacy from/to/include_*.
    assert_eq!(
        ok(json!({"range": {"n": {"from": 1, "to": 5, "include_upper": false}}})),
        Query::Range {
            field: "n".into(),
            gt: None,
            gte: Some(json!(1)),
            lt: Some(json!(5)),
            lte: None,
            format: None,
            time_zone: None,
            boost: None
        }
    );
    assert_err(
        json!({"range": {"n": {"gte": 1, "foo": 2}}}),
        ErrorKind::ParsingException,
        "[range] query does not support [foo]",
    );
    assert_err(
        json!({"range": {"n": {"gte": 1, "time_zone": "Nowhere/Land"}}}),
        ErrorKind::IllegalArgumentException,
        "Unknown time-zone ID: Nowhere/Land",
    );
}

#[test]
fn exists_prefix_wildcard_regexp_fuzzy_ids() {
    assert_eq!(
        ok(json!({"exists": {"field": "user"}})),
        Query::Exists {
            field: "user".into(),
            boost: None
        }
    );
    assert_err(
        json!({"exists": {}}),
        ErrorKind::IllegalArgumentException,
        "[exists] must be provided with a [field]",
    );
    assert_eq!(
        ok(json!({"prefix": {"user": "ki"}})),
        Query::Prefix {
            field: "user".into(),
            value: "ki".into(),
            case_insensitive: false,
            boost: None
        }
    );
    assert_eq!(
        ok(json!({"prefix": {"user": {"value": "Ki", "case_insensitive": true}}})),
        Query::Prefix {
            field: "user".into(),
            value: "Ki".into(),
            case_insensitive: true,
            boost: None
        }
    );
    assert_eq!(
        ok(
            json!({"wildcard": {"user": {"wildcard": "ki*y", "boost": 1.0, "rewrite": "constant_score"}}})
        ),
        Query::Wildcard {
            field: "user".into(),
            pattern: "ki*y".into(),
            case_insensitive: false,
            boost: Some(1.0)
        }
    );
    assert_eq!(
        ok(
            json!({"regexp": {"user": {"value": "k.*y", "flags": "ALL", "max_determinized_states": 500}}})
        ),
        Query::Regexp {
            field: "user".into(),
            pattern: "k.*y".into(),
            flags: regexp::flags::ALL,
            case_insensitive: false,
            max_determinized_states: 500,
            boost: None
        }
    );
    let long = "a".repeat(1001);
    assert_err(
        json!({"regexp": {"f": long}}),
        ErrorKind::IllegalArgumentException,
        "The length of regex [1001] used in the Regexp Query request has exceeded the allowed maximum of [1000]. This maximum can be set by changing the [index.max_regex_length] index level setting.",
    );
    assert_eq!(
        ok(
            json!({"fuzzy": {"user": {"value": "ki", "fuzziness": "AUTO:2,5", "prefix_length": 1}}})
        ),
        Query::Fuzzy {
            field: "user".into(),
            value: "ki".into(),
            fuzziness: Fuzziness::Auto { low: 2, high: 5 },
            prefix_length: 1,
            max_expansions: 50,
            transpositions: true,
            boost: None
        }
    );
    assert_eq!(
        ok(json!({"ids": {"values": ["1", "4"]}})),
        Query::Ids {
            values: vec!["1".into(), "4".into()],
            boost: None
        }
    );
    assert_err(
        json!({"ids": {"values": ["1"], "x": 1}}),
        ErrorKind::XContentParseException,
        "[ids] unknown field [x]",
    );
}

#[test]
fn match_family() {
    assert_eq!(
        ok(json!({"match": {"message": "this is a test"}})),
        Query::match_text("message", "this is a test")
    );
    match ok(
        json!({"match": {"message": {"query": "a b", "operator": "AND", "minimum_should_match": "75%", "fuzziness": "AUTO", "lenient": true, "zero_terms_query": "all", "analyzer": "standard"}}}),
    ) {
        Query::Match {
            operator,
            minimum_should_match,
            fuzziness,
            lenient,
            zero_terms_query,
            ..
        } => {
            assert_eq!(operator, Operator::And);
            assert_eq!(
                minimum_should_match,
                Some(MinimumShouldMatch::Value(MsmValue::Percent(75)))
            );
            assert_eq!(fuzziness, Some(Fuzziness::default()));
            assert!(lenient);
            assert_eq!(zero_terms_query, ZeroTermsQuery::All);
        }
        other => panic!("{other:?}"),
    }
    assert_err(
        json!({"match": {"message": {"query": "x", "bar": 1}}}),
        ErrorKind::ParsingException,
        "[match] query does not support [bar]",
    );
    assert_err(
        json!({"match": {"message": {"query": "x", "cutoff_frequency": 0.1}}}),
        ErrorKind::ParsingException,
        "[match] query does not support [cutoff_frequency]",
    );
    assert_eq!(
        ok(json!({"match_phrase": {"message": {"query": "quick fox", "slop": 2}}})),
        Query::MatchPhrase {
            field: "message".into(),
            query: "quick fox".into(),
            slop: 2,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None
        }
    );
    assert_eq!(
        ok(json!({"match_phrase_prefix": {"message": "quick brown f"}})),
        Query::MatchPhrasePrefix {
            field: "message".into(),
            query: "quick brown f".into(),
            slop: 0,
            max_expansions: 50,
            boost: None
        }
    );
    assert!(matches!(
        ok(json!({"match_bool_prefix": {"message": "quick brown f"}})),
        Query::MatchBoolPrefix { .. }
    ));
    assert_eq!(
        ok(
            json!({"multi_match": {"query": "x", "fields": ["title^3", "body", "k8s.*"], "type": "most_fields", "tie_breaker": 0.3}})
        ),
        Query::MultiMatch {
            fields: vec![
                ("title".into(), 3.0),
                ("body".into(), 1.0),
                ("k8s.*".into(), 1.0)
            ],
            query: "x".into(),
            kind: MultiMatchType::MostFields,
            operator: Operator::Or,
            minimum_should_match: None,
            fuzziness: None,
            slop: 0,
            tie_breaker: Some(0.3),
            lenient: false,
            zero_terms_query: ZeroTermsQuery::None,
            boost: None
        }
    );
    assert_err(
        json!({"multi_match": {"query": "x", "type": "nope"}}),
        ErrorKind::ParseException,
        "failed to parse [multi_match] query type [nope]. unknown type.",
    );
}

#[test]
fn bool_forms() {
    let q = ok(json!({"bool": {
        "must": {"term": {"a": 1}},
        "should": [{"term": {"b": 2}}, {"term": {"c": 3}}],
        "must_not": [{"exists": {"field": "d"}}],
        "filter": [{"range": {"n": {"gte": 1}}}],
        "minimum_should_match": 1,
        "boost": 2
    }}));
    match &q {
        Query::Bool {
            must,
            should,
            must_not,
            filter,
            minimum_should_match,
            boost,
        } => {
            assert_eq!(must.len(), 1);
            assert_eq!(should.len(), 2);
            assert_eq!(must_not.len(), 1);
            assert_eq!(filter.len(), 1);
            assert_eq!(
                *minimum_should_match,
                Some(MinimumShouldMatch::Value(MsmValue::Count(1)))
            );
            assert_eq!(*boost, Some(2.0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.bool_minimum_should_match(), Some(1));
    assert_err(
        json!({"bool": {"must": [], "bar": 1}}),
        ErrorKind::XContentParseException,
        "[bool] unknown field [bar]",
    );
    assert_eq!(ok(json!({"bool": {}})).bool_minimum_should_match(), Some(0));
    assert_eq!(
        ok(json!({"bool": {"should": [{"match_all": {}}]}})).bool_minimum_should_match(),
        Some(1)
    );
    assert_eq!(
        ok(json!({"bool": {"filter": {"match_all": {}}, "should": [{"match_all": {}}]}}))
            .bool_minimum_should_match(),
        Some(0)
    );
}

#[test]
fn compound_queries() {
    assert!(matches!(
        ok(json!({"constant_score": {"filter": {"term": {"a": 1}}, "boost": 1.2}})),
        Query::ConstantScore { .. }
    ));
    assert_err(
        json!({"constant_score": {}}),
        ErrorKind::ParsingException,
        "[constant_score] requires a 'filter' element",
    );
    assert!(matches!(
        ok(json!({"dis_max": {"queries": [{"term": {"a": 1}}], "tie_breaker": 0.7}})),
        Query::DisMax { .. }
    ));
    assert!(matches!(
        ok(
            json!({"boosting": {"positive": {"term": {"a": 1}}, "negative": {"term": {"b": 1}}, "negative_boost": 0.5}})
        ),
        Query::Boosting { .. }
    ));
}

#[test]
fn query_string_and_friends() {
    let q =
        ok(json!({"query_string": {"query": "status:200 AND foo", "default_field": "message"}}));
    assert_eq!(
        q,
        Query::Bool {
            must: vec![
                Query::match_text("status", "200"),
                Query::match_text("message", "foo")
            ],
            should: vec![],
            must_not: vec![],
            filter: vec![],
            minimum_should_match: None,
            boost: None
        }
    );
    let e = err(json!({"query_string": {"query": "foo:("}}));
    assert_eq!(e.kind, ErrorKind::QueryShardException);
    assert_eq!(e.reason, "Failed to parse query [foo:(]");
    assert_err(
        json!({"query_string": {"query": "x", "bogus": 1}}),
        ErrorKind::ParsingException,
        "[query_string] query does not support [bogus]",
    );
    assert_err(
        json!({"query_string": {"query": "x", "default_field": "a", "fields": ["b"]}}),
        ErrorKind::QueryShardException,
        "failed to create query: Validation Failed: 1: cannot use [fields] parameter in conjunction with [default_field];",
    );
    assert_err(
        json!({"match": {"message": "x", "boost": 2}}),
        ErrorKind::ParsingException,
        "[match] query doesn't support multiple fields, found [message] and [boost]",
    );
    assert_err(
        json!({"term": {}}),
        ErrorKind::IllegalArgumentException,
        "field name is null or empty",
    );
    assert_eq!(
        ok(json!({"range": {"n": {"gte": 1}, "boost": 2}})).boost(),
        Some(2.0)
    );
    assert_err(
        json!({"range": {"n": 5}}),
        ErrorKind::ParsingException,
        "[range] query does not support [n]",
    );
    assert_err(
        json!({"simple_query_string": {"query": "x", "xdefault_operator": "and"}}),
        ErrorKind::ParsingException,
        "[simple_query_string] unsupported field [xdefault_operator]",
    );
    assert_eq!(
        ok(json!({"simple_query_string": {"query": "foo", "fields": ["message"]}})),
        Query::match_text("message", "foo")
    );
    assert_eq!(
        ok(json!({"kql": {"query": "host:web1"}})),
        Query::match_text("host", "web1")
    );
    let e = err(json!({"kql": {"query": "host:("}}));
    assert_eq!(e.kind, ErrorKind::KqlSyntaxError);
}

#[test]
fn structural_errors() {
    assert_err(
        json!({"foo": {}}),
        ErrorKind::ParsingException,
        "unknown query [foo]",
    );
    assert_err(
        json!({"matc": {}}),
        ErrorKind::ParsingException,
        "unknown query [matc] did you mean [match]?",
    );
    assert_err(
        json!({"term_": {"a": 1}}),
        ErrorKind::ParsingException,
        "unknown query [term_] did you mean any of [term, terms, terms_set]?",
    );
    assert_err(
        json!({"nested": {"path": "a", "query": {"match_all": {}}}}),
        ErrorKind::ParsingException,
        "[nested] query is not supported by Cairn",
    );
    assert_err(
        json!({"bool": {"mus": []}}),
        ErrorKind::XContentParseException,
        "[bool] unknown field [mus] did you mean [must]?",
    );
    assert_err(
        json!({}),
        ErrorKind::ParsingException,
        "query malformed, empty clause found",
    );
    assert_err(
        json!({"term": "x"}),
        ErrorKind::ParsingException,
        "[term] query malformed, no start_object after query name",
    );
    assert_err(
        json!({"term": {"a": 1}, "match": {"b": 1}}),
        ErrorKind::ParsingException,
        "[term] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
    );
    assert_err(
        json!({"match_all": {"boost": -1}}),
        ErrorKind::IllegalArgumentException,
        "negative [boost] are not allowed.",
    );
    assert_err(
        json!("x"),
        ErrorKind::ParsingException,
        "[_na] query malformed, must start with start_object",
    );
}

fn nest(levels: usize) -> Value {
    let mut q = json!({"match_all": {}});
    for _ in 0..levels {
        q = json!({"bool": {"must": [q]}});
    }
    q
}

#[test]
fn nested_depth_limit() {
    // 29 bools + the leaf = 30 query levels: allowed (ES default max 30).
    ok(nest(29));
    assert_err(
        nest(30),
        ErrorKind::IllegalArgumentException,
        "The nested depth of the query exceeds the maximum nested depth for queries set in [indices.query.bool.max_nested_depth]",
    );
    // Far deeper input fails the same way without recursing into it (serde_json itself
    // refuses > 128 levels when parsing text; a Value built in code can be deeper).
    let e = err(nest(1000));
    assert_eq!(e.kind, ErrorKind::IllegalArgumentException);
    let limits = Limits {
        max_nested_depth: 5,
        ..Limits::default()
    };
    assert!(parse(&nest(4), &limits).is_ok());
    assert!(parse(&nest(5), &limits).is_err());
}

#[test]
fn clause_limits() {
    let clauses: Vec<Value> = (0..100_000).map(|i| json!({"term": {"f": i}})).collect();
    let e = err(json!({"bool": {"should": clauses}}));
    assert_eq!(e.kind, ErrorKind::TooManyNestedClauses);
    assert_eq!(
        e.reason,
        "Query contains too many nested clauses; maxClauseCount is set to 4096"
    );

    // Spread across several bools.
    let inner: Vec<Value> = (0..1000).map(|i| json!({"term": {"f": i}})).collect();
    let outer: Vec<Value> = (0..5)
        .map(|_| json!({"bool": {"should": inner.clone()}}))
        .collect();
    let e = err(json!({"bool": {"must": outer}}));
    assert_eq!(e.kind, ErrorKind::TooManyNestedClauses);

    // Many compound clauses without leaves still hit the per-bool limit.
    let empties: Vec<Value> = (0..5000).map(|_| json!({"bool": {}})).collect();
    let e = err(json!({"bool": {"filter": empties}}));
    assert_eq!(e.kind, ErrorKind::TooManyClauses);
    assert_eq!(e.reason, "maxClauseCount is set to 4096");

    let ok_clauses: Vec<Value> = (0..4096).map(|i| json!({"term": {"f": i}})).collect();
    ok(json!({"bool": {"should": ok_clauses}}));

    // Query strings count too.
    let text = vec!["a"; 3000].join(" ");
    let e = err(json!({"bool": {"must": [
        {"query_string": {"query": text}},
        {"query_string": {"query": text}}
    ]}}));
    assert_eq!(e.kind, ErrorKind::TooManyNestedClauses);
}

#[test]
fn minimum_should_match_forms() {
    use cairn_query::dsl::parse_minimum_should_match as msm;
    assert_eq!(msm(&json!(3)).unwrap().resolve(5), 3);
    assert_eq!(msm(&json!("-2")).unwrap().resolve(5), 3);
    assert_eq!(msm(&json!("75%")).unwrap().resolve(5), 3);
    assert_eq!(msm(&json!("-25%")).unwrap().resolve(5), 4);
    assert_eq!(msm(&json!("3<90%")).unwrap().resolve(3), 3);
    assert_eq!(msm(&json!("3<90%")).unwrap().resolve(10), 9);
    assert_eq!(msm(&json!("2<-25% 9<-3")).unwrap().resolve(2), 2);
    assert_eq!(msm(&json!("2<-25% 9<-3")).unwrap().resolve(8), 6);
    assert_eq!(msm(&json!("2<-25% 9<-3")).unwrap().resolve(12), 9);
    assert_eq!(msm(&json!(10)).unwrap().resolve(3), 3);
    assert!(msm(&json!("abc")).is_err());
}

#[test]
fn errors_serialize_like_es() {
    let e = err(json!({"foo": {}}));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v,
        json!({"type": "parsing_exception", "reason": "unknown query [foo]"})
    );
    let e = err(json!({"query_string": {"query": "a:("}}));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["type"], "query_shard_exception");
    assert_eq!(v["caused_by"]["type"], "parse_exception");
    assert_eq!(e.root_cause().kind, ErrorKind::ParseException);
}
