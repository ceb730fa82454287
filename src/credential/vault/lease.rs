//! Dynamic secrets: `read`/`write` of any path, the lease renewed while renewable and a new
//! secret issued once renewal no longer extends it (max TTL); revocation of a lease.

use super::fields::Fields;
use super::source::{Handle, VaultSource};
use crate::credential::{Issued, Lease, SourceError};
use http::Method;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime};

impl VaultSource {
    /// Renews `previous`'s lease if it can still be extended, else issues anew.
    pub(super) async fn dynamic(
        &self,
        method: Method,
        path: &str,
        data: Option<&Map<String, Value>>,
        fields: &Fields,
        previous: Option<&Issued>,
    ) -> Result<Issued, SourceError> {
        let held = previous.and_then(|p| Some((p, p.lease.as_ref()?.get::<Handle>()?)));
        if let Some((
            prev,
            Handle::Lease {
                id,
                renewable: true,
                ttl,
            },
        )) = held
            && let Some(renewed) = self.renew(prev, id, *ttl).await
        {
            return Ok(renewed);
        }
        let body = data.map(|d| Value::Object(d.clone()));
        let answer = self.authed(method, path, body.as_ref(), &[]).await?;
        let now = SystemTime::now();
        let data = answer
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| SourceError::permanent(format!("{path}: the answer has no data")))?;
        let found = fields.material(path, data)?;
        let lease_ttl = answer
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let lease_id = answer
            .get("lease_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        // No lease: the secret may say its own lifetime (identity tokens: `ttl`,
        // PKI certificates: `expiration`, a Unix time).
        let said = if lease_ttl > 0 {
            Some(now + Duration::from_secs(lease_ttl))
        } else if let Some(ttl) = data.get("ttl").and_then(Value::as_u64).filter(|t| *t > 0) {
            Some(now + Duration::from_secs(ttl))
        } else {
            data.get("expiration")
                .and_then(Value::as_u64)
                .filter(|t| *t > 0)
                .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t))
        };
        // A certificate is unusable after its notAfter, whatever its lease says.
        let expires_at = match (said, found.not_after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let handle = match lease_id {
            Some(id) => Handle::Lease {
                id: id.to_owned(),
                renewable: answer
                    .get("renewable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                ttl: Duration::from_secs(lease_ttl),
            },
            None => Handle::None,
        };
        Ok(Issued {
            material: found.material,
            issued_at: now,
            expires_at,
            lease: Some(Lease::new(handle)),
        })
    }

    /// `sys/leases/renew`. `None` when a new secret should be issued instead:
    /// the renewal failed or was cut short by the lease's max TTL.
    async fn renew(&self, prev: &Issued, id: &str, ttl: Duration) -> Option<Issued> {
        let body = json!({ "lease_id": id, "increment": ttl.as_secs() });
        let answer = match self
            .authed(Method::PUT, "sys/leases/renew", Some(&body), &[id])
            .await
        {
            Ok(a) => a,
            Err(e) => {
                // Not quiet: a policy without `sys/leases/renew` would make a
                // new secret (a new database user) every 2/3 of the lease.
                tracing::warn!(error = %e.message, "vault lease renewal failed; issuing anew");
                return None;
            }
        };
        let granted = Duration::from_secs(answer.get("lease_duration").and_then(Value::as_u64)?);
        if granted < ttl {
            tracing::debug!(
                granted_s = granted.as_secs(),
                "vault lease near its max TTL; issuing anew"
            );
            return None;
        }
        tracing::debug!(granted_s = granted.as_secs(), "vault lease renewed");
        let mut renewed = prev.clone();
        renewed.expires_at = Some(SystemTime::now() + granted);
        Some(renewed)
    }

    /// `sys/leases/revoke` of one lease. Like renewal, it keeps the lease id out of any error.
    pub(super) async fn revoke_lease(&self, id: &str) -> Result<(), SourceError> {
        self.authed(
            Method::PUT,
            "sys/leases/revoke",
            Some(&json!({ "lease_id": id })),
            &[id],
        )
        .await
        .map(drop)
    }
}
