//! The other AWS credential origins against real servers: the container credentials endpoint, EC2 IMDSv2, AssumeRole at moto's STS; plus the signed-payload limit and config checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use sha2::Digest;
use std::time::{Duration, SystemTime};
use support::aws::{self, Moto};
use support::{Reply, Sidekey, Upstream, logs};

/// A credentials document as IMDS and the container endpoint answer it.
fn creds_json(id: &str, secret: &str, token: &str) -> String {
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
    serde_json::json!({
        "Code": "Success",
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "Token": token,
        "Expiration": expires.to_string(),
    })
    .to_string()
}

/// Starts sidekey with credential table `cred` and an sqs-signing route to `up`.
async fn start(dir: tempfile::TempDir, cred: &str, up: &Upstream, inject_extra: &str) -> Sidekey {
    let inject =
        format!(r#"{{ aws_sigv4 = {{ service = "sqs", region = "eu-north-1"{inject_extra} }} }}"#);
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.aws]\nsource = \"aws\"\n{cred}\n{}",
        support::route("api", &up.url(), "aws", &inject, "")
    );
    let sk = Sidekey::start_in(dir, &config).await;
    sk.wait_ready(10).await;
    sk
}

/// Sends one request through sidekey and checks the upstream saw it signed
/// with `key_id` and carrying the session `token`.
async fn assert_signed_with(sk: &Sidekey, up: &Upstream, key_id: &str, token: &str) {
    let (status, _, _) = support::get(&format!("{}/?Action=ListQueues", sk.url("api"))).await;
    assert_eq!(status, 200);
    let seen = up.seen().pop().unwrap();
    let auth = seen.header("authorization").unwrap();
    assert!(auth.contains(&format!("Credential={key_id}/")), "{auth}");
    assert_eq!(seen.header("x-amz-security-token"), Some(token));
}

#[tokio::test]
async fn container_endpoint_with_token_file() {
    let auth = logs::secret("container-authorization-token-0123");
    let secret = logs::secret("containerSecretKey0123456789abcdefghijkl");
    let token = logs::secret("containerSessionToken0123456789abcdefghij");
    let doc = creds_json("ASIACONTAINER0001", &secret, &token);
    let expected_auth = auth.clone();
    let endpoint = Upstream::start(move |seen| {
        if seen.target == "/v2/credentials/task"
            && seen.header("authorization") == Some(&expected_auth)
        {
            Reply::ok(doc.clone())
        } else {
            Reply::status(401)
        }
    })
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctoken"), format!("{auth}\n")).unwrap();
    let sk = start(
        dir,
        &format!(
            "from = \"container\"\ncontainer_endpoint = \"{}/v2/credentials/task\"\ncontainer_token_file = \"{{dir}}/ctoken\"",
            endpoint.url()
        ),
        &up,
        "",
    )
    .await;
    assert_signed_with(&sk, &up, "ASIACONTAINER0001", &token).await;
    let record = aws::inventory(&sk, "aws").await;
    assert!(record["expires_at"].is_string(), "{record}");
    assert_eq!(endpoint.count(), 1);
    sk.stop().await;
}

#[tokio::test]
async fn ec2_imdsv2() {
    let secret = logs::secret("imdsSecretKey0123456789abcdefghijklmnopqr");
    let token = logs::secret("imdsSessionToken0123456789abcdefghijklmn");
    let session = logs::secret("imds-v2-session-token-abcdef");
    let doc = creds_json("ASIAIMDS00000001", &secret, &token);
    let s = session.clone();
    let imds = Upstream::start(move |seen| {
        let with_token = seen.header("x-aws-ec2-metadata-token") == Some(s.as_str());
        match (seen.method.as_str(), seen.target.as_str()) {
            ("PUT", "/latest/api/token")
                if seen
                    .header("x-aws-ec2-metadata-token-ttl-seconds")
                    .is_some() =>
            {
                Reply::ok(s.clone())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if with_token => {
                Reply::ok("app-role\n")
            }
            ("GET", "/latest/meta-data/iam/security-credentials/app-role") if with_token => {
                Reply::ok(doc.clone())
            }
            _ => Reply::status(401),
        }
    })
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let sk = start(
        dir,
        &format!("from = \"imds\"\nimds_endpoint = \"{}\"", imds.url()),
        &up,
        "",
    )
    .await;
    assert_signed_with(&sk, &up, "ASIAIMDS00000001", &token).await;
    let steps: Vec<String> = imds
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    assert_eq!(
        steps,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/app-role"
        ]
    );
    sk.stop().await;
}

