//! Fuzz target: nginx/Apache access and error logs, IIS.
#![no_main]

use cairn_formats::{parse_document, Format, LineParser, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::NginxAccess, Format::ApacheAccess, Format::NginxError, Format::ApacheError, Format::Iis] {
        let mut p = LineParser::new(format, ParseOptions::default());
        for line in data.split(|&b| b == b'\n') {
            let _ = p.parse_line(line);
        }
        let _ = p.finish();
        let _ = parse_document(format, data);
    }
});
