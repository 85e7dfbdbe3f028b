//! The alert engine's own state, kept in Cairn itself in a hidden index so a restart
//! resumes where it stopped: each rule's last window and realert silences, alert
//! records (history and the send queue, keyed by the idempotency key), manual
//! silences and rules saved through the API.
//!
//! Variable data sits under an unindexed `data` object so arbitrary match fields can
//! never grow or conflict with the index mapping.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backend::{Es, Method};
use crate::error::{AlertError, Result};
use crate::runner::{AlertDraft, RuleState};
use crate::value::iso;

pub const DEFAULT_STATE_INDEX: &str = ".cairn-alerts";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Pending,
    Sent,
    Failed,
    Expired,
}

/// One alert: what to send, to whom, and how far delivery got.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlertRecord {
    pub draft: AlertDraft,
    pub owner: String,
    pub status: AlertStatus,
    pub created: i64,
    pub attempts: u32,
    pub next_attempt: i64,
    /// Alerters that already delivered (a retry only resends to the others).
    pub sent_to: Vec<String>,
    pub alerters: Vec<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

impl AlertRecord {
    fn to_doc(&self) -> Value {
        json!({
            "type": "alert",
            "id": self.draft.id,
            "rule_id": self.draft.rule_id,
            "rule_name": self.draft.rule_name,
            "owner": self.owner,
            "status": self.status,
            "query_key": self.draft.query_key,
            "subject": self.draft.subject,
            "recovery": self.draft.recovery,
            "created": iso(self.created),
            "match_time": iso(self.draft.match_time),
            "sent_at": self.sent_at.map(iso),
            "attempts": self.attempts,
            "data": serde_json::to_value(self).unwrap_or(Value::Null),
        })
    }

    fn from_doc(v: &Value) -> Option<AlertRecord> {
        serde_json::from_value(v.get("data")?.clone()).ok()
    }

    /// The record as the history API shows it.
    pub fn to_api(&self) -> Value {
        json!({
            "id": self.draft.id,
            "rule_id": self.draft.rule_id,
            "rule_name": self.draft.rule_name,
            "owner": self.owner,
            "status": self.status,
            "query_key": self.draft.query_key,
            "subject": self.draft.subject,
            "body": self.draft.body,
            "recovery": self.draft.recovery,
            "created": iso(self.created),
            "match_time": iso(self.draft.match_time),
            "sent_at": self.sent_at.map(iso),
            "attempts": self.attempts,
            "alerters": self.alerters,
            "sent_to": self.sent_to,
            "last_error": self.last_error,
            "num_matches": self.draft.matches.len(),
        })
    }
}

/// A rule saved through the API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedRule {
    pub id: String,
    pub yaml: String,
    pub owner: String,
    pub updated: i64,
}

/// Typed access to the state index through a backend (as the server's internal user).
pub struct StateStore {
    pub index: String,
}

fn page_hits(v: &Value) -> Vec<Value> {
    v.pointer("/hits/hits")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|h| h.get("_source").cloned()).collect())
        .unwrap_or_default()
}

impl StateStore {
    pub fn new(index: &str) -> Self {
        StateStore {
            index: index.to_string(),
        }
    }

    /// Creates the index with its mapping if it does not exist yet.
    pub async fn ensure_index(&self, es: Es<'_>) -> Result<()> {
        let body = json!({
            "settings": {"index": {"hidden": true}},
            "mappings": {
                "dynamic": false,
                "properties": {
                    "type": {"type": "keyword"},
                    "id": {"type": "keyword"},
                    "rule_id": {"type": "keyword"},
                    "rule_name": {"type": "keyword"},
                    "owner": {"type": "keyword"},
                    "status": {"type": "keyword"},
                    "query_key": {"type": "keyword"},
                    "subject": {"type": "text"},
                    "recovery": {"type": "boolean"},
                    "created": {"type": "date"},
                    "match_time": {"type": "date"},
                    "sent_at": {"type": "date"},
                    "updated": {"type": "date"},
                    "attempts": {"type": "long"},
                    "data": {"type": "object", "enabled": false}
                }
            }
        });
        let path = format!("/{}", crate::backend::encode_segment(&self.index));
        let (status, v) = es
            .backend
            .request(Method::Put, &path, Some(&body), es.user)
            .await?;
        let exists = v.pointer("/error/type").and_then(Value::as_str)
            == Some("resource_already_exists_exception");
        if status < 300 || exists {
            Ok(())
        } else {
            Err(AlertError::Backend {
                status,
                what: format!("create {}", self.index),
                reason: v.to_string(),
            })
        }
    }

    pub async fn load_rule_state(&self, es: Es<'_>, rule_id: &str) -> Result<RuleState> {
        match es
            .get_doc(&self.index, &format!("rule-state:{rule_id}"))
            .await?
        {
            Some(doc) => Ok(doc
                .get("data")
                .cloned()
                .and_then(|d| serde_json::from_value(d).ok())
                .unwrap_or_default()),
            None => Ok(RuleState::default()),
        }
    }

