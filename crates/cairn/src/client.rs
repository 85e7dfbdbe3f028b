//! How the CLI's commands (`query`, `import`, `users`, `api-key`, `alert test`) reach a
//! server: credentials (Basic or an API key, as Elasticsearch takes them) and the CA
//! that signs its certificate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use clap::Args;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

#[derive(Args, Debug, Clone, Default)]
pub struct ClientAuth {
    /// Credentials for the server: user:password (Basic auth).
    #[arg(long, env = "CAIRN_USER", global = true)]
    pub user: Option<String>,
    /// Credentials for the server: an encoded API key (the `encoded` value).
    #[arg(long, env = "CAIRN_API_KEY", global = true)]
    pub api_key: Option<String>,
    /// CA certificate (PEM) that signs the server's certificate.
    #[arg(long, env = "CAIRN_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

impl ClientAuth {
    /// The `Authorization` header these credentials send, if any.
    pub fn authorization(&self) -> Option<String> {
        match (&self.user, &self.api_key) {
            (Some(u), _) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u)
            )),
            (None, Some(k)) => Some(format!("ApiKey {k}")),
            _ => None,
        }
    }

    /// The CA certificates to trust besides the system's.
    pub fn certificates(&self) -> Result<Vec<reqwest::Certificate>> {
        let Some(ca) = &self.ca_cert else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("invalid PEM in {}", ca.display()))
    }

    /// A blocking HTTP client that sends the credentials with every request.
    pub fn blocking_client(&self, timeout: Duration) -> Result<reqwest::blocking::Client> {
        crate::listener::install_crypto_provider();
        let mut b = reqwest::blocking::Client::builder().timeout(timeout);
        for c in self.certificates()? {
            b = b.add_root_certificate(c);
        }
        if let Some(a) = self.authorization() {
            let mut headers = HeaderMap::new();
            let mut v =
                HeaderValue::from_str(&a).context("invalid characters in the credentials")?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
            b = b.default_headers(headers);
        }
        b.build().context("cannot build the HTTP client")
    }
}
