//! The indexer: the one thread that applies durable WAL records to partitions, in
//! sequence order, and owns every open tantivy writer.
//!
//! It also drives the two tiers of visibility: *refresh* (a tantivy commit into the
//! no-fsync directory plus a reader reload, every `refresh_interval`) and *flush*
//! (a durable point per partition, then WAL segments are released). Open writers are
//! bounded (LRU): evicting one makes its partition durable, and a partition whose time
//! range has passed is merged down to one segment when its writer is closed.
//!
//! Documents are indexed on this thread into one in-memory segment per partition
//! (tantivy's `SegmentWriter`), not through `IndexWriter::add_document`: tantivy's
//! writer gives each open index its own worker thread, a queue of up to 10,000 built
//! documents and a memory budget of its own, so memory grew with the number of
//! indices being written. Here all in-memory segments share one budget
//! (`indexing_memory_bytes`); when they outgrow it the largest is written out as a
//! segment, as Elasticsearch shares its indexing buffer across shards. The
//! `IndexWriter` still owns commits, deletes of committed documents and merges; a
//! written-out segment joins it through `add_segment`. A delete of a document still
//! in memory is recorded against its segment and written as the segment's
//! alive bitset, so a replace never forces a segment out early.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::directory::TerminatingWrite;
use tantivy::index::SegmentComponent;
use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::indexer::{AddOperation, SegmentWriter};
use tantivy::merge_policy::{LogMergePolicy, MergePolicy, NoMergePolicy};
use tantivy::{BitSet, DocId, FutureResult, IndexWriter, Segment, TantivyDocument, Term};

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

/// A partition's documents indexed since its last refresh, in memory.
struct Buffer {
    segment: Segment,
    writer: SegmentWriter,
    /// Hash of each `_id` in the buffer to its document, for deletes.
    ids: HashMap<u64, DocId>,
    /// Documents deleted (replaced) while still in the buffer.
    dead: Vec<DocId>,
    /// `writer.mem_usage()` after the last document.
    mem: usize,
}

/// One in-memory segment may not outgrow this (tantivy addresses its arena with
/// 32-bit offsets), whatever the shared budget.
const MAX_BUFFER_BYTES: usize = 2 << 30;

struct OpenWriter {
    writer: IndexWriter,
    partition: Arc<Partition>,
    slot: (u128, i64),
    buffer: Option<Buffer>,
    /// Segments the writer holds (committed, and added since), the buffer aside.
    segments: usize,
    /// A delete was queued since the last commit.
    deletes_queued: bool,
    /// Its segments changed since merge candidates were last looked for.
    merge_check: bool,
    /// `Indexer::tick` when its last merge started: the writer waiting longest goes
    /// first.
    last_merge: u64,
    last_used: u64,
    uncommitted: bool,
    undurable: bool,
    last_write: Instant,
}

/// Sizes a new in-memory segment's term table (tantivy derives it from a budget);
/// what the segment may grow to is decided by the shared budget.
const SEGMENT_SIZING_BYTES: usize = 32 << 20;

impl OpenWriter {
    fn buffer_mem(&self) -> usize {
        self.buffer.as_ref().map_or(0, |b| b.mem)
    }

    /// Indexes a document into the partition's in-memory segment.
    fn add(&mut self, doc: TantivyDocument, id_hash: u64) -> tantivy::Result<()> {
        let b = match &mut self.buffer {
            Some(b) => b,
            None => {
                let segment = self.partition.index.new_segment();
                let writer = SegmentWriter::for_segment(SEGMENT_SIZING_BYTES, segment.clone())?;
                self.buffer.insert(Buffer {
                    segment,
                    writer,
                    ids: HashMap::new(),
                    dead: Vec::new(),
                    mem: 0,
                })
            }
        };
        let doc_id = b.writer.max_doc();
        // The opstamp only serves tantivy's own delete bookkeeping, which the buffer
        // does itself.
        b.writer.add_document(AddOperation {
            opstamp: 0,
            document: doc,
        })?;
        b.ids.insert(id_hash, doc_id);
        b.mem = b.writer.mem_usage() + b.ids.capacity() * 16 + b.dead.capacity() * 4;
        Ok(())
    }

