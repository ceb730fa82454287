//! RFC 9421 covered components and the signature base: what each component's value is on a request as it goes upstream.

use super::super::AttachError;
use http::{HeaderMap, HeaderName, Method, Uri};

/// One covered component: a derived `@` component or a header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    Method,
    TargetUri,
    Authority,
    Scheme,
    RequestTarget,
    Path,
    Query,
    /// A header field, by its lower-case name.
    Field(HeaderName),
}

/// The derived components this build can sign, by their identifiers.
const DERIVED: [(&str, Component); 7] = [
    ("@method", Component::Method),
    ("@target-uri", Component::TargetUri),
    ("@authority", Component::Authority),
    ("@scheme", Component::Scheme),
    ("@request-target", Component::RequestTarget),
    ("@path", Component::Path),
    ("@query", Component::Query),
];

impl Component {
    /// Parses a component identifier as written in the config (`"@method"`, `"content-type"`).
    pub fn parse(id: &str) -> Result<Component, String> {
        if let Some((_, c)) = DERIVED.iter().find(|(name, _)| *name == id) {
            return Ok(c.clone());
        }
        if id.starts_with('@') {
            let known: Vec<&str> = DERIVED.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "component `{id}` is not supported; derived components: {}",
                known.join(", ")
            ));
        }
        if id != id.to_ascii_lowercase() {
            return Err(format!("component `{id}` must be written in lower case"));
        }
        HeaderName::from_bytes(id.as_bytes())
            .map(Component::Field)
            .map_err(|_| format!("component `{id}` is not a header name"))
    }

    /// The identifier as it appears in `Signature-Input` (without quotes).
    pub fn id(&self) -> &str {
        match self {
            Component::Field(name) => name.as_str(),
            derived => DERIVED
                .iter()
                .find(|(_, c)| c == derived)
                .map_or("", |(n, _)| n),
        }
    }
}

/// The parts of a request the components are taken from.
pub struct Message<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

impl Message<'_> {
    /// The component's value, or `None` for a header the request does not carry.
    pub fn value(&self, c: &Component) -> Result<Option<String>, AttachError> {
        Ok(Some(match c {
            Component::Method => self.method.as_str().to_owned(),
            Component::TargetUri => format!(
                "{}://{}{}{}",
                self.scheme(),
                self.authority()?,
                self.path(),
                self.query_suffix()
            ),
            Component::Authority => self.authority()?,
            Component::Scheme => self.scheme(),
            Component::RequestTarget => format!("{}{}", self.path(), self.query_suffix()),
            Component::Path => self.path().to_owned(),
            Component::Query => format!("?{}", self.uri.query().unwrap_or("")),
            Component::Field(name) => return self.field(name),
        }))
    }

    /// A request in origin form goes over a plain-HTTP connection of our own.
    fn scheme(&self) -> String {
        self.uri.scheme_str().unwrap_or("http").to_ascii_lowercase()
    }

    /// Lower-case host, with the scheme's default port left out (RFC 9421 §2.2.3).
    fn authority(&self) -> Result<String, AttachError> {
        let text = match self.uri.authority() {
            Some(a) => a.as_str().to_owned(),
            None => self
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| AttachError("the request has no authority to sign".into()))?
                .to_owned(),
        };
        let text = text.to_ascii_lowercase();
        let default = match self.scheme().as_str() {
            "https" => ":443",
            _ => ":80",
        };
        Ok(match text.strip_suffix(default) {
            Some(host) => host.to_owned(),
            None => text,
        })
    }

    fn path(&self) -> &str {
        match self.uri.path() {
            "" => "/",
            p => p,
        }
    }

    fn query_suffix(&self) -> String {
        self.uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    }

    /// A field's lines, each trimmed, joined with ", " (RFC 9421 §2.1).
    fn field(&self, name: &HeaderName) -> Result<Option<String>, AttachError> {
        let mut lines = Vec::new();
        for v in self.headers.get_all(name) {
            let text = v.to_str().map_err(|_| {
                AttachError(format!(
                    "header `{name}` is not visible ASCII and cannot be signed"
                ))
            })?;
            lines.push(text.trim());
        }
        Ok((!lines.is_empty()).then(|| lines.join(", ")))
    }
}

/// Quotes an sf-string (RFC 8941 §3.3.3): `"` and `\` escaped.
pub fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// The signature base (RFC 9421 §2.5) for `covered` components of `msg`
/// whose values were looked up already, closed by `@signature-params`.
pub fn build(covered: &[(&Component, String)], params: &str) -> String {
    let mut base = String::new();
    for (c, value) in covered {
        base.push_str(&sf_string(c.id()));
        base.push_str(": ");
        base.push_str(value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params);
    base
}

/// The inner list of covered component identifiers, `("@method" "content-type")`.
pub fn inner_list<'a>(covered: impl Iterator<Item = &'a Component>) -> String {
    let ids: Vec<String> = covered.map(|c| sf_string(c.id())).collect();
    format!("({})", ids.join(" "))
}