#[tokio::test]
async fn assume_role_from_static_keys_at_moto() {
    let moto = Moto::start().await;
    let role = moto.create_role().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), &moto.admin.id).unwrap();
    std::fs::write(dir.path().join("secret"), &moto.admin.secret).unwrap();
    let keys = format!(
        r#"access_key_id = {{ file = "{{dir}}/id" }}
secret_access_key = {{ file = "{{dir}}/secret" }}
role_arn = "{role}"
sts_endpoint = "{url}"
region = "us-east-1""#,
        url = moto.url
    );
    let sk = Sidekey::start_in(dir, &aws::s3_config("role", &keys, &moto.url, "")).await;
    sk.wait_ready(10).await;
    let snap = sk.app.credential("role").unwrap().peek().unwrap();
    let keys = snap.material.aws().unwrap();
    logs::secret(keys.secret_access_key.expose());
    logs::secret(keys.session_token.as_ref().unwrap().expose());
    assert!(
        keys.access_key_id.starts_with("ASIA"),
        "{}",
        keys.access_key_id
    );
    assert_ne!(keys.access_key_id, moto.admin.id);
    let (status, _, body) = support::send(
        Method::PUT,
        &format!("{}/role-bucket", sk.url("s3")),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(aws::inventory(&sk, "role").await["expires_at"].is_string());
    sk.stop().await;
}

#[tokio::test]
async fn signed_payload_is_hashed_up_to_its_limit() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = logs::secret("limitSecretKey0123456789abcdefghijklmnopq");
    std::fs::write(dir.path().join("id"), "AKIDLIMIT0001").unwrap();
    std::fs::write(dir.path().join("secret"), &secret).unwrap();
    let sk = start(
        dir,
        "access_key_id = { file = \"{dir}/id\" }\nsecret_access_key = { file = \"{dir}/secret\" }",
        &up,
        ", payload = \"signed\", max_signed_body = 100000",
    )
    .await;
    let body = vec![b'a'; 100_000];
    let (status, _, _) = support::send(Method::POST, &sk.url("api"), &[], body.clone()).await;
    assert_eq!(status, 200);
    let seen = up.seen().pop().unwrap();
    assert_eq!(
        seen.header("x-amz-content-sha256").unwrap(),
        hex::encode(sha2::Sha256::digest(&body))
    );
    let (status, headers, answer) =
        support::send(Method::POST, &sk.url("api"), &[], vec![b'a'; 100_001]).await;
    assert_eq!(status, 413);
    assert_eq!(headers["sidekey-error"], "request_too_large");
    assert_eq!(support::error_code(&answer), "request_too_large");
    assert!(String::from_utf8_lossy(&answer).contains("max_signed_body"));
    assert_eq!(up.count(), 1, "an oversized body is never forwarded");
    sk.stop().await;
}

#[tokio::test]
async fn config_pairs_sigv4_with_aws_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidekey.toml");
    let write = |cred: &str, inject: &str| {
        std::fs::write(
            &path,
            format!(
                "[credentials.c]\n{cred}\n[[routes]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"https://s3.amazonaws.com\"\ncredential = \"c\"\ninject = {inject}\n"
            ),
        )
        .unwrap();
    };
    write(
        "source = \"env\"\nvar = \"X\"",
        "{ aws_sigv4 = { service = \"s3\", region = \"us-east-1\" } }",
    );
    let e = sidekey::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("aws_sigv4 signs with AWS keys"), "{e}");
    write("source = \"aws\"\nfrom = \"env\"", "{ header = \"X-Key\" }");
    let e = sidekey::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("holds AWS keys"), "{e}");
    write(
        "source = \"aws\"\nfrom = \"env\"",
        "{ aws_sigv4 = { service = \"s3\", region = \"us-east-1\", payload = \"maybe\" } }",
    );
    let e = sidekey::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("payload `maybe`"), "{e}");
    write(
        "source = \"aws\"\nfrom = \"static\"",
        "{ aws_sigv4 = { service = \"s3\", region = \"us-east-1\" } }",
    );
    let e = sidekey::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("access_key_id"), "{e}");
    write(
        "source = \"aws\"\nfrom = \"env\"",
        "{ aws_sigv4 = { service = \"s3\", region = \"us-east-1\" } }",
    );
    let cfg = sidekey::config::load(&path).expect("valid");
    assert_eq!(cfg.credentials[0].source.kind(), "aws");
}

/// An STS answer to AssumeRoleWithWebIdentity, as AWS documents it.
fn sts_xml(id: &str, secret: &str, token: &str) -> String {
    let expires = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>{token}</SessionToken><SecretAccessKey>{secret}</SecretAccessKey><Expiration>{expires}</Expiration><AccessKeyId>{id}</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    )
}

