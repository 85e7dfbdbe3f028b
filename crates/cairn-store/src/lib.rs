//! Cairn's write path: durable ingest into time-partitioned tantivy indexes.
//!
//! ```text
//! request -> mapping (typed leaves) -> WAL append + fsync (group commit) -> ack
//!                                          \-> indexer thread -> partition writers
//! ```
//! - [`wal`]: the write-ahead log; nothing is acknowledged before it is fsynced.
//! - [`indexer`]: applies WAL records to partitions; refresh (searchable, cheap, every
//!   `refresh_interval`) is separate from flush (a durable point per partition, after
//!   which WAL segments are deleted).
//! - [`dir`]: the tantivy directory that makes that split possible.
//! - [`partition`]: one tantivy index per index per UTC day (or hour).
//! - [`meta`]: the crash-safe metastore.
//! - [`admin`]: index, template, data stream and ILM administration.
//!
//! Crash safety: a partition opens at its durable point and the WAL replays every
//! record after it; replay is idempotent by WAL sequence number, so an acknowledged
//! document is never lost and never duplicated.
//!
//! `_id` uniqueness within an index spans all its partitions: explicit-id writes look
//! the id up in the not-yet-refreshed set and in every partition's `_id` terms (under
//! a per-index lock), and a replace whose new `@timestamp` falls in another partition
//! deletes the old copy there.

// EsError carries Elasticsearch's whole error object; errors are the cold path, so
// returning it by value is simpler than boxing it everywhere.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod dir;
mod idfilter;
pub mod indexer;
pub mod meta;
pub mod metrics;
pub mod partition;
pub mod schema;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::mapping::Mapping;
use cairn_core::time::{self, now_micros};
use cairn_core::EsError;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

use crate::indexer::{Attachment, Indexer, Msg};
use crate::meta::{MetaState, MetaStore};
use crate::partition::{parse_partition_dir_name, partition_dir_name, Granularity, Partition};
use crate::wal::{StdFs, Wal, WalFs, WalOp};

pub use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the data directory {0} is in use by another cairn process (it holds {0}/cairn.lock)")]
    Locked(String),
    #[error("{0}")]
    Format(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::InvalidData {
            StoreError::Format(source.to_string())
        } else {
            StoreError::Io {
                path: path.display().to_string(),
                source,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub refresh_interval: Duration,
    pub flush_interval: Duration,
    pub flush_threshold_bytes: u64,
    pub granularity: Granularity,
    /// Memory shared by all open index writers.
    pub indexing_memory_bytes: usize,
    pub max_open_writers: usize,
    pub idle_writer_close: Duration,
    /// Accepted `@timestamp` window around now.
    pub max_past: Duration,
    pub max_future: Duration,
    pub wal_segment_bytes: u64,
    pub zstd_level: i32,
    pub docstore_block_bytes: usize,
    pub retention_check_interval: Duration,
    /// Per-document shape limits (values per document, string size).
    pub doc_limits: cairn_core::limits::DocLimits,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            refresh_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(60),
            flush_threshold_bytes: 512 * 1024 * 1024,
            granularity: Granularity::Day,
            // Two writers of 32 MiB each: every open tantivy writer also costs a
            // queue of up to 10,000 built documents, an indexing thread and its own
            // merges (~40 MiB each, measured), so the number of writers, not the
            // budget, is what bounds memory when many indices are written at once.
            indexing_memory_bytes: 64 * 1024 * 1024,
            max_open_writers: 2,
            idle_writer_close: Duration::from_secs(300),
            max_past: Duration::from_secs(3650 * 86_400),
            max_future: Duration::from_secs(2 * 86_400),
            wal_segment_bytes: 64 * 1024 * 1024,
            zstd_level: 3,
            docstore_block_bytes: 512 * 1024,
            retention_check_interval: Duration::from_secs(60),
            doc_limits: Default::default(),
        }
    }

    /// tantivy needs at least 15 MB per indexing thread.
    pub fn writer_memory_bytes(&self) -> usize {
        (self.indexing_memory_bytes / self.max_open_writers.max(1)).max(15_000_000)
    }
}

/// A not-yet-refreshed write with an explicit id, kept so that `_id` checks see
/// documents the searchers do not, and so that a realtime get knows to refresh first.
/// The source is not kept: at full ingest speed that would hold a refresh interval's
/// worth of documents. Writes with generated ids are not kept either (see
/// `IndexHandle::generated_seq`).
#[derive(Debug, Clone)]
struct PendingDoc {
    seq: u64,
    partition: i64,
    /// false: deleted.
    exists: bool,
    version: u64,
}

#[derive(Default)]
struct Pending {
    by_id: HashMap<String, PendingDoc>,
    by_seq: BTreeMap<u64, String>,
}

/// A live index.
pub struct IndexHandle {
    pub name: String,
    pub uuid: u128,
    pub uuid_str: String,
    pub data_stream: Option<String>,
    mapping: RwLock<Arc<Mapping>>,
    pub partitions: RwLock<BTreeMap<i64, Arc<Partition>>>,
    pending: Mutex<Pending>,
    /// Serializes explicit-id writes of this index from the id check to the WAL append.
    id_lock: tokio::sync::Mutex<()>,
    pub refreshed_seq: AtomicU64,
    /// The WAL position of the last write with an id generated by this process. Such
    /// writes are not kept in the pending set (their ids cannot collide), so an `_id`
    /// check or realtime get of one of those ids refreshes first while this is ahead
    /// of `refreshed_seq`.
    generated_seq: AtomicU64,
    deleted: AtomicBool,
    dir: PathBuf,
    pub docs_ingested: AtomicU64,
    pub bytes_ingested: AtomicU64,
}

