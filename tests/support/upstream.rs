//! A real upstream for tests: a hyper server (plain or TLS) that records every request it receives and answers as told.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sidekey::sync::Mutex;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// What the upstream received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as received.
    pub target: String,
    pub headers: HeaderMap,
    pub version: http::Version,
    /// Bytes of the body (counted while streaming).
    pub body_len: u64,
    /// The body itself when it is small (up to 1 MiB).
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the upstream answers one request.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer with a streamed body of this many bytes instead of `body`.
    pub stream_bytes: Option<u64>,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: body.into(),
            delay: None,
            stream_bytes: None,
            headers: Vec::new(),
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::new(),
            delay: None,
            stream_bytes: None,
            headers: Vec::new(),
        }
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn streamed(mut self, bytes: u64) -> Reply {
        self.stream_bytes = Some(bytes);
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

const KEEP_BODY: u64 = 1 << 20;

impl Upstream {
    /// A plain-HTTP upstream answering with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Upstream {
        Self::start_with(None, Arc::new(handler)).await
    }

    /// A TLS upstream (HTTP/1.1 or HTTP/2 by ALPN) with a certificate from `tls`.
    pub async fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Upstream {
        Self::start_with(Some(tls), Arc::new(handler)).await
    }

    /// An upstream that answers 200 "ok" to everything.
    pub async fn ok() -> Upstream {
        Self::start(|_| Reply::ok("ok")).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let seen2 = seen.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let seen = seen2.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, handler.clone(), seen.clone()));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            seen,
            connections,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// Requests received after the first `start`.
    pub fn seen_from(&self, start: usize) -> Vec<Seen> {
        self.seen
            .lock()
            .get(start..)
            .map(<[Seen]>::to_vec)
            .unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting new connections (existing ones finish).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = http_body_util::Either<Full<Bytes>, Chunks>;

async fn answer(
    req: Request<Incoming>,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Body>, Infallible> {
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if len <= KEEP_BODY {
                kept.extend_from_slice(&data);
            }
        }
    }
    let s = Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        version: parts.version,
        body_len: len,
        body: Bytes::from(kept),
    };
    let reply = handler(&s);
    seen.lock().push(s);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let body = match reply.stream_bytes {
        Some(n) => http_body_util::Either::Right(Chunks::new(n)),
        None => http_body_util::Either::Left(Full::new(reply.body)),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    for (name, value) in &reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    Ok(resp)
}

/// A body of `n` bytes in 64 KiB chunks, generated on the fly (never held whole).
pub struct Chunks {
    left: u64,
    chunk: Bytes,
}

impl Chunks {
    pub fn new(n: u64) -> Self {
        Chunks {
            left: n,
            chunk: Bytes::from(vec![b'x'; 64 * 1024]),
        }
    }
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}
