//! Bodies stream both ways: a 128 MiB upload and download pass through sidekey without its memory growing with them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::upstream::Chunks;
use support::{Reply, Upstream, one_route, with_key};

const SIZE: u64 = 128 << 20;
/// Memory sidekey (plus this test's client and upstream) may add while moving `SIZE` bytes.
const SLACK: u64 = 48 << 20;

/// Peak resident set of this process, in bytes (sidekey runs in-process).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_download_stream_with_bounded_memory() {
    let up = Upstream::start(|s| {
        if s.method == "GET" {
            Reply::ok("").streamed(SIZE)
        } else {
            Reply::ok("stored")
        }
    })
    .await;
    let sk = with_key(
        "k_streaming_77",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let before = peak_rss();

    // Upload: a generated body with a declared length far over the replay limit.
    let client: Client<_, Chunks> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::put(format!("{}/upload", sk.url("r")))
        .body(Chunks::new(SIZE))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.seen();
    assert_eq!(seen[0].body_len, SIZE, "the upstream received every byte");
    assert_eq!(seen[0].header("x-key"), Some("k_streaming_77"));

    // Download: the upstream streams SIZE bytes; count them frame by frame.
    let client: Client<_, http_body_util::Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .request(
            http::Request::get(format!("{}/download", sk.url("r")))
                .body(Default::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got += data.len() as u64;
        }
    }
    assert_eq!(got, SIZE);

    let grew = peak_rss().saturating_sub(before);
    assert!(
        grew < SLACK,
        "peak memory grew by {} MiB while streaming {} MiB",
        grew >> 20,
        SIZE >> 20
    );
    sk.stop().await;
}

#[tokio::test]
async fn chunked_upload_without_length_streams_too() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "k_chunked_88",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    // A raw chunked request: no Content-Length, so nothing can be kept for replay.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b'y'; 100_000];
    for _ in 0..20 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert_eq!(up.seen()[0].body_len, 2_000_000);
    sk.stop().await;
}
