//! The `Source` trait every credential source implements, and what a source hands back.

use super::Material;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A value a source issued, with its lifetime.
pub struct Issued {
    pub material: Material,
    /// When the value was created at its origin (a file's mtime, a token's
    /// issue time); used for the rotation policy (`max_age`).
    pub issued_at: SystemTime,
    /// When the origin says the value stops working. `None`: no expiry known.
    pub expires_at: Option<SystemTime>,
}

/// Why a source could not produce a value. The message is shown in the
/// inventory and the log, so a source never puts a secret in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
        }
    }
}

/// What a source's own revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The origin was told to revoke the value and accepted.
    Revoked,
    /// The source has no way to revoke at its origin (a mounted file, an env var).
    NotSupported,
}

/// Where a credential comes from. One implementation per source kind;
/// the rotation engine drives it, the proxy never sees it.
pub trait Source: Send + Sync + 'static {
    /// Fetches the current value. Called by one task at a time per credential.
    fn fetch(&self) -> BoxFuture<'_, Result<Issued, SourceError>>;

    /// Revokes a value at its origin, where the origin can.
    fn revoke<'a>(
        &'a self,
        _issued: &'a Material,
    ) -> BoxFuture<'a, Result<Revocation, SourceError>> {
        Box::pin(async { Ok(Revocation::NotSupported) })
    }

    /// Files whose change means the value should be read again now.
    fn watch_paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// For values without expiry: how often to read again anyway.
    /// `None` means never (read once, e.g. an environment variable).
    fn reread_every(&self) -> Option<Duration> {
        None
    }
}
