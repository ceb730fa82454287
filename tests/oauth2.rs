//! OAuth 2.0 sources against a real authorization server (oidc-provider from npm): client credentials with
//! each client authentication method, rotation under traffic, errors, outage, revocation and RFC 8693 token exchange.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use support::oauth::{self, EcKey, OidcPeer, client};
use support::{Sidekey, Upstream, error_code, logs};
use tokio::time::{Instant, sleep};

/// Config text with one bearer-header route per credential, each named like
/// its credential. `creds` holds the body of each `[credentials.NAME]` table.
fn config(up: &Upstream, creds: &[(&str, String)]) -> String {
    let mut text = String::from("[admin]\nlisten = \"127.0.0.1:0\"\n");
    for (name, body) in creds {
        text.push_str(&format!("[credentials.{name}]\n{body}\n"));
    }
    for (name, _) in creds {
        text.push_str(&format!(
            "[[routes]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\ncredential = \"{name}\"\ninject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\" }}\n",
            up.url()
        ));
    }
    text
}

/// `source = "oauth2"` keys for a client of `peer` with a secret in `{dir}/FILE`.
fn secret_client(peer: &OidcPeer, id: &str, file: &str, method: &str, scopes: &str) -> String {
    format!(
        "source = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"{id}\"\nclient_secret = {{ file = \"{{dir}}/{file}\" }}\nauth_method = \"{method}\"\nscopes = [{scopes}]\n",
        peer.token_url()
    )
}

/// An authorization server with one client `id`, authenticating with
/// `method` and `secret`, allowed `scope`; tokens live `ttl` seconds.
async fn peer_with_client(ttl: u64, id: &str, method: &str, secret: &str, scope: &str) -> OidcPeer {
    OidcPeer::start(
        ttl,
        vec![client(id, method, Some(secret), scope, &[])],
        json!({ "keys": [] }),
    )
    .await
}

/// Starts an upstream and a sidekey with one credential and route named
/// like `peer`'s client `id`, authenticating with `method` and `secret`
/// (written to a file), asking for `scope`; `extra` adds keys to the credential.
async fn start_secret_client(
    peer: &OidcPeer,
    id: &str,
    secret: &str,
    method: &str,
    scope: &str,
    extra: &str,
) -> (Upstream, Sidekey) {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-secret"), format!("{secret}\n")).unwrap();
    let scopes = format!("\"{scope}\"");
    let body = format!(
        "{}{extra}",
        secret_client(peer, id, "client-secret", method, &scopes)
    );
    let sk = Sidekey::start_in(dir, &config(&up, &[(id, body)])).await;
    (up, sk)
}

/// The bearer token the upstream saw on request `i`.
fn bearer(up: &Upstream, i: usize) -> String {
    let seen = up.seen();
    let h = seen[i]
        .header("authorization")
        .expect("authorization header");
    h.strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_owned()
}

async fn inventory(sk: &Sidekey, name: &str) -> Value {
    let (status, _, body) = support::get(&format!("{}/v1/credentials/{name}", sk.admin())).await;
    assert_eq!(status, 200);
    logs::assert_no_secret_in("an inventory record", &body);
    serde_json::from_slice(&body).unwrap()
}

