//! Stage two of loading: turns the file form into a checked `Config`, locating every problem.

use super::error::{ConfigErrors, Reporter};
use super::file_form::{FileConfig, RouteFile, SecretRefFile};
use super::model::*;
use super::origin as browser;
use crate::credential::registry;
use crate::credential::{CredentialConfig, secret_ref::SecretRef};
use crate::guard::Guards;
use crate::inject::SigV4Spec;
use crate::material::MaterialKind;
use crate::parse::{FieldError, ParseContext};
use crate::scope::Scope;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Keys every credential table may hold, whatever its source.
const COMMON_KEYS: &[&str] = &[
    "source",
    "max_age",
    "enforce_max_age",
    "min_refresh_interval",
];

pub fn check(path: &Path, text: &str, form: FileConfig) -> Result<Config, ConfigErrors> {
    let mut r = Reporter::new(path, text);
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cx = ParseContext { base_dir };

    let admin = admin(&mut r, &cx, &form);
    let log = log(&mut r, &form);

    let mut credentials = Vec::new();
    // Names defined, even by a table that failed its own checks (already
    // reported): a route naming one is not also "undefined".
    let defined: Vec<String> = form.credentials.keys().cloned().collect();
    for (name, table) in form.credentials {
        if let Some(c) = credential(&mut r, &cx, name, table) {
            credentials.push(c);
        }
    }

    let mut routes = Vec::new();
    let mut listeners: HashMap<ListenAddr, String> = HashMap::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    listeners.insert(admin.listen.clone(), "the admin listener".into());
    for spanned in form.routes {
        let span = spanned.span();
        let rf = spanned.into_inner();
        if names.insert(rf.name.get_ref().clone(), ()).is_some() {
            r.at(
                rf.name.span(),
                format!("two routes are named `{}`", rf.name.get_ref()),
            );
        }
        if !defined.contains(rf.credential.get_ref()) {
            let known: Vec<&str> = defined.iter().map(String::as_str).collect();
            r.at(
                rf.credential.span(),
                format!(
                    "route `{}` uses credential `{}`, which is not defined; add a [credentials.{}] table{}",
                    rf.name.get_ref(),
                    rf.credential.get_ref(),
                    rf.credential.get_ref(),
                    if known.is_empty() { String::new() } else { format!(" (defined: {})", known.join(", ")) }
                ),
            );
        }
        let listen_span = rf.listen.as_ref().map_or(span.clone(), |l| l.span());
        let host_span = rf.host.as_ref().map_or(span.clone(), |h| h.span());
        let inject_span = rf.inject.span();
        if let Some(route) = route(&mut r, &cx, rf, span, form.allow_non_loopback) {
            if let Some(m) = inject_mismatch(&route, &credentials) {
                r.at(inject_span, m);
            }
            if let Some(h) = &route.host {
                let same = routes.iter().find(|o: &&RouteConfig| {
                    o.host
                        .as_ref()
                        .is_some_and(|o| o.host == h.host && o.port == h.port)
                });
                if let Some(o) = same {
                    r.at(
                        host_span.clone(),
                        format!("routes `{}` and `{}` both match {h}", o.name, route.name),
                    );
                }
                if form.proxy.is_none() && form.transparent.is_none() {
                    r.at(host_span, format!("route `{}` is matched by host, which only the forward proxy does: add a [proxy] table with `listen = \"127.0.0.1:3128\"` (or a [transparent] table for egress redirected by iptables)", route.name));
                }
            }
            // Port 0 asks the OS for a free port: never a clash.
            let fixed = route
                .listen
                .as_ref()
                .filter(|l| !matches!(l, ListenAddr::Tcp(a) if a.port() == 0));
            if let Some(listen) = fixed {
                if let Some(other) =
                    listeners.insert(listen.clone(), format!("route `{}`", route.name))
                {
                    r.at(
                        listen_span,
                        format!(
                            "route `{}` listens on {}, which {} already uses",
                            route.name, listen, other
                        ),
                    );
                }
            }
            routes.push(route);
        }
    }
    if routes.is_empty() && !r.has_errors() {
        r.whole("no [[routes]] defined: sidekey would have nothing to do");
    }
    let state_dir = form
        .state_dir
        .as_ref()
        .map_or_else(|| DEFAULT_STATE_DIR.into(), |d| cx.path(d.get_ref()));
    let proxy = form
        .proxy
        .as_ref()
        .and_then(|p| proxy(&mut r, &cx, p, form.allow_non_loopback));
    if let Some(p) = &proxy {
        let fixed = !matches!(&p.listen, ListenAddr::Tcp(a) if a.port() == 0);
        if let Some(other) = fixed.then(|| listeners.get(&p.listen)).flatten() {
            if let Some(f) = &form.proxy {
                r.at(
                    f.span(),
                    format!(
                        "[proxy] listens on {}, which {other} already uses",
                        p.listen
                    ),
                );
            }
        }
    }
    let transparent = form
        .transparent
        .as_ref()
        .and_then(|t| transparent(&mut r, t, &listeners, form.allow_non_loopback));
    r.finish(Config {
        path: path.to_owned(),
        allow_non_loopback: form.allow_non_loopback,
        admin,
        log,
        credentials,
        routes,
        state_dir,
        proxy,
        transparent,
    })
}

