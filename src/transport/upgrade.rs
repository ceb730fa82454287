//! Upstream connections for HTTP/1.1 upgrades (WebSocket): a dedicated connection per handshake, never a pooled one, and for `https://` a TLS session that offers only `http/1.1` by ALPN.

use super::body::ProxyBody;
use super::client::SendFailure;
use super::mtls::PresentCert;
use super::reach::{Alpn, Reach};
use super::resolve::Resolver;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::OnceLock;
use tower_service::Service;

/// Dials a route's upstream for upgrades, as the route's [`Reach`] says.
pub struct Dialer {
    /// `scheme://authority/`, what the connector dials.
    dial: Uri,
    reach: Reach,
    /// The connector for handshakes that present no client certificate, made on first use.
    plain: OnceLock<HttpsConnector<HttpConnector<Resolver>>>,
}

impl Dialer {
    pub fn new(
        scheme: &Scheme,
        authority: &Authority,
        reach: Reach,
    ) -> Result<Dialer, http::Error> {
        let dial = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        Ok(Dialer {
            dial,
            reach,
            plain: OnceLock::new(),
        })
    }

    /// The connector for `req`: one presenting the request's client
    /// certificate (a `client_cert` route), made for the handshake, or the
    /// shared plain one. An upgrade exists only in HTTP/1.1.
    fn connector(&self, req: &Request<ProxyBody>) -> HttpsConnector<HttpConnector<Resolver>> {
        match req.extensions().get::<PresentCert>() {
            Some(cert) => self.reach.https(Some(cert), Alpn::Http1),
            None => self
                .plain
                .get_or_init(|| self.reach.https(None, Alpn::Http1))
                .clone(),
        }
    }

    /// Sends the handshake `req` (origin-form URI, `Host` set) on a new
    /// connection; a `101` answer carries the upgraded connection (take it
    /// with `hyper::upgrade::on`).
    pub async fn send(&self, req: Request<ProxyBody>) -> Result<Response<Incoming>, SendFailure> {
        let failed = |head: &str, e: &(dyn std::error::Error + 'static)| {
            SendFailure::Upstream(crate::redact::error_chain(head, e))
        };
        let io = self
            .connector(&req)
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
