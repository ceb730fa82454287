//! The built-in development stand-in upstream: answers with the request exactly as a real upstream would have received it, the credential shown by fingerprint only.

use super::route::Route;
use crate::credential::Snapshot;
use crate::transport::body::{ProxyBody, full};
use http::{HeaderValue, Request, Response};
use serde_json::{Map, Value, json};

/// Describes `req` (credential attached) as JSON. Wherever the credential
/// appears (the form's header or query parameter, any header marked
/// sensitive) it is replaced by `<credential NAME fingerprint=...>`.
pub fn answer(req: &Request<ProxyBody>, snap: &Snapshot, route: &Route) -> Response<ProxyBody> {
    let credential = route.credential.name();
    let marker = format!("<credential {credential} fingerprint={}>", snap.fingerprint);
    let form = &route.config.inject;
    let carrier = form.header_name();
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let shown = if carrier.as_ref() == Some(name) {
            format!("{} ({})", marker, describe_form(value))
        } else if value.is_sensitive() {
            marker.clone()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        headers.insert(name.as_str().to_owned(), Value::String(shown));
    }
    let query = req.uri().query().map(|q| match form.query_param() {
        Some(param) => redact_param(q, param, &marker),
        None => q.to_owned(),
    });
    let body = json!({
        "stand_in": true,
        "note": "sidekey's local stand-in upstream: this is what the real upstream would have received",
        "route": route.name(),
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": query,
        "headers": headers,
        "credential": { "name": credential, "fingerprint": snap.fingerprint, "generation": snap.generation },
    });
    let mut resp = Response::new(full(serde_json::to_vec_pretty(&body).unwrap_or_default()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `query` with the value of every `param=` pair replaced by `marker`.
fn redact_param(query: &str, param: &str, marker: &str) -> String {
    let encoded = crate::inject::query::encode(param);
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name == encoded => format!("{param}={marker}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The non-secret shape of an injected header value ("Bearer …", "Basic …").
fn describe_form(v: &HeaderValue) -> String {
    let text = v.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, _)) if scheme.len() < 16 => format!("{scheme} …"),
        _ => "raw value".into(),
    }
}
