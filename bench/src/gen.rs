//! `cairn-bench gen`: deterministic, realistic log corpora.
//!
//! - `json`: ECS-style application logs, one object per line, dotted keys
//!   (`log.level`, `service.name`, ...) the way ecs-logging libraries write them.
//! - `nginx`: combined-format access log lines.
//!
//! Timestamps increase over the 24 hours before `end` (default: now, rounded down to
//! the minute). The output depends only on `--seed`, `--bytes` and `--end`.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::util::{push_clf_time, push_hex, push_json_str, push_rfc3339_ms, push_u64, Rng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Json,
    Nginx,
}

pub struct GenStats {
    pub lines: u64,
    pub bytes: u64,
}

const DAY_MS: i64 = 86_400_000;

/// Writes about `target_bytes` of logs (whole lines; it stops at the first line
/// that reaches the target).
pub fn generate(
    kind: Kind,
    target_bytes: u64,
    seed: u64,
    end_ms: i64,
    out: &Path,
) -> Result<GenStats> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(seed);
    let start_ms = end_ms - DAY_MS;
    let mut line = Vec::with_capacity(2048);
    let mut written: u64 = 0;
    let mut lines: u64 = 0;
    let mut last_ts = start_ms;
    let mut json = match kind {
        Kind::Json => Some(JsonGen::new(&mut rng)),
        Kind::Nginx => None,
    };
    let mut nginx = match kind {
        Kind::Nginx => Some(NginxGen::new(&mut rng)),
        Kind::Json => None,
    };
    while written < target_bytes {
        // Position in the day follows the bytes written; a little jitter, never
        // going backwards.
        let frac = written as f64 / target_bytes.max(1) as f64;
        let ts = (start_ms + (frac * DAY_MS as f64) as i64 + rng.below(3) as i64).max(last_ts);
        last_ts = ts;
        line.clear();
        if let Some(g) = json.as_mut() {
            g.line(&mut rng, ts, &mut line);
        } else if let Some(g) = nginx.as_mut() {
            g.line(&mut rng, ts, &mut line);
        }
        line.push(b'\n');
        w.write_all(&line)?;
        written += line.len() as u64;
        lines += 1;
    }
    w.flush()?;
    Ok(GenStats {
        lines,
        bytes: written,
    })
}

// ---------------------------------------------------------------------------
// JSON application logs
// ---------------------------------------------------------------------------

const SERVICES: [&str; 20] = [
    "api-gateway",
    "auth-service",
    "user-service",
    "order-service",
    "payment-service",
    "inventory-service",
    "cart-service",
    "checkout-service",
    "shipping-service",
    "notification-service",
    "search-service",
    "recommendation-service",
    "catalog-service",
    "pricing-service",
    "review-service",
    "email-worker",
    "billing-service",
    "analytics-ingest",
    "media-service",
    "session-service",
];

/// Resources per service, used to build its URL paths.
const RESOURCES: [&[&str]; 20] = [
    &["routes", "health", "config", "tenants"],
    &[
        "login",
        "logout",
        "token",
        "token/refresh",
        "mfa/verify",
        "password/reset",
    ],
    &["users", "users/me", "profiles", "preferences", "addresses"],
    &["orders", "orders/search", "returns", "order-items"],
    &[
        "payments",
        "payment-methods",
        "refunds",
        "charges",
        "webhooks/stripe",
    ],
    &["inventory", "stock", "warehouses", "reservations"],
    &["carts", "cart-items", "coupons"],
    &["checkout", "checkout/sessions", "checkout/confirm"],
    &["shipments", "rates", "labels", "tracking"],
    &["notifications", "subscriptions", "push-tokens"],
    &["search", "suggest", "facets"],
    &["recommendations", "similar", "trending"],
    &["products", "categories", "brands", "collections"],
    &["prices", "promotions", "quotes"],
    &["reviews", "ratings", "questions"],
    &["jobs", "templates", "bounces"],
    &["invoices", "plans", "usage", "credits"],
    &["events", "batches", "pixels"],
    &["images", "uploads", "thumbnails", "videos"],
    &["sessions", "sessions/validate", "devices"],
];

