//! The `s3` source: polls a bucket prefix for new AWS log objects and ships their
//! records, with the same key layouts, formats, fields and document ids as
//! `cairn import` (both use [`crate::s3`]).
//!
//! # Which objects are read
//! Every `poll_interval` the prefix is listed (all pages, key order; after
//! `start_after` when set). An object is read unless the source's state records it as
//! done *in the listed ETag*: a re-uploaded object (new ETag) is read again, and its
//! lines get new ids because the ETag is part of every id. Control objects (the ELB
//! test file, CloudTrail digests) are skipped when the format is `auto`, and with
//! `since` objects older than the cutoff (by the date in their key, with a day of
//! margin, else by LastModified) are skipped; the cutoff is fixed at the first start
//! and kept in the state, so a restart does not move it.
//!
//! # Delivery
//! The body is streamed (one chunk in memory; a full buffer blocks the source, which
//! stops reading the body), decompressed when it starts with the gzip magic, split
//! into lines and parsed. Every megabyte the events go to the sinks' disk buffers and
//! the source notes (line offset, buffer end positions). Once every sink has
//! acknowledged past those positions — delivered, not merely buffered — the offset
//! becomes the object's resume point in the state, and at the end of the object the
//! object is marked done. A crash or a failed download resumes the object at its last
//! acknowledged offset (the lines before are parsed again for their headers but not
//! sent); anything sent twice carries the same `_id` and is answered `409`.
//!
//! # State
//! `<data_dir>/checkpoints/<source>.json`, written atomically (temp file, fsync,
//! rename) at most once a second while objects are read, and as soon as
//! acknowledgements arrive between polls: done objects (key →
//! ETag), partially delivered ones (key → ETag and offset), the `since` cutoff.
//! Objects that disappear from the listing (lifecycle expiry) are forgotten, so the
//! state holds no more entries than the prefix holds objects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_formats::aws_key::{self, AwsKeyInfo, AwsLogKind};
use cairn_formats::{Format, LineParser, ParseOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::buffer::{DiskBuffer, Pos};
use crate::checkpoint::write_atomic;
use crate::metrics::Metrics;
use crate::pipeline::Routes;
use crate::s3::{self, ObjectInfo, S3Error, S3Options};
use crate::{AgentError, Event};

/// Decompressed bytes read between two hand-offs to the buffers.
const CYCLE_BYTES: u64 = 1 << 20;
/// Largest whole-document object (CloudTrail) read into memory.
const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
/// Tries of an object whose content is damaged (truncated gzip) before it is left
/// alone until its ETag changes or the agent restarts.
const MAX_ATTEMPTS: u32 = 3;
/// State writes are at most this frequent (a lost write only means re-reading, and
/// the replay is answered 409).
const SAVE_EVERY: Duration = Duration::from_secs(1);
const STATE_VERSION: u32 = 1;

/// `type: s3`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SourceConfig {
    pub bucket: String,
    /// Key prefix (a "directory": `AWSLogs/123/elasticloadbalancing/`).
    #[serde(default)]
    pub prefix: String,
    /// Default: `AWS_REGION` / `AWS_DEFAULT_REGION`, the profile's region, us-east-1.
    #[serde(default)]
    pub region: Option<String>,
    /// S3-compatible endpoint (path-style requests), e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Any cairn-formats format, or `auto` (by key layout, then by content).
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(
        default = "default_poll",
        deserialize_with = "crate::config::de_duration_pub"
    )]
    pub poll_interval: Duration,
    /// Extra CA certificate (PEM) for the endpoint.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Skip objects older than this (`7d`, `2024-05-01`, RFC 3339), fixed at the first
    /// start.
    #[serde(default)]
    pub since: Option<String>,
    /// Only keys after this one (S3 `start-after`), e.g. `AWSLogs/123/.../2024/05/01/`.
    #[serde(default)]
    pub start_after: Option<String>,
    /// Copy each raw line into `event.original`.
    #[serde(default)]
    pub keep_original: bool,
    /// Longer lines are cut (and flagged `truncated` in `log.flags`).
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
}

fn default_format() -> String {
    "auto".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_max_line() -> usize {
    s3::MAX_LINE
}

impl S3SourceConfig {
    /// Checks what deserialising cannot; errors name the key (`sources.<name>.<key>`).
    pub(crate) fn validate(&self, name: &str) -> Result<(), AgentError> {
        let bad = |key: &str, msg: String| {
            Err(AgentError::Config(format!("sources.{name}.{key}: {msg}")))
        };
        if self.bucket.trim().is_empty() || self.bucket.contains('/') {
            return bad(
                "bucket",
                "a bucket name is required (no `s3://`, no `/`; the path goes in `prefix`)".into(),
            );
        }
        if let Err(e) = self.format.parse::<Format>() {
            return bad("format", e.to_string());
        }
        if self.poll_interval.is_zero() {
            return bad("poll_interval", "must be positive".into());
        }
        if self.max_line_bytes == 0 {
            return bad("max_line_bytes", "must be positive".into());
        }
        if let Some(ep) = &self.endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return bad(
                    "endpoint",
                    format!("`{ep}` is not an http:// or https:// URL"),
                );
            }
        }
        if let Some(s) = &self.since {
            if s3::parse_time(s).is_none() {
                return bad(
                    "since",
                    format!(
                        "`{s}` is not a time: use e.g. 7d, now-12h, 2024-05-01 or 2024-05-01T10:00:00Z"
                    ),
                );
            }
        }
        Ok(())
    }

    fn parsed_format(&self) -> Format {
        self.format.parse().unwrap_or(Format::Auto)
    }
}

