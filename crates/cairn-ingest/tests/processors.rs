//! Every processor, its options and its failures.

mod common;

use cairn_ingest::{Budget, NoPipelines, Outcome};
use common::*;
use serde_json::json;

#[test]
fn set_value_template_override_and_empty() {
    let out = one(
        json!({"set": {"field": "a.b", "value": "{{user}}-{{{n}}}"}}),
        json!({"user": "bob", "n": 3}),
    );
    assert_eq!(out["a"]["b"], "bob-3");
    let out = one(
        json!({"set": {"field": "x", "value": 1, "override": false}}),
        json!({"x": 0}),
    );
    assert_eq!(out["x"], 0);
    let out = one(
        json!({"set": {"field": "x", "value": 1, "override": false}}),
        json!({"x": null}),
    );
    assert_eq!(out["x"], 1);
    let out = one(
        json!({"set": {"field": "x", "value": "{{missing}}", "ignore_empty_value": true}}),
        json!({}),
    );
    assert!(out.get("x").is_none());
    let out = one(
        json!({"set": {"field": "copy", "copy_from": "src"}}),
        json!({"src": {"k": [1, 2]}}),
    );
    assert_eq!(out["copy"], json!({"k": [1, 2]}));
    let out = one(
        json!({"set": {"field": "obj", "value": {"who": "{{user}}", "n": [1, "{{user}}"]}}}),
        json!({"user": "al"}),
    );
    assert_eq!(out["obj"], json!({"who": "al", "n": [1, "al"]}));
    let out = one(
        json!({"set": {"field": "when", "value": "{{_ingest.timestamp}}"}}),
        json!({}),
    );
    assert_eq!(out["when"], "2016-11-08T19:43:03.850Z");
}

#[test]
fn set_metadata_index_and_id() {
    let (r, d) = run(
        json!({"processors": [
            {"set": {"field": "_index", "value": "logs-{{service}}"}},
            {"set": {"field": "_id", "value": "doc-{{n}}"}}
        ]}),
        json!({"service": "api", "n": 7}),
    );
    assert_eq!(r, Ok(Outcome::Keep));
    assert_eq!(d.index, "logs-api");
    assert_eq!(d.id.as_deref(), Some("doc-7"));
    assert!(d.source.get("_index").is_none());
}

#[test]
fn set_into_scalar_parent_fails_like_es() {
    let e = one_err(
        json!({"set": {"field": "a.b", "value": 1}}),
        json!({"a": "x"}),
    );
    assert_eq!(e.kind, "illegal_argument_exception");
    assert_eq!(
        e.reason,
        "cannot set [b] with parent object of type [java.lang.String] as part of path [a.b]"
    );
}

#[test]
fn remove_fields_keep_and_missing() {
    let out = one(
        json!({"remove": {"field": ["a", "b.c"]}}),
        json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}),
    );
    assert_eq!(out, json!({"b": {"d": 3}, "e": 4}));
    let e = one_err(json!({"remove": {"field": "x"}}), json!({}));
    assert_eq!(e.reason, "field [x] not present as part of path [x]");
    let out = one(
        json!({"remove": {"field": "x", "ignore_missing": true}}),
        json!({"y": 1}),
    );
    assert_eq!(out, json!({"y": 1}));
    let out = one(
        json!({"remove": {"keep": ["a", "b.c"]}}),
        json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}),
    );
    assert_eq!(out, json!({"a": 1, "b": {"c": 2}}));
}

#[test]
fn rename_semantics() {
    let out = one(
        json!({"rename": {"field": "a", "target_field": "b.c"}}),
        json!({"a": 1}),
    );
    assert_eq!(out, json!({"b": {"c": 1}}));
    let e = one_err(
        json!({"rename": {"field": "a", "target_field": "b"}}),
        json!({}),
    );
    assert_eq!(e.reason, "field [a] doesn't exist");
    let e = one_err(
        json!({"rename": {"field": "a", "target_field": "b"}}),
        json!({"a": 1, "b": 2}),
    );
    assert_eq!(e.reason, "field [b] already exists");
    let out = one(
        json!({"rename": {"field": "a", "target_field": "b", "override": true}}),
        json!({"a": 1, "b": 2}),
    );
    assert_eq!(out, json!({"b": 1}));
    let out = one(
        json!({"rename": {"field": "a", "target_field": "b", "ignore_missing": true}}),
        json!({"z": 1}),
    );
    assert_eq!(out, json!({"z": 1}));
}

