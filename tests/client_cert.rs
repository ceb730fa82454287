//! mTLS end to end against a real nginx with `ssl_verify_client on` and a CA made by the test: sidekey presents the certificate of a `source = "file"` `cert`/`key` pair; certificates rotated every second under 8 concurrent clients for 20 s fail no request and nginx sees each new serial at once; a certificate revoked at the CA (nginx `ssl_crl`) is refused and its successor accepted; the revocation probe tells a retired certificate from one still accepted; a 401 fetches the new certificate and replays; a key that does not match is refused; a rotation closes the previous certificate's idle connection at once on a quiet route (nginx `$connection` and its error log); a pair written one file at a time is one rotation with no `refresh_failed`; a unix-socket route and the forward proxy's absolute-form `http://` request present the certificate too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::load::Load;
use support::mtls::{self, install};
use support::nginx::{Nginx, client_pair, free_port, server_files};
use support::tls::TestCa;
use support::{Sidekey, get, logs, write_atomic};

/// How long after a rotation a request may still present the previous
/// certificate: the file event and re-read, plus the retirement of the old
/// pool (README: at most 2 × 2 s after its last request), plus slack for a
/// loaded machine.
const BOUND_SECS: f64 = 5.0;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A serial as nginx prints it: upper-case hex.
fn hex_serial(serial: &[u8]) -> String {
    hex::encode_upper(serial)
}

/// A test CA; a directory holding nginx's files and a first client pair
/// with `serial`; nginx on a free port requiring that CA's certificates.
async fn nginx_with_pair(serial: &[u8]) -> (TestCa, tempfile::TempDir, u16, Nginx) {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    server_files(&ca, dir.path());
    let port = free_port();
    let nginx = Nginx::start(dir.path(), port, false).await;
    install(dir.path(), &client_pair(&ca, serial));
    (ca, dir, port, nginx)
}

