//! `cairn import`: one-shot bulk load of files, directories, stdin and S3 prefixes into
//! any server that speaks the Elasticsearch `_bulk` API.
//!
//! * Objects are read by content: gzip (magic `1f 8b`, every member) or plain. A
//!   truncated gzip keeps the lines decoded before the damage, reports the object and
//!   leaves it unfinished.
//! * The format is `--format`, else what the AWS key layout names, else sniffed from the
//!   first lines (and the file name).
//! * Every document gets a deterministic `_id`: CloudTrail's `eventID`, otherwise a hash
//!   of (object URI, ETag or local content fingerprint, byte offset of the line in the
//!   decompressed stream). Documents are sent with `create`, so a re-import gets 409s,
//!   counted as "already present".
//! * Index: `--index`, else `logs-<event.dataset, dots as dashes>` (`logs-aws-elb`,
//!   `logs-aws-s3access`, `logs-aws-cloudfront_logs`, ...), else `logs-import`.
//! * Resume: after every object whose documents are all stored, the state file records
//!   its URI and version; a rerun skips those, and re-sends unfinished objects whole
//!   (their stored documents answer 409: nothing is lost or duplicated).

mod bulk;
mod progress;
mod source;
mod state;

use std::collections::VecDeque;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cairn_agent::s3::{self, pruned_by_date};
use cairn_formats::aws_key::{self, AwsKeyInfo, AwsLogKind};
use cairn_formats::{Format, LineOutcome, LineParser, ParseOptions, ParsedEvent};
use clap::Args;
use s3::Record;
use serde_json::Value;

use bulk::{BulkClient, BulkOutcome, Doc};
use progress::{Counters, CountingReader};
use source::ObjectRef;
use state::State;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files, directories (recursive), `-` for stdin, or s3://bucket/prefix.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Log format (auto, aws-alb, aws-nlb, aws-clb, aws-s3access, aws-cloudfront,
    /// aws-vpcflow, aws-cloudtrail, aws-waf, nginx-access, json, logfmt, syslog, ...).
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Target index. Default: logs-<event.dataset with dots as dashes>, else logs-import.
    #[arg(long)]
    pub index: Option<String>,
    /// Server URL.
    #[arg(long, env = "CAIRN_SERVER", default_value = "http://127.0.0.1:9200")]
    pub server: String,
    #[command(flatten)]
    pub client: crate::client::ClientAuth,
    /// CA certificate (PEM) that signs the S3 endpoint's certificate.
    #[arg(long)]
    pub s3_ca_cert: Option<PathBuf>,
    /// Only records at or after T: relative (7d, 12h, now-7d) or absolute (2024-05-01,
    /// 2024-05-01T10:00:00Z). AWS keys are pruned by their date path (1 day margin).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only records before T (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (path-style requests).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint: Option<String>,
    /// S3 region (default: AWS_REGION, the profile's region, us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Resume state file: objects imported completely (URI + ETag/fingerprint).
    #[arg(long, default_value = ".cairn-import-state.json")]
    pub state: PathBuf,
    /// Neither read nor write a state file.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,
    /// Objects downloaded and parsed in parallel.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Documents per _bulk request (at most).
    #[arg(long, default_value_t = 5000)]
    pub batch_docs: usize,
    /// Bytes per _bulk request (about), e.g. 5mb.
    #[arg(long, default_value = "5mb")]
    pub batch_size: String,
    /// Retries of a failing _bulk request (429, 5xx, connection errors), exponential backoff.
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
    /// Import at most N objects (not counting those already finished), then stop.
    #[arg(long, value_name = "N")]
    pub max_objects: Option<usize>,
    /// Copy each raw line into event.original.
    #[arg(long)]
    pub keep_original: bool,
    /// Progress display: auto (a bar on a terminal, log lines otherwise), bar, log, off.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Seconds between progress log lines.
    #[arg(long, default_value_t = 5)]
    pub log_interval: u64,
}

/// Settings every worker reads.
struct Ctx {
    format: Format,
    index: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    keep_original: bool,
    batch_docs: usize,
    batch_bytes: usize,
    bulk: BulkClient,
    counters: Arc<Counters>,
    state: Mutex<State>,
    rt: tokio::runtime::Handle,
    abort: AtomicBool,
    /// Objects that failed, with why (for the summary).
    failures: Mutex<Vec<String>>,
    reasons: Mutex<Vec<String>>,
}

/// `7d`, `now-7d`, `now`, or an absolute date/time → epoch microseconds.
fn parse_time(s: &str, flag: &str) -> Result<i64> {
    s3::parse_time(s).ok_or_else(|| {
        anyhow!(
            "invalid {flag} [{s}]: use a relative time such as 15m, 2h, 7d (or now-7d), \
             or an absolute one such as 2024-05-01 or 2024-05-01T10:00:00Z"
        )
    })
}

