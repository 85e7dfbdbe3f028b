//! `_simulate` responses, compared with the request/response pairs in the Elasticsearch
//! reference (timestamps scrubbed).

mod common;

use cairn_ingest::{simulate, simulate_request, NoPipelines, Pipeline};
use common::*;
use serde_json::json;

fn sim(body: serde_json::Value, verbose: bool) -> serde_json::Value {
    let mut out =
        simulate_request(&body, None, verbose, &NoPipelines).unwrap_or_else(|e| panic!("{e:?}"));
    scrub(&mut out);
    out
}

#[test]
fn grok_reference_example() {
    // Elasticsearch reference, "Grok processor" page: "Here is an example of using the
    // provided patterns to extract out and name structured fields from a string field in
    // a document." (POST _ingest/pipeline/_simulate).
    let out = sim(
        json!({
          "pipeline": {
            "description" : "...",
            "processors": [
              {
                "grok": {
                  "field": "message",
                  "patterns": ["%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes:int} %{NUMBER:duration:double}"]
                }
              }
            ]
          },
          "docs":[
            { "_source": { "message": "55.3.244.1 GET /index.html 15824 0.043" } }
          ]
        }),
        false,
    );
    assert_eq!(
        out,
        json!({
          "docs": [
            {
              "doc": {
                "_index": "_index",
                "_id": "_id",
                "_version": "-3",
                "_source" : {
                  "duration" : 0.043,
                  "request" : "/index.html",
                  "method" : "GET",
                  "bytes" : 15824,
                  "client" : "55.3.244.1",
                  "message" : "55.3.244.1 GET /index.html 15824 0.043"
                },
                "_ingest": { "timestamp": "<ts>" }
              }
            }
          ]
        })
    );
}

#[test]
fn grok_trace_match_reference_example() {
    // Elasticsearch reference, "Grok processor" page, "Custom patterns" / trace_match
    // example: patterns FAVORITE_DOG / FAVORITE_CAT over "I love burmese cats!".
    let out = sim(
        json!({
          "pipeline": {
          "description" : "parse multiple patterns",
          "processors": [
            {
              "grok": {
                "field": "message",
                "patterns": ["%{FAVORITE_DOG:pet}", "%{FAVORITE_CAT:pet}"],
                "pattern_definitions" : {
                  "FAVORITE_DOG" : "beagle",
                  "FAVORITE_CAT" : "burmese"
                },
                "trace_match": true
              }
            }
          ]
        },
        "docs":[
          { "_source": { "message": "I love burmese cats!" } }
          ]
        }),
        false,
    );
    assert_eq!(
        out,
        json!({
          "docs": [
            {
              "doc": {
                "_index": "_index",
                "_id": "_id",
                "_version": "-3",
                "_source": {
                  "message": "I love burmese cats!",
                  "pet": "burmese"
                },
                "_ingest": {
                  "_grok_match_index": "1",
                  "timestamp": "<ts>"
                }
              }
            }
          ]
        })
    );
}

#[test]
fn dissect_reference_example() {
    // Elasticsearch reference, "Dissect processor" page: the pattern
    // %{clientip} %{ident} %{auth} [%{@timestamp}] \"%{verb} %{request} HTTP/%{httpversion}\" %{status} %{size}
    // over the documented log line, and the documented resulting document.
    let out = sim(
        json!({
          "pipeline": {"processors": [{"dissect": {
            "field": "message",
            "pattern": "%{clientip} %{ident} %{auth} [%{@timestamp}] \"%{verb} %{request} HTTP/%{httpversion}\" %{status} %{size}"
          }}]},
          "docs": [{"_index": "_index", "_id": "_id", "_source": {
            "message": "1.2.3.4 - - [30/Apr/1998:22:00:52 +0000] \"GET /english/venues/cities/images/montpellier/18.gif HTTP/1.0\" 200 3171"
          }}]
        }),
        false,
    );
    let source = &out["docs"][0]["doc"]["_source"];
    let mut expected = json!({
        "request": "/english/venues/cities/images/montpellier/18.gif",
        "auth": "-",
        "ident": "-",
        "verb": "GET",
        "@timestamp": "30/Apr/1998:22:00:52 +0000",
        "size": "3171",
        "clientip": "1.2.3.4",
        "httpversion": "1.0",
        "status": "200"
    });
    if let Some(m) = expected.as_object_mut() {
        m.insert(
            "message".into(),
            out["docs"][0]["doc"]["_source"]["message"].clone(),
        );
    }
    assert_eq!(source, &expected);
    assert_eq!(out["docs"][0]["doc"]["_index"], "_index");
    assert_eq!(out["docs"][0]["doc"]["_id"], "_id");
}

#[test]
fn date_in_simulate() {
    // Elasticsearch reference, "Date processor" page example pipeline (initial_date ->
    // timestamp, dd/MM/yyyy HH:mm:ss, Europe/Amsterdam), run through _simulate.
    let out = sim(
        json!({
          "pipeline": {"description": "...", "processors": [{"date": {
            "field": "initial_date", "target_field": "timestamp",
            "formats": ["dd/MM/yyyy HH:mm:ss"], "timezone": "Europe/Amsterdam"
          }}]},
          "docs": [{"_source": {"initial_date": "08/11/2016 20:43:03"}}]
        }),
        false,
    );
    assert_eq!(
        out["docs"][0]["doc"]["_source"]["timestamp"],
        "2016-11-08T20:43:03.000+01:00"
    );
}

