//! The admin page's browser driver (tests/peers/admin-page/drive.mjs: playwright-core and the system
//! Chromium) as the Rust tests run it, and the inventory reads they check the page against.

use super::{Sidekey, get, logs};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Where the tests save their screenshots (created).
pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The driver, one JSON line per step.
pub struct Driver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    /// Runs `drive.mjs` with `args` (its mode first).
    pub fn start(args: &[&str]) -> Driver {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/admin-page");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is missing: run scripts/install-test-peers"
        );
        assert!(
            std::path::Path::new("/usr/bin/chromium").exists(),
            "chromium is missing: run scripts/install-test-peers"
        );
        let mut child = Command::new("node")
            .arg(dir.join("drive.mjs"))
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install Node.js 20 or later)");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Driver { child, lines }
    }

    /// The next step the driver reports; it must be `step`.
    pub async fn step(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser did not report `{step}` within 90 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("the driver ended before `{step}` (its error is above)"));
        logs::assert_no_secret_in(step, line.as_bytes());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["step"], step, "{v}");
        v
    }

    /// Waits for the driver to end; it must succeed.
    pub async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the driver ends")
            .unwrap();
        assert!(status.success(), "the driver failed: {status}");
    }
}

/// `name`'s record in the admin API's inventory.
pub async fn record(sk: &Sidekey, name: &str) -> Value {
    let (status, _, body) = get(&format!("{}/v1/credentials/{name}", sk.admin())).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// Waits up to 20 s for `name`'s inventory record to satisfy `done`.
pub async fn wait_record(sk: &Sidekey, name: &str, what: &str, done: impl Fn(&Value) -> bool) {
    for _ in 0..200 {
        if done(&record(sk, name).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {}", record(sk, name).await);
}

/// The page's console errors, but for failed loads answered 404 (the browser's own
/// favicon request) or one of the `expected` statuses.
pub fn unexpected_errors<'a>(problems: &'a Value, expected: &[u16]) -> Vec<&'a str> {
    problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .filter(|p| {
            ![404].iter().chain(expected).any(|s| {
                p.starts_with(&format!(
                    "Failed to load resource: the server responded with a status of {s} "
                ))
            })
        })
        .collect()
}