const METHODS_READ: [&str; 1] = ["GET"];
const METHODS_WRITE: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

const ENTITIES: [&str; 16] = [
    "order",
    "cart",
    "payment",
    "invoice",
    "user",
    "session",
    "shipment",
    "product",
    "refund",
    "subscription",
    "coupon",
    "reservation",
    "account",
    "quote",
    "review",
    "upload",
];

const STORES: [&str; 8] = [
    "postgres-primary",
    "postgres-replica",
    "redis-cache",
    "redis-sessions",
    "kafka",
    "elasticsearch",
    "s3",
    "mongodb",
];

const UPSTREAMS: [&str; 8] = [
    "stripe",
    "adyen",
    "sendgrid",
    "twilio",
    "fedex-api",
    "ups-api",
    "geoip",
    "fraud-scoring",
];

/// Message patterns by level. `{entity}` is fixed per template (each pattern yields
/// four templates with different entities, about 200 in all); the other
/// placeholders vary per line.
const INFO_PATTERNS: &[&str] = &[
    "{entity} {id} created by user {user}",
    "{entity} {id} updated: {n} fields changed",
    "processed {entity} {id} in {ms}ms",
    "{entity} {id} status changed from pending to confirmed",
    "loaded {n} {entity} records from {store} in {ms}ms",
    "cache hit for {entity}:{id}",
    "published {entity}.updated event to kafka partition {n} offset {big}",
    "consumed {n} {entity} messages from kafka in {ms}ms, lag={n2}",
    "request completed: {method} {path} {status} in {ms}ms",
    "user {user} fetched {entity} list page={n} size=50",
    "scheduled job {entity}-sync started, batch_size={n2}",
    "scheduled job {entity}-sync finished: {n2} processed, {n} skipped in {sec}s",
    "{entity} {id} exported to s3://exports/{entity}/{uuid}.json.gz ({bytes} bytes)",
    "webhook delivered for {entity} {id} to {upstream} ({status}) in {ms}ms",
    "{entity} {id} validated successfully",
    "session {uuid} authenticated user {user} for {entity} access",
    "connection pool stats for {store}: active={n} idle={n2} waiting=0",
    "reindexed {n2} {entity} documents in {sec}s",
    "{entity} {id} assigned to worker {n}",
    "sent {entity} confirmation email to user {user} (message id {uuid})",
    "feature flag new-{entity}-flow evaluated to true for user {user}",
    "{entity} {id} total recalculated: {amount} EUR",
];
const DEBUG_PATTERNS: &[&str] = &[
    "SQL: SELECT * FROM {entity}s WHERE id = {id} took {ms}ms",
    "cache miss for {entity}:{id}, loading from {store}",
    "serialized {entity} {id} ({bytes} bytes)",
    "acquired lock {entity}:{id} after {ms}ms",
    "released lock {entity}:{id}",
    "retrying {entity} lookup against {store}, attempt {n}",
    "parsed {entity} payload: {n} items, {bytes} bytes",
    "computed {entity} diff for {id}: {n} changes",
    "HTTP call to {upstream} for {entity} {id} returned {status} in {ms}ms",
    "trace sampling decision for {entity} {id}: sampled=true",
];
const WARN_PATTERNS: &[&str] = &[
    "slow query on {store} for {entity} {id}: {ms}ms exceeds 500ms threshold",
    "retrying call to {upstream} for {entity} {id} (attempt {n} of 5) after timeout",
    "{entity} {id} not found in cache, falling back to {store}",
    "rate limit approaching for user {user}: {n2} requests in last 60s",
    "deprecated API version v1 used for {entity} endpoint by client {ip}",
    "{entity} {id} has stale version {n}, expected {n2}; reloading",
    "connection pool for {store} exhausted, waited {ms}ms for a connection",
    "circuit breaker for {upstream} half-open after {n} failures",
    "{entity} validation warning for {id}: field \"metadata\" truncated to 4096 bytes",
    "kafka consumer lag for {entity}-events is {n2} messages",
];
const ERROR_PATTERNS: &[&str] = &[
    "failed to process {entity} {id}: timeout after {ms}ms calling {upstream}",
    "failed to save {entity} {id} to {store}: connection reset by peer",
    "unhandled exception while loading {entity} {id}: NullPointerException at {entity}Service.java:{n}",
    "{entity} {id} rejected by {upstream}: insufficient funds (code {n})",
    "could not acquire lock {entity}:{id} after {ms}ms, giving up",
    "deadlock detected on {store} while updating {entity} {id}, transaction rolled back",
    "{entity} {id} payload invalid: unexpected token at position {n}",
    "upstream {upstream} returned {status} for {entity} {id}",
    "failed to publish {entity}.created event: broker not available",
    "permission denied for user {user} on {entity} {id}",
];

