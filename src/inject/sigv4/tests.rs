//! Unit tests of the SigV4 signer: AWS's published test-suite vectors, the key cache, what is stripped and refused.

use super::*;
use crate::secret::Secret;
use http_body_util::Full;

fn keys(token: Option<&str>) -> AwsKeys {
    AwsKeys {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap(),
        session_token: token.map(|t| Secret::new(t).unwrap()),
    }
}

/// Signs a request from AWS's SigV4 test suite (credentials AKIDEXAMPLE,
/// us-east-1, service "service", 2015-08-30T12:36:00Z) and returns the signature.
fn suite(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
    token: Option<&str>,
) -> String {
    let spec = SigV4Spec::new("service", "us-east-1", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(token)).unwrap();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://example.amazonaws.com{target}"))
        .header("host", "example.amazonaws.com");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b
        .body(Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
    let hash = payload_sha256(body.as_bytes());
    // The suite's "sign_body" cases carry x-amz-content-sha256; the others do not.
    let sign_body = !body.is_empty();
    signer
        .sign_at(&mut req, Some(&hash), time, sign_body)
        .unwrap();
    let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
    assert!(auth.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    ));
    auth.rsplit("Signature=").next().unwrap().to_owned()
}

#[test]
fn aws_test_suite_vectors() {
    // Inputs and expected signatures from AWS's published SigV4 test suite.
    assert_eq!(
        suite("GET", "/", &[], "", None),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" // get-vanilla
    );
    assert_eq!(
        suite("GET", "/?Param2=value2&Param1=value1", &[], "", None),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" // get-vanilla-query-order-key-case
    );
    assert_eq!(
        suite(
            "GET",
            "/",
            &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1")
            ],
            "",
            None
        ),
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" // get-header-key-duplicate
    );
    assert_eq!(
        suite(
            "GET",
            "/",
            &[("My-Header1", "value1"), ("My-Header2", "\"a   b   c\"")],
            "",
            None
        ),
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" // get-header-value-trim
    );
    assert_eq!(
        suite(
            "GET",
            "/",
            &[],
            "",
            Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267")
        ),
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8" // get-vanilla-with-session-token
    );
    assert_eq!(
        suite("POST", "/", &[], "", None),
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" // post-vanilla
    );
    assert_eq!(
        suite(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "13")
            ],
            "Param1=value1",
            None
        ),
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b" // post-x-www-form-urlencoded
    );
}

#[test]
fn defaults_by_service() {
    let s3 = SigV4Spec::new("s3", "us-east-1", None, None).unwrap();
    assert_eq!(s3.payload, Payload::Unsigned);
    assert_eq!(s3.signed_body_limit(), None);
    let sqs = SigV4Spec::new("sqs", "eu-west-1", None, None).unwrap();
    assert_eq!(sqs.payload, Payload::Signed);
    assert_eq!(sqs.signed_body_limit(), Some(DEFAULT_MAX_SIGNED_BODY));
    assert!(SigV4Spec::new("s3", "us east", None, None).is_err());
    assert!(SigV4Spec::new("s3", "us-east-1", Some("maybe"), None).is_err());
}

