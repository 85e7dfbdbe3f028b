//! JSON-shaped AWS logs: CloudTrail records and WAF web ACL logs.

use serde_json::{Map, Value};

use crate::time;
use crate::util::*;
use crate::Event;

/// `camelCase` / `sourceIPAddress` → `snake_case` / `source_ip_address`.
pub(crate) fn camel_to_snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == ' ' || c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

fn str_of(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// `@timestamp` from a JSON string (ISO) or number (epoch).
fn set_time_value(ev: &mut Fields, path: &'static str, v: &Value) -> bool {
    let ts = match v {
        Value::String(s) => time::parse_any(s, 0),
        Value::Number(n) => n.as_f64().and_then(time::from_epoch_number),
        _ => None,
    };
    match ts {
        Some(ts) => {
            set_ts(ev, path, ts);
            true
        }
        None => false,
    }
}

/// Serialized JSON text plus the object under `flattened`.
fn set_json_pair(ev: &mut Fields, name: &str, v: Value) {
    if v.is_null() {
        return;
    }
    let text = serde_json::to_string(&v).unwrap_or_default();
    set(ev, format!("aws.cloudtrail.{name}"), Value::String(text));
    if v.is_object() {
        set(ev, format!("aws.cloudtrail.flattened.{name}"), v);
    }
}

fn map_user_identity(ev: &mut Fields, ui: Map<String, Value>) {
    for (k, v) in ui {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "type" => set(ev, "aws.cloudtrail.user_identity.type", v),
            "principalId" => set(ev, "user.id", v),
            "arn" => set(ev, "aws.cloudtrail.user_identity.arn", v),
            "accountId" => set(ev, "cloud.account.id", v),
            "accessKeyId" => set(ev, "aws.cloudtrail.user_identity.access_key_id", v),
            "userName" => {
                if ev.get("user.name").is_none() {
                    set(ev, "user.name", v);
                }
            }
            "invokedBy" => set(ev, "aws.cloudtrail.user_identity.invoked_by", v),
            "sessionContext" => {
                let Value::Object(sc) = v else { continue };
                for (sk, sv) in sc {
                    match (sk.as_str(), sv) {
                        ("sessionIssuer", Value::Object(issuer)) => {
                            for (ik, iv) in issuer {
                                if iv.is_null() {
                                    continue;
                                }
                                if ik == "userName" {
                                    // The role name wins over an IAM user name.
                                    set(ev, "user.name", iv.clone());
                                }
                                set(
                                    ev,
                                    format!(
                                        "aws.cloudtrail.user_identity.session_context.session_issuer.{}",
                                        camel_to_snake(&ik)
                                    ),
                                    iv,
                                );
                            }
                        }
                        ("attributes", Value::Object(attrs)) => {
                            for (ak, av) in attrs {
                                if av.is_null() {
                                    continue;
                                }
                                set(
                                    ev,
                                    format!(
                                        "aws.cloudtrail.user_identity.session_context.{}",
                                        camel_to_snake(&ak)
                                    ),
                                    av,
                                );
                            }
                        }
                        (_, Value::Null) => {}
                        (other, sv) => set(
                            ev,
                            format!(
                                "aws.cloudtrail.user_identity.session_context.{}",
                                camel_to_snake(other)
                            ),
                            sv,
                        ),
                    }
                }
            }
            other => set(
                ev,
                format!("aws.cloudtrail.user_identity.{}", camel_to_snake(other)),
                v,
            ),
        }
    }
}

/// Event category/type for a few well-known API calls.
fn categorize(ev: &mut Fields, name: &str) {
    let (cat, ty): (&str, &[&str]) = match name {
        "ConsoleLogin"
        | "AssumeRole"
        | "AssumeRoleWithSAML"
        | "AssumeRoleWithWebIdentity"
        | "GetSessionToken"
        | "GetFederationToken" => ("authentication", &["info"]),
        "CreateUser" => ("iam", &["user", "creation"]),
        "DeleteUser" => ("iam", &["user", "deletion"]),
        "CreateGroup" => ("iam", &["group", "creation"]),
        "DeleteGroup" => ("iam", &["group", "deletion"]),
        "AddUserToGroup" | "RemoveUserFromGroup" => ("iam", &["group", "change"]),
        "CreateRole" => ("iam", &["creation"]),
        "DeleteRole" => ("iam", &["deletion"]),
        _ => return,
    };
    set(ev, "event.category", Value::Array(vec![cat.into()]));
    set(
        ev,
        "event.type",
        Value::Array(ty.iter().map(|t| Value::String((*t).to_owned())).collect()),
    );
}

