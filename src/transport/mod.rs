//! HTTP client connections and the body type, shared by the proxy and by the sources that call out (OAuth 2.0, AWS).

pub mod body;
pub mod cert;
pub mod client;
pub mod direct;
pub mod h2c;
pub mod mtls;
pub mod reach;
pub mod resolve;
pub mod tunnel;
pub mod upgrade;

/// Removes every header whose (lower-case) name starts with `prefix`
/// (`x-forwarded-`, `access-control-`). Allocates only when one is there.
pub fn remove_prefixed(headers: &mut http::HeaderMap, prefix: &str) {
    let names: Vec<http::HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(prefix))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}
