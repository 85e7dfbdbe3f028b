//! VPC Flow Logs: default version-2 records and custom formats (from a header line in
//! S3 text objects, or configured).

use serde_json::Value;

use crate::time;
use crate::util::*;

/// The default (version 2) field order.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Field names AWS documents (v2–v8); a line starting with one is a header.
const KNOWN_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "resource-type",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
    "tgw-src-vpc-id",
    "tgw-dst-vpc-id",
    "tgw-src-subnet-id",
    "tgw-dst-subnet-id",
    "tgw-src-eni",
    "tgw-dst-eni",
    "tgw-src-az-id",
    "tgw-dst-az-id",
    "tgw-pair-attachment-id",
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "reject-reason",
];

/// Strip `${…}` around a configured field name.
pub(crate) fn clean_name(n: &str) -> &str {
    n.strip_prefix("${")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(n)
}

/// Is this line a header (its first token a known field name)?
pub(crate) fn header(line: &str) -> Option<Vec<String>> {
    let first = line.split_ascii_whitespace().next()?;
    let first = clean_name(first);
    if KNOWN_FIELDS.contains(&first) || first.starts_with("ecs-") {
        Some(
            line.split_ascii_whitespace()
                .map(|n| clean_name(n).to_owned())
                .collect(),
        )
    } else {
        None
    }
}

fn transport(proto: i64) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        132 => "sctp",
        _ => return None,
    })
}

fn snake(n: &str) -> String {
    n.replace('-', "_")
}

const TCP_FLAG_NAMES: [&str; 6] = ["fin", "syn", "rst", "psh", "ack", "urg"];

/// Parse one record with the given field names (`None` = default v2 format, which
/// requires exactly 14 tokens unless `lenient`).
pub(crate) fn parse_vpcflow(
    line: &str,
    fields: Option<&[String]>,
    ev: &mut Fields,
) -> Result<(), String> {
    let toks: Vec<&str> = line.split_ascii_whitespace().collect();
    let names: Vec<&str> = match fields {
        Some(f) => f.iter().map(String::as_str).collect(),
        None => {
            if toks.len() != DEFAULT_FIELDS.len() {
                return Err(format!(
                    "VPC flow line has {} fields; the default format has 14 (configure the custom format or keep the header line)",
                    toks.len()
                ));
            }
            DEFAULT_FIELDS.to_vec()
        }
    };
    if toks.len() < 2 {
        return Err("VPC flow line too short".into());
    }
    aws_common(ev, "aws.vpcflow");
    set_str(ev, "event.category", "network");
    let mut related = Vec::new();
    let mut action = None;
    for (name, &raw) in names.iter().zip(toks.iter()) {
        if is_null(raw) {
            continue;
        }
        match *name {
            "version" => set_int(ev, "aws.vpcflow.version", raw, "version")?,
            "account-id" => {
                if raw != "unknown" {
                    set_str(ev, "aws.vpcflow.account_id", raw);
                    set_str(ev, "cloud.account.id", raw);
                }
            }
            "srcaddr" | "dstaddr" => {
                let prefix = if *name == "srcaddr" {
                    "source"
                } else {
                    "destination"
                };
                set_addr(ev, prefix, raw);
                if is_ip(raw) {
                    related.push(Value::String(raw.to_owned()));
                    if *name == "srcaddr" {
                        let kind = if raw.contains(':') { "ipv6" } else { "ipv4" };
                        set_str(ev, "network.type", kind);
                    }
                }
            }
            "srcport" => set_int(ev, "source.port", raw, "srcport")?,
            "dstport" => set_int(ev, "destination.port", raw, "dstport")?,
            "protocol" => {
                let p = parse_i64(raw)
                    .ok_or_else(|| format!("protocol: not an integer: {}", clip(raw)))?;
                set_str(ev, "network.iana_number", raw);
                if let Some(t) = transport(p) {
                    set_str(ev, "network.transport", t);
                }
            }
            "packets" => {
                set_int(ev, "network.packets", raw, "packets")?;
                set_int(ev, "source.packets", raw, "packets")?;
            }
            "bytes" => {
                set_int(ev, "network.bytes", raw, "bytes")?;
                set_int(ev, "source.bytes", raw, "bytes")?;
            }
            "start" | "end" => {
                let ts = time::parse_epoch_secs(raw)
                    .ok_or_else(|| format!("{name}: invalid epoch seconds: {}", clip(raw)))?;
                if *name == "start" {
                    set_ts(ev, "event.start", ts);
                } else {
                    let s = ts.to_rfc3339();
                    set(ev, "event.end", Value::String(s.clone()));
                    set(ev, "@timestamp", Value::String(s));
                }
            }
            "action" => {
                set_str(ev, "aws.vpcflow.action", raw);
                action = Some(raw);
            }
            "log-status" => set_str(ev, "aws.vpcflow.log_status", raw),
            "instance-id" => {
                set_str(ev, "aws.vpcflow.instance_id", raw);
                set_str(ev, "cloud.instance.id", raw);
            }
            "tcp-flags" => {
                let f = parse_i64(raw)
                    .ok_or_else(|| format!("tcp-flags: not an integer: {}", clip(raw)))?;
                set(ev, "aws.vpcflow.tcp_flags", Value::from(f));
                let arr: Vec<Value> = TCP_FLAG_NAMES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| f & (1 << i) != 0)
                    .map(|(_, n)| Value::String((*n).to_owned()))
                    .collect();
                set(ev, "aws.vpcflow.tcp_flags_array", Value::Array(arr));
            }
            "region" => set_str(ev, "cloud.region", raw),
            "az-id" => set_str(ev, "cloud.availability_zone", raw),
            "flow-direction" => set_str(ev, "network.direction", raw),
            "traffic-path" => set_int(ev, "aws.vpcflow.traffic_path", raw, "traffic-path")?,
            "ecs-cluster-arn" => set_str(ev, "orchestrator.cluster.id", raw),
            "ecs-cluster-name" => set_str(ev, "orchestrator.cluster.name", raw),
            "ecs-container-id" => set_str(ev, "container.id", raw),
            "ecs-service-name" => set_str(ev, "service.name", raw),
            "reject-reason" => set_str(ev, "event.reason", raw),
            n if n.starts_with("packets-lost-") => {
                set_int(ev, format!("aws.vpcflow.{}", snake(n)), raw, n)?
            }
            other => set_str(ev, format!("aws.vpcflow.{}", snake(other)), raw),
        }
    }
    match action {
        Some("ACCEPT") => {
            set_str(ev, "event.outcome", "success");
            set_str(ev, "event.action", "accept");
            set(
                ev,
                "event.type",
                Value::Array(vec!["connection".into(), "allowed".into()]),
            );
        }
        Some("REJECT") => {
            set_str(ev, "event.outcome", "failure");
            set_str(ev, "event.action", "reject");
            set(
                ev,
                "event.type",
                Value::Array(vec!["connection".into(), "denied".into()]),
            );
        }
        _ => set(ev, "event.type", Value::Array(vec!["connection".into()])),
    }
    if !related.is_empty() {
        related.dedup();
        set(ev, "related.ip", Value::Array(related));
    }
    Ok(())
}
