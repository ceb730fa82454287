//! The built-in development stand-in upstream: answers with the request exactly as a real upstream would have received it, the credential shown by fingerprint only.

use super::body::{ProxyBody, full};
use crate::credential::Snapshot;
use crate::inject::Rendered;
use http::{HeaderValue, Request, Response};
use serde_json::{Map, Value, json};

/// Describes `req` (already injected) as JSON. Wherever the rendered
/// credential appears, it is replaced by `<credential fingerprint=...>`.
pub fn answer(
    req: &Request<ProxyBody>,
    snap: &Snapshot,
    slot: usize,
    route: &str,
    credential: &str,
) -> Response<ProxyBody> {
    let marker = format!("<credential {credential} fingerprint={}>", snap.fingerprint);
    let rendered = &snap.rendered[slot];
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let shown = match rendered {
            Rendered::Header { name: n, value: v } if n == name && v == value => {
                format!("{} ({})", marker, describe_form(v))
            }
            _ => String::from_utf8_lossy(value.as_bytes()).into_owned(),
        };
        headers.insert(name.as_str().to_owned(), Value::String(shown));
    }
    let mut query = req.uri().query().map(str::to_owned);
    if let (Rendered::Query { pair, param }, Some(q)) = (rendered, query.as_mut()) {
        *q = q.replace(pair.as_str(), &format!("{param}={marker}"));
    }
    let body = json!({
        "stand_in": true,
        "note": "sidekey's local stand-in upstream: this is what the real upstream would have received",
        "route": route,
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

/// The non-secret shape of an injected header value ("Bearer …", "Basic …").
fn describe_form(v: &HeaderValue) -> String {
    let text = v.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, _)) if scheme.len() < 16 => format!("{scheme} …"),
        _ => "raw value".into(),
    }
}