/// Index name for an event without `--index`.
fn default_index(ev: &impl Record) -> String {
    let ds = ev.field("event.dataset").and_then(Value::as_str);
    match ds {
        Some(d) if !d.is_empty() => {
            let name: String = d
                .to_ascii_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("logs-{name}")
        }
        _ => "logs-import".into(),
    }
}

/// Result of one object.
#[derive(Default)]
struct ObjectResult {
    out: BulkOutcome,
    /// Decompression / download error after which the object is unfinished.
    read_error: Option<String>,
}

/// Per-object document builder and batcher.
struct Sink<'a> {
    ctx: &'a Ctx,
    obj: &'a ObjectRef,
    version: String,
    info: Option<AwsKeyInfo>,
    batch: Vec<Doc>,
    batch_bytes: usize,
    result: ObjectResult,
}

impl Sink<'_> {
    fn push(&mut self, mut ev: ParsedEvent, offset: Option<u64>, sub: usize) -> Result<()> {
        if self.ctx.since.is_some() || self.ctx.until.is_some() {
            let ts = ev
                .field("@timestamp")
                .and_then(|v| cairn_core::time::parse_value(v, None));
            if let Some(ts) = ts {
                if self.ctx.since.is_some_and(|s| ts < s) || self.ctx.until.is_some_and(|u| ts >= u)
                {
                    Counters::add(&self.ctx.counters.out_of_range, 1);
                    return Ok(());
                }
            }
        }
        if let Some(info) = &self.info {
            s3::add_key_fields(&mut ev, info);
        }
        s3::set_location(&mut ev, &self.obj.uri, offset);
        let cloudtrail = self.ctx.format == Format::AwsCloudtrail
            || self.info.as_ref().is_some_and(|i| {
                matches!(
                    i.kind,
                    AwsLogKind::CloudTrail | AwsLogKind::CloudTrailInsight
                )
            });
        let id = s3::document_id(&ev, cloudtrail, &self.obj.uri, &self.version, offset, sub);
        let index = match &self.ctx.index {
            Some(i) => i.clone(),
            None => default_index(&ev),
        };
        // The text straight from the parser's fields: no nested maps are built.
        let mut source = Vec::with_capacity(1024);
        ev.write_json(&mut source);
        let doc = Doc {
            index,
            id,
            source: String::from_utf8(source)?,
        };
        self.batch_bytes += doc.weight();
        self.batch.push(doc);
        if self.batch.len() >= self.ctx.batch_docs || self.batch_bytes >= self.ctx.batch_bytes {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let o = self.ctx.bulk.send(&self.batch)?;
        let c = &self.ctx.counters;
        Counters::add(&c.docs_created, o.created);
        Counters::add(&c.docs_existing, o.existing);
        Counters::add(&c.docs_rejected, o.rejected);
        self.result.out.add(&o);
        self.batch.clear();
        self.batch_bytes = 0;
        Ok(())
    }

    fn line_outcome(&mut self, out: LineOutcome<ParsedEvent>, offset: u64) -> Result<()> {
        match out {
            LineOutcome::Event(e) => self.push(e, Some(offset), 0),
            LineOutcome::Events(v) => {
                for (i, e) in v.into_iter().enumerate() {
                    self.push(e, Some(offset), i)?;
                }
                Ok(())
            }
            LineOutcome::Skipped(_) => Ok(()),
        }
    }
}

use s3::read_head;

