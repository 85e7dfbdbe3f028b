//! The indexer: the one thread that applies durable WAL records to partitions, in
//! sequence order, and owns every open tantivy writer.
//!
//! It also drives the two tiers of visibility: *refresh* (a tantivy commit into the
//! no-fsync directory plus a reader reload, every `refresh_interval`) and *flush*
//! (a durable point per partition, then WAL segments are released). Open writers are
//! bounded (LRU): evicting one makes its partition durable, and a partition whose time
//! range has passed is merged down to one segment when its writer is closed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::{IndexWriter, TantivyDocument, Term};

use crate::partition::Partition;
use crate::wal::{Durable, WalOp};
use crate::{IndexHandle, Inner};

pub(crate) type Attachment = Option<TantivyDocument>;

pub(crate) enum Msg {
    Records(Vec<Durable<Attachment>>),
    /// Replayed records: skip those already in a partition's durable commit.
    Replay(Vec<(u64, WalOp)>),
    Refresh(tokio::sync::oneshot::Sender<()>),
    Flush(tokio::sync::oneshot::Sender<std::io::Result<()>>),
    /// Close the writers of an index (before it is deleted).
    DropIndex(u128, tokio::sync::oneshot::Sender<()>),
    /// Close the writer of one partition (retention).
    DropPartition(u128, i64, tokio::sync::oneshot::Sender<()>),
    /// Flush and stop; answers the WAL position everything is durable up to, if the
    /// flush succeeded.
    Shutdown(tokio::sync::oneshot::Sender<Option<u64>>),
}

struct OpenWriter {
    writer: IndexWriter,
    partition: Arc<Partition>,
    last_used: u64,
    uncommitted: bool,
    undurable: bool,
    last_write: Instant,
}

pub(crate) struct Indexer {
    inner: Arc<Inner>,
    writers: HashMap<(u128, i64), OpenWriter>,
    tick: u64,
    applied_seq: u64,
    bytes_since_flush: u64,
    last_refresh: Instant,
    last_flush: Instant,
    /// A partition closed without reaching its durable point: the WAL must keep
    /// everything until a restart replays it.
    durability_lost: bool,
}

impl Indexer {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Indexer {
            inner,
            writers: HashMap::new(),
            tick: 0,
            applied_seq: 0,
            bytes_since_flush: 0,
            last_refresh: Instant::now(),
            last_flush: Instant::now(),
            durability_lost: false,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
        let refresh = self.inner.config.refresh_interval;
        loop {
            let wait = refresh
                .checked_sub(self.last_refresh.elapsed())
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(5));
            match rx.recv_timeout(wait) {
                Ok(Msg::Records(batch)) => {
                    for d in batch {
                        self.apply(d.seq, d.op, d.attachment, false);
                    }
                }
                Ok(Msg::Replay(records)) => {
                    for (seq, op) in records {
                        self.apply(seq, op, None, true);
                    }
                    self.refresh();
                }
                Ok(Msg::Refresh(reply)) => {
                    self.refresh();
                    let _ = reply.send(());
                }
                Ok(Msg::Flush(reply)) => {
                    let r = self.flush();
                    let _ = reply.send(r);
                }
                Ok(Msg::DropIndex(uuid, reply)) => {
                    self.writers.retain(|(u, _), _| *u != uuid);
                    let _ = reply.send(());
                }
                Ok(Msg::DropPartition(uuid, key, reply)) => {
                    self.writers.remove(&(uuid, key));
                    let _ = reply.send(());
                }
                Ok(Msg::Shutdown(reply)) => {
                    let clean = match self.flush() {
                        Ok(()) => !self.durability_lost,
                        Err(e) => {
                            tracing::error!(error = %e, "flush at shutdown failed; the WAL keeps the data");
                            false
                        }
                    };
                    // Closing writers makes them durable too (and seals past partitions).
                    let writers: Vec<OpenWriter> = self.writers.drain().map(|(_, w)| w).collect();
                    for w in writers {
                        self.close_writer(w);
                    }
                    let clean = clean && !self.durability_lost;
                    let _ = reply.send(clean.then_some(self.applied_seq));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.last_refresh.elapsed() >= refresh {
                self.refresh();
            }
            if self.last_flush.elapsed() >= self.inner.config.flush_interval
                || self.bytes_since_flush >= self.inner.config.flush_threshold_bytes
            {
                if let Err(e) = self.flush() {
                    tracing::error!(error = %e, "periodic flush failed; will retry, the WAL keeps the data");
                }
            }
        }
    }

