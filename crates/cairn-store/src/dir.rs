//! A tantivy `Directory` that separates *refresh* from *flush*.
//!
//! tantivy's `MmapDirectory` fsyncs every file on commit. Cairn commits every
//! `refresh_interval` to make documents searchable, and durability already comes from
//! the WAL, so this wrapper skips fsync on those commits. A *durable point* is made
//! explicitly by [`PartitionDir::make_durable`]: it fsyncs the files the current
//! `meta.json` references, then records that `meta.json` in `cairn-durable.json`
//! (written with fsync and an atomic rename). On open, the partition is rolled back to
//! its durable point; the WAL replays everything after it.
//!
//! Files referenced by the durable point must survive until the next durable point,
//! even if tantivy's garbage collector (after merges or newer commits) asks for them to
//! be deleted: such deletions are deferred.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};

pub const DURABLE_FILE: &str = "cairn-durable.json";
const META_FILE: &str = "meta.json";
const MANAGED_FILE: &str = ".managed.json";

#[derive(Debug, Default)]
struct DeletionState {
    /// Files the durable point references.
    protected: HashSet<PathBuf>,
    /// Deletions tantivy asked for while the file was protected.
    deferred: HashSet<PathBuf>,
}

/// The durable state of a partition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DurablePoint {
    pub format_version: u32,
    /// Every WAL record with a sequence number up to this one is in the partition.
    pub wal_seq: u64,
    /// The `meta.json` of the durable commit.
    pub meta: String,
}

pub const PARTITION_FORMAT_VERSION: u32 = 2;

#[derive(Clone, Debug)]
pub struct PartitionDir {
    root: PathBuf,
    inner: MmapDirectory,
    state: Arc<Mutex<DeletionState>>,
}

struct NoSyncWriter {
    file: BufWriter<File>,
}

impl Write for NoSyncWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl TerminatingWrite for NoSyncWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.file.flush()
    }
}

/// fsync a file or directory by path.
pub fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_durably(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fsync_path(dir)
}