async fn admin_post(sk: &Sidekey, path: &str) -> (u16, Value) {
    let (status, _, body) = support::send(
        http::Method::POST,
        &format!("{}{path}", sk.admin()),
        &[],
        "",
    )
    .await;
    logs::assert_no_secret_in("an admin answer", &body);
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn get_route(sk: &Sidekey, route: &str) -> (u16, bytes::Bytes) {
    let (status, _, body) = support::get(&format!("{}/v1/items", sk.url(route))).await;
    logs::assert_no_secret_in("an answer to the app", &body);
    (status.as_u16(), body)
}

/// Waits until `cond` holds for the credential's inventory record.
async fn wait_record(sk: &Sidekey, name: &str, secs: u64, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = inventory(sk, name).await;
        if cond(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "credential {name} never reached the expected state: {r}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn injected_token_is_active_for_the_client_and_its_scopes() {
    let secret = logs::secret("basic-secret-0b6f4e2a91");
    let peer = peer_with_client(
        60,
        "payments",
        "client_secret_basic",
        &secret,
        "payments:write payments:read",
    )
    .await;
    let (up, sk) = start_secret_client(
        &peer,
        "payments",
        &secret,
        "client_secret_basic",
        "payments:write",
        "",
    )
    .await;
    sk.wait_ready(20).await;

    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let token = logs::secret(&bearer(&up, 0));
    let info = peer.introspect(&token).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "payments");
    assert_eq!(info["scope"], "payments:write", "only the configured scope");
    assert_eq!(info["token_type"], "Bearer");

    let r = inventory(&sk, "payments").await;
    assert_eq!(r["source"], "oauth2");
    assert_eq!(r["state"], "fresh");
    assert!(
        r["expires_at"].is_string() && r["last_error"].is_null(),
        "{r}"
    );
    sk.stop().await;
}

#[tokio::test]
async fn each_client_authentication_method_obtains_a_token() {
    let basic = logs::secret("basic-secret-7c2d81f0aa");
    let post = logs::secret("post-secret-3e9a0c55d2");
    let key = EcKey::generate("sidekey-key-1");
    let peer = OidcPeer::start(
        60,
        vec![
            client(
                "c-basic",
                "client_secret_basic",
                Some(&basic),
                "orders:read",
                &[],
            ),
            client(
                "c-post",
                "client_secret_post",
                Some(&post),
                "orders:read",
                &[],
            ),
            client(
                "c-jwt",
                "private_key_jwt",
                None,
                "orders:read",
                std::slice::from_ref(&key.jwk),
            ),
        ],
        json!({ "keys": [] }),
    )
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("basic"), &basic).unwrap();
    std::fs::write(dir.path().join("post"), &post).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key.pem).unwrap();
    let jwt = format!(
        "source = \"oauth2\"\ntoken_url = \"{}\"\nclient_id = \"c-jwt\"\nauth_method = \"private_key_jwt\"\nprivate_key_file = \"{{dir}}/key.pem\"\nkid = \"sidekey-key-1\"\nscopes = [\"orders:read\"]\n",
        peer.token_url()
    );
    let cfg = config(
        &up,
        &[
            (
                "basic",
                secret_client(
                    &peer,
                    "c-basic",
                    "basic",
                    "client_secret_basic",
                    "\"orders:read\"",
                ),
            ),
            (
                "post",
                secret_client(
                    &peer,
                    "c-post",
                    "post",
                    "client_secret_post",
                    "\"orders:read\"",
                ),
            ),
            ("jwt", jwt),
        ],
    );
    let sk = Sidekey::start_in(dir, &cfg).await;
    sk.wait_ready(20).await;
    for (i, (route, id)) in [("basic", "c-basic"), ("post", "c-post"), ("jwt", "c-jwt")]
        .iter()
        .enumerate()
    {
        let (status, _) = get_route(&sk, route).await;
        assert_eq!(status, 200, "route {route}");
        let token = logs::secret(&bearer(&up, i));
        let info = peer.introspect(&token).await;
        assert_eq!(info["active"], true, "{route}: {info}");
        assert_eq!(info["client_id"], *id);
        assert_eq!(info["scope"], "orders:read");
    }
    // oidc-provider refuses a replayed assertion `jti`: two more tokens within
    // the same second only work if each assertion is fresh.
    let first = inventory(&sk, "jwt").await["fingerprint"].clone();
    for _ in 0..2 {
        let (status, answer) = admin_post(&sk, "/v1/credentials/jwt/refresh").await;
        assert_eq!(status, 200, "refresh with a new client assertion: {answer}");
    }
    let r = inventory(&sk, "jwt").await;
    assert_ne!(r["fingerprint"], first, "a new token was issued");
    assert_eq!(r["rotations"], 2, "{r}");
    sk.stop().await;
}

