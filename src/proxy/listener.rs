//! Listeners (TCP or unix socket) and the server loop (HTTP/1.1, and HTTP/2 with prior knowledge on the same port) that hands each request to the current route.

use super::accept::Backoff;
use super::error::ProxyError;
use super::forward;
use super::idle_h2;
use super::limits::{Admitted, ConnLimit};
use super::peer;
use super::router::{Connection, Head, Router};
use super::table::RouteTable;
use crate::config::ListenAddr;
use crate::transport::body::ProxyBody;
use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
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
        .max_buf_size(header_buf(max_header_bytes));
    b
}

/// hyper answers a bare 431 past its header buffer; below it, sidekey
/// answers in its own format, so the buffer is larger than the limit.
fn header_buf(max_header_bytes: usize) -> usize {
    (max_header_bytes * 2).max(16 * 1024)
}

/// How often an idle HTTP/2 connection is pinged; one that does not answer
/// within hyper's ping timeout (20 s) is closed.
const H2_PING: Duration = Duration::from_secs(30);

/// Settings for a route's listener: HTTP/1.1 as [`http1_builder`] sets it
/// (with upgrades, for WebSocket), and HTTP/2 with prior knowledge, told
/// apart by the connection's first bytes.
pub fn auto_builder(
    max_header_bytes: usize,
    header_timeout: Duration,
) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(header_buf(max_header_bytes));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(header_buf(max_header_bytes)).unwrap_or(u32::MAX))
        .keep_alive_interval(H2_PING)
        // WebSocket over HTTP/2 (RFC 8441 extended CONNECT).
        .enable_connect_protocol();
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
pub async fn serve(bound: Bound, serving: Serving, stop: watch::Receiver<bool>, grace: Duration) {
    let builder = Arc::new(auto_builder(
        serving.max_header_bytes,
        serving.header_timeout,
    ));
    let (table, router) = (serving.table.clone(), serving.router.clone());
    let timeout = serving.header_timeout;
    let each = move |io: Io,
                     conn: Arc<Connection>,
                     graceful: &GracefulShutdown,
                     admitted: &Arc<Admitted>,
                     stop: &watch::Receiver<bool>| {
        let (table, router) = (table.clone(), router.clone());
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
        let (builder, watcher, admitted) = (builder.clone(), graceful.watcher(), admitted.clone());
        let stop = stop.clone();
        let served: Served = match io {
            Io::Tcp(s, _) => Box::pin(serve_one(
                s, admitted, builder, watcher, service, timeout, stop,
            )),
            Io::Unix(s) => Box::pin(serve_one(
                s, admitted, builder, watcher, service, timeout, stop,
            )),
        };
        served
    };
    run(bound, &serving.name, &serving.limit, stop, grace, each).await;
}

/// A connection being served, as the accept loop holds it.
pub type Served = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// The accept loop of every listener: accepts until `stop` turns true
/// (backing off when accepting fails), holds each connection to the cap of
/// `limit`, hands it to `each`, then lets connections finish for up to `grace`.
/// `each` may keep the connection's place (`Admitted`) beyond the HTTP
/// connection, for a tunnel it becomes, and watch `stop` itself where
/// `graceful` cannot watch its connection.
pub async fn run(
    bound: Bound,
    name: &Arc<str>,
    limit: &ConnLimit,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    mut each: impl FnMut(
        Io,
        Arc<Connection>,
        &GracefulShutdown,
        &Arc<Admitted>,
        &watch::Receiver<bool>,
    ) -> Served,
) {
    let graceful = GracefulShutdown::new();
    // Turns true at the grace period's end, for connections the HTTP server
    // no longer watches (upgraded ones); the drain waits for them too.
    let (closing, closing_rx) = watch::channel(false);
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => break,
            a = accept(&bound) => a,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                backoff.failed(name, &e).await;
                continue;
            }
        };
        backoff.reset();
        let Some(admitted) = limit.admit() else {
            match io {
                Io::Tcp(s, _) => limit.refuse(s),
                Io::Unix(s) => limit.refuse(s),
            }
            continue;
        };
        let admitted = Arc::new(admitted);
        let mut conn = connection(name, &io);
        conn.closing = Some(closing_rx.clone());
        conn.stopping = Some(stop.clone());
        let conn = Arc::new(conn);
        let served = each(io, conn, &graceful, &admitted, &stop);
        tokio::spawn(async move {
            let _admitted = admitted;
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(bound);
    drop(closing_rx);
    let drained = async {
        graceful.shutdown().await;
        closing.closed().await;
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            "requests or upgraded connections still open after the shutdown grace period; closing them"
        );
    }
    let _ = closing.send(true);
}

/// Serves one route connection once its first bytes have come within
/// `timeout`. Its place under `max_connections` goes with the socket, so an
/// upgraded connection keeps it after the HTTP server lets go.
async fn serve_one<T, S>(
    io: T,
    admitted: Arc<Admitted>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    service: S,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<ProxyBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let Some(io) = super::preface::read_head(io, timeout, Some(admitted)).await else {
        return Ok(()); // silent past the header timeout, or closed
    };
    // The drain at shutdown waits while this connection is served; the
    // GOAWAY (or HTTP/1.1 close) comes from `stop`, or on HTTP/2 from idling.
    let _drain = watcher;
    let served = match io.is_h2() {
        false => {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(conn);
            idle_h2::drive(conn, |c| c.graceful_shutdown(), &mut stop, None).await
        }
        true => {
            let streams = idle_h2::Streams::new();
            let service = idle_h2::count(service, streams.clone());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(conn);
            let idle = Some((&*streams, timeout));
            idle_h2::drive(conn, |c| c.graceful_shutdown(), &mut stop, idle).await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    Ok(())
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

/// An accepted connection.
pub enum Io {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
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
