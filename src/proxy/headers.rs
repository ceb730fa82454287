//! Header hygiene between app and upstream: hop-by-hop removal and header-size accounting.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

/// RFC 9110 §7.6.1 connection-specific fields, plus the proxy credentials
/// the app must never pass through, `Transfer-Encoding`, which hyper
/// frames itself, and `Expect`, which hyper's server answers to the app
/// (`100 Continue` when the body is first read) and hyper's client does not
/// honour upstream: passed on, it would be signed (SigV4) by sidekey and
/// left out by verifiers, which never sign it. `Connection` must stay first
/// (see [`strip_hop_by_hop`]).
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
    header::EXPECT,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
/// `Transfer-Encoding` is removed too: hyper frames the body itself; and
/// `Expect`, whose `100-continue` was answered on the app's side.
///
/// `TE: trailers` stays: RFC 9113 §8.2.2 allows it, and gRPC needs it.
/// Returns the `Upgrade` header it removed (the request path decides
/// whether the upgrade goes on).
///
/// One pass over the names finds which are present, so a message that has
/// none (most requests) costs no hashed lookup at all.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_index(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return None;
    }
    if present & 1 != 0 {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter(|v| !is_usual_connection_value(v.as_bytes()))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("close")
                    && hop_index(&t.to_ascii_lowercase()).is_none()
            })
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    let mut upgrade = None;
    for (i, h) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) == 0 || (i == TE && only_trailers(headers)) {
            continue;
        }
        let removed = headers.remove(h);
        if i == UPGRADE {
            upgrade = removed;
        }
    }
    upgrade
}

/// Positions of `TE` and `Upgrade` in [`HOP_BY_HOP`].
const TE: usize = 5;
const UPGRADE: usize = 7;

/// Whether the one `TE` header says `trailers` and nothing else.
fn only_trailers(headers: &HeaderMap) -> bool {
    let mut te = headers.get_all(header::TE).iter();
    matches!((te.next(), te.next()), (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"trailers"))
}

/// Position in [`HOP_BY_HOP`] of a (lower-case) header name.
fn hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "upgrade" => 7,
        "transfer-encoding" => 8,
        "expect" => 9,
        _ => return None,
    })
}

/// `Connection: keep-alive` or `close`, which name no other header.
fn is_usual_connection_value(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")
}

/// Bytes the header block takes, as counted against `max_header_bytes`.
pub fn size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_index_matches_the_list() {
        for (i, h) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(h.as_str()), Some(i));
        }
        assert_eq!(hop_index("x-keep"), None);
    }

    #[test]
    fn strips_listed_and_named() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.append("connection", "x-second-hop".parse().unwrap());
        h.insert("x-second-hop", "1".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("proxy-authorization", "Basic abc".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-keep", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-keep"], "yes");
    }

    #[test]
    fn strips_transfer_encoding_and_expect_and_leaves_clean_maps_alone() {
        let mut h = HeaderMap::new();
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("te", "gzip".parse().unwrap());
        h.insert("expect", "100-continue".parse().unwrap());
        h.insert("x-keep", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        let mut clean = HeaderMap::new();
        clean.insert("accept", "*/*".parse().unwrap());
        clean.append("accept", "text/plain".parse().unwrap());
        strip_hop_by_hop(&mut clean);
        assert_eq!(clean.len(), 2);
    }

    #[test]
    fn keeps_te_trailers_and_returns_the_upgrade() {
        let mut h = HeaderMap::new();
        h.insert("te", "trailers".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        h.insert("connection", "upgrade".parse().unwrap());
        assert_eq!(strip_hop_by_hop(&mut h).unwrap(), "websocket");
        assert_eq!(h.len(), 1);
        assert_eq!(h["te"], "trailers");
        assert_eq!(TE, hop_index("te").unwrap());
        assert_eq!(UPGRADE, hop_index("upgrade").unwrap());
    }
}
