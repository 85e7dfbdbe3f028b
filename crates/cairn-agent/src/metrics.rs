//! Counters and the `/health` + `/metrics` listener (Prometheus text format).
//!
//! The listener is a few lines over `std::net` on its own thread: two GET endpoints do
//! not justify an async runtime in the agent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::buffer::DiskBuffer;
use crate::AgentError;

/// Counters shared by all threads.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub events_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub retries: AtomicU64,
    pub dead_letters: AtomicU64,
    pub dropped: AtomicU64,
    pub conflicts: AtomicU64,
    /// `s3` sources: objects seen in listings (every poll counts them again).
    pub s3_objects_listed: AtomicU64,
    /// `s3` sources: objects read to their end and acknowledged by the sinks.
    pub s3_objects_read: AtomicU64,
    /// `s3` sources: downloads or decodes that failed (retried on a later poll).
    pub s3_objects_failed: AtomicU64,
    /// `s3` sources: listings that failed (retried on the next poll).
    pub s3_list_errors: AtomicU64,
    /// `s3` sources: stored (compressed) bytes downloaded.
    pub s3_bytes: AtomicU64,
    /// `s3` sources: lines that did not parse (shipped with `_parse_failure`).
    pub s3_parse_failures: AtomicU64,
    /// Per file: bytes written but not yet read.
    pub lag: Mutex<BTreeMap<String, u64>>,
    pub buffers: Mutex<Vec<(String, Arc<DiskBuffer>)>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let c = |s: &mut String, name: &str, help: &str, v: &AtomicU64| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        };
        c(
            &mut s,
            "cairn_agent_events_in_total",
            "Events read by sources.",
            &self.events_in,
        );
        c(
            &mut s,
            "cairn_agent_bytes_in_total",
            "Bytes read by sources.",
            &self.bytes_in,
        );
        c(
            &mut s,
            "cairn_agent_events_out_total",
            "Events delivered by sinks.",
            &self.events_out,
        );
        c(
            &mut s,
            "cairn_agent_bytes_out_total",
            "Bytes delivered by sinks.",
            &self.bytes_out,
        );
        c(
            &mut s,
            "cairn_agent_retries_total",
            "Items retried after 429/5xx or failed requests.",
            &self.retries,
        );
        c(
            &mut s,
            "cairn_agent_dead_letters_total",
            "Items written to the dead-letter file.",
            &self.dead_letters,
        );
        c(
            &mut s,
            "cairn_agent_dropped_total",
            "Events dropped because a buffer was full (drop_newest).",
            &self.dropped,
        );
        c(
            &mut s,
            "cairn_agent_conflicts_total",
            "Items answered 409 on create (already delivered).",
            &self.conflicts,
        );
        c(
            &mut s,
            "cairn_agent_s3_objects_listed_total",
            "Objects seen in S3 listings (counted at every poll).",
            &self.s3_objects_listed,
        );
        c(
            &mut s,
            "cairn_agent_s3_objects_read_total",
            "S3 objects read completely and acknowledged by the sinks.",
            &self.s3_objects_read,
        );
        c(
            &mut s,
            "cairn_agent_s3_objects_failed_total",
            "S3 object downloads or decodes that failed (retried on a later poll).",
            &self.s3_objects_failed,
        );
        c(
            &mut s,
            "cairn_agent_s3_list_errors_total",
            "S3 listings that failed (retried on the next poll).",
            &self.s3_list_errors,
        );
        c(
            &mut s,
            "cairn_agent_s3_bytes_total",
            "Stored (compressed) bytes downloaded from S3.",
            &self.s3_bytes,
        );
        c(
            &mut s,
            "cairn_agent_s3_parse_failures_total",
            "Lines of S3 objects that did not parse (shipped flagged _parse_failure).",
            &self.s3_parse_failures,
        );
        s.push_str("# HELP cairn_agent_buffer_bytes Unacknowledged bytes in a sink's disk buffer.\n# TYPE cairn_agent_buffer_bytes gauge\n");
        for (name, b) in self
            .buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            s.push_str(&format!(
                "cairn_agent_buffer_bytes{{sink=\"{}\"}} {}\n",
                escape(name),
                b.size()
            ));
        }
        s.push_str("# HELP cairn_agent_file_lag_bytes Bytes of a file not yet read.\n# TYPE cairn_agent_file_lag_bytes gauge\n");
        for (path, lag) in self.lag.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            s.push_str(&format!(
                "cairn_agent_file_lag_bytes{{path=\"{}\"}} {lag}\n",
                escape(path)
            ));
        }
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Starts the listener thread; returns the bound address (port 0 picks one).
pub fn serve(address: &str, metrics: Arc<Metrics>) -> Result<std::net::SocketAddr, AgentError> {
    let listener =
        TcpListener::bind(address).map_err(|e| AgentError::io(format!("binding {address}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| AgentError::io("local address", e))?;
    std::thread::Builder::new()
        .name("agent-api".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut first = String::new();
                let mut reader = BufReader::new(match conn.try_clone() {
                    Ok(c) => c,
                    Err(_) => continue,
                });
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // Drain the headers so the client sees a clean response.
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/health" => ("200 OK", "application/json", "{\"status\":\"ok\"}\n".to_string()),
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .map_err(|e| AgentError::io("spawning the api thread", e))?;
    Ok(local)
}
