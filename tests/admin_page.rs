//! The admin page in a real browser: the system Chromium driven by playwright-core (both installed by
//! scripts/install-test-peers, no browser downloaded) lists the credentials of a running sidekey,
//! shows a rotation without a reload, refreshes and revokes with its buttons (the upstream then gets
//! the new value) under its security headers with no CSP violation, needs the admin token when one
//! is set, shows failures, findings and a refused reload, and a page on another origin can neither
//! revoke, refresh nor read through the admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use support::{Reply, Sidekey, Upstream, get, logs, write_atomic};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The admin token when a test sets one.
const TOKEN: &str = "page-admin-token-5d9e27";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Credential `api-key` (a file) on route `files`, and `cluster` (an exec plugin issuing
/// `k8s-exec-token-N`, N counting its runs, each run after the first taking 3 s) on route
/// `cluster`; `admin` is more of the `[admin]` table (the token is in `{dir}/token`).
async fn start(up: &Upstream, admin: &str) -> Sidekey {
    for n in 1..10 {
        logs::secret(&format!("k8s-exec-token-{n}"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), logs::secret("page-file-key-0a1")).unwrap();
    std::fs::write(dir.path().join("token"), logs::secret(TOKEN)).unwrap();
    let script = root().join("tests/exec/exec-credential.sh");
    let cfg = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
{admin}
[credentials.api-key]
source = "file"
path = "{{dir}}/key"
max_age = "30d"
[credentials.cluster]
source = "exec"
command = ["{}"]
env = {{ COUNT = "{{dir}}/count", LIFETIME = "3600", DELAY = "3" }}
{}{}"#,
        script.display(),
        support::route("files", &up.url(), "api-key", support::BEARER, ""),
        support::route("cluster", &up.url(), "cluster", support::BEARER, ""),
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    sk
}

/// The driver, one JSON line per step.
struct Driver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    fn start(args: &[&str]) -> Driver {
        let dir = root().join("tests/peers/admin-page");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is missing: run scripts/install-test-peers"
        );
        assert!(
            std::path::Path::new("/usr/bin/chromium").exists(),
            "chromium is missing: run scripts/install-test-peers"
        );
        let mut child = Command::new("node")
            .arg(dir.join("drive.mjs"))
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install Node.js 20 or later)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Driver { child, lines }
    }

    /// The next step the driver reports; it must be `step`.
    async fn step(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser did not report `{step}` within 90 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("the driver ended before `{step}` (its error is above)"));
        logs::assert_no_secret_in(step, line.as_bytes());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["step"], step, "{v}");
        v
    }

    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the driver ends")
            .unwrap();
        assert!(status.success(), "the driver failed: {status}");
    }
}

