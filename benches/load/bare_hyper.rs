//! The load benchmark's floor: a bare hyper proxy that only sets one header.
//!
//! Same stack and shape as sidekey's request path (hyper HTTP/1.1 server, one
//! upstream connection per app connection on `hyper::client::conn::http1`,
//! `current_thread` runtime) with nothing else: no scope check, no credential
//! snapshot, no timeouts, no metrics, no error answers. What it costs per
//! request is what the HTTP stack itself costs; sidekey's figure minus this
//! one is what sidekey adds.
//!
//!     bare_hyper LISTEN_ADDR UPSTREAM_ADDR 'Bearer token'
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_types
)] // the floor contestant: plain std and hyper, nothing of sidekey

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

type Sender = client::SendRequest<Incoming>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, value] = &args[..] else {
        eprintln!("usage: bare_hyper LISTEN_ADDR UPSTREAM_ADDR HEADER_VALUE");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen.parse().expect("listen address");
    let upstream: SocketAddr = upstream.parse().expect("upstream address");
    let value = HeaderValue::from_str(value).expect("header value");
    let host = HeaderValue::from_str(&upstream.to_string()).expect("host");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(serve(listen, upstream, value, host));
}

async fn serve(listen: SocketAddr, upstream: SocketAddr, value: HeaderValue, host: HeaderValue) {
    let listener = TcpListener::bind(listen).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (value, host) = (value.clone(), host.clone());
        let held: Arc<Mutex<Option<Sender>>> = Arc::default();
        let service = service_fn(move |mut req: Request<Incoming>| {
            let (value, host, held) = (value.clone(), host.clone(), held.clone());
            async move {
                req.headers_mut().insert(HOST, host);
                req.headers_mut().insert(AUTHORIZATION, value);
                let taken = held.lock().unwrap().take();
                let mut sender = match taken {
                    Some(mut s) => match s.ready().await {
                        Ok(()) => s,
                        Err(_) => connect(upstream).await?,
                    },
                    None => connect(upstream).await?,
                };
                let resp = sender.send_request(req).await;
                *held.lock().unwrap() = Some(sender);
                resp.map_err(std::io::Error::other)
            }
        });
        tokio::spawn(async move {
            let _ = server::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn connect(upstream: SocketAddr) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = client::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}
