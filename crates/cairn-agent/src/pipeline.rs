//! Wires sources, transforms, buffers and sinks into threads, and runs them.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::buffer::{Appended, DiskBuffer, Frames};
use crate::checkpoint::CheckpointStore;
use crate::config::{Config, FileSourceConfig, ParseConfig, SourceConfig, TransformConfig};
use crate::file_source::{
    event_id, write_event_id, FileIdentitySource, FileTailer, OsIdentity, RawLine,
};
use crate::kubernetes::{self, KubernetesSourceConfig, SharedCache};
use crate::metrics::{self, Metrics};
use crate::sink::run_sink;
use crate::transform::Transform;
use crate::{now_millis, set_path, AgentError, Event};

/// Bytes read per pipeline cycle: one buffer append (one fsync) and one checkpoint
/// write per cycle, so this trades durability cost against latency.
const CYCLE_BYTES: usize = 1 << 20;

/// A node downstream of a source: a transform (with its own downstream) or a sink.
#[derive(Debug)]
enum Node {
    Transform(Box<Transform>, Vec<Node>),
    Sink(usize),
}

/// The transform tree of one source thread, and per-sink output batches.
#[derive(Debug)]
pub(crate) struct Routes {
    nodes: Vec<Node>,
    outs: Vec<Frames>,
}

fn build_nodes(cfg: &Config, from: &str, sink_names: &[String]) -> Result<Vec<Node>, AgentError> {
    let mut nodes = Vec::new();
    for (name, t) in &cfg.transforms {
        if t.inputs().iter().any(|i| i == from) {
            let tr = Transform::build(name, t)
                .map_err(|e| AgentError::Config(format!("transforms.{name}: {e}")))?;
            nodes.push(Node::Transform(
                Box::new(tr),
                build_nodes(cfg, name, sink_names)?,
            ));
        }
    }
    for (idx, name) in sink_names.iter().enumerate() {
        if cfg.sinks[name].inputs().iter().any(|i| i == from) {
            nodes.push(Node::Sink(idx));
        }
    }
    Ok(nodes)
}

/// The buffer record of an event: `<id>\n<document JSON>`.
fn record(ev: &Event, r: &mut Vec<u8>) {
    r.extend_from_slice(ev.id.as_bytes());
    r.push(b'\n');
    // Serialising a Map of JSON values cannot fail.
    let _ = serde_json::to_writer(&mut *r, &ev.fields);
}

/// Appends `s` as a JSON string, byte for byte what `serde_json` writes (pinned by a
/// test), but finding the bytes to escape eight at a time and copying the runs between
/// them whole.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `w` that is below 0x20, a quote or a backslash.
    /// Borrows only run towards higher bytes, so the lowest bit set is always a real
    /// hit (higher ones may be false, and are looked at again).
    fn special(w: u64) -> u64 {
        let ctl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * b'"' as u64);
        let q = q.wrapping_sub(ONES) & !q;
        let b = w ^ (ONES * b'\\' as u64);
        let b = b.wrapping_sub(ONES) & !b;
        (ctl | q | b) & HIGH
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0usize; // start of the plain bytes not yet copied
    let mut i = 0usize;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let hits = special(u64::from_le_bytes(w));
            if hits == 0 {
                i += 8;
                continue;
            }
            i += (hits.trailing_zeros() / 8) as usize;
        }
        let c = bytes[i];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The buffer record of a file line with no transform in the way, written directly:
/// the same bytes as `record(&line_event(..))` (pinned by a test) without building,
/// serialising and freeing a JSON map per line. `ts` and `path` are JSON already.
fn write_line_record(out: &mut Vec<u8>, source: &str, line: &RawLine, ts: &[u8], path: &[u8]) {
    write_event_id(out, source, line.stream, line.start);
    out.extend_from_slice(b"\n{\"@timestamp\":");
    out.extend_from_slice(ts);
    out.extend_from_slice(b",\"message\":");
    let lossy = match std::str::from_utf8(&line.text) {
        Ok(text) => {
            write_json_str(out, text);
            false
        }
        Err(_) => {
            write_json_str(out, &String::from_utf8_lossy(&line.text));
            true
        }
    };
    out.extend_from_slice(b",\"log\":{\"file\":{\"path\":");
    out.extend_from_slice(path);
    out.extend_from_slice(b"},\"offset\":");
    write_u64(out, line.start);
    match (line.truncated, lossy) {
        (false, false) => {}
        (true, false) => out.extend_from_slice(b",\"flags\":[\"truncated\"]"),
        (false, true) => out.extend_from_slice(b",\"flags\":[\"invalid_utf8\"]"),
        (true, true) => out.extend_from_slice(b",\"flags\":[\"truncated\",\"invalid_utf8\"]"),
    }
    out.extend_from_slice(b"}}");
}

