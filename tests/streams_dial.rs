//! One way to reach an upstream: a WebSocket through a `client_cert` route presents the client certificate to a `websockets` server that requires it, also when the route dials a fixed `connect_to` address; a `client_cert` route with `connect_to` reaches nginx (`ssl_verify_client on`) at that address under the upstream's name. Logs are scanned for the private key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::path::Path;
use support::mtls::{config, install};
use support::nginx::{Nginx, client_pair, free_port, server_files_for};
use support::streams::{Server, client};
use support::tls::TestCa;
use support::{Sidekey, get};

/// The CA, a server certificate for `names`, and a client certificate (its key registered as a secret).
fn files(ca: &TestCa, dir: &Path, names: &[&str]) {
    server_files_for(ca, dir, names);
    install(dir, &client_pair(ca, &[0x5d, 0x01]));
}

/// A `websockets` echo server over TLS that requires a client certificate of `dir`'s CA.
async fn ws_server(dir: &Path) -> Server {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let none = p("unused");
    Server::start(&[
        "ws-server",
        &none,
        &p("server.pem"),
        &p("server-key.pem"),
        &p("ca.pem"),
    ])
    .await
}

async fn websocket_through(upstream_name: &str, connect_to: bool) {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    files(&ca, dir.path(), &[upstream_name]);
    let server = ws_server(dir.path()).await;
    let extra = match connect_to {
        true => r#"connect_to = "127.0.0.1""#,
        false => "",
    };
    let upstream = format!("https://{upstream_name}:{}", server.port);
    let sk = Sidekey::start_in(dir, &config(&upstream, extra)).await;
    sk.wait_ready(5).await;
    let url = format!("{}/ws", sk.url("r").replace("http://", "ws://"));
    let out = client(&["ws-client", &url, "once"]).await;
    assert_eq!(
        out["echo"], "hello",
        "the handshake reached the server with the client certificate: {out}"
    );
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_presents_the_routes_client_certificate() {
    websocket_through("127.0.0.1", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_presents_the_client_certificate_at_connect_to() {
    websocket_through("ws.upstream.test", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cert_route_dials_connect_to_under_the_upstreams_name() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    files(&ca, dir.path(), &["api.upstream.test"]);
    let port = free_port();
    let nginx = Nginx::start(dir.path(), port, false).await;
    let upstream = format!("https://api.upstream.test:{port}");
    let sk = Sidekey::start_in(dir, &config(&upstream, r#"connect_to = "127.0.0.1""#)).await;
    sk.wait_ready(5).await;
    let (status, _, body) = get(&format!("{}/ping", sk.url("r"))).await;
    assert_eq!(
        status,
        200,
        "nginx answered at connect_to: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(String::from_utf8_lossy(&body), "serial=5D01\n");
    nginx.stop().await;
    sk.stop().await;
}