#[tokio::test]
async fn tokens_rotate_before_expiry_under_continuous_traffic() {
    const TTL: u64 = 6;
    let secret = logs::secret("rotate-secret-c4f1e7d02b");
    let peer = peer_with_client(
        TTL,
        "rotator",
        "client_secret_basic",
        &secret,
        "payments:read",
    )
    .await;
    let (up, sk) = start_secret_client(
        &peer,
        "rotator",
        &secret,
        "client_secret_basic",
        "payments:read",
        "",
    )
    .await;
    sk.wait_ready(20).await;

    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(3 * TTL + 2) {
        let (status, body) = get_route(&sk, "rotator").await;
        assert_eq!(
            status,
            200,
            "request {sent} failed: {}",
            String::from_utf8_lossy(&body)
        );
        sent += 1;
        sleep(Duration::from_millis(40)).await;
    }
    // When each token was first and last seen by the upstream.
    let mut spans: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let seen = up.seen();
    assert_eq!(seen.len(), sent, "every request reached the upstream");
    let times: Vec<String> = (0..seen.len()).map(|i| bearer(&up, i)).collect();
    for (i, t) in times.iter().enumerate() {
        logs::secret(t);
        spans.entry(t.clone()).or_insert((i, i)).1 = i;
    }
    assert!(
        spans.len() >= 3,
        "{} requests over {}s saw only {} token(s); expected a new one every period",
        sent,
        3 * TTL + 2,
        spans.len()
    );
    // Tokens follow one another: none comes back after being replaced.
    let mut order: Vec<(usize, usize)> = spans.values().copied().collect();
    order.sort();
    for w in order.windows(2) {
        assert!(w[0].1 < w[1].0, "tokens interleave: {order:?}");
    }
    let r = inventory(&sk, "rotator").await;
    assert!(r["rotations"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["last_error"].is_null(), "{r}");
    // The token in use now is one the server still accepts.
    let (status, _) = get_route(&sk, "rotator").await;
    assert_eq!(status, 200);
    let now = bearer(&up, up.count() - 1);
    assert_eq!(peer.introspect(&now).await["active"], true);
    sk.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_and_nothing_is_forwarded() {
    let right = logs::secret("right-secret-91aa3e7c0f");
    let wrong = logs::secret("wrong-secret-5b0d2c8e44");
    let peer = peer_with_client(
        60,
        "payments",
        "client_secret_post",
        &right,
        "payments:read",
    )
    .await;
    let (up, sk) = start_secret_client(
        &peer,
        "payments",
        &wrong,
        "client_secret_post",
        "payments:read",
        "",
    )
    .await;
    let r = wait_record(&sk, "payments", 20, |r| r["last_error"].is_string()).await;
    let err = r["last_error"].as_str().unwrap();
    assert!(err.contains("invalid_client"), "last_error: {err}");
    assert_eq!(r["state"], "failed");
    assert!(r["fingerprint"].is_null());

    let (status, body) = get_route(&sk, "payments").await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "credential_unavailable");
    assert_eq!(up.count(), 0, "nothing was forwarded");
    let (status, _, body) = support::get(&format!("{}/readyz", sk.admin())).await;
    assert_eq!(status, 503);
    logs::assert_no_secret_in("readyz", &body);
    assert!(
        !logs::lines_with("invalid_client").is_empty(),
        "the refusal reaches the log"
    );

    // The operator fixes the secret file: the next refresh works.
    std::fs::write(sk.path("client-secret"), &right).unwrap();
    let (status, answer) = admin_post(&sk, "/v1/credentials/payments/refresh").await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    logs::secret(&bearer(&up, 0));
    sk.stop().await;
}

#[tokio::test]
async fn authorization_server_outage_serves_until_expiry_then_recovers() {
    const TTL: u64 = 6;
    let secret = logs::secret("outage-secret-2f8b6a1d93");
    let mut peer = peer_with_client(
        TTL,
        "payments",
        "client_secret_basic",
        &secret,
        "payments:read",
    )
    .await;
    let (up, sk) = start_secret_client(
        &peer,
        "payments",
        &secret,
        "client_secret_basic",
        "payments:read",
        "",
    )
    .await;
    sk.wait_ready(20).await;
    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let first = logs::secret(&bearer(&up, 0));
    // The token's expiry as sidekey records it (whole seconds).
    let expires_at = inventory(&sk, "payments").await["expires_at"].clone();
    let expires = humantime::parse_rfc3339(expires_at.as_str().unwrap()).unwrap();
    let margin = Duration::from_millis(1200);

    peer.stop().await;
    // Until it expires, the token in hand keeps serving, though refreshes
    // fail; after, requests are refused. (Around the expiry, either.)
    let (mut served, mut refused) = (0, 0);
    while SystemTime::now() < expires + 3 * margin {
        let sent = SystemTime::now();
        let (status, body) = get_route(&sk, "payments").await;
        if sent + margin < expires {
            assert_eq!(
                status,
                200,
                "refused before expiry: {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(
                bearer(&up, up.count() - 1),
                first,
                "the current token is used"
            );
            served += 1;
        } else if sent > expires + margin {
            assert_eq!(status, 503, "served after expiry");
            assert_eq!(error_code(&body), "credential_expired");
            refused += 1;
        }
        sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served > 10 && refused > 5,
        "served {served}, refused {refused}"
    );
    let forwarded = up.count();
    let r = inventory(&sk, "payments").await;
    assert_eq!(r["state"], "expired", "{r}");
    let err = r["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("token endpoint at 127.0.0.1"),
        "last_error: {err}"
    );

    // The server comes back on the same port: service resumes by itself.
    peer.restart().await;
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (status, body) = get_route(&sk, "payments").await;
        if status == 200 {
            break;
        }
        assert_eq!(error_code(&body), "credential_expired");
        assert_eq!(up.count(), forwarded, "nothing forwarded while expired");
        assert!(Instant::now() < deadline, "service did not resume");
        sleep(Duration::from_millis(200)).await;
    }
    let fresh = logs::secret(&bearer(&up, up.count() - 1));
    assert_ne!(fresh, first);
    assert_eq!(peer.introspect(&fresh).await["active"], true);
    assert_eq!(inventory(&sk, "payments").await["state"], "fresh");
    sk.stop().await;
}

