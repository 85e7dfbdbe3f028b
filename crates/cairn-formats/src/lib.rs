//! `cairn-formats`: Cairn's log parsers. Pure: bytes in, ECS-shaped JSON events out. No
//! I/O, no clock, no async; every input is accepted without panicking.
//!
//! # Formats
//!
//! [`Format`] names (for configs and `--format`): `aws-alb`, `aws-nlb`, `aws-clb`,
//! `aws-s3access`, `aws-cloudfront`, `aws-cloudfront-realtime`, `aws-vpcflow`,
//! `aws-cloudtrail`, `aws-waf`, `nginx-access`, `apache-access`, `apache-error`,
//! `nginx-error`, `iis`, `json`, `logfmt`, `syslog`, `cri`, `docker`, `auto`.
//!
//! # Events
//!
//! An [`Event`] is a JSON object with **nested** objects in Elastic Common Schema layout
//! (`{"source":{"ip":"1.2.3.4","port":80}}`), `@timestamp` as RFC 3339 UTC with at least
//! millisecond precision (finer when the source is finer). A `-` in a log means "absent":
//! no field is written. What each parser emits:
//!
//! * `aws-alb`, `aws-nlb`, `aws-clb` (`event.dataset: aws.elb`): `source.*`,
//!   `http.*`, `url.*` (derived from the request URL), `user_agent.original`, `tls.*`,
//!   `trace.id`, `destination.domain`, `event.start`/`event.end`/`event.outcome`,
//!   `cloud.region`/`cloud.account.id` (from the target group ARN), and `aws.elb.*`
//!   for the rest (timings in `*.sec`, `-1` sentinels dropped).
//! * `aws-s3access` (`aws.s3access`): every field under `aws.s3access.*` plus
//!   `client.*`, `http.*`, `url.*`, `event.id/action/code/outcome/duration`, `tls.*`,
//!   `cloud.region` (from the host header).
//! * `aws-cloudfront`, `aws-cloudfront-realtime` (`aws.cloudfront_logs`): columns mapped
//!   by name (the `#Fields:` header, or [`ParseOptions::cloudfront_realtime_fields`]);
//!   `source.*`, `http.*`, `url.path/query/full`, `user_agent.original` (decoded once),
//!   `tls.*`, `network.*`, `event.duration` (ns), the rest under `aws.cloudfront.*`.
//! * `aws-vpcflow` (`aws.vpcflow`): default v2 records, or custom formats from the S3
//!   header line or [`ParseOptions::vpcflow_fields`]; `source.*`, `destination.*`,
//!   `network.*`, `event.start/end/action/outcome/type`, `cloud.*`, `aws.vpcflow.*`.
//! * `aws-cloudtrail` (`aws.cloudtrail`): one event per record ([`parse_document`] for
//!   `{"Records":[…]}` objects); `event.action/provider/id/outcome`, `user.*`,
//!   `source.*`, `cloud.*`, `aws.cloudtrail.*` (request/response as JSON text plus
//!   `aws.cloudtrail.flattened.*` objects).
//! * `aws-waf` (`aws.waf`): `source.*`, `http.*`, `url.*`, `rule.id`, `event.action`,
//!   `aws.waf.*`.
//! * `nginx-access`, `apache-access` (combined, common, vhost-prefixed, forwarded
//!   lists, Apache `ssl_request_log`), `nginx-error`, `apache-error`, `iis`: ECS
//!   `source`, `http`, `url`, `user_agent`, `log.level`, `process.*`, `message`.
//! * `json`: the object as sent (nested objects and dotted keys untouched), plus
//!   `@timestamp` from `timestamp`/`time`/`ts`/`@t`/`datetime` when absent.
//! * `logfmt`: the pairs as flat string fields (bare keys are `true`), `@timestamp` as
//!   for JSON.
//! * `syslog`: RFC 5424 and RFC 3164 (with or without `<PRI>`): `log.syslog.*`,
//!   `host.hostname`, `process.name/pid`, `message`.
//! * `cri`, `docker`: `@timestamp`, `stream`, `message`, with partial lines joined
//!   ([`container::PartialJoiner`]).
//!
//! A line that does not parse is **never dropped**: it becomes an event with `message`
//! (the line), `error.message` (what failed) and `tags: ["_parse_failure"]`.
//!
//! Two outputs: [`LineParser::parse_line`] gives the nested [`Event`] map (what ingest
//! pipelines and the agent's transforms work on); [`LineParser::parse_line_fields`] gives
//! a [`ParsedEvent`], the parser's own flat (path, value) list, whose
//! [`ParsedEvent::write_json`] writes the same JSON text without building any map.
//! Building the nested maps was two thirds of a text-format line's cost, so callers
//! that only add a few fields and send JSON (`cairn import`) take the second.
//!
//! Also here: the [`multiline`] joiner for stack traces, [`sniff`] for `auto`, and
//! [`aws_key`] for S3 key layouts and deterministic document ids.