fn process(ctx: &Ctx, obj: &ObjectRef) -> Result<ObjectResult> {
    let raw = source::open(obj, &ctx.rt)?;
    let raw: Box<dyn Read + Send> = Box::new(CountingReader {
        inner: raw,
        counters: ctx.counters.clone(),
    });
    // Compression by content, not by name.
    let (mut body, gz) = s3::decode(raw).context("cannot read")?;
    let decode_err = |e: std::io::Error| {
        if gz {
            format!("gzip data is damaged or truncated: {e}")
        } else {
            format!("read error: {e}")
        }
    };
    // The version: ETag / fingerprint, or (stdin) a fingerprint of the first bytes.
    let mut head = Vec::new();
    let version = match &obj.version {
        Some(v) => v.clone(),
        None => {
            head = read_head(&mut body, 64 * 1024).map_err(|e| anyhow!(decode_err(e)))?;
            format!(
                "stdin-{}",
                aws_key::content_fingerprint(&head, head.len() as u64)
            )
        }
    };
    let info = aws_key::parse_key(&obj.key);
    let mut format = ctx.format;
    if format == Format::Auto {
        if let Some(f) = info.as_ref().and_then(|i| i.kind.format()) {
            format = f;
        }
    }
    if format == Format::Auto {
        let more = read_head(&mut body, (64 * 1024usize).saturating_sub(head.len()))
            .map_err(|e| anyhow!(decode_err(e)))?;
        head.extend_from_slice(&more);
        let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').take(16).collect();
        format = cairn_formats::sniff(Some(obj.file_name()), &lines);
    }
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        std::io::Cursor::new(std::mem::take(&mut head)).chain(body),
    );
    let mut sink = Sink {
        ctx,
        obj,
        version,
        info,
        batch: Vec::new(),
        batch_bytes: 0,
        result: ObjectResult::default(),
    };
    let opts = ParseOptions {
        keep_original: ctx.keep_original,
        reference_time: Some(cairn_core::time::now_micros() / 1_000_000),
        ..Default::default()
    };
    let c = &ctx.counters;
    if format == Format::AwsCloudtrail {
        // One JSON document per object (or JSON lines): parse it whole.
        let mut all = Vec::new();
        if let Err(e) = reader.read_to_end(&mut all) {
            sink.result.read_error = Some(decode_err(e));
            return Ok(sink.result);
        }
        match cairn_formats::parse_document_with(format, &all, &opts) {
            Ok(events) => {
                Counters::add(&c.lines, all.split(|&b| b == b'\n').count() as u64);
                for (i, e) in events.into_iter().enumerate() {
                    if cairn_formats::is_failure(&e) {
                        Counters::add(&c.parse_failures, 1);
                    }
                    sink.push(ParsedEvent::Object(e), None, i)?;
                }
            }
            Err(e) if all.trim_ascii().is_empty() => {
                let _ = e;
            }
            Err(e) => {
                Counters::add(&c.parse_failures, 1);
                let text = String::from_utf8_lossy(&all).into_owned();
                let ev = cairn_formats::failure_event(&text, &e.to_string(), format);
                sink.push(ParsedEvent::Object(ev), Some(0), 0)?;
            }
        }
        sink.flush()?;
        return Ok(sink.result);
    }
    let mut parser = LineParser::new(format, opts);
    let mut line = Vec::new();
    let mut offset: u64 = 0;
    loop {
        match s3::read_line(&mut reader, &mut line, s3::MAX_LINE) {
            Ok((0, _)) => break,
            Ok((n, _)) => {
                let out = parser.parse_line_fields(&line);
                sink.line_outcome(out, offset)?;
                offset += n as u64;
            }
            Err(e) => {
                // Lines before the damage are kept; the partial last line is not.
                sink.result.read_error = Some(decode_err(e));
                break;
            }
        }
    }
    for (i, e) in parser.finish().into_iter().enumerate() {
        sink.push(ParsedEvent::Object(e), Some(offset), i + 1)?;
    }
    let st = parser.stats();
    Counters::add(&c.lines, st.parsed + st.failed + st.skipped);
    Counters::add(&c.skipped_lines, st.skipped);
    Counters::add(&c.parse_failures, st.failed);
    sink.flush()?;
    Ok(sink.result)
}

