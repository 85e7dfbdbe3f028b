//! Where objects come from: local files and directories, stdin, S3 (object_store).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;

/// How much of a local file the content fingerprint reads.
const FINGERPRINT_BYTES: usize = 64 * 1024;

pub enum Location {
    Local(PathBuf),
    Stdin,
    S3 { store: Arc<AmazonS3>, key: ObjPath },
}

/// One object (file) to import.
pub struct ObjectRef {
    /// Identity in ids, the state file and `log.file.path`: `s3://bucket/key`, an
    /// absolute path, or `-` for stdin.
    pub uri: String,
    /// What `aws_key::parse_key` reads (the S3 key, or the path).
    pub key: String,
    /// Stored size (compressed), when known.
    pub size: Option<u64>,
    /// ETag (S3) or content fingerprint (local). Stdin: computed when opened.
    pub version: Option<String>,
    pub location: Location,
}

impl ObjectRef {
    /// The last path segment, for format sniffing by name.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Extra CA certificate (PEM) for the endpoint, e.g. a private S3-compatible store.
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Lists every object under the given sources, in a stable order.
pub fn list(sources: &[String], s3: &S3Options, rt: &Handle) -> Result<Vec<ObjectRef>> {
    let mut out = Vec::new();
    let mut stdin_seen = false;
    for src in sources {
        if src == "-" {
            if stdin_seen {
                bail!("`-` (stdin) can be given only once");
            }
            stdin_seen = true;
            out.push(ObjectRef {
                uri: "-".into(),
                key: "stdin".into(),
                size: None,
                version: None,
                location: Location::Stdin,
            });
        } else if let Some(rest) = src.strip_prefix("s3://") {
            out.extend(list_s3(rest, s3, rt).with_context(|| format!("listing {src}"))?);
        } else {
            list_local(Path::new(src), &mut out)?;
        }
    }
    Ok(out)
}

fn list_local(path: &Path, out: &mut Vec<ObjectRef>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        files.sort();
        for f in files {
            out.push(local_ref(&f)?);
        }
    } else {
        out.push(local_ref(path)?);
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in rd {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = entry.path();
        let ft = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", p.display()))?;
        if ft.is_dir() {
            walk(&p, files)?;
        } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
            files.push(p);
        }
    }
    Ok(())
}

fn local_ref(path: &Path) -> Result<ObjectRef> {
    let abs = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut f =
        std::fs::File::open(&abs).with_context(|| format!("cannot open {}", abs.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot stat {}", abs.display()))?
        .len();
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    (&mut f)
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", abs.display()))?;
    let uri = abs.to_string_lossy().into_owned();
    Ok(ObjectRef {
        key: uri.clone(),
        uri,
        size: Some(len),
        version: Some(cairn_formats::aws_key::content_fingerprint(&head, len)),
        location: Location::Local(abs),
    })
}

/// Builds the S3 client: `AWS_*` environment variables (keys, session token, region,
/// endpoint), then the shared credentials/config files for what is still missing, then
/// the flags. Instance/container credentials are object_store's own fallback.
fn s3_store(bucket: &str, s3: &S3Options) -> Result<AmazonS3> {
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
    if let Some(r) = &s3.region {
        b = b.with_region(r);
    } else if !env_region {
        if let Some(r) = profile::region(&profile) {
            b = b.with_region(r);
        }
    }
    if let Some(ep) = &s3.endpoint {
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
    if let Some(ca) = &s3.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let mut opts = object_store::ClientOptions::new();
        for c in object_store::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("invalid PEM in {}", ca.display()))?
        {
            opts = opts.with_root_certificate(c);
        }
        b = b.with_client_options(opts);
    }
    b.build().context("cannot configure the S3 client")
}

fn list_s3(rest: &str, s3: &S3Options, rt: &Handle) -> Result<Vec<ObjectRef>> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("an S3 source looks like s3://bucket/prefix");
    }
    let store = Arc::new(s3_store(bucket, s3)?);
    let prefix = prefix.trim_end_matches('/');
    let pfx = (!prefix.is_empty()).then(|| ObjPath::from(prefix));
    let metas = rt.block_on(async {
        let mut stream = store.list(pfx.as_ref());
        let mut metas = Vec::new();
        while let Some(m) = stream.next().await {
            metas.push(m?);
        }
        if metas.is_empty() {
            // The prefix may name a single object.
            if let Some(p) = &pfx {
                match store.head(p).await {
                    Ok(m) => metas.push(m),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok::<_, object_store::Error>(metas)
    })?;
    let mut out: Vec<ObjectRef> = metas
        .into_iter()
        .map(|m| {
            let key = m.location.to_string();
            ObjectRef {
                uri: format!("s3://{bucket}/{key}"),
                size: Some(m.size),
                version: Some(
                    m.e_tag
                        .as_deref()
                        .map(|e| e.trim_matches('"').to_owned())
                        .unwrap_or_else(|| format!("size-{}", m.size)),
                ),
                location: Location::S3 {
                    store: store.clone(),
                    key: m.location,
                },
                key,
            }
        })
        .collect();
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(out)
}

/// A blocking reader over an object_store byte stream (runs the stream on `rt`).
struct StreamReader {
    rt: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
}

impl Read for StreamReader {
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

/// Opens an object for reading (raw stored bytes, maybe compressed). S3 reads are
/// conditional on the listed ETag, so the bytes match the version the ids use.
pub fn open(obj: &ObjectRef, rt: &Handle) -> Result<Box<dyn Read + Send>> {
    Ok(match &obj.location {
        Location::Local(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
        Location::Stdin => Box::new(std::io::stdin()),
        Location::S3 { store, key } => {
            let opts = GetOptions {
                if_match: obj
                    .version
                    .clone()
                    .filter(|v| !v.starts_with("size-"))
                    .map(|v| format!("\"{v}\"")),
                ..Default::default()
            };
            let res = rt
                .block_on(store.get_opts(key, opts))
                .map_err(|e| match e {
                    object_store::Error::Precondition { .. } => anyhow::anyhow!(
                        "the object changed since it was listed; run the import again"
                    ),
                    e => anyhow::Error::new(e).context("cannot download"),
                })?;
            Box::new(StreamReader {
                rt: rt.clone(),
                stream: res.into_stream(),
                buf: Bytes::new(),
            })
        }
    })
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
