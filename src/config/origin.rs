//! Checks of the browser-facing route keys: `allow_browser_origins` entries and `allowed_hosts` names.

use http::Uri;

/// Checks an `allow_browser_origins` entry: `scheme://host[:port]`, as a
/// browser writes an `Origin` (no path, no `null`, no `*`).
pub fn parse_origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "browser origin `{text}` {why}; write it like \"http://localhost:5173\""
        ))
    };
    if text == "null" || text == "*" {
        return bad(
            "would let any page in (`null` is what sandboxed frames, file: pages and redirects send)",
        );
    }
    let Ok(uri) = text.parse::<Uri>() else {
        return bad("is not a URL");
    };
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(a)) if !a.as_str().contains('@') => {}
        _ => return bad("needs an http:// or https:// scheme and a host"),
    }
    if !text.ends_with(uri.authority().map_or("", |a| a.as_str())) {
        return bad("must not hold a path");
    }
    Ok(text.to_ascii_lowercase())
}

/// Checks an `allowed_hosts` entry: a host name or address, without a port.
pub fn parse_host(text: &str) -> Result<String, String> {
    match http::uri::Authority::try_from(text) {
        Ok(a) if a.port().is_none() && a.host() == text && !text.contains('@') => {
            Ok(text.trim_end_matches('.').to_ascii_lowercase())
        }
        _ => Err(format!(
            "allowed host `{text}` must be a host name or address without scheme, port or path, like \"sidekey.internal\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_hosts_in_the_config_are_checked() {
        assert_eq!(
            parse_origin("http://LocalHost:5173").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "null",
            "*",
            "localhost:5173",
            "http://localhost:5173/app",
            "ftp://x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_host("Sidekey.Internal").unwrap(), "sidekey.internal");
        for bad in ["a:80", "http://a", "a/b", ""] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