// ----------------------------------------------------------------------------------
// State

/// An object read completely and acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DoneObject {
    pub etag: String,
    /// Events it produced.
    pub events: u64,
}

/// An object partly delivered: resume at `offset` (decompressed bytes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartialObject {
    pub etag: String,
    pub offset: u64,
}

/// The persisted state of one `s3` source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct S3State {
    pub version: u32,
    /// The `since` cutoff (epoch µs) as resolved at the first start.
    #[serde(default)]
    pub since_micros: Option<i64>,
    /// Key → done object.
    #[serde(default)]
    pub done: BTreeMap<String, DoneObject>,
    /// Key → partly delivered object.
    #[serde(default)]
    pub partial: BTreeMap<String, PartialObject>,
}

impl Default for S3State {
    fn default() -> Self {
        S3State {
            version: STATE_VERSION,
            since_micros: None,
            done: BTreeMap::new(),
            partial: BTreeMap::new(),
        }
    }
}

/// Progress of one object that becomes state once the sinks acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub key: String,
    pub etag: String,
    /// Every line before this offset is delivered once acknowledged.
    pub offset: u64,
    /// Events sent so far for this object.
    pub events: u64,
    /// The whole object.
    pub done: bool,
}

impl S3State {
    pub fn is_done(&self, key: &str, etag: &str) -> bool {
        self.done.get(key).is_some_and(|d| d.etag == etag)
    }

    /// Where to resume reading an object (0: from the start; a new ETag starts over).
    pub fn resume_offset(&self, key: &str, etag: &str) -> u64 {
        self.partial
            .get(key)
            .filter(|p| p.etag == etag)
            .map_or(0, |p| p.offset)
    }

    /// Records acknowledged progress.
    pub fn apply(&mut self, p: &Progress) {
        if p.done {
            self.partial.remove(&p.key);
            self.done.insert(
                p.key.clone(),
                DoneObject {
                    etag: p.etag.clone(),
                    events: p.events,
                },
            );
        } else if self.resume_offset(&p.key, &p.etag) < p.offset {
            self.partial.insert(
                p.key.clone(),
                PartialObject {
                    etag: p.etag.clone(),
                    offset: p.offset,
                },
            );
        }
    }

    /// Forgets objects a complete listing no longer shows (deleted or expired); with
    /// `start_after`, only keys after it were listed. Returns whether anything changed.
    pub fn forget_missing(&mut self, listed: &[ObjectInfo], start_after: Option<&str>) -> bool {
        let keys: std::collections::HashSet<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        let keep =
            |k: &String| keys.contains(k.as_str()) || start_after.is_some_and(|s| k.as_str() <= s);
        let (d, p) = (self.done.len(), self.partial.len());
        self.done.retain(|k, _| keep(k));
        self.partial.retain(|k, _| keep(k));
        d != self.done.len() || p != self.partial.len()
    }
}

/// The state file of one source.
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    state: S3State,
    dirty: bool,
    saved_at: Instant,
}

impl StateFile {
    fn open(dir: &Path, source: &str) -> Result<StateFile, AgentError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("{source}.json"));
        let bad = |reason: String| AgentError::Checkpoint {
            path: path.display().to_string(),
            reason,
        };
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                let st: S3State = serde_json::from_slice(&bytes).map_err(|e| {
                    bad(format!(
                        "not an s3 source state ({e}); remove it to read the prefix again"
                    ))
                })?;
                if st.version != STATE_VERSION {
                    return Err(bad(format!(
                        "version {} (this agent reads {STATE_VERSION})",
                        st.version
                    )));
                }
                st
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => S3State::default(),
            Err(e) => return Err(AgentError::io(format!("reading {}", path.display()), e)),
        };
        Ok(StateFile {
            path,
            state,
            dirty: false,
            saved_at: Instant::now(),
        })
    }

    fn save(&mut self) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec(&self.state).map_err(|e| AgentError::Checkpoint {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)?;
        self.dirty = false;
        self.saved_at = Instant::now();
        Ok(())
    }

    fn maybe_save(&mut self, force: bool) -> Result<(), AgentError> {
        if self.dirty && (force || self.saved_at.elapsed() >= SAVE_EVERY) {
            self.save()?;
        }
        Ok(())
    }
}

