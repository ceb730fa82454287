//! `source = "vault"` against a real OpenBao dev server: how sidekey reaches and logs in to it.
//! Kubernetes auth (OpenBao's real `kubernetes` backend, a TokenReview stand-in as its apiserver),
//! https with `ca_file` (`-dev-tls`), OpenBao namespaces, and a 403 on a path the policy no longer
//! allows, which must not make sidekey log in again. Everything OpenBao handed out is registered
//! for the secret scans before each stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::json;
use std::time::Duration;
use support::aws::inventory;
use support::oauth::EcKey;
use support::openbao::OpenBao;
use support::tokenreview::TokenReview;
use support::vault::{
    KV_POLICY, assert_serves, config, echo, in_state, last_error, seed_approle, start,
    start_approle, start_unready, stop_scanned,
};
use support::{get, logs, until};
use tokio::time::sleep;

/// The credential: the KV v2 secret `secret/app`, field `key`, polled every second.
const KV_APP: &str = r#"kv = { path = "app", field = "key" }
poll_interval = "1s""#;

/// The accessor of the auth token sidekey holds (inventory `source_detail`).
async fn accessor(sk: &support::Sidekey) -> String {
    inventory(sk, "v").await["source_detail"]["token_accessor"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The display name OpenBao gave the token of `accessor`.
async fn display_name(bao: &OpenBao, accessor: &str) -> String {
    let token = bao.lookup_accessor(accessor).await.unwrap();
    token["display_name"].as_str().unwrap().to_owned()
}

async fn revoke_accessor(bao: &OpenBao, accessor: &str) {
    bao.api(
        "POST",
        "auth/token/revoke-accessor",
        Some(json!({ "accessor": accessor })),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_rereads_the_service_account_token_and_says_why_a_refused_one_fails() {
    let bao = OpenBao::start("root-kube-7a41").await;
    bao.policy("app", KV_POLICY).await;
    let apiserver = TokenReview::start().await;
    bao.kubernetes_auth(
        &apiserver.url(),
        "app",
        "apps",
        &["app-1", "app-2", "app-3"],
        "sidekey",
        "app",
    )
    .await;
    let value = logs::secret("kv-kube-value-61c0");
    bao.kv_put("app", json!({ "key": value })).await;
    let key = EcKey::generate("sa-key");
    let first_jwt = apiserver.issue(&key, "apps", "app-1", "sidekey", true);
    let up = echo().await;
    let sk = start(
        &[("token", &first_jwt)],
        &config(
            &bao,
            &up.url(),
            &format!(
                "auth = {{ method = \"kubernetes\", role = \"app\", jwt_file = \"{{dir}}/token\" }}\n{KV_APP}"
            ),
        ),
    )
    .await;
    let url = format!("{}/x", sk.url("v"));
    assert_serves(&sk, &value).await;
    let reviewed = apiserver.reviewed();
    assert!(
        !reviewed.is_empty() && reviewed.iter().all(|t| *t == first_jwt),
        "OpenBao reviewed the file's token, and only it"
    );
    assert_eq!(
        inventory(&sk, "v").await["source_detail"]["auth_method"],
        "kubernetes"
    );
    let first = accessor(&sk).await;
    assert!(display_name(&bao, &first).await.contains("app-1"));

    // The kubelet rotates the projected token; the auth token is revoked: the
    // next login presents the new file.
    let second_jwt = apiserver.issue(&key, "apps", "app-2", "sidekey", true);
    support::write_atomic(&sk.path("token"), &second_jwt);
    revoke_accessor(&bao, &first).await;
    let second = until(10, "a new login", || async {
        let now = accessor(&sk).await;
        (now != first).then_some(now)
    })
    .await;
    assert!(display_name(&bao, &second).await.contains("app-2"));
    assert_eq!(apiserver.reviewed().last(), Some(&second_jwt));
    assert_eq!(get(&url).await.0, 200);

    // A token the apiserver refuses (its service account deleted): the login
    // fails and last_error says which method failed and what OpenBao said.
    let refused = apiserver.issue(&key, "apps", "app-3", "sidekey", false);
    support::write_atomic(&sk.path("token"), &refused);
    revoke_accessor(&bao, &second).await;
    let inv = in_state(&sk, 10, "stale after a refused login", "stale").await;
    let err = inv["last_error"].as_str().unwrap();
    assert!(
        err.contains(&format!(
            "vault login (auth method kubernetes, JWT from {}) failed",
            sk.path("token").display()
        )) && err.contains("auth/kubernetes/login")
            && err.contains("permission denied"),
        "{err}"
    );
    assert_eq!(apiserver.reviewed().last(), Some(&refused));
    assert_eq!(
        get(&url).await.0,
        200,
        "a KV value has no expiry: it serves"
    );
    assert!(stop_scanned(sk, &bao).await >= 2, "two logins audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_address_is_trusted_through_ca_file_and_another_ca_is_refused() {
    let bao = OpenBao::start_tls("root-tls-0d5e").await;
    assert!(bao.address().starts_with("https://"));
    let value = logs::secret("kv-tls-value-4b8a");
    bao.kv_put("app", json!({ "key": value })).await;
    let up = echo().await;
    let body = format!(
        "auth = {{ method = \"token\", token = {{ file = \"{{dir}}/vault-token\" }} }}\nca_file = \"{{dir}}/ca.pem\"\n{KV_APP}"
    );
    let dev_ca = std::fs::read_to_string(bao.ca_file()).unwrap();
    let sk = start(
        &[("vault-token", &bao.root), ("ca.pem", &dev_ca)],
        &config(&bao, &up.url(), &body),
    )
    .await;
    assert_serves(&sk, &value).await;
    stop_scanned(sk, &bao).await;

    // The same config trusting a CA that did not sign OpenBao's certificate.
    let other = support::tls::TestCa::new();
    let sk = start_unready(
        &[("vault-token", &bao.root), ("ca.pem", &other.cert_pem)],
        &config(&bao, &up.url(), &body),
    )
    .await;
    let err = last_error(&sk, 10).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer")
            && err.contains("not signed by a CA in ca_file"),
        "{err}"
    );
    assert_eq!(inventory(&sk, "v").await["state"], "failed");
    assert_eq!(get(&format!("{}/x", sk.url("v"))).await.0, 503);
    assert_eq!(
        up.count(),
        1,
        "nothing reached the upstream without a value"
    );
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_in_a_namespace_is_read_with_namespace_and_fails_clearly_without() {
    let bao = OpenBao::start("root-ns-93c2").await;
    bao.api("POST", "sys/namespaces/team-a", Some(json!({})))
        .await;
    let in_ns = [("X-Vault-Namespace", "team-a")];
    let (s, v) = bao
        .call_as(
            &bao.root,
            "POST",
            "sys/mounts/secret",
            Some(json!({ "type": "kv", "options": { "version": "2" } })),
            &in_ns,
        )
        .await;
    assert!(s < 300, "KV mount in team-a: {s} {v}");
    let value = logs::secret("kv-ns-value-0f7d");
    let (s, v) = bao
        .call_as(
            &bao.root,
            "POST",
            "secret/data/app",
            Some(json!({ "data": { "key": value } })),
            &in_ns,
        )
        .await;
    assert_eq!(s, 200, "KV write in team-a: {v}");
    let up = echo().await;
    let auth = r#"auth = { method = "token", token = { file = "{dir}/vault-token" } }"#;
    let sk = start(
        &[("vault-token", &bao.root)],
        &config(
            &bao,
            &up.url(),
            &format!("{auth}\nnamespace = \"team-a\"\n{KV_APP}"),
        ),
    )
    .await;
    assert_serves(&sk, &value).await;
    stop_scanned(sk, &bao).await;

    // Without `namespace` the path is looked up in the root namespace, whose
    // own `secret/` mount has no such secret.
    let sk = start_unready(
        &[("vault-token", &bao.root)],
        &config(&bao, &up.url(), &format!("{auth}\n{KV_APP}")),
    )
    .await;
    let err = last_error(&sk, 10).await;
    assert!(
        err.contains("vault GET secret/data/app")
            && err.contains("404")
            && err.contains("root namespace"),
        "{err}"
    );
    assert_eq!(inventory(&sk, "v").await["state"], "failed");
    sk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_a_withdrawn_policy_keeps_the_token_and_logs_in_no_more() {
    let bao = OpenBao::start("root-403-5e2a").await;
    seed_approle(&bao, "60s", "120s").await;
    let value = logs::secret("kv-403-value-8d13");
    bao.kv_put("app", json!({ "key": value })).await;
    let up = echo().await;
    let sk = start_approle(&bao, &up.url(), KV_APP).await;
    let url = format!("{}/x", sk.url("v"));
    assert_eq!(get(&url).await.0, 200);
    let held = accessor(&sk).await;
    let tokens = bao.accessors().await.len();
    // The policy no longer allows the read: every poll answers 403, with a
    // token OpenBao still knows. The value stays (stale), the error says why.
    bao.policy("app", r#"path "sys/nothing" { capabilities = ["read"] }"#)
        .await;
    let inv = in_state(&sk, 10, "stale on 403", "stale").await;
    let err = inv["last_error"].as_str().unwrap();
    assert!(err.contains("permission denied (HTTP 403)"), "{err}");
    sleep(Duration::from_secs(3)).await; // three more polls, each a 403
    assert_eq!(accessor(&sk).await, held, "the same token after the 403s");
    assert_eq!(
        bao.accessors().await.len(),
        tokens,
        "no login per 403: no new token at OpenBao"
    );
    assert_eq!(get(&url).await.0, 200, "no expiry on a KV value: it serves");
    bao.policy("app", KV_POLICY).await;
    in_state(&sk, 15, "fresh again", "fresh").await;
    assert_eq!(accessor(&sk).await, held);
    assert_eq!(stop_scanned(sk, &bao).await, 1, "one login in all");
}
