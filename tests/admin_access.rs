//! Who may use the admin API, over real sockets with curl: a DNS-rebinding name is refused, a `POST`
//! from another origin (form or fetch) is refused and changes nothing, the admin's own origin and
//! the CLI (no Origin) may refresh and revoke, a configured token is required of everyone, and the
//! admin listener holds at most `max_connections`; a loop of refused requests logs one warning a second.
//! Off loopback (a pod's `0.0.0.0`, reached at the machine's own non-loopback address) only the
//! probes answer without the token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use sidekey::admin::client::call;
use std::path::PathBuf;
use support::curl::{Answer, curl};
use support::{Sidekey, Upstream, logs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Credential `x` from an exec plugin whose every run issues a new value
/// (`k8s-exec-token-N`), on route `r`; `extra_admin` lines go under `[admin]`.
async fn start(up: &Upstream, extra_admin: &str) -> Sidekey {
    start_on(up, "127.0.0.1:0", extra_admin).await
}

/// As [`start`], the admin listener on `listen` (allowed off loopback).
async fn start_on(up: &Upstream, listen: &str, extra_admin: &str) -> Sidekey {
    for n in 1..10 {
        logs::secret(&format!("k8s-exec-token-{n}"));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/exec/exec-credential.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("token"),
        logs::secret("admin-access-tok-71c3"),
    )
    .unwrap();
    let cfg = format!(
        r#"
allow_non_loopback = true
[admin]
listen = "{listen}"
{extra_admin}
[credentials.x]
source = "exec"
command = ["{}"]
env = {{ COUNT = "{{dir}}/count", LIFETIME = "3600" }}
{}"#,
        script.display(),
        support::route("r", &up.url(), "x", support::BEARER, ""),
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(10).await;
    sk
}

/// The value's fingerprint in an inventory record: each fetch of `x` changes it.
fn fingerprint(a: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    v["fingerprint"].as_str().unwrap().to_owned()
}

async fn record(sk: &Sidekey) -> Answer {
    let a = curl(&[&format!("{}/v1/credentials/x", sk.admin())]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a
}

fn refused(a: &Answer, status: u16, code: &str, words: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some(code), "{}", a.body);
    assert!(a.body.contains(words), "{words:?} in {}", a.body);
}

#[tokio::test]
async fn a_dns_rebinding_name_cannot_read_the_inventory() {
    let up = Upstream::ok().await;
    let sk = start(&up, "").await;
    let admin = sk.admin();
    let port = admin.rsplit(':').next().unwrap().to_owned();
    for path in ["/", "/v1/credentials", "/metrics", "/app.js"] {
        let rebound = curl(&[
            "--resolve",
            &format!("attacker.example:{port}:127.0.0.1"),
            &format!("http://attacker.example:{port}{path}"),
        ])
        .await;
        refused(&rebound, 403, "host_not_allowed", "`attacker.example:");
        assert!(!rebound.body.contains("fingerprint"), "{}", rebound.body);
    }
    for host in [
        format!("localhost:{port}"),
        format!("admin.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let a = curl(&[
            "-H",
            &format!("Host: {host}"),
            &format!("{admin}/v1/credentials"),
        ])
        .await;
        assert_eq!(a.status, 200, "Host: {host}: {}", a.body);
    }
    sk.stop().await;

    // A name the operator lists (a Kubernetes service Prometheus scrapes) is answered.
    let sk = start(&up, "allowed_hosts = [\"sidekey.observability.svc\"]").await;
    let admin = sk.admin();
    let port = admin.rsplit(':').next().unwrap().to_owned();
    for (host, status) in [
        (format!("sidekey.observability.svc:{port}"), 200),
        (format!("SIDEKEY.observability.svc:{port}"), 200),
        (format!("other.observability.svc:{port}"), 403),
    ] {
        let a = curl(&["-H", &format!("Host: {host}"), &format!("{admin}/metrics")]).await;
        assert_eq!(a.status, status, "Host: {host}: {}", a.body);
    }
    sk.stop().await;
}

#[tokio::test]
async fn without_a_token_only_the_admins_own_origin_and_non_browsers_may_post() {
    let up = Upstream::ok().await;
    let sk = start(&up, "").await;
    let admin = sk.admin();
    let own = admin.clone(); // http://127.0.0.1:PORT, what the admin page's Origin is
    let port = admin.rsplit(':').next().unwrap().to_owned();
    let revoke = format!("{admin}/v1/credentials/x/revoke");
    let before = fingerprint(&record(&sk).await);
    // A form on another site, a page on another local port, a sandboxed
    // frame, a fetch whose Origin was stripped but Sec-Fetch-Site tells.
    let other_port = format!(
        "Origin: http://127.0.0.1:{}",
        port.parse::<u16>().unwrap() ^ 1
    );
    for headers in [
        vec!["Origin: http://evil.example", "Sec-Fetch-Site: cross-site"],
        vec!["Origin: http://localhost:3000", "Sec-Fetch-Site: same-site"],
        vec![other_port.as_str()],
        vec!["Origin: null"],
        vec!["Sec-Fetch-Site: cross-site"],
        vec!["Origin: https://127.0.0.1"],
    ] {
        let mut args = vec!["-X", "POST", "-d", "x=1"];
        for h in &headers {
            args.extend(["-H", h]);
        }
        args.push(&revoke);
        let a = curl(&args).await;
        refused(
            &a,
            403,
            "browser_origin_refused",
            "may not change credentials",
        );
    }
    assert_eq!(
        fingerprint(&record(&sk).await),
        before,
        "no refused POST changed the credential"
    );
    // The admin page itself (same origin): allowed, the credential rotates.
    let page = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Origin: {own}"),
        "-H",
        "Sec-Fetch-Site: same-origin",
        &revoke,
    ])
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let after_page = fingerprint(&page);
    assert_ne!(after_page, before, "the page's revoke fetched a new value");
    // The page opened as http://localhost:PORT: Origin and Host agree.
    let named = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Host: localhost:{port}"),
        "-H",
        &format!("Origin: http://localhost:{port}"),
        &format!("{admin}/v1/credentials/x/refresh"),
    ])
    .await;
    assert_eq!(named.status, 200, "{}", named.body);
    assert_ne!(fingerprint(&named), after_page);
    // The CLI's client and plain curl send no Origin: not browsers, allowed.
    let addr = admin.trim_start_matches("http://");
    let (status, body) = call(addr, Method::POST, "/v1/credentials/x/revoke", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let plain = curl(&["-X", "POST", &revoke]).await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(up.count(), 0);
    sk.stop().await;
}

