//! The `exec` source against real scripts: one that works, one that fails, one that hangs, and a
//! Kubernetes ExecCredential plugin whose expiry makes the engine rotate the token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{Sidekey, Upstream, get, logs};

fn script(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/exec")
        .join(name);
    assert!(p.exists(), "missing test script {}", p.display());
    p.to_string_lossy().into_owned()
}

fn config(up: &Upstream, cred: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n{cred}\n{}",
        support::route("r", &up.url(), "x", support::BEARER, "")
    )
}

async fn record(sk: &Sidekey) -> serde_json::Value {
    let (status, _, body) = get(&format!("{}/v1/credentials/x", sk.admin())).await;
    assert_eq!(status, 200);
    logs::assert_no_secret_in("the inventory", &body);
    serde_json::from_slice(&body).unwrap()
}

async fn wait_for(
    sk: &Sidekey,
    secs: u64,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = record(sk).await;
        if ok(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {r:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_raw_token_from_a_command_reaches_the_upstream() {
    for n in 1..4 {
        logs::secret(&format!("exec-raw-ok-{n}"));
    }
    let up = Upstream::ok().await;
    let sk = Sidekey::start(&config(
        &up,
        &format!(
            r#"[credentials.x]
source = "exec"
command = ["{}"]
env = {{ COUNT = "{{dir}}/count", PREFIX = "ok" }}
timeout = "5s""#,
            script("token.sh")
        ),
    ))
    .await;
    sk.wait_ready(10).await;
    let (status, _, _) = get(&format!("{}/a", sk.url("r"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        up.seen()[0].header("authorization"),
        Some("Bearer exec-raw-ok-1")
    );
    let r = record(&sk).await;
    assert_eq!(r["source"], "exec");
    assert_eq!(r["state"], "fresh");
    assert!(r["expires_at"].is_null());
    sk.stop().await;
}

#[tokio::test]
async fn a_failing_command_reports_its_stderr_never_its_stdout() {
    logs::secret("stdout-must-not-leak-4f1c");
    let up = Upstream::ok().await;
    let sk = Sidekey::start(&config(
        &up,
        &format!(
            "[credentials.x]\nsource = \"exec\"\ncommand = [\"{}\"]",
            script("fail.sh")
        ),
    ))
    .await;
    let r = wait_for(&sk, 10, "a refresh failure", |r| !r["last_error"].is_null()).await;
    let err = r["last_error"].as_str().unwrap();
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("permission denied for role sidecar"), "{err}");
    assert!(!err.contains("stdout-must-not-leak"), "{err}");
    assert_eq!(r["state"], "failed");
    let (status, _, body) = get(&format!("{}/a", sk.url("r"))).await;
    assert_eq!(status, 503);
    assert_eq!(support::error_code(&body), "credential_unavailable");
    assert_eq!(up.count(), 0);
    sk.stop().await;
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout() {
    let up = Upstream::ok().await;
    let sk = Sidekey::start(&config(
        &up,
        &format!(
            "[credentials.x]\nsource = \"exec\"\ncommand = [\"{}\"]\ntimeout = \"300ms\"\nenv = {{ PIDFILE = \"{{dir}}/pid\" }}",
            script("hang.sh")
        ),
    ))
    .await;
    let r = wait_for(&sk, 10, "a timeout", |r| !r["last_error"].is_null()).await;
    let err = r["last_error"].as_str().unwrap();
    assert!(err.contains("did not finish within 300ms; killed"), "{err}");
    let pid = std::fs::read_to_string(sk.path("pid")).unwrap();
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while proc.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command still runs after its timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sk.stop().await;
}

#[tokio::test]
async fn an_exec_credential_with_an_expiry_is_rotated_before_it_expires() {
    for n in 1..20 {
        logs::secret(&format!("k8s-exec-token-{n}"));
    }
    let up = Upstream::ok().await;
    let sk = Sidekey::start(&config(
        &up,
        &format!(
            "[credentials.x]\nsource = \"exec\"\ncommand = [\"{}\"]\nenv = {{ COUNT = \"{{dir}}/count\", LIFETIME = \"3\" }}",
            script("exec-credential.sh")
        ),
    ))
    .await;
    sk.wait_ready(10).await;
    let first = record(&sk).await;
    assert!(first["expires_at"].is_string(), "{first:#}");
    assert!(first["next_refresh_at"].is_string(), "{first:#}");
    let rotated = wait_for(&sk, 10, "a rotation", |r| {
        r["rotations"].as_u64() >= Some(1)
    })
    .await;
    assert_ne!(rotated["fingerprint"], first["fingerprint"]);
    let (status, _, _) = get(&format!("{}/a", sk.url("r"))).await;
    assert_eq!(status, 200);
    let sent = up.seen()[0].header("authorization").unwrap().to_owned();
    assert!(
        sent.starts_with("Bearer k8s-exec-token-") && sent != "Bearer k8s-exec-token-1",
        "{sent}"
    );
    assert!(!logs::lines_with("event=\"rotated\"").is_empty());
    sk.stop().await;
}

/// How often `token.sh` has run (its count file).
fn runs(sk: &Sidekey) -> u64 {
    std::fs::read_to_string(sk.path("count")).map_or(0, |s| s.trim().parse().unwrap())
}

fn counted_token(prefix: &str) -> String {
    format!(
        "[credentials.x]\nsource = \"exec\"\ncommand = [\"{}\"]\nenv = {{ COUNT = \"{{dir}}/count\", PREFIX = \"{prefix}\" }}",
        script("token.sh")
    )
}

#[tokio::test]
async fn an_upstream_that_rejects_every_value_does_not_run_the_helper_per_request() {
    for n in 1..40 {
        logs::secret(&format!("exec-raw-deny-{n}"));
    }
    let accept = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = {
        let accept = accept.clone();
        Upstream::start(
            move |_| match accept.load(std::sync::atomic::Ordering::SeqCst) {
                true => support::Reply::ok("ok"),
                false => support::Reply::status(401),
            },
        )
        .await
    };
    let sk = Sidekey::start(&config(&up, &counted_token("deny"))).await;
    sk.wait_ready(10).await;
    assert_eq!(runs(&sk), 1);
    let client = support::client();
    let url = format!("{}/v1/things", sk.url("r"));
    let started = tokio::time::Instant::now();
    for _ in 0..200 {
        let (status, _) = support::get_with(&client, &url).await;
        assert_eq!(status, 401);
    }
    let elapsed = started.elapsed();
    // The first rejection refreshes (its replay is rejected too); later ones
    // refresh 5 s, 15 s, 35 s ... after it, the default interval doubling.
    let refreshes = [0u64, 5, 15, 35, 75, 155]
        .iter()
        .filter(|s| Duration::from_secs(**s) <= elapsed)
        .count() as u64;
    let ran = runs(&sk);
    eprintln!("200 rejected requests in {elapsed:?}: the helper ran {ran} times");
    assert!(ran >= 2, "the first rejection asks for a refresh");
    assert!(
        ran <= 1 + refreshes,
        "{ran} helper runs for 200 rejected requests in {elapsed:?}"
    );
    // The first request was replayed once; the others went straight back.
    assert_eq!(up.count(), 201);
    let r = record(&sk).await;
    assert_eq!(r["upstream_rejects_fresh_values"], true, "{r:#}");
    assert_eq!(r["upstream_rejections"], 201, "{r:#}");
    assert_eq!(
        logs::lines_with("event=\"upstream_rejects_fresh_values\"").len(),
        1
    );

    // Once a request is accepted with the current value, the flag clears.
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, _) = support::get_with(&client, &url).await;
    assert_eq!(status, 200);
    let r = record(&sk).await;
    assert_eq!(r["upstream_rejects_fresh_values"], false, "{r:#}");
    assert_eq!(runs(&sk), ran);
    sk.stop().await;
}

#[tokio::test]
async fn a_rotated_value_is_fetched_and_the_request_replayed_once() {
    for n in 1..4 {
        logs::secret(&format!("exec-raw-rot-{n}"));
    }
    // The upstream already moved to the second value the helper hands out.
    let up = Upstream::start(|s| match s.header("authorization") {
        Some("Bearer exec-raw-rot-2") => support::Reply::ok("ok"),
        _ => support::Reply::status(401),
    })
    .await;
    let sk = Sidekey::start(&config(&up, &counted_token("rot"))).await;
    sk.wait_ready(10).await;
    let (status, _, body) = support::send(
        http::Method::POST,
        &format!("{}/a", sk.url("r")),
        &[],
        "payload",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(runs(&sk), 2);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, "payload");
    let r = record(&sk).await;
    assert_eq!(r["upstream_rejects_fresh_values"], false, "{r:#}");
    assert_eq!(r["rotations"], 1);
    sk.stop().await;
}
