//! The request path: scope check, credential snapshot, injection, forwarding, rejection handling and replay.

use super::error::ProxyError;
use super::limits::body_within;
use super::route::{Route, Target};
use super::router::Connection;
use super::send::{Outgoing, send};
use super::{browser, headers, path, stream_log, upgrade};
use crate::audit;
use crate::credential::{Snapshot, Unusable};
use crate::inject::BodyNeed;
use crate::transport::body::{ProxyBody, Streamed, empty};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::time::Instant;

/// What the access log says about one request.
pub struct Outcome {
    pub path: String,
    pub fingerprint: Option<crate::secret::Fingerprint>,
    pub replayed: bool,
    /// Counts the request body's bytes of an HTTP/2 exchange (a long stream).
    pub up: Option<Arc<stream_log::Up>>,
}

/// Serves one request from the app. Never fails: errors become answers here.
pub async fn serve(
    route: Arc<Route>,
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    // Present only on a request that asks to switch protocols (an HTTP/1.1
    // `Upgrade`, an HTTP/2 CONNECT).
    let app_upgrade = req.extensions_mut().remove::<OnUpgrade>();
    let over_h2 = req.version() == Version::HTTP_2;
    let method = req.method().clone();
    let mut outcome = Outcome {
        // Only the access log reads it: no copy when it is off.
        path: match route.access_log {
            true => req.uri().path().to_owned(),
            false => String::new(),
        },
        fingerprint: None,
        replayed: false,
        up: over_h2.then(Default::default),
    };
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let upgrading = app_upgrade.is_some();
    let mut resp = match forward(&route, &conn, req, upgrading, &mut outcome).await {
        Ok(resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let closing = conn.closing.clone();
            upgrade::switch(
                &route,
                app_upgrade,
                resp,
                outcome.path.clone(),
                over_h2,
                closing,
            )
        }
        Ok(mut resp) if stream_log::is_stream(outcome.up.as_ref(), &resp) => {
            let path = std::mem::take(&mut outcome.path);
            let up = outcome.up.take();
            stream_log::follow(&route, method.clone(), path.clone(), started, up, &mut resp);
            outcome.path = path;
            resp
        }
        Ok(resp) => resp,
        Err(e) => e.into_response(route.name()),
    };
    browser::filter_response(&route.config, origin.as_ref(), resp.headers_mut());
    route.stats.count_status(resp.status().as_u16());
    route
        .stats
        .modes
        .record(conn.listen_mode(), conn.original_dst);
    if route.access_log {
        crate::logging::access::log(&crate::logging::access::Access {
            route: route.name(),
            mode: conn.mode(),
            original_dst: conn.original_dst,
            method: method.as_str(),
            path: outcome.path.as_str(),
            status: resp.status().as_u16(),
            // Integer microseconds: formatting a float cost 1.7k instructions a line.
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            credential: route.credential.name(),
            fingerprint: outcome.fingerprint.as_ref().map(|f| f.as_str()),
            replayed: outcome.replayed,
            error: resp
                .headers()
                .get(crate::error_body::ERROR_HEADER)
                .and_then(|v| v.to_str().ok()),
        });
    }
    resp
}

