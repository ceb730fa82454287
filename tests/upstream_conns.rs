//! Upstream connections for plain-HTTP routes: reused across requests and app connections, never shared while busy, replaced when the upstream closes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::Duration;
use support::{BEARER, Reply, Upstream, client, get, get_with, one_route, with_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn requests_one_after_another_share_one_upstream_connection() {
    let up = Upstream::ok().await;
    let sk = with_key("k-1", &one_route(&up.url(), BEARER, "")).await;
    let app = client(); // one keep-alive connection, requests one after another
    for _ in 0..30 {
        let (status, body) = get_with(&app, &sk.url("r")).await;
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"ok");
    }
    assert_eq!(up.count(), 30);
    assert_eq!(
        up.connections(),
        1,
        "every request went over one upstream connection"
    );
    assert!(
        up.seen()
            .iter()
            .all(|s| s.header("authorization") == Some("Bearer k-1"))
    );
    sk.stop().await;
}

#[tokio::test]
async fn upstream_connections_outlive_the_app_connection_that_opened_them() {
    let up = Upstream::ok().await;
    let sk = with_key("k-1", &one_route(&up.url(), BEARER, "")).await;
    for _ in 0..10 {
        // A new app connection each time (a new client), closed after it.
        let (status, _, _) = get(&sk.url("r")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(up.count(), 10);
    assert_eq!(
        up.connections(),
        1,
        "the idle upstream connection is reused by each new app connection"
    );
    sk.stop().await;
}

#[tokio::test]
async fn a_busy_upstream_connection_is_not_shared() {
    let up = Upstream::start(|seen| match seen.target.as_str() {
        "/slow" => Reply::ok("slow").delayed(Duration::from_millis(1500)),
        _ => Reply::ok("fast"),
    })
    .await;
    let sk = with_key("k-1", &one_route(&up.url(), BEARER, "")).await;
    // Warm one upstream connection, then hold it with a slow answer.
    assert_eq!(get(&sk.url("r")).await.0, 200);
    let slow_url = format!("{}/slow", sk.url("r"));
    let slow = tokio::spawn(async move { get(&slow_url).await });
    while up.count() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _, body) = get(&sk.url("r")).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"fast"[..]));
    assert!(
        !slow.is_finished(),
        "the fast request went on its own connection, not behind the slow one"
    );
    assert_eq!(up.connections(), 2);
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status.as_u16(), &body[..]), (200, &b"slow"[..]));
    sk.stop().await;
}

/// An upstream with a short keep-alive: it answers each request on a
/// connection, then closes the connection once idle for `idle`, without
/// saying so in the answer (as nginx's `keepalive_timeout` does).
async fn short_keepalive_upstream(idle: Duration) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match tokio::time::timeout(idle, s.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return, // idle too long, or closed: drop the connection
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_replaced_without_an_error() {
    let (url, upstream) = short_keepalive_upstream(Duration::from_millis(100)).await;
    let sk = with_key("k-1", &one_route(&url, BEARER, "")).await;
    let app = client();
    for i in 0..8 {
        let (status, body) = get_with(&app, &sk.url("r")).await;
        assert_eq!(
            status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(&body[..], b"ok");
        // Longer than the upstream's keep-alive: the held connection is gone.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    upstream.abort();
    sk.stop().await;
}
