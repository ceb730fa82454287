//! Listeners bound off loopback that an operator should hear about: `allow_non_loopback` lets every listener do so, and a start and `sidekey check` name each one.

use super::model::{Config, ListenAddr};

/// One sentence per route, `[proxy]` or `[transparent]` listener bound to
/// an address other than loopback (which `allow_non_loopback = true` lets
/// through): every host that can reach it uses the credentials behind it.
/// The admin listener off loopback answers only its probes without the
/// admin token: it is named only when no token is set, since then nothing
/// else of it answers there.
pub fn exposed_listeners(c: &Config) -> Vec<String> {
    let off = |l: &ListenAddr| matches!(l, ListenAddr::Tcp(a) if !a.ip().is_loopback());
    let tail = "`allow_non_loopback = true` allows this; meant for the admin listener, it applies to every listener";
    let mut out = Vec::new();
    if off(&c.admin.listen) && c.admin.token.is_none() {
        out.push(format!(
            "the admin listener listens on {}, not loopback, and no [admin] token is set: there only /healthz and /readyz answer",
            c.admin.listen
        ));
    }
    for r in &c.routes {
        if let Some(l) = r.listen.as_ref().filter(|l| off(l)) {
            out.push(format!(
                "route `{}` listens on {l}, not loopback: any host that reaches it sends requests with credential `{}` ({tail})",
                r.name, r.credential
            ));
        }
    }
    if let Some(p) = c.proxy.as_ref().filter(|p| off(&p.listen)) {
        out.push(format!(
            "[proxy] listens on {}, not loopback: any host that reaches it gets the credentials of the host routes ({tail})",
            p.listen
        ));
    }
    if let Some(t) = c
        .transparent
        .as_ref()
        .filter(|t| !t.listen.ip().is_loopback())
    {
        out.push(format!(
            "[transparent] listens on {}, not loopback: any host that reaches it gets the credentials of the host routes ({tail})",
            t.listen
        ));
    }
    out
}
