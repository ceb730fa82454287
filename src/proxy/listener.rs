//! Listeners (TCP or unix socket) and the HTTP/1.1 server loop that hands each request to the current route.

use super::accept::Backoff;
use super::error::ProxyError;
use super::forward;
use super::limits::ConnLimit;
use super::peer;
use super::router::{Connection, Head, Router};
use super::table::RouteTable;
use crate::config::ListenAddr;
use crate::transport::body::ProxyBody;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

pub enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

impl Bound {
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Bound> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Bound::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(p) => {
                // A socket left by a previous run would make bind fail.
                if std::fs::symlink_metadata(p).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_socket()
                }) {
                    let _ = std::fs::remove_file(p);
                }
                Ok(Bound::Unix(UnixListener::bind(p)?, p.clone()))
            }
        }
    }

    /// The bound address (for TCP port 0, the port the OS chose).
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            Bound::Tcp(l) => ListenAddr::Tcp(
                l.local_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            ),
            Bound::Unix(_, p) => ListenAddr::Unix(p.clone()),
        }
    }
}

/// HTTP/1 connection settings for a route's listener. hyper's header read
/// timer runs from the connection's start and again from the end of each
/// answer, so `header_timeout` also closes a keep-alive connection left idle.
pub fn http1_builder(max_header_bytes: usize, header_timeout: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        // hyper answers a bare 431 past its buffer; below it, sidekey
        // answers in its own format, so the buffer is larger than the limit.
        .max_buf_size((max_header_bytes * 2).max(16 * 1024));
    b
}

/// What a listener serves: the current route table, and how to pick a route from it.
#[derive(Clone)]
pub struct Serving {
    /// The listener's name, which the router sees on each connection.
    pub name: Arc<str>,
    pub table: Arc<ArcSwap<RouteTable>>,
    pub router: Arc<dyn Router>,
    pub max_header_bytes: usize,
    pub header_timeout: Duration,
    /// The cap on connections held at once.
    pub limit: Arc<ConnLimit>,
}

/// Serves a listener until `stop` turns true, then lets requests in flight
/// finish for up to `grace`.
pub async fn serve(
    bound: Bound,
    serving: Serving,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = http1_builder(serving.max_header_bytes, serving.header_timeout);
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => break,
            a = accept(&bound) => a,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                backoff.failed(&serving.name, &e).await;
                continue;
            }
        };
        backoff.reset();
        let Some(admitted) = serving.limit.admit() else {
            match io {
                Io::Tcp(s, _) => serving.limit.refuse(s),
                Io::Unix(s) => serving.limit.refuse(s),
            }
            continue;
        };
        let conn = Arc::new(connection(&serving.name, &io));
        let (table, router) = (serving.table.clone(), serving.router.clone());
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            let route = router.route(&table.load(), &conn, &Head::of(&req));
            let conn = conn.clone();
            async move {
                Ok::<_, Infallible>(match route {
                    Some(r) => forward::serve(r, conn, req).await,
                    None => ProxyError::NoRoute.into_response(""),
                })
            }
        });
        let conn = match io {
            Io::Tcp(s, _) => Either::Tcp(
                graceful.watch(builder.serve_connection(TokioIo::new(s), service.clone())),
            ),
            Io::Unix(s) => {
                Either::Unix(graceful.watch(builder.serve_connection(TokioIo::new(s), service)))
            }
        };
        tokio::spawn(async move {
            let _admitted = admitted;
            let result = match conn {
                Either::Tcp(c) => c.await,
                Either::Unix(c) => c.await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(bound);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period; closing them");
    }
}

/// What the router may know of an accepted connection.
fn connection(listener: &Arc<str>, io: &Io) -> Connection {
    let mut c = Connection::on(listener.clone());
    match io {
        Io::Tcp(s, peer) => {
            c.peer = Some(*peer);
            c.local = s.local_addr().ok();
        }
        Io::Unix(s) => c = c.with_peer_ids(peer::of_unix(s)),
    }
    c
}

enum Io {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

enum Either<A, B> {
    Tcp(A),
    Unix(B),
}

async fn accept(bound: &Bound) -> std::io::Result<Io> {
    match bound {
        Bound::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok(Io::Tcp(s, peer))
        }
        Bound::Unix(l, _) => Ok(Io::Unix(l.accept().await?.0)),
    }
}

/// Keeps the type named for callers that build their own services.
pub type Answer = hyper::Response<ProxyBody>;
