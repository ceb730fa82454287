//! Which fields of a Vault answer's `data` make the credential's material: one field for a token,
//! or the fields of AWS keys. A new material (a certificate with key and chain) is a new variant here.

use crate::credential::{AwsKeys, Material, SourceError};
use crate::material::MaterialKind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// `field = "token"`: one string field is the token.
    Token(String),
    /// `aws = { access_key_id = "access_key", secret_access_key = "secret_key", session_token = "security_token" }`
    /// (the field names of Vault's AWS secrets engine).
    Aws {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

/// `aws = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsForm {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

impl Fields {
    /// From the `field` / `aws` keys of a `kv`, `read` or `write` table.
    pub fn from_form(field: Option<String>, aws: Option<AwsForm>) -> Result<Fields, String> {
        match (field, aws) {
            (Some(_), Some(_)) => Err("write either `field` or `aws`, not both".into()),
            (Some(f), None) if f.trim().is_empty() => Err("`field` is empty".into()),
            (Some(f), None) => Ok(Fields::Token(f)),
            (None, Some(a)) => Ok(Fields::Aws {
                access_key_id: a.access_key_id.unwrap_or_else(|| "access_key".into()),
                secret_access_key: a.secret_access_key.unwrap_or_else(|| "secret_key".into()),
                session_token: a.session_token,
            }),
            (None, None) => {
                Err("missing `field` (the name of the field of the secret's data to inject)".into())
            }
        }
    }

    pub fn kind(&self) -> MaterialKind {
        match self {
            Fields::Token(_) => MaterialKind::Token,
            Fields::Aws { .. } => MaterialKind::AwsKeys,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fields::Token(f) => format!("field {f}"),
            Fields::Aws { access_key_id, .. } => format!("AWS keys (key id in {access_key_id})"),
        }
    }

    /// The material in `data`; `what` names the path in errors (never a value).
    pub fn material(&self, what: &str, data: &Map<String, Value>) -> Result<Material, SourceError> {
        let get = |name: &str| -> Result<Secret, SourceError> {
            match data.get(name) {
                Some(Value::String(s)) => Secret::new(s.as_str()).map_err(|_| {
                    SourceError::permanent(format!("{what}: field `{name}` is empty"))
                }),
                Some(_) => Err(SourceError::permanent(format!(
                    "{what}: field `{name}` is not a string"
                ))),
                None => Err(SourceError::permanent(format!(
                    "{what}: no field `{name}` in the answer (it has {})",
                    names(data)
                ))),
            }
        };
        match self {
            Fields::Token(f) => Ok(Material::Token(get(f)?)),
            Fields::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => Ok(Material::Aws(AwsKeys {
                access_key_id: get(access_key_id)?.expose().to_owned(),
                secret_access_key: get(secret_access_key)?,
                session_token: session_token.as_deref().map(get).transpose()?,
            })),
        }
    }
}

/// The field names of an answer (never their values), for an error message.
fn names(data: &Map<String, Value>) -> String {
    if data.is_empty() {
        return "no fields".into();
    }
    let list: Vec<&str> = data.keys().map(String::as_str).take(20).collect();
    crate::redact::peer_text(&list.join(", "), 200, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_and_aws_fields() {
        let data = json!({"token": "t0k3n", "access_key": "AKIA1", "secret_key": "s3cr3t"});
        let data = data.as_object().unwrap();
        let m = Fields::Token("token".into()).material("p", data).unwrap();
        assert_eq!(m.token().unwrap().expose(), "t0k3n");
        let aws = Fields::from_form(
            None,
            Some(AwsForm {
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
            }),
        )
        .unwrap();
        let m = aws.material("p", data).unwrap();
        assert_eq!(m.aws().unwrap().access_key_id, "AKIA1");
        let e = Fields::Token("nope".into())
            .material("p", data)
            .unwrap_err();
        assert!(e.message.contains("no field `nope`"), "{}", e.message);
        assert!(!e.message.contains("t0k3n") && !e.message.contains("s3cr3t"));
    }
}
