//! Upstream clients: hyper-util's pool over rustls (ring) with HTTP/1.1 or HTTP/2 by ALPN for
//! HTTPS, a short idle list of our own for plain HTTP, and how their failures read.

use super::body::ProxyBody;
use super::body::Streamed;
use super::direct::Direct;
use super::resolve::Resolver;
use http::{Request, Response};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub type UpstreamClient = Pool<HttpsConnector<HttpConnector<Resolver>>, ProxyBody>;

/// How long an idle upstream connection is kept for reuse (pooled or direct).
pub const POOL_IDLE: Duration = Duration::from_secs(90);

/// The TCP connector every upstream client dials with.
pub fn connector(connect_timeout: Duration) -> HttpConnector<Resolver> {
    connector_to(connect_timeout, None)
}

/// [`connector`], dialling `connect_to` instead of resolving the name when given.
pub fn connector_to(
    connect_timeout: Duration,
    connect_to: Option<std::net::SocketAddr>,
) -> HttpConnector<Resolver> {
    let mut http = HttpConnector::new_with_resolver(Resolver::new(connect_to));
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {0}: {1}")]
    Read(String, String),
    #[error("CA file {0} is not PEM: {1}")]
    NotPem(String, String),
    #[error("CA file {0} holds no certificate")]
    Empty(String),
    #[error("CA file {0}: {1}")]
    BadCertificate(String, String),
    #[error("TLS set-up: {0}")]
    Provider(String),
}

/// A rustls client configuration with the webpki roots plus an optional private CA file.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = || path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::Read(shown(), e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::NotPem(shown(), e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::Empty(shown()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| TlsError::BadCertificate(shown(), e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A pooled client for upstreams reached with this TLS configuration
/// (the credential sources that call out; routes dial through `reach`).
pub fn build(tls: rustls::ClientConfig, connect_timeout: Duration) -> UpstreamClient {
    let mut http = connector(connect_timeout);
    http.enforce_http(false); // the TLS layer above takes https:// too
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    pool_over(https)
}

/// The pool over a connector (see `reach` for how a route makes one).
pub fn pool_over(https: HttpsConnector<HttpConnector<Resolver>>) -> UpstreamClient {
    Pool::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// How a route reaches its upstream.
#[derive(Clone)]
pub enum Client {
    /// `https://`: the shared pool (TLS, HTTP/2 multiplexing).
    Pooled(Box<UpstreamClient>),
    /// `http://`: connections of our own (see `direct`).
    Direct(Arc<Direct>),
    /// `https://` presenting a client certificate: a pool per certificate (see `mtls`).
    Mtls(Arc<super::mtls::CertPools>),
}

impl Client {
    /// Whether requests carry the origin-form target (`/path?query`):
    /// a connection of our own is written to as is, the pool wants the full URI.
    pub fn origin_form(&self) -> bool {
        matches!(self, Client::Direct(_))
    }

    /// Sends `req`. Failures are described without anything the request carried.
    pub async fn send(&self, req: Request<ProxyBody>) -> Result<Response<ProxyBody>, SendFailure> {
        match self {
            Client::Pooled(c) => pooled(c.request(req).await),
            Client::Mtls(pools) => match super::mtls::send(pools, req).await {
                Err(None) => Err(SendFailure::Upstream(
                    "no client certificate to present".into(),
                )),
                Ok(resp) => pooled(Ok(resp)),
                Err(Some(e)) => pooled(Err(e)),
            },
            // The app spoke HTTP/2 (gRPC): so does the upstream, over h2c.
            Client::Direct(d) if req.version() == http::Version::HTTP_2 => {
                match d.h2c.send(req).await {
                    Ok(resp) => Ok(resp.map(Streamed::new)),
                    Err(e) => Err(SendFailure::of(pool_failure(&e), &e)),
                }
            }
            Client::Direct(d) => d
                .send(req)
                .await
                .map_err(|e| SendFailure::of(&e.to_string(), &e)),
        }
    }
}

/// A pooled client's answer, or how its failure reads.
fn pooled(
    result: Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
) -> Result<Response<ProxyBody>, SendFailure> {
    match result {
        Ok(resp) => Ok(resp.map(Streamed::new)),
        Err(e) => Err(SendFailure::of(pool_failure(&e), &e)),
    }
}

/// How a pooled client's failure reads.
fn pool_failure(e: &hyper_util::client::legacy::Error) -> &'static str {
    match e.is_connect() {
        true => "connection failed",
        false => "the connection failed mid-request",
    }
}

/// Why a request got no answer, and whose fault it was.
#[derive(Debug)]
pub enum SendFailure {
    /// The request's own streamed body could not be read from the app
    /// (bad framing, cut short): the client's fault, not the upstream's.
    RequestBody(String),
    /// Connecting to the upstream, or talking to it, failed.
    Upstream(String),
}

impl SendFailure {
    fn of(head: &str, e: &(dyn std::error::Error + 'static)) -> SendFailure {
        match super::body::is_read_error(e) {
            true => SendFailure::RequestBody(crate::redact::error_chain(
                "the request body could not be read from the client",
                e,
            )),
            false => SendFailure::Upstream(crate::redact::error_chain(head, e)),
        }
    }
}
