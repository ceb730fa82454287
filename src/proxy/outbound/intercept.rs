//! An intercepted tunnel: TLS terminated with the host's leaf, then HTTP/1.1 or HTTP/2 (by ALPN) served request by request, each pinned to the tunnel's host and sent through the routes' one request path.

use super::super::error::ProxyError;
use super::super::forward;
use super::super::idle_h2;
use super::super::listener;
use super::super::router::{ByHost, Connection, Destination, Head, Router};
use super::{Outbound, pin};
use crate::metrics::PROXY;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Time for the app's TLS hello and handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Terminates the app's TLS inside a tunnel to `dest` and serves its requests.
pub async fn serve<I>(
    io: I,
    dest: Destination,
    mut conn: Connection,
    ob: Arc<Outbound>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(ca) = ob.ca.load_full() else {
        tracing::warn!(host = %dest.host, "no CA to intercept with");
        return;
    };
    let config = match ca.server_config(&dest.host) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(host = %dest.host, error = %e, "cannot mint a certificate");
            return;
        }
    };
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let handshake = async {
        let start = acceptor.await?;
        let sni = start
            .client_hello()
            .server_name()
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
        Ok::<_, std::io::Error>((sni, start.into_stream(config).await?))
    };
    let (sni, tls) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return ob.handshake_failed(&conn, &dest, &e),
        Err(_) => {
            tracing::debug!(host = %dest.host, "TLS handshake timed out");
            return;
        }
    };
    conn.sni = sni;
    conn.destination = Some(dest);
    let stopping = conn.stopping.clone();
    let conn = Arc::new(conn);
    let cfg = ob.config.load_full();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let ob = ob.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(request(&ob, &conn, req).await) }
    });
    // The settings of a route's listener: HTTP/1.1 with upgrades (WebSocket)
    // and HTTP/2 with extended CONNECT (RFC 8441), by ALPN here.
    let builder = listener::auto_builder(cfg.max_header_bytes, cfg.conns.header_timeout);
    let idle = cfg.conns.header_timeout;
    drop(cfg);
    // HTTP/2 with no stream open for the header timeout gets a GOAWAY, as
    // on a route listener (see `idle_h2`).
    let served = match (stopping, tls.get_ref().1.alpn_protocol() == Some(b"h2")) {
        (Some(mut stop), true) => {
            let _drain = watcher;
            let streams = idle_h2::Streams::new();
            let service = idle_h2::count(service, streams.clone());
            let c = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::pin!(c);
            let idle = Some((&*streams, idle));
            idle_h2::drive(c, |c| c.graceful_shutdown(), &mut stop, idle).await
        }
        _ => {
            watcher
                .watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), service))
                .await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "intercepted connection ended with an error");
    }
}

/// One request inside the tunnel: pinned to the tunnel's host, then routed
/// by it (from the table current now) and sent like any route's request.
pub(super) async fn request(
    ob: &Outbound,
    conn: &Arc<Connection>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<crate::transport::body::ProxyBody> {
    let Some(dest) = &conn.destination else {
        return ProxyError::NoRoute.into_response("");
    };
    if let Err(e) = pin::check(dest, conn.sni.as_deref(), req.headers(), req.uri()) {
        PROXY.misdirected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(host = %dest.host, error = %e, "misdirected request refused");
        return e.into_response("");
    }
    match ByHost.route(&ob.table.load(), conn, &Head::of(&req)) {
        Some(route) => forward::serve(route, conn.clone(), req).await,
        None => {
            ProxyError::NoRouteForHost(format!("{}:{}", dest.host, dest.port)).into_response("")
        }
    }
}
