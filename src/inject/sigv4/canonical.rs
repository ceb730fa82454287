//! The SigV4 canonical request, written into one buffer: method, canonical path and query, the signed headers with their trimmed values, the signed-header list and the payload hash.

use super::SignError;
use super::uri::{push_path, push_query};
use http::header::{self, HeaderMap};
use http::uri::{Scheme, Uri};
use std::ops::Range;

/// Headers left out of the signature, as AWS's signer leaves them out:
/// set or changed by proxies and CDNs on the way.
const UNSIGNED: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

/// A canonical request and where its signed-header list is.
pub(super) struct Canonical {
    pub text: Vec<u8>,
    signed: Range<usize>,
}

impl Canonical {
    /// `host;x-amz-date;...`, for the `Authorization` header.
    pub fn signed_headers(&self) -> &[u8] {
        &self.text[self.signed.clone()]
    }
}

/// What is signed besides the request itself.
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// Headers the signer adds (`x-amz-date`, ...), each name lowercase.
    pub added: &'a [(&'static str, &'a [u8])],
    /// Single encoding and no path normalisation (the S3 family).
    pub s3: bool,
    /// The payload hash, or `UNSIGNED-PAYLOAD`.
    pub payload: &'a str,
}

/// Builds the canonical request. Refuses a request target with bytes
/// outside ASCII, a header value that is not UTF-8, and a request with
/// neither a `Host` header nor an authority in its URI.
pub(super) fn build(req: &Request<'_>) -> Result<Canonical, SignError> {
    let path = req.uri.path();
    let query = req.uri.query();
    // AWS's signer refuses such a target (its URI type takes ASCII only);
    // so do we, rather than guess how the service spells those bytes.
    if !path.is_ascii() || !query.is_none_or(str::is_ascii) {
        return Err(SignError(
            "the request target holds bytes outside ASCII; percent-encode them".into(),
        ));
    }
    let host_fallback = match req.headers.contains_key(header::HOST) {
        true => None,
        false => Some(host_of(req.uri)?),
    };
    let mut entries: Vec<(&str, &[u8])> = Vec::with_capacity(req.headers.len() + 4);
    for (name, value) in req.headers {
        let name = name.as_str();
        if std::str::from_utf8(value.as_bytes()).is_err() {
            return Err(SignError(format!(
                "header `{name}` is not UTF-8 text and cannot be signed"
            )));
        }
        if UNSIGNED.contains(&name) || req.added.iter().any(|(n, _)| *n == name) {
            continue;
        }
        entries.push((name, value.as_bytes()));
    }
    if let Some(host) = &host_fallback {
        entries.push(("host", host.as_bytes()));
    }
    entries.extend_from_slice(req.added);
    // Stable: the values of one header keep their order.
    entries.sort_by(|a, b| a.0.cmp(b.0));

    let values: usize = entries.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut text = Vec::with_capacity(
        req.method.len() + 3 * path.len() + 3 * query.map_or(0, str::len) + 2 * values + 100,
    );
    text.extend_from_slice(req.method.as_bytes());
    text.push(b'\n');
    push_path(&mut text, path, req.s3);
    text.push(b'\n');
    push_query(&mut text, query);
    text.push(b'\n');
    let mut i = 0;
    while i < entries.len() {
        let name = entries[i].0;
        text.extend_from_slice(name.as_bytes());
        text.push(b':');
        let mut first = true;
        while i < entries.len() && entries[i].0 == name {
            if !first {
                text.push(b',');
            }
            first = false;
            push_trimmed(&mut text, entries[i].1);
            i += 1;
        }
        text.push(b'\n');
    }
    text.push(b'\n');
    let start = text.len();
    let mut last: Option<&str> = None;
    for (name, _) in &entries {
        if last == Some(*name) {
            continue;
        }
        if last.is_some() {
            text.push(b';');
        }
        text.extend_from_slice(name.as_bytes());
        last = Some(name);
    }
    let signed = start..text.len();
    text.push(b'\n');
    text.extend_from_slice(req.payload.as_bytes());
    Ok(Canonical { text, signed })
}

/// Appends a header value without its leading and trailing spaces and with
/// each run of spaces inside as one space. Only spaces: a tab is kept.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' {
            space = started;
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        out.push(b);
        started = true;
    }
}

/// The `Host` value a client would send for `uri`: its authority, without
/// the port when the port is the scheme's default.
fn host_of(uri: &Uri) -> Result<String, SignError> {
    let authority = uri
        .authority()
        .ok_or_else(|| SignError("the request has no Host header and no authority".into()))?;
    let default_port = matches!(
        (
            uri.scheme().map(Scheme::as_str),
            authority.port().as_ref().map(|p| p.as_str())
        ),
        (Some("http"), Some("80")) | (Some("https"), Some("443"))
    );
    Ok(match default_port {
        true => authority.host().to_owned(),
        false => authority.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_spaces_only() {
        for (value, want) in [
            ("  a   b  c ", "a b c"),
            ("\ta \t b\t", "\ta \t b\t"),
            ("   ", ""),
            ("", ""),
            ("\"a   b   c\"", "\"a b c\""),
        ] {
            let mut out = Vec::new();
            push_trimmed(&mut out, value.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), want, "{value:?}");
        }
    }

    #[test]
    fn host_without_default_port() {
        for (uri, host) in [
            ("http://h:80/", "h"),
            ("https://h:443/", "h"),
            ("http://h:443/", "h:443"),
            ("https://[::1]:8443/", "[::1]:8443"),
            ("http://h/", "h"),
        ] {
            assert_eq!(host_of(&uri.parse().unwrap()).unwrap(), host);
        }
        assert!(host_of(&"/only/path".parse().unwrap()).is_err());
    }
}