struct Template {
    /// Literal chunks between placeholders: `parts[0] {ph[0]} parts[1] ...`.
    parts: Vec<Vec<u8>>,
    placeholders: Vec<Ph>,
}

#[derive(Clone, Copy)]
enum Ph {
    Id,
    User,
    N,
    N2,
    Big,
    Ms,
    Sec,
    Bytes,
    Uuid,
    Store,
    Upstream,
    Method,
    Path,
    Status,
    Ip,
    Amount,
}

fn compile(pattern: &str, entity: &str) -> Template {
    let pattern = pattern.replace("{entity}", entity);
    let mut parts = Vec::new();
    let mut placeholders = Vec::new();
    let mut rest = pattern.as_str();
    let mut cur = String::new();
    while let Some(open) = rest.find('{') {
        cur.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            cur.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let ph = match &after[..close] {
            "id" => Some(Ph::Id),
            "user" => Some(Ph::User),
            "n" => Some(Ph::N),
            "n2" => Some(Ph::N2),
            "big" => Some(Ph::Big),
            "ms" => Some(Ph::Ms),
            "sec" => Some(Ph::Sec),
            "bytes" => Some(Ph::Bytes),
            "uuid" => Some(Ph::Uuid),
            "store" => Some(Ph::Store),
            "upstream" => Some(Ph::Upstream),
            "method" => Some(Ph::Method),
            "path" => Some(Ph::Path),
            "status" => Some(Ph::Status),
            "ip" => Some(Ph::Ip),
            "amount" => Some(Ph::Amount),
            _ => None,
        };
        match ph {
            Some(p) => {
                parts.push(std::mem::take(&mut cur).into_bytes());
                placeholders.push(p);
            }
            None => cur.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    cur.push_str(rest);
    parts.push(cur.into_bytes());
    Template {
        parts,
        placeholders,
    }
}

struct Endpoint {
    service: usize,
    method: &'static str,
    path: String,
    write: bool,
}

struct JsonGen {
    hosts: Vec<Vec<String>>,
    /// Endpoints per service.
    endpoints: Vec<Vec<Endpoint>>,
    info: Vec<Template>,
    debug: Vec<Template>,
    warn: Vec<Template>,
    error: Vec<Template>,
    /// The current trace: consecutive lines often share one.
    trace: (u64, u64),
    trace_left: u32,
}

fn alnum(rng: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n).map(|_| A[rng.below(A.len())] as char).collect()
}

fn templates(rng: &mut Rng, patterns: &[&str]) -> Vec<Template> {
    let mut out = Vec::new();
    for p in patterns {
        // Four distinct entities per pattern.
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < 4 {
            let e = rng.below(ENTITIES.len());
            if !chosen.contains(&e) {
                chosen.push(e);
            }
        }
        for e in chosen {
            out.push(compile(p, ENTITIES[e]));
        }
    }
    out
}

impl JsonGen {
    fn new(rng: &mut Rng) -> Self {
        let hosts = SERVICES
            .iter()
            .map(|s| {
                let rs = alnum(rng, 10);
                let n = 2 + rng.below(5);
                (0..n)
                    .map(|_| format!("{s}-{rs}-{}", alnum(rng, 5)))
                    .collect()
            })
            .collect();
        // 25 endpoints per service, 500 in all: collection and item paths.
        let mut endpoints: Vec<Vec<Endpoint>> = Vec::new();
        for (si, res) in RESOURCES.iter().enumerate() {
            let mut eps = Vec::new();
            let mut k = 0usize;
            while eps.len() < 25 {
                let r = res[k % res.len()];
                let version = if k % 3 == 2 { "v2" } else { "v1" };
                let (method, write) = if k % 4 == 1 {
                    (METHODS_WRITE[rng.below(METHODS_WRITE.len())], true)
                } else {
                    (METHODS_READ[0], false)
                };
                let path = if k < res.len() {
                    format!("/api/{version}/{r}")
                } else if k % 5 == 4 {
                    format!("/api/{version}/{r}/{}/history", 1000 + rng.below(90_000))
                } else {
                    format!("/api/{version}/{r}/{}", 1000 + rng.below(900_000))
                };
                eps.push(Endpoint {
                    service: si,
                    method,
                    path,
                    write,
                });
                k += 1;
            }
            endpoints.push(eps);
        }
        JsonGen {
            hosts,
            endpoints,
            info: templates(rng, INFO_PATTERNS),
            debug: templates(rng, DEBUG_PATTERNS),
            warn: templates(rng, WARN_PATTERNS),
            error: templates(rng, ERROR_PATTERNS),
            trace: (0, 0),
            trace_left: 0,
        }
    }

    fn line(&mut self, rng: &mut Rng, ts: i64, out: &mut Vec<u8>) {
        // Level skew: mostly info, some debug, few warn/error.
        let r = rng.f64();
        let (level, tpls): (&str, &[Template]) = if r < 0.74 {
            ("info", &self.info)
        } else if r < 0.88 {
            ("debug", &self.debug)
        } else if r < 0.97 {
            ("warn", &self.warn)
        } else {
            ("error", &self.error)
        };
        let svc = rng.skewed(SERVICES.len(), 2);
        let ep = &self.endpoints[svc][rng.skewed(25, 3)];
        let host = rng.pick(&self.hosts[ep.service]);
        let status: u64 = match level {
            "error" => *rng.pick(&[500, 500, 502, 503, 504, 500, 409]),
            "warn" => *rng.pick(&[200, 200, 429, 404, 400, 401, 403, 200]),
            _ if ep.write => *rng.pick(&[200, 201, 201, 204, 200, 202]),
            _ => {
                if rng.chance(0.03) {
                    304
                } else {
                    200
                }
            }
        };
        if self.trace_left == 0 {
            self.trace = (rng.next_u64(), rng.next_u64());
            self.trace_left = 1 + rng.below(6) as u32;
        }
        self.trace_left -= 1;
        let duration_ns = (rng.lognormal(18.0, 1.1) * 1_000_000.0) as u64 + rng.range(0, 999);
        let user = rng.skewed(60_000, 2) as u64 + 10_000;

        out.extend_from_slice(b"{\"@timestamp\":\"");
        push_rfc3339_ms(out, ts);
        out.extend_from_slice(b"\",\"log.level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"service.name\":\"");
        out.extend_from_slice(SERVICES[ep.service].as_bytes());
        out.extend_from_slice(b"\",\"host.name\":\"");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\",\"trace.id\":\"");
        push_hex(out, self.trace.0, 16);
        push_hex(out, self.trace.1, 16);
        out.extend_from_slice(b"\",\"span.id\":\"");
        push_hex(out, rng.next_u64(), 16);
        out.extend_from_slice(b"\",\"http.request.method\":\"");
        out.extend_from_slice(ep.method.as_bytes());
        out.extend_from_slice(b"\",\"url.path\":\"");
        out.extend_from_slice(ep.path.as_bytes());
        out.extend_from_slice(b"\",\"http.response.status_code\":");
        push_u64(out, status);
        out.extend_from_slice(b",\"event.duration\":");
        push_u64(out, duration_ns);
        out.extend_from_slice(b",\"user.id\":\"u-");
        push_u64(out, user);
        out.extend_from_slice(b"\",\"message\":");
        let tpl = &tpls[rng.below(tpls.len())];
        let mut msg = Vec::with_capacity(160);
        for (i, part) in tpl.parts.iter().enumerate() {
            msg.extend_from_slice(part);
            if let Some(ph) = tpl.placeholders.get(i) {
                fill(rng, *ph, ep, status, duration_ns, user, &mut msg);
            }
        }
        push_json_str(out, &msg);
        out.push(b'}');
    }
}