    fn apply(&mut self, seq: u64, op: WalOp, doc: Attachment, replay: bool) {
        match op {
            WalOp::Index {
                index,
                partition,
                ts,
                version,
                id,
                source,
                delete_from,
            } => {
                let Some(handle) = self.inner.index_by_uuid(index) else {
                    return;
                };
                for key in delete_from {
                    self.delete_id(&handle, key, &id, seq, replay);
                }
                let bytes = source.len() as u64;
                let doc = match doc {
                    Some(d) => d,
                    None => match handle.rebuild_document(&id, &source[..], ts, version) {
                        Some(d) => d,
                        None => {
                            tracing::warn!(index = %handle.name, id = %id, "replayed document no longer fits its mapping; skipped");
                            return;
                        }
                    },
                };
                if let Some(w) = self.writer(&handle, partition, seq, replay, true) {
                    if let Err(e) = w.writer.add_document(doc) {
                        tracing::error!(error = %e, "indexing failed");
                    }
                    w.uncommitted = true;
                    w.undurable = true;
                    w.last_write = Instant::now();
                }
                self.bytes_since_flush += bytes;
            }
            WalOp::Delete {
                index,
                id,
                partitions,
            } => {
                let Some(handle) = self.inner.index_by_uuid(index) else {
                    return;
                };
                for key in partitions {
                    self.delete_id(&handle, key, &id, seq, replay);
                }
            }
        }
        self.applied_seq = self.applied_seq.max(seq);
    }

    fn delete_id(&mut self, handle: &Arc<IndexHandle>, key: i64, id: &str, seq: u64, replay: bool) {
        if let Some(w) = self.writer(handle, key, seq, replay, false) {
            let term = Term::from_field_text(w.partition.fields.id, id);
            w.writer.delete_term(term);
            w.uncommitted = true;
            w.undurable = true;
            w.last_write = Instant::now();
        }
    }

