//! Fuzz target: configuration parsing and checking (`sidekey::config::parse`) never panics, and every error names a line and column inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = sidekey::config::parse(Path::new("fuzz.toml"), text) {
        let lines = text.lines().count().max(1);
        for e in &errors.0 {
            if let Some((line, _)) = e.at {
                assert!(
                    line >= 1 && line <= lines + 1,
                    "{e:?} outside {lines} lines"
                );
            }
        }
    }
});
