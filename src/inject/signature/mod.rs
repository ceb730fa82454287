//! `{ http_signature = { key_id, alg, components, ... } }`: RFC 9421 HTTP Message Signatures, with the body covered through an RFC 9530 `Content-Digest`.
//!
//! The key is loaded once per credential value; each request is signed
//! exactly as it goes upstream (`Host` set, `Signature`/`Signature-Input`
//! the app sent replaced). A covered `content-digest` makes the body be read
//! whole (up to `max_signed_body`, as SigV4 does) to be hashed; otherwise the
//! body streams through. A listed header the request does not carry is left
//! out of that request's signature.

pub mod base;
pub mod key;

#[cfg(test)]
mod vectors;

use super::{Attach, AttachError, BodyNeed, Injector, RenderError, Rendered, sigv4};
use crate::material::Material;
use crate::transport::body::ProxyBody;
use base::{Component, Message, sf_string};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderName, HeaderValue, Request};
use hyper::body::Body;
use key::{Alg, SigningKey};
use ring::rand::SecureRandom;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SIGNATURE: HeaderName = HeaderName::from_static("signature");
pub const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");

/// The configured form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSignatureSpec {
    pub key_id: String,
    pub alg: Alg,
    pub components: Vec<Component>,
    /// `expires` = `created` + this, when set.
    pub expires: Option<Duration>,
    /// A fresh random `nonce` on every signature.
    pub nonce: bool,
    /// The signature's label in the `Signature` dictionaries.
    pub label: String,
    pub tag: Option<String>,
    /// Largest body hashed for a covered `content-digest`.
    pub max_signed_body: u64,
    /// An HMAC key written in base64 (decoded before use) rather than used as is.
    pub hmac_base64: bool,
}

/// The config keys, before checking.
pub struct Settings<'a> {
    pub key_id: &'a str,
    pub alg: &'a str,
    pub components: &'a [String],
    pub expires: Option<&'a str>,
    pub nonce: bool,
    pub label: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub max_signed_body: Option<u64>,
    /// `key_encoding`: `"raw"` (default) or `"base64"`, for HMAC keys.
    pub key_encoding: Option<&'a str>,
}

impl HttpSignatureSpec {
    pub fn new(s: Settings<'_>) -> Result<Self, String> {
        let printable = |what: &str, v: &str| match !v.is_empty()
            && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            true => Ok(v.to_owned()),
            false => Err(format!("{what} must be non-empty printable ASCII")),
        };
        let key_id = printable("key_id", s.key_id)?;
        let tag = s.tag.map(|t| printable("tag", t)).transpose()?;
        let alg = Alg::parse(s.alg)?;
        let label = s.label.unwrap_or("sig1").to_owned();
        if !is_sf_key(&label) {
            return Err(format!(
                "label `{label}` must start with a lower-case letter or `*` and hold only a-z, 0-9, `_`, `-`, `.`, `*`"
            ));
        }
        if s.components.is_empty() {
            return Err(
                "components must list at least one component, e.g. [\"@method\", \"@target-uri\"]"
                    .into(),
            );
        }
        let mut components: Vec<Component> = Vec::with_capacity(s.components.len());
        for id in s.components {
            let c = Component::parse(id)?;
            if components.contains(&c) {
                return Err(format!("component `{id}` is listed twice"));
            }
            components.push(c);
        }
        let expires = match s.expires {
            Some(text) => match crate::duration::parse(text)? {
                d if d.is_zero() => return Err("expires must be above 0".into()),
                d => Some(d),
            },
            None => None,
        };
        let max_signed_body = s.max_signed_body.unwrap_or(sigv4::DEFAULT_MAX_SIGNED_BODY);
        if max_signed_body == 0 {
            return Err("max_signed_body must be above 0".into());
        }
        let hmac_base64 = match s.key_encoding {
            None | Some("raw") => false,
            Some("base64") if alg == Alg::HmacSha256 => true,
            Some("base64") => {
                return Err(
                    "key_encoding applies to hmac-sha256 keys only (others are PEM)".into(),
                );
            }
            Some(other) => {
                return Err(format!(
                    "key_encoding `{other}` is not known; use \"raw\" or \"base64\""
                ));
            }
        };
        Ok(HttpSignatureSpec {
            hmac_base64,
            key_id,
            alg,
            components,
            expires,
            nonce: s.nonce,
            label,
            tag,
            max_signed_body,
        })
    }

    /// Whether the body is covered (through `Content-Digest`).
    pub fn covers_body(&self) -> bool {
        self.components.contains(&Component::Field(CONTENT_DIGEST))
    }
}

/// RFC 8941 §3.2 dictionary key.
fn is_sf_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'*'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
}

