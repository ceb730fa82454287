//! Idle HTTP/2 connections: the streams open on a connection are counted, and one with none open for the listener's `header_timeout` gets a GOAWAY and closes, as an HTTP/1.1 keep-alive connection left idle does.

use crate::transport::body::ProxyBody;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::{Service, service_fn};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The streams of one HTTP/2 connection.
pub struct Streams {
    open: AtomicUsize,
    /// Milliseconds from `born` to the end of the last stream.
    last: AtomicU64,
    born: Instant,
}

impl Streams {
    pub fn new() -> Arc<Streams> {
        Arc::new(Streams {
            open: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    fn open(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, SeqCst);
        Open(self.clone())
    }

    fn quiet_since(&self) -> Instant {
        self.born + Duration::from_millis(self.last.load(SeqCst))
    }

    /// Resolves once no stream has been open for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = match self.open.load(SeqCst) {
                0 => self.quiet_since(),
                _ => Instant::now(),
            };
            tokio::time::sleep_until(since + timeout).await;
            if self.open.load(SeqCst) == 0 && Instant::now() >= self.quiet_since() + timeout {
                return;
            }
        }
    }
}

/// One open stream; it ends when its answer's body is done or dropped.
struct Open(Arc<Streams>);

impl Drop for Open {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last.store(ms, SeqCst);
        self.0.open.fetch_sub(1, SeqCst);
    }
}

/// An answer's body that holds its stream open until it is done.
pub struct Counted {
    body: ProxyBody,
    _open: Open,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// `service`, counting each request as an open stream of `streams`.
pub fn count<S>(
    service: S,
    streams: Arc<Streams>,
) -> impl Service<
    Request<Incoming>,
    Response = Response<Counted>,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static
where
    S: Service<Request<Incoming>, Response = Response<ProxyBody>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    service_fn(move |req: Request<Incoming>| {
        let open = streams.open();
        let answer = service.call(req);
        async move {
            let resp = answer.await?;
            Ok::<_, Infallible>(resp.map(|body| Counted { body, _open: open }))
        }
    })
}

/// Drives a connection until it ends: a GOAWAY (`shutdown`) when `stop`
/// turns true, or when `idle` says no stream was open for its timeout.
pub async fn drive<F, E>(
    mut conn: Pin<&mut F>,
    shutdown: impl Fn(Pin<&mut F>),
    stop: &mut tokio::sync::watch::Receiver<bool>,
    idle: Option<(&Streams, Duration)>,
) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = crate::shutdown::stopped(stop), if !closing => {
                closing = true;
                shutdown(conn.as_mut());
            }
            _ = idle_of(idle), if !closing => {
                closing = true;
                tracing::debug!("HTTP/2 connection idle past the header timeout: GOAWAY");
                shutdown(conn.as_mut());
            }
        }
    }
}

async fn idle_of(idle: Option<(&Streams, Duration)>) {
    match idle {
        Some((streams, timeout)) => streams.idle_for(timeout).await,
        None => std::future::pending().await,
    }
}
