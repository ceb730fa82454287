//! Failures become clear answers: upstream down, upstream hanging, credential missing, oversized headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use std::time::Duration;
use support::{Reply, Sidekey, Upstream, error_code, get, one_route, send, with_key};

#[tokio::test]
async fn upstream_down_is_502() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sk = with_key(
        "k_down_1234",
        &one_route(&format!("http://{dead}"), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let (status, headers, body) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 502);
    assert_eq!(headers["sidekey-error"], "upstream_unreachable");
    assert_eq!(error_code(&body), "upstream_unreachable");
    sk.stop().await;
}

#[tokio::test]
async fn upstream_hanging_is_504() {
    let up = Upstream::start(|_| Reply::ok("late").delayed(Duration::from_secs(5))).await;
    let sk = with_key(
        "k_hang_5678",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, "timeout = \"300ms\""),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, headers, body) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 504);
    assert_eq!(headers["sidekey-error"], "upstream_timeout");
    assert!(String::from_utf8_lossy(&body).contains("300ms"));
    assert!(started.elapsed() < Duration::from_secs(4));
    sk.stop().await;
}

#[tokio::test]
async fn upstream_resetting_is_502() {
    // Accepts, reads a little, then closes without answering.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    let sk = with_key(
        "k_reset_9999",
        &one_route(&format!("http://{addr}"), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let (status, headers, _) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 502);
    assert_eq!(headers["sidekey-error"], "upstream_unreachable");
    sk.stop().await;
}

#[tokio::test]
async fn missing_credential_file_is_not_ready_then_ready_when_it_appears() {
    let up = Upstream::ok().await;
    let sk = Sidekey::start(&one_route(&up.url(), r#"{ header = "X-Key" }"#, "")).await;
    let (status, _, body) = get(&format!("{}/readyz", sk.admin())).await;
    assert_eq!(status, 503);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["not_ready"][0]["name"], "k");
    let (status, headers, body) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 503);
    assert_eq!(headers["sidekey-error"], "credential_unavailable");
    assert_eq!(error_code(&body), "credential_unavailable");
    assert_eq!(up.count(), 0);

    support::write_atomic(&sk.path("key"), "k_appeared_4242\n");
    sk.wait_ready(5).await;
    let (status, _, _) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].header("x-key"), Some("k_appeared_4242"));
    sk.stop().await;
}

#[tokio::test]
async fn empty_file_keeps_the_last_good_value() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "k_good_value_1",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    std::fs::write(sk.path("key"), "  \n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].header("x-key"), Some("k_good_value_1"));
    let (_, _, body) = get(&format!("{}/v1/credentials/k", sk.admin())).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["state"], "stale");
    assert!(
        v["last_error"].as_str().unwrap().contains("is empty"),
        "{v}"
    );
    sk.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "k_big_hdrs_1",
        &one_route(
            &up.url(),
            r#"{ header = "X-Key" }"#,
            "max_header_bytes = 4096",
        ),
    )
    .await;
    let big = "a".repeat(6000);
    let (status, headers, body) = send(
        Method::GET,
        &format!("{}/x", sk.url("r")),
        &[("x-big", &big)],
        "",
    )
    .await;
    assert_eq!(status, 431);
    assert_eq!(headers["sidekey-error"], "headers_too_large");
    assert_eq!(error_code(&body), "headers_too_large");
    assert_eq!(up.count(), 0);
    sk.stop().await;
}

#[tokio::test]
async fn malformed_request_gets_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::ok().await;
    let sk = with_key(
        "k_malformed_1",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /a%zz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("sidekey-error: bad_request"), "{text}");
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let n = s.read(&mut buf).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(up.count(), 0);
    sk.stop().await;
}
