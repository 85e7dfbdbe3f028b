//! The write-ahead log.
//!
//! Every write is appended here, and acknowledged only once it is fsynced. One thread
//! owns the log: it takes every append waiting in its queue, writes them together and
//! fsyncs once (group commit), then hands the records, in sequence order, to the
//! indexer and answers the callers.
//!
//! On disk: `wal/<first-seq>.wal` segments; each starts with `CAIRNWAL` and a format
//! version, then records `[len u32][crc32 u32][payload]`, payload =
//! `[seq u64][kind u8][body]`. A record whose length or CRC does not check ends its
//! segment (a torn tail). After any write or fsync error the segment is abandoned (an
//! fsync is never retried on the same file: after a failed fsync the kernel may have
//! dropped the dirty pages) and the batch is rewritten into a fresh segment; if that
//! fails too, the batch fails and the callers get the error. A new process never
//! appends to an old segment. Segments are deleted once every record in them is in a
//! durable partition commit ([`Wal::release_through`]).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

pub const WAL_FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"CAIRNWAL";
const HEADER_LEN: usize = 12;
/// Upper bound of one record, so a corrupt length cannot make us allocate wildly.
pub const MAX_RECORD_BYTES: usize = 512 * 1024 * 1024;
/// Upper bound of one group commit, in encoded bytes.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One logged operation. `index` is the index uuid; partitions are named by their
/// start time (microseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum WalOp {
    Index {
        index: u128,
        partition: i64,
        ts: i64,
        /// The document's `_version`.
        version: u64,
        id: String,
        /// Shared with the not-yet-refreshed set, so a document is not copied again.
        source: std::sync::Arc<Vec<u8>>,
        /// Partitions that hold an older copy of this `_id`, to delete it from.
        delete_from: Vec<i64>,
    },
    Delete {
        index: u128,
        id: String,
        partitions: Vec<i64>,
    },
}

impl WalOp {
    fn encoded_len(&self) -> usize {
        match self {
            WalOp::Index {
                id,
                source,
                delete_from,
                ..
            } => 16 + 8 + 8 + 8 + 2 + id.len() + 2 + 8 * delete_from.len() + 4 + source.len(),
            WalOp::Delete { id, partitions, .. } => 16 + 2 + id.len() + 2 + 8 * partitions.len(),
        }
    }

    fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; 8]); // len + crc, filled below
        out.extend_from_slice(&seq.to_le_bytes());
        match self {
            WalOp::Index {
                index,
                partition,
                ts,
                version,
                id,
                source,
                delete_from,
            } => {
                out.push(1);
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&partition.to_le_bytes());
                out.extend_from_slice(&ts.to_le_bytes());
                out.extend_from_slice(&version.to_le_bytes());
                put_str(out, id);
                put_keys(out, delete_from);
                out.extend_from_slice(&(source.len() as u32).to_le_bytes());
                out.extend_from_slice(&source[..]);
            }
            WalOp::Delete {
                index,
                id,
                partitions,
            } => {
                out.push(2);
                out.extend_from_slice(&index.to_le_bytes());
                put_str(out, id);
                put_keys(out, partitions);
            }
        }
        let payload = &out[start + 8..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Option<(u64, WalOp)> {
        let mut r = Reader { b: payload, i: 0 };
        let seq = r.u64()?;
        let op = match r.u8()? {
            1 => {
                let index = r.u128()?;
                let partition = r.i64()?;
                let ts = r.i64()?;
                let version = r.u64()?;
                let id = r.str()?;
                let delete_from = r.keys()?;
                let n = r.u32()? as usize;
                let source = std::sync::Arc::new(r.bytes(n)?.to_vec());
                WalOp::Index {
                    index,
                    partition,
                    ts,
                    version,
                    id,
                    source,
                    delete_from,
                }
            }
            2 => {
                let index = r.u128()?;
                let id = r.str()?;
                let partitions = r.keys()?;
                WalOp::Delete {
                    index,
                    id,
                    partitions,
                }
            }
            _ => return None,
        };
        Some((seq, op))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_keys(out: &mut Vec<u8>, keys: &[i64]) {
    out.extend_from_slice(&(keys.len() as u16).to_le_bytes());
    for k in keys {
        out.extend_from_slice(&k.to_le_bytes());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.bytes(8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
    }
    fn u128(&mut self) -> Option<u128> {
        self.bytes(16)
            .and_then(|b| b.try_into().ok())
            .map(u128::from_le_bytes)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
    fn keys(&mut self) -> Option<Vec<i64>> {
        let n = self.u16()? as usize;
        (0..n).map(|_| self.i64()).collect()
    }
}

/// Where the log's bytes go: a seam for fault-injection tests.
pub trait WalFs: Send + Sync + 'static {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;
}

pub trait WalFile: Send {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
}

pub struct StdFs;

struct StdFile(File);

impl WalFile for StdFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl WalFs for StdFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        // The new name must survive a crash too.
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(Box::new(StdFile(f)))
    }
}

/// A record after it was made durable, with whatever the writer attached for the
/// indexer (so it need not parse the document again).
pub struct Durable<A> {
    pub seq: u64,
    pub op: WalOp,
    pub attachment: A,
}

struct AppendRequest<A> {
    ops: Vec<(WalOp, A)>,
    reply: tokio::sync::oneshot::Sender<io::Result<(u64, u64)>>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    #[allow(dead_code)]
    first_seq: u64,
    last_seq: u64,
}

struct Shared {
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Closed segments, oldest first.
    closed: Mutex<Vec<Segment>>,
    roll: AtomicBool,
    fsync_micros: Mutex<Vec<u64>>,
}

pub struct Wal<A: Send + 'static> {
    tx: SyncSender<AppendRequest<A>>,
    shared: Arc<Shared>,
}

