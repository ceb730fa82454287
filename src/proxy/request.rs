//! Builds an outbound request for a route's upstream: the one place that joins
//! scheme, authority, base path, path and query (used by forwarding and probes).

use super::error::ProxyError;
use crate::transport::body::ProxyBody;
use http::uri::{self, Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Uri};

/// Where on the upstream a request goes; built once per route.
pub struct Endpoint<'a> {
    pub scheme: &'a Scheme,
    pub authority: &'a Authority,
    pub base_path: &'a str,
    /// Send only `/path?query` (a connection of our own), not the full URI.
    pub origin_form: bool,
}

/// The path and query to send.
pub struct Target<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The app's own path and query, when normalisation left the path as it
    /// was: reused as is when nothing else changes it (no parse, no copy).
    pub unchanged: Option<&'a PathAndQuery>,
}

/// `scheme://authority{base_path}{path}?{query}` (or its origin form) with `method`, `headers` and `body`.
pub fn build(
    to: Endpoint<'_>,
    method: &Method,
    target: Target<'_>,
    headers: HeaderMap,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, ProxyError> {
    let path_and_query = match target.unchanged {
        Some(pq) if to.base_path.is_empty() && pq.query() == target.query => pq.clone(),
        _ => {
            let mut pq = String::with_capacity(to.base_path.len() + target.path.len() + 16);
            pq.push_str(to.base_path);
            pq.push_str(target.path);
            if let Some(q) = target.query {
                pq.push('?');
                pq.push_str(q);
            }
            PathAndQuery::try_from(pq).map_err(|_| invalid_target())?
        }
    };
    let uri = match to.origin_form {
        true => Uri::from(path_and_query),
        false => {
            let mut parts = uri::Parts::default();
            parts.scheme = Some(to.scheme.clone());
            parts.authority = Some(to.authority.clone());
            parts.path_and_query = Some(path_and_query);
            Uri::from_parts(parts).map_err(|_| invalid_target())?
        }
    };
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

fn invalid_target() -> ProxyError {
    ProxyError::BadRequest("the request target is not a valid URI".into())
}
