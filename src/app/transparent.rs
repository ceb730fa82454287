//! Start-up of `[transparent] listen`: its IPv4 listener and the IPv6 loopback twin that ip6tables' `REDIRECT` reaches.

use super::{DEFAULT_GRACE, Listener, StartError};
use crate::config::{ListenAddr, TransparentConfig};
use crate::proxy::listener::Bound;
use crate::proxy::outbound::Outbound;
use crate::proxy::outbound::transparent::{self, Transparent};
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;

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

/// Serves each bound listener; their addresses join `own` (never a destination).
pub fn serve(
    bound: Vec<Bound>,
    ob: Arc<Outbound>,
    config: &TransparentConfig,
    max_connections: usize,
    own: &mut Vec<SocketAddr>,
) -> Vec<Listener> {
    let t = Arc::new(Transparent::new(ob, config.clone(), max_connections));
    bound
        .into_iter()
        .map(|b| {
            let addr = b.local_addr();
            if let ListenAddr::Tcp(a) = &addr {
                own.push(*a);
            }
            let (stop, rx) = watch::channel(false);
            tracing::info!(listen = %addr, unmatched = ?config.unmatched, "transparent egress listening");
            let task = tokio::spawn(transparent::serve(b, t.clone(), rx, DEFAULT_GRACE));
            Listener { addr, stop, task }
        })
        .collect()
}
