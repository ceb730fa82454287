//! `source = "oauth2_token_exchange"`: trades a workload identity token read from a file (a Kubernetes
//! projected service-account token, a SPIFFE JWT-SVID) for an access token (RFC 8693).

use super::endpoint::Endpoint;
use super::{RequestSpec, ServerSpec, scopes_shown};
use crate::credential::{BoxFuture, Issued, Material, Revocation, Source, SourceError};
use std::path::PathBuf;
use zeroize::Zeroizing;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token type of a JWT identity token (RFC 8693 §3).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

#[derive(Debug, Clone, PartialEq)]
pub struct TokenExchangeSpec {
    pub server: ServerSpec,
    pub request: RequestSpec,
    /// Read again at every exchange: the kubelet rotates it.
    pub subject_token_file: PathBuf,
    pub subject_token_type: String,
    pub requested_token_type: Option<String>,
}

impl TokenExchangeSpec {
    pub fn describe(&self) -> String {
        format!(
            "oauth2 token exchange at {} of {} ({}){}",
            self.server.token_url,
            self.subject_token_file.display(),
            self.server.auth.method(),
            scopes_shown(&self.request.scopes),
        )
    }

    /// `sidekey check`: the client can authenticate and the subject token is there.
    pub fn probe(&self) -> Result<(), crate::parse::FieldError> {
        super::probe_server(&self.server)?;
        match std::fs::read_to_string(&self.subject_token_file) {
            Ok(t) if !t.trim().is_empty() => Ok(()),
            Ok(_) => Err(crate::parse::FieldError::on(
                "subject_token_file",
                format!("{} is empty", self.subject_token_file.display()),
            )),
            Err(e) => Err(crate::parse::FieldError::on(
                "subject_token_file",
                format!("cannot read {}: {e}", self.subject_token_file.display()),
            )),
        }
    }
}

pub struct TokenExchangeSource {
    endpoint: Endpoint,
    spec: TokenExchangeSpec,
}

impl TokenExchangeSource {
    pub fn new(spec: TokenExchangeSpec) -> Self {
        TokenExchangeSource {
            endpoint: Endpoint::new(spec.server.clone()),
            spec,
        }
    }

    /// The subject token as it is now in its file.
    async fn subject_token(&self) -> Result<Zeroizing<String>, SourceError> {
        let path = &self.spec.subject_token_file;
        let text = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
            SourceError::new(format!("cannot read subject token {}: {e}", path.display()))
        })?);
        let token = text.trim();
        if token.is_empty() {
            return Err(SourceError::new(format!(
                "subject token {} is empty",
                path.display()
            )));
        }
        Ok(Zeroizing::new(token.to_owned()))
    }

    /// The form of one exchange request (RFC 8693 §2.1), secrets apart.
    fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![
            ("grant_type".to_string(), GRANT_TYPE.to_string()),
            (
                "subject_token_type".to_string(),
                self.spec.subject_token_type.clone(),
            ),
        ];
        if let Some(t) = &self.spec.requested_token_type {
            form.push(("requested_token_type".into(), t.clone()));
        }
        self.spec.request.add_to(&mut form);
        form
    }
}

impl Source for TokenExchangeSource {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let subject = self.subject_token().await?;
            self.endpoint
                .token(self.form(), vec![("subject_token", subject)])
                .await
        })
    }

    fn revoke<'a>(
        &'a self,
        issued: &'a Material,
    ) -> BoxFuture<'a, Result<Revocation, SourceError>> {
        Box::pin(self.endpoint.revoke(issued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::oauth2::ClientAuth;
    use std::time::Duration;

    #[test]
    fn exchange_form_has_rfc8693_parameters() {
        let spec = TokenExchangeSpec {
            server: ServerSpec {
                token_url: "https://as.example.com/token".parse().unwrap(),
                client_id: None,
                auth: ClientAuth::None,
                revocation_url: None,
                ca_file: None,
                timeout: Duration::from_secs(1),
                default_lifetime: Duration::from_secs(60),
            },
            request: RequestSpec {
                scopes: vec!["a".into(), "b".into()],
                audience: vec!["urn:example:cooperation-context".into()],
                resource: vec!["https://backend.example.com/api".into()],
                params: vec![],
            },
            subject_token_file: "/nonexistent".into(),
            subject_token_type: JWT_TOKEN_TYPE.into(),
            requested_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
        };
        let src = TokenExchangeSource::new(spec);
        let form = src.form();
        let get = |k: &str| {
            form.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("grant_type"), [GRANT_TYPE]);
        assert_eq!(get("subject_token_type"), [JWT_TOKEN_TYPE]);
        assert_eq!(
            get("requested_token_type"),
            ["urn:ietf:params:oauth:token-type:access_token"]
        );
        assert_eq!(get("scope"), ["a b"]);
        assert_eq!(get("audience"), ["urn:example:cooperation-context"]);
        assert_eq!(get("resource"), ["https://backend.example.com/api"]);
        assert!(
            get("subject_token").is_empty(),
            "the subject token travels apart, wiped after use"
        );
    }
}
