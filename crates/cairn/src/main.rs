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

mod alert_cmd;
mod client;
mod import;
mod listener;
mod query;
mod security_cmd;

// mimalloc returns freed memory to the OS and fragments less than glibc's malloc under
// many concurrent bulk requests (measured in bench/RESULTS.md). The `system-alloc`
// feature keeps the system allocator, for heap profilers that hook malloc (heaptrack).
#[cfg(not(feature = "system-alloc"))]
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
    Serve(Box<ServeArgs>),
    /// Search from the terminal (KQL by default, or Lucene), table or JSON lines out.
    Query(query::QueryArgs),
    /// Alert rules: `cairn alert test RULE.yaml` dry-runs a rule over stored data.
    Alert(alert_cmd::AlertArgs),
    /// Bulk-load files, directories, stdin or s3://bucket/prefix (AWS logs aware).
    Import(import::ImportArgs),
    /// Collect logs from files and stdin and ship them at least once (see cairn-agent).
    Agent(cairn_agent::cli::AgentArgs),
    /// Manage users (on a stopped server's data dir, or --server URL).
    Users {
        #[command(flatten)]
        target: security_cmd::Target,
        #[command(subcommand)]
        cmd: security_cmd::UsersCmd,
    },
    /// Manage API keys (on a stopped server's data dir, or --server URL).
    #[command(name = "api-key")]
    ApiKey {
        #[command(flatten)]
        target: security_cmd::Target,
        #[command(subcommand)]
        cmd: security_cmd::ApiKeyCmd,
    },
    /// TLS certificates for a quick start.
    Cert {
        #[command(subcommand)]
        cmd: security_cmd::CertCmd,
    },
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
    /// Memory shared by all index writers, e.g. 64mb.
    #[arg(long, env = "CAIRN_INDEXING_MEMORY")]
    indexing_memory: Option<String>,
    /// Partitions with an open writer at once.
    #[arg(long, env = "CAIRN_MAX_OPEN_WRITERS")]
    max_open_writers: Option<usize>,
    /// Close a partition's writer after this long without writes (e.g. 5m); a partition
    /// whose time range has passed is then merged down to one segment.
    #[arg(long, env = "CAIRN_IDLE_WRITER_CLOSE")]
    idle_writer_close: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "CAIRN_LOG_FORMAT")]
    log_format: Option<String>,
    /// Directory of ElastAlert-style rule files (hot-reloaded; config.yaml there holds globals).
    #[arg(long, env = "CAIRN_RULES_DIR")]
    rules_dir: Option<PathBuf>,
    /// Require authentication (always on for non-loopback addresses).
    #[arg(long, env = "CAIRN_AUTH")]
    auth: bool,
    /// Serve a non-loopback address without authentication (not recommended).
    #[arg(long, env = "CAIRN_INSECURE")]
    insecure: bool,
    /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS only.
    #[arg(long, env = "CAIRN_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CAIRN_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, env = "CAIRN_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Audit log: a file (JSON lines), "index" (the internal .cairn-audit index) or
    /// "off" (default: <data-dir>/audit.log when auth is on).
    #[arg(long, env = "CAIRN_AUDIT_LOG")]
    audit_log: Option<String>,
    /// Searches running at once (default: cores * 3 / 2 + 1); more wait in the queue.
    #[arg(long, env = "CAIRN_MAX_CONCURRENT_SEARCHES")]
    max_concurrent_searches: Option<usize>,
    /// Searches waiting for a slot (default 100); beyond it they get a 429.
    #[arg(long, env = "CAIRN_SEARCH_QUEUE_SIZE")]
    search_queue_size: Option<usize>,
    /// Bulk requests running at once (default: cores, at least 2).
    #[arg(long, env = "CAIRN_MAX_CONCURRENT_BULK")]
    max_concurrent_bulk: Option<usize>,
    /// Bulk requests waiting for a slot (default 50); beyond it they get a 429.
    #[arg(long, env = "CAIRN_BULK_QUEUE_SIZE")]
    bulk_queue_size: Option<usize>,
    /// Request bytes that writes being processed may hold at once (default 8mb); a
    /// write that would pass it waits for earlier ones, one larger than it runs alone.
    #[arg(long, env = "CAIRN_INDEXING_PRESSURE")]
    indexing_pressure: Option<String>,
    /// Most actions in one _bulk request (default 100000).
    #[arg(long, env = "CAIRN_MAX_BULK_ITEMS")]
    max_bulk_items: Option<usize>,
    /// Most values (object members and array elements) in one document (default 100000).
    #[arg(long, env = "CAIRN_MAX_DOCUMENT_FIELDS")]
    max_document_fields: Option<usize>,
    /// Longest string value in a document, e.g. 32mb (the default).
    #[arg(long, env = "CAIRN_MAX_STRING_SIZE")]
    max_string_size: Option<String>,
    /// Ingest pipeline time per document, e.g. 100ms (the default).
    #[arg(long, env = "CAIRN_INGEST_TIMEOUT")]
    ingest_timeout: Option<String>,
    /// How long a client may take to send request headers, e.g. 30s (the default).
    #[arg(long, env = "CAIRN_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<String>,
    /// Default timeout of searches that give none, e.g. 60s (the default), or off.
    #[arg(long, env = "CAIRN_SEARCH_TIMEOUT")]
    search_timeout: Option<String>,
    /// How long an admitted search or bulk request may take to send its body, e.g. 60s
    /// (the default).
    #[arg(long, env = "CAIRN_BODY_READ_TIMEOUT")]
    body_read_timeout: Option<String>,
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
    idle_writer_close: Option<String>,
    log_format: Option<String>,
    auth: Option<bool>,
    insecure: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    audit_log: Option<String>,
    max_concurrent_searches: Option<usize>,
    search_queue_size: Option<usize>,
    max_concurrent_bulk: Option<usize>,
    bulk_queue_size: Option<usize>,
    indexing_pressure: Option<String>,
    max_bulk_items: Option<usize>,
    max_document_fields: Option<usize>,
    max_string_size: Option<String>,
    ingest_timeout: Option<String>,
    header_read_timeout: Option<String>,
    search_timeout: Option<String>,
    body_read_timeout: Option<String>,
}