fn push(nodes: &mut [Node], ev: Event, outs: &mut [Frames]) {
    let n = nodes.len();
    let mut ev = Some(ev);
    for (k, node) in nodes.iter_mut().enumerate() {
        let e = if k + 1 == n { ev.take() } else { ev.clone() };
        let Some(e) = e else { return };
        match node {
            Node::Sink(i) => outs[*i].record(|r| record(&e, r)),
            Node::Transform(t, children) => {
                let mut tmp = Vec::new();
                t.process(e, &mut tmp);
                for x in tmp {
                    push(children, x, outs);
                }
            }
        }
    }
}

fn visit(
    nodes: &mut [Node],
    outs: &mut [Frames],
    f: &mut dyn FnMut(&mut Transform, &mut Vec<Event>),
) {
    for node in nodes.iter_mut() {
        if let Node::Transform(t, children) = node {
            let mut tmp = Vec::new();
            f(t, &mut tmp);
            for x in tmp {
                push(children, x, outs);
            }
            visit(children, outs, f);
        }
    }
}

fn hold(nodes: &[Node], stream: u64) -> Option<u64> {
    let mut best: Option<u64> = None;
    for node in nodes {
        if let Node::Transform(t, children) = node {
            for h in [t.pending_start(stream), hold(children, stream)]
                .into_iter()
                .flatten()
            {
                best = Some(best.map_or(h, |b: u64| b.min(h)));
            }
        }
    }
    best
}

impl Routes {
    pub(crate) fn push(&mut self, ev: Event) {
        push(&mut self.nodes, ev, &mut self.outs);
    }

    /// The first offset of `stream` a transform still holds (the `s3` source).
    pub(crate) fn hold(&self, stream: u64) -> Option<u64> {
        hold(&self.nodes, stream)
    }

    /// The sinks (buffer indexes) with events waiting for [`Routes::commit`].
    pub(crate) fn written_sinks(&self) -> Vec<usize> {
        (0..self.outs.len())
            .filter(|i| !self.outs[*i].is_empty())
            .collect()
    }

    /// Whether events go straight to sinks, with no transform in between.
    fn is_direct(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Sink(_)))
    }

    /// Routes a file line when [`Self::is_direct`]: its record is written once,
    /// straight into the first sink's batch, and copied to the others.
    fn push_line_direct(&mut self, source: &str, line: &RawLine, ts: &[u8], path: &[u8]) {
        let mut sinks = self.nodes.iter().filter_map(|n| match n {
            Node::Sink(i) => Some(*i),
            Node::Transform(..) => None,
        });
        let Some(first) = sinks.next() else { return };
        self.outs[first].record(|r| write_line_record(r, source, line, ts, path));
        for i in sinks {
            let (a, b) = if first < i {
                let (lo, hi) = self.outs.split_at_mut(i);
                (&lo[first], &mut hi[0])
            } else {
                let (lo, hi) = self.outs.split_at_mut(first);
                (&hi[0], &mut lo[i])
            };
            b.push(a.last());
        }
    }

    pub(crate) fn tick(&mut self) {
        let now = now_millis();
        visit(&mut self.nodes, &mut self.outs, &mut |t, out| {
            t.tick(now, out)
        });
    }

    pub(crate) fn end_stream(&mut self, stream: u64) {
        visit(&mut self.nodes, &mut self.outs, &mut |t, out| {
            t.end_stream(stream, out)
        });
    }

    /// Appends the batches to the sink buffers (blocking when one is full).
    pub(crate) fn commit(
        &mut self,
        buffers: &[Arc<DiskBuffer>],
        metrics: &Metrics,
    ) -> Result<(), AgentError> {
        for (i, out) in self.outs.iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            if buffers[i].append_frames(out)? == Appended::Dropped {
                Metrics::add(&metrics.dropped, out.len() as u64);
            }
            out.clear();
        }
        Ok(())
    }
}

fn millis_to_timestamp(ms: u64) -> Value {
    match chrono::DateTime::from_timestamp_millis(ms as i64) {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => timestamp_now(),
    }
}

