//! The `kubernetes` source: container logs from the kubelet's `/var/log/pods` layout,
//! enriched with pod metadata from the API server.
//!
//! Files are tailed by the `file` source machinery (same identity, rotation and
//! checkpoint rules; the kubelet rotates `0.log` by renaming it to `0.log.<date>` and
//! compresses it later, so following the renamed file to its end is what keeps lines).
//! CRI and Docker json-file lines are decoded with partial-line reassembly by
//! `cairn-formats` (format sniffed per file). Namespace, pod name and uid and container
//! name come from the path; labels, annotations, node name and container image come
//! from one list + watch of this node's pods (`fieldSelector=spec.nodeName=...`), kept
//! in memory and for `metadata_ttl` after a pod is deleted so its last lines are still
//! enriched. Nothing is fetched per line.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{de_duration_pub, ReadFrom};
use crate::{set_path, AgentError, Event};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSourceConfig {
    #[serde(default = "default_pods_dir")]
    pub pods_dir: String,
    /// This node's name; default: `$NODE_NAME` (set from the downward API).
    #[serde(default)]
    pub node_name: Option<String>,
    /// API server URL; default: in-cluster (`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`).
    /// Empty string: no metadata (path fields only).
    #[serde(default)]
    pub api_server: Option<String>,
    #[serde(default = "default_token_file")]
    pub token_file: String,
    #[serde(default = "default_ca_file")]
    pub ca_file: String,
    #[serde(default)]
    pub include_namespaces: Vec<String>,
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// Pods with any of these `label: value` pairs are skipped.
    #[serde(default)]
    pub exclude_labels: BTreeMap<String, String>,
    #[serde(default = "default_ttl", deserialize_with = "de_duration_pub")]
    pub metadata_ttl: Duration,
    #[serde(default)]
    pub read_from: ReadFrom,
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    #[serde(default = "default_rescan", deserialize_with = "de_duration_pub")]
    pub rescan_interval: Duration,
}

fn default_pods_dir() -> String {
    "/var/log/pods".into()
}
fn default_token_file() -> String {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
}
fn default_ca_file() -> String {
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into()
}
fn default_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_rescan() -> Duration {
    Duration::from_secs(1)
}

/// What the API server told us about one pod.
#[derive(Debug, Clone, Default)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub labels: Map<String, Value>,
    pub annotations: Map<String, Value>,
    /// Container name -> image.
    pub images: HashMap<String, String>,
    pub deleted_at: Option<Instant>,
}

/// Pod metadata by uid, and namespace labels by name.
#[derive(Debug, Default)]
pub struct MetaCache {
    pub pods: HashMap<String, PodMeta>,
    pub namespaces: HashMap<String, Map<String, Value>>,
    /// The first list completed: the source waits for it (a while) before reading, so
    /// lines of running pods are enriched from the first one.
    pub synced: bool,
}

/// Waits up to `max` for the first pod list.
pub fn wait_synced(cache: &SharedCache, max: Duration) {
    let start = Instant::now();
    while start.elapsed() < max {
        if cache.read().unwrap_or_else(|p| p.into_inner()).synced {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!("kubernetes: no pod list yet; reading logs without metadata for now");
}

/// Shared cache filled by the watcher thread.
pub type SharedCache = Arc<RwLock<MetaCache>>;

/// `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log` -> (ns, pod, uid, container).
pub fn parse_pod_path(path: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = path.rsplit('/');
    let _file = parts.next()?;
    let container = parts.next()?;
    let pod_dir = parts.next()?;
    let mut it = pod_dir.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    Some((ns, pod, uid, container))
}

/// Kubernetes label keys contain dots (`app.kubernetes.io/name`); as JSON keys they
/// would be read as object paths, so dots become underscores (what Beats does too).
fn dedot(m: &Map<String, Value>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.replace('.', "_"), v.clone()))
            .collect(),
    )
}

