//! One JSON call to the Vault/OpenBao HTTP API: address, namespace, token header, bounded in time and size, errors as Vault wrote them minus any secret.

use crate::credential::SourceError;
use crate::secret::Secret;
use crate::transport::body;
use crate::transport::client::{self, UpstreamClient};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use url::Url;
use zeroize::Zeroizing;

/// Answers larger than this are not what sidekey asked for.
const MAX_ANSWER: usize = 256 * 1024;
/// Longest Vault error text quoted in a message.
const MAX_ERROR_TEXT: usize = 200;

/// Where the server is and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// `https://vault:8200` (or `http://` to loopback), no path.
    pub address: Url,
    pub ca_file: Option<std::path::PathBuf>,
    /// Enterprise/OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// Bound on one call (connect, answer and body).
    pub timeout: Duration,
}

/// A failed call: the message is fit to show; `status` says what Vault answered, if it did.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: Option<StatusCode>,
    pub message: String,
}

impl CallError {
    /// Vault refused the token itself (revoked, expired, unknown): a new login may help.
    pub fn token_refused(&self) -> bool {
        self.status == Some(StatusCode::FORBIDDEN)
    }

    pub fn into_source(self) -> SourceError {
        match self.status {
            // A missing path or a bad request does not mend by retrying soon.
            Some(s) if s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST => {
                SourceError::permanent(self.message)
            }
            _ => SourceError::new(self.message),
        }
    }
}

impl From<CallError> for SourceError {
    fn from(e: CallError) -> Self {
        e.into_source()
    }
}

pub struct Client {
    conn: Connection,
    http: Result<UpstreamClient, client::TlsError>,
}

impl Client {
    pub fn new(conn: Connection) -> Self {
        let http = client::tls_config(conn.ca_file.as_deref().map(Path::new))
            .map(|tls| client::build(tls, conn.timeout));
        Client { conn, http }
    }

    /// Calls `method /v1/{path}` with `token` and an optional JSON body; returns
    /// the answer's JSON (`Value::Null` for 204). `hide` are secrets sent in the
    /// request besides the token, kept out of any error text.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        body: Option<Zeroizing<String>>,
        hide: &[&str],
    ) -> Result<Zeroizing<Vec<u8>>, CallError> {
        let what = match &self.conn.namespace {
            Some(ns) => format!(
                "vault {} {} (namespace {})",
                method,
                path_shown(path),
                path_shown(ns)
            ),
            None => format!("vault {} {}", method, path_shown(path)),
        };
        let http = self.http.as_ref().map_err(|e| CallError {
            status: None,
            message: format!("{what}: {e}"),
        })?;
        let url = format!(
            "{}/v1/{}",
            self.conn.address.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            let mut v = http::HeaderValue::from_str(t.expose()).map_err(|_| CallError {
                status: None,
                message: format!("{what}: the Vault token holds characters a header cannot carry"),
            })?;
            v.set_sensitive(true);
            req = req.header("X-Vault-Token", v);
        }
        if let Some(ns) = &self.conn.namespace {
            req = req.header("X-Vault-Namespace", ns.as_str());
        }
        let bytes = body.map(|b| b.as_bytes().to_vec()).unwrap_or_default();
        let req = req
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(body::full(bytes))
            .map_err(|_| CallError {
                status: None,
                message: format!("{what}: not a usable request"),
            })?;
        let call = async {
            let resp = http.request(req).await.map_err(|e| {
                let mut message =
                    format!("{what}: {}", crate::redact::error_chain(&e.to_string(), &e));
                if certificate_refused(&e) {
                    message.push_str(&self.trust_hint());
                }
                CallError {
                    status: None,
                    message,
                }
            })?;
            let status = resp.status();
            let collected = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| CallError {
                    status: Some(status),
                    message: format!(
                        "{what}: answer cut short or larger than {} KiB",
                        MAX_ANSWER / 1024
                    ),
                })?;
            let body = Zeroizing::new(collected.to_bytes().to_vec());
            if status.is_success() {
                return Ok(body);
            }
            let mut secrets: Vec<&str> = hide.to_vec();
            if let Some(t) = token {
                secrets.push(t.expose());
            }
            let mut message = format!("{what}: {}", refusal(status, &body, &secrets));
            if status == StatusCode::NOT_FOUND && self.conn.namespace.is_none() {
                message.push_str(" in the root namespace (no `namespace` set)");
            }
            Err(CallError {
                status: Some(status),
                message,
            })
        };
        tokio::time::timeout(self.conn.timeout, call)
            .await
            .map_err(|_| CallError {
                status: None,
                message: format!(
                    "{what}: no answer within {}",
                    humantime::format_duration(self.conn.timeout)
                ),
            })?
    }

    /// [`Client::call`], the answer parsed as a JSON object.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        body: Option<&Value>,
        hide: &[&str],
    ) -> Result<Value, CallError> {
        let body = body.map(|b| Zeroizing::new(b.to_string()));
        let shown = path_shown(path);
        let raw = self.call(method, path, token, body, hide).await?;
        if raw.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&raw).map_err(|_| CallError {
            status: None,
            message: format!("vault {shown}: the answer is not JSON"),
        })
    }
}

