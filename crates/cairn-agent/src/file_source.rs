//! The `file` source: discovers files by glob, tails them, and knows which file is
//! which across renames, truncations, deletions, inode reuse and restarts.
//!
//! # Identity
//! A file incarnation is (device, inode) *checked* by a fingerprint (hash of the first
//! `fingerprint_bytes`) and a marker (hash of the bytes just before the checkpoint
//! offset). Device and inode alone are not enough: after a copytruncate the inode is
//! the same but the content is new, and a deleted file's inode is handed to the next
//! file created. When the checks fail, the file gets a new generation (from the
//! source's never-decreasing counter) and is read from 0; because the generation is in
//! every event id, the new lines get new ids instead of colliding with delivered ones.
//! Identity comes through [`FileIdentitySource`] so tests can simulate inode reuse.
//!
//! # Rotation
//! A tracked file whose path disappears or stops matching (rename rotation, deletion)
//! stays open and is read to its end; it is released once it has been at EOF for a
//! rescan interval while orphaned. A renamed file still matching the include globs
//! (`app.log.1`) keeps its identity and is not read again. A copy of a file already
//! read (copy rotation) is recognised by its fingerprint and skipped, provided the file
//! had at least `fingerprint_bytes` bytes (a shorter copy is indistinguishable from a
//! new file with the same first line, and is read).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::checkpoint::{CheckpointStore, FileCheckpoint, SourceState};
use crate::config::{FileSourceConfig, ReadFrom};
use crate::glob;
use crate::AgentError;

/// Bytes before the checkpoint offset hashed into the marker.
const MARKER_BYTES: u64 = 64;
/// Largest read from one file per poll, so one busy file cannot starve the others.
const READ_CHUNK: usize = 256 << 10;

/// (device, inode) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

/// Where file identities come from (the OS, or a test double).
pub trait FileIdentitySource: Send + Sync + std::fmt::Debug {
    fn identity(&self, path: &Path, meta: &Metadata) -> FileIdentity;
}

/// Device and inode from `stat`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsIdentity;