/// Adds `kubernetes.*` fields to an event from its file path and the cache. Returns
/// false when the pod is excluded by namespace or label.
pub fn enrich(
    cfg: &KubernetesSourceConfig,
    cache: &SharedCache,
    ev: &mut Event,
    path: &str,
) -> bool {
    let Some((ns, pod, uid, container)) = parse_pod_path(path) else {
        return true;
    };
    if !cfg.include_namespaces.is_empty() && !cfg.include_namespaces.iter().any(|n| n == ns) {
        return false;
    }
    if cfg.exclude_namespaces.iter().any(|n| n == ns) {
        return false;
    }
    let f = &mut ev.fields;
    set_path(f, "kubernetes.namespace", Value::from(ns));
    set_path(f, "kubernetes.pod.name", Value::from(pod));
    set_path(f, "kubernetes.pod.uid", Value::from(uid));
    set_path(f, "kubernetes.container.name", Value::from(container));
    let cache = cache.read().unwrap_or_else(|p| p.into_inner());
    if let Some(meta) = cache.pods.get(uid) {
        for (k, v) in &cfg.exclude_labels {
            if meta.labels.get(k).and_then(Value::as_str) == Some(v.as_str()) {
                return false;
            }
        }
        if !meta.labels.is_empty() {
            set_path(f, "kubernetes.labels", dedot(&meta.labels));
        }
        if !meta.annotations.is_empty() {
            set_path(f, "kubernetes.annotations", dedot(&meta.annotations));
        }
        if let Some(node) = &meta.node {
            set_path(f, "kubernetes.node.name", Value::from(node.as_str()));
        }
        if let Some(image) = meta.images.get(container) {
            set_path(f, "kubernetes.container.image", Value::from(image.as_str()));
            set_path(f, "container.image.name", Value::from(image.as_str()));
        }
    }
    if let Some(labels) = cache.namespaces.get(ns) {
        if !labels.is_empty() {
            set_path(f, "kubernetes.namespace_labels", dedot(labels));
        }
    }
    true
}

fn pod_from_json(obj: &Value) -> Option<(String, PodMeta)> {
    let md = obj.get("metadata")?;
    let uid = md.get("uid")?.as_str()?.to_owned();
    let obj_map = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let mut images = HashMap::new();
    let spec = obj.get("spec");
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(list) = spec.and_then(|s| s.get(key)).and_then(Value::as_array) {
            for c in list {
                if let (Some(n), Some(i)) = (
                    c.get("name").and_then(Value::as_str),
                    c.get("image").and_then(Value::as_str),
                ) {
                    images.insert(n.to_owned(), i.to_owned());
                }
            }
        }
    }
    Some((
        uid,
        PodMeta {
            namespace: md
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            name: md
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            node: spec
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            labels: obj_map(md.get("labels")),
            annotations: obj_map(md.get("annotations")),
            images,
            deleted_at: None,
        },
    ))
}

/// The list/watch client.
pub struct Watcher {
    base: String,
    node: Option<String>,
    token_file: String,
    client: reqwest::blocking::Client,
    cache: SharedCache,
    ttl: Duration,
}

impl Watcher {
    /// `None` when no API server is configured or found (path metadata only).
    pub fn new(
        cfg: &KubernetesSourceConfig,
        cache: SharedCache,
    ) -> Result<Option<Watcher>, AgentError> {
        let base = match &cfg.api_server {
            Some(s) if s.is_empty() => return Ok(None),
            Some(s) => s.trim_end_matches('/').to_owned(),
            None => {
                match (
                    std::env::var("KUBERNETES_SERVICE_HOST"),
                    std::env::var("KUBERNETES_SERVICE_PORT"),
                ) {
                    (Ok(h), Ok(p)) => format!("https://{h}:{p}"),
                    _ => {
                        tracing::warn!("kubernetes source: no API server (not in a cluster): path metadata only");
                        return Ok(None);
                    }
                }
            }
        };
        // No overall timeout: a watch is a long-lived response.
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(None)
            .connect_timeout(Duration::from_secs(10));
        if let Ok(pem) = std::fs::read(&cfg.ca_file) {
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                AgentError::Config(format!("kubernetes ca_file {}: {e}", cfg.ca_file))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| AgentError::Config(format!("kubernetes client: {e}")))?;
        Ok(Some(Watcher {
            base,
            node: cfg
                .node_name
                .clone()
                .or_else(|| std::env::var("NODE_NAME").ok()),
            token_file: cfg.token_file.clone(),
            client,
            cache,
            ttl: cfg.metadata_ttl,
        }))
    }

    fn get(&self, path: &str) -> Result<reqwest::blocking::Response, String> {
        let mut req = self.client.get(format!("{}{}", self.base, path));
        // Re-read each time: projected service-account tokens are rotated.
        if let Ok(t) = std::fs::read_to_string(&self.token_file) {
            req = req.bearer_auth(t.trim());
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{path}: HTTP {}", resp.status()));
        }
        Ok(resp)
    }

    fn pods_query(&self) -> String {
        match &self.node {
            Some(n) => format!("fieldSelector=spec.nodeName%3D{}", n.replace('&', "%26")),
            None => String::new(),
        }
    }

