//! The token endpoint as both OAuth 2.0 sources call it: authenticate the client, POST the grant, read the answer.

use super::ServerSpec;
use super::token::read_answer;
use super::transport::Transport;
use crate::credential::{Issued, SourceError};
use std::time::SystemTime;
use url::Url;
use url::form_urlencoded::Serializer;
use zeroize::Zeroizing;

/// Form fields whose values are secret (a subject token, a client secret):
/// they are wiped after the request is written.
pub type SecretFields = Vec<(&'static str, Zeroizing<String>)>;

pub struct Endpoint {
    pub(super) server: ServerSpec,
    pub(super) transport: Transport,
}

impl Endpoint {
    pub fn new(server: ServerSpec) -> Self {
        let transport = Transport::new(server.ca_file.as_deref(), server.timeout);
        Endpoint { server, transport }
    }

    /// Requests a token with the grant fields in `form` plus `secrets`.
    pub async fn token(
        &self,
        form: Vec<(String, String)>,
        secrets: SecretFields,
    ) -> Result<Issued, SourceError> {
        let url = &self.server.token_url;
        let answer = self.post("token endpoint", url, form, secrets).await?;
        read_answer(
            "token endpoint",
            &answer,
            self.server.default_lifetime,
            SystemTime::now(),
        )
    }

    /// POSTs an authenticated form to one of the server's endpoints.
    pub(super) async fn post(
        &self,
        what: &str,
        url: &Url,
        form: Vec<(String, String)>,
        mut secrets: SecretFields,
    ) -> Result<super::transport::Answer, SourceError> {
        let auth = self
            .server
            .auth
            .authenticate(self.server.client_id.as_deref(), &self.server.token_url)
            .await?;
        secrets.extend(auth.form);
        let body = encode(&form, &secrets);
        self.transport
            .post_form(what, url, auth.headers, body)
            .await
    }
}

/// `application/x-www-form-urlencoded`, built in memory that is wiped on drop.
fn encode(form: &[(String, String)], secrets: &SecretFields) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(256));
    {
        let mut s = Serializer::new(&mut *out);
        for (k, v) in form {
            s.append_pair(k, v);
        }
        for (k, v) in secrets {
            s.append_pair(k, v);
        }
        s.finish();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_rfc8693_example() {
        // The body of RFC 8693 §2.3's example request, in its parameter order.
        let form = vec![
            (
                "grant_type".to_string(),
                "urn:ietf:params:oauth:grant-type:token-exchange".to_string(),
            ),
            (
                "resource".to_string(),
                "https://backend.example.com/api".to_string(),
            ),
        ];
        let secrets: SecretFields = vec![
            (
                "subject_token",
                Zeroizing::new("accVkjcJyb4BWCxGsndESCJQbdFMogUC5PbRDqceLTC".into()),
            ),
            (
                "subject_token_type",
                Zeroizing::new("urn:ietf:params:oauth:token-type:access_token".into()),
            ),
        ];
        assert_eq!(
            encode(&form, &secrets).as_str(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &resource=https%3A%2F%2Fbackend.example.com%2Fapi\
             &subject_token=accVkjcJyb4BWCxGsndESCJQbdFMogUC5PbRDqceLTC\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        );
    }
}
