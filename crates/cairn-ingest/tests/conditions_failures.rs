//! `if` conditions, `ignore_failure`, processor- and pipeline-level `on_failure`, and
//! pipeline validation errors.

mod common;

use cairn_ingest::Outcome;
use common::*;
use serde_json::json;

fn cond(expr: &str, source: serde_json::Value) -> bool {
    let out = one(
        json!({"set": {"field": "hit", "value": true, "if": expr}}),
        source,
    );
    out.get("hit") == Some(&json!(true))
}

#[test]
fn condition_forms() {
    let src = json!({"a": {"b": "x"}, "n": 7, "s": "Hello World", "tags": ["t1", "t2"], "f": 2.5, "e": ""});
    assert!(cond("ctx.a.b == 'x'", src.clone()));
    assert!(!cond("ctx.a.b != 'x'", src.clone()));
    assert!(cond("ctx.a?.b != null", src.clone()));
    assert!(cond("ctx.missing?.b == null", src.clone()));
    assert!(cond("ctx.n > 5 && ctx.n <= 7", src.clone()));
    assert!(cond("ctx.f >= 2.5 || ctx.n < 0", src.clone()));
    assert!(cond("!(ctx.n < 5)", src.clone()));
    assert!(cond("ctx.s.contains('World')", src.clone()));
    assert!(cond(
        "ctx.s.startsWith(\"Hell\") && ctx.s.endsWith('ld')",
        src.clone()
    ));
    assert!(cond("ctx.s.equalsIgnoreCase('hello world')", src.clone()));
    assert!(cond("ctx.e.isEmpty()", src.clone()));
    assert!(cond("ctx.s.length() == 11", src.clone()));
    assert!(cond(
        "ctx.tags.size() == 2 && ctx.tags.contains('t2')",
        src.clone()
    ));
    assert!(cond("ctx['a']['b'] == 'x'", src.clone()));
    assert!(cond(
        "ctx.s instanceof String && !(ctx.n instanceof String)",
        src.clone()
    ));
    assert!(cond("ctx.containsKey('n')", src.clone()));
    assert!(cond("ctx.s.toLowerCase() == 'hello world'", src.clone()));
    assert!(cond("return ctx.n == 7;", src.clone()));
    assert!(cond("ctx.n == 7.0", src.clone()));
    assert!(cond("ctx._index == 'logs'", src.clone()));
    assert!(!cond("ctx.missing == 'x'", src));
    let out = one(
        json!({"set": {"field": "hit", "value": 1, "if": {"source": "ctx.n > params.min", "params": {"min": 3}}}}),
        json!({"n": 4}),
    );
    assert_eq!(out["hit"], 1);
}