impl FileIdentitySource for OsIdentity {
    fn identity(&self, _path: &Path, meta: &Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A complete line read from a file.
#[derive(Debug)]
pub struct RawLine {
    pub stream: u64,
    pub start: u64,
    pub path: Arc<str>,
    pub text: Vec<u8>,
    /// Cut at `max_line_bytes`.
    pub truncated: bool,
}

#[derive(Debug)]
struct Tracked {
    key: String,
    ident: FileIdentity,
    path: PathBuf,
    path_str: Arc<str>,
    file: File,
    generation: u64,
    /// Next byte to read.
    read_off: u64,
    /// Offset of the first byte of the line being assembled.
    line_start: u64,
    partial: Vec<u8>,
    partial_truncated: bool,
    fp: String,
    fp_len: u64,
    /// Since when the path no longer leads here (renamed away / deleted).
    orphan_since: Option<Instant>,
}

/// The tailer of one `file` source.
#[derive(Debug)]
pub struct FileTailer {
    source: String,
    cfg: FileSourceConfig,
    pub ckpt: CheckpointStore,
    ident: Arc<dyn FileIdentitySource>,
    files: HashMap<String, Tracked>,
    first_scan: bool,
    last_scan: Option<Instant>,
    /// No batch of lines yet since start: the first one may be a replay.
    fresh: bool,
    /// The read buffer of `poll`, reused (allocated and zeroed once, not per chunk).
    chunk: Vec<u8>,
}

fn hash_hex(bytes: &[u8]) -> String {
    hex16(&Sha256::digest(bytes))
}

/// Lowercase hex of the first 16 bytes of a digest (32 characters). A table lookup:
/// `format!("{b:02x}")` per byte was a fifth of the file pipeline's CPU in `event_id`.
fn hex16(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in digest[..16].iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    // Only ASCII hex digits were written.
    out.iter().map(|&c| c as char).collect()
}

fn read_range(file: &File, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut got = 0usize;
    while got < buf.len() {
        let n = file.read_at(&mut buf[got..], off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Reads up to `len` bytes at `off` into the start of `buf` (grown, never shrunk or
/// cleared: no zeroing per read). Returns the number of bytes read.
fn read_into(file: &File, off: u64, len: usize, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let mut got = 0usize;
    while got < len {
        let n = file.read_at(&mut buf[got..len], off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Fingerprint of the first `want` bytes: (hash, bytes hashed).
fn fingerprint(file: &File, want: u64) -> std::io::Result<(String, u64)> {
    let head = read_range(file, 0, want)?;
    Ok((hash_hex(&head), head.len() as u64))
}

fn marker(file: &File, off: u64) -> std::io::Result<(String, u64)> {
    let len = off.min(MARKER_BYTES);
    let bytes = read_range(file, off - len, len)?;
    if (bytes.len() as u64) < len {
        return Ok((String::new(), u64::MAX));
    }
    Ok((hash_hex(&bytes), len))
}

/// The deterministic event id: 20 URL-safe base64 characters, like Elasticsearch's
/// own. The first 12 come from a hash of (source, generation), the file incarnation;
/// the last 8 are the line's byte offset (48 bits, big-endian). The lines of one file
/// share their first 12 or more characters, which keeps the server's `_id` term
/// dictionary cheap to build and small: a 32-hex-digit hash of the whole triple (the
/// format until 2026-11-27) had no shared prefixes, and building the dictionary of
/// such ids took ~9% of the server's CPU on an agent load, against ~5% for
/// time-prefixed ids. Files beyond 256 TiB would reuse offsets; none are that large.
pub fn event_id(source: &str, generation: u64, offset: u64) -> String {
    let mut out = Vec::with_capacity(20);
    write_event_id(&mut out, source, generation, offset);
    // Only base64 characters were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`event_id`] appended to `out` (no `String` per event).
pub fn write_event_id(out: &mut Vec<u8>, source: &str, generation: u64, offset: u64) {
    use base64::Engine;
    use std::cell::RefCell;
    // The stream part is the same for every line of a file: hashed once per file and
    // thread rather than per line.
    thread_local! {
        static LAST: RefCell<(String, u64, [u8; 9])> = const { RefCell::new((String::new(), u64::MAX, [0; 9])) };
    }
    let mut raw = [0u8; 15];
    LAST.with_borrow_mut(|last| {
        if last.0 != source || last.1 != generation {
            let mut h = Sha256::new();
            h.update(source.as_bytes());
            h.update([0]);
            h.update(generation.to_le_bytes());
            last.2.copy_from_slice(&h.finalize()[..9]);
            last.0.clear();
            last.0.push_str(source);
            last.1 = generation;
        }
        raw[..9].copy_from_slice(&last.2);
    });
    raw[9..].copy_from_slice(&offset.to_be_bytes()[2..]);
    let mut text = [0u8; 20];
    // 15 bytes are exactly 20 characters: the buffer always fits.
    if base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode_slice(raw, &mut text)
        .is_ok()
    {
        out.extend_from_slice(&text);
    }
}

impl FileTailer {
    pub fn new(
        source: &str,
        cfg: FileSourceConfig,
        ckpt: CheckpointStore,
        ident: Arc<dyn FileIdentitySource>,
    ) -> FileTailer {
        FileTailer {
            source: source.to_owned(),
            cfg,
            ckpt,
            ident,
            files: HashMap::new(),
            first_scan: true,
            last_scan: None,
            fresh: true,
            chunk: Vec::new(),
        }
    }

    fn io(path: &Path, what: &str, e: std::io::Error) -> AgentError {
        AgentError::io(format!("{what} {}", path.display()), e)
    }

    /// Rescans the globs if the rescan interval passed. Streams that ended (file
    /// released, or truncated: the old generation ended) are appended to `ended`.
    pub fn maybe_rescan(&mut self, ended: &mut Vec<u64>) -> Result<(), AgentError> {
        let due = self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.cfg.rescan_interval);
        if due {
            self.rescan(ended)?;
            self.last_scan = Some(Instant::now());
        }
        Ok(())
    }

    fn rescan(&mut self, ended: &mut Vec<u64>) -> Result<(), AgentError> {
        let mut seen: Vec<String> = Vec::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for pat in &self.cfg.include {
            paths.extend(glob::expand(pat));
        }
        paths.sort();
        paths.dedup();
        paths.retain(|p| !self.cfg.exclude.iter().any(|x| glob::path_matches(x, p)));
        let mut dirty = false;
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone between listing and stat
            };
            if !meta.is_file() {
                continue;
            }
            let ident = self.ident.identity(&path, &meta);
            let key = SourceState::key(ident.dev, ident.ino);
            if let Some(t) = self.files.get_mut(&key) {
                if t.path != path {
                    tracing::info!(source = %self.source, from = %t.path.display(), to = %path.display(), "file renamed");
                    t.path_str = Arc::from(path.to_string_lossy().as_ref());
                    t.path = path.clone();
                }
                t.orphan_since = None;
                seen.push(key);
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(source = %self.source, path = %path.display(), error = %e, "cannot open file");
                    continue;
                }
            };
            let want = self.cfg.fingerprint_bytes as u64;
            let (fp, fp_len) =
                fingerprint(&file, want).map_err(|e| Self::io(&path, "reading", e))?;
            let fp_tag = format!("{fp}/{fp_len}");
            // A full-length fingerprint identical to a file already read is a copy of
            // it (copy rotation); shorter ones are too weak to decide.
            if fp_len == want
                && !self.ckpt.state.files.contains_key(&key)
                && (self.ckpt.state.retired.contains(&fp_tag)
                    || self.files.values().any(|t| t.fp_len == want && t.fp == fp))
            {
                tracing::debug!(source = %self.source, path = %path.display(), "skipping a copy of a file already read");
                continue;
            }
            let size = meta.len();
            let resume = self.ckpt.state.files.get(&key).and_then(|c| {
                let (cfp, _) = fingerprint(&file, c.fp_len).ok()?;
                let fp_ok = size >= c.fp_len && cfp == c.fingerprint;
                let marker_ok = size >= c.offset
                    && (c.marker_len == 0 || marker(&file, c.offset).ok()?.0 == c.marker);
                (fp_ok && marker_ok).then_some((c.generation, c.offset))
            });
            let (generation, offset) = match resume {
                Some(r) => r,
                None => {
                    if self.ckpt.state.files.contains_key(&key) {
                        tracing::info!(source = %self.source, path = %path.display(), "file content changed under a known inode (reuse or truncation): new generation");
                    }
                    let g = self.ckpt.state.allocate_generation();
                    let start = if self.first_scan
                        && !self.ckpt.existed
                        && self.cfg.read_from == ReadFrom::End
                    {
                        size
                    } else {
                        0
                    };
                    dirty = true;
                    (g, start)
                }
            };
            let (mk, mk_len) = marker(&file, offset).map_err(|e| Self::io(&path, "reading", e))?;
            self.ckpt.state.files.insert(
                key.clone(),
                FileCheckpoint {
                    path: path.to_string_lossy().into_owned(),
                    dev: ident.dev,
                    ino: ident.ino,
                    generation,
                    offset,
                    fingerprint: fp.clone(),
                    fp_len,
                    marker: mk,
                    marker_len: mk_len,
                },
            );
            tracing::info!(source = %self.source, path = %path.display(), generation, offset, "tailing file");
            self.files.insert(
                key.clone(),
                Tracked {
                    key: key.clone(),
                    ident,
                    path_str: Arc::from(path.to_string_lossy().as_ref()),
                    path,
                    file,
                    generation,
                    read_off: offset,
                    line_start: offset,
                    partial: Vec::new(),
                    partial_truncated: false,
                    fp,
                    fp_len,
                    orphan_since: None,
                },
            );
            seen.push(key);
        }
        for (key, t) in self.files.iter_mut() {
            if !seen.contains(key) && t.orphan_since.is_none() {
                tracing::info!(source = %self.source, path = %t.path.display(), "file renamed away or deleted: reading it to the end");
                t.orphan_since = Some(Instant::now());
            }
        }
        let _ = ended;
        self.first_scan = false;
        if dirty {
            // A new generation must be durable before any event carrying it is
            // buffered, or a crash would replay the same bytes under another id.
            self.ckpt.save()?;
        }
        Ok(())
    }

    /// Reads new data from every tracked file (at most `budget` bytes in total).
    /// Returns the number of bytes read.
    pub fn poll(
        &mut self,
        budget: usize,
        lines: &mut Vec<RawLine>,
        ended: &mut Vec<u64>,
    ) -> Result<usize, AgentError> {
        let mut total = 0usize;
        let mut release: Vec<String> = Vec::new();
        let mut regenerated = false;
        let keys: Vec<String> = self.files.keys().cloned().collect();
        let share = (budget / keys.len().max(1)).max(READ_CHUNK);
        let want_fp = self.cfg.fingerprint_bytes as u64;
        let max_line = self.cfg.max_line_bytes;
        let rescan = self.cfg.rescan_interval;
        for key in keys {
            if total >= budget {
                break;
            }
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            let size = match t.file.metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), error = %e, "fstat failed");
                    continue;
                }
            };
            // Truncated (copytruncate), or rewritten from the start: the fingerprint no
            // longer matches what we saw.
            let mut rewritten = size < t.read_off;
            if !rewritten && size > t.read_off && t.fp_len > 0 {
                let (now_fp, _) =
                    fingerprint(&t.file, t.fp_len).map_err(|e| Self::io(&t.path, "reading", e))?;
                rewritten = now_fp != t.fp;
            }
            if rewritten {
                tracing::info!(path = %t.path.display(), old_size = t.read_off, size, "file truncated: new generation from offset 0");
                ended.push(t.generation);
                // A copy made just before the truncation (copytruncate's `app.log.1`)
                // carries the old fingerprint: remember it so the copy is not re-read.
                if t.fp_len == want_fp {
                    self.ckpt.state.retire(format!("{}/{}", t.fp, t.fp_len));
                }
                let g = self.ckpt.state.allocate_generation();
                t.generation = g;
                t.read_off = 0;
                t.line_start = 0;
                t.partial.clear();
                t.partial_truncated = false;
                t.fp_len = 0;
                t.fp = hash_hex(b"");
                if let Some(c) = self.ckpt.state.files.get_mut(&t.key) {
                    c.generation = g;
                    c.offset = 0;
                    c.fingerprint = t.fp.clone();
                    c.fp_len = 0;
                    c.marker = String::new();
                    c.marker_len = 0;
                }
                regenerated = true;
            }
            if t.fp_len < want_fp && size > t.fp_len {
                let (fp, len) =
                    fingerprint(&t.file, want_fp).map_err(|e| Self::io(&t.path, "reading", e))?;
                t.fp = fp;
                t.fp_len = len;
            }
            if size > t.read_off {
                // Each file gets a fair share of the cycle, read in chunks.
                let mut from_this = 0usize;
                while t.read_off < size && from_this < share && total < budget {
                    let want = (size - t.read_off)
                        .min(READ_CHUNK as u64)
                        .min((budget - total) as u64);
                    let n = read_into(&t.file, t.read_off, want as usize, &mut self.chunk)
                        .map_err(|e| Self::io(&t.path, "reading", e))?;
                    if n == 0 {
                        break;
                    }
                    split_lines(t, &self.chunk[..n], max_line, lines);
                    total += n;
                    from_this += n;
                }
                continue;
            }
            // At EOF.
            if let Some(since) = t.orphan_since {
                if since.elapsed() >= rescan {
                    release.push(key);
                }
            }
        }
        for key in release {
            if let Some(mut t) = self.files.remove(&key) {
                if !t.partial.is_empty() {
                    // The writer is gone: the unterminated last line is complete.
                    lines.push(RawLine {
                        stream: t.generation,
                        start: t.line_start,
                        path: t.path_str.clone(),
                        text: std::mem::take(&mut t.partial),
                        truncated: t.partial_truncated,
                    });
                }
                tracing::info!(path = %t.path.display(), "file released");
                ended.push(t.generation);
                self.ckpt.state.files.remove(&t.key);
                if t.fp_len == want_fp {
                    self.ckpt.state.retire(format!("{}/{}", t.fp, t.fp_len));
                }
                let _ = t.ident;
            }
        }
        if regenerated {
            self.ckpt.save()?;
        }
        Ok(total)
    }

    /// Records how far each file is durably delivered (`hold` gives the first offset a
    /// transform still holds for a stream) and saves the checkpoint.
    pub fn commit(&mut self, hold: &dyn Fn(u64) -> Option<u64>) -> Result<(), AgentError> {
        let mut changed = false;
        for t in self.files.values() {
            let mut off = t.line_start;
            if let Some(h) = hold(t.generation) {
                off = off.min(h);
            }
            if let Some(c) = self.ckpt.state.files.get_mut(&t.key) {
                if c.offset != off || c.fingerprint != t.fp || c.generation != t.generation {
                    let (mk, mk_len) =
                        marker(&t.file, off).map_err(|e| Self::io(&t.path, "reading", e))?;
                    c.offset = off;
                    c.fingerprint = t.fp.clone();
                    c.fp_len = t.fp_len;
                    c.generation = t.generation;
                    c.marker = mk;
                    c.marker_len = if mk_len == u64::MAX { 0 } else { mk_len };
                    c.path = t.path.to_string_lossy().into_owned();
                    changed = true;
                }
            }
        }
        if changed {
            self.ckpt.save()?;
        }
        Ok(())
    }

    /// The read time for the batch of lines just polled (see
    /// [`SourceState::read_time_ms`]): the first batch after a start reuses the
    /// recorded time (it may be a replay); later ones refresh it once a second, saving
    /// the checkpoint before the lines are buffered.
    pub fn read_time(&mut self) -> Result<u64, AgentError> {
        let recorded = self.ckpt.state.read_time_ms;
        let fresh = std::mem::replace(&mut self.fresh, false);
        if fresh && recorded != 0 {
            return Ok(recorded);
        }
        let now = crate::now_millis();
        if now.saturating_sub(recorded) >= 1000 {
            self.ckpt.state.read_time_ms = now;
            self.ckpt.save()?;
        }
        Ok(self.ckpt.state.read_time_ms)
    }

    /// Bytes not yet read, per path (the `lag` metric).
    pub fn lag(&self) -> Vec<(String, u64)> {
        self.files
            .values()
            .map(|t| {
                let size = t.file.metadata().map(|m| m.len()).unwrap_or(0);
                (
                    t.path.to_string_lossy().into_owned(),
                    size.saturating_sub(t.line_start),
                )
            })
            .collect()
    }

    /// Whether any file has unread data (then the caller polls again at once).
    pub fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval
    }
}

/// Splits `buf` (the bytes at `t.read_off`) into lines, keeping an unterminated tail
/// in `t.partial` and cutting lines at `max_line` bytes (the rest of an over-long line
/// is skipped but still counted in the offsets).
fn split_lines(t: &mut Tracked, buf: &[u8], max_line: usize, out: &mut Vec<RawLine>) {
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let (seg, newline) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let room = max_line.saturating_sub(t.partial.len());
        if seg.len() > room {
            t.partial.extend_from_slice(&seg[..room]);
            t.partial_truncated = true;
        } else {
            t.partial.extend_from_slice(seg);
        }
        pos += seg.len();
        if newline {
            pos += 1;
            let mut text = std::mem::take(&mut t.partial);
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            out.push(RawLine {
                stream: t.generation,
                start: t.line_start,
                path: t.path_str.clone(),
                text,
                truncated: t.partial_truncated,
            });
            t.partial_truncated = false;
            t.line_start = t.read_off + pos as u64;
        }
    }
    t.read_off += buf.len() as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    /// Identity double: maps paths to fixed inode numbers so a test can make a new
    /// file look like an old one (inode reuse).
    #[derive(Debug, Default)]
    struct FakeIdentity(Mutex<HashMap<PathBuf, u64>>);

