//! `/_security/*` (Elasticsearch's user, role and API key APIs, the subset Cairn
//! supports) and the UI's sign-in endpoints under `/_cairn/auth/`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine;
use cairn_core::EsError;
use serde_json::{json, Value};

use crate::auth::{ApiKey, Authz, Principal, RoleDescriptor, SecurityState};
use crate::http::{body_bytes, json_body, json_response, ok, ApiError, ApiResult, Params};
use crate::Shared;

fn now_millis() -> i64 {
    cairn_core::time::now_micros() / 1000
}

fn caller() -> Principal {
    Authz::current()
        .map(|a| (*a.principal).clone())
        .unwrap_or_else(Principal::anonymous)
}

fn object_body(b: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body_bytes(b)?;
    match json_body(&bytes)? {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError(EsError::parsing(
            "request body must be a JSON object",
        ))),
        None => Ok(json!({})),
    }
}

fn strings(v: Option<&Value>, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(String::from).ok_or_else(|| {
                    ApiError(EsError::parsing(format!(
                        "[{key}] must be an array of strings"
                    )))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError(EsError::parsing(format!(
            "[{key}] must be an array of strings"
        )))),
    }
}

/// `GET /_security/_authenticate`.
pub async fn authenticate() -> ApiResult {
    ok(caller().authenticate_body())
}

// ---------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------

/// Parses Elasticsearch's `expiration` (`1d`, `90d`, `12h`) into an absolute time.
pub fn expiration_millis(v: Option<&Value>) -> Result<Option<i64>, EsError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match cairn_core::time::parse_duration(s) {
            Some(micros) if micros > 0 => Ok(Some(now_millis() + micros / 1000)),
            _ => Err(EsError::illegal_argument(format!(
                "failed to parse setting [expiration] with value [{s}] as a time value: unit is missing or unrecognized"
            ))),
        },
        Some(other) => Err(EsError::illegal_argument(format!(
            "failed to parse setting [expiration] with value [{other}] as a time value"
        ))),
    }
}

/// `POST|PUT /_security/api_key`. Besides Elasticsearch's `role_descriptors`, Cairn
/// accepts `roles` (built-in or custom role names) and `indices` (patterns limiting
/// them), which is what `cairn api-key create --role writer --indices 'logs-*'` sends.
pub async fn create_api_key(
    State(s): State<Shared>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = object_body(b)?;
    let me = caller();
    if !me.cluster("manage_own_api_key") {
        return Err(ApiError(me.denied_cluster(
            "cluster:admin/xpack/security/api_key/create",
            "manage_own_api_key",
        )));
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: api key name is required;",
        )));
    }
    let roles = strings(body.get("roles"), "roles")?.unwrap_or_default();
    let indices = strings(body.get("indices"), "indices")?;
    let role_descriptors: BTreeMap<String, RoleDescriptor> = match body.get("role_descriptors") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            ApiError(EsError::parsing(format!(
                "failed to parse [role_descriptors]: {e}"
            )))
        })?,
    };
    let expiration = expiration_millis(body.get("expiration"))?;
    let known_owner = s.auth.snapshot().users.contains_key(&me.username);
    if !known_owner && roles.is_empty() && role_descriptors.is_empty() {
        return Err(ApiError(EsError::illegal_argument(
            "an API key created without an authenticated user must name its privileges: give [roles] (e.g. [\"writer\"]) or [role_descriptors]",
        )));
    }
    let key = ApiKey {
        name: name.clone(),
        hash: String::new(),
        owner: me.username.clone(),
        roles,
        indices,
        role_descriptors,
        created_millis: now_millis(),
        expiration_millis: expiration,
        invalidated: false,
    };
    let (id, secret) = s.auth.update(&s.store, |st| st.create_api_key(key))?;
    s.auth.audit.event(
        "api_key_created",
        json!({"api_key.id": id, "api_key.name": name}),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut out = json!({"id": id, "name": name, "api_key": secret, "encoded": encoded});
    if let Some(e) = expiration {
        out["expiration"] = json!(e);
    }
    ok(out)
}

fn key_json(id: &str, k: &ApiKey) -> Value {
    json!({
        "id": id,
        "name": k.name,
        "creation": k.created_millis,
        "expiration": k.expiration_millis,
        "invalidated": k.invalidated,
        "username": k.owner,
        "realm": "native",
        "roles": k.roles,
        "indices": k.indices,
    })
}

/// `GET /_security/api_key` (`id`, `name`, `owner` filters): all keys with
/// `manage_api_key`, else the caller's own.
pub async fn get_api_keys(State(s): State<Shared>, Query(p): Query<Params>) -> ApiResult {
    let me = caller();
    let all = me.cluster("manage_api_key") && p.get("owner").map(String::as_str) != Some("true");
    let st = s.auth.snapshot();
    let keys: Vec<Value> = st
        .api_keys
        .iter()
        .filter(|(_, k)| all || k.owner == me.username)
        .filter(|(id, _)| p.get("id").is_none_or(|want| want == *id))
        .filter(|(_, k)| {
            p.get("name")
                .is_none_or(|want| cairn_core::mapping::wildcard_match(want, &k.name))
        })
        .map(|(id, k)| key_json(id, k))
        .collect();
    if keys.is_empty() && (p.contains_key("id") || p.contains_key("name")) {
        return Err(ApiError(EsError::resource_not_found("api key not found")));
    }
    ok(json!({"api_keys": keys}))
}

