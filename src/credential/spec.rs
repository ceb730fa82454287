//! The checked configuration of a credential and the registry of source kinds.
//!
//! Adding a source kind means: a module with its spec and `Source`, one
//! variant here, and one arm in each match below. Nothing in the proxy changes.

use super::Source;
use super::aws::{AwsSource, AwsSpec};
use super::env::{EnvSource, EnvSpec};
use super::exec::{self, ExecSource, ExecSpec};
use super::file::{DEFAULT_POLL, FileSource, FileSpec};
use super::oauth2::{OAuth2Source, OAuth2Spec, TokenExchangeSource, TokenExchangeSpec};
use super::secret_ref::SecretRef;
use crate::config::duration;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
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

#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    File(FileSpec),
    Env(EnvSpec),
    OAuth2(OAuth2Spec),
    OAuth2TokenExchange(TokenExchangeSpec),
    Aws(AwsSpec),
    Exec(ExecSpec),
}

/// A problem with one key of a credential's table (or the table as a whole).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    pub fn on(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// What a source's parser may need to know about the file it came from.
pub struct ParseContext<'a> {
    /// Relative paths in the config are relative to the config file's folder.
    pub base_dir: &'a Path,
}

impl ParseContext<'_> {
    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn duration(
        &self,
        field: &str,
        text: Option<&str>,
    ) -> Result<Option<Duration>, FieldError> {
        text.map(|t| duration::parse(t).map_err(|m| FieldError::on(field, m)))
            .transpose()
    }

    pub fn secret_ref(&self, field: &str, r: &SecretRefForm) -> Result<SecretRef, FieldError> {
        match (&r.file, &r.env) {
            (Some(f), None) => Ok(SecretRef::File(self.path(f))),
            (None, Some(v)) => Ok(SecretRef::Env(v.clone())),
            _ => Err(FieldError::on(
                field,
                "write exactly one of `{ file = \"...\" }` or `{ env = \"VAR\" }`",
            )),
        }
    }
}

/// `{ file = "..." }` or `{ env = "VAR" }` as written in a source's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRefForm {
    pub file: Option<String>,
    pub env: Option<String>,
}

