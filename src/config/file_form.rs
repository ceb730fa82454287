//! The configuration file as written: serde structs that mirror the TOML, with spans for error locations.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub allow_non_loopback: bool,
    pub admin: Option<AdminFile>,
    pub log: Option<LogFile>,
    #[serde(default)]
    pub credentials: BTreeMap<String, Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteFile>>,
    /// Where generated state (the local CA) is kept.
    pub state_dir: Option<Spanned<String>>,
    pub proxy: Option<Spanned<ProxyFile>>,
    pub transparent: Option<Spanned<TransparentFile>>,
}

/// `[transparent]`: connections redirected by iptables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransparentFile {
    pub listen: Spanned<String>,
    pub unmatched: Option<Spanned<String>>,
}

/// `[proxy]`: the forward proxy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub listen: Spanned<String>,
    pub unmatched: Option<Spanned<String>>,
    pub ca: Option<Spanned<CaFile>>,
    #[serde(default)]
    pub allow_private: Vec<Spanned<String>>,
    pub max_connections: Option<Spanned<u64>>,
    pub header_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaFile {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<Spanned<String>>,
    /// Bearer token required by the mutating endpoints.
    pub token: Option<Spanned<SecretRefFile>>,
    pub max_connections: Option<Spanned<u64>>,
    pub header_timeout: Option<Spanned<String>>,
    /// `Host` names the admin API answers to besides loopback names and its own
    /// address (a Kubernetes service name that Prometheus scrapes, say).
    #[serde(default)]
    pub allowed_hosts: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<Spanned<String>>,
    pub access_log: Option<bool>,
    pub level: Option<Spanned<String>>,
}

/// `{ file = "..." }` or `{ env = "VAR" }`: where a secret that configures a source lives.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRefFile {
    pub file: Option<String>,
    pub env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Spanned<String>,
    pub listen: Option<Spanned<String>>,
    /// A host route: matched by destination through the forward proxy.
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<u64>>,
    /// Optional for a host route (default `https://{host}`).
    pub upstream: Option<Spanned<String>>,
    pub connect_to: Option<Spanned<String>>,
    pub credential: Spanned<String>,
    /// Parsed by the injection forms' registry (`inject::registry`).
    pub inject: Spanned<toml::Table>,
    #[serde(default)]
    pub allow: Vec<Spanned<AllowFile>>,
    pub ca_file: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub max_replay_body: Option<Spanned<u64>>,
    pub max_header_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub refresh_on_403: bool,
    pub revocation_check: Option<Spanned<RevocationCheckFile>>,
    /// Origins of local web pages that may use the route (front-end development).
    #[serde(default)]
    pub allow_browser_origins: Vec<Spanned<String>>,
    /// `Host` names the listener answers to besides loopback names and its own address.
    #[serde(default)]
    pub allowed_hosts: Vec<Spanned<String>>,
    pub max_connections: Option<Spanned<u64>>,
    pub header_timeout: Option<Spanned<String>>,
    pub body_timeout: Option<Spanned<String>>,
    /// Peer UIDs that may use the route (unix sockets: the socket's peer
    /// credentials; TCP on Linux: the kernel's socket table).
    pub allow_uids: Option<Spanned<Vec<u32>>>,
    /// Peer GIDs that may use the route (unix-socket listeners only).
    pub allow_gids: Option<Spanned<Vec<u32>>>,
    /// A token the app sends in `sidekey-caller-token`, stripped before forwarding.
    pub caller_token: Option<Spanned<SecretRefFile>>,
    /// Protocols an HTTP/1.1 `Upgrade` may switch to (default `["websocket"]`).
    pub allow_upgrades: Option<Spanned<Vec<String>>>,
    /// How long an upgraded connection (WebSocket) may carry no byte either way.
    pub upgrade_idle_timeout: Option<Spanned<String>>,
    /// `sidekey exec`: the variable that gets the route's `http://127.0.0.1:PORT`.
    pub env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFile {
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Guarded headers the rule lets through (`x-amz-copy-source`, `x-amz-acl` ...).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Guarded query parameters the rule lets through (`acl`, `tagging` ...).
    #[serde(default)]
    pub query: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationCheckFile {
    #[serde(default = "default_probe_method")]
    pub method: String,
    pub path: String,
    #[serde(default = "default_probe_expect")]
    pub expect_status: Vec<u16>,
    pub after: Option<String>,
}

fn default_probe_method() -> String {
    "GET".into()
}

fn default_probe_expect() -> Vec<u16> {
    vec![401, 403]
}
