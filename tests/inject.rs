//! Each injection form reaches a real upstream (plain HTTP and TLS with a test CA) with the right value,
//! replacing whatever the app sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use support::tls::TestCa;
use support::{BEARER, Upstream, logs, one_route, send, with_key};

#[tokio::test]
async fn bearer_header_replaces_the_apps_own() {
    let up = Upstream::ok().await;
    let key = logs::secret("tok_bearer_5a1b2c3d");
    let sk = with_key(&key, &one_route(&up.url(), BEARER, "")).await;
    let (status, _, _) = send(
        Method::POST,
        &format!("{}/v1/charges", sk.url("r")),
        &[
            ("authorization", "Bearer app-forged"),
            ("Authorization", "Basic second"),
            ("proxy-authorization", "Basic eDp5"),
        ],
        "amount=100",
    )
    .await;
    assert_eq!(status, 200);
    let s = &up.seen()[0];
    let values: Vec<_> = s.headers.get_all("authorization").iter().collect();
    assert_eq!(values, vec![format!("Bearer {key}").as_str()]);
    assert!(s.header("proxy-authorization").is_none());
    assert_eq!(s.body.as_ref(), b"amount=100");
    assert_eq!(s.method, "POST");
    sk.stop().await;
}

#[tokio::test]
async fn custom_header_raw_value() {
    let up = Upstream::ok().await;
    let key = logs::secret("raw_api_key_77aa");
    let sk = with_key(
        &key,
        &one_route(&up.url(), r#"{ header = "X-Api-Key" }"#, ""),
    )
    .await;
    let (status, _, _) = send(
        Method::GET,
        &format!("{}/x", sk.url("r")),
        &[("x-api-key", "mine")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let s = &up.seen()[0];
    assert_eq!(s.headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(s.header("x-api-key"), Some(key.as_str()));
    sk.stop().await;
}

#[tokio::test]
async fn basic_auth_uses_secret_as_password() {
    use base64::Engine;
    let up = Upstream::ok().await;
    let key = logs::secret("basic_pw_90f1e2");
    let sk = with_key(
        &key,
        &one_route(
            &up.url(),
            r#"{ basic = { username = "svc-payments" } }"#,
            "",
        ),
    )
    .await;
    let (status, _, _) = send(
        Method::GET,
        &format!("{}/x", sk.url("r")),
        &[("authorization", "Basic Zm9vOmJhcg==")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let expect = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("svc-payments:{key}"))
    );
    let s = &up.seen()[0];
    assert_eq!(s.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(s.header("authorization"), Some(expect.as_str()));
    sk.stop().await;
}

#[tokio::test]
async fn query_param_replaces_the_apps_own() {
    let up = Upstream::ok().await;
    let key = logs::secret("q/key+with=chars");
    let sk = with_key(&key, &one_route(&up.url(), r#"{ query = "api_key" }"#, "")).await;
    let (status, _, _) = send(
        Method::GET,
        &format!("{}/search?q=1&api_key=mine&api%5Fkey=again", sk.url("r")),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let s = &up.seen()[0];
    assert_eq!(s.target, "/search?q=1&api_key=q%2Fkey%2Bwith%3Dchars");
    sk.stop().await;
}

#[tokio::test]
async fn base_path_is_prefixed_and_host_is_the_upstreams() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "k_base_path_1",
        &one_route(
            &format!("{}/api/v2/", up.url()),
            r#"{ header = "X-Key" }"#,
            "",
        ),
    )
    .await;
    let (status, _, _) = send(
        Method::GET,
        &format!("{}/users/7?x=y", sk.url("r")),
        &[
            ("host", "app.localhost"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let s = &up.seen()[0];
    assert_eq!(s.target, "/api/v2/users/7?x=y");
    assert_eq!(s.header("host"), Some(up.addr.to_string().as_str()));
    assert!(
        s.header("x-hop").is_none(),
        "headers named by Connection are hop-by-hop"
    );
    sk.stop().await;
}

#[tokio::test]
async fn tls_upstream_with_private_ca_speaks_http2() {
    let ca = TestCa::new();
    let up = Upstream::start_tls(ca.server_config(), |_| support::Reply::ok("secure")).await;
    let dir = tempfile::tempdir().unwrap();
    ca.write(&dir.path().join("ca.pem"));
    let key = logs::secret("tls_token_c0ffee");
    std::fs::write(dir.path().join("key"), &key).unwrap();
    let cfg = one_route(&up.https_url(), BEARER, "ca_file = \"{dir}/ca.pem\"");
    let sk = support::Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let (status, _, body) = send(Method::GET, &format!("{}/v1/x", sk.url("r")), &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body.as_ref(), b"secure");
    let s = &up.seen()[0];
    assert_eq!(s.version, http::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(
        s.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    sk.stop().await;
}

#[tokio::test]
async fn tls_upstream_with_unknown_ca_is_unreachable() {
    let ca = TestCa::new();
    let up = Upstream::start_tls(ca.server_config(), |_| support::Reply::ok("secure")).await;
    let sk = with_key(
        "k_unknown_ca_1",
        &one_route(&up.https_url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let (status, headers, body) =
        send(Method::GET, &format!("{}/v1/x", sk.url("r")), &[], "").await;
    assert_eq!(status, 502);
    assert_eq!(headers["sidekey-error"], "upstream_unreachable");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.to_lowercase().contains("certificate"),
        "the message should say why: {text}"
    );
    assert_eq!(
        up.count(),
        0,
        "no request may reach an upstream whose certificate is not trusted"
    );
    sk.stop().await;
}