impl std::fmt::Debug for IndexHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl IndexHandle {
    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping.read().clone()
    }

    /// Whether a write with a generated id may not be visible to readers yet.
    fn generated_unrefreshed(&self) -> bool {
        self.refreshed_seq.load(Ordering::SeqCst) < self.generated_seq.load(Ordering::SeqCst)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// Partitions, newest first.
    pub fn partitions_newest_first(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().rev().cloned().collect()
    }

    pub fn doc_count(&self) -> u64 {
        self.partitions.read().values().map(|p| p.num_docs()).sum()
    }

    pub fn disk_bytes(&self) -> u64 {
        partition::dir_size(&self.dir)
    }

    fn rebuild_document(
        &self,
        id: &str,
        source: &[u8],
        ts: i64,
        version: u64,
    ) -> Option<TantivyDocument> {
        let doc: Map<String, Value> = serde_json::from_slice(source).ok()?;
        let mut m = (*self.mapping()).clone();
        let mut prepared = m.prepare(&doc, id).ok()?;
        // A document placed by its ingest time had `event.ingested` indexed (= ts).
        if !doc.contains_key("@timestamp")
            && !prepared.leaves.iter().any(|l| l.path == "event.ingested")
        {
            prepared.leaves.push(cairn_core::mapping::Leaf {
                path: "event.ingested".into(),
                value: cairn_core::mapping::LeafValue::Date(ts),
            });
        }
        let (_, fields) = schema::build_schema();
        Some(schema::build_document(
            &fields,
            id,
            source,
            ts,
            version,
            &prepared.leaves,
        ))
    }

    fn partition_or_create(&self, inner: &Inner, key: i64) -> std::io::Result<Arc<Partition>> {
        if let Some(p) = self.partitions.read().get(&key) {
            return Ok(p.clone());
        }
        let mut parts = self.partitions.write();
        if let Some(p) = parts.get(&key) {
            return Ok(p.clone());
        }
        let g = inner.config.granularity;
        let path = self.dir.join(partition_dir_name(key, g));
        let p = Arc::new(Partition::open(
            &path,
            key,
            g,
            partition::index_settings(inner.config.zstd_level, inner.config.docstore_block_bytes),
        )?);
        parts.insert(key, p.clone());
        Ok(p)
    }

    /// The stored copy of `id` in one partition: (source, version).
    fn stored_doc(p: &Partition, id: &str) -> Option<(Vec<u8>, u64)> {
        use tantivy::schema::document::Value as _;
        let searcher = p.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(p.fields.id, id),
            IndexRecordOption::Basic,
        );
        let top = searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())
            .ok()?;
        let (_, addr) = top.first()?;
        let doc = searcher.doc::<TantivyDocument>(*addr).ok()?;
        let src = doc
            .get_first(p.fields.source)
            .and_then(|v| v.as_bytes())?
            .to_vec();
        let version = doc
            .get_first(p.fields.version)
            .and_then(|v| v.as_u64())
            .unwrap_or(1);
        Some((src, version))
    }

    /// Looks an id up in the committed partitions: the partition keys holding it, and
    /// the newest version seen.
    fn committed_locations(&self, id: &str) -> (Vec<i64>, u64) {
        let mut out = Vec::new();
        let mut version = 0;
        let id_key = idfilter::id_key(id.as_bytes());
        for (key, p) in self.partitions.read().iter() {
            if Self::holds_id(p, id, id_key) {
                out.push(*key);
                if let Some((_, v)) = Self::stored_doc(p, id) {
                    version = version.max(v);
                }
            }
        }
        (out, version)
    }

    /// Whether a live document of `p` has `id`. Every `create` and explicit-id `index`
    /// asks this of every partition, and almost always for an id that is nowhere: a
    /// segment's `_id` filter rules most segments out, the others get one
    /// term-dictionary probe each, without a query's weight and scorer.
    /// `key` is [`idfilter::id_key`] of `id`, hashed once for all partitions.
    fn holds_id(p: &Partition, id: &str, key: u64) -> bool {
        use tantivy::DocSet as _;
        let searcher = p.reader.searcher();
        let filters = p.id_filters.for_searcher(&searcher, p.fields.id);
        let term = Term::from_field_text(p.fields.id, id);
        let mut segments = searcher.segment_readers().iter().zip(filters.iter());
        segments.any(|(seg, ids)| {
            if !ids.may_hold(key) {
                return false;
            }
            let Ok(inverted) = seg.inverted_index(p.fields.id) else {
                return false;
            };
            let Ok(Some(info)) = inverted.get_term_info(&term) else {
                return false;
            };
            let Some(alive) = seg.alive_bitset() else {
                return true;
            };
            let Ok(mut postings) =
                inverted.read_postings_from_terminfo(&info, IndexRecordOption::Basic)
            else {
                return false;
            };
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED {
                if alive.is_alive(doc) {
                    return true;
                }
                doc = postings.advance();
            }
            false
        })
    }

    /// The newest committed source of `id` and its version, or None. Writes not yet
    /// refreshed are not seen: [`Store::get_doc`] is the realtime get.
    fn committed_doc(&self, id: &str) -> Option<(Vec<u8>, u64)> {
        self.partitions
            .read()
            .values()
            .rev()
            .find_map(|p| Self::stored_doc(p, id))
    }

    /// Where `id` currently lives (pending write or committed partitions) and its
    /// version (the last one, for a deleted id still in the pending set).
    fn locate(&self, id: &str) -> (bool, Vec<i64>, u64) {
        if let Some(p) = self.pending.lock().by_id.get(id) {
            return match p.exists {
                true => (true, vec![p.partition], p.version),
                false => (false, vec![], p.version),
            };
        }
        let (locs, version) = self.committed_locations(id);
        (!locs.is_empty(), locs, version)
    }
}

pub(crate) struct Inner {
    pub config: StoreConfig,
    pub metastore: MetaStore,
    pub meta: Mutex<MetaState>,
    indexes: RwLock<HashMap<String, Arc<IndexHandle>>>,
    by_uuid: RwLock<HashMap<u128, Arc<IndexHandle>>>,
    indexer_tx: Mutex<Option<SyncSender<Msg>>>,
    wal: Mutex<Option<Wal<Attachment>>>,
    pub metrics: Metrics,
    refresh_notify: tokio::sync::watch::Sender<u64>,
    indexer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    lock: Mutex<Option<fs::File>>,
    /// Which indices wildcard expressions may expand to (the server installs the
    /// caller's authorization here); all when unset.
    pub(crate) visibility: std::sync::OnceLock<fn(&str) -> bool>,
}

impl Inner {
    pub(crate) fn index_by_uuid(&self, uuid: u128) -> Option<Arc<IndexHandle>> {
        self.by_uuid.read().get(&uuid).cloned()
    }

    pub(crate) fn after_refresh(&self, seq: u64) {
        for h in self.by_uuid.read().values() {
            h.refreshed_seq.store(seq, Ordering::SeqCst);
            let mut p = h.pending.lock();
            let done: Vec<u64> = p.by_seq.range(..=seq).map(|(s, _)| *s).collect();
            for s in done {
                if let Some(id) = p.by_seq.remove(&s) {
                    if p.by_id.get(&id).is_some_and(|d| d.seq == s) {
                        p.by_id.remove(&id);
                    }
                }
            }
        }
        let _ = self.refresh_notify.send(seq);
    }

