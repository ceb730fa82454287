//! The body type that flows through the proxy: a peer's stream, or bytes sidekey holds.

use super::direct::Lease;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
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
}

impl Streamed {
    pub fn new(body: Incoming) -> ProxyBody {
        Either::Left(Streamed { body, lease: None })
    }

    pub fn leased(body: Incoming, lease: Lease) -> ProxyBody {
        Either::Left(Streamed {
            body,
            lease: Some(lease),
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
        polled.map(|f| f.map(|r| r.map_err(ReadError)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
