//! The request path: scope check, credential snapshot, injection, forwarding, rejection handling and replay.

use super::error::ProxyError;
use super::limits::body_within;
use super::route::{Route, Target};
use super::router::Connection;
use super::send::{Outgoing, send};
use super::{browser, headers, path};
use crate::audit;
use crate::credential::{Snapshot, Unusable};
use crate::inject::BodyNeed;
use crate::transport::body::{ProxyBody, Streamed, empty};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Incoming};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::time::Instant;

/// What the access log says about one request.
pub struct Outcome {
    pub path: String,
    pub fingerprint: Option<crate::secret::Fingerprint>,
    pub replayed: bool,
}

/// Serves one request from the app. Never fails: errors become answers here.
pub async fn serve(
    route: Arc<Route>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let method = req.method().clone();
    let mut outcome = Outcome {
        // Only the access log reads it: no copy when it is off.
        path: match route.access_log {
            true => req.uri().path().to_owned(),
            false => String::new(),
        },
        fingerprint: None,
        replayed: false,
    };
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let mut resp = match forward(&route, &conn, req, &mut outcome).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(route.name()),
    };
    browser::filter_response(&route.config, origin.as_ref(), resp.headers_mut());
    route.stats.count_status(resp.status().as_u16());
    if route.access_log {
        tracing::info!(
            target: "sidekey::access",
            route = route.name(),
            mode = conn.mode(),
            original_dst = conn.original_dst.map(tracing::field::display),
            method = method.as_str(),
            path = outcome.path.as_str(),
            status = resp.status().as_u16(),
            // Integer microseconds: formatting a float cost 1.7k instructions a line.
            duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            credential = route.credential.name(),
            fingerprint = outcome.fingerprint.as_ref().map(|f| f.as_str()),
            replayed = outcome.replayed,
            error = resp.headers().get("sidekey-error").and_then(|v| v.to_str().ok()),
        );
    }
    resp
}

async fn forward(
    route: &Route,
    conn: &Connection,
    req: Request<Incoming>,
    outcome: &mut Outcome,
) -> Result<Response<ProxyBody>, ProxyError> {
    let cfg = &route.config;
    let (mut parts, body) = req.into_parts();

    let size = headers::size(&parts.headers);
    if size > cfg.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge {
            size,
            limit: cfg.max_header_bytes,
        });
    }
    if let Err(why) = route.caller.admit(conn, &mut parts.headers) {
        audit::caller_refused(route.name(), &why, conn.peer);
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
    headers::strip_hop_by_hop(&mut h);
    if let Target::Remote { host, .. } = &route.target {
        h.insert(http::header::HOST, host.clone());
    }
    let unchanged = match parts.uri.path() == norm.path {
        true => parts.uri.path_and_query().cloned(),
        false => None,
    };
    let mut out = Outgoing {
        method: parts.method,
        path: norm.path,
        query: parts.uri.query().map(str::to_owned),
        unchanged,
        headers: h,
        body_sha256: None,
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
    let first = send(
        route,
        &mut out,
        &snap,
        &snap.rendered[route.slot],
        into_body(body),
    )
    .await?;

    if !is_rejection(route, first.status()) {
        route.credential.record_use();
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
    match is_rejection(route, second.status()) {
        // The fresh value is rejected too: the throttle backs off.
        true => _ = route.credential.report_rejection(newer.generation),
        false => route.credential.record_use(),
    }
    Ok(second)
}

fn current(route: &Route) -> Result<Arc<Snapshot>, ProxyError> {
    route.credential.current().map_err(|e| match e {
        Unusable::Unavailable => {
            ProxyError::CredentialUnavailable(route.credential.name().to_owned())
        }
        Unusable::Expired => ProxyError::CredentialExpired(route.credential.name().to_owned()),
    })
}

fn is_rejection(route: &Route, status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && route.config.refresh_on_403)
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