    /// Writes the in-memory segment to disk and hands it to the index writer; it is
    /// searchable after the next commit.
    ///
    /// tantivy applies a queued delete to every segment added before the commit that
    /// takes it off the queue, so a segment added after a delete of an id it holds
    /// anew (a replace) would lose the new copy. Queued deletes are committed first.
    fn write_out(&mut self) -> tantivy::Result<()> {
        if self.buffer.is_none() {
            return Ok(());
        }
        if self.deletes_queued {
            self.commit()?;
        }
        let Some(b) = self.buffer.take() else {
            return Ok(());
        };
        let max_doc = b.writer.max_doc();
        b.writer.finalize()?;
        let mut segment = b.segment.with_max_doc(max_doc);
        let dead = b.dead.len() as u32;
        if dead >= max_doc {
            // Nothing alive: the files are collected with the other unused ones.
            return Ok(());
        }
        if dead > 0 {
            let mut alive = BitSet::with_max_value_and_full(max_doc);
            for doc in &b.dead {
                alive.remove(*doc);
            }
            segment = segment.with_delete_meta(dead, self.writer.commit_opstamp());
            let mut file = segment.open_write(SegmentComponent::Delete)?;
            tantivy::fastfield::write_alive_bitset(&alive, &mut file)?;
            file.terminate()?;
        }
        let meta = segment.meta().clone();
        meta.untrack_temp_docstore();
        self.writer.add_segment(meta)?;
        self.segments += 1;
        Ok(())
    }

    /// Commits and recounts the segments (empty ones go at a commit).
    fn commit(&mut self) -> tantivy::Result<()> {
        self.writer.commit()?;
        self.deletes_queued = false;
        self.count_segments();
        Ok(())
    }

    fn count_segments(&mut self) {
        // When unreadable, assume some: a needless delete only costs a lookup.
        self.segments = self
            .partition
            .index
            .searchable_segment_ids()
            .map_or(1, |ids| ids.len());
    }
}

/// A merge started by the indexer; at most one per writer.
struct RunningMerge {
    slot: (u128, i64),
    done: FutureResult<Option<SegmentMeta>>,
}

pub(crate) struct Indexer {
    inner: Arc<Inner>,
    writers: HashMap<(u128, i64), OpenWriter>,
    /// Memory of all in-memory segments.
    buffered: usize,
    merges: Vec<RunningMerge>,
    merge_policy: LogMergePolicy,
    /// Partitions whose writer was closed (evicted) after a commit that is not
    /// durable yet: the next flush makes them durable with the open ones.
    closed_undurable: HashMap<(u128, i64), Arc<Partition>>,
    id_hasher: RandomState,
    tick: u64,
    applied_seq: u64,
    bytes_since_flush: u64,
    last_refresh: Instant,
    last_flush: Instant,
    /// A partition closed without reaching its durable point: the WAL must keep
    /// everything until a restart replays it.
    durability_lost: bool,
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.inner.backlog.close();
    }
}

