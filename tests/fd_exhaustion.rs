//! Open files: 1,100 silent connections to one route of a sidekey held to 1,024 open files (`prlimit`) leave the other route and the admin API answering; a soft limit below the hard one is raised at start; a reload that adds routes shares the limit out again among the listeners already running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::process::Command;
use std::time::Duration;
use support::binary::Running;
use support::{BEARER, Upstream, get, route, write_atomic};

#[tokio::test]
async fn held_connections_under_the_usual_file_limit_leave_other_routes_answering() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k_fd_exhaustion_1\n").unwrap();
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[credentials.k]\nsource = \"file\"\npath = \"{{dir}}/key\"\n{}{}",
        route("held", &up.url(), "k", BEARER, ""),
        route("free", &up.url(), "k", BEARER, ""),
    );
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=1024:1024", "--", env!("CARGO_BIN_EXE_sidekey")]);
    let mut sk = Running::start_with(dir.path(), &config, cmd);
    let listen = |v: &serde_json::Value| v["listen"].as_str().unwrap().to_owned();
    let held = listen(&sk.wait_for(|v| v["message"] == "route listening" && v["route"] == "held"));
    let free = listen(&sk.wait_for(|v| v["message"] == "route listening" && v["route"] == "free"));
    let admin = listen(&sk.wait_for(|v| v["message"] == "admin API listening"));

    // 1,100 connections that never send a byte, more than the process may open.
    let mut silent = Vec::new();
    for _ in 0..1100 {
        silent.push(std::net::TcpStream::connect(&held).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let answers = async {
        let (status, _, _) = get(&format!("http://{free}/v1/ok")).await;
        assert_eq!(status, 200, "the other route");
        let (status, _, _) = get(&format!("http://{admin}/healthz")).await;
        assert_eq!(status, 200, "/healthz");
        let (status, _, _) = get(&format!("http://{admin}/readyz")).await;
        assert_eq!(status, 200, "/readyz");
        let (_, _, metrics) = get(&format!("http://{admin}/metrics")).await;
        String::from_utf8_lossy(&metrics).into_owned()
    };
    let metrics = tokio::time::timeout(Duration::from_secs(5), answers)
        .await
        .expect("the other route and the admin API answer within 5 s");
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("sidekey_connections_refused_total{route=\"held\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no refusal count for `held` in:\n{metrics}"));
    assert!(refused > 0, "{refused} connections refused");
    drop(silent);
    drop(sk);
}

/// A soft open-file limit below the hard one is raised to it at start
/// (a shell's default soft limit of 1,024 would otherwise cap every
/// listener), and the log says from what to what.
#[tokio::test]
async fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k_fd_raise_1\n").unwrap();
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[credentials.k]\nsource = \"file\"\npath = \"{{dir}}/key\"\n{}",
        route("r", &up.url(), "k", BEARER, ""),
    );
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=256:2048", "--", env!("CARGO_BIN_EXE_sidekey")]);
    let mut sk = Running::start_with(dir.path(), &config, cmd);
    let line = sk.wait_for(|v| v["message"] == "open-file limit");
    assert_eq!(line["was"], "256", "{line}");
    assert_eq!(line["soft"], "2048", "{line}");
    sk.wait_for(|v| v["message"] == "route listening");
    // What the kernel holds for the process, not only what it logged.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", sk.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let soft: Vec<&str> = open_files.split_whitespace().collect();
    assert_eq!(soft[3], "2048", "{open_files}");
    drop(sk);
}

