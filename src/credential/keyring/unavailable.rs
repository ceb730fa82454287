//! A store this build or platform does not have: every call says so.

use crate::secret::Secret;

const WHY: &str = "this store is not available in this build on this platform (the kernel keyring needs Linux; the Secret Service needs the cargo feature `secret-service`)";

pub fn get(_service: &str, _account: &str) -> Result<Option<Secret>, String> {
    Err(WHY.into())
}

pub fn set(_service: &str, _account: &str, _value: &Secret) -> Result<(), String> {
    Err(WHY.into())
}

pub fn remove(_service: &str, _account: &str) -> Result<bool, String> {
    Err(WHY.into())
}