    impl FileIdentitySource for FakeIdentity {
        fn identity(&self, path: &Path, _meta: &Metadata) -> FileIdentity {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            FileIdentity {
                dev: 1,
                ino: map.get(path).copied().unwrap_or(999),
            }
        }
    }

    fn cfg(dir: &Path) -> FileSourceConfig {
        crate::config::Config::from_yaml(&format!(
            "data_dir: /tmp\nsources: {{s: {{type: file, include: ['{}/*.log'], rescan_interval: 0s, fingerprint_bytes: 8, max_line_bytes: 10}}}}\nsinks: {{o: {{type: stdout, inputs: [s]}}}}\n",
            dir.display()
        ))
        .map(|c| match &c.sources["s"] {
            crate::config::SourceConfig::File(f) => f.clone(),
            _ => unreachable!("file source"),
        })
        .expect("config")
    }

    fn drain(t: &mut FileTailer) -> Vec<(u64, u64, String, bool)> {
        let mut ended = Vec::new();
        t.maybe_rescan(&mut ended).expect("scan");
        let mut lines = Vec::new();
        while t.poll(1 << 20, &mut lines, &mut ended).expect("poll") > 0 {}
        t.commit(&|_| None).expect("commit");
        lines
            .into_iter()
            .map(|l| {
                (
                    l.stream,
                    l.start,
                    String::from_utf8_lossy(&l.text).into_owned(),
                    l.truncated,
                )
            })
            .collect()
    }