fn timestamp_now() -> Value {
    Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// `ts`: the read time (one per cycle: formatting a timestamp per line is measurable).
fn line_event(source: &str, line: RawLine, ts: &Value) -> Event {
    let mut fields = Map::new();
    fields.insert("@timestamp".into(), ts.clone());
    let (text, lossy) = match String::from_utf8(line.text) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    fields.insert("message".into(), Value::String(text));
    set_path(
        &mut fields,
        "log.file.path",
        Value::String(line.path.to_string()),
    );
    set_path(&mut fields, "log.offset", Value::from(line.start));
    let mut flags = Vec::new();
    if line.truncated {
        flags.push(Value::from("truncated"));
    }
    if lossy {
        flags.push(Value::from("invalid_utf8"));
    }
    if !flags.is_empty() {
        set_path(&mut fields, "log.flags", Value::Array(flags));
    }
    Event {
        fields,
        stream: line.stream,
        start: line.start,
        id: event_id(source, line.stream, line.start),
    }
}

/// The `kubernetes` source's own first stage: container-line decoding and metadata.
struct KubeStage {
    cfg: KubernetesSourceConfig,
    cache: SharedCache,
    /// `parse` with format `auto` (CRI or Docker json-file, per file).
    parse: Transform,
}

impl KubeStage {
    fn forward(&mut self, decoded: Vec<Event>, routes: &mut Routes) {
        for mut e in decoded {
            let path = match crate::get_path(&e.fields, "log.file.path") {
                Some(Value::String(p)) => p.clone(),
                _ => String::new(),
            };
            if kubernetes::enrich(&self.cfg, &self.cache, &mut e, &path) {
                routes.push(e);
            }
        }
    }
}

/// Runs one file (or kubernetes) source until an error.
fn run_file_source(
    name: &str,
    tailer: &mut FileTailer,
    mut kube: Option<KubeStage>,
    routes: &mut Routes,
    buffers: &[Arc<DiskBuffer>],
    metrics: &Metrics,
) -> Result<(), AgentError> {
    let mut lines = Vec::new();
    let mut ended = Vec::new();
    let mut reported: Vec<String> = Vec::new();
    // The last file path seen, and it as JSON (for the direct path).
    let mut path_json: (Arc<str>, Vec<u8>) = (Arc::from(""), b"\"\"".to_vec());
    loop {
        tailer.maybe_rescan(&mut ended)?;
        let read = tailer.poll(CYCLE_BYTES, &mut lines, &mut ended)?;
        Metrics::add(&metrics.bytes_in, read as u64);
        Metrics::add(&metrics.events_in, lines.len() as u64);
        let ts = if lines.is_empty() {
            Value::Null
        } else {
            millis_to_timestamp(tailer.read_time()?)
        };
        if kube.is_none() && routes.is_direct() {
            let ts_json = serde_json::to_vec(&ts).unwrap_or_default();
            for line in lines.drain(..) {
                if !Arc::ptr_eq(&line.path, &path_json.0) {
                    path_json.1.clear();
                    write_json_str(&mut path_json.1, &line.path);
                    path_json.0 = line.path.clone();
                }
                routes.push_line_direct(name, &line, &ts_json, &path_json.1);
            }
        }
        for line in lines.drain(..) {
            let ev = line_event(name, line, &ts);
            match kube.as_mut() {
                Some(k) => {
                    let mut decoded = Vec::new();
                    k.parse.process(ev, &mut decoded);
                    k.forward(decoded, routes);
                }
                None => routes.push(ev),
            }
        }
        for s in ended.drain(..) {
            if let Some(k) = kube.as_mut() {
                let mut decoded = Vec::new();
                k.parse.end_stream(s, &mut decoded);
                k.forward(decoded, routes);
            }
            routes.end_stream(s);
        }
        routes.tick();
        routes.commit(buffers, metrics)?;
        let kube_ref = kube.as_ref();
        tailer.commit(&|s| {
            let a = hold(&routes.nodes, s);
            let b = kube_ref.and_then(|k| k.parse.pending_start(s));
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })?;
        {
            // Released files leave the gauge: only this source's current files stay.
            let mut lag = metrics.lag.lock().unwrap_or_else(|p| p.into_inner());
            let now: Vec<(String, u64)> = tailer.lag();
            for gone in reported
                .iter()
                .filter(|p| !now.iter().any(|(q, _)| q == *p))
            {
                lag.remove(gone);
            }
            reported = now.iter().map(|(p, _)| p.clone()).collect();
            for (path, l) in now {
                lag.insert(path, l);
            }
        }
        if read == 0 {
            std::thread::sleep(tailer.poll_interval());
        }
    }
}

/// Reads stdin to its end. Lines are not checkpointed (a pipe cannot be re-read), but
/// they still go through the disk buffer, so what was read survives a sink outage.
fn run_stdin_source(
    name: &str,
    max_line: usize,
    routes: &mut Routes,
    buffers: &[Arc<DiskBuffer>],
    metrics: &Metrics,
) -> Result<(), AgentError> {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut buf = Vec::new();
    let mut offset = 0u64;
    // A per-run salt keeps ids of different runs apart (stdin has no identity).
    let salt = now_millis();
    let mut pending = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| AgentError::io("reading stdin", e))?;
        if n == 0 {
            break;
        }
        let start = offset;
        offset += n as u64;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let truncated = buf.len() > max_line;
        buf.truncate(max_line);
        let line = RawLine {
            stream: 0,
            start,
            path: Arc::from("-"),
            text: buf.clone(),
            truncated,
        };
        let mut ev = line_event(name, line, &timestamp_now());
        ev.id = event_id(&format!("{name}/{salt}"), 0, start);
        if let Some(v) = ev.fields.get_mut("log") {
            if let Some(o) = v.as_object_mut() {
                o.remove("file");
            }
        }
        Metrics::add(&metrics.events_in, 1);
        Metrics::add(&metrics.bytes_in, n as u64);
        routes.push(ev);
        pending += 1;
        if pending >= 1000 {
            routes.commit(buffers, metrics)?;
            pending = 0;
        }
    }
    routes.end_stream(0);
    routes.commit(buffers, metrics)?;
    Ok(())
}

