//! `{ query = "param" }`: the secret as a query parameter, replacing any the app sent.

use super::{Attach, AttachError, Injector, RenderError, Rendered, token};
use crate::material::Material;
use crate::transport::body::ProxyBody;
use http::Request;
use http::uri::{PathAndQuery, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryForm {
    pub param: String,
}

impl QueryForm {
    pub fn new(param: &str) -> Result<Self, String> {
        if param.is_empty() {
            return Err("the query parameter name is empty".into());
        }
        Ok(QueryForm {
            param: param.to_owned(),
        })
    }
}

impl Injector for QueryForm {
    fn name(&self) -> &'static str {
        "query"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        Ok(Arc::new(QueryParam {
            param: self.param.clone(),
            pair: zeroize::Zeroizing::new(format!(
                "{}={}",
                encode(&self.param),
                encode(token(material)?)
            )),
        }))
    }

    fn query_param(&self) -> Option<&str> {
        Some(&self.param)
    }

    fn describe(&self) -> String {
        format!("query parameter {}", self.param)
    }
}

/// `name=value`, both percent-encoded, ready to append to a query.
pub struct QueryParam {
    param: String,
    pair: zeroize::Zeroizing<String>,
}

impl Attach for QueryParam {
    fn attach(&self, req: &mut Request<ProxyBody>, _: Option<&str>) -> Result<(), AttachError> {
        let uri = req.uri();
        let mut pq = uri.path().to_owned();
        pq.push('?');
        pq.push_str(&replace_param(uri.query(), &self.param, &self.pair));
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(
            PathAndQuery::try_from(pq)
                .map_err(|_| AttachError("the request target is not a valid URI".into()))?,
        );
        *req.uri_mut() = Uri::from_parts(parts)
            .map_err(|_| AttachError("the request target is not a valid URI".into()))?;
        Ok(())
    }
}

/// Everything but RFC 3986 unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Returns `query` without any `param=...` pair (however the app encoded the
/// name), with `pair` appended.
pub fn replace_param(query: Option<&str>, param: &str, pair: &str) -> String {
    let mut out = String::with_capacity(query.map_or(0, str::len) + pair.len() + 1);
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let name = part.split_once('=').map_or(part, |(n, _)| n);
        let decoded = percent_decode_str(&name.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        if decoded == param {
            continue;
        }
        out.push_str(part);
        out.push('&');
    }
    out.push_str(pair);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_encoded_spellings_of_the_param() {
        assert_eq!(
            replace_param(Some("api%5Fkey=x&q=1"), "api_key", "api_key=S"),
            "q=1&api_key=S"
        );
        assert_eq!(replace_param(None, "k", "k=S"), "k=S");
        assert_eq!(replace_param(Some(""), "k", "k=S"), "k=S");
    }

    #[test]
    fn query_replaces_the_apps_own_value() {
        let form = QueryForm::new("api_key").unwrap();
        let material = Material::Token(crate::secret::Secret::new("s3cr=t").unwrap());
        let mut req = Request::new(crate::transport::body::empty());
        *req.uri_mut() = "http://up/v1/x?a=1&api_key=mine&b=2&api_key=again"
            .parse()
            .unwrap();
        form.render(&material)
            .unwrap()
            .attach(&mut req, None)
            .unwrap();
        assert_eq!(req.uri().query(), Some("a=1&b=2&api_key=s3cr%3Dt"));
        assert_eq!(req.uri().authority().unwrap(), "up");
    }
}