/// `[transparent]`: the listener iptables redirects to, and what it does with unrouted destinations.
fn transparent(
    r: &mut Reporter<'_>,
    t: &Spanned<super::file_form::TransparentFile>,
    listeners: &HashMap<ListenAddr, String>,
    allow_non_loopback: bool,
) -> Option<TransparentConfig> {
    let f = t.get_ref();
    let unmatched = match f.unmatched.as_ref().map(|u| (u, u.get_ref().as_str())) {
        None | Some((_, "passthrough")) => TransparentUnmatched::Passthrough,
        Some((_, "deny")) => TransparentUnmatched::Deny,
        Some((u, other)) => {
            r.at(
                u.span(),
                format!("[transparent] unmatched `{other}` is not known; use \"passthrough\" or \"deny\""),
            );
            TransparentUnmatched::Passthrough
        }
    };
    let listen = match listen_addr(r, &f.listen, allow_non_loopback)? {
        ListenAddr::Tcp(a) => a,
        ListenAddr::Unix(_) => {
            r.at(f.listen.span(), "[transparent] listen must be a TCP address (iptables redirects to a port): \"127.0.0.1:15001\"");
            return None;
        }
    };
    if listen.port() != 0 {
        if let Some(other) = listeners.get(&ListenAddr::Tcp(listen)) {
            r.at(
                t.span(),
                format!("[transparent] listens on {listen}, which {other} already uses"),
            );
        }
    }
    Some(TransparentConfig { listen, unmatched })
}

/// `[proxy]`: the forward proxy's listener, what it does with unrouted hosts, its CA.
fn proxy(
    r: &mut Reporter<'_>,
    cx: &ParseContext<'_>,
    p: &Spanned<super::file_form::ProxyFile>,
    allow_non_loopback: bool,
) -> Option<ProxyConfig> {
    let f = p.get_ref();
    let listen = listen_addr(r, &f.listen, allow_non_loopback);
    let unmatched = match f.unmatched.as_ref().map(|u| (u, u.get_ref().as_str())) {
        None | Some((_, "deny")) => Unmatched::Deny,
        Some((_, "tunnel")) => Unmatched::Tunnel,
        Some((u, other)) => {
            r.at(
                u.span(),
                format!("[proxy] unmatched `{other}` is not known; use \"deny\" or \"tunnel\""),
            );
            Unmatched::Deny
        }
    };
    let ca = f.ca.as_ref().map(|c| {
        let files = CaFiles {
            cert: cx.path(&c.get_ref().cert),
            key: cx.path(&c.get_ref().key),
        };
        let mut pems = Vec::new();
        for (what, path) in [("cert", &files.cert), ("key", &files.key)] {
            match std::fs::read_to_string(path) {
                Ok(pem) => pems.push(pem),
                Err(e) => r.at(
                    c.span(),
                    format!("[proxy] ca {what}: cannot read {}: {e}", path.display()),
                ),
            }
        }
        if let [cert, key] = &pems[..] {
            if let Err(why) = crate::tls::ca::key_matches_cert(cert, key) {
                r.at(
                    c.span(),
                    format!(
                        "[proxy] ca: key {} with certificate {}: {why}",
                        files.key.display(),
                        files.cert.display()
                    ),
                );
            }
        }
        files
    });
    let allow_private = f
        .allow_private
        .iter()
        .filter_map(|a| {
            crate::ipnet::IpNet::parse(a.get_ref())
                .map_err(|m| r.at(a.span(), format!("[proxy] allow_private: {m}")))
                .ok()
        })
        .collect();
    let conns = ConnLimits {
        max_connections: f
            .max_connections
            .as_ref()
            .map_or(DEFAULT_MAX_CONNECTIONS, |m| {
                count(r, m, "[proxy] max_connections")
            }),
        header_timeout: humane(
            r,
            f.header_timeout.as_ref(),
            DEFAULT_HEADER_TIMEOUT,
            "[proxy] header_timeout",
        ),
    };
    Some(ProxyConfig {
        listen: listen?,
        unmatched,
        ca,
        allow_private,
        conns,
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
    })
}