#[tokio::test]
async fn revoke_makes_the_old_token_inactive_and_fetches_a_new_one() {
    let secret = logs::secret("revoke-secret-8e3c5f0b17");
    let peer = peer_with_client(
        60,
        "payments",
        "client_secret_basic",
        &secret,
        "payments:read",
    )
    .await;
    let extra = format!("revocation_url = \"{}\"\n", peer.revocation_url());
    let (up, sk) = start_secret_client(
        &peer,
        "payments",
        &secret,
        "client_secret_basic",
        "payments:read",
        &extra,
    )
    .await;
    sk.wait_ready(20).await;
    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let old = logs::secret(&bearer(&up, 0));
    assert_eq!(peer.introspect(&old).await["active"], true);

    let (status, answer) = admin_post(&sk, "/v1/credentials/payments/revoke").await;
    assert_eq!(status, 200, "{answer}");
    let info = peer.introspect(&old).await;
    assert_eq!(info["active"], false, "revoked at the server: {info}");
    assert!(
        logs::lines_with("at_source")
            .iter()
            .any(|l| l.contains("revoked")),
        "the audit log says the server revoked it"
    );

    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let new = logs::secret(&bearer(&up, 1));
    assert_ne!(new, old);
    assert_eq!(peer.introspect(&new).await["active"], true);
    sk.stop().await;
}

