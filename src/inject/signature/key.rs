//! The signing key of one credential value: HMAC bytes, or an Ed25519 or ECDSA P-256 key from a PKCS#8 PEM, loaded with `ring`.

use super::super::{AttachError, RenderError};
use crate::secret::Secret;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The algorithms of RFC 9421 §3.3 this build signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    HmacSha256,
    Ed25519,
    EcdsaP256Sha256,
}

impl Alg {
    pub fn parse(text: &str) -> Result<Alg, String> {
        match text {
            "hmac-sha256" => Ok(Alg::HmacSha256),
            "ed25519" => Ok(Alg::Ed25519),
            "ecdsa-p256-sha256" => Ok(Alg::EcdsaP256Sha256),
            other => Err(format!(
                "alg `{other}` is not supported; use \"hmac-sha256\", \"ed25519\" or \"ecdsa-p256-sha256\""
            )),
        }
    }

    /// The algorithm's name in the HTTP Signature Algorithms registry.
    pub fn id(self) -> &'static str {
        match self {
            Alg::HmacSha256 => "hmac-sha256",
            Alg::Ed25519 => "ed25519",
            Alg::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }
}

/// A loaded key, ready to sign signature bases.
pub enum SigningKey {
    Hmac(ring::hmac::Key),
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair, SystemRandom),
}

impl SigningKey {
    /// Loads the credential value as a key for `alg`: the value's bytes for
    /// HMAC (decoded first when `base64`), a PKCS#8 PEM (`BEGIN PRIVATE KEY`)
    /// otherwise. Errors never hold the key.
    pub fn load(alg: Alg, secret: &Secret, base64: bool) -> Result<SigningKey, RenderError> {
        let bytes = secret.expose().as_bytes();
        match alg {
            Alg::HmacSha256 if base64 => {
                use base64::Engine;
                let raw = zeroize::Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(bytes)
                        .map_err(|_| {
                            RenderError::BadKey("the HMAC key is not valid base64".into())
                        })?,
                );
                Ok(SigningKey::Hmac(ring::hmac::Key::new(
                    ring::hmac::HMAC_SHA256,
                    &raw,
                )))
            }
            Alg::HmacSha256 => Ok(SigningKey::Hmac(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                bytes,
            ))),
            Alg::Ed25519 => {
                let der = pkcs8(bytes, alg)?;
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
                    .map(SigningKey::Ed25519)
                    .map_err(|e| rejected(alg, &e))
            }
            Alg::EcdsaP256Sha256 => {
                let der = pkcs8(bytes, alg)?;
                let rng = SystemRandom::new();
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    der.secret_pkcs8_der(),
                    &rng,
                )
                .map(|k| SigningKey::Ecdsa(k, rng))
                .map_err(|e| rejected(alg, &e))
            }
        }
    }

    /// Signs `base`: HMAC-SHA256, Ed25519, or ECDSA as `r || s` (RFC 9421 §3.3.4).
    pub fn sign(&self, base: &[u8]) -> Result<Vec<u8>, AttachError> {
        match self {
            SigningKey::Hmac(k) => Ok(ring::hmac::sign(k, base).as_ref().to_vec()),
            SigningKey::Ed25519(k) => Ok(k.sign(base).as_ref().to_vec()),
            SigningKey::Ecdsa(k, rng) => k
                .sign(rng, base)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AttachError("ECDSA signing failed".into())),
        }
    }
}

fn pkcs8(
    pem: &[u8],
    alg: Alg,
) -> Result<rustls_pki_types::PrivatePkcs8KeyDer<'static>, RenderError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs8(der)) => Ok(der),
        Ok(_) => Err(RenderError::BadKey(format!(
            "the {} key must be PKCS#8 PEM (`BEGIN PRIVATE KEY`), not SEC1 or PKCS#1",
            alg.id()
        ))),
        Err(_) => Err(RenderError::BadKey(format!(
            "the value is not a PEM private key, as {} signing needs",
            alg.id()
        ))),
    }
}

fn rejected(alg: Alg, e: &ring::error::KeyRejected) -> RenderError {
    RenderError::BadKey(format!("the key is not a usable {} key ({e})", alg.id()))
}