impl Indexer {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Indexer {
            inner,
            writers: HashMap::new(),
            buffered: 0,
            merges: Vec::new(),
            merge_policy: LogMergePolicy::default(),
            closed_undurable: HashMap::new(),
            id_hasher: RandomState::new(),
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
                    let bytes = crate::Backlog::bytes_of(&batch);
                    for d in batch {
                        self.apply(d.seq, d.op, d.attachment, false);
                    }
                    self.inner.backlog.release(bytes);
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
                    self.closed_undurable.retain(|(u, _), _| *u != uuid);
                    self.merges.retain(|m| m.slot.0 != uuid);
                    let _ = reply.send(());
                }
                Ok(Msg::DropPartition(uuid, key, reply)) => {
                    self.writers.remove(&(uuid, key));
                    self.closed_undurable.remove(&(uuid, key));
                    self.merges.retain(|m| m.slot != (uuid, key));
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
                        self.close_writer(w, true);
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
            self.schedule_merges();
            let m = &self.inner.metrics;
            m.indexing_buffer_bytes
                .store(self.buffered as u64, Ordering::Relaxed);
            m.merges_running
                .store(self.merges.len() as u64, Ordering::Relaxed);
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
                let id_hash = self.id_hasher.hash_one(&id);
                let slot = (handle.uuid, partition);
                if let Some(w) = self.writer(&handle, partition, seq, replay, true) {
                    let before = w.buffer_mem();
                    let added = w.add(doc, id_hash);
                    let after = w.buffer_mem();
                    w.uncommitted = true;
                    w.undurable = true;
                    w.last_write = Instant::now();
                    self.buffered = (self.buffered + after).saturating_sub(before);
                    match added {
                        Err(e) => self.writer_failed(slot, "indexing a document", e),
                        Ok(()) if after > MAX_BUFFER_BYTES => self.write_out(slot),
                        Ok(()) => {}
                    }
                    self.keep_to_budget();
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
        let id_hash = self.id_hasher.hash_one(id);
        if let Some(w) = self.writer(handle, key, seq, replay, false) {
            if let Some(b) = &mut w.buffer {
                if let Some(doc) = b.ids.remove(&id_hash) {
                    b.dead.push(doc);
                }
            }
            // Copies in segments the writer holds. A partition without any has
            // nothing to delete, and a delete queued there would stay queued (tantivy
            // moves queued deletes along only for existing segments) and hit the next
            // segment written out, with the new copy in it.
            if w.segments > 0 {
                let term = Term::from_field_text(w.partition.fields.id, id);
                w.writer.delete_term(term);
                w.deletes_queued = true;
            }
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
            // Documents do not go through the writer's own worker (see the module
            // docs), so its budget only has to be valid.
            let opts = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .memory_budget_per_thread(SEGMENT_SIZING_BYTES)
                .build();
            let writer = match partition.index.writer_with_options(opts) {
                Ok(w) => {
                    // Merges are scheduled here, across all writers (see the module docs).
                    w.set_merge_policy(Box::new(NoMergePolicy));
                    w
                }
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
                    slot,
                    buffer: None,
                    segments: 0,
                    deletes_queued: false,
                    merge_check: true,
                    last_merge: 0,
                    last_used: tick,
                    uncommitted: false,
                    // Closed before its last commit was made durable: it still is not.
                    undurable: self.closed_undurable.remove(&slot).is_some(),
                    last_write: Instant::now(),
                },
            );
            if let Some(w) = self.writers.get_mut(&slot) {
                w.count_segments();
            }
        }
        let w = self.writers.get_mut(&slot)?;
        if replay && seq <= w.partition.durable_seq.load(Ordering::SeqCst) {
            return None;
        }
        w.last_used = tick;
        Some(w)
    }

