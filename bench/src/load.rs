//! `cairn-bench load`: N concurrent `_bulk` clients, server memory sampling, and the
//! acknowledgement-to-searchable latency of single documents.
//!
//! All request bodies are built before the clock starts, so the measured rate is the
//! server's (plus the HTTP exchange), not this process's JSON building.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::util::{human, percentile, push_json_str, push_rfc3339_ms, splitmix64};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON if the first non-empty line starts with `{`, raw lines otherwise.
    Auto,
    /// One JSON document per line, sent as is.
    Json,
    /// Raw text lines (nginx/apache access logs), sent as
    /// `{"@timestamp": <from the line>, "message": <line>}`.
    Lines,
}

#[derive(Clone)]
pub struct LoadOpts {
    pub server: String,
    pub file: PathBuf,
    pub index: String,
    pub clients: usize,
    pub batch_bytes: usize,
    pub explicit_ids: bool,
    pub pid: Option<u32>,
    pub format: Format,
    pub markers: usize,
    pub seed: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct LoadReport {
    pub index: String,
    pub format: String,
    pub explicit_ids: bool,
    pub clients: usize,
    pub batch_bytes: usize,
    pub requests: usize,
    pub raw_bytes: u64,
    pub body_bytes: u64,
    pub docs_sent: u64,
    pub docs_ok: u64,
    pub item_errors: u64,
    pub request_errors: u64,
    pub retries: u64,
    pub first_error: Option<String>,
    pub elapsed_s: f64,
    pub raw_mb_s: f64,
    pub raw_mib_s: f64,
    pub docs_s: f64,
    pub req_latency_ms_p50: f64,
    pub req_latency_ms_p99: f64,
    pub req_latency_ms_max: f64,
    /// Throughput per 5 s window (MB/s), by completion time.
    pub timeline_mb_s: Vec<f64>,
    /// `_count` after `_refresh` (before markers).
    pub docs_counted: Option<u64>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_cores_avg: Option<f64>,
    pub bench_cpu_s: Option<f64>,
    pub peak_vmrss_kib: Option<u64>,
    pub peak_rssanon_kib: Option<u64>,
    pub vmhwm_kib: Option<u64>,
    pub end_vmrss_kib: Option<u64>,
    pub end_rssanon_kib: Option<u64>,
    /// (seconds since start, VmRSS KiB, RssAnon KiB) every ~5 s.
    pub memory_timeline: Vec<(f64, u64, u64)>,
    pub searchable_ms: Vec<f64>,
    pub searchable_ms_p50: Option<f64>,
    pub searchable_ms_p99: Option<f64>,
    pub searchable_ms_max: Option<f64>,
    pub searchable_timeouts: usize,
}

struct Batch {
    body: Bytes,
    docs: u64,
    raw: u64,
}

/// Parses the `[dd/Mon/yyyy:HH:MM:SS +zzzz]` timestamp of a common/combined log line
/// into epoch milliseconds.
pub fn clf_timestamp(line: &[u8]) -> Option<i64> {
    let open = line.iter().position(|b| *b == b'[')?;
    let rest = &line[open + 1..];
    let close = rest.iter().position(|b| *b == b']')?;
    let s = std::str::from_utf8(&rest[..close]).ok()?;
    let dt = chrono::DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z").ok()?;
    Some(dt.timestamp_millis())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An Elasticsearch-like 20-character id, deterministic per line.
fn doc_id(seed: u64, line_no: u64, out: &mut Vec<u8>) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = seed ^ line_no.wrapping_mul(0xA076_1D64_78BD_642F);
    let a = splitmix64(&mut x);
    let b = splitmix64(&mut x);
    for i in 0..10 {
        out.push(B64[((a >> (i * 6)) & 63) as usize]);
    }
    for i in 0..10 {
        out.push(B64[((b >> (i * 6)) & 63) as usize]);
    }
}

fn detect_format(file: &PathBuf) -> Result<Format> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let r = BufReader::new(f);
    for line in r.split(b'\n') {
        let line = line?;
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        return Ok(if t.first() == Some(&b'{') {
            Format::Json
        } else {
            Format::Lines
        });
    }
    Ok(Format::Json)
}