    #[test]
    fn lines_partial_truncation_and_inode_reuse() {
        let dir = std::env::temp_dir().join(format!("cairn-agent-fs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let ident = Arc::new(FakeIdentity::default());
        let a = dir.join("a.log");
        ident.0.lock().expect("lock").insert(a.clone(), 7);
        std::fs::write(&a, b"first\nthis line is long\npart").expect("write");
        let ck = CheckpointStore::open(&dir.join("ck"), "s").expect("ckpt");
        let mut t = FileTailer::new("s", cfg(&dir), ck, ident.clone());
        let got = drain(&mut t);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (1, 0, "first".into(), false));
        assert_eq!(got[1], (1, 6, "this line ".into(), true));
        // The partial line completes later.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .expect("open")
            .write_all(b"ial\n")
            .expect("append");
        let got = drain(&mut t);
        assert_eq!(got, vec![(1, 24, "partial".into(), false)]);
        drop(t);
        // "Inode reuse": a different file with the same (dev, ino) after a restart.
        std::fs::remove_file(&a).expect("rm");
        let b = dir.join("b.log");
        ident.0.lock().expect("lock").insert(b.clone(), 7);
        std::fs::write(&b, b"brand new content here\n").expect("write");
        let ck = CheckpointStore::open(&dir.join("ck"), "s").expect("ckpt");
        let mut t = FileTailer::new("s", cfg(&dir), ck, ident.clone());
        let got = drain(&mut t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2, "new generation");
        assert_eq!(got[0].1, 0, "from the start");
        // A restart with the same file resumes after the checkpoint: nothing re-read.
        drop(t);
        let ck = CheckpointStore::open(&dir.join("ck"), "s").expect("ckpt");
        let mut t = FileTailer::new("s", cfg(&dir), ck, ident);
        assert!(drain(&mut t).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotated_copies_matching_the_glob_are_not_read_again() {
        let dir = std::env::temp_dir().join(format!("cairn-agent-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut c = cfg(&dir);
        c.include = vec![format!("{}/*.log*", dir.display())];
        c.max_line_bytes = 1000;
        let ck = CheckpointStore::open(&dir.join("ck"), "s").expect("ckpt");
        let mut t = FileTailer::new("s", c, ck, Arc::new(OsIdentity));
        let app = dir.join("app.log");
        std::fs::write(&app, b"one\ntwo\n").expect("write");
        assert_eq!(drain(&mut t).len(), 2);
        // Rename rotation: same inode under a name the glob also matches.
        std::fs::rename(&app, dir.join("app.log.1")).expect("rename");
        // (longer than fingerprint_bytes: a copy of a shorter file cannot be told
        // from a new file with the same first line.)
        std::fs::write(&app, b"three and more\n").expect("write");
        let got = drain(&mut t);
        assert_eq!(
            got.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
            vec!["three and more"]
        );
        // copytruncate: a copy (new inode, same first bytes) and a truncation.
        std::fs::copy(&app, dir.join("app.log.2")).expect("copy");
        std::fs::write(&app, b"").expect("truncate");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&app)
            .expect("open")
            .write_all(b"four\n")
            .expect("append");
        let got = drain(&mut t);
        assert_eq!(
            got.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
            vec!["four"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_depend_on_generation() {
        assert_ne!(event_id("s", 1, 0), event_id("s", 2, 0));
        assert_eq!(event_id("s", 1, 5), event_id("s", 1, 5));
        // Pinned: ids must not change across versions, or a replay after an upgrade
        // would duplicate instead of answering 409 (the format changed once, before
        // the first release: see `event_id`).
        assert_eq!(event_id("s", 1, 5), "QV8F9tAWM9TsAAAAAAAF");
        let mut id = Vec::new();
        write_event_id(&mut id, "s", 1, 5);
        assert_eq!(id, b"QV8F9tAWM9TsAAAAAAAF");
        // The lines of one file share the stream part and differ in the offset part.
        assert_eq!(event_id("s", 1, 1 << 40)[..12], event_id("s", 1, 5)[..12]);
        assert_ne!(event_id("s", 1, 1 << 40), event_id("s", 1, 5));
    }
}
