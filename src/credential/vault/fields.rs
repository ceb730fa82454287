//! Which fields of a Vault answer's `data` make the credential's material: one field for a token,
//! the fields of AWS keys, or a certificate with its private key and CA chain (PKI `issue`).

use crate::credential::{AwsKeys, Material, SourceError};
use crate::material::{CertKey, MaterialKind};
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::SystemTime;

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
    /// `cert = { certificate = "certificate", key = "private_key", chain = "ca_chain" }`
    /// (the field names of Vault's PKI `issue` answer, the defaults).
    Cert {
        certificate: String,
        key: String,
        /// `None`: `ca_chain` if the answer has it, else no chain.
        chain: Option<String>,
    },
}

/// The chain field a PKI `issue` answer has: a list of PEM certificates, issuer first.
const PKI_CHAIN: &str = "ca_chain";

/// `aws = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsForm {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

/// `cert = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertForm {
    certificate: Option<String>,
    key: Option<String>,
    chain: Option<String>,
}

/// A material found in an answer, with the certificate's notAfter when it is one.
pub struct Found {
    pub material: Material,
    pub not_after: Option<SystemTime>,
}

impl Fields {
    /// From the `field` / `aws` / `cert` keys of a `kv`, `read` or `write` table.
    pub fn from_form(
        field: Option<String>,
        aws: Option<AwsForm>,
        cert: Option<CertForm>,
    ) -> Result<Fields, String> {
        match (field, aws, cert) {
            (Some(f), None, None) if f.trim().is_empty() => Err("`field` is empty".into()),
            (Some(f), None, None) => Ok(Fields::Token(f)),
            (None, Some(a), None) => Ok(Fields::Aws {
                access_key_id: a.access_key_id.unwrap_or_else(|| "access_key".into()),
                secret_access_key: a.secret_access_key.unwrap_or_else(|| "secret_key".into()),
                session_token: a.session_token,
            }),
            (None, None, Some(c)) => {
                let named = [&c.certificate, &c.key, &c.chain];
                if named
                    .iter()
                    .any(|n| n.as_deref().is_some_and(|n| n.trim().is_empty()))
                {
                    return Err("`cert` names an empty field".into());
                }
                Ok(Fields::Cert {
                    certificate: c.certificate.unwrap_or_else(|| "certificate".into()),
                    key: c.key.unwrap_or_else(|| "private_key".into()),
                    chain: c.chain,
                })
            }
            (None, None, None) => {
                Err("missing `field` (the name of the field of the secret's data to inject)".into())
            }
            _ => Err("write only one of `field`, `aws` and `cert`".into()),
        }
    }

    pub fn kind(&self) -> MaterialKind {
        match self {
            Fields::Token(_) => MaterialKind::Token,
            Fields::Aws { .. } => MaterialKind::AwsKeys,
            Fields::Cert { .. } => MaterialKind::CertKey,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fields::Token(f) => format!("field {f}"),
            Fields::Aws { access_key_id, .. } => format!("AWS keys (key id in {access_key_id})"),
            Fields::Cert {
                certificate, key, ..
            } => format!("certificate in {certificate}, key in {key}"),
        }
    }

    /// The material in `data`; `what` names the path in errors (never a value).
    pub fn material(&self, what: &str, data: &Map<String, Value>) -> Result<Found, SourceError> {
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
        let plain = |material| {
            Ok(Found {
                material,
                not_after: None,
            })
        };
        match self {
            Fields::Token(f) => plain(Material::Token(get(f)?)),
            Fields::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => plain(Material::Aws(AwsKeys {
                access_key_id: get(access_key_id)?.expose().to_owned(),
                secret_access_key: get(secret_access_key)?,
                session_token: session_token.as_deref().map(get).transpose()?,
            })),
            Fields::Cert {
                certificate,
                key,
                chain,
            } => {
                let key_pem = get(key)?;
                let mut chain_pem = get(certificate)?.expose().trim_end().to_owned();
                for ca in chain_of(what, data, chain.as_deref())? {
                    chain_pem.push('\n');
                    chain_pem.push_str(ca.trim_end());
                }
                chain_pem.push('\n');
                let identity =
                    crate::transport::cert::load(&chain_pem, key_pem.expose()).map_err(|e| {
                        SourceError::permanent(format!("{what}: {certificate} with {key}: {e}"))
                    })?;
                Ok(Found {
                    material: Material::Cert(CertKey { chain_pem, key_pem }),
                    not_after: Some(identity.not_after),
                })
            }
        }
    }
}

