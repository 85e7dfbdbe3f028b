//! Sinks: each runs on its own thread, reads its disk buffer, delivers, and only then
//! acknowledges the buffer. A buffer record is `<id>\n<document JSON>`.
//!
//! The `elasticsearch` sink sends `_bulk` `create` actions with the deterministic ids,
//! so a replay after a crash is answered `409` (already there) instead of duplicating.
//! Per item: 2xx and 409 are delivered, 429 and 5xx are retried (only those items)
//! with jittered exponential backoff and, by default, no retry limit (the data is on
//! disk; dropping it after N tries is the failure this agent exists to avoid), and
//! other 4xx go to the dead-letter file with the reason.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use flate2::write::GzEncoder;
use rand::Rng;
use serde_json::{json, Value};

use crate::buffer::{DiskBuffer, Pos};
use crate::config::{Compression, EsSinkConfig, FileSinkConfig, SinkConfig};
use crate::metrics::Metrics;
use crate::AgentError;

/// Splits a buffer record into (id, document).
fn split_record(r: &[u8]) -> (&str, &[u8]) {
    match memchr::memchr(b'\n', r) {
        Some(i) => (std::str::from_utf8(&r[..i]).unwrap_or(""), &r[i + 1..]),
        None => ("", r),
    }
}

/// Runs a sink until the process ends.
pub fn run_sink(
    name: String,
    cfg: SinkConfig,
    buffer: Arc<DiskBuffer>,
    metrics: Arc<Metrics>,
    data_dir: PathBuf,
) -> Result<(), AgentError> {
    match cfg {
        SinkConfig::Elasticsearch(c) => run_es(&name, *c, &buffer, metrics, &data_dir),
        SinkConfig::File(c) => run_file(&name, c, &buffer, &metrics),
        SinkConfig::Stdout(_) => loop {
            let Some(batch) = buffer.read_batch(
                1 << 20,
                10_000,
                Duration::from_millis(50),
                Duration::from_secs(1),
            )?
            else {
                continue;
            };
            let mut out = std::io::stdout().lock();
            for r in &batch.records {
                let (_, doc) = split_record(r);
                out.write_all(doc)
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(|e| AgentError::io("writing to stdout", e))?;
                Metrics::add(&metrics.bytes_out, doc.len() as u64 + 1);
            }
            out.flush()
                .map_err(|e| AgentError::io("writing to stdout", e))?;
            Metrics::add(&metrics.events_out, batch.records.len() as u64);
            buffer.ack(batch.end)?;
        },
    }
}

/// A batch handed to a delivery worker, and where to report the outcome.
type Job = (Vec<Vec<u8>>, mpsc::Sender<Result<(), AgentError>>);

/// The `elasticsearch` sink: `concurrency` workers deliver batches in parallel (a
/// server with several cores indexes concurrent requests in parallel), and this
/// thread acknowledges the buffer strictly in order, so a crash replays from the
/// oldest batch not yet delivered.
fn run_es(
    name: &str,
    cfg: EsSinkConfig,
    buffer: &DiskBuffer,
    metrics: Arc<Metrics>,
    data_dir: &Path,
) -> Result<(), AgentError> {
    let concurrency = cfg.concurrency.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(0);
    let job_rx = Arc::new(std::sync::Mutex::new(job_rx));
    for i in 0..concurrency {
        let mut es = EsSink::new(name, cfg.clone(), metrics.clone(), data_dir)?;
        let rx = job_rx.clone();
        std::thread::Builder::new()
            .name(format!("sink-{name}-{i}"))
            .spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((records, done)) = job else { return };
                let _ = done.send(es.deliver(&records));
            })
            .map_err(|e| AgentError::io("spawning a sink worker", e))?;
    }
    let gone = || AgentError::Sink {
        sink: name.to_owned(),
        reason: "a delivery worker stopped".into(),
    };
    let mut inflight: VecDeque<(Pos, mpsc::Receiver<Result<(), AgentError>>)> = VecDeque::new();
    loop {
        // Acknowledge finished batches, oldest first.
        while let Some((pos, rx)) = inflight.front() {
            match rx.try_recv() {
                Ok(r) => {
                    r?;
                    buffer.ack(*pos)?;
                    inflight.pop_front();
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Err(gone()),
            }
        }
        if inflight.len() >= concurrency {
            if let Some((pos, rx)) = inflight.pop_front() {
                rx.recv().map_err(|_| gone())??;
                buffer.ack(pos)?;
            }
            continue;
        }
        let idle = if inflight.is_empty() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(20)
        };
        let b = &cfg.batch;
        let Some(batch) = buffer.read_batch(b.max_bytes, b.max_events, b.timeout, idle)? else {
            continue;
        };
        let (tx, rx) = mpsc::channel();
        job_tx.send((batch.records, tx)).map_err(|_| gone())?;
        inflight.push_back((batch.end, rx));
    }
}

