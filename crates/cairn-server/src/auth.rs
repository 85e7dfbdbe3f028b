//! Authentication and authorization.
//!
//! Identities live in the metastore (extension section `security`): users with
//! argon2id password hashes, API keys stored as SHA-256 hashes (the secret is 128
//! random bits, so a slow hash buys nothing; the key is shown once), and custom roles
//! in Elasticsearch's role-descriptor shape. Built-in roles are `admin`, `writer`
//! (ingest plus the handshakes shippers make), `reader` (search and the UI) and
//! `alerting` (rules); each grant of a role may be limited to index patterns.
//!
//! Requests authenticate with `Authorization: Basic`, `Authorization: ApiKey
//! base64(id:key)` (what Beats, Fluent Bit, Vector and the official clients send) or the
//! UI's session cookie. The [`middleware`] classifies every route into the privilege it
//! needs ([`classify`]), answers 401/403 in Elasticsearch's shape, and runs the handler
//! inside a task-local [`Authz`] so that index resolution ([`Authz::filter`]) expands
//! wildcards only to the indices the caller may see, as Elasticsearch does.
//!
//! Internal `.cairn-*` indices are "restricted": only a grant with
//! `allow_restricted_indices` (the admin role) covers them; the server itself writes
//! them through the store, not through HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cairn_core::mapping::wildcard_match;
use cairn_core::EsError;
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::Audit;
use crate::http::ApiError;
use crate::Shared;

/// Metastore extension section holding [`SecurityState`].
pub const SECTION: &str = "security";
/// The UI's session cookie.
pub const SESSION_COOKIE: &str = "cairn_sid";
/// Header the UI sends with the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-cairn-csrf";
pub const BUILTIN_ROLES: [&str; 4] = ["admin", "writer", "reader", "alerting"];
/// The server's own identity for in-process work (the alert engine's state, rules
/// from the rules directory). Only [`RunAs`] can carry it, and user names cannot start
/// with `_`, so no stored user or network request can take it.
pub const SYSTEM_USER: &str = "_system";

/// Request extension set by in-process callers (the alert engine): the request runs
/// with the privileges of this user, as if they had authenticated. Extensions cannot
/// be set from the network, so this is not an authentication bypass.
#[derive(Clone, Debug)]
pub struct RunAs(pub String);

// ---------------------------------------------------------------------------------
// Stored state
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SecurityState {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// By key id.
    #[serde(default)]
    pub api_keys: BTreeMap<String, ApiKey>,
    /// Custom roles by name.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleDescriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// argon2id, PHC string format.
    pub password_hash: String,
    pub roles: Vec<String>,
    /// When set, every role of the user applies only to indices matching these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub created_millis: i64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Who created it; a key never has more privileges than its owner had.
    pub owner: String,
    /// Roles granted to the key (Cairn's `--role`), limited by `indices`.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    /// Elasticsearch's `role_descriptors` given at creation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_descriptors: BTreeMap<String, RoleDescriptor>,
    pub created_millis: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_millis: Option<i64>,
    #[serde(default)]
    pub invalidated: bool,
}

/// Elasticsearch's role descriptor (the subset Cairn enforces).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RoleDescriptor {
    #[serde(default)]
    pub cluster: Vec<String>,
    #[serde(default)]
    pub indices: Vec<IndexGrant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexGrant {
    pub names: Vec<String>,
    pub privileges: Vec<String>,
    #[serde(default)]
    pub allow_restricted_indices: bool,
}

