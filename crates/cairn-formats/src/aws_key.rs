//! AWS S3 object key layouts (AWS-LOGS.md §9) and deterministic document ids (§0.3).
//!
//! [`parse_key`] reads what an object key tells about its records: the log kind, the
//! account, region, load balancer / distribution / flow log id, and the date parts of
//! the path (delivery dates or window stamps: prune time ranges with a margin).

use sha2::{Digest, Sha256};

use crate::Format;

/// What kind of AWS log an object key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsLogKind {
    Alb,
    Nlb,
    Clb,
    /// `AWSLogs/{account}/ELBAccessLogTestFile`: skip the object.
    ElbTestFile,
    VpcFlow,
    CloudTrail,
    /// `CloudTrail-Digest/`: integrity digests, not events.
    CloudTrailDigest,
    /// `CloudTrail-Insight/`: same shape as CloudTrail.
    CloudTrailInsight,
    S3Access,
    CloudFront,
}

impl AwsLogKind {
    /// The parser for objects of this kind (`None`: skip the object).
    pub fn format(self) -> Option<Format> {
        Some(match self {
            AwsLogKind::Alb => Format::AwsAlb,
            AwsLogKind::Nlb => Format::AwsNlb,
            AwsLogKind::Clb => Format::AwsClb,
            AwsLogKind::VpcFlow => Format::AwsVpcflow,
            AwsLogKind::CloudTrail | AwsLogKind::CloudTrailInsight => Format::AwsCloudtrail,
            AwsLogKind::S3Access => Format::AwsS3Access,
            AwsLogKind::CloudFront => Format::AwsCloudfront,
            AwsLogKind::ElbTestFile | AwsLogKind::CloudTrailDigest => return None,
        })
    }
}

/// A calendar date from a key's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDate {
    pub year: u32,
    pub month: u32,
    pub day: u32,
}

/// What an object key tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKeyInfo {
    pub kind: AwsLogKind,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// Organization id of an organization trail (`o-…`).
    pub org_id: Option<String>,
    /// ALB/NLB resource id as in the records (`app/{name}/{hex}`), or the CLB name.
    pub load_balancer: Option<String>,
    /// ELB node address from the file name (ALB, CLB).
    pub node_ip: Option<String>,
    pub distribution_id: Option<String>,
    pub flow_log_id: Option<String>,
    /// S3 access logs, partitioned layout: the bucket the records are about.
    pub source_bucket: Option<String>,
    /// Date directories (`yyyy/mm/dd`, `year=…/month=…/day=…`): delivery date.
    pub date: Option<KeyDate>,
    /// Time stamp in the file name as RFC 3339 (ELB/VPC window end, CloudTrail and S3
    /// delivery time, CloudFront hour).
    pub stamp: Option<String>,
}

impl AwsKeyInfo {
    fn new(kind: AwsLogKind) -> Self {
        AwsKeyInfo {
            kind,
            account_id: None,
            region: None,
            org_id: None,
            load_balancer: None,
            node_ip: None,
            distribution_id: None,
            flow_log_id: None,
            source_bucket: None,
            date: None,
            stamp: None,
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

fn date_of(y: &str, m: &str, d: &str) -> Option<KeyDate> {
    if y.len() != 4
        || !all_digits(y)
        || !all_digits(m)
        || !all_digits(d)
        || m.len() > 2
        || d.len() > 2
    {
        return None;
    }
    let date = KeyDate {
        year: y.parse().ok()?,
        month: m.parse().ok()?,
        day: d.parse().ok()?,
    };
    ((1..=12).contains(&date.month) && (1..=31).contains(&date.day)).then_some(date)
}

/// `YYYYMMDDTHHMMZ` (also with a glued suffix) → RFC 3339.
fn compact_stamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    if !all_digits(&s[..8]) || !all_digits(&s[9..13]) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:00.000Z",
        &s[..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13]
    ))
}

