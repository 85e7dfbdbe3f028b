//! Evaluating queries from all three languages against in-memory documents.

use cairn_query::datemath::{parse_date, TimeZone};
use cairn_query::*;
use serde_json::{json, Value};

fn now() -> i64 {
    parse_date("2024-03-15T12:00:00Z", None, &TimeZone::utc(), false).unwrap()
}

fn doc() -> Value {
    json!({
        "@timestamp": "2024-03-15T11:50:00.000Z",
        "message": "GET /api/users returned 500 Internal Server Error",
        "log": {"level": "error"},
        "http.response.status_code": 500,
        "http": {"request": {"method": "GET"}},
        "host": {"name": "web-01"},
        "tags": ["prod", "eu-west"],
        "kubernetes": {"pod": {"name": "api-7d9f"}, "namespace": "shop"},
        "error": {"message": "NullPointerException at Foo.bar"},
        "user": {"name": "Alice", "id": "u42"},
        "bytes": 1234.5,
        "ok": false,
        "empty": null,
        "list": [],
        "spans": [{"name": "db"}, {"name": "cache"}]
    })
}

fn ctx() -> EvalContext<'static> {
    EvalContext::new(now())
}

fn dsl(v: Value) -> bool {
    let q = dsl::parse(&v, &Limits::default()).unwrap_or_else(|e| panic!("{v}: {e:?}"));
    matches(&q, &doc(), &ctx()).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

fn lucene(s: &str) -> bool {
    let q = lucene::parse(s, &Limits::default()).unwrap_or_else(|e| panic!("{s}: {e:?}"));
    matches(&q, &doc(), &ctx()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

fn kql(s: &str) -> bool {
    let q = kql::parse(s, &kql::KqlOptions::default(), &Limits::default())
        .unwrap_or_else(|e| panic!("{s}: {e:?}"));
    matches(&q, &doc(), &ctx()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

#[test]
fn field_addressing() {
    // dotted key, nested object, mixed
    assert!(dsl(json!({"term": {"http.response.status_code": 500}})));
    assert!(dsl(json!({"term": {"http.request.method": "GET"}})));
    assert!(dsl(json!({"term": {"log.level": "error"}})));
    assert!(matches(
        &Query::term("a.b.c", "x"),
        &json!({"a": {"b.c": "x"}}),
        &ctx()
    )
    .unwrap());
    assert!(matches(
        &Query::term("a.b.c", "x"),
        &json!({"a.b": {"c": ["y", "x"]}}),
        &ctx()
    )
    .unwrap());
    // arrays: any element
    assert!(dsl(json!({"term": {"tags": "eu-west"}})));
    assert!(dsl(json!({"term": {"spans.name": "cache"}})));
    assert!(!dsl(json!({"term": {"spans.name": "queue"}})));
    // .keyword falls back to the base field, exact
    assert!(dsl(json!({"term": {"host.name.keyword": "web-01"}})));
    // patterns
    assert!(dsl(json!({"term": {"kubernetes.*": "shop"}})));
    assert!(!dsl(json!({"term": {"kubernetes.*": "nope"}})));
}

#[test]
fn exists() {
    assert!(dsl(json!({"exists": {"field": "user"}})));
    assert!(dsl(json!({"exists": {"field": "user.name"}})));
    assert!(!dsl(json!({"exists": {"field": "empty"}})));
    assert!(!dsl(json!({"exists": {"field": "list"}})));
    assert!(!dsl(json!({"exists": {"field": "missing"}})));
    assert!(dsl(json!({"exists": {"field": "kubernetes.*"}})));
}

#[test]
fn term_semantics() {
    // keyword: exact, case-sensitive unless case_insensitive
    assert!(!dsl(json!({"term": {"user.name": "alice"}})));
    assert!(dsl(
        json!({"term": {"user.name": {"value": "alice", "case_insensitive": true}}})
    ));
    // numbers compare numerically, from strings too
    assert!(dsl(json!({"term": {"http.response.status_code": "500"}})));
    assert!(dsl(json!({"term": {"bytes": 1234.50}})));
    assert!(dsl(json!({"term": {"ok": false}})));
    assert!(dsl(json!({"term": {"ok": "false"}})));
    // text: compared with tokens, not analyzed
    assert!(dsl(json!({"term": {"message": "internal"}})));
    assert!(!dsl(json!({"term": {"message": "Internal"}})));
    assert!(dsl(json!({"terms": {"log.level": ["warn", "error"]}})));
    assert!(!dsl(json!({"terms": {"log.level": ["warn", "info"]}})));
    // dates: a term on a date field matches the interval it names
    assert!(dsl(json!({"term": {"@timestamp": "2024-03-15"}})));
    assert!(!dsl(json!({"term": {"@timestamp": "2024-03-14"}})));
}

#[test]
fn ranges() {
    assert!(dsl(
        json!({"range": {"http.response.status_code": {"gte": 500, "lt": 600}}})
    ));
    assert!(!dsl(
        json!({"range": {"http.response.status_code": {"gt": 500}}})
    ));
    assert!(dsl(json!({"range": {"bytes": {"gt": "1000"}}})));
    assert!(dsl(
        json!({"range": {"@timestamp": {"gte": "now-15m", "lte": "now"}}})
    ));
    assert!(!dsl(json!({"range": {"@timestamp": {"gte": "now-5m"}}})));
    assert!(dsl(json!({"range": {"@timestamp": {"gte": "now/d"}}})));
    // gt now/d rounds up: excludes today
    assert!(!dsl(json!({"range": {"@timestamp": {"gt": "now/d"}}})));
    // lte a day includes the whole day
    assert!(dsl(json!({"range": {"@timestamp": {"lte": "2024-03-15"}}})));
    assert!(!dsl(json!({"range": {"@timestamp": {"lt": "2024-03-15"}}})));
    assert!(dsl(
        json!({"range": {"@timestamp": {"gte": "15/03/2024", "format": "dd/MM/yyyy"}}})
    ));
    assert!(dsl(
        json!({"range": {"@timestamp": {"gte": "2024-03-15T12:45:00", "time_zone": "+01:00"}}})
    ));
    assert!(!dsl(
        json!({"range": {"@timestamp": {"gte": "2024-03-15T12:55:00", "time_zone": "+01:00"}}})
    ));
    // keyword ranges are lexicographic
    assert!(dsl(
        json!({"range": {"host.name": {"gte": "web-00", "lte": "web-99"}}})
    ));
    // date math on epoch millis documents
    let d = json!({"ts": now() - 60_000});
    let q = dsl::parse(
        &json!({"range": {"ts": {"gte": "now-5m"}}}),
        &Limits::default(),
    )
    .unwrap();
    assert!(matches(&q, &d, &ctx()).unwrap());
    // bad date math is an error, not a silent false
    let q = dsl::parse(
        &json!({"range": {"@timestamp": {"gte": "now+1q"}}}),
        &Limits::default(),
    )
    .unwrap();
    assert!(matches(&q, &doc(), &ctx()).is_err());
}

#[test]
fn term_level_patterns() {
    assert!(dsl(json!({"prefix": {"host.name": "web-"}})));
    assert!(!dsl(json!({"prefix": {"host.name": "WEB-"}})));
    assert!(dsl(
        json!({"prefix": {"host.name": {"value": "WEB-", "case_insensitive": true}}})
    ));
    assert!(dsl(json!({"wildcard": {"kubernetes.pod.name": "api-*"}})));
    assert!(dsl(
        json!({"wildcard": {"kubernetes.pod.name": "a?i-7d9f"}})
    ));
    assert!(dsl(
        json!({"regexp": {"kubernetes.pod.name": "api-[0-9a-f]+"}})
    ));
    assert!(!dsl(json!({"regexp": {"kubernetes.pod.name": "api"}})));
    // text fields: per token, pattern lowercased
    assert!(dsl(json!({"prefix": {"message": "Intern"}})));
    assert!(dsl(json!({"wildcard": {"message": "serv*"}})));
    assert!(dsl(json!({"regexp": {"message": "us.rs"}})));
    assert!(dsl(json!({"fuzzy": {"message": "internl"}})));
    assert!(dsl(
        json!({"fuzzy": {"user.name": {"value": "Alise", "fuzziness": 1}}})
    ));
    assert!(!dsl(
        json!({"fuzzy": {"user.name": {"value": "Bob", "fuzziness": 2}}})
    ));
}

#[test]
fn ids() {
    let q = dsl::parse(&json!({"ids": {"values": ["a", "b"]}}), &Limits::default()).unwrap();
    assert!(matches(&q, &doc(), &ctx().with_doc_id("b")).unwrap());
    assert!(!matches(&q, &doc(), &ctx().with_doc_id("c")).unwrap());
    assert!(matches(&q, &json!({"_id": "a"}), &ctx()).unwrap());
}

#[test]
fn full_text() {
    assert!(dsl(json!({"match": {"message": "server crash"}})));
    assert!(!dsl(
        json!({"match": {"message": {"query": "server crash", "operator": "and"}}})
    ));
    assert!(dsl(
        json!({"match": {"message": {"query": "internal server crash", "minimum_should_match": 2}}})
    ));
    assert!(!dsl(
        json!({"match": {"message": {"query": "internal server crash", "minimum_should_match": "100%"}}})
    ));
    assert!(dsl(
        json!({"match": {"message": {"query": "servr", "fuzziness": "AUTO"}}})
    ));
    assert!(dsl(
        json!({"match": {"message": {"query": "!!!", "zero_terms_query": "all"}}})
    ));
    assert!(!dsl(json!({"match": {"message": "!!!"}})));
    // keyword: whole value
    assert!(dsl(json!({"match": {"host.name": "web-01"}})));
    assert!(!dsl(json!({"match": {"host.name": "web"}})));
    assert!(dsl(json!({"match": {"http.response.status_code": "500"}})));
    assert!(dsl(
        json!({"match_phrase": {"message": "internal server error"}})
    ));
    assert!(!dsl(
        json!({"match_phrase": {"message": "server internal"}})
    ));
    assert!(dsl(
        json!({"match_phrase": {"message": {"query": "returned internal", "slop": 1}}})
    ));
    assert!(dsl(
        json!({"match_phrase_prefix": {"message": "internal serv"}})
    ));
    assert!(dsl(json!({"match_bool_prefix": {"message": "crash serv"}})));
    assert!(dsl(
        json!({"multi_match": {"query": "nullpointerexception", "fields": ["message", "error.message"]}})
    ));
    assert!(dsl(
        json!({"multi_match": {"query": "foo bar", "fields": ["error.*"], "type": "phrase"}})
    ));
    assert!(dsl(
        json!({"multi_match": {"query": "get alice", "fields": ["message", "user.name"], "type": "cross_fields", "operator": "and"}})
    ));
    assert!(
        dsl(json!({"multi_match": {"query": "Alice"}})),
        "default fields = all fields"
    );
}

#[test]
fn compound() {
    assert!(dsl(json!({"bool": {
        "must": [{"match": {"message": "error"}}],
        "filter": [{"term": {"log.level": "error"}}],
        "must_not": [{"term": {"tags": "staging"}}],
        "should": [{"term": {"user.id": "nope"}}]
    }})));
    assert!(!dsl(
        json!({"bool": {"should": [{"term": {"user.id": "nope"}}, {"term": {"user.id": "no"}}]}})
    ));
    assert!(dsl(
        json!({"bool": {"must_not": [{"term": {"user.id": "nope"}}]}})
    ));
    assert!(!dsl(
        json!({"bool": {"should": [{"term": {"user.id": "u42"}}, {"term": {"tags": "prod"}}, {"term": {"x": 1}}], "minimum_should_match": 3}})
    ));
    assert!(dsl(
        json!({"bool": {"should": [{"term": {"user.id": "u42"}}, {"term": {"tags": "prod"}}, {"term": {"x": 1}}], "minimum_should_match": "-1"}})
    ));
    assert!(dsl(
        json!({"constant_score": {"filter": {"term": {"user.id": "u42"}}}})
    ));
    assert!(dsl(
        json!({"dis_max": {"queries": [{"term": {"x": 1}}, {"term": {"user.id": "u42"}}]}})
    ));
    assert!(dsl(
        json!({"boosting": {"positive": {"match_all": {}}, "negative": {"term": {"user.id": "u42"}}, "negative_boost": 0.1}})
    ));
    assert!(dsl(json!({"match_all": {}})));
    assert!(!dsl(json!({"match_none": {}})));
}

#[test]
fn lucene_syntax() {
    assert!(lucene("log.level:error"));
    assert!(lucene("message:server AND http.response.status_code:500"));
    assert!(lucene("message:\"internal server\""));
    assert!(!lucene("message:\"server internal\""));
    assert!(lucene("http.response.status_code:[500 TO 599]"));
    assert!(!lucene("http.response.status_code:{500 TO 599]"));
    assert!(lucene("http.response.status_code:>=500"));
    assert!(lucene("@timestamp:[now-1h TO now]"));
    assert!(lucene("host.name:web*"));
    assert!(lucene("host.name:WEB* OR user.name:Ali*"));
    assert!(lucene("message:Serv*"), "text-field prefix is normalized");
    assert!(lucene("NOT log.level:info"));
    assert!(!lucene("-log.level:error"));
    assert!(lucene("_exists_:user.id"));
    assert!(lucene("internal"), "unqualified searches every field");
    assert!(
        lucene("Alice"),
        "default fields include keyword fields (exact whole value)"
    );
    assert!(
        !lucene("alice"),
        "keyword fields are case-sensitive, as in ES"
    );
    assert!(lucene("kubernetes.pod.name:/api-.*/"));
    assert!(lucene("message:intrenal~1"));
    assert!(lucene("log.level:(warn OR error) AND tags:prod"));
    assert!(lucene("kubernetes.\\*:shop"));
}

#[test]
fn kql_syntax() {
    assert!(kql("log.level:error"));
    assert!(kql(
        "log.level : error and http.response.status_code >= 500"
    ));
    assert!(kql("message: server crash"), "unquoted words OR'ed");
    assert!(kql("message:\"internal server error\""));
    assert!(!kql("message:\"server internal\""));
    assert!(kql("log.level:(warn or error)"));
    assert!(kql("not log.level:info"));
    assert!(kql("host.name:web*"));
    assert!(kql("user.id:*"));
    assert!(!kql("missing:*"));
    assert!(kql("@timestamp > now-1h"));
    assert!(!kql("@timestamp < now-1h"));
    assert!(kql("kubernetes:{ namespace:shop and pod.name:api* }"));
    assert!(kql("kubernetes.*:shop"));
    assert!(kql("internal"));
    assert!(kql("\"Internal Server\""));
    assert!(kql("ok:false"));
    assert!(kql(""));
}

#[test]
fn custom_field_kinds() {
    let kinds = |f: &str| -> Option<FieldKind> {
        if f == "host.name" {
            Some(FieldKind::Text)
        } else {
            None
        }
    };
    let c = EvalContext::new(now()).with_field_kinds(&kinds);
    let q = dsl::parse(&json!({"match": {"host.name": "web"}}), &Limits::default()).unwrap();
    assert!(matches(&q, &doc(), &c).unwrap());
    assert!(!matches(&q, &doc(), &ctx()).unwrap());
}

#[test]
fn matcher_precompiles_and_agrees_with_matches() {
    for (q, expected) in [
        (json!({"wildcard": {"kubernetes.pod.name": "api-*"}}), true),
        (
            json!({"regexp": {"kubernetes.pod.name": "api-[0-9a-f]+"}}),
            true,
        ),
        (
            json!({"bool": {"must": [{"term": {"kubernetes.*": "shop"}}, {"wildcard": {"message": "serv*"}}]}}),
            true,
        ),
        (json!({"wildcard": {"host.name": "db-*"}}), false),
    ] {
        let query = dsl::parse(&q, &Limits::default()).unwrap();
        let m = Matcher::new(query.clone()).unwrap();
        assert_eq!(m.matches(&doc(), &ctx()).unwrap(), expected, "{q}");
        assert_eq!(matches(&query, &doc(), &ctx()).unwrap(), expected, "{q}");
    }
    // Invalid patterns are rejected up front.
    let bad = dsl::parse(&json!({"regexp": {"f": "a&b"}}), &Limits::default()).unwrap();
    assert!(Matcher::new(bad).is_err());
}
