//! How the client authenticates to the authorization server: `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (RFC 7523 §2.2), or `none` (token exchange by a public client).

use super::signing_key::SigningKey;
use crate::credential::SourceError;
use crate::credential::secret_ref::SecretRef;
use crate::parse::FieldError;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, header};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;
use url::form_urlencoded::byte_serialize;
use zeroize::Zeroizing;

/// How long a client assertion is valid: long enough for one request.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1).
    SecretBasic(SecretRef),
    /// `client_id` and `client_secret` in the form body.
    SecretPost(SecretRef),
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt {
        key_file: PathBuf,
        kid: Option<String>,
        /// `aud` of the assertion; the token URL when not set.
        audience: Option<String>,
    },
    /// No client authentication; `client_id` is sent when configured.
    None,
}

/// Headers and form fields that authenticate one request. Wiped on drop.
#[derive(Default)]
pub struct Authentication {
    pub headers: HeaderMap,
    pub form: Vec<(&'static str, Zeroizing<String>)>,
}

impl ClientAuth {
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientAuth::None => "none",
        }
    }

    /// Builds the authentication of one request. Secrets and keys are read
    /// again every time, so a rotated client secret or key is used at once.
    pub async fn authenticate(
        &self,
        client_id: Option<&str>,
        token_url: &Url,
    ) -> Result<Authentication, SourceError> {
        let mut out = Authentication::default();
        let id = || {
            client_id
                .map(str::to_owned)
                .ok_or_else(|| SourceError::new("client_id is needed for client authentication"))
        };
        match self {
            ClientAuth::SecretBasic(secret) => {
                let secret = secret.read().await?;
                let pair = Zeroizing::new(format!(
                    "{}:{}",
                    byte_serialize(id()?.as_bytes()).collect::<String>(),
                    byte_serialize(secret.expose().as_bytes()).collect::<String>()
                ));
                let encoded = Zeroizing::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())));
                let mut value = HeaderValue::from_str(&encoded)
                    .map_err(|_| SourceError::new("the client secret cannot go in a header"))?;
                value.set_sensitive(true);
                out.headers.insert(header::AUTHORIZATION, value);
            }
            ClientAuth::SecretPost(secret) => {
                let secret = secret.read().await?;
                out.form.push(("client_id", Zeroizing::new(id()?)));
                out.form
                    .push(("client_secret", Zeroizing::new(secret.expose().to_owned())));
            }
            ClientAuth::PrivateKeyJwt {
                key_file,
                kid,
                audience,
            } => {
                let id = id()?;
                let path = key_file.clone();
                let key = tokio::task::spawn_blocking(move || SigningKey::from_pem_file(&path))
                    .await
                    .map_err(|_| SourceError::new("reading the private key was interrupted"))?
                    .map_err(|e| SourceError::new(format!("private_key_file: {e}")))?;
                let aud = audience.as_deref().unwrap_or(token_url.as_str());
                let assertion = key
                    .sign_jwt(
                        kid.as_deref(),
                        &assertion_claims(&id, aud, SystemTime::now()),
                    )
                    .map_err(SourceError::new)?;
                out.form.push(("client_id", Zeroizing::new(id)));
                out.form.push((
                    "client_assertion_type",
                    Zeroizing::new(ASSERTION_TYPE.into()),
                ));
                out.form
                    .push(("client_assertion", Zeroizing::new(assertion)));
            }
            ClientAuth::None => {
                if let Some(id) = client_id {
                    out.form.push(("client_id", Zeroizing::new(id.to_owned())));
                }
            }
        }
        Ok(out)
    }

    /// `sidekey check`: is the secret or the key there and usable now?
    pub fn probe(&self) -> Result<(), FieldError> {
        match self {
            ClientAuth::SecretBasic(s) | ClientAuth::SecretPost(s) => s
                .read_blocking()
                .map(drop)
                .map_err(|e| FieldError::on("client_secret", e.0)),
            ClientAuth::PrivateKeyJwt { key_file, .. } => SigningKey::from_pem_file(key_file)
                .map(drop)
                .map_err(|e| FieldError::on("private_key_file", e)),
            ClientAuth::None => Ok(()),
        }
    }
}

/// RFC 7523 §3 claims: the client is issuer and subject, a fresh `jti`, a short `exp`.
fn assertion_claims(client_id: &str, audience: &str, now: SystemTime) -> serde_json::Value {
    let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let jti: [u8; 16] = rand::random();
    serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_claims_follow_rfc7523() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = assertion_claims("c1", "https://as.example/token", now);
        let b = assertion_claims("c1", "https://as.example/token", now);
        assert_eq!(a["iss"], "c1");
        assert_eq!(a["sub"], "c1");
        assert_eq!(a["aud"], "https://as.example/token");
        assert_eq!(a["iat"], 1_700_000_000u64);
        assert_eq!(a["exp"], 1_700_000_060u64);
        assert_ne!(a["jti"], b["jti"], "a fresh jti each time");
    }

    #[tokio::test]
    async fn basic_auth_form_encodes_id_and_secret() {
        // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "p@ss word\n").unwrap();
        let auth = ClientAuth::SecretBasic(SecretRef::File(path));
        let url = Url::parse("https://as.example/token").unwrap();
        let a = auth.authenticate(Some("my:client"), &url).await.unwrap();
        let v = a.headers.get(header::AUTHORIZATION).unwrap();
        assert!(v.is_sensitive());
        let b64 = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let raw = STANDARD.decode(b64).unwrap();
        assert_eq!(raw, b"my%3Aclient:p%40ss+word");
        assert!(a.form.is_empty());
    }
}
