//! The environment `sidekey exec` gives its command: the proxy and CA-bundle variables, a variable per route that names one, and nothing secret.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Placeholder AWS keys for routes that sign with SigV4: SDKs only sign
/// when they have keys, and sidekey replaces their signature with one made
/// with the real keys. Not secrets; they sign nothing anywhere.
pub const AWS_PLACEHOLDER_KEY_ID: &str = "AKIASIDEKEYEXAMPLE00";
pub const AWS_PLACEHOLDER_SECRET: &str = "sidekey-placeholder-not-a-secret";

/// Variables naming the CA bundle, one per family of clients.
const CA_VARS: [&str; 6] = [
    "SSL_CERT_FILE",       // OpenSSL, Go, Python's ssl, httpx
    "REQUESTS_CA_BUNDLE",  // Python requests
    "CURL_CA_BUNDLE",      // curl
    "NODE_EXTRA_CA_CERTS", // Node (added to its own roots)
    "GIT_SSL_CAINFO",      // git
    "AWS_CA_BUNDLE",       // AWS SDKs and CLI
];

/// Inherited variables that would hand the command a real AWS session
/// beside the placeholder keys.
const AWS_SESSION_VARS: [&str; 2] = ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/// Marks a process image started by `harden`'s handover; not the command's business.
const HANDOVER_MARKER: &str = "SIDEKEY_ENV_HANDOVER_FD";

/// What the command's environment is made from.
pub struct Plan {
    /// The forward proxy's address, when there is one.
    pub proxy: Option<SocketAddr>,
    /// The CA bundle, when the proxy intercepts.
    pub ca_bundle: Option<PathBuf>,
    /// A route's variable and its listener.
    pub routes: Vec<(String, SocketAddr)>,
    pub signs_aws: bool,
}

impl Plan {
    /// The variables sidekey sets, in a stable order.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, val: String| v.push((k.to_owned(), val));
        if let Some(p) = self.proxy {
            let url = format!("http://{p}");
            for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                set(k, url.clone());
            }
            let loopback = "localhost,127.0.0.1,::1".to_owned();
            set("NO_PROXY", loopback.clone());
            set("no_proxy", loopback);
            set("NODE_USE_ENV_PROXY", "1".into());
        }
        if let Some(b) = &self.ca_bundle {
            for k in CA_VARS {
                set(k, b.display().to_string());
            }
        }
        for (var, addr) in &self.routes {
            set(var, format!("http://{addr}"));
        }
        if self.signs_aws {
            set("AWS_ACCESS_KEY_ID", AWS_PLACEHOLDER_KEY_ID.into());
            set("AWS_SECRET_ACCESS_KEY", AWS_PLACEHOLDER_SECRET.into());
        }
        v
    }
}

/// The command's environment: the inherited one without the variables the
/// config reads secrets from (`remove`), then sidekey's own (`set`).
pub fn build(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    remove: &[String],
    set: &[(String, String)],
    signs_aws: bool,
) -> Vec<(OsString, OsString)> {
    let dropped = |name: &OsString| {
        let name = name.to_string_lossy();
        name == HANDOVER_MARKER
            || remove.iter().any(|r| *r == name)
            || set.iter().any(|(k, _)| *k == name)
            || (signs_aws && AWS_SESSION_VARS.contains(&name.as_ref()))
    };
    let mut env: Vec<(OsString, OsString)> = inherited.filter(|(k, _)| !dropped(k)).collect();
    env.extend(set.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// `--env-only`: `export NAME='value'` lines for a shell to eval, then
/// stdout is closed (pointed at /dev/null) so `eval "$(sidekey exec
/// --env-only &)"` returns while sidekey keeps serving.
pub fn print_exports(set: &[(String, String)]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (k, v) in set {
        writeln!(out, "export {k}={}", quoted(v))?;
    }
    writeln!(out, "export SIDEKEY_EXEC_PID={}", std::process::id())?;
    out.flush()?;
    drop(out);
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(())
}

/// A single-quoted shell word.
fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_replaced_variables_leave_the_inherited_environment() {
        let inherited = [
            ("PATH", "/bin"),
            ("API_KEY", "s3cret"),
            ("HTTPS_PROXY", "http://corp:8080"),
            ("AWS_SESSION_TOKEN", "tok"),
            (HANDOVER_MARKER, "3"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let set = vec![("HTTPS_PROXY".to_owned(), "http://127.0.0.1:1".to_owned())];
        let env = build(inherited.into_iter(), &["API_KEY".into()], &set, true);
        let names: Vec<_> = env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(names, ["PATH=/bin", "HTTPS_PROXY=http://127.0.0.1:1"]);
    }

    #[test]
    fn aws_routes_get_placeholder_keys_and_routes_their_variable() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let plan = Plan {
            proxy: None,
            ca_bundle: None,
            routes: vec![("S3_API".into(), addr)],
            signs_aws: true,
        };
        let vars = plan.variables();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("S3_API"), Some("http://127.0.0.1:4000"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some(AWS_PLACEHOLDER_KEY_ID));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some(AWS_PLACEHOLDER_SECRET));
        assert_eq!(get("HTTPS_PROXY"), None, "no [proxy], no proxy variables");
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quoted("a'b"), r"'a'\''b'");
    }
}
