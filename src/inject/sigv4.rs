//! AWS Signature Version 4: the signing identity rendered once per credential value, each request signed with the AWS SDK's `aws-sigv4`.
//!
//! The request is signed exactly as it goes upstream: `Host` is already set,
//! whatever signature material the app sent is removed first, and nothing is
//! changed after signing.

use super::{Attach, AttachError, BodyNeed, Injector, RenderError, Rendered};
use crate::material::{AwsKeys, Material, MaterialKind};
use crate::transport::body::ProxyBody;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Uri};
use hyper::body::Body;
use sha2::{Digest, Sha256};
use std::time::SystemTime;

/// Largest body hashed for a signed payload unless the route says otherwise.
pub const DEFAULT_MAX_SIGNED_BODY: u64 = 8 * 1024 * 1024;

/// How the body is covered by the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// SHA-256 of the body in `x-amz-content-sha256`; the body is held in memory.
    Signed,
    /// `UNSIGNED-PAYLOAD`: the body streams through untouched (S3 accepts this).
    Unsigned,
}

/// The configured `{ aws_sigv4 = { service, region, payload, max_signed_body } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Spec {
    pub service: String,
    pub region: String,
    pub payload: Payload,
    pub max_signed_body: u64,
}

impl SigV4Spec {
    /// Builds the spec, choosing the payload mode by service when not given.
    pub fn new(
        service: &str,
        region: &str,
        payload: Option<&str>,
        max_signed_body: Option<u64>,
    ) -> Result<Self, String> {
        let token = |what: &str, v: &str| {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                Err(format!("{what} `{v}` is not an AWS {what} name"))
            } else {
                Ok(v.to_owned())
            }
        };
        let service = token("service", service)?;
        let region = token("region", region)?;
        let payload = match payload {
            None if is_s3(&service) => Payload::Unsigned,
            None => Payload::Signed,
            Some("signed") => Payload::Signed,
            Some("unsigned") => Payload::Unsigned,
            Some(other) => {
                return Err(format!(
                    "payload `{other}` is not known; use \"signed\" or \"unsigned\""
                ));
            }
        };
        let max_signed_body = max_signed_body.unwrap_or(DEFAULT_MAX_SIGNED_BODY);
        if max_signed_body == 0 && payload == Payload::Signed {
            return Err("max_signed_body must be above 0 for a signed payload".into());
        }
        Ok(SigV4Spec {
            service,
            region,
            payload,
            max_signed_body,
        })
    }

    /// The body limit when the body must be read and hashed before sending.
    pub fn signed_body_limit(&self) -> Option<u64> {
        (self.payload == Payload::Signed).then_some(self.max_signed_body)
    }

    pub fn describe(&self) -> String {
        let payload = match self.payload {
            Payload::Signed => format!("signed payload up to {} bytes", self.max_signed_body),
            Payload::Unsigned => "UNSIGNED-PAYLOAD".into(),
        };
        format!(
            "AWS SigV4, service {} region {}, {payload}",
            self.service, self.region
        )
    }
}

impl Injector for SigV4Spec {
    fn name(&self) -> &'static str {
        "aws_sigv4"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let keys = material.aws().ok_or(RenderError::NeedsAwsKeys)?;
        Ok(std::sync::Arc::new(Signer::new(self, keys)))
    }

    fn body(&self) -> BodyNeed {
        match self.signed_body_limit() {
            Some(limit) => BodyNeed::Hash { limit },
            None => BodyNeed::Stream,
        }
    }

    fn material(&self) -> MaterialKind {
        MaterialKind::AwsKeys
    }

    fn signs_method(&self) -> bool {
        true // the canonical request starts with it
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(header::AUTHORIZATION)
    }

    fn describe(&self) -> String {
        SigV4Spec::describe(self)
    }
}

impl Attach for Signer {
    fn attach(
        &self,
        req: &mut Request<ProxyBody>,
        body_sha256: Option<&str>,
    ) -> Result<(), AttachError> {
        self.sign(req, body_sha256)
            .map_err(|e| AttachError(e.to_string()))
    }
}

/// S3 and its variants: single URI encoding, no path normalisation, unsigned payload by default.
fn is_s3(service: &str) -> bool {
    matches!(
        service,
        "s3" | "s3-object-lambda" | "s3-outposts" | "s3express"
    )
}

/// The signing identity of one credential value, built at rotation time.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
    spec: SigV4Spec,
}

/// A request that cannot be signed. The message never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request for AWS: {0}")]
pub struct SignError(String);