pub mod aws;
pub mod aws_key;
pub mod container;
pub mod format;
pub mod multiline;
mod sniff;
mod structured;
mod syslog;
mod time;
mod util;
mod web;

use std::borrow::Cow;

use serde_json::Value;

pub use crate::format::Format;
pub use crate::multiline::{MultilineConfig, MultilineJoiner, MultilineRule};
pub use crate::sniff::sniff;
pub use crate::util::{get_path, Fields};
pub use crate::web::IIS_DEFAULT_FIELDS;

use crate::aws::cloudfront::{self, CfLayout};
use crate::container::{ContainerLine, PartialJoiner};

/// A parsed log record: a JSON object with nested ECS-style fields.
pub type Event = serde_json::Map<String, Value>;

/// Errors of this crate's fallible APIs (line parsing never fails: see [`LineOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("unknown format `{name}`; valid formats: {valid}")]
    UnknownFormat { name: String, valid: String },
    #[error("invalid JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid {format} document: {reason}")]
    Document { format: Format, reason: String },
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Parser settings. Build with `ParseOptions { keep_original: true, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Copy the raw line into `event.original`.
    pub keep_original: bool,
    /// CloudFront real-time: the configured field list (names as in AWS's docs, e.g.
    /// `timestamp`, `c-ip`, `sc-status`). `None`: all fields in AWS's order.
    pub cloudfront_realtime_fields: Option<Vec<String>>,
    /// VPC flow logs without a header line (CloudWatch Logs delivery): the custom
    /// format's fields (`${srcaddr}` or `srcaddr`). `None`: the default v2 format.
    pub vpcflow_fields: Option<Vec<String>>,
    /// The caller's "now" in epoch seconds, used to give RFC 3164 syslog lines (which
    /// have no year) a year. `None`: such lines get no `@timestamp`.
    pub reference_time: Option<i64>,
    /// Offset east of UTC, in seconds, for local times written without a zone (nginx and
    /// Apache error logs, RFC 3164 syslog, JSON/logfmt times). AWS formats are always UTC.
    pub local_offset_secs: i32,
    /// CRI/docker: a line joined from partial pieces is cut at this size.
    pub max_partial_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            keep_original: false,
            cloudfront_realtime_fields: None,
            vpcflow_fields: None,
            reference_time: None,
            local_offset_secs: 0,
            max_partial_bytes: 1 << 20,
        }
    }
}

/// Why a line produced no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Empty or all-whitespace line.
    Blank,
    /// W3C `#Version:`/`#Fields:`/`#…` line or VPC header line (a `#Fields:` or VPC header
    /// sets the column order for following lines).
    Header,
    /// `Enable AccessLog for ELB: …` test line.
    ElbTestLine,
    /// CRI `P` piece or docker piece without `\n`: buffered until the final piece.
    Partial,
}

/// Result of [`LineParser::parse_line`] (events as maps) and
/// [`LineParser::parse_line_fields`] (events as [`ParsedEvent`]s).
#[derive(Debug, Clone, PartialEq)]
pub enum LineOutcome<E = Event> {
    Event(E),
    /// Several events from one line: only a CloudTrail `{"Records":[…]}` object on one line.
    Events(Vec<E>),
    Skipped(SkipReason),
}

