//! What `sidekey inject` adds to a pod: the sidecar, its set-up init containers, volumes, the app's variables.

use super::options::{InjectArgs, Mode};
use super::yaml::{Yaml, list, map, s, strings};

/// The name that marks a pod as injected.
pub const SIDECAR: &str = "sidekey";
pub const CONFIG_DIR: &str = "/etc/sidekey";
pub const TOKEN_DIR: &str = "/var/run/secrets/sidekey/serviceaccount";
/// `state_dir` of the config in proxy and transparent mode: the generated CA and its key.
pub const STATE_DIR: &str = "/var/lib/sidekey";
/// The CA certificate and a bundle of it with the public roots, readable by the app.
pub const CA_DIR: &str = "/var/run/sidekey/ca";
const ADMIN_PORT_NAME: &str = "sidekey-admin";

/// Everything added to one pod spec.
pub struct Additions {
    /// Init containers that run, in order, before the app's own.
    pub init_containers: Vec<Yaml>,
    pub volumes: Vec<Yaml>,
    /// Variables set on every app container (never a secret: addresses and file paths).
    pub app_env: Vec<Yaml>,
    /// Mounts added to every app container.
    pub app_mounts: Vec<Yaml>,
    /// The UID sidekey runs as, which no app container may share.
    pub uid: u32,
}

/// The additions for `args`, with `config_map` holding `sidekey.toml`.
pub fn additions(args: &InjectArgs, config_map: &str) -> Additions {
    let intercepts = args.mode != Mode::Reverse;
    let mut init_containers = Vec::new();
    if args.mode == Mode::Transparent {
        init_containers.push(iptables(args));
    }
    if intercepts {
        init_containers.push(ca_bundle(args));
    }
    init_containers.push(sidecar(args));
    let mut volumes = vec![
        map([
            ("name", s("sidekey-config")),
            ("configMap", map([("name", s(config_map))])),
        ]),
        map([("name", s("sidekey-token")), ("projected", token(args))]),
    ];
    for name in &args.secrets {
        volumes.push(map([
            ("name", s(&secret_volume(name))),
            ("secret", map([("secretName", s(name))])),
        ]));
    }
    let (mut app_env, mut app_mounts) = (Vec::new(), Vec::new());
    if intercepts {
        volumes.push(memory_dir("sidekey-state"));
        volumes.push(memory_dir("sidekey-ca"));
        app_mounts.push(mount("sidekey-ca", CA_DIR, true));
        app_env = ca_env();
    }
    if args.mode == Mode::Proxy {
        app_env.extend(proxy_env(args.proxy_port));
    }
    Additions {
        init_containers,
        volumes,
        app_env,
        app_mounts,
        uid: args.uid,
    }
}

fn secret_volume(name: &str) -> String {
    format!("sidekey-secret-{name}")
}

/// The native sidecar: an init container with `restartPolicy: Always` (Kubernetes 1.29+).
fn sidecar(args: &InjectArgs) -> Yaml {
    let probe = |path: &str, period: i64, failures: i64| {
        map([
            (
                "httpGet",
                map([
                    ("path", s(path)),
                    ("port", s(ADMIN_PORT_NAME)),
                    // The admin API answers loopback names only; the kubelet dials the pod IP.
                    (
                        "httpHeaders",
                        list([map([("name", s("Host")), ("value", s("localhost"))])]),
                    ),
                ]),
            ),
            ("periodSeconds", Yaml::Integer(period)),
            ("failureThreshold", Yaml::Integer(failures)),
        ])
    };
    let mut mounts = vec![
        mount("sidekey-config", CONFIG_DIR, true),
        mount("sidekey-token", TOKEN_DIR, true),
    ];
    for name in &args.secrets {
        mounts.push(mount(
            &secret_volume(name),
            &format!("/var/run/secrets/{name}"),
            true,
        ));
    }
    if args.mode != Mode::Reverse {
        mounts.push(mount("sidekey-state", STATE_DIR, false));
    }
    let mut ports = vec![port(ADMIN_PORT_NAME, args.admin_port)];
    if args.mode == Mode::Proxy {
        ports.push(port("sidekey-proxy", args.proxy_port));
    }
    map([
        ("name", s(SIDECAR)),
        ("image", s(&args.image)),
        ("restartPolicy", s("Always")),
        (
            "args",
            strings(&["run", "-c", &format!("{CONFIG_DIR}/sidekey.toml")]),
        ),
        ("ports", Yaml::Array(ports)),
        // Holds the app back until every credential has a usable value.
        ("startupProbe", probe("/readyz", 1, 120)),
        ("readinessProbe", probe("/readyz", 5, 3)),
        ("livenessProbe", probe("/healthz", 10, 3)),
        (
            "resources",
            map([
                ("requests", map([("cpu", s("10m")), ("memory", s("16Mi"))])),
                ("limits", map([("memory", s("64Mi"))])),
            ]),
        ),
        ("securityContext", restricted(args.uid)),
        ("volumeMounts", Yaml::Array(mounts)),
    ])
}