/// `DELETE /_security/api_key` with `ids`, `id`, `name` or `owner`.
pub async fn invalidate_api_keys(
    State(s): State<Shared>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = object_body(b)?;
    let me = caller();
    let manage_all = me.cluster("manage_api_key");
    let mut ids = strings(body.get("ids"), "ids")?.unwrap_or_default();
    if let Some(id) = body.get("id").and_then(Value::as_str) {
        ids.push(id.to_string());
    }
    let name = body.get("name").and_then(Value::as_str).map(String::from);
    let owner_only = body.get("owner").and_then(Value::as_bool).unwrap_or(false) || !manage_all;
    if ids.is_empty() && name.is_none() && !body.get("owner").is_some_and(|v| v == true) {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false;",
        )));
    }
    let me_name = me.username.clone();
    let (done, before) = s.auth.update(&s.store, |st: &mut SecurityState| {
        let mut done = Vec::new();
        let mut before = Vec::new();
        for (id, k) in st.api_keys.iter_mut() {
            let selected = (ids.is_empty() || ids.contains(id))
                && name
                    .as_deref()
                    .is_none_or(|n| cairn_core::mapping::wildcard_match(n, &k.name));
            if !selected || (owner_only && k.owner != me_name) {
                continue;
            }
            if k.invalidated {
                before.push(id.clone());
            } else {
                k.invalidated = true;
                done.push(id.clone());
            }
        }
        Ok((done, before))
    })?;
    for id in &done {
        s.auth
            .audit
            .event("api_key_invalidated", json!({"api_key.id": id}));
    }
    ok(json!({
        "invalidated_api_keys": done,
        "previously_invalidated_api_keys": before,
        "error_count": 0
    }))
}

// ---------------------------------------------------------------------------------
// Users and roles
// ---------------------------------------------------------------------------------

/// `PUT|POST /_security/user/{name}`: `password`, `roles`, `full_name`, `email`,
/// `enabled`, and Cairn's `indices` (patterns limiting every role of the user).
pub async fn put_user(
    State(s): State<Shared>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = object_body(b)?;
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .map(String::from);
    let roles = strings(body.get("roles"), "roles")?.unwrap_or_default();
    let indices = strings(body.get("indices"), "indices")?;
    let enabled = body.get("enabled").and_then(Value::as_bool);
    let full_name = body
        .get("full_name")
        .and_then(Value::as_str)
        .map(String::from);
    let email = body.get("email").and_then(Value::as_str).map(String::from);
    let created = s.auth.update(&s.store, |st| {
        let created = st.put_user(&name, password.as_deref(), roles, indices, now_millis())?;
        if let Some(u) = st.users.get_mut(&name) {
            if let Some(e) = enabled {
                u.enabled = e;
            }
            if full_name.is_some() {
                u.full_name = full_name;
            }
            if email.is_some() {
                u.email = email;
            }
        }
        Ok(created)
    })?;
    s.auth.audit.event(
        if created {
            "user_created"
        } else {
            "user_changed"
        },
        json!({"user.target.name": name}),
    );
    ok(json!({"created": created}))
}

/// `PUT|POST /_security/user/{name}/_password`.
pub async fn change_password(
    State(s): State<Shared>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = object_body(b)?;
    let Some(pw) = body.get("password").and_then(Value::as_str) else {
        return Err(ApiError(EsError::action_request_validation(
            "Validation Failed: 1: password must be specified;",
        )));
    };
    s.auth.update(&s.store, |st| st.set_password(&name, pw))?;
    s.auth
        .audit
        .event("user_password_changed", json!({"user.target.name": name}));
    ok(json!({}))
}

fn user_json(name: &str, u: &crate::auth::User) -> Value {
    json!({
        "username": name,
        "roles": u.roles,
        "full_name": u.full_name,
        "email": u.email,
        "metadata": {},
        "enabled": u.enabled,
        "indices": u.indices,
    })
}

/// `GET /_security/user[/{name}]` (comma lists allowed).
pub async fn get_users(State(s): State<Shared>, name: Option<Path<String>>) -> ApiResult {
    let st = s.auth.snapshot();
    let wanted: Option<Vec<String>> = name.map(|Path(n)| n.split(',').map(String::from).collect());
    let mut out = serde_json::Map::new();
    for (n, u) in &st.users {
        if wanted.as_ref().is_none_or(|w| w.contains(n)) {
            out.insert(n.clone(), user_json(n, u));
        }
    }
    if out.is_empty() && wanted.is_some() {
        return Ok(json_response(404, &json!({})));
    }
    ok(Value::Object(out))
}

