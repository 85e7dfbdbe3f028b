//! The disk buffer between the pipeline and a sink: an append-only log of
//! CRC-framed records in numbered segment files, plus an acknowledged read position.
//!
//! Writers (source threads) append a batch and fsync before returning, so once
//! `append` returns the events survive `kill -9` and the source may advance its
//! checkpoint. The sink reads from the acknowledged position and acknowledges after
//! delivery; a crash in between replays the unacknowledged tail (at least once; the
//! deterministic ids turn the replay into `409`s). The record frame is
//! `[len: u32 LE][crc32 of payload: u32 LE][payload]`; a torn tail left by a crash
//! fails its CRC and is cut off on open.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::checkpoint::write_atomic;
use crate::config::WhenFull;
use crate::AgentError;

/// Segments roll at this size so acknowledged data can be deleted file by file.
const SEGMENT_BYTES: u64 = 32 << 20;
const HEADER: u64 = 8;
/// A record larger than this is corruption, not data (the line cap is far below).
const MAX_RECORD: u32 = 256 << 20;

/// A position in the buffer: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub seg: u64,
    pub off: u64,
}

/// Records read for delivery, and the position to acknowledge once delivered.
#[derive(Debug)]
pub struct Batch {
    pub records: Vec<Vec<u8>>,
    pub end: Pos,
}

/// What happened to an appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Written,
    /// `when_full: drop_newest` and the buffer was full.
    Dropped,
}

/// A batch of records framed in place (`[len][crc][payload]` back to back), ready for
/// [`DiskBuffer::append_frames`]: one growing allocation reused across batches
/// instead of one per record, and no second copy into a frame buffer on append.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    buf: Vec<u8>,
    count: usize,
    /// Where the last record's frame starts.
    last: usize,
    /// The size of a record over [`MAX_RECORD`] (left out; `append_frames` errors).
    too_large: Option<usize>,
}

impl Frames {
    /// Appends one record whose payload `write` produces.
    pub fn record(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER as usize]);
        write(&mut self.buf);
        let len = self.buf.len() - at - HEADER as usize;
        match u32::try_from(len).ok().filter(|l| *l <= MAX_RECORD) {
            Some(l) => {
                let crc = crc32fast::hash(&self.buf[at + HEADER as usize..]);
                self.buf[at..at + 4].copy_from_slice(&l.to_le_bytes());
                self.buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
                self.count += 1;
                self.last = at;
            }
            None => {
                self.buf.truncate(at);
                self.too_large.get_or_insert(len);
            }
        }
    }

    /// Appends one record.
    pub fn push(&mut self, payload: &[u8]) {
        self.record(|b| b.extend_from_slice(payload));
    }

    /// The payload of the last record appended (empty when there is none).
    pub fn last(&self) -> &[u8] {
        match self.count {
            0 => &[],
            _ => &self.buf[self.last + HEADER as usize..],
        }
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.too_large.is_none()
    }

    /// Empties the batch, keeping the allocation (shrunk when a burst grew it a lot).
    pub fn clear(&mut self) {
        if self.buf.capacity() > 16 << 20 {
            self.buf = Vec::new();
        }
        self.buf.clear();
        self.count = 0;
        self.last = 0;
        self.too_large = None;
    }
}

#[derive(Debug)]
struct Inner {
    write_seg: u64,
    /// Segment sizes, write segment included; a size only grows after the bytes are
    /// synced, so readers never see a half-written record.
    sizes: BTreeMap<u64, u64>,
    ack: Pos,
    read: Pos,
    reader: Option<(u64, File)>,
    /// Read-ahead: bytes of segment `ra_seg` starting at `ra_off` (one read syscall
    /// serves many records).
    ra_seg: u64,
    ra_off: u64,
    ra: Vec<u8>,
    /// How much of `ra` is valid (`ra` itself only grows: refills are not zeroed).
    ra_len: usize,
}

/// The append side, locked separately so an fsync does not stall the reader.
#[derive(Debug)]
struct Writer {
    seg: u64,
    file: File,
    len: u64,
}

/// Bytes fetched per read-ahead.
const READ_AHEAD: u64 = 1 << 20;

