//! Upstream connections for HTTP/1.1 upgrades (WebSocket): a dedicated connection per handshake, never a pooled one, and for `https://` a TLS session that offers only `http/1.1` by ALPN.

use super::body::ProxyBody;
use super::client::{self, SendFailure};
use super::resolve::Resolver;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tower_service::Service;

/// Dials a route's upstream for upgrades; the TLS set-up is made on first use.
pub struct Dialer {
    /// `scheme://authority/`, what the connector dials.
    dial: Uri,
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
    connector: OnceLock<Result<HttpsConnector<HttpConnector<Resolver>>, client::TlsError>>,
}

impl Dialer {
    pub fn new(
        scheme: &Scheme,
        authority: &Authority,
        ca_file: Option<PathBuf>,
        connect_timeout: Duration,
    ) -> Result<Dialer, http::Error> {
        let dial = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        Ok(Dialer {
            dial,
            ca_file,
            connect_timeout,
            connector: OnceLock::new(),
        })
    }

    fn connector(&self) -> Result<HttpsConnector<HttpConnector<Resolver>>, SendFailure> {
        let made = self.connector.get_or_init(|| {
            let tls = client::tls_config(self.ca_file.as_deref())?;
            let mut http = client::connector(self.connect_timeout);
            http.enforce_http(false);
            Ok(HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1() // an upgrade exists only in HTTP/1.1
                .wrap_connector(http))
        });
        made.clone()
            .map_err(|e| SendFailure::Upstream(format!("TLS set-up: {e}")))
    }

    /// Sends the handshake `req` (origin-form URI, `Host` set) on a new
    /// connection; a `101` answer carries the upgraded connection (take it
    /// with `hyper::upgrade::on`).
    pub async fn send(&self, req: Request<ProxyBody>) -> Result<Response<Incoming>, SendFailure> {
        let failed = |head: &str, e: &(dyn std::error::Error + 'static)| {
            SendFailure::Upstream(crate::redact::error_chain(head, e))
        };
        let io = self
            .connector()?
            .call(self.dial.clone())
            .await
            .map_err(|e| failed("connection failed", e.as_ref()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| failed("connection failed", &e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upgrade connection ended with an error");
            }
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| failed("the connection failed mid-request", &e))
    }
}