impl<A: Send + 'static> Clone for Wal<A> {
    fn clone(&self) -> Self {
        Wal {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What [`Wal::open`] found on disk.
pub struct Replay {
    pub records: Vec<(u64, WalOp)>,
    pub next_seq: u64,
}

fn segment_paths(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".wal") {
            if let Ok(n) = stem.parse::<u64>() {
                out.push((n, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes the segments whose records are all at or below `seq` (after a clean
/// shutdown made everything durable).
pub fn remove_segments_through(dir: &Path, seq: u64) -> io::Result<usize> {
    let (_, segs) = read_all(dir)?;
    let mut n = 0;
    for (_, last, path) in segs {
        if last <= seq {
            fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Reads every record of the log, in order, without changing anything.
/// Records (seq, op) and segments (first seq, last seq, path) found on disk.
pub type WalContents = (Vec<(u64, WalOp)>, Vec<(u64, u64, PathBuf)>);

pub fn read_all(dir: &Path) -> io::Result<WalContents> {
    let mut records = Vec::new();
    let mut segs = Vec::new();
    let mut last = 0u64;
    for (first, path) in segment_paths(dir)? {
        let mut data = Vec::new();
        File::open(&path)?.read_to_end(&mut data)?;
        if data.len() < HEADER_LEN {
            segs.push((first, first.saturating_sub(1), path));
            continue;
        }
        if &data[..8] != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a cairn WAL segment", path.display()),
            ));
        }
        let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if version != WAL_FORMAT_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "WAL segment {} has format version {version}, this cairn reads version {WAL_FORMAT_VERSION}",
                    path.display()
                ),
            ));
        }
        let mut i = HEADER_LEN;
        let mut seg_last = first.saturating_sub(1);
        while i + 8 <= data.len() {
            let len = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
            let crc = u32::from_le_bytes([data[i + 4], data[i + 5], data[i + 6], data[i + 7]]);
            if len > MAX_RECORD_BYTES || i + 8 + len > data.len() {
                tracing::warn!(segment = %path.display(), offset = i, "WAL segment ends in a torn record");
                break;
            }
            let payload = &data[i + 8..i + 8 + len];
            if crc32fast::hash(payload) != crc {
                tracing::warn!(segment = %path.display(), offset = i, "WAL record fails its CRC: segment ends here");
                break;
            }
            match WalOp::decode(payload) {
                Some((seq, op)) => {
                    seg_last = seq;
                    if seq > last {
                        last = seq;
                        records.push((seq, op));
                    }
                }
                None => {
                    tracing::warn!(segment = %path.display(), offset = i, "undecodable WAL record: segment ends here");
                    break;
                }
            }
            i += 8 + len;
        }
        segs.push((first, seg_last, path));
    }
    Ok((records, segs))
}

impl<A: Send + 'static> Wal<A> {
    /// Opens the log in `dir`, returning what it holds for replay. New records get
    /// sequence numbers from `max(min_next_seq, last on disk + 1)`. `on_durable` is
    /// called on the log thread with every durable batch, in order, before callers are
    /// answered.
    pub fn open(
        dir: &Path,
        min_next_seq: u64,
        segment_bytes: u64,
        fs_impl: Arc<dyn WalFs>,
        mut on_durable: impl FnMut(Vec<Durable<A>>) + Send + 'static,
    ) -> io::Result<(Wal<A>, Replay)> {
        fs::create_dir_all(dir)?;
        let (records, segs) = read_all(dir)?;
        let last_on_disk = records.last().map(|r| r.0).unwrap_or(0);
        let max_first = segs.iter().map(|s| s.0).max().unwrap_or(0);
        let next_seq = min_next_seq.max(last_on_disk + 1).max(max_first + 1).max(1);
        let shared = Arc::new(Shared {
            thread: Mutex::new(None),
            closed: Mutex::new(
                segs.into_iter()
                    .map(|(first_seq, last_seq, path)| Segment {
                        path,
                        first_seq,
                        last_seq,
                    })
                    .collect(),
            ),
            roll: AtomicBool::new(false),
            fsync_micros: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::sync_channel::<AppendRequest<A>>(64);
        let dir_owned = dir.to_path_buf();
        let shared2 = shared.clone();
        let join = std::thread::Builder::new()
            .name("cairn-wal".into())
            .spawn(move || {
                let mut w = Writer {
                    dir: dir_owned,
                    fs: fs_impl,
                    current: None,
                    next_seq,
                    segment_bytes,
                    shared: shared2,
                };
                w.run(rx, &mut on_durable);
            })?;
        *shared.thread.lock() = Some(join);
        Ok((Wal { tx, shared }, Replay { records, next_seq }))
    }

    /// Appends operations; resolves once they are durable, with their first and last
    /// sequence numbers.
    pub async fn append(&self, ops: Vec<(WalOp, A)>) -> io::Result<(u64, u64)> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let tx = self.tx.clone();
        let req = AppendRequest { ops, reply };
        // The queue is bounded: wait for room off the async runtime.
        tokio::task::spawn_blocking(move || tx.send(req))
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the WAL thread has stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the WAL thread has stopped"))?
    }

    /// Blocking variant of [`Wal::append`].
    pub fn append_blocking(&self, ops: Vec<(WalOp, A)>) -> io::Result<(u64, u64)> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(AppendRequest { ops, reply })
            .map_err(|_| io::Error::other("the WAL thread has stopped"))?;
        rx.blocking_recv()
            .map_err(|_| io::Error::other("the WAL thread has stopped"))?
    }

    /// Stops the log thread once every other handle is gone, and waits for it (the
    /// last segment is fsynced on the way out).
    pub fn close(self) {
        let join = self.shared.thread.lock().take();
        drop(self);
        if let Some(j) = join {
            let _ = j.join();
        }
    }

    /// Asks the log to start a new segment with its next write, so the current one can
    /// be released.
    pub fn request_roll(&self) {
        self.shared.roll.store(true, Ordering::SeqCst);
    }

    /// Deletes closed segments whose records are all at or below `seq`.
    pub fn release_through(&self, seq: u64) -> io::Result<usize> {
        let mut closed = self.shared.closed.lock();
        let mut n = 0;
        while let Some(s) = closed.first() {
            if s.last_seq > seq {
                break;
            }
            match fs::remove_file(&s.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            closed.remove(0);
            n += 1;
        }
        Ok(n)
    }

    /// Fsync latencies (microseconds) recorded since the last call.
    pub fn take_fsync_latencies(&self) -> Vec<u64> {
        std::mem::take(&mut *self.shared.fsync_micros.lock())
    }
}

struct Current {
    file: Box<dyn WalFile>,
    path: PathBuf,
    first_seq: u64,
    last_seq: u64,
    bytes: u64,
}

struct Writer {
    dir: PathBuf,
    fs: Arc<dyn WalFs>,
    current: Option<Current>,
    next_seq: u64,
    segment_bytes: u64,
    shared: Arc<Shared>,
}

impl Writer {
    fn run<A>(
        &mut self,
        rx: Receiver<AppendRequest<A>>,
        on_durable: &mut impl FnMut(Vec<Durable<A>>),
    ) {
        while let Ok(first) = rx.recv() {
            // Group commit: take what is waiting, up to a bound on bytes so a batch
            // (which the indexer holds until it is applied) stays small.
            let bytes_of = |r: &AppendRequest<A>| -> usize {
                r.ops.iter().map(|(o, _)| o.encoded_len() + 17).sum()
            };
            let mut n_bytes = bytes_of(&first);
            let mut batch = vec![first];
            let mut n_ops: usize = batch[0].ops.len();
            while n_ops < 100_000 && n_bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        n_ops += r.ops.len();
                        n_bytes += bytes_of(&r);
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            let first_seq = self.next_seq;
            let mut buf = Vec::with_capacity(
                batch
                    .iter()
                    .flat_map(|r| r.ops.iter())
                    .map(|(o, _)| o.encoded_len() + 17)
                    .sum(),
            );
            let mut ranges = Vec::with_capacity(batch.len());
            let mut seq = first_seq;
            for r in &batch {
                let start = seq;
                for (op, _) in &r.ops {
                    op.encode(seq, &mut buf);
                    seq += 1;
                }
                ranges.push((start, seq.saturating_sub(1)));
            }
            self.next_seq = seq;
            let last_seq = seq.saturating_sub(1);
            match self.write_durably(&buf, first_seq, last_seq) {
                Ok(()) => {
                    let mut durable = Vec::with_capacity(n_ops);
                    let mut replies = Vec::with_capacity(batch.len());
                    let mut s = first_seq;
                    for (r, range) in batch.into_iter().zip(ranges) {
                        for (op, attachment) in r.ops {
                            durable.push(Durable {
                                seq: s,
                                op,
                                attachment,
                            });
                            s += 1;
                        }
                        replies.push((r.reply, range));
                    }
                    on_durable(durable);
                    for (reply, range) in replies {
                        let _ = reply.send(Ok(range));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "WAL write failed; the batch is not acknowledged");
                    for r in batch {
                        let _ = r.reply.send(Err(io::Error::new(e.kind(), e.to_string())));
                    }
                }
            }
        }
        // Channel closed: the store is shutting down.
        if let Some(mut c) = self.current.take() {
            let _ = c.file.sync();
        }
    }

    fn close_current(&mut self) {
        if let Some(c) = self.current.take() {
            self.shared.closed.lock().push(Segment {
                path: c.path,
                first_seq: c.first_seq,
                last_seq: c.last_seq,
            });
        }
    }

    fn open_segment(&mut self, first_seq: u64) -> io::Result<()> {
        self.close_current();
        let path = self.dir.join(format!("{first_seq:020}.wal"));
        // A segment abandoned after a failure may carry this name already.
        let path = if path.exists() {
            self.dir.join(format!(
                "{first_seq:020}-{}.wal",
                uuid::Uuid::new_v4().simple()
            ))
        } else {
            path
        };
        let mut file = self.fs.create(&path)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
        file.write_all(&header)?;
        self.current = Some(Current {
            file,
            path,
            first_seq,
            last_seq: first_seq.saturating_sub(1),
            bytes: HEADER_LEN as u64,
        });
        Ok(())
    }

    fn try_write(&mut self, buf: &[u8], first_seq: u64, last_seq: u64) -> io::Result<()> {
        let need_new = match &self.current {
            None => true,
            Some(c) => c.bytes >= self.segment_bytes || self.shared.roll.load(Ordering::SeqCst),
        };
        if need_new {
            self.shared.roll.store(false, Ordering::SeqCst);
            self.open_segment(first_seq)?;
        }
        let c = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("no WAL segment"))?;
        c.file.write_all(buf)?;
        let t = Instant::now();
        c.file.sync()?;
        self.shared
            .fsync_micros
            .lock()
            .push(t.elapsed().as_micros() as u64);
        c.bytes += buf.len() as u64;
        c.last_seq = last_seq;
        Ok(())
    }

    fn write_durably(&mut self, buf: &[u8], first_seq: u64, last_seq: u64) -> io::Result<()> {
        match self.try_write(buf, first_seq, last_seq) {
            Ok(()) => Ok(()),
            Err(first_err) => {
                tracing::warn!(error = %first_err, "WAL write or fsync failed: abandoning the segment and rewriting the batch into a new one");
                // Abandon: never fsync this file again. Its last_seq stays at what was
                // acknowledged before; the records of this batch may sit in it as a
                // torn or complete tail, which replay tolerates (same seqs, same bytes).
                if let Some(c) = self.current.take() {
                    self.shared.closed.lock().push(Segment {
                        path: c.path,
                        first_seq: c.first_seq,
                        last_seq: last_seq.max(c.last_seq),
                    });
                }
                self.open_segment(first_seq)?;
                self.try_write(buf, first_seq, last_seq).inspect_err(|_| {
                    // Leave no half-open segment behind.
                    if let Some(c) = self.current.take() {
                        self.shared.closed.lock().push(Segment {
                            path: c.path,
                            first_seq: c.first_seq,
                            last_seq,
                        });
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn op(i: usize) -> WalOp {
        WalOp::Index {
            index: 7,
            partition: 0,
            ts: i as i64,
            version: 1,
            id: format!("id{i}"),
            source: Arc::new(format!("{{\"n\":{i}}}").into_bytes()),
            delete_from: vec![],
        }
    }

    #[test]
    fn append_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        {
            let g = got.clone();
            let (wal, replay) =
                Wal::<()>::open(dir.path(), 0, 1 << 20, Arc::new(StdFs), move |b| {
                    g.lock().extend(b.into_iter().map(|d| d.seq))
                })
                .unwrap();
            assert!(replay.records.is_empty());
            let (a, b) = wal
                .append_blocking((0..10).map(|i| (op(i), ())).collect())
                .unwrap();
            assert_eq!((a, b), (1, 10));
            wal.request_roll();
            wal.append_blocking(vec![(op(10), ())]).unwrap();
        }
        assert_eq!(got.lock().len(), 11);
        let (records, segs) = read_all(dir.path()).unwrap();
        assert_eq!(records.len(), 11);
        assert_eq!(records[3], (4, op(3)));
        assert_eq!(segs.len(), 2);
    }

    #[test]
    fn torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, _) =
                Wal::<()>::open(dir.path(), 0, 1 << 20, Arc::new(StdFs), |_| {}).unwrap();
            wal.append_blocking(vec![(op(1), ()), (op(2), ())]).unwrap();
        }
        let (_, path) = segment_paths(dir.path()).unwrap().pop().unwrap();
        let mut data = fs::read(&path).unwrap();
        let n = data.len();
        data.truncate(n - 3);
        fs::write(&path, data).unwrap();
        let (records, _) = read_all(dir.path()).unwrap();
        assert_eq!(records.len(), 1);
    }

    /// Fails every fsync while `fail` is set.
    struct FlakyFs {
        fail: Arc<AtomicBool>,
        syncs_on_failed_files: Arc<AtomicUsize>,
    }
    struct FlakyFile {
        inner: StdFile,
        fail: Arc<AtomicBool>,
        failed_once: bool,
        syncs_after_failure: Arc<AtomicUsize>,
    }
    impl WalFile for FlakyFile {
        fn write_all(&mut self, d: &[u8]) -> io::Result<()> {
            self.inner.write_all(d)
        }
        fn sync(&mut self) -> io::Result<()> {
            if self.failed_once {
                self.syncs_after_failure.fetch_add(1, Ordering::SeqCst);
            }
            if self.fail.load(Ordering::SeqCst) {
                self.failed_once = true;
                return Err(io::Error::other("injected fsync failure"));
            }
            self.inner.sync()
        }
    }
    impl WalFs for FlakyFs {
        fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            Ok(Box::new(FlakyFile {
                inner: StdFile(f),
                fail: self.fail.clone(),
                failed_once: false,
                syncs_after_failure: self.syncs_on_failed_files.clone(),
            }))
        }
    }

    #[test]
    fn failed_fsync_abandons_segment_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let resynced = Arc::new(AtomicUsize::new(0));
        let fs_impl = Arc::new(FlakyFs {
            fail: fail.clone(),
            syncs_on_failed_files: resynced.clone(),
        });
        let acked = Arc::new(Mutex::new(Vec::new()));
        let a2 = acked.clone();
        let (wal, _) = Wal::<()>::open(dir.path(), 0, 1 << 20, fs_impl, move |b| {
            a2.lock().extend(b.into_iter().map(|d| d.seq))
        })
        .unwrap();
        wal.append_blocking(vec![(op(1), ())]).unwrap();
        fail.store(true, Ordering::SeqCst);
        let err = wal.append_blocking(vec![(op(2), ())]).unwrap_err();
        assert!(err.to_string().contains("injected"));
        fail.store(false, Ordering::SeqCst);
        let (s, _) = wal.append_blocking(vec![(op(3), ())]).unwrap();
        assert_eq!(s, 3);
        // fsync was never retried on a file whose fsync had failed.
        assert_eq!(resynced.load(Ordering::SeqCst), 0);
        assert_eq!(*acked.lock(), vec![1, 3]);
        drop(wal);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (records, _) = read_all(dir.path()).unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert!(seqs.contains(&1) && seqs.contains(&3));
    }
}