#[test]
fn app_signature_material_is_replaced() {
    let spec = SigV4Spec::new("s3", "us-east-1", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(Some("session-token-1"))).unwrap();
    let mut req = Request::builder()
        .method("GET")
        .uri("http://example.amazonaws.com/b/k?X-Amz-Signature=abc&x=1&X-Amz-Credential=zz")
        .header("host", "example.amazonaws.com")
        .header("authorization", "AWS4-HMAC-SHA256 app-own")
        .header("x-amz-security-token", "app-token")
        .header("x-forwarded-for", "10.0.0.1")
        .header("via", "1.1 somewhere")
        .header("x-amz-meta-a", "kept")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    signer.sign(&mut req, None).unwrap();
    let h = req.headers();
    assert_eq!(req.uri().query(), Some("x=1"));
    assert!(
        h["authorization"]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    );
    assert_eq!(h.get_all("authorization").iter().count(), 1);
    assert_eq!(h["x-amz-security-token"], "session-token-1");
    assert!(h["x-amz-security-token"].is_sensitive());
    assert_eq!(h["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    assert!(h.get("x-forwarded-for").is_none() && h.get("via").is_none());
    assert!(h["authorization"].to_str().unwrap().contains(
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-security-token,"
    ));
}

#[test]
fn in_memory_body_gets_its_length_before_signing() {
    let spec = SigV4Spec::new("sqs", "us-east-1", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(None)).unwrap();
    let body = bytes::Bytes::from_static(b"Action=ListQueues");
    let hash = payload_sha256(&body);
    let mut req = Request::builder()
        .method("POST")
        .uri("http://sqs.us-east-1.amazonaws.com/")
        .header("host", "sqs.us-east-1.amazonaws.com")
        .body(Full::new(body))
        .unwrap();
    signer.sign(&mut req, Some(&hash)).unwrap();
    assert_eq!(req.headers()["content-length"], "17");
    assert_eq!(req.headers()["x-amz-content-sha256"], hash.as_str());
    assert!(req.headers().get("x-amz-security-token").is_none());
    assert!(
        req.headers()["authorization"]
            .to_str()
            .unwrap()
            .contains("SignedHeaders=content-length;host;x-amz-content-sha256;x-amz-date,")
    );
}

#[test]
fn signing_reaches_no_subscriber_even_at_trace() {
    use crate::sync::Mutex;
    use std::sync::Arc;
    // Counts the events a trace-level subscriber is given, and from where.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl tracing::Subscriber for Seen {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            self.0.lock().push(e.metadata().target().to_owned());
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let seen = Seen::default();
    tracing::subscriber::with_default(seen.clone(), || {
        tracing::trace!(target: "aws_sigv4", "the subscriber hears this one");
        let spec = SigV4Spec::new("s3", "eu-west-1", None, None).unwrap();
        let signer = Signer::new(&spec, &keys(Some("session-token-value"))).unwrap();
        let mut req = Request::builder()
            .uri("http://127.0.0.1:9/bucket/key")
            .header("host", "127.0.0.1:9")
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        signer.sign(&mut req, None).unwrap();
        assert!(req.headers().contains_key("authorization"));
    });
    assert_eq!(*seen.0.lock(), ["aws_sigv4"], "only the test's own event");
}

/// A test-suite case: name, method, target, headers, body, session token, signature.
type Vector<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    Option<&'a str>,
    &'a str,
);

#[test]
fn more_aws_test_suite_vectors() {
    // AWS's test suite, the cases whose settings sidekey uses for services
    // other than S3 (path normalisation on, double encoding): inputs and
    // expected signatures as published.
    let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    let form = [
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("Content-Length", "13"),
    ];
    let order = [
        ("My-Header1", "value4"),
        ("My-Header1", "value1"),
        ("My-Header1", "value3"),
        ("My-Header1", "value2"),
    ];
    let cases: &[Vector<'_>] = &[
        (
            "get-header-value-order",
            "GET",
            "/",
            &order,
            "",
            None,
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        ),
        (
            "get-relative-normalized",
            "GET",
            "/example/..",
            &[],
            "",
            None,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-relative-relative-normalized",
            "GET",
            "/example1/example2/../..",
            &[],
            "",
            None,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-slash-dot-slash-normalized",
            "GET",
            "/./",
            &[],
            "",
            None,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-slash-normalized",
            "GET",
            "//",
            &[],
            "",
            None,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-slash-pointless-dot-normalized",
            "GET",
            "/./example",
            &[],
            "",
            None,
            "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        ),
        (
            "get-slashes-normalized",
            "GET",
            "//example//",
            &[],
            "",
            None,
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        ),
        (
            "get-unreserved",
            "GET",
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            &[],
            "",
            None,
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        ),
        (
            "get-vanilla-empty-query-key",
            "GET",
            "/?Param1=value1",
            &[],
            "",
            None,
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        ),
        (
            "get-vanilla-query-order-encoded",
            "GET",
            "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
            &[],
            "",
            None,
            "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        ),
        (
            "get-vanilla-query-unreserved",
            "GET",
            "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            &[],
            "",
            None,
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        ),
        (
            "post-header-key-sort",
            "POST",
            "/",
            &[("My-Header1", "value1")],
            "",
            None,
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        ),
        (
            "post-header-value-case",
            "POST",
            "/",
            &[("My-Header1", "VALUE1")],
            "",
            None,
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        ),
        (
            "post-sts-header-before",
            "POST",
            "/",
            &[],
            "",
            Some(token),
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        ),
        (
            "post-vanilla-query",
            "POST",
            "/?Param1=value1",
            &[],
            "",
            None,
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "post-x-www-form-urlencoded-parameters",
            "POST",
            "/",
            &form,
            "Param1=value1",
            None,
            "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
        ),
    ];
    for (name, method, target, headers, body, token, want) in cases {
        assert_eq!(
            suite(method, target, headers, body, *token),
            *want,
            "{name}"
        );
    }
}

/// A signer of the suite's keys for `service`, and a GET to sign.
fn s3_request(target: &str) -> Request<Full<bytes::Bytes>> {
    Request::builder()
        .uri(format!("http://example.amazonaws.com{target}"))
        .header("host", "example.amazonaws.com")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap()
}

#[test]
fn signing_key_is_derived_once_a_day() {
    let spec = SigV4Spec::new("s3", "eu-west-3", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(Some("tok"))).unwrap();
    let day = |d: u64, secs: u64| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_892_800 + d * 86_400 + secs)
    };
    let signed_at = |time: SystemTime| {
        let mut req = s3_request("/b/k");
        signer.sign_at(&mut req, None, time, true).unwrap();
        let want = super::differential::reference(
            &spec,
            &keys(Some("tok")),
            &s3_request("/b/k"),
            None,
            time,
            true,
        )
        .unwrap();
        assert_eq!(req.headers()["authorization"], want["authorization"]);
        req.headers()["authorization"].to_str().unwrap().to_owned()
    };
    assert_eq!(signer.key_derivations(), 0);
    let first = signed_at(day(0, 0));
    signed_at(day(0, 86_399));
    assert_eq!(signer.key_derivations(), 1, "one key for the whole day");
    let next = signed_at(day(1, 0));
    assert_eq!(signer.key_derivations(), 2, "a new key at midnight UTC");
    assert!(first.contains("/20150830/eu-west-3/s3/") && next.contains("/20150831/eu-west-3/s3/"));
    signed_at(day(1, 7_200));
    assert_eq!(signer.key_derivations(), 2);
    signed_at(day(0, 86_399)); // a clock stepped back: that day's key again
    assert_eq!(signer.key_derivations(), 3);
}

#[test]
fn header_that_is_not_utf8_is_refused() {
    let spec = SigV4Spec::new("sqs", "us-east-1", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(None)).unwrap();
    let mut req = s3_request("/");
    req.headers_mut()
        .insert("x-odd", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
    let e = signer.sign(&mut req, None).unwrap_err().to_string();
    assert_eq!(
        e,
        "cannot sign the request for AWS: header `x-odd` is not UTF-8 text and cannot be signed"
    );
    assert!(req.headers().get("authorization").is_none());
}

#[test]
fn host_comes_from_the_uri_without_a_host_header() {
    let spec = SigV4Spec::new("s3", "us-east-1", None, None).unwrap();
    let signer = Signer::new(&spec, &keys(None)).unwrap();
    let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
    let mut req = s3_request("/k");
    req.headers_mut().remove("host");
    let want = super::differential::reference(&spec, &keys(None), &req, None, time, true).unwrap();
    signer.sign_at(&mut req, None, time, true).unwrap();
    assert_eq!(req.headers()["authorization"], want["authorization"]);
    let mut origin_form = Request::builder()
        .uri("/k")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    assert!(signer.sign(&mut origin_form, None).is_err());
    let mut raw_utf8 = s3_request("/caf\u{e9}");
    assert!(
        signer.sign(&mut raw_utf8, None).is_err(),
        "as aws-sigv4 refuses it"
    );
}

#[test]
fn identity_that_cannot_be_a_header_is_refused_at_render() {
    let spec = SigV4Spec::new("s3", "us-east-1", None, None).unwrap();
    let mut bad = keys(None);
    bad.access_key_id = "AKID\nX".into();
    assert!(matches!(
        Signer::new(&spec, &bad),
        Err(RenderError::NotHeaderSafe)
    ));
    let signer = Signer::new(&spec, &keys(Some("TOKEN-VALUE-9f3"))).unwrap();
    let shown = format!("{signer:?}");
    assert!(
        !shown.contains("TOKEN-VALUE") && !shown.contains("wJalr"),
        "{shown}"
    );
}