/// `DELETE /_security/user/{name}`.
pub async fn delete_user(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let me = caller();
    if me.username == name {
        return Err(ApiError(EsError::illegal_argument(format!(
            "user [{name}] cannot delete itself"
        ))));
    }
    let found = s
        .auth
        .update(&s.store, |st| Ok(st.users.remove(&name).is_some()))?;
    if found {
        s.auth
            .audit
            .event("user_deleted", json!({"user.target.name": name}));
    }
    Ok(json_response(
        if found { 200 } else { 404 },
        &json!({"found": found}),
    ))
}

/// `PUT|POST /_security/role/{name}`: Elasticsearch's role descriptor (`cluster`,
/// `indices` with `names`, `privileges`, `allow_restricted_indices`).
pub async fn put_role(
    State(s): State<Shared>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = object_body(b)?;
    if crate::auth::builtin_role(&name).is_some() {
        return Err(ApiError(EsError::illegal_argument(format!(
            "role [{name}] is reserved and cannot be modified"
        ))));
    }
    let mut body = body;
    if let Some(obj) = body.as_object_mut() {
        // Keys Elasticsearch accepts that Cairn does not enforce are refused rather
        // than silently ignored: a role that looks restrictive must be.
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "cluster" | "indices" | "metadata" | "description"
            ) {
                return Err(ApiError(EsError::parsing(format!(
                    "failed to parse role [{name}]: field [{k}] is not supported by Cairn (supported: cluster, indices)"
                ))));
            }
        }
        obj.remove("metadata");
        obj.remove("description");
    }
    let role: RoleDescriptor = serde_json::from_value(body).map_err(|e| {
        ApiError(EsError::parsing(format!(
            "failed to parse role [{name}]: {e}"
        )))
    })?;
    let created = s.auth.update(&s.store, |st| {
        Ok(st.roles.insert(name.clone(), role).is_none())
    })?;
    s.auth
        .audit
        .event("role_changed", json!({"role.name": name}));
    ok(json!({"role": {"created": created}}))
}

/// `GET /_security/role[/{name}]`: custom roles and the built-in ones.
pub async fn get_roles(State(s): State<Shared>, name: Option<Path<String>>) -> ApiResult {
    let st = s.auth.snapshot();
    let wanted: Option<Vec<String>> = name.map(|Path(n)| n.split(',').map(String::from).collect());
    let mut out = serde_json::Map::new();
    let builtins = crate::auth::BUILTIN_ROLES
        .iter()
        .filter_map(|n| crate::auth::builtin_role(n).map(|r| (n.to_string(), r, true)));
    let custom = st.roles.iter().map(|(n, r)| (n.clone(), r.clone(), false));
    for (n, r, reserved) in builtins.chain(custom) {
        if wanted.as_ref().is_none_or(|w| w.contains(&n)) {
            let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
            v["metadata"] = if reserved {
                json!({"_reserved": true})
            } else {
                json!({})
            };
            out.insert(n, v);
        }
    }
    if out.is_empty() && wanted.is_some() {
        return Ok(json_response(404, &json!({})));
    }
    ok(Value::Object(out))
}

pub async fn delete_role(State(s): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let found = s
        .auth
        .update(&s.store, |st| Ok(st.roles.remove(&name).is_some()))?;
    if found {
        s.auth
            .audit
            .event("role_deleted", json!({"role.name": name}));
    }
    Ok(json_response(
        if found { 200 } else { 404 },
        &json!({"found": found}),
    ))
}

// ---------------------------------------------------------------------------------
// UI sessions
// ---------------------------------------------------------------------------------

fn session_body(s: &Shared, p: &Principal, csrf: Option<&str>) -> Value {
    json!({
        "authenticated": true,
        "auth_enabled": s.auth.enabled(),
        "username": p.username,
        "roles": p.roles,
        "csrf_token": csrf.or(p.csrf_token.as_deref()).unwrap_or(""),
        "now": cairn_core::time::format_millis(cairn_core::time::now_micros()),
    })
}

/// `POST /_cairn/auth/login` with `{"username", "password"}`: opens a session and
/// sets its cookie (HttpOnly, SameSite=Strict, Secure under TLS).
pub async fn login(State(s): State<Shared>, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = object_body(b)?;
    let user = body
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pass = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !s.auth.enabled() {
        return ok(session_body(&s, &Principal::anonymous(), None));
    }
    let p = s.auth.password_login(user, pass)?;
    let (sid, csrf) = s.auth.open_session(&p.username);
    s.auth
        .audit
        .event("login", json!({"user.name": p.username}));
    let mut r = json_response(200, &session_body(&s, &p, Some(&csrf)));
    if let Ok(v) = HeaderValue::from_str(&s.auth.session_cookie(&sid)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /_cairn/auth/session`: who is signed in (401 when nobody is).
pub async fn session(State(s): State<Shared>) -> ApiResult {
    ok(session_body(&s, &caller(), None))
}

/// `POST /_cairn/auth/logout`.
pub async fn logout(State(s): State<Shared>, headers: HeaderMap) -> Response {
    s.auth.close_session(&headers);
    let mut r = json_response(200, &json!({"acknowledged": true}));
    if let Ok(v) = HeaderValue::from_str(&s.auth.session_cookie("")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
