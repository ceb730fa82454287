//! The `source = "aws"` table as written, checked into an [`AwsSpec`].

use super::{AwsSpec, Origin};
use crate::credential::file::DEFAULT_POLL;
use crate::parse::{FieldError, ParseContext, SecretRefForm, typed};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsForm {
    /// "static", "env", "web_identity", "container", "imds" or "chain";
    /// inferred from the other keys when absent.
    from: Option<String>,
    access_key_id: Option<SecretRefForm>,
    secret_access_key: Option<SecretRefForm>,
    session_token: Option<SecretRefForm>,
    web_identity_token_file: Option<String>,
    role_arn: Option<String>,
    role_session_name: Option<String>,
    duration: Option<String>,
    region: Option<String>,
    sts_endpoint: Option<String>,
    container_endpoint: Option<String>,
    container_token_file: Option<String>,
    imds_endpoint: Option<String>,
    poll_interval: Option<String>,
}

/// Parses the source-specific keys of an aws credential.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<AwsSpec, FieldError> {
    let f: AwsForm = typed(table)?;
    let has_keys = f.access_key_id.is_some() || f.secret_access_key.is_some();
    let from = match f.from.as_deref() {
        Some(v) => v,
        None if has_keys => "static",
        None if f.web_identity_token_file.is_some() => "web_identity",
        None if f.container_endpoint.is_some() => "container",
        None if f.imds_endpoint.is_some() => "imds",
        None => "chain",
    };
    let only_static = |ok: bool| {
        if !ok && (has_keys || f.session_token.is_some()) {
            Err(FieldError::on(
                "access_key_id",
                format!(
                    "access_key_id / secret_access_key / session_token go with from = \"static\", not \"{from}\""
                ),
            ))
        } else {
            Ok(())
        }
    };
    only_static(from == "static")?;
    let origin = match from {
        "static" => {
            let need = |field: &str, r: &Option<SecretRefForm>| match r {
                Some(r) => cx.secret_ref(field, r),
                None => Err(FieldError::on(
                    field,
                    format!(
                        "static AWS keys need `{field} = {{ file = \"...\" }}` (or {{ env = \"VAR\" }})"
                    ),
                )),
            };
            Origin::Static {
                access_key_id: need("access_key_id", &f.access_key_id)?,
                secret_access_key: need("secret_access_key", &f.secret_access_key)?,
                session_token: f
                    .session_token
                    .as_ref()
                    .map(|r| cx.secret_ref("session_token", r))
                    .transpose()?,
            }
        }
        "env" => Origin::Env,
        "web_identity" => Origin::WebIdentity {
            token_file: f.web_identity_token_file.as_deref().map(|p| cx.path(p)),
            role_arn: f.role_arn.clone(),
        },
        "container" => Origin::Container {
            endpoint: f.container_endpoint.clone(),
            token_file: f.container_token_file.as_deref().map(|p| cx.path(p)),
        },
        "imds" => Origin::Imds {
            endpoint: f.imds_endpoint.clone(),
        },
        "chain" => Origin::Chain,
        other => {
            return Err(FieldError::on(
                "from",
                format!(
                    "`{other}` is not known; use \"static\", \"env\", \"web_identity\", \"container\", \"imds\" or \"chain\""
                ),
            ));
        }
    };
    if let Some(arn) = &f.role_arn {
        if !arn.starts_with("arn:") {
            return Err(FieldError::on(
                "role_arn",
                format!("`{arn}` is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
            ));
        }
    }
    for (field, url) in [
        ("sts_endpoint", &f.sts_endpoint),
        ("container_endpoint", &f.container_endpoint),
        ("imds_endpoint", &f.imds_endpoint),
    ] {
        if let Some(u) = url {
            let ok = u.parse::<http::Uri>().is_ok_and(|u| {
                u.host().is_some() && matches!(u.scheme_str(), Some("http" | "https"))
            });
            if !ok {
                return Err(FieldError::on(
                    field,
                    format!("`{u}` is not an http(s) URL"),
                ));
            }
        }
    }
    let region = f
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let duration = cx.duration("duration", f.duration.as_deref())?;
    if duration.is_some_and(|d| d.as_secs() < 900 || d.as_secs() > 43200) {
        return Err(FieldError::on(
            "duration",
            "STS credentials last between 15m and 12h",
        ));
    }
    Ok(AwsSpec {
        origin,
        assume_role_arn: f.role_arn,
        session_name: f.role_session_name.unwrap_or_else(|| "sidekey".into()),
        duration,
        region,
        sts_endpoint: f.sts_endpoint,
        poll_interval: cx
            .duration("poll_interval", f.poll_interval.as_deref())?
            .unwrap_or(DEFAULT_POLL),
    })
}
