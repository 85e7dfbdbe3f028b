//! The agent's YAML configuration: Vector-style named sources, transforms and sinks,
//! each with a typed config. Every struct denies unknown fields so a typo is an error
//! that names its key instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::AgentError;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Checkpoints, disk buffers and dead letters live here.
    pub data_dir: PathBuf,
    /// `/health` and `/metrics` listener; absent: no listener.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub transforms: BTreeMap<String, TransformConfig>,
    pub sinks: BTreeMap<String, SinkConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `host:port`, e.g. `127.0.0.1:8686`.
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    File(FileSourceConfig),
    Kubernetes(Box<crate::kubernetes::KubernetesSourceConfig>),
    Syslog(crate::syslog::SyslogSourceConfig),
    Stdin(StdinSourceConfig),
    /// Boxed: much larger than the other variants.
    S3(Box<crate::s3_source::S3SourceConfig>),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    #[default]
    #[serde(alias = "utf8")]
    Utf8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Glob patterns (`*`, `?`, `[abc]` per path component).
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// For files present at the agent's first start; files found later are always
    /// read from the beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    #[serde(default = "default_rescan", deserialize_with = "de_duration")]
    pub rescan_interval: Duration,
    /// How often open files are polled for new data.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// Bytes hashed to recognise a file (a rotated copy) independently of its inode.
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
    #[serde(default)]
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformConfig {
    Parse(ParseConfig),
    Multiline(MultilineTransformConfig),
    AddFields(AddFieldsConfig),
    Rename(RenameConfig),
    Filter(ConditionConfig),
    Drop(ConditionConfig),
}

