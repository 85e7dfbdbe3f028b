//! Random input never panics grok, dissect or kv (errors are fine).

mod common;

use cairn_ingest::{Budget, IngestDocument, NoPipelines, Pipeline};
use proptest::prelude::*;
use serde_json::json;

fn pipelines() -> Vec<Pipeline> {
    let bodies = [
        json!({"processors": [{"grok": {"field": "m", "patterns": ["%{COMBINEDAPACHELOG}", "%{SYSLOGBASE} %{GREEDYDATA:rest}", "%{IP:ip} %{NUMBER:n:float} %{QS:q}"]}}]}),
        json!({"processors": [{"dissect": {"field": "m", "pattern": "%{a} [%{+a/2}] %{*k}=%{&k} %{?s} %{z->} %{end}", "append_separator": "|"}}]}),
        json!({"processors": [{"kv": {"field": "m", "field_split": "[ &]", "value_split": "=+", "trim_value": "\"'", "strip_brackets": true, "target_field": "kv"}}]}),
        json!({"processors": [{"split": {"field": "m", "separator": ""}}, {"gsub": {"field": "m", "pattern": "", "replacement": "x"}}]}),
    ];
    bodies
        .iter()
        .map(|b| Pipeline::parse("p", b).unwrap_or_else(|e| panic!("{e:?}")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn parsers_never_panic(s in "\\PC{0,200}", t in "[a-z0-9 =&\\[\\]\"'.:-]{0,120}") {
        for p in pipelines() {
            for input in [&s, &t] {
                let mut d = IngestDocument {
                    source: json!({"m": input}).as_object().cloned().unwrap_or_default(),
                    index: "i".into(),
                    id: None,
                    ingest_timestamp: 0,
                };
                let _ = p.execute(&mut d, &NoPipelines, &Budget::default());
            }
        }
    }

    #[test]
    fn dissect_patterns_never_panic(pat in "[%{}a-z+?*&/ ->]{0,40}", input in "[a-z {}%-]{0,60}") {
        let body = json!({"processors": [{"dissect": {"field": "m", "pattern": pat}}]});
        if let Ok(p) = Pipeline::parse("p", &body) {
            let mut d = IngestDocument {
                source: json!({"m": input}).as_object().cloned().unwrap_or_default(),
                index: "i".into(),
                id: None,
                ingest_timestamp: 0,
            };
            let _ = p.execute(&mut d, &NoPipelines, &Budget::default());
        }
    }

    #[test]
    fn grok_patterns_never_panic(pat in "[%{}A-Z:a-z()?<>\\[\\]+*.|\\\\]{0,40}", input in "\\PC{0,60}") {
        let body = json!({"processors": [{"grok": {"field": "m", "patterns": [pat]}}]});
        if let Ok(p) = Pipeline::parse("p", &body) {
            let mut d = IngestDocument {
                source: json!({"m": input}).as_object().cloned().unwrap_or_default(),
                index: "i".into(),
                id: None,
                ingest_timestamp: 0,
            };
            let _ = p.execute(&mut d, &NoPipelines, &Budget::default());
        }
    }

    #[test]
    fn conditions_never_panic(expr in "[a-z.?!=<>&|()'0-9 \\[\\]]{0,40}") {
        let body = json!({"processors": [{"set": {"field": "x", "value": 1, "if": expr}}]});
        if let Ok(p) = Pipeline::parse("p", &body) {
            let mut d = IngestDocument {
                source: json!({"a": {"b": "c"}, "n": 1}).as_object().cloned().unwrap_or_default(),
                index: "i".into(),
                id: None,
                ingest_timestamp: 0,
            };
            let _ = p.execute(&mut d, &NoPipelines, &Budget::default());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn dates_never_panic(input in "\\PC{0,40}", digits in "[0-9:. TZ+-]{0,30}") {
        let body = json!({"processors": [{"date": {"field": "t", "ignore_failure": true, "formats": [
            "ISO8601", "UNIX", "UNIX_MS", "TAI64N", "dd/MMM/yyyy:HH:mm:ss Z",
            "yyyy-MM-dd hh:mm:ss a", "EEE MMM d HH:mm:ss yyyy", "yyyyMMddHHmmssSSS", "MMM d HH:mm:ss z"
        ]}}]});
        let p = Pipeline::parse("p", &body).unwrap_or_else(|e| panic!("{e:?}"));
        for v in [&input, &digits] {
            let mut d = IngestDocument {
                source: json!({"t": v}).as_object().cloned().unwrap_or_default(),
                index: "i".into(),
                id: None,
                ingest_timestamp: 0,
            };
            let _ = p.execute(&mut d, &NoPipelines, &Budget::default());
        }
    }
}
