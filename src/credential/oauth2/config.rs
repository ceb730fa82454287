//! The config keys of both OAuth 2.0 sources, checked into their specs (URLs, client authentication, request parameters).

use super::exchange::{JWT_TOKEN_TYPE, TokenExchangeSpec};
use super::{ClientAuth, DEFAULT_LIFETIME, DEFAULT_TIMEOUT, OAuth2Spec, RequestSpec, ServerSpec};
use crate::parse::{FieldError, ParseContext, SecretRefForm, typed};
use serde::Deserialize;
use std::collections::BTreeMap;
use url::{Host, Url};

/// Form fields sidekey writes itself; `params` cannot set them.
const RESERVED: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "refresh_token",
];

/// Every key of both sources. The exchange-only keys are refused for `oauth2`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    token_url: String,
    client_id: Option<String>,
    client_secret: Option<SecretRefForm>,
    auth_method: Option<String>,
    private_key_file: Option<String>,
    kid: Option<String>,
    assertion_audience: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    audience: Option<OneOrMany>,
    resource: Option<OneOrMany>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    default_lifetime: Option<String>,
    revocation_url: Option<String>,
    ca_file: Option<String>,
    timeout: Option<String>,
    subject_token_file: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
}

/// `"x"` or `["x", "y"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `source = "oauth2"`.
pub fn parse_client_credentials(
    table: toml::Table,
    cx: &ParseContext<'_>,
) -> Result<OAuth2Spec, FieldError> {
    let f: Form = typed(table)?;
    for (key, set) in [
        ("subject_token_file", f.subject_token_file.is_some()),
        ("subject_token_type", f.subject_token_type.is_some()),
        ("requested_token_type", f.requested_token_type.is_some()),
    ] {
        if set {
            return Err(FieldError::on(
                key,
                format!("`{key}` belongs to source = \"oauth2_token_exchange\""),
            ));
        }
    }
    let server = server(&f, cx, false)?;
    let request = request(f)?;
    Ok(OAuth2Spec { server, request })
}

/// `source = "oauth2_token_exchange"`.
pub fn parse_token_exchange(
    table: toml::Table,
    cx: &ParseContext<'_>,
) -> Result<TokenExchangeSpec, FieldError> {
    let mut f: Form = typed(table)?;
    let server = server(&f, cx, true)?;
    let subject_token_file = f.subject_token_file.take().ok_or_else(|| {
        FieldError::on(
            "subject_token_file",
            "missing `subject_token_file` (the workload identity token to exchange, e.g. a projected service-account token)",
        )
    })?;
    let subject_token_type = f
        .subject_token_type
        .take()
        .unwrap_or_else(|| JWT_TOKEN_TYPE.to_owned());
    token_type_uri("subject_token_type", &subject_token_type)?;
    let requested_token_type = f.requested_token_type.take();
    if let Some(t) = &requested_token_type {
        token_type_uri("requested_token_type", t)?;
    }
    let request = request(f)?;
    Ok(TokenExchangeSpec {
        server,
        request,
        subject_token_file: cx.path(&subject_token_file),
        subject_token_type,
        requested_token_type,
    })
}

fn token_type_uri(field: &str, value: &str) -> Result<(), FieldError> {
    if value.contains(':') && !value.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(FieldError::on(
            field,
            format!(
                "`{value}` is not a token type URI such as \"urn:ietf:params:oauth:token-type:jwt\""
            ),
        ))
    }
}

fn server(f: &Form, cx: &ParseContext<'_>, exchange: bool) -> Result<ServerSpec, FieldError> {
    let token_url = endpoint_url("token_url", &f.token_url)?;
    let revocation_url = f
        .revocation_url
        .as_deref()
        .map(|u| endpoint_url("revocation_url", u))
        .transpose()?;
    let auth = client_auth(f, cx, exchange)?;
    let client_id = match (&f.client_id, &auth) {
        (Some(id), _) if id.trim().is_empty() => {
            return Err(FieldError::on("client_id", "client_id is empty"));
        }
        (Some(id), _) => Some(id.clone()),
        (None, ClientAuth::None) => None,
        (None, _) => {
            return Err(FieldError::on(
                "client_id",
                "missing `client_id` (needed to authenticate the client)",
            ));
        }
    };
    let ca_file = f.ca_file.as_deref().map(|c| cx.path(c));
    if let Some(p) = &ca_file {
        std::fs::read(p)
            .map_err(|e| FieldError::on("ca_file", format!("cannot read {}: {e}", p.display())))?;
    }
    let timeout = cx
        .duration("timeout", f.timeout.as_deref())?
        .unwrap_or(DEFAULT_TIMEOUT);
    let default_lifetime = cx
        .duration("default_lifetime", f.default_lifetime.as_deref())?
        .unwrap_or(DEFAULT_LIFETIME);
    for (field, d) in [("timeout", timeout), ("default_lifetime", default_lifetime)] {
        if d.is_zero() {
            return Err(FieldError::on(
                field,
                format!("`{field}` must be more than 0"),
            ));
        }
    }
    Ok(ServerSpec {
        token_url,
        client_id,
        auth,
        revocation_url,
        ca_file,
        timeout,
        default_lifetime,
    })
}

