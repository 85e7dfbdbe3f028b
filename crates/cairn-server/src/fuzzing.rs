//! Entry points for the cargo-fuzz targets in `fuzz/`: thin wrappers that reach the
//! crate-private parsers exactly as requests do. Not a stable API.

use std::sync::Arc;

use axum::Router;
use cairn_store::{Store, WriteKind};

use crate::{auth, AppState, ServerConfig};

/// Reads a `_bulk` body as the handler does, then parses and checks each document as
/// the store would. Returns how many actions were read (0 when the request fails).
pub fn bulk(body: &[u8]) -> usize {
    let limits = cairn_core::limits::DocLimits::default();
    match crate::bulk::parse_bulk(body, Some("fuzz"), 100_000) {
        Ok((reqs, pipelines)) => {
            assert_eq!(reqs.len(), pipelines.len(), "one pipeline slot per action");
            for r in &reqs {
                if matches!(r.kind, WriteKind::Index | WriteKind::Create) {
                    if let Some(raw) = &r.raw {
                        if let Ok(doc) = cairn_store::parse_document(raw) {
                            let _ = limits.check(&doc);
                        }
                    }
                }
            }
            reqs.len()
        }
        Err(_) => 0,
    }
}

/// The full router over `store`, with authentication off (as on loopback) and the
/// default limits, for feeding arbitrary requests through every handler.
pub fn app(store: Store, config: ServerConfig) -> Router {
    let auth = auth::Auth::new(
        auth::AuthConfig::default(),
        auth::SecurityState::default(),
        crate::audit::Audit::off(),
    );
    let state = Arc::new(AppState {
        pipelines: crate::ingest::Pipelines::load(&store),
        store,
        config,
        cluster_uuid: "fuzz".into(),
        started: std::time::Instant::now(),
        contexts: Default::default(),
        auth,
    });
    crate::router(state)
}
