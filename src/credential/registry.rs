//! Every source kind this build knows: adding one is a module with its settings and `Source`, plus one line here.

use super::spec::SourceSpec;
use super::{aws, env, exec, file, keyring, oauth2, vault};
use crate::parse::{FieldError, ParseContext};

/// Parses a source's own keys (the common keys `source`, `max_age` and
/// `enforce_max_age` already removed) into its settings.
pub type Parse = fn(toml::Table, &ParseContext<'_>) -> Result<SourceSpec, FieldError>;

/// `source = "..."` names and their parsers.
pub const KINDS: &[(&str, Parse)] = &[
    ("file", |t, cx| file::parse(t, cx).map(SourceSpec::new)),
    ("env", |t, cx| env::parse(t, cx).map(SourceSpec::new)),
    ("exec", |t, cx| exec::parse(t, cx).map(SourceSpec::new)),
    ("oauth2", |t, cx| {
        oauth2::parse_client_credentials(t, cx).map(SourceSpec::new)
    }),
    ("oauth2_token_exchange", |t, cx| {
        oauth2::parse_token_exchange(t, cx).map(SourceSpec::new)
    }),
    ("aws", |t, cx| aws::parse(t, cx).map(SourceSpec::new)),
    ("keyring", |t, cx| {
        keyring::parse(t, cx).map(SourceSpec::new)
    }),
    ("vault", |t, cx| vault::parse(t, cx).map(SourceSpec::new)),
];

/// Parses the table of a credential whose `source` is `kind`.
pub fn parse(
    kind: &str,
    table: toml::Table,
    cx: &ParseContext<'_>,
) -> Result<SourceSpec, FieldError> {
    match KINDS.iter().find(|(name, _)| *name == kind) {
        Some((_, parse)) => parse(table, cx),
        None => Err(FieldError::on(
            "source",
            format!("unknown source `{kind}`; this build knows {}", names()),
        )),
    }
}

/// The known kinds, for error messages.
pub fn names() -> String {
    KINDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}
