//! Amazon S3 server access log.

use serde_json::Value;

use crate::time;
use crate::util::*;

/// Older files stop early (Filebeat 7.x's pattern ends at field 24); accept ≥ 17.
const MIN_FIELDS: usize = 17;

/// Region label in an S3 endpoint host name: after `s3.`, `s3-`, `s3-website.` or
/// `s3-website-`, when it looks like a region (`us-west-1`, `us-gov-west-1`).
pub(crate) fn region_from_host(host: &str) -> Option<&str> {
    let lower_ok = |r: &str| {
        let parts: Vec<&str> = r.split('-').collect();
        parts.len() >= 3
            && parts[0].len() == 2
            && parts[0].bytes().all(|c| c.is_ascii_lowercase())
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|c| c.is_ascii_digit())
            && !parts[parts.len() - 1].is_empty()
    };
    let labels: Vec<&str> = host.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        let candidate = if *label == "s3" || *label == "s3-website" {
            labels.get(i + 1).copied()
        } else if let Some(r) = label.strip_prefix("s3-website-") {
            Some(r)
        } else {
            label.strip_prefix("s3-")
        };
        if let Some(c) = candidate {
            if lower_ok(c) {
                return Some(c);
            }
        }
    }
    None
}

pub(crate) fn parse_s3access(line: &str, ev: &mut Fields) -> Result<(), String> {
    let toks = Tokens::new(line, true).collect_all();
    if toks.len() < MIN_FIELDS {
        return Err(format!(
            "S3 access line has {} fields, expected at least {MIN_FIELDS}",
            toks.len()
        ));
    }
    let v = |i: usize| toks.get(i).and_then(|t| t.value());
    aws_common(ev, "aws.s3access");
    let ts = time::parse_clf(toks[2].raw, 0)
        .ok_or_else(|| format!("time: invalid timestamp: {}", clip(toks[2].raw)))?;
    set_ts(ev, "@timestamp", ts);
    if let Some(o) = v(0) {
        set_str(ev, "aws.s3access.bucket_owner", &o);
        set(
            ev,
            "related.user",
            Value::Array(vec![Value::String(o.into_owned())]),
        );
    }
    if let Some(b) = v(1) {
        set_str(ev, "aws.s3access.bucket", &b);
    }
    if let Some(ip) = v(3) {
        set_str(ev, "aws.s3access.remote_ip", &ip);
        set_str(ev, "client.address", &ip);
        if is_ip(&ip) {
            set_str(ev, "client.ip", &ip);
        }
    }
    if let Some(r) = v(4) {
        set_str(ev, "aws.s3access.requester", &r);
        set_str(ev, "client.user.id", &r);
    }
    if let Some(r) = v(5) {
        set_str(ev, "aws.s3access.request_id", &r);
        set_str(ev, "event.id", &r);
    }
    if let Some(op) = v(6) {
        set_str(ev, "aws.s3access.operation", &op);
        set_str(ev, "event.action", &op);
    }
    if let Some(k) = v(7) {
        set_str(ev, "aws.s3access.key", &k);
    }
    if let Some(req) = v(8) {
        set_str(ev, "aws.s3access.request_uri", &req);
        set_request_line(ev, &req);
    }
    set_int(ev, "aws.s3access.http_status", toks[9].raw, "http_status")?;
    set_int(ev, "http.response.status_code", toks[9].raw, "http_status")?;
    match v(10) {
        Some(code) => {
            set_str(ev, "aws.s3access.error_code", &code);
            set_str(ev, "event.code", &code);
            set_str(ev, "event.outcome", "failure");
        }
        None => set_str(ev, "event.outcome", "success"),
    }
    // AWS: Bytes Sent is `-` when zero bytes were sent.
    let sent = if is_null(toks[11].raw) {
        "0"
    } else {
        toks[11].raw
    };
    set_int(ev, "aws.s3access.bytes_sent", sent, "bytes_sent")?;
    set_int(ev, "http.response.body.bytes", sent, "bytes_sent")?;
    set_int(ev, "aws.s3access.object_size", toks[12].raw, "object_size")?;
    set_int(ev, "aws.s3access.total_time", toks[13].raw, "total_time")?;
    if let Some(ms) = parse_i64(toks[13].raw) {
        set(
            ev,
            "event.duration",
            Value::from(ms.saturating_mul(1_000_000)),
        );
    }
    set_int(
        ev,
        "aws.s3access.turn_around_time",
        toks[14].raw,
        "turn_around_time",
    )?;
    if let Some(r) = v(15) {
        set_str(ev, "aws.s3access.referrer", &r);
        set_str(ev, "http.request.referrer", &r);
    }
    if let Some(ua) = v(16) {
        set_str(ev, "aws.s3access.user_agent", &ua);
        set_str(ev, "user_agent.original", &ua);
    }
    let simple = [
        (17, "aws.s3access.version_id"),
        (18, "aws.s3access.host_id"),
        (19, "aws.s3access.signature_version"),
    ];
    for (i, p) in simple {
        if let Some(x) = v(i) {
            set_str(ev, p, &x);
        }
    }
    if let Some(c) = v(20) {
        set_str(ev, "aws.s3access.cipher_suite", &c);
        set_str(ev, "tls.cipher", &c);
    }
    if let Some(a) = v(21) {
        set_str(ev, "aws.s3access.authentication_type", &a);
    }
    if let Some(h) = v(22) {
        set_str(ev, "aws.s3access.host_header", &h);
        if let Some(r) = region_from_host(&h) {
            set_str(ev, "cloud.region", r);
        }
    }
    if let Some(t) = v(23) {
        set_str(ev, "aws.s3access.tls_version", &t);
        set_tls_version(ev, &t);
    }
    let tail = [
        (24, "aws.s3access.access_point_arn"),
        (25, "aws.s3access.acl_required"),
        (26, "aws.s3access.source_region"),
    ];
    for (i, p) in tail {
        if let Some(x) = v(i) {
            set_str(ev, p, &x);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::region_from_host;

    #[test]
    fn regions() {
        assert_eq!(
            region_from_host("DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com"),
            Some("us-west-1")
        );
        assert_eq!(
            region_from_host("s3-eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_host("b.s3-website-us-gov-west-1.amazonaws.com"),
            Some("us-gov-west-1")
        );
        assert_eq!(region_from_host("s3.amazonaws.com"), None);
        assert_eq!(
            region_from_host("b.s3.dualstack.us-east-1.amazonaws.com"),
            None
        );
    }
}
