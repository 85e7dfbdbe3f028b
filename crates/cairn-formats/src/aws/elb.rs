//! Elastic Load Balancing access logs: ALB, NLB (TLS listeners) and Classic ELB.

use serde_json::Value;

use crate::time;
use crate::util::*;

/// Minimum ALB field count (third-party samples end after 25).
const ALB_MIN_FIELDS: usize = 25;
/// Minimum NLB field count (2023 docs: 21).
const NLB_MIN_FIELDS: usize = 21;
/// Minimum CLB field count: through the request field.
const CLB_MIN_FIELDS: usize = 12;

fn ts_field(ev: &mut Fields, paths: &[&'static str], s: &str, field: &str) -> Result<(), String> {
    if is_null(s) {
        return Ok(());
    }
    let ts =
        time::parse_iso(s, 0).ok_or_else(|| format!("{field}: invalid timestamp: {}", clip(s)))?;
    let text = ts.to_rfc3339();
    for p in paths {
        set(ev, *p, Value::String(text.clone()));
    }
    Ok(())
}

fn set_outcome_by_status(ev: &mut Fields, status: &str) {
    if let Some(code) = parse_i64(status) {
        set_str(
            ev,
            "event.outcome",
            if code < 400 { "success" } else { "failure" },
        );
    }
}

/// Region and account from `arn:aws:elasticloadbalancing:{region}:{account}:…`.
fn cloud_from_arn(ev: &mut Fields, arn: &str) {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(_), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return;
    };
    if !region.is_empty() {
        set_str(ev, "cloud.region", region);
    }
    if !account.is_empty() {
        set_str(ev, "cloud.account.id", account);
    }
}

