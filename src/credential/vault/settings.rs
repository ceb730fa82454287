//! The keys of `source = "vault"` checked into a [`VaultSpec`]: connection, auth method, what to read.

use super::client::Connection;
use super::fields::{AwsForm, CertForm, Fields};
use crate::credential::secret_ref::SecretRef;
use crate::parse::{FieldError, ParseContext, SecretRefForm, typed};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Bound on one call to Vault.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a KV v2 secret's metadata (or a value without lease) is read again.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Where Kubernetes mounts a pod's service-account token.
pub const KUBERNETES_JWT: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Debug, Clone, PartialEq)]
pub struct VaultSpec {
    pub conn: Connection,
    pub auth: AuthSpec,
    pub target: Target,
    pub poll_interval: Duration,
    /// On SIGTERM: revoke the held lease, and the auth token if sidekey logged in for it
    /// (a token handed over with method `token` is left alone).
    pub revoke_on_shutdown: bool,
}

/// How sidekey logs in. Secrets are read at every login, never kept in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthSpec {
    /// A token handed over (a file a Vault Agent or an operator writes, or an env var).
    Token(SecretRef),
    AppRole {
        mount: String,
        role_id: RoleId,
        secret_id: SecretRef,
        /// The secret_id file holds a response-wrapping token: unwrap it (once).
        wrapped: bool,
    },
    /// `jwt` or `kubernetes`: a role and a JWT read from a file at every login.
    Jwt {
        method: &'static str,
        mount: String,
        role: String,
        jwt_file: PathBuf,
    },
}

/// An AppRole role_id: not a secret by Vault's design, but often delivered as a file.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleId {
    Inline(String),
    From(SecretRef),
}

impl AuthSpec {
    pub fn method(&self) -> &'static str {
        match self {
            AuthSpec::Token(_) => "token",
            AuthSpec::AppRole { .. } => "approle",
            AuthSpec::Jwt { method, .. } => method,
        }
    }
}

/// What the credential is.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A KV version 2 secret; a new version is a rotation.
    Kv {
        mount: String,
        path: String,
        fields: Fields,
    },
    /// `GET path` (dynamic secrets: database, identity OIDC tokens...).
    Read { path: String, fields: Fields },
    /// `PUT path` with `data` (PKI issue, AWS STS...).
    Write {
        path: String,
        data: Map<String, Value>,
        fields: Fields,
    },
}

