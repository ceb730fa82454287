//! HTTP/1.1 upgrades (WebSocket): which protocols a route lets through, and the join of the app's connection to the upstream's after its `101`, with its end-of-connection log line and counters.

use super::error::ProxyError;
use super::route::Route;
use crate::config::RouteConfig;
use crate::transport::body::{ProxyBody, empty};
use crate::transport::tunnel::{self, Carried, End};
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderValue, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

/// Decides on the `Upgrade` header of an HTTP/1.1 request: `Some` to pass
/// it on, `None` to ignore it (`h2c`, which RFC 9110 §7.8 lets a server
/// ignore: the request goes on as plain HTTP/1.1), or a refusal for a
/// protocol the route's `allow_upgrades` does not list.
pub fn admit(cfg: &RouteConfig, offered: HeaderValue) -> Result<Option<HeaderValue>, ProxyError> {
    let text = offered.to_str().unwrap_or("");
    let names: Vec<String> = text
        .split(',')
        .map(|p| {
            p.trim()
                .split('/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .filter(|p| !p.is_empty())
        .collect();
    if names.iter().all(|p| p == "h2c") {
        return Ok(None);
    }
    match names.iter().find(|p| !cfg.allow_upgrades.contains(p)) {
        None => Ok(Some(offered)),
        Some(p) => Err(ProxyError::UpgradeNotAllowed(format!(
            "this route does not switch to `{}` (allow_upgrades lists the protocols it may: {})",
            p.escape_default(),
            match cfg.allow_upgrades.is_empty() {
                true => "none".to_owned(),
                false => cfg.allow_upgrades.join(", "),
            }
        ))),
    }
}

/// For an HTTP/2 extended CONNECT (RFC 8441) with a `:protocol`: turns the
/// request into the HTTP/1.1 handshake (a GET) and returns the protocol.
pub fn extended_connect(parts: &mut http::request::Parts) -> Option<HeaderValue> {
    if parts.method != http::Method::CONNECT || parts.version != http::Version::HTTP_2 {
        return None;
    }
    let protocol = parts.extensions.get::<hyper::ext::Protocol>()?;
    let value = HeaderValue::from_str(protocol.as_str()).ok()?;
    parts.method = http::Method::GET;
    parts.version = http::Version::HTTP_11;
    Some(value)
}

/// The `Sec-WebSocket-Key` an HTTP/1.1 handshake needs and RFC 8441 has
/// none of: 16 random bytes, base64 (RFC 6455 §4.1).
pub fn add_websocket_key(headers: &mut http::HeaderMap) {
    use base64::Engine;
    let nonce: [u8; 16] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    if let Ok(v) = HeaderValue::from_str(&key) {
        headers.insert("sec-websocket-key", v);
    }
}

/// Puts back the headers that ask the upstream to switch protocols.
pub fn ask(headers: &mut http::HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Turns the upstream's `101` into the app's (a `200` to an HTTP/2
/// extended CONNECT, `over_h2`): once both sides have switched, their
/// connections are joined until one closes or they idle past the route's
/// `upgrade_idle_timeout`, or the listener's shutdown grace period ends
/// (`closing`).
pub fn switch(
    route: &Arc<Route>,
    app: Option<OnUpgrade>,
    mut upstream: Response<ProxyBody>,
    path: String,
    over_h2: bool,
    closing: Option<tokio::sync::watch::Receiver<bool>>,
) -> Response<ProxyBody> {
    let from_upstream = upstream.extensions_mut().remove::<OnUpgrade>();
    let (Some(app), Some(from_upstream)) = (app, from_upstream) else {
        return ProxyError::UpstreamUnreachable(
            "the upstream switched protocols for a request that did not ask to".into(),
        )
        .into_response(route.name());
    };
    let protocol = route_protocol(&upstream);
    let (mut parts, _) = upstream.into_parts();
    parts.extensions = Default::default();
    match over_h2 {
        // RFC 8441 §5: no Sec-WebSocket-Accept, no connection headers.
        true => _ = parts.headers.remove("sec-websocket-accept"),
        false => ask(&mut parts.headers, protocol.clone()),
    }
    let route = route.clone();
    tokio::spawn(async move {
        let (app, upstream) = match tokio::join!(app, from_upstream) {
            (Ok(a), Ok(u)) => (a, u),
            (a, u) => {
                let why = a
                    .err()
                    .or(u.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                tracing::debug!(
                    route = route.name(),
                    error = why,
                    "an upgrade did not complete"
                );
                return;
            }
        };
        let stats = &route.stats.streams;
        stats.upgrades.fetch_add(1, Relaxed);
        stats.upgrades_open.fetch_add(1, Relaxed);
        let started = Instant::now();
        let carried = Carried::default();
        let idle = route.config.upgrade_idle_timeout;
        let joined = tunnel::join(TokioIo::new(app), TokioIo::new(upstream), idle, &carried);
        // Closed (both sockets dropped) when the shutdown grace period ends.
        let end = match closing {
            Some(mut closing) => tokio::select! {
                end = joined => end,
                _ = crate::shutdown::stopped(&mut closing) => End::Shutdown,
            },
            None => joined.await,
        };
        stats.upgrades_open.fetch_sub(1, Relaxed);
        let (up, down) = (carried.up.load(Relaxed), carried.down.load(Relaxed));
        stats.bytes_up.fetch_add(up, Relaxed);
        stats.bytes_down.fetch_add(down, Relaxed);
        if end == End::IdleTimeout {
            stats.idle_closed.fetch_add(1, Relaxed);
        }
        if route.access_log {
            tracing::info!(
                target: "sidekey::access",
                route = route.name(),
                path = path.as_str(),
                upgrade = protocol.to_str().unwrap_or("?"),
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                bytes_up = up,
                bytes_down = down,
                end = end.as_str(),
                "upgraded connection ended"
            );
        }
    });
    let mut resp = Response::from_parts(parts, empty());
    *resp.status_mut() = match over_h2 {
        true => StatusCode::OK,
        false => StatusCode::SWITCHING_PROTOCOLS,
    };
    resp
}

/// The protocol the handshake asked for, which sidekey kept on the upstream's answer.
fn route_protocol(upstream: &Response<ProxyBody>) -> HeaderValue {
    upstream
        .extensions()
        .get::<Protocol>()
        .map_or_else(|| HeaderValue::from_static("websocket"), |p| p.0.clone())
}

/// The protocol an upgrade asked for, carried on the upstream's answer.
#[derive(Clone)]
pub struct Protocol(pub HeaderValue);
