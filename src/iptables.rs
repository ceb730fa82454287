//! The `iptables-restore` rules that redirect a pod's outbound TCP to `[transparent] listen`, sparing sidekey's own UID (printed by `sidekey iptables`).
//!
//! One chain, `SIDEKEY_OUTPUT`, jumped to from `nat OUTPUT` for TCP. In it,
//! in order: sidekey's own UID returns (its upstream connections are never
//! redirected back to it), the loopback address returns (local sidecars,
//! sidekey's own listeners), each excluded range returns, and the rest (or
//! only the listed ports) is redirected to the listen port. A loopback
//! address other than the family's own (127.0.0.2) is redirected like any
//! other. For IPv6 the same rules are printed for `ip6tables-restore`; a
//! `REDIRECT` there reaches `[::1]:PORT`.

use crate::ipnet::IpNet;
use std::fmt::Write;

pub mod apply;

/// The name of sidekey's chain in the nat table.
pub const CHAIN: &str = "SIDEKEY_OUTPUT";

/// What the rules say.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The port of `[transparent] listen`.
    pub to_port: u16,
    /// The UID sidekey runs as: its connections are not redirected.
    pub uid: u32,
    /// Other UIDs never redirected (a mesh proxy's, such as Istio's 1337).
    pub exclude_uids: Vec<u32>,
    /// Redirect only these destination ports (all TCP ports when empty).
    pub ports: Vec<u16>,
    /// Destinations never redirected.
    pub exclude: Vec<IpNet>,
    /// Print the `ip6tables-restore` form.
    pub ipv6: bool,
}

impl Rules {
    /// The rules in `iptables-restore` (or `ip6tables-restore`) form, for `--noflush`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let (family, own_loopback) = match self.ipv6 {
            false => ("IPv4", "127.0.0.1/32"),
            true => ("IPv6", "::1/128"),
        };
        let _ = writeln!(
            o,
            "# sidekey: {family} egress of every UID but {} redirected to port {}",
            self.uid, self.to_port
        );
        let _ = writeln!(o, "*nat");
        let _ = writeln!(o, ":{CHAIN} - [0:0]");
        let _ = writeln!(o, "-A OUTPUT -p tcp -j {CHAIN}");
        for uid in std::iter::once(&self.uid).chain(&self.exclude_uids) {
            let _ = writeln!(o, "-A {CHAIN} -m owner --uid-owner {uid} -j RETURN");
        }
        let _ = writeln!(o, "-A {CHAIN} -d {own_loopback} -j RETURN");
        for net in self.exclude.iter().filter(|n| n.is_ipv4() != self.ipv6) {
            let _ = writeln!(o, "-A {CHAIN} -d {net} -j RETURN");
        }
        let ports = match self.ports.as_slice() {
            [] => String::new(),
            ps => {
                let list: Vec<String> = ps.iter().map(u16::to_string).collect();
                format!(" -m multiport --dports {}", list.join(","))
            }
        };
        let _ = writeln!(
            o,
            "-A {CHAIN} -p tcp{ports} -j REDIRECT --to-ports {}",
            self.to_port
        );
        let _ = writeln!(o, "COMMIT");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_order() {
        let r = Rules {
            to_port: 15001,
            uid: 65532,
            exclude_uids: vec![1337],
            ports: vec![443, 80],
            exclude: vec![
                IpNet::parse("10.0.0.0/8").unwrap(),
                IpNet::parse("fd00::/8").unwrap(),
            ],
            ipv6: false,
        };
        let text = r.render();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('-')).collect();
        assert_eq!(
            lines,
            [
                "-A OUTPUT -p tcp -j SIDEKEY_OUTPUT",
                "-A SIDEKEY_OUTPUT -m owner --uid-owner 65532 -j RETURN",
                "-A SIDEKEY_OUTPUT -m owner --uid-owner 1337 -j RETURN",
                "-A SIDEKEY_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A SIDEKEY_OUTPUT -d 10.0.0.0/8 -j RETURN",
                "-A SIDEKEY_OUTPUT -p tcp -m multiport --dports 443,80 -j REDIRECT --to-ports 15001",
            ]
        );
        let v6 = Rules { ipv6: true, ..r }.render();
        assert!(v6.contains("-d ::1/128 -j RETURN"));
        assert!(v6.contains("-d fd00::/8 -j RETURN"));
        assert!(!v6.contains("10.0.0.0/8"));
    }
}
