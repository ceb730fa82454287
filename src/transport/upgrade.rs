//! Upstream connections for HTTP/1.1 upgrades (WebSocket): a dedicated connection per handshake, never a pooled one, and for `https://` a TLS session that offers only `http/1.1` by ALPN.

use super::body::ProxyBody;
use super::client::SendFailure;
use super::mtls::PresentCert;
use super::reach::{Alpn, Reach};
use super::resolve::Resolver;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::OnceLock;
use tokio::net::TcpStream;
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

    /// Sends the handshake `req` (full or origin-form URI, `Host` set) on a new
    /// connection; a `101` answer carries the upgraded connection (take it
    /// with `hyper::upgrade::on`). `over_h2`: the app sent an RFC 8441
    /// extended CONNECT; an `https://` upstream that picks `h2` by ALPN and
    /// allows extended CONNECT gets one too (see [`Dialer::h2`]).
    pub async fn send(
        &self,
        req: Request<ProxyBody>,
        over_h2: bool,
    ) -> Result<Response<Incoming>, SendFailure> {
        let is_https = self.dial.scheme() == Some(&Scheme::HTTPS);
        let io = match over_h2 && is_https {
            false => self.connector(&req).call(self.dial.clone()).await,
            true => {
                let cert = req.extensions().get::<PresentCert>();
                let io = self
                    .reach
                    .https(cert, Alpn::Both)
                    .call(self.dial.clone())
                    .await
                    .map_err(|e| failed("connection failed", e.as_ref()))?;
                if !io.connected().is_negotiated_h2() {
                    return self.http1(io, req).await; // it chose HTTP/1.1
                }
                match self.h2(io, &req).await? {
                    Some(resp) => return Ok(resp),
                    // No extended CONNECT there: the HTTP/1.1 handshake, on
                    // a connection that offers only `http/1.1`.
                    None => self.connector(&req).call(self.dial.clone()).await,
                }
            }
        }
        .map_err(|e| failed("connection failed", e.as_ref()))?;
        self.http1(io, req).await
    }

    /// Writes the handshake on `io` in origin form (`/path?query`): the
    /// request comes with the full URI it was signed with.
    async fn http1(
        &self,
        io: MaybeHttpsStream<TokioIo<TcpStream>>,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendFailure> {
        if let Some(pq) = req.uri().path_and_query().cloned() {
            *req.uri_mut() = Uri::from(pq);
        }
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

    /// WebSocket over HTTP/2 to the upstream (RFC 8441): `hs` (the HTTP/1.1
    /// handshake sidekey made of the app's extended CONNECT) goes as an
    /// extended CONNECT on an `h2` connection. `None` when the upstream
    /// does not announce `SETTINGS_ENABLE_CONNECT_PROTOCOL` (hyper refuses
    /// to send one then). Its `200` is answered on as a `101`, which is
    /// what the join after the handshake expects.
    async fn h2(
        &self,
        io: MaybeHttpsStream<TokioIo<TcpStream>>,
        hs: &Request<ProxyBody>,
    ) -> Result<Option<Response<Incoming>>, SendFailure> {
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| failed("connection failed", &e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upgrade connection ended with an error");
            }
        });
        let protocol = hs
            .headers()
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("websocket")
            .to_owned();
        let mut uri = self.dial.clone().into_parts();
        uri.path_and_query = hs.uri().path_and_query().cloned();
        let uri = Uri::from_parts(uri).map_err(|e| failed("bad target", &e))?;
        // The server's SETTINGS come after the handshake: a CONNECT sent
        // before they arrive is refused by hyper, so it is tried a few times;
        // still refused, the HTTP/1.1 handshake is made instead.
        for _ in 0..H2_SETTINGS_TRIES {
            let mut req = Request::builder()
                .method(http::Method::CONNECT)
                .version(http::Version::HTTP_2)
                .uri(uri.clone())
                .body(super::body::empty())
                .map_err(|e| failed("bad target", &e))?;
            let headers = req.headers_mut();
            for (name, value) in hs.headers() {
                if !H1_ONLY.contains(&name.as_str()) {
                    headers.append(name, value.clone());
                }
            }
            *req.extensions_mut() = hs.extensions().clone();
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from(protocol.as_str()));
            if sender.ready().await.is_err() {
                return Ok(None);
            }
            match sender.send_request(req).await {
                Ok(mut resp) if resp.status() == http::StatusCode::OK => {
                    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
                    return Ok(Some(resp));
                }
                Ok(resp) => return Ok(Some(resp)),
                Err(e) => {
                    tracing::trace!(error = %e, "extended CONNECT not sent upstream yet");
                    tokio::time::sleep(H2_SETTINGS_WAIT).await;
                }
            }
        }
        Ok(None)
    }
}

/// How often, and how far apart, an extended CONNECT is tried while the
/// upstream's SETTINGS may still be on their way.
const H2_SETTINGS_TRIES: u32 = 10;
const H2_SETTINGS_WAIT: std::time::Duration = std::time::Duration::from_millis(30);

/// Headers of the HTTP/1.1 handshake that RFC 8441 §5 leaves out.
const H1_ONLY: [&str; 5] = [
    "connection",
    "upgrade",
    "host",
    "sec-websocket-key",
    "sec-websocket-accept",
];

fn failed(head: &str, e: &(dyn std::error::Error + 'static)) -> SendFailure {
    SendFailure::Upstream(crate::redact::error_chain(head, e))
}
