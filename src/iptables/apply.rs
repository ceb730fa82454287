//! `sidekey iptables --apply`: loads the rules with `iptables-restore` and, where the network namespace has IPv6, `ip6tables-restore`, so an init container needs no shell and no hand-added IPv6 line.
//!
//! IPv6 counts as present when `[::1]` can be bound: that is where an
//! ip6tables `REDIRECT` delivers, and where sidekey binds the twin of its
//! IPv4 loopback `[transparent] listen`. Without it (a kernel or pod with
//! IPv6 disabled) the IPv6 rules are skipped and the pod still starts; with
//! it, a failing `ip6tables-restore` is an error, as is a failing
//! `iptables-restore`: half-applied rules would let egress bypass sidekey
//! unnoticed.

use super::Rules;
use std::io::Write;
use std::process::{Command, Stdio};

/// What `apply` did for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded with this program.
    Applied(&'static str),
    /// Not loaded, and why (the namespace has no IPv6).
    Skipped(String),
}

/// Why the rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run {program}: {source} (the init image needs iptables)")]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("{program} refused the rules ({status}): {stderr}")]
    Refused {
        program: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// Loads the IPv4 rules, then the IPv6 ones where the namespace has IPv6.
/// Returns what happened per family (IPv4 first).
pub fn apply(rules: &Rules) -> Result<[Outcome; 2], ApplyError> {
    let v4 = Rules {
        ipv6: false,
        ..rules.clone()
    };
    restore("iptables-restore", &v4.render())?;
    let v6 = match ipv6_loopback() {
        Err(why) => Outcome::Skipped(why),
        Ok(()) => {
            let v6 = Rules {
                ipv6: true,
                ..rules.clone()
            };
            restore("ip6tables-restore", &v6.render())?;
            Outcome::Applied("ip6tables-restore")
        }
    };
    Ok([Outcome::Applied("iptables-restore"), v6])
}

/// Whether `[::1]` can be bound in this network namespace.
fn ipv6_loopback() -> Result<(), String> {
    std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0))
        .map(drop)
        .map_err(|e| format!("this network namespace has no IPv6 loopback ([::1]: {e})"))
}

/// Runs `program --noflush` with `text` on its standard input.
fn restore(program: &'static str, text: &str) -> Result<(), ApplyError> {
    let spawn = |source| ApplyError::Spawn { program, source };
    let mut child = Command::new(program)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits early closes its end; its status says why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if out.status.success() {
        return Ok(());
    }
    Err(ApplyError::Refused {
        program,
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}