    /// Lists pods and namespaces, replacing the cache; returns the pods' resourceVersion.
    fn list(&self) -> Result<String, String> {
        let pods: Value = self
            .get(&format!("/api/v1/pods?{}", self.pods_query()))?
            .json()
            .map_err(|e| e.to_string())?;
        let rv = pods
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let namespaces: Option<Value> = self
            .get("/api/v1/namespaces")
            .ok()
            .and_then(|r| r.json().ok());
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut listed = std::collections::HashSet::new();
        for item in pods
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some((uid, meta)) = pod_from_json(item) {
                listed.insert(uid.clone());
                cache.pods.insert(uid, meta);
            }
        }
        for (uid, meta) in cache.pods.iter_mut() {
            if !listed.contains(uid) && meta.deleted_at.is_none() {
                meta.deleted_at = Some(now);
            }
        }
        let ttl = self.ttl;
        cache
            .pods
            .retain(|_, m| m.deleted_at.is_none_or(|d| d.elapsed() < ttl));
        if let Some(ns) = namespaces {
            for item in ns
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) {
                    let labels = item
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    cache.namespaces.insert(name.to_owned(), labels);
                }
            }
        }
        cache.synced = true;
        tracing::info!(pods = cache.pods.len(), "kubernetes: pods listed");
        Ok(rv)
    }

    /// Follows a watch until the server closes it or it fails.
    fn watch(&self, rv: &str) -> Result<(), String> {
        let q = self.pods_query();
        let resp = self.get(&format!(
            "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}{}{q}",
            if q.is_empty() { "" } else { "&" }
        ))?;
        let reader = BufReader::new(resp);
        for line in reader.lines() {
            let line = line.map_err(|e| e.to_string())?;
            if line.trim().is_empty() {
                continue;
            }
            let ev: Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            let kind = ev.get("type").and_then(Value::as_str).unwrap_or("");
            let Some(obj) = ev.get("object") else {
                continue;
            };
            match kind {
                "ADDED" | "MODIFIED" => {
                    if let Some((uid, meta)) = pod_from_json(obj) {
                        self.cache
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .pods
                            .insert(uid, meta);
                    }
                }
                "DELETED" => {
                    if let Some((uid, _)) = pod_from_json(obj) {
                        if let Some(m) = self
                            .cache
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .pods
                            .get_mut(&uid)
                        {
                            m.deleted_at = Some(Instant::now());
                        }
                    }
                }
                // 410 Gone and friends: relist.
                "ERROR" => return Err(format!("watch error: {obj}")),
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs forever on its own thread.
    pub fn run(self) {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.list() {
                Ok(rv) => {
                    backoff = Duration::from_millis(500);
                    if let Err(e) = self.watch(&rv) {
                        tracing::warn!(error = %e, "kubernetes: watch ended; relisting");
                        std::thread::sleep(backoff);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "kubernetes: listing pods failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_paths() {
        assert_eq!(
            parse_pod_path("/var/log/pods/default_web-1_0f3c-11/nginx/0.log"),
            Some(("default", "web-1", "0f3c-11", "nginx"))
        );
        assert_eq!(parse_pod_path("0.log"), None);
    }

    #[test]
    fn enrichment_and_exclusion() {
        let cfg: KubernetesSourceConfig =
            serde_json::from_value(json!({"exclude_labels": {"logging": "off"}})).expect("cfg");
        let cache: SharedCache = Arc::default();
        let pod = json!({"metadata": {"uid": "u1", "name": "web-1", "namespace": "default",
            "labels": {"app.kubernetes.io/name": "web"}}, "spec": {"nodeName": "n1", "containers": [{"name": "nginx", "image": "nginx:1.27"}]}});
        let (uid, meta) = pod_from_json(&pod).expect("pod");
        cache.write().expect("lock").pods.insert(uid, meta);
        let mut ev = Event {
            fields: Map::new(),
            stream: 1,
            start: 0,
            id: "x".into(),
        };
        assert!(enrich(
            &cfg,
            &cache,
            &mut ev,
            "/var/log/pods/default_web-1_u1/nginx/0.log"
        ));
        let v = Value::Object(ev.fields);
        assert_eq!(
            v.pointer("/kubernetes/labels/app_kubernetes_io~1name"),
            Some(&json!("web"))
        );
        assert_eq!(
            v.pointer("/kubernetes/container/image"),
            Some(&json!("nginx:1.27"))
        );
        assert_eq!(v.pointer("/kubernetes/node/name"), Some(&json!("n1")));
        let off = json!({"metadata": {"uid": "u2", "name": "q", "namespace": "default", "labels": {"logging": "off"}}, "spec": {}});
        let (uid, meta) = pod_from_json(&off).expect("pod");
        cache.write().expect("lock").pods.insert(uid, meta);
        let mut ev = Event {
            fields: Map::new(),
            stream: 1,
            start: 0,
            id: "x".into(),
        };
        assert!(!enrich(
            &cfg,
            &cache,
            &mut ev,
            "/var/log/pods/default_q_u2/c/0.log"
        ));
    }
}
