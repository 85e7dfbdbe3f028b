//! Counters and latency histograms, rendered in Prometheus text format by the server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds in seconds.
pub const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Debug)]
pub struct Histogram {
    counts: [AtomicU64; 13],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus exposition lines for this histogram.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        cum += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed)
        );
    }
}

#[derive(Default, Debug)]
pub struct Metrics {
    pub docs_ingested: AtomicU64,
    pub bytes_ingested: AtomicU64,
    pub bulk_requests: AtomicU64,
    pub bulk_latency: Histogram,
    pub wal_fsync_latency: Histogram,
    pub commit_latency: Histogram,
}

impl Metrics {
    pub fn record_ingest(&self, docs: u64, bytes: u64) {
        self.docs_ingested.fetch_add(docs, Ordering::Relaxed);
        self.bytes_ingested.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn record_bulk(&self, d: Duration, _items: u64) {
        self.bulk_requests.fetch_add(1, Ordering::Relaxed);
        self.bulk_latency.observe(d);
    }
    pub fn record_commit(&self, d: Duration) {
        self.commit_latency.observe(d);
    }
}
