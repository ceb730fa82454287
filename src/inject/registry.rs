//! Every injection form this build knows: adding one is a module with its `Injector`, plus one line here.

use super::basic::BasicForm;
use super::client_cert::ClientCertForm;
use super::header::HeaderForm;
use super::query::QueryForm;
use super::signature::{HttpSignatureSpec, Settings};
use super::{InjectSpec, SigV4Spec};
use crate::parse::typed;
use serde::Deserialize;

/// Parses a route's whole `inject` table into its form.
pub type Parse = fn(toml::Table) -> Result<InjectSpec, String>;

/// The key that names each form in `inject = { ... }`, and its parser.
pub const FORMS: &[(&str, Parse)] = &[
    ("header", header),
    ("basic", basic),
    ("query", query),
    ("aws_sigv4", aws_sigv4),
    ("http_signature", http_signature),
    ("client_cert", client_cert),
];

/// Parses `inject = { ... }`: exactly one form's key, and that form's keys only.
pub fn parse(table: toml::Table) -> Result<InjectSpec, String> {
    let named: Vec<&(&str, Parse)> = FORMS
        .iter()
        .filter(|(key, _)| table.contains_key(*key))
        .collect();
    match named.as_slice() {
        [(_, parse)] => parse(table),
        _ => Err(format!(
            "write exactly one of {}",
            "{ header, format }, { basic = { username } }, { query = \"param\" }, { aws_sigv4 = { service, region } }, { http_signature = { key_id, alg, components } }, { client_cert = {} }"
        )),
    }
}

fn form<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    typed(table).map_err(|e| e.message)
}

fn header(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        header: String,
        format: Option<String>,
    }
    let f: Form = form(table)?;
    HeaderForm::new(&f.header, f.format.as_deref()).map(InjectSpec::new)
}

fn basic(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        basic: Username,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Username {
        username: String,
    }
    let f: Form = form(table)?;
    BasicForm::new(&f.basic.username).map(InjectSpec::new)
}

fn query(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        query: String,
    }
    let f: Form = form(table)?;
    QueryForm::new(&f.query).map(InjectSpec::new)
}

fn aws_sigv4(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        aws_sigv4: SigV4Form,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SigV4Form {
        service: String,
        region: String,
        /// "signed" or "unsigned"; the default depends on the service.
        payload: Option<String>,
        /// Largest body hashed for a signed payload.
        max_signed_body: Option<u64>,
    }
    let f: Form = form(table)?;
    let v = f.aws_sigv4;
    SigV4Spec::new(
        &v.service,
        &v.region,
        v.payload.as_deref(),
        v.max_signed_body,
    )
    .map(InjectSpec::new)
}

fn http_signature(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        http_signature: SignatureForm,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SignatureForm {
        key_id: String,
        alg: String,
        components: Vec<String>,
        expires: Option<String>,
        nonce: Option<bool>,
        label: Option<String>,
        tag: Option<String>,
        max_signed_body: Option<u64>,
        key_encoding: Option<String>,
    }
    let f: Form = form(table)?;
    let v = f.http_signature;
    HttpSignatureSpec::new(Settings {
        key_id: &v.key_id,
        alg: &v.alg,
        components: &v.components,
        expires: v.expires.as_deref(),
        nonce: v.nonce.unwrap_or(false),
        label: v.label.as_deref(),
        tag: v.tag.as_deref(),
        max_signed_body: v.max_signed_body,
        key_encoding: v.key_encoding.as_deref(),
    })
    .map(InjectSpec::new)
}

fn client_cert(table: toml::Table) -> Result<InjectSpec, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        #[allow(dead_code)] // `{}`: present, with no keys
        client_cert: Empty,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    let _: Form = form(table)?;
    Ok(InjectSpec::new(ClientCertForm))
}
