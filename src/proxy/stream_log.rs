//! Long streams (HTTP/2 requests such as gRPC calls, server-sent events): bytes each way, and a line in the access log with their duration and how they ended, written when the answer's body ends or is dropped.

use super::route::Route;
use crate::transport::body::{self, ProxyBody, Watch};
use http::{Method, Response};
use hyper::body::Body;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use tokio::time::Instant;

/// Bytes of the app's request body, counted as they pass.
#[derive(Default)]
pub struct Up(AtomicU64);

impl Up {
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Relaxed);
    }
}

impl Watch for Up {
    fn data(&self, n: usize) {
        self.add(n);
    }
    fn ended(&self, _whole: bool) {}
}

/// Whether an answer is a long stream: an HTTP/2 exchange, or a body of
/// unknown length sent as `text/event-stream`.
pub fn is_stream(up: Option<&Arc<Up>>, resp: &Response<ProxyBody>) -> bool {
    up.is_some()
        || (!resp.body().is_end_stream()
            && resp.body().size_hint().exact().is_none()
            && resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")))
}

/// Follows the answer's body; the line is written when it ends.
pub fn follow(
    route: &Arc<Route>,
    method: Method,
    path: String,
    started: Instant,
    up: Option<Arc<Up>>,
    resp: &mut Response<ProxyBody>,
) {
    if !matches!(resp.body(), http_body_util::Either::Left(_)) {
        return; // an answer sidekey made itself: no stream
    }
    let tally = Tally {
        route: route.clone(),
        method,
        path,
        status: resp.status().as_u16(),
        started,
        up: up.unwrap_or_default(),
        down: AtomicU64::new(0),
        end: AtomicU8::new(CUT),
    };
    body::watch(resp.body_mut(), Arc::new(tally));
}

const WHOLE: u8 = 1;
const CUT: u8 = 2;

struct Tally {
    route: Arc<Route>,
    method: Method,
    path: String,
    status: u16,
    started: Instant,
    up: Arc<Up>,
    down: AtomicU64,
    end: AtomicU8,
}

impl Watch for Tally {
    fn data(&self, n: usize) {
        self.down.fetch_add(n as u64, Relaxed);
    }
    fn ended(&self, whole: bool) {
        self.end.store(if whole { WHOLE } else { CUT }, Relaxed);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let (up, down) = (self.up.0.load(Relaxed), self.down.load(Relaxed));
        let whole = self.end.load(Relaxed) == WHOLE;
        let s = &self.route.stats.streams;
        s.streams_ended.fetch_add(1, Relaxed);
        if !whole {
            s.streams_cut.fetch_add(1, Relaxed);
        }
        s.bytes_up.fetch_add(up, Relaxed);
        s.bytes_down.fetch_add(down, Relaxed);
        if self.route.access_log {
            tracing::info!(
                target: "sidekey::access",
                route = self.route.name(),
                method = self.method.as_str(),
                path = self.path.as_str(),
                status = self.status,
                duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                bytes_up = up,
                bytes_down = down,
                end = if whole { "complete" } else { "cut_short" },
                "stream ended"
            );
        }
    }
}
