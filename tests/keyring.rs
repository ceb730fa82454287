//! `source = "keyring"` against the Linux kernel keyring: `sidekey secret set` stores a value typed or
//! piped in, a running sidekey injects it and picks up a new one without a restart, `sidekey secret rm`
//! deletes it (the last good value is kept, the inventory says why), and no value reaches a log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::binary::Running;
use support::{BEARER, Upstream, logs, route};

const SIDEKEY: &str = env!("CARGO_BIN_EXE_sidekey");

/// A command in a new session keyring of its own (`keyctl session -`), as
/// two terminals or logins of one user have: a value stored from one must
/// reach a sidekey started from another.
fn in_session(args: &[&str]) -> Command {
    let mut cmd = Command::new("keyctl");
    cmd.args(["session", "-", SIDEKEY]).args(args);
    cmd
}

/// Runs `sidekey secret ARGS` with `stdin` piped in; returns the exit code and stderr.
fn secret(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = in_session(&[&["secret"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyctl runs (scripts/install-test-peers installs keyutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), all)
}

fn config(account: &str, upstream: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[credentials.gh]
source = "keyring"
account = "{account}"
store = "kernel"
interval = "1s"
{}"#,
        route("r", upstream, "gh", BEARER, "")
    )
}

async fn inventory(admin: &str) -> serde_json::Value {
    let (_, _, body) = support::get(&format!("http://{admin}/v1/credentials/gh")).await;
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_value_is_injected_rotated_without_restart_and_removed() {
    let account = format!("test-{}-{}", std::process::id(), rand_suffix());
    let (v1, v2) = (
        logs::secret("kr-first-9d1c07"),
        logs::secret("kr-second-44ab3e"),
    );
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();

    // Before anything is stored, `check` says how to store it.
    std::fs::write(dir.path().join("sidekey.toml"), config(&account, &up.url())).unwrap();
    let out = in_session(&[
        "check",
        "-c",
        dir.path().join("sidekey.toml").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{said}");
    assert!(
        said.contains(&format!("sidekey secret set {account}")),
        "{said}"
    );

    let (code, said) = secret(&["set", &account], &format!("{v1}\n"));
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("stored") && !said.contains(&v1), "{said}");

    let mut sk = Running::start_with(dir.path(), &config(&account, &up.url()), in_session(&[]));
    let line = sk.wait_for_line(|l| l.contains("route listening") && l.contains("route=r "));
    let addr = line
        .split_once("listen=")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let line = sk.wait_for_line(|l| l.contains("admin API listening"));
    let admin = line
        .split_once("listen=")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    sk.wait_for_line(|l| l.contains("event=\"issued\""));

    let url = format!("http://{addr}/v1/user");
    let (status, _, _) = support::get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(
        up.seen()[0].header("authorization"),
        Some(format!("Bearer {v1}").as_str())
    );

    // A new value, stored while sidekey runs, is in use within a few reads.
    let (code, said) = secret(&["set", &account], &v2);
    assert_eq!(code, 0, "{said}");
    let mut rotated = false;
    for _ in 0..50 {
        let (status, _, _) = support::get(&url).await;
        assert_eq!(status, 200, "no request fails during the rotation");
        if up.seen().last().unwrap().header("authorization")
            == Some(format!("Bearer {v2}").as_str())
        {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new value was not picked up");

    // Deleted: the last good value stays in use, and the inventory says why.
    let (code, said) = secret(&["rm", &account], "");
    assert_eq!(code, 0, "{said}");
    let mut record = serde_json::Value::Null;
    for _ in 0..50 {
        record = inventory(&admin).await;
        if record["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no entry"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = record["last_error"].as_str().unwrap_or_default();
    assert!(
        e.contains("no entry") && e.contains("sidekey secret set"),
        "{record}"
    );
    let (status, _, _) = support::get(&url).await;
    assert_eq!(status, 200, "the last good value is kept");
    logs::assert_no_secret_in("the inventory", record.to_string().as_bytes());

    // Deleting again, or storing nothing, fails with a clear word.
    let (code, said) = secret(&["rm", &account], "");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("no entry"), "{said}");
    let (code, said) = secret(&["set", &account], "");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("empty"), "{said}");

    let _ = sk.child.kill();
    let (_, log) = sk.finish();
    logs::assert_no_secret_in("sidekey's trace log", log.join("\n").as_bytes());
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}
