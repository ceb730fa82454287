//! Start-up and reload of `[transparent] listen`: its IPv4 listener and the IPv6 loopback twin that ip6tables' `REDIRECT` reaches.
//!
//! A reload that adds or moves `[transparent]` binds the new address before
//! anything changes (a port in use refuses the reload), then starts it and
//! lets the old listeners finish their connections; one that removes it
//! stops them; a change of `unmatched` alone is swapped in place.

use super::{DEFAULT_GRACE, Listener, StartError, nofile};
use crate::config::{Config, ListenAddr, TransparentConfig};
use crate::proxy::listener::Bound;
use crate::proxy::outbound::Outbound;
use crate::proxy::outbound::transparent::{self, Transparent};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What serves `[transparent]` now.
pub struct Serving {
    pub t: Arc<Transparent>,
    pub listeners: Vec<Listener>,
}

impl Serving {
    /// The addresses it listens on (the loop guard's own addresses).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match &l.addr {
                ListenAddr::Tcp(a) => Some(*a),
                ListenAddr::Unix(_) => None,
            })
            .collect()
    }

    /// Stops accepting; the connections in flight finish in `draining`.
    pub fn stop(self, draining: &mut Vec<JoinHandle<()>>) {
        for l in self.listeners {
            let _ = l.stop.send(true);
            draining.push(l.task);
        }
    }
}

/// Binds `listen`, and `[::1]` on the same port when `listen` is IPv4
/// loopback (a `REDIRECT` in ip6tables' OUTPUT goes to `::1`). The twin is
/// skipped with a note where the host has no IPv6.
pub async fn bind(t: &TransparentConfig) -> Result<Vec<Bound>, StartError> {
    let main = Bound::bind(&ListenAddr::Tcp(t.listen))
        .await
        .map_err(|source| StartError::Bind {
            addr: t.listen.to_string(),
            what: "[transparent]".into(),
            source,
        })?;
    let mut bound = vec![main];
    if t.listen.ip().is_loopback() && t.listen.is_ipv4() {
        let port = match bound[0].local_addr() {
            ListenAddr::Tcp(a) => a.port(),
            ListenAddr::Unix(_) => t.listen.port(),
        };
        let twin = ListenAddr::Tcp(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
        match Bound::bind(&twin).await {
            Ok(b) => bound.push(b),
            Err(e) => tracing::info!(listen = %twin, error = %e, "[transparent] serves IPv4 only"),
        }
    }
    Ok(bound)
}

/// Connections the transparent listeners may hold under `config`.
pub fn max_connections(config: &Config, t: &TransparentConfig) -> usize {
    t.max_connections().min(nofile::route_share(
        nofile::current(),
        config.routes.len() + 2,
        config.admin.conns.max_connections,
    ))
}

/// Serves each bound listener with `t`.
pub fn serve(bound: Vec<Bound>, t: Arc<Transparent>) -> Serving {
    let listeners = bound
        .into_iter()
        .map(|b| {
            let addr = b.local_addr();
            let (stop, rx) = watch::channel(false);
            let unmatched = t.config.load().unmatched;
            tracing::info!(listen = %addr, unmatched = ?unmatched, "transparent egress listening");
            let task = tokio::spawn(transparent::serve(b, t.clone(), rx, DEFAULT_GRACE));
            Listener {
                addr,
                stop,
                task,
                limit: None,
            }
        })
        .collect();
    Serving { t, listeners }
}

/// Brings what serves `[transparent]` in line with a reloaded config:
/// `bound` holds the listeners bound for a new or moved `listen`.
pub fn reload(
    serving: &mut Option<Serving>,
    config: Option<&TransparentConfig>,
    bound: Option<Vec<Bound>>,
    outbound: impl FnOnce() -> Arc<Outbound>,
    max: usize,
    draining: &mut Vec<JoinHandle<()>>,
) {
    let Some(c) = config else {
        if let Some(old) = serving.take() {
            tracing::info!("[transparent] removed: its listeners stop");
            old.stop(draining);
        }
        return;
    };
    let t = match serving.as_ref() {
        Some(s) => {
            s.t.config.store(Arc::new(c.clone()));
            s.t.resize_cap(max); // the routes' number may have changed
            s.t.clone()
        }
        None => Arc::new(Transparent::new(outbound(), c.clone(), max)),
    };
    let Some(bound) = bound else { return };
    if let Some(old) = serving.take() {
        tracing::info!(listen = %c.listen, "[transparent] moved: the old listeners stop");
        old.stop(draining);
    }
    *serving = Some(serve(bound, t));
}