fn worker(ctx: &Ctx, queue: &Mutex<VecDeque<ObjectRef>>) {
    loop {
        if ctx.abort.load(Ordering::Relaxed) {
            return;
        }
        let Some(obj) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
            return;
        };
        let c = &ctx.counters;
        match process(ctx, &obj) {
            Ok(r) => {
                for reason in &r.out.reasons {
                    if let Ok(mut v) = ctx.reasons.lock() {
                        if v.len() < bulk::MAX_REASONS {
                            v.push(reason.clone());
                        }
                    }
                }
                if let Some(err) = r.read_error {
                    Counters::add(&c.objects_failed, 1);
                    push_failure(ctx, format!("{}: {err} (not marked finished)", obj.uri));
                } else if r.out.rejected > 0 {
                    Counters::add(&c.objects_failed, 1);
                    push_failure(
                        ctx,
                        format!(
                            "{}: {} documents rejected (not marked finished)",
                            obj.uri, r.out.rejected
                        ),
                    );
                } else {
                    Counters::add(&c.objects_done, 1);
                    if obj.uri != "-" {
                        if let (Some(v), Ok(mut st)) = (&obj.version, ctx.state.lock()) {
                            if let Err(e) = st.finish(&obj.uri, v, r.out.created + r.out.existing) {
                                push_failure(ctx, format!("{e:#}"));
                                ctx.abort.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                Counters::add(&c.objects_failed, 1);
                push_failure(ctx, format!("{}: {e:#}", obj.uri));
                // The server is unreachable or refuses everything: stop taking objects.
                if e.to_string().contains("giving up")
                    || e.to_string().contains("refused the _bulk")
                {
                    ctx.abort.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

fn push_failure(ctx: &Ctx, s: String) {
    eprintln!("cairn import: {s}");
    if let Ok(mut v) = ctx.failures.lock() {
        v.push(s);
    }
}

pub fn run(a: ImportArgs) -> Result<()> {
    let format: Format = a
        .format
        .parse()
        .map_err(|e: cairn_formats::FormatError| anyhow!("invalid --format: {e}"))?;
    let mode = progress::Mode::parse(&a.progress).ok_or_else(|| {
        anyhow!(
            "invalid --progress [{}]: use auto, bar, log or off",
            a.progress
        )
    })?;
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time(s, "--since"))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time(s, "--until"))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            bail!("--since must be before --until");
        }
    }
    let batch_bytes = crate::parse_size(&a.batch_size)?;
    let state = if a.no_state {
        State::disabled()
    } else {
        State::load(&a.state)?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let s3 = source::S3Options {
        endpoint: a.endpoint.clone(),
        ca_cert: a.s3_ca_cert.clone(),
        region: a.region.clone(),
    };
    let listed = source::list(&a.sources, &s3, rt.handle())?;
    let state_abs = std::fs::canonicalize(&a.state).ok();
    let total_listed = listed.len();
    let (mut already, mut pruned, mut control) = (0usize, 0usize, 0usize);
    let mut work = VecDeque::new();
    for obj in listed {
        if let Some(p) = &state_abs {
            if std::path::Path::new(&obj.uri) == p.as_path() {
                continue;
            }
        }
        if let Some(info) = aws_key::parse_key(&obj.key) {
            if info.kind.format().is_none() && format == Format::Auto {
                control += 1; // ELB test file, CloudTrail digests
                continue;
            }
            if pruned_by_date(&info, since, until) {
                pruned += 1;
                continue;
            }
        }
        if let Some(v) = &obj.version {
            if state.is_finished(&obj.uri, v) {
                already += 1;
                continue;
            }
        }
        work.push_back(obj);
    }
    if let Some(n) = a.max_objects {
        work.truncate(n);
    }
    let total_bytes: Option<u64> = work.iter().map(|o| o.size).sum();
    let n_work = work.len();
    eprintln!(
        "cairn import: {total_listed} objects listed, {n_work} to import, {already} already imported, {pruned} pruned by their key date, {control} control objects skipped"
    );
    let counters = Arc::new(Counters::default());
    let ctx = Ctx {
        format,
        index: a.index.clone(),
        since,
        until,
        keep_original: a.keep_original,
        batch_docs: a.batch_docs.max(1),
        batch_bytes,
        bulk: BulkClient::new(&a.server, a.retries, &a.client)?,
        counters: counters.clone(),
        state: Mutex::new(state),
        rt: rt.handle().clone(),
        abort: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        reasons: Mutex::new(Vec::new()),
    };
    let started = Instant::now();
    {
        let _reporter = progress::Reporter::start(
            mode,
            counters.clone(),
            total_bytes,
            n_work as u64,
            Duration::from_secs(a.log_interval.max(1)),
        );
        let queue = Mutex::new(work);
        let workers = a.workers.clamp(1, 64).min(n_work.max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| worker(&ctx, &queue));
            }
        });
    }
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let g = Counters::get;
    let c = &counters;
    let mb = g(&c.bytes) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "cairn import: {} objects imported, {} failed; {} lines, {} docs ({} new, {} already present), {} skipped control lines, {} parse failures, {} rejected, {} outside the time range; {:.1} MB in {:.1}s ({:.2} MB/s)",
        g(&c.objects_done),
        g(&c.objects_failed),
        g(&c.lines),
        c.docs(),
        g(&c.docs_created),
        g(&c.docs_existing),
        g(&c.skipped_lines),
        g(&c.parse_failures),
        g(&c.docs_rejected),
        g(&c.out_of_range),
        mb,
        secs,
        mb / secs,
    );
    let reasons = ctx.reasons.lock().map(|v| v.clone()).unwrap_or_default();
    for r in &reasons {
        eprintln!("cairn import: rejected: {r}");
    }
    let failed = g(&c.objects_failed);
    let rejected = g(&c.docs_rejected);
    if failed > 0 || rejected > 0 || ctx.abort.load(Ordering::Relaxed) {
        bail!(
            "{failed} objects not imported completely, {rejected} documents rejected; rerun to retry the unfinished objects"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names() {
        let mut ev = cairn_formats::Event::new();
        assert_eq!(default_index(&ev), "logs-import");
        ev.insert(
            "event".into(),
            serde_json::json!({"dataset": "aws.cloudfront_logs"}),
        );
        assert_eq!(default_index(&ev), "logs-aws-cloudfront_logs");
    }

    #[test]
    fn times() {
        assert!(parse_time("7d", "--since").is_ok());
        assert!(parse_time("now-7d", "--since").is_ok());
        assert_eq!(
            parse_time("2024-05-01", "--since").unwrap(),
            cairn_core::time::parse_iso("2024-05-01T00:00:00Z").unwrap()
        );
        assert!(parse_time("yesterday", "--since").is_err());
    }
}
