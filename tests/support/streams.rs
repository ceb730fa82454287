//! Stream test peers: the grpcio and websockets servers of `streams_peer.py`, run from the test venv until dropped, and its clients.

use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A server process of `streams_peer.py`, killed when dropped.
pub struct Server {
    pub port: u16,
    _child: Child,
    _stdout: BufReader<tokio::process::ChildStdout>,
}

impl Server {
    /// Starts `streams_peer.py {args}` and waits for the port it prints.
    pub async fn start(args: &[&str]) -> Server {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/streams_peer.py");
        let mut child = Command::new(super::aws::venv_bin("python"))
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start streams_peer.py");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the peer prints its port within 30 s")
            .unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the peer prints JSON, got {line:?}"));
        Server {
            port: v["port"].as_u64().unwrap() as u16,
            _child: child,
            _stdout: stdout,
        }
    }
}

/// Runs a client of `streams_peer.py` and returns the JSON it prints.
pub async fn client(args: &[&str]) -> Value {
    super::aws::python("streams_peer.py", args, None).await
}
