//! The `_bulk` NDJSON reader: arbitrary bytes as a request body, then each document as
//! the store parses and checks it. Any panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_server::fuzzing::bulk(data);
});
