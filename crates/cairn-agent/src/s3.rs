//! AWS log objects in S3, shared by `cairn import` and the agent's `s3` source so both
//! read a bucket the same way and produce the same documents:
//!
//! * the client ([`client`]): `AWS_*` variables, then the shared credentials/config
//!   files (`AWS_PROFILE`), then instance credentials; a custom endpoint (path-style,
//!   plain HTTP allowed for `http://`), region and extra CA certificate;
//! * listing ([`list`]: every page, key order, optionally after a key) and streaming
//!   reads conditional on the listed ETag ([`get`], [`BlockingReader`]), so the bytes
//!   read are the version the document ids name;
//! * content handling: gzip by magic bytes, every member ([`decode`]), bounded lines
//!   ([`read_line`]);
//! * what a record gains from its object: key-layout fields ([`add_key_fields`]: account,
//!   region, load balancer, distribution, flow log id, source bucket), the object URI and
//!   byte offset ([`set_location`]), and the time window helpers ([`parse_time`],
//!   [`pruned_by_date`]).
//!
//! Document ids are [`cairn_formats::aws_key::document_id`] of (object URI, ETag, line
//! offset), or CloudTrail's `eventID`: a document imported and one shipped by the agent
//! have the same id.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use bytes::Bytes;
use cairn_formats::aws_key::{AwsKeyInfo, AwsLogKind};
use cairn_formats::ParsedEvent;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value};
use tokio::runtime::Handle;

pub use object_store::aws::AmazonS3;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Longest line kept by [`read_line`] callers that do not set their own limit; the
/// rest of a longer line is dropped (the line still becomes a document).
pub const MAX_LINE: usize = 16 << 20;

/// Errors of the S3 helpers.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid PEM in {path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("cannot configure the S3 client: {0}")]
    Client(#[source] object_store::Error),
    #[error("listing s3://{bucket}/{prefix}: {source}")]
    List {
        bucket: String,
        prefix: String,
        #[source]
        source: object_store::Error,
    },
    /// The ETag no longer matches the listing: the object was rewritten.
    #[error("s3://{bucket}/{key} changed since it was listed")]
    Changed { bucket: String, key: String },
    #[error("cannot download s3://{bucket}/{key}: {source}")]
    Get {
        bucket: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// Client settings beyond what the environment gives.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// S3-compatible endpoint (MinIO, moto, ...), e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Extra CA certificate (PEM) for the endpoint, e.g. a private S3-compatible store.
    pub ca_cert: Option<PathBuf>,
}

/// Builds the S3 client for `bucket`: `AWS_*` environment variables (keys, session
/// token, region, endpoint), then the shared credentials/config files for what is
/// still missing, then `opts`. Instance/container credentials are object_store's own
/// fallback.
pub fn client(bucket: &str, opts: &S3Options) -> Result<AmazonS3, S3Error> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env_key = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    if !env_key {
        if let Some(c) = profile::credentials(&profile) {
            b = b
                .with_access_key_id(c.access_key_id)
                .with_secret_access_key(c.secret_access_key);
            if let Some(t) = c.session_token {
                b = b.with_token(t);
            }
        }
    }
    let env_region = std::env::var_os("AWS_REGION").is_some()
        || std::env::var_os("AWS_DEFAULT_REGION").is_some();
    if let Some(r) = &opts.region {
        b = b.with_region(r);
    } else if !env_region {
        if let Some(r) = profile::region(&profile) {
            b = b.with_region(r);
        }
    }
    if let Some(ep) = &opts.endpoint {
        b = b
            .with_endpoint(ep.trim_end_matches('/'))
            .with_allow_http(ep.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    } else if std::env::var("AWS_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .is_ok_and(|e| e.starts_with("http://"))
    {
        b = b.with_allow_http(true);
    }
    if let Some(ca) = &opts.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| S3Error::ReadFile {
            path: ca.clone(),
            source: e,
        })?;
        let mut co = object_store::ClientOptions::new();
        let certs = object_store::Certificate::from_pem_bundle(&pem).map_err(|e| S3Error::Pem {
            path: ca.clone(),
            reason: e.to_string(),
        })?;
        for c in certs {
            co = co.with_root_certificate(c);
        }
        b = b.with_client_options(co);
    }
    b.build().map_err(S3Error::Client)
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Stored (maybe compressed) size.
    pub size: u64,
    /// The ETag without quotes, or `size-N` when the store gave none: the version in
    /// document ids and in resume state.
    pub version: String,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl ObjectInfo {
    /// `s3://bucket/key`: the identity in ids, state and `log.file.path`.
    pub fn uri(&self, bucket: &str) -> String {
        format!("s3://{bucket}/{}", self.key)
    }

    fn from_meta(m: object_store::ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            key: m.location.to_string(),
            size: m.size,
            version: m
                .e_tag
                .as_deref()
                .map(|e| e.trim_matches('"').to_owned())
                .unwrap_or_else(|| format!("size-{}", m.size)),
            last_modified: m.last_modified,
        }
    }
}

