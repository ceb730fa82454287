//! Config hot reload under continuous traffic: add a route, remove a route, change a route,
//! break the file, SIGHUP — with no failed request on the routes that were not touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{Sidekey, Upstream, get, logs, write_atomic};

fn cred(name: &str) -> String {
    format!("[credentials.{name}]\nsource = \"file\"\npath = \"{{dir}}/{name}\"\n")
}

fn route(name: &str, cred: &str, up: &Upstream, header: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\ncredential = \"{cred}\"\ninject = {{ header = \"{header}\", format = \"Bearer {{secret}}\" }}\n",
        up.url()
    )
}

/// Sends requests to `url` in a loop until stopped; returns every status seen.
fn traffic(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u16>> {
    tokio::spawn(async move {
        let mut statuses = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            statuses.push(get(&format!("{url}/t")).await.0.as_u16());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        statuses
    })
}

async fn config_status(sk: &Sidekey) -> serde_json::Value {
    let (status, _, body) = get(&format!("{}/v1/config/status", sk.admin())).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

async fn eventually(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ok().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_changes_routes_and_keeps_a_broken_file_out() {
    let up = Upstream::start(|s: &support::Seen| {
        let reply = support::Reply::ok("ok");
        if s.target == "/slow" {
            reply.delayed(Duration::from_millis(600))
        } else {
            reply
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    for k in ["ka", "kb", "kc"] {
        std::fs::write(
            dir.path().join(k),
            logs::secret(&format!("reload-value-{k}")),
        )
        .unwrap();
    }
    let head = "[admin]\nlisten = \"127.0.0.1:0\"\n".to_string();
    let v1 = format!(
        "{head}{}{}{}{}",
        cred("ka"),
        cred("kb"),
        route("a", "ka", &up, "Authorization"),
        route("b", "kb", &up, "Authorization")
    );
    let sk = Sidekey::start_in(dir, &v1).await;
    sk.wait_ready(10).await;
    let file = sk.path("sidekey.toml");
    let write = |text: &str| {
        write_atomic(
            &file,
            &text.replace("{dir}", sk.dir.path().to_str().unwrap()),
        )
    };
    sk.app.watch_config();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let ka = sk.app.credential("ka").unwrap();
    let ka_generation = ka.current().unwrap().generation;
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = traffic(sk.url("a"), stop.clone());
    let b_url = sk.url("b");
    assert_eq!(get(&format!("{b_url}/t")).await.0, 200);

    // 1. Add route c with a new credential.
    let v2 = format!(
        "{head}{}{}{}{}{}{}",
        cred("ka"),
        cred("kb"),
        cred("kc"),
        route("a", "ka", &up, "Authorization"),
        route("b", "kb", &up, "Authorization"),
        route("c", "kc", &up, "Authorization")
    );
    write(&v2);
    eventually("route c listens", async || sk.app.route_addr("c").is_some()).await;
    let c_url = sk.url("c");
    assert_eq!(get(&format!("{c_url}/t")).await.0, 200);
    let on_c = traffic(c_url.clone(), stop.clone());

    // 2. Remove route b (and its credential); a request in flight on it finishes.
    let slow_url = format!("{b_url}/slow");
    let slow = tokio::spawn(async move { get(&slow_url).await });
    eventually("the slow request reaches the upstream", async || {
        up.seen().iter().any(|s| s.target == "/slow")
    })
    .await;
    let v3 = format!(
        "{head}{}{}{}{}",
        cred("ka"),
        cred("kc"),
        route("a", "ka", &up, "Authorization"),
        route("c", "kc", &up, "Authorization")
    );
    write(&v3);
    eventually("route b is gone", async || sk.app.route_addr("b").is_none()).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    eventually("route b stops listening", async || {
        tokio::net::TcpStream::connect(&b_addr).await.is_err()
    })
    .await;
    assert!(sk.app.credential("kb").is_none());
    assert_eq!(
        slow.await.unwrap().0,
        200,
        "the request in flight was drained"
    );

    // 3. A broken file: refused, the reason shown, the running config stays.
    write(&format!("{v3}\n[[routes]]\nname = \"d\"\nbogus_key = 1\n"));
    eventually("the reload is refused", async || {
        config_status(&sk).await["reload_ok"] == false
    })
    .await;
    let metrics = get(&format!("{}/metrics", sk.admin())).await.2;
    assert!(String::from_utf8_lossy(&metrics).contains("sidekey_config_reload_ok 0"));
    let st = config_status(&sk).await;
    let reason = st["reload_error"].as_str().unwrap();
    assert!(reason.contains("sidekey.toml:"), "{reason}");
    assert!(sk.app.route_addr("d").is_none());
    assert_eq!(get(&format!("{c_url}/t")).await.0, 200);

    // 4. Fixed, with route c changed (another header): swapped on the same listener.
    let v4 = format!(
        "{head}{}{}{}{}",
        cred("ka"),
        cred("kc"),
        route("a", "ka", &up, "Authorization"),
        route("c", "kc", &up, "X-Api-Key")
    );
    write(&v4);
    eventually("the fixed file is applied", async || {
        config_status(&sk).await["reload_ok"] == true
    })
    .await;
    assert_eq!(sk.url("c"), c_url);
    let before = up.count();
    eventually("route c sends the new header", async || {
        get(&format!("{c_url}/t")).await;
        up.seen()[before..]
            .iter()
            .any(|s| s.header("x-api-key").is_some())
    })
    .await;

    // 5. SIGHUP reloads even an unchanged file.
    let attempts = config_status(&sk).await["reload_attempts"]
        .as_u64()
        .unwrap();
    let pid = std::process::id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually("SIGHUP reloads", async || {
        config_status(&sk).await["reload_attempts"]
            .as_u64()
            .unwrap()
            > attempts
    })
    .await;
    assert_eq!(config_status(&sk).await["reload_ok"], true);

    // 6. Credential kc changes (another file): route c switches once the new value is there.
    std::fs::write(sk.path("kc2"), logs::secret("reload-value-kc2")).unwrap();
    let kc = sk.app.credential("kc").unwrap();
    let v6 = v4.replace("{dir}/kc\"", "{dir}/kc2\"");
    assert_ne!(v6, v4);
    write(&v6);
    eventually("route c uses the new credential", async || {
        get(&format!("{c_url}/t")).await;
        up.seen().last().unwrap().header("x-api-key") == Some("Bearer reload-value-kc2")
    })
    .await;
    assert!(!Arc::ptr_eq(&kc, &sk.app.credential("kc").unwrap()));

    stop.store(true, Ordering::Relaxed);
    let a_statuses = on_a.await.unwrap();
    let c_statuses = on_c.await.unwrap();
    assert!(a_statuses.len() > 20, "{} requests on a", a_statuses.len());
    assert!(
        a_statuses.iter().all(|s| *s == 200),
        "route a failed: {a_statuses:?}"
    );
    assert!(
        c_statuses.iter().all(|s| *s == 200),
        "route c failed: {c_statuses:?}"
    );
    // The untouched credential kept its value and its refresher.
    let ka_now = sk.app.credential("ka").unwrap();
    assert!(Arc::ptr_eq(&ka, &ka_now));
    assert_eq!(ka_now.current().unwrap().generation, ka_generation);
    let inventory = get(&format!("{}/v1/credentials", sk.admin())).await.2;
    let names: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&inventory)
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["ka", "kc"]);
    sk.stop().await;
}
