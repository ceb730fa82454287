//! Shared set-up for the criterion benches: a real loopback upstream and an in-process sidekey in front of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sidekey::app::App;
use sidekey::config::ListenAddr;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The credential value the benches inject, and the header the upstream expects.
pub const TOKEN: &str = "bench-token-0123456789abcdef";
pub const EXPECTED: &str = "Bearer bench-token-0123456789abcdef";

/// A tokio runtime like the binary's, with two workers.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A loopback HTTP/1.1 upstream: 200 when `Authorization` is [`EXPECTED`], else 401.
pub async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let ok = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .is_some_and(|v| v == EXPECTED);
                    let status = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    };
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                    *resp.status_mut() = status;
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// A sidekey started in-process in front of `upstream`, with a file credential.
/// `allow` is TOML appended to the route (e.g. `[[routes.allow]]` tables).
pub struct Running {
    pub app: App,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

pub async fn sidekey(upstream: SocketAddr, allow: &str) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), TOKEN).expect("token file");
    let text = format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[credentials.bench]
source = "file"
path = "token"

[[routes]]
name = "bench"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
credential = "bench"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
{allow}
"#
    );
    let path = dir.path().join("sidekey.toml");
    std::fs::write(&path, &text).expect("config file");
    let config = sidekey::config::load(&path).unwrap_or_else(|e| panic!("bench config: {e}"));
    let app = App::start(config).await.expect("sidekey starts");
    let cred = app.credential("bench").expect("credential");
    for _ in 0..500 {
        if cred.current().is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(cred.current().is_ok(), "the file credential never loaded");
    let addr = match app.route_addr("bench").expect("route") {
        ListenAddr::Tcp(a) => a,
        ListenAddr::Unix(_) => unreachable!("the bench route listens on TCP"),
    };
    Running {
        app,
        addr,
        _dir: dir,
    }
}

/// One keep-alive HTTP/1.1 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// Sends `GET path` (with `Authorization: auth` if given) and reads the whole answer; returns its status.
pub async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
    auth: Option<&str>,
) -> StatusCode {
    sender.ready().await.expect("connection ready");
    let mut req = Request::get(path).header(http::header::HOST, "localhost");
    if let Some(a) = auth {
        req = req.header(http::header::AUTHORIZATION, a);
    }
    let req = req.body(Empty::new()).expect("request");
    let resp = sender.send_request(req).await.expect("answer");
    let status = resp.status();
    resp.into_body().collect().await.expect("body");
    status
}

/// The headers a typical app request carries, for benches of what sidekey does to them.
pub fn app_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (n, v) in [
        ("host", "127.0.0.1:8081"),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ] {
        h.insert(n, http::HeaderValue::from_static(v));
    }
    h
}
