//! Where the bytes of a partition go, by component and by field path.
//!
//! `cargo run --release -p cairn-store --example space -- PARTITION_DIR...`
use std::collections::BTreeMap;

use tantivy::columnar::ColumnarReader;
use tantivy::index::SegmentComponent;
use tantivy::Index;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut terms: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut cols: BTreeMap<String, u64> = BTreeMap::new();
    let mut comps: BTreeMap<String, u64> = BTreeMap::new();
    for dir in std::env::args().skip(1) {
        let index = Index::open_in_dir(&dir)?;
        let schema = index.schema();
        let searcher = index.reader()?.searcher();
        let usage = searcher.space_usage()?;
        for seg in usage.segments() {
            for (name, v) in [
                ("termdict", seg.termdict().total()),
                ("postings", seg.postings().total()),
                ("positions", seg.positions().total()),
                ("fast", seg.fast_fields().total()),
                ("fieldnorms", seg.fieldnorms().total()),
                ("store", seg.store().total()),
            ] {
                *comps.entry(name.into()).or_default() += v.get_bytes();
            }
            for fu in seg.termdict().fields() {
                *comps
                    .entry(format!("termdict {}", fu.field_name()))
                    .or_default() += fu.total().get_bytes();
            }
            for fu in seg.postings().fields() {
                *comps
                    .entry(format!("postings {}", fu.field_name()))
                    .or_default() += fu.total().get_bytes();
            }
        }
        for seg in index.searchable_segments()? {
            let reader = seg.open_read(SegmentComponent::FastFields)?;
            let columnar = ColumnarReader::open(reader)?;
            for (name, handle) in columnar.list_columns()? {
                let name = name.replace('\u{1}', ".").replace('\0', "");
                *cols.entry(name).or_default() += handle.num_bytes().get_bytes();
            }
        }
        for r in searcher.segment_readers() {
            for fname in ["kw", "text", "_id"] {
                let field = schema.get_field(fname)?;
                let inv = r.inverted_index(field)?;
                let mut s = inv.terms().stream()?;
                while s.advance() {
                    let k = s.key();
                    let path = match k.iter().position(|b| *b == 0) {
                        Some(p) if fname != "_id" => &k[..p],
                        _ => &b""[..],
                    };
                    let path = format!(
                        "{fname}:{}",
                        String::from_utf8_lossy(path).replace('\u{1}', ".")
                    );
                    let e = terms.entry(path).or_default();
                    e.0 += 1;
                    e.1 += k.len() as u64;
                    e.2 += s.value().doc_freq as u64;
                }
            }
        }
    }
    println!("== components");
    for (k, v) in &comps {
        println!("{k:40} {:>10.1} MiB", *v as f64 / 1048576.0);
    }
    println!("== fast columns (largest 25)");
    let mut c: Vec<_> = cols.into_iter().collect();
    c.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
    for (k, v) in c.iter().take(25) {
        println!("{k:40} {:>10.1} MiB", *v as f64 / 1048576.0);
    }
    println!("== terms by path (largest 25 by key bytes): terms, key MiB, postings entries");
    let mut t: Vec<_> = terms.into_iter().collect();
    t.sort_by_key(|(_, v)| std::cmp::Reverse(v.1));
    for (k, v) in t.iter().take(25) {
        println!(
            "{k:40} {:>10} {:>8.1} {:>10}",
            v.0,
            v.1 as f64 / 1048576.0,
            v.2
        );
    }
    Ok(())
}
