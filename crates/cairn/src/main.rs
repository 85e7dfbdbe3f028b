//! The `cairn` binary: wires the store, search and HTTP server together.
//!
//! Configuration precedence: command-line flags > `CAIRN_*` environment variables >
//! the optional TOML file given with `--config` (keys are the long flag names with
//! dashes or underscores, e.g. `refresh-interval = "1s"`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_server::{AppState, ServerConfig};
use cairn_store::partition::Granularity;
use cairn_store::{Store, StoreConfig};
use clap::{Args, Parser, Subcommand};

mod import;
mod query;

// mimalloc returns freed memory to the OS and fragments less than glibc's malloc under
// many concurrent bulk requests (measured in bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "A centralized log platform in one binary, behind the Elasticsearch API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (Elasticsearch-compatible API, metrics).
    Serve(ServeArgs),
    /// Search from the terminal (KQL by default, or Lucene), table or JSON lines out.
    Query(query::QueryArgs),
    /// Bulk-load files, directories, stdin or s3://bucket/prefix (AWS logs aware).
    Import(import::ImportArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Optional TOML config file; flags and CAIRN_* variables override it.
    #[arg(long, env = "CAIRN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CAIRN_LISTEN")]
    listen: Option<String>,
    /// How often new documents become searchable (e.g. 1s, 500ms).
    #[arg(long, env = "CAIRN_REFRESH_INTERVAL")]
    refresh_interval: Option<String>,
    /// How often partitions are made durable and the WAL is trimmed.
    #[arg(long, env = "CAIRN_FLUSH_INTERVAL")]
    flush_interval: Option<String>,
    /// Time partition size: day or hour.
    #[arg(long, env = "CAIRN_PARTITION")]
    partition: Option<String>,
    /// Largest request body (after gzip decompression), e.g. 100mb.
    #[arg(long, env = "CAIRN_MAX_BODY_SIZE")]
    max_body_size: Option<String>,
    /// Reject documents whose @timestamp is further in the past than this (e.g. 3650d).
    #[arg(long, env = "CAIRN_MAX_PAST")]
    max_past: Option<String>,
    /// Reject documents whose @timestamp is further in the future than this (e.g. 2d).
    #[arg(long, env = "CAIRN_MAX_FUTURE")]
    max_future: Option<String>,
    /// Memory shared by all index writers, e.g. 128mb.
    #[arg(long, env = "CAIRN_INDEXING_MEMORY")]
    indexing_memory: Option<String>,
    /// Partitions with an open writer at once.
    #[arg(long, env = "CAIRN_MAX_OPEN_WRITERS")]
    max_open_writers: Option<usize>,
    /// Log format: text or json.
    #[arg(long, env = "CAIRN_LOG_FORMAT")]
    log_format: Option<String>,
}

/// Settings from the TOML file.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    refresh_interval: Option<String>,
    flush_interval: Option<String>,
    partition: Option<String>,
    max_body_size: Option<String>,
    max_past: Option<String>,
    max_future: Option<String>,
    indexing_memory: Option<String>,
    max_open_writers: Option<usize>,
    log_format: Option<String>,
}

fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("invalid size [{s}]"))?;
    let mult = match unit.trim() {
        "" | "b" => 1.0,
        "kb" | "k" => 1024.0,
        "mb" | "m" => 1024.0 * 1024.0,
        "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
        u => bail!("invalid size unit [{u}] in [{s}]: use b, kb, mb or gb"),
    };
    Ok((n * mult) as usize)
}

fn parse_dur(s: &str, what: &str) -> Result<Duration> {
    cairn_core::time::parse_duration(s)
        .map(|us| Duration::from_micros(us as u64))
        .with_context(|| format!("invalid {what} [{s}]: use a time value such as 500ms, 1s, 7d"))
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    macro_rules! pick {
        ($f:ident) => {
            args.$f.clone().or(file.$f.clone())
        };
    }
    init_tracing(pick!(log_format).as_deref().unwrap_or("text"));
    let data_dir = pick!(data_dir).unwrap_or_else(|| PathBuf::from("cairn-data"));
    let listen = pick!(listen).unwrap_or_else(|| "127.0.0.1:9200".to_string());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("invalid --listen address [{listen}]"))?;
    let mut sc = StoreConfig::new(&data_dir);
    if let Some(v) = pick!(refresh_interval) {
        sc.refresh_interval = parse_dur(&v, "--refresh-interval")?;
    }
    if let Some(v) = pick!(flush_interval) {
        sc.flush_interval = parse_dur(&v, "--flush-interval")?;
    }
    if let Some(v) = pick!(partition) {
        sc.granularity = Granularity::parse(&v)
            .with_context(|| format!("invalid --partition [{v}]: use day or hour"))?;
    }
    if let Some(v) = pick!(max_past) {
        sc.max_past = parse_dur(&v, "--max-past")?;
    }
    if let Some(v) = pick!(max_future) {
        sc.max_future = parse_dur(&v, "--max-future")?;
    }
    if let Some(v) = pick!(indexing_memory) {
        sc.indexing_memory_bytes = parse_size(&v)?;
    }
    if let Some(v) = pick!(max_open_writers) {
        sc.max_open_writers = v.max(1);
    }
    let mut server = ServerConfig {
        listen: listen.clone(),
        ..Default::default()
    };
    if let Some(v) = pick!(max_body_size) {
        server.max_body_bytes = parse_size(&v)?;
    }
    tracing::info!(data_dir = %data_dir.display(), listen = %listen, "opening the store");
    let store = Store::open(sc).context("cannot open the data directory")?;
    let cluster_uuid = {
        let mut st = store.meta();
        let id = st
            .extensions
            .entry("cluster_uuid".into())
            .or_insert_with(|| serde_json::json!(uuid::Uuid::new_v4().simple().to_string()))
            .as_str()
            .unwrap_or_default()
            .to_string();
        store
            .save_meta(&st)
            .map_err(|e| anyhow::anyhow!(e.reason))?;
        id
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let state = Arc::new(AppState {
            store: store.clone(),
            config: server,
            cluster_uuid,
            started: std::time::Instant::now(),
            contexts: Default::default(),
            pipelines: cairn_server::ingest::Pipelines::load(&store),
        });
        cairn_server::spawn_background(state.clone());
        let app = cairn_server::router(state);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(%addr, "cairn is listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server error")
    });
    tracing::info!("shutting down: flushing partitions");
    store.shutdown();
    tracing::info!("stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Query(args) => query::run(args),
        Command::Import(args) => import::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Errors are for people: the chain of causes, no backtrace.
            eprintln!("cairn: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
