//! Errors of the alert engine.

/// Anything that can go wrong while loading, running or alerting a rule.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A rule file or body that is not valid YAML/JSON, or of the wrong shape.
    /// `key` names the offending key (`filter[1]`, `timeframe`, `(top level)`).
    #[error("{key}: {message}")]
    Config { key: String, message: String },
    /// The search backend answered with an error status.
    #[error("search backend error ({status}) on {what}: {reason}")]
    Backend {
        status: u16,
        what: String,
        reason: String,
    },
    /// The search backend could not be reached.
    #[error("search backend unreachable: {0}")]
    Transport(String),
    /// An alerter failed to deliver.
    #[error("alerter {alerter} failed: {message}")]
    Alerter { alerter: String, message: String },
    /// Reading a rule file or a file named in a rule.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl AlertError {
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        AlertError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn alerter(alerter: impl Into<String>, message: impl Into<String>) -> Self {
        AlertError::Alerter {
            alerter: alerter.into(),
            message: message.into(),
        }
    }

    /// True if the backend said the index does not exist (a fresh server has no state).
    pub fn is_not_found(&self) -> bool {
        matches!(self, AlertError::Backend { status: 404, .. })
    }
}

pub type Result<T, E = AlertError> = std::result::Result<T, E>;