fn fill(
    rng: &mut Rng,
    ph: Ph,
    ep: &Endpoint,
    status: u64,
    duration_ns: u64,
    user: u64,
    out: &mut Vec<u8>,
) {
    match ph {
        Ph::Id => push_u64(out, rng.range(100_000, 99_999_999)),
        Ph::User => {
            out.extend_from_slice(b"u-");
            push_u64(out, user);
        }
        Ph::N => push_u64(out, rng.skewed(200, 2) as u64 + 1),
        Ph::N2 => push_u64(out, rng.skewed(20_000, 2) as u64),
        Ph::Big => push_u64(out, rng.range(1_000_000, 9_999_999_999)),
        Ph::Ms => {
            let ms = duration_ns / 1000;
            push_u64(out, ms / 1000);
            out.push(b'.');
            let frac = ms % 1000 / 10;
            out.push(b'0' + (frac / 10) as u8);
            out.push(b'0' + (frac % 10) as u8);
        }
        Ph::Sec => {
            let s = rng.lognormal(12.0, 1.0);
            out.extend_from_slice(format!("{s:.2}").as_bytes());
        }
        Ph::Bytes => push_u64(out, rng.lognormal(4000.0, 1.5) as u64 + 12),
        Ph::Uuid => {
            let a = rng.next_u64();
            let b = rng.next_u64();
            push_hex(out, a >> 32, 8);
            out.push(b'-');
            push_hex(out, (a >> 16) & 0xffff, 4);
            out.push(b'-');
            push_hex(out, 0x4000 | (a & 0x0fff), 4);
            out.push(b'-');
            push_hex(out, 0x8000 | (b >> 48 & 0x3fff), 4);
            out.push(b'-');
            push_hex(out, b & 0xffff_ffff_ffff, 12);
        }
        Ph::Store => out.extend_from_slice(rng.pick(&STORES).as_bytes()),
        Ph::Upstream => out.extend_from_slice(rng.pick(&UPSTREAMS).as_bytes()),
        Ph::Method => out.extend_from_slice(ep.method.as_bytes()),
        Ph::Path => out.extend_from_slice(ep.path.as_bytes()),
        Ph::Status => push_u64(out, status),
        Ph::Ip => push_ip(rng, out, 10_000),
        Ph::Amount => {
            push_u64(out, rng.lognormal(60.0, 1.0) as u64);
            out.push(b'.');
            push_u64(out, 10 + rng.below(90) as u64);
        }
    }
}

