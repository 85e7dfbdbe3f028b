//! `cairn-bench disk`: bytes a data directory takes, against the raw input size.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::util::human;

#[derive(Serialize, Default, Debug)]
pub struct DiskReport {
    pub data_dir: String,
    pub raw_bytes: u64,
    /// Sum of file lengths.
    pub bytes: u64,
    /// Sum of allocated blocks (what `du` shows).
    pub allocated_bytes: u64,
    pub files: u64,
    pub ratio: f64,
    /// Bytes by file extension (tantivy components: store, idx, term, fast, pos, ...).
    pub by_extension: BTreeMap<String, u64>,
    /// Bytes by top-level entry of the data directory.
    pub by_top_dir: BTreeMap<String, u64>,
}

fn walk(dir: &Path, top: Option<&str>, r: &mut DiskReport) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let md = e.metadata()?;
        let name = e.file_name().to_string_lossy().into_owned();
        let top_name = top.unwrap_or(&name).to_string();
        if md.is_dir() {
            walk(&e.path(), Some(&top_name), r)?;
        } else if md.is_file() {
            let len = md.len();
            r.bytes += len;
            r.allocated_bytes += md.blocks() * 512;
            r.files += 1;
            let ext = match name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => ext.to_string(),
                _ => "(none)".to_string(),
            };
            *r.by_extension.entry(ext).or_default() += len;
            *r.by_top_dir.entry(top_name).or_default() += len;
        }
    }
    Ok(())
}

pub fn measure(dir: &Path, raw_bytes: u64) -> Result<DiskReport> {
    let mut r = DiskReport {
        data_dir: dir.display().to_string(),
        raw_bytes,
        ..Default::default()
    };
    walk(dir, None, &mut r)?;
    r.ratio = if raw_bytes > 0 {
        r.bytes as f64 / raw_bytes as f64
    } else {
        f64::NAN
    };
    Ok(r)
}

pub fn print_report(r: &DiskReport) {
    println!("== disk: {} ==", r.data_dir);
    println!(
        "on disk {} bytes ({}), allocated {} ({}), {} files",
        r.bytes,
        human(r.bytes),
        r.allocated_bytes,
        human(r.allocated_bytes),
        r.files
    );
    println!(
        "raw {} bytes ({}); ratio on-disk/raw = {:.4}",
        r.raw_bytes,
        human(r.raw_bytes),
        r.ratio
    );
    let mut exts: Vec<_> = r.by_extension.iter().collect();
    exts.sort_by(|a, b| b.1.cmp(a.1));
    let parts: Vec<String> = exts
        .iter()
        .map(|(e, b)| {
            format!(
                ".{e} {} ({:.4} of raw)",
                human(**b),
                **b as f64 / r.raw_bytes.max(1) as f64
            )
        })
        .collect();
    println!("by extension: {}", parts.join(", "));
    let tops: Vec<String> = r
        .by_top_dir
        .iter()
        .map(|(d, b)| format!("{d} {}", human(*b)))
        .collect();
    println!("by top-level entry: {}", tops.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_recursively() {
        let d = std::env::temp_dir().join(format!("cairn-bench-disk-{}", std::process::id()));
        std::fs::create_dir_all(d.join("idx/part")).unwrap();
        std::fs::write(d.join("idx/part/a.store"), vec![0u8; 100]).unwrap();
        std::fs::write(d.join("idx/part/b.idx"), vec![0u8; 50]).unwrap();
        std::fs::write(d.join("meta"), vec![0u8; 10]).unwrap();
        let r = measure(&d, 1000).unwrap();
        assert_eq!(r.bytes, 160);
        assert_eq!(r.files, 3);
        assert!((r.ratio - 0.16).abs() < 1e-9);
        assert_eq!(r.by_extension["store"], 100);
        assert_eq!(r.by_extension["(none)"], 10);
        assert_eq!(r.by_top_dir["idx"], 150);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
