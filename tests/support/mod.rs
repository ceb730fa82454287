//! Test helpers shared by the integration tests: real upstreams, a running sidekey, an HTTP client, log capture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![allow(dead_code, unused_imports)]

pub mod admin_page;
pub mod aws;
pub mod binary;
pub mod curl;
pub mod httpsig;
pub mod keyring;
pub mod kube;
pub mod load;
pub mod logs;
pub mod mtls;
pub mod nginx;
pub mod oauth;
pub mod openbao;
pub mod openbao_audit;
pub mod properties;
pub mod proxy;
pub mod redis;
pub mod streams;
pub mod tls;
pub mod tokenreview;
pub mod upstream;
pub mod vault;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sidekey::app::App;
use sidekey::config::ListenAddr;
use std::path::{Path, PathBuf};

pub use upstream::{Reply, Seen, Upstream};

/// A sidekey started in-process from config text, with a scratch folder.
pub struct Sidekey {
    pub app: App,
    pub dir: tempfile::TempDir,
}

impl Sidekey {
    /// Starts sidekey from `config`. `{dir}` in the text is replaced by the
    /// scratch folder, so tests can point sources at files there.
    pub async fn start(config: &str) -> Sidekey {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: &str) -> Sidekey {
        logs::init();
        let text = config.replace("{dir}", dir.path().to_str().unwrap());
        let path = dir.path().join("sidekey.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg =
            sidekey::config::load(&path).unwrap_or_else(|e| panic!("config should load:\n{e}"));
        let app = App::start(cfg).await.expect("sidekey starts");
        Sidekey { app, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Base URL of a route, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self, route: &str) -> String {
        match self.app.route_addr(route).expect("route exists") {
            ListenAddr::Tcp(a) => format!("http://{a}"),
            ListenAddr::Unix(p) => panic!("route {route} listens on unix:{}", p.display()),
        }
    }

    pub fn admin(&self) -> String {
        match self.app.admin_addr() {
            ListenAddr::Tcp(a) => format!("http://{a}"),
            ListenAddr::Unix(p) => panic!("admin listens on unix:{}", p.display()),
        }
    }

    /// Waits until `/readyz` answers 200, up to `secs`.
    pub async fn wait_ready(&self, secs: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let (status, _, _) = get(&format!("{}/readyz", self.admin())).await;
            if status == 200 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sidekey not ready after {secs}s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops sidekey and checks that no registered secret reached the logs.
    pub async fn stop(self) {
        self.app.shutdown().await;
        logs::assert_no_secret_logged();
    }
}

/// Polls `check` every 100 ms until it returns Some, up to `secs`; panics naming `what`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A finished command's stdout, asserting that it succeeded (its stdout
/// and stderr are the message if not).
pub fn stdout_of(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Writes `value` to `path` atomically (write a temporary file, rename it over).
pub fn write_atomic(path: &Path, value: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, value).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled client: load loops keep one per task so connections are reused.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET with a given (pooled) client; returns status and body.
pub async fn get_with(client: &HttpClient, url: &str) -> (StatusCode, Bytes) {
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let resp = client.request(req).await.expect("request to sidekey");
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes(),
    )
}

/// Sends one request; returns status, headers and the whole body.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = client()
        .request(b.body(Full::new(body.into())).unwrap())
        .await
        .expect("request to sidekey");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("response body").to_bytes();
    (parts.status, parts.headers, bytes)
}

pub async fn get(url: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(Method::GET, url, &[], Bytes::new()).await
}

/// Parses a sidekey error body and returns its code.
pub fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("JSON error body, got {:?}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

/// The usual injection: the credential as a bearer token.
#[allow(dead_code)] // not every test binary uses every helper
pub const BEARER: &str = r#"{ header = "Authorization", format = "Bearer {secret}" }"#;

/// A `[[routes]]` table: route `name` on a free loopback port to `upstream`,
/// credential `credential` attached by `inject`, then any `extra` route keys.
pub fn route(name: &str, upstream: &str, credential: &str, inject: &str, extra: &str) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
listen = "127.0.0.1:0"
upstream = "{upstream}"
credential = "{credential}"
inject = {inject}
{extra}
"#
    )
}

/// The credential `k`: the file `{dir}/key`.
pub const KEY_FILE: &str = r#"
[credentials.k]
source = "file"
path = "{dir}/key"
"#;

/// A one-route config: credential `k` from `{dir}/key`, route `r` to `upstream`
/// with the given `inject` inline table, then any `extra` route keys.
pub fn one_route(upstream: &str, inject: &str, extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"
{KEY_FILE}{}"#,
        route("r", upstream, "k", inject, extra)
    )
}

/// Starts sidekey with a key file holding `key` and the one-route config.
pub async fn with_key(key: &str, config: &str) -> Sidekey {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
    let sk = Sidekey::start_in(dir, config).await;
    sk.wait_ready(5).await;
    sk
}
