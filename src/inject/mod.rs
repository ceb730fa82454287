//! How a credential is attached to an outbound request: the [`Injector`] seam and its registry.
//!
//! An injection form is rendered once per credential value (at rotation
//! time, never per request) into an [`Attach`]; attaching it to a request is
//! then a header insert, a query edit or a signature. Forms: [`header`]
//! (also HTTP Basic), [`query`], [`sigv4`], [`signature`] (RFC 9421), [`client_cert`] (mTLS);
//! [`registry`] names them.

pub mod basic;
pub mod client_cert;
pub mod header;
pub mod query;
pub mod registry;
pub mod signature;
pub mod sigv4;

use crate::any_eq::{AnyEq, Dyn};
use crate::material::{Material, MaterialKind};
use crate::transport::body::ProxyBody;
use http::{HeaderName, Request};
use std::fmt;
use std::sync::Arc;

pub use query::replace_param;
pub use sigv4::{SigV4Spec, Signer};

/// One injection form, as the config describes it. Implemented once per
/// form (`{ header, format }`, `{ basic }`, `{ query }`, `{ aws_sigv4 }`).
pub trait Injector: AnyEq + fmt::Debug + Send + Sync {
    /// The key that names the form in `inject = { ... }`.
    fn name(&self) -> &'static str;

    /// Renders one credential value into what is attached to each request.
    /// Runs when the value is published, never on the request path.
    fn render(&self, material: &Material) -> Result<Rendered, RenderError>;

    /// What this form needs of the request body before it can attach.
    fn body(&self) -> BodyNeed {
        BodyNeed::Stream
    }

    /// The shape of credential value this form can use.
    fn material(&self) -> MaterialKind {
        MaterialKind::Token
    }

    /// Whether the credential is a TLS client certificate the upstream
    /// connection presents (mTLS), so the route needs a client that can.
    fn presents_client_cert(&self) -> bool {
        false
    }

    /// Whether the attached value signs the request's method (SigV4, an
    /// RFC 9421 signature covering `@method`): the request must reach the
    /// upstream with that method, so a WebSocket handshake is not turned
    /// into an RFC 8441 extended CONNECT on the way.
    fn signs_method(&self) -> bool {
        false
    }

    /// The header that carries the credential, if any (redacted by the stand-in).
    fn header_name(&self) -> Option<HeaderName> {
        None
    }

    /// The query parameter that carries the credential, if any.
    fn query_param(&self) -> Option<&str> {
        None
    }

    /// One line for `sidekey check` and the inventory; never a secret.
    fn describe(&self) -> String;
}

/// What an injection form needs of the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    /// Nothing: the body streams through.
    Stream,
    /// The body's SHA-256, so it is read whole first, up to `limit` bytes.
    Hash { limit: u64 },
}

/// One credential value rendered for one form, attached to each request.
pub trait Attach: Send + Sync {
    /// Attaches the credential to a request that is otherwise complete,
    /// replacing whatever the app sent in the same place. `body_sha256` is
    /// given when the form asked for [`BodyNeed::Hash`].
    fn attach(
        &self,
        req: &mut Request<ProxyBody>,
        body_sha256: Option<&str>,
    ) -> Result<(), AttachError>;

    /// A client certificate to present to the upstream (mTLS), if this form
    /// authenticates at the TLS layer.
    fn client_cert(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

/// A rendered value, shared by every request that uses it.
pub type Rendered = Arc<dyn Attach>;

/// A value that cannot be sent in the configured form.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the value holds characters that an HTTP header cannot carry")]
    NotHeaderSafe,
    #[error("this injection form needs a single token, not a set of AWS keys")]
    NeedsToken,
    #[error("aws_sigv4 signing needs AWS keys (a source = \"aws\" credential), not a single token")]
    NeedsAwsKeys,
    #[error("{0}")]
    BadKey(String),
    #[error("the client certificate cannot be used: {0}")]
    BadCertificate(#[from] crate::transport::cert::CertError),
    #[error(
        "client_cert needs a certificate and key (source = \"file\" with `cert` and `key`, or source = \"vault\" with `cert`)"
    )]
    NeedsCertificate,
}

/// A request the credential cannot be attached to. Never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AttachError(pub String);

/// A route's injection form, of whichever kind.
pub type InjectSpec = Dyn<dyn Injector>;

impl InjectSpec {
    pub fn new(form: impl Injector) -> Self {
        Dyn(Arc::new(form))
    }

    /// `{ header, format }`: see [`header::HeaderForm::new`].
    pub fn header(name: &str, format: Option<&str>) -> Result<Self, String> {
        header::HeaderForm::new(name, format).map(InjectSpec::new)
    }
}

/// The single token a form needs, or why the value cannot be used.
fn token(material: &Material) -> Result<&str, RenderError> {
    material
        .token()
        .map(|s| s.expose())
        .ok_or(RenderError::NeedsToken)
}
