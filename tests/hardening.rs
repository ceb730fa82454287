//! Process hardening of the binary: not dumpable, `source = "env"` secrets gone from `/proc/PID/environ` yet still injected, and exec helpers started with a clean environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use support::binary::Running;
use support::{Upstream, logs, route};

const VAR: &str = "SIDEKEY_TEST_ENV_KEY";
/// The admin token's variable: a `{ env = "..." }` reference, moved out too.
const TOKEN_VAR: &str = "SIDEKEY_TEST_ADMIN_TOKEN";

/// A credential from `VAR` on route `r` to `upstream`, and one from an exec
/// helper that writes its environment to `{dir}/helper-env`, on route `h`.
fn config(upstream: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"
token = {{ env = "{TOKEN_VAR}" }}
[log]
format = "text"
[credentials.k]
source = "env"
var = "{VAR}"
[credentials.h]
source = "exec"
command = ["/bin/sh", "-c", "env > {{dir}}/helper-env; echo helper-token-1"]
env = {{ CONFIGURED = "yes" }}
{}{}"#,
        route("r", upstream, "k", r#"{ header = "X-Key" }"#, ""),
        route("h", upstream, "h", r#"{ header = "X-Key" }"#, "")
    )
}

/// Starts the binary with the env secret (and one unrelated variable) in its
/// environment; waits until route `r` listens and the helper has run.
/// Returns the route's address.
fn start(dir: &Path, secret: &str, upstream: &str, cmd: Command) -> (Running, String) {
    let mut cmd = cmd;
    cmd.env(VAR, secret)
        .env(TOKEN_VAR, format!("{secret}-admin"))
        .env("SIDEKEY_TEST_UNRELATED", "not-for-helpers");
    let mut sk = Running::start_with(dir, &config(upstream), cmd);
    let addr = sk.route_addr("r");
    sk.wait_for_line(|l| l.contains("event=\"issued\"") && l.contains("credential=\"h\""));
    (sk, addr)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

#[tokio::test]
async fn env_secret_is_not_in_proc_environ_and_still_injected() {
    let secret = logs::secret("env_secret_value_8f3a2c");
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = Command::new(env!("CARGO_BIN_EXE_sidekey"));
    let (mut sk, addr) = start(dir.path(), &secret, &up.url(), cmd);

    let (status, _, _) = support::get(&format!("http://{addr}/v1/x")).await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].header("x-key"), Some(secret.as_str()));
    // The admin token came through the handover too: a POST needs it.
    let token = logs::secret(&format!("{secret}-admin"));
    let admin = sk.admin_addr();
    let refresh = format!("http://{admin}/v1/credentials/k/refresh");
    let (status, _, _) = support::send(http::Method::POST, &refresh, &[], "").await;
    assert_eq!(status, 401, "a POST without the admin token");
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let (status, _, body) = support::send(http::Method::POST, &refresh, &auth, "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let environ = format!("/proc/{}/environ", sk.child.id());
    match std::fs::read(&environ) {
        Ok(block) => {
            let text = String::from_utf8_lossy(&block);
            assert!(!text.contains(&secret), "the secret is in {environ}");
            assert!(!text.contains(VAR), "{VAR} is still in {environ}");
            assert!(
                !text.contains(TOKEN_VAR),
                "{TOKEN_VAR} is still in {environ}"
            );
            assert!(text.contains("SIDEKEY_TEST_UNRELATED="), "{text}");
        }
        // Not root: a non-dumpable process's environ is root's alone.
        Err(e) => assert!(!running_as_root(), "cannot read {environ}: {e}"),
    }
}

#[tokio::test]
async fn exec_helpers_get_a_clean_environment() {
    let secret = logs::secret("env_secret_value_77d1e0");
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = Command::new(env!("CARGO_BIN_EXE_sidekey"));
    let (_sk, _) = start(dir.path(), &secret, &up.url(), cmd);

    let env = std::fs::read_to_string(dir.path().join("helper-env")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"CONFIGURED"), "{env}");
    assert!(names.contains(&"PATH"), "{env}");
    assert!(!env.contains(&secret), "the helper saw the env secret");
    for n in &names {
        let allowed = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "CONFIGURED"];
        // What sh sets itself.
        let shell = ["PWD", "SHLVL", "_", "OLDPWD"];
        assert!(
            allowed.contains(n) || shell.contains(n) || n.starts_with("LC_"),
            "the helper inherited {n}: {env}"
        );
    }
}

/// A non-dumpable process's `/proc/PID` files belong to root (proc(5)); a
/// dumpable one's to its own user. As root, sidekey runs as `nobody` here so
/// that the owner tells the two apart.
#[tokio::test]
async fn process_is_not_dumpable() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd;
    if running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // `nobody` must reach the binary and the scratch folder.
        let bin = dir.path().join("sidekey");
        std::fs::copy(env!("CARGO_BIN_EXE_sidekey"), &bin).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        cmd = Command::new(&bin);
        cmd.uid(65534).gid(65534);
    } else {
        cmd = Command::new(env!("CARGO_BIN_EXE_sidekey"));
    }
    let (sk, _) = start(dir.path(), "env_secret_value_0b9e44", &up.url(), cmd);
    let proc_dir = format!("/proc/{}", sk.child.id());
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid.split_whitespace().any(|u| u == "0"),
        "sidekey runs as root: {uid}"
    );
    for file in ["environ", "mem"] {
        let owner = std::fs::metadata(format!("{proc_dir}/{file}"))
            .unwrap()
            .uid();
        assert_eq!(
            owner, 0,
            "{proc_dir}/{file} belongs to uid {owner}: sidekey is dumpable"
        );
    }
}
