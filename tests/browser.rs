//! Browsers on the same machine: a cross-site form POST, an `<img>` GET and a DNS-rebinding page are
//! refused and never reach the upstream (also from a page in headless Chromium); an upstream's CORS
//! headers reach only allowed origins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::curl::{Answer, curl};
use support::{Reply, Upstream, logs, one_route, with_key};

fn refused(a: &Answer, code: &str, words: &str) {
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some(code), "{}", a.body);
    assert!(a.body.contains(words), "{words:?} in {}", a.body);
}

#[tokio::test]
async fn pages_on_other_origins_cannot_use_the_credential() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "browser_key_aa11",
        &one_route(&up.url(), support::BEARER, ""),
    )
    .await;
    let url = format!("{}/v1/charges", sk.url("r"));
    // What a browser sends for a form on http://evil.example posting to the route.
    let form = curl(&[
        "-X",
        "POST",
        "-H",
        "Origin: http://evil.example",
        "-H",
        "Sec-Fetch-Site: cross-site",
        "-H",
        "Sec-Fetch-Mode: navigate",
        "-d",
        "amount=100000&currency=usd",
        &url,
    ])
    .await;
    refused(&form, "browser_origin_refused", "`http://evil.example`");
    // A sandboxed frame, a file: page or a redirect sends `Origin: null`.
    let null = curl(&["-X", "POST", "-H", "Origin: null", "-d", "a=1", &url]).await;
    refused(&null, "browser_origin_refused", "`null`");
    // `<img src>` and other no-cors GETs carry no Origin, only Sec-Fetch-Site.
    for site in ["cross-site", "same-site"] {
        let img = curl(&["-H", &format!("Sec-Fetch-Site: {site}"), &url]).await;
        refused(&img, "browser_origin_refused", site);
    }
    assert_eq!(up.count(), 0, "no browser request reached the upstream");
    // Typed into the address bar, or from a client that is not a browser: passes.
    let typed = curl(&["-H", "Sec-Fetch-Site: none", &url]).await;
    assert_eq!(typed.status, 200, "{}", typed.body);
    let app = curl(&["-X", "POST", "-d", "amount=1", &url]).await;
    assert_eq!(app.status, 200, "{}", app.body);
    assert_eq!(up.count(), 2);
    sk.stop().await;
}

#[tokio::test]
async fn a_dns_rebinding_name_is_refused_loopback_names_pass() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "browser_key_bb22",
        &one_route(&up.url(), support::BEARER, ""),
    )
    .await;
    let base = sk.url("r");
    let port = base.rsplit(':').next().unwrap().to_owned();
    // attacker.example resolving to 127.0.0.1, as after a rebinding: same
    // origin as the attacker's page, so the browser would let it read the answer.
    let rebound = curl(&[
        "--resolve",
        &format!("attacker.example:{port}:127.0.0.1"),
        &format!("http://attacker.example:{port}/v1/charges"),
    ])
    .await;
    refused(&rebound, "host_not_allowed", "`attacker.example:");
    let spoofed = curl(&["-H", "Host: 0.0.0.0", &format!("{base}/v1/charges")]).await;
    refused(&spoofed, "host_not_allowed", "`0.0.0.0`");
    assert_eq!(up.count(), 0);
    for host in [
        format!("localhost:{port}"),
        format!("app.localhost:{port}"),
        format!("127.0.0.2:{port}"),
        format!("[::1]:{port}"),
    ] {
        let a = curl(&[
            "-H",
            &format!("Host: {host}"),
            &format!("{base}/v1/charges"),
        ])
        .await;
        assert_eq!(a.status, 200, "Host: {host}: {}", a.body);
    }
    sk.stop().await;
}

#[tokio::test]
async fn cors_headers_reach_only_allowed_origins() {
    let up = Upstream::start(|_| {
        Reply::ok("{\"charges\":[]}")
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-credentials", "true")
            .header("access-control-expose-headers", "x-total")
            .header("x-total", "0")
    })
    .await;
    let sk = with_key(
        "browser_key_cc33",
        &one_route(
            &up.url(),
            support::BEARER,
            "allow_browser_origins = [\"http://localhost:5173\"]\nallowed_hosts = [\"sidekey.test\"]",
        ),
    )
    .await;
    let url = format!("{}/v1/charges", sk.url("r"));
    // The app (no Origin): the answer, without the upstream's CORS grant.
    let app = curl(&[&url]).await;
    assert_eq!(app.status, 200);
    assert_eq!(app.header("x-total"), Some("0"));
    let cors: Vec<&String> = app
        .headers
        .iter()
        .filter(|h| h.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
    // The front-end the route allows: passes, with the CORS headers.
    let dev = curl(&[
        "-H",
        "Origin: http://localhost:5173",
        "-H",
        "Sec-Fetch-Site: same-site",
        &url,
    ])
    .await;
    assert_eq!(dev.status, 200, "{}", dev.body);
    assert_eq!(dev.header("access-control-allow-origin"), Some("*"));
    // Any other origin is still refused.
    let other = curl(&["-H", "Origin: http://localhost:3000", &url]).await;
    refused(&other, "browser_origin_refused", "localhost:3000");
    // allowed_hosts: a name the operator gave the listener.
    let named = curl(&["-H", "Host: sidekey.test", &url]).await;
    assert_eq!(named.status, 200, "{}", named.body);
    assert_eq!(up.count(), 3);
    sk.stop().await;
}

/// Headless Chromium, installed by scripts/install-test-peers.
fn chromium() -> &'static str {
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "chromium is missing: run scripts/install-test-peers (it installs the Debian package)"
    );
    "chromium"
}

#[tokio::test]
async fn a_page_in_a_real_browser_cannot_reach_the_upstream() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "browser_key_dd44",
        &one_route(&up.url(), support::BEARER, ""),
    )
    .await;
    let target = format!("{}/v1/from-a-page", sk.url("r"));
    // A page on another local origin: a form-like POST (no-cors, so no
    // preflight) and a CORS read of the route. It reports when both ended.
    let html = format!(
        r#"<html><body>running<script>
const t = "{target}";
const post = fetch(t, {{ method: "POST", mode: "no-cors", body: "amount=100000" }})
  .then(() => "sent", e => "failed");
const read = fetch(t).then(r => r.text()).then(b => "read " + b, e => "blocked");
Promise.all([post, read]).then(r => {{ document.body.textContent = "finished: " + r.join(", "); }});
</script></body></html>"#
    );
    let page = Upstream::start(move |_| {
        Reply::ok(html.clone()).header("content-type", "text/html; charset=utf-8")
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://localhost:{}/page", page.addr.port()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("chromium finishes within 60 s")
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    // The page ran both requests: the browser sent them, sidekey refused them.
    assert!(dom.contains("finished: "), "the page did not finish: {dom}");
    assert!(dom.contains("blocked"), "the page read the answer: {dom}");
    let loads = page.seen().iter().filter(|s| s.target == "/page").count();
    assert_eq!(loads, 1, "the page was loaded once");
    assert_eq!(up.count(), 0, "a browser request reached the upstream");
    let refused: Vec<String> = logs::lines_with("path=\"/v1/from-a-page\"")
        .into_iter()
        .filter(|l| l.contains("error=\"browser_origin_refused\""))
        .collect();
    assert!(
        refused.len() >= 2,
        "sidekey saw and refused both requests: {refused:?}"
    );
    sk.stop().await;
}
