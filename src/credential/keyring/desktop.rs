//! The freedesktop Secret Service (GNOME Keyring, KWallet) as a store, through the keyring crate's maintained D-Bus store.

use crate::secret::Secret;
use keyring_core::{Entry, Error};

fn entry(service: &str, account: &str) -> Result<Entry, String> {
    let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| describe(&e))?;
    Entry::new_in_store(
        &(store as std::sync::Arc<keyring_core::CredentialStore>),
        service,
        account,
    )
    .map_err(|e| describe(&e))
}

pub fn get(service: &str, account: &str) -> Result<Option<Secret>, String> {
    match entry(service, account)?.get_password() {
        Ok(text) => Secret::new(text).map(Some).map_err(|e| e.to_string()),
        Err(Error::NoEntry) => Ok(None),
        Err(e) => Err(describe(&e)),
    }
}

pub fn set(service: &str, account: &str, value: &Secret) -> Result<(), String> {
    entry(service, account)?
        .set_password(value.expose())
        .map_err(|e| describe(&e))
}

pub fn remove(service: &str, account: &str) -> Result<bool, String> {
    match entry(service, account)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(Error::NoEntry) => Ok(false),
        Err(e) => Err(describe(&e)),
    }
}

/// A store error in words. Some variants carry the stored bytes (a value
/// that is not UTF-8, say): those are never formatted, only named.
fn describe(e: &Error) -> String {
    match e {
        Error::NoEntry => "no such entry".into(),
        Error::BadEncoding(_) => "the stored value is not UTF-8 text".into(),
        Error::BadDataFormat(_, _) => "the stored value is not in the store's format".into(),
        Error::NoStorageAccess(p) => format!("the Secret Service refused access (locked?): {p}"),
        Error::PlatformFailure(p) => format!("the Secret Service failed: {p}"),
        Error::BadStoreFormat(m) => format!("the store is malformed: {m}"),
        Error::TooLong(what, limit) => {
            format!("{what} is longer than the store's limit of {limit}")
        }
        Error::Invalid(what, why) => format!("{what}: {why}"),
        Error::Ambiguous(_) => "more than one entry matches".into(),
        _ => "the Secret Service failed".into(),
    }
}
