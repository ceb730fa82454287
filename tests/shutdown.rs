//! The binary end to end: JSON and text logs, SIGTERM drains requests in flight then exits 0, a unix-socket
//! route, and nothing secret on stderr at trace level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::process::{Child, Command};
use std::time::Duration;

mod support;
use support::binary::Running;
use support::{BEARER, Reply, Upstream, one_route};

const SECRET: &str = "bin_secret_value_3141592";

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let up =
        Upstream::start(|_| Reply::ok("slow but fine").delayed(Duration::from_millis(1500))).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), SECRET).unwrap();
    let unix_route = format!(
        r#"
[log]
format = "json"
[[routes]]
name = "u"
listen = "unix:{{dir}}/app.sock"
upstream = "{}"
credential = "k"
inject = {{ header = "X-Key" }}
"#,
        up.url()
    );
    let cfg = one_route(&up.url(), BEARER, &unix_route);
    let mut sk = Running::start(dir.path(), &cfg);
    let listening = sk.wait_for(|v| {
        v["fields"]["message"] == "route listening" && v["fields"]["route"] == "r"
            || v["message"] == "route listening" && v["route"] == "r"
    });
    let addr = listening["listen"]
        .as_str()
        .or(listening["fields"]["listen"].as_str())
        .unwrap()
        .to_owned();
    sk.wait_for(|v| v["event"] == "issued" || v["fields"]["event"] == "issued");

    // A request through the unix-socket route.
    let sock = dir.path().join("app.sock");
    // One HTTP/1.1 request written by hand on the socket (no outside client).
    let mut stream = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("unix route listening");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /v1/u HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow but fine"), "{answer}");
    assert_eq!(up.seen().last().unwrap().header("x-key"), Some(SECRET));

    let url = format!("http://{addr}/v1/in-flight");
    let inflight = tokio::spawn(async move { support::get(&url).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&sk.child, "-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(refused.is_err(), "no new connections after SIGTERM");
    let (status, _, body) = inflight.await.unwrap();
    assert_eq!(status, 200, "the request in flight finished");
    assert_eq!(body.as_ref(), b"slow but fine");

    let (code, log) = sk.finish();
    assert_eq!(code, 0);
    let all = log.join("\n");
    assert!(all.contains("\"SIGTERM\""), "the stop is logged");
    assert!(
        log.iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "every line is JSON"
    );
    assert!(
        all.contains("sidekey::access"),
        "access log lines are there"
    );
    assert!(
        !all.contains(SECRET),
        "the secret reached stderr at trace level"
    );
    use base64::Engine;
    assert!(!all.contains(&base64::engine::general_purpose::STANDARD.encode(SECRET)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_the_access_line_and_never_the_secret() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), SECRET).unwrap();
    let cfg = one_route(&up.url(), BEARER, "[log]\nformat = \"text\"");
    let mut sk = Running::start(dir.path(), &cfg);
    let addr = sk.route_addr("r");
    sk.wait_for_line(|l| l.contains("event=\"issued\""));
    let (status, _, _) = support::get(&format!("http://{addr}/v1/charges?limit=3")).await;
    assert_eq!(status, 200);
    assert_eq!(
        up.seen()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let access = sk.wait_for_line(|l| l.contains("sidekey::access"));
    assert!(
        access.contains(
            r#"route="r" mode="listener" method="GET" path="/v1/charges" status=200 duration_us="#
        ),
        "{access}"
    );
    assert!(access.contains("fingerprint=\""), "{access}");
    assert!(
        !access.contains("limit=3"),
        "the query is never logged: {access}"
    );
    signal(&sk.child, "-TERM");
    let (code, log) = sk.finish();
    assert_eq!(code, 0);
    let all = log.join("\n");
    assert!(
        !all.contains(SECRET),
        "the secret reached stderr at trace level"
    );
    use base64::Engine;
    assert!(!all.contains(&base64::engine::general_purpose::STANDARD.encode(SECRET)));
}

/// sidekey writes access lines itself (one `write` each), but the log filter
/// still decides: `sidekey::access=off` silences them and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filter_still_silences_access_lines() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), SECRET).unwrap();
    let cfg = one_route(
        &up.url(),
        BEARER,
        "[log]\nformat = \"text\"\nlevel = \"info,sidekey::access=off\"",
    );
    // The config's filter, not the harness's `RUST_LOG=trace`.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sidekey"));
    cmd.env_remove("RUST_LOG");
    let mut sk = Running::start_with(dir.path(), &cfg, cmd);
    let addr = sk.route_addr("r");
    sk.wait_for_line(|l| l.contains("event=\"issued\""));
    for _ in 0..3 {
        let (status, _, _) = support::get(&format!("http://{addr}/v1/charges")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(up.seen().len(), 3);
    signal(&sk.child, "-TERM");
    let (code, log) = sk.finish();
    assert_eq!(code, 0);
    assert!(
        log.iter().any(|l| l.contains("route listening")),
        "info lines of other targets are written: {log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("sidekey::access")),
        "no access line: {log:?}"
    );
}
