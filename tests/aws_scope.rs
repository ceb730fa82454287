//! Scope on an S3 route, against moto: a copy from a forbidden bucket and an ACL change are
//! refused (moto's objects and ACLs stay as they were) while plain object reads and writes work;
//! a rule that names `x-amz-copy-source` allows copies of objects the scope can read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::{Value, json};
use support::aws::{self, Moto};
use support::curl::{Answer, curl};
use support::{Sidekey, error_code};

const SCOPED: &str = r#"
  [[routes.allow]]
  methods = ["GET", "PUT"]
  paths = ["/allowed-bucket/**"]
"#;

/// A second route with the same key whose rule also lets copies through.
const COPYING: &str = r#"
  [[routes.allow]]
  methods = ["GET", "PUT"]
  paths = ["/allowed-bucket/**"]
  headers = ["x-amz-copy-source"]
"#;

async fn start(moto: &Moto) -> Sidekey {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), &moto.admin.id).unwrap();
    std::fs::write(dir.path().join("secret"), &moto.admin.secret).unwrap();
    let inject = r#"{ aws_sigv4 = { service = "s3", region = "us-east-1" } }"#;
    let config = format!(
        "{}{}",
        aws::s3_config(
            "aws",
            r#"access_key_id = { file = "{dir}/id" }
secret_access_key = { file = "{dir}/secret" }"#,
            &moto.url,
            SCOPED,
        ),
        support::route("copying", &moto.url, "aws", inject, COPYING)
    );
    let sk = Sidekey::start_in(dir, &config).await;
    sk.wait_ready(5).await;
    sk
}

fn refused(a: &Answer, names: &str) {
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(error_code(a.body.as_bytes()), "not_allowed", "{}", a.body);
    assert!(
        a.body.contains(names),
        "the refusal names {names}: {}",
        a.body
    );
}

fn public_grants(acl: &Value) -> usize {
    acl["Grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            g["Grantee"]["URI"]
                .as_str()
                .is_some_and(|u| u.contains("AllUsers"))
        })
        .count()
}