#[tokio::test]
async fn web_identity_token_is_read_again_and_sts_errors_hide_it() {
    let first = logs::secret("web-identity-token-number-one-abcdef");
    let second = logs::secret("web-identity-token-number-two-ghijkl");
    let secret = logs::secret("stsSecretKey0123456789abcdefghijklmnopqrs");
    let session = logs::secret("stsSessionToken0123456789abcdefghijklmno");
    let (f, xml) = (
        first.clone(),
        sts_xml("ASIASTS000000001", &secret, &session),
    );
    let sts = Upstream::start(move |seen| {
        let body = String::from_utf8_lossy(&seen.body).into_owned();
        if body.contains("Action=AssumeRoleWithWebIdentity") && body.contains(&f) {
            Reply::ok(xml.clone())
        } else {
            // Echo the token back, as a careless server might.
            let token = body.split("WebIdentityToken=").nth(1).unwrap_or("").split('&').next().unwrap_or("");
            Reply {
                status: http::StatusCode::BAD_REQUEST,
                body: format!("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>token {token} is not valid</Message></Error></ErrorResponse>").into(),
                delay: None,
                stream_bytes: None,
                headers: Vec::new(),
            }
        }
    })
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &first).unwrap();
    let token_path = dir.path().join("token");
    let sk = start(
        dir,
        &format!(
            "web_identity_token_file = \"{{dir}}/token\"\nrole_arn = \"arn:aws:iam::123456789012:role/app\"\nsts_endpoint = \"{}\"",
            sts.url()
        ),
        &up,
        "",
    )
    .await;
    assert_signed_with(&sk, &up, "ASIASTS000000001", &session).await;

    // The token file changes; the next refresh sends the new token (which
    // this STS refuses, echoing it): last_error says so without the token.
    std::fs::write(&token_path, &second).unwrap();
    let (status, _, body) = support::send(
        Method::POST,
        &format!("{}/v1/credentials/aws/refresh", sk.admin()),
        &[],
        "",
    )
    .await;
    assert_ne!(status, 200);
    logs::assert_no_secret_in("the refresh answer", &body);
    let sent = String::from_utf8_lossy(&sts.seen().pop().unwrap().body).into_owned();
    assert!(
        sent.contains(&format!("WebIdentityToken={second}")),
        "the token file is read at every refresh"
    );
    let record = aws::inventory(&sk, "aws").await;
    let error = record["last_error"].as_str().unwrap();
    assert!(
        error.contains("InvalidIdentityToken") && error.contains("<redacted>"),
        "{error}"
    );
    assert_eq!(record["state"], "stale", "{record}");
    sk.stop().await;
}

/// A port that was free a moment ago (for a sidekey run in its own process,
/// whose listeners the test must know in advance).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn default_chain_takes_the_standard_environment_variables() {
    let up = Upstream::ok().await;
    let secret = logs::secret("envSecretKey0123456789abcdefghijklmnopqrs");
    let token = logs::secret("envSessionToken0123456789abcdefghijklmno");
    let dir = tempfile::tempdir().unwrap();
    let (admin, port) = (free_port(), free_port());
    let config = dir.path().join("sidekey.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[admin]
listen = "127.0.0.1:{admin}"
[credentials.aws]
source = "aws"
[[routes]]
name = "api"
listen = "127.0.0.1:{port}"
upstream = "{}"
credential = "aws"
inject = {{ aws_sigv4 = {{ service = "sqs", region = "ap-south-1" }} }}
"#,
            up.url()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", "ASIAENVIRONMENT01")
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", &token)
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sidekey");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let url = format!("http://127.0.0.1:{port}/?Action=ListQueues");
        let req = http::Request::get(url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        if let Ok(resp) = client.request(req).await {
            if resp.status() == 200 {
                break up.seen().pop().unwrap();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sidekey did not serve within 10s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        seen.header("authorization")
            .unwrap()
            .contains("Credential=ASIAENVIRONMENT01/")
    );
    assert!(
        seen.header("authorization")
            .unwrap()
            .contains("/ap-south-1/sqs/aws4_request")
    );
    assert_eq!(seen.header("x-amz-security-token"), Some(token.as_str()));
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let mut logged = out.stdout;
    logged.extend_from_slice(&out.stderr);
    assert!(!logged.is_empty(), "sidekey logged at trace level");
    logs::assert_no_secret_in("sidekey's own log at trace level", &logged);
}