/// Runs a syslog source: parse each message, route, commit in batches.
fn run_syslog_source(
    name: &str,
    rx: std::sync::mpsc::Receiver<crate::syslog::Message>,
    routes: &mut Routes,
    buffers: &[Arc<DiskBuffer>],
    metrics: &Metrics,
) -> Result<(), AgentError> {
    use cairn_formats::{Format, LineParser, ParseOptions};
    let salt = format!("{name}/{}", now_millis());
    let mut seq = 0u64;
    let mut parser = LineParser::new(Format::Syslog, ParseOptions::default());
    let mut parser_secs = 0u64;
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let batch = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(5000));
        for msg in batch {
            Metrics::add(&metrics.events_in, 1);
            Metrics::add(&metrics.bytes_in, msg.text.len() as u64);
            // RFC 3164 has no year: the parser takes it from its reference time, so
            // keep that near now (rebuilt once a minute; the parser is stateless here).
            let now_secs = now_millis() / 1000;
            if now_secs.saturating_sub(parser_secs) >= 60 {
                parser_secs = now_secs;
                parser = LineParser::new(
                    Format::Syslog,
                    ParseOptions {
                        reference_time: Some(now_secs as i64),
                        ..Default::default()
                    },
                );
            }
            let mut fields = Map::new();
            fields.insert("@timestamp".into(), timestamp_now());
            for parsed in parser.parse_line(&msg.text).into_events() {
                for (k, v) in parsed {
                    fields.insert(k, v);
                }
            }
            if !fields.contains_key("message") {
                fields.insert(
                    "message".into(),
                    Value::String(String::from_utf8_lossy(&msg.text).into_owned()),
                );
            }
            set_path(&mut fields, "log.source.address", Value::String(msg.peer));
            routes.push(Event {
                fields,
                stream: 0,
                start: seq,
                id: event_id(&salt, 0, seq),
            });
            seq += 1;
        }
        routes.tick();
        routes.commit(buffers, metrics)?;
    }
}

/// Starts the agent from a config file and runs until a fatal error (or, when every
/// source is finite, such as stdin, until everything read has been delivered).
pub fn run(config_path: &Path) -> Result<(), AgentError> {
    let cfg = Config::load(config_path)?;
    run_config(cfg, Arc::new(OsIdentity))
}

