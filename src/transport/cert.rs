//! A TLS client certificate and its key from PEM: parsed, checked to belong together, with the leaf's notAfter.

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A certificate chain and key ready to present in a handshake.
#[derive(Clone)]
pub struct ClientIdentity {
    pub key: Arc<CertifiedKey>,
    /// SHA-256 of the leaf certificate: which certificate a connection presented.
    pub id: [u8; 32],
    /// The leaf's notAfter.
    pub not_after: SystemTime,
}

/// Why a certificate and key cannot be used. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("the certificate PEM cannot be read: {0}")]
    BadCertificate(String),
    #[error("no PEM private key found (PKCS#8, SEC1 or PKCS#1)")]
    NoKey,
    #[error("the private key is of a type TLS cannot use: {0}")]
    UnsupportedKey(String),
    #[error("the private key does not match the certificate")]
    Mismatch,
    #[error("the certificate's validity period cannot be read")]
    NoValidity,
}

/// Loads a chain (leaf first) and its key, and checks that the key is the leaf's.
pub fn load(chain_pem: &str, key_pem: &str) -> Result<ClientIdentity, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let leaf = chain.first().ok_or(CertError::NoCertificate)?;
    let id: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
    let not_after = not_after(leaf.as_ref()).ok_or(CertError::NoValidity)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| CertError::NoKey)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| CertError::UnsupportedKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(CertError::Mismatch);
        }
        // The key type cannot say its public half: nothing to compare.
        Err(_) => {}
    }
    Ok(ClientIdentity {
        key: Arc::new(certified),
        id,
        not_after,
    })
}

/// One DER element: its tag, its content, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (n as usize, rest),
        0x81..=0x84 => {
            let count = (first & 0x7f) as usize;
            if rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[count..])
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The notAfter of an X.509 certificate (RFC 5280 §4.1.2.5).
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // Optional [0] version, then serial number, signature algorithm, issuer.
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSSZ: 50..99 are 19xx.
            let yy: u32 = text.get(..2)?.parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{text}")
        }
        0x18 => text.to_owned(),
        _ => return None,
    };
    generalized(&full)
}

/// `YYYYMMDDHHMMSSZ` as a time.
fn generalized(t: &str) -> Option<SystemTime> {
    if t.len() != 15 || !t.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_after: (i32, u8, u8)) -> (String, String, rcgen::KeyPair) {
        let mut p = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap();
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = p.self_signed(&key).unwrap();
        (c.pem(), key.serialize_pem(), key)
    }

    #[test]
    fn not_after_is_read_from_utc_and_generalized_time() {
        let (pem, key, _) = cert((2031, 3, 7));
        let id = load(&pem, &key).unwrap();
        assert_eq!(
            id.not_after,
            UNIX_EPOCH + Duration::from_secs(1_930_608_000) // 2031-03-07T00:00:00Z
        );
        // After 2049 X.509 uses GeneralizedTime.
        let (pem, key, _) = cert((2061, 1, 1));
        assert_eq!(
            load(&pem, &key).unwrap().not_after,
            UNIX_EPOCH + Duration::from_secs(2_871_763_200) // 2061-01-01T00:00:00Z
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let (pem, _, _) = cert((2031, 1, 1));
        let (_, other_key, _) = cert((2031, 1, 1));
        assert_eq!(load(&pem, &other_key).err(), Some(CertError::Mismatch));
        assert_eq!(load("", &other_key).err(), Some(CertError::NoCertificate));
        assert_eq!(load(&pem, "nothing").err(), Some(CertError::NoKey));
    }
}
