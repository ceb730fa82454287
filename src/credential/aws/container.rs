//! The ECS task role / EKS Pod Identity container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI`).

use super::http::Http;
use super::imds::json_credentials;
use crate::credential::secret_ref::SecretRef;
use crate::credential::{Issued, SourceError};
use bytes::Bytes;
use http_body_util::Full;
use std::path::Path;

const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const ENV_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
const ENV_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const ENV_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
/// The ECS agent's address for relative URIs.
const ECS_HOST: &str = "http://169.254.170.2";
/// Plain-HTTP hosts the SDKs accept besides loopback: ECS and EKS Pod Identity agents.
const AGENT_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"];

pub fn env_present() -> bool {
    std::env::var_os(ENV_FULL_URI).is_some() || std::env::var_os(ENV_RELATIVE_URI).is_some()
}

/// Fetches credentials from the endpoint; the authorization token file is read at every call.
pub async fn fetch(
    http: &Http,
    endpoint: Option<&str>,
    token_file: Option<&Path>,
) -> Result<Issued, SourceError> {
    let uri = match endpoint {
        Some(e) => e.to_owned(),
        None => match (std::env::var(ENV_RELATIVE_URI), std::env::var(ENV_FULL_URI)) {
            (Ok(rel), _) => format!("{ECS_HOST}{rel}"),
            (_, Ok(full)) => full,
            _ => {
                return Err(SourceError::new(format!(
                    "the container endpoint needs {ENV_RELATIVE_URI} or {ENV_FULL_URI}"
                )));
            }
        },
    };
    let parsed: http::Uri = uri
        .parse()
        .map_err(|_| SourceError::new("the container credentials URI is not a URL"))?;
    let host = parsed.authority().map(|a| a.host()).unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme_str() == Some("http") && !loopback && !AGENT_HOSTS.contains(&host) {
        return Err(SourceError::new(format!(
            "the container credentials endpoint {host} must be https, loopback or the ECS/EKS agent address"
        )));
    }
    let env_file = std::env::var_os(ENV_TOKEN_FILE).map(std::path::PathBuf::from);
    let token = match token_file.or(env_file.as_deref()) {
        Some(f) => Some(SecretRef::File(f.to_owned()).read().await?),
        None if std::env::var_os(ENV_TOKEN).is_some() => {
            Some(SecretRef::Env(ENV_TOKEN.into()).read_blocking()?)
        }
        None => None,
    };
    let mut req = http::Request::get(parsed).header(http::header::ACCEPT, "application/json");
    if let Some(t) = &token {
        let mut v = http::HeaderValue::from_str(t.expose()).map_err(|_| {
            SourceError::new("the container authorization token is not a header value")
        })?;
        v.set_sensitive(true);
        req = req.header(http::header::AUTHORIZATION, v);
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(|_| SourceError::new("the container credentials URI is not usable"))?;
    let answer = http.send(req, "container credentials endpoint").await?;
    json_credentials(&answer, "container credentials endpoint")
}
