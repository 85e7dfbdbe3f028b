//! Cairn's HTTP server: the Elasticsearch-compatible REST API at the root paths,
//! Cairn's own API under `/_cairn/`, and Prometheus metrics at `/_cairn/metrics`.
//!
//! Compatibility code lives here and only here: handlers translate Elasticsearch
//! requests into store and search calls and their results back into Elasticsearch's
//! response shapes, status codes and error bodies. Every response carries
//! `X-Elastic-Product: Elasticsearch`, which the official clients check.

// EsError carries Elasticsearch's whole error object; errors are the cold path, so
// returning it by value is simpler than boxing it everywhere.
#![allow(clippy::result_large_err)]

mod admin;
mod aggs;
pub mod alerting;
pub mod audit;
pub mod auth;
mod bulk;
mod cat;
pub mod contexts;
mod docs;
#[doc(hidden)]
pub mod fuzzing;
mod highlight;
mod http;
pub mod ingest;
pub mod limits;
mod response_filter;
mod search;
mod security_api;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use cairn_store::Store;

pub use contexts::Contexts;
pub use http::ApiError;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest accepted request body, after decompression.
    pub max_body_bytes: usize,
    pub cluster_name: String,
    pub node_name: String,
    pub listen: String,
    /// Searches (`_search`, `_msearch`, `_count`, scrolls) running at once.
    pub max_concurrent_searches: usize,
    /// Searches waiting for a running slot; beyond it they get a 429.
    pub search_queue_size: usize,
    /// `_bulk` requests running at once.
    pub max_concurrent_bulk: usize,
    /// `_bulk` requests waiting for a running slot; beyond it they get a 429.
    pub bulk_queue_size: usize,
    /// Request bytes (decompressed) that running writes may hold at once, like
    /// Elasticsearch's `indexing_pressure.memory.limit`: a write that would pass it
    /// waits until earlier ones finish. A request larger than the limit runs alone.
    pub indexing_pressure_bytes: usize,
    /// Most actions in one `_bulk` request.
    pub max_bulk_items: usize,
    /// Ingest pipeline time per document and pipeline: past it the document fails with
    /// an error naming the processor (grok and regex cannot hang ingest).
    pub ingest_timeout: Duration,
    /// How long a client may take to send a request's headers (against slowloris);
    /// applied by the accept loop of the `cairn` binary.
    pub header_read_timeout: Duration,
    /// Default `timeout` of searches that do not give one (`None`: no limit).
    pub search_timeout: Option<Duration>,
    /// How long an admitted search or bulk request may take to send its body.
    pub body_read_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 100 * 1024 * 1024,
            cluster_name: "cairn".into(),
            node_name: "cairn-0".into(),
            listen: "127.0.0.1:9200".into(),
            max_concurrent_searches: limits::default_concurrent_searches(),
            search_queue_size: 100,
            max_concurrent_bulk: limits::default_concurrent_bulk(),
            bulk_queue_size: 50,
            indexing_pressure_bytes: 8 * 1024 * 1024,
            max_bulk_items: 100_000,
            ingest_timeout: Duration::from_millis(100),
            header_read_timeout: Duration::from_secs(30),
            search_timeout: Some(Duration::from_secs(60)),
            body_read_timeout: Duration::from_secs(60),
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub config: ServerConfig,
    pub cluster_uuid: String,
    pub started: std::time::Instant,
    pub contexts: Contexts,
    pub pipelines: ingest::Pipelines,
    pub auth: auth::Auth,
}

pub type Shared = Arc<AppState>;

