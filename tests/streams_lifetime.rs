//! How long stream connections live: a joined WebSocket goes on through the shutdown grace period after SIGTERM and is closed at its end (the real binary, a `websockets` server); an HTTP/2 connection (h2c on a route listener, or h2 inside an intercepted tunnel) with no stream open for the `header_timeout` gets a GOAWAY and is closed, while one whose stream outlasts that timeout is not cut.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::process::Command;
use std::time::Duration;
use support::binary::Running;
use support::streams::{Server, handshake, text_frame};
use support::{BEARER, Reply, Upstream, logs, one_route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// The binary's shutdown grace period (`app::DEFAULT_GRACE`).
const GRACE: Duration = Duration::from_secs(15);

/// Sends a text frame and reads its echo (an unmasked frame back).
async fn echo(ws: &mut tokio::net::TcpStream, text: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    ws.write_all(&text_frame(text)).await?;
    let mut head = [0u8; 2];
    ws.read_exact(&mut head).await?;
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    ws.read_exact(&mut payload).await?;
    Ok(payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_lives_through_the_grace_period_and_is_closed_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let peer_dir = tempfile::tempdir().unwrap();
    let key = logs::secret("ws-shutdown-key-73c1e0");
    std::fs::write(peer_dir.path().join("accept"), &key).unwrap();
    let accept = peer_dir.path().join("accept");
    let server = Server::start(&["ws-server", accept.to_str().unwrap()]).await;
    std::fs::write(dir.path().join("key"), &key).unwrap();
    let cfg = one_route(
        &format!("http://127.0.0.1:{}", server.port),
        BEARER,
        "[log]\nformat = \"text\"",
    );
    let mut sk = Running::start(dir.path(), &cfg);
    let addr = sk.route_addr("r");
    sk.wait_for_line(|l| l.contains("event=\"issued\""));

    let (mut ws, head) = handshake(&addr, "/held", "websocket").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(echo(&mut ws, b"before").await.unwrap(), b"before");

    let term = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &sk.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        echo(&mut ws, b"during the grace period").await.unwrap(),
        b"during the grace period",
        "the WebSocket goes on while the grace period runs"
    );
    // Then nothing more comes, and the socket closes at the grace period's end.
    let mut rest = Vec::new();
    let read =
        tokio::time::timeout(GRACE + Duration::from_secs(5), ws.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "the WebSocket still open {:?} after SIGTERM",
        term.elapsed()
    );
    let closed_after = term.elapsed();
    assert!(
        closed_after >= GRACE - Duration::from_secs(1),
        "closed at the grace period's end, not before: {closed_after:?}"
    );
    let (code, log) = sk.finish();
    assert_eq!(code, 0);
    let all = log.join("\n");
    assert!(
        log.iter().any(|l| l.contains("upgraded connection ended")
            && l.contains("path=\"/held\"")
            && l.contains("shutdown")),
        "the end line says why: {all}"
    );
    logs::assert_no_secret_in("the binary's log", all.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_gets_a_goaway_after_the_header_timeout() {
    let up = Upstream::start(|seen| match seen.target.as_str() {
        "/slow" => Reply::ok("slow").delayed(Duration::from_millis(2500)),
        _ => Reply::ok("fine"),
    })
    .await;
    let key = logs::secret("h2-idle-key-0b94d2");
    let sk = support::with_key(
        &key,
        &one_route(&up.url(), BEARER, "header_timeout = \"1s\""),
    )
    .await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let get = |path: &str| {
        http::Request::builder()
            .uri(format!("http://{addr}{path}"))
            .body(Empty::new())
            .unwrap()
    };
    // A stream open longer than the timeout keeps the connection.
    let resp = sender.send_request(get("/slow")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), b"slow");
    let resp = sender.send_request(get("/fast")).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    // Then, with no stream open, the server says GOAWAY and closes.
    closed_after_the_header_timeout(conn, "the idle HTTP/2 connection").await;
    assert!(sender.is_closed(), "no new stream on a closed connection");
    sk.stop().await;
}

/// Asserts that `conn`, idle from now, ends within 4 s but not before the
/// 1 s header timeout (less a margin): `what` names it.
async fn closed_after_the_header_timeout<T>(conn: tokio::task::JoinHandle<T>, what: &str) {
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(4), conn).await;
    assert!(
        ended.is_ok(),
        "{what} is still open {:?} later",
        idle_from.elapsed()
    );
    assert!(
        idle_from.elapsed() >= Duration::from_millis(800),
        "not closed before the header timeout: {:?}",
        idle_from.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_intercepted_http2_connection_gets_a_goaway_after_the_header_timeout() {
    use support::proxy::{HOST, World, connect, host_route, tls_over};
    let w = World::start("header_timeout = \"1s\"", |up| {
        host_route("r", HOST, up, "")
    })
    .await;
    let ca = w.trust();
    let (status, tunnel) = connect(w.proxy_addr(), &format!("{HOST}:443")).await;
    assert_eq!(status, 200);
    let tls = tls_over(tunnel.unwrap(), HOST, &ca, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("https://{HOST}/v1/h2"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    closed_after_the_header_timeout(conn, "the idle intercepted HTTP/2 connection").await;
    w.sk.stop().await;
}
