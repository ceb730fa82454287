//! The quick-start path end to end: a file credential injected as a bearer header into a real upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::{BEARER, Sidekey, Upstream, logs, one_route, with_key};

#[tokio::test]
async fn header_reaches_upstream_and_app_header_is_replaced() {
    let up = Upstream::ok().await;
    let key = logs::secret("sk_smoke_8f3a9c2d");
    let sk = with_key(&key, &one_route(&up.url(), BEARER, "")).await;
    let (status, _, _) = support::send(
        http::Method::GET,
        &format!("{}/v1/x?y=1", sk.url("r")),
        &[
            ("authorization", "Bearer app-own"),
            ("proxy-authorization", "Basic cHJveHk6cHc="),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/v1/x?y=1");
    assert_eq!(seen[0].headers.get_all("authorization").iter().count(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(seen[0].header("proxy-authorization").is_none());
    assert_eq!(seen[0].header("host"), Some(up.addr.to_string().as_str()));
    sk.stop().await;
}

#[tokio::test]
async fn env_source_is_read_once_at_start() {
    let up = Upstream::ok().await;
    let var = "SIDEKEY_TEST_ENV_SOURCE_KEY";
    let key = logs::secret("env_key_value_4d5e6f");
    // SAFETY of the test: this binary's other tests do not read this variable.
    unsafe { std::env::set_var(var, &key) };
    let cfg = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[credentials.e]
source = "env"
var = "{var}"
[[routes]]
name = "r"
listen = "127.0.0.1:0"
upstream = "{}"
credential = "e"
inject = {{ header = "X-Key" }}
"#,
        up.url()
    );
    let sk = Sidekey::start(&cfg).await;
    sk.wait_ready(5).await;
    unsafe { std::env::set_var(var, "changed-later") };
    let (status, _, _) = support::get(&format!("{}/x", sk.url("r"))).await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].header("x-key"), Some(key.as_str()));
    sk.stop().await;
}
