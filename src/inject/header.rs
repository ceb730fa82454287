//! `{ header, format }`: the secret inside a header value ("Bearer {secret}"), pre-rendered once per value.

use super::{Attach, AttachError, Injector, RenderError, Rendered, token};
use crate::material::Material;
use crate::transport::body::ProxyBody;
use http::{HeaderName, HeaderValue, Request};
use std::sync::Arc;

/// The configured form: `format` split around its one `{secret}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderForm {
    pub name: HeaderName,
    pub prefix: String,
    pub suffix: String,
}

impl HeaderForm {
    /// Parses `format = "Bearer {secret}"` into the parts around the secret.
    pub fn new(name: &str, format: Option<&str>) -> Result<Self, String> {
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
        Ok(HeaderForm {
            name,
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }
}

impl Injector for HeaderForm {
    fn name(&self) -> &'static str {
        "header"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let secret = token(material)?;
        let value = sensitive(format!("{}{secret}{}", self.prefix, self.suffix))?;
        Ok(Arc::new(SetHeader {
            name: self.name.clone(),
            value,
        }))
    }

    fn header_name(&self) -> Option<HeaderName> {
        Some(self.name.clone())
    }

    fn describe(&self) -> String {
        format!(
            "header {}: {}{{secret}}{}",
            self.name, self.prefix, self.suffix
        )
    }
}

/// A pre-rendered header, set on each request (the app's own value replaced).
pub struct SetHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl Attach for SetHeader {
    #[inline]
    fn attach(&self, req: &mut Request<ProxyBody>, _: Option<&str>) -> Result<(), AttachError> {
        req.headers_mut()
            .insert(self.name.clone(), self.value.clone());
        Ok(())
    }
}

/// A header value marked sensitive (HPACK never indexes it), the text zeroized.
pub fn sensitive(text: String) -> Result<HeaderValue, RenderError> {
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

    pub fn token(v: &str) -> Material {
        Material::Token(Secret::new(v).unwrap())
    }

    #[test]
    fn header_format_wraps_the_secret() {
        let form = HeaderForm::new("Authorization", Some("Bearer {secret}")).unwrap();
        let mut req = Request::new(crate::transport::body::empty());
        form.render(&token("abc"))
            .unwrap()
            .attach(&mut req, None)
            .unwrap();
        let value = &req.headers()["authorization"];
        assert_eq!(value, "Bearer abc");
        assert!(value.is_sensitive());
    }

    #[test]
    fn header_format_must_hold_secret_once() {
        assert!(HeaderForm::new("X-Key", Some("nothing")).is_err());
        assert!(HeaderForm::new("X-Key", Some("{secret}{secret}")).is_err());
        assert!(HeaderForm::new("Host", None).is_err());
        assert!(HeaderForm::new("bad header", None).is_err());
    }

    #[test]
    fn header_unsafe_value_is_refused() {
        let form = HeaderForm::new("X-Key", None).unwrap();
        assert!(matches!(
            form.render(&token("a\u{1}b")),
            Err(RenderError::NotHeaderSafe)
        ));
    }
}