/// A size flag (`100mb`, `5mb`, `1gb`, plain bytes), shared by every subcommand.
pub(crate) fn parse_size(s: &str) -> Result<usize> {
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
    if let Some(v) = pick!(idle_writer_close) {
        sc.idle_writer_close = parse_dur(&v, "--idle-writer-close")?;
    }
    if let Some(v) = pick!(max_document_fields) {
        sc.doc_limits.max_fields = v;
    }
    if let Some(v) = pick!(max_string_size) {
        sc.doc_limits.max_string_bytes = parse_size(&v)?;
    }
    let mut server = ServerConfig {
        listen: listen.clone(),
        ..Default::default()
    };
    if let Some(v) = pick!(max_body_size) {
        server.max_body_bytes = parse_size(&v)?;
    }
    if let Some(v) = pick!(max_concurrent_searches) {
        server.max_concurrent_searches = v.max(1);
    }
    if let Some(v) = pick!(search_queue_size) {
        server.search_queue_size = v;
    }
    if let Some(v) = pick!(max_concurrent_bulk) {
        server.max_concurrent_bulk = v.max(1);
    }
    if let Some(v) = pick!(bulk_queue_size) {
        server.bulk_queue_size = v;
    }
    if let Some(v) = pick!(indexing_pressure) {
        server.indexing_pressure_bytes = parse_size(&v)?;
    }
    if let Some(v) = pick!(max_bulk_items) {
        server.max_bulk_items = v.max(1);
    }
    if let Some(v) = pick!(ingest_timeout) {
        server.ingest_timeout = parse_dur(&v, "--ingest-timeout")?;
    }
    if let Some(v) = pick!(header_read_timeout) {
        server.header_read_timeout = parse_dur(&v, "--header-read-timeout")?;
    }
    if let Some(v) = pick!(body_read_timeout) {
        server.body_read_timeout = parse_dur(&v, "--body-read-timeout")?;
    }
    if let Some(v) = pick!(search_timeout) {
        server.search_timeout = match v.as_str() {
            "off" | "-1" | "0" => None,
            _ => Some(parse_dur(&v, "--search-timeout")?),
        };
    }
    // Security: off only on loopback unless asked for; a non-loopback address needs
    // --auth, or --insecure to say that an open server is really wanted.
    let auth_on = args.auth || file.auth.unwrap_or(false);
    let insecure = args.insecure || file.insecure.unwrap_or(false);
    if !addr.ip().is_loopback() && !auth_on && !insecure {
        bail!(
            "refusing to listen on {addr} without authentication: anyone who can reach it could read and delete every log.\n\
             Set it up with:\n  \
             CAIRN_ADMIN_PASSWORD='a long password' cairn serve --auth --listen {addr}\n\
             (add --tls-cert/--tls-key for HTTPS; `cairn cert self-signed` makes a pair), or listen on 127.0.0.1.\n\
             To run without authentication anyway, add --insecure."
        );
    }
    if insecure && !auth_on && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "AUTHENTICATION IS OFF on a non-loopback address (--insecure): anyone who can reach this port can read, write and delete all data");
    }
    let tls_files = match (pick!(tls_cert), pick!(tls_key)) {
        (Some(c), Some(k)) => Some((c, k, pick!(tls_client_ca))),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together: give both or neither"),
    };
    let tls = match &tls_files {
        Some((cert, key, ca)) => Some(Arc::new(listener::tls_config(&listener::TlsFiles {
            cert,
            key,
            client_ca: ca.as_deref(),
        })?)),
        None => None,
    };
    // `index` needs the runtime (a background writer); it is made there.
    let audit_to_index = pick!(audit_log).as_deref() == Some("index");
    let audit = match pick!(audit_log).as_deref() {
        Some("off") | Some("index") => cairn_server::audit::Audit::off(),
        Some(path) => cairn_server::audit::Audit::to_file(std::path::Path::new(path))
            .with_context(|| format!("cannot open the audit log {path}"))?,
        None if auth_on => cairn_server::audit::Audit::to_file(&data_dir.join("audit.log"))
            .context("cannot open the audit log")?,
        None => cairn_server::audit::Audit::off(),
    };
    tracing::info!(data_dir = %data_dir.display(), listen = %listen, "opening the store");
    let store = Store::open(sc).context("cannot open the data directory")?;
    let security = bootstrap_security(&store, auth_on)?;
    let auth_config = cairn_server::auth::AuthConfig {
        enabled: auth_on,
        tls: tls.is_some(),
        ..Default::default()
    };
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
    let header_read_timeout = server.header_read_timeout;
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
            auth: cairn_server::auth::Auth::new(
                auth_config,
                security,
                if audit_to_index {
                    cairn_server::audit::Audit::to_index(store.clone())
                } else {
                    audit
                },
            ),
        });
        cairn_server::spawn_background(state.clone());
        let alert_engine =
            match cairn_server::alerting::start(state.clone(), args.rules_dir.clone()).await {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::error!(error = %e, "the alert engine could not start");
                    None
                }
            };
        let app = cairn_server::router(state);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(
            %addr,
            tls = tls.is_some(),
            auth = auth_on,
            "cairn is listening"
        );
        let served =
            listener::serve(listener, app, tls, header_read_timeout, shutdown_signal()).await;
        if let Some(e) = alert_engine {
            e.shutdown().await;
        }
        served
    });
    tracing::info!("shutting down: flushing partitions");
    store.shutdown();
    tracing::info!("stopped");
    result
}

