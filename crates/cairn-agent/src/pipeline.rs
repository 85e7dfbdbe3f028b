//! Wires sources, transforms, buffers and sinks into threads, and runs them.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::buffer::{Appended, DiskBuffer};
use crate::checkpoint::CheckpointStore;
use crate::config::{Config, SourceConfig};
use crate::file_source::{event_id, FileIdentitySource, FileTailer, OsIdentity, RawLine};
use crate::metrics::{self, Metrics};
use crate::sink::run_sink;
use crate::transform::Transform;
use crate::{now_millis, set_path, AgentError, Event};

/// Bytes read per pipeline cycle: one buffer append (one fsync) and one checkpoint
/// write per cycle, so this trades durability cost against latency.
const CYCLE_BYTES: usize = 2 << 20;

/// A node downstream of a source: a transform (with its own downstream) or a sink.
#[derive(Debug)]
enum Node {
    Transform(Box<Transform>, Vec<Node>),
    Sink(usize),
}

/// The transform tree of one source thread, and per-sink output batches.
#[derive(Debug)]
struct Routes {
    nodes: Vec<Node>,
    outs: Vec<Vec<Vec<u8>>>,
}

fn build_nodes(cfg: &Config, from: &str, sink_names: &[String]) -> Result<Vec<Node>, AgentError> {
    let mut nodes = Vec::new();
    for (name, t) in &cfg.transforms {
        if t.inputs().iter().any(|i| i == from) {
            let tr = Transform::build(name, t).map_err(|e| AgentError::Config(format!("transforms.{name}: {e}")))?;
            nodes.push(Node::Transform(Box::new(tr), build_nodes(cfg, name, sink_names)?));
        }
    }
    for (idx, name) in sink_names.iter().enumerate() {
        if cfg.sinks[name].inputs().iter().any(|i| i == from) {
            nodes.push(Node::Sink(idx));
        }
    }
    Ok(nodes)
}

fn record(ev: &Event) -> Vec<u8> {
    let mut r = Vec::with_capacity(256);
    r.extend_from_slice(ev.id.as_bytes());
    r.push(b'\n');
    // Serialising a Map of JSON values cannot fail.
    let _ = serde_json::to_writer(&mut r, &ev.fields);
    r
}

fn push(nodes: &mut [Node], ev: Event, outs: &mut [Vec<Vec<u8>>]) {
    let n = nodes.len();
    let mut ev = Some(ev);
    for (k, node) in nodes.iter_mut().enumerate() {
        let e = if k + 1 == n { ev.take() } else { ev.clone() };
        let Some(e) = e else { return };
        match node {
            Node::Sink(i) => outs[*i].push(record(&e)),
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

fn visit(nodes: &mut [Node], outs: &mut [Vec<Vec<u8>>], f: &mut dyn FnMut(&mut Transform, &mut Vec<Event>)) {
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
            for h in [t.pending_start(stream), hold(children, stream)].into_iter().flatten() {
                best = Some(best.map_or(h, |b: u64| b.min(h)));
            }
        }
    }
    best
}

impl Routes {
    fn push(&mut self, ev: Event) {
        push(&mut self.nodes, ev, &mut self.outs);
    }

    fn tick(&mut self) {
        let now = now_millis();
        visit(&mut self.nodes, &mut self.outs, &mut |t, out| t.tick(now, out));
    }

    fn end_stream(&mut self, stream: u64) {
        visit(&mut self.nodes, &mut self.outs, &mut |t, out| t.end_stream(stream, out));
    }

    /// Appends the batches to the sink buffers (blocking when one is full).
    fn commit(&mut self, buffers: &[Arc<DiskBuffer>], metrics: &Metrics) -> Result<(), AgentError> {
        for (i, out) in self.outs.iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            if buffers[i].append(out)? == Appended::Dropped {
                Metrics::add(&metrics.dropped, out.len() as u64);
            }
            out.clear();
        }
        Ok(())
    }
}

fn timestamp_now() -> Value {
    Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn line_event(source: &str, line: RawLine) -> Event {
    let mut fields = Map::new();
    fields.insert("@timestamp".into(), timestamp_now());
    let (text, lossy) = match String::from_utf8(line.text) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    fields.insert("message".into(), Value::String(text));
    set_path(&mut fields, "log.file.path", Value::String(line.path.to_string()));
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

/// Runs one file source until an error.
fn run_file_source(
    name: &str,
    tailer: &mut FileTailer,
    routes: &mut Routes,
    buffers: &[Arc<DiskBuffer>],
    metrics: &Metrics,
) -> Result<(), AgentError> {
    let mut lines = Vec::new();
    let mut ended = Vec::new();
    loop {
        tailer.maybe_rescan(&mut ended)?;
        let read = tailer.poll(CYCLE_BYTES, &mut lines, &mut ended)?;
        Metrics::add(&metrics.bytes_in, read as u64);
        Metrics::add(&metrics.events_in, lines.len() as u64);
        for line in lines.drain(..) {
            routes.push(line_event(name, line));
        }
        for s in ended.drain(..) {
            routes.end_stream(s);
        }
        routes.tick();
        routes.commit(buffers, metrics)?;
        tailer.commit(&|s| hold(&routes.nodes, s))?;
        {
            let mut lag = metrics.lag.lock().unwrap_or_else(|p| p.into_inner());
            for (path, l) in tailer.lag() {
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
fn run_stdin_source(name: &str, max_line: usize, routes: &mut Routes, buffers: &[Arc<DiskBuffer>], metrics: &Metrics) -> Result<(), AgentError> {
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
        let mut ev = line_event(name, line);
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

/// Starts the agent from a config file and runs until a fatal error (or, when every
/// source is finite, such as stdin, until everything read has been delivered).
pub fn run(config_path: &Path) -> Result<(), AgentError> {
    let cfg = Config::load(config_path)?;
    run_config(cfg, Arc::new(OsIdentity))
}

/// Runs a parsed config with the given file identity source.
pub fn run_config(cfg: Config, ident: Arc<dyn FileIdentitySource>) -> Result<(), AgentError> {
    let data_dir = cfg.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| AgentError::io(format!("creating {}", data_dir.display()), e))?;
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
        metrics.buffers.lock().unwrap_or_else(|p| p.into_inner()).push((name.clone(), b.clone()));
        buffers.push(b.clone());
        let (n, c, m, d, tx) = (name.clone(), sc.clone(), metrics.clone(), data_dir.clone(), fatal_tx.clone());
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
    let all_finite = cfg.sources.values().all(|s| matches!(s, SourceConfig::Stdin(_)));
    let done = Arc::new(AtomicBool::new(false));
    for (name, sc) in &cfg.sources {
        let nodes = build_nodes(&cfg, name, &sink_names)?;
        let mut routes = Routes {
            nodes,
            outs: vec![Vec::new(); sink_names.len()],
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
                        if let Err(e) = run_file_source(&name, &mut tailer, &mut routes, &bufs, &m) {
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
                        if let Err(e) = run_stdin_source(&name, sc.max_line_bytes, &mut routes, &bufs, &m) {
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
