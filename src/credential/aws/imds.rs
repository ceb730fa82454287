//! EC2 instance metadata, IMDSv2: a session token by PUT, then the instance role's credentials.

use super::http::{Answer, Http};
use super::keys;
use crate::credential::{Issued, SourceError};
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::Full;
use std::time::SystemTime;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
const ENV_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const TOKEN_TTL: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "x-aws-ec2-metadata-token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

pub async fn fetch(http: &Http, endpoint: Option<&str>) -> Result<Issued, SourceError> {
    let base = endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var(ENV_ENDPOINT).ok())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
    let base = base.trim_end_matches('/');
    let what = "EC2 instance metadata";
    let req = http::Request::put(format!("{base}/latest/api/token"))
        .header(TOKEN_TTL, "21600")
        .body(Full::new(Bytes::new()))
        .map_err(|_| SourceError::new(format!("imds endpoint `{base}` is not usable")))?;
    let answer = ok(http.send(req, what).await?, "IMDSv2 token")?;
    let token = Secret::new(String::from_utf8_lossy(&answer.body).into_owned())
        .map_err(|_| SourceError::new("IMDSv2 gave an empty session token"))?;
    let get = |path: String| -> Result<http::Request<Full<Bytes>>, SourceError> {
        let mut v = http::HeaderValue::from_str(token.expose())
            .map_err(|_| SourceError::new("the IMDSv2 token is not a header value"))?;
        v.set_sensitive(true);
        http::Request::get(format!("{base}{path}"))
            .header(TOKEN, v)
            .body(Full::new(Bytes::new()))
            .map_err(|_| SourceError::new("an instance role name is not usable in a URL"))
    };
    let roles = ok(
        http.send(get(CREDENTIALS_PATH.into())?, what).await?,
        "instance role",
    )?;
    let roles = String::from_utf8_lossy(&roles.body).into_owned();
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| SourceError::new("this EC2 instance has no IAM role"))?;
    let answer = http
        .send(get(format!("{CREDENTIALS_PATH}{role}"))?, what)
        .await?;
    json_credentials(&answer, what)
}

fn ok(answer: Answer, step: &str) -> Result<Answer, SourceError> {
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(SourceError::new(format!(
            "EC2 instance metadata ({step}) answered {}",
            answer.status.as_u16()
        )))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

/// The JSON credentials document both IMDS and the container endpoint answer with.
pub fn json_credentials(answer: &Answer, what: &str) -> Result<Issued, SourceError> {
    if !answer.status.is_success() {
        return Err(SourceError::new(format!(
            "{what} answered {}",
            answer.status.as_u16()
        )));
    }
    let doc: JsonCredentials = serde_json::from_slice(&answer.body).map_err(|_| {
        SourceError::new(format!("{what}: the answer is not a credentials document"))
    })?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        return Err(SourceError::new(format!("{what}: Code {code}")));
    }
    let missing = |f: &str| SourceError::new(format!("{what}: the answer has no {f}"));
    let id = doc.access_key_id.ok_or_else(|| missing("AccessKeyId"))?;
    let secret = Secret::new(
        doc.secret_access_key
            .ok_or_else(|| missing("SecretAccessKey"))?,
    )
    .map_err(|_| missing("SecretAccessKey"))?;
    let token = doc
        .token
        .map(Secret::new)
        .transpose()
        .map_err(|_| missing("Token"))?;
    let expires = doc
        .expiration
        .as_deref()
        .map(keys::parse_expiration)
        .transpose()?;
    keys::issued(&id, secret, token, SystemTime::now(), expires)
}
