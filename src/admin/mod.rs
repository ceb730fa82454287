//! The admin API on its own listener: health, readiness, metrics, the credential inventory, refresh and revoke, and the inventory as a page (`GET /`).
//!
//! Besides DESIGN.md's endpoints, `GET /v1/config/status` says which config
//! file runs and whether the last reload was refused (`reload_ok`,
//! `reload_error` with file, line and column) — a refused reload keeps the
//! running config.

mod access;
pub mod client;
mod inventory;
mod metrics;
mod page;
mod state;

use crate::proxy::accept::Backoff;
use crate::proxy::limits::ConnLimit;
use crate::proxy::listener::Bound;
use crate::transport::body::{ProxyBody, full};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

pub use inventory::Record;
pub use state::{ReloadStats, Shared};

/// Serves the admin API until `stop` turns true.
pub async fn serve(bound: Bound, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let conns = shared.config.load().admin.conns;
    let limit = ConnLimit::new(
        None,
        conns.max_connections,
        shared.admin_connections.clone(),
    );
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(conns.header_timeout);
    let mut backoff = Backoff::default();
    loop {
        let shared = shared.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
        });
        tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => return,
            accepted = accept(&bound) => match (accepted, limit.admit()) {
                (Ok(Accepted::Tcp(s)), Some(a)) => { backoff.reset(); let c = builder.serve_connection(TokioIo::new(s), service); tokio::spawn(async move { let _a = a; c.await }); }
                (Ok(Accepted::Unix(s)), Some(a)) => { backoff.reset(); let c = builder.serve_connection(TokioIo::new(s), service); tokio::spawn(async move { let _a = a; c.await }); }
                (Ok(Accepted::Tcp(s)), None) => limit.refuse(s),
                (Ok(Accepted::Unix(s)), None) => limit.refuse(s),
                (Err(e), _) => backoff.failed("admin", &e).await,
            },
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(bound: &Bound) -> std::io::Result<Accepted> {
    match bound {
        Bound::Tcp(l) => Ok(Accepted::Tcp(l.accept().await?.0)),
        Bound::Unix(l, _) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<ProxyBody> {
    if let Some(refused) = access::refused(shared, &req) {
        return refused;
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, [] | ["index.html" | "app.js" | "style.css"]) => {
            match page::asset(segs.first().copied().unwrap_or("")) {
                Some(resp) => resp,
                None => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
            }
        }
        (Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (Method::GET, ["readyz"]) => readyz(shared),
        (Method::GET, ["metrics"]) => metrics::render(shared),
        (Method::GET, ["v1", "config", "status"]) => json(StatusCode::OK, &config_status(shared)),
        (Method::GET, ["v1", "credentials"]) => json(StatusCode::OK, &inventory::all(shared)),
        (Method::GET, ["v1", "credentials", name]) => match inventory::one(shared, name) {
            Some(r) => json(StatusCode::OK, &r),
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no credential named `{name}`"),
            ),
        },
        (Method::POST, ["v1", "credentials", name, action @ ("refresh" | "revoke")]) => {
            inventory::act(shared, name, action).await
        }
        (_, ["healthz" | "readyz" | "metrics"])
        | (_, ["v1", "credentials", ..])
        | (_, ["v1", "config", "status"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint"),
    }
}

fn readyz(shared: &Shared) -> Response<ProxyBody> {
    let reg = shared.table.load();
    let not_ready: Vec<serde_json::Value> = reg
        .credentials
        .values()
        .filter(|c| c.current().is_err())
        .map(|c| serde_json::json!({ "name": c.name(), "state": c.state(), "last_error": c.status().last_error }))
        .collect();
    if not_ready.is_empty() {
        text(StatusCode::OK, "ready\n")
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "not_ready": not_ready }),
        )
    }
}

/// `GET /v1/config/status`: the file running, and whether the last reload was refused and why.
fn config_status(shared: &Shared) -> serde_json::Value {
    let stats = shared.reload_stats.lock().clone();
    let error = shared.reload_error.lock().clone();
    let at = |t: Option<std::time::SystemTime>| t.map(inventory::rfc3339);
    serde_json::json!({
        "path": shared.config.load().path.display().to_string(),
        "reload_ok": error.is_none(),
        "reload_error": error,
        "reload_attempts": stats.attempts,
        "reloads_applied": stats.applied,
        "last_attempt_at": at(stats.last_attempt_at),
        "last_applied_at": at(stats.last_applied_at),
    })
}

pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<ProxyBody> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn error(status: StatusCode, code: &'static str, message: &str) -> Response<ProxyBody> {
    crate::error_body::response(status, code, message, None)
}
