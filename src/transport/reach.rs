//! How a route reaches its upstream, made in one place: the address (the name resolved, or the route's `connect_to`), the connect timeout, the TLS set-up (roots plus `ca_file`, the client certificate a request presents) and the ALPN offer. The pooled client, the mTLS pools, h2c and the upgrade dialer all dial through it.

use super::client::{self, TlsError, UpstreamClient};
use super::mtls::PresentCert;
use super::resolve::Resolver;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a TLS connection offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` and `http/1.1`: the pool, which multiplexes where it can.
    Both,
    /// `http/1.1` only: an HTTP/1.1 upgrade (WebSocket) handshake.
    Http1,
}

/// One route's way to its upstream.
#[derive(Clone)]
pub struct Reach {
    pub connect_timeout: Duration,
    pub connect_to: Option<SocketAddr>,
    /// Trusted roots (webpki plus the route's `ca_file`), no client certificate yet.
    tls: Arc<rustls::ClientConfig>,
}

impl Reach {
    /// Reads `ca_file` now, so a bad one fails the route's build.
    pub fn new(
        ca_file: Option<&Path>,
        connect_timeout: Duration,
        connect_to: Option<SocketAddr>,
    ) -> Result<Reach, TlsError> {
        Ok(Reach {
            connect_timeout,
            connect_to,
            tls: Arc::new(client::tls_config(ca_file)?),
        })
    }

    /// The TCP connector: resolves the name, or dials `connect_to`.
    pub fn tcp(&self) -> HttpConnector<Resolver> {
        client::connector_to(self.connect_timeout, self.connect_to)
    }

    /// The TLS configuration, presenting `cert` when given. A certificate
    /// gets a session cache of its own: a resumed session skips client
    /// authentication, so sessions never cross certificates.
    pub fn tls(&self, cert: Option<&PresentCert>) -> rustls::ClientConfig {
        let mut config = (*self.tls).clone();
        if let Some(cert) = cert {
            config.client_auth_cert_resolver = Arc::new(Always(cert.key.clone()));
            config.resumption = rustls::client::Resumption::default();
        }
        config
    }

    /// A connector that takes `https://` (TLS offering `alpn`) and `http://`.
    pub fn https(
        &self,
        cert: Option<&PresentCert>,
        alpn: Alpn,
    ) -> HttpsConnector<HttpConnector<Resolver>> {
        let mut tcp = self.tcp();
        tcp.enforce_http(false); // the TLS layer above takes https:// too
        let b = HttpsConnectorBuilder::new()
            .with_tls_config(self.tls(cert))
            .https_or_http()
            .enable_http1();
        match alpn {
            Alpn::Both => b.enable_http2().wrap_connector(tcp),
            Alpn::Http1 => b.wrap_connector(tcp),
        }
    }

    /// A pooled client (HTTP/1.1 or HTTP/2 by ALPN) presenting `cert` when given.
    pub fn pool(&self, cert: Option<&PresentCert>) -> UpstreamClient {
        client::pool_over(self.https(cert, Alpn::Both))
    }
}

/// A resolver that always presents one certificate.
#[derive(Debug)]
struct Always(Arc<CertifiedKey>);

impl ResolvesClientCert for Always {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