#[test]
fn simulate_api_reference_examples() {
    // Elasticsearch reference, "Simulate pipeline API": pipeline in the request body.
    let out = sim(
        json!({
          "pipeline" : {
            "description": "_description",
            "processors": [ { "set" : { "field" : "field2", "value" : "_value" } } ]
          },
          "docs": [
            { "_index": "index", "_id": "id", "_source": { "foo": "bar" } },
            { "_index": "index", "_id": "id", "_source": { "foo": "rab" } }
          ]
        }),
        false,
    );
    assert_eq!(
        out,
        json!({
          "docs": [
            { "doc": { "_id": "id", "_index": "index", "_version": "-3",
                       "_source": { "field2": "_value", "foo": "bar" },
                       "_ingest": { "timestamp": "<ts>" } } },
            { "doc": { "_id": "id", "_index": "index", "_version": "-3",
                       "_source": { "field2": "_value", "foo": "rab" },
                       "_ingest": { "timestamp": "<ts>" } } }
          ]
        })
    );
    // Same page: verbose=true with two set processors.
    let out = sim(
        json!({
          "pipeline" : {
            "description": "_description",
            "processors": [
              { "set" : { "field" : "field2", "value" : "_value2" } },
              { "set" : { "field" : "field3", "value" : "_value3" } }
            ]
          },
          "docs": [ { "_index": "index", "_id": "id", "_source": { "foo": "bar" } } ]
        }),
        true,
    );
    assert_eq!(
        out,
        json!({
          "docs": [
            {
              "processor_results": [
                {
                  "processor_type": "set",
                  "status": "success",
                  "doc": {
                    "_index": "index", "_id": "id", "_version": "-3",
                    "_source": { "field2": "_value2", "foo": "bar" },
                    "_ingest": { "pipeline": "_simulate_pipeline", "timestamp": "<ts>" }
                  }
                },
                {
                  "processor_type": "set",
                  "status": "success",
                  "doc": {
                    "_index": "index", "_id": "id", "_version": "-3",
                    "_source": { "field3": "_value3", "field2": "_value2", "foo": "bar" },
                    "_ingest": { "pipeline": "_simulate_pipeline", "timestamp": "<ts>" }
                  }
                }
              ]
            }
          ]
        })
    );
}

#[test]
fn simulate_errors_drops_and_verbose_statuses() {
    let out = sim(
        json!({
          "pipeline": {"processors": [{"uppercase": {"field": "x"}}]},
          "docs": [{"_source": {"x": "a"}}, {"_source": {}}]
        }),
        false,
    );
    assert_eq!(out["docs"][0]["doc"]["_source"]["x"], "A");
    assert_eq!(
        out["docs"][1],
        json!({"error": {
            "root_cause": [{"type": "illegal_argument_exception", "reason": "field [x] not present as part of path [x]"}],
            "type": "illegal_argument_exception",
            "reason": "field [x] not present as part of path [x]"
        }})
    );
    let out = sim(
        json!({"pipeline": {"processors": [{"drop": {}}]}, "docs": [{"_source": {}}]}),
        false,
    );
    assert_eq!(out, json!({"docs": [{}]}));
    let out = sim(
        json!({
          "pipeline": {"processors": [
            {"set": {"field": "a", "value": 1, "if": "ctx.go == true", "tag": "t"}},
            {"fail": {"message": "m", "ignore_failure": true}},
            {"drop": {"description": "bye"}}
          ]},
          "docs": [{"_source": {"go": false}}]
        }),
        true,
    );
    let r = &out["docs"][0]["processor_results"];
    assert_eq!(
        r[0],
        json!({"processor_type": "set", "status": "skipped", "tag": "t",
                            "if": {"condition": "ctx.go == true", "result": false}})
    );
    assert_eq!(r[1]["status"], "error_ignored");
    assert_eq!(
        r[1]["ignored_error"]["error"]["type"],
        "fail_processor_exception"
    );
    assert_eq!(
        r[2],
        json!({"processor_type": "drop", "status": "dropped", "description": "bye"})
    );
}

#[test]
fn simulate_request_validation() {
    let e = simulate_request(
        &json!({"pipeline": {"processors": []}}),
        None,
        false,
        &NoPipelines,
    )
    .unwrap_err();
    assert_eq!(e.reason, "[docs] required property is missing");
    let e = simulate_request(
        &json!({"docs": [{"_source": {}}]}),
        None,
        false,
        &NoPipelines,
    )
    .unwrap_err();
    assert_eq!(e.reason, "[pipeline] required property is missing");
    let e = simulate_request(
        &json!({"pipeline": {"processors": []}, "docs": [{"_index": "x"}]}),
        None,
        false,
        &NoPipelines,
    )
    .unwrap_err();
    assert_eq!(e.reason, "[_source] required property is missing");
    let e = simulate_request(
        &json!({"docs": [{"_source": {}}]}),
        Some("nope"),
        false,
        &NoPipelines,
    )
    .unwrap_err();
    assert_eq!(e.reason, "pipeline [nope] does not exist");
    let lk = lookup(vec![(
        "stored",
        json!({"processors": [{"set": {"field": "s", "value": 1}}]}),
    )]);
    let out = simulate_request(
        &json!({"docs": [{"_source": {}}]}),
        Some("stored"),
        false,
        &lk,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out["docs"][0]["doc"]["_source"]["s"], 1);
    let p = Pipeline::parse("p", &json!({"processors": []})).unwrap_or_else(|e| panic!("{e:?}"));
    let out = simulate(
        &p,
        &json!([{"_source": {"a": 1}, "_version": 4}]),
        false,
        &NoPipelines,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out["docs"][0]["doc"]["_version"], "4");
}