impl<E> LineOutcome<E> {
    /// The events (none for a skipped line).
    pub fn into_events(self) -> Vec<E> {
        match self {
            LineOutcome::Event(e) => vec![e],
            LineOutcome::Events(v) => v,
            LineOutcome::Skipped(_) => Vec::new(),
        }
    }

    /// The same outcome with each event converted.
    pub fn map<F>(self, mut f: impl FnMut(E) -> F) -> LineOutcome<F> {
        match self {
            LineOutcome::Event(e) => LineOutcome::Event(f(e)),
            LineOutcome::Events(v) => LineOutcome::Events(v.into_iter().map(f).collect()),
            LineOutcome::Skipped(r) => LineOutcome::Skipped(r),
        }
    }
}

/// An event as its parser produced it: the text formats' flat (path, value) list, or
/// the object the JSON-shaped formats (JSON lines, logfmt, CloudTrail, container lines,
/// `_parse_failure` events) build directly. Callers that only add a few fields and send
/// the event as JSON text (`cairn import`) use [`ParsedEvent::write_json`] and never pay
/// for building nested maps (two thirds of an ALB line's parse cost); callers that
/// transform events take [`ParsedEvent::into_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedEvent {
    Fields(Fields),
    Object(Event),
}

impl ParsedEvent {
    /// The value at a dotted path (`"event.dataset"`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        match self {
            ParsedEvent::Fields(f) => f.get(path),
            ParsedEvent::Object(o) => get_path(o, path),
        }
    }

    /// Set a dotted path, replacing what was there.
    pub fn set(&mut self, path: &'static str, v: Value) {
        match self {
            ParsedEvent::Fields(f) => f.set(path, v),
            ParsedEvent::Object(o) => util::insert_path(o, path, v),
        }
    }

    /// Set a dotted path unless it holds a value.
    pub fn set_if_absent(&mut self, path: &'static str, v: Value) {
        if self.get(path).is_none() {
            self.set(path, v);
        }
    }

    /// A `_parse_failure` event.
    pub fn is_failure(&self) -> bool {
        failure_tags(self.get("tags"))
    }

    /// The nested event.
    pub fn into_event(self) -> Event {
        match self {
            ParsedEvent::Fields(f) => f.build(),
            ParsedEvent::Object(o) => o,
        }
    }

    /// Append the event's JSON object to `out` (the text `serde_json` writes for
    /// [`ParsedEvent::into_event`]'s map).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            ParsedEvent::Fields(f) => f.write_json(out),
            ParsedEvent::Object(o) => util::write_json_object(out, o),
        }
    }
}

/// Line counters of a [`LineParser`] (each input line counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines that produced parsed events.
    pub parsed: u64,
    /// Lines that produced `_parse_failure` events.
    pub failed: u64,
    /// Lines skipped (blank, header, test, partial).
    pub skipped: u64,
}

/// A stateful line parser for one stream (file / S3 object): remembers W3C and VPC
/// headers, the format chosen by `auto`, and container partial lines.
#[derive(Debug)]
pub struct LineParser {
    requested: Format,
    format: Format,
    opts: ParseOptions,
    stats: ParseStats,
    cf_layout: Option<CfLayout>,
    iis_fields: Option<Vec<String>>,
    vpc_fields: Option<Vec<String>>,
    joiner: PartialJoiner,
}

/// Strip one trailing `\n` and one trailing `\r`.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The event for a line that did not parse.
pub fn failure_event(line: &str, reason: &str, format: Format) -> Event {
    let mut ev = Event::new();
    ev.insert("message".into(), Value::String(line.to_owned()));
    let mut err = serde_json::Map::new();
    err.insert(
        "message".into(),
        Value::String(format!("{format}: {reason}")),
    );
    ev.insert("error".into(), Value::Object(err));
    ev.insert("tags".into(), Value::Array(vec!["_parse_failure".into()]));
    ev
}

impl LineParser {
    pub fn new(format: Format, opts: ParseOptions) -> Self {
        let vpc_fields = opts.vpcflow_fields.as_ref().map(|f| {
            f.iter()
                .map(|n| aws::vpcflow::clean_name(n.trim()).to_owned())
                .collect()
        });
        let joiner = PartialJoiner::new(opts.max_partial_bytes);
        LineParser {
            requested: format,
            format,
            opts,
            stats: ParseStats::default(),
            cf_layout: None,
            iis_fields: None,
            vpc_fields,
            joiner,
        }
    }