fn run_file(
    name: &str,
    c: FileSinkConfig,
    buffer: &DiskBuffer,
    metrics: &Metrics,
) -> Result<(), AgentError> {
    if let Some(dir) = c.path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&c.path)
        .map_err(|e| AgentError::io(format!("opening {}", c.path.display()), e))?;
    tracing::info!(sink = name, path = %c.path.display(), "file sink ready");
    let mut out = Vec::with_capacity(c.batch.max_bytes + 4096);
    loop {
        out.clear();
        // Documents go from the buffer's read-ahead straight into the write buffer.
        let Some((count, end)) = buffer.read_batch_with(
            c.batch.max_bytes,
            c.batch.max_events,
            c.batch.timeout,
            Duration::from_secs(1),
            &mut |r| {
                let (_, doc) = split_record(r);
                out.extend_from_slice(doc);
                out.push(b'\n');
            },
        )?
        else {
            continue;
        };
        file.write_all(&out)
            .and_then(|_| file.sync_data())
            .map_err(|e| AgentError::io(format!("writing {}", c.path.display()), e))?;
        Metrics::add(&metrics.events_out, count as u64);
        Metrics::add(&metrics.bytes_out, out.len() as u64);
        buffer.ack(end)?;
    }
}

/// The `_bulk` client.
pub struct EsSink {
    name: String,
    cfg: EsSinkConfig,
    client: reqwest::blocking::Client,
    auth: Option<String>,
    endpoint: usize,
    metrics: Arc<Metrics>,
    dead_letter: PathBuf,
    dead_file: Option<File>,
    aws: Option<(crate::sigv4::Credentials, String, String)>,
}

/// Outcome of one item of a `_bulk` response.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Done,
    Conflict,
    Retry,
    Reject(String),
}

/// The part of a `_bulk` response the sink reads: each item's status and error. Typed,
/// so the rest (`_index`, `_id`, `_version`, `_shards`, … of thousands of items) is
/// skipped while parsing instead of being built into maps: reading the response as a
/// `Value` and copying its items was a fifth of the sink's CPU.
#[derive(Debug, serde::Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<BulkItem>,
}

/// One item: `{"create": {"status": …, "error": …}}` (one action name).
#[derive(Debug, serde::Deserialize)]
struct BulkItem(std::collections::HashMap<String, BulkItemBody>);

#[derive(Debug, serde::Deserialize)]
struct BulkItemBody {
    #[serde(default)]
    status: u64,
    #[serde(default)]
    error: Option<Value>,
}

fn classify(item: &BulkItem) -> Item {
    let (status, err) = match item.0.values().next() {
        Some(b) => (b.status, b.error.as_ref()),
        None => (0, None),
    };
    match status {
        200..=299 => Item::Done,
        409 => Item::Conflict,
        429 | 500..=599 => Item::Retry,
        _ => {
            let reason = match err {
                Some(Value::Object(e)) => format!(
                    "{}: {}",
                    e.get("type").and_then(Value::as_str).unwrap_or("error"),
                    e.get("reason").and_then(Value::as_str).unwrap_or("")
                ),
                Some(other) => other.to_string(),
                None => "no error given".into(),
            };
            Item::Reject(format!("status {status}: {reason}"))
        }
    }
}

