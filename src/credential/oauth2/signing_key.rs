//! The private key of a `private_key_jwt` client, read from a PEM file, and compact JWS signing with it (ring).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;

/// A key that signs client assertions. The JWS `alg` follows from the key:
/// RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA.
pub struct SigningKey {
    kind: Kind,
    rng: SystemRandom,
}

enum Kind {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, &'static str),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// Reads a PEM file holding a PKCS#8 (`PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`) key. Errors name the file, never its content.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, String> {
        let shown = path.display();
        let der = PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
            rustls_pki_types::pem::Error::Io(e) => format!("cannot read {shown}: {e}"),
            _ => format!("{shown} holds no PEM private key"),
        })?;
        Self::from_der(&der).map_err(|m| format!("{shown}: {m}"))
    }

    fn from_der(der: &PrivateKeyDer<'_>) -> Result<SigningKey, String> {
        let rng = SystemRandom::new();
        let kind = match der {
            PrivateKeyDer::Pkcs1(k) => Kind::Rsa(
                RsaKeyPair::from_der(k.secret_pkcs1_der())
                    .map_err(|e| format!("unusable RSA key ({e})"))?,
            ),
            PrivateKeyDer::Pkcs8(k) => {
                let bytes = k.secret_pkcs8_der();
                if let Ok(k) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes, &rng)
                {
                    Kind::Ecdsa(k, "ES256")
                } else if let Ok(k) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, bytes, &rng)
                {
                    Kind::Ecdsa(k, "ES384")
                } else if let Ok(k) = RsaKeyPair::from_pkcs8(bytes) {
                    Kind::Rsa(k)
                } else if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes) {
                    Kind::Ed25519(k)
                } else {
                    return Err(
                        "the key is not RSA (2048 bits or more), EC P-256, EC P-384 or Ed25519"
                            .into(),
                    );
                }
            }
            PrivateKeyDer::Sec1(_) => {
                return Err("SEC1 `EC PRIVATE KEY` is not supported; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`".into());
            }
            _ => return Err("unsupported private key format".into()),
        };
        Ok(SigningKey { kind, rng })
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match &self.kind {
            Kind::Rsa(_) => "RS256",
            Kind::Ecdsa(_, alg) => alg,
            Kind::Ed25519(_) => "EdDSA",
        }
    }

    /// A compact JWS (RFC 7515) of `claims`, with `kid` in the header when given.
    pub fn sign_jwt(
        &self,
        kid: Option<&str>,
        claims: &serde_json::Value,
    ) -> Result<String, String> {
        let mut header = serde_json::json!({ "alg": self.alg(), "typ": "JWT" });
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.sign(input.as_bytes())?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(input)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |_| "signing the client assertion failed".to_string();
        match &self.kind {
            Kind::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            Kind::Ecdsa(k, _) => Ok(k
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Kind::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn es256_signature_verifies_and_header_names_kid() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pair.serialize_pem()).unwrap();
        let key = SigningKey::from_pem_file(&path).unwrap();
        assert_eq!(key.alg(), "ES256");
        let jwt = key
            .sign_jwt(Some("k1"), &serde_json::json!({ "iss": "me" }))
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(sig.len(), 64, "JWS ECDSA signatures are r||s, not DER");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key_raw())
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signature verifies with the public key");
    }

    #[test]
    fn ed25519_keys_sign_eddsa() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pair.serialize_pem()).unwrap();
        assert_eq!(SigningKey::from_pem_file(&path).unwrap().alg(), "EdDSA");
    }

    #[test]
    fn errors_name_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "not a key at all").unwrap();
        let e = SigningKey::from_pem_file(&path).err().unwrap();
        assert!(
            e.contains("key.pem") && e.contains("no PEM private key"),
            "{e}"
        );
        assert!(!e.contains("not a key at all"));
    }
}
