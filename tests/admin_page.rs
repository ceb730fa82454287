//! The admin page in a real browser: the system Chromium driven by playwright-core (both installed by
//! scripts/install-test-peers, no browser downloaded) lists the credentials of a running sidekey,
//! shows a rotation without a reload, revokes with its button (the upstream then gets the new
//! value), and a page on another origin can neither revoke, refresh nor read through the admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use support::{Reply, Sidekey, Upstream, get, logs, write_atomic};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Credential `api-key` (a file) on route `files`, and `cluster` (an exec
/// plugin issuing `k8s-exec-token-N`, N counting its runs) on route `cluster`.
async fn start(up: &Upstream) -> Sidekey {
    for n in 1..10 {
        logs::secret(&format!("k8s-exec-token-{n}"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), logs::secret("page-file-key-0a1")).unwrap();
    let script = root().join("tests/exec/exec-credential.sh");
    let cfg = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[credentials.api-key]
source = "file"
path = "{{dir}}/key"
max_age = "30d"
[credentials.cluster]
source = "exec"
command = ["{}"]
env = {{ COUNT = "{{dir}}/count", LIFETIME = "3600" }}
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

/// The bearer value the upstream got on the last request through `route`.
async fn value_upstream_sees(sk: &Sidekey, up: &Upstream, route: &str) -> String {
    let (status, _, _) = get(&format!("{}/check", sk.url(route))).await;
    assert_eq!(status, 200);
    let seen = up.seen();
    let auth = seen.last().unwrap().header("authorization").unwrap();
    auth.trim_start_matches("Bearer ").to_owned()
}

#[tokio::test]
async fn the_page_lists_updates_live_and_revokes() {
    let up = Upstream::ok().await;
    let sk = start(&up).await;
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

    // Revoke `cluster` with the button: dismissed once (nothing happens), then confirmed.
    let revoked = drv.step("revoked").await;
    drv.finish().await;
    assert_eq!(revoked["after_dismiss"], revoked["before"], "{revoked}");
    assert_ne!(revoked["after"], revoked["before"], "{revoked}");
    assert_eq!(revoked["dialogs"].as_array().unwrap().len(), 2, "{revoked}");
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
    let problems: Vec<&Value> = revoked["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p.as_str().unwrap().contains("404"))
        .collect();
    assert!(problems.is_empty(), "console errors (CSP?): {problems:?}");
    let rec = record(&sk, "cluster").await;
    assert_eq!(revoked["after"], rec["fingerprint"]);
    assert_eq!(
        value_upstream_sees(&sk, &up, "cluster").await,
        "k8s-exec-token-2",
        "the upstream gets the value fetched after the revocation"
    );
    sk.stop().await;
}

#[tokio::test]
async fn a_page_on_another_origin_cannot_use_the_admin_api() {
    let up = Upstream::ok().await;
    let sk = start(&up).await;
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
