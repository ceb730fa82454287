//! HTTP/2 with prior knowledge (h2c) to a plain-`http://` upstream, for requests the app sent over HTTP/2 (gRPC): built on first use, so only routes that see HTTP/2 pay for it.
//!
//! As Envoy's "use downstream protocol": an HTTP/1.1 request keeps the
//! `direct` path, an HTTP/2 one goes upstream over HTTP/2, multiplexed on
//! one connection, trailers and flow control carried end to end.

use super::body::ProxyBody;
use super::client;
use super::resolve::Resolver;
use http::uri::{Authority, Scheme};
use http::{Request, Uri};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::OnceLock;

type H2Pool = Pool<HttpConnector<Resolver>, ProxyBody>;

/// A route's h2c client, made when its first HTTP/2 request comes.
pub struct H2c {
    authority: Authority,
    connector: HttpConnector<Resolver>,
    pool: OnceLock<H2Pool>,
}

impl H2c {
    /// Dials with `connector` (the route's, see `reach`).
    pub fn new(authority: Authority, connector: HttpConnector<Resolver>) -> H2c {
        H2c {
            authority,
            connector,
            pool: OnceLock::new(),
        }
    }

    fn pool(&self) -> &H2Pool {
        self.pool.get_or_init(|| {
            Pool::builder(TokioExecutor::new())
                .http2_only(true)
                .pool_idle_timeout(client::POOL_IDLE)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(self.connector.clone())
        })
    }

    /// Sends `req` (origin-form URI, as the direct path takes it) over h2c.
    /// The authority goes in `:authority`; a `Host` header would repeat it.
    pub async fn send(
        &self,
        mut req: Request<ProxyBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req.headers_mut().remove(http::header::HOST);
        self.pool().request(req).await
    }
}
