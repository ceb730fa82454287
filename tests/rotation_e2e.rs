//! Rotation end to end with real upstreams: one refresh for a burst of 401s and replay, no replay
//! of streamed bodies, revoke (admin API and CLI), the revocation probe, and max_age.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use bytes::Bytes;
use http::Method;
use sidekey::sync::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::{Reply, Seen, Sidekey, Upstream, get, logs, send, write_atomic};

fn script(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/exec")
        .join(name);
    p.to_string_lossy().into_owned()
}

fn route(up: &Upstream, extra: &str) -> String {
    support::route("r", &up.url(), "x", support::BEARER, extra)
}

/// An upstream that accepts only the value in `valid` (401 otherwise, after `delay`).
async fn strict_upstream(valid: Arc<Mutex<String>>, delay: Duration) -> Upstream {
    Upstream::start(move |s: &Seen| {
        let want = format!("Bearer {}", valid.lock());
        if s.header("authorization") == Some(want.as_str()) {
            Reply::ok("ok")
        } else {
            Reply::status(401).delayed(delay)
        }
    })
    .await
}

async fn record(sk: &Sidekey) -> serde_json::Value {
    let (status, _, body) = get(&format!("{}/v1/credentials/x", sk.admin())).await;
    assert_eq!(status, 200);
    logs::assert_no_secret_in("the inventory", &body);
    serde_json::from_slice(&body).unwrap()
}

fn fetches(sk: &Sidekey) -> u64 {
    std::fs::read_to_string(sk.path("count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_401s_costs_one_refresh_and_small_requests_are_replayed() {
    // Two rotations follow each other within milliseconds here: the
    // credential lifts the rate limit on rejection refreshes (min_refresh_interval,
    // tested in exec_source.rs and engine_clock.rs) so each gets its refresh.
    for n in 1..6 {
        logs::secret(&format!("exec-raw-burst-{n}"));
    }
    let valid = Arc::new(Mutex::new("exec-raw-burst-1".to_string()));
    let up = strict_upstream(valid.clone(), Duration::from_millis(300)).await;
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.x]\nsource = \"exec\"\ncommand = [\"{}\"]\nenv = {{ COUNT = \"{{dir}}/count\", PREFIX = \"burst\" }}\nmin_refresh_interval = \"0s\"\n{}",
        script("token.sh"),
        route(&up, "")
    );
    let sk = Sidekey::start(&cfg).await;
    sk.wait_ready(10).await;
    assert_eq!(fetches(&sk), 1);
    let (status, _, _) = get(&format!("{}/warm", sk.url("r"))).await;
    assert_eq!(status, 200);

    // The upstream now wants the next value: the current one is rejected.
    *valid.lock() = "exec-raw-burst-2".into();
    let url = sk.url("r");
    let burst: Vec<_> = (0..40)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                send(
                    Method::POST,
                    &format!("{url}/charge/{i}"),
                    &[],
                    format!("body-{i}"),
                )
                .await
            })
        })
        .collect();
    for b in burst {
        let (status, _, body) = b.await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(fetches(&sk), 2, "exactly one refresh for the burst");
    let r = record(&sk).await;
    assert_eq!(r["upstream_rejections"], 40);
    assert_eq!(r["rotations"], 1);
    // Each request reached the upstream twice, the replay with its body and the new value.
    let seen = up.seen();
    for i in 0..40 {
        let tries: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.target == format!("/charge/{i}"))
            .collect();
        assert_eq!(tries.len(), 2, "request {i}");
        assert_eq!(
            tries[0].header("authorization"),
            Some("Bearer exec-raw-burst-1")
        );
        assert_eq!(
            tries[1].header("authorization"),
            Some("Bearer exec-raw-burst-2")
        );
        assert_eq!(tries[1].body, Bytes::from(format!("body-{i}")));
    }
    assert_eq!(
        logs::lines_with("event=\"rejected_by_upstream\" credential=\"x\"")
            .iter()
            .filter(|l| l.contains("refresh_requested=true"))
            .count(),
        1
    );

    // A body too large to keep is streamed once and never replayed.
    *valid.lock() = "exec-raw-burst-3".into();
    let big = vec![b'z'; 100 * 1024];
    let before = up.count();
    let (status, _, _) = send(Method::POST, &format!("{url}/upload"), &[], big).await;
    assert_eq!(status, 401, "the app gets the upstream's answer");
    let uploads: Vec<Seen> = up
        .seen()
        .into_iter()
        .filter(|s| s.target == "/upload")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].body_len, 100 * 1024);
    assert_eq!(up.count(), before + 1);
    // ... but the rejection still refreshed the credential for the next request.
    let (status, _, _) = send(Method::POST, &format!("{url}/after"), &[], "small").await;
    assert_eq!(status, 200);
    assert_eq!(fetches(&sk), 3);
    sk.stop().await;
}

