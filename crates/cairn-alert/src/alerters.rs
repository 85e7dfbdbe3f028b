//! Alerters: where alerts go. Each reads its options from the rule's keys, with
//! ElastAlert's names and defaults, and carries the alert's idempotency key in the
//! receiver's own dedup field (an `Idempotency-Key` header on webhooks, PagerDuty's
//! `dedup_key`, Opsgenie's `alias`, the email `Message-ID`, `CAIRN_ALERT_ID` for
//! commands), so a resend after a crash can be dropped by the receiver.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::{opt_bool, opt_f64, opt_str, str_list, Rule};
use crate::error::{AlertError, Result};
use crate::format::percent_format;
use crate::runner::AlertDraft;
use crate::value::lookup;

/// Checks at load time that an alerter has what it needs.
pub fn validate(name: &str, m: &Map<String, Value>) -> Result<()> {
    let need = |k: &str| -> Result<()> {
        match m.get(k) {
            None | Some(Value::Null) => Err(AlertError::config(
                k,
                format!("required by the {name} alerter"),
            )),
            Some(_) => Ok(()),
        }
    };
    match name {
        "post" => need("http_post_url"),
        "post2" => need("http_post2_url"),
        "slack" => need("slack_webhook_url"),
        "email" => {
            need("email")?;
            str_list(m, "email").map(|_| ())
        }
        "command" => {
            need("command")?;
            if !matches!(
                m.get("command"),
                Some(Value::String(_)) | Some(Value::Array(_))
            ) {
                return Err(AlertError::config(
                    "command",
                    "expected a command line or a list of arguments",
                ));
            }
            Ok(())
        }
        "pagerduty" => need("pagerduty_service_key"),
        "opsgenie" => need("opsgenie_key"),
        "ms_teams" => need("ms_teams_webhook_url"),
        "ms_power_automate" => need("ms_power_automate_webhook_url"),
        "telegram" => {
            need("telegram_bot_token")?;
            need("telegram_room_id")
        }
        _ => Ok(()),
    }
}

/// Shared outbound HTTP client (rustls with the workspace's aws-lc-rs provider).
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AlertError::Transport(e.to_string()))
}

fn first_match(d: &AlertDraft) -> Map<String, Value> {
    d.matches
        .first()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The documents to post: the matches, or for a recovery notice a synthetic one.
fn payload_docs(d: &AlertDraft) -> Vec<Map<String, Value>> {
    if d.matches.is_empty() {
        let mut m = Map::new();
        m.insert("rule_name".into(), json!(d.rule_name));
        m.insert("alert_subject".into(), json!(d.subject));
        m.insert("alert_text".into(), json!(d.body));
        m.insert("resolved".into(), json!(d.recovery));
        if let Some(q) = &d.query_key {
            m.insert("query_key".into(), json!(q));
        }
        vec![m]
    } else {
        d.matches
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect()
    }
}

async fn post_json(
    client: &reqwest::Client,
    alerter: &str,
    url: &str,
    body: &Value,
    headers: &[(String, String)],
    timeout: Option<f64>,
) -> Result<()> {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json;charset=utf-8")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(t) = timeout.filter(|t| *t > 0.0) {
        req = req.timeout(Duration::from_secs_f64(t));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| AlertError::alerter(alerter, format!("POST {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(AlertError::alerter(
            alerter,
            format!(
                "POST {url}: HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ),
        ));
    }
    Ok(())
}

fn headers_of(m: &Map<String, Value>, key: &str) -> Vec<(String, String)> {
    m.get(key)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Renders every string of a post2 payload template as Jinja against the match.
fn render_template_value(v: &Value, ctx: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            let env = minijinja::Environment::new();
            match env.render_str(s, ctx) {
                Ok(r) => Value::String(r),
                Err(_) => v.clone(),
            }
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), render_template_value(v, ctx)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| render_template_value(v, ctx)).collect()),
        other => other.clone(),
    }
}

