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
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.body.is_end_stream() {
            this.lease = None; // the connection is free: back to the idle list
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
