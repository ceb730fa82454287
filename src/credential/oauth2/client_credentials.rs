//! `source = "oauth2"`: the client-credentials grant (RFC 6749 §4.4).

use super::endpoint::Endpoint;
use super::{OAuth2Spec, RequestSpec};
use crate::credential::{BoxFuture, Issued, Material, Revocation, Source, SourceError};

pub struct OAuth2Source {
    endpoint: Endpoint,
    request: RequestSpec,
}

impl OAuth2Source {
    pub fn new(spec: OAuth2Spec) -> Self {
        OAuth2Source {
            endpoint: Endpoint::new(spec.server),
            request: spec.request,
        }
    }
}

impl Source for OAuth2Source {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
            self.request.add_to(&mut form);
            self.endpoint.token(form, Vec::new()).await
        })
    }

    fn revoke<'a>(
        &'a self,
        issued: &'a Material,
    ) -> BoxFuture<'a, Result<Revocation, SourceError>> {
        Box::pin(self.endpoint.revoke(issued))
    }
}