#[tokio::test]
async fn with_a_token_every_post_needs_it_even_from_the_admins_origin() {
    let up = Upstream::ok().await;
    let sk = start(&up, "token = { file = \"{dir}/token\" }").await;
    let admin = sk.admin();
    let refresh = format!("{admin}/v1/credentials/x/refresh");
    let before = fingerprint(&record(&sk).await);
    let same_origin = format!("Origin: {admin}");
    let a = curl(&["-X", "POST", "-H", &same_origin, &refresh]).await;
    refused(&a, 401, "unauthorized", "admin token");
    let a = curl(&["-X", "POST", "-H", "Authorization: Bearer wrong", &refresh]).await;
    refused(&a, 401, "unauthorized", "admin token");
    assert_eq!(fingerprint(&record(&sk).await), before);
    let bearer = "Authorization: Bearer admin-access-tok-71c3";
    let a = curl(&["-X", "POST", "-H", &same_origin, "-H", bearer, &refresh]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_ne!(fingerprint(&a), before);
    logs::assert_no_secret_in("refresh answer", a.body.as_bytes());
    sk.stop().await;
}

#[tokio::test]
async fn the_admin_listener_holds_at_most_max_connections() {
    let up = Upstream::ok().await;
    let sk = start(&up, "max_connections = 2").await;
    let addr = sk.admin().trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s); // kept alive
    }
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        third.read_to_end(&mut got),
    )
    .await
    .expect("the third connection is answered and closed")
    .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.contains("too_many_connections"), "{got}");
    drop(held);
    sk.stop().await;
}

/// A page (or a script) hammering the admin API cannot flood the log: one
/// "admin request refused" warning a second, each counting the ones left out.
#[tokio::test]
async fn a_loop_of_refused_admin_requests_logs_one_warning_a_second() {
    let up = Upstream::ok().await;
    let sk = start(&up, "").await;
    let port = sk.admin().rsplit(':').next().unwrap().to_owned();
    let resolve = format!("attacker.example:{port}:127.0.0.1");
    let url = format!("http://attacker.example:{port}/flood-admin");
    let mut args = vec!["--resolve", resolve.as_str()];
    args.extend(std::iter::repeat_n(url.as_str(), 200));

    let started = std::time::Instant::now();
    let a = curl(&args).await;
    let secs = started.elapsed().as_secs();
    refused(&a, 403, "host_not_allowed", "`attacker.example:");
    let warnings = ["admin request refused", "/flood-admin"];
    let (lines, _) = logs::throttled(&warnings);
    assert!(
        lines >= 1 && lines as u64 <= secs + 2,
        "200 refusals in {secs} s logged {lines} lines"
    );

    tokio::time::sleep(sidekey::throttle::EVERY + std::time::Duration::from_millis(100)).await;
    let a = curl(&args[..3]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let (after, happened) = logs::throttled(&warnings);
    assert_eq!(after, lines + 1);
    assert_eq!(happened, 201, "every refusal is counted by some line");
    // And by the metric, which is never thinned out.
    let (_, _, metrics) = support::get(&format!("{}/metrics", sk.admin())).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("sidekey_admin_requests_refused_total{error=\"host_not_allowed\"} 201"),
        "{metrics}"
    );
    sk.stop().await;
}

