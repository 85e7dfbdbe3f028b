//! The HTTP request path: arbitrary bytes become one request (method, target, a few
//! headers, body) sent through the full router over a real store in a temporary
//! directory, as a connection would after hyper parsed it. A panic or a 5xx other than
//! the store's own storage errors is a finding.
//!
//! Input layout (lines split on `\n`): `METHOD TARGET`, then `Name: value` header lines
//! up to an empty line, then the body. Bytes that do not make a valid method, URI or
//! header are skipped, as hyper would refuse them before the router.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
    _dir: TempDir,
}

/// A directory removed when the harness goes (libFuzzer usually exits without that).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cairn-fuzz-http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // As in the binary: the store opens before the runtime exists (it waits on its
        // own threads), the router is built inside it.
        let mut sc = cairn_store::StoreConfig::new(&dir);
        // Small limits keep every input cheap; the limits themselves are under test.
        sc.indexing_memory_bytes = 16 * 1024 * 1024;
        sc.max_open_writers = 1;
        let store = cairn_store::Store::open(sc).expect("a store in a temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let app = {
            let _entered = rt.enter();
            let config = cairn_server::ServerConfig {
                max_body_bytes: 1024 * 1024,
                ..Default::default()
            };
            cairn_server::fuzzing::app(store, config)
        };
        Harness {
            rt,
            app,
            _dir: TempDir(dir),
        }
    })
}

fn request(data: &[u8]) -> Option<Request<Body>> {
    let mut lines = data.splitn(2, |b| *b == b'\n');
    let first = lines.next()?;
    let mut rest = lines.next().unwrap_or_default();
    let mut parts = first.splitn(2, |b| *b == b' ');
    let method = Method::from_bytes(parts.next()?).ok()?;
    let target = std::str::from_utf8(parts.next()?).ok()?;
    let mut builder = Request::builder().method(method).uri(target);
    // Headers until an empty line (at most 16, as a bound on work per input).
    for _ in 0..16 {
        let (line, after) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|b| *b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(Body::from(rest.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    let h = harness();
    let resp =
        h.rt.block_on(h.app.clone().oneshot(req))
            .expect("the router is infallible");
    let status = resp.status().as_u16();
    if status >= 500 {
        let body = h.rt.block_on(async {
            use http_body_util::BodyExt;
            resp.into_body().collect().await.map(|c| c.to_bytes())
        });
        let text = body
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // Disk errors are the store's honest 500s; anything else is a bug.
        assert!(
            text.contains("translog_exception"),
            "HTTP {status} for input {:?}: {text}",
            String::from_utf8_lossy(data)
        );
    }
});
