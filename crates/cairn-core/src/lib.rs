//! Cairn's document model, shared by every crate that stores or reads logs.
//!
//! - [`error::EsError`]: an error in Elasticsearch's shape (`type`, `reason`, HTTP
//!   status), so every layer can fail the way an Elasticsearch client expects.
//! - [`time`]: the `@timestamp` formats Elasticsearch accepts by default
//!   (`strict_date_optional_time||epoch_millis`) plus the named and pattern
//!   formats log templates use.
//! - [`mapping`]: index mappings with Elasticsearch semantics (field types, multi-fields,
//!   `dynamic`, `dynamic_templates`, `ignore_above`, `enabled: false`, aliases) and the
//!   logs-oriented dynamic template; it turns a JSON document into typed leaves
//!   ([`mapping::Leaf`]) that the store indexes.
//!
//! Nothing here knows about HTTP or tantivy.

// EsError carries Elasticsearch's whole error object; errors are the cold path, so
// returning it by value is simpler than boxing it everywhere.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod limits;
pub mod mapping;
pub mod time;
pub mod yaml;

pub use error::EsError;