/// A client IP out of a skewed pool of `pool` addresses (the same index always gives
/// the same address).
fn push_ip(rng: &mut Rng, out: &mut Vec<u8>, pool: usize) {
    let i = rng.skewed(pool, 3) as u64;
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995;
    let h = crate::util::splitmix64(&mut x);
    let first = [23u64, 37, 45, 66, 73, 81, 91, 104, 151, 172, 185, 203, 212];
    push_u64(out, first[(h % first.len() as u64) as usize]);
    for k in 1..4 {
        out.push(b'.');
        push_u64(out, (h >> (k * 8 + 8)) & 0xff);
    }
}

// ---------------------------------------------------------------------------
// nginx combined access logs
// ---------------------------------------------------------------------------

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "kube-probe/1.29",
    "Prometheus/2.51.0",
    "okhttp/4.12.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
];

const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://www.facebook.com/",
    "https://news.ycombinator.com/",
    "https://www.reddit.com/",
];

const SITE: &str = "https://shop.example.com";

const SECTIONS: &[&str] = &[
    "products",
    "category",
    "brand",
    "blog",
    "help",
    "account",
    "collections",
    "deals",
];
const WORDS: &[&str] = &[
    "red",
    "blue",
    "classic",
    "slim",
    "running",
    "leather",
    "wireless",
    "organic",
    "summer",
    "winter",
    "pro",
    "mini",
    "kids",
    "outdoor",
    "vintage",
    "smart",
    "shoes",
    "jacket",
    "headphones",
    "backpack",
    "watch",
    "lamp",
    "mug",
    "desk",
    "chair",
    "tent",
    "bottle",
    "charger",
    "case",
    "sofa",
];

