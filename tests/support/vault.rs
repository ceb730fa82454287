//! A sidekey whose credential `v` is `source = "vault"` against a test's OpenBao, routed by
//! route `v` to an upstream, and the waits and OpenBao set-ups the vault tests share.

use super::openbao::OpenBao;
use super::until;
use super::{BEARER, Reply, Sidekey, Upstream, logs, route};

/// One credential `v` of `source = "vault"` with the keys `body`, used by route `v` to `upstream`.
pub fn config(bao: &OpenBao, upstream: &str, body: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[credentials.v]\nsource = \"vault\"\naddress = \"{}\"\n{body}\n{}",
        bao.address(),
        route("v", upstream, "v", BEARER, "")
    )
}

/// An upstream that answers with the Authorization header it received.
pub async fn echo() -> Upstream {
    Upstream::start(|s| Reply::ok(s.header("authorization").unwrap_or("").to_owned())).await
}

/// Starts sidekey with `files` written into its folder first; waits until it is ready.
pub async fn start(files: &[(&str, &str)], config: &str) -> Sidekey {
    let sk = start_unready(files, config).await;
    sk.wait_ready(15).await;
    sk
}

/// [`start`] without waiting: for a credential that cannot be fetched.
pub async fn start_unready(files: &[(&str, &str)], config: &str) -> Sidekey {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Sidekey::start_in(dir, config).await
}

/// Asserts that route `v` serves `Bearer {value}` at `/x` (the upstream
/// is [`echo`]).
pub async fn assert_serves(sk: &Sidekey, value: &str) {
    let (status, _, body) = super::get(&format!("{}/x", sk.url("v"))).await;
    assert_eq!(
        (status.as_u16(), body),
        (200, format!("Bearer {value}").into())
    );
}

/// Waits until credential `v` is in `state`; returns its inventory record.
pub async fn in_state(sk: &Sidekey, secs: u64, what: &str, state: &str) -> serde_json::Value {
    until(secs, what, || async {
        let inv = super::aws::inventory(sk, "v").await;
        (inv["state"] == state).then_some(inv)
    })
    .await
}

/// Waits until credential `v` has a `last_error`; returns it.
pub async fn last_error(sk: &Sidekey, secs: u64) -> String {
    until(secs, "a last_error", || async {
        super::aws::inventory(sk, "v").await["last_error"]
            .as_str()
            .map(str::to_owned)
    })
    .await
}

pub const KV_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }
path "identity/oidc/token/*" { capabilities = ["read"] }
"#;

/// The secret_id [`seed_approle`] gives role `app`.
pub const SECRET_ID: &str = "secret-id-fixed-5c1e";

/// The `auth` keys of an AppRole login as role `app`, its secret_id read
/// from `{dir}/secret-id`.
pub const APPROLE: &str = r#"auth = { method = "approle", role_id = "role-id-app", secret_id = { file = "{dir}/secret-id" } }"#;

/// [`start`] with [`SECRET_ID`] in `{dir}/secret-id`, credential `v`
/// logging in with [`APPROLE`] and then the keys `body`.
pub async fn start_approle(bao: &OpenBao, upstream: &str, body: &str) -> Sidekey {
    start(
        &[("secret-id", SECRET_ID)],
        &config(bao, upstream, &format!("{APPROLE}\n{body}")),
    )
    .await
}

/// Enables AppRole and a policy reading KV and identity tokens.
pub async fn seed_approle(bao: &OpenBao, ttl: &str, max_ttl: &str) {
    bao.enable_auth("approle").await;
    bao.policy("app", KV_POLICY).await;
    bao.approle(
        "app",
        "app",
        ttl,
        max_ttl,
        "role-id-app",
        &logs::secret(SECRET_ID),
    )
    .await;
}

/// Stops sidekey after registering everything `bao` handed out (login
/// tokens, identity tokens, secret_ids, keys, passwords) and scanning the
/// inventory and `/metrics` for it; the stop scans the trace log. Returns
/// how many login tokens OpenBao issued.
pub async fn stop_scanned(sk: Sidekey, bao: &OpenBao) -> usize {
    let logins = bao.register_handed_out();
    super::aws::inventory(&sk, "v").await;
    let (_, _, metrics) = super::get(&format!("{}/metrics", sk.admin())).await;
    logs::assert_no_secret_in("the metrics", &metrics);
    sk.stop().await;
    logins
}
