//! A request body the app frames wrongly (a bad chunk size, fewer bytes than its `Content-Length`) on a streaming route is the app's fault: `400 bad_request`, never `502 upstream_unreachable`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::Duration;
use support::{Upstream, one_route, with_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Above the route's `max_replay_body` (64 KiB by default), so the body streams.
const BIG: usize = 100_000;

/// Sends `head` and `body` on a raw connection, half-closes it, and returns
/// everything sidekey wrote back before closing.
async fn exchange(url: &str, head: String, body: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("sidekey answers and closes within 10 s")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

fn status_and_code(answer: &str) -> (String, Option<String>) {
    let status = answer.lines().next().unwrap_or("").to_owned();
    let code = answer
        .lines()
        .find_map(|l| l.strip_prefix("sidekey-error: "))
        .map(str::to_owned);
    (status, code)
}

#[tokio::test]
async fn bad_chunk_size_is_a_bad_request() {
    let up = Upstream::ok().await;
    let sk = with_key("k_framing_1", &one_route(&up.url(), support::BEARER, "")).await;
    let head = "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_owned();
    let mut body = format!("{BIG:x}\r\n").into_bytes();
    body.extend(std::iter::repeat_n(b'a', BIG));
    body.extend_from_slice(b"\r\nzz\r\n"); // "zz" is not a chunk size
    let answer = exchange(&sk.url("r"), head, &body).await;
    let (status, code) = status_and_code(&answer);
    assert!(status.starts_with("HTTP/1.1 400"), "got {answer:?}");
    assert_eq!(code.as_deref(), Some("bad_request"), "got {answer:?}");
    assert!(
        answer.contains("request body"),
        "the message says what broke: {answer:?}"
    );
    sk.stop().await;
}

#[tokio::test]
async fn body_shorter_than_its_content_length_is_a_bad_request() {
    let up = Upstream::ok().await;
    let sk = with_key("k_framing_2", &one_route(&up.url(), support::BEARER, "")).await;
    // Announces BIG bytes, sends half, then closes its side.
    let head =
        format!("PUT /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: {BIG}\r\n\r\n");
    let answer = exchange(&sk.url("r"), head, &vec![b'b'; BIG / 2]).await;
    let (status, code) = status_and_code(&answer);
    assert!(status.starts_with("HTTP/1.1 400"), "got {answer:?}");
    assert_eq!(code.as_deref(), Some("bad_request"), "got {answer:?}");
    sk.stop().await;
}
