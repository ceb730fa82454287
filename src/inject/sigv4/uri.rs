//! The canonical URI path and query string of a SigV4 canonical request, written the way AWS's own signer (`aws-sigv4`) writes them.

use std::borrow::Cow;
use std::ops::Range;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved: the only bytes SigV4 leaves unencoded.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` with every byte that is not unreserved (nor `/` when
/// `keep_slash`) written as `%XX`, `%` included.
fn push_encoded(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the canonical path. The S3 family signs the path as sent; other
/// services sign it with dot segments and empty segments removed, then
/// encoded once more (`%2F` is signed as `%252F`).
pub(super) fn push_path(out: &mut Vec<u8>, path: &str, s3: bool) {
    if s3 {
        out.extend_from_slice(path.as_bytes());
        return;
    }
    let normalized = normalize(path);
    push_encoded(out, normalized.as_bytes(), true);
}

/// RFC 3986 section 5.2.4 dot-segment removal, plus dropping empty segments,
/// as SigV4 does for every service but S3: `/a//b/../c/.` is `/a/c/`.
fn normalize(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    let absolute: Cow<'_, str> = match path.starts_with('/') {
        true => Cow::Borrowed(path),
        false => Cow::Owned(format!("/{path}")),
    };
    if !absolute.contains('.') && !absolute.contains("//") {
        return absolute;
    }
    let mut kept: Vec<&str> = Vec::with_capacity(8);
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = String::with_capacity(absolute.len());
    for s in &kept {
        out.push('/');
        out.push_str(s);
    }
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|end| absolute.ends_with(end));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Appends the canonical query: each `name=value` pair form-decoded (`+` is
/// a space, invalid UTF-8 becomes U+FFFD), encoded again with only the
/// unreserved bytes left bare, and sorted by encoded name, then value. A
/// name without `=` has the empty value; empty pairs are dropped.
pub(super) fn push_query(out: &mut Vec<u8>, query: Option<&str>) {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return;
    };
    let mut encoded: Vec<u8> = Vec::with_capacity(query.len() + 16);
    let mut pairs: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(8);
    let mut scratch = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let n = push_decoded_encoded(&mut encoded, name, &mut scratch);
        let v = push_decoded_encoded(&mut encoded, value, &mut scratch);
        pairs.push((n, v));
    }
    pairs.sort_unstable_by(|a, b| {
        (&encoded[a.0.clone()], &encoded[a.1.clone()])
            .cmp(&(&encoded[b.0.clone()], &encoded[b.1.clone()]))
    });
    for (i, (n, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&encoded[n]);
        out.push(b'=');
        out.extend_from_slice(&encoded[v]);
    }
}

/// Form-decodes `raw` and appends it encoded to `out`, returning where.
fn push_decoded_encoded(out: &mut Vec<u8>, raw: &str, scratch: &mut Vec<u8>) -> Range<usize> {
    let start = out.len();
    let bytes = raw.as_bytes();
    if bytes
        .iter()
        .all(|&b| b.is_ascii() && b != b'%' && b != b'+')
    {
        push_encoded(out, bytes, false);
        return start..out.len();
    }
    scratch.clear();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => scratch.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(|h| hex_pair(h[0], h[1])) {
                Some(decoded) => {
                    scratch.push(decoded);
                    i += 2;
                }
                None => scratch.push(b'%'),
            },
            b => scratch.push(b),
        }
        i += 1;
    }
    let text = String::from_utf8_lossy(scratch);
    push_encoded(out, text.as_bytes(), false);
    start..out.len()
}

/// The byte two hex digits spell.
fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(d(hi)? << 4 | d(lo)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, s3: bool) -> String {
        let mut out = Vec::new();
        push_path(&mut out, p, s3);
        String::from_utf8(out).unwrap()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        push_query(&mut out, Some(q));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths() {
        assert_eq!(path("/a//b/../c/.", false), "/a/c/");
        assert_eq!(path("/../..", false), "/");
        assert_eq!(path("/a/b%2Fc d", false), "/a/b%252Fc%20d");
        assert_eq!(path("/a/b%2Fc/../", true), "/a/b%2Fc/../");
        assert_eq!(path("/é:@", false), "/%C3%A9%3A%40");
        assert_eq!(path("/.../x.", false), "/.../x.");
    }

    #[test]
    fn queries() {
        assert_eq!(query("b=2&a=1&a=0&&c"), "a=0&a=1&b=2&c=");
        assert_eq!(query("k=a+b%20c%2x%"), "k=a%20b%20c%252x%25");
        assert_eq!(query("k=%ff%C3%A9"), "k=%EF%BF%BD%C3%A9");
        assert_eq!(query("=v&x=a=b"), "=v&x=a%3Db");
    }
}
