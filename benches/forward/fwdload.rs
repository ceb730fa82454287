//! The forward benchmark's load generator: N kept-alive HTTP/1.1 connections, each optionally
//! through a `CONNECT` tunnel and TLS, requests back to back for a fixed time; prints req/s and
//! latency percentiles. wrk cannot speak CONNECT, so every contestant is driven by this one.
//!
//! ```text
//! fwdload --to 127.0.0.1:PORT [--connect HOST:443] [--tls HOST --ca CA.pem] [--host HOST]
//!         [-c CONNS] [-d SECONDS] [--fresh]
//! ```
//!
//! `--fresh`: every request on a new connection (CONNECT, TLS handshake, one request, close),
//! to measure connection set-up. Output, one line: `requests=N rps=R p50_us=.. p90_us=..
//! p99_us=.. non2xx=N errors=N`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_types
)] // a bench tool: a failed step ends the run

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the first TLS connection's parameters were printed (to stderr).
static SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Opts {
    to: SocketAddr,
    connect: Option<String>,
    tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
    host: String,
    conns: usize,
    secs: f64,
    fresh: bool,
}

#[derive(Default)]
struct Tally {
    lat_us: Vec<u32>,
    non2xx: u64,
    errors: u64,
}

fn main() {
    let opts = Arc::new(parse());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (tally, elapsed) = rt.block_on(run(opts));
    let mut lat = tally.lat_us;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "requests={} rps={:.0} p50_us={} p90_us={} p99_us={} non2xx={} errors={}",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        tally.non2xx,
        tally.errors
    );
}

fn parse() -> Opts {
    let mut args = std::env::args().skip(1);
    let (mut to, mut connect, mut tls_host, mut ca, mut host) = (None, None, None, None, None);
    let (mut conns, mut secs, mut fresh) = (1, 4.0, false);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--to" => to = Some(val().parse().expect("--to ADDR")),
            "--connect" => connect = Some(val()),
            "--tls" => tls_host = Some(val()),
            "--ca" => ca = Some(val()),
            "--host" => host = Some(val()),
            "-c" => conns = val().parse().expect("-c N"),
            "-d" => secs = val().parse().expect("-d SECONDS"),
            "--fresh" => fresh = true,
            _ => panic!("unknown argument {a}"),
        }
    }
    let to: SocketAddr = to.expect("--to ADDR");
    let tls = tls_host.as_ref().map(|h| {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca.as_ref().expect("--tls needs --ca")).expect("read --ca");
        for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(c.expect("a PEM certificate")).expect("a CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every handshake a full one (with `--fresh` too): the contestants differ in resumption.
        cfg.resumption = rustls::client::Resumption::disabled();
        (
            ServerName::try_from(h.clone()).expect("--tls HOST"),
            Arc::new(cfg),
        )
    });
    let host = host
        .or_else(|| tls_host.clone())
        .unwrap_or_else(|| to.to_string());
    Opts {
        to,
        connect,
        tls,
        host,
        conns,
        secs,
        fresh,
    }
}

async fn run(opts: Arc<Opts>) -> (Tally, Duration) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(opts.secs);
    let tasks: Vec<_> = (0..opts.conns)
        .map(|_| tokio::spawn(worker(opts.clone(), end)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("worker");
        all.lat_us.extend(t.lat_us);
        all.non2xx += t.non2xx;
        all.errors += t.errors;
    }
    (all, start.elapsed())
}

/// Requests back to back until `end`: on one kept-alive connection (opened again after an
/// error), or on a new one each time with `--fresh`.
async fn worker(opts: Arc<Opts>, end: Instant) -> Tally {
    let mut t = Tally::default();
    let mut sender = None;
    while Instant::now() < end {
        let t0 = Instant::now();
        if sender.is_none() {
            match open(&opts).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    t.errors += 1;
                    if t.errors == 1 {
                        eprintln!("fwdload: connect: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        match request(s, &opts.host, opts.fresh).await {
            Ok(status) => {
                t.lat_us
                    .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if !(200..400).contains(&status) {
                    t.non2xx += 1;
                }
                if opts.fresh {
                    sender = None;
                }
            }
            Err(e) => {
                t.errors += 1;
                if t.errors == 1 {
                    eprintln!("fwdload: request: {e}");
                }
                sender = None;
            }
        }
    }
    t
}

async fn request(
    s: &mut http1::SendRequest<Empty<Bytes>>,
    host: &str,
    close: bool,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    s.ready().await?;
    let mut req = Request::get("/").header(http::header::HOST, host);
    if close {
        req = req.header(http::header::CONNECTION, "close");
    }
    let resp = s.send_request(req.body(Empty::new())?).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// TCP, then `CONNECT` (when asked), then TLS (when asked), then an HTTP/1.1 client connection.
async fn open(
    opts: &Opts,
) -> Result<http1::SendRequest<Empty<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let mut tcp = TcpStream::connect(opts.to).await?;
    tcp.set_nodelay(true)?;
    if let Some(target) = &opts.connect {
        tcp.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await?;
        // Read the answer's head byte by byte: nothing of the tunnel may be consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let b = tcp.read_u8().await?;
            head.push(b);
            if head.len() > 8192 {
                return Err("CONNECT answer too long".into());
            }
        }
        if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
            return Err(format!("CONNECT refused: {}", String::from_utf8_lossy(&head)).into());
        }
    }
    let io: Box<dyn Io> = match &opts.tls {
        Some((name, cfg)) => {
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name.clone(), tcp)
                .await?;
            if !SHOWN.swap(true, std::sync::atomic::Ordering::Relaxed) {
                let (_, c) = tls.get_ref();
                let none = || "none".to_owned();
                eprintln!(
                    "fwdload: {}, {}, key exchange {}",
                    c.protocol_version().map_or_else(none, |v| format!("{v:?}")),
                    c.negotiated_cipher_suite()
                        .map_or_else(none, |s| format!("{:?}", s.suite())),
                    c.negotiated_key_exchange_group()
                        .map_or_else(none, |g| format!("{:?}", g.name()))
                );
            }
            Box::new(tls)
        }
        None => Box::new(tcp),
    };
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender)
}