    pub(crate) fn wal_release_through(&self, seq: u64) -> std::io::Result<()> {
        if let Some(w) = self.wal.lock().as_ref() {
            w.request_roll();
            w.release_through(seq)?;
        }
        Ok(())
    }

    fn send(&self, msg: Msg) -> Result<(), EsError> {
        let tx = self.indexer_tx.lock().clone();
        match tx {
            Some(tx) => tx
                .send(msg)
                .map_err(|_| EsError::internal("the indexer has stopped")),
            None => Err(EsError::internal("the store is shut down")),
        }
    }
}

/// How a write request waits for visibility (`?refresh=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    False,
    True,
    WaitFor,
}

/// One write of a bulk request, parsed.
#[derive(Debug, Clone)]
pub enum WriteKind {
    Index,
    Create,
    Delete,
    Update {
        doc: Option<Map<String, Value>>,
        doc_as_upsert: bool,
        upsert: Option<Map<String, Value>>,
    },
}

#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub kind: WriteKind,
    pub index: String,
    pub id: Option<String>,
    /// The document (index/create), or the error parsing it.
    pub source: Option<Result<Map<String, Value>, EsError>>,
    /// The document's bytes as sent, stored as `_source` when the store does not
    /// change the document (saves serializing it again).
    pub raw: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ItemResult {
    pub action: &'static str,
    pub index: String,
    pub id: String,
    pub status: u16,
    pub result: Option<&'static str>,
    pub error: Option<EsError>,
    pub seq_no: u64,
    pub version: u64,
}

impl ItemResult {
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("_index".into(), Value::String(self.index.clone()));
        o.insert("_id".into(), Value::String(self.id.clone()));
        if let Some(e) = &self.error {
            o.insert("status".into(), self.status.into());
            o.insert("error".into(), e.to_object());
        } else {
            o.insert("_version".into(), self.version.max(1).into());
            if let Some(r) = self.result {
                o.insert("result".into(), r.into());
            }
            o.insert(
                "_shards".into(),
                serde_json::json!({"total": 1, "successful": 1, "failed": 0}),
            );
            o.insert("_seq_no".into(), self.seq_no.into());
            o.insert("_primary_term".into(), 1.into());
            o.insert("status".into(), self.status.into());
        }
        Value::Object(o)
    }

    /// Appends `{"<action>": <to_json()>}` as JSON text, the same bytes serializing
    /// [`ItemResult::to_json`] gives, without building it: a `_bulk` response has an
    /// item per document, and building them as values cost ~6% of ingest CPU.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let string = |out: &mut Vec<u8>, s: &str| {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, s);
        };
        out.push(b'{');
        string(out, self.action);
        out.extend_from_slice(b":{\"_index\":");
        string(out, &self.index);
        out.extend_from_slice(b",\"_id\":");
        string(out, &self.id);
        if let Some(e) = &self.error {
            let _ = write!(out, ",\"status\":{},\"error\":", self.status);
            let _ = serde_json::to_writer(&mut *out, &e.to_object());
        } else {
            let _ = write!(out, ",\"_version\":{}", self.version.max(1));
            if let Some(r) = self.result {
                out.extend_from_slice(b",\"result\":");
                string(out, r);
            }
            let _ = write!(
                out,
                ",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\"_seq_no\":{},\"_primary_term\":1,\"status\":{}",
                self.seq_no, self.status
            );
        }
        out.extend_from_slice(b"}}");
    }
}

/// The store: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn parse_uuid(s: &str) -> Option<u128> {
    uuid::Uuid::parse_str(s).ok().map(|u| u.as_u128())
}

/// Generates an `_id` like Elasticsearch's: 20 URL-safe base64 characters from 15
/// bytes: the time in milliseconds (6), a per-process counter (3) and a per-process
/// random tag (6). Only the counter differs between ids of one millisecond and the tail
/// is the same for every id of the process, so the term dictionary (an FST) shares both
/// prefixes and suffixes: with 9 random bytes per id in place of counter and tag,
/// building the `_id` dictionary took ~5% of the server's CPU during ingest.
/// Unique while a process makes fewer than 16.7 million ids in one millisecond; the
/// random tag keeps concurrent or restarted processes apart.
pub fn generate_id() -> String {
    use base64::Engine;
    use std::sync::atomic::AtomicU32;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tag = process_tag();
    let mut b = [0u8; 15];
    let ms = (now_micros() / 1000) as u64;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    b[6..9].copy_from_slice(&n.to_be_bytes()[1..]);
    b[9..].copy_from_slice(tag);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The random tail every id this process generates ends with.
fn process_tag() -> &'static [u8; 6] {
    static TAG: std::sync::OnceLock<[u8; 6]> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let mut t = [0u8; 6];
        t.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..6]);
        t
    })
}

/// Whether `id` is one [`generate_id`] made in this process.
fn generated_here(id: &str) -> bool {
    use base64::Engine;
    if id.len() != 20 {
        return false;
    }
    let mut b = [0u8; 15];
    matches!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(id, &mut b),
        Ok(15)
    ) && &b[9..] == process_tag()
}

