//! Tunnels for hosts without a route (`unmatched = "tunnel"`): bytes passed through undecrypted, never to sidekey itself or a non-public address unless `allow_private` lists it.

use super::super::error::ProxyError;
use super::super::router::Destination;
use crate::config::ProxyConfig;
use crate::ipnet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// Time to resolve and connect a tunnel's destination.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves `dest` and connects to the first of its addresses a tunnel may
/// reach. Each address is checked as it will be dialled (IPv4-mapped IPv6
/// as the IPv4 address it carries), so a name that resolves to a private
/// address is refused like the address itself.
pub async fn dial(
    dest: &Destination,
    cfg: &ProxyConfig,
    own: &[SocketAddr],
) -> Result<TcpStream, ProxyError> {
    let work = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((dest.host.as_str(), dest.port))
            .await
            .map_err(|e| {
                ProxyError::UpstreamUnreachable(format!("cannot resolve {}: {e}", dest.host))
            })?
            .collect();
        let mut refused = None;
        let mut failed = None;
        for a in addrs {
            let a = SocketAddr::new(a.ip().to_canonical(), a.port());
            if let Err(why) = allowed(a, cfg, own) {
                refused.get_or_insert(why);
                continue;
            }
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => failed = Some(format!("cannot connect to {a}: {e}")),
            }
        }
        Err(match (failed, refused) {
            (Some(f), _) => ProxyError::UpstreamUnreachable(f),
            (None, Some(why)) => ProxyError::DestinationNotAllowed(why),
            (None, None) => {
                ProxyError::UpstreamUnreachable(format!("{} resolves to no address", dest.host))
            }
        })
    };
    tokio::time::timeout(DIAL_TIMEOUT, work)
        .await
        .map_err(|_| ProxyError::UpstreamTimeout(DIAL_TIMEOUT))?
}

/// Whether a tunnel may reach `a`.
fn allowed(a: SocketAddr, cfg: &ProxyConfig, own: &[SocketAddr]) -> Result<(), String> {
    let ip = a.ip();
    if own.iter().any(|o| is_own(*o, a)) {
        return Err(format!(
            "a tunnel to {a} would reach one of sidekey's own listeners"
        ));
    }
    match ipnet::non_public(ip) {
        Some(class) if !cfg.allow_private.iter().any(|n| n.contains(ip)) => Err(format!(
            "a tunnel to {a} is refused: the address is {class}; list it in [proxy] allow_private to allow it"
        )),
        _ => Ok(()),
    }
}

/// Whether dialling `a` reaches the listener bound at `own`.
pub(super) fn is_own(own: SocketAddr, a: SocketAddr) -> bool {
    let ip = a.ip();
    let o = own.ip().to_canonical();
    own.port() == a.port() && (o == ip || o.is_unspecified() || (o.is_loopback() && is_local(ip)))
}

/// An address of this machine as far as a loopback listener goes.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// Passes bytes both ways until either side closes.
pub async fn splice<A, B>(mut app: A, mut upstream: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = tokio::io::copy_bidirectional(&mut app, &mut upstream).await {
        tracing::debug!(error = %e, "tunnel ended with an error");
    }
}
