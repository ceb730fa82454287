//! Real S3 clients through a SigV4 route: boto3 (PutObject, a multipart `upload_file`, GetObject, ListObjectsV2, DeleteObject) and `curl -T`, both of which send `Expect: 100-continue`, against the signature-checking moto server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::aws::{self, Moto};

#[tokio::test]
async fn boto3_uploads_downloads_lists_and_deletes() {
    let moto = Moto::start().await;
    let sk = aws::s3_sidekey(&moto, &moto.admin.id, &moto.admin.secret, "").await;

    let v = aws::python("aws_boto3.py", &[&sk.url("s3")], None).await;
    assert_eq!(v["ok"], true, "boto3 through sidekey: {v}");
    assert_eq!(v["put_get_equal"], true, "{v}");
    assert_eq!(v["multipart_get_equal"], true, "{v}");
    // A multipart ETag ends in the number of parts: 12 MiB in 5 MiB parts is 3.
    assert!(v["multipart_etag"].as_str().unwrap().ends_with("-3"), "{v}");
    assert_eq!(v["listed"], serde_json::json!(["dir/big.bin"]), "{v}");
    assert_eq!(v["left_after_delete"], serde_json::json!([]), "{v}");

    let record = aws::inventory(&sk, "aws").await;
    assert_eq!(record["upstream_rejections"], 0, "{record}");
    sk.stop().await;
}

#[tokio::test]
async fn curl_upload_with_expect_continue() {
    let moto = Moto::start().await;
    let sk = aws::s3_sidekey(&moto, &moto.admin.id, &moto.admin.secret, "").await;
    let base = sk.url("s3");
    let (status, _, body) =
        support::send(http::Method::PUT, &format!("{base}/curl-bucket"), &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // 2 MiB: curl sends `Expect: 100-continue` above 1 MiB (and older curls above 1 KiB).
    let object: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    let file = sk.path("upload.bin");
    std::fs::write(&file, &object).unwrap();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-v", "-w", "\n%{http_code}", "-T"])
        .arg(&file)
        .arg(format!("{base}/curl-bucket/up.bin"))
        .output()
        .await
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("> Expect: 100-continue"),
        "curl should send Expect: 100-continue: {stderr}"
    );
    assert!(stdout.ends_with("\n200"), "curl -T: {stdout}");

    let (status, _, body) = support::get(&format!("{base}/curl-bucket/up.bin")).await;
    assert_eq!(status, 200);
    assert!(body == object, "the object reads back as uploaded");
    sk.stop().await;
}
