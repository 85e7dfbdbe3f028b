//! CloudFront standard logs (W3C, TAB separated, columns named by `#Fields:`) and
//! real-time logs (TAB separated, columns given by configuration).

use serde_json::Value;

use crate::time;
use crate::util::*;

/// The columns of a CloudFront standard log when no `#Fields:` line was seen (the
/// current 33-column layout).
pub const STANDARD_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// All real-time log fields in AWS's fixed order; the default when no field list is
/// configured.
pub const REALTIME_FIELDS: [&str; 43] = [
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
    "c-country",
    "cs-accept-encoding",
    "cs-accept",
    "cache-behavior-path-pattern",
    "cs-headers",
    "cs-header-names",
    "cs-headers-count",
    "origin-fbl",
    "origin-lbl",
    "asn",
];

#[derive(Debug, Clone, PartialEq)]
enum Col {
    Date,
    Time,
    EpochTimestamp,
    /// String field to a path as logged.
    Str(&'static str),
    /// String decoded once (`%XX`).
    Decoded(&'static str),
    Int(&'static str),
    /// Float seconds to a path.
    Float(&'static str),
    CIp,
    CPort,
    Status,
    UriStem,
    Query,
    XHost,
    Protocol,
    TimeTaken,
    ForwardedFor,
    SslProtocol,
    SslCipher,
    ProtocolVersion,
    RequestId,
    /// Real-time `cs-uri-stem` (includes the query string).
    RtUri,
    Asn,
    /// Unknown column: `aws.cloudfront.{snake}`.
    Other(String),
}

fn snake(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    s.trim_matches('_').to_owned()
}

fn column(name: &str, realtime: bool) -> Col {
    match name {
        "date" => Col::Date,
        "time" => Col::Time,
        "timestamp" if realtime => Col::EpochTimestamp,
        "x-edge-location" => Col::Str("aws.cloudfront.edge_location"),
        "sc-bytes" => Col::Int("http.response.bytes"),
        "c-ip" => Col::CIp,
        "cs-method" => Col::Str("http.request.method"),
        "cs(Host)" => Col::Str("aws.cloudfront.domain"),
        "cs-uri-stem" if realtime => Col::RtUri,
        "cs-uri-stem" => Col::UriStem,
        "sc-status" => Col::Status,
        "cs(Referer)" | "cs-referer" => Col::Str("http.request.referrer"),
        "cs(User-Agent)" | "cs-user-agent" => Col::Decoded("user_agent.original"),
        "cs-uri-query" => Col::Query,
        "cs(Cookie)" | "cs-cookie" => Col::Str("aws.cloudfront.cookies"),
        "x-edge-result-type" => Col::Str("aws.cloudfront.edge_result_type"),
        "x-edge-request-id" => Col::RequestId,
        "x-host-header" if !realtime => Col::XHost,
        "cs-protocol" => Col::Protocol,
        "cs-bytes" => Col::Int("http.request.bytes"),
        "time-taken" => Col::TimeTaken,
        "x-forwarded-for" => Col::ForwardedFor,
        "ssl-protocol" => Col::SslProtocol,
        "ssl-cipher" => Col::SslCipher,
        "x-edge-response-result-type" => Col::Str("aws.cloudfront.edge_response_result_type"),
        "cs-protocol-version" => Col::ProtocolVersion,
        "fle-status" => Col::Str("aws.cloudfront.fle_status"),
        "fle-encrypted-fields" => Col::Int("aws.cloudfront.fle_encrypted_fields"),
        "c-port" => Col::CPort,
        "time-to-first-byte" => Col::Float("aws.cloudfront.time_to_first_byte"),
        "x-edge-detailed-result-type" => Col::Str("aws.cloudfront.edge_detailed_result_type"),
        "sc-content-type" => Col::Str("http.response.mime_type"),
        "sc-content-len" => Col::Int("http.response.body.bytes"),
        "sc-range-start" => Col::Int("aws.cloudfront.range_start"),
        "sc-range-end" => Col::Int("aws.cloudfront.range_end"),
        "c-country" => Col::Str("source.geo.country_iso_code"),
        "asn" => Col::Asn,
        other => Col::Other(format!("aws.cloudfront.{}", snake(other))),
    }
}

/// A column layout: from a `#Fields:` header, the default, or a configured list.
#[derive(Debug, Clone)]
pub(crate) struct CfLayout {
    cols: Vec<Col>,
    realtime: bool,
}

impl CfLayout {
    pub fn new<S: AsRef<str>>(names: &[S], realtime: bool) -> Self {
        CfLayout {
            cols: names.iter().map(|n| column(n.as_ref(), realtime)).collect(),
            realtime,
        }
    }

    pub fn standard_default() -> Self {
        CfLayout::new(&STANDARD_FIELDS, false)
    }

    pub fn realtime_default() -> Self {
        CfLayout::new(&REALTIME_FIELDS, true)
    }

    pub fn parse(&self, line: &str, ev: &mut Fields) -> Result<(), String> {
        aws_common(ev, "aws.cloudfront_logs");
        set_str(ev, "event.category", "web");
        set_str(ev, "event.type", "access");
        let mut date = None;
        let mut tm = None;
        let mut proto = None;
        let mut host = None;
        let mut stem = None;
        let mut query = None;
        let mut ncols = 0;
        for (col, raw) in self.cols.iter().zip(line.split('\t')) {
            ncols += 1;
            let raw = raw.trim_end_matches(' ');
            if is_null(raw) {
                continue;
            }
            match col {
                Col::Date => date = Some(raw),
                Col::Time => tm = Some(raw),
                Col::EpochTimestamp => {
                    let ts = time::parse_epoch_secs(raw)
                        .ok_or_else(|| format!("timestamp: invalid epoch: {}", clip(raw)))?;
                    set_ts(ev, "@timestamp", ts);
                }
                Col::Str(p) => set_str(ev, *p, raw),
                Col::Decoded(p) => set_str(ev, *p, &pct_decode(raw)),
                Col::Int(p) => set_int(ev, *p, raw, p)?,
                Col::Float(p) => set_float(ev, *p, raw, p, false)?,
                Col::CIp => set_addr(ev, "source", raw),
                Col::CPort => set_int(ev, "source.port", raw, "c-port")?,
                Col::Status => {
                    if raw == "000" {
                        set_str(ev, "event.outcome", "failure");
                    } else {
                        let code = parse_i64(raw)
                            .ok_or_else(|| format!("sc-status: not an integer: {}", clip(raw)))?;
                        set(ev, "http.response.status_code", Value::from(code));
                        set_str(
                            ev,
                            "event.outcome",
                            if code >= 400 { "failure" } else { "success" },
                        );
                    }
                }
                Col::UriStem => {
                    set_str(ev, "url.path", raw);
                    stem = Some(raw);
                }
                Col::RtUri => {
                    set_str(ev, "url.original", raw);
                    let p = url_parts(raw);
                    if let Some(path) = p.path {
                        set_str(ev, "url.path", path);
                    }
                    if let Some(q) = p.query {
                        set_str(ev, "url.query", q);
                    }
                }
                Col::Query => {
                    set_str(ev, "url.query", raw);
                    query = Some(raw);
                }
                Col::XHost => {
                    set_str(ev, "destination.address", raw);
                    set_str(ev, "destination.domain", raw);
                    host = Some(raw);
                }
                Col::Protocol => {
                    set_str(ev, "network.protocol", raw);
                    proto = Some(raw);
                }
                Col::TimeTaken => {
                    let secs: f64 = raw
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v < 1e9)
                        .ok_or_else(|| format!("time-taken: not a number: {}", clip(raw)))?;
                    set(
                        ev,
                        "event.duration",
                        Value::from((secs * 1e9).round() as i64),
                    );
                }
                Col::ForwardedFor => forwarded_for(ev, raw),
                Col::SslProtocol => set_tls_version(ev, raw),
                Col::SslCipher => set_str(ev, "tls.cipher", raw),
                Col::ProtocolVersion => {
                    set_str(ev, "http.version", raw.strip_prefix("HTTP/").unwrap_or(raw))
                }
                Col::RequestId => {
                    set_str(ev, "http.request.id", raw);
                    set_str(ev, "event.id", raw);
                }
                Col::Asn => set_int(ev, "source.as.number", raw, "asn")?,
                Col::Other(p) => set_str(ev, p.clone(), &pct_decode(raw)),
            }
        }
        if ncols < 2 {
            return Err("not a TAB-separated CloudFront record".into());
        }
        if !self.realtime {
            match (date, tm) {
                (Some(d), Some(t)) => {
                    let ts = time::parse_date_time(d, t)
                        .ok_or_else(|| format!("date/time: invalid: {} {}", clip(d), clip(t)))?;
                    set_ts(ev, "@timestamp", ts);
                }
                (None, None) => {}
                _ => return Err("date/time: one of the two is missing".into()),
            }
            if let (Some(p), Some(h), Some(s)) = (proto, host, stem) {
                let mut full = format!("{p}://{h}{s}");
                if let Some(q) = query {
                    full.push('?');
                    full.push_str(q);
                }
                set(ev, "url.full", Value::String(full));
            }
        }
        Ok(())
    }
}

/// `x-forwarded-for`: a comma list (`a,b`, `a, b`, even `a,\x20b`); IP entries go to
/// `network.forwarded_ip`; if any entry is not an IP the raw value is kept in
/// `aws.cloudfront.x_forwarded_for`.
fn forwarded_for(ev: &mut Fields, raw: &str) {
    let decoded = pct_decode(raw);
    let cleaned = decoded.replace("\\x20", " ");
    let mut ips = Vec::new();
    let mut all_ip = true;
    for part in cleaned.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if is_ip(p) {
            ips.push(Value::String(p.to_owned()));
        } else {
            all_ip = false;
        }
    }
    if !ips.is_empty() {
        set(ev, "network.forwarded_ip", Value::Array(ips));
    }
    if !all_ip {
        set_str(ev, "aws.cloudfront.x_forwarded_for", &decoded);
    }
}

/// `#Fields: a b c` → the names.
pub(crate) fn fields_header(line: &str) -> Option<Vec<String>> {
    let rest = line.strip_prefix("#Fields:")?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}