    /// The format in use (for `auto`: the one detected, `auto` until decided).
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// Parse one line (a trailing LF and CR are removed; bytes are decoded as UTF-8
    /// lossily). Never panics, never drops a line.
    pub fn parse_line(&mut self, line: &[u8]) -> LineOutcome {
        self.parse_line_fields(line).map(ParsedEvent::into_event)
    }

    /// [`LineParser::parse_line`] without building the nested maps: for callers that
    /// send the events as JSON text ([`ParsedEvent::write_json`]).
    pub fn parse_line_fields(&mut self, line: &[u8]) -> LineOutcome<ParsedEvent> {
        let line = strip_eol(line);
        // `from_utf8` validates ASCII runs a word at a time; `from_utf8_lossy` walks
        // chunk by chunk and cost ~3% of a line. Invalid lines still decode lossily.
        let text = match std::str::from_utf8(line) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(line),
        };
        let out = self.parse_text(&text);
        match &out {
            LineOutcome::Skipped(_) => self.stats.skipped += 1,
            LineOutcome::Event(e) => self.count(e),
            LineOutcome::Events(v) => {
                for e in v {
                    self.count(e);
                }
            }
        }
        out
    }

    fn count(&mut self, e: &ParsedEvent) {
        if e.is_failure() {
            self.stats.failed += 1;
        } else {
            self.stats.parsed += 1;
        }
    }

    /// End of input: lines still waiting for a final CRI/docker piece, as events (their
    /// pieces were already counted as skipped lines).
    pub fn finish(&mut self) -> Vec<Event> {
        self.joiner
            .flush()
            .into_iter()
            .map(ContainerLine::into_event)
            .collect()
    }

    fn parse_text(&mut self, text: &str) -> LineOutcome<ParsedEvent> {
        if text.trim().is_empty() {
            return LineOutcome::Skipped(SkipReason::Blank);
        }
        if self.format == Format::Auto {
            let detected = sniff(None, &[text.as_bytes()]);
            if detected == Format::Auto {
                if text.starts_with('#') {
                    return LineOutcome::Skipped(SkipReason::Header);
                }
                let mut ev = Event::new();
                ev.insert("message".into(), Value::String(text.to_owned()));
                return LineOutcome::Event(ParsedEvent::Object(ev));
            }
            self.format = detected;
        }
        let format = self.format;
        // Control lines.
        match format {
            Format::AwsAlb | Format::AwsNlb | Format::AwsClb
                if text.starts_with("Enable AccessLog for ELB:") =>
            {
                return LineOutcome::Skipped(SkipReason::ElbTestLine);
            }
            Format::AwsCloudfront | Format::Iis if text.starts_with('#') => {
                if let Some(fields) = cloudfront::fields_header(text) {
                    if format == Format::Iis {
                        self.iis_fields = Some(fields);
                    } else {
                        self.cf_layout = Some(CfLayout::new(&fields, false));
                    }
                }
                return LineOutcome::Skipped(SkipReason::Header);
            }
            Format::AwsVpcflow => {
                if let Some(h) = aws::vpcflow::header(text) {
                    self.vpc_fields = Some(h);
                    return LineOutcome::Skipped(SkipReason::Header);
                }
            }
            _ => {}
        }
        // AWS text formats: trailing spaces/TABs are not data (CloudFront keeps TABs:
        // an empty last column is dropped by the parser).
        let body: &str = match format {
            Format::AwsCloudfront | Format::AwsCloudfrontRealtime => text.trim_end_matches(' '),
            Format::AwsAlb
            | Format::AwsNlb
            | Format::AwsClb
            | Format::AwsS3Access
            | Format::AwsVpcflow => text.trim_end_matches([' ', '\t']),
            _ => text,
        };
        let keep = self.opts.keep_original;
        // Formats whose parsers build the event object themselves.
        let direct = match format {
            Format::Json => Some(structured::parse_json(text, self.opts.local_offset_secs)),
            Format::Logfmt => Some(structured::parse_logfmt(text, self.opts.local_offset_secs)),
            _ => None,
        };
        if let Some(r) = direct {
            return LineOutcome::Event(ParsedEvent::Object(match r {
                Ok(mut e) => {
                    if keep && !e.contains_key("event") {
                        let mut o = serde_json::Map::new();
                        o.insert("original".into(), Value::String(text.to_owned()));
                        e.insert("event".into(), Value::Object(o));
                    }
                    e
                }
                Err(reason) => failure_event(text, &reason, format),
            }));
        }
        let mut ev = util::Fields::new();
        let res: Result<(), String> = match format {
            Format::AwsAlb => aws::elb::parse_alb(body, &mut ev),
            Format::AwsNlb => aws::elb::parse_nlb(body, &mut ev),
            Format::AwsClb => aws::elb::parse_clb(body, &mut ev),
            Format::AwsS3Access => aws::s3access::parse_s3access(body, &mut ev),
            Format::AwsCloudfront => {
                let layout = self
                    .cf_layout
                    .get_or_insert_with(CfLayout::standard_default);
                layout.parse(body, &mut ev)
            }
            Format::AwsCloudfrontRealtime => {
                if self.cf_layout.is_none() {
                    self.cf_layout = Some(match &self.opts.cloudfront_realtime_fields {
                        Some(f) => CfLayout::new(f, true),
                        None => CfLayout::realtime_default(),
                    });
                }
                match &self.cf_layout {
                    Some(layout) => layout.parse(body, &mut ev),
                    None => Err("no field layout".into()),
                }
            }
            Format::AwsVpcflow => {
                aws::vpcflow::parse_vpcflow(body, self.vpc_fields.as_deref(), &mut ev)
            }
            Format::AwsCloudtrail => return self.cloudtrail_line(text).map(ParsedEvent::Object),
            Format::AwsWaf => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => aws::records::map_waf(m, &mut ev),
                Ok(_) => Err("WAF line is not a JSON object".into()),
                Err(e) => Err(format!("invalid JSON: {e}")),
            },
            Format::NginxAccess => web::parse_access(text, &mut ev, "nginx.access"),
            Format::ApacheAccess => web::parse_access(text, &mut ev, "apache.access"),
            Format::NginxError => {
                web::parse_nginx_error(text, &mut ev, self.opts.local_offset_secs)
            }
            Format::ApacheError => {
                web::parse_apache_error(text, &mut ev, self.opts.local_offset_secs)
            }
            Format::Iis => match web::iis_layout(text, self.iis_fields.as_deref()) {
                web::IisLayout::Header(f) => web::parse_iis(text, f, &mut ev),
                web::IisLayout::Known(f) => web::parse_iis(text, f, &mut ev),
            },
            Format::Json | Format::Logfmt => Err("unreachable: handled above".into()),
            Format::Syslog => {
                let ctx = syslog::SyslogCtx {
                    reference_time: self.opts.reference_time,
                    offset: self.opts.local_offset_secs,
                };
                syslog::parse_syslog(text, &mut ev, &ctx)
            }
            Format::Cri | Format::Docker => {
                let piece = if format == Format::Cri {
                    container::parse_cri_piece(text)
                } else {
                    container::parse_docker_piece(text)
                };
                match piece {
                    Ok(p) => {
                        return match self.joiner.push(p) {
                            Some(line) => {
                                let mut e = line.into_event();
                                if keep {
                                    let mut o = serde_json::Map::new();
                                    o.insert("original".into(), Value::String(text.to_owned()));
                                    e.insert("event".into(), Value::Object(o));
                                }
                                LineOutcome::Event(ParsedEvent::Object(e))
                            }
                            None => LineOutcome::Skipped(SkipReason::Partial),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Format::Auto => Err("format not detected".into()),
        };
        match res {
            Ok(()) => {
                if keep {
                    util::set_str(&mut ev, "event.original", text);
                }
                LineOutcome::Event(ParsedEvent::Fields(ev))
            }
            Err(reason) => {
                LineOutcome::Event(ParsedEvent::Object(failure_event(text, &reason, format)))
            }
        }
    }

    fn cloudtrail_line(&self, text: &str) -> LineOutcome {
        let parsed = serde_json::from_str::<Value>(text)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(aws::records::cloudtrail_records);
        match parsed {
            Err(reason) => LineOutcome::Event(failure_event(text, &reason, Format::AwsCloudtrail)),
            Ok(records) => {
                let mut events: Vec<Event> = records
                    .into_iter()
                    .map(|r| {
                        let fallback = if self.opts.keep_original {
                            Cow::Owned(serde_json::to_string(&r).unwrap_or_default())
                        } else {
                            Cow::Borrowed(text)
                        };
                        let fallback = fallback.into_owned();
                        aws::records::map_cloudtrail(r, self.opts.keep_original).unwrap_or_else(
                            |reason| failure_event(&fallback, &reason, Format::AwsCloudtrail),
                        )
                    })
                    .collect();
                if events.len() == 1 {
                    events
                        .pop()
                        .map_or(LineOutcome::Events(Vec::new()), LineOutcome::Event)
                } else {
                    LineOutcome::Events(events)
                }
            }
        }
    }

    /// The format this parser was created with (`auto` stays `auto` here).
    pub fn requested_format(&self) -> Format {
        self.requested
    }
}

/// Does this event carry the `_parse_failure` tag?
pub fn is_failure(e: &Event) -> bool {
    failure_tags(e.get("tags"))
}

/// Whether a `tags` value holds `_parse_failure`.
fn failure_tags(tags: Option<&Value>) -> bool {
    matches!(tags, Some(Value::Array(t)) if t.iter().any(|v| v == "_parse_failure"))
}

/// Parse a whole object. CloudTrail: `{"Records":[…]}` (or one bare record) → one event
/// per record (an invalid record becomes a `_parse_failure` event; invalid JSON is an
/// error). Line formats: every line through a [`LineParser`] with default options
/// (skipped lines dropped, pending container pieces flushed).
pub fn parse_document(format: Format, bytes: &[u8]) -> Result<Vec<Event>, FormatError> {
    parse_document_with(format, bytes, &ParseOptions::default())
}

/// [`parse_document`] with options.
pub fn parse_document_with(
    format: Format,
    bytes: &[u8],
    opts: &ParseOptions,
) -> Result<Vec<Event>, FormatError> {
    let format = if format == Format::Auto {
        let head: Vec<&[u8]> = bytes.split(|&b| b == b'\n').take(16).collect();
        sniff(None, &head)
    } else {
        format
    };
    if format == Format::AwsCloudtrail {
        let trimmed = bytes.trim_ascii();
        // Newline-delimited records (CloudWatch Logs export) vs one document.
        let doc: Value = match serde_json::from_slice(trimmed) {
            Ok(v) => v,
            Err(e) if e.is_data() || e.is_syntax() => {
                if trimmed.first() == Some(&b'{') && trimmed.contains(&b'\n') {
                    let mut p = LineParser::new(format, opts.clone());
                    let mut out = Vec::new();
                    for line in trimmed.split(|&b| b == b'\n') {
                        out.extend(p.parse_line(line).into_events());
                    }
                    if out.iter().all(is_failure) {
                        return Err(FormatError::Json(e));
                    }
                    return Ok(out);
                }
                return Err(FormatError::Json(e));
            }
            Err(e) => return Err(FormatError::Json(e)),
        };
        let records = aws::records::cloudtrail_records(doc)
            .map_err(|reason| FormatError::Document { format, reason })?;
        return Ok(records
            .into_iter()
            .map(|r| {
                let fallback = serde_json::to_string(&r).unwrap_or_default();
                aws::records::map_cloudtrail(r, opts.keep_original).unwrap_or_else(|reason| {
                    failure_event(&fallback, &reason, Format::AwsCloudtrail)
                })
            })
            .collect());
    }
    let mut p = LineParser::new(format, opts.clone());
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        out.extend(p.parse_line(line).into_events());
    }
    out.extend(p.finish());
    Ok(out)
}
