//! `cairn users`, `cairn api-key` and `cairn cert`: identity management on a stopped
//! server's data dir (through the metastore, under the data-dir lock) or against a
//! running server (through `/_security/*`), and a self-signed CA for a quick TLS start.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use cairn_server::auth::{ApiKey, SecurityState, SECTION};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Where the identities live: a data dir (server stopped) or a running server.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Data directory of a stopped server (the default when --server is not given).
    #[arg(long, env = "CAIRN_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// URL of a running server, e.g. https://cairn:9200.
    #[arg(long, env = "CAIRN_SERVER", global = true)]
    server: Option<String>,
    #[command(flatten)]
    client: crate::client::ClientAuth,
}

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add a user (or replace its roles).
    Add {
        name: String,
        /// Role: admin, writer, reader, alerting or a custom role (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Limit the user's roles to these index patterns (repeatable).
        #[arg(long = "indices")]
        indices: Vec<String>,
        /// The password (else CAIRN_PASSWORD, else one is generated and printed).
        #[arg(long, env = "CAIRN_PASSWORD")]
        password: Option<String>,
    },
    /// Set a user's password.
    Passwd {
        name: String,
        #[arg(long, env = "CAIRN_PASSWORD")]
        password: Option<String>,
    },
    /// Remove a user.
    Rm { name: String },
    /// List users.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCmd {
    /// Create an API key; its secret is printed once.
    Create {
        #[arg(long, default_value = "cairn-cli")]
        name: String,
        /// Role: admin, writer, reader, alerting or a custom role (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Limit the key to these index patterns (repeatable or comma-separated).
        #[arg(long = "indices", value_delimiter = ',')]
        indices: Vec<String>,
        /// Lifetime, e.g. 90d or 12h (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List API keys.
    List,
    /// Invalidate an API key by id.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Write a CA and a server certificate signed by it (ca.crt, server.crt,
    /// server.key) for a quick TLS start; clients trust ca.crt.
    SelfSigned {
        /// Output directory.
        #[arg(long, default_value = "cairn-tls")]
        out: PathBuf,
        /// Host names and IP addresses the server certificate is valid for.
        #[arg(long = "host", default_values_t = vec!["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
    },
}

fn now_millis() -> i64 {
    cairn_core::time::now_micros() / 1000
}

fn offline<R>(t: &Target, f: impl FnOnce(&mut SecurityState) -> Result<R>) -> Result<R> {
    let dir = t
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("cairn-data"));
    let out = cairn_store::edit_extension_offline(&dir, SECTION, |v| -> Result<R> {
        let mut st = SecurityState::load(v).map_err(|e| anyhow::anyhow!(e.reason))?;
        let r = f(&mut st)?;
        *v = st.to_value();
        Ok(r)
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            if matches!(e, cairn_store::StoreError::Locked(_)) {
                "; while the server runs, use --server URL --user admin:PASSWORD"
            } else {
                ""
            }
        )
    })?;
    out
}

struct Online {
    base: String,
    client: reqwest::blocking::Client,
}

impl Online {
    fn new(t: &Target, base: &str) -> Result<Online> {
        Ok(Online {
            base: base.trim_end_matches('/').to_string(),
            client: t
                .client
                .blocking_client(std::time::Duration::from_secs(60))?,
        })
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = v
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            bail!("{status}: {reason}");
        }
        Ok(v)
    }
}

fn password_or_generate(p: Option<String>) -> (String, bool) {
    match p {
        Some(p) => (p, false),
        None => (cairn_server::auth::random_token(18), true),
    }
}

