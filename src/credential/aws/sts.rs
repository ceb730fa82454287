//! STS over its query API: `AssumeRoleWithWebIdentity` (unsigned, with a token file read at every call) and `AssumeRole` (signed with the base credentials by sidekey's SigV4 signer).

use super::AwsSpec;
use super::http::Http;
use super::keys;
use crate::credential::{Issued, SourceError};
use crate::inject::sigv4::{Payload, SigV4Spec, Signer, payload_sha256};
use crate::secret::Secret;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::path::Path;
use std::time::SystemTime;

pub const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
pub const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
pub const ENV_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";

pub fn web_identity_env_present() -> bool {
    std::env::var_os(ENV_ROLE_ARN).is_some() && std::env::var_os(ENV_TOKEN_FILE).is_some()
}

/// `AssumeRoleWithWebIdentity` with the token read from its file now.
pub async fn web_identity(
    http: &Http,
    spec: &AwsSpec,
    token_file: Option<&Path>,
    role_arn: Option<&str>,
) -> Result<Issued, SourceError> {
    let env_file = std::env::var_os(ENV_TOKEN_FILE).map(std::path::PathBuf::from);
    let file = token_file.or(env_file.as_deref()).ok_or_else(|| {
        SourceError::new(format!(
            "web identity needs web_identity_token_file or {ENV_TOKEN_FILE}"
        ))
    })?;
    let env_role = std::env::var(ENV_ROLE_ARN).ok();
    let role = role_arn.or(env_role.as_deref()).ok_or_else(|| {
        SourceError::new(format!("web identity needs role_arn or {ENV_ROLE_ARN}"))
    })?;
    let token = crate::credential::secret_ref::SecretRef::File(file.to_owned())
        .read()
        .await?;
    let session = std::env::var(ENV_SESSION_NAME).unwrap_or_else(|_| spec.session_name.clone());
    let body = zeroize::Zeroizing::new(form(
        spec,
        &[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("RoleArn", role),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.expose()),
        ],
    ));
    let req = post(
        &spec.sts_endpoint(),
        Bytes::copy_from_slice(body.as_bytes()),
    )?;
    call(
        http,
        req,
        "STS AssumeRoleWithWebIdentity",
        &[token.expose()],
    )
    .await
}

/// `AssumeRole` into `role`, signed with `base`.
pub async fn assume_role(
    http: &Http,
    spec: &AwsSpec,
    role: &str,
    base: &Issued,
) -> Result<Issued, SourceError> {
    let keys = base
        .material
        .aws()
        .ok_or_else(|| SourceError::new("AssumeRole needs AWS base credentials"))?;
    let body = Bytes::from(form(
        spec,
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", role),
            ("RoleSessionName", &spec.session_name),
        ],
    ));
    let hash = payload_sha256(&body);
    let mut req = post(&spec.sts_endpoint(), body)?;
    let sts = SigV4Spec::new("sts", &spec.region, Some("signed"), None)
        .map_err(|e| SourceError::new(format!("STS signing: {e}")))?;
    debug_assert_eq!(sts.payload, Payload::Signed);
    Signer::new(&sts, keys)
        .map_err(|e| SourceError::new(format!("STS signing: {e}")))?
        .sign(&mut req, Some(&hash))
        .map_err(|e| SourceError::new(e.to_string()))?;
    let base_secret = keys.secret_access_key.expose();
    let base_token = keys.session_token.as_ref().map_or("", |t| t.expose());
    call(http, req, "STS AssumeRole", &[base_secret, base_token]).await
}

/// An STS query body: the pairs, the API version and the requested duration.
fn form(spec: &AwsSpec, pairs: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(pairs)
        .append_pair("Version", "2011-06-15");
    if let Some(d) = spec.duration {
        form.append_pair("DurationSeconds", &d.as_secs().to_string());
    }
    form.finish()
}

fn post(endpoint: &str, body: Bytes) -> Result<Request<Full<Bytes>>, SourceError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| SourceError::new(format!("sts_endpoint `{endpoint}` is not a URL")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| SourceError::new(format!("sts_endpoint `{endpoint}` has no host")))?;
    let uri = match uri.path() {
        "" => format!("{endpoint}/"),
        _ => endpoint.to_owned(),
    };
    Request::post(uri)
        .header(http::header::HOST, host)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::new(body))
        .map_err(|_| SourceError::new(format!("sts_endpoint `{endpoint}` is not usable")))
}

/// Sends an STS call and reads the credentials out of its XML answer.
/// `secrets` are scrubbed from any error text STS sends back.
async fn call(
    http: &Http,
    req: Request<Full<Bytes>>,
    what: &str,
    secrets: &[&str],
) -> Result<Issued, SourceError> {
    let answer = http.send(req, what).await?;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        let code = tag(&text, "Code").unwrap_or_default();
        let message = tag(&text, "Message").unwrap_or_default();
        let detail = scrub(&format!("{code}: {message}"), secrets);
        return Err(SourceError::new(format!(
            "{what} answered {}: {detail}",
            answer.status.as_u16()
        )));
    }
    let field = |name: &str| {
        tag(&text, name).ok_or_else(|| {
            SourceError::new(format!("{what}: the answer has no Credentials/{name}"))
        })
    };
    let secret = Secret::new(field("SecretAccessKey")?)
        .map_err(|_| SourceError::new(format!("{what}: empty SecretAccessKey")))?;
    let token = Secret::new(field("SessionToken")?)
        .map_err(|_| SourceError::new(format!("{what}: empty SessionToken")))?;
    let expires = keys::parse_expiration(&field("Expiration")?)?;
    keys::issued(
        &field("AccessKeyId")?,
        secret,
        Some(token),
        SystemTime::now(),
        Some(expires),
    )
}

/// The text of the first `<name>…</name>` element, XML entities decoded.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Cuts error text to a readable length and removes any secret it echoes.
fn scrub(text: &str, secrets: &[&str]) -> String {
    crate::redact::peer_text(&crate::redact::without_secrets(text, secrets), 300, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_and_scrubs() {
        let xml = "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>token abc.def &amp; more</Message></Error></ErrorResponse>";
        assert_eq!(tag(xml, "Code").as_deref(), Some("InvalidIdentityToken"));
        let msg = tag(xml, "Message").unwrap();
        assert_eq!(msg, "token abc.def & more");
        assert_eq!(scrub(&msg, &["abc.def"]), "token <redacted> & more");
    }
}
