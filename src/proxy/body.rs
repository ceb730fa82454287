//! The body type that flows through the proxy: the peer's stream untouched, or bytes sidekey holds.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// A streamed body from a peer, or a body sidekey has in memory (an error
/// answer, a request kept for replay).
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Either::Right(Full::new(bytes.into()))
}

pub fn empty() -> ProxyBody {
    Either::Right(Full::new(Bytes::new()))
}
