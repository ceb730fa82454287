//! The steps the `source = "keyring"` tests share, whatever the store: the config, a `sidekey secret` run, the started binary's addresses, and the waits for a new value and for a deleted entry.

use super::binary::Running;
use super::{BEARER, Upstream, logs, route};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Credential `gh` of `source = "keyring"` for `account` in `store`, read
/// every second, used by route `r` to `upstream`.
pub fn config(account: &str, store: &str, upstream: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[credentials.gh]
source = "keyring"
account = "{account}"
store = "{store}"
interval = "1s"
{}"#,
        route("r", upstream, "gh", BEARER, "")
    )
}

/// All a finished command said: its stdout, then its stderr.
pub fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `cmd` (a `sidekey secret ...`) with `stdin` piped in; returns the
/// exit code and all it said.
pub fn run(mut cmd: Command, stdin: &str) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{cmd:?}: {e} (scripts/install-test-peers installs keyutils and gnome-keyring)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), said(&out))
}

/// Waits until the binary's route `r` and admin API listen and `gh` is
/// issued; a first request through `r` reaches `up` with `Bearer {value}`.
/// Returns the URL of that request and the admin API's address.
pub async fn serving(sk: &mut Running, up: &Upstream, value: &str) -> (String, String) {
    let (addr, admin) = (sk.route_addr("r"), sk.admin_addr());
    sk.wait_for_line(|l| l.contains("event=\"issued\""));
    let url = format!("http://{addr}/v1/user");
    let (status, _, _) = super::get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(
        up.seen()[0].header("authorization"),
        Some(format!("Bearer {value}").as_str())
    );
    (url, admin)
}

/// The inventory record of `gh` from the admin API at `admin`.
pub async fn inventory(admin: &str) -> serde_json::Value {
    let (_, _, body) = super::get(&format!("http://{admin}/v1/credentials/gh")).await;
    serde_json::from_slice(&body).unwrap()
}

/// Asserts that within 50 requests to `url`, 100 ms apart and none failing,
/// the upstream receives `Bearer {value}`.
pub async fn assert_rotated_to(url: &str, up: &Upstream, value: &str) {
    let mut rotated = false;
    for _ in 0..50 {
        let (status, _, _) = super::get(url).await;
        assert_eq!(status, 200, "no request fails during the rotation");
        if up.seen().last().unwrap().header("authorization")
            == Some(format!("Bearer {value}").as_str())
        {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new value was not picked up");
}

/// After the entry was deleted: waits up to 5 s for `gh`'s `last_error` to
/// say "no entry" and `says`; the last good value still serves at `url`,
/// and the record holds no secret.
pub async fn assert_deleted_and_kept(admin: &str, url: &str, says: &str) {
    let mut record = serde_json::Value::Null;
    for _ in 0..50 {
        record = inventory(admin).await;
        if record["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no entry"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = record["last_error"].as_str().unwrap_or_default();
    assert!(e.contains("no entry") && e.contains(says), "{record}");
    let (status, _, _) = super::get(url).await;
    assert_eq!(status, 200, "the last good value is kept");
    logs::assert_no_secret_in("the inventory", record.to_string().as_bytes());
}