/// Sends one alert through one alerter (a single attempt; the engine retries).
pub async fn send(name: &str, rule: &Rule, d: &AlertDraft, client: &reqwest::Client) -> Result<()> {
    let m = &rule.raw;
    match name {
        "debug" => {
            tracing::info!(rule = %rule.name, alert_id = %d.id, subject = %d.subject, "debug alerter:\n{}", d.body);
            Ok(())
        }
        "post" => {
            let urls = str_list(m, "http_post_url")?;
            let payload_map = m
                .get("http_post_payload")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let static_payload = m
                .get("http_post_static_payload")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let all_values = opt_bool(m, "http_post_all_values")?.unwrap_or(payload_map.is_empty());
            let headers = headers_of(m, "http_post_headers");
            let timeout = opt_f64(m, "http_post_timeout")?;
            for (i, doc) in payload_docs(d).iter().enumerate() {
                let mut p = if all_values { doc.clone() } else { Map::new() };
                for (k, v) in &static_payload {
                    p.insert(k.clone(), v.clone());
                }
                for (out, field) in &payload_map {
                    let f = field.as_str().unwrap_or_default();
                    p.insert(out.clone(), lookup(doc, f).cloned().unwrap_or(Value::Null));
                }
                let mut h = headers.clone();
                h.push(("Idempotency-Key".into(), idem(d, i)));
                for url in &urls {
                    post_json(client, name, url, &Value::Object(p.clone()), &h, timeout).await?;
                }
            }
            Ok(())
        }
        "post2" => {
            let urls = str_list(m, "http_post2_url")?;
            let template = m
                .get("http_post2_payload")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let raw_fields = m
                .get("http_post2_raw_fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let all_values = opt_bool(m, "http_post2_all_values")?
                .unwrap_or(template.as_object().is_none_or(|o| o.is_empty()));
            let header_tpl = m
                .get("http_post2_headers")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let timeout = opt_f64(m, "http_post2_timeout")?;
            for (i, doc) in payload_docs(d).iter().enumerate() {
                let mut ctx = doc.clone();
                ctx.insert("_data".into(), Value::Object(doc.clone()));
                let ctx = Value::Object(ctx);
                let mut p = if all_values { doc.clone() } else { Map::new() };
                if let Value::Object(rendered) = render_template_value(&template, &ctx) {
                    p.extend(rendered);
                }
                for (out, field) in &raw_fields {
                    let f = field.as_str().unwrap_or_default();
                    p.insert(out.clone(), lookup(doc, f).cloned().unwrap_or(Value::Null));
                }
                let mut h: Vec<(String, String)> = match render_template_value(&header_tpl, &ctx) {
                    Value::Object(o) => o
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                h.push(("Idempotency-Key".into(), idem(d, i)));
                for url in &urls {
                    post_json(client, name, url, &Value::Object(p.clone()), &h, timeout).await?;
                }
            }
            Ok(())
        }
        "slack" => {
            let urls = str_list(m, "slack_webhook_url")?;
            let mut attachment = json!({
                "color": opt_str(m, "slack_msg_color")?.unwrap_or_else(|| if d.recovery { "good".into() } else { "danger".into() }),
                "title": d.subject,
                "text": d.body,
                "mrkdwn_in": ["text", "pretext"],
                "fields": [],
            });
            if let Some(t) = opt_str(m, "slack_title_link")? {
                attachment["title_link"] = json!(t);
            }
            let mut payload = json!({
                "username": opt_str(m, "slack_username_override")?.unwrap_or_else(|| "elastalert".into()),
                "parse": opt_str(m, "slack_parse_override")?.unwrap_or_else(|| "none".into()),
                "text": opt_str(m, "slack_text_string")?.unwrap_or_default(),
                "attachments": [attachment],
                "icon_emoji": opt_str(m, "slack_emoji_override")?.unwrap_or_else(|| ":ghost:".into()),
            });
            if let Some(c) = str_list(m, "slack_channel_override")?.first() {
                payload["channel"] = json!(c);
            }
            let h = vec![("Idempotency-Key".to_string(), d.id.clone())];
            for url in &urls {
                post_json(
                    client,
                    name,
                    url,
                    &payload,
                    &h,
                    opt_f64(m, "slack_timeout")?,
                )
                .await?;
            }
            Ok(())
        }
        "ms_teams" => {
            let urls = str_list(m, "ms_teams_webhook_url")?;
            let mut payload = json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "summary": opt_str(m, "ms_teams_alert_summary")?.unwrap_or_else(|| "ElastAlert Message".into()),
                "title": d.subject,
                "text": d.body,
            });
            if let Some(c) = opt_str(m, "ms_teams_theme_color")? {
                payload["themeColor"] = json!(c);
            }
            let h = vec![("Idempotency-Key".to_string(), d.id.clone())];
            for url in &urls {
                post_json(client, name, url, &payload, &h, None).await?;
            }
            Ok(())
        }
        "ms_power_automate" => {
            let urls = str_list(m, "ms_power_automate_webhook_url")?;
            let payload = json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": d.subject, "weight": "Bolder", "size": "Large", "wrap": true},
                            {"type": "TextBlock", "text": d.body, "wrap": true}
                        ]
                    }
                }]
            });
            let h = vec![("Idempotency-Key".to_string(), d.id.clone())];
            for url in &urls {
                post_json(client, name, url, &payload, &h, None).await?;
            }
            Ok(())
        }
        "telegram" => {
            let token = opt_str(m, "telegram_bot_token")?.unwrap_or_default();
            let api = opt_str(m, "telegram_api_url")?.unwrap_or_else(|| "api.telegram.org".into());
            let base = if api.starts_with("http://") || api.starts_with("https://") {
                api.trim_end_matches('/').to_string()
            } else {
                format!("https://{api}")
            };
            let url = format!("{base}/bot{token}/sendMessage");
            let mut text = format!("\u{26a0} *{}* \u{26a0} ```\n{}", d.subject, d.body);
            if text.chars().count() > 4090 {
                text = text.chars().take(4000).collect::<String>()
                    + "\n\n\u{26a0} *message was cropped according to telegram limits!* \u{26a0}";
            }
            text.push_str(" ```");
            let payload = json!({
                "chat_id": m.get("telegram_room_id").cloned().unwrap_or(Value::Null),
                "text": text,
                "parse_mode": "markdown",
                "disable_web_page_preview": true,
            });
            let h = vec![("Idempotency-Key".to_string(), d.id.clone())];
            post_json(client, name, &url, &payload, &h, None).await
        }
        "pagerduty" => {
            let url = opt_str(m, "pagerduty_events_url")?
                .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".into());
            let dedup = match opt_str(m, "pagerduty_incident_key")? {
                Some(t) => {
                    let args: Vec<Value> = str_list(m, "pagerduty_incident_key_args")?
                        .iter()
                        .map(|a| {
                            lookup(&first_match(d), a)
                                .cloned()
                                .unwrap_or(Value::String(crate::format::MISSING.into()))
                        })
                        .collect();
                    crate::format::py_format(&t, &args, &Default::default())
                }
                None => d.id.clone(),
            };
            let payload = json!({
                "routing_key": opt_str(m, "pagerduty_service_key")?,
                "event_action": if d.recovery { "resolve" } else { "trigger" },
                "dedup_key": dedup,
                "client": opt_str(m, "pagerduty_client_name")?.unwrap_or_else(|| "ElastAlert".into()),
                "payload": {
                    "summary": d.subject,
                    "source": opt_str(m, "pagerduty_v2_payload_source")?.unwrap_or_else(|| "ElastAlert".into()),
                    "severity": opt_str(m, "pagerduty_v2_payload_severity")?.unwrap_or_else(|| "critical".into()),
                    "custom_details": {"information": d.body},
                },
            });
            post_json(client, name, &url, &payload, &[], None).await
        }
        "opsgenie" => {
            let url = opt_str(m, "opsgenie_addr")?
                .unwrap_or_else(|| "https://api.opsgenie.com/v2/alerts".into());
            let key = opt_str(m, "opsgenie_key")?.unwrap_or_default();
            let mut payload = json!({
                "message": opt_str(m, "opsgenie_subject")?.unwrap_or_else(|| d.subject.clone()),
                "description": d.body,
                "alias": opt_str(m, "opsgenie_alias")?.unwrap_or_else(|| d.id.clone()),
                "source": "ElastAlert",
                "tags": str_list(m, "opsgenie_tags")?,
            });
            if let Some(p) = opt_str(m, "opsgenie_priority")? {
                payload["priority"] = json!(p);
            }
            let teams = str_list(m, "opsgenie_teams")?;
            if !teams.is_empty() {
                payload["responders"] = Value::Array(
                    teams
                        .iter()
                        .map(|t| json!({"name": t, "type": "team"}))
                        .collect(),
                );
            }
            let h = vec![("Authorization".to_string(), format!("GenieKey {key}"))];
            post_json(client, name, &url, &payload, &h, None).await
        }
        "email" => send_email(rule, d).await,
        "command" => run_command(rule, d).await,
        other => Err(AlertError::alerter(other, "unknown alerter")),
    }
}

