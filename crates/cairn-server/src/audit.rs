//! The audit log: one JSON object per event a security review asks about
//! (authentication failures, sign-ins, user, role and API key changes, index
//! deletions, alert rule changes), with the acting user.
//!
//! It goes to a file (JSON lines, opened in append mode) or to the internal index
//! `.cairn-audit`, where it can be searched like any log (admins only: `.cairn-*`
//! indices are restricted). Index writes are batched by a background task fed through
//! a bounded channel, so a burst of failed logins never blocks request handling; if
//! the channel is full the event is dropped and counted, and a warning is logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The internal index the `index` sink writes to.
pub const AUDIT_INDEX: &str = ".cairn-audit";
const CHANNEL: usize = 10_000;
const BATCH: usize = 500;

enum Sink {
    Off,
    File(PathBuf, Mutex<std::fs::File>),
    Index(mpsc::Sender<Value>),
}

pub struct Audit {
    sink: Sink,
    dropped: AtomicU64,
}

impl Audit {
    /// No audit log.
    pub fn off() -> Audit {
        Audit {
            sink: Sink::Off,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn to_file(path: &Path) -> std::io::Result<Audit> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Audit {
            sink: Sink::File(path.to_path_buf(), Mutex::new(f)),
            dropped: AtomicU64::new(0),
        })
    }

    /// Events go to `.cairn-audit` through `store`, written by a task on the current
    /// tokio runtime (call from within it).
    pub fn to_index(store: cairn_store::Store) -> Audit {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::spawn(write_events(store, rx));
        Audit {
            sink: Sink::Index(tx),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File(p, _) => Some(p.as_path()),
            _ => None,
        }
    }

    /// Events that could not be recorded (index sink saturated).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records one event; `fields` is merged into it. The caller's identity is added
    /// from the current request context when there is one.
    pub fn event(&self, action: &str, fields: Value) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        let mut line = json!({
            "@timestamp": cairn_core::time::format_millis(cairn_core::time::now_micros()),
            "event.action": action,
            "event.category": "audit",
        });
        if let Some(a) = crate::auth::Authz::current() {
            line["user.name"] = json!(a.principal.username);
            if let Some((id, _)) = &a.principal.api_key {
                line["api_key.id"] = json!(id);
            }
        }
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        match &self.sink {
            Sink::Off => {}
            Sink::File(path, file) => {
                let mut text = line.to_string();
                text.push('\n');
                if let Err(e) = file.lock().write_all(text.as_bytes()) {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the audit log");
                }
            }
            Sink::Index(tx) => {
                if tx.try_send(line).is_err() {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::warn!(
                            dropped = n,
                            "audit events dropped: the audit index writer is behind"
                        );
                    }
                }
            }
        }
    }
}

async fn write_events(store: cairn_store::Store, mut rx: mpsc::Receiver<Value>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // Gather what else arrived meanwhile (bounded), then write it in one go.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(v) => batch.push(v),
                Err(_) => break,
            }
        }
        let reqs = batch
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(cairn_store::WriteRequest {
                    kind: cairn_store::WriteKind::Create,
                    index: AUDIT_INDEX.to_string(),
                    id: None,
                    source: Some(Ok(m)),
                    raw: None,
                }),
                _ => None,
            })
            .collect();
        for item in store.bulk(reqs, cairn_store::Refresh::False).await {
            if let Some(e) = item.error {
                tracing::error!(error = %e, "cannot write an audit event to {AUDIT_INDEX}");
            }
        }
    }
}
