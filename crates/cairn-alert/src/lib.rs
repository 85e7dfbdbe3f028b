//! Cairn's alert engine: ElastAlert-compatible rules running inside `cairn serve`.
//!
//! Teams migrating from the Elasticsearch + ElastAlert stack keep their rule files:
//! this crate reads ElastAlert's YAML ([`config`]), evaluates the same rule types with
//! the same semantics ([`ruletypes`], [`runner`]), formats alerts the same way
//! ([`format`]) and sends them through the same alerters ([`alerters`]). It fixes what
//! ElastAlert users complain about most: state (each rule's last window, realert
//! silences, the alert history and the send queue) lives in a hidden Cairn index
//! ([`state`]), so a restart resumes without skipping a window or sending twice, and
//! every alert carries a deterministic idempotency key for the rare resend after a crash.
//!
//! The engine talks to search only through [`backend::SearchBackend`]: in-process for
//! `cairn serve` (no network, the server's own router) or HTTP for any
//! Elasticsearch-compatible URL (`cairn alert test --server`). Aggregation-based rule
//! types (metric_aggregation, spike_aggregation, percentage_match) and rules with
//! `use_count_query`/`use_terms_query` are evaluated with counts and aggregations on
//! the server. frequency, cardinality (`max_cardinality`) and new_term ask the server a
//! question first ([`ruletypes::Gate`], new_term's terms gate) and read documents only
//! for windows where a match is possible, with the same alerts as reading them all. The
//! others read documents in `buffer_time` segments, as ElastAlert does: their alerts are
//! documents or depend on the order of single events.

pub mod alerters;
pub mod backend;
pub mod config;
pub mod cron;
pub mod engine;
pub mod error;
pub mod format;
pub mod preview;
pub mod ruletypes;
pub mod runner;
pub mod state;
pub mod value;

pub use backend::{Es, HttpAuth, HttpBackend, SearchBackend};
pub use config::{Globals, Rule};
pub use engine::{Clock, Engine, EngineConfig, SystemClock};
pub use error::{AlertError, Result};
pub use runner::{AlertDraft, RuleState, Runner};
