//! Fuzz target: request-path normalisation and scope matching, checked against the properties in `tests/support/properties.rs`.
#![no_main]

#[path = "../../tests/support/properties.rs"]
#[allow(dead_code)] // each target uses part of it
mod properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // hyper hands sidekey a UTF-8 path; anything else never reaches it.
    if let Ok(text) = std::str::from_utf8(data) {
        properties::check_path(&format!("/{text}"));
        properties::check_path(&format!("/v1/charges/{text}"));
    }
});