fn build_batches(opts: &LoadOpts, format: Format) -> Result<Vec<Batch>> {
    let f = std::fs::File::open(&opts.file)
        .with_context(|| format!("opening {}", opts.file.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut out = Vec::new();
    let cap = opts.batch_bytes + opts.batch_bytes / 8 + 4096;
    let mut body: Vec<u8> = Vec::with_capacity(cap);
    let (mut docs, mut raw) = (0u64, 0u64);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let fallback_ts = now_ms();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        raw += n as u64;
        docs += 1;
        if opts.explicit_ids {
            body.extend_from_slice(b"{\"index\":{\"_id\":\"");
            doc_id(opts.seed, line_no, &mut body);
            body.extend_from_slice(b"\"}}\n");
        } else {
            body.extend_from_slice(b"{\"index\":{}}\n");
        }
        match format {
            Format::Lines => {
                body.extend_from_slice(b"{\"@timestamp\":\"");
                push_rfc3339_ms(&mut body, clf_timestamp(t).unwrap_or(fallback_ts));
                body.extend_from_slice(b"\",\"message\":");
                push_json_str(&mut body, t);
                body.extend_from_slice(b"}\n");
            }
            _ => {
                body.extend_from_slice(t);
                body.push(b'\n');
            }
        }
        if body.len() >= opts.batch_bytes {
            out.push(Batch {
                body: Bytes::from(std::mem::replace(&mut body, Vec::with_capacity(cap))),
                docs,
                raw,
            });
            docs = 0;
            raw = 0;
        }
    }
    if docs > 0 {
        out.push(Batch {
            body: Bytes::from(body),
            docs,
            raw,
        });
    }
    Ok(out)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Http {
    client: HttpClient,
    base: String,
}

impl Http {
    fn new(base: &str) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn);
        Http {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(Full::new(body))?;
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("request to {}{path}", self.base))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let b = match body {
            Some(v) => Bytes::from(serde_json::to_vec(&v)?),
            None => Bytes::new(),
        };
        let (status, resp) = self.send(method, path, "application/json", b).await?;
        if !status.is_success() {
            bail!(
                "{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&resp[..resp.len().min(2000)])
            );
        }
        serde_json::from_slice(&resp).with_context(|| format!("{path}: response is not JSON"))
    }
}

