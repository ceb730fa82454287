//! AWS Signature Version 4: the signing identity rendered once per credential value, each request signed by our own signer (checked byte for byte against AWS's `aws-sigv4` in tests).
//!
//! The request is signed exactly as it goes upstream: `Host` is already set,
//! whatever signature material the app sent is removed first, and nothing is
//! changed after signing. The signing key is derived once per UTC day
//! ([`key`]); the canonical request is built in one buffer ([`canonical`]).

mod canonical;
mod date;
mod key;
mod uri;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;

use super::{Attach, AttachError, BodyNeed, Injector, RenderError, Rendered};
use crate::material::{AwsKeys, Material, MaterialKind};
use crate::transport::body::ProxyBody;
use http::header::{self, HeaderName, HeaderValue};
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
        Ok(std::sync::Arc::new(Signer::new(self, keys)?))
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

/// The signing identity of one credential value, built at rotation time:
/// everything that does not depend on the request.
pub struct Signer {
    s3: bool,
    keys: key::KeyCache,
    /// `AWS4-HMAC-SHA256 Credential=<access key id>/`
    credential: String,
    /// `/<region>/<service>/aws4_request`, after the date in the scope.
    scope_tail: String,
    /// `x-amz-security-token`, marked sensitive.
    token: Option<HeaderValue>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys)
            .field("session_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
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

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

impl Signer {
    /// Renders the signing identity. Fails when the access key id or the
    /// session token cannot be carried in a header.
    pub fn new(spec: &SigV4Spec, keys: &AwsKeys) -> Result<Signer, RenderError> {
        let credential = format!("{ALGORITHM} Credential={}/", keys.access_key_id);
        HeaderValue::from_str(&credential).map_err(|_| RenderError::NotHeaderSafe)?;
        let token = match &keys.session_token {
            Some(t) => Some(super::header::sensitive(t.expose().to_owned())?),
            None => None,
        };
        Ok(Signer {
            s3: is_s3(&spec.service),
            keys: key::KeyCache::new(keys.secret_access_key.expose(), &spec.region, &spec.service),
            credential,
            scope_tail: format!("/{}/{}/aws4_request", spec.region, spec.service),
            token,
        })
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
        prepare(req)?;
        self.sign_prepared(req, payload_sha256, time, content_sha256)
    }

    /// Signs a request [`prepare`] has been through.
    fn sign_prepared<B>(
        &self,
        req: &mut Request<B>,
        payload_sha256: Option<&str>,
        time: SystemTime,
        content_sha256: bool,
    ) -> Result<(), SignError> {
        let stamp = date::Stamp::of(time)?;
        let payload = payload_sha256.unwrap_or(UNSIGNED_PAYLOAD);
        let mut added: [(&'static str, &[u8]); 3] = [("", b""); 3];
        let mut n = 0;
        added[n] = ("x-amz-date", &stamp.date_time[..]);
        n += 1;
        if let Some(token) = &self.token {
            added[n] = ("x-amz-security-token", token.as_bytes());
            n += 1;
        }
        if content_sha256 {
            added[n] = ("x-amz-content-sha256", payload.as_bytes());
            n += 1;
        }
        let creq = canonical::build(&canonical::Request {
            method: req.method().as_str(),
            uri: req.uri(),
            headers: req.headers(),
            added: &added[..n],
            s3: self.s3,
            payload,
        })?;
        let mut creq_hash = [0u8; 64];
        hex_into(
            ring::digest::digest(&ring::digest::SHA256, &creq.text).as_ref(),
            &mut creq_hash,
        );
        let tag = self.keys.with_key(stamp.day, stamp.date(), |key| {
            let mut mac = ring::hmac::Context::with_key(key);
            for part in [
                ALGORITHM.as_bytes(),
                b"\n",
                &stamp.date_time,
                b"\n",
                stamp.date(),
                self.scope_tail.as_bytes(),
                b"\n",
                &creq_hash,
            ] {
                mac.update(part);
            }
            mac.sign()
        });
        let mut signature = [0u8; 64];
        hex_into(tag.as_ref(), &mut signature);

        let signed = creq.signed_headers();
        let mut auth =
            Vec::with_capacity(self.credential.len() + self.scope_tail.len() + signed.len() + 110);
        auth.extend_from_slice(self.credential.as_bytes());
        auth.extend_from_slice(stamp.date());
        auth.extend_from_slice(self.scope_tail.as_bytes());
        auth.extend_from_slice(b", SignedHeaders=");
        auth.extend_from_slice(signed);
        auth.extend_from_slice(b", Signature=");
        auth.extend_from_slice(&signature);
        let auth = HeaderValue::from_maybe_shared(bytes::Bytes::from(auth))
            .map_err(|_| SignError("the Authorization header is not a valid value".into()))?;
        let date = HeaderValue::from_bytes(&stamp.date_time)
            .map_err(|_| SignError("the date is not a valid header value".into()))?;
        let content_hash = match payload_sha256 {
            None => HeaderValue::from_static(UNSIGNED_PAYLOAD),
            Some(h) => HeaderValue::from_str(h)
                .map_err(|_| SignError("the payload hash is not a valid header value".into()))?,
        };

        let headers = req.headers_mut();
        headers.insert(X_AMZ_DATE, date);
        headers.insert(header::AUTHORIZATION, auth);
        if content_sha256 {
            headers.insert(X_AMZ_CONTENT_SHA256, content_hash);
        }
        if let Some(token) = &self.token {
            headers.insert(X_AMZ_SECURITY_TOKEN, token.clone());
        }
        Ok(())
    }

    /// How many signing keys this identity derived: one per UTC day used.
    #[cfg(test)]
    fn key_derivations(&self) -> u64 {
        self.keys.derivations()
    }
}

/// Lowercase hex of `bytes` (32 of them) into `out`.
fn hex_into(bytes: &[u8], out: &mut [u8; 64]) {
    // Both lengths are fixed: a SHA-256 digest or HMAC-SHA256 tag is 32 bytes.
    let _ = hex::encode_to_slice(bytes, out);
}

/// Removes what the app sent that the signature replaces and frames an
/// in-memory body, so the request is final before it is signed.
fn prepare<B: Body>(req: &mut Request<B>) -> Result<(), SignError> {
    strip(req.headers_mut());
    strip_presigned_query(req)?;
    // Frame an in-memory body ourselves so the HTTP client adds nothing after signing.
    if !req.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = req.body().size_hint().exact().filter(|n| *n > 0) {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, http::HeaderValue::from(n));
        }
    }
    Ok(())
}

/// Removes [`REMOVED`] and `x-forwarded-*`. One pass over the names first:
/// most requests carry none of them, and a lookup of each of the eleven
/// names cost more than signing's own header work.
fn strip(headers: &mut HeaderMap) {
    let (mut listed, mut forwarded) = (false, false);
    for name in headers.keys() {
        listed |= REMOVED.contains(name);
        forwarded |= name.as_str().starts_with("x-forwarded-");
    }
    if listed {
        for h in &REMOVED {
            headers.remove(h);
        }
    }
    if forwarded {
        crate::transport::remove_prefixed(headers, "x-forwarded-");
    }
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