/// Loads the identities from the metastore and, on a data dir without users, creates
/// the built-in `admin` from `CAIRN_ADMIN_PASSWORD` (or a generated password printed
/// once). Later starts ignore the variable and say so.
fn bootstrap_security(store: &Store, auth_on: bool) -> Result<cairn_server::auth::SecurityState> {
    use cairn_server::auth::{SecurityState, SECTION};
    let mut meta = store.meta();
    let mut st = SecurityState::load(
        meta.extensions
            .get(SECTION)
            .unwrap_or(&serde_json::Value::Null),
    )
    .map_err(|e| anyhow::anyhow!(e.reason))?;
    let env_pw = std::env::var("CAIRN_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if !st.users.is_empty() {
        if env_pw.is_some() {
            tracing::info!("CAIRN_ADMIN_PASSWORD is ignored: this data dir already has users (change passwords with `cairn users passwd`)");
        }
        return Ok(st);
    }
    if !auth_on && env_pw.is_none() {
        return Ok(st);
    }
    let (pw, generated) = match env_pw {
        Some(p) => (p, false),
        None => (cairn_server::auth::random_token(18), true),
    };
    st.put_user("admin", Some(&pw), vec!["admin".into()], None, 0)
        .map_err(|e| anyhow::anyhow!("CAIRN_ADMIN_PASSWORD: {}", e.reason))?;
    meta.extensions.insert(SECTION.into(), st.to_value());
    store
        .save_meta(&meta)
        .map_err(|e| anyhow::anyhow!(e.reason))?;
    if generated {
        eprintln!("\n  Cairn created the built-in user [admin] with the password:\n\n    {pw}\n\n  It is shown only this once. Change it with `cairn users passwd admin`.\n");
    } else {
        tracing::info!("created the built-in user [admin] from CAIRN_ADMIN_PASSWORD");
    }
    Ok(st)
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

/// mimalloc (v3, as built) keeps freed pages for a second before it gives them back to
/// the OS. Under bulk load that held ~150 MiB more resident: 256 MiB of JSON through four
/// clients peaked at 482 MiB RssAnon, and at 310-335 MiB with a 10 ms delay, for ~12%
/// more server CPU (bench/RESULTS.md). A `MIMALLOC_PURGE_DELAY` in the environment
/// still wins.
#[cfg(not(feature = "system-alloc"))]
fn tune_allocator() {
    // `mi_option_purge_delay` in mimalloc v3's option enum (the bindings name no
    // constant for it); changed only if it holds a default (10 ms in the header's
    // comment, 1000 ms as built; `MIMALLOC_VERBOSE=1` lists the options).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain reads and writes of mimalloc's option table, valid at any time.
    unsafe {
        if matches!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 10 | 1000) {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 10);
        }
    }
}

fn main() -> std::process::ExitCode {
    #[cfg(not(feature = "system-alloc"))]
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Query(args) => query::run(args),
        Command::Alert(args) => alert_cmd::run(args),
        Command::Import(args) => import::run(args),
        Command::Agent(args) => cairn_agent::cli::run(args).map_err(anyhow::Error::from),
        Command::Users { target, cmd } => security_cmd::users(target, cmd),
        Command::ApiKey { target, cmd } => security_cmd::api_keys(target, cmd),
        Command::Cert { cmd } => security_cmd::cert(cmd),
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
