//! `cairn agent`: the collector. It tails log files (and stdin, syslog, Kubernetes pod
//! logs, and AWS log objects in S3: [`s3_source`]), runs Vector-style
//! transforms over the lines (parse with `cairn-formats`, multiline joins, field edits,
//! KQL filters from `cairn-query`), and ships the events at least once through a disk
//! buffer to sinks: the Elasticsearch `_bulk` protocol (Cairn, Elasticsearch,
//! OpenSearch), a file, or stdout.
//!
//! # Delivery model
//! Why the pieces fit together the way they do:
//!
//! * Each source runs on its own thread and owns its own instances of the transforms
//!   downstream of it, so per-stream state (multiline, CRI partial lines) never crosses
//!   threads and needs no locks.
//! * A batch of lines goes through the transforms and is appended to each sink's
//!   [`buffer::DiskBuffer`] (CRC-framed segments, fsynced). Only then is the source's
//!   checkpoint written (write, fsync, rename). A line held by a stateful transform
//!   (an unfinished stack trace, a CRI `P` piece) holds the checkpoint back at its
//!   first byte, so a restart re-reads it instead of losing it.
//! * The sink reads the buffer, delivers, and only then acknowledges the buffer's
//!   read position. A full buffer blocks the source thread (`when_full: block`), which
//!   stops reading: memory stays flat under back-pressure.
//! * Every event's `_id` is a hash of the source, the file's identity, a generation
//!   number and the byte offset of its first line. The generation comes from one
//!   counter that never goes backwards and is persisted before the first byte of a new
//!   file incarnation (a new file, a truncation, a reused inode) is read, so the same
//!   bytes replayed after a crash get the same id (a `409` on `create`: no duplicate)
//!   while new bytes at an old offset get a new one.
//! * The `s3` source ([`s3_source`]) is the exception to "checkpoint once buffered": it
//!   marks an object done only once the sinks *acknowledged* its events (the buffers'
//!   acknowledged positions passed where its events were appended), and its ids are
//!   those of `cairn import` (object URI, ETag, line offset). The S3 client, listing,
//!   streaming reads and the fields an object key adds live in [`s3`], which
//!   `cairn import` uses too.

pub mod buffer;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod file_source;
pub mod glob;
pub mod kubernetes;
pub mod metrics;
pub mod pipeline;
pub mod s3;
pub mod s3_source;
pub mod sigv4;
pub mod sink;
pub mod syslog;
pub mod transform;

use serde_json::{Map, Value};

pub use config::Config;
pub use file_source::{FileIdentity, FileIdentitySource, OsIdentity};
pub use pipeline::{check_config, run, run_config};

/// Errors of the agent library.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Yaml(#[from] cairn_core::yaml::YamlError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("disk buffer {path}: {reason}")]
    Buffer { path: String, reason: String },
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
    #[error("sink {sink}: {reason}")]
    Sink { sink: String, reason: String },
}

impl AgentError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Io {
            context: context.into(),
            source,
        }
    }
}

/// One event flowing through the pipeline, with the position it came from.
#[derive(Debug, Clone)]
pub struct Event {
    pub fields: Map<String, Value>,
    /// The stream the event belongs to (a file incarnation's generation; 0 for
    /// stdin). Stateful transforms keep their state per stream.
    pub stream: u64,
    /// Byte offset of the event's first byte in its stream.
    pub start: u64,
    /// The deterministic document id.
    pub id: String,
}

/// Sets a dotted path (`a.b.c`) in a JSON object, creating objects on the way (a
/// non-object in the way is replaced: the newer value wins).
pub fn set_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = map;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_owned(), value);
            return;
        }
        let entry = cur
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
}

/// Removes and returns a dotted path (nested objects, or a literal dotted key).
pub fn take_path(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = map.remove(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match map.get_mut(head) {
        Some(Value::Object(inner)) => {
            let v = take_path(inner, rest);
            if inner.is_empty() {
                map.remove(head);
            }
            v
        }
        _ => None,
    }
}

/// Reads a dotted path (nested objects, or a literal dotted key).
pub fn get_path<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match map.get(head) {
        Some(Value::Object(inner)) => get_path(inner, rest),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut m = Map::new();
        set_path(&mut m, "a.b", json!(1));
        set_path(&mut m, "a.c", json!(2));
        assert_eq!(Value::Object(m.clone()), json!({"a": {"b": 1, "c": 2}}));
        assert_eq!(get_path(&m, "a.c"), Some(&json!(2)));
        assert_eq!(take_path(&mut m, "a.b"), Some(json!(1)));
        assert_eq!(take_path(&mut m, "a.c"), Some(json!(2)));
        assert!(m.is_empty());
    }
}
