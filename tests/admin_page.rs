//! The admin page in a real browser: the system Chromium driven by playwright-core (both installed by
//! scripts/install-test-peers, no browser downloaded) lists the credentials of a running sidekey,
//! shows a rotation without a reload, refreshes and revokes with its buttons (the upstream then gets
//! the new value) under its security headers with no CSP violation, needs the admin token when one
//! is set, and a page on another origin can neither revoke, refresh nor read through the admin API.
//! (Failures and findings on the page: admin_page_findings.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::admin_page::{Driver, artifacts, record, unexpected_errors};
use support::{Reply, Sidekey, Upstream, get, logs, write_atomic};

/// The admin token when a test sets one.
const TOKEN: &str = "page-admin-token-5d9e27";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Credential `api-key` (a file) on route `files`, and `cluster` (an exec plugin issuing
/// `k8s-exec-token-N`, N counting its runs, each run after the first taking 4 s) on route
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
env = {{ COUNT = "{{dir}}/count", LIFETIME = "3600", DELAY = "4" }}
{}{}"#,
        script.display(),
        support::route("files", &up.url(), "api-key", support::BEARER, ""),
        support::route("cluster", &up.url(), "cluster", support::BEARER, ""),
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    sk
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
    let shot = artifacts().join("admin-page.png");
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

    // Refresh `cluster` with the button: its plugin runs again (4 s); the polls meanwhile
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
    // The browser did send them (a form POST and fetches to revoke, one to
    // refresh); sidekey refused each one. The warnings are thinned out to
    // one a second, the counter is not.
    let (_, _, metrics) = support::get(&format!("{}/metrics", sk.admin())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    let refused: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "sidekey_admin_requests_refused_total{error=\"browser_origin_refused\"} ",
            )
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refusal count in:\n{metrics}"));
    assert!(refused >= 3, "{refused} refused: {metrics}");
    assert!(!logs::lines_with("browser_origin_refused").is_empty());
    assert_eq!(up.count(), 0);
    sk.stop().await;
}
