//! `source = "vault"`: HashiCorp Vault and OpenBao (same HTTP API). Logs in (token, AppRole,
//! JWT, Kubernetes), keeps the auth token alive, and reads a KV version 2 secret (a new version
//! is a rotation) or a dynamic secret with a lease (renewed, re-issued before its max TTL).
//!
//! Like every source it only fetches: the rotation engine decides when (the lease's 2/3,
//! `poll_interval` for values without lease) and keeps the last good value while Vault fails.

mod auth;
mod client;
mod fields;
mod kv;
mod lease;
mod settings;
mod source;

pub use settings::{AuthSpec, Target, VaultSpec, parse};
pub use source::VaultSource;

impl super::spec::SourceSettings for VaultSpec {
    fn kind(&self) -> &'static str {
        "vault"
    }

    fn build(&self) -> std::sync::Arc<dyn super::Source> {
        std::sync::Arc::new(VaultSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!(
            "vault at {}{} ({} auth), {}",
            self.conn.address,
            self.conn
                .namespace
                .as_deref()
                .map(|n| format!(" namespace {n}"))
                .unwrap_or_default(),
            self.auth.method(),
            self.target.describe()
        )
    }

    /// `sidekey check`: the secrets the login reads are there now.
    fn probe(&self) -> Result<(), crate::parse::FieldError> {
        let refs = match &self.auth {
            AuthSpec::Token(r) => vec![r.clone()],
            AuthSpec::AppRole {
                role_id, secret_id, ..
            } => match role_id {
                settings::RoleId::From(r) => vec![r.clone(), secret_id.clone()],
                settings::RoleId::Inline(_) => vec![secret_id.clone()],
            },
            AuthSpec::Jwt { jwt_file, .. } => {
                vec![super::secret_ref::SecretRef::File(jwt_file.clone())]
            }
        };
        for r in refs {
            r.read_blocking()
                .map_err(|e| crate::parse::FieldError::on("auth", e.0))?;
        }
        Ok(())
    }

    fn releases_on_shutdown(&self) -> bool {
        self.revoke_on_shutdown
    }

    fn material(&self) -> crate::material::MaterialKind {
        self.target.fields().kind()
    }
}
