//! `{ client_cert = {} }`: the credential is a TLS client certificate and key, presented by the upstream connection (mTLS).
//!
//! Rendering parses the chain and key once per value; attaching puts the
//! certificate on the request ([`PresentCert`]), and the route's client
//! (`transport/mtls.rs`) sends it over a connection that presented it.

use super::{Attach, AttachError, Injector, RenderError, Rendered};
use crate::material::{Material, MaterialKind};
use crate::transport::body::ProxyBody;
use crate::transport::cert;
use crate::transport::mtls::PresentCert;
use http::Request;
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// The configured form; it has no settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertForm;

impl Injector for ClientCertForm {
    fn name(&self) -> &'static str {
        "client_cert"
    }

    fn render(&self, material: &Material) -> Result<Rendered, RenderError> {
        let pair = material.cert().ok_or(RenderError::NeedsCertificate)?;
        let id = cert::load(&pair.chain_pem, pair.key_pem.expose())?;
        Ok(Arc::new(PresentCert {
            key: id.key,
            id: id.id,
        }))
    }

    fn material(&self) -> MaterialKind {
        MaterialKind::CertKey
    }

    fn presents_client_cert(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "TLS client certificate (mTLS)".into()
    }
}

impl Attach for PresentCert {
    fn attach(&self, req: &mut Request<ProxyBody>, _: Option<&str>) -> Result<(), AttachError> {
        req.extensions_mut().insert(self.clone());
        Ok(())
    }

    fn client_cert(&self) -> Option<Arc<CertifiedKey>> {
        Some(self.key.clone())
    }
}