/// Installs the redirect of the pod's egress to `[transparent] listen`,
/// sparing sidekey's own UID: the only container with `NET_ADMIN`.
/// `--apply` loads the IPv4 rules, and the IPv6 ones where the pod has IPv6.
fn iptables(args: &InjectArgs) -> Yaml {
    let config = format!("{CONFIG_DIR}/sidekey.toml");
    let uid = args.uid.to_string();
    map([
        ("name", s("sidekey-iptables")),
        ("image", s(&args.init_image)),
        (
            "command",
            strings(&[
                "sidekey", "iptables", "-c", &config, "--uid", &uid, "--apply",
            ]),
        ),
        ("resources", small_resources()),
        (
            "securityContext",
            map([
                // iptables needs root in the pod's network namespace, nothing else.
                ("runAsUser", Yaml::Integer(0)),
                ("runAsNonRoot", Yaml::Boolean(false)),
                // iptables takes its lock file under /run.
                ("readOnlyRootFilesystem", Yaml::Boolean(false)),
                ("allowPrivilegeEscalation", Yaml::Boolean(false)),
                (
                    "capabilities",
                    map([
                        ("drop", strings(&["ALL"])),
                        ("add", strings(&["NET_ADMIN"])),
                    ]),
                ),
                ("seccompProfile", map([("type", s("RuntimeDefault"))])),
            ]),
        ),
        (
            "volumeMounts",
            list([mount("sidekey-config", CONFIG_DIR, true)]),
        ),
    ])
}

/// Writes sidekey's CA certificate (`sidekey ca`, the CA generated into
/// `state_dir` on first use) and a bundle of it with the public roots into
/// the volume the app reads.
fn ca_bundle(args: &InjectArgs) -> Yaml {
    let script = format!(
        "set -eu\nsidekey ca -c {CONFIG_DIR}/sidekey.toml > {CA_DIR}/ca.pem\n\
         cat /etc/ssl/certs/ca-certificates.crt {CA_DIR}/ca.pem > {CA_DIR}/bundle.pem\n"
    );
    map([
        ("name", s("sidekey-ca")),
        ("image", s(&args.init_image)),
        ("command", strings(&["sh", "-c", &script])),
        ("resources", small_resources()),
        ("securityContext", restricted(args.uid)),
        (
            "volumeMounts",
            list([
                mount("sidekey-config", CONFIG_DIR, true),
                mount("sidekey-state", STATE_DIR, false),
                mount("sidekey-ca", CA_DIR, false),
            ]),
        ),
    ])
}

/// Non-root under a UID of its own, read-only root, no privilege escalation,
/// no capabilities, the runtime's default seccomp filter.
fn restricted(uid: u32) -> Yaml {
    map([
        ("runAsNonRoot", Yaml::Boolean(true)),
        ("runAsUser", Yaml::Integer(i64::from(uid))),
        ("runAsGroup", Yaml::Integer(i64::from(uid))),
        ("readOnlyRootFilesystem", Yaml::Boolean(true)),
        ("allowPrivilegeEscalation", Yaml::Boolean(false)),
        ("capabilities", map([("drop", strings(&["ALL"]))])),
        ("seccompProfile", map([("type", s("RuntimeDefault"))])),
    ])
}

fn small_resources() -> Yaml {
    map([
        ("requests", map([("cpu", s("10m")), ("memory", s("16Mi"))])),
        ("limits", map([("memory", s("32Mi"))])),
    ])
}

/// A short-lived service-account token for token exchange (OAuth 2.0, Vault
/// `kubernetes`/`jwt` auth), audience-bound, rotated by the kubelet.
fn token(args: &InjectArgs) -> Yaml {
    map([(
        "sources",
        list([map([(
            "serviceAccountToken",
            map([
                ("audience", s(&args.token_audience)),
                ("expirationSeconds", Yaml::Integer(3600)),
                ("path", s("token")),
            ]),
        )])]),
    )])
}

fn memory_dir(name: &str) -> Yaml {
    map([
        ("name", s(name)),
        (
            "emptyDir",
            map([("medium", s("Memory")), ("sizeLimit", s("1Mi"))]),
        ),
    ])
}

fn mount(name: &str, path: &str, read_only: bool) -> Yaml {
    let mut m = map([("name", s(name)), ("mountPath", s(path))]);
    if let (true, Some(h)) = (read_only, m.as_mut_hash()) {
        h.insert(s("readOnly"), Yaml::Boolean(true));
    }
    m
}

fn port(name: &str, number: u16) -> Yaml {
    map([
        ("name", s(name)),
        ("containerPort", Yaml::Integer(i64::from(number))),
        ("protocol", s("TCP")),
    ])
}

fn env(name: &str, value: &str) -> Yaml {
    map([("name", s(name)), ("value", s(value))])
}

/// The CA variables the common TLS stacks read (OpenSSL, Python requests,
/// curl, Node). The bundle keeps the public roots, so hosts sidekey does not
/// intercept still verify.
fn ca_env() -> Vec<Yaml> {
    let bundle = format!("{CA_DIR}/bundle.pem");
    vec![
        env("SSL_CERT_FILE", &bundle),
        env("REQUESTS_CA_BUNDLE", &bundle),
        env("CURL_CA_BUNDLE", &bundle),
        env("NODE_EXTRA_CA_CERTS", &format!("{CA_DIR}/ca.pem")),
    ]
}

/// The proxy variables, in both spellings (curl reads only lowercase
/// `http_proxy`); loopback and the cluster's own names go direct.
fn proxy_env(port: u16) -> Vec<Yaml> {
    let url = format!("http://127.0.0.1:{port}");
    let direct = "localhost,127.0.0.1,::1,.svc,.cluster.local";
    vec![
        env("HTTPS_PROXY", &url),
        env("https_proxy", &url),
        env("HTTP_PROXY", &url),
        env("http_proxy", &url),
        env("NO_PROXY", direct),
        env("no_proxy", direct),
        // Node 24+ fetch honours the proxy variables only with this set.
        env("NODE_USE_ENV_PROXY", "1"),
    ]
}
