//! Where a redirected connection was going: the kernel's record of its destination before iptables' `REDIRECT` (`SO_ORIGINAL_DST`, `IP6T_SO_ORIGINAL_DST`).

use std::net::SocketAddr;
use tokio::net::TcpStream;

/// The original destination of `s`, by the family it was accepted on.
/// `None` when the connection was not redirected (no conntrack entry).
pub fn of(s: &TcpStream, local: Option<SocketAddr>) -> Option<SocketAddr> {
    let dst = match local? {
        SocketAddr::V4(_) => rustix::net::sockopt::ip_original_dst(s).map(SocketAddr::V4),
        SocketAddr::V6(_) => rustix::net::sockopt::ipv6_original_dst(s).map(SocketAddr::V6),
    };
    match dst {
        Ok(a) => Some(SocketAddr::new(a.ip().to_canonical(), a.port())),
        Err(e) => {
            tracing::debug!(error = %e, "no original destination");
            None
        }
    }
}