/// Map one CloudTrail record (an element of `Records`) to an event.
pub(crate) fn map_cloudtrail(
    rec: Map<String, Value>,
    keep_original: bool,
) -> Result<Event, String> {
    let mut ev = Fields::new();
    if keep_original {
        let text = serde_json::to_string(&rec).unwrap_or_default();
        set(&mut ev, "event.original", Value::String(text));
    }
    aws_common(&mut ev, "aws.cloudtrail");
    let mut had_error = false;
    let mut has_time = false;
    let mut event_name: Option<String> = None;
    for (k, v) in rec {
        match k.as_str() {
            "eventTime" => {
                has_time = set_time_value(&mut ev, "@timestamp", &v);
                if !has_time {
                    return Err(format!("eventTime: invalid timestamp: {v}"));
                }
            }
            "eventVersion" => set(&mut ev, "aws.cloudtrail.event_version", v),
            "userIdentity" => match v {
                Value::Object(ui) => map_user_identity(&mut ev, ui),
                Value::Null => {}
                other => set(&mut ev, "aws.cloudtrail.user_identity.raw", other),
            },
            "eventSource" => set(&mut ev, "event.provider", v),
            "eventName" => {
                event_name = v.as_str().map(str::to_owned);
                set(&mut ev, "event.action", v);
            }
            "awsRegion" => set(&mut ev, "cloud.region", v),
            "sourceIPAddress" => {
                if let Some(s) = str_of(&v) {
                    set_addr(&mut ev, "source", s);
                }
            }
            "userAgent" => set(&mut ev, "user_agent.original", v),
            "errorCode" => {
                had_error = !v.is_null();
                set(&mut ev, "aws.cloudtrail.error_code", v);
            }
            "errorMessage" => set(&mut ev, "aws.cloudtrail.error_message", v),
            "requestParameters" => set_json_pair(&mut ev, "request_parameters", v),
            "responseElements" => set_json_pair(&mut ev, "response_elements", v),
            "additionalEventData" => set_json_pair(&mut ev, "additional_eventdata", v),
            "serviceEventDetails" => set_json_pair(&mut ev, "service_event_details", v),
            "requestID" => set(&mut ev, "aws.cloudtrail.request_id", v),
            "eventID" => set(&mut ev, "event.id", v),
            "eventType" => set(&mut ev, "aws.cloudtrail.event_type", v),
            "resources" => {
                let Value::Array(items) = v else { continue };
                let mapped: Vec<Value> = items
                    .into_iter()
                    .map(|item| match item {
                        Value::Object(m) => Value::Object(
                            m.into_iter()
                                .map(|(rk, rv)| (camel_to_snake(&rk), rv))
                                .collect(),
                        ),
                        other => other,
                    })
                    .collect();
                set(&mut ev, "aws.cloudtrail.resources", Value::Array(mapped));
            }
            "insightDetails" => {
                if event_name.is_none() {
                    if let Some(n) = v.get("eventName").and_then(Value::as_str) {
                        set_str(&mut ev, "event.action", n);
                    }
                }
                set(&mut ev, "aws.cloudtrail.insight_details", v);
            }
            "tlsDetails" => {
                let Value::Object(t) = v else { continue };
                for (tk, tv) in t {
                    match (tk.as_str(), tv.as_str()) {
                        ("tlsVersion", Some(s)) => set_tls_version(&mut ev, s),
                        ("cipherSuite", Some(s)) => set_str(&mut ev, "tls.cipher", s),
                        _ => {}
                    }
                    if !tv.is_null() {
                        set(
                            &mut ev,
                            format!("aws.cloudtrail.tls_details.{}", camel_to_snake(&tk)),
                            tv,
                        );
                    }
                }
            }
            "addendum" => {
                let Value::Object(a) = v else { continue };
                for (ak, av) in a {
                    let name = match ak.as_str() {
                        "originalRequestID" => "original_request_id".to_owned(),
                        "originalEventID" => "original_event_id".to_owned(),
                        other => camel_to_snake(other),
                    };
                    set(&mut ev, format!("aws.cloudtrail.addendum.{name}"), av);
                }
            }
            _ if v.is_null() => {}
            other => set(
                &mut ev,
                format!("aws.cloudtrail.{}", camel_to_snake(other)),
                v,
            ),
        }
    }
    if !has_time {
        return Err("eventTime: missing".into());
    }
    set_str(
        &mut ev,
        "event.outcome",
        if had_error { "failure" } else { "success" },
    );
    if let Some(n) = &event_name {
        categorize(&mut ev, n);
    }
    if let Some(Value::String(u)) = ev.get("user.name").cloned() {
        set(
            &mut ev,
            "related.user",
            Value::Array(vec![Value::String(u)]),
        );
    }
    Ok(ev.build())
}

