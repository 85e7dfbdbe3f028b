//! Fuzz target: CRI and Docker json-file lines with partial-line joining.
#![no_main]

use cairn_formats::{parse_document, Format, LineParser, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Cri, Format::Docker] {
        let mut p = LineParser::new(format, ParseOptions::default());
        for line in data.split(|&b| b == b'\n') {
            let _ = p.parse_line(line);
        }
        let _ = p.finish();
        let _ = parse_document(format, data);
    }
});
