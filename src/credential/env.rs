//! `source = "env"`: a value from an environment variable, read once at start.

use super::secret_ref::SecretRef;
use super::spec::SourceSettings;
use super::{BoxFuture, Issued, Material, Source, SourceError};
use crate::parse::{FieldError, ParseContext, typed};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSpec {
    pub var: String,
}

pub struct EnvSource {
    var: SecretRef,
    started: SystemTime,
}

impl EnvSource {
    pub fn new(spec: EnvSpec) -> Self {
        EnvSource {
            var: SecretRef::Env(spec.var),
            started: SystemTime::now(),
        }
    }
}

impl Source for EnvSource {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let secret = self.var.read().await?;
            Ok(Issued {
                material: Material::Token(secret),
                issued_at: self.started,
                expires_at: None,
                lease: None,
            })
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvForm {
    var: String,
}

/// Parses `source = "env"`'s keys.
pub fn parse(table: toml::Table, _cx: &ParseContext<'_>) -> Result<EnvSpec, FieldError> {
    let f: EnvForm = typed(table)?;
    Ok(EnvSpec { var: f.var })
}

impl SourceSettings for EnvSpec {
    fn kind(&self) -> &'static str {
        "env"
    }

    fn build(&self) -> std::sync::Arc<dyn Source> {
        std::sync::Arc::new(EnvSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!("env {}", self.var)
    }

    fn probe(&self) -> Result<(), FieldError> {
        match std::env::var_os(&self.var) {
            Some(_) => Ok(()),
            None => Err(FieldError::on(
                "var",
                format!("environment variable {} is not set", self.var),
            )),
        }
    }
}
