//! The `Secret` type: a credential value that zeroizes on drop, never prints, and compares in constant time.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A credential value. `Debug` and `Display` are redacted; the only way to
/// read it is [`Secret::expose`], which the injectors call when they render.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

/// First 12 hex digits of the SHA-256 of a value: enough to tell values
/// apart in an inventory or a log, far too little to recover anything.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 12]);

/// A value that cannot be a credential.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the value is empty")]
    Empty,
}

impl Secret {
    /// Wraps a value, trimming surrounding whitespace (files end in a newline).
    pub fn new(value: impl Into<String>) -> Result<Self, SecretError> {
        let mut raw = Zeroizing::new(value.into());
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SecretError::Empty);
        }
        if trimmed.len() != raw.len() {
            let owned = Zeroizing::new(trimmed.to_owned());
            raw = owned;
        }
        Ok(Secret(raw))
    }

    /// The value itself. Call only where it is sent to its upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.0.as_bytes())
    }

    /// Constant-time comparison, for tokens presented to the admin API.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(other).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 12];
        for (i, b) in digest[..6].iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        Fingerprint(hex)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits (built above).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_rejects_empty() {
        assert_eq!(Secret::new("  tok\n").unwrap().expose(), "tok");
        assert_eq!(Secret::new(" \n\t").unwrap_err(), SecretError::Empty);
    }

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("sk_live_abcdef").unwrap();
        assert!(!format!("{s:?}").contains("sk_live"));
        assert_eq!(format!("{s}"), "[redacted]");
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(Fingerprint::of(b"abc").as_str(), "ba7816bf8f01");
    }

    #[test]
    fn constant_time_compare() {
        let s = Secret::new("token").unwrap();
        assert!(s.ct_eq(b"token"));
        assert!(!s.ct_eq(b"tokem"));
        assert!(!s.ct_eq(b"tok"));
    }
}
