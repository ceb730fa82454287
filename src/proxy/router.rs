//! Picks the route for a request from what its connection and head say: the seam every listening mode plugs into.
//!
//! Today's mode routes by the listener a connection came in on (one port, one
//! route). Destination-routed modes (forward proxy, interception,
//! transparent egress) route by the CONNECT target, the TLS SNI, the `Host`
//! or the original destination, all of which [`Connection`] has room for.

use super::peer::{self, PeerIds};
use super::route::Route;
use super::table::RouteTable;
use crate::metrics::Mode;
use http::{HeaderMap, Method, Request, Uri};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What is known about a connection before its first request.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The listener it came in on (for port routes: the route's name).
    pub listener: Arc<str>,
    /// The peer's address (`None` on a unix socket).
    pub peer: Option<SocketAddr>,
    /// The address it was accepted on (`None` on a unix socket).
    pub local: Option<SocketAddr>,
    /// Where the client meant to connect, for redirected connections.
    pub original_dst: Option<SocketAddr>,
    /// The server name the client asked for in its TLS hello.
    pub sni: Option<String>,
    /// The peer's UID/GID: set at accept on unix sockets, looked up in the
    /// kernel's socket table on first use for TCP (only routes that check callers ask).
    ids: OnceCell<Option<PeerIds>>,
    /// Where the client asked the forward proxy to go (CONNECT target, or
    /// an absolute-form request's host).
    pub destination: Option<Destination>,
    /// Turns true when the listener's shutdown grace period has ended:
    /// connections that outlive their HTTP server (upgraded ones) close then.
    /// The listener's drain waits while any holds it.
    pub closing: Option<tokio::sync::watch::Receiver<bool>>,
    /// Turns true when the listener stops accepting (its shutdown begins).
    pub stopping: Option<tokio::sync::watch::Receiver<bool>>,
}

/// A destination named to the forward proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Lower-case, no trailing dot.
    pub host: String,
    pub port: u16,
    /// Reached through CONNECT (TLS inside) rather than as a plain request.
    pub tls: bool,
}

impl Connection {
    pub fn on(listener: Arc<str>) -> Self {
        Connection {
            listener,
            peer: None,
            local: None,
            original_dst: None,
            sni: None,
            ids: OnceCell::new(),
            destination: None,
            closing: None,
            stopping: None,
        }
    }

    /// Records the peer credentials a unix socket carries.
    pub fn with_peer_ids(mut self, ids: Option<PeerIds>) -> Self {
        self.ids = OnceCell::new_with(Some(ids));
        self
    }

    /// How the connection reached sidekey: `transparent` (redirected by
    /// iptables), `forward` (through the forward proxy) or `listener` (a route's own port).
    pub fn mode(&self) -> &'static str {
        self.listen_mode().as_str()
    }

    /// [`Connection::mode`] as the route's counters take it.
    pub fn listen_mode(&self) -> Mode {
        match (&self.original_dst, &self.destination) {
            (Some(_), _) => Mode::Transparent,
            (None, Some(_)) => Mode::Forward,
            (None, None) => Mode::Listener,
        }
    }

    /// Who the peer is, as far as the kernel says. On TCP the socket table is
    /// read once per connection, on a blocking thread: it is a file as long
    /// as the host has sockets, and a runtime thread must not wait on it.
    pub async fn peer_ids(&self) -> Option<PeerIds> {
        *self
            .ids
            .get_or_init(|| async {
                // An iptables-redirected client's socket is connected to where
                // it was going, not to the transparent listener that accepted it.
                let (Some(to), Some(from)) = (self.original_dst.or(self.local), self.peer) else {
                    return None;
                };
                tokio::task::spawn_blocking(move || peer::of_tcp(to, from))
                    .await
                    .ok()
                    .flatten()
            })
            .await
    }
}

/// The parts of a request a router may look at.
pub struct Head<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

impl<'a> Head<'a> {
    pub fn of<B>(req: &'a Request<B>) -> Self {
        Head {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        }
    }
}

/// Chooses the route of a request, or none (`no_route`).
pub trait Router: Send + Sync {
    fn route(&self, table: &RouteTable, conn: &Connection, head: &Head<'_>) -> Option<Arc<Route>>;
}

/// One listener per route: the route is the one that owns the listener.
pub struct ByListener;

impl Router for ByListener {
    #[inline]
    fn route(&self, table: &RouteTable, conn: &Connection, _: &Head<'_>) -> Option<Arc<Route>> {
        table.route(&conn.listener).cloned()
    }
}

/// The forward proxy's router: the host route that names the connection's destination.
pub struct ByHost;

impl Router for ByHost {
    fn route(&self, table: &RouteTable, conn: &Connection, _: &Head<'_>) -> Option<Arc<Route>> {
        let d = conn.destination.as_ref()?;
        table.by_host(&d.host, d.port, d.tls).cloned()
    }
}
