//! One time partition of one index: a tantivy index in its own directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cairn_core::time::{MICROS_PER_DAY, MICROS_PER_SEC};
use chrono::{DateTime, NaiveDateTime, Utc};
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy};

use crate::dir::PartitionDir;
use crate::schema::{build_schema, tokenizers, Fields};

/// How documents are split in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Hour,
}

impl Granularity {
    pub fn micros(self) -> i64 {
        match self {
            Granularity::Day => MICROS_PER_DAY,
            Granularity::Hour => 3600 * MICROS_PER_SEC,
        }
    }
    pub fn key_for(self, ts: i64) -> i64 {
        ts.div_euclid(self.micros()) * self.micros()
    }
    pub fn parse(s: &str) -> Option<Granularity> {
        match s {
            "day" | "1d" => Some(Granularity::Day),
            "hour" | "1h" => Some(Granularity::Hour),
            _ => None,
        }
    }
}

/// Directory name of a partition: `20240131` (day) or `20240131T13` (hour), UTC.
pub fn partition_dir_name(key: i64, g: Granularity) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(key).unwrap_or_default();
    match g {
        Granularity::Day => dt.format("%Y%m%d").to_string(),
        Granularity::Hour => dt.format("%Y%m%dT%H").to_string(),
    }
}

/// Parses a partition directory name back into (start, granularity).
pub fn parse_partition_dir_name(name: &str) -> Option<(i64, Granularity)> {
    if name.len() == 8 {
        let d = chrono::NaiveDate::parse_from_str(name, "%Y%m%d").ok()?;
        Some((
            d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros(),
            Granularity::Day,
        ))
    } else if name.len() == 11 {
        let d = NaiveDateTime::parse_from_str(&format!("{name}:00"), "%Y%m%dT%H:%M").ok()?;
        Some((d.and_utc().timestamp_micros(), Granularity::Hour))
    } else {
        None
    }
}

pub struct Partition {
    /// Start of the partition's time range (microseconds, inclusive).
    pub key: i64,
    /// End of the range (exclusive).
    pub end: i64,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub(crate) dir: PartitionDir,
    /// WAL position of the partition's durable commit.
    pub durable_seq: AtomicU64,
    /// Set when retention or index deletion removes the partition: its files go
    /// when the last reader (a search, a scroll, a point in time) lets go of it.
    pub(crate) removed: AtomicBool,
    /// Per-segment `_id` filters, built as `create` probes the segments.
    pub(crate) id_filters: crate::idfilter::IdFilters,
    path: PathBuf,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("key", &self.key)
            .field("path", &self.path)
            .finish()
    }
}

/// Decompressed doc store blocks kept per segment (tantivy's default is 100, which
/// with 512 KiB blocks would be 50 MiB per segment).
const DOC_STORE_CACHE_BLOCKS: usize = 8;

pub(crate) fn index_settings(zstd_level: i32, block_size: usize) -> IndexSettings {
    IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(zstd_level),
        }),
        docstore_blocksize: block_size,
        ..IndexSettings::default()
    }
}

impl Partition {
    pub fn open(
        path: &Path,
        key: i64,
        g: Granularity,
        settings: IndexSettings,
    ) -> std::io::Result<Partition> {
        let (dir, durable) = PartitionDir::open(path)?;
        let (schema, fields) = build_schema();
        let mut index = match &durable {
            Some(_) => Index::open(dir.clone()),
            None => Index::create(dir.clone(), schema, settings),
        }
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        index.set_tokenizers(tokenizers());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS)
            .try_into()
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        Ok(Partition {
            key,
            end: key + g.micros(),
            index,
            reader,
            fields,
            dir,
            durable_seq: AtomicU64::new(durable.map(|d| d.wal_seq).unwrap_or(0)),
            removed: AtomicBool::new(false),
            id_filters: Default::default(),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        dir_size(&self.path)
    }

    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
    }
}

pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl Drop for Partition {
    fn drop(&mut self) {
        if self.removed.load(Ordering::SeqCst) {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove a deleted partition");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let k = Granularity::Day.key_for(1_700_000_000_000_000);
        let n = partition_dir_name(k, Granularity::Day);
        assert_eq!(n, "20231114");
        assert_eq!(parse_partition_dir_name(&n), Some((k, Granularity::Day)));
        let k = Granularity::Hour.key_for(1_700_000_000_000_000);
        let n = partition_dir_name(k, Granularity::Hour);
        assert_eq!(n, "20231114T22");
        assert_eq!(parse_partition_dir_name(&n), Some((k, Granularity::Hour)));
    }
}
