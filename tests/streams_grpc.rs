//! gRPC through sidekey: a grpcio client speaks HTTP/2 with prior knowledge to a route, and sidekey carries unary, server-streaming, bidirectional and concurrent calls to a grpcio server that checks the `authorization` metadata, over h2c and over TLS with ALPN h2; an UNAUTHENTICATED answer leads to one refresh; a watch quiet past the route's `timeout` before its response headers ends with 504.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::Duration;
use support::streams::{Server, client, intercepted};
use support::{Sidekey, logs, route};

/// A route `g` to `upstream` whose bearer token comes from the helper
/// `tests/exec/token.sh` (`exec-raw-g-N`, N counted in `{dir}/count`).
fn config(upstream: &str, extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[credentials.g]
source = "exec"
command = ["{}/tests/exec/token.sh"]
env = {{ COUNT = "{{dir}}/count", PREFIX = "g" }}
min_refresh_interval = "0s"
{}"#,
        env!("CARGO_MANIFEST_DIR"),
        route(
            "g",
            upstream,
            "g",
            r#"{ header = "Authorization", format = "Bearer {secret}" }"#,
            extra
        )
    )
}

fn target(sk: &Sidekey) -> String {
    sk.url("g").trim_start_matches("http://").to_owned()
}

fn fetches(sk: &Sidekey) -> u32 {
    std::fs::read_to_string(sk.path("count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A grpcio server over h2c accepting `exec-raw-g-1` (then whatever
/// `{dir}/accept` says), and a sidekey routing `g` to it.
async fn h2c() -> (Sidekey, Server) {
    let dir = tempfile::tempdir().unwrap();
    let accept = dir.path().join("accept");
    std::fs::write(&accept, logs::secret("exec-raw-g-1")).unwrap();
    logs::secret("exec-raw-g-2");
    let server = Server::start(&["grpc-server", accept.to_str().unwrap()]).await;
    let sk = Sidekey::start_in(
        dir,
        &config(&format!("http://127.0.0.1:{}", server.port), ""),
    )
    .await;
    sk.wait_ready(10).await;
    (sk, server)
}

/// Waits up to 10 s for the second fetch of the credential.
async fn second_fetch(sk: &Sidekey, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fetches(sk) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_of_every_kind_pass_over_h2c_with_the_credential() {
    let (sk, _server) = h2c().await;

    let out = client(&["grpc-client", &target(&sk), "all"]).await;
    assert_eq!(out["unary"], "echo:hi", "{out}");
    assert_eq!(out["big_ok"], true, "an 8 MiB message passes whole: {out}");
    let stream: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(
        out["stream"],
        serde_json::json!(stream),
        "server streaming in order"
    );
    let echoes: Vec<String> = (0..20).map(|i| format!("echo:m{i}")).collect();
    assert_eq!(
        out["bidi"],
        serde_json::json!(echoes),
        "each bidirectional message came back before the next was sent"
    );
    assert_eq!(
        out["concurrent"], 100,
        "100 concurrent calls on one channel"
    );
    assert_eq!(out["deadline"], "DEADLINE_EXCEEDED");
    assert!(
        out["deadline_secs"].as_f64().unwrap() < 3.0,
        "the deadline ended the call early: {out}"
    );
    assert_eq!(fetches(&sk), 1, "no rejection, no refresh");

    // The upstream now wants the next value: its trailers-only UNAUTHENTICATED
    // answer counts as a rejection, and the credential is fetched once more.
    std::fs::write(sk.path("accept"), "exec-raw-g-2").unwrap();
    let out = client(&["grpc-client", &target(&sk), "unary"]).await;
    assert_eq!(
        out["code"], "UNAUTHENTICATED",
        "a streamed call is not replayed: {out}"
    );
    second_fetch(&sk, "no refresh after UNAUTHENTICATED").await;
    let out = client(&["grpc-client", &target(&sk), "unary"]).await;
    assert_eq!(
        out["reply"], "echo:hi",
        "the refreshed value is accepted: {out}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fetches(&sk), 2, "exactly one refresh");
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_to_an_https_upstream_negotiates_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::tls::TestCa::new();
    ca.write(&dir.path().join("ca.pem"));
    let (cert, key) = ca.leaf_pem();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let accept = dir.path().join("accept");
    std::fs::write(&accept, logs::secret("exec-raw-g-1")).unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let server = Server::start(&["grpc-server", &p("accept"), &p("cert.pem"), &p("key.pem")]).await;
    let sk = Sidekey::start_in(
        dir,
        &config(
            &format!("https://localhost:{}", server.port),
            r#"ca_file = "{dir}/ca.pem""#,
        ),
    )
    .await;
    sk.wait_ready(10).await;
    // grpcio's TLS server refuses a session without ALPN h2.
    let out = client(&["grpc-client", &target(&sk), "unary"]).await;
    assert_eq!(out["reply"], "echo:hi", "{out}");
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_in_trailers_after_a_message_leads_to_one_refresh() {
    let (sk, _server) = h2c().await;
    let out = client(&["grpc-client", &target(&sk), "late"]).await;
    assert_eq!(out["got"], serde_json::json!(["first", "second"]), "{out}");
    assert_eq!(fetches(&sk), 1, "no rejection, no refresh");

    // The server now wants the next value: it sends a message, then
    // UNAUTHENTICATED in its trailers. The app has its message and the
    // status (no replay); the credential is fetched once more.
    std::fs::write(sk.path("accept"), "exec-raw-g-2").unwrap();
    let out = client(&["grpc-client", &target(&sk), "late"]).await;
    assert_eq!(out["got"], serde_json::json!(["first"]), "{out}");
    assert_eq!(out["code"], "UNAUTHENTICATED", "{out}");
    second_fetch(&sk, "no refresh after UNAUTHENTICATED in trailers").await;
    let out = client(&["grpc-client", &target(&sk), "late"]).await;
    assert_eq!(out["got"], serde_json::json!(["first", "second"]), "{out}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fetches(&sk), 2, "exactly one refresh");
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_through_the_forward_proxys_interception() {
    const HOST: &str = "grpc.example.test";
    let (sk, server) = intercepted("grpc-server", "g", HOST, "grpc-proxied-token-6e21f9").await;
    let (proxy, trust) = support::proxy::proxy_and_ca(&sk);
    let target = format!("{HOST}:{}", server.port);
    let trust = trust.to_str().unwrap();
    let out = client(&["grpc-client", &target, "proxied", &proxy, trust]).await;
    assert_eq!(out["unary"], "echo:hi", "{out}");
    assert_eq!(
        out["stream"],
        serde_json::json!(["0", "1", "2", "3", "4"]),
        "{out}"
    );
    // The server answered only because the credential was attached.
    sk.stop().await;
}

/// A route's `timeout` runs until the upstream's response headers. grpcio
/// sends them with a stream's first message, so a watch quiet for longer
/// than `timeout` ends with `504 upstream_timeout` (UNAVAILABLE to the
/// app); one whose server sends its headers at once, or on a route with a
/// longer `timeout`, goes on (docs/streams.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_quiet_past_the_routes_timeout_ends_unless_headers_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let accept = dir.path().join("accept");
    std::fs::write(&accept, logs::secret("exec-raw-g-1")).unwrap();
    let server = Server::start(&["grpc-server", accept.to_str().unwrap()]).await;
    let upstream = format!("http://127.0.0.1:{}", server.port);
    let long = route(
        "long",
        &upstream,
        "g",
        r#"{ header = "Authorization", format = "Bearer {secret}" }"#,
        r#"timeout = "5s""#,
    );
    let sk = Sidekey::start_in(dir, &(config(&upstream, r#"timeout = "1s""#) + &long)).await;
    sk.wait_ready(10).await;

    // Quiet 2 s before the first message, on a route with `timeout = "1s"`.
    let out = client(&["grpc-client", &target(&sk), "Watch"]).await;
    assert_eq!(out["code"], "UNAVAILABLE", "{out}");
    let cut: Vec<String> = logs::lines_with("status=504");
    assert!(
        cut.iter()
            .any(|l| l.contains("route=\"g\"") && l.contains("error=\"upstream_timeout\"")),
        "{cut:?}"
    );
    // The same quiet, but the server sends its headers at once.
    let out = client(&["grpc-client", &target(&sk), "WatchEarly"]).await;
    assert_eq!(out["got"], serde_json::json!(["change"]), "{out}");
    // A route with a `timeout` longer than the quiet.
    let long = sk.url("long").trim_start_matches("http://").to_owned();
    let out = client(&["grpc-client", &long, "Watch"]).await;
    assert_eq!(out["got"], serde_json::json!(["change"]), "{out}");
    sk.stop().await;
}
