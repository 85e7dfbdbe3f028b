//! The audit log: one JSON object per line for the events a security review asks
//! about (authentication failures, user and API key changes, index deletions, alert
//! rule changes), written to a file that is opened in append mode.

use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde_json::{json, Value};

pub struct Audit {
    sink: Option<(PathBuf, Mutex<std::fs::File>)>,
}

impl Audit {
    /// No audit log.
    pub fn off() -> Audit {
        Audit { sink: None }
    }

    pub fn to_file(path: &Path) -> std::io::Result<Audit> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Audit {
            sink: Some((path.to_path_buf(), Mutex::new(f))),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.sink.as_ref().map(|(p, _)| p.as_path())
    }

    /// Records one event; `fields` is merged into the line. The caller's identity is
    /// added from the current request context when there is one.
    pub fn event(&self, action: &str, fields: Value) {
        let Some((path, file)) = &self.sink else {
            return;
        };
        let mut line = json!({
            "@timestamp": cairn_core::time::format_millis(cairn_core::time::now_micros()),
            "event.action": action,
        });
        if let Some(a) = crate::auth::Authz::current() {
            line["user.name"] = json!(a.principal.username);
            if let Some((id, _)) = &a.principal.api_key {
                line["api_key.id"] = json!(id);
            }
        }
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = file.lock().write_all(text.as_bytes()) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the audit log");
        }
    }
}
