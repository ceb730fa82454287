//! Host pinning: the destination a request names (CONNECT target, TLS SNI, `Host`, `:authority`, absolute URI) must be one host, or it is misdirected.

use super::super::error::ProxyError;
use super::super::router::Destination;
use http::{HeaderMap, Uri};

/// Splits `host[:port]` (IPv6 in brackets) into a lower-case host without
/// trailing dot and its port, if written.
pub fn split_authority(a: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (a, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains(['@', '/', ' ']) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
    };
    Some((host, port))
}

/// The destination of a CONNECT request: `host:port`, the port required.
pub fn connect_target(uri: &Uri) -> Result<Destination, ProxyError> {
    let bad = |why: &str| {
        ProxyError::BadRequest(format!(
            "CONNECT needs a target like `api.example.com:443`; {why}"
        ))
    };
    let Some(authority) = uri.authority() else {
        return Err(bad("the request has none"));
    };
    match split_authority(authority.as_str()) {
        Some((host, Some(port))) => Ok(Destination {
            host,
            port,
            tls: true,
        }),
        Some((_, None)) => Err(bad("the port is missing")),
        None => Err(bad(&format!("`{}` is not one", authority.as_str()))),
    }
}

/// Checks that every name the request gives for where it goes is `dest`:
/// each `Host` header and the URI's authority (HTTP/2 `:authority`), at
/// least one of them present, and for a tunnel the TLS SNI. A name without
/// a port is taken to mean the destination's port.
pub fn check(
    dest: &Destination,
    sni: Option<&str>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), ProxyError> {
    let target = || format!("{}:{}", dest.host, dest.port);
    if dest.tls && sni != Some(dest.host.as_str()) {
        return Err(ProxyError::Misdirected(format!(
            "the TLS server name ({}) is not the CONNECT target {}; sidekey forwards a tunnel's requests only to the host it was opened for",
            sni.unwrap_or("none"),
            target()
        )));
    }
    let names = headers
        .get_all(http::header::HOST)
        .iter()
        .map(|v| v.to_str().ok())
        .chain(uri.authority().map(|a| Some(a.as_str())));
    let mut any = false;
    for name in names {
        any = true;
        let same = name
            .and_then(split_authority)
            .is_some_and(|(h, p)| h == dest.host && p.is_none_or(|p| p == dest.port));
        if !same {
            return Err(ProxyError::Misdirected(format!(
                "the request names `{}` but was sent for {}; open a connection to that host instead",
                name.unwrap_or("(not text)"),
                target()
            )));
        }
    }
    match any {
        true => Ok(()),
        false => Err(ProxyError::Misdirected(format!(
            "the request names no host (no Host or :authority); it was sent for {}",
            target()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(host: &str, port: u16) -> Destination {
        Destination {
            host: host.into(),
            port,
            tls: true,
        }
    }

    #[test]
    fn authorities() {
        assert_eq!(
            split_authority("API.x.com.:443"),
            Some(("api.x.com".into(), Some(443)))
        );
        assert_eq!(split_authority("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(split_authority("x.com"), Some(("x.com".into(), None)));
        assert_eq!(split_authority("x.com:0"), None);
        assert_eq!(split_authority("x.com:abc"), None);
        assert_eq!(split_authority("a@x.com:1"), None);
    }

    #[test]
    fn pinning() {
        let mut h = HeaderMap::new();
        h.insert("host", "api.x.com".parse().unwrap());
        let uri: Uri = "/v1".parse().unwrap();
        assert!(check(&d("api.x.com", 443), Some("api.x.com"), &h, &uri).is_ok());
        assert!(check(&d("api.x.com", 443), Some("evil.com"), &h, &uri).is_err());
        assert!(check(&d("api.x.com", 443), None, &h, &uri).is_err());
        assert!(check(&d("evil.com", 443), Some("evil.com"), &h, &uri).is_err());
        let abs: Uri = "https://evil.com/v1".parse().unwrap();
        assert!(check(&d("api.x.com", 443), Some("api.x.com"), &h, &abs).is_err());
        h.insert("host", "api.x.com:8443".parse().unwrap());
        assert!(check(&d("api.x.com", 443), Some("api.x.com"), &h, &uri).is_err());
        assert!(
            check(
                &d("api.x.com", 443),
                Some("api.x.com"),
                &HeaderMap::new(),
                &uri
            )
            .is_err()
        );
    }
}