struct WebPath {
    path: String,
    kind: PathKind,
}

#[derive(Clone, Copy, PartialEq)]
enum PathKind {
    Page,
    Static,
    Api,
    Probe,
}

struct NginxGen {
    paths: Vec<WebPath>,
}

impl NginxGen {
    fn new(rng: &mut Rng) -> Self {
        let mut paths = vec![
            WebPath {
                path: "/".into(),
                kind: PathKind::Page,
            },
            WebPath {
                path: "/healthz".into(),
                kind: PathKind::Probe,
            },
            WebPath {
                path: "/favicon.ico".into(),
                kind: PathKind::Static,
            },
            WebPath {
                path: "/robots.txt".into(),
                kind: PathKind::Static,
            },
            WebPath {
                path: "/cart".into(),
                kind: PathKind::Page,
            },
            WebPath {
                path: "/search".into(),
                kind: PathKind::Page,
            },
        ];
        for i in 0..1994 {
            let r = rng.f64();
            let (path, kind) = if r < 0.35 {
                let w1 = rng.pick(WORDS);
                let w2 = rng.pick(WORDS);
                let sec = SECTIONS[rng.skewed(SECTIONS.len(), 2)];
                (
                    format!("/{sec}/{w1}-{w2}-{}", 100 + rng.below(9900)),
                    PathKind::Page,
                )
            } else if r < 0.75 {
                let ext = rng.pick(&["js", "css", "png", "jpg", "webp", "woff2", "svg"]);
                let dir = match *ext {
                    "js" => "static/js",
                    "css" => "static/css",
                    "woff2" => "static/fonts",
                    _ => "static/img",
                };
                let name = rng.pick(WORDS);
                let mut p = format!("/{dir}/{name}.");
                let mut v = Vec::new();
                push_hex(&mut v, rng.next_u64(), 8);
                p.push_str(&String::from_utf8_lossy(&v));
                p.push('.');
                p.push_str(ext);
                (p, PathKind::Static)
            } else {
                let res = rng.pick(&[
                    "products", "cart", "users", "orders", "reviews", "search", "stock",
                ]);
                let p = if i % 2 == 0 {
                    format!("/api/v1/{res}")
                } else {
                    format!("/api/v1/{res}/{}", 1000 + rng.below(500_000))
                };
                (p, PathKind::Api)
            };
            paths.push(WebPath { path, kind });
        }
        NginxGen { paths }
    }

