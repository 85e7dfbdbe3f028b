//! Admission control: how many searches and bulk requests run at once.
//!
//! Each family has a gate: a fixed number of running slots plus a short wait queue.
//! A request that finds both full is refused with 429 `es_rejected_execution_exception`
//! before its body is read, which is what shippers and clients retry with backoff. A
//! request that got in runs to completion on its own task, even if its client goes away,
//! so accepted work is never dropped half-way and the slot is held for as long as the
//! work really runs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_core::EsError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::ApiError;

/// The request families that are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Search,
    Bulk,
}

impl Family {
    /// Elasticsearch's thread pool name, used in the rejection message.
    fn pool(self) -> &'static str {
        match self {
            Family::Search => "search",
            Family::Bulk => "write",
        }
    }

    fn flags(self) -> &'static str {
        match self {
            Family::Search => "--max-concurrent-searches / --search-queue-size",
            Family::Bulk => "--max-concurrent-bulk / --bulk-queue-size",
        }
    }

    /// Which family a request belongs to, from its method and path (the middleware runs
    /// before routing, so it cannot use the matched route).
    pub fn of(method: &Method, path: &str) -> Option<Family> {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let first = segments.next()?;
        let second = segments.next();
        let third = segments.next();
        let deeper = segments.next().is_some();
        // Single-document writes (`/{index}/_doc[/{id}]`, `_create/{id}`,
        // `_update/{id}`, a `DELETE` of `_doc/{id}`) take a write slot, as in
        // Elasticsearch's write pool; reading one (`GET`/`HEAD`) does not wait.
        if !first.starts_with('_')
            && matches!(second, Some("_doc" | "_create" | "_update"))
            && !deeper
            && !matches!(third, Some("_search"))
        {
            return (method != Method::GET && method != Method::HEAD).then_some(Family::Bulk);
        }
        // Clearing a scroll or a PIT frees resources: never make it wait.
        if method == Method::DELETE || method == Method::HEAD {
            return None;
        }
        // `/_search/scroll[/{id}]`
        if first == "_search" && second == Some("scroll") {
            return Some(Family::Search);
        }
        // The endpoint is the first segment at the root, else the second: `/_bulk`,
        // `/{index}/_bulk`; anything deeper is some other API.
        let endpoint = match (second, third) {
            (None, _) => first,
            (Some(s), None) => s,
            _ => return None,
        };
        match endpoint {
            "_bulk" => Some(Family::Bulk),
            // By-query writes are mostly a scan: they hold a search slot while they run.
            "_search" | "_msearch" | "_count" | "_delete_by_query" | "_update_by_query" => {
                Some(Family::Search)
            }
            _ => None,
        }
    }
}

/// One family's running slots and wait queue.
#[derive(Debug)]
pub struct Gate {
    family: Family,
    node: String,
    running: Arc<Semaphore>,
    size: usize,
    queue_capacity: usize,
    queued: AtomicUsize,
    completed: AtomicU64,
    rejected: AtomicU64,
}

/// Gives a queue place back when the waiting request is admitted or abandoned.
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(family: Family, node: &str, size: usize, queue_capacity: usize) -> Gate {
        // Zero running slots would refuse everything: treat it as one.
        let size = size.max(1);
        Gate {
            family,
            node: node.to_string(),
            running: Arc::new(Semaphore::new(size)),
            size,
            queue_capacity,
            queued: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// A running slot, after waiting in the queue if needed; an error when the queue is
    /// full too. tokio's semaphore is fair, so waiters are served in arrival order and a
    /// newcomer cannot overtake them.
    pub async fn admit(&self, what: &str) -> Result<OwnedSemaphorePermit, EsError> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(p);
        }
        let mut queued = self.queued.load(Ordering::Acquire);
        loop {
            if queued >= self.queue_capacity {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(self.rejection(what, queued));
            }
            match self.queued.compare_exchange_weak(
                queued,
                queued + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => queued = now,
            }
        }
        // Released on admission and also if the client gives up while waiting (the
        // future is dropped), so abandoned waiters do not fill the queue.
        let _place = QueuePlace(&self.queued);
        self.running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EsError::internal("the admission gate was closed"))
    }

    /// Elasticsearch's rejection, naming the node, the pool and its sizes.
    fn rejection(&self, what: &str, queued: usize) -> EsError {
        let active = self.size - self.running.available_permits().min(self.size);
        EsError::rejected_execution(format!(
            "rejected execution of {what} on EsThreadPoolExecutor[name = {node}/{pool}, queue capacity = {cap}, cairn.limits.Gate[Running, pool size = {size}, active threads = {active}, queued tasks = {queued}, completed tasks = {done}]]; the node is at its limit for concurrent {pool} requests ({flags}), retry later",
            node = self.node,
            pool = self.family.pool(),
            cap = self.queue_capacity,
            size = self.size,
            done = self.completed.load(Ordering::Relaxed),
            flags = self.family.flags(),
        ))
    }

    /// Requests refused since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// The gates of one server.