#[tokio::test]
async fn copy_source_and_acl_are_refused_plain_objects_pass() {
    let moto = Moto::start().await;
    let seeded = moto
        .s3(json!([
            ["create_bucket", {"Bucket": "allowed-bucket"}],
            ["create_bucket", {"Bucket": "other-bucket"}],
            ["put_object", {"Bucket": "other-bucket", "Key": "secret.txt", "Body": "top secret"}],
        ]))
        .await;
    assert!(
        seeded.iter().all(|r| r.get("error").is_none()),
        "{seeded:?}"
    );
    let sk = start(&moto).await;
    let base = sk.url("s3");

    // Plain PutObject and GetObject through sidekey still work.
    let put = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: text/plain",
        "--data-binary",
        "hello",
        &format!("{base}/allowed-bucket/plain.txt"),
    ])
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = curl(&[&format!("{base}/allowed-bucket/plain.txt")]).await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (200, "hello"),
        "{:?}",
        got.headers
    );
    let list = curl(&[&format!("{base}/allowed-bucket?list-type=2&prefix=pl")]).await;
    assert!(list.body.contains("<Key>plain.txt</Key>"), "{}", list.body);

    // The same with boto3, the app holding no key (sidekey signs): its
    // GetObject (checksum mode on) and ListObjectsV2 pass, its CopyObject and
    // PutObjectAcl are refused, as botocore reports it. (Not its PutObject:
    // boto3 sends `Expect: 100-continue`, which sidekey's signature covers
    // and moto's check leaves out, so moto refuses it on any route.)
    let app = aws::peer(
        &["s3", &base, "AKIAAPPHOLDSNOKEY000", "the-app-holds-no-secret"],
        Some(&json!([
            ["get_object", {"Bucket": "allowed-bucket", "Key": "plain.txt", "ChecksumMode": "ENABLED"}],
            ["list_objects_v2", {"Bucket": "allowed-bucket", "Prefix": "plain"}],
            ["copy_object", {"Bucket": "allowed-bucket", "Key": "stolen.txt",
                             "CopySource": {"Bucket": "other-bucket", "Key": "secret.txt"}}],
            ["put_object_acl", {"Bucket": "allowed-bucket", "Key": "plain.txt", "ACL": "public-read"}],
        ])),
    )
    .await;
    assert_eq!(app[0]["Body"], "hello", "GetObject: {app:?}");
    assert_eq!(app[1]["KeyCount"], 1, "ListObjectsV2: {app:?}");
    assert_eq!(app[2]["error"], "403", "CopyObject: {app:?}");
    assert_eq!(app[3]["error"], "403", "PutObjectAcl: {app:?}");

    // CopyObject from a bucket outside the scope.
    let copy = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: /other-bucket/secret.txt",
        &format!("{base}/allowed-bucket/stolen.txt"),
    ])
    .await;
    refused(&copy, "`x-amz-copy-source`");
    // Making an object, or the bucket, public.
    for target in [
        "allowed-bucket/plain.txt?acl",
        "allowed-bucket?acl",
        "allowed-bucket/plain.txt?%61cl",
    ] {
        let acl = curl(&[
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read",
            &format!("{base}/{target}"),
        ])
        .await;
        refused(&acl, "x-amz-acl");
        let acl = curl(&["-X", "PUT", &format!("{base}/{target}")]).await;
        refused(&acl, "query parameter `acl`");
    }
    // Other sub-resources and a method override.
    let tagging = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/xml",
        "--data-binary",
        "<Tagging/>",
        &format!("{base}/allowed-bucket/plain.txt?tagging"),
    ])
    .await;
    refused(&tagging, "`tagging`");
    let policy = curl(&[&format!("{base}/allowed-bucket?policy")]).await;
    refused(&policy, "`policy`");

    // moto, asked directly: nothing was copied, nothing made public.
    let state = moto
        .s3(json!([
            ["head_object", {"Bucket": "allowed-bucket", "Key": "stolen.txt"}],
            ["get_object_acl", {"Bucket": "allowed-bucket", "Key": "plain.txt"}],
            ["get_bucket_acl", {"Bucket": "allowed-bucket"}],
            ["get_object_tagging", {"Bucket": "allowed-bucket", "Key": "plain.txt"}],
        ]))
        .await;
    assert_eq!(state[0]["error"], "404", "{:?}", state[0]);
    assert_eq!(public_grants(&state[1]), 0, "{:?}", state[1]);
    assert_eq!(public_grants(&state[2]), 0, "{:?}", state[2]);
    assert_eq!(state[3]["TagSet"], json!([]), "{:?}", state[3]);

    // A rule naming x-amz-copy-source: copies within what the scope can read work,
    // a copy out of another bucket is still refused.
    let copying = sk.url("copying");
    let copy = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: /allowed-bucket/plain.txt",
        &format!("{copying}/allowed-bucket/copy.txt"),
    ])
    .await;
    assert_eq!(copy.status, 200, "{}", copy.body);
    let copy = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: other-bucket/secret.txt",
        &format!("{copying}/allowed-bucket/stolen.txt"),
    ])
    .await;
    refused(&copy, "reads /other-bucket/secret.txt");
    let copy = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: /allowed-bucket/%2E%2E/other-bucket/secret.txt",
        &format!("{copying}/allowed-bucket/stolen.txt"),
    ])
    .await;
    refused(&copy, "reads /other-bucket/secret.txt");
    let state = moto
        .s3(json!([
            ["get_object", {"Bucket": "allowed-bucket", "Key": "copy.txt"}],
            ["head_object", {"Bucket": "allowed-bucket", "Key": "stolen.txt"}],
        ]))
        .await;
    assert_eq!(state[0]["Body"], "hello", "{:?}", state[0]);
    assert_eq!(state[1]["error"], "404", "{:?}", state[1]);
    sk.stop().await;
}
