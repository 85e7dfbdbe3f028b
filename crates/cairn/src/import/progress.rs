//! Counters shared by the workers, a progress bar on a terminal (indicatif) and log
//! lines every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Default, Debug)]
pub struct Counters {
    /// Stored (compressed) bytes read.
    pub bytes: AtomicU64,
    pub objects_done: AtomicU64,
    pub objects_failed: AtomicU64,
    pub lines: AtomicU64,
    pub docs_created: AtomicU64,
    pub docs_existing: AtomicU64,
    pub docs_rejected: AtomicU64,
    pub skipped_lines: AtomicU64,
    pub parse_failures: AtomicU64,
    pub out_of_range: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn docs(&self) -> u64 {
        Self::get(&self.docs_created) + Self::get(&self.docs_existing)
    }
}

/// Which progress display to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Log,
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "auto" => {
                if std::io::stderr().is_terminal() {
                    Mode::Bar
                } else {
                    Mode::Log
                }
            }
            "bar" => Mode::Bar,
            "log" => Mode::Log,
            "off" | "none" => Mode::Off,
            _ => return None,
        })
    }
}

/// The reporter thread; stops when dropped.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl Reporter {
    pub fn start(
        mode: Mode,
        counters: Arc<Counters>,
        total_bytes: Option<u64>,
        total_objects: u64,
        interval: Duration,
    ) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let handle = (mode != Mode::Off).then(|| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let bar = (mode == Mode::Bar).then(|| {
                    let pb = match total_bytes {
                        Some(t) => ProgressBar::new(t),
                        None => ProgressBar::no_length(),
                    };
                    pb.set_draw_target(ProgressDrawTarget::stderr());
                    let tpl = "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}";
                    if let Ok(style) = ProgressStyle::with_template(tpl) {
                        pb.set_style(style);
                    }
                    pb
                });
                let mut last_log = Instant::now();
                loop {
                    let done = st.load(Ordering::Relaxed);
                    let bytes = Counters::get(&counters.bytes);
                    let docs = counters.docs();
                    let objs = Counters::get(&counters.objects_done)
                        + Counters::get(&counters.objects_failed);
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    if let Some(pb) = &bar {
                        pb.set_position(bytes);
                        pb.set_message(format!(
                            "{docs} docs ({:.0}/s), {objs}/{total_objects} objects",
                            docs as f64 / secs
                        ));
                        if done {
                            pb.finish_and_clear();
                        }
                    } else if done || last_log.elapsed() >= interval {
                        last_log = Instant::now();
                        let eta = match total_bytes {
                            Some(t) if bytes > 0 && t > bytes => {
                                format!(
                                    ", ETA {:.0}s",
                                    (t - bytes) as f64 * secs / bytes as f64
                                )
                            }
                            _ => String::new(),
                        };
                        if !done {
                            eprintln!(
                                "cairn import: {objs}/{total_objects} objects, {:.1} MB{}, {docs} docs, {:.0} docs/s, {:.2} MB/s{eta}",
                                mb(bytes),
                                total_bytes.map(|t| format!(" of {:.1} MB", mb(t))).unwrap_or_default(),
                                docs as f64 / secs,
                                mb(bytes) / secs,
                            );
                        }
                    }
                    if done {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        });
        Reporter { stop, handle }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A reader that counts the bytes it passes.
pub struct CountingReader<R> {
    pub inner: R,
    pub counters: Arc<Counters>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        Counters::add(&self.counters.bytes, n as u64);
        Ok(n)
    }
}
