//! The forward proxy's test world: an HTTPS upstream whose certificate (from a test CA) names the routed hosts, a sidekey with `[proxy]` and host routes to it, the CA apps trust, and a raw CONNECT client.

use super::tls::TestCa;
use super::{Reply, Seen, Sidekey, Upstream, logs};
use sidekey::config::ListenAddr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The routed host every test calls.
pub const HOST: &str = "api.example.test";
/// A second routed host (to switch to inside a tunnel).
pub const OTHER: &str = "other.example.test";

/// A host route to the test upstream: `host`, its upstream named by `host`
/// at the upstream's port, dialled on loopback (`connect_to`), its
/// certificate checked against the test CA.
pub fn host_route(name: &str, host: &str, upstream: &Upstream, extra: &str) -> String {
    let bearer = r#"{ header = "Authorization", format = "Bearer {secret}" }"#;
    host_route_with(name, host, upstream, bearer, "{dir}/upstream-ca.pem") + extra + "\n"
}

/// [`host_route`] with another `inject` table and the route's `ca_file`.
pub fn host_route_with(
    name: &str,
    host: &str,
    upstream: &Upstream,
    inject: &str,
    ca_file: &str,
) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
host = "{host}"
upstream = "https://{host}:{port}"
connect_to = "127.0.0.1"
ca_file = "{ca_file}"
credential = "gh"
inject = {inject}
"#,
        port = upstream.addr.port()
    )
}

/// The start of a forward-proxy config: `state_dir`, the admin listener
/// and `[proxy]` on `listen` with `proxy_extra` keys; credentials and
/// routes follow it.
pub fn head_on(listen: &str, proxy_extra: &str) -> String {
    format!(
        r#"
state_dir = "{{dir}}/state"

[admin]
listen = "127.0.0.1:0"

[proxy]
listen = "{listen}"
{proxy_extra}
"#
    )
}

/// [`head_on`] a free loopback port.
pub fn head(proxy_extra: &str) -> String {
    head_on("127.0.0.1:0", proxy_extra)
}

/// A whole config: the forward proxy on `listen` (with `proxy_extra` keys),
/// the credential `gh` from `{dir}/token`, and `routes`.
pub fn config_on(listen: &str, proxy_extra: &str, routes: &str) -> String {
    format!(
        r#"{}
[credentials.gh]
source = "file"
path = "{{dir}}/token"
{routes}"#,
        head_on(listen, proxy_extra)
    )
}

/// [`config_on`] a free loopback port.
pub fn config(proxy_extra: &str, routes: &str) -> String {
    config_on("127.0.0.1:0", proxy_extra, routes)
}

/// A running world: sidekey, the upstream, and where the CA and token are.
pub struct World {
    pub sk: Sidekey,
    pub upstream: Upstream,
    pub token: String,
    pub test_ca: TestCa,
}

impl World {
    /// The upstream answers 200 `ok` and records what it received.
    pub async fn upstream() -> (Upstream, TestCa) {
        let ca = TestCa::new();
        let tls = ca.server_config_for(&[HOST, OTHER, "localhost"]);
        let up = Upstream::start_tls(tls, |s: &Seen| Reply::ok(format!("ok {}", s.target))).await;
        (up, ca)
    }

    /// Starts a world whose routes are `routes(upstream)` and `[proxy]` has `proxy_extra`.
    pub async fn start(proxy_extra: &str, routes: impl Fn(&Upstream) -> String) -> World {
        let (upstream, test_ca) = Self::upstream().await;
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, upstream, test_ca, proxy_extra, &routes).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        upstream: Upstream,
        test_ca: TestCa,
        proxy_extra: &str,
        routes: &dyn Fn(&Upstream) -> String,
    ) -> World {
        let token = logs::secret("ghp_proxied0secret0value0123456789abcdef");
        std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
        test_ca.write(&dir.path().join("upstream-ca.pem"));
        let sk = Sidekey::start_in(dir, &config(proxy_extra, &routes(&upstream))).await;
        sk.wait_ready(5).await;
        World {
            sk,
            upstream,
            token,
            test_ca,
        }
    }

    /// `http://127.0.0.1:PORT` of the forward proxy.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr())
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        match self.sk.app.proxy_addr().expect("[proxy] configured") {
            ListenAddr::Tcp(a) => *a,
            ListenAddr::Unix(p) => panic!("proxy on unix:{}", p.display()),
        }
    }

    /// curl through the forward proxy to `url`, trusting the CA in `ca`.
    pub async fn curl_trusting(&self, ca: &Path, url: &str) -> super::curl::Answer {
        let ca = ca.to_str().unwrap();
        super::curl::curl(&["--proxy", &self.proxy_url(), "--cacert", ca, url]).await
    }

    /// Writes the CA as `sidekey ca -c CONFIG` prints it to `{dir}/sidekey-ca.pem`; returns the path.
    pub fn trust(&self) -> PathBuf {
        let pem = sidekey_ca(&self.sk.path("sidekey.toml"));
        let path = self.sk.path("sidekey-ca.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }
}

/// For a sidekey with a `[proxy]`: its `http://127.0.0.1:PORT`, and the CA
/// as `sidekey ca` prints it, written to `{dir}/sidekey-ca.pem`, for an app
/// (curl `--proxy`, `--cacert`) to use.
pub fn proxy_and_ca(sk: &Sidekey) -> (String, PathBuf) {
    let proxy = match sk.app.proxy_addr().expect("[proxy] configured") {
        ListenAddr::Tcp(a) => format!("http://{a}"),
        ListenAddr::Unix(p) => panic!("proxy on unix:{}", p.display()),
    };
    let trust = sk.path("sidekey-ca.pem");
    std::fs::write(&trust, sidekey_ca(&sk.path("sidekey.toml"))).unwrap();
    (proxy, trust)
}

/// Runs the binary's `sidekey ca -c CONFIG` and returns what it printed.
pub fn sidekey_ca(config: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["ca", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sidekey ca failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    pem
}

/// Sends `CONNECT target` to the proxy; returns the status and, on 200, the open tunnel
/// (else the answer's text).
pub async fn connect(proxy: SocketAddr, target: &str) -> (u16, Result<TcpStream, String>) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    if status == 200 {
        return (status, Ok(s));
    }
    let len = text
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).await.unwrap();
    (
        status,
        Err(format!("{text}{}", String::from_utf8_lossy(&rest))),
    )
}

/// TLS over an open tunnel with server name `sni`, trusting only `ca_pem`,
/// offering `alpn`.
pub async fn tls_over(
    tunnel: TcpStream,
    sni: &str,
    ca_pem: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut cfg = super::tls::client_trusting(ca_pem);
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tunnel)
        .await
        .unwrap()
}

/// The error code of a sidekey JSON answer's text (headers and body).
pub fn code_in(answer: &str) -> String {
    let body = answer.split_once("\r\n\r\n").map_or(answer, |(_, b)| b);
    super::error_code(body.trim().as_bytes())
}
