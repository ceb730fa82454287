//! Token revocation at the authorization server (RFC 7009), when `revocation_url` is configured.

use super::endpoint::Endpoint;
use crate::credential::{Material, Revocation, SourceError};
use serde_json::Value;
use zeroize::Zeroizing;

impl Endpoint {
    /// Asks the server to revoke `material`'s access token. The client
    /// authenticates as it does at the token endpoint (RFC 7009 §2.1).
    pub async fn revoke(&self, material: &Material) -> Result<Revocation, SourceError> {
        let Some(url) = &self.server.revocation_url else {
            return Ok(Revocation::NotSupported);
        };
        let Some(token) = material.token() else {
            return Ok(Revocation::NotSupported);
        };
        let form = vec![("token_type_hint".to_string(), "access_token".to_string())];
        let secrets = vec![("token", Zeroizing::new(token.expose().to_owned()))];
        let answer = self.post("revocation endpoint", url, form, secrets).await?;
        // RFC 7009 §2.2: 200 means revoked (or already invalid).
        if answer.status.is_success() {
            return Ok(Revocation::Revoked);
        }
        let error = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .map(|code| {
                code.chars()
                    .filter(|c| (' '..='~').contains(c))
                    .take(100)
                    .collect::<String>()
            });
        Err(SourceError::new(match error {
            Some(code) => format!(
                "revocation endpoint refused the request: {code} (HTTP {})",
                answer.status.as_u16()
            ),
            None => format!("revocation endpoint answered HTTP {}", answer.status),
        }))
    }
}