#[test]
fn convert_every_type() {
    let cases = [
        ("integer", json!("42"), json!(42)),
        ("integer", json!("0x1F"), json!(31)),
        ("long", json!("9000000000"), json!(9_000_000_000i64)),
        ("float", json!("0.043"), json!(0.043)),
        ("double", json!("1.5"), json!(1.5)),
        ("string", json!(12), json!("12")),
        ("boolean", json!("TRUE"), json!(true)),
        ("ip", json!("10.0.0.1"), json!("10.0.0.1")),
        ("auto", json!("false"), json!(false)),
        ("auto", json!("17"), json!(17)),
        ("auto", json!("2.5"), json!(2.5)),
        ("auto", json!("abc"), json!("abc")),
    ];
    for (ty, input, want) in cases {
        let out = one(
            json!({"convert": {"field": "v", "type": ty}}),
            json!({"v": input}),
        );
        assert_eq!(out["v"], want, "convert to {ty}");
    }
    let out = one(
        json!({"convert": {"field": "v", "type": "integer", "target_field": "w"}}),
        json!({"v": ["1", "2"]}),
    );
    assert_eq!(out["w"], json!([1, 2]));
    let e = one_err(
        json!({"convert": {"field": "v", "type": "integer"}}),
        json!({"v": "x1"}),
    );
    assert_eq!(e.reason, "unable to convert [x1] to integer");
    let e = one_err(
        json!({"convert": {"field": "v", "type": "boolean"}}),
        json!({"v": "yes"}),
    );
    assert_eq!(
        e.reason,
        "[yes] is not a boolean value, cannot convert to boolean"
    );
    let e = one_err(
        json!({"convert": {"field": "v", "type": "ip"}}),
        json!({"v": "1.2.3"}),
    );
    assert_eq!(e.kind, "illegal_argument_exception");
    let e = parse_err(json!({"processors": [{"convert": {"field": "v", "type": "blob"}}]}));
    assert_eq!(
        e.reason,
        "[type] type [blob] not supported, cannot convert field."
    );
    let out = one(
        json!({"convert": {"field": "nope", "type": "long", "ignore_missing": true}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
}

#[test]
fn date_formats() {
    let d = |formats: serde_json::Value, input: serde_json::Value| {
        one(
            json!({"date": {"field": "t", "formats": formats}}),
            json!({ "t": input }),
        )["@timestamp"]
            .clone()
    };
    assert_eq!(
        d(json!(["ISO8601"]), json!("2016-11-08T19:43:03.850+0100")),
        "2016-11-08T18:43:03.850Z"
    );
    assert_eq!(
        d(json!(["ISO8601"]), json!("2016-11-08")),
        "2016-11-08T00:00:00.000Z"
    );
    assert_eq!(
        d(json!(["UNIX"]), json!("1478630583.85")),
        "2016-11-08T18:43:03.850Z"
    );
    assert_eq!(
        d(json!(["UNIX"]), json!(1478630583)),
        "2016-11-08T18:43:03.000Z"
    );
    assert_eq!(
        d(json!(["UNIX_MS"]), json!(1478630583850i64)),
        "2016-11-08T18:43:03.850Z"
    );
    assert_eq!(
        d(json!(["TAI64N"]), json!("@4000000052f88ea32489532c")),
        "2014-02-10T08:32:25.612Z"
    );
    assert_eq!(
        d(
            json!(["dd/MMM/yyyy:HH:mm:ss Z"]),
            json!("30/Apr/1998:22:00:52 +0000")
        ),
        "1998-04-30T22:00:52.000Z"
    );
    assert_eq!(
        d(
            json!(["MMM d HH:mm:ss yyyy", "ISO8601"]),
            json!("2020-01-02T03:04:05Z")
        ),
        "2020-01-02T03:04:05.000Z"
    );
    assert_eq!(
        d(
            json!(["EEE MMM dd HH:mm:ss yyyy"]),
            json!("Mon Jun 01 12:30:00 2015")
        ),
        "2015-06-01T12:30:00.000Z"
    );
    assert_eq!(
        d(
            json!(["yyyy-MM-dd hh:mm:ss a"]),
            json!("2015-06-01 01:30:00 PM")
        ),
        "2015-06-01T13:30:00.000Z"
    );
    // timezone, target_field, output_format.
    let out = one(
        json!({"date": {"field": "t", "target_field": "ts", "formats": ["yyyy-MM-dd HH:mm:ss"],
                        "timezone": "America/New_York", "output_format": "yyyy-MM-dd'T'HH:mm:ssXXX"}}),
        json!({"t": "2021-01-15 08:00:00"}),
    );
    assert_eq!(out["ts"], "2021-01-15T08:00:00-05:00");
    let e = one_err(
        json!({"date": {"field": "t", "formats": ["ISO8601"]}}),
        json!({"t": "nope"}),
    );
    assert_eq!(e.kind, "illegal_argument_exception");
    assert_eq!(e.reason, "unable to parse date [nope]");
    assert!(e.caused_by.is_some());
    let e = parse_err(json!({"processors": [{"date": {"field": "t", "formats": ["yyyy-qq"]}}]}));
    assert_eq!(e.kind, "parse_exception");
    let e = parse_err(json!({"processors": [{"date": {"field": "t"}}]}));
    assert_eq!(e.reason, "[formats] required property is missing");
}

#[test]
fn date_example_from_es_reference() {
    // Elasticsearch reference, "Date processor": the example pipeline that adds the
    // parsed date to `timestamp` from `initial_date` with formats ["dd/MM/yyyy HH:mm:ss"]
    // and timezone Europe/Amsterdam. The output uses the default output_format
    // yyyy-MM-dd'T'HH:mm:ss.SSSXXX in that timezone.
    let out = one(
        json!({"date": {"field": "initial_date", "target_field": "timestamp",
                        "formats": ["dd/MM/yyyy HH:mm:ss"], "timezone": "Europe/Amsterdam"}}),
        json!({"initial_date": "01/06/2016 12:00:00"}),
    );
    assert_eq!(out["timestamp"], "2016-06-01T12:00:00.000+02:00");
    // Same page: timezone and locale are templated ({{{my_timezone}}}, {{{my_locale}}}).
    let out = one(
        json!({"date": {"field": "initial_date", "target_field": "timestamp", "formats": ["ISO8601"],
                        "timezone": "{{{my_timezone}}}", "locale": "{{{my_locale}}}"}}),
        json!({"initial_date": "2016-01-02T03:04:05Z", "my_timezone": "Europe/Amsterdam", "my_locale": "en"}),
    );
    assert_eq!(out["timestamp"], "2016-01-02T04:04:05.000+01:00");
}

#[test]
fn dissect_modifiers() {
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "%{+name} %{+name} %{+name} %{+name}", "append_separator": " "}}),
        json!({"m": "john jacob jingleheimer schmidt"}),
    );
    assert_eq!(out["name"], "john jacob jingleheimer schmidt");
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "%{+name/2} %{+name/4} %{+name/3} %{+name/1}", "append_separator": ","}}),
        json!({"m": "john jacob jingleheimer schmidt"}),
    );
    assert_eq!(out["name"], "schmidt,john,jingleheimer,jacob");
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "%{clientip} %{?ident} %{?auth} [%{@timestamp}]"}}),
        json!({"m": "1.2.3.4 - - [30/Apr/1998:22:00:52 +0000]"}),
    );
    assert_eq!(out["clientip"], "1.2.3.4");
    assert_eq!(out["@timestamp"], "30/Apr/1998:22:00:52 +0000");
    assert!(out.get("ident").is_none());
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "[%{ts}] [%{level}] %{*p1}:%{&p1} %{*p2}:%{&p2}"}}),
        json!({"m": "[2018-08-10T17:15:42,466] [ERR] ip:1.2.3.4 error:REFUSED"}),
    );
    assert_eq!(out["ip"], "1.2.3.4");
    assert_eq!(out["error"], "REFUSED");
    assert_eq!(out["level"], "ERR");
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "%{ts->} %{level}"}}),
        json!({"m": "1998-08-10T17:15:42,466          WARN"}),
    );
    assert_eq!(out["ts"], "1998-08-10T17:15:42,466");
    assert_eq!(out["level"], "WARN");
    let out = one(
        json!({"dissect": {"field": "m", "pattern": "[%{ts}]%{->}[%{level}]"}}),
        json!({"m": "[1998-08-10T17:15:42,466]            [WARN]"}),
    );
    assert_eq!(out["level"], "WARN");
    let e = one_err(
        json!({"dissect": {"field": "m", "pattern": "%{a} %{b}"}}),
        json!({"m": "foo"}),
    );
    assert_eq!(e.kind, "dissect_exception");
    assert_eq!(
        e.reason,
        "Unable to find match for dissect pattern: %{a} %{b} against source: foo"
    );
    let out = one(
        json!({"dissect": {"field": "nope", "pattern": "%{a}", "ignore_missing": true}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
    let e =
        parse_err(json!({"processors": [{"dissect": {"field": "m", "pattern": "%{*a} %{b}"}}]}));
    assert_eq!(e.kind, "dissect_exception");
}

#[test]
fn grok_patterns_and_errors() {
    let out = one(
        json!({"grok": {"field": "m", "patterns": ["%{COMBINEDAPACHELOG}"]}}),
        json!({"m": "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08\""}),
    );
    assert_eq!(out["clientip"], "127.0.0.1");
    assert_eq!(out["auth"], "frank");
    assert_eq!(out["timestamp"], "10/Oct/2000:13:55:36 -0700");
    assert_eq!(out["verb"], "GET");
    assert_eq!(out["response"], "200");
    assert_eq!(out["referrer"], "\"http://www.example.com/start.html\"");
    let out = one(
        json!({"grok": {"field": "m", "patterns": ["%{SYSLOGBASE} %{GREEDYDATA:msg}"]}}),
        json!({"m": "Mar  7 00:00:01 host1 sshd[123]: Accepted key"}),
    );
    assert_eq!(out["program"], "sshd");
    assert_eq!(out["pid"], "123");
    assert_eq!(out["logsource"], "host1");
    assert_eq!(out["msg"], "Accepted key");
    let out = one(
        json!({"grok": {"field": "m", "patterns": ["%{IPV4:ip} (?<word>\\w+)++ %{NUMBER:n:float}"]}}),
        json!({"m": "10.1.2.255 abc 1.25"}),
    );
    assert_eq!(out["ip"], "10.1.2.255");
    assert_eq!(out["word"], "abc");
    assert_eq!(out["n"], 1.25);
    let out = one(
        json!({"grok": {"field": "m", "patterns": ["%{IPV6:ip}"]}}),
        json!({"m": "addr fe80::1ff:fe23:4567:890a here"}),
    );
    assert_eq!(out["ip"], "fe80::1ff:fe23:4567:890a");
    let e = one_err(
        json!({"grok": {"field": "m", "patterns": ["%{INT:n}"]}}),
        json!({"m": "abc"}),
    );
    assert_eq!(e.kind, "illegal_argument_exception");
    assert_eq!(
        e.reason,
        "Provided Grok expressions do not match field value: [abc]"
    );
    let e = one_err(
        json!({"grok": {"field": "m", "patterns": ["%{INT:n}"]}}),
        json!({"m": 5}),
    );
    assert_eq!(
        e.reason,
        "field [m] of type [java.lang.Integer] cannot be cast to [java.lang.String]"
    );
    let out = one(
        json!({"grok": {"field": "nope", "patterns": ["%{INT:n}"], "ignore_missing": true}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
    // Constructs the linear-time engine lacks are refused at creation, clearly.
    for bad in ["(?<=a)b", "a(?!b)", "(a)\\1", "%{NOPE:x}"] {
        let e = parse_err(json!({"processors": [{"grok": {"field": "m", "patterns": [bad]}}]}));
        assert_eq!(e.kind, "parse_exception", "{bad}");
        assert_eq!(e.extra["property_name"], "patterns");
    }
    let e = parse_err(json!({"processors": [{"grok": {"field": "m", "patterns": ["(?=x)"]}}]}));
    assert!(e.reason.contains("look-around"), "{}", e.reason);
    let e = parse_err(
        json!({"processors": [{"grok": {"field": "m", "patterns": ["%{A}"],
        "pattern_definitions": {"A": "%{B}", "B": "%{A}"}}}]}),
    );
    assert!(e.reason.contains("circular reference"), "{}", e.reason);
}

#[test]
fn every_stock_grok_pattern_compiles() {
    let names = [
        "USERNAME",
        "USER",
        "EMAILLOCALPART",
        "EMAILADDRESS",
        "INT",
        "BASE10NUM",
        "NUMBER",
        "BASE16NUM",
        "BASE16FLOAT",
        "POSINT",
        "NONNEGINT",
        "WORD",
        "NOTSPACE",
        "SPACE",
        "DATA",
        "GREEDYDATA",
        "QUOTEDSTRING",
        "UUID",
        "URN",
        "MAC",
        "CISCOMAC",
        "WINDOWSMAC",
        "COMMONMAC",
        "IPV6",
        "IPV4",
        "IP",
        "HOSTNAME",
        "IPORHOST",
        "HOSTPORT",
        "PATH",
        "UNIXPATH",
        "TTY",
        "WINPATH",
        "URIPROTO",
        "URIHOST",
        "URIPATH",
        "URIPARAM",
        "URIPATHPARAM",
        "URI",
        "MONTH",
        "MONTHNUM",
        "MONTHNUM2",
        "MONTHDAY",
        "DAY",
        "YEAR",
        "HOUR",
        "MINUTE",
        "SECOND",
        "TIME",
        "DATE_US",
        "DATE_EU",
        "ISO8601_TIMEZONE",
        "ISO8601_SECOND",
        "TIMESTAMP_ISO8601",
        "TIMESTAMP_CN",
        "DATE",
        "DATESTAMP",
        "TZ",
        "DATESTAMP_RFC822",
        "DATESTAMP_RFC2822",
        "DATESTAMP_OTHER",
        "DATESTAMP_EVENTLOG",
        "SYSLOGTIMESTAMP",
        "PROG",
        "SYSLOGPROG",
        "SYSLOGHOST",
        "SYSLOGFACILITY",
        "HTTPDATE",
        "QS",
        "SYSLOGBASE",
        "LOGLEVEL",
        "HTTPDUSER",
        "HTTPDERROR_DATE",
        "HTTPD_COMMONLOG",
        "HTTPD_COMBINEDLOG",
        "HTTPD20_ERRORLOG",
        "HTTPD24_ERRORLOG",
        "HTTPD_ERRORLOG",
        "COMMONAPACHELOG",
        "COMBINEDAPACHELOG",
    ];
    for n in names {
        let body =
            json!({"processors": [{"grok": {"field": "m", "patterns": [format!("%{{{n}:x}}")]}}]});
        if let Err(e) = cairn_ingest::Pipeline::parse("p", &body) {
            panic!("{n}: {e:?}");
        }
    }
    let out = one(
        json!({"grok": {"field": "m", "patterns": ["%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{QS:q} %{UUID:u}"]}}),
        json!({"m": "2024-05-01T10:00:00.123Z WARN \"quoted \\\" str\" 123e4567-e89b-12d3-a456-426614174000"}),
    );
    assert_eq!(out["ts"], "2024-05-01T10:00:00.123Z");
    assert_eq!(out["level"], "WARN");
    assert_eq!(out["q"], "\"quoted \\\" str\"");
}

#[test]
fn json_processor() {
    let out = one(json!({"json": {"field": "j"}}), json!({"j": "{\"a\":1}"}));
    assert_eq!(out["j"], json!({"a": 1}));
    let out = one(
        json!({"json": {"field": "j", "target_field": "t"}}),
        json!({"j": "[1,2]"}),
    );
    assert_eq!(out["t"], json!([1, 2]));
    let out = one(
        json!({"json": {"field": "j", "add_to_root": true}}),
        json!({"j": "{\"a\":{\"x\":1},\"b\":2}", "a": {"y": 0}}),
    );
    assert_eq!(out["a"], json!({"x": 1}));
    assert_eq!(out["b"], 2);
    let out = one(
        json!({"json": {"field": "j", "add_to_root": true, "add_to_root_conflict_strategy": "merge"}}),
        json!({"j": "{\"a\":{\"x\":1}}", "a": {"y": 0}}),
    );
    assert_eq!(out["a"], json!({"y": 0, "x": 1}));
    let e = one_err(
        json!({"json": {"field": "j", "add_to_root": true}}),
        json!({"j": "3"}),
    );
    assert_eq!(e.reason, "cannot add non-map fields to root of document");
    let e = one_err(json!({"json": {"field": "j"}}), json!({"j": "{nope"}));
    assert_eq!(e.kind, "illegal_argument_exception");
    let e = parse_err(
        json!({"processors": [{"json": {"field": "j", "target_field": "t", "add_to_root": true}}]}),
    );
    assert_eq!(e.kind, "parse_exception");
}

#[test]
fn kv_processor() {
    let out = one(
        json!({"kv": {"field": "m", "field_split": " ", "value_split": "="}}),
        json!({"m": "ip=1.2.3.4 error=REFUSED ip=5.6.7.8"}),
    );
    assert_eq!(out["ip"], json!(["1.2.3.4", "5.6.7.8"]));
    assert_eq!(out["error"], "REFUSED");
    let out = one(
        json!({"kv": {"field": "m", "field_split": "&", "value_split": "=", "target_field": "q",
                      "include_keys": ["a", "b"], "prefix": "p_"}}),
        json!({"m": "a=1&b=2&c=3"}),
    );
    assert_eq!(out["q"], json!({"p_a": "1", "p_b": "2"}));
    let out = one(
        json!({"kv": {"field": "m", "field_split": ",", "value_split": ":", "exclude_keys": ["c"],
                      "trim_key": " ", "trim_value": " ", "strip_brackets": true}}),
        json!({"m": " a : (1) , b:<2>, c:3 ,d:\"x\""}),
    );
    assert_eq!(out["a"], "1");
    assert_eq!(out["b"], "2");
    assert_eq!(out["d"], "x");
    assert!(out.get("c").is_none());
    let e = one_err(
        json!({"kv": {"field": "m", "field_split": " ", "value_split": "="}}),
        json!({"m": "a=1 junk"}),
    );
    assert_eq!(e.reason, "field [m] does not contain value_split [=]");
}

#[test]
fn case_and_trim() {
    let out = one(json!({"lowercase": {"field": "a"}}), json!({"a": "HeLLo"}));
    assert_eq!(out["a"], "hello");
    let out = one(
        json!({"uppercase": {"field": "a", "target_field": "b"}}),
        json!({"a": ["x", "y"]}),
    );
    assert_eq!(out["b"], json!(["X", "Y"]));
    let out = one(json!({"trim": {"field": "a"}}), json!({"a": "  pad  "}));
    assert_eq!(out["a"], "pad");
    let e = one_err(json!({"lowercase": {"field": "a"}}), json!({"a": 1}));
    assert_eq!(
        e.reason,
        "field [a] of type [java.lang.Integer] cannot be cast to [java.lang.String]"
    );
    let e = one_err(json!({"lowercase": {"field": "a"}}), json!({}));
    assert_eq!(e.reason, "field [a] not present as part of path [a]");
    let e = one_err(json!({"lowercase": {"field": "a"}}), json!({"a": null}));
    assert_eq!(e.reason, "field [a] is null, cannot process it.");
    let out = one(
        json!({"trim": {"field": "a", "ignore_missing": true}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
}

#[test]
fn split_and_gsub() {
    let out = one(
        json!({"split": {"field": "a", "separator": "\\s*,\\s*"}}),
        json!({"a": "x , y,z,,"}),
    );
    assert_eq!(out["a"], json!(["x", "y", "z"]));
    let out = one(
        json!({"split": {"field": "a", "separator": ",", "preserve_trailing": true, "target_field": "b"}}),
        json!({"a": "x,y,,"}),
    );
    assert_eq!(out["b"], json!(["x", "y", "", ""]));
    let out = one(
        json!({"gsub": {"field": "a", "pattern": "(\\d+)-(\\d+)", "replacement": "$2:$1"}}),
        json!({"a": "10-20 and 3-4"}),
    );
    assert_eq!(out["a"], "20:10 and 4:3");
    let out = one(
        json!({"gsub": {"field": "a", "pattern": "\\.", "replacement": "-", "target_field": "b"}}),
        json!({"a": "a.b.c"}),
    );
    assert_eq!(out["b"], "a-b-c");
    let e = parse_err(
        json!({"processors": [{"gsub": {"field": "a", "pattern": "(", "replacement": ""}}]}),
    );
    assert_eq!(e.extra["property_name"], "pattern");
}

#[test]
fn append_processor() {
    let out = one(
        json!({"append": {"field": "tags", "value": ["b", "{{x}}"]}}),
        json!({"tags": "a", "x": "c"}),
    );
    assert_eq!(out["tags"], json!(["a", "b", "c"]));
    let out = one(
        json!({"append": {"field": "tags", "value": ["a", "b"], "allow_duplicates": false}}),
        json!({"tags": ["a"]}),
    );
    assert_eq!(out["tags"], json!(["a", "b"]));
    let out = one(json!({"append": {"field": "new", "value": 1}}), json!({}));
    assert_eq!(out["new"], json!([1]));
}

#[test]
fn drop_and_fail() {
    let (r, _) = run(
        json!({"processors": [{"drop": {}}, {"set": {"field": "x", "value": 1}}]}),
        json!({}),
    );
    assert_eq!(r, Ok(Outcome::Drop));
    let e = one_err(
        json!({"fail": {"message": "bad doc {{id}}"}}),
        json!({"id": 9}),
    );
    assert_eq!(e.kind, "fail_processor_exception");
    assert_eq!(e.reason, "bad doc 9");
}

#[test]
fn pipeline_processor_nesting_missing_and_cycle() {
    let lk = lookup(vec![
        (
            "inner",
            json!({"processors": [{"set": {"field": "inner", "value": "{{_ingest.pipeline}}"}}]}),
        ),
        ("a", json!({"processors": [{"pipeline": {"name": "b"}}]})),
        ("b", json!({"processors": [{"pipeline": {"name": "a"}}]})),
    ]);
    let outer = pipeline(
        json!({"processors": [{"pipeline": {"name": "inner"}}, {"set": {"field": "after", "value": 1}}]}),
    );
    let mut d = doc(json!({}));
    assert_eq!(
        outer.execute(&mut d, &lk, &Budget::default()),
        Ok(Outcome::Keep)
    );
    assert_eq!(d.source["inner"], "inner");
    assert_eq!(d.source["after"], 1);

    let mut d = doc(json!({}));
    let e = lk["a"]
        .execute(&mut d, &lk, &Budget::default())
        .unwrap_err();
    assert_eq!(e.kind, "graph_structure_exception");
    assert_eq!(e.reason, "Cycle detected for pipeline: a");

    let p = pipeline(json!({"processors": [{"pipeline": {"name": "nope"}}]}));
    let e = p
        .execute(&mut doc(json!({})), &lk, &Budget::default())
        .unwrap_err();
    assert_eq!(
        e.reason,
        "Pipeline processor configured for non-existent pipeline [nope]"
    );
    let p = pipeline(
        json!({"processors": [{"pipeline": {"name": "nope", "ignore_missing_pipeline": true}}]}),
    );
    assert_eq!(
        p.execute(&mut doc(json!({})), &lk, &Budget::default()),
        Ok(Outcome::Keep)
    );
    let p = pipeline(json!({"processors": [{"pipeline": {"name": "{{which}}"}}]}));
    let mut d = doc(json!({"which": "inner"}));
    assert_eq!(
        p.execute(&mut d, &lk, &Budget::default()),
        Ok(Outcome::Keep)
    );
    assert_eq!(d.source["inner"], "inner");
}

#[test]
fn field_paths_and_arrays() {
    let out = one(
        json!({"set": {"field": "a.1.b", "value": "x"}}),
        json!({"a": [{"b": 0}, {"b": 1}]}),
    );
    assert_eq!(out["a"][1]["b"], "x");
    let e = one_err(
        json!({"set": {"field": "a.5.b", "value": 1}}),
        json!({"a": [1]}),
    );
    assert_eq!(
        e.reason,
        "[5] is out of bounds for array with length [1] as part of path [a.5.b]"
    );
    let e = one_err(
        json!({"uppercase": {"field": "a.b.c"}}),
        json!({"a": {"x": 1}}),
    );
    assert_eq!(e.reason, "field [b] not present as part of path [a.b.c]");
    let out = one(
        json!({"set": {"field": "_source.s", "value": "{{_source.t}}"}}),
        json!({"t": "v"}),
    );
    assert_eq!(out["s"], "v");
    let out = one(
        json!({"set": {"field": "idx", "value": "{{_index}}/{{_id}}"}}),
        json!({}),
    );
    assert_eq!(out["idx"], "logs/1");
    let (_, d) = run(
        json!({"processors": [{"set": {"field": "_ingest.tmp", "value": 1}},
                                           {"set": {"field": "copy", "copy_from": "_ingest.tmp"}}]}),
        json!({}),
    );
    assert_eq!(d.source["copy"], 1);
}

#[test]
fn budget_is_enforced_and_uncatchable() {
    let p = pipeline(json!({
        "processors": [{"set": {"field": "a", "value": 1, "ignore_failure": true,
                                "on_failure": [{"set": {"field": "b", "value": 2}}]}}],
        "on_failure": [{"set": {"field": "c", "value": 3}}]
    }));
    let mut d = doc(json!({}));
    let e = p
        .execute(
            &mut d,
            &NoPipelines,
            &Budget::new(std::time::Duration::ZERO),
        )
        .unwrap_err();
    assert_eq!(e.kind, "illegal_argument_exception");
    assert!(e.reason.contains("time budget"), "{}", e.reason);
    assert!(e.reason.contains("processor [set]"), "{}", e.reason);
    assert!(d.source.is_empty());
}

#[test]
fn foreach_lists_and_maps() {
    let out = one(
        json!({"foreach": {"field": "names", "processor": {"uppercase": {"field": "_ingest._value"}}}}),
        json!({"names": ["a", "b"]}),
    );
    assert_eq!(out["names"], json!(["A", "B"]));
    let out = one(
        json!({"foreach": {"field": "m", "processor": {"set": {"field": "_ingest._key", "value": "k_{{_ingest._key}}"}}}}),
        json!({"m": {"x": 1, "y": 2}}),
    );
    assert_eq!(out["m"], json!({"k_x": 1, "k_y": 2}));
    let out = one(
        json!({"foreach": {"field": "items", "processor": {"set": {"field": "_ingest._value.seen", "value": true}}}}),
        json!({"items": [{"id": 1}, {"id": 2}]}),
    );
    assert_eq!(
        out["items"],
        json!([{"id": 1, "seen": true}, {"id": 2, "seen": true}])
    );
    let out = one(
        json!({"foreach": {"field": "nope", "ignore_missing": true, "processor": {"trim": {"field": "_ingest._value"}}}}),
        json!({}),
    );
    assert_eq!(out, json!({}));
    let e = one_err(
        json!({"foreach": {"field": "s", "processor": {"trim": {"field": "_ingest._value"}}}}),
        json!({"s": "str"}),
    );
    assert_eq!(
        e.reason,
        "field [s] of type [java.lang.String] cannot be cast to a list or map"
    );
    let e = one_err(
        json!({"foreach": {"field": "l", "processor": {"uppercase": {"field": "_ingest._value"}}}}),
        json!({"l": ["a", 1]}),
    );
    assert_eq!(e.kind, "illegal_argument_exception");
}

#[test]
fn dot_expander_join_urldecode() {
    let out = one(
        json!({"dot_expander": {"field": "a.b"}}),
        json!({"a.b": 1, "c": 2}),
    );
    assert_eq!(out, json!({"c": 2, "a": {"b": 1}}));
    let out = one(
        json!({"dot_expander": {"field": "*"}}),
        json!({"x.y": 1, "x.z": 2}),
    );
    assert_eq!(out, json!({"x": {"y": 1, "z": 2}}));
    let out = one(
        json!({"dot_expander": {"field": "a.b"}}),
        json!({"a.b": 1, "a": {"b": 0}}),
    );
    assert_eq!(out["a"]["b"], json!([0, 1]));
    let out = one(
        json!({"dot_expander": {"field": "a.b", "path": "p"}}),
        json!({"p": {"a.b": 1}}),
    );
    assert_eq!(out, json!({"p": {"a": {"b": 1}}}));
    let e = parse_err(json!({"processors": [{"dot_expander": {"field": "nodot"}}]}));
    assert_eq!(e.kind, "parse_exception");
    let out = one(
        json!({"join": {"field": "l", "separator": "-"}}),
        json!({"l": ["a", 1, true]}),
    );
    assert_eq!(out["l"], "a-1-true");
    let e = one_err(
        json!({"join": {"field": "l", "separator": "-"}}),
        json!({"l": "x"}),
    );
    assert_eq!(
        e.reason,
        "field [l] of type [java.lang.String] cannot be cast to [java.util.List]"
    );
    let out = one(
        json!({"urldecode": {"field": "u"}}),
        json!({"u": "a%20b+c%2Fd%C3%A9"}),
    );
    assert_eq!(out["u"], "a b c/dé");
    let e = one_err(json!({"urldecode": {"field": "u"}}), json!({"u": "bad%zz"}));
    assert_eq!(e.kind, "illegal_argument_exception");
}

#[test]
fn known_es_processors_we_lack_are_named() {
    let e = parse_err(json!({"processors": [{"script": {"source": "ctx.x = 1"}}]}));
    assert!(e
        .reason
        .starts_with("No processor type exists with name [script]"));
    assert!(e.reason.contains("cairn does not implement"));
}

#[test]
fn pathological_grok_pattern_runs_in_linear_time() {
    // (a|aa)+$ / (x+x+)+y backtrack exponentially in Oniguruma; the regex crate is linear.
    let input = format!("{}b", "a".repeat(20_000));
    let started = std::time::Instant::now();
    let e = one_err(
        json!({"grok": {"field": "m", "patterns": ["^(?:a|aa)+$", "(?:x+x+)+y", "%{GREEDYDATA:g}c$"]}}),
        json!({ "m": input }),
    );
    assert!(e
        .reason
        .starts_with("Provided Grok expressions do not match field value"));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