/// Runs a parsed config with the given file identity source.
pub fn run_config(cfg: Config, ident: Arc<dyn FileIdentitySource>) -> Result<(), AgentError> {
    let data_dir = cfg.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| AgentError::io(format!("creating {}", data_dir.display()), e))?;
    let metrics = Arc::new(Metrics::default());
    if let Some(api) = &cfg.api {
        let addr = metrics::serve(&api.address, metrics.clone())?;
        tracing::info!(%addr, "health and metrics listening");
    }
    let (fatal_tx, fatal_rx) = mpsc::channel::<AgentError>();
    let sink_names: Vec<String> = cfg.sinks.keys().cloned().collect();
    let mut buffers = Vec::new();
    for name in &sink_names {
        let sc = &cfg.sinks[name];
        let b = Arc::new(DiskBuffer::open(
            &data_dir.join("buffer").join(name),
            sc.buffer().max_size,
            sc.buffer().when_full,
        )?);
        metrics
            .buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.clone(), b.clone()));
        buffers.push(b.clone());
        let (n, c, m, d, tx) = (
            name.clone(),
            sc.clone(),
            metrics.clone(),
            data_dir.clone(),
            fatal_tx.clone(),
        );
        std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                if let Err(e) = run_sink(n, c, b, m, d) {
                    let _ = tx.send(e);
                }
            })
            .map_err(|e| AgentError::io("spawning a sink thread", e))?;
    }
    let finite_left = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let all_finite = cfg
        .sources
        .values()
        .all(|s| matches!(s, SourceConfig::Stdin(_)));
    let done = Arc::new(AtomicBool::new(false));
    for (name, sc) in &cfg.sources {
        let nodes = build_nodes(&cfg, name, &sink_names)?;
        let mut routes = Routes {
            nodes,
            outs: vec![Frames::default(); sink_names.len()],
        };
        let bufs = buffers.clone();
        let m = metrics.clone();
        let tx = fatal_tx.clone();
        let name = name.clone();
        match sc.clone() {
            SourceConfig::File(fc) => {
                let ckpt = CheckpointStore::open(&data_dir.join("checkpoints"), &name)?;
                let mut tailer = FileTailer::new(&name, fc, ckpt, ident.clone());
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        if let Err(e) =
                            run_file_source(&name, &mut tailer, None, &mut routes, &bufs, &m)
                        {
                            let _ = tx.send(e);
                        }
                    })
                    .map_err(|e| AgentError::io("spawning a source thread", e))?;
            }
            SourceConfig::Kubernetes(kc) => {
                let kc = *kc;
                let fc = FileSourceConfig {
                    include: vec![format!("{}/*/*/*.log", kc.pods_dir.trim_end_matches('/'))],
                    exclude: Vec::new(),
                    read_from: kc.read_from,
                    max_line_bytes: kc.max_line_bytes,
                    rescan_interval: kc.rescan_interval,
                    poll_interval: Duration::from_millis(100),
                    fingerprint_bytes: 256,
                    encoding: Default::default(),
                };
                let cache: SharedCache = Arc::default();
                let watching = kubernetes::Watcher::new(&kc, cache.clone())?.is_some_and(|w| {
                    std::thread::Builder::new()
                        .name(format!("k8s-watch-{name}"))
                        .spawn(move || w.run())
                        .is_ok()
                });
                let parse = Transform::build(
                    &name,
                    &TransformConfig::Parse(ParseConfig {
                        inputs: Vec::new(),
                        format: "auto".into(),
                        field: "message".into(),
                        keep_original: false,
                    }),
                )
                .map_err(AgentError::Config)?;
                let stage = KubeStage {
                    cfg: kc,
                    cache,
                    parse,
                };
                let ckpt = CheckpointStore::open(&data_dir.join("checkpoints"), &name)?;
                let mut tailer = FileTailer::new(&name, fc, ckpt, ident.clone());
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        if watching {
                            kubernetes::wait_synced(&stage.cache, Duration::from_secs(10));
                        }
                        if let Err(e) =
                            run_file_source(&name, &mut tailer, Some(stage), &mut routes, &bufs, &m)
                        {
                            let _ = tx.send(e);
                        }
                    })
                    .map_err(|e| AgentError::io("spawning a source thread", e))?;
            }
            SourceConfig::Syslog(sc) => {
                let l = crate::syslog::start(&sc, metrics.clone())?;
                tracing::info!(source = %name, udp = ?l.udp, tcp = ?l.tcp, "syslog listening");
                let rx = l.rx;
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        if let Err(e) = run_syslog_source(&name, rx, &mut routes, &bufs, &m) {
                            let _ = tx.send(e);
                        }
                    })
                    .map_err(|e| AgentError::io("spawning a source thread", e))?;
            }
            SourceConfig::S3(c) => {
                let mut src = crate::s3_source::S3Source::new(
                    &name,
                    *c,
                    &data_dir.join("checkpoints"),
                    metrics.clone(),
                )?;
                src.connect()?;
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        let mut out = crate::s3_source::PipelineOutput {
                            routes,
                            buffers: bufs,
                            metrics: m,
                        };
                        if let Err(e) = src.run(&mut out) {
                            let _ = tx.send(e);
                        }
                    })
                    .map_err(|e| AgentError::io("spawning a source thread", e))?;
            }
            SourceConfig::Stdin(sc) => {
                finite_left.fetch_add(1, Ordering::SeqCst);
                let left = finite_left.clone();
                let done = done.clone();
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        if let Err(e) =
                            run_stdin_source(&name, sc.max_line_bytes, &mut routes, &bufs, &m)
                        {
                            let _ = tx.send(e);
                        }
                        if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                            done.store(true, Ordering::SeqCst);
                        }
                    })
                    .map_err(|e| AgentError::io("spawning a source thread", e))?;
            }
        }
    }
    drop(fatal_tx);
    loop {
        match fatal_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => return Err(e),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if all_finite && done.load(Ordering::SeqCst) && buffers.iter().all(|b| b.size() == 0) {
            return Ok(());
        }
    }
}