/// nginx on `port` as a route's upstream.
fn upstream(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

fn config(port: u16, route_extra: &str) -> String {
    mtls::config(&upstream(port), route_extra)
}

/// The host route `bank.example.test` of the forward proxy to nginx on `port`.
fn bank_route(port: u16) -> String {
    mtls::route("bank", r#"host = "bank.example.test""#, &upstream(port), "")
}

/// The forward proxy, the `mtls` credential, then `routes`.
fn proxy_config(routes: &[String]) -> String {
    format!(
        "{}{}{}",
        support::proxy::head(""),
        mtls::CREDENTIAL,
        routes.concat()
    )
}

async fn record(sk: &Sidekey) -> serde_json::Value {
    record_of(sk, "mtls").await
}

/// The inventory record of credential `name`.
async fn record_of(sk: &Sidekey, name: &str) -> serde_json::Value {
    let (status, _, body) = get(&format!("{}/v1/credentials/{name}", sk.admin())).await;
    assert_eq!(status, 200);
    logs::assert_no_secret_in("the inventory", &body);
    serde_json::from_slice(&body).unwrap()
}

/// Waits up to `secs` for `f` to hold.
async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut f: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_every_second_under_load_fail_no_request() {
    let serial = |n: u8| vec![0x51, n];
    let (ca, dir, port, nginx) = nginx_with_pair(&serial(1)).await;
    let sk = Sidekey::start_in(dir, &config(port, "")).await;
    sk.wait_ready(5).await;
    let url = format!("{}/ping", sk.url("r"));

    let load = Load::start(&url, 8);

    let mut rotations = Vec::new();
    let started = tokio::time::Instant::now();
    let mut n = 1u8;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        n += 1;
        let pair = client_pair(&ca, &serial(n));
        install(sk.dir.path(), &pair);
        rotations.push((hex_serial(&serial(n)), now()));
    }
    // Let the last rotation be seen under load too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total = load.stop().await;
    assert!(total > 200, "only {total} requests in 20 s");

    let log = nginx.access();
    assert!(
        log.iter().all(|a| a.status == 200 && a.verify == "SUCCESS"),
        "nginx refused some"
    );
    for (i, (serial, at)) in rotations.iter().enumerate() {
        // The new serial reaches nginx within the bound...
        let first = log
            .iter()
            .find(|a| &a.serial == serial)
            .unwrap_or_else(|| panic!("serial {serial} never reached nginx"));
        assert!(
            first.at - at < BOUND_SECS,
            "serial {serial} first seen {:.2} s after its rotation",
            first.at - at
        );
        // ...and no older one is presented after it.
        let older: Vec<&String> = rotations[..i].iter().map(|(s, _)| s).collect();
        let late = log
            .iter()
            .filter(|a| a.at > at + BOUND_SECS && older.contains(&&a.serial))
            .count();
        assert_eq!(
            late, 0,
            "an older certificate than {serial} was still used {BOUND_SECS} s after"
        );
    }
    let r = record(&sk).await;
    assert_eq!(
        r["rotations"].as_u64().unwrap(),
        rotations.len() as u64,
        "{r}"
    );
    // The credential expires with the certificate (2031-01-01T00:00:00Z).
    assert_eq!(r["expires_at"], "2031-01-01T00:00:00Z", "{r}");
    sk.stop().await;
    nginx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_and_the_probe_tells_retired_from_still_valid() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    server_files(&ca, dir.path());
    let port = free_port();
    let (a, b, c) = (vec![0xa1], vec![0xb2], vec![0xc3]);
    install(dir.path(), &client_pair(&ca, &a));
    let probe = r#"revocation_check = { method = "GET", path = "/probe", expect_status = [400], after = "3s" }"#;
    let sk = Sidekey::start_in(dir, &config(port, probe)).await;
    let dir = sk.dir.path().to_owned();
    let nginx = Nginx::start(&dir, port, false).await;
    sk.wait_ready(5).await;
    let url = format!("{}/pay", sk.url("r"));
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=A1\n"[..]));

    // A key that does not match the certificate is a refresh failure; A stays in use.
    let stray = ca.client_pem(&[0xee]);
    write_atomic(&dir.join("client-key.pem"), &stray.1);
    assert!(
        eventually(5, || async {
            record(&sk).await["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("does not match the certificate"))
        })
        .await,
        "the mismatch is reported: {}",
        record(&sk).await
    );
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=A1\n"[..]));
    install(&dir, &client_pair(&ca, &a)); // a matching pair again (a new key for serial A1)
    assert!(eventually(5, || async { record(&sk).await["rotations"] == 1 }).await);

    // The CA revokes A: nginx, restarted with the CRL, refuses it.
    std::fs::write(dir.join("crl.pem"), ca.crl_pem(&[&a])).unwrap();
    nginx.stop().await;
    let nginx = Nginx::start(&dir, port, true).await;
    // Give the pool a moment to see its connections to the stopped nginx closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = get(&url).await;
    assert_eq!(status, 400, "nginx refuses the revoked certificate");
    // The new certificate is accepted.
    install(&dir, &client_pair(&ca, &b));
    assert!(
        eventually(5, || async {
            let (s, _, body) = get(&url).await;
            s == 200 && &body[..] == b"serial=B2\n"
        })
        .await,
        "the new certificate is presented"
    );
    // The probe sends A again 3 s later: refused, so A is retired.
    assert!(
        eventually(10, || async {
            !logs::lines_with("event=\"previous_value_retired\" credential=\"mtls\"").is_empty()
        })
        .await,
        "the probe finds the revoked certificate retired"
    );
    assert!(
        nginx.access().iter().any(|x| x.path == "/probe"
            && x.serial == "A1"
            && x.status == 400
            && x.verify.contains("revoked")),
        "{:?}",
        nginx.access()
    );
    assert!(record(&sk).await["previous_value_still_valid"].is_null());

    // B is not revoked: after rotating to C, the probe finds B still accepted.
    install(&dir, &client_pair(&ca, &c));
    assert!(
        eventually(12, || async {
            record(&sk).await["previous_value_still_valid"]["status"] == 200
        })
        .await,
        "{}",
        record(&sk).await
    );
    assert!(
        nginx
            .access()
            .iter()
            .any(|x| x.path == "/probe" && x.serial == "B2" && x.status == 200)
    );
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=C3\n"[..]));
    sk.stop().await;
    nginx.stop().await;
}

#[tokio::test]
async fn misconfigured_client_certificates_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let path = dir.path().join("sidekey.toml");
        std::fs::write(&path, text.replace("{dir}", dir.path().to_str().unwrap())).unwrap();
        sidekey::config::load(&path)
    };
    let token_source = config(1, "").replace(
        "cert = \"{dir}/client.pem\"\nkey = \"{dir}/client-key.pem\"",
        "path = \"{dir}/token\"",
    );
    let e = load(&token_source).unwrap_err().to_string();
    assert!(e.contains("needs a certificate and key"), "{e}");
    let half = config(1, "").replace("key = \"{dir}/client-key.pem\"\n", "");
    let e = load(&half).unwrap_err().to_string();
    assert!(e.contains("`cert` needs `key`"), "{e}");
    let both = config(1, "").replace(
        "source = \"file\"",
        "source = \"file\"\npath = \"{dir}/token\"",
    );
    let e = load(&both).unwrap_err().to_string();
    assert!(e.contains("either `path` or `cert` and `key`"), "{e}");
    // A client certificate over plain HTTP is refused at start, not sent without it.
    let ca = TestCa::new();
    install(dir.path(), &client_pair(&ca, &[1]));
    ca.write(&dir.path().join("ca.pem"));
    // `sidekey check` reads the pair and says when the key is not the certificate's.
    let path = dir.path().join("sidekey.toml");
    std::fs::write(
        &path,
        config(1, "").replace("{dir}", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sidekey"))
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = check();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("file cert") && text.contains("TLS client certificate"),
        "{text}"
    );
    write_atomic(&dir.path().join("client-key.pem"), &ca.client_pem(&[2]).1);
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("the private key does not match the certificate"),
        "{err}"
    );
    install(dir.path(), &client_pair(&ca, &[1]));
    let plain = config(1, "").replace("https://", "http://");
    let cfg = load(&plain).unwrap();
    let e = sidekey::app::App::start(cfg)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("needs an https:// upstream"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_fetches_the_new_certificate_and_the_request_is_replayed() {
    // The pair sidekey reads are symlinks into a folder it does not watch, and
    // its poll is slow: the new certificate is found only by the refresh a 401 asks for.
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    server_files(&ca, dir.path());
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    install(&store, &client_pair(&ca, &[0xa1]));
    for name in ["client.pem", "client-key.pem"] {
        std::os::unix::fs::symlink(store.join(name), dir.path().join(name)).unwrap();
    }
    let port = free_port();
    let refuse_a1 = r#"if ($ssl_client_serial = "A1") { return 401 "old certificate\n"; }"#;
    let nginx = Nginx::start_with(dir.path(), port, false, refuse_a1).await;
    let cfg = config(port, "").replace(
        "key = \"{dir}/client-key.pem\"",
        "key = \"{dir}/client-key.pem\"\npoll_interval = \"1h\"\nmin_refresh_interval = \"0s\"",
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let url = format!("{}/charge", sk.url("r"));
    // (One refresh is asked per value: the first 401 must be the one that finds B2.)
    install(&store, &client_pair(&ca, &[0xb2]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        record(&sk).await["rotations"],
        0,
        "not seen without a refresh"
    );
    let (status, _, body) = support::send(http::Method::POST, &url, &[], "amount=1").await;
    assert_eq!(
        (status.as_u16(), &body[..]),
        (200, &b"serial=B2\n"[..]),
        "replayed with B2"
    );
    // nginx writes its access line after the answer: wait for both lines.
    let mut charges = Vec::new();
    for _ in 0..50 {
        charges = nginx
            .access()
            .into_iter()
            .filter(|a| a.path == "/charge")
            .collect();
        if charges.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last: Vec<(&str, u16)> = charges
        .iter()
        .rev()
        .take(2)
        .map(|a| (a.serial.as_str(), a.status))
        .collect();
    assert_eq!(
        last,
        vec![("B2", 200), ("A1", 401)],
        "the request went twice: A1 refused, B2 accepted"
    );
    sk.stop().await;
    nginx.stop().await;
}

/// The forward proxy is another mode of the same request path: an app that
/// calls the real host through `HTTPS_PROXY` has its request carried on a
/// connection that presents the client certificate, and a rotation reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_route_of_the_forward_proxy_presents_the_client_certificate() {
    let (ca, dir, port, _nginx) = nginx_with_pair(&[0xc1]).await;
    let cfg = proxy_config(&[bank_route(port)]);
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let (proxy, trust) = support::proxy::proxy_and_ca(&sk);
    let call = || {
        let (proxy, trust) = (proxy.clone(), trust.clone());
        async move {
            support::curl::curl(&[
                "--proxy",
                &proxy,
                "--cacert",
                trust.to_str().unwrap(),
                "https://bank.example.test/ping",
            ])
            .await
        }
    };
    let a = call().await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("serial=C1"), "{}", a.body);

    install(sk.dir.path(), &client_pair(&ca, &[0xc2]));
    let rotated = eventually(10, || async {
        let a = call().await;
        a.status == 200 && a.body.contains("serial=C2")
    })
    .await;
    assert!(rotated, "the new certificate reaches the proxied requests");
    sk.stop().await;
}

/// The access line of the last request to `path`, waited for (nginx writes
/// it after the answer).
async fn access_of(nginx: &Nginx, path: &str) -> support::nginx::Access {
    for _ in 0..50 {
        if let Some(a) = nginx.access().into_iter().rev().find(|a| a.path == path) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx logged no request to {path}: {:?}", nginx.access());
}

/// On a quiet route (no request after the rotation), the connection made
/// with the previous certificate is closed within the README's bound of the
/// new pair being written, not left idle in its pool; the next request
/// presents the new certificate on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_closes_the_previous_certificates_idle_connection() {
    /// README: idle connections of the previous certificate close once the new pair is read.
    const CLOSE_BOUND: Duration = Duration::from_secs(2);
    let (ca, dir, port, nginx) = nginx_with_pair(&[0xd1]).await;
    let sk = Sidekey::start_in(dir, &config(port, "")).await;
    sk.wait_ready(5).await;
    let (status, _, body) = get(&format!("{}/before", sk.url("r"))).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=D1\n"[..]));
    let old = access_of(&nginx, "/before").await.connection;
    assert!(!nginx.client_closed(old), "kept alive after its request");

    let rotated = tokio::time::Instant::now();
    install(sk.dir.path(), &client_pair(&ca, &[0xd2]));
    assert!(eventually(5, || async { record(&sk).await["rotations"] == 1 }).await);
    while !nginx.client_closed(old) {
        assert!(
            rotated.elapsed() < Duration::from_secs(10),
            "connection *{old} (certificate D1) still open 10 s after the rotation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = rotated.elapsed();
    eprintln!("the D1 connection closed {closed_after:?} after the new pair was written");
    assert!(
        closed_after < CLOSE_BOUND,
        "closed {closed_after:?} after the rotation"
    );
    let (status, _, body) = get(&format!("{}/after", sk.url("r"))).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=D2\n"[..]));
    assert_ne!(access_of(&nginx, "/after").await.connection, old);
    sk.stop().await;
    nginx.stop().await;
}

/// A rotation that writes the certificate, then the key ~100 ms later, is
/// not a refresh failure: the source waits for the pair to settle. A key
/// that does not match still is one, with the clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_written_one_file_at_a_time_is_not_a_refresh_failure() {
    let (ca, dir, port, nginx) = nginx_with_pair(&[0xe1]).await;
    // A name of its own: the audit lines of other tests in this binary say "mtls".
    let cfg = config(port, "").replace("mtls", "split");
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let url = format!("{}/pay", sk.url("r"));
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=E1\n"[..]));

    let dir = sk.dir.path().to_owned();
    let pair = client_pair(&ca, &[0xe2]);
    write_atomic(&dir.join("client.pem"), &pair.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    write_atomic(&dir.join("client-key.pem"), &pair.1);
    assert!(
        eventually(5, || async {
            record_of(&sk, "split").await["rotations"] == 1
        })
        .await
    );
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=E2\n"[..]));
    // Any re-read the key's change asks for has settled too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = record_of(&sk, "split").await;
    let events: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"rotated"), "{r}");
    assert!(!events.contains(&"refresh_failed"), "{r}");
    assert_eq!(r["rotations"], 1, "{r}");
    assert!(r["last_error"].is_null(), "{r}");
    assert!(
        logs::lines_with("event=\"refresh_failed\" credential=\"split\"").is_empty(),
        "no refresh_failed audit event"
    );

    // A key of another certificate never settles into a pair: a failure, E2 stays.
    let stray = ca.client_pem(&[0xee]);
    write_atomic(&dir.join("client-key.pem"), &stray.1);
    assert!(
        eventually(5, || async {
            record_of(&sk, "split").await["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("the private key does not match the certificate"))
        })
        .await,
        "the mismatch is reported: {}",
        record_of(&sk, "split").await
    );
    assert!(
        !logs::lines_with("event=\"refresh_failed\" credential=\"split\"").is_empty(),
        "the mismatch is audited"
    );
    let (status, _, body) = get(&url).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"serial=E2\n"[..]));
    sk.stop().await;
    nginx.stop().await;
}

/// Two more ways in, through the same request path: a route listening on a
/// unix socket (curl `--unix-socket`) and the forward proxy's absolute-form
/// `http://` request (curl `--proxy` to an `http://` URL, the app's
/// `HTTP_PROXY`). nginx sees the certificate on both, and the rotated one
/// after a rotation; curl straight to nginx without one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_route_and_an_absolute_form_proxy_request_present_the_certificate() {
    let (ca, dir, port, nginx) = nginx_with_pair(&[0xf1]).await;
    let sock = mtls::route(
        "sock",
        r#"listen = "unix:{dir}/r.sock""#,
        &upstream(port),
        "",
    );
    let cfg = proxy_config(&[sock, bank_route(port)]);
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(5).await;
    let sock = sk.path("r.sock").display().to_string();
    let (proxy, _) = support::proxy::proxy_and_ca(&sk);
    let call = |way: &'static str| {
        let (sock, proxy) = (sock.clone(), proxy.clone());
        async move {
            let args = match way {
                "unix socket" => vec!["--unix-socket", &sock, "http://app.localhost/sock"],
                _ => vec!["--proxy", &proxy, "http://bank.example.test/absolute"],
            };
            let a = support::curl::curl(&args).await;
            (a.status, a.body)
        }
    };
    for way in ["unix socket", "absolute form"] {
        assert_eq!(call(way).await, (200, "serial=F1\n".to_owned()), "{way}");
    }
    install(sk.dir.path(), &client_pair(&ca, &[0xf2]));
    for way in ["unix socket", "absolute form"] {
        let rotated = eventually(5, || async {
            call(way).await == (200, "serial=F2\n".into())
        });
        assert!(rotated.await, "{way}: the rotated certificate is presented");
    }
    let seen: Vec<(String, String)> = nginx
        .access()
        .into_iter()
        .map(|a| (a.path, format!("{} {}", a.serial, a.verify)))
        .collect();
    for path in ["/sock", "/absolute"] {
        for serial in ["F1", "F2"] {
            let line = (path.to_owned(), format!("{serial} SUCCESS"));
            assert!(seen.contains(&line), "{path} {serial}: {seen:?}");
        }
    }
    // Without sidekey there is no certificate: nginx refuses.
    let url = format!("https://127.0.0.1:{port}/direct");
    let ca_file = sk.path("ca.pem").display().to_string();
    let a = support::curl::curl(&["--cacert", &ca_file, &url]).await;
    assert_eq!(a.status, 400, "{}", a.body);
    sk.stop().await;
    nginx.stop().await;
}