/// A reload that adds a route lowers the cap of a listener that keeps
/// running, so the listeners together still fit the open-file limit: under
/// 300 open files one route may hold (300 - 64 - 64) / 2 = 86 connections,
/// two routes (300 - 128) / 4 = 43 each; the 44th connection to the first
/// route is refused with `503 too_many_connections`.
#[tokio::test]
async fn a_reload_that_adds_routes_shares_the_file_limit_out_again() {
    use std::io::{Read, Write};
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k_fd_reshare_1\n").unwrap();
    let head = "[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[credentials.k]\nsource = \"file\"\npath = \"{dir}/key\"\n";
    let one = format!("{head}{}", route("a", &up.url(), "k", BEARER, ""));
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=300:300", "--", env!("CARGO_BIN_EXE_sidekey")]);
    let mut sk = Running::start_with(dir.path(), &one, cmd);
    let a = sk.wait_for(|v| v["message"] == "route listening" && v["route"] == "a");
    assert_eq!(a["max_connections"], 86, "{a}");
    let a = a["listen"].as_str().unwrap().to_owned();

    let two = format!("{one}{}", route("b", &up.url(), "k", BEARER, ""));
    let path = dir.path().join("sidekey.toml");
    write_atomic(&path, &two.replace("{dir}", dir.path().to_str().unwrap()));
    let hup = Command::new("kill")
        .args(["-HUP", &sk.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    sk.wait_for(|v| v["message"] == "route listening" && v["route"] == "b");
    let again = sk.wait_for(|v| {
        v["message"] == "connection cap shared out again for the reloaded routes"
            && v["route"] == "a"
    });
    assert_eq!(again["max_connections"], 43, "{again}");
    assert_eq!(again["was"], 86, "{again}");

    let mut held = Vec::new();
    for _ in 0..43 {
        held.push(std::net::TcpStream::connect(&a).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = std::net::TcpStream::connect(&a).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"),
        "the 44th connection: {answer:?}"
    );
    assert!(answer.contains("maximum of 43 connections"), "{answer}");
    drop(held);
    drop(sk);
}

/// Out of file descriptors for real: the admin listener's cap (64) does not
/// fit under 80 open files, so held admin connections make `accept` fail
/// with EMFILE. The failures are logged at most once a second with a count
/// of those not logged (the loop backs off instead of spinning), and once
/// the connections close the listener serves again.
#[tokio::test]
async fn accept_failures_back_off_and_are_logged_at_a_bounded_rate() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k_fd_accept_1\n").unwrap();
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[credentials.k]\nsource = \"file\"\npath = \"{{dir}}/key\"\n{}",
        route("r", &up.url(), "k", BEARER, ""),
    );
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=80:80", "--", env!("CARGO_BIN_EXE_sidekey")]);
    let mut sk = Running::start_with(dir.path(), &config, cmd);
    let admin = sk.wait_for(|v| v["message"] == "admin API listening")["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    sk.wait_for(|v| v["event"] == "issued");

    let held: Vec<_> = (0..100)
        .map(|_| std::net::TcpStream::connect(&admin).unwrap())
        .collect();
    let first =
        sk.wait_for(|v| v["target"] == "sidekey::proxy::accept" && v["listener"] == "admin");
    let message = first["message"].as_str().unwrap();
    assert!(message.starts_with("accept failed"), "{first}");
    assert!(message.contains("out of file descriptors"), "{first}");
    let second = sk.wait_for(|v| {
        v["target"] == "sidekey::proxy::accept"
            && v["listener"] == "admin"
            && v["timestamp"] != first["timestamp"]
    });
    // Seconds of the day from the lines' own timestamps (`...THH:MM:SS.ffffffZ`).
    let at = |v: &serde_json::Value| -> f64 {
        let t = v["timestamp"].as_str().unwrap();
        let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
        let parts: Vec<f64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let gap = at(&second) - at(&first);
    assert!(
        gap >= 0.9,
        "a second warning only after a second: {gap} s between\n{first}\n{second}"
    );
    // Waits of 10, 20, 40 ... ms: a handful of retries in that second, not
    // the thousands of a loop that spins on a failing accept.
    let retried = second["suppressed"].as_u64().unwrap();
    assert!(
        (1..=20).contains(&retried),
        "the retries in between are few, and counted, not logged: {second}"
    );
    assert_eq!(second["retry_in_ms"], 1000, "backed off to 1 s: {second}");

    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "1",
            ])
            .arg(format!("http://{admin}/healthz"))
            .output()
            .unwrap();
        if out.stdout == b"200" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the admin API answers again once the connections are gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(sk);
}