/// The CA certificates to send after the leaf: field `chain` (a PEM string or a
/// list of them), or `ca_chain` when the answer has it and no field is named.
fn chain_of<'a>(
    what: &str,
    data: &'a Map<String, Value>,
    chain: Option<&str>,
) -> Result<Vec<&'a str>, SourceError> {
    let name = chain.unwrap_or(PKI_CHAIN);
    let bad = || {
        SourceError::permanent(format!(
            "{what}: field `{name}` is not PEM text or a list of it"
        ))
    };
    match data.get(name) {
        None | Some(Value::Null) if chain.is_none() => Ok(Vec::new()),
        None | Some(Value::Null) => Err(SourceError::permanent(format!(
            "{what}: no field `{name}` in the answer (it has {})",
            names(data)
        ))),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(list)) => list.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
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
        let m = Fields::Token("token".into())
            .material("p", data)
            .unwrap()
            .material;
        assert_eq!(m.token().unwrap().expose(), "t0k3n");
        let aws = Fields::from_form(
            None,
            Some(AwsForm {
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
            }),
            None,
        )
        .unwrap();
        let m = aws.material("p", data).unwrap().material;
        assert_eq!(m.aws().unwrap().access_key_id, "AKIA1");
        let e = Fields::Token("nope".into())
            .material("p", data)
            .err()
            .unwrap();
        assert!(e.message.contains("no field `nope`"), "{}", e.message);
        assert!(!e.message.contains("t0k3n") && !e.message.contains("s3cr3t"));
    }

    fn pem_pair(name: &str) -> (String, String) {
        let p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn pki_answer_makes_a_certificate_with_its_chain() {
        let (leaf, key) = pem_pair("client");
        let (ca, other_key) = pem_pair("ca");
        let pki = Fields::from_form(
            None,
            None,
            Some(CertForm {
                certificate: None,
                key: None,
                chain: None,
            }),
        )
        .unwrap();
        assert_eq!(pki.kind(), MaterialKind::CertKey);
        let data = json!({"certificate": leaf, "private_key": key, "ca_chain": [ca], "serial_number": "1"});
        let found = pki
            .material("pki/issue/r", data.as_object().unwrap())
            .unwrap();
        let pair = found.material.cert().unwrap();
        assert_eq!(pair.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(pair.chain_pem.starts_with(leaf.trim_end()));
        assert!(found.not_after.is_some());
        // No chain in the answer: the leaf alone.
        let data = json!({"certificate": leaf, "private_key": key});
        let found = pki.material("p", data.as_object().unwrap()).unwrap();
        assert_eq!(
            found
                .material
                .cert()
                .unwrap()
                .chain_pem
                .matches("BEGIN")
                .count(),
            1
        );
        // A key of another certificate is refused, and never quoted.
        let data = json!({"certificate": leaf, "private_key": other_key});
        let e = pki.material("p", data.as_object().unwrap()).err().unwrap();
        assert!(e.message.contains("does not match"), "{}", e.message);
        assert!(!e.message.contains("PRIVATE"), "{}", e.message);
        // A chain field named but absent is an error.
        let named = Fields::Cert {
            certificate: "certificate".into(),
            key: "private_key".into(),
            chain: Some("issuing_ca".into()),
        };
        let e = named
            .material("p", data.as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("no field `issuing_ca`"), "{}", e.message);
        assert!(
            Fields::from_form(
                Some("f".into()),
                None,
                Some(CertForm {
                    certificate: None,
                    key: None,
                    chain: None
                })
            )
            .is_err()
        );
    }
}
