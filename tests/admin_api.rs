//! The admin API: /metrics parsed by a real Prometheus text parser, the CLI inventory table
//! agreeing with the JSON, the admin API on a unix socket, and the bearer token on mutations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use prometheus_parse::{LineInfo, Scrape, Value};
use sidekey::admin::client::call;
use std::path::PathBuf;
use support::{Reply, Sidekey, Upstream, get, logs};

fn script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/exec")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Two credentials: `x` (expiring, via an ExecCredential) on route `r`, `y` (a file) on
/// route `q` whose upstream refuses everything.
async fn start(admin: &str, extra_admin: &str, ok: &Upstream, refusing: &Upstream) -> Sidekey {
    for n in 1..10 {
        logs::secret(&format!("k8s-exec-token-{n}"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("y"), logs::secret("admin-test-file-value")).unwrap();
    std::fs::write(dir.path().join("token"), logs::secret("admin-bearer-5e9d")).unwrap();
    let cfg = format!(
        r#"
[admin]
listen = "{admin}"
{extra_admin}
[credentials.x]
source = "exec"
command = ["{}"]
env = {{ COUNT = "{{dir}}/count", LIFETIME = "3600" }}
[credentials.y]
source = "file"
path = "{{dir}}/y"
[[routes]]
name = "r"
listen = "127.0.0.1:0"
upstream = "{}"
credential = "x"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
[[routes]]
name = "q"
listen = "127.0.0.1:0"
upstream = "{}"
credential = "y"
inject = {{ header = "X-Api-Key" }}
"#,
        script("exec-credential.sh"),
        ok.url(),
        refusing.url()
    );
    Sidekey::start_in(dir, &cfg).await
}

fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| &s.value)
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_every_family() {
    let ok = Upstream::ok().await;
    let refusing = Upstream::start(|_| Reply::status(401)).await;
    let sk = start("127.0.0.1:0", "", &ok, &refusing).await;
    sk.wait_ready(10).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_eq!(get(&format!("{}/a", sk.url("r"))).await.0, 200);
    }
    // An upstream refusing every value: one refresh (same value), then its answer, at once.
    let started = std::time::Instant::now();
    assert_eq!(get(&format!("{}/a", sk.url("q"))).await.0, 401);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(&format!("{}/nothing-here", sk.admin())).await.0, 404);

    let (status, headers, body) = get(&format!("{}/metrics", sk.admin())).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    logs::assert_no_secret_in("/metrics", &body);
    let text = String::from_utf8(body.to_vec()).unwrap();
    // The parser skips what it does not understand: make sure nothing was skipped.
    for line in text.lines() {
        assert!(
            !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "not Prometheus text: {line:?}"
        );
        if let LineInfo::Sample { metric_name, .. } = LineInfo::parse(line) {
            assert!(metric_name.starts_with("sidekey_"), "{metric_name}");
        }
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();

    assert_eq!(
        sample(
            &scrape,
            "sidekey_requests_total",
            &[("route", "r"), ("status", "200")]
        ),
        Some(&Value::Counter(3.0))
    );
    assert_eq!(
        sample(
            &scrape,
            "sidekey_requests_total",
            &[("route", "q"), ("status", "401")]
        ),
        Some(&Value::Counter(1.0))
    );
    match sample(
        &scrape,
        "sidekey_upstream_duration_seconds",
        &[("route", "r")],
    ) {
        Some(Value::Histogram(buckets)) => {
            let inf = buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .expect("+Inf bucket");
            assert_eq!(inf.count, 3.0);
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
        }
        other => panic!("histogram expected, got {other:?}"),
    }
    assert!(matches!(
        sample(&scrape, "sidekey_refreshes_total", &[("credential", "x"), ("outcome", "success")]),
        Some(Value::Counter(n)) if *n >= 1.0
    ));
    assert!(
        sample(
            &scrape,
            "sidekey_refreshes_total",
            &[("credential", "x"), ("outcome", "failure")]
        )
        .is_some()
    );
    // Reading the file is not a change of the file: one read at start, one for the 401.
    assert_eq!(
        sample(
            &scrape,
            "sidekey_refreshes_total",
            &[("credential", "y"), ("outcome", "success")]
        ),
        Some(&Value::Counter(2.0))
    );
    match sample(
        &scrape,
        "sidekey_credential_expiry_seconds",
        &[("credential", "x")],
    ) {
        Some(Value::Gauge(s)) => assert!(*s > 3500.0 && *s <= 3600.0, "{s}"),
        other => panic!("gauge expected, got {other:?}"),
    }
    assert!(
        sample(
            &scrape,
            "sidekey_credential_expiry_seconds",
            &[("credential", "y")]
        )
        .is_none()
    );
    assert!(matches!(
        sample(&scrape, "sidekey_upstream_rejections_total", &[("credential", "y")]),
        Some(Value::Counter(n)) if *n >= 1.0
    ));
    assert_eq!(
        sample(
            &scrape,
            "sidekey_credential_state",
            &[("credential", "x"), ("state", "fresh")]
        ),
        Some(&Value::Gauge(1.0))
    );
    sk.stop().await;
}