/// `YYYY-MM-DD-HH[-MM-SS]` → RFC 3339.
fn dashed_stamp(s: &str) -> Option<String> {
    let p: Vec<&str> = s.split('-').collect();
    if p.len() < 4 || p[0].len() != 4 || !p.iter().all(|x| all_digits(x)) {
        return None;
    }
    if p[1..].iter().any(|x| x.len() != 2) {
        return None;
    }
    let mm = p.get(4).copied().unwrap_or("00");
    let ss = p.get(5).copied().unwrap_or("00");
    Some(format!(
        "{}-{}-{}T{}:{}:{}.000Z",
        p[0], p[1], p[2], p[3], mm, ss
    ))
}

/// Parse an S3 object key (or a local path that mirrors one). `None` when the key
/// matches no known layout.
pub fn parse_key(key: &str) -> Option<AwsKeyInfo> {
    let key = key.strip_prefix("s3://").unwrap_or(key);
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let file = *segs.last()?;
    if let Some(pos) = segs.iter().rposition(|s| *s == "AWSLogs") {
        return parse_awslogs(&segs[pos + 1..], file);
    }
    // CloudFront: `{dist-id}.{YYYY-MM-DD-HH}.{unique}.gz`
    let dots: Vec<&str> = file.split('.').collect();
    if dots.len() >= 3 && !dots[0].is_empty() && dots[0].bytes().all(|c| c.is_ascii_alphanumeric())
    {
        if let Some(stamp) = dashed_stamp(dots[1]).filter(|_| dots[1].len() == 13) {
            let mut info = AwsKeyInfo::new(AwsLogKind::CloudFront);
            info.distribution_id = Some(dots[0].to_owned());
            info.stamp = Some(stamp);
            info.date = date_of(&dots[1][..4], &dots[1][5..7], &dots[1][8..10]);
            return Some(info);
        }
    }
    // S3 server access: `YYYY-mm-DD-HH-MM-SS-{unique}`, possibly after a prefix glued
    // to the name (TargetPrefix without `/`).
    let s3_name = (0..file.len().saturating_sub(19))
        .filter(|&i| file.is_char_boundary(i))
        .find_map(|i| {
            let cand = &file[i..];
            let stamp_part = cand.get(..19)?;
            let rest = cand.get(19..)?;
            if !rest.starts_with('-') || rest.len() < 2 {
                return None;
            }
            dashed_stamp(stamp_part).map(|s| (s, stamp_part))
        });
    if let Some((stamp, part)) = s3_name {
        let mut info = AwsKeyInfo::new(AwsLogKind::S3Access);
        info.stamp = Some(stamp);
        info.date = date_of(&part[..4], &part[5..7], &part[8..10]);
        // Partitioned: {acct}/{region}/{bucket}/{y}/{m}/{d}/{file}
        if segs.len() >= 7 {
            let n = segs.len();
            let (acct, region, bucket) = (segs[n - 7], segs[n - 6], segs[n - 5]);
            if acct.len() == 12 && all_digits(acct) {
                info.account_id = Some(acct.to_owned());
                info.region = Some(region.to_owned());
                info.source_bucket = Some(bucket.to_owned());
                if let Some(d) = date_of(segs[n - 4], segs[n - 3], segs[n - 2]) {
                    info.date = Some(d);
                }
            }
        }
        return Some(info);
    }
    None
}