impl EsSink {
    pub fn new(
        name: &str,
        cfg: EsSinkConfig,
        metrics: Arc<Metrics>,
        data_dir: &Path,
    ) -> Result<EsSink, AgentError> {
        let sink_err = |reason: String| AgentError::Sink {
            sink: name.to_owned(),
            reason,
        };
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = &cfg.tls.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| AgentError::io(format!("reading {}", ca.display()), e))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| sink_err(format!("tls.ca_file {}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        if cfg.tls.verify_certificate == Some(false) {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| sink_err(format!("HTTP client: {e}")))?;
        let auth = match &cfg.auth {
            Some(a) if a.api_key.is_some() => a.api_key.as_ref().map(|k| format!("ApiKey {k}")),
            Some(a) => a.user.as_ref().map(|u| {
                use base64::Engine;
                let pair = format!("{u}:{}", a.password.as_deref().unwrap_or(""));
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }),
            None => None,
        };
        let dead_letter = cfg
            .dead_letter_path
            .clone()
            .unwrap_or_else(|| data_dir.join("dead-letter").join(format!("{name}.ndjson")));
        let aws = match &cfg.aws {
            Some(a) => {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let creds = crate::sigv4::Credentials {
                    access_key_id: a
                        .access_key_id
                        .clone()
                        .or_else(|| env("AWS_ACCESS_KEY_ID"))
                        .ok_or_else(|| {
                            sink_err("aws: no access_key_id and no AWS_ACCESS_KEY_ID".into())
                        })?,
                    secret_access_key: a
                        .secret_access_key
                        .clone()
                        .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
                        .ok_or_else(|| {
                            sink_err(
                                "aws: no secret_access_key and no AWS_SECRET_ACCESS_KEY".into(),
                            )
                        })?,
                    session_token: a.session_token.clone().or_else(|| env("AWS_SESSION_TOKEN")),
                };
                Some((creds, a.region.clone(), a.service.clone()))
            }
            None => None,
        };
        Ok(EsSink {
            aws,
            name: name.to_owned(),
            cfg,
            client,
            auth,
            endpoint: 0,
            metrics,
            dead_letter,
            dead_file: None,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.cfg.retry_initial_backoff.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let cap = base.min(self.cfg.retry_max_backoff.as_secs_f64());
        // "Equal jitter": at least half the delay, so retries keep backing off, and a
        // random rest, so many agents do not retry in lockstep.
        let secs = cap / 2.0 + rand::rng().random_range(0.0..=cap / 2.0);
        Duration::from_secs_f64(secs)
    }

    fn dead_letter(&mut self, id: &str, doc: &[u8], reason: &str) -> Result<(), AgentError> {
        if self.dead_file.is_none() {
            if let Some(dir) = self.dead_letter.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.dead_letter)
                .map_err(|e| {
                    AgentError::io(format!("opening {}", self.dead_letter.display()), e)
                })?;
            self.dead_file = Some(f);
        }
        let document: Value = serde_json::from_slice(doc)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(doc).into_owned()));
        let line = json!({
            "@timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "sink": self.name,
            "index": self.cfg.index,
            "_id": id,
            "reason": reason,
            "document": document,
        });
        let path = self.dead_letter.clone();
        if let Some(f) = self.dead_file.as_mut() {
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            f.write_all(&bytes)
                .and_then(|_| f.sync_data())
                .map_err(|e| AgentError::io(format!("writing {}", path.display()), e))?;
        }
        tracing::warn!(sink = %self.name, id, reason, "dead-lettered");
        Metrics::add(&self.metrics.dead_letters, 1);
        Ok(())
    }

