//! `cairn-bench summary DIR`: a markdown table from the `*.load.json` and
//! `*.disk.json` files that `run-ingest.sh` writes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

fn read(path: &Path) -> Result<Value> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&b).with_context(|| format!("parsing {}", path.display()))
}

fn f(v: &Value, k: &str, prec: usize) -> String {
    match v.get(k).and_then(Value::as_f64) {
        Some(x) => format!("{x:.prec$}"),
        None => "–".into(),
    }
}

fn mib(v: &Value, k: &str) -> String {
    match v.get(k).and_then(Value::as_f64) {
        Some(x) => format!("{:.0}", x / 1024.0),
        None => "–".into(),
    }
}

pub fn run(dir: &Path) -> Result<()> {
    // label -> (load, disk, disk-final)
    let mut rows: BTreeMap<String, [Option<Value>; 3]> = BTreeMap::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let slot = if let Some(l) = name.strip_suffix(".load.json") {
            Some((l.to_string(), 0))
        } else if let Some(l) = name.strip_suffix(".disk-final.json") {
            Some((l.to_string(), 2))
        } else {
            name.strip_suffix(".disk.json").map(|l| (l.to_string(), 1))
        };
        if let Some((label, i)) = slot {
            rows.entry(label).or_default()[i] = Some(read(&dir.join(&name))?);
        }
    }
    println!(
        "| run | raw | docs | MB/s raw | docs/s | errors | server cores | MB/s per server core | peak VmRSS MiB | peak RssAnon MiB | VmHWM MiB | disk/raw after flush | disk/raw after stop | searchable p50/p99/max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (label, [load, disk, fin]) in &rows {
        let null = Value::Null;
        let l = load.as_ref().unwrap_or(&null);
        let raw = l
            .get("raw_bytes")
            .or_else(|| disk.as_ref().and_then(|d| d.get("raw_bytes")))
            .and_then(Value::as_u64)
            .map(crate::util::human)
            .unwrap_or_else(|| "–".into());
        let errors = match (l.get("item_errors"), l.get("request_errors")) {
            (Some(a), Some(b)) => format!("{a}/{b}"),
            _ => "–".into(),
        };
        let per_core = match (
            l.get("raw_bytes").and_then(Value::as_f64),
            l.get("server_cpu_s").and_then(Value::as_f64),
        ) {
            (Some(r), Some(c)) if c > 0.0 => format!("{:.1}", r / 1e6 / c),
            _ => "–".into(),
        };
        let ratio = |d: &Option<Value>| {
            d.as_ref()
                .map(|d| f(d, "ratio", 3))
                .unwrap_or_else(|| "–".into())
        };
        let searchable = if l.get("searchable_ms_p50").is_some_and(|v| !v.is_null()) {
            format!(
                "{}/{}/{}",
                f(l, "searchable_ms_p50", 0),
                f(l, "searchable_ms_p99", 0),
                f(l, "searchable_ms_max", 0)
            )
        } else {
            "–".into()
        };
        println!(
            "| {label} | {raw} | {} | {} | {} | {errors} | {} | {per_core} | {} | {} | {} | {} | {} | {searchable} |",
            l.get("docs_ok").map(|v| v.to_string()).unwrap_or_else(|| "–".into()),
            f(l, "raw_mb_s", 1),
            f(l, "docs_s", 0),
            f(l, "server_cpu_cores_avg", 2),
            mib(l, "peak_vmrss_kib"),
            mib(l, "peak_rssanon_kib"),
            mib(l, "vmhwm_kib"),
            ratio(disk),
            ratio(fin),
        );
    }
    Ok(())
}
