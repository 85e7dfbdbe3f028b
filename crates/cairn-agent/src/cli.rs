//! The `cairn agent` subcommand's arguments and entry point (kept here so the binary's
//! `main.rs` only names it).

use std::path::PathBuf;

use crate::AgentError;

/// `cairn agent --config agent.yaml [--check-config]`
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The agent's YAML configuration.
    #[arg(long, env = "CAIRN_AGENT_CONFIG")]
    pub config: PathBuf,
    /// Validate the configuration, print a summary and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Log format on stderr: text or json.
    #[arg(long, env = "CAIRN_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// Runs the subcommand.
pub fn run(args: AgentArgs) -> Result<(), AgentError> {
    if args.check_config {
        println!("{}", crate::check_config(&args.config)?);
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A subscriber already installed (embedding) is fine: keep it.
    let _ = if args.log_format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
    tracing::info!(config = %args.config.display(), "cairn agent starting");
    crate::run(&args.config)
}