impl TransformConfig {
    pub fn inputs(&self) -> &[String] {
        match self {
            TransformConfig::Parse(c) => &c.inputs,
            TransformConfig::Multiline(c) => &c.inputs,
            TransformConfig::AddFields(c) => &c.inputs,
            TransformConfig::Rename(c) => &c.inputs,
            TransformConfig::Filter(c) | TransformConfig::Drop(c) => &c.inputs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseConfig {
    pub inputs: Vec<String>,
    /// Any cairn-formats name, or `auto`.
    #[serde(default = "default_format")]
    pub format: String,
    /// The field holding the text to parse.
    #[serde(default = "default_message_field")]
    pub field: String,
    /// Keep the raw text in `event.original`.
    #[serde(default)]
    pub keep_original: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineTransformConfig {
    pub inputs: Vec<String>,
    /// `java`, `python`, `go`, `ruby`, `node` or `custom` (with `start`/`continuation`).
    pub rule: String,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub continuation: Option<String>,
    #[serde(default = "default_ml_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    #[serde(default = "default_ml_max_lines")]
    pub max_lines: usize,
    #[serde(default = "default_message_field")]
    pub field: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFieldsConfig {
    pub inputs: Vec<String>,
    /// Dotted paths to values; existing fields are overwritten.
    pub fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameConfig {
    pub inputs: Vec<String>,
    /// Dotted source path -> dotted target path.
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub inputs: Vec<String>,
    /// A KQL condition.
    pub condition: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Boxed: much larger than the other variants.
    Elasticsearch(Box<EsSinkConfig>),
    File(FileSinkConfig),
    Stdout(StdoutSinkConfig),
}

impl SinkConfig {
    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::Elasticsearch(c) => &c.inputs,
            SinkConfig::File(c) => &c.inputs,
            SinkConfig::Stdout(c) => &c.inputs,
        }
    }

    pub fn buffer(&self) -> &BufferConfig {
        match self {
            SinkConfig::Elasticsearch(c) => &c.buffer,
            SinkConfig::File(c) => &c.buffer,
            SinkConfig::Stdout(c) => &c.buffer,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    #[default]
    Block,
    DropNewest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    #[serde(default = "default_buffer_max")]
    pub max_size: u64,
    #[serde(default)]
    pub when_full: WhenFull,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_size: default_buffer_max(),
            when_full: WhenFull::Block,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: usize,
    /// Events per request at most (servers cap `_bulk` actions per request).
    #[serde(default = "default_batch_events")]
    pub max_events: usize,
    #[serde(default = "default_batch_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_bytes: default_batch_bytes(),
            max_events: default_batch_events(),
            timeout: default_batch_timeout(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Sent as `Authorization: ApiKey <api_key>` (the base64 `id:key` form).
    #[serde(default)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsAuthConfig {
    pub region: String,
    /// `es` (OpenSearch Service domains) or `aoss` (Serverless).
    #[serde(default = "default_aws_service")]
    pub service: String,
    /// Default: `$AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Default: `$AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Default: `$AWS_SESSION_TOKEN` when set.
    #[serde(default)]
    pub session_token: Option<String>,
}

fn default_aws_service() -> String {
    "es".into()
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with extra CA certificates to trust.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub verify_certificate: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsSinkConfig {
    pub inputs: Vec<String>,
    pub endpoints: Vec<String>,
    pub index: String,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    #[serde(default = "default_retry_initial", deserialize_with = "de_duration")]
    pub retry_initial_backoff: Duration,
    #[serde(default = "default_retry_max", deserialize_with = "de_duration")]
    pub retry_max_backoff: Duration,
    /// AWS SigV4 request signing (Amazon OpenSearch Service).
    #[serde(default)]
    pub aws: Option<AwsAuthConfig>,
    /// Bulk requests in flight at once (acknowledged in order).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Absent: retry 429/5xx forever (the data is on disk; giving up loses it).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Where rejected documents go; default `<data_dir>/dead-letter/<sink>.ndjson`.
    #[serde(default)]
    pub dead_letter_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub inputs: Vec<String>,
    pub path: PathBuf,
    #[serde(default)]
    pub buffer: BufferConfig,
    #[serde(default)]
    pub batch: BatchConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    pub inputs: Vec<String>,
    #[serde(default)]
    pub buffer: BufferConfig,
}

fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_rescan() -> Duration {
    Duration::from_secs(1)
}
fn default_poll() -> Duration {
    Duration::from_millis(100)
}
fn default_fingerprint_bytes() -> usize {
    256
}
fn default_format() -> String {
    "auto".into()
}
fn default_message_field() -> String {
    "message".into()
}
fn default_ml_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_ml_max_lines() -> usize {
    500
}
fn default_buffer_max() -> u64 {
    256 << 20
}
fn default_batch_bytes() -> usize {
    2 << 20
}
fn default_concurrency() -> usize {
    2
}
fn default_batch_events() -> usize {
    5_000
}
fn default_batch_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(100)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}

/// Parses `500ms`, `2s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

pub(crate) fn de_duration_pub<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de_duration(d)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Num(n) => format!("{n}"),
        Raw::Text(t) => t,
    };
    parse_duration(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid duration `{text}` (expected e.g. 500ms, 2s, 1m)"
        ))
    })
}

impl Config {
    /// Reads, parses (YAML 1.1, `$VAR` expanded) and validates a config file.
    pub fn load(path: &Path) -> Result<Config, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
        Config::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Config, AgentError> {
        let mut value = cairn_core::yaml::parse(text)?;
        cairn_core::yaml::expand_env(&mut value, &|k| std::env::var(k).ok());
        let cfg: Config = cairn_core::yaml::from_value(value)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-checks that `from_value` cannot: input names, formats, conditions.
    fn validate(&self) -> Result<(), AgentError> {
        let invalid = |key: String, msg: String| AgentError::Config(format!("{key}: {msg}"));
        if self.sources.is_empty() {
            return Err(invalid(
                "sources".into(),
                "at least one source is required".into(),
            ));
        }
        if self.sinks.is_empty() {
            return Err(invalid(
                "sinks".into(),
                "at least one sink is required".into(),
            ));
        }
        for name in self.transforms.keys() {
            if self.sources.contains_key(name) {
                return Err(invalid(
                    format!("transforms.{name}"),
                    "a source has the same name".into(),
                ));
            }
        }
        let known = |n: &str| self.sources.contains_key(n) || self.transforms.contains_key(n);
        for (name, t) in &self.transforms {
            check_inputs(&format!("transforms.{name}"), t.inputs(), &known)?;
            crate::transform::Transform::build(name, t)
                .map_err(|e| invalid(format!("transforms.{name}"), e.to_string()))?;
        }
        for (name, s) in &self.sinks {
            check_inputs(&format!("sinks.{name}"), s.inputs(), &known)?;
            if let SinkConfig::Elasticsearch(es) = s {
                if es.aws.is_some() && es.auth.is_some() {
                    return Err(invalid(
                        format!("sinks.{name}"),
                        "`aws` (SigV4) and `auth` both set the Authorization header: use one"
                            .into(),
                    ));
                }
                if es.endpoints.is_empty() {
                    return Err(invalid(
                        format!("sinks.{name}.endpoints"),
                        "at least one endpoint is required".into(),
                    ));
                }
                for (i, e) in es.endpoints.iter().enumerate() {
                    if !(e.starts_with("http://") || e.starts_with("https://")) {
                        return Err(invalid(
                            format!("sinks.{name}.endpoints[{i}]"),
                            format!("`{e}` is not an http:// or https:// URL"),
                        ));
                    }
                }
            }
        }
        for (name, s) in &self.sources {
            if let SourceConfig::Syslog(sl) = s {
                if sl.udp.is_none() && sl.tcp.is_none() {
                    return Err(invalid(
                        format!("sources.{name}"),
                        "a syslog source needs `udp` and/or `tcp` (listen addresses)".into(),
                    ));
                }
            }
            if let SourceConfig::S3(c) = s {
                c.validate(name)?;
            }
            if let SourceConfig::File(f) = s {
                if f.include.is_empty() {
                    return Err(invalid(
                        format!("sources.{name}.include"),
                        "at least one pattern is required".into(),
                    ));
                }
                if f.max_line_bytes == 0 {
                    return Err(invalid(
                        format!("sources.{name}.max_line_bytes"),
                        "must be positive".into(),
                    ));
                }
            }
        }
        // Cycles: a transform reaching itself through its inputs would loop forever.
        for name in self.transforms.keys() {
            let mut stack: Vec<&str> = vec![name];
            let mut seen = std::collections::HashSet::new();
            while let Some(n) = stack.pop() {
                if let Some(t) = self.transforms.get(n) {
                    for i in t.inputs() {
                        if i == name {
                            return Err(invalid(
                                format!("transforms.{name}.inputs"),
                                "the transform graph has a cycle".into(),
                            ));
                        }
                        if seen.insert(i.as_str()) {
                            stack.push(i);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_inputs(
    key: &str,
    inputs: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Result<(), AgentError> {
    if inputs.is_empty() {
        return Err(AgentError::Config(format!(
            "{key}.inputs: at least one input is required"
        )));
    }
    for (i, n) in inputs.iter().enumerate() {
        if !known(n) {
            return Err(AgentError::Config(format!(
                "{key}.inputs[{i}]: no source or transform named `{n}`"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
data_dir: /var/lib/cairn-agent
sources:
  app:
    type: file
    include: ["/var/log/app/*.log"]
    read_from: beginning
sinks:
  store:
    type: elasticsearch
    inputs: [app]
    endpoints: ["http://127.0.0.1:9200"]
    index: logs-app
"#;

    #[test]
    fn minimal_config_from_the_issue() {
        let cfg = Config::from_yaml(MINIMAL).expect("valid");
        assert!(matches!(cfg.sources["app"], SourceConfig::File(_)));
        assert!(matches!(cfg.sinks["store"], SinkConfig::Elasticsearch(_)));
    }

    #[test]
    fn typos_are_named() {
        let bad = MINIMAL.replace("read_from", "read_frm");
        let err = Config::from_yaml(&bad).unwrap_err().to_string();
        assert!(err.contains("read_frm"), "{err}");
        assert!(err.contains("sources.app"), "{err}");
        let bad = MINIMAL.replace("inputs: [app]", "inputs: [ap]");
        let err = Config::from_yaml(&bad).unwrap_err().to_string();
        assert!(err.contains("sinks.store.inputs[0]"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("x"), None);
    }
}