/// A host route's destination name: a DNS name, lower-cased, no port, no wildcard.
fn host_name(r: &mut Reporter<'_>, name: &str, h: &Spanned<String>) -> Option<String> {
    let text = h
        .get_ref()
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if text.parse::<std::net::IpAddr>().is_ok() {
        r.at(h.span(), format!("route `{name}`: host `{text}` is an IP address; a host route needs a DNS name (the local CA's name constraints list DNS names)"));
        return None;
    }
    if text.is_empty() || text.len() > 253 || !text.split('.').all(label_ok) {
        r.at(h.span(), format!("route `{name}`: host `{}` is not a DNS name; write it like \"api.github.com\" (no scheme, port or wildcard; the port goes in `port`)", h.get_ref()));
        return None;
    }
    Some(text)
}

fn admin(r: &mut Reporter<'_>, cx: &ParseContext<'_>, form: &FileConfig) -> AdminConfig {
    let admin = form.admin.as_ref();
    let listen = match admin.and_then(|a| a.listen.as_ref()) {
        Some(l) => listen_addr(r, l, form.allow_non_loopback)
            .unwrap_or(ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 9901)))),
        None => ListenAddr::Tcp(std::net::SocketAddr::from(DEFAULT_ADMIN_ADDR)),
    };
    let token = admin
        .and_then(|a| a.token.as_ref())
        .and_then(|t| secret_ref(r, cx, t, "[admin] token"));
    let conns = ConnLimits {
        max_connections: admin
            .and_then(|a| a.max_connections.as_ref())
            .map_or(DEFAULT_ADMIN_MAX_CONNECTIONS, |m| {
                count(r, m, "[admin] max_connections")
            }),
        header_timeout: humane(
            r,
            admin.and_then(|a| a.header_timeout.as_ref()),
            DEFAULT_HEADER_TIMEOUT,
            "[admin] header_timeout",
        ),
    };
    let allowed_hosts = admin
        .map(|a| a.allowed_hosts.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|h| {
            browser::parse_host(h.get_ref())
                .map_err(|m| r.at(h.span(), format!("[admin] allowed_hosts: {m}")))
                .ok()
        })
        .collect();
    AdminConfig {
        listen,
        token,
        conns,
        allowed_hosts,
    }
}

/// A humane duration, or `default` when absent (an error is reported at its span).
fn humane(
    r: &mut Reporter<'_>,
    v: Option<&Spanned<String>>,
    default: Duration,
    what: &str,
) -> Duration {
    match v {
        None => default,
        Some(s) => match crate::duration::parse(s.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                r.at(s.span(), format!("{what}: must be longer than zero"));
                default
            }
            Err(m) => {
                r.at(s.span(), format!("{what}: {m}"));
                default
            }
        },
    }
}

/// A connection count of at least one.
fn count(r: &mut Reporter<'_>, v: &Spanned<u64>, what: &str) -> usize {
    match usize::try_from(*v.get_ref()) {
        Ok(n) if n > 0 => n,
        _ => {
            r.at(v.span(), format!("{what}: must be at least 1"));
            1
        }
    }
}

