//! Who is on the other end of a local connection: UID and GID from a unix socket's peer credentials, or the UID from Linux's TCP socket table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The identity the kernel gives a connection's peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerIds {
    pub uid: u32,
    /// Known on unix sockets only: the TCP socket table has no GID.
    pub gid: Option<u32>,
}

/// The peer credentials the kernel recorded when the unix socket connected.
pub fn of_unix(s: &tokio::net::UnixStream) -> Option<PeerIds> {
    let cred = s.peer_cred().ok()?;
    Some(PeerIds {
        uid: cred.uid(),
        gid: Some(cred.gid()),
    })
}

/// The UID owning the client's end of a loopback TCP connection, from
/// `/proc/net/tcp` and `/proc/net/tcp6`. `None` when the client's socket is
/// not in this network namespace (another host, another pod): such a caller
/// cannot be identified, and a route that checks UIDs refuses it.
///
/// `to` is where the client's socket is connected: the listener that
/// accepted it or, for a connection iptables redirected, its original
/// destination. Blocking file reads: call it off the runtime's threads.
pub fn of_tcp(to: SocketAddr, peer: SocketAddr) -> Option<PeerIds> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|file| {
        let table = std::fs::read_to_string(file).ok()?;
        // The client's socket: its local end is our peer, its remote end is `to`.
        owner(&table, peer, to).map(|uid| PeerIds { uid, gid: None })
    })
}

/// Finds the UID of the socket whose local and remote addresses are these.
fn owner(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (l, r, uid) = (f.get(1)?, f.get(2)?, f.get(7)?);
        (same(parse_addr(l)?, local) && same(parse_addr(r)?, remote))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// Equal addresses, an IPv4 address and its IPv4-mapped IPv6 form included.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the kernel
/// prints each 32-bit word of the address as a native-endian number.
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        ip.get(i * 8..i * 8 + 8)
            .and_then(|w| u32::from_str_radix(w, 16).ok())
            .map(u32::to_ne_bytes)
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn reads_the_kernels_address_forms() {
        assert_eq!(parse_addr("0100007F:1F90"), Some(addr("127.0.0.1:8080")));
        assert_eq!(
            parse_addr("0000000000000000FFFF00000100007F:0050"),
            Some(addr("[::ffff:127.0.0.1]:80"))
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050"),
            Some(addr("[::1]:80"))
        );
        assert_eq!(parse_addr("0100007F"), None);
        assert_eq!(parse_addr("zz00007F:0050"), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_clients_socket_not_the_servers() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1\n";
        let (server, client) = (addr("127.0.0.1:8080"), addr("127.0.0.1:50000"));
        assert_eq!(owner(table, client, server), Some(1000));
        assert_eq!(owner(table, server, client), Some(0));
        assert_eq!(owner(table, addr("127.0.0.1:50001"), server), None);
    }
}
