//! The forward proxy (`[proxy] listen`): `CONNECT` tunnels to routed hosts are intercepted, others denied or passed through; absolute-form `http://` requests go to their host's route.
//!
//! Every request reaches a host route through [`ByHost`] and then the same
//! request path as a listener route (`forward::serve`): scope, injection,
//! replay, metrics and access log are the route's.

pub mod intercept;
pub mod original_dst;
pub mod pin;
pub mod sniff;
pub mod transparent;
pub mod tunnel;

use super::error::ProxyError;
use super::forward;
use super::limits::{Admitted, ConnLimit};
use super::listener::{self, Bound, Io, Served};
use super::router::{ByHost, Connection, Destination, Head, Router};
use super::table::RouteTable;
use crate::config::{ProxyConfig, Unmatched};
use crate::metrics::PROXY;
use crate::sync::Mutex;
use crate::tls::Authority;
use crate::transport::body::{ProxyBody, empty};
use arc_swap::{ArcSwap, ArcSwapOption};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::collections::HashSet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// Clients whose distrust of the CA was logged, at most this many.
const UNTRUSTED_REMEMBERED: usize = 1024;

/// What the forward proxy serves from; the parts a reload changes are swappable.
pub struct Outbound {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub config: ArcSwap<ProxyConfig>,
    /// The local CA; `None` while no route is matched by host.
    pub ca: ArcSwapOption<Authority>,
    /// Addresses of sidekey's own listeners: a tunnel never reaches them.
    pub own: ArcSwap<Vec<SocketAddr>>,
    /// (client address, host) pairs whose CA distrust was logged already.
    untrusted_logged: Mutex<HashSet<(Option<IpAddr>, String)>>,
    limit: ConnLimit,
    /// Tunnels intercepted by this proxy (one per CONNECT to a routed host).
    pub intercepted: std::sync::atomic::AtomicU64,
}

impl Outbound {
    pub fn new(
        table: Arc<ArcSwap<RouteTable>>,
        config: ProxyConfig,
        ca: Option<Arc<Authority>>,
        max_connections: usize,
    ) -> Outbound {
        Outbound {
            table,
            config: ArcSwap::from_pointee(config),
            ca: ArcSwapOption::new(ca),
            own: ArcSwap::from_pointee(Vec::new()),
            untrusted_logged: Mutex::new(HashSet::new()),
            limit: ConnLimit::new(Some("[proxy]"), max_connections, Default::default()),
            intercepted: Default::default(),
        }
    }

    /// Changes the `[proxy]` listener's connection cap (see [`ConnLimit::resize`]).
    pub fn resize_cap(&self, max: usize) {
        self.limit.resize(max);
    }

    /// Logs a failed handshake inside a tunnel and counts it. An app that
    /// does not trust the CA is told once per client and host how to fix it.
    fn handshake_failed(&self, conn: &Connection, dest: &Destination, e: &std::io::Error) {
        use rustls::AlertDescription as A;
        let untrusted = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .is_some_and(|r| {
                matches!(
                    r,
                    rustls::Error::AlertReceived(
                        A::UnknownCA | A::BadCertificate | A::CertificateUnknown | A::AccessDenied
                    )
                )
            });
        if !untrusted {
            PROXY.failed_handshakes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(host = %dest.host, error = %e, "TLS handshake in a tunnel failed");
            return;
        }
        PROXY.untrusted_handshakes.fetch_add(1, Ordering::Relaxed);
        let client = conn.peer.map(|p| p.ip());
        let first = {
            let mut seen = self.untrusted_logged.lock();
            seen.len() < UNTRUSTED_REMEMBERED && seen.insert((client, dest.host.clone()))
        };
        if first {
            tracing::warn!(
                client = ?client,
                host = %dest.host,
                error = %e,
                "an app refused sidekey's certificate for an intercepted host: it does not trust the local CA; give it the certificate printed by `sidekey ca` (curl --cacert, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE)"
            );
        }
    }
}

