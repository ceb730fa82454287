//! curl as the app: requests to sidekey from the client people actually use, answers parsed.

use tokio::process::Command;

/// What curl received.
pub struct Answer {
    pub status: u16,
    /// Header lines, names lower-cased: `name: value`.
    pub headers: Vec<String>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::trim))
    }
}

/// Runs `curl -sS -i ARGS...` and parses the (last) answer.
pub async fn curl(args: &[&str]) -> Answer {
    run(Command::new("curl"), args).await
}

/// Runs curl as another user (`setpriv`, so the test must run as root) and
/// parses the (last) answer: a caller sidekey should tell apart from its owner.
pub async fn curl_as(uid: u32, gid: u32, args: &[&str]) -> Answer {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs curl under another UID with setpriv, which needs root (CI runs as root)"
    );
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "curl".into(),
    ]);
    run(cmd, args).await
}

async fn run(mut cmd: Command, args: &[&str]) -> Answer {
    let out = cmd
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .output()
        .await
        .expect("curl runs (install curl)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rest = text.as_str();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        // A proxy's `100 Continue` or CONNECT `200 Connection established`
        // comes before the answer itself.
        if status == 100 || body.starts_with("HTTP/") {
            rest = body;
            continue;
        }
        let headers = lines
            .map(|l| match l.split_once(':') {
                Some((n, v)) => format!("{}: {}", n.to_ascii_lowercase(), v.trim()),
                None => l.to_owned(),
            })
            .collect();
        return Answer {
            status,
            headers,
            body: body.to_owned(),
        };
    }
}

/// Runs `curl -sS -N ARGS...` (`-N`: each piece written as it arrives) and
/// returns each part of its output that ends in a blank line (a server-sent
/// event), with the wall-clock time it was read in nanoseconds since the
/// Unix epoch (the clock of Python's `time.time_ns()`), and the text after
/// the last one (what `-w` wrote).
pub async fn events(args: &[&str]) -> (Vec<(String, u128)>, String) {
    use tokio::io::AsyncReadExt;
    let mut child = Command::new("curl")
        .args(["-sS", "-N", "--max-time", "30"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("curl runs (install curl)");
    let mut out = child.stdout.take().unwrap();
    let (mut got, mut text, mut buf) = (Vec::new(), String::new(), vec![0u8; 16 << 10]);
    loop {
        let n = out.read(&mut buf).await.unwrap();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        if n == 0 {
            break;
        }
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            got.push((event[..end].to_owned(), at));
        }
    }
    assert!(child.wait().await.unwrap().success(), "curl failed");
    (got, text)
}
