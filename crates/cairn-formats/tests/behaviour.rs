//! Behaviour tests: control lines, failures, robustness, sniffing, keys, multiline.

use cairn_formats::aws_key::{self, AwsLogKind};
use cairn_formats::{
    get_path, is_failure, parse_document, sniff, Format, LineOutcome, LineParser, MultilineConfig,
    MultilineJoiner, MultilineRule, ParseOptions, SkipReason,
};
use serde_json::{json, Value};

fn data(rel: &str) -> Vec<u8> {
    let p = format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn one(format: Format, line: &[u8]) -> serde_json::Map<String, Value> {
    match LineParser::new(format, ParseOptions::default()).parse_line(line) {
        LineOutcome::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn format_names_roundtrip_and_unknown_lists_valid() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
    }
    let err = "aws-elb".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("aws-elb") && err.contains("aws-alb") && err.contains("docker"),
        "{err}"
    );
}

#[test]
fn control_lines_are_skipped_and_counted() {
    let mut p = LineParser::new(Format::AwsAlb, ParseOptions::default());
    let test_line = b"Enable AccessLog for ELB: app/my-lb/123 at 2020-01-01T00:00:00.000Z";
    assert_eq!(
        p.parse_line(test_line),
        LineOutcome::Skipped(SkipReason::ElbTestLine)
    );
    assert_eq!(
        p.parse_line(b"   \t \r\n"),
        LineOutcome::Skipped(SkipReason::Blank)
    );
    assert_eq!(p.parse_line(b""), LineOutcome::Skipped(SkipReason::Blank));
    let ev = p.parse_line(b"garbage line");
    assert!(is_failure(&ev.clone().into_events()[0]));
    let st = p.stats();
    assert_eq!((st.parsed, st.failed, st.skipped), (0, 1, 3));
}

#[test]
fn failure_event_shape() {
    let e = one(Format::AwsS3Access, b"too short\r\n");
    assert_eq!(e.get("message"), Some(&json!("too short")));
    assert_eq!(e.get("tags"), Some(&json!(["_parse_failure"])));
    let msg = get_path(&e, "error.message")
        .and_then(Value::as_str)
        .unwrap();
    assert!(msg.starts_with("aws-s3access:"), "{msg}");
}

#[test]
fn crlf_and_invalid_utf8() {
    let line = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\r\n";
    let e = one(Format::AwsVpcflow, line);
    assert_eq!(get_path(&e, "aws.vpcflow.log_status"), Some(&json!("OK")));
    let e = one(Format::Logfmt, b"msg=caf\xff level=info\r");
    assert_eq!(e.get("msg"), Some(&json!("caf\u{fffd}")));
    assert_eq!(e.get("level"), Some(&json!("info")));
}

#[test]
fn keep_original() {
    let opts = ParseOptions {
        keep_original: true,
        ..Default::default()
    };
    let mut p = LineParser::new(Format::Syslog, opts);
    let e = p
        .parse_line(b"<13>1 2020-01-01T00:00:00Z h a - - - hi\n")
        .into_events()
        .remove(0);
    assert_eq!(
        get_path(&e, "event.original"),
        Some(&json!("<13>1 2020-01-01T00:00:00Z h a - - - hi"))
    );
}

#[test]
fn alb_appended_and_missing_fields() {
    let base = r#"h2 2024-05-01T00:00:00.123456Z app/lb/abc 10.0.0.9:1234 10.0.0.1:80 0.001 0.002 0.003 200 200 10 20 "GET https://example.com:443/a b?q=1 HTTP/2.0" "ua" ECDHE TLSv1.3 arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/t/1 "Root=1" "example.com" "session-reused" -1 2024-05-01T00:00:00.100000Z "waf,forward" "-" "-""#;
    // 25 fields: accepted.
    let e = one(Format::AwsAlb, base.as_bytes());
    assert!(!is_failure(&e), "{e:?}");
    assert_eq!(get_path(&e, "url.path"), Some(&json!("/a b")));
    assert_eq!(get_path(&e, "http.version"), Some(&json!("2.0")));
    assert_eq!(get_path(&e, "aws.elb.matched_rule_priority"), None);
    assert_eq!(get_path(&e, "cloud.region"), Some(&json!("eu-west-1")));
    // 34 fields (2025 tail + an unknown 34th): extra ignored.
    let long = format!(
        r#"{base} "10.0.0.1:80" "200" "-" "-" TID_0123 "host.example" "/x" "OriginalRetrieved" 10.1.1.1"#
    );
    let e = one(Format::AwsAlb, long.as_bytes());
    assert_eq!(
        get_path(&e, "aws.elb.conn_trace_id"),
        Some(&json!("TID_0123"))
    );
    assert_eq!(
        get_path(&e, "aws.elb.request_transform_status"),
        Some(&json!("OriginalRetrieved"))
    );
    // 24 fields: failure, line kept.
    let short: Vec<&str> = base.rsplitn(2, ' ').collect();
    let e = one(Format::AwsAlb, short[1].as_bytes());
    assert!(is_failure(&e));
}

