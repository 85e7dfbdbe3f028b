//! Where objects come from: local files and directories, stdin, S3 (through
//! `cairn_agent::s3`, which the agent's `s3` source uses too).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cairn_agent::s3::{self, AmazonS3};
use tokio::runtime::Handle;

pub use cairn_agent::s3::S3Options;

/// How much of a local file the content fingerprint reads.
const FINGERPRINT_BYTES: usize = 64 * 1024;

pub enum Location {
    Local(PathBuf),
    Stdin,
    /// The object is `ObjectRef::key` in `bucket`.
    S3 {
        store: Arc<AmazonS3>,
        bucket: String,
    },
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

fn list_s3(rest: &str, s3: &S3Options, rt: &Handle) -> Result<Vec<ObjectRef>> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("an S3 source looks like s3://bucket/prefix");
    }
    let store = Arc::new(s3::client(bucket, s3)?);
    let listed = rt.block_on(s3::list(&store, bucket, prefix, None))?;
    Ok(listed
        .into_iter()
        .map(|o| ObjectRef {
            uri: o.uri(bucket),
            size: Some(o.size),
            version: Some(o.version),
            location: Location::S3 {
                store: store.clone(),
                bucket: bucket.to_owned(),
            },
            key: o.key,
        })
        .collect())
}

/// Opens an object for reading (raw stored bytes, maybe compressed). S3 reads are
/// conditional on the listed ETag, so the bytes match the version the ids use.
pub fn open(obj: &ObjectRef, rt: &Handle) -> Result<Box<dyn Read + Send>> {
    Ok(match &obj.location {
        Location::Local(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
        Location::Stdin => Box::new(std::io::stdin()),
        Location::S3 { store, bucket } => {
            let version = obj.version.as_deref().unwrap_or("size-0");
            Box::new(
                s3::BlockingReader::open(rt, store, bucket, &obj.key, version).map_err(
                    |e| match e {
                        s3::S3Error::Changed { .. } => anyhow::anyhow!(
                            "the object changed since it was listed; run the import again"
                        ),
                        e => anyhow::Error::new(e),
                    },
                )?,
            )
        }
    })
}
