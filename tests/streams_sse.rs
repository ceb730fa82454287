//! Server-sent events through sidekey: an upstream sends 100 events 10 ms apart, and each reaches the app as it is sent (over HTTP/1.1, and over HTTP/2 with prior knowledge end to end); the added latency per event is measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sidekey::sync::Mutex;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use support::{BEARER, logs, one_route, with_key};
use tokio::sync::mpsc;
use tokio::time::Instant;

const EVENTS: usize = 100;

/// A body fed event by event from a channel.
struct Events(mpsc::Receiver<Bytes>);

impl Body for Events {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// An SSE upstream (HTTP/1.1 or h2c): each answer streams `EVENTS` events
/// 10 ms apart and records when each was handed to hyper.
async fn sse_upstream(sent: Arc<Mutex<Vec<Instant>>>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let sent = sent.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    assert_eq!(req.headers()["authorization"], "Bearer sse-key-71c0e4");
                    let (tx, rx) = mpsc::channel(4);
                    let sent = sent.clone();
                    tokio::spawn(async move {
                        for i in 0..EVENTS {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            sent.lock().push(Instant::now());
                            if tx
                                .send(Bytes::from(format!("data: {i}\n\n")))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                    let resp = http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Events(rx))
                        .unwrap();
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Reads the stream, noting when each event arrived.
async fn receive(mut body: Incoming) -> Vec<Instant> {
    let mut got = Vec::new();
    let mut text = String::new();
    while let Some(frame) = body.frame().await {
        let now = Instant::now();
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                assert_eq!(event, format!("data: {}\n\n", got.len()));
                got.push(now);
            }
        }
    }
    got
}

fn check_latency(what: &str, sent: &[Instant], got: &[Instant]) {
    assert_eq!(got.len(), EVENTS, "{what}: every event arrived");
    let mut delays: Vec<Duration> = sent.iter().zip(got).map(|(s, g)| *g - *s).collect();
    delays.sort();
    let (median, worst) = (delays[EVENTS / 2], delays[EVENTS - 1]);
    eprintln!("{what}: added latency per event: median {median:?}, worst {worst:?}");
    assert!(
        worst < Duration::from_millis(200),
        "{what}: an event was held back {worst:?}"
    );
    let prompt = delays
        .iter()
        .filter(|d| **d < Duration::from_millis(50))
        .count();
    assert!(
        prompt > EVENTS / 2,
        "{what}: most events within 50 ms, got {prompt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_the_app_as_it_is_sent() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let addr = sse_upstream(sent.clone()).await;
    let key = logs::secret("sse-key-71c0e4");
    let sk = with_key(&key, &one_route(&format!("http://{addr}"), BEARER, "")).await;
    let url = format!("{}/events", sk.url("r"));

    // HTTP/1.1 from the app (chunked), HTTP/1.1 upstream.
    let h1 = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let resp = h1.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let got = receive(resp.into_body()).await;
    let sent_h1: Vec<Instant> = std::mem::take(&mut *sent.lock());
    check_latency("HTTP/1.1", &sent_h1, &got);

    // HTTP/2 with prior knowledge from the app, h2c upstream.
    let h2 = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let resp = h2.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let got = receive(resp.into_body()).await;
    let sent_h2: Vec<Instant> = std::mem::take(&mut *sent.lock());
    check_latency("HTTP/2", &sent_h2, &got);

    // Each stream got its end line and counters.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (_, _, metrics) = loop {
        let m = support::get(&format!("{}/metrics", sk.admin())).await;
        if String::from_utf8_lossy(&m.2).contains("sidekey_streams_ended_total{route=\"r\"} 2")
            || Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics.contains("sidekey_streams_ended_total{route=\"r\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidekey_streams_cut_total{route=\"r\"} 0"),
        "{metrics}"
    );
    let ended: Vec<String> = logs::lines_with("stream ended")
        .into_iter()
        .filter(|l| l.contains("path=\"/events\""))
        .collect();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(
        ended
            .iter()
            .all(|l| l.contains("end=\"complete\"") && l.contains("bytes_down=")),
        "{ended:?}"
    );
    sk.stop().await;
}