pub fn users(t: Target, cmd: UsersCmd) -> Result<()> {
    match (&t.server, cmd) {
        (
            None,
            UsersCmd::Add {
                name,
                roles,
                indices,
                password,
            },
        ) => {
            let (pw, generated) = password_or_generate(password);
            let lim = (!indices.is_empty()).then_some(indices);
            let created = offline(&t, |st| {
                st.put_user(&name, Some(&pw), roles, lim, now_millis())
                    .map_err(|e| anyhow::anyhow!(e.reason))
            })?;
            report_user(&name, created, generated.then_some(&pw));
        }
        (
            Some(url),
            UsersCmd::Add {
                name,
                roles,
                indices,
                password,
            },
        ) => {
            let (pw, generated) = password_or_generate(password);
            let mut body = json!({"password": pw, "roles": roles});
            if !indices.is_empty() {
                body["indices"] = json!(indices);
            }
            let v = Online::new(&t, url)?.call(
                reqwest::Method::PUT,
                &format!("/_security/user/{name}"),
                Some(body),
            )?;
            report_user(&name, v["created"] == true, generated.then_some(&pw));
        }
        (None, UsersCmd::Passwd { name, password }) => {
            let (pw, generated) = password_or_generate(password);
            offline(&t, |st| {
                st.set_password(&name, &pw)
                    .map_err(|e| anyhow::anyhow!(e.reason))
            })?;
            println!("password of user [{name}] changed");
            if generated {
                println!("new password (shown once): {pw}");
            }
        }
        (Some(url), UsersCmd::Passwd { name, password }) => {
            let (pw, generated) = password_or_generate(password);
            Online::new(&t, url)?.call(
                reqwest::Method::PUT,
                &format!("/_security/user/{name}/_password"),
                Some(json!({"password": pw})),
            )?;
            println!("password of user [{name}] changed");
            if generated {
                println!("new password (shown once): {pw}");
            }
        }
        (None, UsersCmd::Rm { name }) => {
            let found = offline(&t, |st| Ok(st.users.remove(&name).is_some()))?;
            if !found {
                bail!("user [{name}] not found");
            }
            println!("user [{name}] removed");
        }
        (Some(url), UsersCmd::Rm { name }) => {
            Online::new(&t, url)?.call(
                reqwest::Method::DELETE,
                &format!("/_security/user/{name}"),
                None,
            )?;
            println!("user [{name}] removed");
        }
        (None, UsersCmd::List) => {
            let st = offline(&t, |st| Ok(st.clone()))?;
            for (n, u) in &st.users {
                print_user(n, &u.roles, u.indices.as_deref(), u.enabled);
            }
        }
        (Some(url), UsersCmd::List) => {
            let v = Online::new(&t, url)?.call(reqwest::Method::GET, "/_security/user", None)?;
            for (n, u) in v.as_object().into_iter().flatten() {
                let roles: Vec<String> =
                    serde_json::from_value(u["roles"].clone()).unwrap_or_default();
                let idx: Option<Vec<String>> = serde_json::from_value(u["indices"].clone()).ok();
                print_user(n, &roles, idx.as_deref(), u["enabled"] != false);
            }
        }
    }
    Ok(())
}

fn report_user(name: &str, created: bool, generated: Option<&String>) {
    println!(
        "user [{name}] {}",
        if created { "created" } else { "updated" }
    );
    if let Some(pw) = generated {
        println!("password (shown once): {pw}");
    }
}

fn print_user(name: &str, roles: &[String], indices: Option<&[String]>, enabled: bool) {
    println!(
        "{name}\troles={}\tindices={}{}",
        roles.join(","),
        indices.map(|i| i.join(",")).unwrap_or_else(|| "*".into()),
        if enabled { "" } else { "\tdisabled" }
    );
}

