//! Who may use the admin API: a `Host` naming the admin listener (no DNS rebinding), and a `POST`
//! only with the admin token or, when none is configured, from the admin's own origin.
//!
//! A browser on the same machine reaches the loopback admin listener as easily as a route: a
//! page on any site can submit a form `POST` to it, and a page whose name rebinds to 127.0.0.1
//! can read its answers. Browsers always send `Origin` on a `POST` (and `Sec-Fetch-Site` on
//! every request); the `sidekey` CLI, curl and scripts are not browsers and send neither, so a
//! `POST` without `Origin` and without a cross-site `Sec-Fetch-Site` is a non-browser client
//! and passes when no token is configured. With `[admin] token` set every `POST` needs it.
//!
//! An admin listener off loopback (a pod's `0.0.0.0`, for the kubelet's probes) is reachable
//! by every host that can route to it, which a `Host` check does not stop: there only
//! `/healthz` and `/readyz` answer without the admin token.

use super::Shared;
use crate::config::ListenAddr;
use crate::proxy::browser::check_listener_host;
use crate::proxy::error::ProxyError;
use crate::transport::body::ProxyBody;
use http::header::{AUTHORIZATION, HOST, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The refusal of a request the admin API must not answer, if it is one;
/// logged, since it may be a page trying to reach the admin API.
pub fn refused<B>(shared: &Shared, req: &Request<B>) -> Option<Response<ProxyBody>> {
    let answer = refusal_of(shared, req)?;
    let code = answer
        .headers()
        .get("sidekey-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    *shared
        .refused_by_error
        .lock()
        .entry(code.to_owned())
        .or_default() += 1;
    if let Some(suppressed) = shared.refusals.admit() {
        tracing::warn!(
            method = %req.method(),
            path = %crate::redact::peer_text(req.uri().path(), 100, true),
            error = code,
            suppressed,
            "admin request refused"
        );
    }
    Some(answer)
}

fn refusal_of<B>(shared: &Shared, req: &Request<B>) -> Option<Response<ProxyBody>> {
    let config = shared.config.load();
    let admin = &config.admin;
    if let Err(e) = check_listener_host(
        &admin.listen,
        &admin.allowed_hosts,
        req.headers(),
        req.uri(),
    ) {
        return Some(e.answer(None));
    }
    if let Some(answer) = off_loopback(shared, &admin.listen, req) {
        return Some(answer);
    }
    if req.method() != Method::POST {
        return None;
    }
    match &shared.admin_token {
        Some(token) => (!presents(token, req.headers())).then(|| {
            super::error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs the admin token: Authorization: Bearer <token>",
            )
        }),
        None => same_origin(req.headers()).err().map(|e| e.answer(None)),
    }
}

/// On a listener off loopback, anything but a probe needs the admin token
/// (and is refused outright when none is configured).
fn off_loopback<B>(
    shared: &Shared,
    listen: &ListenAddr,
    req: &Request<B>,
) -> Option<Response<ProxyBody>> {
    let exposed = matches!(listen, ListenAddr::Tcp(a) if !a.ip().is_loopback());
    let probe = req.method() == Method::GET && matches!(req.uri().path(), "/healthz" | "/readyz");
    if !exposed || probe {
        return None;
    }
    let message = match &shared.admin_token {
        Some(token) if presents(token, req.headers()) => return None,
        Some(_) => {
            "the admin listener is not on loopback: everything but /healthz and /readyz needs the admin token: Authorization: Bearer <token>"
        }
        None => {
            "the admin listener is not on loopback and no [admin] token is set: only /healthz and /readyz answer; set [admin] token to use the rest"
        }
    };
    Some(super::error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
    ))
}

/// Whether the request carries `Authorization: Bearer <the admin token>`.
fn presents(token: &crate::secret::Secret, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    token.ct_eq(presented)
}

/// A `POST` from a browser must come from a page the admin API served
/// itself: its `Origin` is `http://` and the `Host` it was sent to.
/// Comparing with the request's own `Host` is safe because the `Host` was
/// already checked against the listener (`check_listener_host`), and a
/// browser cannot forge `Host`.
fn same_origin(headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut origins = headers.get_all(ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(origin), None) => {
            let own = headers.get(HOST).map(HeaderValue::as_bytes);
            let matches = own.is_some_and(|host| {
                origin
                    .as_bytes()
                    .strip_prefix(b"http://")
                    .is_some_and(|o| o.eq_ignore_ascii_case(host))
            });
            if matches {
                Ok(())
            } else {
                Err(refusal(&format!(
                    "a page at `{}` (Origin header)",
                    shown(origin.as_bytes())
                )))
            }
        }
        (Some(_), Some(_)) => Err(refusal("a request with more than one Origin header")),
        (None, _) => match headers.get(SEC_FETCH_SITE).map(HeaderValue::as_bytes) {
            None | Some(b"same-origin") | Some(b"none") => Ok(()),
            Some(site) => Err(refusal(&format!(
                "a browser request for a page on another site (Sec-Fetch-Site: {})",
                shown(site)
            ))),
        },
    }
}

fn refusal(what: &str) -> ProxyError {
    ProxyError::BrowserOriginRefused(format!(
        "{what} may not change credentials: a POST to the admin API comes from the admin page itself, from a client that is not a browser, or carries the admin token"
    ))
}

/// A header value as the reader of the refusal should see it: one bounded printable line.
fn shown(raw: &[u8]) -> String {
    crate::redact::peer_text(&String::from_utf8_lossy(raw), 100, true)
}
