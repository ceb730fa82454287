//! One form POST to an authorization server endpoint, over the proxy's pooled rustls client, bounded in time and size.

use crate::credential::SourceError;
use crate::transport::body;
use crate::transport::client::{self, UpstreamClient};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use std::path::Path;
use std::time::Duration;
use url::Url;
use zeroize::Zeroizing;

/// Answers larger than this are not token responses.
const MAX_ANSWER: usize = 64 * 1024;

/// What an endpoint answered. The body may hold a token: it is wiped on drop.
pub struct Answer {
    pub status: StatusCode,
    pub body: Zeroizing<Vec<u8>>,
}

pub struct Transport {
    client: Result<UpstreamClient, client::TlsError>,
    timeout: Duration,
}

impl Transport {
    /// A client trusting the webpki roots plus `ca_file`. A CA file that
    /// cannot be read now makes every call fail with the reason.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Self {
        let client = client::tls_config(ca_file).map(|tls| client::build(tls, timeout));
        Transport { client, timeout }
    }

    /// POSTs `form` (already `application/x-www-form-urlencoded`) to `url`.
    /// `what` names the endpoint in errors ("token endpoint").
    pub async fn post_form(
        &self,
        what: &str,
        url: &Url,
        headers: HeaderMap,
        form: Zeroizing<String>,
    ) -> Result<Answer, SourceError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| SourceError::new(format!("{what}: {e}")))?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(body::full(form.as_bytes().to_vec()))
            .map_err(|_| SourceError::new(format!("{what}: {url} is not a usable URL")))?;
        req.headers_mut().extend(headers);
        let host = url.host_str().unwrap_or("?");
        let call = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| SourceError::new(format!("{what} at {host}: {}", cause(&e))))?;
            let status = resp.status();
            let collected = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| {
                    let why = if e.is::<http_body_util::LengthLimitError>() {
                        format!("answer larger than {} KiB", MAX_ANSWER / 1024)
                    } else {
                        format!("answer cut short ({e})")
                    };
                    SourceError::new(format!("{what} at {host}: {why}"))
                })?;
            Ok(Answer {
                status,
                body: Zeroizing::new(collected.to_bytes().to_vec()),
            })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                SourceError::new(format!(
                    "{what} at {host}: no answer within {}",
                    humantime::format_duration(self.timeout)
                ))
            })?
    }
}

/// A client error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn cause(e: &hyper_util::client::legacy::Error) -> String {
    crate::redact::error_chain(&e.to_string(), e)
}
