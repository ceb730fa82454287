//! `GET /`: the inventory as a page, served from the binary (HTML, CSS and script, no outside assets) under a strict CSP.
//!
//! The page only reads the admin API (`/v1/credentials`, `/v1/config/status`, polled) and
//! posts refresh and revoke to it from its own origin, so the hardening in `access` is all
//! it needs. The script is a file of its own: the policy allows no inline script or style.

use crate::transport::body::{ProxyBody, full};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use http::{HeaderValue, Response};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// Same-origin script, style and fetches only; no frames, forms, plugins or base changes.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page file at `path`, if there is one.
pub fn asset(path: &str) -> Option<Response<ProxyBody>> {
    let (body, kind) = match path {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = Response::new(full(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in [
        ("content-security-policy", POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Some(resp)
}
