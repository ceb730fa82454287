//! `sidekey exec -- CMD`: real programs (curl, Python `requests`, Node `fetch`) run by the binary
//! reach an HTTPS upstream through the forward proxy with nothing but the environment sidekey
//! gives them; the upstream gets the credential, the program's own `/proc/self/environ` holds no
//! secret; exit statuses and SIGTERM pass through; a rotation reaches a running program; the
//! `--env-only` exports, evaluated by bash, give the same variables as `exec -- env`; boto3 signs with
//! placeholder keys that sidekey replaces; an OAuth 2.0 token issued for the run is revoked at exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use support::proxy::{HOST, World, config, host_route};
use support::{Upstream, logs, write_atomic};
use tokio::process::Command;

/// The variable an env-source credential reads: set for sidekey, never seen by the command.
const ENV_VAR: &str = "EXEC_TEST_API_KEY";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A config, token and upstream on disk; the binary runs on them.
struct Setup {
    dir: tempfile::TempDir,
    upstream: Upstream,
    token: String,
    env_secret: String,
}

impl Setup {
    /// The host route `api` to the HTTPS upstream (through `[proxy]`), and a
    /// reverse route `local` on a free port named by `LOCAL_API`, its
    /// credential read from an environment variable.
    async fn new() -> Setup {
        logs::init();
        let (upstream, test_ca) = World::upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let token = logs::secret("ghp_exec0secret0value0123456789abcdef0");
        let env_secret = logs::secret("sk_env0secret0value0abcdef0123456789");
        std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
        test_ca.write(&dir.path().join("upstream-ca.pem"));
        let routes = format!(
            r#"{}
[credentials.envkey]
source = "env"
var = "{ENV_VAR}"

[[routes]]
name = "local"
listen = "127.0.0.1:0"
env = "LOCAL_API"
upstream = "stand-in"
credential = "envkey"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
"#,
            host_route("api", HOST, &upstream, "")
        );
        let text = config("", &routes).replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(dir.path().join("sidekey.toml"), text).unwrap();
        Setup {
            dir,
            upstream,
            token,
            env_secret,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sidekey exec -c CONFIG [extra] -- cmd`, at trace level, the secret variable set.
    fn exec(&self, extra: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sidekey"));
        c.arg("exec")
            .arg("-c")
            .arg(self.path("sidekey.toml"))
            .args(extra)
            .arg("--")
            .args(cmd)
            .env("RUST_LOG", "trace")
            .env(ENV_VAR, &self.env_secret)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("SSL_CERT_FILE")
            .kill_on_drop(true);
        c
    }

    async fn run(&self, cmd: &[&str]) -> Output {
        self.exec(&[], cmd).output().await.unwrap()
    }

    /// The upstream got the file credential on every request.
    fn upstream_got_credential(&self, n: usize) {
        let seen = self.upstream.seen();
        assert_eq!(seen.len(), n, "requests the upstream received");
        for s in &seen {
            assert_eq!(
                s.header("authorization"),
                Some(format!("Bearer {}", self.token).as_str())
            );
        }
    }

    /// The dumped environment is the command's, and holds neither secret;
    /// sidekey's own output (at trace level) holds none either.
    fn no_secret_in(&self, environ_file: &str, out: &Output) {
        let environ = std::fs::read(self.path(environ_file)).unwrap();
        let text = String::from_utf8_lossy(&environ);
        assert!(text.contains("HTTPS_PROXY=http://127.0.0.1:"), "{text}");
        assert!(
            !text.contains(ENV_VAR),
            "the secret variable is gone: {text}"
        );
        assert!(!text.contains("SIDEKEY_ENV_HANDOVER_FD"));
        logs::assert_no_secret_in("the command's environment", &environ);
        logs::assert_no_secret_in("the command's output", &out.stdout);
        logs::assert_no_secret_in("sidekey's log", &out.stderr);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{} {}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reaches_the_upstream_through_the_environment_alone() {
    let s = Setup::new().await;
    let environ = s.path("environ");
    let script = format!(
        "cat /proc/self/environ > {e} && grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\" > {n} && curl -sS https://{HOST}/v1/curl && echo && curl -sS \"$LOCAL_API/v1/local\"",
        e = environ.display(),
        n = s.path("roots").display()
    );
    let out = s.run(&["sh", "-c", &script]).await;
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.starts_with("ok /v1/curl\n"), "{text}");
    let local: serde_json::Value =
        serde_json::from_str(text.lines().skip(1).collect::<String>().as_str()).unwrap();
    assert_eq!(local["route"], "local", "LOCAL_API names the reverse route");
    assert_eq!(local["path"], "/v1/local");
    s.upstream_got_credential(1);
    s.no_secret_in("environ", &out);
    // The bundle also holds the system roots: a host sidekey does not intercept still verifies.
    let roots: usize = std::fs::read_to_string(s.path("roots"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        roots > 10,
        "system roots plus sidekey's CA, not the CA alone: {roots}"
    );
    let text = std::fs::read_to_string(&environ).unwrap();
    let bundle = text
        .split('\0')
        .find_map(|kv| kv.strip_prefix("SSL_CERT_FILE="))
        .unwrap();
    assert!(
        !Path::new(bundle).exists(),
        "the private folder is removed at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_reaches_the_upstream() {
    let s = Setup::new().await;
    let python = root().join(".venv/bin/python");
    let code = format!(
        "import requests, shutil; shutil.copyfile('/proc/self/environ', '{}'); r = requests.get('https://{HOST}/v1/python'); print(r.status_code, r.text)",
        s.path("environ").display()
    );
    let out = s.run(&[python.to_str().unwrap(), "-c", &code]).await;
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "200 ok /v1/python");
    s.upstream_got_credential(1);
    s.no_secret_in("environ", &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_fetch_reaches_the_upstream() {
    let s = Setup::new().await;
    let script = root().join("tests/peers/undici/env_fetch.mjs");
    let url = format!("https://{HOST}/v1/node");
    let environ = s.path("environ");
    let out = s
        .run(&[
            "node",
            script.to_str().unwrap(),
            &url,
            environ.to_str().unwrap(),
        ])
        .await;
    assert_ok(&out);
    let answer: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"], "ok /v1/node");
    s.upstream_got_credential(1);
    s.no_secret_in("environ", &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_statuses_pass_through() {
    let s = Setup::new().await;
    let code = |out: Output| out.status.code();
    assert_eq!(code(s.run(&["sh", "-c", "exit 7"]).await), Some(7));
    assert_eq!(code(s.run(&["true"]).await), Some(0));
    assert_eq!(
        code(s.run(&["sh", "-c", "kill -KILL $$"]).await),
        Some(137),
        "128 + the signal that ended the command"
    );
    assert_eq!(code(s.run(&["/nonexistent/program"]).await), Some(127));
}

/// Waits until `path` exists.
async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_sidekey_reaches_the_command() {
    let s = Setup::new().await;
    let ready = s.path("ready");
    let script = format!(
        "trap 'exit 42' TERM; touch {}; while :; do sleep 0.1; done",
        ready.display()
    );
    let child = s
        .exec(&[], &["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&ready).await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("sidekey exec ends with its command")
        .unwrap();
    assert_eq!(out.status.code(), Some(42), "the command's trap ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_the_running_command() {
    let s = Setup::new().await;
    let stop = s.path("stop");
    let python = root().join(".venv/bin/python");
    // One long-lived app with one session: it asks until told to stop.
    let code = format!(
        "import requests, os, time\ns = requests.Session()\nn = 0\nwhile not os.path.exists('{}'):\n    assert s.get('https://{HOST}/v1/loop').status_code == 200\n    n += 1\n    time.sleep(0.1)\nprint(n)",
        stop.display()
    );
    let child = s
        .exec(&[], &[python.to_str().unwrap(), "-c", &code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.upstream.count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the app never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rotated = logs::secret("ghp_exec0rotated0value0123456789abcdef");
    write_atomic(&s.path("token"), &format!("{rotated}\n"));
    let bearer = format!("Bearer {rotated}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s
        .upstream
        .seen()
        .iter()
        .any(|r| r.header("authorization") == Some(bearer.as_str()))
    {
        assert!(Instant::now() < deadline, "the rotated value never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&stop, "").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_ok(&out);
    let seen = s.upstream.seen();
    let first = seen[0].header("authorization").unwrap().to_owned();
    assert_eq!(first, format!("Bearer {}", s.token));
    let asked: usize = stdout(&out).trim().parse().unwrap();
    assert_eq!(asked, seen.len(), "every request came from the one process");
    logs::assert_no_secret_in("sidekey's log", &out.stderr);
}

/// `env -0` output as a map, with what differs between two runs (ports, the
/// private folder) and what a shell adds on its own left out.
fn normalized(env0: &[u8]) -> BTreeMap<String, String> {
    let port = regex_lite(r"127.0.0.1:");
    String::from_utf8_lossy(env0)
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !["SHLVL", "_", "PWD", "OLDPWD", "SIDEKEY_EXEC_PID"].contains(k))
        .map(|(k, v)| (k.to_owned(), port(v)))
        .collect()
}

/// Replaces each `PREFIX<digits>` with `PREFIX#` and the private folder's name with `DIR`.
fn regex_lite(prefix: &'static str) -> impl Fn(&str) -> String {
    move |v: &str| {
        let mut out = String::new();
        let mut rest = v;
        while let Some(i) = rest.find(prefix) {
            out.push_str(&rest[..i + prefix.len()]);
            rest = rest[i + prefix.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
            out.push('#');
        }
        out.push_str(rest);
        match out.find("sidekey-exec-") {
            Some(i) => {
                let end = out[i..].find('/').map_or(out.len(), |e| i + e);
                format!("{}DIR{}", &out[..i], &out[end..])
            }
            None => out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_only_exports_give_bash_the_same_variables() {
    let s = Setup::new().await;
    let under_exec = s.run(&["env", "-0"]).await;
    assert_ok(&under_exec);

    let serving = s
        .exec(&["--env-only"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut serving = serving;
    let mut exports = String::new();
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(
        Duration::from_secs(20),
        serving.stdout.take().unwrap().read_to_string(&mut exports),
    )
    .await
    .expect("stdout closes once the exports are printed")
    .unwrap();
    assert!(
        exports.lines().all(|l| l.starts_with("export ")),
        "{exports}"
    );
    logs::assert_no_secret_in("the exports", exports.as_bytes());

    // bash evaluates them on the environment the test itself has (without the secret variable).
    let script = format!("{exports}\nenv -0");
    let mut bash = Command::new("bash");
    bash.args(["-c", &script])
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("SSL_CERT_FILE");
    let in_bash = bash.output().await.unwrap();
    assert_ok(&in_bash);
    let (a, b) = (normalized(&in_bash.stdout), normalized(&under_exec.stdout));
    let differing: Vec<_> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    // RUST_LOG and the secret variable are set for sidekey only; the secret one is removed under exec.
    let differing: Vec<_> = differing
        .into_iter()
        .filter(|k| !["RUST_LOG"].contains(&k.as_str()))
        .collect();
    assert!(
        differing.is_empty(),
        "differ: {differing:?}\n{a:#?}\n{b:#?}"
    );
    assert!(a.contains_key("HTTPS_PROXY") && a.contains_key("LOCAL_API"));

    // And the evaluated variables work: curl reaches the upstream through the still-serving sidekey.
    let script = format!("{exports}\ncurl -sS https://{HOST}/v1/evaluated");
    let curl = Command::new("bash")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert_ok(&curl);
    assert_eq!(stdout(&curl), "ok /v1/evaluated");
    s.upstream_got_credential(1);

    let pid = serving.id().unwrap().to_string();
    assert!(exports.contains(&format!("export SIDEKEY_EXEC_PID={pid}")));
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), serving.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "stops cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_token_issued_for_the_run_is_revoked_when_the_command_ends() {
    logs::init();
    let secret = logs::secret("exec-client-secret-5d1c0e9a77");
    let peer = support::oauth::OidcPeer::start(
        60,
        vec![support::oauth::client(
            "payments",
            "client_secret_basic",
            Some(&secret),
            "payments:read",
            &[],
        )],
        serde_json::json!({ "keys": [] }),
    )
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-secret"), format!("{secret}\n")).unwrap();
    let config = format!(
        r#"[credentials.payments]
source = "oauth2"
token_url = "{token}"
revocation_url = "{revoke}"
client_id = "payments"
client_secret = {{ file = "{dir}/client-secret" }}
auth_method = "client_secret_basic"
scopes = ["payments:read"]

[[routes]]
name = "payments"
listen = "127.0.0.1:0"
env = "PAYMENTS_API"
upstream = "{up}"
credential = "payments"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
"#,
        token = peer.token_url(),
        revoke = peer.revocation_url(),
        dir = dir.path().display(),
        up = up.url(),
    );
    let path = dir.path().join("sidekey.toml");
    std::fs::write(&path, config).unwrap();
    // The app asks again while the first token is being fetched (503 until ready).
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .arg("exec")
        .arg("-c")
        .arg(&path)
        .args([
            "--",
            "sh",
            "-c",
            "for i in $(seq 100); do c=$(curl -s -o /dev/null -w '%{http_code}' \"$PAYMENTS_API/v1/x\"); [ \"$c\" = 200 ] && break; sleep 0.1; done; printf %s \"$c\"",
        ])
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert_ok(&out);
    assert_eq!(stdout(&out), "200");
    let token = up.seen()[0]
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let token = logs::secret(&token);
    let info = peer.introspect(&token).await;
    assert_eq!(
        info["active"], false,
        "revoked at the server when exec ended: {info}"
    );
    logs::assert_no_secret_in("sidekey's log", &out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_env_must_be_a_variable_name_on_a_tcp_listener() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k\n").unwrap();
    let route = |name: &str, listen: &str, env: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nlisten = \"{listen}\"\nenv = \"{env}\"\nupstream = \"stand-in\"\ncredential = \"k\"\ninject = {{ header = \"X-Key\" }}\n"
        )
    };
    let check = |text: String| {
        let path = dir.path().join("sidekey.toml");
        std::fs::write(&path, text).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_sidekey"))
            .arg("check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap()
    };
    let cred = format!(
        "[credentials.k]\nsource = \"file\"\npath = \"{}/key\"\n",
        dir.path().display()
    );
    let good = check(format!("{cred}{}", route("a", "127.0.0.1:0", "A_API")));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("sidekey exec sets: A_API"));

    let sock = dir.path().join("s.sock");
    let bad = check(format!(
        "{cred}{}{}",
        route("b", "127.0.0.1:0", "1-BAD"),
        route("c", &format!("unix:{}", sock.display()), "C_API")
    ));
    assert_eq!(bad.status.code(), Some(78));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("route `b`: env `1-BAD` is not a variable name"),
        "{err}"
    );
    assert!(
        err.contains("route `c`: env needs the route to listen on TCP"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_signs_with_the_placeholder_keys_and_sidekey_signs_with_the_real_ones() {
    logs::init();
    let moto = support::aws::Moto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let real_secret = logs::secret(&moto.admin.secret);
    std::fs::write(dir.path().join("id"), &moto.admin.id).unwrap();
    std::fs::write(dir.path().join("secret"), &real_secret).unwrap();
    let keys = r#"access_key_id = { file = "{dir}/id" }
secret_access_key = { file = "{dir}/secret" }"#;
    let text = support::aws::s3_config("aws", keys, &moto.url, "env = \"AWS_ENDPOINT_URL\"\n")
        .replace("{dir}", dir.path().to_str().unwrap());
    let path = dir.path().join("sidekey.toml");
    std::fs::write(&path, text).unwrap();
    let environ = dir.path().join("environ");
    // boto3 finds the endpoint in AWS_ENDPOINT_URL and the (placeholder) keys in the environment.
    let code = format!(
        "import boto3, os, shutil\nshutil.copyfile('/proc/self/environ', '{}')\ns3 = boto3.client('s3', region_name='us-east-1')\ns3.create_bucket(Bucket='exec-bucket')\ns3.put_object(Bucket='exec-bucket', Key='k', Body=b'hello')\nprint(s3.get_object(Bucket='exec-bucket', Key='k')['Body'].read().decode(), os.environ['AWS_ACCESS_KEY_ID'])",
        environ.display()
    );
    let python = root().join(".venv/bin/python");
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .arg("exec")
        .arg("-c")
        .arg(&path)
        .args(["--", python.to_str().unwrap(), "-c", &code])
        .env("RUST_LOG", "debug")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap();
    assert_ok(&out);
    assert_eq!(
        stdout(&out).trim(),
        format!("hello {}", sidekey::app::exec::AWS_PLACEHOLDER_KEY_ID)
    );
    let env = std::fs::read(&environ).unwrap();
    let text = String::from_utf8_lossy(&env);
    assert!(
        text.contains("AWS_ENDPOINT_URL=http://127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains(&moto.admin.id));
    // The same app straight to moto, with the placeholders: refused, so the signature that worked was sidekey's.
    let direct = Command::new(&python)
        .args(["-c", &code])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env(
            "AWS_ACCESS_KEY_ID",
            sidekey::app::exec::AWS_PLACEHOLDER_KEY_ID,
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            sidekey::app::exec::AWS_PLACEHOLDER_SECRET,
        )
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap();
    assert!(!direct.status.success(), "moto checks signatures");
    logs::assert_no_secret_in("the command's environment", &env);
    logs::assert_no_secret_in("sidekey's log", &out.stderr);
}