/// The full router.
pub fn router(state: Shared) -> Router {
    let max = state.config.max_body_bytes;
    let gates = Arc::new(limits::Gates::new(&state.config));
    // Wildcards expand only to what the current caller may see.
    state.store.set_visibility(auth::may_see);
    auth::AUTH_ON.store(state.auth.enabled(), std::sync::atomic::Ordering::Relaxed);
    Router::new()
        .route("/", get(admin::root).head(admin::root_head))
        .route("/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route(
            "/{index}/_bulk",
            post(bulk::bulk_index).put(bulk::bulk_index),
        )
        .route("/{index}/_doc", post(docs::index_auto_id))
        .route(
            "/{index}/_doc/{id}",
            put(docs::index_with_id)
                .post(docs::index_with_id)
                .get(docs::get_doc)
                .head(docs::head_doc)
                .delete(docs::delete_doc),
        )
        .route(
            "/{index}/_create/{id}",
            put(docs::create_with_id).post(docs::create_with_id),
        )
        .route("/{index}/_update/{id}", post(docs::update_doc))
        .route("/{index}/_source/{id}", get(docs::get_source))
        .route("/{index}/_delete_by_query", post(search::delete_by_query))
        .route("/_search", get(search::search_all).post(search::search_all))
        .route(
            "/{index}/_search",
            get(search::search_index).post(search::search_index),
        )
        .route(
            "/_search/scroll",
            get(search::scroll)
                .post(search::scroll)
                .delete(search::clear_scroll),
        )
        .route(
            "/_search/scroll/{id}",
            get(search::scroll_by_id)
                .post(search::scroll_by_id)
                .delete(search::clear_scroll_by_id),
        )
        .route("/{index}/_pit", post(search::open_pit))
        .route("/_pit", axum::routing::delete(search::close_pit))
        .route("/_msearch", get(search::msearch).post(search::msearch))
        .route(
            "/{index}/_msearch",
            get(search::msearch_index).post(search::msearch_index),
        )
        .route(
            "/_field_caps",
            get(search::field_caps_all).post(search::field_caps_all),
        )
        .route(
            "/{index}/_field_caps",
            get(search::field_caps).post(search::field_caps),
        )
        .route(
            "/{index}/_validate/query",
            get(search::validate_query).post(search::validate_query),
        )
        .route("/_count", get(search::count_all).post(search::count_all))
        .route(
            "/{index}/_count",
            get(search::count_index).post(search::count_index),
        )
        .route(
            "/_refresh",
            post(admin::refresh_all).get(admin::refresh_all),
        )
        .route(
            "/{index}/_refresh",
            post(admin::refresh_all).get(admin::refresh_all),
        )
        .route("/_flush", post(admin::flush_all).get(admin::flush_all))
        .route(
            "/{index}/_flush",
            post(admin::flush_all).get(admin::flush_all),
        )
        .route(
            "/{index}",
            put(admin::create_index)
                .get(admin::get_index)
                .head(admin::head_index)
                .delete(admin::delete_index),
        )
        .route("/_mapping", get(admin::get_mapping_all))
        .route(
            "/{index}/_mapping",
            get(admin::get_mapping)
                .put(admin::put_mapping)
                .post(admin::put_mapping),
        )
        .route(
            "/{index}/_settings",
            get(admin::get_settings).put(admin::put_settings),
        )
        .route("/_stats", get(admin::stats_all))
        .route("/{index}/_stats", get(admin::stats))
        .route("/_index_template", get(admin::get_index_templates_all))
        .route(
            "/_index_template/{name}",
            put(admin::put_index_template)
                .post(admin::put_index_template)
                .get(admin::get_index_templates)
                .head(admin::head_index_template)
                .delete(admin::delete_index_template),
        )
        .route(
            "/_component_template",
            get(admin::get_component_templates_all),
        )
        .route(
            "/_component_template/{name}",
            put(admin::put_component_template)
                .post(admin::put_component_template)
                .get(admin::get_component_templates)
                .delete(admin::delete_component_template),
        )
        .route("/_template", get(admin::get_legacy_templates_all))
        .route(
            "/_template/{name}",
            put(admin::put_legacy_template)
                .post(admin::put_legacy_template)
                .get(admin::get_legacy_templates)
                .head(admin::head_legacy_template)
                .delete(admin::delete_legacy_template),
        )
        .route("/_data_stream", get(admin::get_data_streams_all))
        .route(
            "/_data_stream/{name}",
            put(admin::put_data_stream)
                .get(admin::get_data_streams)
                .delete(admin::delete_data_stream),
        )
        .route(
            "/_data_stream/{name}/_lifecycle",
            put(admin::put_ds_lifecycle).get(admin::get_ds_lifecycle),
        )
        .route("/_ilm/policy", get(admin::get_ilm_all))
        .route(
            "/_ilm/policy/{name}",
            put(admin::put_ilm)
                .get(admin::get_ilm)
                .delete(admin::delete_ilm),
        )
        .route("/_ingest/pipeline", get(ingest::get_all))
        .route(
            "/_ingest/pipeline/_simulate",
            get(ingest::simulate_anon).post(ingest::simulate_anon),
        )
        .route(
            "/_ingest/pipeline/{id}",
            put(ingest::put).get(ingest::get).delete(ingest::delete),
        )
        .route(
            "/_ingest/pipeline/{id}/_simulate",
            get(ingest::simulate_id).post(ingest::simulate_id),
        )
        .route("/_license", get(admin::license))
        .route("/_xpack", get(admin::xpack))
        .route("/_nodes", get(admin::nodes))
        .route("/_nodes/{rest}", get(admin::nodes))
        .route("/_cluster/health", get(admin::cluster_health))
        .route("/_cluster/health/{index}", get(admin::cluster_health))
        .route("/_resolve/index/{expr}", get(admin::resolve_index))
        .route("/_cat/indices", get(cat::indices))
        .route("/_cat/indices/{index}", get(cat::indices_for))
        .route("/_cat/health", get(cat::health))
        .route("/_cat/count", get(cat::count_all))
        .route("/_cat/count/{index}", get(cat::count_for))
        .route("/_cairn/metrics", get(admin::metrics))
        .route("/_cairn/health", get(health).head(health))
        .merge(alerting::routes())
        .route("/_cairn/retention/_run", post(admin::run_retention))
        .route("/ui", get(ui::redirect_root))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/_cairn/ui/config", get(ui::config))
        .route("/_cairn/saved_objects/_export", get(ui::export))
        .route("/_cairn/saved_objects/_import", post(ui::import))
        .route(
            "/_cairn/saved_objects/{type}",
            get(ui::list).post(ui::create),
        )
        .route(
            "/_cairn/saved_objects/{type}/{id}",
            get(ui::get).put(ui::put).delete(ui::delete),
        )
        .route("/_security/_authenticate", get(security_api::authenticate))
        .route(
            "/_security/api_key",
            post(security_api::create_api_key)
                .put(security_api::create_api_key)
                .get(security_api::get_api_keys)
                .delete(security_api::invalidate_api_keys),
        )
        .route("/_security/user", get(security_api::get_users))
        .route(
            "/_security/user/{name}",
            put(security_api::put_user)
                .post(security_api::put_user)
                .get(security_api::get_users)
                .delete(security_api::delete_user),
        )
        .route(
            "/_security/user/{name}/_password",
            put(security_api::change_password).post(security_api::change_password),
        )
        .route("/_security/role", get(security_api::get_roles))
        .route(
            "/_security/role/{name}",
            put(security_api::put_role)
                .post(security_api::put_role)
                .get(security_api::get_roles)
                .delete(security_api::delete_role),
        )
        .route("/_cairn/auth/login", post(security_api::login))
        .route("/_cairn/auth/session", get(security_api::session))
        .route("/_cairn/auth/logout", post(security_api::logout))
        .fallback(http::fallback)
        // Innermost, so that requests refused earlier (authentication) never take a
        // slot; and it runs before handlers read bodies, so queued requests hold none.
        .layer(axum::middleware::from_fn_with_state(
            gates,
            limits::admission,
        ))
        // Authentication and authorization: outside the admission gates (refused
        // requests take no slot), inside decompression and the body limit.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        // The UI signs in with its own page: no browser Basic-auth dialog for its calls.
        .layer(axum::middleware::from_fn(ui::no_basic_challenge))
        // `filter_path` and `pretty`, on every JSON response (errors included).
        .layer(axum::middleware::from_fn(response_filter::middleware))
        .layer(axum::middleware::from_fn(http::es_headers))
        .layer(DefaultBodyLimit::max(max))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .with_state(state)
}

/// Background work of a running server: retention.
pub fn spawn_background(state: Shared) {
    let interval = state.store.config().retention_check_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            let n = state.store.run_retention().await;
            if n > 0 {
                tracing::info!(partitions = n, "retention removed partitions");
            }
        }
    });
}

/// Parses an API key lifetime (`90d`, `12h`) into an absolute expiry in epoch millis,
/// with Elasticsearch's error for a bad value (shared with the CLI).
pub fn security_expiration(v: Option<&str>) -> Result<Option<i64>, cairn_core::EsError> {
    security_api::expiration_millis(v.map(|s| serde_json::Value::String(s.to_string())).as_ref())
}

/// `GET /_cairn/health`: whether the server is up, without credentials (for load
/// balancer and Kubernetes probes; it says nothing about the data).
async fn health() -> axum::response::Response {
    http::json_response(200, &serde_json::json!({"status": "ok"}))
}