fn client_auth(f: &Form, cx: &ParseContext<'_>, exchange: bool) -> Result<ClientAuth, FieldError> {
    let secret = f
        .client_secret
        .as_ref()
        .map(|s| cx.secret_ref("client_secret", s))
        .transpose()?;
    let key = f.private_key_file.as_deref().map(|p| cx.path(p));
    let method = match (&f.auth_method, &secret, &key) {
        (_, Some(_), Some(_)) => {
            return Err(FieldError::on(
                "private_key_file",
                "set either client_secret or private_key_file, not both",
            ));
        }
        (Some(m), _, _) => m.as_str(),
        (None, Some(_), None) => "client_secret_basic",
        (None, None, Some(_)) => "private_key_jwt",
        (None, None, None) => "none",
    };
    if method != "private_key_jwt" {
        for (field, set) in [
            ("kid", f.kid.is_some()),
            ("assertion_audience", f.assertion_audience.is_some()),
        ] {
            if set {
                return Err(FieldError::on(
                    field,
                    format!("`{field}` goes with auth_method = \"private_key_jwt\""),
                ));
            }
        }
    }
    let needs_secret = |s: Option<crate::credential::secret_ref::SecretRef>| {
        s.ok_or_else(|| {
            FieldError::on(
                "client_secret",
                format!("auth_method = \"{method}\" needs client_secret = {{ file = \"...\" }} or {{ env = \"VAR\" }}"),
            )
        })
    };
    let auth = match method {
        "client_secret_basic" => ClientAuth::SecretBasic(needs_secret(secret)?),
        "client_secret_post" => ClientAuth::SecretPost(needs_secret(secret)?),
        "private_key_jwt" => ClientAuth::PrivateKeyJwt {
            key_file: key.ok_or_else(|| {
                FieldError::on(
                    "private_key_file",
                    "auth_method = \"private_key_jwt\" needs private_key_file (a PEM file)",
                )
            })?,
            kid: f.kid.clone(),
            audience: f.assertion_audience.clone(),
        },
        "none" if !exchange => {
            return Err(FieldError::on(
                "client_secret",
                "the client-credentials grant needs client authentication: set client_secret or private_key_file",
            ));
        }
        "none" if secret.is_some() || key.is_some() => {
            return Err(FieldError::on(
                "auth_method",
                "auth_method = \"none\" sends no client_secret or private key; remove them or pick another method",
            ));
        }
        "none" => ClientAuth::None,
        other => {
            return Err(FieldError::on(
                "auth_method",
                format!(
                    "auth_method `{other}` is not known; use client_secret_basic, client_secret_post, private_key_jwt{}",
                    if exchange { " or none" } else { "" }
                ),
            ));
        }
    };
    Ok(auth)
}

fn request(f: Form) -> Result<RequestSpec, FieldError> {
    for s in &f.scopes {
        if s.is_empty() || s.contains(' ') || s.contains('"') || s.contains('\\') {
            return Err(FieldError::on(
                "scopes",
                format!("`{s}` is not a scope (scopes are non-empty words without spaces)"),
            ));
        }
    }
    let audience = f.audience.map(OneOrMany::into_vec).unwrap_or_default();
    if audience.iter().any(|a| a.trim().is_empty()) {
        return Err(FieldError::on("audience", "an audience is empty"));
    }
    let resource = f.resource.map(OneOrMany::into_vec).unwrap_or_default();
    for r in &resource {
        // RFC 8707 §2: an absolute URI without a fragment.
        match Url::parse(r) {
            Ok(u) if u.fragment().is_none() => {}
            _ => {
                return Err(FieldError::on(
                    "resource",
                    format!("resource `{r}` is not an absolute URI without a fragment"),
                ));
            }
        }
    }
    for key in f.params.keys() {
        if RESERVED.contains(&key.as_str()) {
            return Err(FieldError::on(
                "params",
                format!("`{key}` is written by sidekey itself and cannot be set in params"),
            ));
        }
    }
    Ok(RequestSpec {
        scopes: f.scopes,
        audience,
        resource,
        params: f.params.into_iter().collect(),
    })
}