/// RFC 8693 against oidc-provider: the exchange grant is registered with
/// oidc-provider's custom grant API (tests/peers/oidc/server.mjs), which
/// verifies the subject token's signature, issuer and audience and mints an
/// access token of its own that introspection reports.
#[tokio::test]
async fn token_exchange_trades_the_workload_token_read_at_each_exchange() {
    let workload = EcKey::generate("cluster-key");
    let peer = OidcPeer::start(
        60,
        vec![{
            let mut c = client(
                "payments-workload",
                "none",
                None,
                "payments:read payments:write",
                &[],
            );
            c["grant_types"] = json!([oauth::TOKEN_EXCHANGE]);
            c
        }],
        json!({ "keys": [workload.jwk.clone()] }),
    )
    .await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let sa_a = logs::secret(&workload.sign_jwt(&oauth::workload_claims(
        "system:serviceaccount:payments:api",
    )));
    std::fs::write(dir.path().join("sa-token"), &sa_a).unwrap();
    let body = format!(
        "source = \"oauth2_token_exchange\"\ntoken_url = \"{}\"\nclient_id = \"payments-workload\"\nsubject_token_file = \"{{dir}}/sa-token\"\naudience = \"https://payments.example\"\nresource = \"https://payments.example/v1\"\nscopes = [\"payments:read\"]\nrequested_token_type = \"{}\"\n",
        peer.token_url(),
        oauth::ACCESS_TOKEN_TYPE
    );
    let sk = Sidekey::start_in(dir, &config(&up, &[("payments", body)])).await;
    sk.wait_ready(20).await;
    assert_eq!(
        inventory(&sk, "payments").await["source"],
        "oauth2_token_exchange"
    );

    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let first = logs::secret(&bearer(&up, 0));
    let info = peer.introspect(&first).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "payments-workload");
    assert_eq!(info["sub"], "system:serviceaccount:payments:api", "{info}");
    assert_eq!(info["aud"], "https://payments.example");
    assert_eq!(info["resource"], "https://payments.example/v1");
    assert_eq!(info["scope"], "payments:read");

    // The kubelet rotates the projected token: the next exchange reads the new one.
    let sa_b = logs::secret(&workload.sign_jwt(&oauth::workload_claims(
        "system:serviceaccount:payments:worker",
    )));
    support::write_atomic(&sk.path("sa-token"), &sa_b);
    let (status, answer) = admin_post(&sk, "/v1/credentials/payments/refresh").await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    let second = logs::secret(&bearer(&up, 1));
    assert_ne!(second, first);
    assert_eq!(
        peer.introspect(&second).await["sub"],
        "system:serviceaccount:payments:worker"
    );

    // A subject token the server does not trust: the exchange fails with the
    // server's error, and the token in hand keeps serving.
    let stranger = EcKey::generate("cluster-key");
    let forged = logs::secret(&stranger.sign_jwt(&oauth::workload_claims(
        "system:serviceaccount:payments:api",
    )));
    support::write_atomic(&sk.path("sa-token"), &forged);
    let (status, answer) = admin_post(&sk, "/v1/credentials/payments/refresh").await;
    assert_ne!(status, 200, "{answer}");
    let r = inventory(&sk, "payments").await;
    assert!(
        r["last_error"].as_str().unwrap().contains("invalid_grant"),
        "{r}"
    );
    assert_eq!(r["state"], "stale");
    let (status, _) = get_route(&sk, "payments").await;
    assert_eq!(status, 200);
    assert_eq!(bearer(&up, 2), second);
    sk.stop().await;
}

/// A token endpoint that misbehaves in one way per path, on a real socket.
async fn broken_token_endpoint() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut n = 0;
                // Read the head and the (small) form body.
                while n < buf.len() {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if n >= end + 4 + len {
                            break;
                        }
                    }
                }
                let path = String::from_utf8_lossy(&buf[..n])
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_owned();
                let reply = |status: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                match path.as_str() {
                    "/not-json" => {
                        let _ = s
                            .write_all(reply("200 OK", "<html>welcome</html>").as_bytes())
                            .await;
                    }
                    "/unavailable" => {
                        let _ = s
                            .write_all(reply("503 Service Unavailable", "").as_bytes())
                            .await;
                    }
                    "/truncated" => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"access_token\":\"trunc")
                            .await;
                    }
                    "/reset" => {
                        let _ = s.set_zero_linger();
                    }
                    "/hang" => {
                        sleep(Duration::from_secs(30)).await;
                    }
                    "/no-lifetime" => {
                        let body = r#"{"access_token":"no-lifetime-token-4a1f","token_type":"Bearer","refresh_token":"never-stored-rt-77c1"}"#;
                        let _ = s.write_all(reply("200 OK", body).as_bytes()).await;
                    }
                    _ => {
                        let _ = s.write_all(reply("404 Not Found", "").as_bytes()).await;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn broken_token_endpoints_are_refresh_failures() {
    let secret = logs::secret("broken-secret-6d0e9b3f21");
    logs::secret("no-lifetime-token-4a1f");
    logs::secret("never-stored-rt-77c1");
    let (addr, _server) = broken_token_endpoint().await;
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s"), &secret).unwrap();
    let cred = |path: &str| {
        format!(
            "source = \"oauth2\"\ntoken_url = \"http://{addr}{path}\"\nclient_id = \"c\"\nclient_secret = {{ file = \"{{dir}}/s\" }}\ntimeout = \"1s\"\ndefault_lifetime = \"42s\"\n"
        )
    };
    let cases = [
        ("notjson", "/not-json", "not a JSON object"),
        (
            "unavailable",
            "/unavailable",
            "failed: HTTP 503 Service Unavailable",
        ),
        ("truncated", "/truncated", "answer cut short"),
        ("reset", "/reset", "Connection reset by peer"),
        ("hang", "/hang", "no answer within 1s"),
    ];
    let mut creds: Vec<(&str, String)> = cases.iter().map(|(n, p, _)| (*n, cred(p))).collect();
    creds.push(("nolifetime", cred("/no-lifetime")));
    let sk = Sidekey::start_in(dir, &config(&up, &creds)).await;
    for (name, _, expected) in cases {
        let r = wait_record(&sk, name, 15, |r| r["last_error"].is_string()).await;
        let err = r["last_error"].as_str().unwrap();
        assert!(
            err.contains(expected),
            "{name}: last_error {err:?} lacks {expected:?}"
        );
        assert_eq!(r["state"], "failed", "{name}");
        let (status, body) = get_route(&sk, name).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (503, "credential_unavailable"),
            "{name}"
        );
    }
    assert_eq!(up.count(), 0, "nothing forwarded without a token");

    // No expires_in: the configured default lifetime applies.
    let r = wait_record(&sk, "nolifetime", 15, |r| r["state"] == "fresh").await;
    let expires = humantime::parse_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(35) && left <= Duration::from_secs(42),
        "{left:?}"
    );
    let (status, _) = get_route(&sk, "nolifetime").await;
    assert_eq!(status, 200);
    assert_eq!(bearer(&up, 0), "no-lifetime-token-4a1f");
    sk.stop().await;
}

