//! `source = "vault"` material for injectors other than a header, against a real OpenBao dev
//! server: PKI certificates presented to nginx (`ssl_verify_client on`, trusting OpenBao's CA)
//! and re-issued before they expire; AWS keys from KV v2 signing S3 requests that moto checks;
//! and a handed-over token (method `token`) left alive by `revoke_on_shutdown`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use support::aws::{self, Moto, inventory};
use support::load::Load;
use support::nginx::{Nginx, free_port};
use support::openbao::OpenBao;
use support::tls::TestCa;
use support::vault::stop_scanned;
use support::{BEARER, Reply, Sidekey, Upstream, get, logs, route, until};
use tokio::time::Instant;

/// What a token needs to revoke the leases it was given.
const LEASE_POLICY: &str = r#"path "sys/leases/revoke" { capabilities = ["update"] }"#;

/// Credential `v` of `source = "vault"` at `bao` with the keys `body`
/// (`{dir}/vault-token` holds the token), then `routes`.
fn config(bao: &OpenBao, body: &str, routes: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[credentials.v]\nsource = \"vault\"\naddress = \"{}\"\nauth = {{ method = \"token\", token = {{ file = \"{{dir}}/vault-token\" }} }}\n{body}\n{routes}",
        bao.address()
    )
}

/// Starts sidekey in `dir` with `token` as `{dir}/vault-token`.
async fn start(dir: tempfile::TempDir, token: &str, config: &str) -> Sidekey {
    std::fs::write(dir.path().join("vault-token"), token).unwrap();
    let sk = Sidekey::start_in(dir, config).await;
    sk.wait_ready(15).await;
    sk
}

/// A serial as one hex string: OpenBao writes `0a:1b:...`, nginx `A1B...`.
fn serial_key(s: &str) -> String {
    s.replace(':', "")
        .to_ascii_uppercase()
        .trim_start_matches('0')
        .to_owned()
}

