//! sidekey at trace level, its log written into the folder it watches (next to the config and the credential file): the log does not feed itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::process::{Command, Stdio};
use std::time::Duration;

/// CPU time (user + system) a process used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel reports USER_HZ ticks, 100 a second on Linux.
    Duration::from_millis(ticks * 10)
}

#[test]
fn a_trace_log_next_to_the_config_does_not_feed_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "loop-test-key-0123456789").unwrap();
    std::fs::write(
        dir.path().join("sidekey.toml"),
        r#"[admin]
listen = "127.0.0.1:0"
[credentials.c]
source = "file"
path = "key"
[[routes]]
name = "r"
listen = "127.0.0.1:0"
upstream = "stand-in"
credential = "c"
inject = { header = "X-Key" }
"#,
    )
    .unwrap();
    let log_path = dir.path().join("sidekey.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["run", "-c"])
        .arg(dir.path().join("sidekey.toml"))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_time(child.id());
    let size = std::fs::metadata(&log_path).unwrap().len();
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        text.contains("route listening"),
        "sidekey did not start:\n{}",
        &text[..text.len().min(2000)]
    );
    // Start-up at trace writes a few kilobytes; the loop wrote megabytes a second.
    assert!(size < 256 * 1024, "{size} bytes of log in 3 s");
    assert!(cpu < Duration::from_millis(1000), "{cpu:?} of CPU in 3 s");
}