// ----------------------------------------------------------------------------------
// Acknowledgements

/// Progress waiting for the sinks: each entry becomes state once every buffer it was
/// appended to has acknowledged past the recorded end position. First in, first out:
/// positions only grow, so a later entry is never settled before an earlier one.
#[derive(Debug, Default)]
pub struct AckTracker {
    pending: VecDeque<(Progress, Vec<(usize, Pos)>)>,
}

impl AckTracker {
    pub fn push(&mut self, progress: Progress, ends: Vec<(usize, Pos)>) {
        self.pending.push_back((progress, ends));
    }

    /// Pops every entry whose positions are acknowledged (`acked` gives a buffer's
    /// acknowledged position).
    pub fn settle(&mut self, acked: &dyn Fn(usize) -> Pos) -> Vec<Progress> {
        let mut out = Vec::new();
        while let Some((_, ends)) = self.pending.front() {
            if !ends.iter().all(|(i, end)| acked(*i) >= *end) {
                break;
            }
            if let Some((p, _)) = self.pending.pop_front() {
                out.push(p);
            }
        }
        out
    }

    /// Is this object (in this version) read completely and only waiting for acks?
    pub fn awaiting(&self, key: &str, etag: &str) -> bool {
        self.pending
            .iter()
            .any(|(p, _)| p.done && p.key == key && p.etag == etag)
    }
}

// ----------------------------------------------------------------------------------
// Output: the pipeline behind the source (a trait so tests can stand in for it)

/// Where the source's events go.
pub(crate) trait Output {
    fn push(&mut self, ev: Event);
    /// The stream (one object read) ended: transforms emit what they held for it.
    fn end_stream(&mut self, stream: u64);
    /// Hands the events to the buffers (blocking while one is full); returns, for each
    /// buffer written to, the position its sink must acknowledge.
    fn commit(&mut self) -> Result<Vec<(usize, Pos)>, AgentError>;
    fn acked(&self, buffer: usize) -> Pos;
    /// The first offset of `stream` a transform still holds.
    fn hold(&self, stream: u64) -> Option<u64>;
}

/// The real pipeline: transforms and disk buffers.
pub(crate) struct PipelineOutput {
    pub routes: Routes,
    pub buffers: Vec<Arc<DiskBuffer>>,
    pub metrics: Arc<Metrics>,
}

impl Output for PipelineOutput {
    fn push(&mut self, ev: Event) {
        self.routes.push(ev);
    }

    fn end_stream(&mut self, stream: u64) {
        self.routes.end_stream(stream);
    }

    fn commit(&mut self) -> Result<Vec<(usize, Pos)>, AgentError> {
        self.routes.tick();
        let written: Vec<usize> = self.routes.written_sinks();
        self.routes.commit(&self.buffers, &self.metrics)?;
        Ok(written
            .into_iter()
            .map(|i| (i, self.buffers[i].end()))
            .collect())
    }

    fn acked(&self, buffer: usize) -> Pos {
        self.buffers[buffer].acked()
    }

    fn hold(&self, stream: u64) -> Option<u64> {
        self.routes.hold(stream)
    }
}

// ----------------------------------------------------------------------------------
// The source

/// Outcome of reading one object.
#[derive(Debug, PartialEq, Eq)]
enum ObjectOutcome {
    Done,
    /// Content damaged (`damaged`: tried [`MAX_ATTEMPTS`] times per run) or the
    /// download broke (a network error or a timeout while the pipeline was full:
    /// retried at every poll).
    Failed {
        reason: String,
        damaged: bool,
    },
}

/// One `s3` source.
pub struct S3Source {
    name: String,
    cfg: S3SourceConfig,
    format: Format,
    metrics: Arc<Metrics>,
    state: StateFile,
    acks: AckTracker,
    /// (key → (ETag, failed attempts)) for damaged objects.
    failures: HashMap<String, (String, u32)>,
    next_stream: u64,
    store: Option<s3::AmazonS3>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Source")
            .field("name", &self.name)
            .field("bucket", &self.cfg.bucket)
            .field("prefix", &self.cfg.prefix)
            .finish()
    }
}

fn counter(m: &AtomicU64, n: u64) {
    Metrics::add(m, n);
}

/// Counts the stored bytes read from a download.
struct Counting<R> {
    inner: R,
    metrics: Arc<Metrics>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        counter(&self.metrics.s3_bytes, n as u64);
        Ok(n)
    }
}