#[test]
fn alb_ipv6_and_escaped_quote() {
    let line = r#"https 2024-05-01T00:00:00.000000Z app/lb/abc 2001:db8::1:443 [2001:db8::2]:80 -1 -1 -1 502 - 1 2 "GET https://x/ HTTP/1.1" "say \"hi\"" - - - "-" "-" "-" - 2024-05-01T00:00:00.000000Z "-" "-" "LambdaUnhandled" "-" "-""#;
    let e = one(Format::AwsAlb, line.as_bytes());
    assert_eq!(get_path(&e, "source.ip"), Some(&json!("2001:db8::1")));
    assert_eq!(get_path(&e, "source.port"), Some(&json!(443)));
    assert_eq!(
        get_path(&e, "aws.elb.backend.ip"),
        Some(&json!("2001:db8::2"))
    );
    assert_eq!(
        get_path(&e, "user_agent.original"),
        Some(&json!("say \"hi\""))
    );
    assert_eq!(
        get_path(&e, "aws.elb.error.reason"),
        Some(&json!("LambdaUnhandled"))
    );
    assert_eq!(get_path(&e, "event.outcome"), Some(&json!("failure")));
    assert_eq!(get_path(&e, "aws.elb.request_processing_time"), None);
}

#[test]
fn cloudfront_header_sets_order_and_sentinels() {
    let doc = b"#Version: 1.0\n#Fields: time date sc-status c-ip cs(User-Agent)\n01:02:03\t2020-01-02\t000\t2a02:cf40::\tA%2520B\t\n";
    let evs = parse_document(Format::AwsCloudfront, doc).unwrap();
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(
        e.get("@timestamp"),
        Some(&json!("2020-01-02T01:02:03.000Z"))
    );
    assert_eq!(get_path(e, "http.response.status_code"), None);
    assert_eq!(get_path(e, "event.outcome"), Some(&json!("failure")));
    assert_eq!(get_path(e, "source.ip"), Some(&json!("2a02:cf40::")));
    // Decoded once only.
    assert_eq!(get_path(e, "user_agent.original"), Some(&json!("A%20B")));
}

#[test]
fn cloudfront_realtime_configured_fields() {
    let opts = ParseOptions {
        cloudfront_realtime_fields: Some(vec![
            "timestamp".into(),
            "c-ip".into(),
            "sc-status".into(),
            "cs-uri-stem".into(),
            "c-country".into(),
        ]),
        ..Default::default()
    };
    let mut p = LineParser::new(Format::AwsCloudfrontRealtime, opts);
    let e = p
        .parse_line(b"1607455519.995\t192.0.2.1\t200\t/a/b?x=1\tDE")
        .into_events()
        .remove(0);
    assert_eq!(
        e.get("@timestamp"),
        Some(&json!("2020-12-08T19:25:19.995Z"))
    );
    assert_eq!(get_path(&e, "url.path"), Some(&json!("/a/b")));
    assert_eq!(get_path(&e, "url.query"), Some(&json!("x=1")));
    assert_eq!(
        get_path(&e, "source.geo.country_iso_code"),
        Some(&json!("DE"))
    );
}