/// Checks the format versions of everything in a data dir without changing anything.
pub fn preflight(data_dir: &Path) -> Result<(), StoreError> {
    let state = data_dir.join("meta").join("state.json");
    if state.exists() {
        let bytes = fs::read(&state).map_err(io_err(&state))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Format(format!("{}: {e}", state.display())))?;
        let version = v.get("format_version").and_then(Value::as_u64).unwrap_or(0);
        if version != meta::META_FORMAT_VERSION as u64 {
            return Err(StoreError::Format(format!(
                "{} was written with metastore format version {version}; this cairn reads version {}. Nothing was changed.",
                state.display(),
                meta::META_FORMAT_VERSION
            )));
        }
    }
    let wal_dir = data_dir.join("wal");
    if wal_dir.exists() {
        wal::read_all(&wal_dir)
            .map_err(|e| StoreError::Format(format!("{e}. Nothing was changed.")))?;
    }
    let idx = data_dir.join("indices");
    if let Ok(rd) = fs::read_dir(&idx) {
        for index_dir in rd.flatten() {
            if let Ok(parts) = fs::read_dir(index_dir.path()) {
                for p in parts.flatten() {
                    let f = p.path().join(dir::DURABLE_FILE);
                    if let Ok(bytes) = fs::read(&f) {
                        let d: dir::DurablePoint = serde_json::from_slice(&bytes)
                            .map_err(|e| StoreError::Format(format!("{}: {e}", f.display())))?;
                        if d.format_version != dir::PARTITION_FORMAT_VERSION {
                            return Err(StoreError::Format(format!(
                                "partition {} has format version {}; this cairn reads version {}. Nothing was changed.",
                                p.path().display(),
                                d.format_version,
                                dir::PARTITION_FORMAT_VERSION
                            )));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Takes the data-dir lock shared by the server and the CLI.
pub fn lock_data_dir(data_dir: &Path) -> Result<fs::File, StoreError> {
    fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    let lock_path = data_dir.join("cairn.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&f) {
        Ok(true) => Ok(f),
        Ok(false) => Err(StoreError::Locked(data_dir.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(StoreError::Locked(data_dir.display().to_string()))
        }
        Err(e) => Err(StoreError::Io {
            path: lock_path.display().to_string(),
            source: e,
        }),
    }
}

/// Edits one section of the metastore's extension state on a data dir that no server
/// holds (the CLI's `cairn users` / `cairn api-key` on a stopped server). Takes the
/// data-dir lock for the duration, so it refuses while a server runs.
pub fn edit_extension_offline<R>(
    data_dir: &Path,
    section: &str,
    edit: impl FnOnce(&mut Value) -> R,
) -> Result<R, StoreError> {
    let _lock = lock_data_dir(data_dir)?;
    preflight(data_dir)?;
    let meta_dir = data_dir.join("meta");
    let (metastore, mut state) = MetaStore::open(&meta_dir).map_err(io_err(&meta_dir))?;
    let mut value = state
        .extensions
        .get(section)
        .cloned()
        .unwrap_or(Value::Null);
    let out = edit(&mut value);
    state.extensions.insert(section.to_string(), value);
    metastore.save(&state).map_err(io_err(&meta_dir))?;
    Ok(out)
}

impl Store {
    /// Opens the data dir: checks versions, rolls partitions back to their durable
    /// points, replays the WAL, and starts the indexer.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        Self::open_with_fs(config, Arc::new(StdFs))
    }

    pub fn open_with_fs(config: StoreConfig, wal_fs: Arc<dyn WalFs>) -> Result<Store, StoreError> {
        let data = config.data_dir.clone();
        let lock = lock_data_dir(&data)?;
        preflight(&data)?;
        let meta_dir = data.join("meta");
        let (metastore, state) = MetaStore::open(&meta_dir).map_err(io_err(&meta_dir))?;
        let indices_dir = data.join("indices");
        fs::create_dir_all(&indices_dir).map_err(io_err(&indices_dir))?;
        let mut indexes = HashMap::new();
        let mut by_uuid = HashMap::new();
        let mut max_durable = 0u64;
        for (name, im) in &state.indexes {
            let uuid = parse_uuid(&im.uuid)
                .ok_or_else(|| StoreError::Format(format!("index {name} has a bad uuid")))?;
            let mut mapping = Mapping::from_json(&im.mappings)
                .map_err(|e| StoreError::Format(format!("index {name}: {}", e.reason)))?;
            if let Some(l) = im
                .settings
                .get("index.mapping.total_fields.limit")
                .and_then(setting_u64)
            {
                mapping.total_fields_limit = l as usize;
            }
            let dir = indices_dir.join(&im.uuid);
            let mut parts = BTreeMap::new();
            if let Ok(rd) = fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let fname = e.file_name().to_string_lossy().into_owned();
                    let Some((key, g)) = parse_partition_dir_name(&fname) else {
                        continue;
                    };
                    let p = Partition::open(
                        &e.path(),
                        key,
                        g,
                        partition::index_settings(config.zstd_level, config.docstore_block_bytes),
                    )
                    .map_err(io_err(&e.path()))?;
                    max_durable = max_durable.max(p.durable_seq.load(Ordering::SeqCst));
                    parts.insert(key, Arc::new(p));
                }
            }
            let h = Arc::new(IndexHandle {
                name: name.clone(),
                uuid,
                uuid_str: im.uuid.clone(),
                data_stream: im.data_stream.clone(),
                mapping: RwLock::new(Arc::new(mapping)),
                partitions: RwLock::new(parts),
                pending: Mutex::new(Pending::default()),
                id_lock: tokio::sync::Mutex::new(()),
                refreshed_seq: AtomicU64::new(0),
                generated_seq: AtomicU64::new(0),
                deleted: AtomicBool::new(false),
                dir,
                docs_ingested: AtomicU64::new(0),
                bytes_ingested: AtomicU64::new(0),
            });
            indexes.insert(name.clone(), h.clone());
            by_uuid.insert(uuid, h);
        }
        // Directories of deleted indexes.
        if let Ok(rd) = fs::read_dir(&indices_dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if parse_uuid(&n).is_none_or(|u| !by_uuid.contains_key(&u)) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let (refresh_notify, _) = tokio::sync::watch::channel(0u64);
        let inner = Arc::new(Inner {
            config: config.clone(),
            metastore,
            meta: Mutex::new(state),
            indexes: RwLock::new(indexes),
            by_uuid: RwLock::new(by_uuid),
            indexer_tx: Mutex::new(None),
            wal: Mutex::new(None),
            metrics: Metrics::default(),
            refresh_notify,
            indexer_thread: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
            visibility: std::sync::OnceLock::new(),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(1);
        *inner.indexer_tx.lock() = Some(tx.clone());
        let indexer = Indexer::new(inner.clone());
        let join = std::thread::Builder::new()
            .name("cairn-indexer".into())
            .spawn(move || indexer.run(rx))
            .map_err(io_err(&data))?;
        *inner.indexer_thread.lock() = Some(join);
        let wal_dir = data.join("wal");
        let tx_wal = tx.clone();
        let (wal, replay) = Wal::open(
            &wal_dir,
            max_durable + 1,
            config.wal_segment_bytes,
            wal_fs,
            move |batch| {
                let _ = tx_wal.send(Msg::Records(batch));
            },
        )
        .map_err(io_err(&wal_dir))?;
        let n = replay.records.len();
        if n > 0 {
            tracing::info!(records = n, "replaying the write-ahead log");
            for chunk in replay.records.chunks(10_000) {
                tx.send(Msg::Replay(chunk.to_vec()))
                    .map_err(|_| StoreError::Format("the indexer stopped during replay".into()))?;
            }
        }
        *inner.wal.lock() = Some(wal);
        let store = Store { inner };
        // Wait for the replay to be searchable.
        let (rtx, rrx) = tokio::sync::oneshot::channel();
        store
            .inner
            .send(Msg::Refresh(rtx))
            .map_err(|e| StoreError::Format(e.reason))?;
        let _ = rrx.blocking_recv();
        Ok(store)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn wal_fsync_latencies(&self) -> Vec<u64> {
        self.inner
            .wal
            .lock()
            .as_ref()
            .map(|w| w.take_fsync_latencies())
            .unwrap_or_default()
    }

    /// Flushes everything and stops the indexer and the WAL.
    pub fn shutdown(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut durable_through = None;
        if self.inner.send(Msg::Shutdown(tx)).is_ok() {
            durable_through = rx.blocking_recv().ok().flatten();
        }
        *self.inner.indexer_tx.lock() = None;
        let wal = self.inner.wal.lock().take();
        if let Some(w) = wal {
            w.close();
        }
        if let Some(j) = self.inner.indexer_thread.lock().take() {
            let _ = j.join();
        }
        // Everything is in durable partition commits: the log has nothing to replay.
        if let Some(seq) = durable_through {
            let dir = self.inner.config.data_dir.join("wal");
            match wal::remove_segments_through(&dir, seq) {
                Ok(n) => tracing::info!(segments = n, "WAL trimmed at shutdown"),
                Err(e) => tracing::warn!(error = %e, "could not trim the WAL at shutdown"),
            }
        }
        // Release the data-dir lock now, not when the last handle goes.
        self.inner.lock.lock().take();
    }

    pub fn index(&self, name: &str) -> Option<Arc<IndexHandle>> {
        self.inner.indexes.read().get(name).cloned()
    }

    pub fn index_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.indexes.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// Installs the filter that wildcard expansion applies to every index name (the
    /// server's per-request authorization). Set once; later calls are ignored.
    pub fn set_visibility(&self, f: fn(&str) -> bool) {
        let _ = self.inner.visibility.set(f);
    }

    /// Whether wildcard expressions may expand to `name`.
    pub fn visible(&self, name: &str) -> bool {
        self.inner.visibility.get().is_none_or(|f| f(name))
    }

    pub fn meta(&self) -> parking_lot::MutexGuard<'_, MetaState> {
        self.inner.meta.lock()
    }

    /// Saves the metastore after a change made through [`Store::meta`].
    pub fn save_meta(&self, state: &MetaState) -> Result<(), EsError> {
        self.inner
            .metastore
            .save(state)
            .map_err(|e| EsError::internal(format!("cannot save the metastore: {e}")))
    }

    /// Makes every acknowledged write searchable now.
    pub async fn refresh(&self) -> Result<(), EsError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.send(Msg::Refresh(tx)))
            .await
            .map_err(|e| EsError::internal(e.to_string()))??;
        rx.await
            .map_err(|_| EsError::internal("the indexer has stopped"))
    }

    /// Makes every acknowledged write durable in its partition (and trims the WAL).
    pub async fn flush(&self) -> Result<(), EsError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.send(Msg::Flush(tx)))
            .await
            .map_err(|e| EsError::internal(e.to_string()))??;
        rx.await
            .map_err(|_| EsError::internal("the indexer has stopped"))?
            .map_err(|e| EsError::storage(format!("flush failed: {e}")))
    }

    /// Realtime get: the newest source of `id` in `h` and its version, or None. As in
    /// Elasticsearch, a document written since the last refresh is read after a
    /// refresh, which this triggers (once: later gets of older writes find it done).
    pub async fn get_doc(&self, h: &IndexHandle, id: &str) -> Option<(Vec<u8>, u64)> {
        let pending = h.pending.lock().by_id.get(id).map(|p| (p.seq, p.exists));
        match pending {
            Some((_, false)) => return None,
            Some((seq, true)) if h.refreshed_seq.load(Ordering::SeqCst) < seq => {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(index = %h.name, error = %e.reason, "refresh for a realtime get failed");
                }
            }
            None if generated_here(id) && h.generated_unrefreshed() => {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(index = %h.name, error = %e.reason, "refresh for a realtime get failed");
                }
            }
            _ => {}
        }
        h.committed_doc(id)
    }

    /// Realtime get of the source alone.
    pub async fn get_source(&self, h: &IndexHandle, id: &str) -> Option<Vec<u8>> {
        self.get_doc(h, id).await.map(|(s, _)| s)
    }

    async fn wait_refreshed(&self, seq: u64) {
        let mut rx = self.inner.refresh_notify.subscribe();
        while *rx.borrow_and_update() < seq {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Registers a new index (no checks beyond uuid allocation; see [`admin`]).
    pub(crate) fn register_index(
        &self,
        state: &mut MetaState,
        name: &str,
        im: meta::IndexMeta,
        mapping: Mapping,
    ) -> Arc<IndexHandle> {
        let uuid = parse_uuid(&im.uuid).unwrap_or_else(|| uuid::Uuid::new_v4().as_u128());
        let h = Arc::new(IndexHandle {
            name: name.to_string(),
            uuid,
            uuid_str: im.uuid.clone(),
            data_stream: im.data_stream.clone(),
            mapping: RwLock::new(Arc::new(mapping)),
            partitions: RwLock::new(BTreeMap::new()),
            pending: Mutex::new(Pending::default()),
            id_lock: tokio::sync::Mutex::new(()),
            refreshed_seq: AtomicU64::new(0),
            generated_seq: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
            dir: self.inner.config.data_dir.join("indices").join(&im.uuid),
            docs_ingested: AtomicU64::new(0),
            bytes_ingested: AtomicU64::new(0),
        });
        state.indexes.insert(name.to_string(), im);
        self.inner
            .indexes
            .write()
            .insert(name.to_string(), h.clone());
        self.inner.by_uuid.write().insert(uuid, h.clone());
        h
    }

    /// Removes an index: its writers close, its partitions go when no reader holds them.
    pub(crate) async fn unregister_index(&self, name: &str) -> Result<(), EsError> {
        let h = self.inner.indexes.write().remove(name);
        let Some(h) = h else { return Ok(()) };
        h.deleted.store(true, Ordering::SeqCst);
        self.inner.by_uuid.write().remove(&h.uuid);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        let uuid = h.uuid;
        tokio::task::spawn_blocking(move || inner.send(Msg::DropIndex(uuid, tx)))
            .await
            .map_err(|e| EsError::internal(e.to_string()))??;
        let _ = rx.await;
        for p in h.partitions.write().values() {
            p.mark_removed();
        }
        h.partitions.write().clear();
        let dir = h.dir.clone();
        drop(h);
        let _ = fs::remove_dir_all(dir);
        Ok(())
    }

    /// Deletes whole partitions of `index` that end at or before `cutoff`.
    pub async fn drop_partitions_before(&self, index: &Arc<IndexHandle>, cutoff: i64) -> usize {
        let keys: Vec<i64> = index
            .partitions
            .read()
            .values()
            .filter(|p| p.end <= cutoff)
            .map(|p| p.key)
            .collect();
        for key in &keys {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let inner = self.inner.clone();
            let uuid = index.uuid;
            let k = *key;
            let sent =
                tokio::task::spawn_blocking(move || inner.send(Msg::DropPartition(uuid, k, tx)))
                    .await;
            if matches!(sent, Ok(Ok(()))) {
                let _ = rx.await;
            }
            if let Some(p) = index.partitions.write().remove(key) {
                p.mark_removed();
                tracing::info!(index = %index.name, partition = %p.path().display(), "retention: partition deleted");
            }
        }
        keys.len()
    }

    /// Applies a bulk of writes. Each item succeeds or fails on its own.
    pub async fn bulk(&self, requests: Vec<WriteRequest>, refresh: Refresh) -> Vec<ItemResult> {
        let started = std::time::Instant::now();
        let n = requests.len();
        let mut results: Vec<Option<ItemResult>> = vec![None; n];
        let mut requests: Vec<Option<WriteRequest>> = requests.into_iter().map(Some).collect();
        // Group by target index, keeping request order within each index.
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in requests.iter().enumerate() {
            if let Some(r) = r {
                groups.entry(r.index.clone()).or_default().push(i);
            }
        }
        let mut max_seq = 0u64;
        for (index_name, idxs) in groups {
            let handle = match self.resolve_write_index(&index_name).await {
                Ok(h) => h,
                Err(e) => {
                    for i in idxs {
                        let Some(r) = requests[i].take() else {
                            continue;
                        };
                        let r = &r;
                        results[i] = Some(error_item(
                            r,
                            &index_name,
                            r.id.clone().unwrap_or_default(),
                            e.clone(),
                        ));
                    }
                    continue;
                }
            };
            let items: Vec<(usize, WriteRequest)> = idxs
                .iter()
                .filter_map(|&i| requests[i].take().map(|r| (i, r)))
                .collect();
            let (res, seq) = self.bulk_one_index(&handle, items).await;
            max_seq = max_seq.max(seq);
            for (i, r) in res {
                results[i] = Some(r);
            }
        }
        match refresh {
            Refresh::True => {
                let _ = self.refresh().await;
            }
            Refresh::WaitFor => self.wait_refreshed(max_seq).await,
            Refresh::False => {}
        }
        self.inner.metrics.record_bulk(started.elapsed(), n as u64);
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| ItemResult {
                    action: "index",
                    index: String::new(),
                    id: String::new(),
                    status: 500,
                    result: None,
                    error: Some(EsError::internal("item was not processed")),
                    seq_no: 0,
                    version: 0,
                })
            })
            .collect()
    }

    async fn bulk_one_index(
        &self,
        h: &Arc<IndexHandle>,
        items: Vec<(usize, WriteRequest)>,
    ) -> (Vec<(usize, ItemResult)>, u64) {
        let mut out: Vec<(usize, ItemResult)> = Vec::with_capacity(items.len());
        let needs_id_lock = items.iter().any(|(_, r)| r.id.is_some());
        let _guard = if needs_id_lock {
            Some(h.id_lock.lock().await)
        } else {
            None
        };
        let mut items = items.into_iter().peekable();
        let mut last = 0;
        while items.peek().is_some() {
            last = last.max(self.bulk_chunk(h, &mut items, &mut out).await);
        }
        (out, last)
    }

    /// Plans, logs and acknowledges the next chunk of a bulk's items for one index
    /// (at most [`CHUNK_DOCS`] documents or [`CHUNK_BYTES`] of sources), so that a
    /// large bulk holds one chunk of built documents at a time rather than all of
    /// them. Returns the chunk's last WAL sequence number (0 when nothing was logged).
    async fn bulk_chunk(
        &self,
        h: &Arc<IndexHandle>,
        items: &mut std::iter::Peekable<std::vec::IntoIter<(usize, WriteRequest)>>,
        out: &mut Vec<(usize, ItemResult)>,
    ) -> u64 {
        let now = now_micros();
        let g = self.inner.config.granularity;
        let max_past = self.inner.config.max_past.as_micros() as i64;
        let max_future = self.inner.config.max_future.as_micros() as i64;
        let (_, fields) = schema::build_schema();
        // Mapping: work on a copy; persist it if new fields appeared.
        let base = h.mapping();
        let mut mapping = (*base).clone();
        struct Planned {
            slot: usize,
            action: &'static str,
            id: String,
            result: &'static str,
            op: WalOp,
            doc: Attachment,
            pending: Option<PendingDoc>,
            /// The id was generated here (and is not kept in the pending set).
            generated: bool,
            version: u64,
        }
        let mut planned: Vec<Planned> = Vec::new();
        // Explicit ids claimed earlier in this chunk: id -> (where and what, version).
        // Earlier chunks are already in the pending set, which `locate` reads.
        let mut local: HashMap<String, Claimed> = HashMap::new();
        let mut planned_bytes = 0usize;
        loop {
            if planned.len() >= CHUNK_DOCS || planned_bytes >= CHUNK_BYTES {
                break;
            }
            let Some((slot, mut r)) = items.next() else {
                break;
            };
            let action = match r.kind {
                WriteKind::Index => "index",
                WriteKind::Create => "create",
                WriteKind::Delete => "delete",
                WriteKind::Update { .. } => "update",
            };
            let explicit = r.id.clone();
            let id = explicit.clone().unwrap_or_else(generate_id);
            let fail = |e: EsError| ItemResult {
                action,
                index: h.name.clone(),
                id: id.clone(),
                status: e.status,
                result: None,
                error: Some(e),
                seq_no: 0,
                version: 0,
            };
            if id.len() > 512 {
                out.push((
                    slot,
                    fail(EsError::illegal_argument(format!(
                        "id [{}...] is too long, must be no longer than 512 bytes but was: {}",
                        &id[..20.min(id.len())],
                        id.len()
                    ))),
                ));
                continue;
            }
            // Current state of the id (only looked up for explicit ids).
            let current: Option<Located> = if explicit.is_some() {
                if let Some((l, v)) = local.get(&id) {
                    Some(match l {
                        Some((p, s)) => (true, vec![*p], Some(s.clone()), *v),
                        None => (false, vec![], None, *v),
                    })
                } else {
                    if generated_here(&id) && h.generated_unrefreshed() {
                        // Writes with generated ids are not in the pending set.
                        if let Err(e) = self.refresh().await {
                            tracing::warn!(index = %h.name, error = %e.reason, "refresh before an id check failed");
                        }
                    }
                    let (exists, locs, v) = h.locate(&id);
                    Some((exists, locs, None, v))
                }
            } else {
                None
            };
            let (exists, locs, old_version) = match &current {
                Some((e, l, _, v)) => (*e, l.clone(), *v),
                None => (false, vec![], 0),
            };
            // As in Elasticsearch, every change of an id increments its version.
            let version = old_version + 1;
            // Build the document for index/create/update.
            let doc_map: Map<String, Value> = match &r.kind {
                WriteKind::Delete => {
                    if !exists {
                        out.push((
                            slot,
                            ItemResult {
                                action,
                                index: h.name.clone(),
                                id: id.clone(),
                                status: 404,
                                result: Some("not_found"),
                                error: None,
                                seq_no: 0,
                                version: old_version.max(1),
                            },
                        ));
                        continue;
                    }
                    planned.push(Planned {
                        slot,
                        action,
                        id: id.clone(),
                        result: "deleted",
                        op: WalOp::Delete {
                            index: h.uuid,
                            id: id.clone(),
                            partitions: locs.clone(),
                        },
                        doc: None,
                        pending: Some(PendingDoc {
                            seq: 0,
                            partition: 0,
                            exists: false,
                            version,
                        }),
                        generated: false,
                        version,
                    });
                    local.insert(id.clone(), (None, version));
                    continue;
                }
                WriteKind::Index | WriteKind::Create => match r.source.take() {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        out.push((slot, fail(e)));
                        continue;
                    }
                    // Parsed here, one document at a time, to keep a bulk's memory
                    // close to its body size.
                    None if r.raw.is_some() => {
                        match parse_document(r.raw.as_deref().unwrap_or_default()) {
                            Ok(m) => m,
                            Err(e) => {
                                out.push((slot, fail(e)));
                                continue;
                            }
                        }
                    }
                    None => {
                        out.push((
                            slot,
                            fail(EsError::action_request_validation(
                                "Validation Failed: 1: source is missing;",
                            )),
                        ));
                        continue;
                    }
                },
                WriteKind::Update {
                    doc,
                    doc_as_upsert,
                    upsert,
                } => {
                    let cur_source = match &current {
                        Some((true, _, Some(s), _)) => Some(s.as_ref().clone()),
                        Some((true, _, None, _)) => self.get_source(h, &id).await,
                        _ => None,
                    };
                    match cur_source {
                        Some(bytes) => {
                            let mut base: Map<String, Value> =
                                serde_json::from_slice(&bytes).unwrap_or_default();
                            let before = base.clone();
                            if let Some(d) = doc {
                                merge_docs(&mut base, d);
                            }
                            // detect_noop: an update that changes nothing writes nothing.
                            if base == before {
                                out.push((
                                    slot,
                                    ItemResult {
                                        action,
                                        index: h.name.clone(),
                                        id: id.clone(),
                                        status: 200,
                                        result: Some("noop"),
                                        error: None,
                                        seq_no: 0,
                                        version: old_version.max(1),
                                    },
                                ));
                                continue;
                            }
                            base
                        }
                        None => {
                            if *doc_as_upsert {
                                doc.clone().unwrap_or_default()
                            } else if let Some(u) = upsert {
                                u.clone()
                            } else {
                                out.push((
                                    slot,
                                    fail(
                                        EsError::new(
                                            404,
                                            "document_missing_exception",
                                            format!("[{id}]: document missing"),
                                        )
                                        .with("index_uuid", h.uuid_str.clone())
                                        .with("shard", "0")
                                        .with("index", h.name.clone()),
                                    ),
                                ));
                                continue;
                            }
                        }
                    }
                }
            };
            if matches!(r.kind, WriteKind::Create) && exists {
                out.push((
                    slot,
                    fail(EsError::version_conflict(
                        &id,
                        "version conflict, document already exists (current version [1])",
                        &h.name,
                        &h.uuid_str,
                    )),
                ));
                continue;
            }
            // As in Elasticsearch, an index request with a generated id is a create.
            if h.data_stream.is_some() && !matches!(r.kind, WriteKind::Create) && explicit.is_some()
            {
                out.push((
                    slot,
                    fail(EsError::illegal_argument(
                        "only write ops with an op_type of create are allowed in data streams",
                    )),
                ));
                continue;
            }
            // Before mapping, which is where a hostile document would cost the most.
            if let Err(e) = self.inner.config.doc_limits.check(&doc_map) {
                out.push((slot, fail(e)));
                continue;
            }
            let prepared = match mapping.prepare(&doc_map, &id) {
                Ok(p) => p,
                Err(e) => {
                    out.push((slot, fail(e)));
                    continue;
                }
            };
            let ts_leaf = prepared
                .leaves
                .iter()
                .find_map(|l| match (&l.path[..], &l.value) {
                    ("@timestamp", cairn_core::mapping::LeafValue::Date(t)) => Some(*t),
                    _ => None,
                });
            let doc_map = doc_map;
            let ts = match ts_leaf {
                Some(t) => t,
                None if doc_map.contains_key("@timestamp")
                    && !matches!(doc_map.get("@timestamp"), Some(Value::Null)) =>
                {
                    out.push((slot, fail(EsError::document_parsing(format!(
                        "failed to parse field [@timestamp] of type [date] in document with id '{id}'"
                    )))));
                    continue;
                }
                None if h.data_stream.is_some() => {
                    out.push((
                        slot,
                        fail(EsError::document_parsing(
                            "data stream timestamp field [@timestamp] is missing",
                        )),
                    ));
                    continue;
                }
                // Placed by its ingest time, which is indexed as `event.ingested`
                // (the `_source` stays as sent).
                None => now,
            };
            if ts < now - max_past || ts > now + max_future {
                out.push((slot, fail(EsError::illegal_argument(format!(
                    "[@timestamp] {} is outside the accepted window [now-{}s, now+{}s] (see --max-past/--max-future)",
                    time::format_millis(ts),
                    max_past / 1_000_000,
                    max_future / 1_000_000
                )))));
                continue;
            }
            let unchanged = matches!(r.kind, WriteKind::Index | WriteKind::Create);
            let source = match r.raw.take().filter(|_| unchanged) {
                Some(raw) => Ok(raw),
                None => serde_json::to_vec(&doc_map),
            };
            let source = match source {
                Ok(s) => s,
                Err(e) => {
                    out.push((slot, fail(EsError::document_parsing(e.to_string()))));
                    continue;
                }
            };
            let mut leaves = prepared.leaves;
            if ts_leaf.is_none() && !leaves.iter().any(|l| l.path == "event.ingested") {
                let mut ingested = Map::new();
                ingested.insert(
                    "event".into(),
                    serde_json::json!({"ingested": time::format_millis(now)}),
                );
                match mapping.prepare(&ingested, &id) {
                    Ok(p) => leaves.extend(p.leaves),
                    Err(e) => {
                        out.push((slot, fail(e)));
                        continue;
                    }
                }
            }
            let key = g.key_for(ts);
            let delete_from: Vec<i64> = locs.clone();
            let tdoc = schema::build_document(&fields, &id, &source, ts, version, &leaves);
            let src = Arc::new(source);
            planned_bytes += src.len();
            let result = if exists { "updated" } else { "created" };
            // Generated ids are unique: only explicit ones can come back in this chunk.
            if explicit.is_some() {
                local.insert(id.clone(), (Some((key, src.clone())), version));
            }
            planned.push(Planned {
                slot,
                action,
                id: id.clone(),
                result,
                op: WalOp::Index {
                    index: h.uuid,
                    partition: key,
                    ts,
                    version,
                    id: id.clone(),
                    source: src.clone(),
                    delete_from,
                },
                doc: Some(tdoc),
                pending: explicit.is_some().then_some(PendingDoc {
                    seq: 0,
                    partition: key,
                    exists: true,
                    version,
                }),
                generated: explicit.is_none(),
                version,
            });
        }
        if planned.is_empty() {
            return 0;
        }
        if mapping != *base {
            if let Err(e) = self.persist_mapping(h, &base, mapping) {
                for p in planned {
                    out.push((
                        p.slot,
                        ItemResult {
                            action: p.action,
                            index: h.name.clone(),
                            id: p.id,
                            status: e.status,
                            result: None,
                            error: Some(e.clone()),
                            seq_no: 0,
                            version: 0,
                        },
                    ));
                }
                return 0;
            }
        }
        let mut bytes = 0u64;
        let mut docs = 0u64;
        let ops: Vec<(WalOp, Attachment)> = planned
            .iter_mut()
            .map(|p| {
                if let WalOp::Index { source, .. } = &p.op {
                    bytes += source.len() as u64;
                    docs += 1;
                }
                (p.op.clone(), p.doc.take())
            })
            .collect();
        let wal = self.inner.wal.lock().clone();
        let appended = match wal {
            Some(w) => w.append(ops).await,
            None => Err(std::io::Error::other("the store is shut down")),
        };
        match appended {
            Ok((first, last)) => {
                h.docs_ingested.fetch_add(docs, Ordering::Relaxed);
                h.bytes_ingested.fetch_add(bytes, Ordering::Relaxed);
                self.inner.metrics.record_ingest(docs, bytes);
                let mut pend = h.pending.lock();
                for (k, p) in planned.into_iter().enumerate() {
                    let seq = first + k as u64;
                    if p.generated {
                        h.generated_seq.fetch_max(seq, Ordering::SeqCst);
                    }
                    if let Some(mut pd) = p.pending {
                        pd.seq = seq;
                        // Only keep what a reader could ask for before the refresh.
                        if h.refreshed_seq.load(Ordering::SeqCst) < seq {
                            pend.by_seq.insert(seq, p.id.clone());
                            pend.by_id.insert(p.id.clone(), pd);
                        }
                    }
                    out.push((
                        p.slot,
                        ItemResult {
                            action: p.action,
                            index: h.name.clone(),
                            id: p.id,
                            status: if p.result == "created" { 201 } else { 200 },
                            result: Some(p.result),
                            error: None,
                            seq_no: seq,
                            version: p.version,
                        },
                    ));
                }
                last
            }
            Err(e) => {
                let err = EsError::storage(format!(
                    "the write-ahead log could not persist the write: {e}"
                ));
                for p in planned {
                    out.push((
                        p.slot,
                        ItemResult {
                            action: p.action,
                            index: h.name.clone(),
                            id: p.id,
                            status: 500,
                            result: None,
                            error: Some(err.clone()),
                            seq_no: 0,
                            version: 0,
                        },
                    ));
                }
                0
            }
        }
    }

    fn persist_mapping(
        &self,
        h: &Arc<IndexHandle>,
        base: &Arc<Mapping>,
        mine: Mapping,
    ) -> Result<(), EsError> {
        let mut state = self.inner.meta.lock();
        let mut current = h.mapping.write();
        let merged = if Arc::ptr_eq(&current, base) {
            mine
        } else {
            // Another request changed the mapping meanwhile: merge our additions in.
            let mut m = (**current).clone();
            m.merge_json(&mine.to_json())?;
            m
        };
        if let Some(im) = state.indexes.get_mut(&h.name) {
            im.mappings = merged.to_json();
        }
        self.inner
            .metastore
            .save(&state)
            .map_err(|e| EsError::storage(format!("cannot save the mapping: {e}")))?;
        *current = Arc::new(merged);
        Ok(())
    }

    /// A store-wide view for metrics and `_cat`.
    pub fn all_indexes(&self) -> Vec<Arc<IndexHandle>> {
        let mut v: Vec<Arc<IndexHandle>> = self.inner.indexes.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// An id written earlier in the same bulk: (partition and source if it exists, version).
/// Documents per bulk chunk (see `Store::bulk_chunk`).
const CHUNK_DOCS: usize = 2048;
/// Source bytes per bulk chunk.
const CHUNK_BYTES: usize = 1 << 20;

type Claimed = (Option<(i64, Arc<Vec<u8>>)>, u64);
/// Where an explicit id lives: (exists, partitions, source if known, version).
type Located = (bool, Vec<i64>, Option<Arc<Vec<u8>>>, u64);

fn error_item(r: &WriteRequest, index: &str, id: String, e: EsError) -> ItemResult {
    ItemResult {
        version: 0,
        action: match r.kind {
            WriteKind::Index => "index",
            WriteKind::Create => "create",
            WriteKind::Delete => "delete",
            WriteKind::Update { .. } => "update",
        },
        index: index.to_string(),
        id,
        status: e.status,
        result: None,
        error: Some(e),
        seq_no: 0,
    }
}

/// Parses a document body: a JSON object, or Elasticsearch's per-item parse error.
pub fn parse_document(bytes: &[u8]) -> Result<Map<String, Value>, EsError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EsError::document_parsing(
            "[1:1] failed to parse: the document must be a JSON object",
        )),
        Err(e) => Err(EsError::document_parsing(format!(
            "[{}:{}] failed to parse: {e}",
            e.line(),
            e.column()
        ))),
    }
}

/// Elasticsearch's partial-document merge for `update` with `doc`.
fn merge_docs(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_docs(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

pub(crate) fn setting_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