#[tokio::test]
async fn token_endpoint_over_tls_trusts_the_configured_ca_only() {
    let secret = logs::secret("tls-secret-0c7e2a9d58");
    let ca = support::tls::TestCa::new();
    let peer = OidcPeer::start_with(
        60,
        vec![client(
            "payments",
            "client_secret_basic",
            Some(&secret),
            "payments:read",
            &[],
        )],
        json!({ "keys": [] }),
        Some(ca.leaf_pem()),
    )
    .await;
    assert!(peer.token_url().starts_with("https://localhost:"));
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s"), &secret).unwrap();
    ca.write(&dir.path().join("ca.pem"));
    let trusted = format!(
        "{}ca_file = \"{{dir}}/ca.pem\"\n",
        secret_client(
            &peer,
            "payments",
            "s",
            "client_secret_basic",
            "\"payments:read\""
        )
    );
    let untrusted = secret_client(
        &peer,
        "payments",
        "s",
        "client_secret_basic",
        "\"payments:read\"",
    );
    let sk = Sidekey::start_in(
        dir,
        &config(&up, &[("trusted", trusted), ("untrusted", untrusted)]),
    )
    .await;
    let r = wait_record(&sk, "trusted", 20, |r| r["state"] == "fresh").await;
    assert!(r["last_error"].is_null(), "{r}");
    let (status, _) = get_route(&sk, "trusted").await;
    assert_eq!(status, 200);
    logs::secret(&bearer(&up, 0));
    let r = wait_record(&sk, "untrusted", 20, |r| r["last_error"].is_string()).await;
    let err = r["last_error"].as_str().unwrap();
    assert!(err.contains("certificate"), "last_error: {err}");
    let (status, body) = get_route(&sk, "untrusted").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (503, "credential_unavailable")
    );
    assert_eq!(up.count(), 1);
    sk.stop().await;
}

#[test]
fn plain_http_token_url_is_refused_at_config_time_unless_loopback() {
    let text = |url: &str| {
        format!(
            "[credentials.p]\nsource = \"oauth2\"\ntoken_url = \"{url}\"\nclient_id = \"c\"\nclient_secret = {{ env = \"P_SECRET\" }}\n\n[[routes]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"https://api.example.com\"\ncredential = \"p\"\ninject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\" }}\n"
        )
    };
    let path = std::path::Path::new("sidekey.toml");
    let Err(err) = sidekey::config::parse(path, &text("http://auth.example.com/token")) else {
        panic!("plain http to a remote host is refused");
    };
    let err = err.to_string();
    // Line 3 holds token_url.
    assert!(
        err.contains("sidekey.toml:3:"),
        "names file and line: {err}"
    );
    assert!(err.contains("use https://"), "{err}");
    for ok in [
        "http://127.0.0.1:8080/token",
        "http://localhost:8080/token",
        "https://auth.example.com/token",
    ] {
        let cfg = sidekey::config::parse(path, &text(ok))
            .unwrap_or_else(|e| panic!("{ok} should be accepted: {e}"));
        assert_eq!(cfg.credentials[0].source.kind(), "oauth2");
    }
}
