//! Configuration: the TOML file form, its validation, and the checked `Config`.
//!
//! Loading is two stages: serde reads the file form (unknown keys are
//! errors), then [`check`] turns it into a typed [`Config`], collecting every
//! problem with its file, line and column.

mod check;
mod error;
mod exposure;
mod file_form;
mod model;
mod origin;

/// Durations are parsed by the leaf module; kept here under the name the config uses.
pub use crate::duration;
pub use check::probe_sources;
pub use error::{ConfigError, ConfigErrors, line_col};
pub use exposure::exposed_listeners;
pub use model::*;

use std::path::Path;

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::whole_file(
            path,
            format!("cannot read the file: {e}"),
        )])
    })?;
    parse(path, &text)
}

/// Checks configuration text as if read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let form: file_form::FileConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_col(text, s.start));
        ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            at,
            message: e.message().trim().to_string(),
        }])
    })?;
    check::check(path, text, form)
}
