//! A small client of the admin API, for the `inventory`, `refresh` and `revoke` commands.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Sends one request to the admin API at `addr` ("host:port" or "unix:/path").
pub async fn call(
    addr: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, Bytes), String> {
    let req = {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host_header(addr));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?
    };
    let unreachable = |e: std::io::Error| {
        format!("cannot reach the admin API at {addr}: {e} (is sidekey running? set --admin)")
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(unreachable)?;
        send(TokioIo::new(s), req).await
    } else {
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(unreachable)?;
        send(TokioIo::new(s), req).await
    }
}

/// The `Host` the admin API accepts (it refuses names other than its own
/// address and loopback names): the address itself when it is one, else
/// `localhost` (the CLI connects by address; the name is only a label).
fn host_header(addr: &str) -> &str {
    let ip = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_ok() {
        addr
    } else {
        "localhost"
    }
}

async fn send<T>(io: T, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}