fn log(r: &mut Reporter<'_>, form: &FileConfig) -> LogConfig {
    let log = form.log.as_ref();
    let format = match log.and_then(|l| l.format.as_ref()) {
        None => LogFormat::Text,
        Some(f) => match f.get_ref().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                r.at(
                    f.span(),
                    format!("log format `{other}` is not known; use \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        },
    };
    let level = match log.and_then(|l| l.level.as_ref()) {
        None => "info".to_string(),
        Some(l) => {
            if super::model::log_filter(l.get_ref()).is_err() {
                r.at(
                    l.span(),
                    format!(
                        "log level `{}` is not a valid filter (try \"info\" or \"sidekey=debug\")",
                        l.get_ref()
                    ),
                );
            }
            l.get_ref().clone()
        }
    };
    LogConfig {
        format,
        access_log: log.and_then(|l| l.access_log).unwrap_or(true),
        level,
    }
}

fn credential(
    r: &mut Reporter<'_>,
    cx: &ParseContext<'_>,
    name: String,
    table: Spanned<BTreeMap<String, Spanned<toml::Value>>>,
) -> Option<CredentialConfig> {
    let table_span = table.span();
    let table = table.into_inner();
    let spans: HashMap<String, Range<usize>> =
        table.iter().map(|(k, v)| (k.clone(), v.span())).collect();
    let span_of = |field: Option<&str>| {
        field
            .and_then(|f| spans.get(f).cloned())
            .unwrap_or(table_span.clone())
    };
    let Some(source) = table.get("source") else {
        r.at(
            table_span,
            format!(
                "credential `{name}` has no `source` (one of {})",
                registry::names()
            ),
        );
        return None;
    };
    let Some(kind) = source.get_ref().as_str().map(str::to_owned) else {
        r.at(source.span(), "`source` must be a string");
        return None;
    };
    let mut rest = toml::Table::new();
    let mut max_age = None;
    let mut enforce_max_age = false;
    let mut min_refresh_interval = crate::credential::rejection::DEFAULT_MIN_REFRESH_INTERVAL;
    for (key, value) in table {
        let span = value.span();
        match (key.as_str(), value.into_inner()) {
            ("source", _) => {}
            ("max_age", toml::Value::String(s)) => match crate::duration::parse(&s) {
                Ok(d) => max_age = Some(d),
                Err(m) => r.at(span, format!("credential `{name}`: max_age: {m}")),
            },
            ("enforce_max_age", toml::Value::Boolean(b)) => enforce_max_age = b,
            ("min_refresh_interval", toml::Value::String(s)) => match super::duration::parse(&s) {
                Ok(d) => min_refresh_interval = d,
                Err(m) => r.at(
                    span,
                    format!("credential `{name}`: min_refresh_interval: {m}"),
                ),
            },
            (k, _) if COMMON_KEYS.contains(&k) => r.at(
                span,
                format!("credential `{name}`: `{k}` has the wrong type"),
            ),
            (k, v) => {
                rest.insert(k.to_owned(), v);
            }
        }
    }
    if enforce_max_age && max_age.is_none() {
        r.at(
            span_of(Some("enforce_max_age")),
            format!("credential `{name}`: enforce_max_age needs a max_age"),
        );
    }
    match registry::parse(&kind, rest, cx) {
        Ok(source) => Some(CredentialConfig {
            name,
            source,
            max_age,
            enforce_max_age,
            min_refresh_interval,
        }),
        Err(FieldError { field, message }) => {
            r.at(
                span_of(field.as_deref()),
                format!("credential `{name}` (source {kind}): {message}"),
            );
            None
        }
    }
}

/// A `{ file | env }` secret reference; a file must be readable now.
fn secret_ref(
    r: &mut Reporter<'_>,
    cx: &ParseContext<'_>,
    t: &Spanned<SecretRefFile>,
    what: &str,
) -> Option<SecretRef> {
    let form = crate::parse::SecretRefForm {
        file: t.get_ref().file.clone(),
        env: t.get_ref().env.clone(),
    };
    let sref = cx
        .secret_ref("token", &form)
        .map_err(|e| r.at(t.span(), format!("{what}: {}", e.message)))
        .ok()?;
    if let SecretRef::File(_) = &sref {
        if let Err(e) = sref.read_blocking() {
            r.at(t.span(), format!("{what}: {e}"));
        }
    }
    Some(sref)
}

/// `allow_uids`, `allow_gids` and `caller_token` of a route.
fn caller(
    r: &mut Reporter<'_>,
    cx: &ParseContext<'_>,
    rf: &RouteFile,
    listen: Option<&ListenAddr>,
    name: &str,
) -> CallerRules {
    let list =
        |v: &Option<Spanned<Vec<u32>>>| v.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default();
    let rules = CallerRules {
        allow_uids: list(&rf.allow_uids),
        allow_gids: list(&rf.allow_gids),
        token: rf
            .caller_token
            .as_ref()
            .and_then(|t| secret_ref(r, cx, t, &format!("route `{name}`: caller_token"))),
    };
    for (key, v) in [
        ("allow_uids", &rf.allow_uids),
        ("allow_gids", &rf.allow_gids),
    ] {
        if let Some(l) = v.as_ref().filter(|l| l.get_ref().is_empty()) {
            r.at(l.span(), format!("route `{name}`: {key} is empty, which would refuse every caller; remove the key to allow all local callers"));
        }
    }
    if let (Some(g), Some(ListenAddr::Tcp(_))) = (rf.allow_gids.as_ref(), listen) {
        r.at(g.span(), format!("route `{name}`: allow_gids needs a unix-socket listener (listen = \"unix:...\"): the kernel's TCP socket table records only a socket's UID; use allow_uids"));
    }
    if let (Some(u), Some(ListenAddr::Tcp(_))) = (rf.allow_uids.as_ref(), listen) {
        if !cfg!(target_os = "linux") {
            r.at(u.span(), format!("route `{name}`: allow_uids on a TCP listener needs Linux's socket table; use a unix-socket listener"));
        }
    }
    rules
}

fn route(
    r: &mut Reporter<'_>,
    cx: &ParseContext<'_>,
    rf: RouteFile,
    span: Range<usize>,
    allow_non_loopback: bool,
) -> Option<RouteConfig> {
    let name = rf.name.get_ref().clone();
    let listen = rf
        .listen
        .as_ref()
        .map(|l| listen_addr(r, l, allow_non_loopback).ok_or(()));
    let host = rf.host.as_ref().map(|h| host_name(r, &name, h).ok_or(()));
    let port = match &rf.port {
        None => None,
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(n) if n > 0 && rf.host.is_some() => Some(n),
            Ok(n) if n > 0 => {
                r.at(p.span(), format!("route `{name}`: `port` goes with `host` (a host route); a listener route's port is in `listen`"));
                None
            }
            _ => {
                r.at(p.span(), format!("route `{name}`: port must be 1 to 65535"));
                None
            }
        },
    };
    let (listen, host) = match (listen, host) {
        (Some(_), Some(_)) => {
            r.at(span.clone(), format!("route `{name}` has both `listen` and `host`; a route is reached either on its own listener or by destination through [proxy], not both"));
            (Err(()), Err(()))
        }
        (None, None) => {
            r.at(span.clone(), format!("route `{name}` needs `listen` (its own listener, \"127.0.0.1:8081\") or `host` (matched by destination through [proxy])"));
            (Err(()), Err(()))
        }
        (l, h) => (
            l.transpose(),
            h.transpose()
                .map(|h| h.map(|host| HostMatch { host, port })),
        ),
    };
    let upstream = match (&rf.upstream, &host) {
        (Some(u), _) => upstream(r, u),
        (None, Ok(Some(h))) => Some(Upstream::Url {
            scheme: http::uri::Scheme::HTTPS,
            authority: match h.port {
                Some(p) => format!("{}:{p}", h.host).parse().ok()?,
                None => h.host.parse().ok()?,
            },
            base_path: String::new(),
        }),
        (None, Ok(None)) => {
            r.at(span.clone(), format!("route `{name}` needs an `upstream` (\"https://api.example.com\" or \"stand-in\")"));
            None
        }
        (None, Err(())) => None,
    };
    let connect_to = rf.connect_to.as_ref().and_then(|c| {
        let t = c.get_ref().trim();
        t.parse::<SocketAddr>()
            .or_else(|_| {
                t.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 0))
            })
            .map_err(|_| {
                r.at(
                    c.span(),
                    format!("route `{name}`: connect_to `{t}` is not an IP address or IP:port"),
                )
            })
            .ok()
    });
    let inject = crate::inject::registry::parse(rf.inject.get_ref().clone())
        .map_err(|m| r.at(rf.inject.span(), format!("route `{name}`: inject: {m}")))
        .ok();
    let mut scope = Scope::default();
    scope.set_guards(match &inject {
        Some(i) => match i.downcast::<SigV4Spec>() {
            Some(s) if matches!(s.service.as_str(), "s3" | "s3express") => Guards::S3,
            Some(_) => Guards::Aws,
            None => Guards::Plain,
        },
        None => Guards::Plain,
    });
    for rule in &rf.allow {
        let a = rule.get_ref();
        if let Err(m) = scope.add_guarded_rule(&a.methods, &a.paths, &a.headers, &a.query) {
            r.at(rule.span(), format!("route `{name}`: allow: {m}"));
        }
    }
    let dur = |r: &mut Reporter<'_>, v: &Option<Spanned<String>>, default| match v {
        None => default,
        Some(s) => crate::duration::parse(s.get_ref()).unwrap_or_else(|m| {
            r.at(s.span(), format!("route `{name}`: {m}"));
            default
        }),
    };
    let connect_timeout = dur(r, &rf.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    let timeout = dur(r, &rf.timeout, DEFAULT_TIMEOUT);
    let ca_file = rf.ca_file.as_ref().map(|c| {
        let p = cx.path(c.get_ref());
        if let Err(e) = std::fs::read(&p) {
            r.at(
                c.span(),
                format!("route `{name}`: cannot read ca_file {}: {e}", p.display()),
            );
        }
        p
    });
    let revocation_check = rf.revocation_check.as_ref().and_then(|rc| {
        let c = rc.get_ref();
        let method = http::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes());
        let after = c.after.as_deref().map(crate::duration::parse).transpose();
        match (method, after) {
            (Ok(method), Ok(after)) if c.path.starts_with('/') && !c.expect_status.is_empty() => Some(RevocationCheck {
                method,
                path: c.path.clone(),
                expect_status: c.expect_status.clone(),
                after: after.unwrap_or(DEFAULT_PROBE_AFTER),
            }),
            _ => {
                r.at(rc.span(), format!("route `{name}`: revocation_check needs a method, a path starting with `/`, a non-empty expect_status and a humane `after`"));
                None
            }
        }
    });
    let listed = |r: &mut Reporter<'_>,
                  list: &[Spanned<String>],
                  parse: fn(&str) -> Result<String, String>| {
        list.iter()
            .filter_map(|v| {
                parse(v.get_ref())
                    .map_err(|m| r.at(v.span(), format!("route `{name}`: {m}")))
                    .ok()
            })
            .collect::<Vec<_>>()
    };
    let allow_browser_origins = listed(r, &rf.allow_browser_origins, browser::parse_origin);
    let allowed_hosts = listed(r, &rf.allowed_hosts, browser::parse_host);
    let _ = span;
    let conns = ConnLimits {
        max_connections: rf
            .max_connections
            .as_ref()
            .map_or(DEFAULT_MAX_CONNECTIONS, |m| {
                count(r, m, &format!("route `{name}`: max_connections"))
            }),
        header_timeout: humane(
            r,
            rf.header_timeout.as_ref(),
            DEFAULT_HEADER_TIMEOUT,
            &format!("route `{name}`: header_timeout"),
        ),
    };
    let body_timeout = humane(
        r,
        rf.body_timeout.as_ref(),
        DEFAULT_BODY_TIMEOUT,
        &format!("route `{name}`: body_timeout"),
    );
    let caller = caller(
        r,
        cx,
        &rf,
        listen.as_ref().ok().and_then(Option::as_ref),
        &name,
    );
    let upgrade_idle_timeout = humane(
        r,
        rf.upgrade_idle_timeout.as_ref(),
        DEFAULT_UPGRADE_IDLE_TIMEOUT,
        &format!("route `{name}`: upgrade_idle_timeout"),
    );
    let allow_upgrades = rf.allow_upgrades.as_ref().map_or_else(
        || vec!["websocket".to_owned()],
        |l| l.get_ref().iter().map(|p| p.to_ascii_lowercase()).collect(),
    );
    let env = exec_env(r, &rf, &name);
    Some(RouteConfig {
        name,
        listen: listen.ok()?,
        host: host.ok()?,
        connect_to,
        upstream: upstream?,
        credential: rf.credential.into_inner(),
        inject: inject?,
        scope,
        ca_file,
        connect_timeout,
        timeout,
        max_replay_body: rf
            .max_replay_body
            .map_or(DEFAULT_MAX_REPLAY_BODY, |s| s.into_inner()),
        max_header_bytes: rf
            .max_header_bytes
            .map_or(DEFAULT_MAX_HEADER_BYTES, |s| s.into_inner() as usize),
        refresh_on_403: rf.refresh_on_403,
        revocation_check,
        allow_browser_origins,
        allowed_hosts,
        conns,
        body_timeout,
        caller,
        allow_upgrades,
        upgrade_idle_timeout,
        env,
    })
}