async fn record(sk: &Sidekey, name: &str) -> Value {
    let (status, _, body) = get(&format!("{}/v1/credentials/{name}", sk.admin())).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// Waits up to 20 s for `name`'s inventory record to satisfy `done`.
async fn wait_record(sk: &Sidekey, name: &str, what: &str, done: impl Fn(&Value) -> bool) {
    for _ in 0..200 {
        if done(&record(sk, name).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {}", record(sk, name).await);
}

/// How often the exec plugin of `cluster` ran.
fn exec_runs(sk: &Sidekey) -> String {
    std::fs::read_to_string(sk.path("count"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The bearer value the upstream got on the last request through `route`.
async fn value_upstream_sees(sk: &Sidekey, up: &Upstream, route: &str) -> String {
    let (status, _, _) = get(&format!("{}/check", sk.url(route))).await;
    assert_eq!(status, 200);
    let seen = up.seen();
    let auth = seen.last().unwrap().header("authorization").unwrap();
    auth.trim_start_matches("Bearer ").to_owned()
}

#[tokio::test]
async fn the_page_lists_updates_live_refreshes_and_revokes() {
    let up = Upstream::ok().await;
    let sk = start(&up, "").await;
    assert_eq!(
        value_upstream_sees(&sk, &up, "cluster").await,
        "k8s-exec-token-1"
    );
    let artifacts = root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("admin-page.png");
    let admin = sk.admin();
    let mut drv = Driver::start(&["page", &admin, "api-key", "cluster", shot.to_str().unwrap()]);

    let listed = drv.step("listed").await;
    let rows = listed["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let rec = record(&sk, name).await;
        assert_eq!(row["fingerprint"], rec["fingerprint"], "{row}");
        assert_eq!(row["state"], "fresh", "{row}");
        let text = row["text"].as_str().unwrap();
        for words in [
            "source",
            "expires",
            "next refresh",
            "rotations",
            "uses",
            "timeline",
        ] {
            assert!(text.to_lowercase().contains(words), "{words} in {text}");
        }
    }
    let cluster = rows.iter().find(|r| r["name"] == "cluster").unwrap();
    let text = cluster["text"].as_str().unwrap();
    assert!(text.contains("exec") && text.contains(&up.url()), "{text}");
    // The route's modes and its requests in each (one request so far).
    assert!(text.contains("via listener 1"), "modes: {text}");
    assert!(
        text.contains("in 59m") || text.contains("in 1h"),
        "time left: {text}"
    );
    assert!(listed["config"].as_str().unwrap().contains("Config OK"));
    let phone = listed["phone_scroll_width"].as_u64().unwrap();
    assert!(phone <= 390, "the page is wider than a phone: {phone}px");
    assert!(shot.is_file(), "screenshot saved");

    // A new value at the file source: the open page shows it without a reload.
    write_atomic(&sk.path("key"), &logs::secret("page-file-key-1b2"));
    let rotated = drv.step("rotated").await;
    assert_eq!(
        rotated["after"],
        record(&sk, "api-key").await["fingerprint"],
        "{rotated}"
    );
    assert_eq!(
        rotated["loads"], 1,
        "loaded once, never reloaded: {rotated}"
    );

    // Refresh `cluster` with the button: its plugin runs again (3 s); the polls meanwhile
    // keep the button disabled, then the page shows the new value.
    let refreshed = drv.step("refreshed").await;
    assert_eq!(exec_runs(&sk), "2", "the source was asked again");
    assert_eq!(refreshed["dialogs"], 1, "confirmed once: {refreshed}");
    let during = &refreshed["in_flight"];
    assert_eq!(during["state"], "refreshing", "{refreshed}");
    assert_eq!(
        during["refresh_disabled"], true,
        "a poll during the refresh re-enabled its button: {refreshed}"
    );
    assert_eq!(refreshed["enabled_after"], true, "{refreshed}");
    assert!(
        refreshed["notice"]
            .as_str()
            .unwrap()
            .starts_with("Refreshed cluster: now fresh"),
        "{refreshed}"
    );
    assert_ne!(refreshed["after"], refreshed["before"], "{refreshed}");
    assert_eq!(
        refreshed["after"],
        record(&sk, "cluster").await["fingerprint"]
    );
    assert_eq!(refreshed["loads"], 1, "{refreshed}");
    assert_eq!(
        value_upstream_sees(&sk, &up, "cluster").await,
        "k8s-exec-token-2"
    );

    // Revoke `cluster` with the button: dismissed once (nothing happens), then confirmed.
    let revoked = drv.step("revoked").await;
    drv.finish().await;
    assert_eq!(revoked["after_dismiss"], revoked["before"], "{revoked}");
    assert_ne!(revoked["after"], revoked["before"], "{revoked}");
    assert_eq!(revoked["dialogs"].as_array().unwrap().len(), 3, "{revoked}");
    assert!(
        revoked["notice"]
            .as_str()
            .unwrap()
            .starts_with("Revoked cluster"),
        "{revoked}"
    );
    assert!(
        revoked["timeline"].as_str().unwrap().contains("revoked"),
        "{revoked}"
    );
    assert_eq!(revoked["loads"], 1, "{revoked}");
    assert_eq!(
        revoked["outside"],
        serde_json::json!([]),
        "no outside asset"
    );
    assert_security_headers(&revoked["headers"]);
    assert_eq!(revoked["csp_console"], serde_json::json!([]), "{revoked}");
    assert_eq!(
        revoked["csp_violations"],
        serde_json::json!([]),
        "{revoked}"
    );
    let problems = unexpected_errors(&revoked["problems"], &[]);
    assert!(problems.is_empty(), "console errors (CSP?): {problems:?}");
    let rec = record(&sk, "cluster").await;
    assert_eq!(revoked["after"], rec["fingerprint"]);
    assert_eq!(
        value_upstream_sees(&sk, &up, "cluster").await,
        "k8s-exec-token-3",
        "the upstream gets the value fetched after the revocation"
    );
    sk.stop().await;
}

/// The page's console errors, but for failed loads answered 404 (the browser's own
/// favicon request) or one of the `expected` statuses.
fn unexpected_errors<'a>(problems: &'a Value, expected: &[u16]) -> Vec<&'a str> {
    problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .filter(|p| {
            ![404].iter().chain(expected).any(|s| {
                p.starts_with(&format!(
                    "Failed to load resource: the server responded with a status of {s} "
                ))
            })
        })
        .collect()
}

/// The page and its script and style, as the browser received them: each under the
/// same-origin policy and the other security headers.
fn assert_security_headers(headers: &Value) {
    for file in ["/", "/app.js", "/style.css"] {
        let h = &headers[file];
        let csp = h["content-security-policy"]
            .as_str()
            .unwrap_or_else(|| panic!("no CSP on {file}: {h}"));
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.split(';').any(|d| d.trim() == directive),
                "{directive} in {file}'s CSP: {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(h[name], value, "{name} on {file}: {h}");
        }
    }
}

#[tokio::test]
async fn with_a_token_the_buttons_fail_visibly_until_it_is_typed_in() {
    let up = Upstream::ok().await;
    let sk = start(&up, r#"token = { file = "{dir}/token" }"#).await;
    let mut drv = Driver::start(&["token", &sk.admin(), "cluster", TOKEN]);
    let t = drv.step("token").await;
    drv.finish().await;
    // Without the token: a visible refusal, and nothing happened.
    let refused = t["refused"].as_str().unwrap();
    assert!(
        refused.starts_with("revoke cluster failed (HTTP 401 unauthorized)")
            && refused.contains("Type the admin token"),
        "{t}"
    );
    assert!(t["notice_class"].as_str().unwrap().contains("error"), "{t}");
    assert_eq!(t["after_refused"], t["before"], "{t}");
    assert_eq!(
        logs::lines_with("admin request refused")
            .iter()
            .filter(|l| l.contains("unauthorized") && l.contains("/v1/credentials/cluster/revoke"))
            .count(),
        1
    );
    // With it typed in: revoked, and the upstream gets the next value.
    assert!(
        t["revoked"]
            .as_str()
            .unwrap()
            .starts_with("Revoked cluster"),
        "{t}"
    );
    assert_ne!(t["after"], t["before"], "{t}");
    assert_eq!(t["after"], record(&sk, "cluster").await["fingerprint"]);
    assert_eq!(exec_runs(&sk), "2");
    assert_eq!(
        value_upstream_sees(&sk, &up, "cluster").await,
        "k8s-exec-token-2"
    );
    // The token stays in the script's memory: not in the page, a cookie or web storage
    // (the step line itself is checked for it, and sidekey's logs when it stops).
    let found = &t["found"];
    for place in [
        "in_text",
        "in_html",
        "in_cookie",
        "local_storage",
        "session_storage",
    ] {
        assert_eq!(found[place], false, "the token is {place}: {t}");
    }
    assert_eq!(found["local_storage_keys"], 0, "{t}");
    assert_eq!(found["session_storage_keys"], 0, "{t}");
    assert_eq!(found["field_type"], "password", "{t}");
    assert_eq!(unexpected_errors(&t["problems"], &[401]), [] as [&str; 0]);
    sk.stop().await;
}

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

    let artifacts = root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("admin-page-findings.png");
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

#[tokio::test]
async fn a_page_on_another_origin_cannot_use_the_admin_api() {
    let up = Upstream::ok().await;
    let sk = start(&up, "").await;
    let admin = sk.admin();
    let port = admin.rsplit(':').next().unwrap().to_owned();
    let before = record(&sk, "cluster").await["fingerprint"].clone();
    // A page on another local origin: a form POST (into a frame), a no-cors
    // fetch, a CORS fetch and a CORS read of the inventory.
    let html = format!(
        r#"<html><body><p id="report">running</p><iframe name="sink"></iframe>
<form id="f" method="POST" action="{admin}/v1/credentials/cluster/revoke" target="sink"><input name="x" value="1"></form>
<script>
const a = "{admin}/v1/credentials";
document.getElementById("f").submit();
Promise.all([
  fetch(a + "/cluster/revoke", {{ method: "POST", mode: "no-cors" }}).then(() => "no-cors sent", () => "no-cors failed"),
  fetch(a + "/cluster/refresh", {{ method: "POST" }}).then(r => "cors read " + r.status, () => "cors blocked"),
  fetch(a).then(r => r.text()).then(t => "inventory read " + t, () => "inventory blocked"),
]).then(r => {{ document.getElementById("report").textContent = r.join(", "); document.body.dataset.done = "yes"; }});
</script></body></html>"#
    );
    let page = Upstream::start(move |_| {
        Reply::ok(html.clone()).header("content-type", "text/html; charset=utf-8")
    })
    .await;
    let page_url = format!("http://localhost:{}/page", page.addr.port());
    let rebind = format!("http://rebind.test:{port}/v1/credentials");
    let mut drv = Driver::start(&["attack", &page_url, &rebind]);
    let attacked = drv.step("attacked").await;
    drv.finish().await;
    let report = attacked["report"].as_str().unwrap();
    assert!(report.contains("no-cors sent"), "{report}");
    assert!(report.contains("cors blocked"), "{report}");
    assert!(report.contains("inventory blocked"), "{report}");
    assert_eq!(attacked["rebind_status"], 403, "{attacked}");
    assert!(
        attacked["rebind_body"]
            .as_str()
            .unwrap()
            .contains("host_not_allowed"),
        "{attacked}"
    );
    // Nothing changed: the same value, the exec plugin never ran again.
    assert_eq!(record(&sk, "cluster").await["fingerprint"], before);
    let runs = std::fs::read_to_string(sk.path("count")).unwrap();
    assert_eq!(runs.trim(), "1", "the source was not asked again");
    // The browser did send them; sidekey refused each one.
    let refused = |path: &str| {
        logs::lines_with("admin request refused")
            .into_iter()
            .filter(|l| l.contains(path) && l.contains("browser_origin_refused"))
            .count()
    };
    assert!(
        refused("/v1/credentials/cluster/revoke") >= 2,
        "{}",
        logs::captured()
    );
    assert!(refused("/v1/credentials/cluster/refresh") >= 1);
    assert_eq!(up.count(), 0);
    sk.stop().await;
}
