//! The shapes a credential value can take: a single token, a set of AWS keys, or a TLS client certificate and its key.

use crate::secret::{Fingerprint, Secret};

/// The shapes of [`Material`], for checking a source against an injection form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaterialKind {
    Token,
    AwsKeys,
    CertKey,
}

impl MaterialKind {
    /// How a config error names it.
    pub fn describe(self) -> &'static str {
        match self {
            MaterialKind::Token => "a single token",
            MaterialKind::AwsKeys => "AWS keys",
            MaterialKind::CertKey => "a certificate and key",
        }
    }
}

/// A credential value as issued by a source.
#[derive(Clone, Debug)]
pub enum Material {
    /// An API key, a bearer token, a password.
    Token(Secret),
    /// AWS credentials for SigV4 signing.
    Aws(AwsKeys),
    /// A TLS client certificate chain and its private key (mTLS).
    Cert(CertKey),
}

/// A certificate chain and its key, both PEM, checked to belong together by the source.
#[derive(Clone, Debug)]
pub struct CertKey {
    /// Not a secret: the upstream sees it in every handshake.
    pub chain_pem: String,
    pub key_pem: Secret,
}

#[derive(Clone, Debug)]
pub struct AwsKeys {
    /// Not a secret: it appears in every signed request.
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl Material {
    pub fn kind(&self) -> MaterialKind {
        match self {
            Material::Token(_) => MaterialKind::Token,
            Material::Aws(_) => MaterialKind::AwsKeys,
            Material::Cert(_) => MaterialKind::CertKey,
        }
    }

    pub fn token(&self) -> Option<&Secret> {
        match self {
            Material::Token(s) => Some(s),
            _ => None,
        }
    }

    pub fn aws(&self) -> Option<&AwsKeys> {
        match self {
            Material::Aws(k) => Some(k),
            _ => None,
        }
    }

    pub fn cert(&self) -> Option<&CertKey> {
        match self {
            Material::Cert(c) => Some(c),
            _ => None,
        }
    }

    /// Identifies the value without revealing it.
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            Material::Token(s) => s.fingerprint(),
            Material::Aws(k) => {
                let joined = zeroize::Zeroizing::new(format!(
                    "{}:{}",
                    k.access_key_id,
                    k.secret_access_key.expose()
                ));
                Fingerprint::of(joined.as_bytes())
            }
            Material::Cert(c) => {
                let joined =
                    zeroize::Zeroizing::new(format!("{}{}", c.chain_pem, c.key_pem.expose()));
                Fingerprint::of(joined.as_bytes())
            }
        }
    }
}
