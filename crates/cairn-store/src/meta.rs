//! The metastore: indexes, mappings, settings, templates, data streams, ILM policies
//! and ingest pipelines, kept in one JSON document on local disk.
//!
//! Every change rewrites `meta/state.json` through a temporary file, fsync and an
//! atomic rename, so a crash leaves either the old or the new state. The file carries
//! a format version that is checked on open.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dir::write_durably;

pub const META_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MetaState {
    pub format_version: u32,
    #[serde(default)]
    pub indexes: BTreeMap<String, IndexMeta>,
    #[serde(default)]
    pub index_templates: BTreeMap<String, Value>,
    #[serde(default)]
    pub component_templates: BTreeMap<String, Value>,
    #[serde(default)]
    pub legacy_templates: BTreeMap<String, Value>,
    #[serde(default)]
    pub data_streams: BTreeMap<String, DataStreamMeta>,
    #[serde(default)]
    pub ilm_policies: BTreeMap<String, IlmPolicyMeta>,
    #[serde(default)]
    pub pipelines: BTreeMap<String, Value>,
    /// Cairn's own extension state (users, API keys, ...) by section name.
    #[serde(default)]
    pub extensions: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMeta {
    pub uuid: String,
    pub created_millis: i64,
    /// Flat settings (`index.number_of_shards` -> "1"), values as strings as
    /// Elasticsearch keeps them.
    pub settings: BTreeMap<String, Value>,
    pub mappings: Value,
    #[serde(default)]
    pub aliases: Map<String, Value>,
    /// The data stream this index backs, if any.
    #[serde(default)]
    pub data_stream: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataStreamMeta {
    pub backing_indices: Vec<String>,
    pub generation: u64,
    pub template: String,
    pub created_millis: i64,
    /// `data_retention` of the data stream lifecycle.
    #[serde(default)]
    pub lifecycle: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IlmPolicyMeta {
    pub policy: Value,
    pub version: u64,
    pub modified_millis: i64,
}

pub struct MetaStore {
    path: PathBuf,
}

impl MetaStore {
    /// Opens (or creates) the metastore in `dir`. Refuses a newer format version
    /// without touching the file.
    pub fn open(dir: &Path) -> io::Result<(MetaStore, MetaState)> {
        fs::create_dir_all(dir)?;
        let path = dir.join("state.json");
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                let version = v.get("format_version").and_then(Value::as_u64).unwrap_or(0);
                if version != META_FORMAT_VERSION as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the metastore {} has format version {version}, but this cairn reads version {META_FORMAT_VERSION}; use a matching cairn release (nothing was changed)",
                            path.display()
                        ),
                    ));
                }
                serde_json::from_value(v).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let s = MetaState {
                    format_version: META_FORMAT_VERSION,
                    ..Default::default()
                };
                let store = MetaStore { path };
                store.save(&s)?;
                return Ok((store, s));
            }
            Err(e) => return Err(e),
        };
        Ok((MetaStore { path }, state))
    }

    pub fn save(&self, state: &MetaState) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        write_durably(&self.path, &bytes)
    }
}
