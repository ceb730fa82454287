//! The small HTTP client the AWS credential origins share: sidekey's own pooled hyper client, bounded answers, errors without secrets.

use crate::credential::SourceError;
use crate::transport::client::{self, UpstreamClient};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use std::sync::OnceLock;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Credential answers are small; anything bigger is not one.
const MAX_ANSWER: usize = 256 * 1024;

pub struct Http {
    client: OnceLock<Result<UpstreamClient, client::TlsError>>,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&UpstreamClient, SourceError> {
        self.client
            .get_or_init(|| client::tls_config(None).map(|tls| client::build(tls, CONNECT_TIMEOUT)))
            .as_ref()
            .map_err(|e| SourceError::new(format!("cannot set up TLS: {e}")))
    }

    /// Sends `req`; `what` names the call in error messages (never the request itself).
    pub async fn send(&self, req: Request<Full<Bytes>>, what: &str) -> Result<Answer, SourceError> {
        let client = self.client()?;
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Either::Right(body));
        let resp = tokio::time::timeout(TIMEOUT, client.request(req))
            .await
            .map_err(|_| {
                SourceError::new(format!("{what}: no answer within {}s", TIMEOUT.as_secs()))
            })?
            .map_err(|e| SourceError::new(format!("{what}: {}", describe(&e))))?;
        let status = resp.status();
        let body = tokio::time::timeout(
            TIMEOUT,
            Limited::new(resp.into_body(), MAX_ANSWER).collect(),
        )
        .await
        .map_err(|_| SourceError::new(format!("{what}: the answer did not complete in time")))?
        .map_err(|e| SourceError::new(format!("{what}: cannot read the answer: {e}")))?
        .to_bytes();
        Ok(Answer { status, body })
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let head = match e.is_connect() {
        true => "connection failed",
        false => "the request failed",
    };
    crate::redact::error_chain(head, e)
}
