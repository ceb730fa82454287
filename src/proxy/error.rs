//! The one place where failures become HTTP answers: DESIGN.md's JSON error body and `sidekey-error` header.

use crate::error_body;
use crate::transport::body::ProxyBody;
use http::{HeaderValue, Response, StatusCode};
use std::time::Duration;

/// Everything the proxy can refuse or fail with. Messages are for the person
/// reading them and never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{method} {path} is outside the scope of this route's credential")]
    NotAllowed { method: String, path: String },
    /// A header or query parameter outside the scope (the text says which).
    #[error("{0}")]
    PartNotAllowed(String),
    /// A request from a browser page the route does not allow.
    #[error("{0}")]
    BrowserOriginRefused(String),
    /// A `Host` that is not a name of the listener (DNS rebinding).
    #[error("{0}")]
    HostNotAllowed(String),
    /// A caller the route's `allow_uids`/`allow_gids`/`caller_token` does not admit.
    #[error("{0}")]
    CallerNotAllowed(String),
    #[error("no route serves this request")]
    NoRoute,
    #[error(
        "credential `{0}` has no usable value yet (not fetched, failing, or revoked); see GET /v1/credentials/{0} on the admin listener"
    )]
    CredentialUnavailable(String),
    #[error(
        "credential `{0}` has expired and could not be refreshed; see GET /v1/credentials/{0} on the admin listener"
    )]
    CredentialExpired(String),
    #[error("cannot reach the upstream: {0}")]
    UpstreamUnreachable(String),
    #[error("the upstream did not answer within {}", humantime::format_duration(*.0))]
    UpstreamTimeout(Duration),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request too large: {0}")]
    RequestTooLarge(String),
    #[error("the request headers total {size} bytes, over this route's limit of {limit}")]
    HeadersTooLarge { size: usize, limit: usize },
    #[error("the request body did not arrive within {} (body_timeout)", humantime::format_duration(*.0))]
    RequestTimeout(Duration),
    /// Forward proxy: a request whose CONNECT target, TLS SNI and `Host`/`:authority` do not all name one host.
    #[error("{0}")]
    Misdirected(String),
    /// Forward proxy: no route names this destination and `unmatched = "deny"`.
    #[error("no route serves {0} and [proxy] unmatched = \"deny\"")]
    NoRouteForHost(String),
    /// Forward proxy: a tunnel to an address it must not reach.
    #[error("{0}")]
    DestinationNotAllowed(String),
    /// An `Upgrade` to a protocol the route's `allow_upgrades` does not list.
    #[error("{0}")]
    UpgradeNotAllowed(String),
}

impl ProxyError {
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::NotAllowed { .. } | ProxyError::PartNotAllowed(_) => "not_allowed",
            ProxyError::BrowserOriginRefused(_) => "browser_origin_refused",
            ProxyError::HostNotAllowed(_) => "host_not_allowed",
            ProxyError::CallerNotAllowed(_) => "caller_not_allowed",
            ProxyError::NoRoute => "no_route",
            ProxyError::CredentialUnavailable(_) => "credential_unavailable",
            ProxyError::CredentialExpired(_) => "credential_expired",
            ProxyError::UpstreamUnreachable(_) => "upstream_unreachable",
            ProxyError::UpstreamTimeout(_) => "upstream_timeout",
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::RequestTooLarge(_) => "request_too_large",
            ProxyError::HeadersTooLarge { .. } => "headers_too_large",
            ProxyError::RequestTimeout(_) => "request_timeout",
            ProxyError::Misdirected(_) => "misdirected",
            ProxyError::NoRouteForHost(_) => "no_route",
            ProxyError::DestinationNotAllowed(_) => "destination_not_allowed",
            ProxyError::UpgradeNotAllowed(_) => "upgrade_not_allowed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotAllowed { .. }
            | ProxyError::PartNotAllowed(_)
            | ProxyError::BrowserOriginRefused(_)
            | ProxyError::HostNotAllowed(_)
            | ProxyError::CallerNotAllowed(_) => StatusCode::FORBIDDEN,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::CredentialUnavailable(_) | ProxyError::CredentialExpired(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::RequestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::NoRouteForHost(_) | ProxyError::DestinationNotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            ProxyError::UpgradeNotAllowed(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer the app receives.
    pub fn into_response(self, route: &str) -> Response<ProxyBody> {
        self.answer(Some(route))
    }

    /// The answer, naming `route` when there is one (the admin API has none).
    pub fn answer(self, route: Option<&str>) -> Response<ProxyBody> {
        let mut resp = error_body::response(self.status(), self.code(), &self.to_string(), route);
        let h = resp.headers_mut();
        if matches!(
            self,
            ProxyError::CredentialUnavailable(_) | ProxyError::CredentialExpired(_)
        ) {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ProxyError::RequestTimeout(_)) {
            // The rest of the body may still come: this connection cannot carry another request.
            h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn json_body_and_header() {
        let resp = ProxyError::NotAllowed {
            method: "DELETE".into(),
            path: "/v1/x".into(),
        }
        .into_response("stripe");
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["sidekey-error"], "not_allowed");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_allowed");
        assert_eq!(v["error"]["route"], "stripe");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DELETE /v1/x")
        );
    }
}