/// Splits a table row at the header's column starts.
fn columns(header: &str, row: &str) -> Vec<String> {
    let mut starts = vec![0];
    let b = header.as_bytes();
    for i in 1..b.len() {
        if b[i] != b' ' && b[i - 1] == b' ' && i >= 2 && b[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let chars: Vec<char> = row.chars().collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(chars.len())
                .min(chars.len());
            chars[(*s).min(chars.len())..end]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect()
}

async fn cli(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(args)
        .env_remove("SIDEKEY_ADMIN_TOKEN_FILE")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn on_a_unix_socket_the_cli_table_agrees_with_the_json_and_mutations_need_the_token() {
    let ok = Upstream::ok().await;
    let refusing = Upstream::start(|_| Reply::status(401)).await;
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("admin.sock");
    let admin = format!("unix:{}", sock.display());
    let sk = start(&admin, "token = { file = \"{dir}/token\" }", &ok, &refusing).await;
    // Readiness over the socket.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while call(&admin, Method::GET, "/readyz", None).await.unwrap().0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "not ready");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get(&format!("{}/a", sk.url("r"))).await.0, 200);
    assert_eq!(get(&format!("{}/a", sk.url("q"))).await.0, 401);

    let (ok_json, json, err) = cli(&["inventory", "--admin", &admin, "--json"]).await;
    assert!(ok_json, "{err}");
    logs::assert_no_secret_in("inventory --json", json.as_bytes());
    let records: Vec<sidekey::admin::Record> = serde_json::from_str(&json).unwrap();
    assert_eq!(records.len(), 2);
    let (ok_table, table, err) = cli(&["inventory", "--admin", &admin]).await;
    assert!(ok_table, "{err}");
    logs::assert_no_secret_in("inventory table", table.as_bytes());
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        columns(header, header),
        [
            "NAME",
            "SOURCE",
            "STATE",
            "FINGERPRINT",
            "AGE",
            "EXPIRES IN",
            "NEXT REFRESH",
            "USES",
            "LAST ERROR"
        ]
    );
    let rows: Vec<Vec<String>> = lines.map(|l| columns(header, l)).collect();
    assert_eq!(rows.len(), records.len());
    for (row, rec) in rows.iter().zip(&records) {
        assert_eq!(row[0], rec.name);
        assert_eq!(row[1], rec.source);
        assert_eq!(row[2], rec.state);
        assert_eq!(Some(&row[3]), rec.fingerprint.as_ref());
        assert_eq!(row[5] == "-", rec.expires_at.is_none(), "{row:?}");
        assert_eq!(row[7], rec.uses.to_string());
        assert_eq!(row[8], rec.last_error.clone().unwrap_or_else(|| "-".into()));
    }
    assert_eq!(records[0].name, "x");
    assert_eq!(records[0].uses, 1);
    assert!(records[0].expires_at.is_some());
    assert_eq!(records[1].upstream_rejections, 1);
    assert_eq!(records[0].routes[0].route, "r");

    // Reading needs no token; refresh and revoke do.
    for (token, expect) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some("admin-bearer-5e9d"), 200),
    ] {
        let (status, body) = call(&admin, Method::POST, "/v1/credentials/x/refresh", token)
            .await
            .unwrap();
        assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
        logs::assert_no_secret_in("an admin answer", &body);
    }
    let (status, _) = call(
        &admin,
        Method::POST,
        "/v1/credentials/x/revoke",
        Some("wrong"),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    assert_eq!(
        get(&format!("{}/a", sk.url("r"))).await.0,
        200,
        "a refused revoke changes nothing"
    );
    let (ok_refresh, out, err) = cli(&[
        "refresh",
        "x",
        "--admin",
        &admin,
        "--token-file",
        sk.path("token").to_str().unwrap(),
    ])
    .await;
    assert!(ok_refresh, "{err}");
    assert!(out.contains("x: refresh done; state fresh"), "{out}");
    let (status, _) = call(
        &admin,
        Method::POST,
        "/v1/credentials/nope/refresh",
        Some("admin-bearer-5e9d"),
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    sk.stop().await;
}
