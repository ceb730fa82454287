//! Server-sent events through sidekey with outside peers: a hypercorn SSE endpoint that checks `Authorization` sends 100 events 10 ms apart, each carrying its send time; Python `requests` (HTTP/1.1, chunked) and curl (HTTP/1.1, and HTTP/2 with prior knowledge end to end) read them straight from the server and through a route in the same run, which gives the latency sidekey adds per event; each stream gets its end line and counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::Duration;
use support::streams::{Server, client};
use support::{BEARER, curl, logs, one_route, with_key};

const EVENTS: usize = 100;

/// What a client read: each event's text and when it arrived (ns since the epoch).
type Received = Vec<(String, u128)>;

/// The `requests` client of `streams_peer.py` (HTTP/1.1); with `auth`, it
/// sends the credential in that file itself.
async fn with_requests(url: &str, auth: Option<&str>) -> Received {
    let mut args = vec!["sse-client", url];
    args.extend(auth);
    let out = client(&args).await;
    assert_eq!(out["status"], 200, "{}", out["rest"]);
    assert_eq!(out["content_type"], "text/event-stream");
    assert_eq!(out["version"], 11, "HTTP/1.1");
    out["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let at = e[1].as_u64().unwrap();
            (e[0].as_str().unwrap().to_owned(), u128::from(at))
        })
        .collect()
}

/// curl, reading as it receives; checks the status and HTTP version it reports.
async fn with_curl(args: &[&str], version: &str) -> Received {
    let mut all = vec!["-w", "\n%{http_code} %{http_version}"];
    all.extend(args);
    let (got, rest) = curl::events(&all).await;
    assert_eq!(rest.trim(), format!("200 {version}"));
    got
}

/// The delay of each event (arrival minus send time) and the HTTP version
/// the server sent it over; checks that every event arrived once, in order.
fn delays(what: &str, got: &Received, served_over: &str) -> Vec<Duration> {
    assert_eq!(got.len(), EVENTS, "{what}: every event arrived");
    got.iter()
        .enumerate()
        .map(|(i, (text, at))| {
            let (id, data) = text
                .split_once("\ndata: ")
                .unwrap_or_else(|| panic!("{what}: not an event: {text:?}"));
            assert_eq!(id, format!("id: {i}"), "{what}: events in order");
            let (sent, version) = data.split_once(' ').unwrap();
            assert_eq!(version, served_over, "{what}: the upstream's HTTP version");
            let sent: u128 = sent.parse().unwrap();
            Duration::from_nanos(u64::try_from(at.saturating_sub(sent)).unwrap())
        })
        .collect()
}

/// Median, p99 (nearest rank) and worst.
fn figures(mut d: Vec<Duration>) -> [Duration; 3] {
    d.sort();
    [d[EVENTS / 2], d[EVENTS * 99 / 100 - 1], d[EVENTS - 1]]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints the latency per event straight and through sidekey and what
/// sidekey adds; checks, as loosely as a shared machine allows, that the
/// events through sidekey were not held back.
fn compare(what: &str, straight: &Received, through: &Received, served_over: &str) {
    let s = figures(delays(&format!("{what} straight"), straight, served_over));
    let through = delays(&format!("{what} through sidekey"), through, served_over);
    let prompt = through
        .iter()
        .filter(|d| **d < Duration::from_millis(50))
        .count();
    let t = figures(through);
    eprintln!(
        "{what}: latency per event in ms (median / p99 / worst): straight {:.2} / {:.2} / {:.2}; \
         through sidekey {:.2} / {:.2} / {:.2}; added {:.2} / {:.2} / {:.2}",
        ms(s[0]),
        ms(s[1]),
        ms(s[2]),
        ms(t[0]),
        ms(t[1]),
        ms(t[2]),
        ms(t[0]) - ms(s[0]),
        ms(t[1]) - ms(s[1]),
        ms(t[2]) - ms(s[2]),
    );
    assert!(
        t[2] < Duration::from_millis(200),
        "{what}: an event was held back {:?}",
        t[2]
    );
    assert!(
        prompt > EVENTS / 2,
        "{what}: most events within 50 ms, got {prompt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_the_app_as_it_is_sent() {
    let peer_dir = tempfile::tempdir().unwrap();
    let key = logs::secret("sse-key-71c0e4");
    let accept = peer_dir.path().join("accept");
    std::fs::write(&accept, &key).unwrap();
    let accept = accept.to_str().unwrap();
    let header = peer_dir.path().join("header");
    std::fs::write(&header, format!("Authorization: Bearer {key}\n")).unwrap();
    let header = format!("@{}", header.display());
    let server = Server::start(&["sse-server", accept]).await;
    let upstream = format!("http://127.0.0.1:{}", server.port);
    let sk = with_key(&key, &one_route(&upstream, BEARER, "")).await;
    let straight = format!("{upstream}/events");
    let through = format!("{}/events", sk.url("r"));

    // The server checks the credential: without it, 401.
    let out = client(&["sse-client", &straight]).await;
    assert_eq!(out["status"], 401, "{out}");

    // Python requests, HTTP/1.1 (chunked) both hops.
    let s = with_requests(&straight, Some(accept)).await;
    let t = with_requests(&through, None).await;
    compare("requests, HTTP/1.1", &s, &t, "1.1");

    // curl -N, HTTP/1.1 both hops.
    let s = with_curl(&["-H", &header, &straight], "1.1").await;
    let t = with_curl(&[&through], "1.1").await;
    compare("curl, HTTP/1.1", &s, &t, "1.1");

    // curl with HTTP/2 prior knowledge: h2c from the app, h2c upstream.
    let h2 = "--http2-prior-knowledge";
    let s = with_curl(&[h2, "-H", &header, &straight], "2").await;
    let t = with_curl(&[h2, &through], "2").await;
    compare("curl, h2c", &s, &t, "2");

    // Each stream through sidekey got its end line and counters.
    let ended = "sidekey_streams_ended_total{route=\"r\"} 3";
    let metrics = support::until(5, ended, || async {
        let m = support::get(&format!("{}/metrics", sk.admin())).await;
        let m = String::from_utf8_lossy(&m.2).into_owned();
        m.contains(ended).then_some(m)
    })
    .await;
    assert!(
        metrics.contains("sidekey_streams_cut_total{route=\"r\"} 0"),
        "{metrics}"
    );
    let lines: Vec<String> = logs::lines_with("stream ended")
        .into_iter()
        .filter(|l| l.contains("path=\"/events\""))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("end=\"complete\"") && l.contains("bytes_down=")),
        "{lines:?}"
    );
    sk.stop().await;
}
