//! How a credential is attached to an outbound request: a header, HTTP Basic, a query parameter, AWS SigV4.
//!
//! Each form is rendered once per credential value (at rotation time, never per
//! request) into [`Rendered`] material; applying it to a request is then a
//! header insert or a string append.

mod query;
pub mod sigv4;

use crate::credential::Material;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};

pub use query::replace_param;
pub use sigv4::{SigV4Spec, Signer};

/// The configured injection form of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectSpec {
    /// `{ header, format }`: `format` holds `{secret}` once.
    Header {
        name: HeaderName,
        prefix: String,
        suffix: String,
    },
    /// `{ basic = { username } }`: the secret is the password.
    Basic { username: String },
    /// `{ query = "param" }`.
    Query { param: String },
    /// `{ aws_sigv4 = { service, region, payload, max_signed_body } }`.
    SigV4(SigV4Spec),
}

/// The injection material of one credential value, ready to apply.
#[derive(Clone)]
pub enum Rendered {
    Header {
        name: HeaderName,
        value: HeaderValue,
    },
    /// `name=value`, both percent-encoded, ready to append to a query.
    Query { param: String, pair: String },
    /// The signing identity; each request is signed as it is sent.
    SigV4(std::sync::Arc<Signer>),
}

/// A value that cannot be sent in the configured form.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the value holds characters that an HTTP header cannot carry")]
    NotHeaderSafe,
    #[error("this injection form needs a single token, not a set of AWS keys")]
    NeedsToken,
    #[error("aws_sigv4 signing needs AWS keys (a source = \"aws\" credential), not a single token")]
    NeedsAwsKeys,
}

/// The parts of an outbound request that an injector may change.
pub struct Outbound<'a> {
    pub headers: &'a mut HeaderMap,
    /// The query string without its `?`, if any.
    pub query: &'a mut Option<String>,
}

impl InjectSpec {
    /// Parses `format = "Bearer {secret}"` into the parts around the secret.
    pub fn header(name: &str, format: Option<&str>) -> Result<Self, String> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        if is_managed_header(&name) {
            return Err(format!(
                "sidekey cannot inject into `{name}`: it manages that header itself"
            ));
        }
        let format = format.unwrap_or("{secret}");
        let (prefix, suffix) = format
            .split_once("{secret}")
            .ok_or_else(|| format!("format `{format}` must contain `{{secret}}`"))?;
        if suffix.contains("{secret}") {
            return Err("format must contain `{secret}` exactly once".into());
        }
        if HeaderValue::from_str(&format.replace("{secret}", "x")).is_err() {
            return Err(format!(
                "format `{format}` holds characters a header cannot carry"
            ));
        }
        Ok(InjectSpec::Header {
            name,
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    /// Renders the material for one credential value.
    pub fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let token = || {
            material
                .token()
                .map(|s| s.expose())
                .ok_or(RenderError::NeedsToken)
        };
        match self {
            InjectSpec::Header {
                name,
                prefix,
                suffix,
            } => {
                let secret = token()?;
                let value = sensitive(format!("{prefix}{secret}{suffix}"))?;
                Ok(Rendered::Header {
                    name: name.clone(),
                    value,
                })
            }
            InjectSpec::Basic { username } => {
                let secret = token()?;
                let raw = zeroize::Zeroizing::new(format!("{username}:{secret}"));
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                let value = sensitive(format!("Basic {encoded}"))?;
                Ok(Rendered::Header {
                    name: http::header::AUTHORIZATION,
                    value,
                })
            }
            InjectSpec::Query { param } => Ok(Rendered::Query {
                param: param.clone(),
                pair: format!("{}={}", query::encode(param), query::encode(token()?)),
            }),
            InjectSpec::SigV4(spec) => {
                let keys = material.aws().ok_or(RenderError::NeedsAwsKeys)?;
                Ok(Rendered::SigV4(std::sync::Arc::new(Signer::new(
                    spec, keys,
                ))))
            }
        }
    }

    /// The header this form writes, if any (used to redact it in the stand-in and logs).
    pub fn header_name(&self) -> Option<HeaderName> {
        match self {
            InjectSpec::Header { name, .. } => Some(name.clone()),
            InjectSpec::Basic { .. } => Some(http::header::AUTHORIZATION),
            InjectSpec::Query { .. } => None,
            InjectSpec::SigV4(_) => Some(http::header::AUTHORIZATION),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            InjectSpec::Header {
                name,
                prefix,
                suffix,
            } => format!("header {name}: {prefix}{{secret}}{suffix}"),
            InjectSpec::Basic { username } => format!("basic auth, username {username}"),
            InjectSpec::Query { param } => format!("query parameter {param}"),
            InjectSpec::SigV4(s) => s.describe(),
        }
    }

    /// For a signed SigV4 payload: the largest body read and hashed before sending.
    #[inline]
    pub fn signed_body_limit(&self) -> Option<u64> {
        match self {
            InjectSpec::SigV4(s) => s.signed_body_limit(),
            _ => None,
        }
    }
}

impl Rendered {
    /// Attaches the credential, replacing whatever the app sent in the same place.
    pub fn apply(&self, out: &mut Outbound<'_>) {
        match self {
            Rendered::Header { name, value } => {
                out.headers.insert(name.clone(), value.clone());
            }
            Rendered::Query { param, pair } => {
                *out.query = Some(replace_param(out.query.as_deref(), param, pair));
            }
            // Signed once the request is complete: see `Rendered::signer`.
            Rendered::SigV4(_) => {}
        }
    }

