//! Builds an outbound request for a route's upstream: the one place that joins
//! scheme, authority, base path, path and query (used by forwarding and probes).

use super::body::ProxyBody;
use super::error::ProxyError;
use http::{HeaderMap, Method, Request, Uri};

/// Where on the upstream a request goes.
pub struct Endpoint<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    pub base_path: &'a str,
}

/// `scheme://authority{base_path}{path}?{query}` with `method`, `headers` and `body`.
pub fn build(
    to: Endpoint<'_>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: HeaderMap,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, ProxyError> {
    let mut uri = String::with_capacity(
        to.scheme.len() + to.authority.len() + to.base_path.len() + path.len() + 16,
    );
    uri.push_str(to.scheme);
    uri.push_str("://");
    uri.push_str(to.authority);
    uri.push_str(to.base_path);
    uri.push_str(path);
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    let uri = Uri::try_from(uri)
        .map_err(|_| ProxyError::BadRequest("the request target is not a valid URI".into()))?;
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}
