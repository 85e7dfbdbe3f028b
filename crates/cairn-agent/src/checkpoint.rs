//! Per-source checkpoints: for each file incarnation, where reading resumes and how to
//! recognise the file again. Written atomically (temp file, fsync, rename, fsync of
//! the directory) so a crash leaves either the old or the new state, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AgentError;

/// How many fingerprints of released or rotated-away files are remembered, so that a
/// copy of an already-read file (`app.log.1` after a copy rotation) is not read again.
const RETIRED_KEEP: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileCheckpoint {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub generation: u64,
    /// First byte not yet durably handed to the sinks.
    pub offset: u64,
    /// Hash of the first `fp_len` bytes (0 when the file was empty).
    pub fingerprint: String,
    pub fp_len: u64,
    /// Hash of the `marker_len` bytes just before `offset`: if they changed, the file
    /// was rewritten (copytruncate, inode reuse) even though it is long enough.
    pub marker: String,
    pub marker_len: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SourceState {
    /// Never reused: every file incarnation gets the next value.
    pub next_generation: u64,
    /// Keyed by `dev:ino`.
    pub files: BTreeMap<String, FileCheckpoint>,
    /// Fingerprints (`hash/len`) of files fully read and released.
    #[serde(default)]
    pub retired: Vec<String>,
    /// The read time (epoch ms) given as `@timestamp` to lines without one of their
    /// own. Persisted before lines carrying it are buffered, so a replay after a crash
    /// stamps the same lines with the same time.
    #[serde(default)]
    pub read_time_ms: u64,
}

impl SourceState {
    pub fn key(dev: u64, ino: u64) -> String {
        format!("{dev}:{ino}")
    }

    pub fn allocate_generation(&mut self) -> u64 {
        // Start at 1 so 0 stays free for sources without files (stdin).
        self.next_generation = self.next_generation.max(1);
        let g = self.next_generation;
        self.next_generation += 1;
        g
    }

    pub fn retire(&mut self, fp: String) {
        if !self.retired.contains(&fp) {
            self.retired.push(fp);
            if self.retired.len() > RETIRED_KEEP {
                let excess = self.retired.len() - RETIRED_KEEP;
                self.retired.drain(..excess);
            }
        }
    }
}

/// The checkpoint file of one source.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    /// Whether a checkpoint existed when the agent started (`read_from: end` only
    /// applies to the first start).
    pub existed: bool,
    pub state: SourceState,
}

impl CheckpointStore {
    pub fn open(dir: &Path, source: &str) -> Result<CheckpointStore, AgentError> {
        fs::create_dir_all(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("{source}.json"));
        let (existed, state) = match fs::read(&path) {
            Ok(bytes) => {
                let state = serde_json::from_slice(&bytes).map_err(|e| AgentError::Checkpoint {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                (true, state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (false, SourceState::default()),
            Err(e) => return Err(AgentError::io(format!("reading {}", path.display()), e)),
        };
        Ok(CheckpointStore {
            path,
            existed,
            state,
        })
    }

    /// Writes the state atomically and durably.
    pub fn save(&self) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec(&self.state).map_err(|e| AgentError::Checkpoint {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)
    }
}

/// Write to `path.tmp`, fsync, rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let tmp = path.with_extension("tmp");
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = fs::File::create(&tmp).map_err(|e| AgentError::io(ctx("creating"), e))?;
    f.write_all(bytes)
        .map_err(|e| AgentError::io(ctx("writing"), e))?;
    f.sync_all()
        .map_err(|e| AgentError::io(ctx("syncing"), e))?;
    drop(f);
    fs::rename(&tmp, path)
        .map_err(|e| AgentError::io(format!("renaming to {}", path.display()), e))?;
    if let Some(dir) = path.parent() {
        // The rename is only durable once the directory entry is.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_generations() {
        let dir = std::env::temp_dir().join(format!("cairn-agent-ckpt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = CheckpointStore::open(&dir, "app").expect("open");
        assert!(!s.existed);
        assert_eq!(s.state.allocate_generation(), 1);
        assert_eq!(s.state.allocate_generation(), 2);
        s.save().expect("save");
        let mut s2 = CheckpointStore::open(&dir, "app").expect("reopen");
        assert!(s2.existed);
        assert_eq!(s2.state.allocate_generation(), 3);
        let _ = fs::remove_dir_all(&dir);
    }
}
