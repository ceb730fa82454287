//! The checked configuration of a credential, and the settings every source kind parses its table into.

use super::Source;
use crate::any_eq::{AnyEq, Dyn};
use crate::material::MaterialKind;
use crate::parse::FieldError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct CredentialConfig {
    pub name: String,
    pub source: SourceSpec,
    /// Rotation policy: a value older than this is `rotation_overdue`.
    pub max_age: Option<Duration>,
    /// Refuse an overdue value like an expired one.
    pub enforce_max_age: bool,
    /// Least time between refreshes asked for by upstream rejections.
    pub min_refresh_interval: Duration,
}

/// A source kind's parsed table: everything needed to build its [`Source`].
/// One implementation per kind, next to the kind's `Source`; the kind is
/// registered in [`super::registry`].
pub trait SourceSettings: AnyEq + fmt::Debug + Send + Sync {
    /// The `source = "..."` name.
    fn kind(&self) -> &'static str;
    /// A fresh source from these settings (at start and when a reload changes them).
    fn build(&self) -> Arc<dyn Source>;
    /// One line for `sidekey check`; never a secret.
    fn describe(&self) -> String;
    /// What `sidekey check` adds to parsing: is what the source reads there
    /// now? `run` tolerates its absence (the credential is not ready until it comes).
    fn probe(&self) -> Result<(), FieldError> {
        Ok(())
    }
    /// Whether the source has something to release at its origin when the
    /// process stops ([`Source::shutdown`]); only those are waited for.
    fn releases_on_shutdown(&self) -> bool {
        false
    }
    /// The shape of value this source issues.
    fn material(&self) -> MaterialKind {
        MaterialKind::Token
    }
}

/// A credential's source settings, of whichever kind.
pub type SourceSpec = Dyn<dyn SourceSettings>;

impl SourceSpec {
    pub fn new(settings: impl SourceSettings) -> Self {
        Dyn(Arc::new(settings))
    }
}