impl Target {
    pub fn fields(&self) -> &Fields {
        match self {
            Target::Kv { fields, .. }
            | Target::Read { fields, .. }
            | Target::Write { fields, .. } => fields,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Kv {
                mount,
                path,
                fields,
            } => {
                format!("kv {mount}/{path} {}", fields.describe())
            }
            Target::Read { path, fields } => format!("read {path} {}", fields.describe()),
            Target::Write { path, fields, .. } => format!("write {path} {}", fields.describe()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    address: String,
    ca_file: Option<String>,
    namespace: Option<String>,
    timeout: Option<String>,
    auth: AuthForm,
    kv: Option<KvForm>,
    read: Option<ReadForm>,
    write: Option<WriteForm>,
    poll_interval: Option<String>,
    #[serde(default)]
    revoke_on_shutdown: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthForm {
    method: String,
    mount: Option<String>,
    token: Option<SecretRefForm>,
    role_id: Option<RoleIdForm>,
    secret_id: Option<SecretRefForm>,
    #[serde(default)]
    secret_id_wrapped: bool,
    role: Option<String>,
    jwt_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RoleIdForm {
    Inline(String),
    From(SecretRefForm),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KvForm {
    mount: Option<String>,
    path: String,
    field: Option<String>,
    aws: Option<AwsForm>,
    cert: Option<CertForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadForm {
    path: String,
    field: Option<String>,
    aws: Option<AwsForm>,
    cert: Option<CertForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteForm {
    path: String,
    #[serde(default)]
    data: Map<String, Value>,
    field: Option<String>,
    aws: Option<AwsForm>,
    cert: Option<CertForm>,
}

/// `source = "vault"`.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<VaultSpec, FieldError> {
    let f: Form = typed(table)?;
    let address = crate::credential::oauth2::endpoint_url("address", &f.address)?;
    let ca_file = f.ca_file.as_deref().map(|c| cx.path(c));
    if let Some(p) = &ca_file {
        std::fs::read(p)
            .map_err(|e| FieldError::on("ca_file", format!("cannot read {}: {e}", p.display())))?;
    }
    let timeout = positive(cx, "timeout", f.timeout.as_deref(), DEFAULT_TIMEOUT)?;
    let poll_interval = positive(
        cx,
        "poll_interval",
        f.poll_interval.as_deref(),
        DEFAULT_POLL_INTERVAL,
    )?;
    if f.namespace.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(FieldError::on("namespace", "namespace is empty"));
    }
    let auth = auth(f.auth, cx)?;
    let target = target(f.kv, f.read, f.write)?;
    Ok(VaultSpec {
        conn: Connection {
            address,
            ca_file,
            namespace: f.namespace,
            timeout,
        },
        auth,
        target,
        poll_interval,
        revoke_on_shutdown: f.revoke_on_shutdown,
    })
}

fn positive(
    cx: &ParseContext<'_>,
    field: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, FieldError> {
    let d = cx.duration(field, text)?.unwrap_or(default);
    if d.is_zero() {
        return Err(FieldError::on(
            field,
            format!("`{field}` must be more than 0"),
        ));
    }
    Ok(d)
}

fn auth(a: AuthForm, cx: &ParseContext<'_>) -> Result<AuthSpec, FieldError> {
    let method = a.method.as_str();
    let refuse = |key: &str, set: bool| -> Result<(), FieldError> {
        if set {
            Err(FieldError::on(
                "auth",
                format!("`{key}` does not go with auth method `{method}`"),
            ))
        } else {
            Ok(())
        }
    };
    let mount = a.mount.clone().unwrap_or_else(|| method.to_owned());
    if mount.trim().is_empty() || mount.contains("..") {
        return Err(FieldError::on("auth", "`mount` is not an auth mount path"));
    }
    let spec = match method {
        "token" => {
            refuse("mount", a.mount.is_some())?;
            refuse("role_id", a.role_id.is_some())?;
            refuse("secret_id", a.secret_id.is_some())?;
            refuse("role", a.role.is_some())?;
            refuse("jwt_file", a.jwt_file.is_some())?;
            let token = a.token.as_ref().ok_or_else(|| {
                FieldError::on(
                    "auth",
                    "auth method `token` needs token = { file = \"...\" } or { env = \"VAR\" }",
                )
            })?;
            AuthSpec::Token(cx.secret_ref("auth", token)?)
        }
        "approle" => {
            refuse("token", a.token.is_some())?;
            refuse("role", a.role.is_some())?;
            refuse("jwt_file", a.jwt_file.is_some())?;
            let role_id = match a.role_id {
                Some(RoleIdForm::Inline(s)) if !s.trim().is_empty() => RoleId::Inline(s),
                Some(RoleIdForm::From(r)) => RoleId::From(cx.secret_ref("auth", &r)?),
                _ => {
                    return Err(FieldError::on(
                        "auth",
                        "auth method `approle` needs role_id = \"...\" (or { file } / { env })",
                    ));
                }
            };
            let secret_id = a.secret_id.as_ref().ok_or_else(|| {
                FieldError::on(
                    "auth",
                    "auth method `approle` needs secret_id = { file = \"...\" } or { env = \"VAR\" }",
                )
            })?;
            AuthSpec::AppRole {
                mount,
                role_id,
                secret_id: cx.secret_ref("auth", secret_id)?,
                wrapped: a.secret_id_wrapped,
            }
        }
        "jwt" | "kubernetes" => {
            refuse("token", a.token.is_some())?;
            refuse("role_id", a.role_id.is_some())?;
            refuse("secret_id", a.secret_id.is_some())?;
            let role = a.role.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
                FieldError::on("auth", format!("auth method `{method}` needs `role`"))
            })?;
            let jwt_file = match (method, a.jwt_file) {
                (_, Some(p)) => cx.path(&p),
                ("kubernetes", None) => PathBuf::from(KUBERNETES_JWT),
                _ => {
                    return Err(FieldError::on(
                        "auth",
                        "auth method `jwt` needs `jwt_file` (read again at every login)",
                    ));
                }
            };
            AuthSpec::Jwt {
                method: if method == "jwt" { "jwt" } else { "kubernetes" },
                mount,
                role,
                jwt_file,
            }
        }
        other => {
            return Err(FieldError::on(
                "auth",
                format!(
                    "auth method `{other}` is not known; use token, approle, jwt or kubernetes"
                ),
            ));
        }
    };
    if method != "approle" && a.secret_id_wrapped {
        return Err(FieldError::on(
            "auth",
            "`secret_id_wrapped` goes with auth method `approle`",
        ));
    }
    Ok(spec)
}

fn target(
    kv: Option<KvForm>,
    read: Option<ReadForm>,
    write: Option<WriteForm>,
) -> Result<Target, FieldError> {
    let fields = |key: &str, field, aws, cert| {
        Fields::from_form(field, aws, cert).map_err(|m| FieldError::on(key, m))
    };
    let path = |key: &str, p: String| -> Result<String, FieldError> {
        let p = p.trim().trim_matches('/').to_owned();
        if p.is_empty() || p.split('/').any(|s| s == ".." || s == ".") {
            return Err(FieldError::on(key, format!("`{p}` is not a Vault path")));
        }
        Ok(p)
    };
    match (kv, read, write) {
        (Some(k), None, None) => Ok(Target::Kv {
            mount: path("kv", k.mount.unwrap_or_else(|| "secret".into()))?,
            path: path("kv", k.path)?,
            fields: fields("kv", k.field, k.aws, k.cert)?,
        }),
        (None, Some(r), None) => Ok(Target::Read {
            path: path("read", r.path)?,
            fields: fields("read", r.field, r.aws, r.cert)?,
        }),
        (None, None, Some(w)) => Ok(Target::Write {
            path: path("write", w.path)?,
            data: w.data,
            fields: fields("write", w.field, w.aws, w.cert)?,
        }),
        (None, None, None) => Err(FieldError {
            field: None,
            message: "say what to read: kv = { mount, path, field }, read = { path, field } or write = { path, data, field }".into(),
        }),
        _ => Err(FieldError {
            field: None,
            message: "write only one of `kv`, `read` and `write`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse_text(text: &str) -> Result<VaultSpec, FieldError> {
        parse(
            text.parse().unwrap(),
            &ParseContext {
                base_dir: Path::new("/etc/sidekey"),
            },
        )
    }

    #[test]
    fn kv_with_token_auth() {
        let s = parse_text(
            r#"address = "https://vault.example:8200"
            namespace = "team-a"
            auth = { method = "token", token = { file = "vault-token" } }
            kv = { path = "payments/stripe", field = "api_key" }
            poll_interval = "30s""#,
        )
        .unwrap();
        assert_eq!(
            s.auth,
            AuthSpec::Token(SecretRef::File("/etc/sidekey/vault-token".into()))
        );
        assert_eq!(
            s.target,
            Target::Kv {
                mount: "secret".into(),
                path: "payments/stripe".into(),
                fields: Fields::Token("api_key".into())
            }
        );
        assert_eq!(s.poll_interval, Duration::from_secs(30));
        assert_eq!(s.conn.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn auth_methods() {
        let s = parse_text(
            r#"address = "http://127.0.0.1:8200"
            auth = { method = "approle", role_id = "r-1", secret_id = { env = "SID" }, secret_id_wrapped = true }
            read = { path = "database/creds/app", field = "password" }"#,
        )
        .unwrap();
        assert!(
            matches!(s.auth, AuthSpec::AppRole { wrapped: true, ref mount, .. } if mount == "approle")
        );
        let s = parse_text(
            r#"address = "https://v.example"
            auth = { method = "kubernetes", role = "app" }
            write = { path = "aws/sts/deploy", data = { ttl = "15m" }, aws = { session_token = "security_token" } }"#,
        )
        .unwrap();
        assert_eq!(
            s.auth,
            AuthSpec::Jwt {
                method: "kubernetes",
                mount: "kubernetes".into(),
                role: "app".into(),
                jwt_file: KUBERNETES_JWT.into()
            }
        );
        assert_eq!(
            s.target.fields().kind(),
            crate::material::MaterialKind::AwsKeys
        );
        let s = parse_text(
            r#"address = "https://v.example"
            auth = { method = "token", token = { env = "T" } }
            write = { path = "pki/issue/client", data = { common_name = "app" }, cert = {} }"#,
        )
        .unwrap();
        assert_eq!(
            s.target.fields(),
            &Fields::Cert {
                certificate: "certificate".into(),
                key: "private_key".into(),
                chain: None
            }
        );
    }

    #[test]
    fn refusals() {
        for (text, needle) in [
            (
                r#"address = "http://vault.example:8200"
                auth = { method = "token", token = { env = "T" } }
                kv = { path = "a", field = "f" }"#,
                "use https://",
            ),
            (
                r#"address = "https://v"
                auth = { method = "jwt", role = "r" }
                kv = { path = "a", field = "f" }"#,
                "jwt_file",
            ),
            (
                r#"address = "https://v"
                auth = { method = "token", token = { env = "T" } }
                kv = { path = "a" }"#,
                "missing `field`",
            ),
            (
                r#"address = "https://v"
                auth = { method = "token", token = { env = "T" } }
                kv = { path = "a", field = "f" }
                read = { path = "b", field = "f" }"#,
                "only one of",
            ),
            (
                r#"address = "https://v"
                auth = { method = "ldap" }
                kv = { path = "a", field = "f" }"#,
                "not known",
            ),
            (
                r#"address = "https://v"
                auth = { method = "token", token = { env = "T" }, role = "x" }
                kv = { path = "a", field = "f" }"#,
                "does not go with",
            ),
            (
                r#"address = "https://v"
                auth = { method = "token", token = { env = "T" } }
                read = { path = "pki/cert/ca", field = "certificate", cert = {} }"#,
                "only one of `field`, `aws` and `cert`",
            ),
        ] {
            let e = parse_text(text).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
    }
}
