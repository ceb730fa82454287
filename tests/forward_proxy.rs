//! The forward proxy (`[proxy]`, host routes): curl through `--proxy` with the CA from `sidekey ca`,
//! host pinning against the attacks that sank CONNECT elsewhere, unmatched hosts denied or tunnelled
//! (never to loopback or private addresses), the CA's name constraints, its persistence, and reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::curl::curl;
use support::proxy::{self, HOST, OTHER, World, code_in, connect, host_route, tls_over};

fn both(up: &support::Upstream) -> String {
    host_route("api", HOST, up, "") + &host_route("other", OTHER, up, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_the_proxy_gets_the_credential_attached_and_keeps_its_tunnel() {
    let w = World::start("", both).await;
    let ca = w.trust();
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--proxy",
            &w.proxy_url(),
            "--cacert",
        ])
        .arg(&ca)
        .args(["-w", "\n%{http_code} %{num_connects}\n"])
        .arg(format!("https://{HOST}/v1/first"))
        .arg(format!("https://{HOST}/v1/second"))
        .output()
        .await
        .unwrap();
    let text = support::stdout_of(&out);
    // Each transfer prints its status and how many new connections it made.
    assert!(text.contains("ok /v1/first\n200 1\n"), "{text}");
    assert!(
        text.contains("ok /v1/second\n200 0\n"),
        "second request reuses the tunnel: {text}"
    );
    assert_eq!(
        w.sk.app.proxy_intercepted(),
        1,
        "one CONNECT for both requests"
    );
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {}", w.token).as_str())
        );
        assert_eq!(
            s.header("host").map(|h| h.split(':').next().unwrap()),
            Some(HOST)
        );
    }
    assert!(
        !text.contains(&w.token),
        "the app never holds the credential"
    );
    // The inventory names the host, and the route's metrics counted both requests.
    let (_, _, inv) = support::get(&format!("{}/v1/credentials/gh", w.sk.admin())).await;
    let inv = String::from_utf8_lossy(&inv);
    assert!(inv.contains(&format!("host {HOST}")), "{inv}");
    assert!(!inv.contains(&w.token));
    let (_, _, m) = support::get(&format!("{}/metrics", w.sk.admin())).await;
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("sidekey_requests_total{route=\"api\",status=\"200\"} 2"),
        "{m}"
    );
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_request_through_the_proxy_is_sent_over_tls_with_the_credential() {
    let w = World::start("", both).await;
    let a = curl(&[
        "--proxy",
        &w.proxy_url(),
        &format!("http://{HOST}/v1/plain"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = w.upstream.seen();
    assert_eq!(
        seen.len(),
        1,
        "the upstream is HTTPS only: it was reached over TLS"
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {}", w.token).as_str())
    );
    // A plain request whose Host is another host than its target is misdirected.
    let a = curl(&[
        "--proxy",
        &w.proxy_url(),
        "-H",
        &format!("Host: {OTHER}"),
        &format!("http://{HOST}/v1/plain"),
    ])
    .await;
    assert_eq!(a.status, 421, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("misdirected"));
    assert_eq!(w.upstream.count(), 1, "never forwarded");
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_pinning_refuses_every_mismatch_and_forwards_none() {
    let w = World::start("", both).await;
    let ca = w.trust();
    let ca_s = ca.to_str().unwrap();
    let proxy = w.proxy_url();

    // Host header != CONNECT target (and SNI).
    let a = curl(&[
        "--proxy",
        &proxy,
        "--cacert",
        ca_s,
        "-H",
        &format!("Host: {OTHER}"),
        &format!("https://{HOST}/v1/x"),
    ])
    .await;
    assert_eq!(a.status, 421, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("misdirected"));

    // SNI != CONNECT target: curl tunnels to HOST but says OTHER in its hello
    // (and -k, as an attacker would); the Host header names HOST.
    let a = curl(&[
        "-k",
        "--proxy",
        &proxy,
        "--connect-to",
        &format!("{OTHER}:443:{HOST}:443"),
        "-H",
        &format!("Host: {HOST}"),
        &format!("https://{OTHER}/v1/x"),
    ])
    .await;
    assert_eq!(a.status, 421, "{}", a.body);
    assert!(a.body.contains("TLS server name"), "{}", a.body);

    // HTTP/2: a first request for HOST, then :authority switched to OTHER on the same connection.
    let (status, tunnel) = connect(w.proxy_addr(), &format!("{HOST}:443")).await;
    assert_eq!(status, 200);
    let tls = tls_over(tunnel.unwrap(), HOST, &ca, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let get = |uri: String| {
        http::Request::get(uri)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let r = send
        .send_request(get(format!("https://{HOST}/v1/h2")))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(w.upstream.count(), 1);
    let r = send
        .send_request(get(format!("https://{OTHER}/v1/switched")))
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    assert_eq!(r.headers()["sidekey-error"], "misdirected");

    // CONNECT to an IP address, with the SNI of a routed host: no route, refused.
    let (status, answer) = connect(w.proxy_addr(), "127.0.0.1:443").await;
    assert_eq!(status, 403);
    assert_eq!(code_in(&answer.unwrap_err()), "no_route");

    let seen = w.upstream.seen();
    assert_eq!(
        seen.len(),
        1,
        "only the one well-formed request was forwarded"
    );
    assert_eq!(seen[0].target, "/v1/h2");
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_deny_refuses_connect_and_plain_requests_with_no_route() {
    let w = World::start("", |up| host_route("api", HOST, up, "")).await;
    let (status, answer) = connect(w.proxy_addr(), "unrouted.example.test:443").await;
    assert_eq!(status, 403);
    assert_eq!(code_in(&answer.unwrap_err()), "no_route");
    // A routed host on a port its route does not serve is no route either.
    let (status, answer) = connect(w.proxy_addr(), &format!("{HOST}:8443")).await;
    assert_eq!(status, 403);
    assert_eq!(code_in(&answer.unwrap_err()), "no_route");
    let a = curl(&["--proxy", &w.proxy_url(), "http://unrouted.example.test/x"]).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.header("sidekey-error"), Some("no_route"));
    // A malformed CONNECT (no port) gets a JSON error too.
    let (status, answer) = connect(w.proxy_addr(), "unrouted.example.test").await;
    assert_eq!(status, 400);
    assert_eq!(code_in(&answer.unwrap_err()), "bad_request");
    assert_eq!(w.upstream.count(), 0);
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_tunnel_refuses_loopback_unless_allowed_and_never_reaches_sidekey_itself() {
    // Without allow_private: the upstream's loopback address is refused, by name and by
    // address, IPv4-mapped IPv6 included.
    let w = World::start("unmatched = \"tunnel\"", |up| {
        host_route("api", HOST, up, "")
    })
    .await;
    let port = w.upstream.addr.port();
    for target in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
    ] {
        let (status, answer) = connect(w.proxy_addr(), &target).await;
        assert_eq!(status, 403, "{target}");
        let answer = answer.unwrap_err();
        assert_eq!(code_in(&answer), "destination_not_allowed", "{answer}");
        assert!(answer.contains("loopback"), "{answer}");
    }
    assert_eq!(w.upstream.count(), 0);
    w.sk.stop().await;

    // With allow_private: the tunnel passes bytes untouched (the app talks TLS to the
    // upstream itself, with the upstream's CA) and no credential is added.
    let w = World::start(
        "unmatched = \"tunnel\"\nallow_private = [\"127.0.0.0/8\", \"::1\"]",
        |up| host_route("api", HOST, up, ""),
    )
    .await;
    let up_ca = w.sk.path("upstream-ca.pem");
    let port = w.upstream.addr.port();
    let a = w
        .curl_trusting(&up_ca, &format!("https://localhost:{port}/tunnelled"))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "a tunnel carries no credential"
    );
    assert_eq!(w.sk.app.proxy_intercepted(), 0);
    // Even allowed loopback never reaches sidekey's own listeners.
    let admin = w.sk.admin().trim_start_matches("http://").to_owned();
    for target in [admin, w.proxy_addr().to_string()] {
        let (status, answer) = connect(w.proxy_addr(), &target).await;
        assert_eq!(status, 403, "{target}");
        assert!(answer.unwrap_err().contains("own listeners"), "{target}");
    }
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_ca_is_name_constrained_kept_private_and_persisted() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::start("", both).await;
    let ca = w.trust();
    let state = w.sk.path("state");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("ca-key.pem")), 0o600);
    assert_eq!(
        std::fs::read_to_string(state.join("ca.pem")).unwrap(),
        std::fs::read_to_string(&ca).unwrap()
    );

    // The name constraints, read back from the certificate by openssl.
    let out = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "nameConstraints,basicConstraints",
            "-in",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("critical"),
        "name constraints are critical: {text}"
    );
    assert!(
        text.contains(&format!("DNS:{HOST}")) && text.contains(&format!("DNS:{OTHER}")),
        "{text}"
    );
    // DNS subtrees alone leave IP addresses open: every one is excluded.
    assert!(
        text.contains("Excluded")
            && text.contains("IP:0.0.0.0/0.0.0.0")
            && text.contains("IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0"),
        "{text}"
    );

    // A leaf for an unlisted host: sidekey will not mint one ...
    let authority = w.sk.app.proxy_ca().unwrap();
    assert!(authority.server_config("evil.example.com").is_err());
    assert!(authority.server_config(HOST).is_ok());
    // ... and one signed with the CA's own key is rejected by a verifier,
    // while one for a routed host verifies.
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(state.join("ca-key.pem")).unwrap())
        .unwrap();
    let issuer = rcgen::CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(&ca).unwrap())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    for (host, valid) in [
        ("evil.example.com", false),
        ("203.0.113.5", false),
        ("2001:db8::5", false),
        (HOST, true),
    ] {
        let mut p = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        p.use_authority_key_identifier_extension = true;
        let k = rcgen::KeyPair::generate().unwrap();
        let leaf = p.signed_by(&k, &issuer, &key).unwrap();
        let path = w.sk.path(&format!("leaf-{}.pem", host.replace(':', "_")));
        std::fs::write(&path, leaf.pem()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), valid, "{host}: {said}");
        if !valid {
            assert!(said.contains("subtree"), "refused for its name: {said}");
        }
    }

    // Persisted: a restart on the same state_dir serves the same CA.
    let before = std::fs::read_to_string(&ca).unwrap();
    let World {
        sk,
        upstream,
        test_ca,
        ..
    } = w;
    let dir_path = sk.dir.path().to_owned();
    let keep = tempfile::Builder::new().tempdir().unwrap();
    let _ = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir_path.display()))
        .arg(keep.path())
        .status();
    sk.stop().await;
    let w = World::start_in(keep, upstream, test_ca, "", &both).await;
    assert_eq!(proxy::sidekey_ca(&w.sk.path("sidekey.toml")), before);
    let a = w
        .curl_trusting(
            &w.sk.path("state/ca.pem"),
            &format!("https://{HOST}/v1/after-restart"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adding_a_host_route_serves_it_without_a_restart() {
    let w = World::start("", |up| host_route("api", HOST, up, "")).await;
    let first_ca = w.trust();
    let before = std::fs::read_to_string(&first_ca).unwrap();
    let (status, _) = connect(w.proxy_addr(), &format!("{OTHER}:443")).await;
    assert_eq!(status, 403, "not routed yet");

    let text =
        proxy::config("", &both(&w.upstream)).replace("{dir}", w.sk.dir.path().to_str().unwrap());
    support::write_atomic(&w.sk.path("sidekey.toml"), &text);
    let summary = w.sk.app.reload().await.unwrap();
    assert_eq!(summary.routes_added, vec!["other".to_string()]);

    // The generated CA did not permit the new host: it was made anew for both.
    let ca = w.trust();
    let after = std::fs::read_to_string(&ca).unwrap();
    assert_ne!(before, after);
    for host in [HOST, OTHER] {
        let a = w
            .curl_trusting(&ca, &format!("https://{host}/v1/reloaded"))
            .await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
    }
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(format!("Bearer {}", w.token).as_str()))
    );
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_told_once_how_to_fix_it() {
    let w = World::start("", both).await;
    let metric = || async {
        let (_, _, body) = support::get(&format!("{}/metrics", w.sk.admin())).await;
        String::from_utf8_lossy(&body).into_owned()
    };
    for _ in 0..2 {
        // No --cacert: curl does not trust sidekey's CA and breaks off the handshake.
        let out = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "--proxy",
                &w.proxy_url(),
                &format!("https://{HOST}/v1/x"),
            ])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let hints = support::logs::lines_with("sidekey ca");
    let ours: Vec<_> = hints
        .iter()
        .filter(|l| l.contains(HOST) && l.contains("does not trust"))
        .collect();
    assert_eq!(ours.len(), 1, "logged once per client and host: {ours:?}");
    let m = metric().await;
    let n: u64 = m
        .lines()
        .find(|l| {
            l.starts_with("sidekey_proxy_tls_handshake_failures_total{reason=\"untrusted_ca\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert!(n >= 2, "{m}");
    assert_eq!(w.upstream.count(), 0);
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_ca_serves_its_hosts_and_a_reload_it_does_not_cover_is_refused() {
    // The operator's CA permits example.test and the names below it.
    let dir = tempfile::tempdir().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.test".into())],
        excluded_subtrees: vec![],
    });
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "operator CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("op-ca.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("op-ca-key.pem"), key.serialize_pem()).unwrap();
    let ca_keys = "ca = { cert = \"op-ca.pem\", key = \"op-ca-key.pem\" }";
    let (upstream, test_ca) = World::upstream().await;
    let w = World::start_in(dir, upstream, test_ca, ca_keys, &|up| {
        host_route("api", HOST, up, "")
    })
    .await;
    let ca = w.sk.path("op-ca.pem");
    let a = w
        .curl_trusting(&ca, &format!("https://{HOST}/v1/operator"))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!w.sk.path("state").exists(), "no CA generated");

    let routes = host_route("api", HOST, &w.upstream, "")
        + &host_route("org", "api.example.org", &w.upstream, "");
    let text = proxy::config(ca_keys, &routes).replace("{dir}", w.sk.dir.path().to_str().unwrap());
    support::write_atomic(&w.sk.path("sidekey.toml"), &text);
    let err = w.sk.app.reload().await.unwrap_err().to_string();
    assert!(err.contains("do not permit `api.example.org`"), "{err}");
    // The running config stays.
    let a = w
        .curl_trusting(&ca, &format!("https://{HOST}/v1/still"))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (status, _) = connect(w.proxy_addr(), "api.example.org:443").await;
    assert_eq!(status, 403);
    w.sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_route_keeps_its_scope_and_replays_after_a_401_with_a_fresh_value() {
    // The upstream accepts only the second value the helper issues.
    let first = support::logs::secret("exec-raw-fp-1");
    let second = support::logs::secret("exec-raw-fp-2");
    let want = format!("Bearer {second}");
    let test_ca = support::tls::TestCa::new();
    let up = support::Upstream::start_tls(test_ca.server_config_for(&[HOST]), move |s| {
        match s.header("authorization") == Some(want.as_str()) {
            true => support::Reply::ok("ok"),
            false => support::Reply::status(401),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    test_ca.write(&dir.path().join("upstream-ca.pem"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/exec/token.sh");
    let scope = "  [[routes.allow]]\n  methods = [\"GET\"]\n  paths = [\"/v1/**\"]\n";
    let text = format!(
        "state_dir = \"{{dir}}/state\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[proxy]\nlisten = \"127.0.0.1:0\"\n\
         [credentials.gh]\nsource = \"exec\"\ncommand = [\"{script}\"]\nenv = {{ COUNT = \"{{dir}}/count\", PREFIX = \"fp\" }}\nmin_refresh_interval = \"0s\"\n{}",
        host_route("api", HOST, &up, scope)
    );
    let sk = support::Sidekey::start_in(dir, &text).await;
    sk.wait_ready(5).await;
    let proxy_addr = match sk.app.proxy_addr().unwrap() {
        sidekey::config::ListenAddr::Tcp(a) => *a,
        _ => unreachable!(),
    };
    let ca = sk.path("sidekey-ca.pem");
    std::fs::write(&ca, proxy::sidekey_ca(&sk.path("sidekey.toml"))).unwrap();
    let proxy_url = format!("http://{proxy_addr}");
    let ca_s = ca.to_str().unwrap();

    // Outside the scope: refused, never forwarded.
    let a = curl(&[
        "--proxy",
        &proxy_url,
        "--cacert",
        ca_s,
        "-X",
        "DELETE",
        &format!("https://{HOST}/v1/repo"),
    ])
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("not_allowed"));
    assert_eq!(up.count(), 0);

    // The first value is rejected; the replay carries the fresh one.
    let a = curl(&[
        "--proxy",
        &proxy_url,
        "--cacert",
        ca_s,
        &format!("https://{HOST}/v1/repo"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {first}").as_str())
    );
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("Bearer {second}").as_str())
    );
    let (_, _, m) = support::get(&format!("{}/metrics", sk.admin())).await;
    assert!(String::from_utf8_lossy(&m).contains("sidekey_replays_total{route=\"api\"} 1"));
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_at_trace_level_never_logs_the_credential_of_an_intercepted_request() {
    let (upstream, test_ca) = World::upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let token = support::logs::secret("ghp_binary0trace0secret0987654321");
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    test_ca.write(&dir.path().join("upstream-ca.pem"));
    let text = proxy::config("", &both(&upstream));
    let mut sk = support::binary::Running::start(dir.path(), &text);
    let line = sk.wait_for_line(|l| l.contains("forward proxy listening"));
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let ca = dir.path().join("sidekey-ca.pem");
    std::fs::write(&ca, proxy::sidekey_ca(&dir.path().join("sidekey.toml"))).unwrap();
    let a = curl(&[
        "--proxy",
        &format!("http://{addr}"),
        "--cacert",
        ca.to_str().unwrap(),
        &format!("https://{HOST}/v1/traced"),
        &format!("https://{HOST}/v1/traced-again"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let attacked = curl(&[
        "--proxy",
        &format!("http://{addr}"),
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &format!("Host: {OTHER}"),
        &format!("https://{HOST}/v1/x"),
    ])
    .await;
    assert_eq!(attacked.status, 421);
    assert_eq!(upstream.count(), 2);
    assert!(
        upstream
            .seen()
            .iter()
            .all(|s| s.header("authorization") == Some(format!("Bearer {token}").as_str()))
    );
    assert!(
        std::process::Command::new("kill")
            .arg(sk.child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let (code, log) = sk.finish();
    assert_eq!(code, 0);
    let all = log.join("\n");
    assert!(all.contains("TRACE"), "trace logging was on");
    support::logs::assert_no_secret_in("the trace log", all.as_bytes());
}

/// A CA an earlier version generated, constrained to the hosts' DNS names
/// but not closed to IP addresses, is replaced at start: its key could
/// still sign for any IP address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_ca_that_leaves_ip_addresses_open_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![
            rcgen::GeneralSubtree::DnsName(HOST.into()),
            rcgen::GeneralSubtree::DnsName(OTHER.into()),
        ],
        excluded_subtrees: vec![],
    });
    let key = rcgen::KeyPair::generate().unwrap();
    let old = p.self_signed(&key).unwrap().pem();
    std::fs::write(state.join("ca.pem"), &old).unwrap();
    std::fs::write(state.join("ca-key.pem"), key.serialize_pem()).unwrap();
    let (upstream, test_ca) = World::upstream().await;
    let w = World::start_in(dir, upstream, test_ca, "", &both).await;
    let now = std::fs::read_to_string(w.sk.path("state/ca.pem")).unwrap();
    assert_ne!(now, old, "the old CA was replaced");
    assert_eq!(proxy::sidekey_ca(&w.sk.path("sidekey.toml")), now);
    assert!(
        support::logs::lines_with("leaves IP addresses open").len() == 1,
        "the replacement is logged"
    );
    // The new one intercepts as before.
    let a = w
        .curl_trusting(
            &w.sk.path("state/ca.pem"),
            &format!("https://{HOST}/v1/new-ca"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    w.sk.stop().await;
}

/// Host routes take every injection form, not only a header: HTTP Basic
/// and a query parameter here (SigV4 through the forward proxy is driven by
/// boto3 in `tests/exec_cmd.rs`). Each request gets an access line naming
/// its route and mode; an upstream whose certificate the route does not
/// trust is the usual JSON `upstream_unreachable`, not a dropped tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_and_query_injection_reach_the_upstream_through_host_routes() {
    let forms = |up: &support::Upstream| {
        let route = |name: &str, host: &str, inject: &str, ca: &str| {
            proxy::host_route_with(name, host, up, inject, ca)
        };
        route(
            "basic",
            HOST,
            r#"{ basic = { username = "svc" } }"#,
            "{dir}/upstream-ca.pem",
        ) + &route(
            "query",
            OTHER,
            r#"{ query = "api_key" }"#,
            "{dir}/upstream-ca.pem",
        ) + &route(
            "untrusted",
            "untrusted.example.test",
            r#"{ header = "Authorization", format = "Bearer {secret}" }"#,
            // Public roots only: not the test CA that signed the upstream.
            "/etc/ssl/certs/ca-certificates.crt",
        )
    };
    let w = World::start("", forms).await;
    let ca = w.trust();
    let get = |host: &str, path: &str| {
        let (proxy, ca) = (w.proxy_url(), ca.clone());
        let url = format!("https://{host}{path}");
        async move { curl(&["--proxy", &proxy, "--cacert", ca.to_str().unwrap(), &url]).await }
    };
    let a = get(HOST, "/v1/basic").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = get(OTHER, "/v1/query?page=2").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = w.upstream.seen();
    assert_eq!(seen.len(), 2);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{}", w.token));
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        seen[1].target,
        format!("/v1/query?page=2&api_key={}", w.token)
    );

    // The ca_file of this route is not the upstream's CA: the TLS failure
    // is an answer the app can read, inside its tunnel.
    let a = get("untrusted.example.test", "/v1/x").await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert!(a.body.contains("upstream_unreachable"), "{}", a.body);
    assert!(!a.body.contains(&w.token));
    assert_eq!(
        w.upstream.count(),
        2,
        "nothing sent to an untrusted upstream"
    );

    let access = support::logs::lines_with("sidekey::access");
    for (route, path) in [("basic", "/v1/basic"), ("query", "/v1/query")] {
        assert!(
            access
                .iter()
                .any(|l| l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("path=\"{path}\""))
                    && l.contains("mode=\"forward\"")),
            "an access line for {route}: {access:#?}"
        );
    }
    w.sk.stop().await;
}