fn tok_str<'a>(toks: &'a [Tok<'a>], i: usize) -> Option<std::borrow::Cow<'a, str>> {
    toks.get(i).and_then(|t| t.value())
}

/// Application Load Balancer access log line.
pub(crate) fn parse_alb(line: &str, ev: &mut Fields) -> Result<(), String> {
    let toks = Tokens::new(line, false).collect_all();
    if toks.len() < ALB_MIN_FIELDS {
        return Err(format!(
            "ALB line has {} fields, expected at least {ALB_MIN_FIELDS}",
            toks.len()
        ));
    }
    aws_common(ev, "aws.elb");
    set_str(ev, "event.category", "web");
    ts_field(ev, &["@timestamp", "event.end"], toks[1].raw, "time")?;
    set_opt(ev, "aws.elb.type", toks[0].raw);
    set_opt(ev, "aws.elb.name", toks[2].raw);
    set_ip_port(ev, "source", toks[3].raw, true);
    set_ip_port(ev, "aws.elb.backend", toks[4].raw, false);
    set_float(
        ev,
        "aws.elb.request_processing_time.sec",
        toks[5].raw,
        "request_processing_time",
        true,
    )?;
    set_float(
        ev,
        "aws.elb.backend_processing_time.sec",
        toks[6].raw,
        "target_processing_time",
        true,
    )?;
    set_float(
        ev,
        "aws.elb.response_processing_time.sec",
        toks[7].raw,
        "response_processing_time",
        true,
    )?;
    set_int(
        ev,
        "http.response.status_code",
        toks[8].raw,
        "elb_status_code",
    )?;
    set_outcome_by_status(ev, toks[8].raw);
    set_int(
        ev,
        "aws.elb.backend.http.response.status_code",
        toks[9].raw,
        "target_status_code",
    )?;
    set_int(ev, "http.request.bytes", toks[10].raw, "received_bytes")?;
    set_int(ev, "http.response.bytes", toks[11].raw, "sent_bytes")?;
    if let Some(req) = tok_str(&toks, 12) {
        set_request_line(ev, &req);
    }
    if let Some(ua) = tok_str(&toks, 13) {
        set_str(ev, "user_agent.original", &ua);
    }
    if let Some(c) = tok_str(&toks, 14) {
        set_str(ev, "aws.elb.ssl_cipher", &c);
        set_str(ev, "tls.cipher", &c);
    }
    if let Some(p) = tok_str(&toks, 15) {
        set_str(ev, "aws.elb.ssl_protocol", &p);
        set_tls_version(ev, &p);
    }
    if let Some(arn) = tok_str(&toks, 16) {
        set_str(ev, "aws.elb.target_group.arn", &arn);
        cloud_from_arn(ev, &arn);
    }
    if let Some(t) = tok_str(&toks, 17) {
        set_str(ev, "aws.elb.trace_id", &t);
        set_str(ev, "trace.id", &t);
    }
    if let Some(d) = tok_str(&toks, 18) {
        set_str(ev, "destination.domain", &d);
    }
    if let Some(c) = tok_str(&toks, 19) {
        set_str(ev, "aws.elb.chosen_cert.arn", &c);
    }
    // AWS-LOGS.md §0 rule 2 / §1.2: `0` (default rule) and `-1` (evaluation error) are
    // sentinels, not priorities (1-50000): the field is left out like `-`.
    let prio = toks[20].raw;
    if prio != "-1" && prio != "0" {
        set_int(
            ev,
            "aws.elb.matched_rule_priority",
            prio,
            "matched_rule_priority",
        )?;
    }
    ts_field(ev, &["event.start"], toks[21].raw, "request_creation_time")?;
    if let Some(a) = tok_str(&toks, 22) {
        let list: Vec<Value> = a
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect();
        set(ev, "aws.elb.action_executed", Value::Array(list));
    }
    if let Some(u) = tok_str(&toks, 23) {
        set_str(ev, "aws.elb.redirect_url", &u);
    }
    if let Some(r) = tok_str(&toks, 24) {
        set_str(ev, "aws.elb.error.reason", &r);
    }
    // Fields 26/27: quoted space-separated lists, or bare single values.
    let list = |t: &str| -> Value {
        Value::Array(
            t.split(' ')
                .filter(|s| !is_null(s))
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )
    };
    if let Some(t) = tok_str(&toks, 25) {
        set(ev, "aws.elb.target_port", list(&t));
    }
    if let Some(t) = tok_str(&toks, 26) {
        // Status codes are numbers, as `http.response.status_code` is.
        let codes: Vec<Value> = t
            .split(' ')
            .filter_map(|s| parse_i64(s).map(Value::from))
            .collect();
        if !codes.is_empty() {
            set(ev, "aws.elb.target_status_code", Value::Array(codes));
        }
    }
    let named = [
        (27, "aws.elb.classification"),
        (28, "aws.elb.classification_reason"),
        (29, "aws.elb.conn_trace_id"),
        (30, "aws.elb.transformed_host"),
        (31, "aws.elb.transformed_uri"),
        (32, "aws.elb.request_transform_status"),
    ];
    for (i, path) in named {
        if let Some(v) = tok_str(&toks, i) {
            set_str(ev, path, &v);
        }
    }
    set_str(ev, "aws.elb.protocol", "http");
    Ok(())
}

/// Network Load Balancer (TLS listener) access log line. Split on spaces only: field 21
/// holds `"` characters but never spaces.
pub(crate) fn parse_nlb(line: &str, ev: &mut Fields) -> Result<(), String> {
    let toks: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
    if toks.len() < NLB_MIN_FIELDS {
        return Err(format!(
            "NLB line has {} fields, expected at least {NLB_MIN_FIELDS}",
            toks.len()
        ));
    }
    aws_common(ev, "aws.elb");
    set_str(ev, "event.category", "network");
    ts_field(ev, &["@timestamp", "event.end"], toks[2], "time")?;
    set_opt(ev, "aws.elb.type", toks[0]);
    set_opt(ev, "aws.elb.log_version", toks[1]);
    set_opt(ev, "aws.elb.name", toks[3]);
    set_opt(ev, "aws.elb.listener", toks[4]);
    set_ip_port(ev, "source", toks[5], true);
    set_ip_port(ev, "aws.elb.backend", toks[6], false);
    set_int(ev, "aws.elb.connection_time.ms", toks[7], "connection_time")?;
    set_int(
        ev,
        "aws.elb.tls_handshake_time.ms",
        toks[8],
        "tls_handshake_time",
    )?;
    set_int(ev, "source.bytes", toks[9], "received_bytes")?;
    set_int(ev, "destination.bytes", toks[10], "sent_bytes")?;
    if !is_null(toks[11]) {
        match parse_i64(toks[11]) {
            Some(v) => set(ev, "aws.elb.incoming_tls_alert", Value::from(v)),
            None => set_str(ev, "aws.elb.incoming_tls_alert", toks[11]),
        }
    }
    set_opt(ev, "aws.elb.chosen_cert.arn", toks[12]);
    set_opt(ev, "aws.elb.chosen_cert.serial", toks[13]);
    if !is_null(toks[14]) {
        set_str(ev, "aws.elb.ssl_cipher", toks[14]);
        set_str(ev, "tls.cipher", toks[14]);
    }
    if !is_null(toks[15]) {
        set_str(ev, "aws.elb.ssl_protocol", toks[15]);
        set_tls_version(ev, toks[15]);
    }
    set_opt(ev, "aws.elb.ssl_named_group", toks[16]);
    if !is_null(toks[17]) {
        set_str(ev, "destination.domain", &pct_decode(toks[17]));
    }
    set_opt(ev, "aws.elb.alpn_fe_protocol", toks[18]);
    set_opt(ev, "aws.elb.alpn_be_protocol", toks[19]);
    if !is_null(toks[20]) {
        let decoded = pct_decode(toks[20]);
        let list: Vec<Value> = decoded
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect();
        set(
            ev,
            "aws.elb.alpn_client_preference_list",
            Value::Array(list),
        );
    }
    if let Some(t) = toks.get(21) {
        ts_field(ev, &["event.start"], t, "tls_connection_creation_time")?;
    }
    set_str(ev, "aws.elb.protocol", "tcp");
    Ok(())
}

/// Classic Load Balancer access log line (HTTP/HTTPS or TCP/SSL listener).
pub(crate) fn parse_clb(line: &str, ev: &mut Fields) -> Result<(), String> {
    let toks = Tokens::new(line, false).collect_all();
    if toks.len() < CLB_MIN_FIELDS {
        return Err(format!(
            "Classic ELB line has {} fields, expected at least {CLB_MIN_FIELDS}",
            toks.len()
        ));
    }
    aws_common(ev, "aws.elb");
    ts_field(ev, &["@timestamp"], toks[0].raw, "time")?;
    set_opt(ev, "aws.elb.name", toks[1].raw);
    set_ip_port(ev, "source", toks[2].raw, true);
    set_ip_port(ev, "aws.elb.backend", toks[3].raw, false);
    set_float(
        ev,
        "aws.elb.request_processing_time.sec",
        toks[4].raw,
        "request_processing_time",
        true,
    )?;
    set_float(
        ev,
        "aws.elb.backend_processing_time.sec",
        toks[5].raw,
        "backend_processing_time",
        true,
    )?;
    set_float(
        ev,
        "aws.elb.response_processing_time.sec",
        toks[6].raw,
        "response_processing_time",
        true,
    )?;
    // A TCP/SSL listener writes `- -` statuses and a request of `"- - - "`.
    let request = toks[11].raw.trim();
    let is_http = !(is_null(toks[7].raw) && request.split(' ').all(is_null));
    set_int(
        ev,
        "http.response.status_code",
        toks[7].raw,
        "elb_status_code",
    )?;
    set_int(
        ev,
        "aws.elb.backend.http.response.status_code",
        toks[8].raw,
        "backend_status_code",
    )?;
    if is_http {
        set_str(ev, "event.category", "web");
        set_outcome_by_status(ev, toks[7].raw);
        set_int(ev, "http.request.body.bytes", toks[9].raw, "received_bytes")?;
        set_int(ev, "http.response.body.bytes", toks[10].raw, "sent_bytes")?;
        set_request_line(ev, &toks[11].text());
        set_str(ev, "aws.elb.protocol", "http");
    } else {
        set_str(ev, "event.category", "network");
        set_int(ev, "source.bytes", toks[9].raw, "received_bytes")?;
        set_int(ev, "destination.bytes", toks[10].raw, "sent_bytes")?;
        set_str(ev, "aws.elb.protocol", "tcp");
    }
    if let Some(ua) = tok_str(&toks, 12) {
        set_str(ev, "user_agent.original", &ua);
    }
    if let Some(c) = tok_str(&toks, 13) {
        set_str(ev, "aws.elb.ssl_cipher", &c);
        set_str(ev, "tls.cipher", &c);
    }
    if let Some(p) = tok_str(&toks, 14) {
        set_str(ev, "aws.elb.ssl_protocol", &p);
        set_tls_version(ev, &p);
    }
    Ok(())
}
