//! IP address ranges (`10.0.0.0/8`, `::1`) and the address classes a tunnel must not reach unless allowed.

use std::fmt;
use std::net::IpAddr;

/// An address range: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` (one address) or `ADDR/PREFIX`. IPv4-mapped IPv6 is read as IPv4.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = a
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| {
                format!("`{text}` is not an IP address or range (\"10.0.0.0/8\", \"::1\")")
            })?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{text}`: the prefix length must be 0 to {max}")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether the range is of IPv4 addresses.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` (IPv4-mapped IPv6 read as IPv4) is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why an address is not public: loopback, link-local, private and the
/// like, which a tunnel to an arbitrary host must not reach. `None` for a
/// public address. IPv6 that carries an IPv4 address (mapped, NAT64, 6to4,
/// IPv4-compatible) is judged as that IPv4 address too: a NAT64 or 6to4
/// gateway would deliver it there.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    if let IpAddr::V6(a) = ip.to_canonical()
        && let Some(v4) = embedded_v4(a)
        && let Some(why) = non_public(IpAddr::V4(v4))
    {
        return Some(why);
    }
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if a.is_link_local() {
                Some("link-local")
            } else if a.is_private() {
                Some("private")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("shared (carrier-grade NAT)")
            } else if a.is_multicast() || a.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else if a.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address an IPv6 address carries for a translator: NAT64
/// (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`) or the
/// deprecated IPv4-compatible form (`::a.b.c.d`).
fn embedded_v4(a: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    let last = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        Some(last)
    } else if s[0] == 0x2002 {
        Some(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else if s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified() {
        Some(last)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_mapped_addresses() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
    }

    #[test]
    fn classes() {
        for a in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "10.0.0.1",
            "192.168.1.1",
            "fd00::1",
            "fe80::1",
            "0.0.0.0",
            "100.64.0.1",
            // IPv4 inside IPv6 for a translator: NAT64, 6to4, IPv4-compatible.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "2002:c0a8:101::1",
            "::10.0.0.1",
        ] {
            assert!(non_public(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in [
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(non_public(a.parse().unwrap()).is_none(), "{a}");
        }
    }
}
