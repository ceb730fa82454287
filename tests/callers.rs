//! Caller authentication: only the workload may ride a route's credential. Peer UIDs/GIDs on a unix
//! socket, peer UIDs from Linux's TCP socket table, and a caller token; every refusal is a
//! `403 caller_not_allowed` that never reaches the upstream, with an audit event (one a second per
//! route at most, the rest counted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::os::unix::fs::PermissionsExt;
use support::curl::{curl, curl_as};
use support::{BEARER, Sidekey, Upstream, logs, route};

const NOBODY: u32 = 65534;

/// A config with one file credential `k` and the given routes.
fn config(routes: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[credentials.k]
source = "file"
path = "{{dir}}/key"
{routes}"#
    )
}

async fn start(key: &str, routes: &str) -> Sidekey {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
    // Other users must reach the unix sockets inside.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sk = Sidekey::start_in(dir, &config(routes)).await;
    sk.wait_ready(5).await;
    sk
}

fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

#[tokio::test]
async fn a_unix_socket_route_admits_listed_uids_and_gids_only() {
    let key = logs::secret("sk_unix_callers_7f3a");
    let up = Upstream::ok().await;
    let unix_route = |name: &str, rule: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nlisten = \"unix:{{dir}}/{name}.sock\"\nupstream = \"{}\"\ncredential = \"k\"\ninject = {BEARER}\n{rule}\n",
            up.url()
        )
    };
    let routes = unix_route("by_uid", &format!("allow_uids = [{}]", own_uid()))
        + &unix_route("by_gid", "allow_gids = [65533]");
    let sk = start(&key, &routes).await;
    for name in ["by_uid", "by_gid"] {
        let sock = sk.path(&format!("{name}.sock"));
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let sock = |name: &str| sk.path(&format!("{name}.sock")).display().to_string();
    let url = "http://app.localhost/v1/thing";

    // The owner's UID is listed.
    let a = curl(&["--unix-socket", &sock("by_uid"), url]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(up.count(), 1);
    assert_eq!(
        up.seen()[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );

    // Another user is refused, and nothing reaches the upstream.
    let a = curl_as(NOBODY, NOBODY, &["--unix-socket", &sock("by_uid"), url]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("caller_not_allowed"));
    assert!(
        a.body.contains(&format!("uid {NOBODY} gid {NOBODY}")),
        "{}",
        a.body
    );
    assert_eq!(up.count(), 1);

    // By group: a listed GID is admitted whatever the UID; the owner's GID is not listed.
    let a = curl_as(NOBODY, 65533, &["--unix-socket", &sock("by_gid"), url]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(up.count(), 2);
    let a = curl(&["--unix-socket", &sock("by_gid"), url]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("caller_not_allowed"));
    assert_eq!(up.count(), 2);

    let audit = logs::lines_with("caller_refused");
    assert!(audit.len() >= 2, "an audit event per refusal: {audit:?}");
    assert!(audit.iter().any(|l| l.contains("by_uid")), "{audit:?}");
    sk.stop().await;
}

#[tokio::test]
async fn a_tcp_route_admits_listed_uids_from_the_kernels_socket_table() {
    let key = logs::secret("sk_tcp_callers_91bd");
    let up = Upstream::ok().await;
    let rule = format!("allow_uids = [{}]", own_uid());
    let sk = start(&key, &route("r", &up.url(), "k", BEARER, &rule)).await;
    let url = format!("{}/v1/thing", sk.url("r"));
    let host = "Host: app.localhost";

    let a = curl(&["-H", host, &url]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(up.count(), 1);

    // Many requests on one kept-alive connection: identified once, all admitted.
    let a = curl(&["-H", host, &url, &url, &url]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(up.count(), 4);

    let a = curl_as(NOBODY, NOBODY, &["-H", host, &url]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.header("sidekey-error"), Some("caller_not_allowed"));
    assert!(
        a.body.contains(&format!("uid {NOBODY} may not")),
        "{}",
        a.body
    );
    assert_eq!(up.count(), 4, "a refused caller reaches nothing");
    sk.stop().await;
}

/// A local process looping on a route it may not use cannot flood the log:
/// one `caller_refused` event a second, each counting the ones left out.
#[tokio::test]
async fn a_loop_of_refused_callers_logs_one_event_a_second_with_the_rest_counted() {
    let key = logs::secret("sk_flood_callers_2e71");
    let up = Upstream::ok().await;
    let rule = format!("allow_uids = [{}]", own_uid());
    let sk = start(&key, &route("flood", &up.url(), "k", BEARER, &rule)).await;
    let url = format!("{}/v1/thing", sk.url("flood"));
    let mut args = vec!["-H", "Host: app.localhost"];
    args.extend(std::iter::repeat_n(url.as_str(), 200));

    let started = std::time::Instant::now();
    let a = curl_as(NOBODY, NOBODY, &args).await;
    let secs = started.elapsed().as_secs();
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(up.count(), 0, "refused callers reach nothing");
    let events = ["caller_refused", "route=\"flood\""];
    let (lines, _) = logs::throttled(&events);
    assert!(
        lines >= 1 && lines as u64 <= secs + 2,
        "200 refusals in {secs} s logged {lines} lines"
    );

    // The next event, a second later, says how many were left out.
    tokio::time::sleep(sidekey::throttle::EVERY + std::time::Duration::from_millis(100)).await;
    let a = curl_as(NOBODY, NOBODY, &args[..3]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let (after, happened) = logs::throttled(&events);
    assert_eq!(after, lines + 1);
    assert_eq!(happened, 201, "every refusal is counted by some line");
    sk.stop().await;
}

#[tokio::test]
async fn a_caller_token_is_checked_and_never_forwarded_or_logged() {
    let key = logs::secret("sk_token_route_55e0");
    let token = logs::secret("caller-token-3c9d41f2a8");
    let up = Upstream::ok().await;
    let rule = r#"caller_token = { file = "{dir}/caller-token" }"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("caller-token"), format!("{token}\n")).unwrap();
    std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
    let routes =
        route("r", &up.url(), "k", BEARER, rule) + &route("open", &up.url(), "k", BEARER, "");
    let sk = Sidekey::start_in(dir, &config(&routes)).await;
    sk.wait_ready(5).await;
    let url = format!("{}/v1/thing", sk.url("r"));
    let host = "Host: app.localhost";

    let right = format!("sidekey-caller-token: {token}");
    let a = curl(&["-H", host, "-H", &right, &url]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = &up.seen()[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(
        seen.header("sidekey-caller-token"),
        None,
        "the token is stripped"
    );

    for refused in [
        vec!["-H", host, &url],
        vec![
            "-H",
            host,
            "-H",
            "sidekey-caller-token: caller-token-3c9d41f2a9",
            &url,
        ],
        vec!["-H", host, "-H", "sidekey-caller-token:", &url],
    ] {
        let a = curl(&refused).await;
        assert_eq!(a.status, 403, "{refused:?}: {}", a.body);
        assert_eq!(a.header("sidekey-error"), Some("caller_not_allowed"));
        assert!(a.body.contains("caller token"), "{}", a.body);
        assert!(!a.body.contains(&token));
    }
    assert_eq!(up.count(), 1, "refused callers reach nothing");

    // A route without a token never forwards one an app sends by mistake.
    let open = format!("{}/v1/thing", sk.url("open"));
    let a = curl(&["-H", host, "-H", &right, &open]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(up.seen()[1].header("sidekey-caller-token"), None);
    sk.stop().await; // checks that neither the key nor the token was logged
}

#[test]
fn caller_rules_that_cannot_work_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidekey.toml");
    let check = |routes: &str| {
        let text = config(routes).replace("{dir}", dir.path().to_str().unwrap());
        match sidekey::config::parse(&path, &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let tcp = |rule: &str| route("r", "http://127.0.0.1:9", "k", BEARER, rule);
    std::fs::write(dir.path().join("key"), "v\n").unwrap();

    let e = check(&tcp("allow_gids = [1000]"));
    assert!(e.contains("allow_gids needs a unix-socket listener"), "{e}");
    let e = check(&tcp("allow_uids = []"));
    assert!(e.contains("allow_uids is empty"), "{e}");
    let e = check(&tcp(r#"caller_token = { file = "{dir}/missing" }"#));
    assert!(e.contains("caller_token") && e.contains("missing"), "{e}");
    assert_eq!(check(&tcp("allow_uids = [0, 1000]")), "");
}
