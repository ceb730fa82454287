//! RFC 9421 HTTP Message Signatures end to end: every signature sidekey makes (hmac-sha256, ed25519, ecdsa-p256-sha256; with and without a body; odd paths and queries) is verified by the PyPI package `http-message-signatures`; an altered body, header or path fails that check; a body over the limit is 413; a 401 refreshes the key and replays; a WebSocket handshake to an `https://` upstream (HTTP/1.1 upgrade and RFC 8441) is verified as `https://` by a `websockets` server; a unix-socket route and the forward proxy's absolute-form `http://` request are signed too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use serde_json::Value;
use support::httpsig::{Verifier, new_key};
use support::{Sidekey, logs, send};

const COMPONENTS: &str = r#"["@method", "@target-uri", "@authority", "@path", "@query", "content-type", "content-digest"]"#;

fn inject(alg: &str, components: &str, extra: &str) -> String {
    format!(
        r#"{{ http_signature = {{ key_id = "test-key", alg = "{alg}", components = {components}{extra} }} }}"#
    )
}

/// A fresh key for `alg` written to `key` in a new directory, and a verifier
/// trusting it as `test-key`.
async fn trusting(alg: &str) -> (Verifier, tempfile::TempDir, String) {
    let (key, public) = new_key(alg);
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("trusted");
    std::fs::write(&trusted, &public).unwrap();
    let verifier = Verifier::start(alg, "test-key", &trusted).await;
    std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
    (verifier, dir, key)
}

/// The forward proxy, the credential `k`, then `routes`.
fn proxy_config(routes: &str) -> String {
    format!("{}{}{routes}", support::proxy::head(""), support::KEY_FILE)
}

/// A verifier trusting a fresh key and a sidekey signing with it.
async fn setup(alg: &str, inject: &str) -> (Verifier, Sidekey, String) {
    let (verifier, dir, key) = trusting(alg).await;
    let cfg = support::one_route(&verifier.url, inject, "");
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    (verifier, sk, key)
}

async fn call(
    url: &str,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let (status, _, bytes) = send(method, &format!("{url}{target}"), headers, body.to_vec()).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{target}: JSON from the verifier, got {status} {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status.as_u16(), v)
}

/// Odd but valid targets: escapes, `;` parameters, repeated and empty query
/// parameters, an empty query, a `?` inside the query.
const TARGETS: [&str; 5] = [
    "/plain",
    "/v1/a%20b/~user/x;p=1?z=1&a=%2F&a=2&flag&e=",
    "/search?",
    "/q?next=/a?b=c&x=%3D%26",
    "/UPPER/Case.json?Key=Value",
];

#[tokio::test]
async fn every_algorithm_is_verified_by_http_message_signatures() {
    for alg in ["hmac-sha256", "ed25519", "ecdsa-p256-sha256"] {
        let form = inject(
            alg,
            COMPONENTS,
            r#", expires = "5m", nonce = true, tag = "sidekey-test""#,
        );
        let (_verifier, sk, _key) = setup(alg, &form).await;
        let url = sk.url("r");
        let mut nonces = std::collections::HashSet::new();
        for target in TARGETS {
            // Without a body: a GET (content-type absent, so left out).
            let (status, v) = call(&url, Method::GET, target, &[], b"").await;
            assert_eq!(status, 200, "{alg} GET {target}: {v}");
            assert_eq!(
                v["seen"]["target"], target,
                "{alg}: sent as the app wrote it"
            );
            let covered = v["covered"].as_object().unwrap();
            for c in [
                "\"@method\"",
                "\"@target-uri\"",
                "\"@authority\"",
                "\"@path\"",
                "\"@query\"",
                "\"content-digest\"",
            ] {
                assert!(covered.contains_key(c), "{alg} {target}: {c} covered: {v}");
            }
            assert_eq!(v["params"]["alg"], alg);
            assert_eq!(v["params"]["keyid"], "test-key");
            assert_eq!(v["params"]["tag"], "sidekey-test");
            let created = v["params"]["created"].as_u64().unwrap();
            assert_eq!(v["params"]["expires"].as_u64().unwrap(), created + 300);
            assert!(nonces.insert(v["params"]["nonce"].as_str().unwrap().to_owned()));

            // With a body: a POST of JSON, its digest checked by the verifier.
            let body = format!("{{\"target\":\"{target}\",\"alg\":\"{alg}\"}}");
            let (status, v) = call(
                &url,
                Method::POST,
                target,
                &[("content-type", "application/json")],
                body.as_bytes(),
            )
            .await;
            assert_eq!(status, 200, "{alg} POST {target}: {v}");
            assert_eq!(v["digest_checked"], true, "{v}");
            assert!(
                v["covered"]
                    .as_object()
                    .unwrap()
                    .contains_key("\"content-type\"")
            );
            assert_eq!(v["seen"]["body"], body.as_str());
        }
        // A body above the replay limit (64 KiB) is still hashed whole.
        let big = vec![b'x'; 300 * 1024];
        let (status, v) = call(
            &url,
            Method::PUT,
            "/big?x=1",
            &[("content-type", "application/octet-stream")],
            &big,
        )
        .await;
        assert_eq!(status, 200, "{alg} PUT big: {}", v["error"]);
        assert_eq!(v["digest_checked"], true);
        sk.stop().await;
    }
}