/// Revokes `x` through `how`, then checks the revoked value is never sent and
/// requests get 503 until a new value is written.
async fn revoke_scenario(how: &str) {
    let old = logs::secret(&format!("revoke-old-value-{how}"));
    let new = logs::secret(&format!("revoke-new-value-{how}"));
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), "admin-token-77aa\n").unwrap();
    logs::secret("admin-token-77aa");
    std::fs::write(dir.path().join("key"), &old).unwrap();
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = {{ file = \"{{dir}}/admin-token\" }}\n[credentials.x]\nsource = \"file\"\npath = \"{{dir}}/key\"\n{}",
        route(&up, "")
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    let url = sk.url("r");
    for _ in 0..3 {
        assert_eq!(get(&format!("{url}/a")).await.0, 200);
    }
    let revoked_fp = record(&sk).await["fingerprint"].clone();

    let admin = sk.admin().trim_start_matches("http://").to_owned();
    match how {
        "api" => {
            // Without the token the revoke is refused and nothing changes.
            let path = format!("{}/v1/credentials/x/revoke", sk.admin());
            let (status, _, _) = send(Method::POST, &path, &[], "").await;
            assert_eq!(status, 401);
            assert_eq!(get(&format!("{url}/a")).await.0, 200);
            let (status, _, body) = send(
                Method::POST,
                &path,
                &[("authorization", "Bearer admin-token-77aa")],
                "",
            )
            .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let r: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(r["state"], "revoked");
            assert!(r["fingerprint"].is_null());
        }
        _ => {
            let bin = env!("CARGO_BIN_EXE_sidekey");
            let no_token = tokio::process::Command::new(bin)
                .args(["revoke", "x", "--admin", &admin])
                .env_remove("SIDEKEY_ADMIN_TOKEN_FILE")
                .output()
                .await
                .unwrap();
            assert_eq!(no_token.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&no_token.stderr).contains("401"));
            let out = tokio::process::Command::new(bin)
                .args(["revoke", "x", "--admin", &admin, "--token-file"])
                .arg(sk.path("admin-token"))
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("x: revoke done; state revoked"), "{stdout}");
        }
    }
    let seen_at_revoke = up.count();
    // The file still holds the revoked value: it must not come back.
    for _ in 0..5 {
        let (status, _, body) = get(&format!("{url}/a")).await;
        assert_eq!(status, 503);
        assert_eq!(support::error_code(&body), "credential_unavailable");
    }
    sk.app
        .credential("x")
        .unwrap()
        .refresh_now()
        .await
        .unwrap_err();
    assert_eq!(get(&format!("{url}/a")).await.0, 503);
    let r = record(&sk).await;
    assert_eq!(r["state"], "revoked");
    assert!(r["last_error"].as_str().unwrap().contains("revoked value"));
    assert!(
        !logs::lines_with(&format!(
            "event=\"revoked\" credential=\"x\" fingerprint={}",
            revoked_fp.as_str().unwrap()
        ))
        .is_empty()
    );

    write_atomic(&sk.path("key"), &new);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = get(&format!("{url}/a")).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new value after the revoke"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after: Vec<Seen> = up.seen().split_off(seen_at_revoke);
    assert!(!after.is_empty());
    for s in &after {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {new}").as_str())
        );
    }
    // (A re-read the file events set off may still be in flight.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while record(&sk).await["state"] != "fresh" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#}",
            record(&sk).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sk.stop().await;
}

#[tokio::test]
async fn revoke_through_the_admin_api_never_sends_the_revoked_value() {
    revoke_scenario("api").await;
}

#[tokio::test]
async fn revoke_through_the_cli_never_sends_the_revoked_value() {
    revoke_scenario("cli").await;
}

