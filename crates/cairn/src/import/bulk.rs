//! `_bulk` with `create` actions and retries.
//!
//! Whole requests are retried on connection errors, 429 and 5xx; items are retried on
//! 429/5xx item statuses. A 409 means the document (same deterministic id) is already
//! stored: counted as present, not as an error. Any other item error is a rejection.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One document ready to send.
#[derive(Debug)]
pub struct Doc {
    pub index: String,
    pub id: String,
    /// The JSON source, one line.
    pub source: String,
}

impl Doc {
    /// Approximate request bytes.
    pub fn weight(&self) -> usize {
        self.source.len() + self.index.len() + self.id.len() + 48
    }
}

/// What the server did with a batch.
#[derive(Debug, Default, Clone)]
pub struct BulkOutcome {
    pub created: u64,
    pub existing: u64,
    pub rejected: u64,
    /// The first few rejection reasons.
    pub reasons: Vec<String>,
}

impl BulkOutcome {
    pub fn add(&mut self, o: &BulkOutcome) {
        self.created += o.created;
        self.existing += o.existing;
        self.rejected += o.rejected;
        for r in &o.reasons {
            if self.reasons.len() < MAX_REASONS {
                self.reasons.push(r.clone());
            }
        }
    }
}

pub const MAX_REASONS: usize = 5;

pub struct BulkClient {
    client: reqwest::blocking::Client,
    url: String,
    retries: u32,
}

fn backoff(attempt: u32) -> Duration {
    // 250 ms, 500 ms, 1 s, ... capped at 30 s.
    let ms = 250u64.saturating_mul(1u64 << attempt.min(7));
    Duration::from_millis(ms.min(30_000))
}

enum Attempt {
    /// Per-item statuses, in request order.
    Items(Vec<Value>),
    /// Worth retrying (connection error, 429, 5xx), with the reason.
    Transient(String),
}

impl BulkClient {
    pub fn new(server: &str, retries: u32, auth: &crate::client::ClientAuth) -> Result<Self> {
        let client = auth.blocking_client(Duration::from_secs(120))?;
        Ok(BulkClient {
            client,
            url: format!("{}/_bulk", server.trim_end_matches('/')),
            retries,
        })
    }

    fn body(docs: &[&Doc]) -> String {
        let mut body = String::with_capacity(docs.iter().map(|d| d.weight()).sum());
        for d in docs {
            let action = serde_json::json!({"create": {"_index": d.index, "_id": d.id}});
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&d.source);
            body.push('\n');
        }
        body
    }

    fn attempt(&self, docs: &[&Doc]) -> Result<Attempt> {
        let resp = match self
            .client
            .post(&self.url)
            .header("Content-Type", "application/x-ndjson")
            .body(Self::body(docs))
            .send()
        {
            Ok(r) => r,
            Err(e) => {
                return Ok(Attempt::Transient(format!(
                    "cannot reach {}: {e}",
                    self.url
                )))
            }
        };
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Ok(Attempt::Transient(format!(
                "HTTP {status} from {}",
                self.url
            )));
        }
        let text = match resp.text() {
            Ok(t) => t,
            Err(e) => return Ok(Attempt::Transient(format!("reading the _bulk answer: {e}"))),
        };
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let reason = v
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| text.chars().take(300).collect());
            bail!("the server refused the _bulk request (HTTP {status}): {reason}");
        }
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("the _bulk answer from {} is not JSON", self.url))?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if items.len() != docs.len() {
            bail!(
                "the _bulk answer has {} items for {} documents",
                items.len(),
                docs.len()
            );
        }
        Ok(Attempt::Items(items))
    }

    /// Sends `docs`, retrying as described in the module doc. An error means the
    /// batch could not be delivered (after the retries), so its object is unfinished.
    pub fn send(&self, docs: &[Doc]) -> Result<BulkOutcome> {
        let mut out = BulkOutcome::default();
        let mut pending: Vec<&Doc> = docs.iter().collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let items = match self.attempt(&pending)? {
                Attempt::Items(items) => items,
                Attempt::Transient(reason) => {
                    if attempt >= self.retries {
                        bail!("giving up after {} attempts: {reason}", attempt + 1);
                    }
                    let wait = backoff(attempt);
                    eprintln!("cairn import: _bulk failed ({reason}); retrying in {wait:?}");
                    std::thread::sleep(wait);
                    attempt += 1;
                    continue;
                }
            };
            let mut retry = Vec::new();
            let mut last_reason = String::new();
            for (doc, item) in pending.iter().zip(items.iter()) {
                let r = item
                    .as_object()
                    .and_then(|m| m.values().next())
                    .cloned()
                    .unwrap_or(Value::Null);
                let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
                match status {
                    200 | 201 => out.created += 1,
                    409 => out.existing += 1,
                    429 | 500..=599 => {
                        last_reason = item_reason(&r);
                        retry.push(*doc);
                    }
                    _ => {
                        out.rejected += 1;
                        if out.reasons.len() < MAX_REASONS {
                            out.reasons.push(format!(
                                "[{}] {}: {}",
                                doc.index,
                                doc.id,
                                item_reason(&r)
                            ));
                        }
                    }
                }
            }
            if !retry.is_empty() {
                if attempt >= self.retries {
                    bail!(
                        "giving up on {} documents after {} attempts: {last_reason}",
                        retry.len(),
                        attempt + 1
                    );
                }
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            pending = retry;
        }
        Ok(out)
    }
}

fn item_reason(r: &Value) -> String {
    let kind = r
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let reason = r
        .pointer("/error/reason")
        .and_then(Value::as_str)
        .unwrap_or("no reason given");
    format!(
        "{kind}: {reason} (status {})",
        r.get("status").and_then(Value::as_u64).unwrap_or(0)
    )
}