/// An injection form can only use the shape of value its credential's source issues.
fn inject_mismatch(route: &RouteConfig, credentials: &[CredentialConfig]) -> Option<String> {
    let c = credentials.iter().find(|c| c.name == route.credential)?;
    let (needs, issues) = (route.inject.material(), c.source.material());
    (needs != issues).then(|| match needs {
        MaterialKind::AwsKeys => format!(
            "route `{}`: {} signs with AWS keys, but credential `{}` has source \"{}\"; use source = \"aws\" (or \"vault\" with `aws = {{ ... }}`)",
            route.name,
            route.inject.name(),
            c.name,
            c.source.kind()
        ),
        MaterialKind::CertKey => format!(
            "route `{}`: inject = {{ client_cert }} needs a certificate and key, but credential `{}` holds {}; use source = \"file\" with `cert` and `key`, or source = \"vault\" with `cert = {{ ... }}`",
            route.name,
            c.name,
            issues.describe()
        ),
        MaterialKind::Token => format!(
            "route `{}`: credential `{}` holds {}, which inject = {{ {} }} cannot use",
            route.name,
            c.name,
            issues.describe(),
            route.inject.name()
        ),
    })
}

fn listen_addr(
    r: &mut Reporter<'_>,
    s: &Spanned<String>,
    allow_non_loopback: bool,
) -> Option<ListenAddr> {
    let text = s.get_ref();
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            r.at(
                s.span(),
                "a unix listener needs a path: \"unix:/run/sidekey/app.sock\"",
            );
            return None;
        }
        return Some(ListenAddr::Unix(path.into()));
    }
    let addr = text
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| text.to_socket_addrs().ok().and_then(|mut a| a.next()));
    let Some(addr) = addr else {
        r.at(
            s.span(),
            format!("`{text}` is not a listen address; write \"127.0.0.1:8081\" or \"unix:/path\""),
        );
        return None;
    };
    if !addr.ip().is_loopback() && !allow_non_loopback {
        r.at(s.span(), format!("{addr} is not a loopback address; sidekey only listens on loopback unless `allow_non_loopback = true` is set at the top of the file"));
        return None;
    }
    Some(ListenAddr::Tcp(addr))
}

