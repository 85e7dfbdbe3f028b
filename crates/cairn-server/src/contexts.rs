//! Scroll and point-in-time contexts: pinned snapshots with a keep-alive.
//!
//! Limits as in Elasticsearch 8: at most `search.max_open_scroll_context` (500) open
//! scrolls, and no keep-alive over `search.max_keep_alive` (24 h). Expired contexts
//! are dropped on the next access, which lets retention delete the partitions they
//! pinned.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn_core::EsError;
use cairn_search::{SearchResult, Snapshot};
use parking_lot::Mutex;
use serde_json::Value;

use crate::http::ApiError;
use crate::search::ParsedSearch;

pub const MAX_OPEN_SCROLLS: usize = 500;
pub const MAX_KEEP_ALIVE: Duration = Duration::from_secs(24 * 3600);

pub struct Scroll {
    pub snapshot: Snapshot,
    pub search: ParsedSearch,
    /// The last hit returned: (sort values, tiebreak).
    pub after: Option<(Vec<Value>, u64)>,
    pub total: Option<(u64, bool)>,
    pub expires: Instant,
    /// Who opened it: only they may continue or clear it.
    pub owner: String,
}

pub struct Pit {
    pub snapshot: Snapshot,
    pub expires: Instant,
    pub owner: String,
}

/// The identity a search context belongs to (the user, and the API key if one was
/// used), so that one caller cannot page through another's results by id.
fn caller() -> String {
    match crate::auth::Authz::current() {
        Some(a) => match &a.principal.api_key {
            Some((id, _)) => format!("{}/{id}", a.principal.username),
            None => a.principal.username.clone(),
        },
        None => String::new(),
    }
}

#[derive(Default)]
pub struct Contexts {
    scrolls: Mutex<HashMap<String, Scroll>>,
    pits: Mutex<HashMap<String, Pit>>,
}

/// Parses a keep-alive (`1m`) and checks it against `search.max_keep_alive`.
pub fn keep_alive(s: &str) -> Result<Duration, ApiError> {
    let us = cairn_core::time::parse_duration(s).ok_or_else(|| {
        ApiError(EsError::new(400, "parse_exception", format!("failed to parse setting [keep_alive] with value [{s}] as a time value: unit is missing or unrecognized")))
    })?;
    let d = Duration::from_micros(us as u64);
    if d > MAX_KEEP_ALIVE {
        return Err(ApiError(EsError::illegal_argument(format!(
            "Keep alive for request ({s}) is too large. It must be less than (1d). This limit can be set by changing the [search.max_keep_alive] cluster level setting."
        ))));
    }
    Ok(d)
}

fn new_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn missing_context(id: &str) -> ApiError {
    ApiError(
        EsError::new(404, "search_phase_execution_exception", "all shards failed").caused_by(
            EsError::new(
                404,
                "search_context_missing_exception",
                format!("No search context found for id [{id}]"),
            ),
        ),
    )
}

impl Contexts {
    fn purge(&self) {
        let now = Instant::now();
        self.scrolls.lock().retain(|_, s| s.expires > now);
        self.pits.lock().retain(|_, p| p.expires > now);
    }

    pub fn open_scroll(
        &self,
        snapshot: Snapshot,
        search: ParsedSearch,
        first: &SearchResult,
        ttl: Duration,
    ) -> Result<String, ApiError> {
        self.purge();
        let mut scrolls = self.scrolls.lock();
        if scrolls.len() >= MAX_OPEN_SCROLLS {
            return Err(ApiError(EsError::new(500, "exception", format!(
                "Trying to create too many scroll contexts. Must be less than or equal to: [{MAX_OPEN_SCROLLS}]. This limit can be set by changing the [search.max_open_scroll_context] setting."
            ))));
        }
        let id = new_id();
        let after = first
            .hits
            .last()
            .map(|h| (h.sort_value.clone(), h.tiebreak));
        scrolls.insert(
            id.clone(),
            Scroll {
                snapshot,
                search,
                after,
                total: first.total,
                expires: Instant::now() + ttl,
                owner: caller(),
            },
        );
        Ok(id)
    }

    /// Takes a scroll out to run its next page (put it back with [`Contexts::put_scroll`]).
    pub fn take_scroll(&self, id: &str) -> Result<Scroll, ApiError> {
        self.purge();
        let mut scrolls = self.scrolls.lock();
        // Someone else's context answers as a missing one, as in Elasticsearch.
        if scrolls.get(id).is_none_or(|s| s.owner != caller()) {
            return Err(missing_context(id));
        }
        scrolls.remove(id).ok_or_else(|| missing_context(id))
    }

    pub fn put_scroll(&self, id: String, s: Scroll) {
        self.scrolls.lock().insert(id, s);
    }

    pub fn clear_scrolls(&self, ids: &[String]) -> usize {
        let me = caller();
        let mut scrolls = self.scrolls.lock();
        if ids.iter().any(|i| i == "_all") {
            let n = scrolls.len();
            scrolls.retain(|_, s| s.owner != me);
            return n - scrolls.len();
        }
        ids.iter()
            .filter(|i| {
                scrolls.get(i.as_str()).is_some_and(|s| s.owner == me)
                    && scrolls.remove(i.as_str()).is_some()
            })
            .count()
    }

    pub fn open_pit(&self, snapshot: Snapshot, ttl: Duration) -> String {
        self.purge();
        let id = new_id();
        self.pits.lock().insert(
            id.clone(),
            Pit {
                snapshot,
                expires: Instant::now() + ttl,
                owner: caller(),
            },
        );
        id
    }

    pub fn touch_pit(&self, id: &str, keep: Option<&str>) -> Result<Snapshot, ApiError> {
        self.purge();
        let ttl = match keep {
            Some(k) => Some(keep_alive(k)?),
            None => None,
        };
        let mut pits = self.pits.lock();
        let me = caller();
        let pit = pits
            .get_mut(id)
            .filter(|p| p.owner == me)
            .ok_or_else(|| missing_context(id))?;
        if let Some(t) = ttl {
            pit.expires = Instant::now() + t;
        }
        Ok(pit.snapshot.clone())
    }

    pub fn close_pit(&self, id: &str) -> bool {
        let me = caller();
        let mut pits = self.pits.lock();
        pits.get(id).is_some_and(|p| p.owner == me) && pits.remove(id).is_some()
    }
}