impl S3Source {
    /// Loads the state (fixing the `since` cutoff at the first start). The S3 client
    /// is built by [`S3Source::connect`].
    pub fn new(
        name: &str,
        cfg: S3SourceConfig,
        checkpoint_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<S3Source, AgentError> {
        let mut state = StateFile::open(checkpoint_dir, name)?;
        if state.state.since_micros.is_none() {
            if let Some(s) = cfg.since.as_deref().and_then(s3::parse_time) {
                state.state.since_micros = Some(s);
                state.save()?;
            }
        }
        Ok(S3Source {
            name: name.to_owned(),
            format: cfg.parsed_format(),
            cfg,
            metrics,
            state,
            acks: AckTracker::default(),
            failures: HashMap::new(),
            next_stream: 1,
            store: None,
            rt: None,
        })
    }

    /// Builds the S3 client and the I/O runtime it runs on (one worker thread).
    pub fn connect(&mut self) -> Result<(), AgentError> {
        let opts = S3Options {
            endpoint: self.cfg.endpoint.clone(),
            region: self.cfg.region.clone(),
            ca_cert: self.cfg.ca_cert.clone(),
        };
        let store = s3::client(&self.cfg.bucket, &opts)
            .map_err(|e| AgentError::Config(format!("sources.{}: {e}", self.name)))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("s3-{}", self.name))
            .enable_all()
            .build()
            .map_err(|e| AgentError::io("starting the S3 I/O runtime", e))?;
        self.store = Some(store);
        self.rt = Some(rt);
        Ok(())
    }

    /// Polls forever (returns only on a local error: buffers, state file).
    pub(crate) fn run(&mut self, out: &mut dyn Output) -> Result<(), AgentError> {
        tracing::info!(source = %self.name, bucket = %self.cfg.bucket, prefix = %self.cfg.prefix, "s3 source polling");
        loop {
            let started = Instant::now();
            self.poll(out)?;
            // Between polls: turn acknowledgements into state, saved at once (while
            // objects are read, saves are throttled to one a second).
            while started.elapsed() < self.cfg.poll_interval {
                self.settle(out)?;
                self.state.maybe_save(true)?;
                let left = self.cfg.poll_interval.saturating_sub(started.elapsed());
                std::thread::sleep(left.min(Duration::from_millis(200)));
            }
        }
    }

    fn settle(&mut self, out: &dyn Output) -> Result<(), AgentError> {
        for p in self.acks.settle(&|i| out.acked(i)) {
            if p.done {
                counter(&self.metrics.s3_objects_read, 1);
                tracing::debug!(source = %self.name, key = %p.key, events = p.events, "object delivered");
            }
            self.state.state.apply(&p);
            self.state.dirty = true;
        }
        Ok(())
    }

