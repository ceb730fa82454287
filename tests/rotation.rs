//! Rotation under load: the credential file is rotated 60 times (in-place rewrite and the Kubernetes `..data`
//! symlink swap) while 8 clients send continuously. Every response is 2xx and the new value shows up promptly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use sidekey::sync::Mutex;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Reply, Sidekey, Upstream, get, logs};

/// The upstream accepts every value issued so far (old values stay valid
/// during a rotation, as real APIs do) and 401s anything else.
fn accepting(
    issued: Arc<Mutex<HashSet<String>>>,
) -> impl Fn(&support::Seen) -> Reply + Send + Sync + 'static {
    move |s| match s.header("x-key") {
        Some(v) if issued.lock().contains(v) => Reply::ok("ok"),
        _ => Reply::status(401),
    }
}

async fn rotate_under_load(
    sk: &Sidekey,
    up: &Upstream,
    issued: &Arc<Mutex<HashSet<String>>>,
    rotate: impl Fn(&str),
) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed, url) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            format!("{}/v1/x", sk.url("r")),
        );
        clients.push(tokio::spawn(async move {
            let client = support::client();
            while !stop.load(Ordering::Relaxed) {
                // Paced a little: continuous traffic, not a benchmark (every line is logged at trace).
                tokio::time::sleep(Duration::from_millis(2)).await;
                let (status, body) = support::get_with(&client, &url).await;
                if status.is_success() {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed
                        .lock()
                        .push((status, String::from_utf8_lossy(&body).into_owned()));
                }
            }
        }));
    }
    let mut worst = Duration::ZERO;
    for i in 0..60 {
        let value = logs::secret(&format!("rot_value_{i:03}_{}", i * 7919));
        issued.lock().insert(value.clone());
        let seen_before = up.count();
        let t = Instant::now();
        rotate(&value);
        // The upstream must see the new value within a bounded time.
        loop {
            let fresh = up
                .seen()
                .iter()
                .skip(seen_before)
                .any(|s| s.header("x-key") == Some(value.as_str()));
            if fresh {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "rotation {i}: new value not seen within 3 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worst = worst.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failed = failed.lock();
    assert!(
        failed.is_empty(),
        "{} failed requests, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "load was too light to mean anything"
    );
    eprintln!(
        "{} requests, worst rotation-to-first-use {:?}",
        ok.load(Ordering::Relaxed),
        worst
    );
}

const CONFIG: &str = r#"
[admin]
listen = "127.0.0.1:0"
[credentials.k]
source = "file"
path = "{dir}/secret/key"
[[routes]]
name = "r"
listen = "127.0.0.1:0"
upstream = "UPSTREAM"
credential = "k"
inject = { header = "X-Key" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_place_rewrite_under_load() {
    let issued = Arc::new(Mutex::new(HashSet::new()));
    let up = Upstream::start(accepting(issued.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secret")).unwrap();
    let first = logs::secret("rot_first_value_0001");
    issued.lock().insert(first.clone());
    std::fs::write(dir.path().join("secret/key"), &first).unwrap();
    let sk = Sidekey::start_in(dir, &CONFIG.replace("UPSTREAM", &up.url())).await;
    sk.wait_ready(5).await;
    let path = sk.path("secret/key");
    // In place, as an operator's `echo new > key` would: truncate, then write.
    rotate_under_load(&sk, &up, &issued, |v| {
        std::fs::write(&path, format!("{v}\n")).unwrap()
    })
    .await;
    let rec: serde_json::Value =
        serde_json::from_slice(&get(&format!("{}/v1/credentials/k", sk.admin())).await.2).unwrap();
    assert!(rec["rotations"].as_u64().unwrap() >= 60, "{rec}");
    sk.stop().await;
}

/// The Kubernetes Secret volume layout: `key -> ..data/key`, `..data -> ..<timestamp>`;
/// an update writes a new timestamped folder and renames a new `..data` link over the old one.
fn k8s_swap(root: &Path, n: usize, value: &str) {
    let stamp = format!("..2026_11_28_{n:06}");
    let dir = root.join(&stamp);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("key"), value).unwrap();
    let tmp = root.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).unwrap();
    let old = std::fs::read_link(root.join("..data")).ok();
    std::fs::rename(&tmp, root.join("..data")).unwrap();
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(root.join(old));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubernetes_symlink_swap_under_load() {
    let issued = Arc::new(Mutex::new(HashSet::new()));
    let up = Upstream::start(accepting(issued.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("secret");
    std::fs::create_dir(&root).unwrap();
    let first = logs::secret("k8s_first_value_0001");
    issued.lock().insert(first.clone());
    k8s_swap(&root, 0, &first);
    std::os::unix::fs::symlink("..data/key", root.join("key")).unwrap();
    let sk = Sidekey::start_in(dir, &CONFIG.replace("UPSTREAM", &up.url())).await;
    sk.wait_ready(5).await;
    let counter = AtomicU64::new(1);
    rotate_under_load(&sk, &up, &issued, |v| {
        k8s_swap(&root, counter.fetch_add(1, Ordering::Relaxed) as usize, v)
    })
    .await;
    sk.stop().await;
}
