//! WebSocket through sidekey: a `websockets` client's handshake gets the credential and a `websockets` server checks it; 1,000 messages and one of 10 MiB are echoed; an idle connection is closed at the route's `upgrade_idle_timeout` and logged with its bytes and end reason; other upgrades are refused; WebSocket over HTTP/2 (RFC 8441) reaches the same HTTP/1.1 server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::streams::{Server, client, handshake, intercepted, over_h2};
use support::{BEARER, Sidekey, logs, one_route, with_key};

async fn echo_server(sk_dir: &std::path::Path, accepted: &str) -> Server {
    let accept = sk_dir.join("accept");
    std::fs::write(&accept, accepted).unwrap();
    Server::start(&["ws-server", accept.to_str().unwrap()]).await
}

async fn start(extra: &str) -> (Sidekey, Server) {
    // The server is started first, with its accept file in a folder of its own.
    let peer_dir = tempfile::tempdir().unwrap();
    let key = logs::secret("ws-key-5f2a9c");
    let server = echo_server(peer_dir.path(), &key).await;
    let sk = with_key(
        &key,
        &one_route(&format!("http://127.0.0.1:{}", server.port), BEARER, extra),
    )
    .await;
    std::mem::forget(peer_dir); // the server reads it for every handshake
    (sk, server)
}

