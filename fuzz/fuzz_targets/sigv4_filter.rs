//! Fuzz target: the header and query filter of scoped routes (method overrides everywhere, `x-amz-*` headers and S3 sub-resources on SigV4 routes), checked against the properties in `tests/support/properties.rs`.
#![no_main]

#[path = "../../tests/support/properties.rs"]
#[allow(dead_code)] // each target uses part of it
mod properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the query; each further line a `name: value` header.
    let (query, headers) = text.split_once('\n').unwrap_or((text, ""));
    properties::check_guards(&properties::header_lines(headers), Some(query));
});
