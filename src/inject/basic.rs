//! `{ basic = { username } }`: HTTP Basic (RFC 7617) with the secret as the password.

use super::header::{SetHeader, sensitive};
use super::{Injector, RenderError, Rendered, token};
use crate::material::Material;
use base64::Engine as _;
use http::HeaderName;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicForm {
    pub username: String,
}

impl BasicForm {
    pub fn new(username: &str) -> Result<Self, String> {
        if username.contains(':') {
            return Err("a basic-auth username cannot contain `:`".into());
        }
        Ok(BasicForm {
            username: username.to_owned(),
        })
    }
}

impl Injector for BasicForm {
    fn name(&self) -> &'static str {
        "basic"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let raw = zeroize::Zeroizing::new(format!("{}:{}", self.username, token(material)?));
        let encoded = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
        );
        Ok(Arc::new(SetHeader {
            name: http::header::AUTHORIZATION,
            value: sensitive(format!("Basic {}", encoded.as_str()))?,
        }))
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(http::header::AUTHORIZATION)
    }

    fn describe(&self) -> String {
        format!("basic auth, username {}", self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use http::Request;

    #[test]
    fn basic_is_rfc7617() {
        // RFC 7617 section 2: Aladdin / open sesame.
        let form = BasicForm::new("Aladdin").unwrap();
        let material = Material::Token(Secret::new("open sesame").unwrap());
        let mut req = Request::new(crate::transport::body::empty());
        form.render(&material)
            .unwrap()
            .attach(&mut req, None)
            .unwrap();
        assert_eq!(
            req.headers()["authorization"],
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