/// An authorization server URL: `https://`, or `http://` to a loopback host only.
/// (Also the Vault source's rule for its address.)
pub(in crate::credential) fn endpoint_url(field: &str, text: &str) -> Result<Url, FieldError> {
    let url = Url::parse(text.trim())
        .map_err(|e| FieldError::on(field, format!("`{text}` is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::on(
            field,
            "the URL must not hold user information (the client secret comes from client_secret)",
        ));
    }
    if url.fragment().is_some() {
        return Err(FieldError::on(field, "the URL must not have a #fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(FieldError::on(
            field,
            format!(
                "`{text}` is plain http to a host that is not loopback; the client secret and tokens would travel in clear: use https://"
            ),
        )),
        other => Err(FieldError::on(
            field,
            format!("`{other}://` is not supported; use https://"),
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cx() -> ParseContext<'static> {
        ParseContext {
            base_dir: Path::new("/etc/sidekey"),
        }
    }

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    fn cc(text: &str) -> Result<OAuth2Spec, FieldError> {
        parse_client_credentials(table(text), &cx())
    }

    /// A valid client-credentials table (secret from the environment).
    const VALID: &str = r#"token_url = "https://a.example/t"
        client_id = "c"
        client_secret = { env = "S" }"#;

    /// The field named by the error for `VALID` plus `extra`.
    fn refused_field(extra: &str) -> String {
        let e = cc(&format!("{VALID}\n{extra}")).unwrap_err();
        e.field
            .unwrap_or_else(|| panic!("{extra}: no field in {}", e.message))
    }

    #[test]
    fn client_credentials_defaults() {
        let s = cc(r#"
            token_url = "https://auth.example.com/oauth2/token"
            client_id = "payments-sidecar"
            client_secret = { file = "secret" }
            scopes = ["payments:write"]
        "#)
        .unwrap();
        assert_eq!(
            s.server.auth,
            ClientAuth::SecretBasic(crate::credential::secret_ref::SecretRef::File(
                "/etc/sidekey/secret".into()
            ))
        );
        assert_eq!(s.server.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.server.default_lifetime, DEFAULT_LIFETIME);
        assert_eq!(s.request.scopes, ["payments:write"]);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080/token",
            "http://localhost/token",
            "http://[::1]:9/t",
        ] {
            cc(&format!(
                "token_url = \"{ok}\"\nclient_id = \"c\"\nclient_secret = {{ env = \"S\" }}"
            ))
            .unwrap_or_else(|e| panic!("{ok}: {}", e.message));
        }
        let e = cc(r#"token_url = "http://auth.example.com/token"
            client_id = "c"
            client_secret = { env = "S" }"#)
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("token_url"));
        assert!(e.message.contains("use https://"), "{}", e.message);
        let e = cc(r#"token_url = "https://a.example/token"
            revocation_url = "http://10.0.0.1/revoke"
            client_id = "c"
            client_secret = { env = "S" }"#)
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("revocation_url"));
    }

    #[test]
    fn client_authentication_choices() {
        let e = cc(r#"token_url = "https://a.example/t"
            client_id = "c""#)
        .unwrap_err();
        assert!(
            e.message.contains("needs client authentication"),
            "{}",
            e.message
        );
        let e = cc(r#"token_url = "https://a.example/t"
            client_id = "c"
            auth_method = "client_secret_post""#)
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("client_secret"));
        let s = cc(r#"token_url = "https://a.example/t"
            client_id = "c"
            private_key_file = "/k.pem"
            kid = "key-1""#)
        .unwrap();
        assert_eq!(
            s.server.auth,
            ClientAuth::PrivateKeyJwt {
                key_file: "/k.pem".into(),
                kid: Some("key-1".into()),
                audience: None
            }
        );
        assert_eq!(refused_field(r#"kid = "key-1""#), "kid");
        let e = cc(r#"token_url = "https://a.example/t"
            client_secret = { env = "S" }"#)
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("client_id"));
        assert_eq!(
            refused_field(r#"auth_method = "client_secret_jwt""#),
            "auth_method"
        );
    }

    #[test]
    fn request_parameters() {
        let s = cc(r#"token_url = "https://a.example/t"
            client_id = "c"
            client_secret = { env = "S" }
            audience = "https://api.example.com"
            resource = ["https://api.example.com/", "urn:example:res"]
            params = { tenant = "t1" }"#)
        .unwrap();
        assert_eq!(s.request.audience, ["https://api.example.com"]);
        assert_eq!(s.request.resource.len(), 2);
        assert_eq!(s.request.params, [("tenant".to_string(), "t1".to_string())]);
        for (extra, field) in [
            (r#"params = { grant_type = "password" }"#, "params"),
            (r#"scopes = ["a b"]"#, "scopes"),
            (r#"subject_token_file = "/t""#, "subject_token_file"),
            (r#"refresh_token = "x""#, "refresh_token"),
        ] {
            assert_eq!(refused_field(extra), field, "{extra}");
        }
    }

    #[test]
    fn token_exchange_without_client_secret() {
        let s = parse_token_exchange(
            table(
                r#"token_url = "https://sts.example.com/token"
                subject_token_file = "/var/run/secrets/tokens/sidekey"
                audience = "payments"
                requested_token_type = "urn:ietf:params:oauth:token-type:access_token""#,
            ),
            &cx(),
        )
        .unwrap();
        assert_eq!(s.server.auth, ClientAuth::None);
        assert_eq!(s.server.client_id, None);
        assert_eq!(s.subject_token_type, JWT_TOKEN_TYPE);
        assert_eq!(
            s.subject_token_file,
            Path::new("/var/run/secrets/tokens/sidekey")
        );
        let e = parse_token_exchange(
            table(r#"token_url = "https://sts.example.com/token""#),
            &cx(),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("subject_token_file"));
    }
}
