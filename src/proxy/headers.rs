//! Header hygiene between app and upstream: hop-by-hop removal and header-size accounting.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// RFC 9110 §7.6.1 connection-specific fields, plus the proxy credentials
/// the app must never pass through, and `Transfer-Encoding`, which hyper
/// frames itself. `Connection` must stay first (see [`strip_hop_by_hop`]).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
/// `Transfer-Encoding` is removed too: hyper frames the body itself.
///
/// One pass over the names finds which are present, so a message that has
/// none (most requests) costs no hashed lookup at all.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0
        && let Some(conn) = headers.get(header::CONNECTION).cloned()
    {
        for token in conn.to_str().unwrap_or("").split(',').map(str::trim) {
            // `keep-alive` and the like are in the list: removed below.
            if !HOP_BY_HOP
                .iter()
                .any(|h| token.eq_ignore_ascii_case(h.as_str()))
            {
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    headers.remove(name);
                }
            }
        }
    }
    for (i, h) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(h);
        }
    }
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
    fn strips_listed_and_named() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("proxy-authorization", "Basic abc".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-keep", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-keep"], "yes");
    }

    #[test]
    fn strips_transfer_encoding_and_leaves_clean_maps_alone() {
        let mut h = HeaderMap::new();
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("x-keep", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        let mut clean = HeaderMap::new();
        clean.insert("accept", "*/*".parse().unwrap());
        clean.append("accept", "text/plain".parse().unwrap());
        strip_hop_by_hop(&mut clean);
        assert_eq!(clean.len(), 2);
    }
}
