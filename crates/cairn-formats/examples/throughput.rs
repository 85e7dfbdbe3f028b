//! Throughput per format: repeats a sample to ~200 MB and times `LineParser`, once
//! producing nested events and once producing each event's JSON text.
//! `cargo run --release -p cairn-formats --example throughput [-- MB [FORMAT...]]`
//! (FORMAT names as in `--format`, e.g. `aws-alb json`; default: all of them;
//! `OUTPUT=event` or `OUTPUT=json` times one output only).

use std::time::Instant;

// The shipping binaries (`cairn` server and `cairn import`) run on mimalloc, so the
// parsers are measured on it too; most of a parser's cost is allocating the event's
// keys and strings, and glibc's malloc/free alone took ~40% of the instructions here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cairn_formats::{Format, LineOutcome, LineParser, ParseOptions};

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`, Linux):
/// on a shared, busy machine wall time also counts the time other processes held the
/// core, so MB per CPU-second is the per-core figure. `None` elsewhere.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn sample(rel: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn main() {
    let target_mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let only: Vec<String> = std::env::args().skip(2).collect();
    let cases: Vec<(Format, Vec<u8>)> = vec![
        (Format::AwsAlb, sample("aws/albaccesslog.log")),
        (Format::AwsS3Access, sample("aws/s3accesslog.log")),
        (Format::AwsCloudfront, sample("aws/cloudfront.log")),
        (Format::AwsVpcflow, sample("aws/vpcflowlog.log")),
        (Format::NginxAccess, sample("web/elastic-examples_apache_logs_2k.log")),
        (Format::Json, sample("web/nginxplus_json_50.ndjson")),
        (Format::Cri, sample("containers/pod_cri.log")),
        (Format::Syslog, b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 [exampleSDID@32473 iut=\"3\"] 'su root' failed for lonvick on /dev/pts/8\n<13>Feb  5 17:32:18 10.0.0.99 myapp[1234]: Use the BFG!\n".to_vec()),
    ];
    println!(
        "{:<16} {:<6} {:>9} {:>10} {:>9} {:>12}",
        "format", "output", "MB", "lines/s", "MB/s", "MB/cpu-s"
    );
    for (format, data) in cases {
        if !only.is_empty() && !only.iter().any(|n| n == format.name()) {
            continue;
        }
        // Keep the header lines (CloudFront/VPC) once, then repeat the records.
        let mut header = Vec::new();
        let mut body = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            let t = line.trim_ascii_start();
            if t.starts_with(b"#") || t.starts_with(b"version ") {
                header.extend_from_slice(line);
            } else {
                body.extend_from_slice(line);
            }
        }
        if !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        let reps = (target_mb << 20) / body.len().max(1) + 1;
        let mut buf = header.clone();
        buf.reserve(body.len() * reps);
        for _ in 0..reps {
            buf.extend_from_slice(&body);
        }
        for output in [Output::Event, Output::Json] {
            if std::env::var("OUTPUT").is_ok_and(|o| o != output.name()) {
                continue;
            }
            let mut p = LineParser::new(format, ParseOptions::default());
            let mut text = Vec::with_capacity(4096);
            let cpu_start = thread_cpu_secs();
            let start = Instant::now();
            let mut events = 0u64;
            for line in buf.split(|&b| b == b'\n') {
                match output {
                    Output::Event => {
                        let out = p.parse_line(line);
                        if let LineOutcome::Event(_) | LineOutcome::Events(_) = out {
                            events += out.into_events().len() as u64;
                        }
                    }
                    Output::Json => {
                        for e in p.parse_line_fields(line).into_events() {
                            text.clear();
                            e.write_json(&mut text);
                            std::hint::black_box(&text);
                            events += 1;
                        }
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let cpu = match (cpu_start, thread_cpu_secs()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => secs,
            };
            let mb = buf.len() as f64 / (1 << 20) as f64;
            let st = p.stats();
            assert_eq!(st.failed, 0, "{format}: failures in benchmark data");
            println!(
                "{:<16} {:<6} {:>9.1} {:>10.0} {:>9.1} {:>12.1}",
                format.name(),
                output.name(),
                mb,
                events as f64 / secs,
                mb / secs,
                mb / cpu
            );
        }
    }
}

/// What each line is turned into: the nested event map (`parse_line`, what ingest
/// pipelines and the agent's transforms take), or the event's JSON text straight from
/// the parser's fields (`parse_line_fields` + `write_json`, what `cairn import` sends).
#[derive(Clone, Copy)]
enum Output {
    Event,
    Json,
}

impl Output {
    fn name(self) -> &'static str {
        match self {
            Output::Event => "event",
            Output::Json => "json",
        }
    }
}