/// The records of a CloudTrail document: `{"Records":[...]}` or one bare record.
pub(crate) fn cloudtrail_records(doc: Value) -> Result<Vec<Map<String, Value>>, String> {
    match doc {
        Value::Object(mut m) => match m.remove("Records") {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|r| match r {
                    Value::Object(o) => Ok(o),
                    _ => Err("Records element is not an object".to_owned()),
                })
                .collect(),
            Some(_) => Err("Records is not an array".into()),
            None if m.contains_key("eventTime") || m.contains_key("eventVersion") => Ok(vec![m]),
            None if m.contains_key("digestStartTime") => {
                Err("a CloudTrail digest file, not a log file".into())
            }
            None => Err("not a CloudTrail record or {\"Records\":[...]} document".into()),
        },
        _ => Err("CloudTrail document is not a JSON object".into()),
    }
}

/// AWS WAF log record (one JSON object per line).
pub(crate) fn map_waf(rec: Map<String, Value>, ev: &mut Fields) -> Result<(), String> {
    aws_common(ev, "aws.waf");
    set_str(ev, "event.category", "web");
    let mut has_time = false;
    for (k, v) in rec {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "timestamp" => {
                let ts = v
                    .as_i64()
                    .and_then(time::Ts::from_millis)
                    .ok_or_else(|| format!("timestamp: not epoch milliseconds: {v}"))?;
                set_ts(ev, "@timestamp", ts);
                has_time = true;
            }
            "webaclId" => {
                if let Some(arn) = v.as_str() {
                    let parts: Vec<&str> = arn.splitn(6, ':').collect();
                    if parts.len() == 6 && parts[0] == "arn" {
                        if !parts[3].is_empty() {
                            set_str(ev, "cloud.region", parts[3]);
                        }
                        if !parts[4].is_empty() {
                            set_str(ev, "cloud.account.id", parts[4]);
                        }
                    }
                }
                set(ev, "aws.waf.webacl_id", v);
            }
            "terminatingRuleId" => {
                set(ev, "rule.id", v.clone());
                set(ev, "aws.waf.terminating_rule_id", v);
            }
            "action" => {
                if let Some(a) = v.as_str() {
                    set_str(ev, "event.action", &a.to_ascii_lowercase());
                    let ty = match a {
                        "ALLOW" => Some("allowed"),
                        "BLOCK" => Some("denied"),
                        _ => None,
                    };
                    if let Some(t) = ty {
                        set(ev, "event.type", Value::Array(vec![t.into()]));
                    }
                }
                set(ev, "aws.waf.action", v);
            }
            "httpSourceName" => set(ev, "aws.waf.source.name", v),
            "httpSourceId" => set(ev, "aws.waf.source.id", v),
            "httpRequest" => {
                let Value::Object(req) = v else { continue };
                map_waf_request(ev, req);
            }
            other => set(ev, format!("aws.waf.{}", camel_to_snake(other)), v),
        }
    }
    if !has_time {
        return Err("timestamp: missing".into());
    }
    Ok(())
}

fn map_waf_request(ev: &mut Fields, req: Map<String, Value>) {
    for (k, v) in req {
        if v.is_null() {
            continue;
        }
        match (k.as_str(), v) {
            ("clientIp", Value::String(ip)) => set_addr(ev, "source", &ip),
            ("country", v) => set(ev, "source.geo.country_iso_code", v),
            ("uri", v) => set(ev, "url.path", v),
            ("args", Value::String(a)) => {
                if !a.is_empty() {
                    set_str(ev, "url.query", &a);
                }
            }
            ("httpVersion", Value::String(h)) => {
                set_str(ev, "http.version", h.strip_prefix("HTTP/").unwrap_or(&h))
            }
            ("httpMethod", v) => set(ev, "http.request.method", v),
            ("requestId", v) => set(ev, "http.request.id", v),
            ("headers", Value::Array(headers)) => {
                let mut map = Map::new();
                for h in headers {
                    let (Some(name), Some(value)) = (
                        h.get("name").and_then(Value::as_str),
                        h.get("value").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let name = name.to_ascii_lowercase();
                    match name.as_str() {
                        "host" => set_str(ev, "url.domain", value),
                        "user-agent" => set_str(ev, "user_agent.original", value),
                        _ => {}
                    }
                    match map.get_mut(&name) {
                        Some(Value::String(prev)) => {
                            prev.push_str(", ");
                            prev.push_str(value);
                        }
                        _ => {
                            map.insert(name, Value::String(value.to_owned()));
                        }
                    }
                }
                set(ev, "aws.waf.request.headers", Value::Object(map));
            }
            (other, v) => set(ev, format!("aws.waf.request.{}", camel_to_snake(other)), v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::camel_to_snake;

    #[test]
    fn snake() {
        assert_eq!(camel_to_snake("requestID"), "request_id");
        assert_eq!(camel_to_snake("sourceIPAddress"), "source_ip_address");
        assert_eq!(camel_to_snake("vpcEndpointId"), "vpc_endpoint_id");
        assert_eq!(camel_to_snake("ARN"), "arn");
        assert_eq!(camel_to_snake("accountId"), "account_id");
    }
}
