//! `source = "vault"` against a real OpenBao dev server: KV v2 rotation under traffic, AppRole with a
//! response-wrapped secret_id and auth-token renewal then re-login, identity OIDC tokens checked by the
//! upstream against OpenBao's JWKS, database leases renewed (or, refused, re-issued with a warning),
//! revocation at shutdown, and an outage (stale, 503, recovery).
//! Everything OpenBao handed out (its audit log) is registered for the secret scans before each stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::aws::inventory;
use support::openbao::{OpenBao, Verifier};
use support::vault::{
    KV_POLICY, assert_serves, config, echo, in_state, seed_approle, start, start_approle,
    stop_scanned,
};
use support::{error_code, get, logs, until};
use tokio::time::{Instant, sleep};

/// What a token needs to renew and revoke the leases it was given.
const LEASE_POLICY: &str = r#"
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#;

/// Waits up to `secs` for a lease under `prefix` that is not in `first`;
/// registers it with the leak scanner and returns it.
async fn new_lease(bao: &OpenBao, prefix: &str, first: &[String], secs: u64, what: &str) -> String {
    let lease = until(secs, what, || async {
        bao.leases(prefix)
            .await
            .into_iter()
            .find(|l| !first.contains(l))
    })
    .await;
    logs::secret(&lease);
    lease
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_v2_new_version_is_in_use_within_the_poll_interval_with_no_failed_request() {
    let bao = OpenBao::start("root-kv-3a9f1c").await;
    let v1 = logs::secret("kv-value-one-7d2e");
    let v2 = logs::secret("kv-value-two-91b4");
    bao.kv_put("payments/stripe", json!({ "api_key": v1, "other": "x" }))
        .await;
    let up = echo().await;
    let sk = start(
        &[("vault-token", &bao.root)],
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "token", token = { file = "{dir}/vault-token" } }
kv = { path = "payments/stripe", field = "api_key" }
poll_interval = "1s""#,
        ),
    )
    .await;
    let url = format!("{}/v1/charges", sk.url("v"));
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let saw_v2 = Arc::new(sidekey::sync::Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, stop, failed, saw_v2, v1, v2) = (
            url.clone(),
            stop.clone(),
            failed.clone(),
            saw_v2.clone(),
            v1.clone(),
            v2.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = support::client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = support::get_with(&client, &url).await;
                let body = String::from_utf8_lossy(&body).into_owned();
                if status != 200
                    || (body != format!("Bearer {v1}") && body != format!("Bearer {v2}"))
                {
                    failed.fetch_add(1, Ordering::Relaxed);
                } else if body == format!("Bearer {v2}") {
                    saw_v2.lock().get_or_insert_with(Instant::now);
                }
                n += 1;
            }
            n
        }));
    }
    sleep(Duration::from_millis(1500)).await;
    let written = Instant::now();
    assert_eq!(
        bao.kv_put("payments/stripe", json!({ "api_key": v2 }))
            .await,
        2
    );
    until(10, "version 2 in use", || async { *saw_v2.lock() }).await;
    let took = saw_v2.lock().unwrap() - written;
    sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 50, "only {total} requests");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests out of {total}"
    );
    // Poll interval 1 s, plus jitter-free slack for a loaded machine.
    assert!(
        took < Duration::from_millis(2500),
        "version 2 in use after {took:?}"
    );
    let inv = inventory(&sk, "v").await;
    assert_eq!(inv["source"], "vault");
    assert_eq!(inv["rotations"], 1);
    assert_eq!(inv["source_detail"]["auth_method"], "token");
    stop_scanned(sk, &bao).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_with_wrapped_secret_id_renews_its_token_then_logs_in_again_after_max_ttl() {
    let bao = OpenBao::start("root-approle-0b7e").await;
    seed_approle(&bao, "3s", "9s").await;
    let value = logs::secret("kv-approle-value-22aa");
    bao.kv_put("app", json!({ "key": value })).await;
    let wrapping = bao.wrapped_secret_id("app").await;
    let up = echo().await;
    let sk = start(
        &[("secret-id", &wrapping)],
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "approle", role_id = "role-id-app", secret_id = { file = "{dir}/secret-id" }, secret_id_wrapped = true }
kv = { path = "app", field = "key" }
poll_interval = "1s""#,
        ),
    )
    .await;
    // The wrapping token was used up by sidekey's unwrap.
    let (s, _) = bao
        .call_as(&wrapping, "POST", "sys/wrapping/unwrap", None, &[])
        .await;
    assert_ne!(s, 200, "the wrapping token was unwrapped by sidekey");
    let inv = inventory(&sk, "v").await;
    assert_eq!(inv["source_detail"]["auth_method"], "approle");
    let first = inv["source_detail"]["token_accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/x", sk.url("v"));
    // Past the 3 s TTL: the token is alive because sidekey renewed it.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(4500) {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("Bearer {value}"));
        sleep(Duration::from_millis(250)).await;
    }
    let token = bao
        .lookup_accessor(&first)
        .await
        .expect("token still alive after its TTL");
    assert!(token["ttl"].as_u64().unwrap() > 0, "{token}");
    assert!(!token["last_renewal_time"].is_null(), "renewed: {token}");
    // At the 9 s max TTL renewal cannot extend it: a new login, a new accessor.
    let second = until(15, "a new login after max TTL", || {
        let sk = &sk;
        let first = first.clone();
        async move {
            let (status, _, _) = get(&format!("{}/x", sk.url("v"))).await;
            assert_eq!(status, 200, "requests keep working across the re-login");
            let inv = inventory(sk, "v").await;
            let now = inv["source_detail"]["token_accessor"].as_str()?.to_owned();
            (now != first).then_some(now)
        }
    })
    .await;
    assert!(bao.lookup_accessor(&second).await.is_ok());
    assert!(
        stop_scanned(sk, &bao).await > 0,
        "login tokens found in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_oidc_token_is_verified_by_the_upstream_and_revoked_at_shutdown() {
    let bao = OpenBao::start("root-oidc-6f03").await;
    seed_approle(&bao, "60s", "120s").await;
    let client_id = bao.oidc_role("k", "r", "6s").await;
    let verifier = Verifier::start(&bao, &client_id).await;
    // The verifier really checks: a token it cannot verify is refused.
    let (status, _, _) = support::send(
        http::Method::GET,
        &verifier.url,
        &[("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")],
        "",
    )
    .await;
    assert_eq!(status, 401);
    let sk = start_approle(
        &bao,
        &verifier.url,
        r#"read = { path = "identity/oidc/token/r", field = "token" }
revoke_on_shutdown = true"#,
    )
    .await;
    let (status, _, body) = get(&format!("{}/api", sk.url("v"))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let claims: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        claims["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "{claims}"
    );
    let inv = inventory(&sk, "v").await;
    let first = inv["fingerprint"].clone();
    assert!(inv["expires_at"].is_string(), "{inv}");
    let accessor = inv["source_detail"]["token_accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    // The 6 s token is replaced at about 2/3 of its life; the new one verifies too.
    until(10, "a new identity token", || async {
        let inv = inventory(&sk, "v").await;
        (inv["fingerprint"] != first).then_some(())
    })
    .await;
    let (status, _, body) = get(&format!("{}/api", sk.url("v"))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(bao.lookup_accessor(&accessor).await.is_ok());
    assert!(
        stop_scanned(sk, &bao).await > 0,
        "login tokens found in the audit log"
    );
    // revoke_on_shutdown: the auth token is gone at OpenBao.
    assert!(
        bao.lookup_accessor(&accessor).await.is_err(),
        "the auth token was revoked at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_down_keeps_the_value_stale_then_503_then_recovers_after_reseeding() {
    let mut bao = OpenBao::start("root-outage-44d1").await;
    seed_approle(&bao, "60s", "120s").await;
    bao.oidc_role("k", "r", "6s").await;
    let up = echo().await;
    let sk = start_approle(
        &bao,
        &up.url(),
        r#"read = { path = "identity/oidc/token/r", field = "token" }
timeout = "2s""#,
    )
    .await;
    let url = format!("{}/x", sk.url("v"));
    let (status, _, _) = get(&url).await;
    assert_eq!(status, 200);
    // Sealed: the value stays, the error says what OpenBao said.
    bao.api("PUT", "sys/seal", None).await;
    let inv = in_state(&sk, 10, "stale while OpenBao is sealed", "stale").await;
    let err = inv["last_error"].as_str().unwrap();
    assert!(err.contains("sealed"), "{err}");
    // Down: still stale, then expired.
    bao.stop().await;
    let (status, _, _) = get(&url).await;
    assert_eq!(status, 200, "the last good value serves while valid");
    let body = until(10, "503 credential_expired", || async {
        let (status, _, body) = get(&url).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(error_code(&body), "credential_expired");
    // A new dev server knows nothing: the login fails, and says so.
    bao.restart().await;
    until(30, "the login failure in last_error", || async {
        let inv = inventory(&sk, "v").await;
        inv["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("login"))
            .then_some(())
    })
    .await;
    seed_approle(&bao, "60s", "120s").await;
    bao.oidc_role("k", "r", "6s").await;
    until(40, "recovered by itself", || async {
        let (status, _, _) = get(&url).await;
        (status == 200).then_some(())
    })
    .await;
    assert_eq!(inventory(&sk, "v").await["state"], "fresh");
    assert!(
        stop_scanned(sk, &bao).await > 0,
        "login tokens found in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_reads_the_rotated_jwt_file_at_every_login() {
    let bao = OpenBao::start("root-jwt-8c2d").await;
    bao.policy("app", KV_POLICY).await;
    let key = support::oauth::EcKey::generate("test-key");
    bao.jwt_auth(&key.public_pem(), "w", "sidekey-vault-test", "app")
        .await;
    let value = logs::secret("kv-jwt-value-3f19");
    bao.kv_put("app", json!({ "key": value })).await;
    let jwt = |sub: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        logs::secret(&key.sign_jwt(&json!({
            "aud": "sidekey-vault-test",
            "sub": sub,
            "iat": now,
            "exp": now + 30,
        })))
    };
    let up = echo().await;
    let sk = start(
        &[("jwt", &jwt("workload-1"))],
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "jwt", role = "w", jwt_file = "{dir}/jwt" }
kv = { path = "app", field = "key" }
poll_interval = "1s""#,
        ),
    )
    .await;
    assert_serves(&sk, &value).await;
    let inv = inventory(&sk, "v").await;
    assert_eq!(inv["source_detail"]["auth_method"], "jwt");
    let first = inv["source_detail"]["token_accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = bao.lookup_accessor(&first).await.unwrap();
    assert!(
        token["display_name"]
            .as_str()
            .unwrap()
            .contains("workload-1"),
        "{token}"
    );
    // The file rotates (a new projected token); the auth token is revoked: the
    // next login reads the new file.
    support::write_atomic(&sk.path("jwt"), &jwt("workload-2"));
    bao.api(
        "POST",
        "auth/token/revoke-accessor",
        Some(json!({ "accessor": first })),
    )
    .await;
    let second = until(10, "a new login", || async {
        let inv = inventory(&sk, "v").await;
        let now = inv["source_detail"]["token_accessor"].as_str()?.to_owned();
        (now != first).then_some(now)
    })
    .await;
    let token = bao.lookup_accessor(&second).await.unwrap();
    assert!(
        token["display_name"]
            .as_str()
            .unwrap()
            .contains("workload-2"),
        "{token}"
    );
    let (status, _, _) = get(&format!("{}/x", sk.url("v"))).await;
    assert_eq!(status, 200);
    assert!(
        stop_scanned(sk, &bao).await > 0,
        "login tokens found in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_secret_is_reissued_before_expiry_and_revoked_at_openbao() {
    let bao = OpenBao::start("root-lease-1e77").await;
    bao.pki_with_leases("svc", "6s").await;
    let up = echo().await;
    let sk = start(
        &[("vault-token", &bao.root)],
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "token", token = { file = "{dir}/vault-token" } }
write = { path = "pki/issue/svc", data = { common_name = "svc.example" }, field = "serial_number" }
revoke_on_shutdown = true"#,
        ),
    )
    .await;
    let prefix = "pki/issue/svc/";
    let first = bao.leases(prefix).await;
    assert_eq!(first.len(), 1, "{first:?}");
    logs::secret(&first[0]); // lease data never reaches a log
    let lease = bao.lease(&first[0]).await.unwrap();
    assert!(lease["ttl"].as_u64().unwrap() <= 6, "{lease}");
    let (status, _, body) = get(&format!("{}/x", sk.url("v"))).await;
    assert_eq!(status, 200);
    let serial_1 = logs::secret(String::from_utf8_lossy(&body).trim_start_matches("Bearer "));
    // A lease that cannot be renewed is replaced at about 2/3 of its life.
    let current = new_lease(&bao, prefix, &first, 10, "a new lease").await;
    let (_, _, body) = get(&format!("{}/x", sk.url("v"))).await;
    assert!(!String::from_utf8_lossy(&body).contains(&serial_1));
    // `sidekey revoke`: the lease is revoked at OpenBao, a new one issued.
    sk.app.credential("v").unwrap().revoke_now().await.unwrap();
    assert_eq!(bao.lease(&current).await.err(), Some(400), "lease revoked");
    let inv = inventory(&sk, "v").await;
    assert_eq!(inv["state"], "fresh");
    let held = until(5, "the lease of the new value", || async {
        let now = bao.leases(prefix).await;
        now.into_iter()
            .find(|l| *l != current && !first.contains(l))
    })
    .await;
    assert!(bao.lease(&held).await.is_ok());
    // revoke_on_shutdown: the held lease goes with sidekey.
    stop_scanned(sk, &bao).await;
    until(5, "lease revoked at shutdown", || async {
        bao.lease(&held).await.is_err().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_lease_is_renewed_while_renewable_then_reissued_at_its_max_ttl() {
    let bao = OpenBao::start("root-db-5b90").await;
    let redis = support::redis::Redis::start().await;
    bao.redis_database(&redis, "r", "4s", "10s").await;
    let up = echo().await;
    let sk = start(
        &[("vault-token", &bao.root)],
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "token", token = { file = "{dir}/vault-token" } }
read = { path = "database/creds/r", field = "password" }"#,
        ),
    )
    .await;
    let prefix = "database/creds/r/";
    let first = bao.leases(prefix).await;
    assert_eq!(first.len(), 1, "{first:?}");
    logs::secret(&first[0]);
    let url = format!("{}/x", sk.url("v"));
    let (_, _, body) = get(&url).await;
    let password = logs::secret(String::from_utf8_lossy(&body).trim_start_matches("Bearer "));
    // Past the 4 s lease: renewed, same password, no rotation.
    sleep(Duration::from_millis(4500)).await;
    let lease = bao
        .lease(&first[0])
        .await
        .expect("lease alive past its first TTL");
    assert!(!lease["last_renewal"].is_null(), "renewed: {lease}");
    assert_eq!(
        bao.leases(prefix).await,
        first,
        "no new lease while renewable"
    );
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("Bearer {password}"));
    assert_eq!(inventory(&sk, "v").await["rotations"], 0);
    // Near the 10 s max TTL renewal cannot extend it: a new lease, a new password.
    new_lease(&bao, prefix, &first, 12, "a new lease before max TTL").await;
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200, "no gap at the re-issue");
    let body = String::from_utf8_lossy(&body).into_owned();
    logs::secret(body.trim_start_matches("Bearer "));
    assert_ne!(body, format!("Bearer {password}"));
    assert_eq!(inventory(&sk, "v").await["rotations"], 1);
    stop_scanned(sk, &bao).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_lease_renewal_is_a_warning_and_the_secret_is_issued_anew() {
    let bao = OpenBao::start("root-renewal-3d81").await;
    let redis = support::redis::Redis::start().await;
    bao.redis_database(&redis, "r", "4s", "60s").await;
    seed_approle(&bao, "60s", "120s").await;
    // May read database credentials, may not renew them (`deny` overrides
    // the `default` policy, which allows `sys/leases/renew`).
    bao.policy(
        "app",
        r#"path "database/creds/r" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["deny"] }"#,
    )
    .await;
    let up = echo().await;
    let sk = start_approle(
        &bao,
        &up.url(),
        r#"read = { path = "database/creds/r", field = "password" }"#,
    )
    .await;
    let prefix = "database/creds/r/";
    let first = bao.leases(prefix).await;
    assert_eq!(first.len(), 1, "{first:?}");
    logs::secret(&first[0]);
    // At about 2/3 of the 4 s lease the renewal is refused (403): a new lease.
    new_lease(
        &bao,
        prefix,
        &first,
        10,
        "a new lease after the refused renewal",
    )
    .await;
    let (status, _, _) = get(&format!("{}/x", sk.url("v"))).await;
    assert_eq!(status, 200);
    let warned = logs::lines_with("vault lease renewal failed; issuing anew");
    assert!(
        warned
            .iter()
            .any(|l| l.contains(" WARN ") && l.contains("permission denied (HTTP 403)")),
        "a warning with OpenBao's reason: {warned:?}"
    );
    assert!(inventory(&sk, "v").await["rotations"].as_u64().unwrap() >= 1);
    assert!(
        stop_scanned(sk, &bao).await > 0,
        "login tokens found in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_revokes_the_lease_and_the_auth_token_of_the_real_binary() {
    let bao = OpenBao::start("root-sigterm-2c58").await;
    seed_approle(&bao, "60s", "120s").await;
    bao.policy(
        "app",
        &format!(
            "{KV_POLICY}{LEASE_POLICY}\npath \"pki/issue/*\" {{ capabilities = [\"update\"] }}"
        ),
    )
    .await;
    bao.pki_with_leases("svc", "30m").await;
    let up = echo().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret-id"), "secret-id-fixed-5c1e").unwrap();
    let mut sk = support::binary::Running::start(
        dir.path(),
        &config(
            &bao,
            &up.url(),
            r#"auth = { method = "approle", role_id = "role-id-app", secret_id = { file = "{dir}/secret-id" } }
write = { path = "pki/issue/svc", data = { common_name = "svc.example" }, field = "serial_number" }
revoke_on_shutdown = true"#,
        ),
    );
    let login = sk.wait_for_line(|l| l.contains("vault login"));
    let accessor = login
        .split_once("accessor=")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    sk.wait_for_line(|l| l.contains("issued"));
    let leases = bao.leases("pki/issue/svc/").await;
    assert_eq!(leases.len(), 1, "{leases:?}");
    logs::secret(&leases[0]);
    assert!(bao.lease(&leases[0]).await.is_ok());
    assert!(bao.lookup_accessor(&accessor).await.is_ok());
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &sk.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let (code, log) = sk.finish();
    assert_eq!(code, 0, "{}", log.join("\n"));
    assert!(
        bao.lease(&leases[0]).await.is_err(),
        "lease revoked at SIGTERM"
    );
    assert!(
        bao.lookup_accessor(&accessor).await.is_err(),
        "auth token revoked at SIGTERM"
    );
    let all = log.join("\n");
    assert!(all.contains("vault token revoked at shutdown"), "{all}");
    assert!(
        bao.register_handed_out() > 0,
        "login tokens found in the audit log"
    );
    logs::assert_no_secret_in("the binary's trace log", all.as_bytes());
}
