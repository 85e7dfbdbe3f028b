//! Parse a file and print one JSON event per line: `cargo run -p cairn-formats
//! --example parse -- FORMAT FILE`. For looking at parser output by hand.

use std::io::Write;

use cairn_formats::{parse_document_with, Format, ParseOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(format), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: parse FORMAT FILE");
        std::process::exit(2);
    };
    let format: Format = format.parse()?;
    let bytes = std::fs::read(&path)?;
    let opts = ParseOptions {
        reference_time: Some(1_700_000_000),
        ..Default::default()
    };
    let events = parse_document_with(format, &bytes, &opts)?;
    let mut out = std::io::stdout().lock();
    for e in events {
        writeln!(out, "{}", serde_json::to_string(&e)?)?;
    }
    Ok(())
}