#[test]
fn vpc_custom_formats() {
    let doc = b"version vpc-id srcaddr dstaddr tcp-flags flow-direction start end action log-status account-id\n5 vpc-1 10.0.0.1  10.0.0.2 19 egress 1 2 REJECT OK unknown\n5 vpc-1 - - 0 ingress 1 2 - NODATA unknown\n";
    let evs = parse_document(Format::AwsVpcflow, doc).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(
        get_path(&evs[0], "aws.vpcflow.tcp_flags_array"),
        Some(&json!(["fin", "syn", "ack"]))
    );
    assert_eq!(
        get_path(&evs[0], "network.direction"),
        Some(&json!("egress"))
    );
    assert_eq!(get_path(&evs[0], "cloud.account.id"), None);
    assert_eq!(get_path(&evs[1], "source"), None);
    let opts = ParseOptions {
        vpcflow_fields: Some(vec!["${srcaddr}".into(), "${end}".into()]),
        ..Default::default()
    };
    let mut p = LineParser::new(Format::AwsVpcflow, opts);
    let e = p.parse_line(b"10.1.1.1 1418530070").into_events().remove(0);
    assert_eq!(get_path(&e, "source.ip"), Some(&json!("10.1.1.1")));
    // Without a header or configuration, a 5-token line is a failure.
    assert!(is_failure(&one(Format::AwsVpcflow, b"a b c d e")));
}

#[test]
fn cloudtrail_document_and_errors() {
    let evs = parse_document(Format::AwsCloudtrail, &data("aws/cloudtrail-log-file.json")).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(
        get_path(&evs[0], "event.id"),
        Some(&json!("94960c89-0827-44eb-9c4f-f979111461b8"))
    );
    assert_eq!(get_path(&evs[1], "user.name"), Some(&json!("username")));
    assert!(parse_document(Format::AwsCloudtrail, b"{\"Records\":[]}")
        .unwrap()
        .is_empty());
    assert!(parse_document(Format::AwsCloudtrail, b"{\"Records\":[{\"a\":\"b\nc\"}]}").is_err());
    let evs = parse_document(
        Format::AwsCloudtrail,
        b"{\"Records\":[{\"eventName\":\"X\"}]}",
    )
    .unwrap();
    assert!(is_failure(&evs[0]));
}

#[test]
fn json_lines_keep_shape_and_derive_timestamp() {
    let e = one(
        Format::Json,
        br#"{"a.b":1,"n":{"x":[1,2]},"ts":1700000000123}"#,
    );
    assert_eq!(e.get("a.b"), Some(&json!(1)));
    assert_eq!(get_path(&e, "n"), Some(&json!({"x":[1,2]})));
    assert_eq!(
        e.get("@timestamp"),
        Some(&json!("2023-11-14T22:13:20.123Z"))
    );
    let e = one(
        Format::Json,
        br#"{"@timestamp":"as sent","time":"2020-01-01T00:00:00Z"}"#,
    );
    assert_eq!(e.get("@timestamp"), Some(&json!("as sent")));
    assert!(is_failure(&one(Format::Json, b"[1,2]")));
    assert!(is_failure(&one(Format::Json, b"{\"a\":")));
}