impl Client {
    /// Why the server's certificate may have been refused: what sidekey trusts.
    fn trust_hint(&self) -> String {
        match &self.conn.ca_file {
            Some(p) => format!(
                " (the server's certificate is not signed by a CA in ca_file {})",
                p.display()
            ),
            None => {
                " (the server's certificate is not signed by a public CA: set `ca_file`)".to_owned()
            }
        }
    }
}

/// Whether a failed call is a server certificate that did not verify (the
/// rustls error sits inside nested `io::Error`s, which `source()` skips).
fn certificate_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return matches!(tls, rustls::Error::InvalidCertificate(_));
    }
    let inner = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|i| certificate_refused(i));
    inner || e.source().is_some_and(certificate_refused)
}

/// The path as shown in messages: wrapping and lease paths carry no secret, and
/// neither do the paths a config names, but stay bounded.
fn path_shown(path: &str) -> String {
    crate::redact::peer_text(path, 120, true)
}

/// What Vault said: `{"errors": ["..."]}` joined, minus the secrets sent.
fn refusal(status: StatusCode, body: &[u8], secrets: &[&str]) -> String {
    let errors = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.trim().is_empty());
    let text = match errors {
        Some(e) => format!("{e} (HTTP {})", status.as_u16()),
        None => format!("HTTP {status}"),
    };
    let text = crate::redact::without_secrets(&text, secrets);
    // Vault's multi-error text spreads over lines ("1 error occurred:\n\t* ..."): one line.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::redact::peer_text(&text, MAX_ERROR_TEXT, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_are_quoted_without_the_token() {
        let body = br#"{"errors":["permission denied","token s.abcdefgh is revoked"]}"#;
        let text = refusal(StatusCode::FORBIDDEN, body, &["s.abcdefgh"]);
        assert_eq!(
            text,
            "permission denied; token <redacted> is revoked (HTTP 403)"
        );
        let body = br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#;
        let text = refusal(StatusCode::FORBIDDEN, body, &[]);
        assert_eq!(text, "1 error occurred: * permission denied (HTTP 403)");
        let text = refusal(StatusCode::SERVICE_UNAVAILABLE, b"<html>", &[]);
        assert_eq!(text, "HTTP 503 Service Unavailable");
    }

    #[test]
    fn sealed_error_is_quoted() {
        let body = br#"{"errors":["Vault is sealed"]}"#;
        assert_eq!(
            refusal(StatusCode::SERVICE_UNAVAILABLE, body, &[]),
            "Vault is sealed (HTTP 503)"
        );
    }
}