/// Serves the forward proxy's listener until `stop` turns true.
pub async fn serve(bound: Bound, ob: Arc<Outbound>, stop: watch::Receiver<bool>, grace: Duration) {
    let name: Arc<str> = Arc::from("[proxy]");
    let cfg = ob.config.load_full();
    let builder = listener::http1_builder(cfg.max_header_bytes, cfg.conns.header_timeout);
    let each = {
        let ob = ob.clone();
        move |io: Io,
              conn: Arc<Connection>,
              graceful: &GracefulShutdown,
              admitted: &Arc<Admitted>,
              stop: &watch::Receiver<bool>| {
            let watcher = Arc::new(Mutex::new(Some(graceful.watcher())));
            let (ob, admitted) = (ob.clone(), admitted.clone());
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let (ob, conn, watcher, admitted) =
                    (ob.clone(), conn.clone(), watcher.clone(), admitted.clone());
                async move {
                    let resp = match handle(&ob, &conn, &watcher, &admitted, req).await {
                        Ok(r) => r,
                        Err(e) => e.into_response(""),
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let (stop, held) = (stop.clone(), graceful.watcher());
            let served: Served = match io {
                Io::Tcp(s, _) => Box::pin(until_stopped(
                    builder
                        .serve_connection(TokioIo::new(s), service.clone())
                        .with_upgrades(),
                    stop,
                    held,
                )),
                Io::Unix(s) => Box::pin(until_stopped(
                    builder
                        .serve_connection(TokioIo::new(s), service)
                        .with_upgrades(),
                    stop,
                    held,
                )),
            };
            served
        }
    };
    listener::run(bound, &name, &ob.limit, stop, grace, each).await;
}

/// Serves a connection that may become a tunnel until it ends, or until
/// `stop`, when it finishes its request in flight and closes. `held` keeps
/// the listener's graceful shutdown waiting for it.
async fn until_stopped<I, S>(
    conn: hyper::server::conn::http1::UpgradeableConnection<I, S>,
    mut stop: watch::Receiver<bool>,
    held: Watcher,
) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = ProxyBody>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _held = held;
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = crate::shutdown::stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

async fn handle(
    ob: &Arc<Outbound>,
    conn: &Connection,
    watcher: &Mutex<Option<Watcher>>,
    admitted: &Arc<Admitted>,
    req: hyper::Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if req.method() == Method::CONNECT {
        return connect(ob, conn, watcher, admitted, req).await;
    }
    let uri = req.uri();
    let Some(authority) = uri.authority().filter(|_| uri.scheme_str() == Some("http")) else {
        let why = match uri.scheme_str() {
            Some("https") => "send https:// requests through CONNECT (set HTTPS_PROXY)",
            _ => {
                "a forward proxy takes absolute-form requests (`GET http://host/path`) and CONNECT"
            }
        };
        return Err(ProxyError::BadRequest(why.into()));
    };
    let Some((host, port)) = pin::split_authority(authority.as_str()) else {
        return Err(ProxyError::BadRequest(format!(
            "`{}` is not a host",
            authority.as_str()
        )));
    };
    let dest = Destination {
        host,
        port: port.unwrap_or(80),
        tls: false,
    };
    if let Err(e) = pin::check(&dest, None, req.headers(), uri) {
        PROXY.misdirected.fetch_add(1, Ordering::Relaxed);
        return Err(e);
    }
    let mut c = conn.clone();
    c.destination = Some(dest);
    match ByHost.route(&ob.table.load(), &c, &Head::of(&req)) {
        Some(route) => Ok(forward::serve(route, Arc::new(c), req).await),
        None => {
            let d = c
                .destination
                .as_ref()
                .map_or(String::new(), |d| format!("http://{}:{}", d.host, d.port));
            Err(ProxyError::NoRouteForHost(d))
        }
    }
}

/// `CONNECT host:port`: intercepted for a host route, else denied or tunnelled.
async fn connect(
    ob: &Arc<Outbound>,
    conn: &Connection,
    watcher: &Mutex<Option<Watcher>>,
    admitted: &Arc<Admitted>,
    req: hyper::Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let dest = pin::connect_target(req.uri())?;
    let routed = ob
        .table
        .load()
        .by_host(&dest.host, dest.port, true)
        .is_some();
    // The connection becomes the tunnel: it takes the connection's place
    // under the cap and in the graceful shutdown. A refused CONNECT leaves
    // the connection as it was, for another request.
    let take = || {
        watcher
            .lock()
            .take()
            .ok_or_else(|| ProxyError::BadRequest("one tunnel per connection".into()))
    };
    let admitted = admitted.clone();
    if routed {
        let watcher = take()?;
        ob.intercepted.fetch_add(1, Ordering::Relaxed);
        let (ob, mut c) = (ob.clone(), conn.clone());
        c.destination = Some(dest.clone());
        tokio::spawn(async move {
            let _admitted = admitted;
            match hyper::upgrade::on(req).await {
                Ok(up) => intercept::serve(TokioIo::new(up), dest, c, ob, watcher).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
            }
        });
        return Ok(established());
    }
    let cfg = ob.config.load_full();
    let target = format!("{}:{}", dest.host, dest.port);
    if cfg.unmatched == Unmatched::Deny {
        return Err(ProxyError::NoRouteForHost(target));
    }
    let upstream = tunnel::dial(&dest, &cfg, &ob.own.load())
        .await
        .inspect_err(|e| {
            tracing::warn!(target = %target, error = %e, "tunnel refused");
        })?;
    let watcher = take()?;
    PROXY.tunnels.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(target = %target, "tunnel opened (no credential, not decrypted)");
    tokio::spawn(async move {
        let _admitted = admitted;
        let _watcher = watcher;
        match hyper::upgrade::on(req).await {
            Ok(up) => tunnel::splice(TokioIo::new(up), upstream).await,
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    Ok(established())
}

fn established() -> Response<ProxyBody> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::OK;
    r
}