    /// One listing and the objects it shows that are not done.
    fn poll(&mut self, out: &mut dyn Output) -> Result<(), AgentError> {
        let (Some(store), Some(rt)) = (self.store.as_ref(), self.rt.as_ref()) else {
            return Err(AgentError::Config(format!(
                "sources.{}: the S3 client is not connected",
                self.name
            )));
        };
        let listed = rt.block_on(s3::list(
            store,
            &self.cfg.bucket,
            &self.cfg.prefix,
            self.cfg.start_after.as_deref(),
        ));
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                counter(&self.metrics.s3_list_errors, 1);
                tracing::warn!(source = %self.name, error = %e, "listing failed; retrying at the next poll");
                return Ok(());
            }
        };
        counter(&self.metrics.s3_objects_listed, listed.len() as u64);
        if self
            .state
            .state
            .forget_missing(&listed, self.cfg.start_after.as_deref())
        {
            self.state.dirty = true;
        }
        let (store, handle) = (store.clone(), rt.handle().clone());
        for obj in &listed {
            self.settle(out)?;
            self.state.maybe_save(false)?;
            if self.state.state.is_done(&obj.key, &obj.version)
                || self.acks.awaiting(&obj.key, &obj.version)
            {
                continue;
            }
            let info = aws_key::parse_key(&obj.key);
            if self.skipped(obj, info.as_ref()) {
                continue;
            }
            if let Some((etag, n)) = self.failures.get(&obj.key) {
                if *etag == obj.version && *n >= MAX_ATTEMPTS {
                    continue;
                }
            }
            let body = match s3::BlockingReader::open(
                &handle,
                &store,
                &self.cfg.bucket,
                &obj.key,
                &obj.version,
            ) {
                Ok(b) => b,
                Err(S3Error::Changed { .. }) => {
                    tracing::debug!(source = %self.name, key = %obj.key, "object changed since the listing; next poll");
                    continue;
                }
                Err(e) => {
                    counter(&self.metrics.s3_objects_failed, 1);
                    tracing::warn!(source = %self.name, key = %obj.key, error = %e, "download failed; retrying at the next poll");
                    continue;
                }
            };
            let body = Counting {
                inner: body,
                metrics: self.metrics.clone(),
            };
            match self.read_object(out, obj, info, Box::new(body))? {
                ObjectOutcome::Done => {
                    self.failures.remove(&obj.key);
                }
                ObjectOutcome::Failed { reason, damaged } => {
                    counter(&self.metrics.s3_objects_failed, 1);
                    if !damaged {
                        tracing::warn!(source = %self.name, key = %obj.key, error = %reason, "download broke off; the delivered part is kept and the rest is retried at the next poll");
                        continue;
                    }
                    let entry = self
                        .failures
                        .entry(obj.key.clone())
                        .or_insert_with(|| (obj.version.clone(), 0));
                    if entry.0 != obj.version {
                        *entry = (obj.version.clone(), 0);
                    }
                    entry.1 += 1;
                    tracing::warn!(source = %self.name, key = %obj.key, attempt = entry.1, error = %reason, "object not read completely; the delivered part is kept and the rest is retried at a later poll");
                }
            }
        }
        self.settle(out)?;
        self.state.maybe_save(true)?;
        Ok(())
    }

    /// Control objects and objects before the `since` cutoff.
    fn skipped(&self, obj: &ObjectInfo, info: Option<&AwsKeyInfo>) -> bool {
        if let Some(i) = info {
            if i.kind.format().is_none() && self.format == Format::Auto {
                return true;
            }
        }
        let Some(cutoff) = self.state.state.since_micros else {
            return false;
        };
        match info.filter(|i| s3::key_day(i).is_some()) {
            Some(i) => s3::pruned_by_date(i, Some(cutoff), None),
            None => obj.last_modified.timestamp_micros() < cutoff,
        }
    }

    /// Reads one object from `raw` (its stored bytes) to the end, sending its events
    /// and noting progress for the acknowledgements.
    fn read_object(
        &mut self,
        out: &mut dyn Output,
        obj: &ObjectInfo,
        info: Option<AwsKeyInfo>,
        raw: Box<dyn Read + Send + '_>,
    ) -> Result<ObjectOutcome, AgentError> {
        let uri = obj.uri(&self.cfg.bucket);
        let resume = self.state.state.resume_offset(&obj.key, &obj.version);
        let stream = self.next_stream;
        self.next_stream += 1;
        let (body, gz) = match s3::decode(raw) {
            Ok(x) => x,
            Err(e) => return Ok(failed_read(e, false)),
        };
        let mut format = self.format;
        if format == Format::Auto {
            if let Some(f) = info.as_ref().and_then(|i| i.kind.format()) {
                format = f;
            }
        }
        let mut body = body;
        let mut head = Vec::new();
        if format == Format::Auto {
            head = match s3::read_head(&mut body, 64 * 1024) {
                Ok(h) => h,
                Err(e) => return Ok(failed_read(e, gz)),
            };
            let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').take(16).collect();
            let file_name = obj.key.rsplit('/').next().unwrap_or(&obj.key);
            format = cairn_formats::sniff(Some(file_name), &lines);
        }
        let cloudtrail = format == Format::AwsCloudtrail
            || info.as_ref().is_some_and(|i| {
                matches!(
                    i.kind,
                    AwsLogKind::CloudTrail | AwsLogKind::CloudTrailInsight
                )
            });
        let reader = BufReader::with_capacity(256 * 1024, std::io::Cursor::new(head).chain(body));
        tracing::debug!(source = %self.name, key = %obj.key, %format, resume, "reading object");
        let job = Job {
            key: &obj.key,
            uri: &uri,
            etag: &obj.version,
            info: info.as_ref(),
            cloudtrail,
            stream,
        };
        let opts = ParseOptions {
            keep_original: self.cfg.keep_original,
            reference_time: Some(cairn_core::time::now_micros() / 1_000_000),
            ..Default::default()
        };
        if format == Format::AwsCloudtrail {
            return self.read_document(out, &job, format, &opts, reader);
        }
        let mut parser = LineParser::new(format, opts);
        let mut reader = reader;
        let mut line = Vec::new();
        let mut offset: u64 = 0;
        let mut since_commit: u64 = 0;
        let mut events: u64 = 0;
        let mut failed = None;
        loop {
            match s3::read_line(&mut reader, &mut line, self.cfg.max_line_bytes) {
                Ok((0, _)) => break,
                Ok((n, cut)) => {
                    let outcome = parser.parse_line(&line);
                    // Lines before the resume point were delivered: parsed again only
                    // for the headers they may set (CloudFront #Fields, VPC header).
                    if offset >= resume {
                        for (i, mut ev) in outcome.into_events().into_iter().enumerate() {
                            if cut {
                                crate::set_path(
                                    &mut ev,
                                    "log.flags",
                                    Value::Array(vec![Value::from("truncated")]),
                                );
                            }
                            out.push(self.event(&job, ev, Some(offset), i));
                            events += 1;
                        }
                    }
                    offset += n as u64;
                    since_commit += n as u64;
                    counter(&self.metrics.bytes_in, n as u64);
                    if since_commit >= CYCLE_BYTES {
                        since_commit = 0;
                        self.checkpoint(out, &job, offset, events, false)?;
                    }
                }
                Err(e) => {
                    failed = Some(failed_read(e, gz));
                    break;
                }
            }
        }
        if failed.is_none() {
            for (i, ev) in parser.finish().into_iter().enumerate() {
                out.push(self.event(&job, ev, Some(offset), i + 1));
                events += 1;
            }
        }
        let st = parser.stats();
        counter(&self.metrics.s3_parse_failures, st.failed);
        out.end_stream(stream);
        match failed {
            None => {
                self.checkpoint(out, &job, offset, events, true)?;
                Ok(ObjectOutcome::Done)
            }
            Some(outcome) => {
                self.checkpoint(out, &job, offset, events, false)?;
                Ok(outcome)
            }
        }
    }

    /// CloudTrail: one JSON document per object, parsed whole (ids are `eventID`s).
    fn read_document(
        &mut self,
        out: &mut dyn Output,
        job: &Job<'_>,
        format: Format,
        opts: &ParseOptions,
        reader: impl Read,
    ) -> Result<ObjectOutcome, AgentError> {
        let mut all = Vec::new();
        let mut limited = reader.take(MAX_DOCUMENT_BYTES + 1);
        if let Err(e) = limited.read_to_end(&mut all) {
            out.end_stream(job.stream);
            return Ok(failed_read(e, true));
        }
        if all.len() as u64 > MAX_DOCUMENT_BYTES {
            return Ok(ObjectOutcome::Failed {
                reason: format!(
                    "a {format} object larger than {MAX_DOCUMENT_BYTES} bytes is not read"
                ),
                damaged: true,
            });
        }
        counter(&self.metrics.bytes_in, all.len() as u64);
        let mut events = 0u64;
        match cairn_formats::parse_document_with(format, &all, opts) {
            Ok(list) => {
                for (i, e) in list.into_iter().enumerate() {
                    if cairn_formats::is_failure(&e) {
                        counter(&self.metrics.s3_parse_failures, 1);
                    }
                    out.push(self.event(job, e, None, i));
                    events += 1;
                }
            }
            Err(_) if all.trim_ascii().is_empty() => {}
            Err(e) => {
                counter(&self.metrics.s3_parse_failures, 1);
                let text = String::from_utf8_lossy(&all).into_owned();
                let ev = cairn_formats::failure_event(&text, &e.to_string(), format);
                out.push(self.event(job, ev, Some(0), 0));
                events += 1;
            }
        }
        out.end_stream(job.stream);
        self.checkpoint(out, job, all.len() as u64, events, true)?;
        Ok(ObjectOutcome::Done)
    }

    /// Hands what is pending to the buffers and notes the progress to confirm.
    fn checkpoint(
        &mut self,
        out: &mut dyn Output,
        job: &Job<'_>,
        offset: u64,
        events: u64,
        done: bool,
    ) -> Result<(), AgentError> {
        let ends = out.commit()?;
        let offset = match out.hold(job.stream) {
            Some(h) => h.min(offset),
            None => offset,
        };
        self.acks.push(
            Progress {
                key: job.key.to_owned(),
                etag: job.etag.to_owned(),
                offset,
                events,
                done,
            },
            ends,
        );
        self.settle(out)
    }

    /// A parsed record as a pipeline event: key fields, location, id.
    fn event(
        &self,
        job: &Job<'_>,
        mut fields: Map<String, Value>,
        offset: Option<u64>,
        sub: usize,
    ) -> Event {
        counter(&self.metrics.events_in, 1);
        if let Some(info) = job.info {
            s3::add_key_fields(&mut fields, info);
        }
        s3::set_location(&mut fields, job.uri, offset);
        let id = s3::document_id(&fields, job.cloudtrail, job.uri, job.etag, offset, sub);
        Event {
            fields,
            stream: job.stream,
            start: offset.unwrap_or(0),
            id,
        }
    }
}

