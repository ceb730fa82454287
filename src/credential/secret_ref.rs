//! `{ file = "..." }` / `{ env = "VAR" }`: where a secret that configures a source (a client secret, an admin token) lives.

use super::SourceError;
use crate::secret::Secret;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
}

impl SecretRef {
    /// Reads the secret now. Files are read on every call, so a rotated
    /// client secret is picked up at the next fetch.
    pub async fn read(&self) -> Result<Secret, SourceError> {
        match self {
            SecretRef::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    SourceError::new(format!("cannot read {}: {e}", path.display()))
                })?;
                Secret::new(text).map_err(|e| SourceError::new(format!("{}: {e}", path.display())))
            }
            SecretRef::Env(var) => {
                let text = std::env::var(var).map_err(|_| {
                    SourceError::new(format!("environment variable {var} is not set"))
                })?;
                Secret::new(text)
                    .map_err(|e| SourceError::new(format!("environment variable {var}: {e}")))
            }
        }
    }

    /// Same as [`SecretRef::read`], for start-up code that is not async.
    pub fn read_blocking(&self) -> Result<Secret, SourceError> {
        match self {
            SecretRef::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SourceError::new(format!("cannot read {}: {e}", path.display()))
                })?;
                Secret::new(text).map_err(|e| SourceError::new(format!("{}: {e}", path.display())))
            }
            SecretRef::Env(var) => {
                let text = std::env::var(var).map_err(|_| {
                    SourceError::new(format!("environment variable {var} is not set"))
                })?;
                Secret::new(text)
                    .map_err(|e| SourceError::new(format!("environment variable {var}: {e}")))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SecretRef::File(p) => format!("file {}", p.display()),
            SecretRef::Env(v) => format!("env {v}"),
        }
    }
}