    fn line(&mut self, rng: &mut Rng, ts: i64, out: &mut Vec<u8>) {
        let p = &self.paths[rng.skewed(self.paths.len(), 3)];
        push_ip(rng, out, 20_000);
        out.extend_from_slice(b" - ");
        if p.kind == PathKind::Page && rng.chance(0.05) {
            out.extend_from_slice(b"user");
            push_u64(out, rng.below(5000) as u64);
        } else {
            out.push(b'-');
        }
        out.extend_from_slice(b" [");
        push_clf_time(out, ts);
        out.extend_from_slice(b"] \"");
        let method: &str = match p.kind {
            PathKind::Api if rng.chance(0.3) => METHODS_WRITE[rng.below(METHODS_WRITE.len())],
            PathKind::Page if rng.chance(0.01) => "HEAD",
            _ => "GET",
        };
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(p.path.as_bytes());
        if p.path == "/search" {
            out.extend_from_slice(b"?q=");
            out.extend_from_slice(rng.pick(WORDS).as_bytes());
            out.push(b'+');
            out.extend_from_slice(rng.pick(WORDS).as_bytes());
        } else if p.kind == PathKind::Page && rng.chance(0.15) {
            out.extend_from_slice(b"?utm_source=");
            out.extend_from_slice(
                rng.pick(&["google", "newsletter", "facebook", "bing"])
                    .as_bytes(),
            );
            out.extend_from_slice(b"&page=");
            push_u64(out, 1 + rng.below(8) as u64);
        }
        out.extend_from_slice(if rng.chance(0.3) {
            b" HTTP/2.0\" "
        } else {
            b" HTTP/1.1\" "
        });
        let r = rng.f64();
        let status: u64 = match p.kind {
            PathKind::Static if r < 0.25 => 304,
            PathKind::Static if r < 0.27 => 404,
            PathKind::Api if r < 0.03 => 500,
            PathKind::Api if r < 0.05 => 401,
            PathKind::Api if r < 0.06 => 429,
            PathKind::Api if method == "POST" && r < 0.5 => 201,
            PathKind::Page if r < 0.02 => 404,
            PathKind::Page if r < 0.025 => 301,
            PathKind::Page if r < 0.028 => 502,
            _ => 200,
        };
        push_u64(out, status);
        out.push(b' ');
        let bytes = match (status, p.kind) {
            (304, _) | (201, _) => 0,
            (_, PathKind::Probe) => 2,
            (200, PathKind::Static) => rng.lognormal(30_000.0, 1.3) as u64,
            (200, PathKind::Page) => rng.lognormal(48_000.0, 0.4) as u64,
            (200, PathKind::Api) => rng.lognormal(1_800.0, 1.0) as u64,
            _ => 150 + rng.below(500) as u64,
        };
        push_u64(out, bytes);
        out.extend_from_slice(b" \"");
        let ua_idx = if p.kind == PathKind::Probe {
            if rng.chance(0.5) {
                20
            } else {
                19
            }
        } else {
            rng.skewed(USER_AGENTS.len(), 2)
        };
        let bot = ua_idx >= 11;
        if p.kind == PathKind::Static || (p.kind == PathKind::Page && rng.chance(0.5)) {
            // Same-site navigation or asset load.
            out.extend_from_slice(SITE.as_bytes());
            let from = &self.paths[rng.skewed(200, 2)];
            if from.kind == PathKind::Page {
                out.extend_from_slice(from.path.as_bytes());
            } else {
                out.push(b'/');
            }
        } else if !bot && rng.chance(0.3) {
            out.extend_from_slice(rng.pick(REFERRERS).as_bytes());
        } else {
            out.push(b'-');
        }
        out.extend_from_slice(b"\" \"");
        out.extend_from_slice(USER_AGENTS[ua_idx].as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_and_are_deterministic() {
        let dir = std::env::temp_dir().join(format!("cairn-bench-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.json");
        let b = dir.join("b.json");
        let end = 1_714_566_896_789;
        let st = generate(Kind::Json, 200_000, 42, end, &a).unwrap();
        generate(Kind::Json, 200_000, 42, end, &b).unwrap();
        let da = std::fs::read(&a).unwrap();
        assert_eq!(da, std::fs::read(&b).unwrap());
        assert!(st.bytes >= 200_000 && st.lines > 100);
        let mut last = String::new();
        for l in da.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            let ts = v["@timestamp"].as_str().unwrap().to_string();
            assert!(ts >= last, "{ts} < {last}");
            last = ts;
            assert_eq!(v["trace.id"].as_str().unwrap().len(), 32);
            assert!(v["message"].as_str().is_some());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nginx_lines_look_combined() {
        let dir = std::env::temp_dir().join(format!("cairn-bench-gen-n-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.log");
        generate(Kind::Nginx, 50_000, 1, 1_714_566_896_789, &a).unwrap();
        let d = std::fs::read_to_string(&a).unwrap();
        for l in d.lines() {
            assert!(l.contains(" [") && l.contains(" +0000] \""), "{l}");
            assert_eq!(l.matches('"').count(), 6, "{l}");
            assert!(crate::load::clf_timestamp(l.as_bytes()).is_some(), "{l}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn template_count() {
        let mut rng = Rng::new(1);
        let n = templates(&mut rng, INFO_PATTERNS).len()
            + templates(&mut rng, DEBUG_PATTERNS).len()
            + templates(&mut rng, WARN_PATTERNS).len()
            + templates(&mut rng, ERROR_PATTERNS).len();
        assert_eq!(n, 4 * 52);
    }
}
