//! The SigV4 signing key: derived from the secret key once per UTC day (it depends on nothing else that changes) and read lock-free on the request path.

use arc_swap::ArcSwapOption;
use ring::hmac;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The signing keys of one secret key for one region and service.
///
/// ring's `hmac::Key` holds the HMAC pads' hash states rather than the key
/// bytes, and is not zeroized on drop (the RFC 9421 signer keeps its HMAC
/// key the same way); the texts the keys are made from are zeroized.
pub(super) struct KeyCache {
    /// HMAC key `"AWS4" + secret access key`: the start of every derivation.
    secret: hmac::Key,
    region: String,
    service: String,
    today: ArcSwapOption<DayKey>,
    derived: AtomicU64,
}

/// The signing key of one UTC day.
struct DayKey {
    day: u64,
    key: hmac::Key,
}

impl KeyCache {
    pub fn new(secret_access_key: &str, region: &str, service: &str) -> KeyCache {
        let text = zeroize::Zeroizing::new(format!("AWS4{secret_access_key}"));
        KeyCache {
            secret: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()),
            region: region.to_owned(),
            service: service.to_owned(),
            today: ArcSwapOption::empty(),
            derived: AtomicU64::new(0),
        }
    }

    /// Runs `f` with the signing key of `day` (`date` is its `YYYYMMDD`),
    /// deriving it only when the cached one is of another day.
    pub fn with_key<R>(&self, day: u64, date: &[u8], f: impl FnOnce(&hmac::Key) -> R) -> R {
        let cached = self.today.load();
        if let Some(k) = cached.as_deref().filter(|k| k.day == day) {
            return f(&k.key);
        }
        drop(cached);
        let fresh = Arc::new(DayKey {
            day,
            key: self.derive(date),
        });
        self.derived.fetch_add(1, Ordering::Relaxed);
        self.today.store(Some(Arc::clone(&fresh)));
        f(&fresh.key)
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    fn derive(&self, date: &[u8]) -> hmac::Key {
        let mut tag = hmac::sign(&self.secret, date);
        for part in [
            self.region.as_bytes(),
            self.service.as_bytes(),
            b"aws4_request",
        ] {
            tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()), part);
        }
        hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
    }

    /// How many times a signing key was derived: once per day in use.
    pub fn derivations(&self) -> u64 {
        self.derived.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("derivations", &self.derivations())
            .finish_non_exhaustive()
    }
}