/// An IPv4 address of this machine that is not loopback, as a pod's IP is
/// to its sidecar: another host (pod) reaches the listener through it.
fn own_non_loopback_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no non-loopback IPv4 address here: {text}"));
    addr.to_owned()
}

/// The kubelet probes the pod's IP, so the Kubernetes examples bind the
/// admin listener on 0.0.0.0; then every pod that routes to it reaches it,
/// and `Host: localhost` proves nothing. There only `/healthz` and
/// `/readyz` answer without the admin token; the inventory (Vault token
/// accessors, fingerprints), `/metrics`, the config status and the page need
/// it, and with no token configured they are refused outright.
#[tokio::test]
async fn off_loopback_only_the_probes_answer_without_the_token() {
    let up = Upstream::ok().await;
    let ip = own_non_loopback_address();
    let bearer = "Authorization: Bearer admin-access-tok-71c3";
    for token in ["token = { file = \"{dir}/token\" }", ""] {
        let sk = start_on(&up, "0.0.0.0:0", token).await;
        let port = sk.admin().rsplit(':').next().unwrap().to_owned();
        let base = format!("http://{ip}:{port}");
        for path in ["/healthz", "/readyz"] {
            let a = curl(&["-H", "Host: localhost", &format!("{base}{path}")]).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
        }
        let paths = [
            "/v1/credentials",
            "/v1/credentials/x",
            "/metrics",
            "/v1/config/status",
            "/",
            "/app.js",
        ];
        let words = if token.is_empty() {
            "no [admin] token is set"
        } else {
            "needs the admin token"
        };
        for path in paths {
            let url = format!("{base}{path}");
            let own_host = format!("Host: {ip}:{port}");
            for header in ["Host: localhost", &own_host, "Authorization: Bearer nope"] {
                let a = curl(&["-H", header, &url]).await;
                refused(&a, 401, "unauthorized", words);
                assert!(!a.body.contains("fingerprint"), "{path}: {}", a.body);
            }
        }
        let refresh = format!("{base}/v1/credentials/x/refresh");
        let a = curl(&["-X", "POST", &refresh]).await;
        refused(&a, 401, "unauthorized", words);
        if !token.is_empty() {
            // With the token, the whole admin API answers as on loopback.
            for path in paths {
                let a = curl(&["-H", bearer, &format!("{base}{path}")]).await;
                assert_eq!(a.status, 200, "{path}: {}", a.body);
                logs::assert_no_secret_in(path, a.body.as_bytes());
            }
            let metrics = curl(&["-H", bearer, &format!("{base}/metrics")]).await;
            assert!(metrics.body.contains("sidekey_"), "{}", metrics.body);
            // `sidekey inventory` sends the token of `--token-file`.
            let addr = format!("{ip}:{port}");
            // (tokio's Command: this runtime also serves the admin API it calls.)
            let cli = |extra: &[&str]| {
                let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekey"));
                c.args(["inventory", "--json", "--admin", &addr])
                    .args(extra);
                c.output()
            };
            let token_file = sk.path("token");
            let listed = cli(&["--token-file", token_file.to_str().unwrap()])
                .await
                .unwrap();
            let said = String::from_utf8_lossy(&listed.stdout);
            assert!(
                listed.status.success(),
                "{said}{}",
                String::from_utf8_lossy(&listed.stderr)
            );
            assert!(said.contains("\"name\": \"x\""), "{said}");
            let refused = cli(&[]).await.unwrap();
            assert!(!refused.status.success());
            let said = String::from_utf8_lossy(&refused.stderr);
            assert!(said.contains("admin API answered 401"), "{said}");
            let before = fingerprint(&record_with(&sk, bearer).await);
            let a = curl(&["-X", "POST", "-H", bearer, &refresh]).await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_ne!(fingerprint(&a), before);
        }
        sk.stop().await;
    }
    assert_eq!(up.count(), 0);
}

async fn record_with(sk: &Sidekey, header: &str) -> Answer {
    let a = curl(&["-H", header, &format!("{}/v1/credentials/x", sk.admin())]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a
}
