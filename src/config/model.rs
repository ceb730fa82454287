//! The checked configuration: typed, validated values the rest of sidekey builds from.

use crate::credential::CredentialConfig;
use crate::credential::secret_ref::SecretRef;
use crate::inject::InjectSpec;
use crate::scope::Scope;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";
/// [`DEFAULT_ADMIN`] as an address.
pub const DEFAULT_ADMIN_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 9901);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_REPLAY_BODY: u64 = 64 * 1024;
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
pub const DEFAULT_PROBE_AFTER: Duration = Duration::from_secs(60);
/// Connections one route's listener holds at once (before the open-file limit lowers it).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Connections the admin listener holds at once.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;
/// Time for a request's headers, from the connection's start or the end of the previous answer.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for a body sidekey reads whole (replay, signing).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time after which an upgraded connection (WebSocket) is closed.
pub const DEFAULT_UPGRADE_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub allow_non_loopback: bool,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub credentials: Vec<CredentialConfig>,
    pub routes: Vec<RouteConfig>,
    /// Where sidekey keeps what it generates (the local CA): 0700.
    pub state_dir: PathBuf,
    /// The forward proxy (`[proxy]`), when configured.
    pub proxy: Option<ProxyConfig>,
    /// Transparent egress (`[transparent]`), when configured.
    pub transparent: Option<TransparentConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub listen: ListenAddr,
    pub token: Option<SecretRef>,
    pub conns: ConnLimits,
    /// Extra `Host` names (lower-case, no port) the admin API answers to.
    pub allowed_hosts: Vec<String>,
}

/// How long a listener waits for a client, and how many clients it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections held at once; past it a new one is refused.
    pub max_connections: usize,
    /// Time for a request's headers, counted from the connection's start or
    /// the end of the previous answer (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub access_log: bool,
    /// A tracing filter ("info", "sidekey=debug"); `RUST_LOG` wins when set.
    pub level: String,
}

/// Parses a log filter ("info", "sidekey=debug") with span field values
/// matched literally, never as regular expressions: a pattern such as
/// `[{f=.*.*.*...}]` would otherwise build an automaton for tens of
/// seconds (found by fuzzing the config check), and sidekey's own filters
/// never need one.
pub fn log_filter(
    directives: &str,
) -> Result<tracing_subscriber::EnvFilter, tracing_subscriber::filter::ParseError> {
    tracing_subscriber::EnvFilter::builder()
        .with_regex(false)
        .parse(directives)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A real upstream: requests go to `scheme://authority{base_path}{path}`.
    Url {
        scheme: http::uri::Scheme,
        authority: http::uri::Authority,
        base_path: String,
    },
    /// The built-in development stand-in: answers with what it received.
    StandIn,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Url {
                scheme,
                authority,
                base_path,
            } => write!(f, "{scheme}://{authority}{base_path}"),
            Upstream::StandIn => f.write_str("stand-in"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub name: String,
    /// The route's own listener; `None` for a host route.
    pub listen: Option<ListenAddr>,
    /// The destination a host route is matched by (forward proxy); `None` for a listener route.
    pub host: Option<HostMatch>,
    /// Dial this address instead of resolving the upstream's name (its name
    /// still goes in SNI, certificate checks and `Host`); port 0 keeps the upstream's port.
    pub connect_to: Option<SocketAddr>,
    pub upstream: Upstream,
    pub credential: String,
    pub inject: InjectSpec,
    pub scope: Scope,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response headers.
    pub timeout: Duration,
    /// Bodies up to this size are kept so a rejected request can be replayed.
    pub max_replay_body: u64,
    pub max_header_bytes: usize,
    /// Treat 403 like 401: the credential may be stale.
    pub refresh_on_403: bool,
    pub revocation_check: Option<RevocationCheck>,
    /// Browser origins (`http://localhost:5173`) whose pages may use the route;
    /// every other `Origin` is refused.
    pub allow_browser_origins: Vec<String>,
    /// Extra `Host` names (lower-case, no port) the listener answers to.
    pub allowed_hosts: Vec<String>,
    pub conns: ConnLimits,
    /// Time for a body sidekey reads whole (kept for replay, hashed for signing).
    pub body_timeout: Duration,
    /// Who may use the route: empty rules let every local caller in.
    pub caller: CallerRules,
    /// Protocols (lower-case) an HTTP/1.1 `Upgrade` may switch to.
    pub allow_upgrades: Vec<String>,
    /// An upgraded connection carrying no byte either way this long is closed.
    pub upgrade_idle_timeout: Duration,
    /// `sidekey exec`: the variable set to the route's `http://127.0.0.1:PORT` for the command.
    pub env: Option<String>,
}

/// Caller authentication of a route. UID and GID lists admit a caller whose
/// peer UID or GID is listed; a token must also be presented when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerRules {
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    pub token: Option<SecretRef>,
}

