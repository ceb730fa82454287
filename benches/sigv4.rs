//! Criterion bench of SigV4 signing per request: sidekey's signer against AWS's `aws-sigv4` (the dev-dependency it is checked against) on the same requests, and the SHA-256 of each crate in the tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod common;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use http::Request;
use sha2::Digest;
use sidekey::inject::sigv4::{SigV4Spec, Signer, payload_sha256};
use sidekey::material::AwsKeys;
use sidekey::secret::Secret;
use sidekey::transport::body::{ProxyBody, empty};
use std::time::SystemTime;

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEBYaDOkExampleSessionTokenValue0123456789abcdef";

struct Case {
    name: &'static str,
    service: &'static str,
    token: bool,
    uri: &'static str,
    body_sha256: Option<String>,
}

fn cases() -> [Case; 2] {
    [
        // The load benchmark's sigv4 route: S3, UNSIGNED-PAYLOAD, no session token.
        Case {
            name: "s3_get",
            service: "s3",
            token: false,
            uri: "http://127.0.0.1:8081/bucket/some/key.json",
            body_sha256: None,
        },
        // A service with double encoding and normalisation, a signed body, a token and a query.
        Case {
            name: "sqs_post_token",
            service: "sqs",
            token: true,
            uri: "http://127.0.0.1:8081/123456789012/queue?Action=SendMessage&Version=2012-11-05",
            body_sha256: Some(payload_sha256(b"MessageBody=hello")),
        },
    ]
}

fn request(uri: &str) -> Request<ProxyBody> {
    let mut req = Request::new(empty());
    *req.uri_mut() = uri.parse().unwrap();
    *req.headers_mut() = common::app_headers();
    req
}

fn keys(token: bool) -> AwsKeys {
    AwsKeys {
        access_key_id: KEY_ID.into(),
        secret_access_key: Secret::new(SECRET).unwrap(),
        session_token: token.then(|| Secret::new(TOKEN).unwrap()),
    }
}

/// Signing as sidekey did before it had its own signer: `aws-sigv4` under
/// the no-op dispatcher, the same settings, applied to the request.
fn aws_sign(
    case: &Case,
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    req: &mut Request<ProxyBody>,
) {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    if case.service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region("eu-west-1")
        .name(case.service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = match &case.body_sha256 {
        Some(h) => SignableBody::Precomputed(h.clone()),
        None => SignableBody::UnsignedPayload,
    };
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri.as_str(),
        headers.into_iter(),
        body,
    )
    .unwrap();
    let signed =
        tracing::dispatcher::with_default(&tracing::Dispatch::none(), || sign(signable, &params))
            .unwrap();
    signed.into_parts().0.apply_to_request_http1x(req);
}

fn signing(c: &mut Criterion) {
    let mut g = c.benchmark_group("sigv4");
    for case in cases() {
        let spec = SigV4Spec::new(case.service, "eu-west-1", None, None).unwrap();
        let signer = Signer::new(&spec, &keys(case.token)).unwrap();
        g.bench_function(format!("sidekey/{}", case.name), |b| {
            b.iter_batched_ref(
                || request(case.uri),
                |req| signer.sign(req, case.body_sha256.as_deref()).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let identity = aws_credential_types::Credentials::new(
            KEY_ID,
            SECRET,
            case.token.then(|| TOKEN.to_owned()),
            None,
            "bench",
        )
        .into();
        g.bench_function(format!("aws-sigv4/{}", case.name), |b| {
            b.iter_batched_ref(
                || request(case.uri),
                |req| aws_sign(&case, &identity, req),
                BatchSize::SmallInput,
            )
        });
        // Both sign the same request the same way.
        let (mut ours, mut theirs) = (request(case.uri), request(case.uri));
        signer.sign(&mut ours, case.body_sha256.as_deref()).unwrap();
        aws_sign(&case, &identity, &mut theirs);
        if ours.headers()["x-amz-date"] == theirs.headers()["x-amz-date"] {
            assert_eq!(ours.headers(), theirs.headers(), "{}", case.name);
        }
    }
    g.finish();
}

/// SHA-256 of a canonical request's size with ring and with RustCrypto's
/// `sha2`: both use the CPU's SHA extensions where it has them.
fn sha256(c: &mut Criterion) {
    let data = vec![b'a'; 400];
    let mut g = c.benchmark_group("sha256_400_bytes");
    g.bench_function("ring", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&data)))
    });
    g.bench_function("sha2", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&data)))
    });
    g.finish();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]);
    let mut g = c.benchmark_group("hmac_sha256_200_bytes");
    g.bench_function("ring_cached_key", |b| {
        b.iter(|| ring::hmac::sign(&key, black_box(&data[..200])))
    });
    g.bench_function("ring_new_key", |b| {
        b.iter(|| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, black_box(&[7u8; 32]));
            ring::hmac::sign(&key, black_box(&data[..200]))
        })
    });
    g.finish();
}

criterion_group!(benches, signing, sha256);
criterion_main!(benches);
