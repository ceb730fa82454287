//! No secret in any log line (captured at trace), error body, admin answer, metric, or stand-in answer,
//! across the paths most likely to leak one: rejections, failures, rotation, revocation, bad values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use std::time::Duration;
use support::logs::{self, assert_no_secret_in};
use support::{Reply, Sidekey, Upstream, get, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_anywhere() {
    logs::init();
    let first = logs::secret("leakcheck_first_Zq81xW");
    let second = logs::secret("leakcheck_second_Pp02yV");
    let bad = logs::secret("leakcheck_bad\u{1}value_Qr");
    // An upstream that rejects the first value, accepts the second.
    let ok_value = format!("Bearer {second}");
    let up = Upstream::start(move |s| {
        if s.header("authorization") == Some(ok_value.as_str()) {
            Reply::ok("yes")
        } else {
            Reply::status(401)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), &first).unwrap();
    let cfg = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[credentials.k]
source = "file"
path = "{{dir}}/key"
max_age = "1s"
[credentials.q]
source = "file"
path = "{{dir}}/key"
[[routes]]
name = "r"
listen = "127.0.0.1:0"
upstream = "{}"
credential = "k"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
  [[routes.allow]]
  paths = ["/ok/**"]
[[routes]]
name = "standin"
listen = "127.0.0.1:0"
upstream = "stand-in"
credential = "q"
inject = {{ query = "api_key" }}
[[routes]]
name = "down"
listen = "127.0.0.1:0"
upstream = "http://127.0.0.1:1"
credential = "k"
inject = {{ basic = {{ username = "u" }} }}
"#,
        up.url()
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let mut bodies = Vec::new();

    // Rejected by the upstream (401): logged as a rejection, refresh asked.
    bodies.push(get(&format!("{}/ok/1", sk.url("r"))).await.2);
    // Outside the scope; upstream unreachable; stand-in answer.
    bodies.push(
        send(Method::DELETE, &format!("{}/nope", sk.url("r")), &[], "")
            .await
            .2,
    );
    bodies.push(get(&format!("{}/x", sk.url("down"))).await.2);
    let standin = get(&format!("{}/x?api_key=mine", sk.url("standin")))
        .await
        .2;
    assert!(
        String::from_utf8_lossy(&standin).contains("fingerprint="),
        "the stand-in shows the fingerprint"
    );
    bodies.push(standin);

    // A value that cannot go in a header: refused, last good value kept.
    support::write_atomic(&sk.path("key"), &bad);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Rotation to the accepted value; requests succeed.
    support::write_atomic(&sk.path("key"), &second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, body) = get(&format!("{}/ok/2", sk.url("r"))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // Revoke, refresh, and every admin answer.
    bodies.push(
        send(
            Method::POST,
            &format!("{}/v1/credentials/k/revoke", sk.admin()),
            &[],
            "",
        )
        .await
        .2,
    );
    bodies.push(
        send(
            Method::POST,
            &format!("{}/v1/credentials/q/refresh", sk.admin()),
            &[],
            "",
        )
        .await
        .2,
    );
    bodies.push(get(&format!("{}/ok/3", sk.url("r"))).await.2);
    tokio::time::sleep(Duration::from_millis(1100)).await; // past max_age
    for p in [
        "/v1/credentials",
        "/v1/credentials/k",
        "/metrics",
        "/readyz",
        "/healthz",
    ] {
        bodies.push(get(&format!("{}{p}", sk.admin())).await.2);
    }
    assert!(
        !logs::lines_with("cannot carry").is_empty(),
        "the refused value is explained in the log"
    );

    for b in &bodies {
        assert_no_secret_in("an answer", b);
    }
    assert!(
        !logs::lines_with("rejected_by_upstream").is_empty(),
        "the rejection was logged"
    );
    assert!(
        !logs::lines_with("event=\"revoked\"").is_empty(),
        "the revocation was logged"
    );
    sk.stop().await; // asserts no registered secret in the captured logs
}
