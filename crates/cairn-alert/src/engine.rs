//! The running engine: loads rules (a rules directory polled for changes, plus rules
//! saved through the API), runs each on its own `run_every` schedule, records alerts in
//! the state index before sending them, and delivers them with per-alerter retries
//! until `alert_time_limit`.
//!
//! Crash safety comes from ordering: a run's alerts are recorded (create-only, keyed by
//! their idempotency key) before the rule's end time is saved, and marked sent only
//! after delivery. A crash before the end time is saved re-runs the window and finds the
//! alerts already recorded; a crash between delivery and marking resends with the same key.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::alerters;
use crate::backend::{Es, SearchBackend};
use crate::config::{self, Globals, Rule};
use crate::error::{AlertError, Result};
use crate::runner::{AlertDraft, Runner};
use crate::state::{AlertRecord, AlertStatus, SavedRule, StateStore, DEFAULT_STATE_INDEX};

/// The engine's notion of "now" (microseconds), injectable for tests over old data.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// Wall-clock time, honouring `CAIRN_NOW` like the rest of Cairn.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        cairn_core::time::now_micros()
    }
}

/// User the engine acts as for its own state: the server's internal identity
/// (`cairn_server::auth::SYSTEM_USER`), which exists whatever users the data dir has
/// and cannot be used from the network.
pub const ENGINE_USER: &str = "_system";

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub rules_dir: Option<PathBuf>,
    pub state_index: String,
    pub poll_interval: Duration,
    /// Owner recorded for rules read from the rules directory.
    pub dir_owner: String,
    /// How often the sender looks for alerts to (re)send.
    pub send_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rules_dir: None,
            state_index: DEFAULT_STATE_INDEX.into(),
            poll_interval: Duration::from_secs(2),
            // Rules in the rules directory were put there by the server's operator:
            // they run with the server's own identity.
            dir_owner: ENGINE_USER.into(),
            send_interval: Duration::from_secs(1),
        }
    }
}