#[derive(Deserialize)]
struct BulkSummary {
    errors: bool,
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(Default)]
struct ClientStats {
    docs_ok: u64,
    item_errors: u64,
    request_errors: u64,
    retries: u64,
    first_error: Option<String>,
    /// (completion time since start, latency, raw bytes)
    done: Vec<(f64, f64, u64)>,
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Sends one batch (retrying 429/503 like the official clients) and accounts for it.
async fn send_batch(http: &Http, path: &str, b: &Batch, st: &mut ClientStats) {
    let mut attempt = 0u32;
    loop {
        let res = http
            .send(Method::POST, path, "application/x-ndjson", b.body.clone())
            .await;
        match res {
            Ok((status, body)) if status.is_success() => {
                match serde_json::from_slice::<BulkSummary>(&body) {
                    Ok(s) if !s.errors && s.items.len() as u64 == b.docs => st.docs_ok += b.docs,
                    Ok(s) if !s.errors => {
                        st.request_errors += 1;
                        st.item_errors += b.docs.saturating_sub(s.items.len() as u64);
                        st.docs_ok += s.items.len() as u64;
                        st.first_error.get_or_insert_with(|| {
                            format!(
                                "bulk response has {} items for {} docs",
                                s.items.len(),
                                b.docs
                            )
                        });
                    }
                    Ok(_) => {
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let items = v["items"].as_array().cloned().unwrap_or_default();
                        for it in &items {
                            let inner = it.as_object().and_then(|o| o.values().next());
                            match inner.and_then(|i| i.get("error")) {
                                Some(e) => {
                                    st.item_errors += 1;
                                    st.first_error.get_or_insert_with(|| {
                                        truncate(&format!("{}", inner.unwrap_or(e)), 2000)
                                    });
                                }
                                None => st.docs_ok += 1,
                            }
                        }
                    }
                    Err(e) => {
                        st.request_errors += 1;
                        st.item_errors += b.docs;
                        st.first_error.get_or_insert_with(|| {
                            format!(
                                "unparseable bulk response ({e}): {}",
                                truncate(&String::from_utf8_lossy(&body), 500)
                            )
                        });
                    }
                }
                return;
            }
            Ok((status, body))
                if (status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE)
                    && attempt < 10 =>
            {
                st.retries += 1;
                if st.retries == 1 {
                    eprintln!(
                        "note: HTTP {status} from _bulk, retrying: {}",
                        truncate(&String::from_utf8_lossy(&body), 300)
                    );
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
            }
            Ok((status, body)) => {
                st.request_errors += 1;
                st.item_errors += b.docs;
                st.first_error.get_or_insert_with(|| {
                    format!(
                        "HTTP {status}: {}",
                        truncate(&String::from_utf8_lossy(&body), 2000)
                    )
                });
                return;
            }
            Err(e) => {
                st.request_errors += 1;
                st.item_errors += b.docs;
                st.first_error.get_or_insert_with(|| format!("{e:#}"));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// /proc sampling
// ---------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
pub struct ProcMem {
    pub vmrss: u64,
    pub rssanon: u64,
    pub vmhwm: u64,
}

pub fn read_status(pid: u32) -> Option<ProcMem> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = ProcMem::default();
    for l in s.lines() {
        let field = |l: &str| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if l.starts_with("VmRSS:") {
            m.vmrss = field(l);
        } else if l.starts_with("RssAnon:") {
            m.rssanon = field(l);
        } else if l.starts_with("VmHWM:") {
            m.vmhwm = field(l);
        }
    }
    Some(m)
}

/// utime + stime in seconds (assumes the usual USER_HZ of 100).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after the closing paren.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
    data: Arc<Mutex<SamplerData>>,
}

#[derive(Default)]
struct SamplerData {
    peak_rss: u64,
    peak_anon: u64,
    last: ProcMem,
    series: Vec<(f64, u64, u64)>,
    gone: bool,
}

impl Sampler {
    fn start(pid: u32, t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let data = Arc::new(Mutex::new(SamplerData::default()));
        let (s2, d2) = (stop.clone(), data.clone());
        let handle = std::thread::spawn(move || {
            let mut next_series = 0.0;
            loop {
                // Checked before sampling so that the last sample is taken after the
                // load ends (short runs would otherwise only see the idle server).
                let stopping = s2.load(Ordering::Relaxed);
                let m = read_status(pid);
                if let Ok(mut d) = d2.lock() {
                    match m {
                        Some(m) => {
                            d.peak_rss = d.peak_rss.max(m.vmrss);
                            d.peak_anon = d.peak_anon.max(m.rssanon);
                            d.last = m;
                            let t = t0.elapsed().as_secs_f64();
                            if t >= next_series {
                                d.series.push((t, m.vmrss, m.rssanon));
                                next_series += 5.0;
                            }
                        }
                        None => d.gone = true,
                    }
                }
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Sampler { stop, handle, data }
    }

    fn finish(self) -> SamplerData {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        match Arc::try_unwrap(self.data) {
            Ok(m) => m.into_inner().unwrap_or_default(),
            Err(a) => a
                .lock()
                .map(|d| SamplerData {
                    peak_rss: d.peak_rss,
                    peak_anon: d.peak_anon,
                    last: d.last,
                    series: d.series.clone(),
                    gone: d.gone,
                })
                .unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------

pub async fn run(opts: LoadOpts) -> Result<LoadReport> {
    if opts.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let format = match opts.format {
        Format::Auto => detect_format(&opts.file)?,
        f => f,
    };
    let t_build = Instant::now();
    let batches = {
        let o = opts.clone();
        tokio::task::spawn_blocking(move || build_batches(&o, format)).await??
    };
    let raw_bytes: u64 = batches.iter().map(|b| b.raw).sum();
    let body_bytes: u64 = batches.iter().map(|b| b.body.len() as u64).sum();
    let docs_sent: u64 = batches.iter().map(|b| b.docs).sum();
    eprintln!(
        "prepared {} requests ({} docs, raw {}, bodies {}) in {:.1}s",
        batches.len(),
        docs_sent,
        human(raw_bytes),
        human(body_bytes),
        t_build.elapsed().as_secs_f64()
    );

    let http = Arc::new(Http::new(&opts.server));
    // Fail early if the server is not there.
    http.json(Method::GET, "/", None)
        .await
        .context("server is not answering GET /")?;

    let bulk_path = format!("/{}/_bulk", opts.index);
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let pid_s = opts.pid.map(|p| p.to_string());
    let cpu0 = pid_s.as_deref().and_then(cpu_seconds);
    let self_cpu0 = cpu_seconds("self");
    let t0 = Instant::now();
    let sampler = opts.pid.map(|p| Sampler::start(p, t0));
    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = {
        let next = next.clone();
        let total = batches.len();
        let stop = progress_stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = next.load(Ordering::Relaxed).min(total);
                eprintln!(
                    "  … {:>5.0}s: {n}/{total} requests started",
                    t0.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..opts.clients {
        let (http, batches, next, path) = (
            http.clone(),
            batches.clone(),
            next.clone(),
            bulk_path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut st = ClientStats::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = batches.get(i) else { break };
                let start = Instant::now();
                send_batch(&http, &path, b, &mut st).await;
                st.done.push((
                    t0.elapsed().as_secs_f64(),
                    start.elapsed().as_secs_f64() * 1000.0,
                    b.raw,
                ));
            }
            st
        }));
    }
    let mut all = ClientStats::default();
    for t in tasks {
        let st = t.await?;
        all.docs_ok += st.docs_ok;
        all.item_errors += st.item_errors;
        all.request_errors += st.request_errors;
        all.retries += st.retries;
        if all.first_error.is_none() {
            all.first_error = st.first_error;
        }
        all.done.extend(st.done);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    progress_stop.store(true, Ordering::Relaxed);
    progress.abort();
    let cpu1 = pid_s.as_deref().and_then(cpu_seconds);
    let self_cpu1 = cpu_seconds("self");

    let mut rep = LoadReport {
        index: opts.index.clone(),
        format: format!("{format:?}").to_lowercase(),
        explicit_ids: opts.explicit_ids,
        clients: opts.clients,
        batch_bytes: opts.batch_bytes,
        requests: batches.len(),
        raw_bytes,
        body_bytes,
        docs_sent,
        docs_ok: all.docs_ok,
        item_errors: all.item_errors,
        request_errors: all.request_errors,
        retries: all.retries,
        first_error: all.first_error,
        elapsed_s: elapsed,
        raw_mb_s: raw_bytes as f64 / 1e6 / elapsed,
        raw_mib_s: raw_bytes as f64 / (1u64 << 20) as f64 / elapsed,
        docs_s: all.docs_ok as f64 / elapsed,
        ..Default::default()
    };
    let mut lat: Vec<f64> = all.done.iter().map(|d| d.1).collect();
    lat.sort_by(f64::total_cmp);
    rep.req_latency_ms_p50 = percentile(&lat, 50.0);
    rep.req_latency_ms_p99 = percentile(&lat, 99.0);
    rep.req_latency_ms_max = lat.last().copied().unwrap_or(f64::NAN);
    let windows = (elapsed / 5.0).ceil().max(1.0) as usize;
    let mut tl = vec![0u64; windows];
    for (t, _, raw) in &all.done {
        let w = ((t / 5.0) as usize).min(windows - 1);
        tl[w] += raw;
    }
    rep.timeline_mb_s = tl
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let span = if i + 1 == windows {
                (elapsed - 5.0 * i as f64).max(0.001)
            } else {
                5.0
            };
            (*b as f64 / 1e6 / span * 10.0).round() / 10.0
        })
        .collect();
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        rep.server_cpu_s = Some(b - a);
        rep.server_cpu_cores_avg = Some((b - a) / elapsed);
    }
    if let (Some(a), Some(b)) = (self_cpu0, self_cpu1) {
        rep.bench_cpu_s = Some(b - a);
    }
    // Memory peaks are for the load phase only.
    if let Some(s) = sampler {
        let d = s.finish();
        if d.gone {
            eprintln!("warning: /proc/PID/status disappeared during the run (server exited?)");
        }
        rep.peak_vmrss_kib = Some(d.peak_rss);
        rep.peak_rssanon_kib = Some(d.peak_anon);
        rep.memory_timeline = d.series;
    }

    // Everything acknowledged must be countable once refreshed.
    match http
        .json(Method::POST, &format!("/{}/_refresh", opts.index), None)
        .await
    {
        Ok(_) => {
            let c = http
                .json(
                    Method::POST,
                    &format!("/{}/_count", opts.index),
                    Some(json!({"query": {"match_all": {}}})),
                )
                .await;
            match c {
                Ok(v) => rep.docs_counted = v["count"].as_u64(),
                Err(e) => eprintln!("warning: _count failed: {e:#}"),
            }
        }
        Err(e) => eprintln!("warning: _refresh failed: {e:#}"),
    }

    // Acknowledgement → searchable.
    for i in 0..opts.markers {
        let mut tok = Vec::new();
        crate::util::push_hex(&mut tok, opts.seed ^ now_ms() as u64, 16);
        crate::util::push_hex(&mut tok, i as u64, 4);
        let tok = format!("mk{}", String::from_utf8_lossy(&tok));
        let mut ts = Vec::new();
        push_rfc3339_ms(&mut ts, now_ms());
        let doc = json!({
            "@timestamp": String::from_utf8_lossy(&ts),
            "message": format!("cairn-bench marker {tok}"),
            "bench.marker": tok,
        });
        let resp = http
            .send(
                Method::POST,
                &format!("/{}/_doc", opts.index),
                "application/json",
                Bytes::from(serde_json::to_vec(&doc)?),
            )
            .await?;
        if !resp.0.is_success() {
            bail!(
                "marker index failed: HTTP {}: {}",
                resp.0,
                String::from_utf8_lossy(&resp.1)
            );
        }
        let acked = Instant::now();
        let q = json!({"query": {"term": {"bench.marker": tok}}});
        let mut found = false;
        while acked.elapsed() < Duration::from_secs(30) {
            let v = http
                .json(
                    Method::POST,
                    &format!("/{}/_count", opts.index),
                    Some(q.clone()),
                )
                .await?;
            if v["count"].as_u64() == Some(1) {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if found {
            rep.searchable_ms
                .push((acked.elapsed().as_secs_f64() * 10_000.0).round() / 10.0);
        } else {
            rep.searchable_timeouts += 1;
        }
        // Do not phase-lock with the refresh timer.
        tokio::time::sleep(Duration::from_millis(37 * (i as u64 % 7))).await;
    }
    let mut s = rep.searchable_ms.clone();
    s.sort_by(f64::total_cmp);
    if !s.is_empty() {
        rep.searchable_ms_p50 = Some(percentile(&s, 50.0));
        rep.searchable_ms_p99 = Some(percentile(&s, 99.0));
        rep.searchable_ms_max = s.last().copied();
    }
    if let Some(pid) = opts.pid {
        if let Some(m) = read_status(pid) {
            rep.vmhwm_kib = Some(m.vmhwm);
            rep.end_vmrss_kib = Some(m.vmrss);
            rep.end_rssanon_kib = Some(m.rssanon);
        }
    }
    Ok(rep)
}

pub fn print_report(r: &LoadReport) {
    let mib = |k: Option<u64>| {
        k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "== load: index {} ({}, {} clients, batch {}, {} ids) ==",
        r.index,
        r.format,
        r.clients,
        human(r.batch_bytes as u64),
        if r.explicit_ids {
            "explicit"
        } else {
            "generated"
        }
    );
    println!(
        "requests {}  docs sent {}  docs ok {}  raw {}  bodies {}",
        r.requests,
        r.docs_sent,
        r.docs_ok,
        human(r.raw_bytes),
        human(r.body_bytes)
    );
    println!(
        "elapsed {:.2}s  raw {:.1} MB/s ({:.1} MiB/s)  {:.0} docs/s",
        r.elapsed_s, r.raw_mb_s, r.raw_mib_s, r.docs_s
    );
    println!(
        "item errors {}  request errors {}  429/503 retries {}",
        r.item_errors, r.request_errors, r.retries
    );
    if let Some(e) = &r.first_error {
        println!("first error: {e}");
    }
    println!(
        "bulk request latency ms: p50 {:.0}  p99 {:.0}  max {:.0}",
        r.req_latency_ms_p50, r.req_latency_ms_p99, r.req_latency_ms_max
    );
    println!("throughput per 5s window (MB/s): {:?}", r.timeline_mb_s);
    if let Some(c) = r.docs_counted {
        let flag = if c == r.docs_ok { "" } else { "  <-- MISMATCH" };
        println!(
            "_count after _refresh: {c} (acknowledged {}){flag}",
            r.docs_ok
        );
    }
    if let (Some(s), Some(c)) = (r.server_cpu_s, r.server_cpu_cores_avg) {
        println!(
            "server CPU {s:.1}s = {c:.2} cores on average; raw MB per server CPU-second {:.1}",
            r.raw_bytes as f64 / 1e6 / s.max(0.001)
        );
    }
    if let Some(s) = r.bench_cpu_s {
        println!("bench client CPU during load {s:.1}s");
    }
    if r.peak_vmrss_kib.is_some() {
        println!(
            "server memory during load: peak VmRSS {}  peak RssAnon {}; after markers: VmRSS {} RssAnon {} VmHWM {}",
            mib(r.peak_vmrss_kib),
            mib(r.peak_rssanon_kib),
            mib(r.end_vmrss_kib),
            mib(r.end_rssanon_kib),
            mib(r.vmhwm_kib)
        );
        let tl: Vec<String> = r
            .memory_timeline
            .iter()
            .map(|(t, rss, anon)| format!("{t:.0}s:{}/{}", rss / 1024, anon / 1024))
            .collect();
        println!("memory timeline (VmRSS/RssAnon MiB): {}", tl.join(" "));
    }
    match (
        r.searchable_ms_p50,
        r.searchable_ms_p99,
        r.searchable_ms_max,
    ) {
        (Some(a), Some(b), Some(c)) => println!(
            "ack->searchable over {} markers: p50 {a:.0} ms  p99 {b:.0} ms  max {c:.0} ms{}",
            r.searchable_ms.len(),
            if r.searchable_timeouts > 0 {
                format!(
                    "  ({} never became searchable in 30s)",
                    r.searchable_timeouts
                )
            } else {
                String::new()
            }
        ),
        _ if r.searchable_timeouts > 0 => println!(
            "ack->searchable: {} markers never became searchable in 30s",
            r.searchable_timeouts
        ),
        _ => {}
    }
}

pub fn check(r: &LoadReport) -> Result<()> {
    if r.item_errors > 0 || r.request_errors > 0 {
        return Err(anyhow!(
            "{} item errors, {} request errors",
            r.item_errors,
            r.request_errors
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf() {
        let l = b"77.179.66.156 - - [25/Oct/2016:14:49:33 +0200] \"GET / HTTP/1.1\" 200 612";
        assert_eq!(clf_timestamp(l), Some(1_477_399_773_000));
        assert_eq!(clf_timestamp(b"no timestamp here"), None);
        assert_eq!(clf_timestamp(b"[garbage]"), None);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        doc_id(1, 1, &mut a);
        doc_id(1, 2, &mut b);
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        let mut c = Vec::new();
        doc_id(1, 1, &mut c);
        assert_eq!(a, c);
    }

    #[test]
    fn batches_wrap_lines() {
        let dir = std::env::temp_dir().join(format!("cairn-bench-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.log");
        std::fs::write(
            &f,
            "1.2.3.4 - - [25/Oct/2016:14:49:33 +0200] \"GET /a\\\"b HTTP/1.1\" 200 1 \"-\" \"ua\"\n\n",
        )
        .unwrap();
        let opts = LoadOpts {
            server: String::new(),
            file: f.clone(),
            index: "x".into(),
            clients: 1,
            batch_bytes: 10,
            explicit_ids: true,
            pid: None,
            format: Format::Auto,
            markers: 0,
            seed: 0,
        };
        assert_eq!(detect_format(&f).unwrap(), Format::Lines);
        let b = build_batches(&opts, Format::Lines).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].docs, 1);
        let body = std::str::from_utf8(&b[0].body).unwrap();
        let mut lines = body.lines();
        let action: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(action["index"]["_id"].as_str().unwrap().len(), 20);
        let doc: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(doc["@timestamp"], "2016-10-25T12:49:33.000Z");
        assert!(doc["message"].as_str().unwrap().contains("/a\\\"b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
