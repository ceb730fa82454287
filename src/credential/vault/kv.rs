//! KV version 2: the current version from the metadata, the data of that version.

use super::fields::Fields;
use super::source::{Handle, VaultSource};
use crate::credential::{Issued, Lease, SourceError};
use http::Method;
use serde_json::Value;
use std::time::SystemTime;

impl VaultSource {
    /// The secret at `mount/path`; `previous` again (no read of the data) while
    /// its version is still the current one.
    pub(super) async fn kv(
        &self,
        mount: &str,
        path: &str,
        fields: &Fields,
        previous: Option<&Issued>,
    ) -> Result<Issued, SourceError> {
        let held = previous.and_then(|p| Some((p, p.lease.as_ref()?.get::<Handle>()?)));
        if let Some((prev, Handle::Kv { version })) = held {
            let meta = self
                .authed(Method::GET, &format!("{mount}/metadata/{path}"), None, &[])
                .await?;
            let current = meta
                .get("data")
                .and_then(|d| d.get("current_version"))
                .and_then(Value::as_u64);
            if current == Some(*version) {
                return Ok(prev.clone());
            }
        }
        let what = format!("{mount}/data/{path}");
        let answer = self.authed(Method::GET, &what, None, &[]).await?;
        let outer = answer.get("data").and_then(Value::as_object);
        let data = outer
            .and_then(|d| d.get("data"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                SourceError::permanent(format!(
                    "{what}: no data (deleted, destroyed, or not a KV version 2 mount)"
                ))
            })?;
        let metadata = outer.and_then(|d| d.get("metadata"));
        let version = metadata
            .and_then(|m| m.get("version"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let issued_at = metadata
            .and_then(|m| m.get("created_time"))
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .unwrap_or_else(SystemTime::now);
        let found = fields.material(&what, data)?;
        Ok(Issued {
            material: found.material,
            issued_at,
            // A certificate kept in KV expires at its notAfter.
            expires_at: found.not_after,
            lease: Some(Lease::new(Handle::Kv { version })),
        })
    }
}
