//! How the engine talks to search: one small trait, [`SearchBackend`], that sends an
//! Elasticsearch REST request and returns the status and JSON body.
//!
//! Two implementations: [`HttpBackend`] for any Elasticsearch-compatible URL (what
//! `cairn alert test --server` uses) and, in `cairn-server`, an in-process one that
//! calls the server's own router with no network. Everything above the trait — search,
//! count, scroll, documents in the state index — is written once in [`Es`], so both
//! paths get the same semantics.

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Value};

use crate::error::{AlertError, Result};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// Sends one Elasticsearch REST request as `run_as` (the rule owner; backends that
/// authenticate with their own credentials may ignore it).
pub trait SearchBackend: Send + Sync {
    fn request<'a>(
        &'a self,
        method: Method,
        path_and_query: &'a str,
        body: Option<&'a Value>,
        run_as: &'a str,
    ) -> BoxFut<'a, Result<(u16, Value)>>;
}

/// Credentials for [`HttpBackend`].
#[derive(Clone, Debug)]
pub enum HttpAuth {
    None,
    Basic { user: String, password: String },
    ApiKey(String),
}

/// Any Elasticsearch-compatible server over HTTP(S) (rustls, aws-lc-rs provider).
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    auth: HttpAuth,
}

impl HttpBackend {
    pub fn new(base_url: &str, auth: HttpAuth) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| AlertError::Transport(e.to_string()))?;
        Ok(HttpBackend {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            auth,
        })
    }
}

impl SearchBackend for HttpBackend {
    fn request<'a>(
        &'a self,
        method: Method,
        path_and_query: &'a str,
        body: Option<&'a Value>,
        _run_as: &'a str,
    ) -> BoxFut<'a, Result<(u16, Value)>> {
        Box::pin(async move {
            let url = format!("{}{}", self.base, path_and_query);
            let m = match method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
                Method::Delete => reqwest::Method::DELETE,
            };
            let mut req = self.client.request(m, &url);
            req = match &self.auth {
                HttpAuth::None => req,
                HttpAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
                HttpAuth::ApiKey(k) => req.header("Authorization", format!("ApiKey {k}")),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| AlertError::Transport(format!("{url}: {e}")))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| AlertError::Transport(e.to_string()))?;
            Ok((status, body_value(&bytes)))
        })
    }
}

/// Percent-encodes a path segment (document ids may hold anything).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn reason(v: &Value) -> String {
    v.pointer("/error/reason")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string().chars().take(300).collect())
}

/// The Elasticsearch calls the engine makes, on top of any backend.
#[derive(Clone, Copy)]
pub struct Es<'a> {
    pub backend: &'a dyn SearchBackend,
    pub user: &'a str,
}

impl<'a> Es<'a> {
    pub fn new(backend: &'a dyn SearchBackend, user: &'a str) -> Self {
        Es { backend, user }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value> {
        let (status, v) = self.backend.request(method, path, body, self.user).await?;
        if status >= 300 {
            return Err(AlertError::Backend {
                status,
                what: what.to_string(),
                reason: reason(&v),
            });
        }
        Ok(v)
    }

    pub async fn search(&self, index: &str, body: &Value, scroll: Option<&str>) -> Result<Value> {
        let mut path = format!(
            "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
            encode_segment(index)
        );
        if let Some(s) = scroll {
            path.push_str(&format!("&scroll={s}"));
        }
        self.call(Method::Post, &path, Some(body), "search").await
    }

    pub async fn scroll(&self, scroll_id: &str, keepalive: &str) -> Result<Value> {
        let body = json!({"scroll": keepalive, "scroll_id": scroll_id});
        self.call(Method::Post, "/_search/scroll", Some(&body), "scroll")
            .await
    }

    pub async fn clear_scroll(&self, scroll_id: &str) {
        let body = json!({"scroll_id": scroll_id});
        let _ = self
            .backend
            .request(Method::Delete, "/_search/scroll", Some(&body), self.user)
            .await;
    }

    pub async fn count(&self, index: &str, body: &Value) -> Result<u64> {
        let path = format!(
            "/{}/_count?ignore_unavailable=true&allow_no_indices=true",
            encode_segment(index)
        );
        let v = self.call(Method::Post, &path, Some(body), "count").await?;
        Ok(v.get("count").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Indexes (creates or replaces) a document; `refresh` makes it searchable at once.
    pub async fn put_doc(&self, index: &str, id: &str, doc: &Value, refresh: bool) -> Result<()> {
        let path = format!(
            "/{}/_doc/{}{}",
            encode_segment(index),
            encode_segment(id),
            if refresh { "?refresh=true" } else { "" }
        );
        self.call(Method::Put, &path, Some(doc), "index document")
            .await
            .map(|_| ())
    }

    /// Creates a document only if its id is new; Ok(false) if it already existed.
    pub async fn create_doc(&self, index: &str, id: &str, doc: &Value) -> Result<bool> {
        let path = format!(
            "/{}/_create/{}?refresh=true",
            encode_segment(index),
            encode_segment(id)
        );
        let (status, v) = self
            .backend
            .request(Method::Put, &path, Some(doc), self.user)
            .await?;
        match status {
            200..=299 => Ok(true),
            409 => Ok(false),
            _ => Err(AlertError::Backend {
                status,
                what: "create document".into(),
                reason: reason(&v),
            }),
        }
    }

    /// The `_source` of a document, None if it (or its index) does not exist.
    pub async fn get_doc(&self, index: &str, id: &str) -> Result<Option<Value>> {
        let path = format!("/{}/_doc/{}", encode_segment(index), encode_segment(id));
        let (status, v) = self
            .backend
            .request(Method::Get, &path, None, self.user)
            .await?;
        match status {
            200 => Ok(v.get("_source").cloned()),
            404 => Ok(None),
            _ => Err(AlertError::Backend {
                status,
                what: "get document".into(),
                reason: reason(&v),
            }),
        }
    }

    pub async fn delete_doc(&self, index: &str, id: &str) -> Result<bool> {
        let path = format!(
            "/{}/_doc/{}?refresh=true",
            encode_segment(index),
            encode_segment(id)
        );
        let (status, v) = self
            .backend
            .request(Method::Delete, &path, None, self.user)
            .await?;
        match status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(AlertError::Backend {
                status,
                what: "delete document".into(),
                reason: reason(&v),
            }),
        }
    }
}

/// A response body as JSON: `null` when empty, the text as a string when it is not
/// JSON (an error page from a proxy), so callers can report it.
pub fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}
