//! The body type that flows through the proxy: a peer's stream, or bytes sidekey holds.

use super::direct::Lease;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A streamed body from a peer, or a body sidekey has in memory (an error
/// answer, a request kept for replay).
pub type ProxyBody = Either<Streamed, Full<Bytes>>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Either::Right(Full::new(bytes.into()))
}

pub fn empty() -> ProxyBody {
    Either::Right(Full::new(Bytes::new()))
}

/// A peer's body, passed through untouched. An upstream answer also holds
/// the connection it came on, which goes back to its idle list as soon as
/// the body has ended (or is dropped).
pub struct Streamed {
    body: Incoming,
    lease: Option<Lease>,
    /// Told of the bytes and the end of a long stream (HTTP/2, SSE).
    watch: Option<Arc<dyn Watch>>,
    /// Shown the trailers, if any come (a gRPC status sent after messages).
    on_trailers: Option<OnTrailers>,
}

/// Reads an answer's trailers as they pass.
pub type OnTrailers = Box<dyn FnOnce(&http::HeaderMap) + Send + Sync>;

/// Has `f` read `body`'s trailers when they pass, if it is a streamed one.
pub fn on_trailers(body: &mut ProxyBody, f: OnTrailers) {
    if let Either::Left(s) = body {
        s.on_trailers = Some(f);
    }
}

/// Follows a streamed body for the access log of long streams.
pub trait Watch: Send + Sync {
    /// `n` bytes of data passed.
    fn data(&self, n: usize);
    /// The body ended: whole (`true`), or cut short by an error or a drop.
    fn ended(&self, whole: bool);
}

/// Has `watch` follow `body`, if it is a streamed one.
pub fn watch(body: &mut ProxyBody, watch: Arc<dyn Watch>) {
    if let Either::Left(s) = body {
        s.watch = Some(watch);
    }
}

impl Streamed {
    pub fn new(body: Incoming) -> ProxyBody {
        Either::Left(Streamed {
            body,
            lease: None,
            watch: None,
            on_trailers: None,
        })
    }

    pub fn leased(body: Incoming, lease: Lease) -> ProxyBody {
        Either::Left(Streamed {
            body,
            lease: Some(lease),
            watch: None,
            on_trailers: None,
        })
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.body.is_end_stream() {
            this.lease = None; // the connection is free: back to the idle list
        }
        if let (Poll::Ready(Some(Ok(f))), true) = (&polled, this.on_trailers.is_some()) {
            if let Some(trailers) = f.trailers_ref() {
                if let Some(read) = this.on_trailers.take() {
                    read(trailers);
                }
            }
        }
        if let Some(w) = &this.watch {
            let ended = match &polled {
                Poll::Ready(Some(Ok(f))) => {
                    w.data(f.data_ref().map_or(0, Bytes::len));
                    this.body.is_end_stream().then_some(true)
                }
                Poll::Ready(Some(Err(_))) => Some(false),
                Poll::Ready(None) => Some(true),
                Poll::Pending => None,
            };
            if let (Some(whole), Some(w)) = (ended, ended.and_then(|_| this.watch.take())) {
                w.ended(whole);
            }
        }
        polled.map(|f| f.map(|r| r.map_err(ReadError)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.ended(false); // dropped before its end: cancelled
        }
    }
}

/// A streamed body could not be read from its peer (bad chunk framing, a
/// body shorter than its `Content-Length`, a dropped connection). Marked so
/// a failed upstream send can tell "the app's body broke" from "the upstream
/// broke": see [`is_read_error`].
#[derive(Debug)]
pub struct ReadError(hyper::Error);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the body failed: {}", self.0)
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether `e`, or an error it was caused by, is a [`ReadError`].
pub fn is_read_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<ReadError>() {
            return true;
        }
        next = err.source();
    }
    false
}