/// See the module doc.
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_size: u64,
    when_full: WhenFull,
    inner: Mutex<Inner>,
    writer: Mutex<Writer>,
    changed: Condvar,
}

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:016}.seg"))
}

fn err(dir: &Path, reason: impl Into<String>) -> AgentError {
    AgentError::Buffer {
        path: dir.display().to_string(),
        reason: reason.into(),
    }
}

/// The length of the valid prefix of a segment (complete records with good CRCs).
fn valid_prefix(path: &Path) -> Result<u64, std::io::Error> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut off = 0usize;
    while off + HEADER as usize <= data.len() {
        let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
        let crc = u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
        let start = off + HEADER as usize;
        let end = start + len as usize;
        if len > MAX_RECORD || end > data.len() || crc32fast::hash(&data[start..end]) != crc {
            break;
        }
        off = end;
    }
    Ok(off as u64)
}

impl DiskBuffer {
    pub fn open(dir: &Path, max_size: u64, when_full: WhenFull) -> Result<DiskBuffer, AgentError> {
        fs::create_dir_all(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
        let mut sizes = BTreeMap::new();
        let entries = fs::read_dir(dir)
            .map_err(|e| AgentError::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(num) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                sizes.insert(num, len);
            }
        }
        let ack = match fs::read_to_string(dir.join("ack")) {
            Ok(text) => {
                let mut it = text.split_whitespace().map(str::parse::<u64>);
                match (it.next(), it.next()) {
                    (Some(Ok(seg)), Some(Ok(off))) => Pos { seg, off },
                    _ => return Err(err(dir, format!("unreadable ack file: {text:?}"))),
                }
            }
            Err(_) => Pos {
                seg: sizes.keys().next().copied().unwrap_or(1),
                off: 0,
            },
        };
        // Segments before the acknowledged one were delivered; a crash may have left
        // them undeleted.
        let stale: Vec<u64> = sizes.range(..ack.seg).map(|(k, _)| *k).collect();
        for s in stale {
            let _ = fs::remove_file(seg_path(dir, s));
            sizes.remove(&s);
        }
        let write_seg = sizes
            .keys()
            .next_back()
            .copied()
            .unwrap_or(ack.seg)
            .max(ack.seg);
        let wpath = seg_path(dir, write_seg);
        // Only the last segment can have a torn tail: earlier ones were synced before
        // the writer moved on.
        let valid = if wpath.exists() {
            valid_prefix(&wpath)
                .map_err(|e| AgentError::io(format!("reading {}", wpath.display()), e))?
        } else {
            0
        };
        let write_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wpath)
            .map_err(|e| AgentError::io(format!("opening {}", wpath.display()), e))?;
        if write_file.metadata().map(|m| m.len()).unwrap_or(0) != valid {
            tracing::warn!(segment = %wpath.display(), valid, "disk buffer: cutting a torn tail");
            write_file
                .set_len(valid)
                .map_err(|e| AgentError::io(format!("truncating {}", wpath.display()), e))?;
        }
        sizes.insert(write_seg, valid);
        let ack = if ack.seg == write_seg && ack.off > valid {
            Pos {
                seg: write_seg,
                off: valid,
            }
        } else {
            ack
        };
        Ok(DiskBuffer {
            dir: dir.to_owned(),
            max_size,
            when_full,
            inner: Mutex::new(Inner {
                write_seg,
                sizes,
                ack,
                read: ack,
                reader: None,
                ra_seg: 0,
                ra_off: 0,
                ra: Vec::new(),
                ra_len: 0,
            }),
            writer: Mutex::new(Writer {
                seg: write_seg,
                file: write_file,
                len: valid,
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a thread panicked mid-operation; the files are still
        // consistent (CRC framing), so keep going with the data as it is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn used(inner: &Inner) -> u64 {
        inner
            .sizes
            .range(inner.ack.seg..)
            .map(|(_, s)| *s)
            .sum::<u64>()
            .saturating_sub(inner.ack.off)
    }

    /// Bytes appended and not yet acknowledged.
    pub fn size(&self) -> u64 {
        Self::used(&self.lock())
    }

    /// Appends records durably. Blocks while the buffer is full (`block`), or drops
    /// the batch (`drop_newest`).
    pub fn append(&self, records: &[Vec<u8>]) -> Result<Appended, AgentError> {
        let mut frames = Frames::default();
        for r in records {
            frames.push(r);
        }
        self.append_frames(&frames)
    }

    /// [`Self::append`] for records framed in place.
    pub fn append_frames(&self, frames: &Frames) -> Result<Appended, AgentError> {
        if let Some(len) = frames.too_large {
            return Err(err(
                &self.dir,
                format!("record of {len} bytes is too large"),
            ));
        }
        if frames.count == 0 {
            return Ok(Appended::Written);
        }
        let frame = &frames.buf;
        // One appender at a time; the reader only takes `inner`, briefly.
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        loop {
            let used = Self::used(&inner);
            // An empty buffer always takes a batch, or one oversized batch would block
            // forever.
            if used == 0 || used + frame.len() as u64 <= self.max_size {
                break;
            }
            match self.when_full {
                WhenFull::DropNewest => return Ok(Appended::Dropped),
                WhenFull::Block => {
                    inner = self
                        .changed
                        .wait_timeout(inner, Duration::from_millis(500))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        if w.len >= SEGMENT_BYTES {
            let next = w.seg + 1;
            let p = seg_path(&self.dir, next);
            w.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| AgentError::io(format!("opening {}", p.display()), e))?;
            w.seg = next;
            w.len = 0;
            inner.write_seg = next;
            inner.sizes.insert(next, 0);
        }
        drop(inner);
        let res = w.file.write_all(frame).and_then(|_| w.file.sync_data());
        if let Err(e) = res {
            // Cut what may have been partially written so the next append starts on
            // a frame boundary.
            let len = w.len;
            let _ = w.file.set_len(len);
            return Err(AgentError::io(
                format!("appending to {}", seg_path(&self.dir, w.seg).display()),
                e,
            ));
        }
        w.len += frame.len() as u64;
        let mut inner = self.lock();
        inner.sizes.insert(w.seg, w.len);
        drop(inner);
        drop(w);
        self.changed.notify_all();
        Ok(Appended::Written)
    }

    /// Reads up to `max_bytes` / `max_records` of records after the last read position, waiting up to
    /// `linger` for more once at least one record is available (batching by time) and
    /// up to `idle` for the first one. `None`: nothing arrived.
    pub fn read_batch(
        &self,
        max_bytes: usize,
        max_records: usize,
        linger: Duration,
        idle: Duration,
    ) -> Result<Option<Batch>, AgentError> {
        let mut records = Vec::new();
        let got = self.read_batch_with(max_bytes, max_records, linger, idle, &mut |r| {
            records.push(r.to_vec())
        })?;
        Ok(got.map(|(_, end)| Batch { records, end }))
    }

    /// [`Self::read_batch`] without a copy per record: each record's payload is handed
    /// to `on_record` (in order, straight from the read-ahead, with the buffer's lock
    /// held: `on_record` must not call into the buffer). Returns the number of records
    /// and the position to acknowledge once they are delivered.
    pub fn read_batch_with(
        &self,
        max_bytes: usize,
        max_records: usize,
        linger: Duration,
        idle: Duration,
        on_record: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<(usize, Pos)>, AgentError> {
        let start = Instant::now();
        let mut first_at: Option<Instant> = None;
        let mut count = 0usize;
        let mut bytes = 0usize;
        let mut inner = self.lock();
        loop {
            while bytes < max_bytes && count < max_records.max(1) {
                match self.read_one(&mut inner)? {
                    Some((a, b)) => {
                        bytes += b - a;
                        count += 1;
                        on_record(&inner.ra[a..b]);
                        first_at.get_or_insert_with(Instant::now);
                    }
                    None => break,
                }
            }
            let now = Instant::now();
            let deadline = match first_at {
                Some(t)
                    if bytes >= max_bytes || count >= max_records.max(1) || now >= t + linger =>
                {
                    return Ok(Some((count, inner.read)))
                }
                Some(t) => t + linger,
                None if now >= start + idle => return Ok(None),
                None => start + idle,
            };
            inner = self
                .changed
                .wait_timeout(inner, deadline.saturating_duration_since(now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The next record's payload, as a range of `inner.ra`.
    fn read_one(&self, inner: &mut Inner) -> Result<Option<(usize, usize)>, AgentError> {
        loop {
            let seg = inner.read.seg;
            let size = inner.sizes.get(&seg).copied().unwrap_or(0);
            if inner.read.off >= size {
                if seg < inner.write_seg {
                    inner.read = Pos {
                        seg: seg + 1,
                        off: 0,
                    };
                    inner.reader = None;
                    continue;
                }
                return Ok(None);
            }
            let off = inner.read.off;
            let header = self.ra_range(inner, seg, off, HEADER, size)?.map(|(a, _)| {
                let h = &inner.ra[a..a + HEADER as usize];
                (
                    u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
                    u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
                )
            });
            if let Some((len, crc)) = header {
                if len <= MAX_RECORD && off + HEADER + len as u64 <= size {
                    if let Some((a, b)) =
                        self.ra_range(inner, seg, off + HEADER, len as u64, size)?
                    {
                        if crc32fast::hash(&inner.ra[a..b]) == crc {
                            inner.read.off = off + HEADER + len as u64;
                            return Ok(Some((a, b)));
                        }
                    }
                }
            }
            // Corruption inside a synced segment (disk error): skip the rest of the
            // segment rather than stall delivery forever.
            tracing::error!(
                segment = seg,
                offset = off,
                "disk buffer: corrupt record, skipping rest of segment"
            );
            inner.read.off = size;
        }
    }

    /// Where `len` bytes at `off` of segment `seg` (bounded by `size`) are in the
    /// read-ahead, refilling it when needed. `None`: the file is shorter than expected.
    fn ra_range(
        &self,
        inner: &mut Inner,
        seg: u64,
        off: u64,
        len: u64,
        size: u64,
    ) -> Result<Option<(usize, usize)>, AgentError> {
        let have = inner.ra_seg == seg
            && off >= inner.ra_off
            && off + len <= inner.ra_off + inner.ra_len as u64;
        if !have {
            if inner.reader.as_ref().map(|(s, _)| *s) != Some(seg) {
                let p = seg_path(&self.dir, seg);
                let f = File::open(&p)
                    .map_err(|e| AgentError::io(format!("opening {}", p.display()), e))?;
                inner.reader = Some((seg, f));
            }
            let want = len.max(READ_AHEAD).min(size.saturating_sub(off));
            let want = want as usize;
            inner.ra_len = 0;
            if inner.ra.len() < want {
                inner.ra.resize(want, 0);
            }
            let mut got = 0usize;
            if let Some((_, f)) = inner.reader.as_mut() {
                f.seek(SeekFrom::Start(off))
                    .map_err(|e| AgentError::io("seeking in the disk buffer", e))?;
                while got < want {
                    match f.read(&mut inner.ra[got..want]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(AgentError::io("reading the disk buffer", e)),
                    }
                }
            }
            inner.ra_len = got;
            inner.ra_seg = seg;
            inner.ra_off = off;
        }
        let start = (off - inner.ra_off) as usize;
        let end = start + len as usize;
        Ok((end <= inner.ra_len).then_some((start, end)))
    }

    /// Everything up to `pos` was delivered: persist it and delete finished segments.
    pub fn ack(&self, pos: Pos) -> Result<(), AgentError> {
        let mut inner = self.lock();
        if pos <= inner.ack {
            return Ok(());
        }
        write_atomic(
            &self.dir.join("ack"),
            format!("{} {}\n", pos.seg, pos.off).as_bytes(),
        )?;
        inner.ack = pos;
        let done: Vec<u64> = inner.sizes.range(..pos.seg).map(|(k, _)| *k).collect();
        for s in done {
            inner.sizes.remove(&s);
            let _ = fs::remove_file(seg_path(&self.dir, s));
        }
        drop(inner);
        self.changed.notify_all();
        Ok(())
    }

    /// The position just after everything appended so far: once [`Self::acked`]
    /// reaches it, every record appended before this call was delivered (the `s3`
    /// source marks an object done only then).
    pub fn end(&self) -> Pos {
        let inner = self.lock();
        Pos {
            seg: inner.write_seg,
            off: inner.sizes.get(&inner.write_seg).copied().unwrap_or(0),
        }
    }

    /// The position the sink acknowledged (delivered up to here).
    pub fn acked(&self) -> Pos {
        self.lock().ack
    }

    /// Rewinds reading to the acknowledged position (after a failed delivery that the
    /// sink gave up on retrying in place).
    pub fn rewind(&self) {
        let mut inner = self.lock();
        inner.read = inner.ack;
        inner.reader = None;
        inner.ra_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-agent-buf-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn append_read_ack_reopen() {
        let d = tmp("basic");
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("open");
        b.append(&[b"one".to_vec(), b"two".to_vec()])
            .expect("append");
        let batch = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        assert_eq!(batch.records, vec![b"one".to_vec(), b"two".to_vec()]);
        b.append(&[b"three".to_vec()]).expect("append");
        drop(b);
        // Not acknowledged: everything is replayed.
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("reopen");
        let batch = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        assert_eq!(batch.records.len(), 3);
        b.ack(Pos {
            seg: batch.end.seg,
            off: 22,
        })
        .expect("ack two");
        drop(b);
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("reopen");
        let batch = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        assert_eq!(batch.records, vec![b"three".to_vec()]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn frames_append_and_read_without_copies() {
        let d = tmp("frames");
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("open");
        let mut f = Frames::default();
        assert!(f.is_empty());
        f.push(b"one");
        f.record(|r| r.extend_from_slice(b"tw"));
        f.record(|r| r.push(b'o'));
        f.push(b"");
        assert_eq!((f.len(), f.last()), (4, &b""[..]));
        assert_eq!(b.append_frames(&f).expect("append"), Appended::Written);
        // Same bytes on disk as `append` of the same records.
        b.append(&[b"one".to_vec(), b"tw".to_vec(), b"o".to_vec(), Vec::new()])
            .expect("append");
        let mut got = Vec::new();
        let (n, end) = b
            .read_batch_with(1 << 20, 5, Duration::ZERO, Duration::ZERO, &mut |r| {
                got.push(r.to_vec())
            })
            .expect("read")
            .expect("some");
        assert_eq!(n, 5);
        assert_eq!(
            got,
            [&b"one"[..], b"tw", b"o", b"", b"one"].map(<[u8]>::to_vec)
        );
        b.ack(end).expect("ack");
        let rest = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        assert_eq!(
            rest.records,
            vec![b"tw".to_vec(), b"o".to_vec(), Vec::new()]
        );
        let seg = fs::read(seg_path(&d, 1)).expect("segment");
        assert_eq!(seg[..f.buf.len()], seg[f.buf.len()..]);
        f.clear();
        assert!(f.is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn torn_tail_is_cut() {
        let d = tmp("torn");
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("open");
        b.append(&[b"whole".to_vec()]).expect("append");
        drop(b);
        let seg = seg_path(&d, 1);
        let mut f = OpenOptions::new().append(true).open(&seg).expect("seg");
        f.write_all(&[9, 0, 0, 0, 1, 2]).expect("garbage");
        drop(f);
        let b = DiskBuffer::open(&d, 1 << 20, WhenFull::Block).expect("reopen");
        b.append(&[b"next".to_vec()]).expect("append");
        let batch = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        assert_eq!(batch.records, vec![b"whole".to_vec(), b"next".to_vec()]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn drop_newest_when_full() {
        let d = tmp("full");
        let b = DiskBuffer::open(&d, 20, WhenFull::DropNewest).expect("open");
        assert_eq!(b.append(&[vec![b'x'; 16]]).expect("a"), Appended::Written);
        assert_eq!(b.append(&[vec![b'y'; 16]]).expect("b"), Appended::Dropped);
        let batch = b
            .read_batch(1 << 20, 1000, Duration::ZERO, Duration::ZERO)
            .expect("read")
            .expect("some");
        b.ack(batch.end).expect("ack");
        assert_eq!(b.size(), 0);
        assert_eq!(b.append(&[vec![b'y'; 16]]).expect("c"), Appended::Written);
        let _ = fs::remove_dir_all(&d);
    }
}
