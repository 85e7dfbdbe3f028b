//! Fuzz target: multiline joiner (all built-in rules), sniffing and S3 key parsing.
#![no_main]

use cairn_formats::{aws_key, sniff, MultilineConfig, MultilineJoiner, MultilineRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for rule in [
        MultilineRule::Java,
        MultilineRule::Python,
        MultilineRule::Go,
        MultilineRule::Ruby,
        MultilineRule::Node,
    ] {
        let mut cfg = MultilineConfig::new(rule);
        cfg.max_lines = 7;
        cfg.max_bytes = 256;
        let mut j = MultilineJoiner::new(cfg);
        for (i, line) in text.lines().enumerate() {
            let _ = j.push(line, i as u64 * 300);
            let _ = j.flush_expired(i as u64 * 300 + 100);
        }
        let _ = j.flush();
    }
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let _ = sniff(Some(&text), &lines);
    let _ = aws_key::parse_key(&text);
});
