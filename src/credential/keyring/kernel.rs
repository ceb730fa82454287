//! The Linux kernel keyring as a store: entries are `user` keys in the user's persistent keyring, which every session of the user reaches, so a value stored from one terminal is read by a sidekey started from another.
//!
//! Entries live in the persistent keyring itself, not in a session keyring
//! with a link to it: a session's own copy would hide a newer value stored
//! from another session. Each read also renews the persistent keyring's
//! expiry (`/proc/sys/kernel/keys/persistent_keyring_expiry`, 3 days by default).

use crate::secret::Secret;
use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};
use zeroize::Zeroizing;

/// The key's description: `service:account`.
fn description(service: &str, account: &str) -> String {
    format!("{service}:{account}")
}

fn persistent() -> Result<KeyRing, String> {
    KeyRing::get_persistent(KeyRingIdentifier::Session)
        .or_else(|_| KeyRing::get_persistent(KeyRingIdentifier::Process))
        .map_err(|e| format!("cannot open the user's persistent keyring: {}", describe(e)))
}

/// The value, or `None` when there is no such entry.
pub fn get(service: &str, account: &str) -> Result<Option<Secret>, String> {
    let key = match persistent()?.search(&description(service, account)) {
        Ok(key) => key,
        Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
            return Ok(None);
        }
        Err(e) => return Err(describe(e)),
    };
    let bytes = Zeroizing::new(key.read_to_vec().map_err(describe)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| "the stored value is not UTF-8 text".to_string())?;
    Secret::new(text).map(Some).map_err(|e| e.to_string())
}

/// Stores the value; an existing entry is updated in place, so every
/// process that reads it sees the new value.
pub fn set(service: &str, account: &str, value: &Secret) -> Result<(), String> {
    persistent()?
        .add_key(&description(service, account), value.expose())
        .map(drop)
        .map_err(describe)
}

/// Deletes the entry; `Ok(false)` when there was none.
pub fn remove(service: &str, account: &str) -> Result<bool, String> {
    match persistent()?.search(&description(service, account)) {
        Ok(key) => key.invalidate().map(|()| true).map_err(describe),
        Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => Ok(false),
        Err(e) => Err(describe(e)),
    }
}

fn describe(e: KeyError) -> String {
    match e {
        KeyError::AccessDenied => {
            "the kernel refused access to the key (another user's, or its permissions)".into()
        }
        KeyError::QuotaExceeded => {
            "the user's key quota is full (/proc/sys/kernel/keys/maxkeys)".into()
        }
        KeyError::OperationNotSupported => {
            "this kernel has no key management (CONFIG_KEYS) or a seccomp filter blocks it".into()
        }
        other => format!("keyctl failed: {other:?}"),
    }
}