async fn forward(
    route: &Arc<Route>,
    conn: &Connection,
    req: Request<Incoming>,
    upgrading: bool,
    outcome: &mut Outcome,
) -> Result<Response<ProxyBody>, ProxyError> {
    let cfg = &route.config;
    let (mut parts, body) = req.into_parts();
    // WebSocket over HTTP/2 (RFC 8441) is an extended CONNECT; upstream it
    // becomes the HTTP/1.1 handshake, a GET, and is checked as one.
    let extended = match upgrading {
        true => upgrade::extended_connect(&mut parts),
        false => None,
    };

    let size = headers::size(&parts.headers);
    if size > cfg.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge {
            size,
            limit: cfg.max_header_bytes,
        });
    }
    if let Err(why) = route.caller.admit(conn, &mut parts.headers).await {
        if let Some(suppressed) = route.caller.refusals.admit() {
            audit::caller_refused(
                route.name(),
                &why,
                conn.peer,
                audit::Via::of(conn.mode(), conn.original_dst),
                suppressed,
            );
        }
        return Err(ProxyError::CallerNotAllowed(why));
    }
    browser::check(cfg, &parts.headers, &parts.uri)?;
    let norm =
        path::normalize(parts.uri.path()).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    if route.access_log {
        outcome.path.clone_from(&norm.path);
    }
    if norm.ambiguous_separator && !cfg.scope.is_open() {
        return Err(ProxyError::BadRequest(
            "encoded `/` or `\\` in the path is refused on a scoped route: the upstream could read a different path than the one checked".into(),
        ));
    }
    if let Some(why) = norm.reread.filter(|_| !cfg.scope.is_open()) {
        return Err(ProxyError::BadRequest(why.to_string()));
    }
    if !cfg.scope.allows(&parts.method, &norm.path) {
        return Err(ProxyError::NotAllowed {
            method: parts.method.to_string(),
            path: norm.path,
        });
    }
    cfg.scope
        .check_parts(&parts.method, &norm.path, &parts.headers, parts.uri.query())
        .map_err(ProxyError::PartNotAllowed)?;
    let snap = current(route)?;
    outcome.fingerprint = Some(snap.fingerprint);

    let mut h = parts.headers;
    let offered = headers::strip_hop_by_hop(&mut h);
    let protocol = match extended.clone().or(offered).filter(|_| upgrading) {
        Some(offered) => upgrade::admit(cfg, offered)?,
        None => None,
    };
    if let Some(p) = &protocol {
        upgrade::ask(&mut h, p.clone());
        if extended.is_some() {
            upgrade::add_websocket_key(&mut h);
        }
    }
    if let Target::Remote { host, .. } = &route.target {
        h.insert(http::header::HOST, host.clone());
    }
    let unchanged = match parts.uri.path() == norm.path {
        true => parts.uri.path_and_query().cloned(),
        false => None,
    };
    let version = upstream_version(conn, parts.version, &h);
    let mut out = Outgoing {
        method: parts.method,
        path: norm.path,
        query: parts.uri.query().map(str::to_owned),
        unchanged,
        headers: h,
        body_sha256: None,
        version,
        upgrade: protocol.is_some(),
        // A signed handshake goes upstream as the HTTP/1.1 GET it was signed as.
        extended: protocol.is_some() && extended.is_some() && !cfg.inject.signs_method(),
    };

    // Keep small bodies so a rejected request can be replayed; stream the rest.
    // A SigV4 signed payload is read whole (up to its limit) to be hashed.
    let body = match cfg.inject.body() {
        BodyNeed::Hash { limit } => {
            let bytes = body_within(cfg.body_timeout, collect_signed(body, limit)).await?;
            out.body_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
            Either::Right(bytes)
        }
        BodyNeed::Stream if keepable(&body, cfg.max_replay_body) => {
            Either::Right(body_within(cfg.body_timeout, collect(body, cfg.max_replay_body)).await?)
        }
        BodyNeed::Stream => Either::Left(body),
    };
    let replay_body = match &body {
        Either::Right(bytes) => Some(bytes.clone()),
        Either::Left(_) => None,
    };
    let mut body = into_body(body);
    if let Some(up) = &outcome.up {
        match &body {
            Either::Left(_) => crate::transport::body::watch(&mut body, up.clone()),
            Either::Right(kept) => up.add(kept.size_hint().exact().unwrap_or(0) as usize),
        }
    }
    let first = send(route, &mut out, &snap, &snap.rendered[route.slot], body).await?;

    if !is_rejection(route, &first, out.version) {
        route.credential.record_use();
        let mut first = marked(first, protocol);
        late_rejection(route, conn, &snap, out.version, &mut first);
        return Ok(first);
    }
    route
        .stats
        .upstream_rejections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let asked = route.credential.report_rejection(snap.generation);
    audit::rejected_by_upstream(
        route.credential.name(),
        route.name(),
        snap.fingerprint,
        first.status().as_u16(),
        asked,
        audit::Via::of(conn.mode(), conn.original_dst),
    );
    let Some(bytes) = replay_body else {
        return Ok(first); // a streamed body cannot be sent twice
    };
    let Some(newer) = route
        .credential
        .wait_newer(snap.generation, cfg.timeout)
        .await
    else {
        return Ok(first);
    };
    drop(first);
    route
        .stats
        .replays
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    outcome.replayed = true;
    outcome.fingerprint = Some(newer.fingerprint);
    let second = send(
        route,
        &mut out,
        &newer,
        &newer.rendered[route.slot],
        Either::Right(Full::new(bytes)),
    )
    .await?;
    match is_rejection(route, &second, out.version) {
        // The fresh value is rejected too: the throttle backs off.
        true => _ = route.credential.report_rejection(newer.generation),
        false => route.credential.record_use(),
    }
    let mut second = marked(second, protocol);
    late_rejection(route, conn, &newer, out.version, &mut second);
    Ok(second)
}