fn upstream(r: &mut Reporter<'_>, s: &Spanned<String>) -> Option<Upstream> {
    let text = s.get_ref().trim();
    if text == "stand-in" {
        return Some(Upstream::StandIn);
    }
    let bad = |r: &mut Reporter<'_>, why: &str| {
        r.at(s.span(), format!("upstream `{text}` {why}; write it like \"https://api.example.com\" or \"https://host/base/path\" (or \"stand-in\")"));
        None
    };
    let Ok(uri) = text.parse::<http::Uri>() else {
        return bad(r, "is not a URL");
    };
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        return bad(r, "needs a scheme and a host");
    };
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return bad(r, "must be http:// or https://");
    }
    if authority.as_str().contains('@') {
        return bad(
            r,
            "must not hold user information (credentials come from a source)",
        );
    }
    if uri.query().is_some() {
        return bad(r, "must not hold a query string");
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Some(Upstream::Url {
        scheme,
        authority,
        base_path,
    })
}

/// The checks of `sidekey check` beyond the file itself: can each source read
/// what it points at right now? Errors are located at the credential.
pub fn probe_sources(config: &Config, text: &str) -> Vec<super::ConfigError> {
    let mut out = Vec::new();
    for c in &config.credentials {
        if let Err(e) = c.source.probe() {
            let needle = format!("[credentials.{}]", c.name);
            let at = text.find(&needle).map(|i| super::line_col(text, i));
            out.push(super::ConfigError {
                file: config.path.clone(),
                at,
                message: format!("credential `{}`: {}", c.name, e.message),
            });
        }
    }
    out
}

/// A route's `env`: a variable name (letters, digits, `_`, not starting with
/// a digit), and only on a route with its own TCP listener.
fn exec_env(r: &mut Reporter, rf: &RouteFile, name: &str) -> Option<String> {
    let e = rf.env.as_ref()?;
    let v = e.get_ref();
    let valid = v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && v.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !valid {
        r.at(
            e.span(),
            format!("route `{name}`: env `{v}` is not a variable name (letters, digits and `_`)"),
        );
        return None;
    }
    if rf
        .listen
        .as_ref()
        .is_none_or(|l| l.get_ref().starts_with("unix:"))
    {
        r.at(
            e.span(),
            format!(
                "route `{name}`: env needs the route to listen on TCP (`listen = \"127.0.0.1:0\"`)"
            ),
        );
        return None;
    }
    Some(v.clone())
}
