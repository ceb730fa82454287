//! Stream test peers: the grpcio and websockets servers of `streams_peer.py`, run from the test venv until dropped, and its clients.

use super::{Sidekey, logs};
use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A server process of `streams_peer.py`, killed when dropped.
pub struct Server {
    pub port: u16,
    _child: Child,
    _stdout: BufReader<tokio::process::ChildStdout>,
}

impl Server {
    /// Starts `streams_peer.py {args}` and waits for the port it prints.
    pub async fn start(args: &[&str]) -> Server {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/streams_peer.py");
        let mut child = Command::new(super::aws::venv_bin("python"))
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start streams_peer.py");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the peer prints its port within 30 s")
            .unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the peer prints JSON, got {line:?}"));
        Server {
            port: v["port"].as_u64().unwrap() as u16,
            _child: child,
            _stdout: stdout,
        }
    }
}

/// A `kind` server of `streams_peer.py` (`grpc-server`, `ws-server`) over
/// TLS as `host`, accepting only `token`, behind a sidekey whose forward
/// proxy intercepts `host` with the host route `name` attaching `token` as a
/// bearer token. The server's certificate is from a test CA that sidekey trusts.
pub async fn intercepted(kind: &str, name: &str, host: &str, token: &str) -> (Sidekey, Server) {
    let dir = tempfile::tempdir().unwrap();
    let ca = super::tls::TestCa::new();
    ca.write(&dir.path().join("upstream-ca.pem"));
    let (cert, key) = ca.leaf_pem_for(&[host]);
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), key).unwrap();
    let token = logs::secret(token);
    std::fs::write(dir.path().join("accept"), &token).unwrap();
    std::fs::write(dir.path().join("token"), &token).unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let server = Server::start(&[kind, &p("accept"), &p("cert.pem"), &p("key.pem")]).await;
    let routes = format!(
        r#"
[[routes]]
name = "{name}"
host = "{host}"
port = {port}
upstream = "https://{host}:{port}"
connect_to = "127.0.0.1"
ca_file = "{{dir}}/upstream-ca.pem"
credential = "gh"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
"#,
        port = server.port
    );
    let sk = Sidekey::start_in(dir, &super::proxy::config("", &routes)).await;
    sk.wait_ready(10).await;
    (sk, server)
}

/// Runs a client of `streams_peer.py` and returns the JSON it prints.
pub async fn client(args: &[&str]) -> Value {
    super::aws::python("streams_peer.py", args, None).await
}

/// A masked client text frame (RFC 6455 §5.2), payload under 126 bytes.
#[allow(dead_code)] // not every test binary uses every helper
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Sends an upgrade handshake on a new connection and returns the
/// connection and the answer's head.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn handshake(addr: &str, path: &str, protocol: &str) -> (tokio::net::TcpStream, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ask = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(ask.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    (s, String::from_utf8_lossy(&buf[..n]).to_string())
}
/// Opens a WebSocket over HTTP/2 (RFC 8441 extended CONNECT, a hyper
/// client) to the route at `addr`; sends `text` and returns the echo.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn over_h2(addr: &str, path: &str, text: &[u8]) -> Vec<u8> {
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) must have arrived first.
    let mut tries = 0;
    let resp = loop {
        let mut req = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{addr}{path}"))
            .header("sec-websocket-version", "13")
            .body(Empty::new())
            .unwrap();
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        sender.ready().await.unwrap();
        match sender.send_request(req).await {
            Ok(r) => break r,
            Err(e) if tries < 10 => {
                tries += 1;
                eprintln!("extended CONNECT not yet allowed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("extended CONNECT: {e}"),
        }
    };
    assert_eq!(resp.status(), 200, "RFC 8441: 200 to the extended CONNECT");
    assert!(resp.headers().get("sec-websocket-accept").is_none());
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(&text_frame(text)).await.unwrap();
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x81, "an unmasked text frame back");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            io.read_exact(&mut ext).await.unwrap();
            usize::from(u16::from_be_bytes(ext))
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.unwrap();
    payload
}
