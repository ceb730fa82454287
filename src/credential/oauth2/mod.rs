//! OAuth 2.0 sources: `oauth2` (client-credentials grant, RFC 6749 §4.4) and
//! `oauth2_token_exchange` (RFC 8693), sharing one token-endpoint client.
//!
//! A source only fetches: the rotation engine decides when (about 2/3 of
//! `expires_in`), retries with backoff, and serves the last good token while
//! it is valid. A `refresh_token` in an answer is ignored and never stored.

mod client_auth;
mod client_credentials;
mod config;
mod endpoint;
mod exchange;
mod revoke;
mod signing_key;
mod token;
mod transport;

pub use client_auth::ClientAuth;
pub use client_credentials::OAuth2Source;
pub(in crate::credential) use config::endpoint_url;
pub use config::{parse_client_credentials, parse_token_exchange};
pub use exchange::{TokenExchangeSource, TokenExchangeSpec};

use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Lifetime assumed when an answer has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Bound on one call to the token or revocation endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The authorization server and how the client authenticates to it; shared
/// by both OAuth 2.0 sources.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    pub token_url: Url,
    /// Optional only for `oauth2_token_exchange` without client authentication.
    pub client_id: Option<String>,
    pub auth: ClientAuth,
    pub revocation_url: Option<Url>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub default_lifetime: Duration,
}

/// What a token request asks for, besides the grant itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestSpec {
    pub scopes: Vec<String>,
    /// RFC 8693 `audience` (also sent on client-credentials requests, which many servers accept).
    pub audience: Vec<String>,
    /// RFC 8707 resource indicators.
    pub resource: Vec<String>,
    /// Extra form parameters, sent as written.
    pub params: Vec<(String, String)>,
}

impl RequestSpec {
    /// Appends scope, audience, resource and the extra parameters to a form.
    fn add_to(&self, form: &mut Vec<(String, String)>) {
        if !self.scopes.is_empty() {
            form.push(("scope".into(), self.scopes.join(" ")));
        }
        for a in &self.audience {
            form.push(("audience".into(), a.clone()));
        }
        for r in &self.resource {
            form.push(("resource".into(), r.clone()));
        }
        form.extend(self.params.iter().cloned());
    }
}

/// `source = "oauth2"`: the client-credentials grant.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2Spec {
    pub server: ServerSpec,
    pub request: RequestSpec,
}

impl OAuth2Spec {
    pub fn describe(&self) -> String {
        format!(
            "oauth2 client_credentials at {} as {} ({}){}",
            self.server.token_url,
            self.server.client_id.as_deref().unwrap_or("-"),
            self.server.auth.method(),
            scopes_shown(&self.request.scopes),
        )
    }
}

fn scopes_shown(scopes: &[String]) -> String {
    if scopes.is_empty() {
        String::new()
    } else {
        format!(", scopes {}", scopes.join(" "))
    }
}

/// The checks of `sidekey check`: can the client authenticate with what it points at?
pub fn probe_server(server: &ServerSpec) -> Result<(), crate::parse::FieldError> {
    server.auth.probe()
}

impl super::spec::SourceSettings for OAuth2Spec {
    fn kind(&self) -> &'static str {
        "oauth2"
    }

    fn build(&self) -> std::sync::Arc<dyn super::Source> {
        std::sync::Arc::new(OAuth2Source::new(self.clone()))
    }

    fn describe(&self) -> String {
        OAuth2Spec::describe(self)
    }

    fn probe(&self) -> Result<(), crate::parse::FieldError> {
        probe_server(&self.server)
    }
}

impl super::spec::SourceSettings for TokenExchangeSpec {
    fn kind(&self) -> &'static str {
        "oauth2_token_exchange"
    }

    fn build(&self) -> std::sync::Arc<dyn super::Source> {
        std::sync::Arc::new(TokenExchangeSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        TokenExchangeSpec::describe(self)
    }

    fn probe(&self) -> Result<(), crate::parse::FieldError> {
        TokenExchangeSpec::probe(self)
    }
}
