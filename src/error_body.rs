//! The one JSON error body of sidekey's own answers, for the proxy and the admin API alike: `{"error":{"code","message","route"}}` plus a `sidekey-error: CODE` header.

use crate::transport::body::{ProxyBody, full};
use http::{HeaderName, HeaderValue, Response, StatusCode};

/// The header naming the error code of an answer sidekey wrote itself.
pub const ERROR_HEADER: HeaderName = HeaderName::from_static("sidekey-error");

/// An answer saying why sidekey refused or failed. `message` is for the
/// person reading it and never holds a secret; `route` is set on proxy answers.
pub fn response(
    status: StatusCode,
    code: &'static str,
    message: &str,
    route: Option<&str>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(full(json(code, message, route)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(ERROR_HEADER, HeaderValue::from_static(code));
    resp
}

/// The JSON body alone, for answers written without hyper (a refused connection).
pub fn json(code: &str, message: &str, route: Option<&str>) -> String {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(route) = route {
        error["route"] = route.into();
    }
    serde_json::json!({ "error": error }).to_string()
}
