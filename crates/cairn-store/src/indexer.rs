//! The indexer: the one thread that applies durable WAL records to partitions, in
//! sequence order, and owns every open tantivy writer.
//!
//! It also drives the two tiers of visibility: *refresh* (a tantivy commit into the
//! no-fsync directory plus a reader reload, every `refresh_interval`) and *flush*
//! (a durable point per partition, then WAL segments are released). Open writers are
//! bounded (LRU): evicting one makes its partition durable.
//!
//! A partition whose time range has passed is *sealed*, merged down to one segment,
//! once no write has reached it for `idle_writer_close`, on a thread of its own so the
//! indexer keeps applying records meanwhile; a write that arrives for it waits for the
//! seal to finish. Sealing at every eviction instead re-merged a whole partition each
//! time a writer was evicted and reopened (writing several indices at once with old
//! timestamps is exactly that), which cost most of the indexing time.

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

type Slot = (u128, i64);

/// A seal in progress: the merge runs on its own thread, which hands the writer back.
struct Sealing {
    partition: Arc<Partition>,
    thread: std::thread::JoinHandle<IndexWriter>,
}

pub(crate) struct Indexer {
    inner: Arc<Inner>,
    writers: HashMap<Slot, OpenWriter>,
    /// Partitions closed without being sealed, with the time of their last write.
    unsealed: HashMap<Slot, Instant>,
    sealing: HashMap<Slot, Sealing>,
    tick: u64,
    applied_seq: u64,
    bytes_since_flush: u64,
    last_refresh: Instant,
    last_flush: Instant,
    /// A partition closed without reaching its durable point: the WAL must keep
    /// everything until a restart replays it.
    durability_lost: bool,
    /// Partitions whose writer failed to commit: what it held is missing from them,
    /// so their durable point must not move past it. It stays where it was until a
    /// restart rolls them back to it and replays the WAL.
    lost: std::collections::HashSet<Slot>,
}