/// Sends what the verifier saw again, straight to it, after `alter` changed it.
async fn resend(
    verifier: &Verifier,
    seen: &Value,
    alter: impl Fn(&mut String, &mut Vec<(String, String)>, &mut String),
) -> u16 {
    let mut target = seen["target"].as_str().unwrap().to_owned();
    let mut headers: Vec<(String, String)> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length")
        })
        .collect();
    let mut body = seen["body"].as_str().unwrap().to_owned();
    alter(&mut target, &mut headers, &mut body);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let method = Method::from_bytes(seen["method"].as_str().unwrap().as_bytes()).unwrap();
    let (status, v) = call(&verifier.url, method, &target, &refs, body.as_bytes()).await;
    assert_eq!(v["verified"], status == 200, "{v}");
    status
}

#[tokio::test]
async fn an_altered_body_header_or_target_fails_verification() {
    for alg in ["hmac-sha256", "ed25519", "ecdsa-p256-sha256"] {
        let (verifier, sk, _key) = setup(alg, &inject(alg, COMPONENTS, "")).await;
        let (status, v) = call(
            &sk.url("r"),
            Method::POST,
            "/pay?amount=10",
            &[("content-type", "application/json")],
            br#"{"to":"alice"}"#,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let seen = &v["seen"];
        // Unaltered, the captured request verifies again: the checks below fail for the change alone.
        assert_eq!(
            resend(&verifier, seen, |_, _, _| {}).await,
            200,
            "{alg} control"
        );
        let body = resend(&verifier, seen, |_, _, b| *b = r#"{"to":"mallory"}"#.into()).await;
        assert_eq!(body, 401, "{alg}: altered body");
        let header = resend(&verifier, seen, |_, h, _| {
            for (k, v) in h.iter_mut() {
                if k.eq_ignore_ascii_case("content-type") {
                    *v = "text/plain".into();
                }
            }
        })
        .await;
        assert_eq!(header, 401, "{alg}: altered content-type");
        let query = resend(&verifier, seen, |t, _, _| *t = "/pay?amount=1000".into()).await;
        assert_eq!(query, 401, "{alg}: altered query");
        let digest = resend(&verifier, seen, |_, h, b| {
            // A matching digest for another body does not help: the digest is signed.
            *b = "other".into();
            for (k, v) in h.iter_mut() {
                if k.eq_ignore_ascii_case("content-digest") {
                    use base64::Engine;
                    let d = sha2::Sha256::digest(b"other");
                    *v = format!(
                        "sha-256=:{}:",
                        base64::engine::general_purpose::STANDARD.encode(d)
                    );
                }
            }
        })
        .await;
        assert_eq!(digest, 401, "{alg}: re-digested body");
        sk.stop().await;
    }
}

use sha2::Digest;

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_an_uncovered_body_streams() {
    let alg = "ed25519";
    let form = inject(alg, COMPONENTS, ", max_signed_body = 1024");
    let (_verifier, sk, _key) = setup(alg, &form).await;
    let (status, _, body) = send(
        Method::POST,
        &format!("{}/up", sk.url("r")),
        &[],
        vec![b'a'; 2048],
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(support::error_code(&body), "request_too_large");
    sk.stop().await;

    // Without content-digest the body is not read first: a large one streams through, signed headers verify.
    let form = inject(alg, r#"["@method", "@target-uri"]"#, "");
    let (_verifier, sk, _key) = setup(alg, &form).await;
    let big = vec![b'b'; 1024 * 1024];
    let (status, v) = call(&sk.url("r"), Method::POST, "/stream", &[], &big).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["seen"]["body"].as_str().unwrap().len(), big.len());
    assert_eq!(v["digest_checked"], false);
    sk.stop().await;
}

#[tokio::test]
async fn a_rejected_key_is_refreshed_and_the_request_replayed() {
    // An exec source hands out a new HMAC key on each run; the verifier trusts the second.
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/exec/token.sh");
    for n in 1..4 {
        logs::secret(&format!("exec-raw-sig-{n}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("trusted");
    std::fs::write(&trusted, "exec-raw-sig-2").unwrap();
    let verifier = Verifier::start("hmac-sha256", "test-key", &trusted).await;
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.k]\nsource = \"exec\"\ncommand = [\"{}\"]\nenv = {{ COUNT = \"{{dir}}/count\", PREFIX = \"sig\" }}\nmin_refresh_interval = \"0s\"\n{}",
        script.display(),
        support::route(
            "r",
            &verifier.url,
            "k",
            &inject("hmac-sha256", COMPONENTS, ""),
            ""
        )
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    let (status, v) = call(
        &sk.url("r"),
        Method::POST,
        "/charge",
        &[("content-type", "application/json")],
        br#"{"n":1}"#,
    )
    .await;
    assert_eq!(status, 200, "replayed with the new key: {v}");
    assert_eq!(v["seen"]["body"], r#"{"n":1}"#);
    let count = std::fs::read_to_string(sk.path("count")).unwrap();
    assert_eq!(count.trim(), "2", "one refresh");
    sk.stop().await;
}

#[tokio::test]
async fn misconfigured_signatures_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let load = |form: &str| {
        let path = dir.path().join("sidekey.toml");
        let text = support::one_route("http://127.0.0.1:1", form, "")
            .replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(&path, text).unwrap();
        sidekey::config::load(&path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(load(&inject("ed25519", COMPONENTS, "")).is_ok());
    let e = load(&inject("rsa-v1_5-sha256", COMPONENTS, "")).unwrap_err();
    assert!(e.contains("alg `rsa-v1_5-sha256` is not supported"), "{e}");
    let e = load(&inject("ed25519", r#"["@status"]"#, "")).unwrap_err();
    assert!(e.contains("component `@status` is not supported"), "{e}");
    let e = load(&inject("ed25519", r#"["Content-Type"]"#, "")).unwrap_err();
    assert!(e.contains("lower case"), "{e}");
    let e = load(&inject("ed25519", COMPONENTS, ", colour = 1")).unwrap_err();
    assert!(e.contains("unknown field `colour`"), "{e}");
}

#[tokio::test]
async fn the_revocation_probe_signs_with_the_previous_key() {
    // The verifier trusts only the second key: after the rotation the probe,
    // signing with the first, is refused, and the first key is reported retired.
    let alg = "ed25519";
    let (first, _) = new_key(alg);
    let (second, second_public) = new_key(alg);
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("trusted");
    std::fs::write(&trusted, &second_public).unwrap();
    let verifier = Verifier::start(alg, "test-key", &trusted).await;
    std::fs::write(dir.path().join("key"), &first).unwrap();
    let probe = r#"revocation_check = { method = "GET", path = "/probe", expect_status = [401], after = "1s" }"#;
    let cfg = support::one_route(&verifier.url, &inject(alg, COMPONENTS, ""), probe);
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    support::write_atomic(&sk.path("key"), &second);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while logs::lines_with("event=\"previous_value_retired\" credential=\"k\"").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the probe did not report the first key retired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, v) = call(&sk.url("r"), Method::GET, "/after", &[], b"").await;
    assert_eq!(status, 200, "the second key verifies: {v}");
    sk.stop().await;
}

/// The forward proxy is another mode of the same request path: an app that
/// calls the real host through `HTTPS_PROXY` gets its request signed too.
#[tokio::test]
async fn a_host_route_of_the_forward_proxy_signs_what_curl_sends_through_it() {
    let (verifier, dir, key) = trusting("ed25519").await;
    let cfg = proxy_config(&format!(
        r#"
[[routes]]
name = "signed"
host = "api.example.test"
upstream = "{}"
credential = "k"
inject = {}
"#,
        verifier.url,
        inject("ed25519", COMPONENTS, "")
    ));
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let (proxy, ca) = support::proxy::proxy_and_ca(&sk);
    for (method, body) in [("GET", None), ("POST", Some(r#"{"amount": 42}"#))] {
        let mut args = vec![
            "--proxy",
            &proxy,
            "--cacert",
            ca.to_str().unwrap(),
            "-X",
            method,
            "-H",
            "content-type: application/json",
        ];
        if let Some(b) = body {
            args.extend(["--data-binary", b]);
        }
        args.push("https://api.example.test/v1/orders?limit=3&cursor=a%2Fb");
        let a = support::curl::curl(&args).await;
        assert_eq!(a.status, 200, "{method}: {}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["verified"], true, "{method}: {v}");
        assert!(!a.body.contains(&key), "the app never sees the key");
    }
    sk.stop().await;
}

/// A WebSocket handshake to an `https://` upstream is signed as the
/// `https://` request it is: the verifier (a WebSocket server over TLS)
/// rebuilds `@scheme` and `@target-uri` from its own scheme. Both the
/// HTTP/1.1 upgrade and the RFC 8441 extended CONNECT of an HTTP/2 app are
/// checked; a handshake signed with another key is refused. `h2`: the
/// server (hypercorn) also takes extended CONNECT over h2, and verifies one
/// as the CONNECT it is; returns the HTTP version each handshake reached it over.
async fn signed_websocket(h2: bool) -> (String, String) {
    let alg = "ed25519";
    let (key, public) = new_key(alg);
    let (other, _) = new_key(alg);
    let ca = support::tls::TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    support::nginx::server_files(&ca, dir.path());
    std::fs::write(p("trusted"), &public).unwrap();
    std::fs::write(p("key"), format!("{key}\n")).unwrap();
    std::fs::write(p("other"), format!("{other}\n")).unwrap();
    let verifier = Verifier::start_websocket(
        alg,
        "test-key",
        &p("trusted"),
        &p("server.pem"),
        &p("server-key.pem"),
        h2,
    )
    .await;
    let form = inject(
        alg,
        r#"["@method", "@scheme", "@target-uri", "@authority", "@path", "@query"]"#,
        "",
    );
    let tls = r#"ca_file = "{dir}/ca.pem""#;
    let cfg = format!(
        r#"{}
[credentials.other]
source = "file"
path = "{{dir}}/other"
{}"#,
        support::one_route(&verifier.url, &form, tls),
        support::route("bad", &verifier.url, "other", &form, tls)
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let target = "/ws/a%20b?x=1&next=%2Fy";
    let ws = |route: &str| format!("{}{target}", sk.url(route).replace("http://", "ws://"));

    let out = support::streams::client(&["ws-client", &ws("r"), "once"]).await;
    let echo = out["echo"]
        .as_str()
        .unwrap_or_else(|| panic!("HTTP/1.1 upgrade: {out}"));
    let v: Value = serde_json::from_str(echo).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["echo"], "hello");
    let h1_version = v["version"].as_str().unwrap_or("1.1").to_owned();
    let covered = v["covered"].as_object().unwrap();
    let port = verifier.url.rsplit(':').next().unwrap();
    assert_eq!(covered["\"@scheme\""], "https", "{v}");
    assert_eq!(
        covered["\"@target-uri\""],
        format!("https://127.0.0.1:{port}{target}"),
        "{v}"
    );

    let addr = sk.url("r").trim_start_matches("http://").to_owned();
    let echo = support::streams::over_h2(&addr, target, b"over h2").await;
    let v: Value = serde_json::from_slice(&echo).unwrap();
    assert_eq!(v["verified"], true, "RFC 8441 extended CONNECT: {v}");
    assert_eq!(v["echo"], "over h2");
    assert_eq!(v["covered"]["\"@scheme\""], "https", "{v}");
    let h2_version = v["version"].as_str().unwrap_or("1.1").to_owned();

    // The verifier can refuse: a handshake signed with a key it does not trust.
    let out = support::streams::client(&["ws-client", &ws("bad"), "once"]).await;
    let refused = out["status"].as_u64();
    assert!(refused == Some(401) || refused == Some(403), "{out}");
    sk.stop().await;
    (h1_version, h2_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_handshake_to_https_is_signed_with_its_scheme() {
    signed_websocket(false).await;
}

/// A signature covers `@method`: the handshake goes upstream as the
/// HTTP/1.1 `GET` it was signed as, also where the upstream would take an
/// RFC 8441 extended CONNECT (a `CONNECT` that signature does not match).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_websocket_goes_upstream_as_the_get_it_was_signed_as() {
    let versions = signed_websocket(true).await;
    assert_eq!(versions, ("1.1".to_owned(), "1.1".to_owned()));
}

/// Two more ways in, through the same request path: a route listening on a
/// unix socket (curl `--unix-socket`) and the forward proxy's absolute-form
/// `http://` request (curl `--proxy` to an `http://` URL, the app's
/// `HTTP_PROXY`). Each GET and POST is verified by `http-message-signatures`;
/// the same request sent to the verifier without sidekey is refused.
#[tokio::test]
async fn a_unix_socket_route_and_an_absolute_form_proxy_request_are_signed() {
    let (verifier, dir, _key) = trusting("ecdsa-p256-sha256").await;
    let form = inject("ecdsa-p256-sha256", COMPONENTS, "");
    let cfg = proxy_config(&format!(
        r#"
[[routes]]
name = "sock"
listen = "unix:{{dir}}/r.sock"
upstream = "{url}"
credential = "k"
inject = {form}

[[routes]]
name = "signed"
host = "api.example.test"
upstream = "{url}"
credential = "k"
inject = {form}
"#,
        url = verifier.url
    ));
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let sock = sk.path("r.sock").display().to_string();
    let (proxy, _) = support::proxy::proxy_and_ca(&sk);
    let target = "/v1/orders?limit=3&cursor=a%2Fb";
    let ways = [
        (
            "unix socket",
            vec!["--unix-socket", sock.as_str()],
            "http://app.localhost",
        ),
        (
            "absolute form",
            vec!["--proxy", proxy.as_str()],
            "http://api.example.test",
        ),
        ("no sidekey", vec![], verifier.url.as_str()),
    ];
    for (way, via, base) in ways {
        for (method, body) in [("GET", None), ("POST", Some(r#"{"amount": 42}"#))] {
            let url = format!("{base}{target}");
            let mut args = via.clone();
            args.extend(["-X", method, "-H", "content-type: application/json"]);
            if let Some(b) = body {
                args.extend(["--data-binary", b]);
            }
            args.push(&url);
            let a = support::curl::curl(&args).await;
            let v: Value = serde_json::from_str(&a.body)
                .unwrap_or_else(|_| panic!("{way} {method}: {} {}", a.status, a.body));
            if way == "no sidekey" {
                assert_eq!(
                    (a.status, &v["verified"]),
                    (401, &Value::Bool(false)),
                    "{v}"
                );
                continue;
            }
            assert_eq!(a.status, 200, "{way} {method}: {v}");
            assert_eq!(v["verified"], true, "{way} {method}: {v}");
            assert_eq!(v["seen"]["target"], target, "{way} {method}");
            assert_eq!(v["seen"]["body"], body.unwrap_or(""), "{way} {method}");
            assert_eq!(v["digest_checked"], true, "{way} {method}: {v}");
        }
    }
    sk.stop().await;
}