impl SecurityState {
    pub fn load(v: &Value) -> Result<SecurityState, EsError> {
        if v.is_null() {
            return Ok(SecurityState::default());
        }
        serde_json::from_value(v.clone())
            .map_err(|e| EsError::internal(format!("the stored security state is unreadable: {e}")))
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The role descriptor a role name stands for (built-in or custom).
    pub fn role(&self, name: &str) -> Option<RoleDescriptor> {
        builtin_role(name).or_else(|| self.roles.get(name).cloned())
    }

    /// Checks role names exist; the error names the first unknown one.
    pub fn check_roles(&self, roles: &[String]) -> Result<(), EsError> {
        match roles.iter().find(|r| self.role(r).is_none()) {
            Some(r) => Err(EsError::illegal_argument(format!(
                "unknown role [{r}]: use one of {} or a role created with PUT /_security/role/{{name}}",
                BUILTIN_ROLES.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// Adds or replaces a user.
    pub fn put_user(
        &mut self,
        name: &str,
        password: Option<&str>,
        roles: Vec<String>,
        indices: Option<Vec<String>>,
        now_millis: i64,
    ) -> Result<bool, EsError> {
        validate_name(name, "user")?;
        self.check_roles(&roles)?;
        let created = !self.users.contains_key(name);
        let password_hash = match (password, self.users.get(name)) {
            (Some(p), _) => hash_password(p)?,
            (None, Some(u)) => u.password_hash.clone(),
            (None, None) => {
                return Err(EsError::action_request_validation(
                    "Validation Failed: 1: password must be specified unless you are updating an existing user;",
                ))
            }
        };
        let prev = self.users.get(name).cloned();
        self.users.insert(
            name.to_string(),
            User {
                password_hash,
                roles,
                indices,
                enabled: prev.as_ref().map(|u| u.enabled).unwrap_or(true),
                full_name: prev.as_ref().and_then(|u| u.full_name.clone()),
                email: prev.as_ref().and_then(|u| u.email.clone()),
                created_millis: prev.map(|u| u.created_millis).unwrap_or(now_millis),
            },
        );
        Ok(created)
    }

    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), EsError> {
        let hash = hash_password(password)?;
        match self.users.get_mut(name) {
            Some(u) => {
                u.password_hash = hash;
                Ok(())
            }
            None => Err(EsError::resource_not_found(format!(
                "user [{name}] not found"
            ))),
        }
    }

    /// Creates an API key; returns `(id, secret)`. The secret is not stored.
    pub fn create_api_key(&mut self, mut key: ApiKey) -> Result<(String, String), EsError> {
        for r in &key.roles {
            self.check_roles(std::slice::from_ref(r))?;
        }
        let id = random_token(15);
        let secret = random_token(16);
        key.hash = sha256_hex(secret.as_bytes());
        self.api_keys.insert(id.clone(), key);
        Ok((id, secret))
    }
}

fn validate_name(name: &str, what: &str) -> Result<(), EsError> {
    if name.is_empty()
        || name.len() > 507
        || name.starts_with('_')
        || name.chars().any(|c| c.is_control() || c == ':' || c == '/')
    {
        return Err(EsError::illegal_argument(format!(
            "invalid {what} name [{name}]: it must be 1-507 printable characters, not start with '_' and contain no ':' or '/'"
        )));
    }
    Ok(())
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn sha256_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hash_password(password: &str) -> Result<String, EsError> {
    if password.chars().count() < 6 {
        return Err(EsError::illegal_argument(
            "passwords must be at least [6] characters long",
        ));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| EsError::internal(format!("cannot make a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EsError::internal(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn grant(names: &[&str], privileges: &[&str], restricted: bool) -> IndexGrant {
    IndexGrant {
        names: names.iter().map(|s| s.to_string()).collect(),
        privileges: privileges.iter().map(|s| s.to_string()).collect(),
        allow_restricted_indices: restricted,
    }
}

/// The built-in roles.
pub fn builtin_role(name: &str) -> Option<RoleDescriptor> {
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Some(match name {
        "admin" => RoleDescriptor {
            cluster: strs(&["all"]),
            indices: vec![grant(&["*"], &["all"], true)],
        },
        "writer" => RoleDescriptor {
            cluster: strs(&[
                "monitor",
                "manage_index_templates",
                "manage_ilm",
                "manage_pipeline",
            ]),
            indices: vec![grant(
                &["*"],
                &[
                    "create_doc",
                    "index",
                    "create_index",
                    "auto_configure",
                    "view_index_metadata",
                ],
                false,
            )],
        },
        "reader" => RoleDescriptor {
            cluster: strs(&["monitor", "ui", "read_alerting"]),
            indices: vec![grant(&["*"], &["read", "view_index_metadata"], false)],
        },
        "alerting" => RoleDescriptor {
            cluster: strs(&["monitor", "ui", "manage_alerting"]),
            indices: vec![grant(&["*"], &["read", "view_index_metadata"], false)],
        },
        _ => return None,
    })
}

/// A role limited to index patterns: its index grants apply only to `patterns`.
fn limit_role(mut r: RoleDescriptor, patterns: Option<&Vec<String>>) -> RoleDescriptor {
    if let Some(p) = patterns {
        for g in &mut r.indices {
            if g.names.iter().any(|n| n == "*") {
                g.names = p.clone();
            } else {
                g.names
                    .retain(|n| p.iter().any(|lim| wildcard_match(lim, n)));
            }
            // A limit never widens to the restricted indices.
            g.allow_restricted_indices =
                g.allow_restricted_indices && p.iter().any(|lim| lim.starts_with(".cairn"));
        }
        r.indices.retain(|g| !g.names.is_empty());
    }
    r
}

// ---------------------------------------------------------------------------------
// Privileges
// ---------------------------------------------------------------------------------

/// What an index-level action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPriv {
    Read,
    ViewMeta,
    Index,
    CreateDoc,
    Delete,
    CreateIndex,
    DeleteIndex,
    Manage,
    Maintenance,
}

impl IndexPriv {
    /// Elasticsearch's action name, for 403 messages.
    pub fn action(self) -> &'static str {
        match self {
            IndexPriv::Read => "indices:data/read/search",
            IndexPriv::ViewMeta => "indices:admin/get",
            IndexPriv::Index => "indices:data/write/index",
            IndexPriv::CreateDoc => "indices:data/write/index[op_type=create]",
            IndexPriv::Delete => "indices:data/write/delete",
            IndexPriv::CreateIndex => "indices:admin/create",
            IndexPriv::DeleteIndex => "indices:admin/delete",
            IndexPriv::Manage => "indices:admin/mapping/put",
            IndexPriv::Maintenance => "indices:admin/refresh",
        }
    }

    /// The named privileges that grant this action.
    fn granted_by(self) -> &'static [&'static str] {
        match self {
            IndexPriv::Read => &["all", "read"],
            IndexPriv::ViewMeta => &["all", "read", "view_index_metadata", "manage", "monitor"],
            IndexPriv::Index => &["all", "write", "index"],
            IndexPriv::CreateDoc => &["all", "write", "index", "create", "create_doc"],
            IndexPriv::Delete => &["all", "write", "delete"],
            IndexPriv::CreateIndex => &["all", "manage", "create_index", "auto_configure"],
            IndexPriv::DeleteIndex => &["all", "manage", "delete_index"],
            IndexPriv::Manage => &["all", "manage"],
            IndexPriv::Maintenance => &["all", "manage", "maintenance"],
        }
    }
}

/// Cluster-level privileges (Elasticsearch's names, plus Cairn's `ui`,
/// `read_alerting` and `manage_alerting`).
fn cluster_granted_by(p: &str) -> &'static [&'static str] {
    match p {
        "monitor" => &["all", "monitor", "manage"],
        "manage" => &["all", "manage"],
        "manage_index_templates" => &["all", "manage", "manage_index_templates"],
        "manage_ilm" => &["all", "manage", "manage_ilm"],
        "manage_pipeline" => &["all", "manage", "manage_pipeline"],
        "manage_security" => &["all", "manage_security"],
        "manage_api_key" => &["all", "manage_security", "manage_api_key"],
        "manage_own_api_key" => &[
            "all",
            "manage_security",
            "manage_api_key",
            "manage_own_api_key",
        ],
        "ui" => &["all", "ui"],
        "read_alerting" => &["all", "read_alerting", "manage_alerting"],
        "manage_alerting" => &["all", "manage_alerting"],
        _ => &["all"],
    }
}

pub fn is_restricted(index: &str) -> bool {
    index.starts_with(".cairn-")
}

/// The data stream a backing index (`.ds-<stream>-<yyyy.MM.dd>-<generation>`)
/// belongs to: privileges on a data stream cover its backing indices, as in
/// Elasticsearch.
fn data_stream_of(index: &str) -> Option<&str> {
    let rest = index.strip_prefix(".ds-")?;
    let (rest, generation) = rest.rsplit_once('-')?;
    let (stream, date) = rest.rsplit_once('-')?;
    (generation.bytes().all(|b| b.is_ascii_digit())
        && date.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    .then_some(stream)
}

fn descriptor_allows_index(d: &RoleDescriptor, p: IndexPriv, index: &str) -> bool {
    let stream = data_stream_of(index);
    d.indices.iter().any(|g| {
        (g.allow_restricted_indices || !is_restricted(index))
            && g.names
                .iter()
                .any(|n| wildcard_match(n, index) || stream.is_some_and(|s| wildcard_match(n, s)))
            && g.privileges
                .iter()
                .any(|x| p.granted_by().contains(&x.as_str()))
    })
}

fn descriptor_allows_cluster(d: &RoleDescriptor, p: &str) -> bool {
    let by = cluster_granted_by(p);
    d.cluster.iter().any(|c| by.contains(&c.as_str()))
}

/// Who is calling, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub roles: Vec<String>,
    /// `native`, `api_key`, `session`, `internal` (the server itself) or `anonymous`
    /// (auth off).
    pub realm: &'static str,
    pub api_key: Option<(String, String)>,
    /// Privileges in layers: an action is allowed when every layer allows it (an API
    /// key is limited by its owner's privileges). Empty when `superuser`.
    layers: Vec<Vec<RoleDescriptor>>,
    superuser: bool,
    /// Set for cookie sessions: state-changing requests must echo it.
    pub csrf_token: Option<String>,
}

impl Principal {
    /// The caller when authentication is off (loopback default): everything allowed.
    pub fn anonymous() -> Principal {
        Principal {
            username: "_anonymous".into(),
            roles: vec!["admin".into()],
            realm: "anonymous",
            api_key: None,
            layers: Vec::new(),
            superuser: true,
            csrf_token: None,
        }
    }

    pub fn cluster(&self, p: &str) -> bool {
        self.superuser
            || (!self.layers.is_empty()
                && self
                    .layers
                    .iter()
                    .all(|l| l.iter().any(|d| descriptor_allows_cluster(d, p))))
    }

    pub fn index(&self, p: IndexPriv, index: &str) -> bool {
        self.superuser
            || (!self.layers.is_empty()
                && self
                    .layers
                    .iter()
                    .all(|l| l.iter().any(|d| descriptor_allows_index(d, p, index))))
    }

    /// Whether the caller may see `index` at all (any index privilege on it).
    pub fn visible(&self, index: &str) -> bool {
        use IndexPriv::*;
        [Read, ViewMeta, Index, CreateDoc, Delete, Manage]
            .iter()
            .any(|&p| self.index(p, index))
    }

    /// Whether an index template over `pattern` is within the caller's index
    /// grants (a writer limited to `logs-*` may install a template for `logs-app-*`,
    /// not for `*`): the pattern, read literally, must match a granted name.
    pub fn covers_pattern(&self, pattern: &str) -> bool {
        self.superuser
            || (!self.layers.is_empty()
                && self.layers.iter().all(|l| {
                    l.iter().any(|d| {
                        d.indices.iter().any(|g| {
                            g.names.iter().any(|n| wildcard_match(n, pattern))
                                && (g.allow_restricted_indices || !is_restricted(pattern))
                        })
                    })
                }))
    }

    fn describe(&self) -> String {
        match &self.api_key {
            Some((id, _)) => format!(
                "API key id [{id}] of user [{}] with effective roles [{}]",
                self.username,
                self.roles.join(",")
            ),
            None => format!(
                "user [{}] with effective roles [{}]",
                self.username,
                self.roles.join(",")
            ),
        }
    }

    /// Elasticsearch's 403 for an index action.
    pub fn denied_index(&self, p: IndexPriv, index: &str) -> EsError {
        EsError::new(
            403,
            "security_exception",
            format!(
                "action [{}] is unauthorized for {} on indices [{index}], this action is granted by the index privileges [{}]",
                p.action(),
                self.describe(),
                p.granted_by().join(",")
            ),
        )
    }

    pub fn denied_cluster(&self, action: &str, p: &str) -> EsError {
        EsError::new(
            403,
            "security_exception",
            format!(
                "action [{action}] is unauthorized for {}, this action is granted by the cluster privileges [{}]",
                self.describe(),
                cluster_granted_by(p).join(",")
            ),
        )
    }

    /// `GET /_security/_authenticate`.
    pub fn authenticate_body(&self) -> Value {
        let mut v = json!({
            "username": self.username,
            "roles": self.roles,
            "full_name": null,
            "email": null,
            "metadata": {},
            "enabled": true,
            "authentication_realm": {"name": self.realm, "type": self.realm},
            "lookup_realm": {"name": self.realm, "type": self.realm},
            "authentication_type": match self.realm {
                "api_key" => "api_key",
                "anonymous" => "anonymous",
                _ => "realm",
            },
        });
        if let Some((id, name)) = &self.api_key {
            v["api_key"] = json!({"id": id, "name": name});
        }
        v
    }
}

/// Resolves the privileges of a user (by name) from the stored state.
fn user_layer(st: &SecurityState, user: &User) -> Vec<RoleDescriptor> {
    user.roles
        .iter()
        .filter_map(|r| st.role(r))
        .map(|r| limit_role(r, user.indices.as_ref()))
        .collect()
}

fn principal_for_user(st: &SecurityState, name: &str, realm: &'static str) -> Option<Principal> {
    let user = st.users.get(name).filter(|u| u.enabled)?;
    let layer = user_layer(st, user);
    let superuser = user.roles.iter().any(|r| r == "admin") && user.indices.is_none();
    Some(Principal {
        username: name.to_string(),
        roles: user.roles.clone(),
        realm,
        api_key: None,
        layers: vec![layer],
        superuser,
        csrf_token: None,
    })
}

fn principal_for_key(st: &SecurityState, id: &str, key: &ApiKey) -> Option<Principal> {
    let mut layers = Vec::new();
    // The owner's privileges bound the key's (an owner removed since leaves the key
    // with only what it was granted explicitly, as keys created by the CLI are).
    if let Some(owner) = st.users.get(&key.owner) {
        let owner_is_super = owner.roles.iter().any(|r| r == "admin") && owner.indices.is_none();
        if !owner_is_super {
            layers.push(user_layer(st, owner));
        }
    }
    let mut own: Vec<RoleDescriptor> = key
        .roles
        .iter()
        .filter_map(|r| st.role(r))
        .map(|r| limit_role(r, key.indices.as_ref()))
        .collect();
    own.extend(key.role_descriptors.values().cloned());
    if !own.is_empty() {
        layers.push(own);
    }
    let owner_layerless = layers.is_empty();
    let superuser = owner_layerless
        && (key.roles.is_empty() && key.role_descriptors.is_empty())
        && st
            .users
            .get(&key.owner)
            .is_some_and(|o| o.roles.iter().any(|r| r == "admin") && o.indices.is_none());
    if layers.is_empty() && !superuser {
        return None;
    }
    Some(Principal {
        username: key.owner.clone(),
        roles: if key.roles.is_empty() && key.role_descriptors.is_empty() {
            st.users
                .get(&key.owner)
                .map(|u| u.roles.clone())
                .unwrap_or_default()
        } else {
            key.roles
                .iter()
                .cloned()
                .chain(key.role_descriptors.keys().cloned())
                .collect()
        },
        realm: "api_key",
        api_key: Some((id.to_string(), key.name.clone())),
        layers,
        superuser,
        csrf_token: None,
    })
}

// ---------------------------------------------------------------------------------
// The runtime: state, credential cache, sessions
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Authentication required (`--auth`, or any non-loopback listen address).
    pub enabled: bool,
    /// Serving TLS: session cookies get `Secure`.
    pub tls: bool,
    pub session_idle: Duration,
    pub session_max: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            tls: false,
            session_idle: Duration::from_secs(8 * 3600),
            session_max: Duration::from_secs(24 * 3600),
        }
    }
}

struct Session {
    username: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// The server's authentication state.
pub struct Auth {
    pub config: AuthConfig,
    state: RwLock<SecurityState>,
    /// SHA-256 of `user\0password` that verified recently -> (user, verified at).
    /// argon2 is deliberately slow; shippers send Basic auth on every bulk request.
    cache: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    sessions: Mutex<HashMap<String, Session>>,
    pub audit: Audit,
}

const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;
const SESSIONS_MAX: usize = 10_000;

impl Auth {
    pub fn new(config: AuthConfig, state: SecurityState, audit: Audit) -> Auth {
        Auth {
            config,
            state: RwLock::new(state),
            cache: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            audit,
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn snapshot(&self) -> SecurityState {
        self.state.read().clone()
    }

    /// Applies a change to the security state and persists it in the metastore.
    /// Credential caches and sessions of changed users are dropped.
    pub fn update<R>(
        &self,
        store: &cairn_store::Store,
        f: impl FnOnce(&mut SecurityState) -> Result<R, EsError>,
    ) -> Result<R, EsError> {
        let mut st = self.state.write();
        let mut next = st.clone();
        let out = f(&mut next)?;
        {
            let mut meta = store.meta();
            meta.extensions.insert(SECTION.to_string(), next.to_value());
            store.save_meta(&meta)?;
        }
        *st = next;
        self.cache.lock().clear();
        let users = &st.users;
        self.sessions
            .lock()
            .retain(|_, s| users.get(&s.username).is_some_and(|u| u.enabled));
        Ok(out)
    }

    /// Authenticates a request's credentials. `Ok(None)`: no credentials at all.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, EsError> {
        if let Some(v) = headers.get(header::AUTHORIZATION) {
            let v = v
                .to_str()
                .map_err(|_| unauthenticated("unable to authenticate", ""))?;
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            let rest = rest.trim();
            return match scheme.to_ascii_lowercase().as_str() {
                "basic" => self.basic(rest).map(Some),
                "apikey" => self.api_key(rest).map(Some),
                "bearer" => Err(unauthenticated(
                    "unable to authenticate with provided credentials: bearer tokens are not supported, use Basic or ApiKey",
                    "",
                )),
                _ => Err(unauthenticated(
                    &format!("unsupported authorization scheme [{scheme}]"),
                    "",
                )),
            };
        }
        if let Some(sid) = cookie(headers, SESSION_COOKIE) {
            return self.session(&sid).map(Some);
        }
        Ok(None)
    }

    fn basic(&self, b64: &str) -> Result<Principal, EsError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthenticated("invalid basic authentication header encoding", ""))?;
        let (user, pass) = raw
            .split_once(':')
            .ok_or_else(|| unauthenticated("invalid basic authentication header value", ""))?;
        self.password_login(user, pass)
    }

    /// Checks a username and password (Basic auth and the UI's login).
    pub fn password_login(&self, user: &str, pass: &str) -> Result<Principal, EsError> {
        let fail = || {
            self.audit.event(
                "authentication_failed",
                json!({"user.name": user, "realm": "native", "event.outcome": "failure"}),
            );
            unauthenticated(
                &format!("unable to authenticate user [{user}] for REST request"),
                user,
            )
        };
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(user.as_bytes());
            h.update([0]);
            h.update(pass.as_bytes());
            h.finalize().into()
        };
        let cached = self
            .cache
            .lock()
            .get(&key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(u, _)| u.clone());
        let st = self.state.read();
        if cached.as_deref() != Some(user) {
            let Some(u) = st.users.get(user) else {
                return Err(fail());
            };
            if !u.enabled || !verify_password(pass, &u.password_hash) {
                return Err(fail());
            }
            let mut c = self.cache.lock();
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(key, (user.to_string(), Instant::now()));
        }
        principal_for_user(&st, user, "native").ok_or_else(fail)
    }

    fn api_key(&self, b64: &str) -> Result<Principal, EsError> {
        let fail = |id: &str| {
            self.audit.event(
                "authentication_failed",
                json!({"api_key.id": id, "realm": "api_key", "event.outcome": "failure"}),
            );
            unauthenticated("unable to authenticate with provided credentials", "")
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| fail(""))?;
        let (id, secret) = raw.split_once(':').ok_or_else(|| fail(""))?;
        let st = self.state.read();
        let key = st.api_keys.get(id).ok_or_else(|| fail(id))?;
        if key.invalidated || key.hash != sha256_hex(secret.as_bytes()) {
            return Err(fail(id));
        }
        if key
            .expiration_millis
            .is_some_and(|e| e <= cairn_core::time::now_micros() / 1000)
        {
            self.audit.event(
                "authentication_failed",
                json!({"api_key.id": id, "reason": "expired", "event.outcome": "failure"}),
            );
            return Err(unauthenticated("api key is expired", ""));
        }
        principal_for_key(&st, id, key).ok_or_else(|| fail(id))
    }

    fn session(&self, sid: &str) -> Result<Principal, EsError> {
        let (username, csrf) = {
            let mut sessions = self.sessions.lock();
            let Some(s) = sessions.get_mut(sid) else {
                return Err(unauthenticated(
                    "the session has expired or was closed; sign in again",
                    "",
                ));
            };
            if s.last_seen.elapsed() > self.config.session_idle
                || s.created.elapsed() > self.config.session_max
            {
                sessions.remove(sid);
                return Err(unauthenticated(
                    "the session has expired; sign in again",
                    "",
                ));
            }
            s.last_seen = Instant::now();
            (s.username.clone(), s.csrf.clone())
        };
        let st = self.state.read();
        let mut p = principal_for_user(&st, &username, "session")
            .ok_or_else(|| unauthenticated("the session's user no longer exists", ""))?;
        p.csrf_token = Some(csrf);
        Ok(p)
    }

    /// Opens a UI session; returns `(session id, csrf token)`.
    pub fn open_session(&self, username: &str) -> (String, String) {
        let sid = random_token(32);
        let csrf = random_token(24);
        let mut sessions = self.sessions.lock();
        if sessions.len() >= SESSIONS_MAX {
            let idle = self.config.session_idle;
            sessions.retain(|_, s| s.last_seen.elapsed() < idle);
            if sessions.len() >= SESSIONS_MAX {
                // Evict the oldest rather than refuse a sign-in.
                if let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
                {
                    sessions.remove(&oldest);
                }
            }
        }
        let now = Instant::now();
        sessions.insert(
            sid.clone(),
            Session {
                username: username.to_string(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        (sid, csrf)
    }

    pub fn close_session(&self, headers: &HeaderMap) {
        if let Some(sid) = cookie(headers, SESSION_COOKIE) {
            self.sessions.lock().remove(&sid);
        }
    }

    /// The `Set-Cookie` value for a session id (empty id: clear the cookie).
    pub fn session_cookie(&self, sid: &str) -> String {
        let secure = if self.config.tls { "; Secure" } else { "" };
        if sid.is_empty() {
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
        } else {
            format!(
                "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.config.session_max.as_secs()
            )
        }
    }

    /// A principal for an in-process caller running as `username`.
    pub fn run_as(&self, username: &str) -> Option<Principal> {
        if !self.enabled() {
            return Some(Principal::anonymous());
        }
        if username == SYSTEM_USER {
            return Some(Principal {
                username: SYSTEM_USER.into(),
                realm: "internal",
                ..Principal::anonymous()
            });
        }
        let st = self.state.read();
        principal_for_user(&st, username, "native")
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Elasticsearch's 401, with the `WWW-Authenticate` challenges in the body too.
pub fn unauthenticated(reason: &str, _user: &str) -> EsError {
    EsError::new(401, "security_exception", reason).with(
        "header",
        json!({"WWW-Authenticate": ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"]}),
    )
}

// ---------------------------------------------------------------------------------
// Route classification
// ---------------------------------------------------------------------------------

/// What a request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// No authentication (the UI's static files and sign-in).
    Public,
    /// Any authenticated caller (handshakes, `_authenticate`, sessions).
    Authenticated,
    Cluster(&'static str, &'static str),
    /// An index privilege on the index expression of the path. Wildcards are
    /// filtered at resolution time; concrete names are checked up front.
    Index(IndexPriv, String),
    /// Checked per item by the handler (`_bulk`), or per target (`_msearch`).
    Deferred(IndexPriv),
    /// Installing an index template: `manage_index_templates` plus its patterns
    /// within the caller's index grants.
    Template,
    /// API key management: own keys, or all with `manage_api_key`.
    ApiKeys,
}

/// Maps a request to what it needs. Unknown routes need `all`, so a new endpoint is
/// closed until it is classified here.
pub fn classify(method: &Method, path: &str, query: &str) -> Need {
    use IndexPriv::*;
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let read_only = matches!(*method, Method::GET | Method::HEAD);
    let Some(&first) = segs.first() else {
        return Need::Authenticated; // GET / and HEAD /
    };
    if first == "ui" || first == "favicon.ico" {
        return Need::Public;
    }
    if !first.starts_with('_') {
        let index = first.to_string();
        let second = segs.get(1).copied().unwrap_or("");
        let p = match (second, method.clone()) {
            ("", Method::PUT) => CreateIndex,
            ("", Method::DELETE) => DeleteIndex,
            ("", _) => ViewMeta,
            ("_doc", Method::GET | Method::HEAD) | ("_source", _) => Read,
            ("_doc", Method::DELETE) => Delete,
            ("_doc", _) if segs.len() == 2 => CreateDoc,
            ("_doc", _) if query.contains("op_type=create") => CreateDoc,
            ("_doc", _) | ("_update", _) => Index,
            ("_create", _) => CreateDoc,
            ("_delete_by_query", _) => Delete,
            ("_bulk", _) => return Need::Deferred(Index),
            ("_search" | "_msearch" | "_count" | "_field_caps" | "_validate" | "_pit", _) => Read,
            ("_mapping" | "_settings", Method::GET | Method::HEAD) => ViewMeta,
            ("_mapping" | "_settings", _) => Manage,
            ("_stats", _) => ViewMeta,
            ("_refresh" | "_flush", _) => Maintenance,
            _ => return Need::Cluster("all", "cluster:admin/unknown"),
        };
        return Need::Index(p, index);
    }
    let second = segs.get(1).copied().unwrap_or("");
    let all = || "_all".to_string();
    match first {
        "_license" | "_xpack" | "_nodes" | "_cluster" => Need::Authenticated,
        "_bulk" => Need::Deferred(Index),
        "_search" | "_count" | "_field_caps" => Need::Index(Read, all()),
        "_msearch" => Need::Deferred(Read),
        "_pit" => Need::Authenticated,
        "_mapping" | "_stats" => Need::Index(ViewMeta, all()),
        "_refresh" | "_flush" => Need::Index(Maintenance, all()),
        "_cat" => match second {
            "indices" | "count" => Need::Index(
                ViewMeta,
                segs.get(2).map(|s| s.to_string()).unwrap_or_else(all),
            ),
            _ => Need::Authenticated,
        },
        "_resolve" => Need::Index(
            ViewMeta,
            segs.get(2).map(|s| s.to_string()).unwrap_or_else(all),
        ),
        "_data_stream" => match (method.clone(), segs.get(1)) {
            (_, None) => Need::Index(ViewMeta, all()),
            (m, Some(name)) if m == Method::GET || m == Method::HEAD => {
                Need::Index(ViewMeta, name.to_string())
            }
            (Method::PUT, Some(name)) if segs.len() == 2 => {
                Need::Index(CreateIndex, name.to_string())
            }
            (Method::DELETE, Some(name)) => Need::Index(DeleteIndex, name.to_string()),
            (_, Some(name)) => Need::Index(Manage, name.to_string()),
        },
        "_index_template" | "_component_template" | "_template" => {
            if read_only {
                Need::Cluster("manage_index_templates", "indices:admin/index_template/get")
            } else {
                Need::Template
            }
        }
        "_ilm" => Need::Cluster("manage_ilm", "cluster:admin/ilm/put"),
        "_ingest" => Need::Cluster("manage_pipeline", "cluster:admin/ingest/pipeline/put"),
        "_security" => match second {
            "_authenticate" => Need::Authenticated,
            "api_key" => Need::ApiKeys,
            _ => Need::Cluster("manage_security", "cluster:admin/xpack/security/user/put"),
        },
        "_cairn" => match second {
            "auth" => match segs.get(2).copied() {
                Some("login") => Need::Public,
                _ => Need::Authenticated,
            },
            "metrics" => Need::Cluster("monitor", "cluster:monitor/prometheus"),
            "health" => Need::Public,
            "alerting" => {
                if read_only {
                    Need::Cluster("read_alerting", "cluster:cairn/alerting/read")
                } else {
                    Need::Cluster("manage_alerting", "cluster:cairn/alerting/write")
                }
            }
            "saved_objects" | "ui" => Need::Cluster("ui", "cluster:cairn/ui"),
            _ => Need::Cluster("all", "cluster:cairn/admin"),
        },
        _ => Need::Cluster("all", "cluster:admin/unknown"),
    }
}

// ---------------------------------------------------------------------------------
// The middleware and the task-local authorization context
// ---------------------------------------------------------------------------------

/// The authorization context of the request being served.
#[derive(Clone, Debug)]
pub struct Authz {
    pub principal: Arc<Principal>,
    /// The index privilege the route needs (for wildcard filtering).
    pub need: Option<IndexPriv>,
    pub auth_enabled: bool,
}

tokio::task_local! {
    static AUTHZ: Authz;
}

impl Authz {
    /// The current request's context. Outside a request (a bug when auth is on) the
    /// answer fails closed: nothing is visible.
    pub fn current() -> Option<Authz> {
        AUTHZ.try_with(|a| a.clone()).ok()
    }

    /// Runs `fut` with `authz` as the current context (for handlers that move work
    /// to other tasks).
    pub async fn scope<F: std::future::Future>(authz: Authz, fut: F) -> F::Output {
        AUTHZ.scope(authz, fut).await
    }
}

/// Whether the current caller may perform `p` on `index`. Fails closed outside a
/// request context.
pub fn allowed(p: IndexPriv, index: &str) -> Result<(), EsError> {
    match Authz::current() {
        Some(a) if a.principal.index(p, index) => Ok(()),
        Some(a) => Err(a.principal.denied_index(p, index)),
        None => Err(EsError::new(
            403,
            "security_exception",
            "no authorization context for this request",
        )),
    }
}

/// Filter for wildcard expansion: may the current caller see `index` with the
/// route's privilege?
pub fn may_see(index: &str) -> bool {
    match Authz::current() {
        Some(a) if a.principal.superuser => true,
        Some(a) => match a.need {
            Some(p) => a.principal.index(p, index),
            None => a.principal.visible(index),
        },
        // No request context: internal callers (retention, tests) when authentication
        // is off. With authentication on, every HTTP request runs inside a context
        // (the middleware wraps every route), so a missing one is a bug: fail closed.
        None => !AUTH_ON.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Whether this process serves with authentication on (set by the router), so that
/// code running without a request context fails closed.
pub static AUTH_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Authorizes concrete (non-wildcard) names of an index expression.
pub fn check_expression(p: IndexPriv, expr: &str) -> Result<(), EsError> {
    let Some(a) = Authz::current() else {
        return allowed(p, expr);
    };
    if a.principal.superuser {
        return Ok(());
    }
    for part in expr.split(',').map(str::trim) {
        if part.is_empty() || part == "_all" || part.contains('*') || part.starts_with('-') {
            continue;
        }
        if !a.principal.index(p, part) {
            return Err(a.principal.denied_index(p, part));
        }
    }
    Ok(())
}

/// Authenticates and authorizes every request, then runs it inside its [`Authz`].
pub async fn middleware(
    axum::extract::State(s): axum::extract::State<Shared>,
    req: Request<Body>,
    next: Next,
) -> Response {
    match authorize(&s, req).await {
        Ok((authz, req)) => AUTHZ.scope(authz, next.run(req)).await,
        Err(e) => {
            let status = e.status;
            let mut r = ApiError(e).into_response();
            if status == 401 {
                r.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"security\", charset=\"UTF-8\""),
                );
                r.headers_mut()
                    .append(header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"));
            }
            r
        }
    }
}

async fn authorize(s: &Shared, req: Request<Body>) -> Result<(Authz, Request<Body>), EsError> {
    let need = classify(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    );
    let index_need = match &need {
        Need::Index(p, _) | Need::Deferred(p) => Some(*p),
        _ => None,
    };
    let auth = &s.auth;
    let principal = if let Some(RunAs(user)) = req.extensions().get::<RunAs>() {
        auth.run_as(user).ok_or_else(|| {
            EsError::new(
                403,
                "security_exception",
                format!("the user [{user}] this work runs as no longer exists or is disabled"),
            )
        })?
    } else if !auth.enabled() {
        Principal::anonymous()
    } else if need == Need::Public {
        Principal {
            layers: vec![Vec::new()],
            superuser: false,
            username: "_public".into(),
            roles: Vec::new(),
            ..Principal::anonymous()
        }
    } else {
        match auth.authenticate(req.headers())? {
            Some(p) => p,
            None => {
                return Err(unauthenticated(
                    &format!(
                        "missing authentication credentials for REST request [{}]",
                        req.uri()
                    ),
                    "",
                ))
            }
        }
    };
    // Cookie sessions: state-changing requests must echo the CSRF token (a cross-site
    // page can make the browser send the cookie, not read the token).
    if let Some(token) = &principal.csrf_token {
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(token.as_str()) {
                return Err(EsError::new(
                    403,
                    "security_exception",
                    format!("missing or wrong [{CSRF_HEADER}] header: state-changing requests from a browser session must carry the session's CSRF token"),
                ));
            }
        }
    }
    let mut req = req;
    match &need {
        Need::Public | Need::Authenticated | Need::Deferred(_) | Need::ApiKeys => {}
        Need::Cluster(p, action) => {
            if !principal.cluster(p) {
                return Err(principal.denied_cluster(action, p));
            }
        }
        Need::Index(p, expr) => {
            let expr = percent_decode(expr);
            if !principal.superuser {
                for part in expr.split(',').map(str::trim) {
                    if part.is_empty()
                        || part == "_all"
                        || part.contains('*')
                        || part.starts_with('-')
                    {
                        continue;
                    }
                    if !principal.index(*p, part) {
                        return Err(principal.denied_index(*p, part));
                    }
                }
            }
        }
        Need::Template => {
            if !principal.cluster("manage_index_templates") {
                return Err(principal
                    .denied_cluster("indices:admin/index_template/put", "manage_index_templates"));
            }
            if !principal.superuser && *req.method() != Method::DELETE {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, s.config.max_body_bytes)
                    .await
                    .map_err(|e| EsError::new(413, "content_too_long_exception", e.to_string()))?;
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let patterns: Vec<String> =
                    match v.get("index_patterns").or_else(|| v.get("template")) {
                        Some(Value::String(p)) => vec![p.clone()],
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                if let Some(bad) = patterns.iter().find(|p| !principal.covers_pattern(p)) {
                    return Err(principal.denied_index(IndexPriv::CreateIndex, bad));
                }
                req = Request::from_parts(parts, Body::from(bytes));
            }
        }
    }
    let authz = Authz {
        principal: Arc::new(principal),
        need: index_need,
        auth_enabled: auth.enabled(),
    };
    Ok((authz, req))
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Hex digits are read as bytes: slicing the `str` could split a multi-byte
        // character after the `%` (found by fuzzing the HTTP path).
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SecurityState {
        let mut st = SecurityState::default();
        st.put_user("root", Some("secret-1"), vec!["admin".into()], None, 0)
            .unwrap();
        st.put_user(
            "shipper",
            Some("secret-2"),
            vec!["writer".into()],
            Some(vec!["logs-*".into()]),
            0,
        )
        .unwrap();
        st.put_user("viewer", Some("secret-3"), vec!["reader".into()], None, 0)
            .unwrap();
        st
    }

    #[test]
    fn roles_and_limits() {
        let st = state();
        let w = principal_for_user(&st, "shipper", "native").unwrap();
        assert!(w.index(IndexPriv::CreateDoc, "logs-app"));
        assert!(!w.index(IndexPriv::CreateDoc, "metrics-app"));
        assert!(!w.index(IndexPriv::Read, "logs-app"));
        assert!(w.cluster("manage_index_templates"));
        assert!(!w.cluster("manage_security"));
        assert!(w.covers_pattern("logs-app-*"));
        assert!(!w.covers_pattern("*"));
        let r = principal_for_user(&st, "viewer", "native").unwrap();
        assert!(r.index(IndexPriv::Read, "anything"));
        assert!(!r.index(IndexPriv::Read, ".cairn-ui"), "restricted indices");
        assert!(!r.index(IndexPriv::CreateDoc, "logs-app"));
        let a = principal_for_user(&st, "root", "native").unwrap();
        assert!(a.index(IndexPriv::Index, ".cairn-ui"));
    }

    #[test]
    fn api_key_bounded_by_owner() {
        let mut st = state();
        let key = ApiKey {
            name: "k".into(),
            hash: String::new(),
            owner: "viewer".into(),
            roles: vec!["writer".into()],
            indices: None,
            role_descriptors: BTreeMap::new(),
            created_millis: 0,
            expiration_millis: None,
            invalidated: false,
        };
        let (id, _) = st.create_api_key(key).unwrap();
        let p = principal_for_key(&st, &id, &st.api_keys[&id]).unwrap();
        // The owner (reader) cannot write, so neither can the key.
        assert!(!p.index(IndexPriv::CreateDoc, "logs-x"));
        assert!(
            !p.index(IndexPriv::Read, "logs-x"),
            "the key has only writer"
        );
    }

    #[test]
    fn classification() {
        use IndexPriv::*;
        assert_eq!(classify(&Method::GET, "/", ""), Need::Authenticated);
        assert_eq!(
            classify(&Method::POST, "/logs/_doc", ""),
            Need::Index(CreateDoc, "logs".into())
        );
        assert_eq!(
            classify(&Method::PUT, "/logs/_doc/1", ""),
            Need::Index(Index, "logs".into())
        );
        assert_eq!(
            classify(&Method::DELETE, "/logs", ""),
            Need::Index(DeleteIndex, "logs".into())
        );
        assert_eq!(
            classify(&Method::GET, "/logs-*/_search", ""),
            Need::Index(Read, "logs-*".into())
        );
        assert_eq!(classify(&Method::POST, "/_bulk", ""), Need::Deferred(Index));
        assert_eq!(classify(&Method::GET, "/ui/app.js", ""), Need::Public);
        assert_eq!(
            classify(&Method::POST, "/_cairn/auth/login", ""),
            Need::Public
        );
        assert_eq!(
            classify(&Method::PUT, "/_index_template/x", ""),
            Need::Template
        );
        assert!(matches!(
            classify(&Method::GET, "/_whatever", ""),
            Need::Cluster("all", _)
        ));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("logs%2Dapp,metrics%2a"), "logs-app,metrics*");
        assert_eq!(percent_decode("a%2"), "a%2");
        // A `%` followed by a multi-byte character used to panic.
        assert_eq!(
            percent_decode("%2\u{19f}sec%\u{19f}"),
            "%2\u{19f}sec%\u{19f}"
        );
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }

    #[test]
    fn password_hashing() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(hash_password("short").is_err());
    }
}