/// The notAfter (Unix seconds) of the certificate OpenBao issued with `serial`.
async fn not_after(bao: &OpenBao, serial: &str) -> f64 {
    let v = bao.api("GET", &format!("pki/cert/{serial}"), None).await;
    let pem = v["data"]["certificate"].as_str().unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    sidekey::transport::cert::not_after(der.as_ref())
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_certificates_reach_nginx_and_are_reissued_before_they_expire_with_no_failed_request() {
    let bao = OpenBao::start("root-pki-mtls-4d1a").await;
    let openbao_ca = bao.pki_client_role("client", "8s").await;
    // nginx accepts client certificates of OpenBao's CA only; its own
    // certificate is from a test CA the route trusts.
    let nginx_dir = tempfile::tempdir().unwrap();
    std::fs::write(nginx_dir.path().join("ca.pem"), &openbao_ca).unwrap();
    let server_ca = TestCa::new();
    let (cert, key) = server_ca.leaf_pem();
    std::fs::write(nginx_dir.path().join("server.pem"), cert).unwrap();
    std::fs::write(nginx_dir.path().join("server-key.pem"), key).unwrap();
    let port = free_port();
    let nginx = Nginx::start(nginx_dir.path(), port, false).await;
    let dir = tempfile::tempdir().unwrap();
    server_ca.write(&dir.path().join("server-ca.pem"));
    let sk = start(
        dir,
        &bao.root,
        &config(
            &bao,
            r#"write = { path = "pki/issue/client", data = { common_name = "app.example" }, cert = {} }"#,
            &route(
                "r",
                &format!("https://127.0.0.1:{port}"),
                "v",
                "{ client_cert = {} }",
                "ca_file = \"{dir}/server-ca.pem\"",
            ),
        ),
    )
    .await;
    let url = format!("{}/pay", sk.url("r"));

    // 4 clients on kept-alive connections for 20 s: two and a half certificate lifetimes.
    let load = Load::start(&url, 4);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let total = load.stop().await;
    // The private keys OpenBao issued to sidekey must never be logged.
    let keys = bao.issued_private_keys();
    assert!(keys.len() >= 3, "{} certificates issued", keys.len());
    for k in &keys {
        for line in k.lines().filter(|l| !l.starts_with("-----")) {
            logs::secret(line);
        }
    }

    let log = nginx.access();
    assert_eq!(log.len() as u64, total, "every request reached nginx");
    assert!(
        log.iter().all(|a| a.status == 200 && a.verify == "SUCCESS"),
        "nginx refused some"
    );
    // Each serial nginx saw is a certificate OpenBao issued, presented only
    // before its notAfter.
    let issued = bao.api("LIST", "pki/certs", None).await;
    let issued: BTreeMap<String, String> = issued["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .map(|k| (serial_key(k), k.to_owned()))
        .collect();
    let mut seen: Vec<(String, f64, f64)> = Vec::new(); // serial, first, last
    for a in &log {
        match seen
            .iter_mut()
            .find(|(s, _, _)| *s == serial_key(&a.serial))
        {
            Some(entry) => entry.2 = a.at,
            None => seen.push((serial_key(&a.serial), a.at, a.at)),
        }
    }
    assert!(
        seen.len() >= 3,
        "{} serials in 20 s of 8 s certificates",
        seen.len()
    );
    for (serial, first, last) in &seen {
        let at_bao = issued
            .get(serial)
            .unwrap_or_else(|| panic!("serial {serial} is not one OpenBao issued"));
        let end = not_after(&bao, at_bao).await;
        assert!(
            *last < end,
            "serial {serial} presented {:.2} s after its notAfter",
            last - end
        );
        eprintln!(
            "serial {serial}: presented from {:.2} to {:.2}, {:.2} s before its notAfter",
            first,
            last,
            end - last
        );
    }
    let r = inventory(&sk, "v").await;
    assert_eq!(r["state"], "fresh", "{r}");
    assert_eq!(
        r["rotations"].as_u64().unwrap(),
        seen.len() as u64 - 1,
        "{r}"
    );
    eprintln!("{total} requests, 0 failed, {} certificates", seen.len());
    stop_scanned(sk, &bao).await;
    nginx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_keys_from_kv_v2_sign_s3_requests_at_moto_and_a_new_version_is_used_after_the_poll() {
    let moto = Moto::start().await;
    let bao = OpenBao::start("root-aws-kv-7c3e").await;
    let old = moto.admin.clone();
    bao.kv_put(
        "aws/app",
        json!({ "access_key": old.id, "secret_key": old.secret }),
    )
    .await;
    let inject = r#"{ aws_sigv4 = { service = "s3", region = "us-east-1" } }"#;
    let sk = start(
        tempfile::tempdir().unwrap(),
        &bao.root,
        &config(
            &bao,
            "kv = { path = \"aws/app\", aws = {} }\npoll_interval = \"1s\"",
            &route("s3", &moto.url, "v", inject, ""),
        ),
    )
    .await;
    let base = sk.url("s3");
    let (status, _, body) =
        support::send(http::Method::PUT, &format!("{base}/vault-bucket"), &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        inventory(&sk, "v").await["fingerprint"],
        aws::fingerprint(&old)
    );

    // A new key in a new KV version; once sidekey uses it the old key is deleted.
    let new = moto.create_key(&old).await;
    let written = Instant::now();
    assert_eq!(
        bao.kv_put(
            "aws/app",
            json!({ "access_key": new.id, "secret_key": new.secret }),
        )
        .await,
        2
    );
    until(10, "the new keys in use", || async {
        (inventory(&sk, "v").await["fingerprint"] == aws::fingerprint(&new)).then_some(())
    })
    .await;
    let took = written.elapsed();
    eprintln!(
        "new KV version in use after {} ms (poll_interval 1 s)",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    moto.delete_key(&new, &old.id).await;
    // Only the new key exists at moto now, and moto checks every signature.
    let (status, _, body) = support::send(
        http::Method::PUT,
        &format!("{base}/vault-bucket/after-rotation.txt"),
        &[("content-type", "text/plain")],
        "signed with the new key",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = get(&format!("{base}/vault-bucket/after-rotation.txt")).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"signed with the new key");
    let r = inventory(&sk, "v").await;
    assert_eq!(
        (r["rotations"].as_u64(), r["upstream_rejections"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    stop_scanned(sk, &bao).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_on_shutdown_with_a_handed_over_token_revokes_the_lease_but_not_the_token() {
    let bao = OpenBao::start("root-handover-93d1").await;
    bao.pki_with_leases("svc", "30m").await;
    bao.policy(
        "agent",
        &format!("path \"pki/issue/*\" {{ capabilities = [\"update\"] }}\n{LEASE_POLICY}"),
    )
    .await;
    // A token as Vault Agent's sink would hold it: made by someone else, for an hour.
    let made = bao
        .api(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": ["agent"], "ttl": "1h" })),
        )
        .await;
    let token = logs::secret(made["auth"]["client_token"].as_str().unwrap());
    let up =
        Upstream::start(|s| Reply::ok(s.header("authorization").unwrap_or("").to_owned())).await;
    let sk = start(
        tempfile::tempdir().unwrap(),
        &token,
        &config(
            &bao,
            "write = { path = \"pki/issue/svc\", data = { common_name = \"svc.example\" }, field = \"serial_number\" }\nrevoke_on_shutdown = true",
            &route("v", &up.url(), "v", BEARER, ""),
        ),
    )
    .await;
    let leases = bao.leases("pki/issue/svc/").await;
    assert_eq!(leases.len(), 1, "{leases:?}");
    logs::secret(&leases[0]);
    let (status, _, _) = get(&format!("{}/x", sk.url("v"))).await;
    assert_eq!(status, 200);
    stop_scanned(sk, &bao).await;
    // The lease sidekey obtained is revoked...
    assert_eq!(
        bao.lease(&leases[0]).await.err(),
        Some(400),
        "lease revoked at shutdown"
    );
    // ...the token it was handed still works.
    let (status, v) = bao
        .call_as(&token, "GET", "auth/token/lookup-self", None, &[])
        .await;
    assert_eq!(status, 200, "the handed-over token was revoked: {v}");
    assert!(
        !logs::lines_with("vault token left alone at shutdown").is_empty(),
        "the shutdown says why the token stays"
    );
}