    /// Delivers every record: returns once each is indexed, already present, or
    /// dead-lettered. Errors only on local I/O failure.
    pub fn deliver(&mut self, records: &[Vec<u8>]) -> Result<(), AgentError> {
        self.deliver_set(records, (0..records.len()).collect())
    }

    fn deliver_set(
        &mut self,
        records: &[Vec<u8>],
        mut pending: Vec<usize>,
    ) -> Result<(), AgentError> {
        let mut attempt: u32 = 0;
        while !pending.is_empty() {
            if let Some(max) = self.cfg.max_retries {
                if attempt > max {
                    for &i in &pending {
                        let (id, doc) = split_record(&records[i]);
                        self.dead_letter(id, doc, "retries exhausted")?;
                    }
                    return Ok(());
                }
            }
            if attempt > 0 {
                Metrics::add(&self.metrics.retries, pending.len() as u64);
                std::thread::sleep(self.backoff(attempt - 1));
            }
            attempt += 1;
            let mut body = Vec::new();
            let action_index = serde_json::to_string(&self.cfg.index).unwrap_or_default();
            for &i in &pending {
                let (id, doc) = split_record(&records[i]);
                let id_json = serde_json::to_string(id).unwrap_or_default();
                body.extend_from_slice(
                    format!("{{\"create\":{{\"_index\":{action_index},\"_id\":{id_json}}}}}\n")
                        .as_bytes(),
                );
                body.extend_from_slice(doc);
                body.push(b'\n');
            }
            let raw_len = body.len();
            let endpoint = self.cfg.endpoints[self.endpoint % self.cfg.endpoints.len()]
                .trim_end_matches('/')
                .to_owned();
            let mut req = self
                .client
                .post(format!("{endpoint}/_bulk"))
                .header("Content-Type", "application/x-ndjson");
            if let Some(a) = &self.auth {
                req = req.header("Authorization", a);
            }
            let body = if self.cfg.compression == Compression::Gzip {
                let mut enc =
                    GzEncoder::new(Vec::with_capacity(raw_len / 4), flate2::Compression::fast());
                enc.write_all(&body)
                    .map_err(|e| AgentError::io("gzip", e))?;
                req = req.header("Content-Encoding", "gzip");
                enc.finish().map_err(|e| AgentError::io("gzip", e))?
            } else {
                body
            };
            if let Some((creds, region, service)) = &self.aws {
                req = sign_aws(req, &endpoint, &body, creds, region, service);
            }
            let resp = match req.body(body).send() {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(sink = %self.name, endpoint, error = %e, "bulk request failed; will retry");
                    self.endpoint += 1;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            if status == 429 || status >= 500 {
                tracing::warn!(sink = %self.name, status, "bulk request rejected; will retry");
                if status >= 500 {
                    self.endpoint += 1;
                }
                continue;
            }
            if status == 413 && pending.len() > 1 {
                // Too large for the server: halve until it fits.
                tracing::warn!(sink = %self.name, items = pending.len(), "bulk request too large; splitting");
                let second = pending.split_off(pending.len() / 2);
                self.deliver_set(records, pending)?;
                return self.deliver_set(records, second);
            }
            if !(200..300).contains(&status) {
                // 401/403/404/413: a configuration or server problem, not the data's
                // fault; keep the data and retry. Other 4xx: the request itself is bad.
                if matches!(status, 401 | 403 | 404 | 408 | 413) {
                    // (a single item over the body limit also lands here: it is kept
                    // and retried, and the log says why.)
                    tracing::error!(sink = %self.name, status, body = %text.chars().take(300).collect::<String>(), "bulk request refused; will retry");
                    continue;
                }
                let reason = format!(
                    "request status {status}: {}",
                    text.chars().take(500).collect::<String>()
                );
                for &i in &pending {
                    let (id, doc) = split_record(&records[i]);
                    self.dead_letter(id, doc, &reason)?;
                }
                return Ok(());
            }
            let items = match serde_json::from_str::<BulkResponse>(&text) {
                Ok(r) => r.items,
                Err(e) => {
                    tracing::warn!(sink = %self.name, error = %e, "unreadable bulk response; will retry");
                    continue;
                }
            };
            if items.len() != pending.len() {
                tracing::warn!(sink = %self.name, expected = pending.len(), got = items.len(), "bulk response item count mismatch; will retry");
                continue;
            }
            let mut next = Vec::new();
            for (&i, item) in pending.iter().zip(items.iter()) {
                let (id, doc) = split_record(&records[i]);
                match classify(item) {
                    Item::Done => {
                        Metrics::add(&self.metrics.events_out, 1);
                        Metrics::add(&self.metrics.bytes_out, doc.len() as u64);
                    }
                    Item::Conflict => {
                        Metrics::add(&self.metrics.conflicts, 1);
                        Metrics::add(&self.metrics.events_out, 1);
                    }
                    Item::Retry => next.push(i),
                    Item::Reject(reason) => self.dead_letter(id, doc, &reason)?,
                }
            }
            pending = next;
        }
        Ok(())
    }
}

/// Adds SigV4 headers for a POST of `body` to `<endpoint>/_bulk`.
fn sign_aws(
    req: reqwest::blocking::RequestBuilder,
    endpoint: &str,
    body: &[u8],
    creds: &crate::sigv4::Credentials,
    region: &str,
    service: &str,
) -> reqwest::blocking::RequestBuilder {
    // The Host header reqwest sends is the URL's authority (without a default port).
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let (authority, base_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority
        .strip_suffix(":443")
        .filter(|_| endpoint.starts_with("https://"))
        .or_else(|| {
            authority
                .strip_suffix(":80")
                .filter(|_| endpoint.starts_with("http://"))
        })
        .unwrap_or(authority);
    let path = format!("{}/_bulk", base_path.trim_end_matches('/'));
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let hash = crate::sigv4::payload_hash(body);
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", host),
        ("x-amz-content-sha256", &hash),
        ("x-amz-date", &amz_date),
    ];
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-security-token", t));
    }
    let auth = crate::sigv4::authorization(
        &crate::sigv4::Request {
            method: "POST",
            path: &path,
            query: &[],
            headers: &headers,
            payload_sha256: &hash,
        },
        creds,
        region,
        service,
        &amz_date,
    );
    let mut req = req
        .header("x-amz-content-sha256", &hash)
        .header("x-amz-date", &amz_date)
        .header("Authorization", auth);
    if let Some(t) = &creds.session_token {
        req = req.header("x-amz-security-token", t);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_classes() {
        let classify = |v: Value| classify(&serde_json::from_value(v).expect("item"));
        assert_eq!(
            classify(
                json!({"create": {"_index": "x", "_id": "1", "_shards": {"total": 1}, "status": 201}})
            ),
            Item::Done
        );
        assert_eq!(classify(json!({"create": {"status": 409}})), Item::Conflict);
        assert_eq!(classify(json!({"create": {"status": 429}})), Item::Retry);
        assert_eq!(classify(json!({"create": {"status": 503}})), Item::Retry);
        assert_eq!(
            classify(
                json!({"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}})
            ),
            Item::Reject("status 400: mapper_parsing_exception: bad".into())
        );
        assert_eq!(
            classify(json!({"create": {"status": 400, "error": "plain"}})),
            Item::Reject("status 400: \"plain\"".into())
        );
        let r: BulkResponse =
            serde_json::from_str(r#"{"took":3,"errors":false,"items":[{"create":{"status":201}},{"index":{"status":200}}]}"#)
                .expect("response");
        assert_eq!(r.items.len(), 2);
    }

    #[test]
    fn records() {
        assert_eq!(split_record(b"abc\n{\"a\":1}"), ("abc", &b"{\"a\":1}"[..]));
    }
}