impl CallerRules {
    /// Whether the caller's identity is checked at all.
    pub fn checks_peer(&self) -> bool {
        !self.allow_uids.is_empty() || !self.allow_gids.is_empty()
    }

    /// For `sidekey check`: the rules in words, never the token.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.allow_uids.is_empty() {
            parts.push(format!("uids {:?}", self.allow_uids));
        }
        if !self.allow_gids.is_empty() {
            parts.push(format!("gids {:?}", self.allow_gids));
        }
        if let Some(t) = &self.token {
            parts.push(format!("token from {}", t.describe()));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// A probe sent with the previous value some time after each rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationCheck {
    pub method: http::Method,
    pub path: String,
    pub expect_status: Vec<u16>,
    pub after: Duration,
}

/// Where `state_dir` is when the config does not say.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/sidekey";

/// What a host route is matched by: the destination's name and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostMatch {
    /// Lower-case DNS name, no trailing dot.
    pub host: String,
    /// The one port it is matched on; `None`: 443 for CONNECT, 80 for plain requests.
    pub port: Option<u16>,
}

impl HostMatch {
    /// Whether a destination `host:port` (host already lower-case) is this route's.
    /// `tls`: reached through CONNECT (default port 443) rather than a plain request (80).
    pub fn matches(&self, host: &str, port: u16, tls: bool) -> bool {
        let want = self.port.unwrap_or(if tls { 443 } else { 80 });
        self.host == host && want == port
    }
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "host {}:{p}", self.host),
            None => write!(f, "host {}", self.host),
        }
    }
}

/// `[proxy]`: the forward proxy the app reaches through `HTTPS_PROXY`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    pub listen: ListenAddr,
    pub unmatched: Unmatched,
    /// The operator's CA; `None`: one generated in `state_dir`.
    pub ca: Option<CaFiles>,
    /// Non-public ranges a tunnel may still reach.
    pub allow_private: Vec<crate::ipnet::IpNet>,
    pub conns: ConnLimits,
    pub max_header_bytes: usize,
}

/// What becomes of a CONNECT to a host no route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// Refused with 403 `no_route`.
    Deny,
    /// Bytes pass through undecrypted, with no credential.
    Tunnel,
}

/// A CA given by the operator: certificate and key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[transparent]`: connections the pod's iptables rules redirect here,
/// routed by their original destination and TLS SNI or `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparentConfig {
    pub listen: SocketAddr,
    pub unmatched: TransparentUnmatched,
}

impl TransparentConfig {
    /// Connections the listener holds at once.
    pub fn max_connections(&self) -> usize {
        DEFAULT_MAX_CONNECTIONS
    }

    /// The forward-proxy settings interception uses when no `[proxy]` is configured.
    pub fn proxy_defaults(&self) -> ProxyConfig {
        ProxyConfig {
            listen: ListenAddr::Tcp(self.listen),
            unmatched: Unmatched::Deny,
            ca: None,
            allow_private: Vec::new(),
            conns: ConnLimits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                header_timeout: DEFAULT_HEADER_TIMEOUT,
            },
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// What becomes of a redirected connection no route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransparentUnmatched {
    /// Passed on as raw TCP to its original destination (the mesh default).
    Passthrough,
    /// Closed.
    Deny,
}
