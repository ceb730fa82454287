//! `source = "keyring"` against the Linux kernel keyring: `sidekey secret set` stores a value typed or
//! piped in, a running sidekey injects it and picks up a new one without a restart, `sidekey secret rm`
//! deletes it (the last good value is kept, the inventory says why), and no value reaches a log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::process::Command;
use support::binary::Running;
use support::{Upstream, keyring, logs};

const SIDEKEY: &str = env!("CARGO_BIN_EXE_sidekey");

/// A command in a new session keyring of its own (`keyctl session -`), as
/// two terminals or logins of one user have: a value stored from one must
/// reach a sidekey started from another.
fn in_session(args: &[&str]) -> Command {
    let mut cmd = Command::new("keyctl");
    cmd.args(["session", "-", SIDEKEY]).args(args);
    cmd
}

/// Runs `sidekey secret ARGS` with `stdin` piped in; returns the exit code and all it said.
fn secret(args: &[&str], stdin: &str) -> (i32, String) {
    keyring::run(in_session(&[&["secret"], args].concat()), stdin)
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
    let config = keyring::config(&account, "kernel", &up.url());
    std::fs::write(dir.path().join("sidekey.toml"), &config).unwrap();
    let out = in_session(&[
        "check",
        "-c",
        dir.path().join("sidekey.toml").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let said = keyring::said(&out);
    assert_eq!(out.status.code(), Some(78), "{said}");
    assert!(
        said.contains(&format!("sidekey secret set {account}")),
        "{said}"
    );

    let (code, said) = secret(&["set", &account], &format!("{v1}\n"));
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("stored") && !said.contains(&v1), "{said}");

    let mut sk = Running::start_with(dir.path(), &config, in_session(&[]));
    let (url, admin) = keyring::serving(&mut sk, &up, &v1).await;

    // A new value, stored while sidekey runs, is in use within a few reads.
    let (code, said) = secret(&["set", &account], &v2);
    assert_eq!(code, 0, "{said}");
    keyring::assert_rotated_to(&url, &up, &v2).await;

    // Deleted: the last good value stays in use, and the inventory says why.
    let (code, said) = secret(&["rm", &account], "");
    assert_eq!(code, 0, "{said}");
    keyring::assert_deleted_and_kept(&admin, &url, "sidekey secret set").await;

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
