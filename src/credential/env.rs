//! `source = "env"`: a value from an environment variable, read once at start.

use super::secret_ref::SecretRef;
use super::{BoxFuture, Issued, Material, Source, SourceError};
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
    fn fetch(&self) -> BoxFuture<'_, Result<Issued, SourceError>> {
        Box::pin(async move {
            let secret = self.var.read().await?;
            Ok(Issued {
                material: Material::Token(secret),
                issued_at: self.started,
                expires_at: None,
            })
        })
    }
}
