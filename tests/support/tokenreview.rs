//! A stand-in for the Kubernetes API server's TokenReview endpoint
//! (`POST /apis/authentication.k8s.io/v1/tokenreviews`), which OpenBao's `kubernetes` auth method
//! calls (its `kubernetes_host`) to check the service-account JWT a login presents. sidekey never
//! talks to it: it replaces the apiserver OpenBao talks to, there being no cluster here. Like an
//! apiserver it accepts the tokens it issued and refuses any other.

use super::oauth::EcKey;
use super::{Reply, Seen, Upstream};
use serde_json::{Value, json};
use sidekey::sync::Mutex;
use std::sync::Arc;

/// A service account: namespace, name, uid.
type Account = (String, String, String);

pub struct TokenReview {
    upstream: Upstream,
    accepted: Arc<Mutex<Vec<(String, Account)>>>,
}

fn token_of(seen: &Seen) -> String {
    let review: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    review["spec"]["token"].as_str().unwrap_or("").to_owned()
}

impl TokenReview {
    pub async fn start() -> TokenReview {
        let accepted: Arc<Mutex<Vec<(String, Account)>>> = Arc::default();
        let known = accepted.clone();
        let upstream = Upstream::start(move |seen| {
            if seen.method != "POST"
                || seen.target != "/apis/authentication.k8s.io/v1/tokenreviews"
            {
                return Reply::status(404);
            }
            let review: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
            let token = token_of(seen);
            let account = known
                .lock()
                .iter()
                .find(|(t, _)| *t == token)
                .map(|(_, a)| a.clone());
            let status = match account {
                Some((ns, name, uid)) => json!({
                    "authenticated": true,
                    "user": {
                        "username": format!("system:serviceaccount:{ns}:{name}"),
                        "uid": uid,
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")],
                    },
                    "audiences": review["spec"]["audiences"],
                }),
                None => json!({ "authenticated": false, "error": "invalid bearer token" }),
            };
            let body = json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": review["spec"],
                "status": status,
            });
            let mut reply = Reply::ok(body.to_string()).header("Content-Type", "application/json");
            reply.status = http::StatusCode::CREATED;
            reply
        })
        .await;
        TokenReview { upstream, accepted }
    }

    pub fn url(&self) -> String {
        self.upstream.url()
    }

    /// A projected service-account JWT (1 h) of `namespace/name` for
    /// audience `aud`, signed by `key` and registered as a secret. `accept`:
    /// whether this apiserver will say it is valid.
    pub fn issue(
        &self,
        key: &EcKey,
        namespace: &str,
        name: &str,
        aud: &str,
        accept: bool,
    ) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let uid = format!("uid-{namespace}-{name}");
        let jwt = super::logs::secret(&key.sign_jwt(&json!({
            "aud": [aud],
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": { "name": name, "uid": uid },
                "pod": { "name": format!("{name}-pod"), "uid": format!("pod-{uid}") },
            },
        })));
        if accept {
            self.accepted
                .lock()
                .push((jwt.clone(), (namespace.into(), name.into(), uid)));
        }
        jwt
    }

    /// The tokens OpenBao asked about, in order.
    pub fn reviewed(&self) -> Vec<String> {
        self.upstream.seen().iter().map(token_of).collect()
    }
}