fn parse_awslogs(after: &[&str], file: &str) -> Option<AwsKeyInfo> {
    let mut segs = after;
    // Hive-style VPC layout.
    if segs
        .first()
        .is_some_and(|s| s.starts_with("aws-account-id="))
    {
        let mut info = AwsKeyInfo::new(AwsLogKind::VpcFlow);
        let (mut y, mut m, mut d) = (None, None, None);
        for s in segs {
            if let Some((k, v)) = s.split_once('=') {
                match k {
                    "aws-account-id" => info.account_id = Some(v.to_owned()),
                    "aws-region" => info.region = Some(v.to_owned()),
                    "aws-service" if v != "vpcflowlogs" => return None,
                    "year" => y = Some(v),
                    "month" => m = Some(v),
                    "day" => d = Some(v),
                    _ => {}
                }
            }
        }
        if let (Some(y), Some(m), Some(d)) = (y, m, d) {
            info.date = date_of(y, m, d);
        }
        fill_from_file(&mut info, file);
        return Some(info);
    }
    let mut org = None;
    if segs.len() >= 2 && segs[0].starts_with("o-") && all_digits(segs[1]) {
        org = Some(segs[0].to_owned());
        segs = &segs[1..];
    }
    let account = segs.first()?;
    if segs.get(1) == Some(&"ELBAccessLogTestFile") {
        let mut info = AwsKeyInfo::new(AwsLogKind::ElbTestFile);
        info.account_id = Some((*account).to_owned());
        return Some(info);
    }
    let service = segs.get(1)?;
    let kind = match *service {
        "elasticloadbalancing" => {
            let parts: Vec<&str> = file.split('_').collect();
            match parts.get(3) {
                Some(p) if p.starts_with("app.") => AwsLogKind::Alb,
                Some(p) if p.starts_with("net.") => AwsLogKind::Nlb,
                Some(_) => AwsLogKind::Clb,
                None => return None,
            }
        }
        "vpcflowlogs" => AwsLogKind::VpcFlow,
        "CloudTrail" => AwsLogKind::CloudTrail,
        "CloudTrail-Digest" => AwsLogKind::CloudTrailDigest,
        "CloudTrail-Insight" => AwsLogKind::CloudTrailInsight,
        _ => return None,
    };
    let mut info = AwsKeyInfo::new(kind);
    info.org_id = org;
    info.account_id = Some((*account).to_owned());
    info.region = segs.get(2).map(|s| (*s).to_owned());
    if let (Some(y), Some(m), Some(d)) = (segs.get(3), segs.get(4), segs.get(5)) {
        info.date = date_of(y, m, d);
    }
    fill_from_file(&mut info, file);
    Some(info)
}

/// Fields from the `_`-separated file name.
fn fill_from_file(info: &mut AwsKeyInfo, file: &str) {
    let parts: Vec<&str> = file.split('_').collect();
    if parts.len() < 4 {
        return;
    }
    if info.account_id.is_none() && all_digits(parts[0]) {
        info.account_id = Some(parts[0].to_owned());
    }
    if info.region.is_none() {
        info.region = Some(parts[2].to_owned());
    }
    match info.kind {
        AwsLogKind::Alb | AwsLogKind::Nlb => {
            info.load_balancer = Some(parts[3].replacen('.', "/", 2));
            info.stamp = parts.get(4).and_then(|s| compact_stamp(s));
            if info.kind == AwsLogKind::Alb && parts.len() >= 7 {
                info.node_ip = Some(parts[5].to_owned());
            }
        }
        AwsLogKind::Clb => {
            info.load_balancer = Some(parts[3].to_owned());
            info.stamp = parts.get(4).and_then(|s| compact_stamp(s));
            if parts.len() >= 7 {
                info.node_ip = Some(parts[5].to_owned());
            }
        }
        AwsLogKind::VpcFlow => {
            info.flow_log_id = Some(parts[3].to_owned());
            info.stamp = parts.get(4).and_then(|s| compact_stamp(s));
        }
        AwsLogKind::CloudTrail | AwsLogKind::CloudTrailDigest | AwsLogKind::CloudTrailInsight => {
            info.stamp = compact_stamp(parts[3]);
        }
        _ => {}
    }
}

/// Deterministic document id for a text-log line: a hash of the source identity
/// (object key or file path), its version (S3 ETag, or a content fingerprint of a local
/// file — a rewritten object must not reuse ids) and the line's byte offset in the
/// decompressed stream. 32 lowercase hex digits (128 bits of SHA-256).
/// CloudTrail records use their `eventID` instead.
pub fn document_id(source: &str, version: &str, offset: u64) -> String {
    let mut h = Sha256::new();
    h.update((source.len() as u64).to_le_bytes());
    h.update(source.as_bytes());
    h.update((version.len() as u64).to_le_bytes());
    h.update(version.as_bytes());
    h.update(offset.to_le_bytes());
    hex(&h.finalize()[..16])
}

/// A content fingerprint for a local file's version: SHA-256 of its first bytes (the
/// caller picks how many, e.g. 64 KiB) and its length. 32 hex digits.
pub fn content_fingerprint(head: &[u8], total_len: u64) -> String {
    let mut h = Sha256::new();
    h.update(total_len.to_le_bytes());
    h.update(head);
    hex(&h.finalize()[..16])
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}
