//! A real OAuth 2.0 authorization server for tests: oidc-provider (npm) run by node from tests/peers/oidc,
//! plus the keys and JWTs its clients and workloads need.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The issuer and audience of the workload identity tokens the server trusts.
pub const WORKLOAD_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
pub const WORKLOAD_AUDIENCE: &str = "sidekey-sts";
/// A client every test may use to call the introspection endpoint.
pub const INTROSPECTOR: (&str, &str) = ("introspector", "introspector-secret-5d1c9e");

/// A running oidc-provider. Stopped (killed) on drop.
pub struct OidcPeer {
    pub port: u16,
    tls: bool,
    config: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc")
}

impl OidcPeer {
    /// Starts oidc-provider on 127.0.0.1 with a port of its own choosing,
    /// access tokens living `ttl_secs`, and `clients` (oidc-provider client
    /// metadata) plus the introspection client. `workload_jwks` are the keys
    /// that sign the subject tokens it accepts for token exchange.
    pub async fn start(ttl_secs: u64, clients: Vec<Value>, workload_jwks: Value) -> OidcPeer {
        Self::start_with(ttl_secs, clients, workload_jwks, None).await
    }

    /// Like [`OidcPeer::start`], serving HTTPS with `tls` (certificate and
    /// key, PEM) when given; its URLs then use `https://localhost:PORT`.
    pub async fn start_with(
        ttl_secs: u64,
        clients: Vec<Value>,
        workload_jwks: Value,
        tls: Option<(String, String)>,
    ) -> OidcPeer {
        let installed = peer_dir().join("node_modules/oidc-provider/package.json");
        assert!(
            installed.exists(),
            "oidc-provider is not installed in tests/peers/oidc: run scripts/install-test-peers"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut clients = clients;
        clients.push(client(
            INTROSPECTOR.0,
            "client_secret_basic",
            Some(INTROSPECTOR.1),
            "",
            &[],
        ));
        let mut config = json!({
            "port": 0,
            "ttl": ttl_secs,
            "scopes": ["payments:read", "payments:write", "orders:read"],
            "clients": clients,
            "workload": { "issuer": WORKLOAD_ISSUER, "audience": WORKLOAD_AUDIENCE, "jwks": workload_jwks },
        });
        if let Some((cert, key)) = &tls {
            config["tls"] = json!({ "cert": cert, "key": key });
        }
        let path = dir.path().join("oidc.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut peer = OidcPeer {
            port: 0,
            tls: tls.is_some(),
            config: path,
            child: None,
            _dir: dir,
        };
        peer.spawn().await;
        peer
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new("node");
        cmd.arg(peer_dir().join("server.mjs"))
            .arg(&self.config)
            .current_dir(peer_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("SIDEKEY_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect(
            "cannot run node (Node.js 20 or later is needed): run scripts/install-test-peers",
        );
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("oidc-provider did not start within 20 s")
            .unwrap()
            .unwrap_or_else(|| {
                panic!("oidc-provider exited at start (run with SIDEKEY_TEST_LOG=1 to see why)")
            });
        let port: u16 = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the oidc peer: {line}"));
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.port = port;
        self.child = Some(child);
    }

    /// Kills the server (in-memory tokens are lost, as after a crash).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts the server again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).unwrap()).unwrap();
        config["port"] = self.port.into();
        std::fs::write(&self.config, config.to_string()).unwrap();
        let port = self.port;
        self.spawn().await;
        assert_eq!(self.port, port, "restarted on the same port");
    }

    pub fn issuer(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
    }

    pub fn revocation_url(&self) -> String {
        format!("{}/token/revocation", self.issuer())
    }

    /// RFC 7662 introspection of `token`, as the introspection client.
    pub async fn introspect(&self, token: &str) -> Value {
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", INTROSPECTOR.0, INTROSPECTOR.1))
        );
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let (status, _, bytes) = super::send(
            http::Method::POST,
            &format!("{}/token/introspection", self.issuer()),
            &[
                ("authorization", basic.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
        .await;
        assert_eq!(
            status,
            200,
            "introspection answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("introspection answers JSON")
    }
}

/// oidc-provider metadata of a client of the client-credentials grant that
/// authenticates with `auth` and may ask for `scope`.
pub fn client(id: &str, auth: &str, secret: Option<&str>, scope: &str, keys: &[Value]) -> Value {
    let mut c = json!({
        "client_id": id,
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "response_types": [],
        "token_endpoint_auth_method": auth,
    });
    if !scope.is_empty() {
        c["scope"] = scope.into();
    }
    if let Some(s) = secret {
        c["client_secret"] = s.into();
    }
    if !keys.is_empty() {
        c["jwks"] = json!({ "keys": keys });
    }
    c
}

/// An EC P-256 key: its PKCS#8 PEM (for sidekey) and its public JWK (for the server).
pub struct EcKey {
    pub pem: String,
    pub jwk: Value,
    pair: rcgen::KeyPair,
}

impl EcKey {
    pub fn generate(kid: &str) -> EcKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw(); // 0x04 || x || y
        assert_eq!(point.len(), 65);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        });
        EcKey {
            pem: pair.serialize_pem(),
            jwk,
            pair,
        }
    }

    /// The public key as a PEM SubjectPublicKeyInfo (what OpenBao's jwt auth takes).
    pub fn public_pem(&self) -> String {
        self.pair.public_key_pem()
    }

    /// An ES256 JWT of `claims`, signed here (as a kubelet would sign a
    /// projected service-account token).
    pub fn sign_jwt(&self, claims: &Value) -> String {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.pair.serialize_der(),
            &rng,
        )
        .unwrap();
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.jwk["kid"] });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// Claims of a workload identity token for `sub`, valid for ten minutes.
pub fn workload_claims(sub: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": WORKLOAD_ISSUER,
        "aud": WORKLOAD_AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
    })
}
