//! Golden tests: inputs under `tests/data/`, hand-written expected events under
//! `tests/expected/` (compared as JSON values, key order ignored).

use cairn_formats::{parse_document_with, Event, Format, ParseOptions};
use serde_json::Value;

fn data(rel: &str) -> Vec<u8> {
    let p = format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn expected(name: &str) -> Vec<Value> {
    let p = format!("{}/tests/expected/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Paths where two values differ, for a readable failure.
fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}.{k}"), gv, wv, out),
                    None => out.push(format!("missing {path}.{k} (want {wv})")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("unexpected {path}.{k} = {gv}"));
                }
            }
        }
        _ if got != want => out.push(format!("{path}: got {got}, want {want}")),
        _ => {}
    }
}

fn check(format: Format, input: &str, expected_file: &str, opts: ParseOptions) {
    let events: Vec<Event> = parse_document_with(format, &data(input), &opts).expect("parse");
    let want = expected(expected_file);
    assert_eq!(
        events.len(),
        want.len(),
        "{input}: event count; got {events:#?}"
    );
    let mut problems = Vec::new();
    for (i, (g, w)) in events.iter().zip(&want).enumerate() {
        diff(
            &format!("[{i}]"),
            &Value::Object(g.clone()),
            w,
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{input}:\n{}", problems.join("\n"));
}

#[test]
fn spec_alb() {
    check(
        Format::AwsAlb,
        "spec/alb.log",
        "spec_alb.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_nlb() {
    check(
        Format::AwsNlb,
        "spec/nlb.log",
        "spec_nlb.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_clb() {
    check(
        Format::AwsClb,
        "spec/clb.log",
        "spec_clb.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_s3access() {
    check(
        Format::AwsS3Access,
        "spec/s3access.log",
        "spec_s3access.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_cloudfront() {
    check(
        Format::AwsCloudfront,
        "spec/cloudfront.log",
        "spec_cloudfront.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_vpcflow() {
    check(
        Format::AwsVpcflow,
        "spec/vpcflow.log",
        "spec_vpcflow.json",
        ParseOptions::default(),
    );
}

#[test]
fn spec_cloudtrail() {
    // Two one-line `{"Records":[…]}` documents (CloudWatch-style lines).
    check(
        Format::AwsCloudtrail,
        "spec/cloudtrail.jsonl",
        "spec_cloudtrail.json",
        ParseOptions::default(),
    );
}

#[test]
fn sample_alb() {
    check(
        Format::AwsAlb,
        "aws/albaccesslog.log",
        "sample_alb.json",
        ParseOptions::default(),
    );
}

#[test]
fn sample_vpcflow_with_header() {
    check(
        Format::AwsVpcflow,
        "aws/vpcflowlog.log",
        "sample_vpcflow.json",
        ParseOptions::default(),
    );
}

#[test]
fn sample_web() {
    check(
        Format::NginxAccess,
        "web/nginx-access_test.log",
        "sample_nginx_access.json",
        ParseOptions::default(),
    );
    check(
        Format::ApacheError,
        "web/apache-error_test.log",
        "sample_apache_error.json",
        ParseOptions::default(),
    );
}

#[test]
fn sample_syslog() {
    let opts = ParseOptions {
        reference_time: Some(1_700_000_000), // 2023-11-14
        ..Default::default()
    };
    check(Format::Syslog, "syslog/rfc.log", "sample_syslog.json", opts);
}

#[test]
fn sample_containers() {
    check(
        Format::Cri,
        "containers/cri_partial.log",
        "sample_cri.json",
        ParseOptions::default(),
    );
    check(
        Format::Docker,
        "containers/docker_multiline.log",
        "sample_docker.json",
        ParseOptions::default(),
    );
}

/// Real samples without a golden before the review (see `expected/REVIEW.md`).
#[test]
fn sample_aws_more() {
    let d = ParseOptions::default;
    check(
        Format::AwsNlb,
        "aws/nlbaccesslog.log",
        "sample_nlb.json",
        d(),
    );
    check(
        Format::AwsS3Access,
        "aws/s3accesslog.log",
        "sample_s3access.json",
        d(),
    );
    check(
        Format::AwsCloudfront,
        "aws/cloudfront.log",
        "sample_cloudfront.json",
        d(),
    );
    check(
        Format::AwsCloudtrail,
        "aws/cloudtrail-log-file.json",
        "sample_cloudtrail.json",
        d(),
    );
    check(Format::AwsWaf, "aws/waflog.log", "sample_waf.json", d());
}

#[test]
fn sample_web_more() {
    let d = ParseOptions::default;
    for (input, want) in [
        (
            "web/apache-access_test.log",
            "sample_apache_access_test.json",
        ),
        (
            "web/apache-access_ssl-request.log",
            "sample_apache_access_ssl_request.json",
        ),
        (
            "web/apache-access_test-vhost.log",
            "sample_apache_access_test_vhost.json",
        ),
        (
            "web/apache-access_darwin-2.4.23.log",
            "sample_apache_access_darwin_2_4_23.json",
        ),
        (
            "web/apache-access_ubuntu-2.2.22.log",
            "sample_apache_access_ubuntu_2_2_22.json",
        ),
        (
            "web/elastic-examples_apache_logs_5.log",
            "sample_apache_combined_5.json",
        ),
        ("web/nasa-http-jul1995_6.log", "sample_nasa_common.json"),
    ] {
        check(Format::ApacheAccess, input, want, d());
    }
    for (input, want) in [
        (
            "web/nginx-access_access.log",
            "sample_nginx_access_access.json",
        ),
        (
            "web/nginx-access_test-with-host.log",
            "sample_nginx_access_with_host.json",
        ),
        (
            "web/nginx-ingress_controller_test.log",
            "sample_nginx_ingress_controller.json",
        ),
    ] {
        check(Format::NginxAccess, input, want, d());
    }
    check(
        Format::NginxError,
        "web/nginx-error_error.log",
        "sample_nginx_error.json",
        d(),
    );
    check(
        Format::Iis,
        "web/iis-access_test-iis-7.5.log",
        "sample_iis_7_5.json",
        d(),
    );
    check(
        Format::Iis,
        "web/iis-access_test.log",
        "sample_iis_test.json",
        d(),
    );
    check(
        Format::Iis,
        "web/iis-access_test-x-forward-for-extended.log",
        "sample_iis_xff_extended.json",
        d(),
    );
    check(
        Format::Json,
        "web/nginxplus_json_2.ndjson",
        "sample_json_nginxplus.json",
        d(),
    );
}

#[test]
fn sample_containers_more() {
    let d = ParseOptions::default;
    check(
        Format::Cri,
        "containers/cri.log",
        "sample_cri_filebeat.json",
        d(),
    );
    check(
        Format::Cri,
        "containers/pod_cri.log",
        "sample_cri_pod.json",
        d(),
    );
    check(
        Format::Docker,
        "containers/docker.log",
        "sample_docker_build.json",
        d(),
    );
}