/// A gRPC answer that started well may still end with `grpc-status: 16`
/// (UNAUTHENTICATED) in its trailers, after messages: a rejection of the
/// value it carried, reported as a 401 is (the same throttle), but never
/// replayed, because the app already has part of the answer.
fn late_rejection(
    route: &Arc<Route>,
    conn: &Connection,
    snap: &Snapshot,
    version: Version,
    resp: &mut Response<ProxyBody>,
) {
    let grpc = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if version != Version::HTTP_2 || !grpc {
        return;
    }
    let (route, generation, fingerprint) = (route.clone(), snap.generation, snap.fingerprint);
    let via = audit::Via::of(conn.mode(), conn.original_dst);
    let read = move |trailers: &http::HeaderMap| {
        if trailers.get("grpc-status").map(|v| v.as_bytes()) != Some(b"16") {
            return;
        }
        route
            .stats
            .upstream_rejections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let asked = route.credential.report_rejection(generation);
        audit::rejected_by_upstream(
            route.credential.name(),
            route.name(),
            fingerprint,
            StatusCode::OK.as_u16(),
            asked,
            via,
        );
    };
    crate::transport::body::on_trailers(resp.body_mut(), Box::new(read));
}

/// Notes on an answer to an upgrade handshake the protocol it asked for.
fn marked(mut resp: Response<ProxyBody>, protocol: Option<HeaderValue>) -> Response<ProxyBody> {
    if let Some(p) = protocol {
        resp.extensions_mut().insert(upgrade::Protocol(p));
    }
    resp
}

fn current(route: &Route) -> Result<Arc<Snapshot>, ProxyError> {
    route.credential.current().map_err(|e| match e {
        Unusable::Unavailable => {
            ProxyError::CredentialUnavailable(route.credential.name().to_owned())
        }
        Unusable::Expired => ProxyError::CredentialExpired(route.credential.name().to_owned()),
    })
}

/// The HTTP version that decides whether a plain-`http://` upstream is
/// spoken to over h2c. On a route listener the app chose HTTP/2 in
/// cleartext itself (prior knowledge), so the upstream is expected to speak
/// it. Inside an intercepted tunnel HTTP/2 was agreed with sidekey by ALPN
/// and says nothing of the upstream: only gRPC, which needs HTTP/2 end to
/// end, goes on as HTTP/2 there.
fn upstream_version(conn: &Connection, version: Version, headers: &http::HeaderMap) -> Version {
    let grpc = || {
        headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    };
    match conn.destination.is_none() || grpc() {
        true => version,
        false => Version::HTTP_11,
    }
}

/// A 401 (or 403 with `refresh_on_403`), or, on HTTP/2, a gRPC answer that
/// ends at once with `grpc-status: 16` (UNAUTHENTICATED) in its header block.
fn is_rejection(route: &Route, resp: &Response<ProxyBody>, version: Version) -> bool {
    let status = resp.status();
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && route.config.refresh_on_403)
        || (version == Version::HTTP_2
            && status == StatusCode::OK
            && resp
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"16"))
}

/// A body is kept when its declared size fits the replay limit.
fn keepable(body: &Incoming, limit: u64) -> bool {
    body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= limit)
}

async fn collect(body: Incoming, limit: u64) -> Result<Bytes, ProxyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    Limited::new(body, limit as usize)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ProxyError::BadRequest(format!("cannot read the request body: {e}")))
}

/// Reads a body that must be hashed for signing, refusing one over `limit`.
async fn collect_signed(body: Incoming, limit: u64) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::RequestTooLarge(format!(
            "this route signs the request body, which sidekey holds in memory up to {limit} bytes (max_signed_body); send a smaller body, or use payload = \"unsigned\" where the service accepts it"
        ))
    };
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    match Limited::new(body, limit as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ProxyError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

fn into_body(b: Either<Incoming, Bytes>) -> ProxyBody {
    match b {
        Either::Left(stream) => Streamed::new(stream),
        Either::Right(bytes) if bytes.is_empty() => empty(),
        Either::Right(bytes) => Either::Right(Full::new(bytes)),
    }
}