/// Per-rule counters for `/_cairn/metrics`.
#[derive(Default)]
pub struct RuleMetrics {
    pub runs: AtomicU64,
    pub run_micros: AtomicU64,
    pub errors: AtomicU64,
    pub hits: AtomicU64,
    pub matches: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleSource {
    File(PathBuf),
    Api,
}

struct RuleEntry {
    rule: Option<Rule>,
    source: RuleSource,
    owner: String,
    yaml: Option<String>,
    error: Option<String>,
    /// File fingerprint (mtime, len) for hot reload.
    fingerprint: Option<(SystemTime, u64)>,
    task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    last_run: Option<i64>,
}

pub struct Engine {
    backend: Arc<dyn SearchBackend>,
    clock: Arc<dyn Clock>,
    cfg: EngineConfig,
    globals: Mutex<Globals>,
    state: StateStore,
    rules: tokio::sync::Mutex<BTreeMap<String, RuleEntry>>,
    /// Status visible without the async lock (for listing while a reload runs).
    last_runs: Mutex<HashMap<String, i64>>,
    /// The last failed run of each rule (cleared by a successful one): what a user
    /// needs to see when a rule stays silent (a 403 on its index, a bad query).
    last_errors: Mutex<HashMap<String, String>>,
    silences: Mutex<HashMap<String, BTreeMap<String, i64>>>,
    queue: Mutex<Vec<AlertRecord>>,
    wake_sender: Notify,
    metrics: Mutex<BTreeMap<String, (String, Arc<RuleMetrics>)>>,
    http: reqwest::Client,
    stop_tx: watch::Sender<bool>,
    background: Mutex<Vec<JoinHandle<()>>>,
    /// The state index is created on the first write, so a server without rules
    /// never grows one.
    index_ready: std::sync::atomic::AtomicBool,
}

fn read_globals(dir: &Path) -> Result<Globals> {
    for name in ["config.yaml", "config.yml"] {
        let p = dir.join(name);
        if p.exists() {
            let text = std::fs::read_to_string(&p).map_err(|e| AlertError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            let v = cairn_core::yaml::parse(&text)
                .map_err(|e| AlertError::config(name, e.to_string()))?;
            return Globals::from_value(&v);
        }
    }
    Ok(Globals::default())
}

fn is_rule_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.starts_with('.')
        && !name.starts_with('_')
        && name != "config.yaml"
        && name != "config.yml"
}

impl Engine {
    pub fn new(
        backend: Arc<dyn SearchBackend>,
        clock: Arc<dyn Clock>,
        cfg: EngineConfig,
    ) -> Result<Arc<Engine>> {
        let globals = match &cfg.rules_dir {
            Some(d) => read_globals(d)?,
            None => Globals::default(),
        };
        let (stop_tx, _) = watch::channel(false);
        Ok(Arc::new(Engine {
            backend,
            clock,
            state: StateStore::new(&cfg.state_index),
            cfg,
            globals: Mutex::new(globals),
            rules: tokio::sync::Mutex::new(BTreeMap::new()),
            last_runs: Mutex::new(HashMap::new()),
            last_errors: Mutex::new(HashMap::new()),
            silences: Mutex::new(HashMap::new()),
            queue: Mutex::new(Vec::new()),
            wake_sender: Notify::new(),
            metrics: Mutex::new(BTreeMap::new()),
            http: alerters::http_client()?,
            stop_tx,
            background: Mutex::new(Vec::new()),
            index_ready: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    fn es(&self) -> Es<'_> {
        Es::new(self.backend.as_ref(), ENGINE_USER)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Loads state and rules and starts the scheduler, the sender and the directory watcher.
    pub async fn start(self: &Arc<Self>) -> Result<()> {
        let pending = self.state.pending_alerts(self.es()).await?;
        if !pending.is_empty() {
            tracing::info!(pending = pending.len(), "resuming unsent alerts");
        }
        self.queue.lock().extend(pending);
        for (rule_id, key, until) in self.state.silences(self.es()).await? {
            self.silences
                .lock()
                .entry(rule_id)
                .or_default()
                .insert(key, until);
        }
        for saved in self.state.saved_rules(self.es()).await? {
            self.install_api_rule(saved.id, saved.yaml, saved.owner)
                .await;
        }
        self.scan_dir().await;
        let me = self.clone();
        let sender = tokio::spawn(async move { me.sender_loop().await });
        let me = self.clone();
        let watcher = tokio::spawn(async move { me.watch_loop().await });
        self.background.lock().extend([sender, watcher]);
        Ok(())
    }

    /// Stops every rule after its current run and the sender after its current send.
    pub async fn shutdown(&self) {
        let _ = self.stop_tx.send(true);
        self.wake_sender.notify_one();
        let tasks: Vec<JoinHandle<()>> = {
            let mut rules = self.rules.lock().await;
            rules
                .values_mut()
                .filter_map(|e| e.task.take())
                .map(|(tx, h)| {
                    let _ = tx.send(true);
                    h
                })
                .collect()
        };
        for h in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
        }
        let bg: Vec<JoinHandle<()>> = std::mem::take(&mut *self.background.lock());
        for h in bg {
            let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
        }
        tracing::info!("alert engine stopped");
    }

    async fn ensure_index(&self) -> Result<()> {
        if !self.index_ready.load(Ordering::Acquire) {
            self.state.ensure_index(self.es()).await?;
            self.index_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        *self.stop_tx.borrow()
    }

    async fn watch_loop(self: Arc<Self>) {
        let mut stop = self.stop_tx.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                _ = stop.changed() => return,
            }
            if self.stopping() {
                return;
            }
            self.scan_dir().await;
        }
    }

    /// Picks up new, changed and deleted rule files. A file that fails to load is
    /// reported and skipped; the previous version of that rule keeps running.
    pub async fn scan_dir(self: &Arc<Self>) {
        let Some(dir) = self.cfg.rules_dir.clone() else {
            return;
        };
        if let Ok(g) = read_globals(&dir) {
            *self.globals.lock() = g;
        }
        let mut files: BTreeMap<String, (PathBuf, (SystemTime, u64))> = BTreeMap::new();
        match std::fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let p = e.path();
                    if !is_rule_file(&p) {
                        continue;
                    }
                    let Ok(md) = e.metadata() else { continue };
                    let id = p
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("")
                        .to_string();
                    files.insert(
                        id,
                        (
                            p,
                            (md.modified().unwrap_or(SystemTime::UNIX_EPOCH), md.len()),
                        ),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the rules directory");
                return;
            }
        }
        let mut rules = self.rules.lock().await;
        // Deleted files.
        let gone: Vec<String> = rules
            .iter()
            .filter(|(id, e)| matches!(e.source, RuleSource::File(_)) && !files.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(mut e) = rules.remove(&id) {
                tracing::info!(rule = %id, "rule file removed: stopping the rule");
                stop_task(&mut e).await;
            }
        }
        let globals = self.globals.lock().clone();
        for (id, (path, fp)) in files {
            if let Some(e) = rules.get(&id) {
                if e.source == RuleSource::Api {
                    tracing::warn!(rule = %id, "a rule saved through the API has the same id as {}: the file is ignored", path.display());
                    continue;
                }
                if e.fingerprint == Some(fp) {
                    continue;
                }
            }
            let loaded = config::load_file(&path, &globals);
            let yaml = std::fs::read_to_string(&path).ok();
            match loaded {
                Ok(rule) => {
                    tracing::info!(rule = %id, name = %rule.name, "loaded rule file {}", path.display());
                    let owner = self.cfg.dir_owner.clone();
                    let mut entry = rules.remove(&id).unwrap_or(RuleEntry {
                        rule: None,
                        source: RuleSource::File(path.clone()),
                        owner: owner.clone(),
                        yaml: None,
                        error: None,
                        fingerprint: None,
                        task: None,
                        last_run: None,
                    });
                    stop_task(&mut entry).await;
                    entry.yaml = yaml;
                    entry.error = None;
                    entry.fingerprint = Some(fp);
                    entry.task = self.spawn_rule(&rule, &owner);
                    entry.rule = Some(rule);
                    rules.insert(id, entry);
                }
                Err(err) => {
                    tracing::error!(rule = %id, file = %path.display(), error = %err, "invalid rule file skipped");
                    let entry = rules.entry(id).or_insert(RuleEntry {
                        rule: None,
                        source: RuleSource::File(path.clone()),
                        owner: self.cfg.dir_owner.clone(),
                        yaml: None,
                        error: None,
                        fingerprint: None,
                        task: None,
                        last_run: None,
                    });
                    entry.error = Some(err.to_string());
                    entry.fingerprint = Some(fp);
                    entry.yaml = yaml;
                }
            }
        }
    }

    fn spawn_rule(
        self: &Arc<Self>,
        rule: &Rule,
        owner: &str,
    ) -> Option<(watch::Sender<bool>, JoinHandle<()>)> {
        if !rule.is_enabled {
            tracing::info!(rule = %rule.id, "rule is disabled (is_enabled: false)");
            return None;
        }
        let (tx, rx) = watch::channel(false);
        let me = self.clone();
        let rule = rule.clone();
        let owner = owner.to_string();
        self.metrics
            .lock()
            .entry(rule.id.clone())
            .or_insert_with(|| (rule.name.clone(), Arc::new(RuleMetrics::default())));
        let h = tokio::spawn(async move { me.rule_task(rule, owner, rx).await });
        Some((tx, h))
    }

    fn rule_metrics(&self, rule: &Rule) -> Arc<RuleMetrics> {
        self.metrics
            .lock()
            .entry(rule.id.clone())
            .or_insert_with(|| (rule.name.clone(), Arc::new(RuleMetrics::default())))
            .1
            .clone()
    }

    async fn rule_task(
        self: Arc<Self>,
        rule: Rule,
        owner: String,
        mut stop: watch::Receiver<bool>,
    ) {
        let metrics = self.rule_metrics(&rule);
        let state = loop {
            match self.state.load_rule_state(self.es(), &rule.id).await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(rule = %rule.id, error = %e, "cannot load rule state; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        let run_every = Duration::from_micros(rule.run_every.max(1_000_000) as u64);
        let mut runner = Runner::new(rule, state);
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.now();
            let allowed = runner
                .rule
                .limit_execution
                .as_ref()
                .is_none_or(|c| c.matches_micros(now, runner.rule.query_timezone));
            if allowed {
                runner.manual_silences = self
                    .silences
                    .lock()
                    .get(&runner.rule.id)
                    .cloned()
                    .unwrap_or_default();
                let t0 = Instant::now();
                let es = Es::new(self.backend.as_ref(), &owner);
                match runner.run(es, now).await {
                    Ok(report) => {
                        metrics.runs.fetch_add(1, Ordering::Relaxed);
                        metrics.hits.fetch_add(report.hits, Ordering::Relaxed);
                        metrics
                            .matches
                            .fetch_add(report.matches as u64, Ordering::Relaxed);
                        if report.ran {
                            tracing::debug!(rule = %runner.rule.id, hits = report.hits, matches = report.matches, "rule ran");
                        }
                        let mut drafts = report.alerts;
                        drafts.extend(runner.due_aggregates(now));
                        if let Err(e) = self.commit_run(&runner, &owner, drafts, now).await {
                            metrics.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(rule = %runner.rule.id, error = %e, "cannot record the run; the window will be re-run");
                            // Forget in-memory progress so the next run resumes from the saved end.
                            let saved = self
                                .state
                                .load_rule_state(self.es(), &runner.rule.id)
                                .await
                                .unwrap_or_default();
                            runner = Runner::new(runner.rule.clone(), saved);
                        }
                        self.last_runs.lock().insert(runner.rule.id.clone(), now);
                        self.last_errors.lock().remove(&runner.rule.id);
                    }
                    Err(e) => {
                        metrics.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(rule = %runner.rule.id, error = %e, "rule run failed");
                        self.last_errors
                            .lock()
                            .insert(runner.rule.id.clone(), e.to_string());
                    }
                }
                metrics
                    .run_micros
                    .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            tokio::select! {
                _ = tokio::time::sleep(run_every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Records the run's alerts (create-only), then the rule's state.
    async fn commit_run(
        &self,
        runner: &Runner,
        owner: &str,
        drafts: Vec<AlertDraft>,
        now: i64,
    ) -> Result<()> {
        self.ensure_index().await?;
        for d in drafts {
            let rec = AlertRecord {
                owner: owner.to_string(),
                status: AlertStatus::Pending,
                created: now,
                attempts: 0,
                next_attempt: now,
                sent_to: Vec::new(),
                alerters: runner.rule.alerters.clone(),
                last_error: None,
                sent_at: None,
                draft: d,
            };
            if self.state.create_alert(self.es(), &rec).await? {
                tracing::info!(rule = %runner.rule.id, alert_id = %rec.draft.id, subject = %rec.draft.subject, "alert recorded");
                self.queue.lock().push(rec);
            } else {
                tracing::info!(rule = %runner.rule.id, alert_id = %rec.draft.id, "alert already recorded (re-run window): not sent again");
            }
        }
        self.wake_sender.notify_one();
        self.state
            .save_rule_state(self.es(), &runner.rule.id, &runner.state, now)
            .await
    }

    async fn sender_loop(self: Arc<Self>) {
        let mut stop = self.stop_tx.subscribe();
        loop {
            self.send_due().await;
            if self.stopping() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.send_interval) => {}
                _ = self.wake_sender.notified() => {}
                _ = stop.changed() => { self.send_due().await; return; }
            }
        }
    }

    async fn rule_by_id(&self, id: &str) -> Option<Rule> {
        self.rules.lock().await.get(id).and_then(|e| e.rule.clone())
    }

    /// Sends every queued alert that is due; failures are retried with backoff.
    pub async fn send_due(&self) {
        let now = self.now();
        let due: Vec<AlertRecord> = {
            let mut q = self.queue.lock();
            let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut *q)
                .into_iter()
                .partition(|r| r.next_attempt <= now);
            *q = rest;
            due
        };
        for mut rec in due {
            let Some(rule) = self.rule_by_id(&rec.draft.rule_id).await else {
                rec.status = AlertStatus::Failed;
                rec.last_error = Some("the rule no longer exists".into());
                let _ = self.state.update_alert(self.es(), &rec).await;
                continue;
            };
            let metrics = self.rule_metrics(&rule);
            let alerters = if rec.alerters.is_empty() {
                vec!["debug".to_string()]
            } else {
                rec.alerters.clone()
            };
            let mut failed = None;
            for a in &alerters {
                if rec.sent_to.contains(a) {
                    continue;
                }
                // A few quick retries for transient errors; longer backoff across sends.
                let mut last = None;
                for attempt in 0..3u32 {
                    match alerters::send(a, &rule, &rec.draft, &self.http).await {
                        Ok(()) => {
                            last = None;
                            break;
                        }
                        Err(e) => {
                            last = Some(e.to_string());
                            if attempt < 2 {
                                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                            }
                        }
                    }
                }
                match last {
                    None => {
                        rec.sent_to.push(a.clone());
                        tracing::info!(rule = %rule.id, alert_id = %rec.draft.id, alerter = %a, "alert sent");
                    }
                    Some(e) => {
                        tracing::warn!(rule = %rule.id, alert_id = %rec.draft.id, alerter = %a, error = %e, "alert not sent");
                        failed = Some(e);
                    }
                }
            }
            rec.attempts += 1;
            match failed {
                None => {
                    rec.status = AlertStatus::Sent;
                    rec.sent_at = Some(self.now());
                    rec.last_error = None;
                    metrics.alerts_sent.fetch_add(1, Ordering::Relaxed);
                }
                Some(e) => {
                    rec.last_error = Some(e);
                    metrics.alerts_failed.fetch_add(1, Ordering::Relaxed);
                    if now - rec.created > rule.alert_time_limit {
                        rec.status = AlertStatus::Expired;
                        tracing::error!(rule = %rule.id, alert_id = %rec.draft.id, "giving up on alert after alert_time_limit");
                    } else {
                        let backoff = (5_000_000i64 << rec.attempts.min(7)).min(600_000_000);
                        rec.next_attempt = now + backoff;
                    }
                }
            }
            if let Err(e) = self.state.update_alert(self.es(), &rec).await {
                tracing::warn!(alert_id = %rec.draft.id, error = %e, "cannot record alert delivery");
            }
            if rec.status == AlertStatus::Pending {
                self.queue.lock().push(rec);
            }
        }
    }

    // ---- API -----------------------------------------------------------------------

    async fn install_api_rule(
        self: &Arc<Self>,
        id: String,
        yaml: String,
        owner: String,
    ) -> Option<String> {
        let globals = self.globals.lock().clone();
        let parsed = config::parse_rule(&id, &yaml, self.cfg.rules_dir.as_deref(), &globals);
        let mut rules = self.rules.lock().await;
        let mut entry = rules.remove(&id).unwrap_or(RuleEntry {
            rule: None,
            source: RuleSource::Api,
            owner: owner.clone(),
            yaml: None,
            error: None,
            fingerprint: None,
            task: None,
            last_run: None,
        });
        stop_task(&mut entry).await;
        entry.source = RuleSource::Api;
        entry.owner = owner.clone();
        entry.yaml = Some(yaml);
        let err = match parsed {
            Ok(rule) => {
                entry.task = self.spawn_rule(&rule, &owner);
                entry.rule = Some(rule);
                entry.error = None;
                None
            }
            Err(e) => {
                tracing::error!(rule = %id, error = %e, "saved rule is invalid");
                entry.rule = None;
                entry.error = Some(e.to_string());
                Some(e.to_string())
            }
        };
        rules.insert(id, entry);
        err
    }

    /// Validates rule YAML without saving it.
    /// Dry-runs an unsaved rule over the last `hours` with `owner`'s privileges: what it
    /// would have sent (nothing is sent, no state is written). The UI's rule preview.
    pub async fn dry_run(&self, rule: &Rule, owner: &str, hours: f64) -> Result<Value> {
        let end = self.clock.now();
        let start = end - (hours * 3_600e6) as i64;
        let es = Es::new(self.backend.as_ref(), owner);
        let run = crate::preview::dry_run(es, rule, start, end).await?;
        Ok(run.to_json(rule))
    }

    pub fn validate(&self, id: &str, yaml: &str) -> Result<Rule> {
        let globals = self.globals.lock().clone();
        config::parse_rule(id, yaml, self.cfg.rules_dir.as_deref(), &globals)
    }

    /// Creates or replaces an API rule. Rules from the rules directory are read-only.
    pub async fn put_rule(self: &Arc<Self>, id: &str, yaml: &str, owner: &str) -> Result<Value> {
        if let Some(e) = self.rules.lock().await.get(id) {
            if let RuleSource::File(p) = &e.source {
                return Err(AlertError::config(
                    "id",
                    format!(
                        "rule [{id}] comes from {} and can only be changed there",
                        p.display()
                    ),
                ));
            }
        }
        self.validate(id, yaml)?;
        self.ensure_index().await?;
        let saved = SavedRule {
            id: id.to_string(),
            yaml: yaml.to_string(),
            owner: owner.to_string(),
            updated: self.now(),
        };
        self.state.save_rule(self.es(), &saved).await?;
        self.install_api_rule(id.to_string(), yaml.to_string(), owner.to_string())
            .await;
        Ok(self.get_rule(id).await.unwrap_or(Value::Null))
    }

    pub async fn delete_rule(&self, id: &str) -> Result<bool> {
        let mut rules = self.rules.lock().await;
        match rules.get(id).map(|e| e.source.clone()) {
            None => Ok(false),
            Some(RuleSource::File(p)) => Err(AlertError::config(
                "id",
                format!(
                    "rule [{id}] comes from {}: delete the file instead",
                    p.display()
                ),
            )),
            Some(RuleSource::Api) => {
                if let Some(mut e) = rules.remove(id) {
                    stop_task(&mut e).await;
                }
                self.state.delete_rule(self.es(), id).await?;
                Ok(true)
            }
        }
    }

    fn describe(&self, id: &str, e: &RuleEntry) -> Value {
        let metrics = self.metrics.lock().get(id).map(|(_, m)| m.clone());
        let last_run = self.last_runs.lock().get(id).copied().or(e.last_run);
        json!({
            "id": id,
            "name": e.rule.as_ref().map(|r| r.name.clone()),
            "type": e.rule.as_ref().map(|r| r.kind.name()),
            "index": e.rule.as_ref().map(|r| r.indices.join(",")),
            "alert": e.rule.as_ref().map(|r| r.alerters.clone()),
            "enabled": e.rule.as_ref().map(|r| r.is_enabled),
            "running": e.task.is_some(),
            "source": match &e.source { RuleSource::File(p) => json!({"file": p.display().to_string()}), RuleSource::Api => json!("api") },
            "owner": e.owner,
            "error": e.error,
            "yaml": e.yaml,
            "last_run": last_run.map(crate::value::iso),
            "last_error": self.last_errors.lock().get(id).cloned(),
            "stats": metrics.map(|m| json!({
                "runs": m.runs.load(Ordering::Relaxed),
                "errors": m.errors.load(Ordering::Relaxed),
                "hits": m.hits.load(Ordering::Relaxed),
                "matches": m.matches.load(Ordering::Relaxed),
                "alerts_sent": m.alerts_sent.load(Ordering::Relaxed),
                "alerts_failed": m.alerts_failed.load(Ordering::Relaxed),
            })),
        })
    }

    pub async fn list_rules(&self) -> Vec<Value> {
        let rules = self.rules.lock().await;
        rules.iter().map(|(id, e)| self.describe(id, e)).collect()
    }

    pub async fn get_rule(&self, id: &str) -> Option<Value> {
        let rules = self.rules.lock().await;
        rules.get(id).map(|e| self.describe(id, e))
    }

    pub async fn rule_exists(&self, id: &str) -> bool {
        self.rules.lock().await.contains_key(id)
    }

    pub async fn history(&self, rule_id: Option<&str>, size: u64) -> Result<Vec<Value>> {
        Ok(self
            .state
            .history(self.es(), rule_id, size.clamp(1, 10_000))
            .await?
            .iter()
            .map(AlertRecord::to_api)
            .collect())
    }

    /// The silence key for a rule and optional query_key value (ElastAlert's naming).
    async fn silence_key(&self, rule_id: &str, query_key: Option<&str>) -> Result<String> {
        let name = self
            .rule_by_id(rule_id)
            .await
            .map(|r| r.name)
            .ok_or_else(|| AlertError::config("rule", format!("rule [{rule_id}] is not loaded")))?;
        Ok(match query_key {
            Some(q) => format!("{name}.{q}"),
            None => format!("{name}._silence"),
        })
    }

    pub async fn silence(
        &self,
        rule_id: &str,
        query_key: Option<&str>,
        until: i64,
    ) -> Result<String> {
        let key = self.silence_key(rule_id, query_key).await?;
        self.ensure_index().await?;
        self.state
            .put_silence(self.es(), rule_id, &key, until, self.now())
            .await?;
        self.silences
            .lock()
            .entry(rule_id.to_string())
            .or_default()
            .insert(key.clone(), until);
        Ok(key)
    }

    pub async fn unsilence(&self, rule_id: &str, key: &str) -> Result<bool> {
        let removed = self
            .silences
            .lock()
            .get_mut(rule_id)
            .and_then(|m| m.remove(key))
            .is_some();
        let deleted = self.state.delete_silence(self.es(), rule_id, key).await?;
        Ok(removed || deleted)
    }

    pub fn list_silences(&self, rule_id: &str) -> Vec<Value> {
        let now = self.now();
        self.silences
            .lock()
            .get(rule_id)
            .map(|m| {
                m.iter()
                    .map(|(k, until)| json!({"key": k, "until": crate::value::iso(*until), "active": *until > now}))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Prometheus text for `/_cairn/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let m = self.metrics.lock();
        type Family = (
            &'static str,
            &'static str,
            &'static str,
            fn(&RuleMetrics) -> f64,
        );
        let families: [Family; 7] = [
            (
                "cairn_alert_rule_runs_total",
                "counter",
                "Rule runs.",
                |m| m.runs.load(Ordering::Relaxed) as f64,
            ),
            (
                "cairn_alert_rule_run_seconds_total",
                "counter",
                "Time spent running the rule.",
                |m| m.run_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "cairn_alert_rule_errors_total",
                "counter",
                "Failed rule runs.",
                |m| m.errors.load(Ordering::Relaxed) as f64,
            ),
            (
                "cairn_alert_rule_hits_total",
                "counter",
                "Documents or counts the rule's queries returned.",
                |m| m.hits.load(Ordering::Relaxed) as f64,
            ),
            (
                "cairn_alert_rule_matches_total",
                "counter",
                "Matches the rule produced.",
                |m| m.matches.load(Ordering::Relaxed) as f64,
            ),
            (
                "cairn_alert_alerts_sent_total",
                "counter",
                "Alerts delivered to every alerter.",
                |m| m.alerts_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "cairn_alert_alerts_failed_total",
                "counter",
                "Alert delivery attempts that failed.",
                |m| m.alerts_failed.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, ty, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (id, (rule_name, rm)) in m.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{rule=\"{}\",rule_name=\"{}\"}} {}",
                    escape_label(id),
                    escape_label(rule_name),
                    get(rm)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP cairn_alert_pending_alerts Alerts waiting to be (re)sent.\n# TYPE cairn_alert_pending_alerts gauge\ncairn_alert_pending_alerts {}",
            self.queue.lock().len()
        );
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn stop_task(e: &mut RuleEntry) {
    if let Some((tx, h)) = e.task.take() {
        let _ = tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
    }
}
