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