fn idem(d: &AlertDraft, i: usize) -> String {
    if i == 0 {
        d.id.clone()
    } else {
        format!("{}-{i}", d.id)
    }
}

async fn run_command(rule: &Rule, d: &AlertDraft) -> Result<()> {
    let m = &rule.raw;
    let doc = first_match(d);
    let (program, args): (String, Vec<String>) = match m.get("command") {
        Some(Value::String(s)) => ("/bin/sh".into(), vec!["-c".into(), percent_format(s, &doc)]),
        Some(Value::Array(a)) => {
            let parts: Vec<String> = a
                .iter()
                .map(|p| {
                    percent_format(
                        p.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| p.to_string())
                            .as_str(),
                        &doc,
                    )
                })
                .collect();
            let Some((first, rest)) = parts.split_first() else {
                return Err(AlertError::alerter("command", "empty command"));
            };
            (first.clone(), rest.to_vec())
        }
        _ => return Err(AlertError::alerter("command", "no command")),
    };
    let stdin_data = if opt_bool(m, "pipe_match_json")?.unwrap_or(false) {
        Some(format!("{}\n", Value::Array(d.matches.clone())))
    } else if opt_bool(m, "pipe_alert_text")?.unwrap_or(false) {
        Some(d.body.clone())
    } else {
        None
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .env("CAIRN_ALERT_ID", &d.id)
        .env("CAIRN_ALERT_SUBJECT", &d.subject)
        .stdin(if stdin_data.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| AlertError::alerter("command", format!("cannot run {program}: {e}")))?;
    if let (Some(data), Some(mut stdin)) = (stdin_data, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(data.as_bytes())
            .await
            .map_err(|e| AlertError::alerter("command", format!("writing to {program}: {e}")))?;
    }
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .map_err(|_| {
            AlertError::alerter("command", format!("{program} did not finish within 300s"))
        })?
        .map_err(|e| AlertError::alerter("command", e.to_string()))?;
    if !out.status.success() && opt_bool(m, "fail_on_non_zero_exit")?.unwrap_or(false) {
        return Err(AlertError::alerter(
            "command",
            format!(
                "{program} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ),
        ));
    }
    Ok(())
}

async fn send_email(rule: &Rule, d: &AlertDraft) -> Result<()> {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let m = &rule.raw;
    let err = |msg: String| AlertError::alerter("email", msg);
    let add_domain = opt_str(m, "email_add_domain")?;
    let mut to = str_list(m, "email")?;
    if let Some(field) = opt_str(m, "email_from_field")? {
        if let Some(v) = lookup(&first_match(d), &field).and_then(Value::as_str) {
            to = vec![match &add_domain {
                Some(dom) if !v.contains('@') => format!("{v}{dom}"),
                _ => v.to_string(),
            }];
        }
    }
    let from = opt_str(m, "from_addr")?.unwrap_or_else(|| "ElastAlert".into());
    let from_mb: Mailbox = from
        .parse()
        .or_else(|_| format!("{from} <{}@localhost>", from.replace(' ', "")).parse())
        .map_err(|e| err(format!("from_addr [{from}]: {e}")))?;
    let mut b = Message::builder()
        .from(from_mb)
        .subject(d.subject.clone())
        .message_id(Some(format!("<{}@cairn.alert>", d.id)))
        .header(ContentType::TEXT_PLAIN);
    for addr in &to {
        b = b.to(addr
            .parse()
            .map_err(|e| err(format!("email [{addr}]: {e}")))?);
    }
    for addr in str_list(m, "cc")? {
        b = b.cc(addr.parse().map_err(|e| err(format!("cc [{addr}]: {e}")))?);
    }
    for addr in str_list(m, "bcc")? {
        b = b.bcc(
            addr.parse()
                .map_err(|e| err(format!("bcc [{addr}]: {e}")))?,
        );
    }
    if let Some(r) = opt_str(m, "email_reply_to")? {
        b = b.reply_to(
            r.parse()
                .map_err(|e| err(format!("email_reply_to [{r}]: {e}")))?,
        );
    }
    let msg = b.body(d.body.clone()).map_err(|e| err(e.to_string()))?;

    let host = opt_str(m, "smtp_host")?.unwrap_or_else(|| "localhost".into());
    let ssl = opt_bool(m, "smtp_ssl")?.unwrap_or(false);
    let port = opt_f64(m, "smtp_port")?
        .map(|p| p as u16)
        .unwrap_or(if ssl { 465 } else { 25 });
    // `smtp_ca_certs` (a Cairn extension) trusts a private CA besides the public
    // roots, for relays with an internal certificate.
    let ca_pem = match opt_str(m, "smtp_ca_certs")? {
        Some(path) => {
            Some(std::fs::read(&path).map_err(|e| err(format!("smtp_ca_certs {path}: {e}")))?)
        }
        None => None,
    };
    let tls_params = || -> Result<TlsParameters> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(pem) = &ca_pem {
            let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                .map_err(|e| err(format!("smtp_ca_certs: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| err(format!("TLS for {host}: {e}")))
    };
    // As ElastAlert: smtp_ssl is implicit TLS; otherwise STARTTLS when the server offers it.
    let tls = if ssl {
        Tls::Wrapper(tls_params()?)
    } else {
        Tls::Opportunistic(tls_params()?)
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if let Some(path) = opt_str(m, "smtp_auth_file")? {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("smtp_auth_file {path}: {e}")))?;
        let v = cairn_core::yaml::parse(&text)
            .map_err(|e| err(format!("smtp_auth_file {path}: {e}")))?;
        let user = v
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let pass = v
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        t = t.credentials(Credentials::new(user, pass));
    }
    t.build()
        .send(msg)
        .await
        .map_err(|e| err(format!("SMTP {host}:{port}: {e}")))?;
    Ok(())
}
