//! A sidekey presenting a client certificate read from files: the `mtls` credential, a route that presents it, and writing a pair the way a rotation does.

use super::write_atomic;
use std::path::Path;

/// The credential `mtls`: the pair [`install`] writes into `{dir}`.
pub const CREDENTIAL: &str = r#"
[credentials.mtls]
source = "file"
cert = "{dir}/client.pem"
key = "{dir}/client-key.pem"
"#;

/// A `[[routes]]` table `name` presenting the `mtls` certificate to
/// `upstream` (trusting `{dir}/ca.pem`); `at` is its `listen` or `host`
/// line, `extra` any further route keys.
pub fn route(name: &str, at: &str, upstream: &str, extra: &str) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
{at}
upstream = "{upstream}"
ca_file = "{{dir}}/ca.pem"
credential = "mtls"
inject = {{ client_cert = {{}} }}
{extra}
"#
    )
}

/// A whole config: the admin listener, the `mtls` credential and route `r`
/// on a free loopback port to `upstream`, with `route_extra` keys.
pub fn config(upstream: &str, route_extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"
{CREDENTIAL}{}"#,
        route("r", r#"listen = "127.0.0.1:0""#, upstream, route_extra)
    )
}

/// Writes a client certificate and its key into `dir` as a rotation does:
/// the certificate first, then the key, each file replaced atomically.
pub fn install(dir: &Path, pair: &(String, String)) {
    write_atomic(&dir.join("client.pem"), &pair.0);
    write_atomic(&dir.join("client-key.pem"), &pair.1);
}