fn ws_url(sk: &Sidekey, path: &str) -> String {
    format!("{}{path}", sk.url("r").replace("http://", "ws://"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echoes_a_thousand_messages_and_ten_mebibytes() {
    let (sk, _server) = start("").await;
    let out = client(&["ws-client", &ws_url(&sk, "/big"), "echo"]).await;
    assert_eq!(out["echoed"], 1000, "{out}");
    assert_eq!(out["big_ok"], true, "{out}");
    assert_eq!(out["big_len"], 10 << 20);
    // The connection ended when the client closed: one line with its bytes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let lines = logs::lines_with("upgraded connection ended");
        if let Some(l) = lines.iter().find(|l| l.contains("path=\"/big\"")) {
            assert!(
                l.contains("upgrade=websocket") || l.contains("upgrade=\"websocket\""),
                "{l}"
            );
            let up: u64 = field(l, "bytes_up");
            let down: u64 = field(l, "bytes_down");
            assert!(
                up > 10 << 20 && down > 10 << 20,
                "bytes each way counted: {l}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no end-of-connection line"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, _, metrics) = support::get(&format!("{}/metrics", sk.admin())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("sidekey_upgrades_total{route=\"r\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidekey_upgrades_open{route=\"r\"} 0"),
        "{metrics}"
    );
    sk.stop().await;
}

fn field(line: &str, name: &str) -> u64 {
    let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed_at_the_route_timeout() {
    let (sk, _server) = start(r#"upgrade_idle_timeout = "1s""#).await;
    let out = client(&["ws-client", &ws_url(&sk, "/idle"), "idle", "2.5"]).await;
    assert_eq!(out["first"], "before", "{out}");
    assert!(
        out.get("closed").is_some(),
        "the idle connection was closed: {out}"
    );
    assert!(
        logs::lines_with("upgraded connection ended")
            .iter()
            .any(|l| l.contains("path=\"/idle\"") && l.contains("idle_timeout")),
        "the end line says why"
    );
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_is_scope_checked_and_other_upgrades_refused() {
    let (sk, server) = start(
        r#"  [[routes.allow]]
  methods = ["GET"]
  paths = ["/echo"]"#,
    )
    .await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    for (path, protocol, want) in [
        ("/other", "websocket", "403"),
        ("/echo", "IRC/6.9", "400"),
        ("/echo", "websocket", "101"),
    ] {
        let (_, head) = handshake(&addr, path, protocol).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{path} {protocol}: {head}"
        );
        if want == "400" {
            assert!(head.contains("upgrade_not_allowed"), "{head}");
        }
    }
    // The server checks the handshake's credential: without sidekey, refused.
    let direct = format!("ws://127.0.0.1:{}/echo", server.port);
    let out = client(&["ws-client", &direct, "echo"]).await;
    assert_eq!(out["status"], 401, "{out}");
    let out = client(&["ws-client", &ws_url(&sk, "/echo"), "echo"]).await;
    assert_eq!(out["echoed"], 1000, "{out}");
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_extended_connect_reaches_an_http1_server() {
    let (sk, _server) = start("").await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    assert_eq!(
        over_h2(&addr, "/h2ws", b"hello over h2").await,
        b"hello over h2"
    );
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_goes_upstream_as_extended_connect_where_offered() {
    // hypercorn over TLS: ALPN h2, SETTINGS_ENABLE_CONNECT_PROTOCOL.
    let dir = tempfile::tempdir().unwrap();
    let ca = support::tls::TestCa::new();
    ca.write(&dir.path().join("ca.pem"));
    let (cert, key) = ca.leaf_pem();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), key).unwrap();
    let token = logs::secret("ws-h2-key-8d31aa");
    std::fs::write(dir.path().join("accept"), &token).unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let server = Server::start(&[
        "ws-h2-server",
        &p("accept"),
        &p("cert.pem"),
        &p("server-key.pem"),
    ])
    .await;
    let config = one_route(
        &format!("https://localhost:{}", server.port),
        BEARER,
        r#"ca_file = "{dir}/ca.pem""#,
    );
    std::fs::write(dir.path().join("key"), format!("{token}\n")).unwrap();
    let sk = Sidekey::start_in(dir, &config).await;
    sk.wait_ready(5).await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    // The server tells the HTTP version its handshake came over.
    assert_eq!(
        String::from_utf8(over_h2(&addr, "/h2up", b"hello").await).unwrap(),
        "2:hello"
    );
    // An HTTP/1.1 app's handshake still goes upstream as HTTP/1.1.
    let url = format!("{}/h1up", sk.url("r").replace("http://", "ws://"));
    let out = client(&["ws-client", &url, "once"]).await;
    assert_eq!(out["echo"], "1.1:hello", "{out}");
    sk.stop().await;
}

fn status(head: &str) -> &str {
    head.get(9..12).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_websocket_keeps_its_place_under_max_connections() {
    let (sk, _server) = start("max_connections = 1").await;
    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    let (ws, head) = handshake(&addr, "/held", "websocket").await;
    assert_eq!(status(&head), "101");
    // The HTTP server has let the socket go, but it is still open, joined upstream.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, head) = handshake(&addr, "/second", "websocket").await;
    assert_eq!(
        status(&head),
        "503",
        "the listener is full while the WebSocket lives"
    );
    drop(ws);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, head) = handshake(&addr, "/third", "websocket").await;
        if status(&head) == "101" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed: {head}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sk.stop().await;
}

/// An app whose WebSocket library honours `HTTPS_PROXY`: CONNECT to the real
/// host, TLS with sidekey's leaf, then the upgrade inside the tunnel. The
/// handshake gets the credential and the two connections are joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_the_forward_proxys_interception() {
    const HOST: &str = "ws.example.test";
    let (sk, server) = intercepted("ws-server", "w", HOST, "ws-proxied-token-81c3e7").await;
    let (proxy, trust) = support::proxy::proxy_and_ca(&sk);
    let url = format!("wss://{HOST}:{}/feed", server.port);
    let trust = trust.to_str().unwrap();
    let out = client(&["ws-client", &url, "proxied", &proxy, trust]).await;
    // The server accepts the handshake only with the credential.
    assert_eq!(out["echoed"], 100, "{out}");
    let (_, _, metrics) = support::get(&format!("{}/metrics", sk.admin())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("sidekey_upgrades_total{route=\"w\"} 1"),
        "{metrics}"
    );
    sk.stop().await;
}