pub fn api_keys(t: Target, cmd: ApiKeyCmd) -> Result<()> {
    match cmd {
        ApiKeyCmd::Create {
            name,
            roles,
            indices,
            expires,
        } => {
            let indices = (!indices.is_empty()).then_some(indices);
            let (id, secret) = match &t.server {
                None => {
                    let exp = cairn_server::security_expiration(expires.as_deref())
                        .map_err(|e| anyhow::anyhow!(e.reason))?;
                    offline(&t, |st| {
                        st.create_api_key(ApiKey {
                            name: name.clone(),
                            hash: String::new(),
                            owner: "_cli".into(),
                            roles,
                            indices,
                            role_descriptors: Default::default(),
                            created_millis: now_millis(),
                            expiration_millis: exp,
                            invalidated: false,
                        })
                        .map_err(|e| anyhow::anyhow!(e.reason))
                    })?
                }
                Some(url) => {
                    let mut body = json!({"name": name, "roles": roles, "indices": indices});
                    if let Some(e) = &expires {
                        body["expiration"] = json!(e);
                    }
                    let v = Online::new(&t, url)?.call(
                        reqwest::Method::POST,
                        "/_security/api_key",
                        Some(body),
                    )?;
                    (
                        v["id"].as_str().unwrap_or_default().to_string(),
                        v["api_key"].as_str().unwrap_or_default().to_string(),
                    )
                }
            };
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            println!("id:      {id}");
            println!("api_key: {secret}");
            println!("encoded: {encoded}");
            println!("(the secret is shown once; send it as `Authorization: ApiKey {encoded}`)");
        }
        ApiKeyCmd::List => {
            let keys: Vec<Value> = match &t.server {
                None => offline(&t, |st| {
                    Ok(st
                        .api_keys
                        .iter()
                        .map(|(id, k)| {
                            json!({"id": id, "name": k.name, "roles": k.roles, "indices": k.indices,
                                   "expiration": k.expiration_millis, "invalidated": k.invalidated})
                        })
                        .collect())
                })?,
                Some(url) => {
                    Online::new(&t, url)?.call(reqwest::Method::GET, "/_security/api_key", None)?
                        ["api_keys"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            for k in keys {
                println!(
                    "{}\t{}\troles={}\tindices={}\t{}",
                    k["id"].as_str().unwrap_or_default(),
                    k["name"].as_str().unwrap_or_default(),
                    k["roles"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default(),
                    k["indices"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_else(|| "*".into()),
                    if k["invalidated"] == true {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
        ApiKeyCmd::Revoke { id } => {
            match &t.server {
                None => {
                    let found = offline(&t, |st| {
                        Ok(st
                            .api_keys
                            .get_mut(&id)
                            .map(|k| k.invalidated = true)
                            .is_some())
                    })?;
                    if !found {
                        bail!("API key [{id}] not found");
                    }
                }
                Some(url) => {
                    let v = Online::new(&t, url)?.call(
                        reqwest::Method::DELETE,
                        "/_security/api_key",
                        Some(json!({"ids": [id]})),
                    )?;
                    if v["invalidated_api_keys"]
                        .as_array()
                        .is_none_or(|a| a.is_empty())
                        && v["previously_invalidated_api_keys"]
                            .as_array()
                            .is_none_or(|a| a.is_empty())
                    {
                        bail!("API key [{id}] not found");
                    }
                }
            }
            println!("API key [{id}] revoked");
        }
    }
    Ok(())
}

pub fn cert(cmd: CertCmd) -> Result<()> {
    let CertCmd::SelfSigned { out, hosts } = cmd;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let (ca_pem, cert_pem, key_pem) = self_signed(&hosts)?;
    write(&out.join("ca.crt"), &ca_pem, 0o644)?;
    write(&out.join("server.crt"), &cert_pem, 0o644)?;
    write(&out.join("server.key"), &key_pem, 0o600)?;
    println!(
        "wrote {0}/ca.crt, {0}/server.crt and {0}/server.key",
        out.display()
    );
    println!(
        "start:  cairn serve --tls-cert {0}/server.crt --tls-key {0}/server.key ...",
        out.display()
    );
    println!("trust:  clients use {}/ca.crt as their CA", out.display());
    Ok(())
}

fn write(path: &Path, data: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data.as_bytes())?;
    Ok(())
}

/// A CA and a server certificate for `hosts` signed by it: (ca, cert, key) PEM.
pub fn self_signed(hosts: &[String]) -> Result<(String, String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Cairn self-signed CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA")?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().context("generating the server key")?;
    let mut params = CertificateParams::new(hosts.to_vec()).context("invalid --host")?;
    params.distinguished_name.push(
        DnType::CommonName,
        hosts.first().cloned().unwrap_or_default(),
    );
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}
