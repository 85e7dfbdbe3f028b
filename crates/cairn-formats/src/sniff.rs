//! Format detection for `auto`: content first, then the file name.

use serde_json::Value;

use crate::{time, Format};

fn is_clf_access(line: &str) -> bool {
    let Some(open) = line.find('[') else {
        return false;
    };
    let Some(close) = line[open..].find(']') else {
        return false;
    };
    time::parse_clf(&line[open + 1..open + close], 0).is_some()
        && line[open + close + 1..].trim_start().starts_with('"')
}

fn is_logfmt(line: &str) -> bool {
    let pairs = line
        .split_whitespace()
        .filter(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
            })
        })
        .count();
    pairs >= 2
}

fn from_json(line: &str, all: &[&str]) -> Option<Format> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Some(
            if m.contains_key("Records")
                || (m.contains_key("eventVersion") && m.contains_key("eventSource"))
            {
                Format::AwsCloudtrail
            } else if m.contains_key("webaclId") && m.contains_key("httpRequest") {
                Format::AwsWaf
            } else if m.get("log").is_some_and(Value::is_string)
                && (m.contains_key("stream") || m.contains_key("time") || m.len() == 1)
            {
                Format::Docker
            } else {
                Format::Json
            },
        ),
        // A pretty-printed document (CloudTrail objects are).
        _ if line.trim() == "{" => {
            if all
                .iter()
                .any(|l| l.contains("\"Records\"") || l.contains("\"eventVersion\""))
            {
                Some(Format::AwsCloudtrail)
            } else {
                Some(Format::Json)
            }
        }
        _ => None,
    }
}

/// Guess from one content line (`None`: undecided, try the next line).
fn from_line(line: &str, all: &[&str], name_hint: Option<Format>) -> Option<Format> {
    let t = line.trim_end();
    if t.trim().is_empty() || t.starts_with("Enable AccessLog for ELB:") {
        return None;
    }
    if let Some(fields) = t.strip_prefix("#Fields:") {
        return Some(
            if fields.contains("x-edge-location") || fields.contains("x-edge-request-id") {
                Format::AwsCloudfront
            } else {
                Format::Iis
            },
        );
    }
    if t.starts_with("#Software: Microsoft Internet Information Services") {
        return Some(Format::Iis);
    }
    if t.starts_with('#') {
        return None;
    }
    if t.starts_with('{') {
        return from_json(t, all);
    }
    let toks: Vec<&str> = t.split_ascii_whitespace().collect();
    let first = toks.first().copied().unwrap_or("");
    let second = toks.get(1).copied().unwrap_or("");
    let third = toks.get(2).copied().unwrap_or("");
    // VPC header / record.
    if first == "version" && (t.contains("account-id") || t.contains("srcaddr")) {
        return Some(Format::AwsVpcflow);
    }
    if toks.len() == 14 && first == "2" && third.starts_with("eni-") {
        return Some(Format::AwsVpcflow);
    }
    if matches!(first, "http" | "https" | "h2" | "grpcs" | "ws" | "wss")
        && time::parse_iso(second, 0).is_some()
    {
        return Some(Format::AwsAlb);
    }
    if first == "tls" && matches!(second, "1.0" | "2.0") {
        return Some(Format::AwsNlb);
    }
    if time::parse_iso(first, 0).is_some() {
        if matches!(second, "stdout" | "stderr")
            && matches!(third.split(':').next(), Some("P" | "F"))
        {
            return Some(Format::Cri);
        }
        if third.contains(':') && toks.len() >= 12 {
            return Some(Format::AwsClb);
        }
    }
    // CloudFront W3C record without its header.
    let tabs: Vec<&str> = t.split('\t').collect();
    if tabs.len() >= 20
        && time::parse_date_time(tabs[0], tabs.get(1).copied().unwrap_or("")).is_some()
    {
        return Some(Format::AwsCloudfront);
    }
    if first.len() == 64 && first.bytes().all(|c| c.is_ascii_hexdigit()) && third.starts_with('[') {
        return Some(Format::AwsS3Access);
    }
    if let Some(r) = t.strip_prefix('<') {
        if r.find('>')
            .is_some_and(|i| i <= 3 && r[..i].bytes().all(|c| c.is_ascii_digit()))
        {
            return Some(Format::Syslog);
        }
    }
    if t.len() > 21
        && time::parse_iso(&t[..19], 0).is_some()
        && t.as_bytes()[4] == b'/'
        && t[19..].trim_start().starts_with('[')
    {
        return Some(Format::NginxError);
    }
    if t.starts_with('[') && t.len() > 30 {
        if let Some(close) = t.find(']') {
            let inner = &t[1..close];
            if inner.split_whitespace().count() == 5
                && time::month(inner.split_whitespace().nth(1).unwrap_or("")).is_some()
            {
                return Some(Format::ApacheError);
            }
        }
    }
    if is_clf_access(t) {
        return Some(match name_hint {
            Some(Format::ApacheAccess) => Format::ApacheAccess,
            _ => Format::NginxAccess,
        });
    }
    if time::month(first).is_some()
        && second.parse::<u32>().is_ok()
        && time::parse_hms(third).is_some()
    {
        return Some(Format::Syslog);
    }
    if is_logfmt(t) {
        return Some(Format::Logfmt);
    }
    None
}

/// Guess from the file name / S3 key alone.
fn from_name(name: &str) -> Option<Format> {
    if let Some(info) = crate::aws_key::parse_key(name) {
        if let Some(f) = info.kind.format() {
            return Some(f);
        }
    }
    let lower = name.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    if lower.contains("/var/log/pods/") || lower.contains("/var/log/containers/") {
        return Some(Format::Cri);
    }
    if base.ends_with("-json.log") {
        return Some(Format::Docker);
    }
    if base.starts_with("u_ex") {
        return Some(Format::Iis);
    }
    let has = |s: &str| lower.contains(s);
    if has("apache") || has("httpd") {
        return Some(if base.contains("error") {
            Format::ApacheError
        } else {
            Format::ApacheAccess
        });
    }
    if has("nginx") {
        return Some(if base.contains("error") {
            Format::NginxError
        } else {
            Format::NginxAccess
        });
    }
    if base.ends_with(".ndjson") || base.ends_with(".jsonl") {
        return Some(Format::Json);
    }
    if has("syslog") || base == "messages" {
        return Some(Format::Syslog);
    }
    None
}

/// Guess the format of a file from its name (or S3 key) and first lines. Content
/// decides when it is recognisable; the name breaks ties (nginx vs Apache access) and
/// decides when the content is not recognised. Returns [`Format::Auto`] when nothing
/// matches: callers then treat lines as plain `message` text.
pub fn sniff(file_name: Option<&str>, first_lines: &[&[u8]]) -> Format {
    let name_hint = file_name.and_then(from_name);
    let decoded: Vec<String> = first_lines
        .iter()
        .take(64)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let refs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    for line in &refs {
        if let Some(f) = from_line(line, &refs, name_hint) {
            return f;
        }
    }
    name_hint.unwrap_or(Format::Auto)
}
