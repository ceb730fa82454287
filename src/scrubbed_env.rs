//! Secret environment variables that `sidekey run` moved out of its own environment at start (see `harden`), kept here for the sources that name them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use zeroize::Zeroizing;

static VARS: OnceLock<BTreeMap<String, Zeroizing<String>>> = OnceLock::new();

/// Keeps the handed-over variables; only the first call counts.
pub fn install(vars: BTreeMap<String, Zeroizing<String>>) {
    let _ = VARS.set(vars);
}

/// The value of a variable moved out of the environment, if it was.
pub fn var(name: &str) -> Option<&'static str> {
    VARS.get()?.get(name).map(|v| v.as_str())
}
