//! The sidekey binary as a child process: started on a config, its log lines read as they come, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `sidekey run` child process. Dropping it kills the process.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    /// Runs the test build of the binary on `config` (`{dir}` replaced by
    /// `dir`), logging at trace level to a pipe this side reads.
    pub fn start(dir: &Path, config: &str) -> Running {
        Self::start_with(dir, config, Command::new(env!("CARGO_BIN_EXE_sidekey")))
    }

    /// [`Running::start`] with a command of the caller's (another binary
    /// path, environment variables, a user to run as).
    pub fn start_with(dir: &Path, config: &str, mut cmd: Command) -> Running {
        let path = dir.join("sidekey.toml");
        std::fs::write(&path, config.replace("{dir}", dir.to_str().unwrap())).unwrap();
        cmd.args(["run", "-c"]).arg(&path);
        Self::spawn(cmd)
    }

    /// Runs `cmd`, a whole `sidekey run` command line, logging at trace level
    /// (unless `cmd` sets or removes `RUST_LOG`) to a pipe this side reads.
    pub fn spawn(mut cmd: Command) -> Running {
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "trace");
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The first log line, read so far or from now on, that satisfies `f`.
    /// (Start-up lines come in no fixed order: the credential may be issued
    /// before or after the routes listen.)
    pub fn wait_for_line(&mut self, f: impl Fn(&str) -> bool) -> String {
        if let Some(seen) = self.log.iter().find(|l| f(l)) {
            return seen.clone();
        }
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| {
                    panic!(
                        "no such log line ({e}); the log so far:\n{}",
                        self.log.join("\n")
                    )
                });
            self.log.push(line.clone());
            if f(&line) {
                return line;
            }
        }
    }

    /// Waits until route `route` listens; returns the address its log line names.
    pub fn route_addr(&mut self, route: &str) -> String {
        let tag = format!("route={route} ");
        listen_addr(&self.wait_for_line(|l| l.contains("route listening") && l.contains(&tag)))
    }

    /// Waits until the admin API listens; returns the address its log line names.
    pub fn admin_addr(&mut self) -> String {
        listen_addr(&self.wait_for_line(|l| l.contains("admin API listening")))
    }

    /// Reads log lines until a JSON one satisfies `f`.
    pub fn wait_for(&mut self, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let json = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok();
        let line = self.wait_for_line(|l| json(l).is_some_and(|v| f(&v)));
        json(&line).expect("a JSON line")
    }

    pub fn finish(mut self) -> (i32, Vec<String>) {
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(l);
        }
        (status.code().unwrap_or(-1), std::mem::take(&mut self.log))
    }
}

/// The address after `listen=` in a log line.
fn listen_addr(line: &str) -> String {
    line.split_once("listen=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(|a| a.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no listen address in {line}"))
}

impl Drop for Running {
    /// A failed test must not leave its sidekey running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
