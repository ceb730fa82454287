//! Transparent egress (`[transparent] listen`): connections the pod's iptables rules redirect here are routed by their original destination and their TLS server name or HTTP `Host`; a routed one is intercepted exactly as a forward-proxy tunnel is, others are passed through as raw TCP or refused.
//!
//! A destination is routed when a host route names the SNI (TLS) or `Host`
//! (plain HTTP) on the original destination's port. Inside, every request
//! is pinned to that host as in a CONNECT tunnel (`421 misdirected`
//! otherwise) and sent to the route's upstream, never to the original
//! destination address.

use super::super::limits::{Admitted, ConnLimit};
use super::super::listener::{self, Bound, Io, Served};
use super::super::router::{Connection, Destination};
use super::sniff::{First, sniff};
use super::{Outbound, intercept, original_dst, pin, tunnel};
use crate::config::{TransparentConfig, TransparentUnmatched};
use crate::metrics::PROXY;
use crate::throttle::Throttle;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Time to connect a passed-through connection to its original destination.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the transparent listener serves from: the forward proxy's routes, CA and own addresses.
pub struct Transparent {
    pub ob: Arc<Outbound>,
    /// Swapped by a reload that changes `unmatched`.
    pub config: ArcSwap<TransparentConfig>,
    limit: ConnLimit,
    /// `transparent_refused` events: at most one a second for each
    /// [`Refusal`], the rest counted (a flood of one kind hides no other).
    refusals: [Throttle; 3],
}

impl Transparent {
    pub fn new(ob: Arc<Outbound>, config: TransparentConfig, max_connections: usize) -> Self {
        Transparent {
            ob,
            config: ArcSwap::from_pointee(config),
            limit: ConnLimit::new(Some("[transparent]"), max_connections, Default::default()),
            refusals: [Throttle::new(), Throttle::new(), Throttle::new()],
        }
    }
}

impl Transparent {
    /// Changes the transparent listeners' connection cap (see [`ConnLimit::resize`]).
    pub fn resize_cap(&self, max: usize) {
        self.limit.resize(max);
    }
}

/// Serves one transparent listener (IPv4 or its IPv6 twin) until `stop` turns true.
pub async fn serve(
    bound: Bound,
    t: Arc<Transparent>,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let name: Arc<str> = Arc::from("[transparent]");
    let each = {
        let t = t.clone();
        move |io: Io,
              conn: Arc<Connection>,
              graceful: &GracefulShutdown,
              _: &Arc<Admitted>,
              _: &watch::Receiver<bool>| {
            let (t, watcher) = (t.clone(), graceful.watcher());
            let served: Served = Box::pin(async move {
                if let Io::Tcp(s, _) = io {
                    handle(&t, s, &conn, watcher).await;
                }
                Ok(())
            });
            served
        }
    };
    listener::run(bound, &name, &t.limit, stop, grace, each).await;
}

async fn handle(t: &Transparent, s: TcpStream, conn: &Connection, watcher: Watcher) {
    let mut c = conn.clone();
    let Some(orig) = original_dst::of(&s, c.local) else {
        return refuse(t, &c, Refusal::NotRedirected);
    };
    c.original_dst = Some(orig);
    if t.ob.own.load().iter().any(|o| tunnel::is_own(*o, orig)) {
        return refuse(t, &c, Refusal::Loop);
    }
    let (host, tls) = match sniff(&s).await {
        First::Tls(h) => (h, true),
        First::Http(h) => (
            h.as_deref().and_then(pin::split_authority).map(|(h, _)| h),
            false,
        ),
        First::Other => (None, false),
    };
    let routed = host.filter(|h| t.ob.table.load().by_host(h, orig.port(), tls).is_some());
    let Some(host) = routed else {
        return match t.config.load().unmatched {
            TransparentUnmatched::Deny => refuse(t, &c, Refusal::Unmatched),
            TransparentUnmatched::Passthrough => passthrough(s, orig).await,
        };
    };
    PROXY
        .transparent_intercepted
        .fetch_add(1, Ordering::Relaxed);
    let dest = Destination {
        host,
        port: orig.port(),
        tls,
    };
    tracing::debug!(mode = "transparent", original_dst = %orig, host = %dest.host, tls, "redirected connection intercepted");
    c.destination = Some(dest.clone());
    match tls {
        true => intercept::serve(s, dest, c, t.ob.clone(), watcher).await,
        false => plain(t, s, c, watcher).await,
    }
}

/// A plain HTTP connection to a routed host: its requests pinned to it and sent through the route.
async fn plain(t: &Transparent, s: TcpStream, c: Connection, watcher: Watcher) {
    let cfg = t.ob.config.load_full();
    // As on a route's listener: HTTP/1.1 with upgrades (WebSocket), or
    // HTTP/2 with prior knowledge, told apart by the first bytes.
    let builder = listener::auto_builder(cfg.max_header_bytes, cfg.conns.header_timeout);
    let (ob, conn) = (t.ob.clone(), Arc::new(c));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let (ob, conn) = (ob.clone(), conn.clone());
        async move { Ok::<_, Infallible>(intercept::request(&ob, &conn, req).await) }
    });
    if let Err(e) = watcher
        .watch(builder.serve_connection_with_upgrades(TokioIo::new(s), service))
        .await
    {
        tracing::debug!(error = %e, "redirected connection ended with an error");
    }
}

/// An unrouted connection: raw bytes to where the app was going, no credential, not decrypted.
async fn passthrough(s: TcpStream, orig: SocketAddr) {
    let upstream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(orig)).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            tracing::debug!(original_dst = %orig, error = %e, "passthrough connect failed");
            return;
        }
        Err(_) => {
            tracing::debug!(original_dst = %orig, "passthrough connect timed out");
            return;
        }
    };
    PROXY
        .transparent_passthrough
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(mode = "transparent", original_dst = %orig, "passed through (no credential, not decrypted)");
    tunnel::splice(s, upstream).await;
}

/// Why a redirected connection is closed.
#[derive(Clone, Copy)]
enum Refusal {
    NotRedirected,
    Loop,
    Unmatched,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::NotRedirected => {
                "no original destination: the connection was not redirected by iptables"
            }
            Refusal::Loop => {
                "the original destination is one of sidekey's own listeners (a redirect loop)"
            }
            Refusal::Unmatched => "no route names this destination (unmatched = \"deny\")",
        }
    }
}

fn refuse(t: &Transparent, c: &Connection, why: Refusal) {
    PROXY.transparent_refused.fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = t.refusals[why as usize].admit() {
        crate::audit::transparent_refused(c.original_dst, None, why.reason(), c.peer, suppressed);
    }
}