    /// The writer for a partition, opening (and creating) it as needed. `None` when the
    /// record is already in the partition's durable commit, when the partition is gone
    /// and `create` is false, or on error.
    fn writer(
        &mut self,
        handle: &Arc<IndexHandle>,
        key: i64,
        seq: u64,
        replay: bool,
        create: bool,
    ) -> Option<&mut OpenWriter> {
        self.tick += 1;
        let tick = self.tick;
        let slot = (handle.uuid, key);
        if !self.writers.contains_key(&slot) {
            let partition = if create {
                match handle.partition_or_create(&self.inner, key) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(index = %handle.name, error = %e, "cannot open partition");
                        return None;
                    }
                }
            } else {
                handle.partitions.read().get(&key).cloned()?
            };
            if replay && seq <= partition.durable_seq.load(Ordering::SeqCst) {
                return None;
            }
            self.evict_if_full();
            let budget = self.inner.config.writer_memory_bytes();
            let opts = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .memory_budget_per_thread(budget)
                .build();
            let writer = match partition.index.writer_with_options(opts) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(index = %handle.name, error = %e, "cannot open an index writer");
                    return None;
                }
            };
            self.writers.insert(
                slot,
                OpenWriter {
                    writer,
                    partition,
                    last_used: tick,
                    uncommitted: false,
                    undurable: false,
                    last_write: Instant::now(),
                },
            );
        }
        let w = self.writers.get_mut(&slot)?;
        if replay && seq <= w.partition.durable_seq.load(Ordering::SeqCst) {
            return None;
        }
        w.last_used = tick;
        Some(w)
    }

    fn evict_if_full(&mut self) {
        while self.writers.len() >= self.inner.config.max_open_writers.max(1) {
            let Some(slot) = self
                .writers
                .iter()
                .min_by_key(|(_, w)| w.last_used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            if let Some(w) = self.writers.remove(&slot) {
                self.close_writer(w);
            }
        }
    }

    /// Commits, makes durable and closes a writer; a partition whose time range has
    /// passed is merged down to one segment first (it is sealed).
    fn close_writer(&mut self, mut w: OpenWriter) {
        let t = Instant::now();
        if w.uncommitted || w.undurable {
            if let Err(e) = w.writer.commit() {
                tracing::error!(error = %e, "commit failed while closing a writer; the WAL keeps its data until a restart replays it");
                self.durability_lost = true;
                return;
            }
            let _ = w.partition.reader.reload();
        }
        let sealed = w.partition.end <= cairn_core::time::now_micros();
        if sealed {
            let ids = w
                .partition
                .index
                .searchable_segment_ids()
                .unwrap_or_default();
            if ids.len() > 1 {
                if let Err(e) = w.writer.merge(&ids).wait() {
                    tracing::warn!(error = %e, "merging a sealed partition failed");
                }
                let _ = w.writer.commit();
                let _ = w.partition.reader.reload();
                w.undurable = true;
            }
        }
        if w.undurable {
            if let Err(e) = w.partition.dir.make_durable(self.applied_seq) {
                tracing::error!(error = %e, "making a partition durable failed; the WAL keeps its data");
                self.durability_lost = true;
            } else {
                w.partition
                    .durable_seq
                    .store(self.applied_seq, Ordering::SeqCst);
            }
        }
        let _ = w.writer.wait_merging_threads();
        self.inner.metrics.record_commit(t.elapsed());
    }

    fn refresh(&mut self) {
        let t = Instant::now();
        let mut any = false;
        let mut failed = Vec::new();
        for (slot, w) in self.writers.iter_mut() {
            if w.uncommitted {
                if let Err(e) = w.writer.commit() {
                    // tantivy's writer is unusable after an I/O error (disk full...):
                    // drop it so writes can resume when the fault clears. What it held
                    // is still in the WAL, which is no longer trimmed until a restart
                    // replays it.
                    tracing::error!(error = %e, "refresh commit failed; reopening the writer later, the WAL keeps the data");
                    failed.push(*slot);
                    continue;
                }
                if let Err(e) = w.partition.reader.reload() {
                    tracing::error!(error = %e, "reader reload failed");
                }
                w.uncommitted = false;
                any = true;
            }
        }
        if !failed.is_empty() {
            self.durability_lost = true;
            for slot in failed {
                self.writers.remove(&slot);
            }
        }
        if any {
            self.inner.metrics.record_commit(t.elapsed());
        }
        self.inner.after_refresh(self.applied_seq);
        self.last_refresh = Instant::now();
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.refresh();
        let seq = self.applied_seq;
        let mut result = Ok(());
        for w in self.writers.values_mut() {
            if w.undurable {
                match w.partition.dir.make_durable(seq) {
                    Ok(()) => {
                        w.partition.durable_seq.store(seq, Ordering::SeqCst);
                        w.undurable = false;
                    }
                    Err(e) => result = Err(e),
                }
            }
        }
        // Close writers idle for a while: frees their memory, seals past partitions.
        let idle: Vec<(u128, i64)> = self
            .writers
            .iter()
            .filter(|(_, w)| w.last_write.elapsed() > self.inner.config.idle_writer_close)
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(w) = self.writers.remove(&k) {
                self.close_writer(w);
            }
        }
        result?;
        if self.durability_lost {
            tracing::warn!(
                "not trimming the WAL: a partition lost its durable point; restart to replay"
            );
            return Ok(());
        }
        self.inner.wal_release_through(seq)?;
        self.bytes_since_flush = 0;
        self.last_flush = Instant::now();
        Ok(())
    }
}