/// A read error: the download's own errors (kind `Other`) are transient; anything
/// else comes from decoding (a damaged or truncated gzip).
fn failed_read(e: std::io::Error, gz: bool) -> ObjectOutcome {
    let damaged = e.kind() != std::io::ErrorKind::Other;
    let reason = if damaged && gz {
        format!("gzip data is damaged or truncated: {e}")
    } else {
        format!("read error: {e}")
    };
    ObjectOutcome::Failed { reason, damaged }
}

/// What every event of one object shares.
struct Job<'a> {
    key: &'a str,
    uri: &'a str,
    etag: &'a str,
    info: Option<&'a AwsKeyInfo>,
    cloudtrail: bool,
    stream: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Collects events; "buffer 0" is a counter of committed events, acknowledged by
    /// hand.
    #[derive(Default)]
    struct FakeOutput {
        pending: Vec<Event>,
        committed: Vec<Event>,
        acked: u64,
    }

    impl Output for FakeOutput {
        fn push(&mut self, ev: Event) {
            self.pending.push(ev);
        }
        fn end_stream(&mut self, _stream: u64) {}
        fn commit(&mut self) -> Result<Vec<(usize, Pos)>, AgentError> {
            self.committed.append(&mut self.pending);
            Ok(vec![(
                0,
                Pos {
                    seg: 1,
                    off: self.committed.len() as u64,
                },
            )])
        }
        fn acked(&self, _buffer: usize) -> Pos {
            Pos {
                seg: 1,
                off: self.acked,
            }
        }
        fn hold(&self, _stream: u64) -> Option<u64> {
            None
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-agent-s3-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn cfg() -> S3SourceConfig {
        let c = crate::config::Config::from_yaml(
            "data_dir: /tmp\nsources: {s: {type: s3, bucket: b, poll_interval: 1s}}\nsinks: {o: {type: stdout, inputs: [s]}}\n",
        )
        .expect("config");
        match &c.sources["s"] {
            crate::config::SourceConfig::S3(s) => (**s).clone(),
            _ => unreachable!("s3 source"),
        }
    }

    const ALB_KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2022/12/06/123456789012_elasticloadbalancing_us-east-1_app.my-alb.f1_20221206T1745Z_10.0.0.1_abc.log.gz";
    const ALB_LINE: &str = "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 2018-07-02T22:22:48.364000Z \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\"";

    fn object(etag: &str) -> ObjectInfo {
        ObjectInfo {
            key: ALB_KEY.into(),
            size: 0,
            version: etag.into(),
            last_modified: chrono::Utc::now(),
        }
    }

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |extra: &str| {
            crate::config::Config::from_yaml(&format!(
                "data_dir: /tmp\nsources: {{s: {{type: s3, bucket: b{extra}}}}}\nsinks: {{o: {{type: stdout, inputs: [s]}}}}\n"
            ))
            .expect_err("invalid")
            .to_string()
        };
        assert!(bad(", format: nope").contains("sources.s.format"));
        assert!(bad(", since: yesterday").contains("sources.s.since"));
        assert!(bad(", endpoint: localhost:9000").contains("sources.s.endpoint"));
        assert!(bad(", poll_interval: 0s").contains("sources.s.poll_interval"));
        assert!(bad(", buckt: x").contains("buckt"));
        assert_eq!(cfg().poll_interval, Duration::from_secs(1));
        assert_eq!(cfg().format, "auto");
    }

    #[test]
    fn state_apply_resume_and_forget() {
        let mut st = S3State::default();
        let p = |offset, done| Progress {
            key: "k".into(),
            etag: "e1".into(),
            offset,
            events: 2,
            done,
        };
        st.apply(&p(100, false));
        assert_eq!(st.resume_offset("k", "e1"), 100);
        assert_eq!(st.resume_offset("k", "e2"), 0, "a new ETag starts over");
        st.apply(&p(50, false));
        assert_eq!(st.resume_offset("k", "e1"), 100, "never backwards");
        st.apply(&p(200, true));
        assert!(st.is_done("k", "e1"));
        assert!(!st.is_done("k", "e2"));
        assert!(st.partial.is_empty());
        let mut other = object("x");
        other.key = "a".into();
        assert!(
            !st.forget_missing(&[], Some("z")),
            "keys before start_after were not listed"
        );
        assert!(st.forget_missing(&[other], None));
        assert!(st.done.is_empty());
    }

    #[test]
    fn acks_settle_in_order() {
        let mut t = AckTracker::default();
        let p = |key: &str, done| Progress {
            key: key.into(),
            etag: "e".into(),
            offset: 1,
            events: 1,
            done,
        };
        t.push(
            p("a", true),
            vec![(0, Pos { seg: 1, off: 10 }), (1, Pos { seg: 1, off: 5 })],
        );
        t.push(p("b", true), vec![]);
        assert!(t.awaiting("a", "e") && !t.awaiting("a", "other"));
        // Buffer 1 not there yet: nothing settles, not even the empty entry behind.
        let acked = |i: usize| Pos {
            seg: 1,
            off: if i == 0 { 10 } else { 4 },
        };
        assert!(t.settle(&acked).is_empty());
        let acked = |_: usize| Pos { seg: 2, off: 0 };
        let got: Vec<String> = t.settle(&acked).into_iter().map(|p| p.key).collect();
        assert_eq!(got, vec!["a", "b"]);
        assert!(!t.awaiting("a", "e"));
    }

    fn source(dir: &Path) -> S3Source {
        S3Source::new("s", cfg(), dir, Arc::new(Metrics::default())).expect("source")
    }

    #[test]
    fn object_is_done_only_after_the_ack_and_resumes_at_the_acked_offset() {
        let dir = tmp("ack");
        let mut src = source(&dir);
        let mut out = FakeOutput::default();
        let body = format!("{ALB_LINE}\nnot an alb line\n{ALB_LINE}\n");
        let obj = object("etag1");
        let info = aws_key::parse_key(ALB_KEY);
        let r = src
            .read_object(
                &mut out,
                &obj,
                info.clone(),
                Box::new(std::io::Cursor::new(gz(&body))),
            )
            .expect("read");
        assert_eq!(r, ObjectOutcome::Done);
        assert_eq!(out.committed.len(), 3);
        let e0 = &out.committed[0];
        assert_eq!(
            crate::get_path(&e0.fields, "http.response.status_code"),
            Some(&Value::from(200))
        );
        assert_eq!(
            crate::get_path(&e0.fields, "log.file.path"),
            Some(&Value::from(format!("s3://b/{ALB_KEY}")))
        );
        assert_eq!(
            crate::get_path(&e0.fields, "cloud.account.id"),
            Some(&Value::from("123456789012"))
        );
        assert_eq!(
            e0.id,
            aws_key::document_id(&format!("s3://b/{ALB_KEY}"), "etag1", 0)
        );
        // The garbage line is kept, flagged, and counted.
        let bad = &out.committed[1];
        assert!(cairn_formats::is_failure(&bad.fields));
        assert_eq!(
            bad.fields.get("message"),
            Some(&Value::from("not an alb line"))
        );
        assert_eq!(
            src.metrics
                .s3_parse_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // Not acknowledged: not done, and a restart would read it again.
        src.settle(&out).expect("settle");
        assert!(!src.state.state.is_done(ALB_KEY, "etag1"));
        assert!(src.acks.awaiting(ALB_KEY, "etag1"));
        out.acked = 3;
        src.settle(&out).expect("settle");
        assert!(src.state.state.is_done(ALB_KEY, "etag1"));
        src.state.save().expect("save");
        let again = source(&dir);
        assert!(again.state.state.is_done(ALB_KEY, "etag1"));
        assert!(!again.state.state.is_done(ALB_KEY, "etag2"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_object_keeps_its_acked_part_and_resumes_after_it() {
        let dir = tmp("resume");
        let mut src = source(&dir);
        let mut out = FakeOutput::default();
        // Enough lines for several hand-offs (CYCLE_BYTES), then a cut gzip.
        let n = (3 * CYCLE_BYTES as usize) / (ALB_LINE.len() + 1);
        let body: String = (0..n).map(|_| format!("{ALB_LINE}\n")).collect();
        let full = gz(&body);
        let cut = full[..full.len() * 2 / 3].to_vec();
        let obj = object("etag1");
        let r = src
            .read_object(
                &mut out,
                &obj,
                aws_key::parse_key(ALB_KEY),
                Box::new(std::io::Cursor::new(cut)),
            )
            .expect("read");
        assert!(
            matches!(r, ObjectOutcome::Failed { damaged: true, .. }),
            "{r:?}"
        );
        let sent = out.committed.len() as u64;
        assert!(sent > 0 && (sent as usize) < n);
        out.acked = sent;
        src.settle(&out).expect("settle");
        let resume = src.state.state.resume_offset(ALB_KEY, "etag1");
        assert_eq!(resume, sent * (ALB_LINE.len() as u64 + 1));
        // The retry (whole object now) sends only the lines after the resume point.
        let mut out2 = FakeOutput::default();
        let r = src
            .read_object(
                &mut out2,
                &obj,
                aws_key::parse_key(ALB_KEY),
                Box::new(std::io::Cursor::new(full)),
            )
            .expect("read");
        assert_eq!(r, ObjectOutcome::Done);
        assert_eq!(out2.committed.len() as u64, n as u64 - sent);
        assert_eq!(out2.committed[0].start, resume);
        out2.acked = out2.committed.len() as u64;
        src.settle(&out2).expect("settle");
        assert!(src.state.state.is_done(ALB_KEY, "etag1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn since_is_fixed_at_the_first_start_and_skips_old_keys() {
        let dir = tmp("since");
        let mut c = cfg();
        c.since = Some("1d".into());
        let src = S3Source::new("s", c.clone(), &dir, Arc::new(Metrics::default())).expect("src");
        let cutoff = src.state.state.since_micros.expect("cutoff");
        let obj = object("e");
        // The key says 2022: pruned.
        assert!(src.skipped(&obj, aws_key::parse_key(ALB_KEY).as_ref()));
        // No key date: LastModified decides.
        let mut plain = object("e");
        plain.key = "app/x.log".into();
        assert!(!src.skipped(&plain, None));
        plain.last_modified = chrono::Utc::now() - chrono::Duration::days(3);
        assert!(src.skipped(&plain, None));
        // The ELB test object is a control object.
        let mut test = object("e");
        test.key = "AWSLogs/123456789012/ELBAccessLogTestFile".into();
        assert!(src.skipped(&test, aws_key::parse_key(&test.key).as_ref()));
        drop(src);
        std::thread::sleep(Duration::from_millis(5));
        let src = S3Source::new("s", c, &dir, Arc::new(Metrics::default())).expect("src");
        assert_eq!(src.state.state.since_micros, Some(cutoff));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