/// Rotates a file credential once and returns the inventory record after the probe had time to run.
async fn probe_scenario(
    up: &Upstream,
    valid: Option<Arc<Mutex<String>>>,
    tag: &str,
) -> serde_json::Value {
    let v1 = logs::secret(&format!("probe-{tag}-value-one"));
    let v2 = logs::secret(&format!("probe-{tag}-value-two"));
    if let Some(v) = &valid {
        *v.lock() = v1.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), &v1).unwrap();
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.x]\nsource = \"file\"\npath = \"{{dir}}/key\"\n{}",
        route(
            up,
            "revocation_check = { method = \"GET\", path = \"/whoami?probe=1\", expect_status = [401, 403], after = \"200ms\" }"
        )
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    let old_fp = record(&sk).await["fingerprint"].clone();
    // The origin rotates: the upstream learns the new value, sidekey reads it.
    if let Some(v) = &valid {
        *v.lock() = v2.clone();
    }
    write_atomic(&sk.path("key"), &v2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !up.seen().iter().any(|s| s.target == "/whoami?probe=1") {
        assert!(tokio::time::Instant::now() < deadline, "no probe was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let probes: Vec<Seen> = up
        .seen()
        .into_iter()
        .filter(|s| s.target == "/whoami?probe=1")
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(
        probes[0].header("authorization"),
        Some(format!("Bearer {v1}").as_str())
    );
    assert_eq!(probes[0].method, "GET");
    let r = record(&sk).await;
    assert_eq!(r["rotations"], 1);
    let metrics = get(&format!("{}/metrics", sk.admin())).await.2;
    let flagged = u8::from(r["previous_value_still_valid"].is_object());
    let line =
        format!("sidekey_credential_previous_value_still_valid{{credential=\"x\"}} {flagged}");
    assert!(String::from_utf8_lossy(&metrics).contains(&line), "{line}");
    if let Some(p) = r["previous_value_still_valid"].as_object() {
        assert_eq!(p["fingerprint"], old_fp);
        assert_eq!(p["route"], "r");
        assert_eq!(p["status"], 200);
    }
    sk.stop().await;
    r
}

#[tokio::test]
async fn the_revocation_probe_flags_an_upstream_that_still_accepts_the_previous_value() {
    let lenient = Upstream::ok().await;
    let r = probe_scenario(&lenient, None, "lenient").await;
    assert!(r["previous_value_still_valid"].is_object(), "{r:#}");
    let events = logs::lines_with("event=\"previous_value_still_valid\"");
    assert!(
        events
            .iter()
            .any(|l| l.contains("route=\"r\"") && l.contains("status=200")),
        "{events:?}"
    );

    let valid = Arc::new(Mutex::new(String::new()));
    let strict = strict_upstream(valid.clone(), Duration::ZERO).await;
    let r = probe_scenario(&strict, Some(valid), "strict").await;
    assert!(r["previous_value_still_valid"].is_null(), "{r:#}");
}

fn set_mtime(path: &std::path::Path, ago: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[tokio::test]
async fn max_age_marks_an_old_value_overdue_and_refuses_it_when_enforced() {
    for enforce in [false, true] {
        let key = logs::secret(&format!("old-file-value-{enforce}"));
        let up = Upstream::ok().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, &key).unwrap();
        set_mtime(&path, Duration::from_secs(7200));
        let cfg = format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.x]\nsource = \"file\"\npath = \"{{dir}}/key\"\nmax_age = \"1h\"\nenforce_max_age = {enforce}\n{}",
            route(&up, "")
        );
        let sk = Sidekey::start_in(dir, &cfg).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while record(&sk).await["fingerprint"].is_null() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // (A file event may set off a re-read, shown as `refreshing` meanwhile.)
        let mut r = record(&sk).await;
        while r["state"] == "refreshing" {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
            r = record(&sk).await;
        }
        assert_eq!(r["rotation_overdue"], true);
        assert_eq!(r["max_age_s"], 3600);
        let (status, _, body) = get(&format!("{}/a", sk.url("r"))).await;
        let (_, _, metrics) = get(&format!("{}/metrics", sk.admin())).await;
        let metrics = String::from_utf8_lossy(&metrics).into_owned();
        assert!(
            metrics.contains("sidekey_credential_rotation_overdue{credential=\"x\"} 1"),
            "{metrics}"
        );
        if enforce {
            assert_eq!(status, 503);
            assert_eq!(support::error_code(&body), "credential_expired");
            assert_eq!(r["state"], "expired");
            assert_eq!(up.count(), 0);
        } else {
            assert_eq!(status, 200);
            assert_eq!(r["state"], "rotation_overdue");
        }
        let events: Vec<String> = logs::lines_with("event=\"rotation_overdue\" credential=\"x\"")
            .into_iter()
            .filter(|l| l.contains(r["fingerprint"].as_str().unwrap()))
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        sk.stop().await;
    }
}
