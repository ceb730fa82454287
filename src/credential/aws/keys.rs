//! Static AWS keys: from `{ file }` / `{ env }` references, or the standard environment variables.

use crate::credential::secret_ref::SecretRef;
use crate::credential::{AwsKeys, Issued, Material, SourceError};
use crate::secret::Secret;
use std::time::SystemTime;

pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// Reads the three references now (files are read at every fetch).
pub async fn from_refs(
    access_key_id: &SecretRef,
    secret_access_key: &SecretRef,
    session_token: Option<&SecretRef>,
) -> Result<Issued, SourceError> {
    let id = access_key_id.read().await?;
    let secret = secret_access_key.read().await?;
    let token = match session_token {
        Some(r) => Some(r.read().await?),
        None => None,
    };
    let issued_at = newest_mtime([Some(access_key_id), Some(secret_access_key), session_token]);
    issued(id.expose(), secret, token, issued_at, None)
}

pub fn env_present() -> bool {
    std::env::var_os(ENV_ACCESS_KEY_ID).is_some()
        && std::env::var_os(ENV_SECRET_ACCESS_KEY).is_some()
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, if set, `AWS_SESSION_TOKEN`.
pub fn from_env() -> Result<Issued, SourceError> {
    let id = SecretRef::Env(ENV_ACCESS_KEY_ID.into()).read_blocking()?;
    let secret = SecretRef::Env(ENV_SECRET_ACCESS_KEY.into()).read_blocking()?;
    let token = match std::env::var_os(ENV_SESSION_TOKEN) {
        Some(_) => Some(SecretRef::Env(ENV_SESSION_TOKEN.into()).read_blocking()?),
        None => None,
    };
    issued(id.expose(), secret, token, SystemTime::now(), None)
}

/// Checks the shape of a set of keys and wraps it for the engine.
pub fn issued(
    access_key_id: &str,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    issued_at: SystemTime,
    expires_at: Option<SystemTime>,
) -> Result<Issued, SourceError> {
    let id = access_key_id.trim();
    if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SourceError::new(
            "the access key id is not an AWS access key id (letters and digits)",
        ));
    }
    Ok(Issued {
        material: Material::Aws(AwsKeys {
            access_key_id: id.to_owned(),
            secret_access_key,
            session_token,
        }),
        issued_at,
        expires_at,
        lease: None,
    })
}

fn newest_mtime<const N: usize>(refs: [Option<&SecretRef>; N]) -> SystemTime {
    refs.into_iter()
        .flatten()
        .filter_map(|r| match r {
            SecretRef::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            SecretRef::Env(_) => None,
        })
        .max()
        .unwrap_or_else(SystemTime::now)
}

/// Parses an AWS `Expiration` ("2026-11-28T03:41:13Z", with optional
/// fraction, or a "+00:00" offset).
pub fn parse_expiration(text: &str) -> Result<SystemTime, SourceError> {
    let t = text.trim();
    let t = t
        .strip_suffix("+00:00")
        .map_or_else(|| t.to_owned(), |s| format!("{s}Z"));
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).map_err(|_| {
        SourceError::new(format!(
            "the Expiration `{text}` is not an RFC 3339 UTC time"
        ))
    })
}
