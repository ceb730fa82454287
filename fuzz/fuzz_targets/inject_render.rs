//! Fuzz target: rendering header, Basic and query injections, checked against the properties in `tests/support/properties.rs`.
#![no_main]

#[path = "../../tests/support/properties.rs"]
#[allow(dead_code)] // each target uses part of it
mod properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Fields separated by NUL: secret, format, username, param, query.
    let mut f = text.split('\0');
    let mut next = || f.next().unwrap_or("");
    let (secret, format, username, param) = (next(), next(), next(), next());
    let query = f.next();
    properties::check_render(secret, format, username, param, query);
});