/// Deserializes a source's table into its typed form, naming the key at fault.
pub fn typed<T: DeserializeOwned>(table: toml::Table) -> Result<T, FieldError> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| {
        let message = e.message().to_string();
        let field = message.split('`').nth(1).map(str::to_owned);
        FieldError { field, message }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    path: String,
    poll_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvForm {
    var: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecForm {
    command: Vec<String>,
    timeout: Option<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    interval: Option<String>,
}

/// Every source kind this build knows, for error messages.
pub const KINDS: &[&str] = &[
    "file",
    "env",
    "exec",
    "oauth2",
    "oauth2_token_exchange",
    "aws",
];

impl SourceSpec {
    /// Parses the source-specific keys of a credential table (the common
    /// keys `source`, `max_age` and `enforce_max_age` already removed).
    pub fn parse(
        kind: &str,
        table: toml::Table,
        cx: &ParseContext<'_>,
    ) -> Result<Self, FieldError> {
        match kind {
            "file" => {
                let f: FileForm = typed(table)?;
                let poll = cx
                    .duration("poll_interval", f.poll_interval.as_deref())?
                    .unwrap_or(DEFAULT_POLL);
                Ok(SourceSpec::File(FileSpec {
                    path: cx.path(&f.path),
                    poll_interval: poll,
                }))
            }
            "env" => {
                let f: EnvForm = typed(table)?;
                Ok(SourceSpec::Env(EnvSpec { var: f.var }))
            }
            "oauth2" => Ok(SourceSpec::OAuth2(super::oauth2::parse_client_credentials(
                table, cx,
            )?)),
            "oauth2_token_exchange" => Ok(SourceSpec::OAuth2TokenExchange(
                super::oauth2::parse_token_exchange(table, cx)?,
            )),
            "aws" => Ok(SourceSpec::Aws(super::aws::parse(table, cx)?)),
            "exec" => {
                let f: ExecForm = typed(table)?;
                let Some(program) = f.command.first() else {
                    return Err(FieldError::on(
                        "command",
                        "give the program and its arguments, e.g. [\"/usr/local/bin/get-token\", \"--audience\", \"api\"]",
                    ));
                };
                let mut command = f.command.clone();
                if program.contains('/') {
                    command[0] = cx.path(program).to_string_lossy().into_owned();
                }
                Ok(SourceSpec::Exec(ExecSpec {
                    command,
                    timeout: cx
                        .duration("timeout", f.timeout.as_deref())?
                        .unwrap_or(exec::DEFAULT_TIMEOUT),
                    env: f.env,
                    interval: cx
                        .duration("interval", f.interval.as_deref())?
                        .unwrap_or(exec::DEFAULT_INTERVAL),
                    dir: cx.base_dir.to_owned(),
                }))
            }
            other => Err(FieldError::on(
                "source",
                format!(
                    "unknown source `{other}`; this build knows {}",
                    KINDS.join(", ")
                ),
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::File(_) => "file",
            SourceSpec::Env(_) => "env",
            SourceSpec::OAuth2(_) => "oauth2",
            SourceSpec::OAuth2TokenExchange(_) => "oauth2_token_exchange",
            SourceSpec::Aws(_) => "aws",
            SourceSpec::Exec(_) => "exec",
        }
    }

    pub fn build(&self) -> Arc<dyn Source> {
        match self {
            SourceSpec::File(s) => Arc::new(FileSource::new(s.clone())),
            SourceSpec::Env(s) => Arc::new(EnvSource::new(s.clone())),
            SourceSpec::OAuth2(s) => Arc::new(OAuth2Source::new(s.clone())),
            SourceSpec::OAuth2TokenExchange(s) => Arc::new(TokenExchangeSource::new(s.clone())),
            SourceSpec::Aws(s) => Arc::new(AwsSource::new(s.clone())),
            SourceSpec::Exec(s) => Arc::new(ExecSource::new(s.clone())),
        }
    }

    /// What `sidekey check` shows for the source.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::File(s) => format!("file {}", s.path.display()),
            SourceSpec::Env(s) => format!("env {}", s.var),
            SourceSpec::OAuth2(s) => s.describe(),
            SourceSpec::OAuth2TokenExchange(s) => s.describe(),
            SourceSpec::Aws(s) => s.describe(),
            SourceSpec::Exec(s) => format!(
                "exec {} (timeout {})",
                s.command.join(" "),
                humantime::format_duration(s.timeout)
            ),
        }
    }

    /// The checks `sidekey check` adds: is what the source reads there now?
    /// (`run` tolerates a missing file: it is not ready until it appears.)
    pub fn probe(&self) -> Result<(), FieldError> {
        match self {
            SourceSpec::File(s) => match std::fs::read(&s.path) {
                Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Err(FieldError::on(
                    "path",
                    format!("{} is empty", s.path.display()),
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(FieldError::on(
                    "path",
                    format!("cannot read {}: {e}", s.path.display()),
                )),
            },
            SourceSpec::Env(s) => match std::env::var_os(&s.var) {
                Some(_) => Ok(()),
                None => Err(FieldError::on(
                    "var",
                    format!("environment variable {} is not set", s.var),
                )),
            },
            SourceSpec::OAuth2(s) => super::oauth2::probe_server(&s.server),
            SourceSpec::OAuth2TokenExchange(s) => s.probe(),
            SourceSpec::Aws(s) => s.probe().map_err(|m| FieldError {
                field: None,
                message: m,
            }),
            // Running the command would be a fetch: `check` only looks for the program.
            SourceSpec::Exec(s) => exec::find_program(&s.command[0])
                .map(|_| ())
                .map_err(|m| FieldError::on("command", m)),
        }
    }
}
