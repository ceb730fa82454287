//! Parsing one table of the config file: typed fields, paths relative to the config file, durations, secret references.
//!
//! Shared by the parsers of sources and injection forms, which sit below `config`.

use crate::duration;
use crate::secret_ref::SecretRef;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
