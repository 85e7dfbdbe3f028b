//! The resume state file: which objects were imported completely, and in which version.
//!
//! Written atomically (temporary file, fsync, rename, fsync of the directory) after each
//! finished object, so a crash at any point leaves either the old or the new file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

const STATE_VERSION: u32 = 1;

/// One finished object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    /// S3 ETag, or the content fingerprint of a local file.
    pub version: String,
    /// Documents the server holds for it (created now or already present).
    pub docs: u64,
    /// RFC 3339 time the object was finished.
    pub finished_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Object URI (`s3://bucket/key` or an absolute path) -> what was imported.
    objects: BTreeMap<String, Finished>,
}

/// The state file's content plus where it lives (`None`: `--no-state`).
#[derive(Debug)]
pub struct State {
    path: Option<PathBuf>,
    objects: BTreeMap<String, Finished>,
}

impl State {
    pub fn disabled() -> Self {
        State {
            path: None,
            objects: BTreeMap::new(),
        }
    }

    /// Loads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self> {
        let objects = match std::fs::read(path) {
            Ok(bytes) => {
                let f: StateFile = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "the state file {} is not valid JSON (remove it to import everything again)",
                        path.display()
                    )
                })?;
                if f.version != STATE_VERSION {
                    bail!(
                        "the state file {} has version {}, this cairn reads version {STATE_VERSION}",
                        path.display(),
                        f.version
                    );
                }
                f.objects
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the state file {}", path.display()))
            }
        };
        Ok(State {
            path: Some(path.to_path_buf()),
            objects,
        })
    }

    /// Was this object imported completely in this version?
    pub fn is_finished(&self, uri: &str, version: &str) -> bool {
        self.objects.get(uri).is_some_and(|f| f.version == version)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Records a finished object and saves the file.
    pub fn finish(&mut self, uri: &str, version: &str, docs: u64) -> Result<()> {
        self.objects.insert(
            uri.to_owned(),
            Finished {
                version: version.to_owned(),
                docs,
                finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        );
        self.save()
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let body = serde_json::to_vec_pretty(&StateFile {
            version: STATE_VERSION,
            objects: self.objects.clone(),
        })?;
        write_atomic(path, &body)
            .with_context(|| format!("cannot write the state file {}", path.display()))
    }
}

fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_versions() {
        let dir = std::env::temp_dir().join(format!("cairn-import-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        let _ = std::fs::remove_file(&p);
        let mut s = State::load(&p).unwrap();
        assert_eq!(s.len(), 0);
        s.finish("s3://b/k", "etag1", 3).unwrap();
        let s = State::load(&p).unwrap();
        assert!(s.is_finished("s3://b/k", "etag1"));
        assert!(!s.is_finished("s3://b/k", "etag2"));
        std::fs::write(&p, b"{not json").unwrap();
        assert!(State::load(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
