//! Web browsers on the same machine: requests from a page on another origin and requests under
//! a name that is not this listener's (DNS rebinding) are refused; upstream CORS headers reach
//! only origins the route allows.
//!
//! A route's listener is on loopback, so any page a local browser opens can send it requests:
//! a cross-site form `POST` or `<img>` carries the credential with it, and a page whose name
//! rebinds to 127.0.0.1 is, to the browser, same-origin with the route and may read its answers.
//! A browser says where a request comes from (`Origin`, `Sec-Fetch-Site`) and under which name
//! it reached the listener (`Host`); a non-browser client sends neither of the first two.

use super::error::ProxyError;
use crate::config::{ListenAddr, RouteConfig};
use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Built once: looking a header up by `&str` would parse the name on every request.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Refuses a request from a browser page on an origin the route does not
/// allow, and one whose `Host` is not a name of this listener.
pub fn check(cfg: &RouteConfig, headers: &HeaderMap, uri: &Uri) -> Result<(), ProxyError> {
    check_host(cfg, headers, uri)?;
    let mut origins = headers.get_all(ORIGIN).iter();
    let allowed = match (origins.next(), origins.next()) {
        (None, _) => false,
        (Some(o), None) if origin_allowed(cfg, o) => true,
        (Some(o), _) => {
            return Err(ProxyError::BrowserOriginRefused(format!(
                "a request from a browser page at `{}` (Origin header) is refused: {}",
                shown(o.as_bytes()),
                OPT_IN
            )));
        }
    };
    if allowed {
        return Ok(());
    }
    match headers.get(SEC_FETCH_SITE).map(HeaderValue::as_bytes) {
        None | Some(b"none") | Some(b"same-origin") => Ok(()),
        Some(site) => Err(ProxyError::BrowserOriginRefused(format!(
            "a request a browser sent for a page on another site (Sec-Fetch-Site: {}) is refused: {}",
            shown(site),
            OPT_IN
        ))),
    }
}

const OPT_IN: &str = "a local page may use this route's credential only if the route lists its origin in allow_browser_origins";

/// Removes `Access-Control-*` headers from an upstream's answer, unless the
/// request came from an origin the route allows (then they pass unchanged).
pub fn filter_response(cfg: &RouteConfig, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if origin.is_some_and(|o| origin_allowed(cfg, o)) {
        return;
    }
    crate::transport::remove_prefixed(headers, "access-control-");
}

fn origin_allowed(cfg: &RouteConfig, origin: &HeaderValue) -> bool {
    let Ok(o) = origin.to_str() else { return false };
    cfg.allow_browser_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(o))
}

fn check_host(cfg: &RouteConfig, headers: &HeaderMap, uri: &Uri) -> Result<(), ProxyError> {
    // A host route's Host is pinned to its destination by the forward proxy.
    let Some(listen) = &cfg.listen else {
        return Ok(());
    };
    check_listener_host(listen, &cfg.allowed_hosts, headers, uri)
}

/// `Host` (and an absolute-form target) must name the listener on `listen`:
/// a loopback name or address, the address it listens on, or one of
/// `allowed_hosts`. Unix-socket listeners are out of a browser's reach and
/// skip this. The admin API runs the same check.
pub fn check_listener_host(
    listen: &ListenAddr,
    allowed_hosts: &[String],
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), ProxyError> {
    let ListenAddr::Tcp(listen) = listen else {
        return Ok(());
    };
    let mut hosts = headers.get_all(HOST).iter();
    let host = hosts.next();
    if host.is_some() && hosts.next().is_some() {
        return Err(ProxyError::HostNotAllowed(
            "the request has more than one Host header".into(),
        ));
    }
    let named = host
        .map(HeaderValue::as_bytes)
        .into_iter()
        .chain(uri.authority().map(|a| a.as_str().as_bytes()));
    for raw in named {
        if !host_allowed(allowed_hosts, listen.ip(), raw) {
            return Err(ProxyError::HostNotAllowed(format!(
                "`{}` is not a name of this listener; sidekey answers only to loopback names and addresses, its own address and the allowed_hosts (a DNS-rebinding page would use its own name)",
                shown(raw)
            )));
        }
    }
    Ok(())
}

fn host_allowed(allowed_hosts: &[String], listen: IpAddr, raw: &[u8]) -> bool {
    let Some(host) = host_of(raw) else {
        return false;
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let suffix = host.len().saturating_sub(".localhost".len());
    if host.eq_ignore_ascii_case("localhost")
        || host
            .get(suffix..)
            .is_some_and(|s| s.eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    if let Some(ip) = ip_of(host) {
        // A rebinding page reaches the listener under its own name, never
        // under an address; any address of a listener on all addresses is its own.
        return ip.is_loopback() || ip == listen || listen.is_unspecified();
    }
    allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// The address a host names, if it is one (`127.0.0.1`, `[::1]`). Most
/// requests name an IPv4 loopback address: that parse comes first.
fn ip_of(host: &str) -> Option<IpAddr> {
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    let v6 = host.strip_prefix('[')?.strip_suffix(']')?;
    v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// The host of a `Host` value (`name`, `name:port`, `[v6]:port`), without
/// allocating: this runs for every request.
fn host_of(raw: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(raw).ok()?;
    let host = match text.rfind(':') {
        Some(i) if !text.ends_with(']') && text[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &text[..i]
        }
        _ => text,
    };
    let fine =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':');
    (!host.is_empty() && host.bytes().all(fine)).then_some(host)
}

/// A header value as the person reading the refusal should see it: one
/// bounded line of printable ASCII (it comes from whoever sent the request).
fn shown(raw: &[u8]) -> String {
    crate::redact::peer_text(&String::from_utf8_lossy(raw), 100, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_are_split_from_their_port() {
        assert_eq!(host_of(b"localhost:8081"), Some("localhost"));
        assert_eq!(host_of(b"[::1]:8081"), Some("[::1]"));
        assert_eq!(host_of(b"[::1]"), Some("[::1]"));
        assert_eq!(host_of(b"Example.COM"), Some("Example.COM"));
        assert_eq!(host_of(b"a@b:1"), None);
        assert_eq!(host_of(b":80"), None);
        assert_eq!(host_of(b"a b"), None);
    }

    #[test]
    fn messages_show_only_printable_text() {
        assert_eq!(shown(b"a\r\nb\xff"), "ab");
        assert_eq!(shown(&[b'x'; 300]).chars().count(), 101);
    }
}