/// Headers the app may have sent that carry someone else's signature or proxy hops.
const REMOVED: [HeaderName; 11] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static("x-amz-content-sha256"),
    HeaderName::from_static("x-amz-algorithm"),
    HeaderName::from_static("x-amz-credential"),
    HeaderName::from_static("x-amz-signedheaders"),
    HeaderName::from_static("x-amz-signature"),
    HeaderName::from_static("x-amz-expires"),
    header::VIA,
    header::FORWARDED,
];

/// Presigned-URL query parameters that would clash with the header signature.
const REMOVED_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Hex SHA-256 of a body, for `x-amz-content-sha256`.
pub fn payload_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

impl Signer {
    pub fn new(spec: &SigV4Spec, keys: &AwsKeys) -> Signer {
        let creds = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().to_owned(),
            keys.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "sidekey",
        );
        Signer {
            identity: creds.into(),
            spec: spec.clone(),
        }
    }

    /// Signs `req` as it will be sent. `payload_sha256` is the body's hash for
    /// a signed payload, `None` for `UNSIGNED-PAYLOAD`.
    pub fn sign<B: Body>(
        &self,
        req: &mut Request<B>,
        payload_sha256: Option<&str>,
    ) -> Result<(), SignError> {
        self.sign_at(req, payload_sha256, SystemTime::now(), true)
    }

    /// [`Signer::sign`] at a given time; `content_sha256` off only for
    /// AWS's published test-suite vectors, which predate that header.
    fn sign_at<B: Body>(
        &self,
        req: &mut Request<B>,
        payload_sha256: Option<&str>,
        time: SystemTime,
        content_sha256: bool,
    ) -> Result<(), SignError> {
        strip(req.headers_mut());
        strip_presigned_query(req)?;
        // Frame an in-memory body ourselves so the HTTP client adds nothing after signing.
        if !req.headers().contains_key(header::CONTENT_LENGTH) {
            if let Some(n) = req.body().size_hint().exact().filter(|n| *n > 0) {
                req.headers_mut()
                    .insert(header::CONTENT_LENGTH, http::HeaderValue::from(n));
            }
        }

        let s3 = is_s3(&self.spec.service);
        let mut settings = SigningSettings::default();
        if content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if s3 {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.spec.region)
            .name(&self.spec.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| SignError(e.to_string()))?
            .into();

        let body = match payload_sha256 {
            Some(hash) => SignableBody::Precomputed(hash.to_owned()),
            None => SignableBody::UnsignedPayload,
        };
        let uri = req.uri().to_string();
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            let text = std::str::from_utf8(value.as_bytes()).map_err(|_| {
                SignError(format!(
                    "header `{name}` is not UTF-8 text and cannot be signed"
                ))
            })?;
            headers.push((name.as_str(), text));
        }
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            body,
        )
        .map_err(|e| SignError(e.to_string()))?;
        // aws-sigv4 traces the canonical request, which holds the session
        // token: its events must never reach a subscriber. `Dispatch::none()`
        // is the no-op dispatcher tracing keeps statically; a new
        // `NoSubscriber` dispatcher was registered at each request, which
        // re-asks every callsite in the process for its interest under a
        // global lock (about 2.6k instructions a request).
        let signed = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            sign(signable, &params)
        })
        .map_err(|e| SignError(e.to_string()))?;
        let (instructions, _signature) = signed.into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

fn strip(headers: &mut HeaderMap) {
    for h in &REMOVED {
        headers.remove(h);
    }
    crate::transport::remove_prefixed(headers, "x-forwarded-");
}

fn strip_presigned_query<B>(req: &mut Request<B>) -> Result<(), SignError> {
    let Some(query) = req.uri().query() else {
        return Ok(());
    };
    if !query.contains("X-Amz-") {
        return Ok(());
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            !REMOVED_PARAMS.contains(&name)
        })
        .collect();
    let mut text = req.uri().path().to_owned();
    if !kept.is_empty() {
        text.push('?');
        text.push_str(&kept.join("&"));
    }
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        text.parse()
            .map_err(|_| SignError("the request target is not a valid URI".into()))?,
    );
    *req.uri_mut() =
        Uri::from_parts(parts).map_err(|_| SignError("the request URI is not valid".into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let signer = Signer::new(&spec, &keys(token));
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
        let signer = Signer::new(&spec, &keys(Some("session-token-1")));
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
        let signer = Signer::new(&spec, &keys(None));
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
            let signer = Signer::new(&spec, &keys(Some("session-token-value")));
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
}