#[test]
fn logfmt_quotes_and_flags() {
    let e = one(
        Format::Logfmt,
        br#"time=2020-01-01T00:00:00+01:00 msg="hello \"world\"" debug"#,
    );
    assert_eq!(e.get("msg"), Some(&json!("hello \"world\"")));
    assert_eq!(e.get("debug"), Some(&json!(true)));
    assert_eq!(
        e.get("@timestamp"),
        Some(&json!("2019-12-31T23:00:00.000Z"))
    );
    assert!(is_failure(&one(Format::Logfmt, br#"msg="unterminated"#)));
}

#[test]
fn docker_partial_lines_join() {
    for case in [
        "dockermode_splitted_line",
        "dockermode_splitted_multiple_lines",
        "dockermode",
    ] {
        let evs = parse_document(Format::Docker, &data(&format!("containers/{case}.log"))).unwrap();
        let got: Vec<&str> = evs
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect();
        // fluent-bit's expected output, but with docker mode's line joining only.
        let want_text = String::from_utf8(data(&format!("containers/{case}.out"))).unwrap();
        let want: Vec<String> = want_text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .flat_map(|s| {
                s.trim_end_matches('\n')
                    .split('\n')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn docker_corrupted_line_is_kept() {
    let evs = parse_document(Format::Docker, &data("containers/docker_corrupted.log")).unwrap();
    let failures: Vec<_> = evs.iter().filter(|e| is_failure(e)).collect();
    assert_eq!(failures.len(), 1);
    assert!(failures[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("\"log\":\"cp packetbeat.yml"));
}

#[test]
fn sniff_content_and_names() {
    let s = |name: Option<&str>, file: &str| {
        sniff(name, &data(file).split(|&b| b == b'\n').collect::<Vec<_>>())
    };
    assert_eq!(s(None, "aws/albaccesslog.log"), Format::AwsAlb);
    assert_eq!(s(None, "aws/nlbaccesslog.log"), Format::AwsNlb);
    assert_eq!(s(None, "spec/clb.log"), Format::AwsClb);
    assert_eq!(s(None, "aws/s3accesslog.log"), Format::AwsS3Access);
    assert_eq!(s(None, "aws/cloudfront.log"), Format::AwsCloudfront);
    assert_eq!(s(None, "aws/vpcflowlog.log"), Format::AwsVpcflow);
    assert_eq!(
        s(None, "aws/cloudtrail-log-file.json"),
        Format::AwsCloudtrail
    );
    assert_eq!(s(None, "aws/waflog.log"), Format::AwsWaf);
    assert_eq!(s(None, "web/nginx-access_access.log"), Format::NginxAccess);
    assert_eq!(
        s(
            Some("/var/log/apache2/access.log"),
            "web/apache-access_ubuntu-2.2.22.log"
        ),
        Format::ApacheAccess
    );
    assert_eq!(s(None, "web/nginx-error_error.log"), Format::NginxError);
    assert_eq!(s(None, "web/apache-error_test.log"), Format::ApacheError);
    assert_eq!(s(None, "web/iis-access_test.log"), Format::Iis);
    assert_eq!(s(None, "containers/cri.log"), Format::Cri);
    assert_eq!(s(None, "containers/docker.log"), Format::Docker);
    assert_eq!(s(None, "syslog/rfc.log"), Format::Syslog);
    assert_eq!(s(None, "web/nginxplus_json_50.ndjson"), Format::Json);
    assert_eq!(
        sniff(None, &[b"level=info msg=hi".as_slice()]),
        Format::Logfmt
    );
    assert_eq!(sniff(None, &[b"just words".as_slice()]), Format::Auto);
    assert_eq!(
        sniff(Some("b/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-lb.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz"), &[]),
        Format::AwsAlb
    );
}

#[test]
fn auto_parser_locks_format() {
    let mut p = LineParser::new(Format::Auto, ParseOptions::default());
    let file = data("aws/nlbaccesslog.log");
    let first = file.split(|&b| b == b'\n').next().unwrap();
    let evs = p.parse_line(first).into_events();
    assert_eq!(p.format(), Format::AwsNlb);
    assert!(!is_failure(&evs[0]));
}

#[test]
fn aws_keys() {
    let k = aws_key::parse_key("my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::Alb);
    assert_eq!(k.account_id.as_deref(), Some("123456789012"));
    assert_eq!(k.region.as_deref(), Some("us-east-2"));
    assert_eq!(
        k.load_balancer.as_deref(),
        Some("app/my-loadbalancer/1234567890abcdef")
    );
    assert_eq!(k.node_ip.as_deref(), Some("172.160.001.192"));
    assert_eq!(k.stamp.as_deref(), Some("2014-02-15T23:40:00.000Z"));
    assert_eq!(
        (
            k.date.unwrap().year,
            k.date.unwrap().month,
            k.date.unwrap().day
        ),
        (2016, 5, 1)
    );

    let k = aws_key::parse_key("my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::Nlb);
    assert_eq!(
        k.load_balancer.as_deref(),
        Some("net/my-loadbalancer/1234567890abcdef")
    );
    assert_eq!(k.node_ip, None);

    let k = aws_key::parse_key("my-loadbalancer-logs/my-app/AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log").unwrap();
    assert_eq!(k.kind, AwsLogKind::Clb);
    assert_eq!(k.load_balancer.as_deref(), Some("my-loadbalancer"));

    let k = aws_key::parse_key("b/AWSLogs/123456789012/ELBAccessLogTestFile").unwrap();
    assert_eq!(k.kind, AwsLogKind::ElbTestFile);
    assert_eq!(k.kind.format(), None);

    let k = aws_key::parse_key("b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/16/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::VpcFlow);
    assert_eq!(k.flow_log_id.as_deref(), Some("fl-1234abcd"));
    assert_eq!(k.stamp.as_deref(), Some("2018-06-20T16:20:00.000Z"));

    let k = aws_key::parse_key("b/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::VpcFlow);
    assert_eq!(k.region.as_deref(), Some("us-east-1"));
    assert_eq!(k.date.unwrap().day, 20);

    let k = aws_key::parse_key("b/AWSLogs/o-abc123/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::CloudTrail);
    assert_eq!(k.org_id.as_deref(), Some("o-abc123"));
    assert_eq!(k.account_id.as_deref(), Some("111122223333"));
    let k = aws_key::parse_key("b/AWSLogs/123456789012/CloudTrail/us-west-1/2014/06/20/123456789012_CloudTrail_us-west-1_20140620T1255ZHdkvFTXOA3Vnhbc.json.gz").unwrap();
    assert_eq!(k.stamp.as_deref(), Some("2014-06-20T12:55:00.000Z"));
    let k = aws_key::parse_key(
        "b/AWSLogs/123456789012/CloudTrail-Digest/us-west-1/2014/06/20/x.json.gz",
    )
    .unwrap();
    assert_eq!(k.kind.format(), None);

    let k =
        aws_key::parse_key("example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz").unwrap();
    assert_eq!(k.kind, AwsLogKind::CloudFront);
    assert_eq!(k.distribution_id.as_deref(), Some("EMLARXS9EXAMPLE"));
    assert_eq!(k.stamp.as_deref(), Some("2019-11-14T20:00:00.000Z"));

    let k = aws_key::parse_key("logs/2013-11-01-21-32-16-E568B2907131C0C0").unwrap();
    assert_eq!(k.kind, AwsLogKind::S3Access);
    assert_eq!(k.stamp.as_deref(), Some("2013-11-01T21:32:16.000Z"));
    let k = aws_key::parse_key(
        "logs/111122223333/eu-west-1/src-bucket/2024/01/02/2024-01-02-00-00-00-ABCDEF0123456789",
    )
    .unwrap();
    assert_eq!(k.account_id.as_deref(), Some("111122223333"));
    assert_eq!(k.source_bucket.as_deref(), Some("src-bucket"));
    assert!(aws_key::parse_key("some/random/file.txt").is_none());
}

#[test]
fn document_ids_are_deterministic_and_distinct() {
    let a = aws_key::document_id("s3://b/k", "etag1", 0);
    assert_eq!(a, aws_key::document_id("s3://b/k", "etag1", 0));
    assert_eq!(a.len(), 32);
    assert_ne!(a, aws_key::document_id("s3://b/k", "etag2", 0));
    assert_ne!(a, aws_key::document_id("s3://b/k", "etag1", 1));
    assert_ne!(
        aws_key::document_id("ab", "c", 0),
        aws_key::document_id("a", "bc", 0)
    );
    assert_ne!(
        aws_key::content_fingerprint(b"x", 1),
        aws_key::content_fingerprint(b"x", 2)
    );
}

fn join_all(rule: MultilineRule, text: &str) -> Vec<String> {
    let mut j = MultilineJoiner::new(MultilineConfig::new(rule));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        out.extend(j.push(line, i as u64));
    }
    out.extend(j.flush());
    out
}

#[test]
fn multiline_go() {
    let text = String::from_utf8(data("multiline/stacktrace_go.log")).unwrap();
    let evs = join_all(MultilineRule::Go, &text);
    assert_eq!(evs.len(), 6, "{evs:#?}");
    assert!(evs[2].starts_with("panic: runtime error") && evs[2].ends_with("exit status 2"));
    assert_eq!(evs[3], "supervisor: restarting ingest worker 3");
    assert!(evs[4].starts_with("fatal error:") && evs[4].ends_with("/app/main.go:19 +0x1e"));
}

#[test]
fn multiline_python() {
    let text = String::from_utf8(data("multiline/stacktrace_python.log")).unwrap();
    let evs = join_all(MultilineRule::Python, &text);
    assert_eq!(evs.len(), 7, "{evs:#?}");
    assert!(evs[2].starts_with("request GET /users/42 failed\nTraceback"));
    assert!(evs[2].ends_with("LookupError: no cached entry for user:42"));
    assert!(evs[2].contains("\n\nDuring handling of the above exception"));
    assert!(
        evs[5].starts_with("shutdown requested\nTraceback")
            && evs[5].ends_with("KeyboardInterrupt")
    );
}

#[test]
fn multiline_java() {
    let text = String::from_utf8(data("multiline/stacktrace_java.log")).unwrap();
    let evs = join_all(MultilineRule::Java, &text);
    assert_eq!(evs.len(), 6, "{evs:#?}");
    assert!(evs[2].starts_with("Failed to process order batch 7712\norg.springframework"));
    assert!(evs[2].ends_with("BatchWriter.java:112)"));
    assert!(evs[4].starts_with("Exception in thread"));
    let es = String::from_utf8(data("multiline/elasticsearch-2.0-multiline-java.log")).unwrap();
    let evs = join_all(
        MultilineRule::Custom {
            start: Some(regex::Regex::new(r"^\[\d{4}-").unwrap()),
            continuation: None,
        },
        &es,
    );
    assert!(evs.iter().all(|e| e.starts_with('[')), "{evs:#?}");
}

#[test]
fn multiline_limits_and_timeout() {
    let mut cfg = MultilineConfig::new(MultilineRule::Java);
    cfg.max_lines = 3;
    cfg.timeout_ms = 100;
    let mut j = MultilineJoiner::new(cfg);
    assert!(j.push("start", 0).is_empty());
    assert!(j.push("\tat a", 1).is_empty());
    assert!(j.push("\tat b", 2).is_empty());
    assert_eq!(j.push("\tat c", 3), vec!["start\n\tat a\n\tat b"]);
    assert_eq!(j.flush_expired(50), None);
    assert_eq!(j.flush_expired(103), Some("\tat c".to_owned()));
    assert!(j.push("x", 200).is_empty());
    assert_eq!(
        j.push("\tat y", 400),
        vec!["x"],
        "timed-out event is emitted first"
    );
    assert!("cobol".parse::<MultilineRule>().is_err());
    assert!(MultilineRule::custom(Some("("), None).is_err());
}

/// xorshift: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_never_panic_and_never_drop_lines() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Seeds: real lines to mutate, so parsers get past their first checks.
    let seeds: Vec<Vec<u8>> = [
        "spec/alb.log",
        "spec/nlb.log",
        "spec/clb.log",
        "spec/s3access.log",
        "spec/cloudfront.log",
        "spec/vpcflow.log",
        "spec/cloudtrail.jsonl",
        "aws/waflog.log",
        "web/nginx-access_test.log",
        "web/apache-error_test.log",
        "web/nginx-error_error.log",
        "web/iis-access_test.log",
        "syslog/rfc.log",
        "containers/cri_partial.log",
        "containers/docker.log",
    ]
    .iter()
    .flat_map(|f| {
        data(f)
            .split(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    })
    .collect();
    let alphabet = b" \t\"[]:-./%\\{}=<>0123456789abcTZ\r\xff\xc3";
    for format in Format::ALL {
        let mut p = LineParser::new(
            format,
            ParseOptions {
                max_partial_bytes: 4096,
                ..Default::default()
            },
        );
        for i in 0..3000u64 {
            let mut line = seeds[(rng.next() as usize) % seeds.len()].clone();
            let edits = rng.next() % 6;
            for _ in 0..edits {
                let r = rng.next();
                let pos = if line.is_empty() {
                    0
                } else {
                    (r as usize >> 8) % line.len()
                };
                match r % 4 {
                    0 if !line.is_empty() => {
                        line.truncate(pos);
                    }
                    1 => line.insert(pos, alphabet[(r as usize >> 20) % alphabet.len()]),
                    2 if !line.is_empty() => {
                        line.remove(pos);
                    }
                    _ => line.insert(pos, (r >> 32) as u8),
                }
            }
            if i % 7 == 0 {
                line = (0..(rng.next() % 200)).map(|_| rng.next() as u8).collect();
            }
            match p.parse_line(&line) {
                LineOutcome::Event(e) => assert!(!e.is_empty()),
                LineOutcome::Events(v) => assert!(v.iter().all(|e| !e.is_empty())),
                LineOutcome::Skipped(_) => {}
            }
        }
        let _ = p.finish();
        let st = p.stats();
        assert_eq!(
            st.parsed + st.failed + st.skipped,
            3000,
            "{format}: every line accounted for"
        );
    }
}

#[test]
fn parse_document_line_formats() {
    let evs = parse_document(Format::AwsVpcflow, &data("aws/vpcflowlog.log")).unwrap();
    assert_eq!(evs.len(), 3);
    let evs = parse_document(Format::Auto, &data("aws/s3accesslog.log")).unwrap();
    assert_eq!(
        get_path(&evs[0], "event.dataset"),
        Some(&json!("aws.s3access"))
    );
}

/// `write_json` of a parser's flat fields is byte for byte the text of the nested event
/// `parse_line` builds, for every sample line of every format, with and without
/// `event.original`, and after the setters `cairn import` uses.
#[test]
fn flat_events_write_the_same_json_as_nested_events() {
    let cases: &[(Format, &str)] = &[
        (Format::AwsAlb, "aws/albaccesslog.log"),
        (Format::AwsAlb, "spec/alb.log"),
        (Format::AwsNlb, "aws/nlbaccesslog.log"),
        (Format::AwsNlb, "spec/nlb.log"),
        (Format::AwsClb, "spec/clb.log"),
        (Format::AwsS3Access, "aws/s3accesslog.log"),
        (Format::AwsS3Access, "spec/s3access.log"),
        (Format::AwsCloudfront, "aws/cloudfront.log"),
        (Format::AwsCloudfront, "spec/cloudfront.log"),
        (Format::AwsVpcflow, "aws/vpcflowlog.log"),
        (Format::AwsVpcflow, "spec/vpcflow.log"),
        (Format::AwsWaf, "aws/waflog.log"),
        (Format::AwsCloudtrail, "spec/cloudtrail.jsonl"),
        (Format::NginxAccess, "web/nginx-access_test.log"),
        (Format::NginxAccess, "web/nginx-ingress_controller_test.log"),
        (
            Format::ApacheAccess,
            "web/elastic-examples_apache_logs_2k.log",
        ),
        (Format::ApacheAccess, "web/apache-access_ssl-request.log"),
        (Format::NginxError, "web/nginx-error_error.log"),
        (Format::ApacheError, "web/apache-error_test.log"),
        (Format::Iis, "web/iis-access_test.log"),
        (Format::Json, "web/nginxplus_json_50.ndjson"),
        (Format::Syslog, "syslog/rfc.log"),
        (Format::Cri, "containers/cri.log"),
        (Format::Docker, "containers/docker.log"),
    ];
    let mut lines = 0;
    for &(format, file) in cases {
        for keep_original in [false, true] {
            let opts = ParseOptions {
                keep_original,
                ..Default::default()
            };
            let mut flat = LineParser::new(format, opts.clone());
            let mut nested = LineParser::new(format, opts);
            for line in data(file).split(|&b| b == b'\n') {
                let got = flat.parse_line_fields(line).into_events();
                let want = nested.parse_line(line).into_events();
                assert_eq!(got.len(), want.len(), "{file}: {line:?}");
                for (mut g, mut w) in got.into_iter().zip(want) {
                    let mut text = Vec::new();
                    g.write_json(&mut text);
                    let want_text = serde_json::to_string(&w).unwrap();
                    assert_eq!(String::from_utf8(text).unwrap(), want_text, "{file}");
                    assert_eq!(g.clone().into_event(), w, "{file}");
                    // The setters agree with nested inserts on both kinds of event.
                    g.set("log.offset", json!(7));
                    g.set_if_absent("cloud.provider", json!("aws"));
                    g.set_if_absent("event.dataset", json!("other"));
                    let mut text = Vec::new();
                    g.write_json(&mut text);
                    let mut log = w
                        .remove("log")
                        .and_then(|v| v.as_object().cloned())
                        .unwrap_or_default();
                    log.insert("offset".into(), json!(7));
                    w.insert("log".into(), Value::Object(log));
                    if get_path(&w, "cloud.provider").is_none() {
                        let cloud = w.entry("cloud").or_insert_with(|| json!({}));
                        cloud["provider"] = json!("aws");
                    }
                    if get_path(&w, "event.dataset").is_none() {
                        let event = w.entry("event").or_insert_with(|| json!({}));
                        event["dataset"] = json!("other");
                    }
                    let got: Value = serde_json::from_slice(&text).unwrap();
                    assert_eq!(got, Value::Object(w), "{file}");
                    assert_eq!(g.get("log.offset"), Some(&json!(7)));
                    lines += 1;
                }
            }
        }
    }
    assert!(lines > 4000, "{lines} events compared");
}
