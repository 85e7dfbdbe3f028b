//! Built-in format pipelines (`?pipeline=<format-name>`).

mod common;

use cairn_formats::Format;
use cairn_ingest::{builtin, builtin_by_name, Budget, NoPipelines, Outcome};
use common::doc;
use serde_json::json;

#[test]
fn nginx_access_line_is_parsed_and_merged() {
    let p = builtin(Format::NginxAccess);
    assert_eq!(p.id(), "nginx-access");
    let mut d = doc(json!({
        "message": "93.184.216.34 - - [10/Oct/2023:13:55:36 +0000] \"GET /index.html?q=1 HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"",
        "host": {"name": "web-1"},
        "source": {"geo": "kept"}
    }));
    assert_eq!(
        p.execute(&mut d, &NoPipelines, &Budget::default()),
        Ok(Outcome::Keep)
    );
    let s = &d.source;
    assert_eq!(s["source"]["ip"], "93.184.216.34");
    assert_eq!(
        s["source"]["geo"], "kept",
        "objects are merged, not replaced"
    );
    assert_eq!(s["http"]["response"]["status_code"], 200);
    assert_eq!(s["host"]["name"], "web-1");
    assert!(s.get("@timestamp").is_some());
    assert!(s.get("message").is_some());
}

#[test]
fn parse_failure_keeps_doc_and_tags_it() {
    let p = builtin_by_name("aws-alb").unwrap_or_else(|| panic!("aws-alb is a format"));
    let mut d = doc(json!({"message": "not an alb line", "tags": ["shipper"]}));
    assert_eq!(
        p.execute(&mut d, &NoPipelines, &Budget::default()),
        Ok(Outcome::Keep)
    );
    assert_eq!(d.source["message"], "not an alb line");
    assert_eq!(d.source["tags"], json!(["shipper", "_parse_failure"]));
    assert!(d.source["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("aws-alb")));
}

#[test]
fn json_and_missing_message() {
    let p = builtin(Format::Json);
    let mut d = doc(json!({"message": "{\"level\":\"info\",\"msg\":\"hi\"}"}));
    assert_eq!(
        p.execute(&mut d, &NoPipelines, &Budget::default()),
        Ok(Outcome::Keep)
    );
    assert_eq!(d.source["level"], "info");
    let mut d = doc(json!({"other": 1}));
    assert_eq!(
        p.execute(&mut d, &NoPipelines, &Budget::default()),
        Ok(Outcome::Keep)
    );
    assert_eq!(
        d.source,
        *json!({"other": 1}).as_object().unwrap_or_else(|| panic!())
    );
    assert!(builtin_by_name("no-such-format").is_none());
}
