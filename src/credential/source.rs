//! The `Source` trait every credential source implements, and what a source hands back.

use super::Material;
use std::any::Any;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A value a source issued, with its lifetime.
#[derive(Clone)]
pub struct Issued {
    pub material: Material,
    /// When the value was created at its origin (a file's mtime, a token's
    /// issue time); used for the rotation policy (`max_age`).
    pub issued_at: SystemTime,
    /// When the origin says the value stops working. `None`: no expiry known.
    pub expires_at: Option<SystemTime>,
    /// The origin's handle on this value (a Vault lease, say), for the
    /// source to renew or revoke it later. Opaque to everything else.
    pub lease: Option<Lease>,
}

/// A source's own handle on an issued value. Only the source that made it
/// looks inside ([`Lease::get`]); it is never logged or shown.
#[derive(Clone)]
pub struct Lease(Arc<dyn Any + Send + Sync>);

impl Lease {
    pub fn new<T: Any + Send + Sync>(handle: T) -> Self {
        Lease(Arc::new(handle))
    }

    /// The handle, if it is of the type the caller made it with.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease(..)")
    }
}

/// Why a source could not produce a value. The message is shown in the
/// inventory and the log, so a source never puts a secret in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Whether trying again soon can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The origin is down, slow or answered 5xx: retry with the usual backoff.
    Transient,
    /// The origin refused what sidekey sends (bad client credentials, an
    /// unknown role, a value that cannot be used): retrying at once changes
    /// nothing, so the engine retries at its slowest pace until a change or
    /// an operator's refresh.
    Permanent,
}

impl SourceError {
    /// A transient failure.
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A failure that retrying soon cannot mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        SourceError {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }
}

impl From<crate::secret_ref::ReadError> for SourceError {
    fn from(e: crate::secret_ref::ReadError) -> Self {
        SourceError::new(e.0)
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
    /// Fetches the current value. Called by one task at a time per
    /// credential, with the value it issued last (if any is still held), so a
    /// lease-based source can renew instead of issuing anew.
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>>;

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

    /// The process is stopping: let go of what the source holds at its origin
    /// (a lease, a login) if it was told to. Bounded by the caller.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// What the inventory may show about the source's own state besides the
    /// value (a Vault token's accessor, say). Never a secret.
    fn detail(&self) -> Option<serde_json::Value> {
        None
    }
}