    pub async fn save_rule_state(
        &self,
        es: Es<'_>,
        rule_id: &str,
        state: &RuleState,
        now: i64,
    ) -> Result<()> {
        let doc = json!({
            "type": "rule_state",
            "rule_id": rule_id,
            "updated": iso(now),
            "data": state,
        });
        es.put_doc(&self.index, &format!("rule-state:{rule_id}"), &doc, false)
            .await
    }

    /// Records an alert unless one with the same idempotency key exists (a re-run of a
    /// window after a restart). Ok(false): it was already recorded.
    pub async fn create_alert(&self, es: Es<'_>, rec: &AlertRecord) -> Result<bool> {
        es.create_doc(
            &self.index,
            &format!("alert:{}", rec.draft.id),
            &rec.to_doc(),
        )
        .await
    }

    pub async fn update_alert(&self, es: Es<'_>, rec: &AlertRecord) -> Result<()> {
        es.put_doc(
            &self.index,
            &format!("alert:{}", rec.draft.id),
            &rec.to_doc(),
            true,
        )
        .await
    }

    async fn search_docs(
        &self,
        es: Es<'_>,
        query: Value,
        size: u64,
        sort: Value,
    ) -> Result<Vec<Value>> {
        let body = json!({"query": query, "size": size, "sort": sort});
        match es.search(&self.index, &body, None).await {
            Ok(v) => Ok(page_hits(&v)),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub async fn pending_alerts(&self, es: Es<'_>) -> Result<Vec<AlertRecord>> {
        let q = json!({"bool": {"filter": [{"term": {"type": "alert"}}, {"term": {"status": "pending"}}]}});
        Ok(self
            .search_docs(es, q, 10_000, json!([{"created": "asc"}]))
            .await?
            .iter()
            .filter_map(AlertRecord::from_doc)
            .collect())
    }

    pub async fn history(
        &self,
        es: Es<'_>,
        rule_id: Option<&str>,
        size: u64,
    ) -> Result<Vec<AlertRecord>> {
        let mut f = vec![json!({"term": {"type": "alert"}})];
        if let Some(r) = rule_id {
            f.push(json!({"term": {"rule_id": r}}));
        }
        Ok(self
            .search_docs(
                es,
                json!({"bool": {"filter": f}}),
                size,
                json!([{"created": "desc"}]),
            )
            .await?
            .iter()
            .filter_map(AlertRecord::from_doc)
            .collect())
    }

    pub async fn saved_rules(&self, es: Es<'_>) -> Result<Vec<SavedRule>> {
        Ok(self
            .search_docs(
                es,
                json!({"term": {"type": "rule"}}),
                10_000,
                json!([{"updated": "asc"}]),
            )
            .await?
            .iter()
            .filter_map(|d| serde_json::from_value(d.get("data")?.clone()).ok())
            .collect())
    }

    pub async fn save_rule(&self, es: Es<'_>, r: &SavedRule) -> Result<()> {
        let doc = json!({"type": "rule", "rule_id": r.id, "owner": r.owner, "updated": iso(r.updated), "data": r});
        es.put_doc(&self.index, &format!("rule:{}", r.id), &doc, true)
            .await
    }

    pub async fn delete_rule(&self, es: Es<'_>, id: &str) -> Result<bool> {
        es.delete_doc(&self.index, &format!("rule:{id}")).await
    }

    /// Manual silences: (rule_id, silence key, until).
    pub async fn silences(&self, es: Es<'_>) -> Result<Vec<(String, String, i64)>> {
        Ok(self
            .search_docs(
                es,
                json!({"term": {"type": "silence"}}),
                10_000,
                json!([{"updated": "asc"}]),
            )
            .await?
            .iter()
            .filter_map(|d| {
                let data = d.get("data")?;
                Some((
                    data.get("rule_id")?.as_str()?.to_string(),
                    data.get("key")?.as_str()?.to_string(),
                    data.get("until")?.as_i64()?,
                ))
            })
            .collect())
    }

    pub async fn put_silence(
        &self,
        es: Es<'_>,
        rule_id: &str,
        key: &str,
        until: i64,
        now: i64,
    ) -> Result<()> {
        let doc = json!({
            "type": "silence", "rule_id": rule_id, "updated": iso(now),
            "data": {"rule_id": rule_id, "key": key, "until": until}
        });
        es.put_doc(&self.index, &format!("silence:{rule_id}:{key}"), &doc, true)
            .await
    }

    pub async fn delete_silence(&self, es: Es<'_>, rule_id: &str, key: &str) -> Result<bool> {
        es.delete_doc(&self.index, &format!("silence:{rule_id}:{key}"))
            .await
    }
}
