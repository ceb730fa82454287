//! The artifacts in `deploy/`: the Kubernetes examples are what `sidekey inject` writes and validate; the configs pass `sidekey check`; the Dockerfile passes hadolint; the systemd unit passes `systemd-analyze verify` and scores at most 2.0 in `systemd-analyze security`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::binary::Running;
use support::curl::curl;
use support::kube::{KUBERNETES, inject, kubernetes_validate, load, root, run, sidekey, venv_tool};
use support::logs;

/// Each Kubernetes example: its mode, its input, the options it was injected with.
const EXAMPLES: [(&str, &[&str]); 3] = [
    (
        "reverse",
        &[
            "--secret",
            "stripe-api-key",
            "--secret",
            "payments-sidekey-admin",
        ],
    ),
    ("proxy", &["--secret", "payments-sidekey-admin"]),
    (
        "transparent",
        &[
            "--secret",
            "github-token",
            "--secret",
            "payments-sidekey-admin",
        ],
    ),
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn words(s: &str) -> String {
    s.replace("\\\n#", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The examples are the output of the command their header names, byte for
/// byte, so pasting one and injecting give the same pod. `SIDEKEY_BLESS=1`
/// rewrites them (header kept) after a deliberate change.
#[test]
fn kubernetes_examples_are_what_sidekey_inject_writes() {
    for (mode, args) in EXAMPLES {
        let rel = format!("deploy/kubernetes/{mode}.yaml");
        let input = format!("tests/data/kube/payments-{mode}.yaml");
        let mut full = vec!["--mode", mode];
        full.extend_from_slice(args);
        let want = inject(&root().join(&input), &full);
        let text = read(&rel);
        let body_at = text.find("\n---\n").map_or(0, |i| i + 1);
        let (header, body) = text.split_at(body_at);
        assert!(
            header.lines().all(|l| l.starts_with('#')),
            "{rel}: the header is comments only"
        );
        let command = format!("sidekey inject -f {input} --mode {mode} {}", args.join(" "));
        assert!(
            words(header).contains(&command),
            "{rel}: the header should name `{command}`"
        );
        if std::env::var_os("SIDEKEY_BLESS").is_some() {
            std::fs::write(root().join(&rel), format!("{header}{want}")).unwrap();
            continue;
        }
        assert_eq!(
            body, want,
            "{rel} differs from `{command}` (SIDEKEY_BLESS=1 rewrites it)"
        );
    }
}

#[test]
fn kubernetes_examples_validate_against_the_oldest_and_newest_schemas() {
    let files: Vec<PathBuf> = EXAMPLES
        .iter()
        .map(|(mode, _)| root().join(format!("deploy/kubernetes/{mode}.yaml")))
        .collect();
    for version in KUBERNETES {
        let out = kubernetes_validate(&files, version);
        assert_eq!(
            out.code, 0,
            "Kubernetes {version}: {}{}",
            out.stdout, out.stderr
        );
    }
}

/// `sidekey check` of a shipped config, its secret paths pointed at scratch
/// files (they exist only where the config is deployed).
fn check_config(what: &str, text: &str, secret_paths: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = text.to_owned();
    for (i, path) in secret_paths.iter().enumerate() {
        assert!(text.contains(path), "{what} should read {path}");
        let local = dir.path().join(format!("secret-{i}"));
        std::fs::write(&local, "sk_test_not_a_real_key").unwrap();
        text = text.replace(path, local.to_str().unwrap());
    }
    let config = dir.path().join("sidekey.toml");
    std::fs::write(&config, text).unwrap();
    let out = sidekey(&["check", "-c", config.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
}

/// The TOML in an example's config map.
fn config_map_toml(rel: &str) -> String {
    let docs = load(&read(rel));
    let map = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("ConfigMap"))
        .unwrap();
    map["data"]["sidekey.toml"].as_str().unwrap().to_owned()
}

#[test]
fn shipped_configs_pass_sidekey_check() {
    check_config(
        "the reverse example's config map",
        &config_map_toml("deploy/kubernetes/reverse.yaml"),
        &[
            "/var/run/secrets/payments-sidekey-admin/token",
            "/var/run/secrets/stripe-api-key/api-key",
        ],
    );
    check_config(
        "deploy/systemd/sidekey.toml",
        &read("deploy/systemd/sidekey.toml"),
        &["/run/credentials/sidekey.service/api-key"],
    );
    check_config(
        "deploy/compose/sidekey.toml",
        &read("deploy/compose/sidekey.toml"),
        &["/run/secrets/api-key"],
    );
    check_config(
        "the proxy example's config map",
        &config_map_toml("deploy/kubernetes/proxy.yaml"),
        &[
            "/var/run/secrets/payments-sidekey-admin/token",
            "/var/run/secrets/sidekey/serviceaccount/token",
        ],
    );
    // The proxy and transparent examples' secret paths are the ones the
    // injected pod mounts, and their CA lives in the sidecar's own volume.
    for (mode, secrets) in [
        ("proxy", ["payments-sidekey-admin"]),
        ("transparent", ["github-token"]),
    ] {
        let toml = config_map_toml(&format!("deploy/kubernetes/{mode}.yaml"));
        for s in secrets {
            assert!(
                toml.contains(&format!("/var/run/secrets/{s}/")),
                "{mode}: {s}"
            );
        }
        assert!(
            toml.contains("state_dir = \"/var/lib/sidekey\""),
            "{mode}: state_dir is the sidecar's volume"
        );
    }
    check_config(
        "the transparent example's config map",
        &config_map_toml("deploy/kubernetes/transparent.yaml"),
        &[
            "/var/run/secrets/github-token/token",
            "/var/run/secrets/payments-sidekey-admin/token",
        ],
    );
}

fn hadolint(dockerfile: &Path) -> support::kube::Out {
    let mut cmd = Command::new(venv_tool("hadolint"));
    cmd.args(["--no-color", "--failure-threshold", "style"])
        .arg(dockerfile);
    run(cmd, None)
}

#[test]
fn dockerfile_passes_hadolint_and_runs_as_a_numeric_non_root_user() {
    let path = root().join("deploy/Dockerfile");
    let out = hadolint(&path);
    assert_eq!(out.code, 0, "hadolint: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.trim().is_empty(), "hadolint: {}", out.stdout);

    // The linter can fail: the usual mistakes are caught.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nRUN apt-get install curl\nUSER root\n",
    )
    .unwrap();
    let out = hadolint(&bad);
    assert_ne!(out.code, 0, "hadolint passed a bad Dockerfile");
    for rule in ["DL3007", "DL3008", "DL3002"] {
        assert!(
            out.stdout.contains(rule),
            "{rule} not reported: {}",
            out.stdout
        );
    }

    // Multi-stage; the last stage (the default target) is distroless, runs
    // as a numeric non-root UID and needs no shell (exec-form entrypoint).
    let text = read("deploy/Dockerfile");
    let stages: Vec<&str> = text.split("\nFROM ").skip(1).collect();
    assert!(stages.len() >= 2, "not multi-stage");
    let last = stages.last().unwrap();
    assert!(
        last.starts_with("gcr.io/distroless/"),
        "runtime base: {last}"
    );
    let user = last.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    let uid: u32 = user[5..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric UID");
    assert!(uid > 0, "runs as root");
    assert!(
        last.contains("ENTRYPOINT [\"/usr/local/bin/sidekey\"]"),
        "{last}"
    );
    // What the build copies is what the context file lets through.
    let ignore = read("deploy/Dockerfile.dockerignore");
    let allowed: Vec<&str> = ignore.lines().filter_map(|l| l.strip_prefix('!')).collect();
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            let dir = format!("{}/", source.trim_end_matches('/'));
            assert!(
                allowed.contains(source) || allowed.contains(&dir.as_str()),
                "{source} is left out of the build context"
            );
            assert!(root().join(source).exists(), "{source}");
        }
    }
    assert!(
        !last.contains("RUN "),
        "the runtime stage runs nothing (it has no shell)"
    );
}

/// A scratch root holding the unit, the units it depends on, and the
/// programs it runs, for `systemd-analyze --root`: the test binary stands in
/// for /usr/local/bin/sidekey. No running systemd is needed.
fn unit_root(unit: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in [
        "usr/local/bin",
        "bin",
        "etc/systemd/system",
        "usr/lib/systemd",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy(
        env!("CARGO_BIN_EXE_sidekey"),
        r.join("usr/local/bin/sidekey"),
    )
    .unwrap();
    std::fs::copy("/bin/kill", r.join("bin/kill")).unwrap();
    std::fs::write(r.join("etc/systemd/system/sidekey.service"), unit).unwrap();
    let status = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn verify(unit: &str) -> support::kube::Out {
    let dir = unit_root(unit);
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify")
        .arg(format!("--root={}", dir.path().display()))
        .arg("sidekey.service");
    run(cmd, None)
}

#[test]
fn systemd_unit_passes_verify() {
    let unit = read("deploy/systemd/sidekey.service");
    let out = verify(&unit);
    // verify exits 0 on unknown keys and bad values: it only warns, so any
    // word on stderr fails the test.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.trim().is_empty(),
        "systemd-analyze verify: {}",
        out.stderr
    );

    let typo = unit.replace(
        "ProtectSystem=strict",
        "ProtectSystem=strict\nProtectSytem=full",
    );
    let out = verify(&typo);
    assert!(
        out.stderr.contains("Unknown key 'ProtectSytem'"),
        "not caught: {}",
        out.stderr
    );
}

fn exposure(unit_path: &Path) -> f64 {
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["security", "--offline=true", "--no-pager"])
        .arg(unit_path);
    let out = run(cmd, None);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score: {}{}", out.stdout, out.stderr));
    let after = line.split(": ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn systemd_unit_exposure_is_at_most_2() {
    let path = root().join("deploy/systemd/sidekey.service");
    let score = exposure(&path);
    assert!(score <= 2.0, "exposure {score} > 2.0");

    // The score tracks the sandbox: the unit without it is exposed.
    let unit = read("deploy/systemd/sidekey.service");
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("sidekey.service");
    let sandbox_at = unit.find("# Sandbox").unwrap();
    let install_at = unit.find("[Install]").unwrap();
    std::fs::write(
        &bare,
        format!("{}{}", &unit[..sandbox_at], &unit[install_at..]),
    )
    .unwrap();
    assert!(
        exposure(&bare) > 5.0,
        "the score does not react to the sandbox"
    );

    for directive in [
        "DynamicUser=yes",
        "LoadCredential=",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "LimitNOFILE=65536",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
}

#[test]
fn compose_example_keeps_the_secret_in_sidekey_and_the_app_on_its_loopback() {
    let docs = load(&read("deploy/compose/compose.yaml"));
    let services = &docs[0]["services"];
    let sk = &services["sidekey"];
    assert_eq!(
        sk["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert_eq!(sk["user"].as_str(), Some("65532:65532"));
    assert_eq!(sk["read_only"].as_bool(), Some(true));
    assert_eq!(sk["cap_drop"][0].as_str(), Some("ALL"));
    assert_eq!(sk["secrets"][0].as_str(), Some("api-key"));
    assert_eq!(
        sk["configs"][0]["target"].as_str(),
        Some("/etc/sidekey/sidekey.toml")
    );
    let app = &services["app"];
    assert_eq!(app["network_mode"].as_str(), Some("service:sidekey"));
    assert!(
        app["secrets"].is_badvalue() && app["configs"].is_badvalue(),
        "the app gets a secret"
    );
    assert!(
        read("deploy/compose/.gitignore")
            .lines()
            .any(|l| l == "/api-key"),
        "the local key could be committed"
    );
}

/// Runs the real binary on a shipped config, its ports made free ones and
/// its secret paths pointed at scratch files holding `secrets`; returns it
/// with its route's and admin listener's loopback addresses once the
/// credential is issued.
fn serve(dir: &Path, text: &str, secrets: &[(&str, &str)]) -> (Running, String, String) {
    let mut text = text.to_owned();
    for (i, (path, value)) in secrets.iter().enumerate() {
        let local = dir.join(format!("secret-{i}"));
        std::fs::write(&local, value).unwrap();
        text = text.replace(path, local.to_str().unwrap());
    }
    let text = text
        .replace(":8081\"", ":0\"")
        .replace(":9901\"", ":0\"")
        .replace("format = \"text\"", "format = \"json\"");
    let mut sk = Running::start(dir, &text);
    let addr = |v: serde_json::Value| {
        let listen = v["listen"].as_str().unwrap();
        listen.replace("0.0.0.0:", "127.0.0.1:")
    };
    let route = addr(sk.wait_for(|v| v["message"] == "route listening"));
    let admin = addr(sk.wait_for(|v| v["message"] == "admin API listening"));
    sk.wait_for(|v| v["event"] == "issued");
    (sk, route, admin)
}

/// The kubelet's probes as the injected pod sends them: to the pod's
/// address (the admin listener binds every address), `Host: localhost`.
#[tokio::test]
async fn the_reverse_example_config_answers_the_kubelet_probes() {
    logs::init();
    let key = logs::secret("sk_live_reverse_example_5e0c");
    let token = logs::secret("admin_token_reverse_example_93b1");
    let dir = tempfile::tempdir().unwrap();
    let toml = config_map_toml("deploy/kubernetes/reverse.yaml");
    let secrets = [
        ("/var/run/secrets/stripe-api-key/api-key", key.as_str()),
        (
            "/var/run/secrets/payments-sidekey-admin/token",
            token.as_str(),
        ),
    ];
    let (mut sk, _route, admin) = serve(dir.path(), &toml, &secrets);
    for path in ["/healthz", "/readyz"] {
        let answer = curl(&["-H", "Host: localhost", &format!("http://{admin}{path}")]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    // Reachable from the pod network, the admin API wants the token for
    // everything else: reading the inventory or metrics as well as acting.
    let refresh = format!("http://{admin}/v1/credentials/stripe/refresh");
    let answer = curl(&["-X", "POST", "-H", "Host: localhost", &refresh]).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let bearer = format!("Authorization: Bearer {token}");
    for path in ["/v1/credentials", "/metrics"] {
        let url = format!("http://{admin}{path}");
        let answer = curl(&["-H", "Host: localhost", &url]).await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        let answer = curl(&["-H", "Host: localhost", "-H", &bearer, &url]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    sk.child.kill().unwrap();
    let (_, log) = sk.finish();
    logs::assert_no_secret_in("the log", log.join("\n").as_bytes());
}

/// The compose example's sidekey as the app container sees it: the stand-in
/// upstream echoes the request with the credential by fingerprint only.
#[tokio::test]
async fn the_compose_config_serves_the_app_as_written() {
    logs::init();
    let key = logs::secret("sk_test_compose_example_7d1f");
    let dir = tempfile::tempdir().unwrap();
    let toml = read("deploy/compose/sidekey.toml");
    let (mut sk, route, _admin) =
        serve(dir.path(), &toml, &[("/run/secrets/api-key", key.as_str())]);
    let answer = curl(&[&format!("http://{route}/v1/charges")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("<credential demo fingerprint="),
        "{}",
        answer.body
    );
    logs::assert_no_secret_in("the answer", answer.body.as_bytes());
    let answer = curl(&["-X", "DELETE", &format!("http://{route}/v1/customers")]).await;
    assert_eq!(
        answer.status, 403,
        "outside the route's scope: {}",
        answer.body
    );
    sk.child.kill().unwrap();
    let (_, log) = sk.finish();
    logs::assert_no_secret_in("the log", log.join("\n").as_bytes());
}

/// A port free on loopback now.
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port().to_string()
}

/// The proxy example's pod, run on this host as written (no cluster here):
/// the init containers in their order, `sidekey-ca`'s shell script to its
/// end and the native sidecar started and its startup probe awaited, each
/// as its `runAsUser`, each volume a directory; then curl and Python
/// requests, with the app container's env only, call `$ORDERS_API` and the
/// upstream receives the credential. Changed for the test alone: free ports
/// (`--admin-port`, `--proxy-port`, and the config's listeners to match),
/// the credential (a file instead of the token exchange, which
/// `tests/oauth2.rs` runs against oidc-provider) and the route's dial
/// (`connect_to` the local TLS upstream, trusting its test CA).
// Multi-threaded: the in-process upstream answers while curl and Python
// block a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_example_pod_run_host_side_serves_the_app_through_its_env() {
    use support::kube::{HostPod, pod_specs};
    use support::{Reply, Seen, Upstream, tls::TestCa};
    logs::init();
    let key = logs::secret("orders_token_host_pod_4be1");
    let admin_token = logs::secret("admin_token_host_pod_c07a");
    let test_ca = TestCa::new();
    let tls = test_ca.server_config_for(&["orders.example.com"]);
    let up = Upstream::start_tls(tls, |s: &Seen| Reply::ok(format!("ok {}", s.target))).await;

    let (admin_port, proxy_port) = (free_port(), free_port());
    let input = root().join("tests/data/kube/payments-proxy.yaml");
    let out = inject(
        &input,
        &[
            "--mode",
            "proxy",
            "--secret",
            "payments-sidekey-admin",
            "--admin-port",
            &admin_port,
            "--proxy-port",
            &proxy_port,
        ],
    );
    let docs = load(&out);
    let config_map = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("ConfigMap"));
    let toml = config_map.unwrap()["data"]["sidekey.toml"]
        .as_str()
        .unwrap();
    let deployment = docs.iter().find(|d| !pod_specs(d).is_empty()).unwrap();
    let pod = HostPod::new(pod_specs(deployment)[0]);
    let scratch = pod.root.path().to_str().unwrap().to_owned();

    // The config as the sidecar reads it from its ConfigMap volume.
    let (head, routes) = toml.split_once("[credentials.orders]").unwrap();
    let (_, routes) = routes.split_once("[[routes]]").unwrap();
    let toml = format!(
        "{}[credentials.orders]\nsource = \"file\"\npath = \"{scratch}/orders-key\"\n\n[[routes]]{}",
        head.replace("0.0.0.0:9901", &format!("0.0.0.0:{admin_port}"))
            .replace("127.0.0.1:3128", &format!("127.0.0.1:{proxy_port}")),
        routes.replace(
            "credential = \"orders\"",
            &format!(
                "credential = \"orders\"\nconnect_to = \"127.0.0.1:{}\"\nca_file = \"{scratch}/upstream-ca.pem\"",
                up.addr.port()
            ),
        ),
    );
    let sidecar = pod.container("sidekey");
    pod.put(
        "sidekey-config",
        "sidekey.toml",
        &pod.localize(sidecar, &toml),
    );
    pod.put(
        "sidekey-secret-payments-sidekey-admin",
        "token",
        &admin_token,
    );
    pod.put(
        "sidekey-token",
        "token",
        "not used: the credential is a file here",
    );
    std::fs::write(pod.root.path().join("orders-key"), &key).unwrap();
    test_ca.write(&pod.root.path().join("upstream-ca.pem"));

    // The kubelet: init containers one after the other; a native sidecar
    // (restartPolicy Always) is started and the next waits for its startup probe.
    let mut running = None;
    for c in pod.init_containers() {
        let name = c["name"].as_str().unwrap();
        if c["restartPolicy"].as_str() == Some("Always") {
            let mut sk = Running::spawn(pod.command(c));
            sk.wait_for(|v| v["message"] == "forward proxy listening");
            let (url, headers) = pod.probe_url(c, "startupProbe");
            let mut ok = false;
            for _ in 0..50 {
                let mut args: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
                args.push(&url);
                if curl(&args).await.status == 200 {
                    ok = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(ok, "{name}: the startup probe {url} never passed");
            running = Some(sk);
        } else {
            let done = run(pod.command(c), None);
            assert_eq!(done.code, 0, "{name}: {}{}", done.stdout, done.stderr);
        }
    }
    let mut sk = running.expect("a native sidecar");
    let ca_dir = pod.volume("sidekey-ca");
    let ca = std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
    let bundle = std::fs::read_to_string(ca_dir.join("bundle.pem")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert!(
        bundle.ends_with(&ca) && bundle.len() > ca.len() * 10,
        "roots then the CA"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        let (url, headers) = pod.probe_url(sidecar, probe);
        let mut args: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
        args.push(&url);
        assert_eq!(curl(&args).await.status, 200, "{probe}");
    }

    // The app: only its env, which names the proxy and the CA bundle.
    let app = pod.container("app");
    let env = pod.env(app);
    let api = &env.iter().find(|(k, _)| k == "ORDERS_API").unwrap().1;
    let mut curl_app = Command::new("curl");
    curl_app
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("{api}/v1/orders"))
        .env_clear()
        .envs(env.clone());
    let answer = run(curl_app, None);
    assert_eq!(answer.code, 0, "curl: {}", answer.stderr);
    assert!(
        answer.stdout.ends_with("ok /v1/orders\n200"),
        "curl: {}",
        answer.stdout
    );
    let mut requests = Command::new(venv_tool("python"));
    requests
        .args([
            "-c",
            "import os, requests\n\
             r = requests.get(os.environ['ORDERS_API'] + '/v1/orders?by=requests', timeout=10)\n\
             print(r.status_code, r.text)",
        ])
        .env_clear()
        .envs(env);
    let answer = run(requests, None);
    assert_eq!(answer.code, 0, "requests: {}", answer.stderr);
    assert_eq!(answer.stdout.trim(), "200 ok /v1/orders?by=requests");

    let seen = up.seen();
    assert_eq!(seen.len(), 2, "both calls reached the upstream");
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {key}").as_str())
        );
        assert_eq!(s.header("host"), Some("orders.example.com"));
    }
    sk.child.kill().unwrap();
    let (_, log) = sk.finish();
    logs::assert_no_secret_in("the sidecar's log", log.join("\n").as_bytes());
}
