//! Request-path normalisation before scope matching: percent-decoding of unreserved characters, dot segments, empty segments.

mod reread;

pub use reread::Reread;

/// A path the scope check and the upstream both see.
#[derive(Debug, PartialEq, Eq)]
pub struct Normalized {
    /// Always starts with `/`; percent-escapes that remain are upper-case.
    pub path: String,
    /// The path held `%2F`, `%5C` or a raw `\`: a separator the upstream
    /// might see where the scope check did not.
    pub ambiguous_separator: bool,
    /// The first segment an upstream could read differently from the check
    /// (`..;`, `%252e`, `%c0%ae`, U+FF0E ...); refused on scoped routes.
    pub reread: Option<Reread>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path must start with `/`")]
    NotOriginForm,
    #[error("the request path holds a malformed percent-escape")]
    BadEscape,
    #[error("the request path holds an encoded NUL")]
    Nul,
}

/// Normalises an origin-form path (no query). `%2e` becomes `.`, so
/// `/v1/%2e%2e/admin` resolves to `/admin` like `/v1/../admin` does.
pub fn normalize(raw: &str) -> Result<Normalized, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if is_normal(raw) {
        return Ok(Normalized {
            path: raw.to_owned(),
            ambiguous_separator: false,
            reread: None,
        });
    }
    let mut ambiguous = raw.contains('\\');
    let mut reread = None;
    let mut out: Vec<String> = Vec::new();
    let trailing = raw.len() > 1 && raw.ends_with('/');
    for seg in raw.split('/') {
        let (seg, sep) = decode_unreserved(seg)?;
        ambiguous |= sep;
        if reread.is_none() {
            reread = reread::check(&seg);
        }
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(seg),
        }
    }
    let mut path = String::with_capacity(raw.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() || (trailing && !out.is_empty()) {
        path.push('/');
    }
    Ok(Normalized {
        path,
        ambiguous_separator: ambiguous,
        reread,
    })
}

/// The path is already normal: ASCII, no escapes, no `\\`, no empty or dot
/// segments, with or without `;` parameters, and no segment of parameters
/// alone. Most paths are; they skip the per-segment work.
fn is_normal(raw: &str) -> bool {
    raw.is_ascii()
        && !raw.contains(['%', '\\'])
        && !raw.contains("//")
        && !raw.contains("/;")
        && raw[1..]
            .split('/')
            .all(|seg| !reread::is_dot(seg.split(';').next().unwrap_or(seg)))
}

/// Decodes escapes of unreserved characters; keeps (upper-cased) the rest.
/// Returns whether an encoded `/` or `\` was seen.
fn decode_unreserved(seg: &str) -> Result<(String, bool), PathError> {
    if !seg.contains('%') {
        return Ok((seg.to_owned(), false));
    }
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut sep = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // Up to the next escape, as text: a raw non-ASCII character stays whole.
            let end = seg[i..].find('%').map_or(seg.len(), |j| i + j);
            out.push_str(&seg[i..end]);
            i = end;
            continue;
        }
        let hex = seg.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
        let v = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEscape)?;
        match v {
            0 => return Err(PathError::Nul),
            b'/' | b'\\' => {
                sep = true;
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(b as char),
            _ => {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
        }
        i += 3;
    }
    Ok((out, sep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().path
    }

    #[test]
    fn dot_segments_resolve() {
        assert_eq!(n("/v1/charges/../../admin"), "/admin");
        assert_eq!(n("/v1/./charges"), "/v1/charges");
        assert_eq!(n("/../../etc"), "/etc");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/a//b/"), "/a/b/");
        assert_eq!(n("//"), "/");
        assert_eq!(n("/a/."), "/a");
        assert_eq!(n("/a/b/.."), "/a");
    }

    #[test]
    fn normal_paths_come_back_unchanged() {
        for p in [
            "/",
            "/v1",
            "/v1/charges/",
            "/v1/ch_1/refunds",
            "/a.b/..c/.d",
        ] {
            assert!(is_normal(p), "{p}");
            assert_eq!(n(p), p);
        }
    }

    #[test]
    fn encoded_dots_resolve_too() {
        assert_eq!(n("/v1/%2e%2e/admin"), "/admin");
        assert_eq!(n("/v1/%2E./admin"), "/admin");
        assert_eq!(n("/v1/ch%61rges"), "/v1/charges");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a%3fb"), "/a%3Fb");
        assert_eq!(n("/caf\u{e9}%20/x"), "/caf\u{e9}%20/x");
    }

    #[test]
    fn encoded_separators_are_flagged() {
        assert!(normalize("/v1/a%2Fb").unwrap().ambiguous_separator);
        assert!(normalize("/v1/a%5cb").unwrap().ambiguous_separator);
        assert!(normalize("/v1/a\\b").unwrap().ambiguous_separator);
        assert!(!normalize("/v1/a/b").unwrap().ambiguous_separator);
    }

    #[test]
    fn segments_an_upstream_could_reread_are_flagged() {
        let why = |p: &str| normalize(p).unwrap().reread;
        assert_eq!(
            why("/v1/charges/..;/..;/admin"),
            Some(Reread::DotWithParams)
        );
        assert_eq!(
            why("/v1/charges/%2e%2e;/admin"),
            Some(Reread::DotWithParams)
        );
        assert_eq!(why("/v1/charges/.;x/a"), Some(Reread::DotWithParams));
        // sigv4_filter fuzz target: to Tomcat `/;x/` is `//`, merged away.
        assert_eq!(
            why("/v1/charges/;x/../admin"),
            Some(Reread::EmptyWithParams)
        );
        assert_eq!(why("/;x"), Some(Reread::EmptyWithParams));
        assert_eq!(why("/v1/charges/%3Bx/a"), Some(Reread::EmptyWithParams));
        assert_eq!(why("/v1/charges/a;x/b"), None);
        assert_eq!(
            why("/v1/charges/..;jsessionid=1/a"),
            Some(Reread::DotWithParams)
        );
        assert_eq!(
            why("/v1/charges/%252e%252e/admin"),
            Some(Reread::DoubleEncoded)
        );
        assert_eq!(
            why("/v1/charges/%25%32%65%25%32%65/a"),
            Some(Reread::DoubleEncoded)
        );
        assert_eq!(why("/v1/charges/a%252Fb"), Some(Reread::DoubleEncoded));
        assert_eq!(
            why("/v1/charges/%c0%ae%c0%ae/admin"),
            Some(Reread::InvalidUtf8)
        );
        assert_eq!(
            why("/v1/charges/%ef%bc%8e%ef%bc%8e/a"),
            Some(Reread::LookAlike)
        );
        assert_eq!(
            why("/v1/charges/\u{2024}\u{2024}/a"),
            Some(Reread::LookAlike)
        );
        // The check sees the segment as written, so `..;` stays a name here.
        assert_eq!(n("/v1/charges/..;/a"), "/v1/charges/..;/a");
        for ok in [
            "/v1/charges",
            "/v1/ch;v=2/x",
            "/a%20b",
            "/caf%C3%A9",
            "/a...;b",
            "/v1/%2e%2e/x",
        ] {
            assert_eq!(why(ok), None, "{ok}");
        }
    }

    #[test]
    fn malformed() {
        assert_eq!(normalize("v1"), Err(PathError::NotOriginForm));
        assert_eq!(normalize("/a%2"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%00"), Err(PathError::Nul));
    }
}
