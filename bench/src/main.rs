//! `cairn-bench`: see the crate docs and `bench/run-ingest.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_bench::util::{human, parse_size};
use cairn_bench::{disk, gen, load, summary};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cairn-bench", about = "Ingest benchmark harness for cairn")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a realistic log corpus.
    Gen {
        #[arg(long, value_enum)]
        kind: gen::Kind,
        /// Target size, e.g. 1GB, 256MB (binary units).
        #[arg(long, default_value = "1GB")]
        bytes: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// End of the 24 h the timestamps cover (RFC 3339); default: now, rounded
        /// down to the minute.
        #[arg(long)]
        end: Option<String>,
    },
    /// Send a file to a cairn (or Elasticsearch) server with concurrent `_bulk` clients.
    Load {
        #[arg(long, default_value = "http://127.0.0.1:9200")]
        server: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        index: String,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Target size of one `_bulk` body.
        #[arg(long, default_value = "5MB")]
        batch_bytes: String,
        /// Give every document an `_id` (forces the server's id lookup path).
        #[arg(long)]
        explicit_ids: bool,
        /// Server process to sample /proc/PID/status (and CPU time) of.
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long, value_enum, default_value = "auto")]
        format: load::Format,
        /// Marker documents for the ack-to-searchable measurement.
        #[arg(long, default_value_t = 20)]
        markers: usize,
        /// Seed for explicit ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the report as JSON here.
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// Exit non-zero if any item failed.
        #[arg(long)]
        strict: bool,
    },
    /// Bytes a data directory takes on disk, and the ratio to the raw input.
    Disk {
        #[arg(long)]
        data_dir: PathBuf,
        /// Raw input size: bytes, or a size such as 1GB.
        #[arg(long)]
        raw_bytes: String,
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Markdown table from a directory of `*.load.json` / `*.disk.json` reports.
    Summary { dir: PathBuf },
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
    /// Wait until `GET /` answers 200.
    WaitReady {
        #[arg(long, default_value = "http://127.0.0.1:9200")]
        server: String,
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
}

fn write_json<T: serde::Serialize>(path: &Option<PathBuf>, v: &T) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, serde_json::to_vec_pretty(v)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn end_ms(end: Option<String>) -> Result<i64> {
    Ok(match end {
        Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
            .with_context(|| format!("--end {s:?} is not RFC 3339"))?
            .timestamp_millis(),
        None => chrono::Utc::now().timestamp_millis() / 60_000 * 60_000,
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen {
            kind,
            bytes,
            out,
            seed,
            end,
        } => {
            let target = parse_size(&bytes)?;
            let t = Instant::now();
            let st = gen::generate(kind, target, seed, end_ms(end)?, &out)?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "wrote {} lines, {} bytes ({}) to {} in {:.1}s ({:.0} MB/s)",
                st.lines,
                st.bytes,
                human(st.bytes),
                out.display(),
                secs,
                st.bytes as f64 / 1e6 / secs.max(1e-9)
            );
        }
        Cmd::Load {
            server,
            file,
            index,
            clients,
            batch_bytes,
            explicit_ids,
            pid,
            format,
            markers,
            seed,
            json_out,
            strict,
        } => {
            let opts = load::LoadOpts {
                server,
                file,
                index,
                clients,
                batch_bytes: usize::try_from(parse_size(&batch_bytes)?)?,
                explicit_ids,
                pid,
                format,
                markers,
                seed,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let rep = rt.block_on(load::run(opts))?;
            load::print_report(&rep);
            write_json(&json_out, &rep)?;
            if strict {
                load::check(&rep)?;
            }
        }
        Cmd::Disk {
            data_dir,
            raw_bytes,
            json_out,
        } => {
            let rep = disk::measure(&data_dir, parse_size(&raw_bytes)?)?;
            disk::print_report(&rep);
            write_json(&json_out, &rep)?;
        }
        Cmd::Summary { dir } => summary::run(&dir)?,
        Cmd::FreePort => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
        }
        Cmd::WaitReady { server, timeout_s } => {
            let addr = server
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            let deadline = Instant::now() + Duration::from_secs(timeout_s);
            loop {
                if probe(&addr) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{server} not ready after {timeout_s}s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// A minimal `GET /` over a plain socket (no runtime needed).
fn probe(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200")
}
