//! The forward proxy on a unix socket (`[proxy] listen = "unix:..."`): a real client that can use
//! an HTTP proxy over a unix socket (Python's http.client tunnelling with its own CONNECT; curl
//! 7.88 ignores `--proxy` when given `--unix-socket`) reaches an HTTPS upstream through the
//! intercepted tunnel with the credential attached, keeps its tunnel, and a host route's
//! `allow_uids` is checked against the socket's peer credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::Value;
use support::proxy::{HOST, OTHER, World, host_route, sidekey_ca};
use support::{Sidekey, logs};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the Python client through the proxy socket to `host`, GETting `paths`.
async fn python(
    socket: &std::path::Path,
    host: &str,
    ca: &std::path::Path,
    paths: &[&str],
) -> (Value, String) {
    let out = tokio::process::Command::new("python3")
        .arg(root().join("tests/support/proxy_unix_client.py"))
        .arg(socket)
        .arg(host)
        .arg(ca)
        .args(paths)
        .output()
        .await
        .unwrap();
    let text = support::stdout_of(&out);
    (serde_json::from_str(&text).unwrap(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_proxy_intercepts_for_a_real_client_and_checks_peer_uids() {
    let (upstream, test_ca) = World::upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let token = logs::secret("ghp_unixproxied0secret0value0123456789ab");
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    test_ca.write(&dir.path().join("upstream-ca.pem"));
    let uid = rustix::process::getuid().as_raw();
    let routes = host_route("mine", HOST, &upstream, &format!("allow_uids = [{uid}]"))
        + &host_route(
            "theirs",
            OTHER,
            &upstream,
            &format!("allow_uids = [{}]", uid + 1),
        );
    let config = support::proxy::config_on("unix:{dir}/proxy.sock", "", &routes);
    let sk = Sidekey::start_in(dir, &config).await;
    sk.wait_ready(5).await;
    let socket = sk.path("proxy.sock");
    let ca = sk.path("sidekey-ca.pem");
    std::fs::write(&ca, sidekey_ca(&sk.path("sidekey.toml"))).unwrap();

    // Two requests through one tunnel over the unix socket; the upstream gets the credential.
    let (got, text) = python(&socket, HOST, &ca, &["/v1/one", "/v1/two"]).await;
    assert_eq!(
        got["tunnels"], 1,
        "the second request reused the tunnel: {text}"
    );
    for (a, path) in got["answers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["/v1/one", "/v1/two"])
    {
        assert_eq!(a["status"], 200, "{text}");
        assert_eq!(a["body"], format!("ok {path}"), "{text}");
    }
    assert!(!text.contains(&token), "the app never holds the credential");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
        assert_eq!(
            s.header("host"),
            Some(format!("{HOST}:{}", upstream.addr.port()).as_str())
        );
    }

    // A route whose allow_uids leaves this process's uid out: refused inside the tunnel and never
    // forwarded. The refusal names the peer's gid too: it comes from the unix socket's peer
    // credentials (the TCP socket table records only a uid).
    let (got, text) = python(&socket, OTHER, &ca, &["/v1/three"]).await;
    let a = &got["answers"][0];
    assert_eq!(a["status"], 403, "{text}");
    assert_eq!(a["error"], "caller_not_allowed", "{text}");
    assert!(
        a["body"]
            .as_str()
            .unwrap()
            .contains(&format!("uid {uid} gid ")),
        "{text}"
    );
    assert_eq!(upstream.count(), 2, "a refused caller reaches nothing");
    logs::assert_no_secret_in("the client's output", text.as_bytes());
    sk.stop().await;
}