    /// The SigV4 signer, when requests must be signed after they are built.
    #[inline]
    pub fn signer(&self) -> Option<&Signer> {
        match self {
            Rendered::SigV4(s) => Some(s),
            _ => None,
        }
    }
}

fn sensitive(text: String) -> Result<HeaderValue, RenderError> {
    let text = zeroize::Zeroizing::new(text);
    let mut value = HeaderValue::from_str(&text).map_err(|_| RenderError::NotHeaderSafe)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Headers the proxy itself sets or strips; a credential may not go there.
fn is_managed_header(name: &HeaderName) -> bool {
    use http::header::*;
    [
        HOST,
        CONNECTION,
        TRANSFER_ENCODING,
        CONTENT_LENGTH,
        PROXY_AUTHORIZATION,
        TE,
        UPGRADE,
    ]
    .contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn token(v: &str) -> Material {
        Material::Token(Secret::new(v).unwrap())
    }

    #[test]
    fn header_format_wraps_the_secret() {
        let spec = InjectSpec::header("Authorization", Some("Bearer {secret}")).unwrap();
        let Rendered::Header { name, value } = spec.render(&token("abc")).unwrap() else {
            panic!()
        };
        assert_eq!(name, "authorization");
        assert_eq!(value, "Bearer abc");
        assert!(value.is_sensitive());
    }

    #[test]
    fn header_format_must_hold_secret_once() {
        assert!(InjectSpec::header("X-Key", Some("nothing")).is_err());
        assert!(InjectSpec::header("X-Key", Some("{secret}{secret}")).is_err());
        assert!(InjectSpec::header("Host", None).is_err());
        assert!(InjectSpec::header("bad header", None).is_err());
    }

    #[test]
    fn basic_is_rfc7617() {
        // RFC 7617 section 2: Aladdin / open sesame.
        let spec = InjectSpec::Basic {
            username: "Aladdin".into(),
        };
        let Rendered::Header { value, .. } = spec.render(&token("open sesame")).unwrap() else {
            panic!()
        };
        assert_eq!(value, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn header_unsafe_value_is_refused() {
        let spec = InjectSpec::header("X-Key", None).unwrap();
        assert!(matches!(
            spec.render(&token("a\u{1}b")),
            Err(RenderError::NotHeaderSafe)
        ));
    }

    #[test]
    fn query_replaces_the_apps_own_value() {
        let spec = InjectSpec::Query {
            param: "api_key".into(),
        };
        let rendered = spec.render(&token("s3cr=t")).unwrap();
        let mut headers = HeaderMap::new();
        let mut query = Some("a=1&api_key=mine&b=2&api_key=again".to_string());
        rendered.apply(&mut Outbound {
            headers: &mut headers,
            query: &mut query,
        });
        assert_eq!(query.as_deref(), Some("a=1&b=2&api_key=s3cr%3Dt"));
    }
}
