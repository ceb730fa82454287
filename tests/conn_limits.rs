//! Held connections cannot take sidekey down: a route past `max_connections` refuses with `503 too_many_connections` while other routes and the admin API answer, silent and idle kept-alive connections are closed after `header_timeout`, and a body that stops arriving gets `408 request_timeout` after `body_timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::{Duration, Instant};
use support::{BEARER, Upstream, get, route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(upstream: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"
header_timeout = "1s"

[credentials.k]
source = "file"
path = "{{dir}}/key"
{}{}"#,
        route(
            "held",
            upstream,
            "k",
            BEARER,
            "max_connections = 2\nheader_timeout = \"20s\""
        ),
        route("free", upstream, "k", BEARER, ""),
    ) + &route(
        "brisk",
        upstream,
        "k",
        BEARER,
        "header_timeout = \"1s\"\nbody_timeout = \"1s\"",
    )
}

async fn start(upstream: &str) -> support::Sidekey {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k_limits_1\n").unwrap();
    let sk = support::Sidekey::start_in(dir, &config(upstream)).await;
    sk.wait_ready(5).await;
    sk
}

#[tokio::test]
async fn a_full_route_refuses_while_others_answer() {
    let up = Upstream::ok().await;
    let sk = start(&up.url()).await;
    let held = sk.url("held").trim_start_matches("http://").to_owned();
    let _silent: Vec<TcpStream> = vec![
        TcpStream::connect(&held).await.unwrap(),
        TcpStream::connect(&held).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&held).await.unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), third.read_to_end(&mut got))
        .await
        .expect("refused at once")
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503"), "got {got:?}");
    assert!(
        got.contains("sidekey-error: too_many_connections"),
        "got {got:?}"
    );
    assert!(got.contains("connection: close"), "got {got:?}");

    let (status, _, _) = get(&format!("{}/x", sk.url("free"))).await;
    assert_eq!(status, 200, "another route still answers");
    let (status, _, _) = get(&format!("{}/healthz", sk.admin())).await;
    assert_eq!(status, 200);
    let (_, _, metrics) = get(&format!("{}/metrics", sk.admin())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("sidekey_connections_refused_total{route=\"held\"} 1"),
        "{metrics}"
    );
    sk.stop().await;
}

#[tokio::test]
async fn a_silent_admin_connection_is_closed_after_its_header_timeout() {
    let up = Upstream::ok().await;
    let sk = start(&up.url()).await;
    let admin = sk.admin().trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&admin).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap(); // never finished
    let started = Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut got))
        .await
        .expect("the admin listener closes a slow header within its header_timeout")
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(900));
    sk.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_reaches_nothing() {
    let up = Upstream::ok().await;
    let sk = start(&up.url()).await;
    let brisk = sk.url("brisk").trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&brisk).await.unwrap();
    // A body small enough to be kept for replay, so sidekey reads it whole: 10 of 100 bytes sent.
    slow.write_all(
        b"POST /v1/upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut got))
        .await
        .expect("answered within body_timeout and closed")
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "got {got:?}");
    assert!(
        got.contains("sidekey-error: request_timeout"),
        "got {got:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(up.count(), 0, "a partial body is never forwarded");
    sk.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_route_connection_is_closed_after_its_header_timeout() {
    let up = Upstream::ok().await;
    let sk = start(&up.url()).await;
    let brisk = sk.url("brisk").trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&brisk).await.unwrap();
    conn.write_all(b"GET /v1/a HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 200"), "got {first:?}");
    assert_eq!(up.count(), 1);
    // Then nothing: the server closes the idle connection (read returns 0).
    let idle = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed within its header_timeout")
        .ok();
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "not closed before the timeout"
    );

    // A silent route connection (no request at all) is closed the same way.
    let mut silent = TcpStream::connect(&brisk).await.unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest))
        .await
        .expect("a silent connection is closed within its header_timeout")
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(900));
    sk.stop().await;
}