/// Lists every object under `prefix` (all pages), in key order. With `start_after`,
/// only keys after it (S3's `start-after`: the listing skips the rest server-side).
/// An empty listing of a prefix that names one object returns that object.
pub async fn list(
    store: &AmazonS3,
    bucket: &str,
    prefix: &str,
    start_after: Option<&str>,
) -> Result<Vec<ObjectInfo>, S3Error> {
    let prefix = prefix.trim_end_matches('/');
    let pfx = (!prefix.is_empty()).then(|| ObjPath::from(prefix));
    let err = |source| S3Error::List {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        source,
    };
    let mut stream = match start_after {
        Some(after) => store.list_with_offset(pfx.as_ref(), &ObjPath::from(after)),
        None => store.list(pfx.as_ref()),
    };
    let mut out = Vec::new();
    while let Some(m) = stream.next().await {
        out.push(ObjectInfo::from_meta(m.map_err(err)?));
    }
    if out.is_empty() && start_after.is_none() {
        // The prefix may name a single object.
        if let Some(p) = &pfx {
            match store.head(p).await {
                Ok(m) => out.push(ObjectInfo::from_meta(m)),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Starts downloading an object, conditional on the listed ETag (a `size-N` version
/// has none to check): the bytes are the version the ids name.
pub async fn get(
    store: &AmazonS3,
    bucket: &str,
    key: &str,
    version: &str,
) -> Result<BoxStream<'static, object_store::Result<Bytes>>, S3Error> {
    let opts = GetOptions {
        if_match: (!version.starts_with("size-")).then(|| format!("\"{version}\"")),
        ..Default::default()
    };
    let res = store
        .get_opts(&ObjPath::from(key), opts)
        .await
        .map_err(|e| match e {
            object_store::Error::Precondition { .. } => S3Error::Changed {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            },
            e => S3Error::Get {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                source: e,
            },
        })?;
    Ok(res.into_stream())
}

/// A blocking reader over an object's byte stream (the stream runs on `rt`, which must
/// have its own worker threads: a multi-thread runtime). Only one chunk of the body
/// is held at a time, so a reader that stops reading (back-pressure) holds little.
pub struct BlockingReader {
    rt: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
}

impl BlockingReader {
    pub fn new(rt: Handle, stream: BoxStream<'static, object_store::Result<Bytes>>) -> Self {
        BlockingReader {
            rt,
            stream,
            buf: Bytes::new(),
        }
    }

    /// Downloads `key` (see [`get`]) as a blocking reader.
    pub fn open(
        rt: &Handle,
        store: &AmazonS3,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<Self, S3Error> {
        let stream = rt.block_on(get(store, bucket, key, version))?;
        Ok(BlockingReader::new(rt.clone(), stream))
    }
}

impl Read for BlockingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
pub fn read_head(r: &mut dyn Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The decompressed content of an object: gzip (magic `1f 8b`, every member of a
/// multi-member stream) or the bytes as they are. Decided by content, never by name.
/// Returns the reader and whether it is gzip.
pub fn decode<'a>(
    mut raw: Box<dyn Read + Send + 'a>,
) -> std::io::Result<(Box<dyn Read + Send + 'a>, bool)> {
    let magic = read_head(&mut raw, 2)?;
    let gz = magic.starts_with(&[0x1f, 0x8b]);
    let chained = std::io::Cursor::new(magic).chain(raw);
    Ok(if gz {
        (Box::new(flate2::read::MultiGzDecoder::new(chained)), true)
    } else {
        (Box::new(chained), false)
    })
}

/// Reads one line (with its `\n`) into `buf`, keeping at most `max` bytes of it.
/// Returns the bytes consumed from the stream (0 at the end) and whether the line was
/// cut.
pub fn read_line(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    buf.clear();
    let mut consumed = 0;
    let mut cut = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((consumed, cut));
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if take > room {
            cut = true;
        }
        buf.extend_from_slice(&avail[..take.min(room)]);
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, cut));
        }
    }
}

/// `7d`, `now-7d`, `now`, or an absolute date/time (`2024-05-01`,
/// `2024-05-01T10:00:00Z`) → epoch microseconds. `None`: not a time.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = s.trim();
    let now = cairn_core::time::now_micros();
    if t == "now" {
        return Some(now);
    }
    let rel = t.strip_prefix("now-").unwrap_or(t);
    if let Some(d) = cairn_core::time::parse_duration(rel) {
        return Some(now - d);
    }
    cairn_core::time::parse_iso(t)
}

/// The UTC day (start, epoch µs) a key's date path or file-name stamp names.
pub fn key_day(info: &AwsKeyInfo) -> Option<i64> {
    match (&info.date, &info.stamp) {
        (Some(d), _) => {
            cairn_core::time::parse_iso(&format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        }
        (None, Some(s)) => cairn_core::time::parse_iso(s).map(|t| t - t.rem_euclid(MICROS_PER_DAY)),
        _ => None,
    }
}

/// Should this key be skipped for the time window? Key dates are delivery dates or
/// window stamps: keep a day of margin on each side (AWS-LOGS.md §9). A key without a
/// date is never pruned here.
pub fn pruned_by_date(info: &AwsKeyInfo, since: Option<i64>, until: Option<i64>) -> bool {
    let Some(start) = key_day(info) else {
        return false;
    };
    let end = start + MICROS_PER_DAY;
    since.is_some_and(|s| end + MICROS_PER_DAY <= s)
        || until.is_some_and(|u| start - MICROS_PER_DAY >= u)
}

/// A record the helpers below can read and extend: a nested map (the agent, whose
/// transforms work on maps) or a parser's [`ParsedEvent`] (`cairn import`, which sends
/// the text straight from the parser's fields).
pub trait Record {
    /// The value at a dotted path, or at a literal dotted key of the top level.
    fn field(&self, path: &str) -> Option<&Value>;
    /// Set a dotted path; an existing value is kept unless `overwrite`.
    fn put(&mut self, path: &'static str, v: Value, overwrite: bool);
}

impl Record for Map<String, Value> {
    fn field(&self, path: &str) -> Option<&Value> {
        cairn_formats::get_path(self, path).or_else(|| self.get(path))
    }

    /// A scalar where an object is needed (user JSON) leaves the record alone.
    fn put(&mut self, path: &'static str, v: Value, overwrite: bool) {
        let mut parts = path.split('.').peekable();
        let mut cur = self;
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                if overwrite || !cur.contains_key(p) {
                    cur.insert(p.to_owned(), v);
                }
                return;
            }
            let next = cur
                .entry(p.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match next {
                Value::Object(m) => cur = m,
                _ => return,
            }
        }
    }
}

impl Record for ParsedEvent {
    fn field(&self, path: &str) -> Option<&Value> {
        match self {
            ParsedEvent::Object(m) => m.field(path),
            ParsedEvent::Fields(f) => f.get(path),
        }
    }

    fn put(&mut self, path: &'static str, v: Value, overwrite: bool) {
        match self {
            ParsedEvent::Object(m) => m.put(path, v, overwrite),
            ParsedEvent::Fields(f) => {
                if overwrite || f.get(path).is_none() {
                    f.set(path, v);
                }
            }
        }
    }
}

fn set_if_absent(ev: &mut impl Record, path: &'static str, v: Option<&String>) {
    if let Some(v) = v {
        if ev.field(path).is_none() {
            ev.put(path, Value::String(v.clone()), false);
        }
    }
}

/// Adds what the object key tells to a record that lacks it: `cloud.account.id`,
/// `cloud.region`, `cloud.provider`, and per kind `aws.elb.name`,
/// `aws.cloudfront.distribution_id`, `aws.vpcflow.flow_log_id`, `aws.s3access.bucket`.
/// The record's own values win.
pub fn add_key_fields(ev: &mut impl Record, info: &AwsKeyInfo) {
    set_if_absent(ev, "cloud.account.id", info.account_id.as_ref());
    set_if_absent(ev, "cloud.region", info.region.as_ref());
    if ev.field("cloud.provider").is_none() {
        ev.put("cloud.provider", Value::from("aws"), false);
    }
    match info.kind {
        AwsLogKind::Alb | AwsLogKind::Nlb | AwsLogKind::Clb => {
            set_if_absent(ev, "aws.elb.name", info.load_balancer.as_ref())
        }
        AwsLogKind::CloudFront => set_if_absent(
            ev,
            "aws.cloudfront.distribution_id",
            info.distribution_id.as_ref(),
        ),
        AwsLogKind::VpcFlow => {
            set_if_absent(ev, "aws.vpcflow.flow_log_id", info.flow_log_id.as_ref())
        }
        AwsLogKind::S3Access => {
            set_if_absent(ev, "aws.s3access.bucket", info.source_bucket.as_ref())
        }
        _ => {}
    }
}

/// `log.file.path` = the object URI, `log.offset` = the line's byte offset in the
/// decompressed stream (none for whole-document formats such as CloudTrail).
pub fn set_location(ev: &mut impl Record, uri: &str, offset: Option<u64>) {
    ev.put("log.file.path", Value::from(uri), true);
    if let Some(off) = offset {
        ev.put("log.offset", Value::from(off), true);
    }
}

/// The document id: CloudTrail's `eventID` for CloudTrail records, else a hash of
/// (URI, version, offset), with `-sub` for the second and later events of one line.
pub fn document_id(
    ev: &impl Record,
    cloudtrail: bool,
    uri: &str,
    version: &str,
    offset: Option<u64>,
    sub: usize,
) -> String {
    if cloudtrail {
        if let Some(id) = ev.field("event.id").and_then(Value::as_str) {
            return id.to_owned();
        }
    }
    let base = cairn_formats::aws_key::document_id(uri, version, offset.unwrap_or(0));
    if sub == 0 {
        base
    } else {
        format!("{base}-{sub}")
    }
}

/// A minimal reader for `~/.aws/credentials` and `~/.aws/config` (INI).
mod profile {
    use std::path::PathBuf;

    pub struct Creds {
        pub access_key_id: String,
        pub secret_access_key: String,
        pub session_token: Option<String>,
    }

    fn home_file(env: &str, name: &str) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(env) {
            return Some(PathBuf::from(p));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name))
    }

    /// The `key = value` pairs of `[section]`.
    fn section(path: Option<PathBuf>, wanted: &[String]) -> Vec<(String, String)> {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return Vec::new();
        };
        let mut cur = false;
        let mut out = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('#') || l.starts_with(';') || l.is_empty() {
                continue;
            }
            if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                cur = wanted.iter().any(|w| w == name.trim());
                continue;
            }
            if cur {
                if let Some((k, v)) = l.split_once('=') {
                    out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        }
        out
    }

    fn get(pairs: &[(String, String)], key: &str) -> Option<String> {
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub fn credentials(profile: &str) -> Option<Creds> {
        let pairs = section(
            home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            &[profile.to_owned()],
        );
        Some(Creds {
            access_key_id: get(&pairs, "aws_access_key_id")?,
            secret_access_key: get(&pairs, "aws_secret_access_key")?,
            session_token: get(&pairs, "aws_session_token"),
        })
    }

    pub fn region(profile: &str) -> Option<String> {
        let pairs = section(
            home_file("AWS_CONFIG_FILE", "config"),
            &[profile.to_owned(), format!("profile {profile}")],
        );
        get(&pairs, "region")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Write};

    #[test]
    fn key_fields_keep_record_values() {
        let info = cairn_formats::aws_key::parse_key(
            "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2022/12/06/123456789012_elasticloadbalancing_us-east-1_app.lb.f1_20221206T1745Z_10.0.0.1_abc.log.gz",
        )
        .expect("alb key");
        let mut ev = Map::new();
        ev.put("cloud.region", Value::from("eu-west-1"), true);
        add_key_fields(&mut ev, &info);
        set_location(&mut ev, "s3://b/k", Some(7));
        assert_eq!(
            cairn_formats::get_path(&ev, "cloud.region"),
            Some(&Value::from("eu-west-1"))
        );
        assert_eq!(
            cairn_formats::get_path(&ev, "cloud.account.id"),
            Some(&Value::from("123456789012"))
        );
        assert_eq!(
            cairn_formats::get_path(&ev, "aws.elb.name"),
            Some(&Value::from("app/lb/f1"))
        );
        assert_eq!(
            cairn_formats::get_path(&ev, "log.offset"),
            Some(&Value::from(7))
        );
        // A parser's flat fields gain the same fields, in the same places.
        let mut flat = ParsedEvent::Fields(cairn_formats::Fields::new());
        flat.put("cloud.region", Value::from("eu-west-1"), true);
        add_key_fields(&mut flat, &info);
        set_location(&mut flat, "s3://b/k", Some(7));
        let mut text = Vec::new();
        flat.write_json(&mut text);
        assert_eq!(text, serde_json::to_vec(&ev).expect("json"));
        assert_eq!(
            document_id(&flat, false, "s3://b/k", "e1", Some(7), 0),
            document_id(&ev, false, "s3://b/k", "e1", Some(7), 0)
        );
    }

    #[test]
    fn date_pruning_has_a_day_of_margin() {
        let info = cairn_formats::aws_key::parse_key(
            "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2022/12/06/123456789012_elasticloadbalancing_us-east-1_app.lb.f1_20221206T1745Z_10.0.0.1_abc.log.gz",
        )
        .expect("alb key");
        let t = |s: &str| cairn_core::time::parse_iso(s).expect("time");
        assert!(!pruned_by_date(
            &info,
            Some(t("2022-12-07T12:00:00Z")),
            None
        ));
        assert!(pruned_by_date(&info, Some(t("2022-12-08T00:00:00Z")), None));
        assert!(!pruned_by_date(
            &info,
            None,
            Some(t("2022-12-05T12:00:00Z"))
        ));
        assert!(pruned_by_date(&info, None, Some(t("2022-12-05T00:00:00Z"))));
    }

    #[test]
    fn times() {
        assert!(parse_time("7d").is_some());
        assert!(parse_time("now-7d").is_some());
        assert_eq!(
            parse_time("2024-05-01"),
            cairn_core::time::parse_iso("2024-05-01T00:00:00Z")
        );
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn gzip_by_content_and_truncation_is_an_error() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..2000 {
            writeln!(enc, "line {i} with some text to make it long enough").expect("write");
        }
        let gz = enc.finish().expect("gzip");
        let (r, is_gz) = decode(Box::new(std::io::Cursor::new(gz.clone()))).expect("decode");
        assert!(is_gz);
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut r, &mut line, 6).expect("line"), (45, true));
        assert_eq!(line, b"line 0");
        let cut = gz[..gz.len() / 2].to_vec();
        let (r, _) = decode(Box::new(std::io::Cursor::new(cut))).expect("decode");
        let mut r = BufReader::new(r);
        let mut n = 0;
        let err = loop {
            match read_line(&mut r, &mut line, MAX_LINE) {
                Ok((0, _)) => break None,
                Ok(_) => n += 1,
                Err(e) => break Some(e),
            }
        };
        assert!(err.is_some());
        assert!(n > 0);
        let (r, is_gz) =
            decode(Box::new(std::io::Cursor::new(b"plain\n".to_vec()))).expect("plain");
        assert!(!is_gz);
        let mut s = String::new();
        BufReader::new(r).read_to_string(&mut s).expect("read");
        assert_eq!(s, "plain\n");
    }
}