impl PartitionDir {
    /// Opens the directory, rolling it back to its durable point. Returns the
    /// directory and the durable point (None: never flushed, the directory is empty).
    pub fn open(root: &Path) -> io::Result<(PartitionDir, Option<DurablePoint>)> {
        fs::create_dir_all(root)?;
        let durable = match fs::read(root.join(DURABLE_FILE)) {
            Ok(bytes) => Some(serde_json::from_slice::<DurablePoint>(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", root.join(DURABLE_FILE).display()),
                )
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = &durable {
            if d.format_version != PARTITION_FORMAT_VERSION {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "partition {} has format version {} but this cairn reads version {}",
                        root.display(),
                        d.format_version,
                        PARTITION_FORMAT_VERSION
                    ),
                ));
            }
        }
        let protected: HashSet<PathBuf> = match &durable {
            Some(d) => referenced_files(root, &d.meta)?,
            None => HashSet::new(),
        };
        // Roll back: remove everything the durable point does not reference, then put
        // back its meta.json and a matching managed-files list.
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let name = PathBuf::from(entry.file_name());
            let keep = name.as_os_str() == DURABLE_FILE
                || protected.contains(&name)
                || name.to_string_lossy().starts_with(".tantivy-");
            if !keep {
                let p = entry.path();
                if p.is_dir() {
                    fs::remove_dir_all(&p)?;
                } else {
                    fs::remove_file(&p)?;
                }
            }
        }
        if let Some(d) = &durable {
            write_durably(&root.join(META_FILE), d.meta.as_bytes())?;
            let mut managed: Vec<String> = protected
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            managed.push(META_FILE.to_string());
            let mut json = serde_json::to_vec(&managed).map_err(io::Error::other)?;
            json.push(b'\n');
            write_durably(&root.join(MANAGED_FILE), &json)?;
        }
        let inner = MmapDirectory::open(root)
            .map_err(|e| io::Error::other(format!("{}: {e}", root.display())))?;
        let dir = PartitionDir {
            root: root.to_path_buf(),
            inner,
            state: Arc::new(Mutex::new(DeletionState {
                protected,
                deferred: HashSet::new(),
            })),
        };
        Ok((dir, durable))
    }

    /// Makes the current commit durable and records `wal_seq` with it.
    ///
    /// The deletion lock is held throughout: a merge finishing in one of tantivy's
    /// threads may ask to delete files of the commit being made durable (it superseded
    /// them) between the read of `meta.json` and the write of the durable point. Such a
    /// deletion waits, then finds the file protected and is deferred.
    pub fn make_durable(&self, wal_seq: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        let meta = fs::read_to_string(self.root.join(META_FILE))?;
        let files = referenced_files(&self.root, &meta)?;
        for f in &files {
            fsync_path(&self.root.join(f))?;
        }
        fsync_path(&self.root)?;
        let point = DurablePoint {
            format_version: PARTITION_FORMAT_VERSION,
            wal_seq,
            meta,
        };
        let bytes = serde_json::to_vec(&point).map_err(io::Error::other)?;
        write_durably(&self.root.join(DURABLE_FILE), &bytes)?;
        // Deletions deferred for the previous durable point can happen now.
        st.protected = files;
        let deferred: Vec<PathBuf> = st.deferred.iter().cloned().collect();
        for f in deferred {
            if !st.protected.contains(&f) {
                match fs::remove_file(self.root.join(&f)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                st.deferred.remove(&f);
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The segment files a `meta.json` references: each segment's component files
/// (`{id}.idx`, `{id}.term`, ...) and the one delete file its meta names
/// (`{id}.{opstamp}.del`). Delete files a later, non-durable commit wrote for the same
/// segment are not referenced: a rollback must remove them, or the writer that reaches
/// the same opstamp again after a crash finds its file already there.
fn referenced_files(root: &Path, meta_json: &str) -> io::Result<HashSet<PathBuf>> {
    let meta: serde_json::Value = serde_json::from_str(meta_json)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("meta.json: {e}")))?;
    let mut ids: Vec<(String, Option<String>)> = Vec::new();
    for seg in meta
        .get("segments")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
    {
        let Some(id) = seg.get("segment_id").and_then(|i| i.as_str()) else {
            continue;
        };
        let id = id.replace('-', "");
        let del = seg
            .get("deletes")
            .and_then(|d| d.get("opstamp"))
            .and_then(|o| o.as_u64())
            .map(|o| format!("{id}.{o}.del"));
        ids.push((id, del));
    }
    let mut out = HashSet::new();
    for e in fs::read_dir(root)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let referenced = ids.iter().any(|(id, del)| {
            del.as_deref() == Some(name.as_str())
                || name
                    .strip_prefix(id.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|ext| !ext.is_empty() && !ext.contains('.'))
        });
        if referenced {
            out.insert(PathBuf::from(name));
        }
    }
    Ok(out)
}

impl Directory for PartitionDir {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        {
            let mut st = self.state.lock();
            if st.protected.contains(path) {
                st.deferred.insert(path.to_path_buf());
                return Ok(());
            }
        }
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let full = self.root.join(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&full)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    OpenWriteError::FileAlreadyExists(path.to_path_buf())
                } else {
                    OpenWriteError::wrap_io_error(e, path.to_path_buf())
                }
            })?;
        Ok(BufWriter::new(Box::new(NoSyncWriter {
            file: BufWriter::new(file),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // Atomic (rename) but not durable: durability comes from make_durable.
        let full = self.root.join(path);
        let tmp = full.with_extension("cairn-tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
        }
        fs::rename(&tmp, &full)
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_point_references_only_its_own_delete_file() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        for f in [
            format!("{id}.idx"),
            format!("{id}.term"),
            format!("{id}.5.del"),
            format!("{id}.9.del"),
            format!("{id}.store.temp"),
            "fedcba9876543210fedcba9876543210.idx".to_string(),
            "meta.json".to_string(),
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        let meta = serde_json::json!({"segments": [{
            "segment_id": "01234567-89ab-cdef-0123-456789abcdef",
            "max_doc": 3,
            "deletes": {"num_deleted_docs": 1, "opstamp": 5}
        }]});
        let got = referenced_files(dir.path(), &meta.to_string()).unwrap();
        let want: HashSet<PathBuf> = [
            format!("{id}.idx"),
            format!("{id}.term"),
            format!("{id}.5.del"),
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }
}
