//! End to end against moto, a signature-checking AWS stand-in: unsigned requests from the app reach S3 signed by sidekey; a wrong key is rejected and counted; a deliberately bad signature fails, proving moto checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use sha2::Digest;
use support::aws::{self, Moto};
use support::{Sidekey, logs};

/// Writes key files and starts sidekey with an S3 route to `moto` using them.
/// `route_extra` adds keys to the route table.
async fn sidekey_for(moto: &Moto, id: &str, secret: &str, route_extra: &str) -> Sidekey {
    let extra = format!("refresh_on_403 = true\n{route_extra}");
    aws::s3_sidekey(moto, id, secret, &extra).await
}

#[tokio::test]
async fn s3_through_sidekey_and_rejections() {
    let moto = Moto::start().await;

    // moto really checks: a request with a wrong signature and one with none fail.
    let (status, _, body) = support::send(
        Method::GET,
        &format!("{}/", moto.url),
        &[
            (
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
                    moto.admin.id,
                    "0".repeat(64)
                ),
            ),
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));

    let sk = sidekey_for(&moto, &moto.admin.id, &moto.admin.secret, "").await;
    let base = sk.url("s3");

    let (status, _, body) =
        support::send(Method::PUT, &format!("{base}/sidekey-bucket"), &[], "").await;
    assert_eq!(
        status,
        200,
        "create bucket: {}",
        String::from_utf8_lossy(&body)
    );

    // A multi-MiB object: above the replay limit, so it streams with UNSIGNED-PAYLOAD.
    let object: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (status, _, body) = support::send(
        Method::PUT,
        &format!("{base}/sidekey-bucket/dir/big%20object.bin"),
        &[("content-type", "application/octet-stream")],
        object.clone(),
    )
    .await;
    assert_eq!(
        status,
        200,
        "put object: {}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = support::send(
        Method::GET,
        &format!("{base}/sidekey-bucket/dir/big%20object.bin"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), object.len());
    assert_eq!(sha2::Sha256::digest(&body), sha2::Sha256::digest(&object));

    let (status, _, body) = support::get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Name>sidekey-bucket</Name>"));
    let (status, _, body) =
        support::get(&format!("{base}/sidekey-bucket?list-type=2&prefix=dir%2F")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Key>dir/big object.bin</Key>"));
    let record = aws::inventory(&sk, "aws").await;
    assert_eq!(record["upstream_rejections"], 0);
    assert_eq!(
        record["fingerprint"],
        aws::fingerprint(&moto.admin).as_str()
    );
    sk.stop().await;

    // The same requests with a wrong secret key: moto refuses the signature.
    let wrong = logs::secret("wrongSecretKey0123456789abcdefghijklmnopq");
    // A rejected request waits up to the route timeout for a newer value to
    // replay with; the key files do not change here, so keep that short.
    let sk = sidekey_for(&moto, &moto.admin.id, &wrong, "timeout = \"2s\"").await;
    let (status, _, body) = support::get(&format!("{}/", sk.url("s3"))).await;
    assert_eq!(status, 403);
    assert!(
        String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let record = aws::inventory(&sk, "aws").await;
    assert!(
        record["upstream_rejections"].as_u64().unwrap() >= 1,
        "{record}"
    );
    sk.stop().await;
}

#[tokio::test]
async fn web_identity_credentials_sign_with_their_session_token() {
    let moto = Moto::start().await;
    let role = moto.create_role().await;
    let dir = tempfile::tempdir().unwrap();
    let token = logs::secret("eyJhbGciOiJSUzI1NiJ9.sidekey-web-identity-token.c2lnbmF0dXJl");
    std::fs::write(dir.path().join("token"), &token).unwrap();
    // moto checks signatures even on AssumeRoleWithWebIdentity, which AWS
    // takes unsigned: open exactly one unsigned slot for sidekey's call.
    moto.allow_unsigned(1).await;
    let keys = format!(
        r#"web_identity_token_file = "{{dir}}/token"
role_arn = "{role}"
role_session_name = "sidekey-test"
sts_endpoint = "{url}"
region = "us-east-1"
duration = "1h""#,
        url = moto.url
    );
    let sk = Sidekey::start_in(dir, &aws::s3_config("wi", &keys, &moto.url, "")).await;
    sk.wait_ready(10).await;
    let record = aws::inventory(&sk, "wi").await;
    assert_eq!(record["source"], "aws", "{record}");
    assert!(
        record["expires_at"].is_string(),
        "STS credentials expire: {record}"
    );
    let snap = sk.app.credential("wi").unwrap().peek().unwrap();
    let key_id = snap.material.aws().unwrap().access_key_id.clone();
    logs::secret(
        snap.material
            .aws()
            .unwrap()
            .session_token
            .as_ref()
            .unwrap()
            .expose(),
    );
    logs::secret(snap.material.aws().unwrap().secret_access_key.expose());
    assert!(
        key_id.starts_with("ASIA"),
        "temporary credentials: {key_id}"
    );

    let base = sk.url("s3");
    let (status, _, body) = support::send(Method::PUT, &format!("{base}/wi-bucket"), &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = support::get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Name>wi-bucket</Name>"));

    // Without the slot, moto refuses the unsigned STS call: the error reaches
    // last_error, without the token, and the working value keeps serving.
    let (status, _, body) = support::send(
        Method::POST,
        &format!("{}/v1/credentials/wi/refresh", sk.admin()),
        &[],
        "",
    )
    .await;
    logs::assert_no_secret_in("the refresh answer", &body);
    assert_ne!(status, 200);
    let record = aws::inventory(&sk, "wi").await;
    assert!(
        record["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("STS AssumeRoleWithWebIdentity")),
        "{record}"
    );
    let (status, _, _) = support::get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    sk.stop().await;
}

/// sidekey with an S3 route whose keys come from a Kubernetes-style secret
/// volume (re-read every second), holding `key` at first. Returns it and the
/// volume's folder, for `aws::swap_secret_volume`.
async fn key_volume_sidekey(
    moto: &Moto,
    key: &aws::Key,
    route_extra: &str,
) -> (Sidekey, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    aws::swap_secret_volume(&keys, &[("id", &key.id), ("secret", &key.secret)]);
    let sk = Sidekey::start_in(
        dir,
        &aws::s3_config(
            "aws",
            r#"access_key_id = { file = "{dir}/keys/id" }
secret_access_key = { file = "{dir}/keys/secret" }
poll_interval = "1s""#,
            &moto.url,
            route_extra,
        ),
    )
    .await;
    (sk, keys)
}

#[tokio::test]
async fn key_rotation_under_traffic() {
    let moto = Moto::start().await;
    let old = moto.admin.clone();
    let (sk, keys) = key_volume_sidekey(&moto, &old, "refresh_on_403 = true").await;
    sk.wait_ready(5).await;
    let base = sk.url("s3");
    let (status, _, _) = support::send(Method::PUT, &format!("{base}/rot"), &[], "").await;
    assert_eq!(status, 200);

    // Continuous traffic: each request notes when it started and how it ended.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = tokio::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..2 {
        let (stop, base) = (stop.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let at = started.elapsed();
                let (status, _, body) = support::send(
                    Method::PUT,
                    &format!("{base}/rot/w{w}-{i}"),
                    &[],
                    format!("object {i}"),
                )
                .await;
                seen.push((at, started.elapsed(), status, body));
                i += 1;
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let new = moto.create_key(&old).await;
    aws::swap_secret_volume(&keys, &[("id", &new.id), ("secret", &new.secret)]);
    let want = aws::fingerprint(&new);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while aws::inventory(&sk, "aws").await["fingerprint"] != want.as_str() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "new key not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let in_place = started.elapsed();
    moto.delete_key(&new, &old.id).await;
    let deleted = started.elapsed();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let after_swap: Vec<_> = all.iter().filter(|(at, ..)| *at >= in_place).collect();
    let after_delete = all.iter().filter(|(at, ..)| *at >= deleted).count();
    let failed: Vec<String> = after_swap
        .iter()
        .filter(|(_, _, status, _)| *status != 200)
        .map(|(at, _, status, body)| format!("{at:?} {status} {}", String::from_utf8_lossy(body)))
        .collect();
    assert!(
        failed.is_empty(),
        "requests failed after the new key was in place:\n{}",
        failed.join("\n")
    );
    // moto refuses a deleted key (InvalidAccessKeyId): every request after the
    // deletion succeeding means none was signed with the old key.
    assert!(
        after_delete >= 10,
        "only {after_delete} requests after the deletion"
    );
    let before = all.iter().filter(|(at, ..)| *at < in_place).count();
    assert!(before >= 10, "only {before} requests before the swap");
    eprintln!(
        "rotation: {} requests, {before} before the new key was in place, {} after, {after_delete} after the old key was deleted",
        all.len(),
        after_swap.len()
    );
    let record = aws::inventory(&sk, "aws").await;
    assert_eq!(record["upstream_rejections"], 0, "{record}");
    assert_eq!(
        record["rotations"].as_u64().map(|r| r >= 1),
        Some(true),
        "{record}"
    );

    sk.stop().await;

    // And the deleted key really is refused by moto.
    let stale = sidekey_for(&moto, &old.id, &old.secret, "timeout = \"2s\"").await;
    let (status, _, body) = support::get(&format!("{}/", stale.url("s3"))).await;
    assert_eq!(status, 403);
    assert!(
        String::from_utf8_lossy(&body).contains("InvalidAccessKeyId"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    stale.stop().await;
}

/// Polls sidekey's inventory record of `aws` until `done` holds, for up to 10 s.
async fn wait_record(sk: &Sidekey, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let record = aws::inventory(sk, "aws").await;
        if done(&record) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: inventory still {record}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The revocation probe goes through the same send path as requests, so on
/// a SigV4 route it is signed with the previous key: moto accepts it while
/// that key is active (the rotation retired nothing) and refuses it once the
/// key is deleted.
#[tokio::test]
async fn sigv4_revocation_probe_is_signed_with_the_previous_key() {
    let moto = Moto::start().await;
    let first = moto.admin.clone();
    let (sk, keys) = key_volume_sidekey(
        &moto,
        &first,
        r#"revocation_check = { method = "GET", path = "/", expect_status = [401, 403], after = "300ms" }"#,
    )
    .await;
    sk.wait_ready(5).await;

    // Rotate to a second key; the first stays active at moto.
    let second = moto.create_key(&first).await;
    aws::swap_secret_volume(&keys, &[("id", &second.id), ("secret", &second.secret)]);
    let first_fp = aws::fingerprint(&first);
    wait_record(&sk, "probe of the still-active first key", |r| {
        r["previous_value_still_valid"]["fingerprint"] == first_fp.as_str()
    })
    .await;
    let record = aws::inventory(&sk, "aws").await;
    assert_eq!(
        record["previous_value_still_valid"]["status"], 200,
        "{record}"
    );
    assert_eq!(record["previous_value_still_valid"]["route"], "s3");

    // Rotate to a third key and delete the second before the probe runs:
    // the probe signed with the second key is refused, and the finding clears.
    // (IAM allows two keys per user: the first goes first.)
    moto.delete_key(&second, &first.id).await;
    let third = moto.create_key(&second).await;
    moto.delete_key(&third, &second.id).await;
    aws::swap_secret_volume(&keys, &[("id", &third.id), ("secret", &third.secret)]);
    wait_record(&sk, "probe of the deleted second key", |r| {
        r["fingerprint"] == aws::fingerprint(&third).as_str()
            && r["previous_value_still_valid"].is_null()
    })
    .await;
    sk.stop().await;
}