impl Injector for HttpSignatureSpec {
    fn name(&self) -> &'static str {
        "http_signature"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let secret = material.token().ok_or(RenderError::NeedsToken)?;
        Ok(Arc::new(Signer {
            spec: self.clone(),
            key: SigningKey::load(self.alg, secret, self.hmac_base64)?,
        }))
    }

    fn body(&self) -> BodyNeed {
        match self.covers_body() {
            true => BodyNeed::Hash {
                limit: self.max_signed_body,
            },
            false => BodyNeed::Stream,
        }
    }

    fn signs_method(&self) -> bool {
        self.components.contains(&Component::Method)
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(SIGNATURE)
    }

    fn describe(&self) -> String {
        let ids: Vec<&str> = self.components.iter().map(Component::id).collect();
        let body = match self.covers_body() {
            true => format!(
                ", body by Content-Digest up to {} bytes",
                self.max_signed_body
            ),
            false => String::new(),
        };
        format!(
            "RFC 9421 signature {} keyid {:?}, covers {}{body}",
            self.alg.id(),
            self.key_id,
            ids.join(" ")
        )
    }
}

/// One credential value's key, signing each request.
pub struct Signer {
    spec: HttpSignatureSpec,
    key: SigningKey,
}

/// What varies per signature; fixed in the test vectors.
struct Moment {
    created: u64,
    nonce: Option<String>,
    /// Whether `alg` is named in the parameters (RFC 9421's own examples leave it out).
    alg_param: bool,
}

impl Attach for Signer {
    fn attach(
        &self,
        req: &mut Request<ProxyBody>,
        body_sha256: Option<&str>,
    ) -> Result<(), AttachError> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = match self.spec.nonce {
            true => Some(nonce()?),
            false => None,
        };
        let moment = Moment {
            created,
            nonce,
            alg_param: true,
        };
        self.sign_at(req, body_sha256, &moment)
    }
}

impl Signer {
    fn sign_at<B: Body>(
        &self,
        req: &mut Request<B>,
        body_sha256: Option<&str>,
        at: &Moment,
    ) -> Result<(), AttachError> {
        let headers = req.headers_mut();
        headers.remove(SIGNATURE);
        headers.remove(SIGNATURE_INPUT);
        if self.spec.covers_body() {
            let hex =
                body_sha256.ok_or_else(|| AttachError("the body's digest is missing".into()))?;
            let digest =
                hex::decode(hex).map_err(|_| AttachError("the body's digest is not hex".into()))?;
            let value = format!("sha-256=:{}:", B64.encode(digest));
            headers.insert(CONTENT_DIGEST, header_value(value)?);
        }
        let covers_length = self
            .spec
            .components
            .contains(&Component::Field(http::header::CONTENT_LENGTH));
        if covers_length && !req.headers().contains_key(http::header::CONTENT_LENGTH) {
            if let Some(n) = req.body().size_hint().exact() {
                req.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }

        let msg = Message {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        };
        let mut covered = Vec::with_capacity(self.spec.components.len());
        for c in &self.spec.components {
            if let Some(value) = msg.value(c)? {
                covered.push((c, value));
            }
        }
        let params = self.params(covered.iter().map(|(c, _)| *c), at);
        let signature_base = base::build(&covered, &params);
        let signature = self.key.sign(signature_base.as_bytes())?;
        let label = &self.spec.label;
        let input = format!("{label}={params}");
        let sig = format!("{label}=:{}:", B64.encode(signature));
        let headers = req.headers_mut();
        headers.insert(SIGNATURE_INPUT, header_value(input)?);
        let mut sig = header_value(sig)?;
        sig.set_sensitive(true);
        headers.insert(SIGNATURE, sig);
        Ok(())
    }

    /// The `@signature-params` value: the covered list and its parameters.
    fn params<'a>(&self, covered: impl Iterator<Item = &'a Component>, at: &Moment) -> String {
        let mut p = base::inner_list(covered);
        p.push_str(&format!(";created={}", at.created));
        if let Some(ttl) = self.spec.expires {
            p.push_str(&format!(";expires={}", at.created + ttl.as_secs().max(1)));
        }
        if let Some(n) = &at.nonce {
            p.push_str(&format!(";nonce={}", sf_string(n)));
        }
        if at.alg_param {
            p.push_str(&format!(";alg={}", sf_string(self.spec.alg.id())));
        }
        p.push_str(&format!(";keyid={}", sf_string(&self.spec.key_id)));
        if let Some(tag) = &self.spec.tag {
            p.push_str(&format!(";tag={}", sf_string(tag)));
        }
        p
    }
}

fn header_value(text: String) -> Result<HeaderValue, AttachError> {
    HeaderValue::try_from(text)
        .map_err(|_| AttachError("a signature header could not be written".into()))
}

/// 16 random bytes, base64: a per-signature nonce.
fn nonce() -> Result<String, AttachError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AttachError("no randomness for the signature nonce".into()))?;
    Ok(B64.encode(bytes))
}