#[test]
fn condition_null_access_fails_like_painless() {
    let e = one_err(
        json!({"set": {"field": "hit", "value": 1, "if": "ctx.missing.b == 'x'"}}),
        json!({}),
    );
    assert_eq!(e.kind, "script_exception");
    assert_eq!(
        e.caused_by.as_ref().map(|c| c.kind.as_str()),
        Some("null_pointer_exception")
    );
    // ignore_failure covers condition errors too.
    let out = one(
        json!({"set": {"field": "hit", "value": 1, "if": "ctx.missing.b == 'x'", "ignore_failure": true}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
}

#[test]
fn unsupported_painless_is_a_clear_creation_error() {
    for bad in [
        "ctx.a = 5",
        "def x = ctx.a; return x",
        "ctx.a.matches('x.*')",
        "ctx.a + 1 > 2",
        "ctx.a =~ /x/",
        "",
    ] {
        let e = parse_err(json!({"processors": [{"set": {"field": "x", "value": 1, "if": bad}}]}));
        assert_eq!(e.kind, "script_exception", "{bad}");
        assert!(
            e.reason.contains("cairn supports this subset of Painless"),
            "{bad}: {}",
            e.reason
        );
        assert_eq!(e.extra["processor_type"], "set");
    }
}

#[test]
fn validation_errors_match_elasticsearch() {
    let e = parse_err(json!({"description": "x"}));
    assert_eq!(e.kind, "parse_exception");
    assert_eq!(e.reason, "[processors] required property is missing");
    let e = parse_err(json!({"processors": [{"frobnicate": {}}]}));
    assert_eq!(e.reason, "No processor type exists with name [frobnicate]");
    assert_eq!(e.extra["processor_type"], "frobnicate");
    let e = parse_err(json!({"processors": [{"set": {"value": 1, "tag": "t1"}}]}));
    assert_eq!(e.reason, "[field] required property is missing");
    assert_eq!(e.extra["processor_type"], "set");
    assert_eq!(e.extra["property_name"], "field");
    assert_eq!(e.extra["processor_tag"], "t1");
    assert_eq!(e.status, 400);
    let e = parse_err(json!({"processors": [{"set": {"field": "a"}}]}));
    assert_eq!(e.reason, "[value] required property is missing");
    let e = parse_err(json!({"processors": [{"set": {"field": "a", "value": 1, "bogus": 2}}]}));
    assert_eq!(
        e.reason,
        "processor [set] doesn't support one or more provided configuration parameters [bogus]"
    );
    let e = parse_err(json!({"processors": [{"grok": {"field": "a"}}]}));
    assert_eq!(e.reason, "[patterns] required property is missing");
    let e = parse_err(json!({"processors": [{"rename": {"field": "a"}}]}));
    assert_eq!(e.reason, "[target_field] required property is missing");
    let e =
        parse_err(json!({"processors": [{"set": {"field": "a", "value": 1, "on_failure": []}}]}));
    assert_eq!(e.reason, "[on_failure] processors list cannot be empty");
    let e = parse_err(json!({"processors": [{"set": {"field": 5, "value": 1}}]}));
    assert_eq!(e.kind, "parse_exception");
    let e = parse_err(
        json!({"processors": [{"set": {"field": "a", "value": 1, "ignore_failure": "maybe"}}]}),
    );
    assert_eq!(
        e.reason,
        "[ignore_failure] property isn't a boolean, but of type [java.lang.String]"
    );
}

#[test]
fn processor_on_failure_sees_metadata_and_continues() {
    let (r, d) = run(
        json!({"processors": [
            {"rename": {"field": "missing", "target_field": "x", "tag": "rn",
                        "on_failure": [
                            {"set": {"field": "err.msg", "value": "{{_ingest.on_failure_message}}"}},
                            {"set": {"field": "err.type", "value": "{{_ingest.on_failure_processor_type}}"}},
                            {"set": {"field": "err.tag", "value": "{{_ingest.on_failure_processor_tag}}"}},
                            {"set": {"field": "err.pipeline", "value": "{{_ingest.on_failure_pipeline}}"}}
                        ]}},
            {"set": {"field": "after", "value": true}},
            {"set": {"field": "leaked", "value": "{{_ingest.on_failure_message}}"}}
        ]}),
        json!({}),
    );
    assert_eq!(r, Ok(Outcome::Keep));
    assert_eq!(d.source["err"]["msg"], "field [missing] doesn't exist");
    assert_eq!(d.source["err"]["type"], "rename");
    assert_eq!(d.source["err"]["tag"], "rn");
    assert_eq!(d.source["err"]["pipeline"], "test");
    assert_eq!(d.source["after"], true);
    assert_eq!(
        d.source["leaked"], "",
        "failure metadata is gone after on_failure"
    );
}

#[test]
fn pipeline_on_failure_stops_remaining_processors() {
    let (r, d) = run(
        json!({
            "processors": [
                {"set": {"field": "first", "value": 1}},
                {"fail": {"message": "boom"}},
                {"set": {"field": "never", "value": 1}}
            ],
            "on_failure": [{"set": {"field": "handled", "value": "{{_ingest.on_failure_message}} by {{_ingest.on_failure_processor_type}}"}}]
        }),
        json!({}),
    );
    assert_eq!(r, Ok(Outcome::Keep));
    assert_eq!(d.source["first"], 1);
    assert_eq!(d.source["handled"], "boom by fail");
    assert!(d.source.get("never").is_none());
}

#[test]
fn ignore_failure_and_failing_handlers() {
    let (r, d) = run(
        json!({"processors": [
            {"fail": {"message": "x", "ignore_failure": true}},
            {"set": {"field": "ok", "value": 1}}
        ]}),
        json!({}),
    );
    assert_eq!(r, Ok(Outcome::Keep));
    assert_eq!(d.source["ok"], 1);
    // A failing on_failure handler fails the document with the handler's error.
    let (r, _) = run(
        json!({"processors": [
            {"fail": {"message": "first", "on_failure": [{"fail": {"message": "second"}}]}}
        ]}),
        json!({}),
    );
    let e = r.unwrap_err();
    assert_eq!(e.reason, "second");
    // Without handlers the document fails with the processor's exception.
    let (r, _) = run(
        json!({"processors": [{"uppercase": {"field": "x"}}]}),
        json!({}),
    );
    let e = r.unwrap_err();
    assert_eq!(e.kind, "illegal_argument_exception");
    assert_eq!(e.reason, "field [x] not present as part of path [x]");
    // Skipped by `if` means not run: no failure.
    let (r, _) = run(
        json!({"processors": [{"fail": {"message": "no", "if": "ctx.run == true"}}]}),
        json!({"run": false}),
    );
    assert_eq!(r, Ok(Outcome::Keep));
}

#[test]
fn nested_pipeline_failure_reaches_outer_on_failure() {
    let lk = lookup(vec![(
        "inner",
        json!({"processors": [{"fail": {"message": "inner broke", "tag": "f1"}}]}),
    )]);
    let p = pipeline(json!({
        "processors": [{"pipeline": {"name": "inner"}}],
        "on_failure": [{"set": {"field": "why", "value": "{{_ingest.on_failure_message}}|{{_ingest.on_failure_processor_tag}}|{{_ingest.on_failure_pipeline}}"}}]
    }));
    let mut d = doc(json!({}));
    let r = p.execute(&mut d, &lk, &cairn_ingest::Budget::default());
    assert_eq!(r, Ok(Outcome::Keep));
    assert_eq!(d.source["why"], "inner broke|f1|inner");
}
