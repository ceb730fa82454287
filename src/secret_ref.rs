//! `{ file = "..." }` / `{ env = "VAR" }`: where a secret that configures a source (a client secret, an admin token) lives.

use crate::secret::Secret;
use std::path::PathBuf;

/// A secret that could not be read; says where from, never what.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Env(String),
}

impl SecretRef {
    /// Reads the secret now. Files are read on every call, so a rotated
    /// client secret is picked up at the next fetch.
    pub async fn read(&self) -> Result<Secret, ReadError> {
        match self {
            SecretRef::File(path) => self.wrap(tokio::fs::read_to_string(path).await),
            SecretRef::Env(_) => self.read_blocking(),
        }
    }

    /// Same as [`SecretRef::read`], for start-up code that is not async.
    pub fn read_blocking(&self) -> Result<Secret, ReadError> {
        match self {
            SecretRef::File(path) => self.wrap(std::fs::read_to_string(path)),
            // `sidekey run` may have moved the variable out of its environment.
            SecretRef::Env(var) => match crate::scrubbed_env::var(var)
                .map(str::to_owned)
                .or_else(|| std::env::var(var).ok())
            {
                Some(text) => self.wrap(Ok(text)),
                None => Err(ReadError(format!("environment variable {var} is not set"))),
            },
        }
    }

    /// Turns what was read into a secret, naming where it came from on failure.
    fn wrap(&self, read: std::io::Result<String>) -> Result<Secret, ReadError> {
        let text = read.map_err(|e| ReadError(format!("cannot read {}: {e}", self.describe())))?;
        Secret::new(text).map_err(|e| ReadError(format!("{}: {e}", self.describe())))
    }

    pub fn describe(&self) -> String {
        match self {
            SecretRef::File(p) => format!("file {}", p.display()),
            SecretRef::Env(v) => format!("env {v}"),
        }
    }
}