    /// Reaps finished merges and starts new ones, at most
    /// `max_concurrent_merges` at once over all writers and one per writer, the
    /// writer that waited longest first. tantivy would run every writer's merges on
    /// that writer's own thread: with many indices written at once, as many merges
    /// at once, each with its buffers.
    fn schedule_merges(&mut self) {
        let mut finished = Vec::new();
        self.merges.retain_mut(|m| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::Pin::new(&mut m.done).poll(&mut cx) {
                std::task::Poll::Ready(r) => {
                    finished.push((m.slot, r));
                    false
                }
                std::task::Poll::Pending => true,
            }
        });
        for (slot, r) in finished {
            // A closed writer's merge ends in an error: nothing to report.
            let Some(w) = self.writers.get_mut(&slot) else {
                continue;
            };
            if let Err(e) = r {
                tracing::warn!(index = ?w.partition.path(), error = %e, "a merge failed");
            }
            // Searchers let go of the merged segments; the merge may have made room
            // for another.
            if let Err(e) = w.partition.reader.reload() {
                tracing::error!(error = %e, "reader reload failed");
            }
            w.count_segments();
            w.merge_check = true;
            // The merged segment is made durable (and the merged-away files freed)
            // by the next flush.
            w.undurable = true;
        }
        while self.merges.len() < self.inner.config.max_concurrent_merges.max(1) {
            let Some((slot, segments)) = self.next_merge() else {
                return;
            };
            self.tick += 1;
            let Some(w) = self.writers.get_mut(&slot) else {
                return;
            };
            w.last_merge = self.tick;
            let done = w.writer.merge(&segments);
            self.merges.push(RunningMerge { slot, done });
        }
    }

    fn next_merge(&mut self) -> Option<((u128, i64), Vec<SegmentId>)> {
        let mut best: Option<(u64, (u128, i64), Vec<SegmentId>)> = None;
        for (slot, w) in self.writers.iter_mut() {
            if !w.merge_check || self.merges.iter().any(|m| m.slot == *slot) {
                continue;
            }
            if best.as_ref().is_some_and(|b| b.0 <= w.last_merge) {
                continue;
            }
            let metas = match w.partition.index.searchable_segment_metas() {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a partition's segments");
                    w.merge_check = false;
                    continue;
                }
            };
            match self
                .merge_policy
                .compute_merge_candidates(&metas)
                .into_iter()
                .next()
            {
                Some(c) => best = Some((w.last_merge, *slot, c.0)),
                None => w.merge_check = false,
            }
        }
        best.map(|(_, slot, segments)| (slot, segments))
    }

    /// Writes out the largest in-memory segments until all of them fit the shared
    /// budget.
    fn keep_to_budget(&mut self) {
        while self.buffered > self.inner.config.indexing_memory_bytes {
            let largest = self
                .writers
                .iter()
                .filter_map(|(slot, w)| w.buffer.as_ref().map(|b| (b.mem, *slot)))
                .max();
            match largest {
                Some((_, slot)) => self.write_out(slot),
                None => {
                    self.buffered = 0;
                    return;
                }
            }
        }
    }

    fn write_out(&mut self, slot: (u128, i64)) {
        let Some(w) = self.writers.get_mut(&slot) else {
            return;
        };
        let before = w.buffer_mem();
        let r = w.write_out();
        self.buffered = self.buffered.saturating_sub(before - w.buffer_mem());
        if let Err(e) = r {
            self.writer_failed(slot, "writing out a segment", e);
        }
    }

    /// tantivy's writers are unusable after an I/O error (disk full...): drop it so
    /// writes can resume when the fault clears. What it held is still in the WAL,
    /// which is no longer trimmed until a restart replays it.
    fn writer_failed(&mut self, slot: (u128, i64), what: &str, e: tantivy::TantivyError) {
        tracing::error!(error = %e, "{what} failed; reopening the writer later, the WAL keeps the data");
        self.durability_lost = true;
        if let Some(w) = self.writers.remove(&slot) {
            self.buffered = self.buffered.saturating_sub(w.buffer_mem());
        }
    }

    /// Closes the least recently used writer while too many are open, preferring
    /// one without a running merge (closing waits for it).
    fn evict_if_full(&mut self) {
        while self.writers.len() >= self.inner.config.max_open_writers.max(1) {
            let Some(slot) = self
                .writers
                .iter()
                .min_by_key(|(slot, w)| {
                    let merging = self.merges.iter().any(|m| m.slot == **slot);
                    (merging, w.last_used)
                })
                .map(|(k, _)| *k)
            else {
                return;
            };
            if let Some(w) = self.writers.remove(&slot) {
                self.close_writer(w, false);
            }
        }
    }

    /// Commits and closes a writer. When it closes for good (`finished`: idle, or
    /// shutdown) its partition is made durable now, and merged down to one segment
    /// first if its time range has passed (it is sealed). An evicted writer does
    /// neither: its partition is made durable by the next flush and merged as usual
    /// when written again, so writing more partitions than writers may be open (a
    /// backfill of past days) does not stall ingest on a whole-partition merge and an
    /// fsync per eviction.
    fn close_writer(&mut self, mut w: OpenWriter, finished: bool) {
        let t = Instant::now();
        // A merge of this writer's segments finishes first: the sealing merge below
        // takes every segment.
        if let Some(i) = self.merges.iter().position(|m| m.slot == w.slot) {
            let m = self.merges.swap_remove(i);
            if let Err(e) = m.done.wait() {
                tracing::warn!(error = %e, "a merge failed");
            }
        }
        let merge_wait = t.elapsed();
        self.buffered = self.buffered.saturating_sub(w.buffer_mem());
        if let Err(e) = w.write_out() {
            tracing::error!(error = %e, "writing out indexed documents failed while closing a writer; the WAL keeps them until a restart replays it");
            self.durability_lost = true;
            return;
        }
        if w.uncommitted || w.undurable {
            if let Err(e) = w.commit() {
                tracing::error!(error = %e, "commit failed while closing a writer; the WAL keeps its data until a restart replays it");
                self.durability_lost = true;
                return;
            }
            let _ = w.partition.reader.reload();
        }
        let committed = t.elapsed();
        if finished && w.partition.end <= cairn_core::time::now_micros() {
            let ids = w
                .partition
                .index
                .searchable_segment_ids()
                .unwrap_or_default();
            if ids.len() > 1 {
                if let Err(e) = w.writer.merge(&ids).wait() {
                    tracing::warn!(error = %e, "merging a sealed partition failed");
                }
                let _ = w.commit();
                let _ = w.partition.reader.reload();
                w.undurable = true;
            }
        }
        if w.undurable && !finished {
            self.closed_undurable.insert(w.slot, w.partition.clone());
        } else if w.undurable {
            self.closed_undurable.remove(&w.slot);
            if let Err(e) = w.partition.dir.make_durable(self.applied_seq) {
                tracing::error!(error = %e, "making a partition durable failed; the WAL keeps its data");
                self.durability_lost = true;
            } else {
                w.partition
                    .durable_seq
                    .store(self.applied_seq, Ordering::SeqCst);
            }
        }
        let durable = t.elapsed();
        let _ = w.writer.wait_merging_threads();
        tracing::debug!(partition = ?w.partition.path(), ?merge_wait, ?committed, ?durable, total = ?t.elapsed(), "closed a writer");
        self.inner.metrics.record_commit(t.elapsed());
    }

    fn refresh(&mut self) {
        let t = Instant::now();
        tracing::debug!(
            buffered = self.buffered,
            writers = self.writers.len(),
            "refresh"
        );
        let mut any = false;
        let mut failed = Vec::new();
        for (slot, w) in self.writers.iter_mut() {
            if w.uncommitted {
                let before = w.buffer_mem();
                let r = w.write_out().and_then(|()| w.commit());
                self.buffered = self.buffered.saturating_sub(before - w.buffer_mem());
                if let Err(e) = r {
                    failed.push((*slot, e));
                    continue;
                }
                if let Err(e) = w.partition.reader.reload() {
                    tracing::error!(error = %e, "reader reload failed");
                }
                w.uncommitted = false;
                w.merge_check = true;
                any = true;
            }
        }
        for (slot, e) in failed {
            self.writer_failed(slot, "refresh commit", e);
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
        let closed: Vec<(u128, i64)> = self.closed_undurable.keys().copied().collect();
        for slot in closed {
            let Some(p) = self.closed_undurable.get(&slot) else {
                continue;
            };
            match p.dir.make_durable(seq) {
                Ok(()) => {
                    p.durable_seq.store(seq, Ordering::SeqCst);
                    self.closed_undurable.remove(&slot);
                }
                Err(e) => result = Err(e),
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
                self.close_writer(w, true);
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