impl Indexer {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Indexer {
            inner,
            writers: HashMap::new(),
            unsealed: HashMap::new(),
            sealing: HashMap::new(),
            tick: 0,
            applied_seq: 0,
            bytes_since_flush: 0,
            last_refresh: Instant::now(),
            last_flush: Instant::now(),
            durability_lost: false,
            lost: Default::default(),
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
        let refresh = self.inner.config.refresh_interval;
        // Partitions left unsealed by an earlier run are sealed once they stay idle.
        let handles: Vec<Arc<IndexHandle>> = self.inner.by_uuid.read().values().cloned().collect();
        for h in handles {
            for key in h.partitions.read().keys() {
                self.unsealed.insert((h.uuid, *key), Instant::now());
            }
        }
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
                    self.unsealed.retain(|(u, _), _| *u != uuid);
                    let slots: Vec<Slot> = self
                        .sealing
                        .keys()
                        .filter(|(u, _)| *u == uuid)
                        .copied()
                        .collect();
                    for slot in slots {
                        self.finish_seal(slot);
                    }
                    let _ = reply.send(());
                }
                Ok(Msg::DropPartition(uuid, key, reply)) => {
                    self.writers.remove(&(uuid, key));
                    self.unsealed.remove(&(uuid, key));
                    self.finish_seal((uuid, key));
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
                    // Closing writers makes them durable too. Seals in progress are
                    // waited for; the others wait for the next run.
                    let writers: Vec<(Slot, OpenWriter)> = self.writers.drain().collect();
                    for (slot, w) in writers {
                        self.close_writer(slot, w);
                    }
                    let slots: Vec<Slot> = self.sealing.keys().copied().collect();
                    for slot in slots {
                        self.finish_seal(slot);
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
                self.reap_seals();
                self.start_seal();
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
                tracing::trace!(seq, id = %id, partition, ?delete_from, replay, "index");
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
            // A write for a partition being sealed waits for the merge.
            self.finish_seal(slot);
            self.unsealed.remove(&slot);
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
                self.close_writer(slot, w);
            }
        }
    }

    /// Commits, makes durable and closes a writer. The partition is sealed later, once
    /// it has been idle for `idle_writer_close`.
    fn close_writer(&mut self, slot: Slot, mut w: OpenWriter) {
        let t = Instant::now();
        if w.uncommitted || w.undurable {
            if let Err(e) = w.writer.commit() {
                tracing::error!(error = %e, "commit failed while closing a writer; the WAL keeps its data until a restart replays it");
                self.durability_lost = true;
                self.lost.insert(slot);
                return;
            }
        }
        // Merges the commit started finish first, so the durable point has them.
        let _ = w.writer.wait_merging_threads();
        let _ = w.partition.reader.reload();
        if self.lost.contains(&slot) {
            return;
        }
        if w.undurable {
            self.make_durable(&w.partition);
        }
        self.unsealed.insert(slot, w.last_write);
        self.inner.metrics.record_commit(t.elapsed());
    }

    fn make_durable(&mut self, partition: &Partition) {
        tracing::trace!(
            partition = partition.key,
            seq = self.applied_seq,
            "durable point (close or seal)"
        );
        if let Err(e) = partition.dir.make_durable(self.applied_seq) {
            tracing::error!(error = %e, "making a partition durable failed; the WAL keeps its data");
            self.durability_lost = true;
        } else {
            partition
                .durable_seq
                .store(self.applied_seq, Ordering::SeqCst);
        }
    }

    /// Starts sealing one closed partition whose time range has passed and which has
    /// not been written for `idle_writer_close`. One seal runs at a time, so merging
    /// never takes both cores from indexing.
    fn start_seal(&mut self) {
        if !self.sealing.is_empty() {
            return;
        }
        let now = cairn_core::time::now_micros();
        let idle = self.inner.config.idle_writer_close;
        let due: Vec<Slot> = self
            .unsealed
            .iter()
            .filter(|(slot, last)| last.elapsed() >= idle && !self.writers.contains_key(slot))
            .map(|(slot, _)| *slot)
            .collect();
        for slot in due {
            let partition = self
                .inner
                .index_by_uuid(slot.0)
                .and_then(|h| h.partitions.read().get(&slot.1).cloned());
            let Some(partition) = partition else {
                self.unsealed.remove(&slot);
                continue;
            };
            if partition.end > now {
                continue;
            }
            self.unsealed.remove(&slot);
            if partition.removed.load(Ordering::SeqCst) {
                continue;
            }
            let ids = partition.index.searchable_segment_ids().unwrap_or_default();
            if ids.len() <= 1 {
                continue;
            }
            let opts = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .memory_budget_per_thread(15_000_000)
                .build();
            let mut writer: IndexWriter = match partition.index.writer_with_options(opts) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a writer to seal a partition");
                    continue;
                }
            };
            writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            let spawned = std::thread::Builder::new()
                .name("cairn-seal".into())
                .spawn(move || {
                    let t = Instant::now();
                    match writer.merge(&ids).wait() {
                        Ok(_) => tracing::debug!(segments = ids.len(), took = ?t.elapsed(), "partition sealed"),
                        Err(e) => tracing::warn!(error = %e, "merging a sealed partition failed"),
                    }
                    writer
                });
            match spawned {
                Ok(thread) => {
                    self.sealing.insert(slot, Sealing { partition, thread });
                }
                Err(e) => tracing::warn!(error = %e, "cannot start a seal"),
            }
            return;
        }
    }

    /// Finishes the seals whose merge is done.
    fn reap_seals(&mut self) {
        let done: Vec<Slot> = self
            .sealing
            .iter()
            .filter(|(_, s)| s.thread.is_finished())
            .map(|(slot, _)| *slot)
            .collect();
        for slot in done {
            self.finish_seal(slot);
        }
    }

    /// Waits for the seal of `slot`, if one runs, and makes its result durable.
    fn finish_seal(&mut self, slot: Slot) {
        let Some(s) = self.sealing.remove(&slot) else {
            return;
        };
        let Ok(writer) = s.thread.join() else {
            tracing::error!("a seal thread panicked");
            return;
        };
        // The merge is in the partition's meta.json: reload, then record the merged
        // commit as the durable point. The partition received no record meanwhile
        // (a record for it waits for this), so it holds everything up to here.
        let _ = writer.wait_merging_threads();
        let _ = s.partition.reader.reload();
        if !s.partition.removed.load(Ordering::SeqCst) {
            self.make_durable(&s.partition);
        }
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
                self.lost.insert(slot);
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
        for (slot, w) in self.writers.iter_mut() {
            if w.undurable && !self.lost.contains(slot) {
                tracing::trace!(partition = w.partition.key, seq, "durable at flush");
                match w.partition.dir.make_durable(seq) {
                    Ok(()) => {
                        w.partition.durable_seq.store(seq, Ordering::SeqCst);
                        w.undurable = false;
                    }
                    Err(e) => result = Err(e),
                }
            }
        }
        // Close writers idle for a while: frees their memory (sealing follows).
        let idle: Vec<Slot> = self
            .writers
            .iter()
            .filter(|(_, w)| w.last_write.elapsed() > self.inner.config.idle_writer_close)
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(w) = self.writers.remove(&k) {
                self.close_writer(k, w);
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
