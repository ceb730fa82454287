//! Differential test of SigV4 signing: botocore's SigV4Auth signs exactly the request a real upstream received from sidekey, at the same timestamp, and must reach the same signature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use base64::Engine as _;
use http::Method;
use serde_json::{Value, json};
use sha2::Digest;
use support::{Sidekey, Upstream, aws, logs};

const ID_A: &str = "AKIDSIDEKEYTESTA";
const ID_B: &str = "ASIASIDEKEYTESTB";

const PATHS: &[&str] = &[
    "/",
    "/a/b/c",
    "/with%20space",
    "/%E2%82%AC/euro",
    "/tilde~/under_score/dash-/dot.",
    "/colon:at@bang!",
    "/trailing/",
    "/2013-04-01/hostedzone",
    "/a/./b/../c",
    "/plus+sign",
    "/quote%27s/%2A",
    "/photos/2024/06/cat.jpg",
];

const QUERIES: &[&str] = &[
    "",
    "a=1&b=2",
    "b=2&a=1",
    "x=2&x=1&x=10",
    "flag",
    "empty=&k=v",
    "k=%20space%2Fslash",
    "%E2%82%AC=euro",
    "A=upper&a=lower&_=u&~=t&-=d",
    "list-type=2&prefix=photos%2F2024&delimiter=%2F",
    "Action=DescribeThings&Version=2020-01-01&Filter.1.Name=tag%3AName",
];

fn header_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![
            ("x-amz-meta-color", "blue"),
            ("content-type", "application/json"),
        ],
        vec![("x-custom", "a   b    c"), ("x-other", "  padded  ")],
        vec![("x-rep", "1"), ("x-rep", "two"), ("x-rep", "3 3")],
        // Whatever signature material or proxy hops the app sends must go.
        vec![
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=APPKEY/19990101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            ),
            ("x-amz-date", "19990101T000000Z"),
            ("x-amz-security-token", "app-own-token"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https"),
            ("via", "1.1 app-proxy"),
        ],
        // No tab inside a value: botocore folds tabs like spaces, aws-sigv4
        // (like the SigV4 text, "sequential spaces") only spaces.
        vec![
            ("accept", "*/*"),
            ("x-amz-target", "Service.Operation"),
            ("x-mixed", "Case  Value"),
        ],
    ]
}

/// (route, access key id, service, signed payload)
const ROUTES: &[(&str, &str, &str, bool)] = &[
    ("a_sqs", ID_A, "sqs", true),
    ("a_s3", ID_A, "s3", false),
    ("b_sqs", ID_B, "sqs", true),
    ("b_s3", ID_B, "s3", false),
];

#[tokio::test]
async fn botocore_agrees_with_every_signature() {
    let up = Upstream::ok().await;
    let secret_a = logs::secret("sidekeyTestSecretA/with+slash=and/plus0123");
    let secret_b = logs::secret("sidekeyTestSecretB0123456789abcdefghijklmn");
    let token_b = logs::secret("IQoJb3JpZ2luX2VjEJr//////////sidekey+session/token==");
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("a_id", ID_A),
        ("a_secret", secret_a.as_str()),
        ("b_id", ID_B),
        ("b_secret", secret_b.as_str()),
        ("b_token", token_b.as_str()),
    ] {
        std::fs::write(dir.path().join(name), format!("{value}\n")).unwrap();
    }
    let mut config = r#"
