//! The admin page in the system Chromium (driven by playwright-core) showing what goes wrong: a source
//! that fails (stale, its last error, `refresh_failed` in its timeline), a value past its max_age
//! (rotation overdue, or expired when enforced), upstream rejections, an old value the upstream still
//! accepts after a rotation, and a refused config reload; each state by word, class and colour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::Value;
use std::time::Duration;
use support::admin_page::{Driver, artifacts, record, unexpected_errors, wait_record};
use support::{Reply, Sidekey, Upstream, get, logs, write_atomic};

/// A file credential whose file was last written `age` ago (its value's issue time).
fn aged_file(path: &std::path::Path, value: &str, age: Duration) {
    std::fs::write(path, logs::secret(value)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn the_page_shows_failures_findings_and_a_refused_reload() {
    // The upstream rejects `/reject` and accepts everything else, a revocation probe included.
    let up = Upstream::start(|s| match s.target.as_str() {
        "/reject" => Reply::status(401),
        _ => Reply::ok("ok"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let two_days = Duration::from_secs(2 * 86400);
    aged_file(&dir.path().join("aged"), "page-aged-value-3f1", two_days);
    aged_file(
        &dir.path().join("enforced"),
        "page-enforced-value-8c2",
        two_days,
    );
    std::fs::write(
        dir.path().join("flaky"),
        logs::secret("page-flaky-value-1d4"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rotating"),
        logs::secret("page-rotating-value-1"),
    )
    .unwrap();
    let probe = r#"revocation_check = { method = "GET", path = "/probe", expect_status = [401], after = "1s" }"#;
    let cfg = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[credentials.aged]
source = "file"
path = "{{dir}}/aged"
max_age = "1d"
[credentials.enforced]
source = "file"
path = "{{dir}}/enforced"
max_age = "1d"
enforce_max_age = true
[credentials.flaky]
source = "file"
path = "{{dir}}/flaky"
[credentials.rotating]
source = "file"
path = "{{dir}}/rotating"
{}{}{}{}"#,
        support::route("aged", &up.url(), "aged", support::BEARER, ""),
        support::route("enforced", &up.url(), "enforced", support::BEARER, ""),
        support::route("flaky", &up.url(), "flaky", support::BEARER, ""),
        support::route("probed", &up.url(), "rotating", support::BEARER, probe),
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    wait_record(&sk, "rotating", "the first value", |r| {
        r["state"] == "fresh"
    })
    .await;
    wait_record(&sk, "enforced", "past max_age", |r| r["state"] == "expired").await;

    // The upstream rejects `aged`'s value once.
    let (status, _, _) = get(&format!("{}/reject", sk.url("aged"))).await;
    assert_eq!(status, 401);
    wait_record(&sk, "aged", "a rejection", |r| {
        r["upstream_rejections"] == 1
    })
    .await;
    // `rotating` gets a new value; the probe finds the old one still accepted.
    let old = record(&sk, "rotating").await["fingerprint"].clone();
    write_atomic(&sk.path("rotating"), &logs::secret("page-rotating-value-2"));
    wait_record(&sk, "rotating", "the probe's finding", |r| {
        r["previous_value_still_valid"]["fingerprint"] == old
    })
    .await;
    // `flaky`'s file goes away: the last value serves, stale, with the error.
    std::fs::remove_file(sk.path("flaky")).unwrap();
    wait_record(&sk, "flaky", "a failed refresh", |r| r["state"] == "stale").await;
    // A broken config file: the reload is refused, the running config stays.
    sk.app.watch_config();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let config = sk.path("sidekey.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let broken = format!("{text}\n[[routes]]\nname = \"d\"\nbogus_key = 1\n");
    write_atomic(&config, &broken);
    let mut refused = false;
    for _ in 0..100 {
        let (_, _, body) = get(&format!("{}/v1/config/status", sk.admin())).await;
        let status: Value = serde_json::from_slice(&body).unwrap();
        refused = status["reload_ok"] == false;
        if refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the broken file was refused");

    let shot = artifacts().join("admin-page-findings.png");
    let mut drv = Driver::start(&["findings", &sk.admin(), shot.to_str().unwrap()]);
    let f = drv.step("findings").await;
    drv.finish().await;
    let rows = f["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {f}"))
    };
    let field = |name: &str, field: &str| -> (String, String) {
        let v = &row(name)["fields"][field];
        (
            v["text"].as_str().unwrap().to_owned(),
            v["class"].as_str().unwrap().to_owned(),
        )
    };
    let events = |name: &str| -> Vec<(String, String)> {
        row(name)["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["class"].as_str().unwrap().to_owned(),
                    e["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    // Each state by word, class and colour.
    for (name, state, class) in [
        ("rotating", "fresh", "s-fresh"),
        ("flaky", "stale", "s-stale"),
        ("aged", "rotation overdue", "s-rotation_overdue"),
        ("enforced", "expired", "s-expired"),
    ] {
        assert_eq!(row(name)["state"], state, "{name}: {f}");
        assert!(
            row(name)["class"]
                .as_str()
                .unwrap()
                .split(' ')
                .any(|c| c == class),
            "{name}: {f}"
        );
        assert_eq!(
            row(name)["timeline_open"],
            true,
            "an opened timeline stays open: {f}"
        );
    }
    let colours: std::collections::BTreeSet<&str> = ["rotating", "flaky", "aged", "enforced"]
        .iter()
        .map(|n| row(n)["colour"].as_str().unwrap())
        .collect();
    assert_eq!(colours.len(), 4, "one colour per state: {colours:?}");

    // The failed source: its error, and `refresh_failed` in its timeline.
    let (error, class) = field("flaky", "last_error");
    assert!(
        error.contains("cannot read") && error.contains("flaky"),
        "{error}"
    );
    assert_eq!(class, "err");
    assert_eq!(
        field("rotating", "last_error"),
        ("none".to_owned(), String::new())
    );
    let failed = events("flaky");
    assert!(
        failed
            .iter()
            .any(|(c, t)| c == "refresh_failed" && t.contains("refresh failed: cannot read")),
        "{failed:?}"
    );
    assert_eq!(
        failed[failed.len() - 1].0,
        "issued",
        "newest first: {failed:?}"
    );
    // Past max_age: overdue, or expired when enforced.
    let (overdue, class) = field("aged", "rotation_overdue");
    assert!(overdue.starts_with("yes (max age 1d"), "{overdue}");
    assert_eq!(class, "warn");
    assert_eq!(field("rotating", "rotation_overdue").0, "no");
    assert!(
        events("enforced").iter().any(|(c, _)| c == "expired"),
        "{f}"
    );
    // Upstream rejections.
    assert_eq!(field("aged", "upstream_rejections").0, "1");
    assert_eq!(field("rotating", "upstream_rejections").0, "0");
    // The old value still accepted after the rotation.
    let (still, class) = field("rotating", "previous_value_still_valid");
    let old = old.as_str().unwrap();
    assert!(
        still.starts_with(&format!("yes: {old} accepted by route probed (HTTP 200")),
        "{still}"
    );
    assert_eq!(class, "warn");
    assert_eq!(field("rotating", "rotations").0, "1");
    assert!(
        events("rotating").iter().any(|(c, _)| c == "rotated"),
        "{f}"
    );
    assert_eq!(field("flaky", "previous_value_still_valid").0, "no");

    // The refused reload, with its reason.
    let config = &f["config"];
    assert!(
        config["class"].as_str().unwrap().contains("bad"),
        "{config}"
    );
    let text = config["text"].as_str().unwrap();
    assert!(text.starts_with("Config reload refused"), "{text}");
    assert!(
        text.contains("sidekey.toml:") && text.contains("bogus_key"),
        "{text}"
    );
    assert_eq!(unexpected_errors(&f["problems"], &[]), [] as [&str; 0]);
    sk.stop().await;
}