/// `cairn agent --check-config`: load and validate, and say what would run.
pub fn check_config(path: &Path) -> Result<String, AgentError> {
    let cfg = Config::load(path)?;
    Ok(format!(
        "{}: OK ({} sources, {} transforms, {} sinks; data_dir {})",
        path.display(),
        cfg.sources.len(),
        cfg.transforms.len(),
        cfg.sinks.len(),
        PathBuf::from(&cfg.data_dir).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_match_serde_json() {
        let mut cases: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
        cases.extend(
            [
                "",
                "plain ascii line of some length, no escapes at all",
                "quote\" in the middle of a longer line",
                "back\\slash and\ttab\r\n and \u{1} \u{1f} \u{7f} \u{8} \u{c}",
                "ünïcödé → 日本語 \"mixed\" with escapes\\",
                "12345678\"12345678\\1234567\u{0}",
            ]
            .map(String::from),
        );
        for s in cases {
            let mut ours = Vec::new();
            write_json_str(&mut ours, &s);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                serde_json::to_string(&s).expect("json"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn direct_line_records_match_line_events() {
        let ts = millis_to_timestamp(1_714_557_600_123);
        let ts_json = serde_json::to_vec(&ts).expect("json");
        let lines: [(&[u8], bool, &str); 6] = [
            (
                b"10.0.0.1 - - [01/May/2024] \"GET / HTTP/1.1\" 200 5",
                false,
                "/var/log/a.log",
            ),
            (b"", false, "/var/log/a.log"),
            (b"cut short", true, "/tmp/we\"ird\\path\t.log"),
            (b"bad \xff utf-8", false, "/x"),
            (b"bad \xc3 and cut", true, "/x"),
            (b"ctl \x01\x1b[0m done", false, "/x"),
        ];
        for (k, (text, truncated, path)) in lines.into_iter().enumerate() {
            let line = || RawLine {
                stream: 7,
                start: 1000 * k as u64,
                path: Arc::from(path),
                text: text.to_vec(),
                truncated,
            };
            let mut expected = Vec::new();
            record(&line_event("app", line(), &ts), &mut expected);
            let mut path_json = Vec::new();
            write_json_str(&mut path_json, path);
            let mut got = Vec::new();
            write_line_record(&mut got, "app", &line(), &ts_json, &path_json);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
        }
        let mut n = Vec::new();
        for v in [0u64, 9, 10, 12345, u64::MAX] {
            n.clear();
            write_u64(&mut n, v);
            assert_eq!(n, v.to_string().as_bytes());
        }
    }

    #[test]
    fn direct_routes_copy_records_to_every_sink() {
        let mut routes = Routes {
            nodes: vec![Node::Sink(1), Node::Sink(0)],
            outs: vec![Frames::default(); 2],
        };
        assert!(routes.is_direct());
        let line = RawLine {
            stream: 1,
            start: 0,
            path: Arc::from("/a"),
            text: b"hello".to_vec(),
            truncated: false,
        };
        routes.push_line_direct("s", &line, b"\"t\"", b"\"/a\"");
        assert_eq!(routes.outs[0].len(), 1);
        assert_eq!(routes.outs[0].last(), routes.outs[1].last());
        assert!(routes.outs[0].last().ends_with(b"\"offset\":0}}"));
    }
}