[admin]
listen = "127.0.0.1:0"
[credentials.a]
source = "aws"
access_key_id = { file = "{dir}/a_id" }
secret_access_key = { file = "{dir}/a_secret" }
[credentials.b]
source = "aws"
access_key_id = { file = "{dir}/b_id" }
secret_access_key = { file = "{dir}/b_secret" }
session_token = { file = "{dir}/b_token" }
"#
    .to_string();
    for (name, _, service, _) in ROUTES {
        config.push_str(&format!(
            "[[routes]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\ncredential = \"{}\"\ninject = {{ aws_sigv4 = {{ service = \"{service}\", region = \"eu-west-3\" }} }}\n",
            up.url(),
            &name[..1],
        ));
    }
    let sk = Sidekey::start_in(dir, &config).await;
    sk.wait_ready(5).await;

    let methods = [
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::HEAD,
        Method::PATCH,
    ];
    let sets = header_sets();
    let mut cases = Vec::new();
    let mut sent = Vec::new();
    for i in 0..72usize {
        let (route, id, service, signed) = ROUTES[i % ROUTES.len()];
        let method = methods[(i / 4) % methods.len()].clone();
        let path = PATHS[(i * 7) % PATHS.len()];
        let query = QUERIES[(i * 5) % QUERIES.len()];
        let headers = &sets[(i * 3 + i / 12) % sets.len()];
        let body = match method {
            Method::POST | Method::PUT | Method::PATCH if i % 3 != 0 => {
                format!(
                    "Action=Put&Index={i}&Data=caf%C3%A9 \u{e9}\n{}",
                    "x".repeat(i * 37)
                )
            }
            _ => String::new(),
        };
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let (status, _, _) = support::send(
            method.clone(),
            &format!("{}{target}", sk.url(route)),
            headers,
            body.clone(),
        )
        .await;
        assert_eq!(status, 200, "{method} {target} via {route}");
        let seen = up.seen().pop().unwrap();
        let (secret, token) = match id {
            ID_A => (&secret_a, None),
            _ => (&secret_b, Some(&token_b)),
        };
        let auth = seen.header("authorization").expect("signed").to_owned();
        assert_eq!(seen.headers.get_all("authorization").iter().count(), 1);
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={id}/")),
            "{auth}"
        );
        assert!(auth.contains(&format!("/eu-west-3/{service}/aws4_request, ")));
        for gone in ["x-forwarded-for", "x-forwarded-proto", "via"] {
            assert!(seen.header(gone).is_none(), "{gone} must be removed");
        }
        assert_eq!(
            seen.header("x-amz-security-token"),
            token.map(String::as_str)
        );
        let content_sha = seen.header("x-amz-content-sha256").unwrap();
        if signed {
            assert_eq!(content_sha, hex::encode(sha2::Sha256::digest(&seen.body)));
            assert_eq!(seen.body, body.as_bytes());
        } else {
            assert_eq!(content_sha, "UNSIGNED-PAYLOAD");
        }
        let headers: Vec<Value> = seen
            .headers
            .iter()
            .filter(|(n, _)| *n != "authorization")
            .map(|(n, v)| json!([n.as_str(), v.to_str().unwrap()]))
            .collect();
        cases.push(json!({
            "method": seen.method,
            "url": format!("http://{}{}", seen.header("host").unwrap(), seen.target),
            "headers": headers,
            "body_b64": base64::engine::general_purpose::STANDARD.encode(&seen.body),
            "timestamp": seen.header("x-amz-date").unwrap(),
            "access_key_id": id,
            "secret_access_key": secret,
            "session_token": token,
            "service": service,
            "region": "eu-west-3",
        }));
        sent.push((format!("{method} {target} via {route}"), auth));
    }

    let answers = aws::peer(&["sign"], Some(&Value::Array(cases))).await;
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), sent.len());
    let mut disagreements = Vec::new();
    for ((what, auth), botocore) in sent.iter().zip(answers) {
        let ours = auth.rsplit("Signature=").next().unwrap();
        let our_signed = auth
            .split("SignedHeaders=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap();
        // botocore signs every header it is given (the whole received request),
        // so equal SignedHeaders also prove nothing was added after signing.
        if ours != botocore["signature"] || our_signed != botocore["signed_headers"] {
            disagreements.push(format!(
                "{what}: sidekey {our_signed} {ours}, botocore {} {}",
                botocore["signed_headers"], botocore["signature"]
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} signatures differ from botocore:\n{}",
        disagreements.len(),
        sent.len(),
        disagreements.join("\n")
    );
    sk.stop().await;
}
