//! `cairn alert test RULE.yaml`: validate a rule and dry-run it over stored data, like
//! ElastAlert's `elastalert-test-rule`, against any Elasticsearch-compatible server.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cairn_alert::alerters;
use cairn_alert::backend::{Es, HttpAuth, HttpBackend};
use cairn_alert::config::Globals;
use cairn_alert::value::iso;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Args, Debug)]
pub struct AlertArgs {
    #[command(subcommand)]
    cmd: AlertCmd,
}

#[derive(Subcommand, Debug)]
enum AlertCmd {
    /// Validate a rule, count its hits, and print the alerts it would send.
    Test(TestArgs),
}

#[derive(Args, Debug)]
struct TestArgs {
    /// The rule file (ElastAlert YAML).
    rule: PathBuf,
    /// Elasticsearch-compatible server to query.
    #[arg(long, env = "CAIRN_URL", default_value = "http://127.0.0.1:9200")]
    server: String,
    /// User for basic authentication.
    #[arg(long, env = "CAIRN_USER")]
    user: Option<String>,
    /// Password for basic authentication.
    #[arg(long, env = "CAIRN_PASSWORD")]
    password: Option<String>,
    /// API key (the base64 `id:key` form Elasticsearch uses).
    #[arg(long, env = "CAIRN_API_KEY")]
    api_key: Option<String>,
    /// Run over the last N days (default 1).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    days: Option<f64>,
    /// Start of the period (ISO 8601).
    #[arg(long)]
    start: Option<String>,
    /// End of the period (ISO 8601; default now).
    #[arg(long)]
    end: Option<String>,
    /// Really send the alerts through the rule's alerters.
    #[arg(long)]
    alert: bool,
    /// Output: text or json.
    #[arg(long, default_value = "text")]
    format: String,
    /// ElastAlert global config file (run_every, buffer_time, alerter defaults...).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: AlertArgs) -> Result<()> {
    match args.cmd {
        AlertCmd::Test(t) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(test(t))
        }
    }
}

async fn test(a: TestArgs) -> Result<()> {
    let globals = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Globals::from_value(&cairn_core::yaml::parse(&text)?)?
        }
        None => Globals::default(),
    };
    let rule = match cairn_alert::config::load_file(&a.rule, &globals) {
        Ok(r) => r,
        Err(e) => {
            if a.format == "json" {
                println!("{}", json!({"valid": false, "error": e.to_string()}));
            }
            bail!("invalid rule {}: {e}", a.rule.display());
        }
    };
    let now = cairn_core::time::now_micros();
    let end = match &a.end {
        Some(s) => {
            cairn_core::time::parse_default(s).with_context(|| format!("invalid --end [{s}]"))?
        }
        None => now,
    };
    let start = match (&a.start, a.days) {
        (Some(s), _) => {
            cairn_core::time::parse_default(s).with_context(|| format!("invalid --start [{s}]"))?
        }
        (None, days) => end - (days.unwrap_or(1.0) * 86_400e6) as i64,
    };
    if start >= end {
        bail!("the start of the period must be before its end");
    }
    let auth = match (&a.api_key, &a.user) {
        (Some(k), _) => HttpAuth::ApiKey(k.clone()),
        (None, Some(u)) => HttpAuth::Basic {
            user: u.clone(),
            password: a.password.clone().unwrap_or_default(),
        },
        _ => HttpAuth::None,
    };
    let backend = HttpBackend::new(&a.server, auth)?;
    let es = Es::new(&backend, "admin");
    let run = cairn_alert::preview::dry_run(es, &rule, start, end).await?;
    let drafts = &run.alerts;
    let mut sent = Vec::new();
    if a.alert {
        let client = alerters::http_client()?;
        let names = if rule.alerters.is_empty() {
            vec!["debug".to_string()]
        } else {
            rule.alerters.clone()
        };
        for d in drafts {
            for n in &names {
                let r = alerters::send(n, &rule, d, &client).await;
                sent.push(json!({"alert": d.id, "alerter": n, "ok": r.is_ok(), "error": r.err().map(|e| e.to_string())}));
            }
        }
    }

    if a.format == "json" {
        let mut out = run.to_json(&rule);
        out["sent"] = json!(sent);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("Rule {} ({}) is valid.", rule.name, rule.kind.name());
        println!(
            "Got {} hits from {} to {} in {}",
            run.hits,
            iso(start),
            iso(end),
            run.index
        );
        if !run.fields.is_empty() {
            println!("\nFields of a sample hit:");
            for f in &run.fields {
                println!("  {f}");
            }
        }
        for w in &run.warnings {
            println!("\nWARNING: {w}");
        }
        println!(
            "\n{} matches, {} alerts would be sent{}",
            run.matches,
            drafts.len(),
            if a.alert { " (sending them)" } else { "" }
        );
        for d in drafts {
            println!("\n=== {} [{}]\n{}", d.subject, d.id, d.body);
        }
        for s in &sent {
            println!("{s}");
        }
    }
    Ok(())
}