#[derive(Debug)]
pub struct Gates {
    pub search: Gate,
    pub bulk: Gate,
    /// Bytes of write requests being processed (see
    /// `ServerConfig::indexing_pressure_bytes`), one permit a byte.
    indexing: Arc<Semaphore>,
    indexing_limit: usize,
    /// How long an admitted request may take to send its whole body.
    body_read_timeout: std::time::Duration,
    max_body_bytes: usize,
}

impl Gates {
    pub fn new(config: &crate::ServerConfig) -> Gates {
        Gates {
            search: Gate::new(
                Family::Search,
                &config.node_name,
                config.max_concurrent_searches,
                config.search_queue_size,
            ),
            bulk: Gate::new(
                Family::Bulk,
                &config.node_name,
                config.max_concurrent_bulk,
                config.bulk_queue_size,
            ),
            indexing: Arc::new(Semaphore::new(config.indexing_pressure_bytes.max(1))),
            indexing_limit: config.indexing_pressure_bytes.max(1),
            body_read_timeout: config.body_read_timeout,
            max_body_bytes: config.max_body_bytes,
        }
    }

    /// Room for a write request of `len` bytes among the writes being processed; waits
    /// for earlier writes to finish. A request over the whole limit takes all of it.
    async fn indexing_room(&self, len: usize) -> Result<OwnedSemaphorePermit, EsError> {
        let n = len.clamp(1, self.indexing_limit);
        self.indexing
            .clone()
            .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
            .await
            .map_err(|_| EsError::internal("the indexing pressure gate was closed"))
    }

    /// Bytes of write requests being processed now.
    #[cfg(test)]
    fn indexing_bytes(&self) -> usize {
        self.indexing_limit - self.indexing.available_permits().min(self.indexing_limit)
    }

    fn gate(&self, family: Family) -> &Gate {
        match family {
            Family::Search => &self.search,
            Family::Bulk => &self.bulk,
        }
    }
}

/// The body length a request declares, when that is the length the handler will
/// read (no content encoding left to undo).
fn declared_length(headers: &axum::http::HeaderMap) -> Option<usize> {
    if headers.contains_key(axum::http::header::CONTENT_ENCODING) {
        return None;
    }
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Middleware: admits bounded requests through their gate, then runs them on their own
/// task holding the slot until the handler finishes.
pub async fn admission(
    State(gates): State<Arc<Gates>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let Some(family) = Family::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let what = format!(
        "{} request [{} {}]",
        family.pool(),
        req.method(),
        req.uri().path()
    );
    let permit = match gates.gate(family).admit(&what).await {
        Ok(p) => p,
        Err(e) => return ApiError(e).into_response(),
    };
    // Writes wait for room under the indexing pressure limit, by body size: the
    // documents a write builds grow with its body, and two large bulks at once are
    // what pushes memory up, while small writes keep running beside a large one. A
    // write that says its length waits before its body is read, so bulks queued
    // behind a large one do not hold their bodies in memory meanwhile (the client
    // waits on TCP); the others wait once the body is read.
    let declared = matches!(family, Family::Bulk)
        .then(|| declared_length(req.headers()))
        .flatten();
    let mut room = match declared {
        Some(len) => match gates.indexing_room(len).await {
            Ok(r) => Some(r),
            Err(e) => return ApiError(e).into_response(),
        },
        None => None,
    };
    // A running slot is held while the body arrives: a client that stalls its body
    // (the slow-body form of slowloris) would hold it for ever. Read the whole body
    // within `--body-read-timeout` (the handlers buffer it anyway), else 408.
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(
        gates.body_read_timeout,
        axum::body::to_bytes(body, gates.max_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let too_long = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let err = if too_long {
                EsError::new(
                    413,
                    "content_too_long_exception",
                    "request body is larger than the configured limit (--max-body-size)",
                )
            } else {
                EsError::new(
                    400,
                    "parse_exception",
                    format!("cannot read the request body: {e}"),
                )
            };
            return ApiError(err).into_response();
        }
        Err(_) => {
            return ApiError(EsError::new(
                408,
                "request_timeout_exception",
                format!(
                    "the request body did not arrive within {:?} (--body-read-timeout)",
                    gates.body_read_timeout
                ),
            ))
            .into_response()
        }
    };
    if matches!(family, Family::Bulk) && room.is_none() {
        match gates.indexing_room(bytes.len()).await {
            Ok(r) => room = Some(r),
            Err(e) => return ApiError(e).into_response(),
        }
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let gates2 = gates.clone();
    // The caller's authorization is task-local: carry it into the new task.
    let authz = crate::auth::Authz::current();
    // Spawned so that a client hanging up does not cancel accepted work midway (a bulk
    // whose items are half written, a search holding a blocking thread): the task keeps
    // its slot until the handler is done.
    let task = tokio::spawn(async move {
        let resp = match authz {
            Some(a) => crate::auth::Authz::scope(a, next.run(req)).await,
            None => next.run(req).await,
        };
        gates2
            .gate(family)
            .completed
            .fetch_add(1, Ordering::Relaxed);
        drop(room);
        drop(permit);
        resp
    });
    match task.await {
        Ok(resp) => resp,
        Err(e) => ApiError(EsError::internal(format!("the request failed: {e}"))).into_response(),
    }
}

/// Default running searches: Elasticsearch's search pool size, `cores * 3 / 2 + 1`.
pub fn default_concurrent_searches() -> usize {
    cores() * 3 / 2 + 1
}

/// Default running bulk requests: one per core, as Elasticsearch's write pool (at least
/// two, so that one long bulk does not block every other shipper).
pub fn default_concurrent_bulk() -> usize {
    cores().max(2)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_path() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(Family::of(&post, "/_bulk"), Some(Family::Bulk));
        assert_eq!(Family::of(&post, "/logs/_bulk"), Some(Family::Bulk));
        assert_eq!(Family::of(&get, "/logs-*/_search"), Some(Family::Search));
        assert_eq!(Family::of(&post, "/_msearch"), Some(Family::Search));
        assert_eq!(Family::of(&get, "/a,b/_count"), Some(Family::Search));
        assert_eq!(Family::of(&post, "/_search/scroll"), Some(Family::Search));
        assert_eq!(
            Family::of(&post, "/_search/scroll/abc"),
            Some(Family::Search)
        );
        assert_eq!(Family::of(&Method::DELETE, "/_search/scroll"), None);
        assert_eq!(Family::of(&get, "/"), None);
        assert_eq!(Family::of(&put(), "/_search"), Some(Family::Search));
        assert_eq!(Family::of(&get, "/logs/_doc/_search"), None);
        assert_eq!(Family::of(&get, "/_cat/indices"), None);
        assert_eq!(Family::of(&get, "/_search_template"), None);
        // Single-document writes are writes; reads of one document are not gated.
        assert_eq!(Family::of(&post, "/logs/_doc"), Some(Family::Bulk));
        assert_eq!(Family::of(&put(), "/logs/_doc/1"), Some(Family::Bulk));
        assert_eq!(Family::of(&put(), "/logs/_create/1"), Some(Family::Bulk));
        assert_eq!(Family::of(&post, "/logs/_update/1"), Some(Family::Bulk));
        assert_eq!(
            Family::of(&Method::DELETE, "/logs/_doc/1"),
            Some(Family::Bulk)
        );
        assert_eq!(Family::of(&get, "/logs/_doc/1"), None);
        assert_eq!(Family::of(&Method::HEAD, "/logs/_doc/1"), None);
        assert_eq!(Family::of(&get, "/_doc/1"), None);
        assert_eq!(
            Family::of(&post, "/logs/_delete_by_query"),
            Some(Family::Search)
        );
        assert_eq!(Family::of(&Method::DELETE, "/logs"), None);
    }

    fn put() -> Method {
        Method::PUT
    }

    #[tokio::test]
    async fn rejects_only_when_running_and_queue_are_full() {
        let gate = Arc::new(Gate::new(Family::Search, "n0", 1, 1));
        let first = gate.admit("a").await.expect("a free slot");
        // The second waits in the queue.
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.admit("b").await.map(drop) });
        while gate.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // The third finds the slot taken and the queue full.
        let e = gate.admit("c").await.expect_err("queue full");
        assert_eq!(e.status, 429);
        assert_eq!(e.kind, "es_rejected_execution_exception");
        assert!(e.reason.contains("rejected execution of c"), "{}", e.reason);
        assert!(e.reason.contains("n0/search"), "{}", e.reason);
        assert!(e.reason.contains("queue capacity = 1"), "{}", e.reason);
        assert_eq!(gate.rejected(), 1);
        // Releasing the slot admits the queued request: it was not dropped.
        drop(first);
        waiter
            .await
            .expect("waiter task")
            .expect("queued request admitted");
        assert_eq!(gate.queued.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn an_abandoned_waiter_leaves_the_queue() {
        let gate = Arc::new(Gate::new(Family::Bulk, "n0", 1, 1));
        let _held = gate.admit("a").await.expect("a free slot");
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.admit("b").await.map(drop) });
        while gate.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.queued.load(Ordering::Acquire), 0);
        // The freed place can be taken again (it waits, so only check it queues).
        let g3 = gate.clone();
        let again = tokio::spawn(async move { g3.admit("c").await.map(drop) });
        while gate.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        again.abort();
    }

    #[tokio::test]
    async fn a_write_that_declares_its_length_waits_for_room_before_its_body_is_read() {
        use http_body_util::BodyExt;
        let config = crate::ServerConfig {
            indexing_pressure_bytes: 10,
            ..Default::default()
        };
        let gates = Arc::new(Gates::new(&config));
        let app = axum::Router::new()
            .route(
                "/_bulk",
                axum::routing::post(|b: axum::body::Bytes| async move { b.len().to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(
                gates.clone(),
                admission,
            ));
        let held = gates.indexing_room(10).await.expect("room");
        let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let p = polled.clone();
        let body = http_body_util::Full::new(axum::body::Bytes::from_static(b"{}\n{}\n"))
            .map_frame(move |f| {
                p.store(true, Ordering::SeqCst);
                f
            });
        let req = Request::post("/_bulk")
            .header("content-length", "6")
            .body(Body::new(body))
            .expect("request");
        let call = tokio::spawn(tower::ServiceExt::oneshot(app, req));
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(!call.is_finished());
        assert!(
            !polled.load(Ordering::SeqCst),
            "the body was read while the write waited for room"
        );
        drop(held);
        let resp = call.await.expect("task").expect("response");
        assert_eq!(resp.status(), 200);
        assert!(polled.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn indexing_pressure_bounds_bytes_in_flight() {
        let config = crate::ServerConfig {
            indexing_pressure_bytes: 10,
            ..Default::default()
        };
        let gates = Arc::new(Gates::new(&config));
        let six = gates.indexing_room(6).await.expect("room");
        assert_eq!(gates.indexing_bytes(), 6);
        // A small write still fits beside it.
        let four = gates.indexing_room(4).await.expect("room");
        assert_eq!(gates.indexing_bytes(), 10);
        // Another large one waits until the first finishes.
        let g2 = gates.clone();
        let waiter = tokio::spawn(async move { g2.indexing_room(6).await.map(drop) });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(six);
        waiter.await.expect("task").expect("admitted");
        drop(four);
        // One over the whole limit takes all of it, and runs.
        let big = gates.indexing_room(1000).await.expect("room");
        assert_eq!(gates.indexing_bytes(), 10);
        drop(big);
        assert_eq!(gates.indexing_bytes(), 0);
    }
}
