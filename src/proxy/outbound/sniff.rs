//! What a redirected connection's first bytes say about where it goes: the TLS ClientHello's server name or the HTTP `Host`, read with `peek` so nothing is consumed.

use std::time::Duration;
use tokio::net::TcpStream;

/// The most bytes looked at: a ClientHello or a request head larger than this is not routed.
const MAX_PEEK: usize = 16 * 1024;
/// How long a client may stay silent: past it the protocol is taken to be
/// one where the server speaks first, and the connection is not routed.
const FIRST_BYTE: Duration = Duration::from_secs(1);
/// Time for the whole ClientHello or request head.
const WHOLE: Duration = Duration::from_secs(10);
/// Pause between looks while the hello or head is incomplete.
const AGAIN: Duration = Duration::from_millis(5);

/// What the first bytes are.
#[derive(Debug, PartialEq, Eq)]
pub enum First {
    /// A TLS ClientHello, with its server name if it gave one.
    Tls(Option<String>),
    /// An HTTP/1 request head, with its `Host` value if it has exactly one.
    Http(Option<String>),
    /// Anything else (or nothing in time).
    Other,
}

/// Looks at the first bytes of `s` without consuming them.
pub async fn sniff(s: &TcpStream) -> First {
    let mut buf = vec![0u8; MAX_PEEK];
    let Ok(Ok(n)) = tokio::time::timeout(FIRST_BYTE, s.peek(&mut buf)).await else {
        return First::Other;
    };
    let look = async {
        let mut n = n;
        loop {
            if n == 0 {
                return First::Other;
            }
            if let Some(f) = classify(&buf[..n]) {
                return f;
            }
            if n == MAX_PEEK {
                return First::Other;
            }
            tokio::time::sleep(AGAIN).await;
            n = match s.peek(&mut buf).await {
                Ok(n) => n,
                Err(_) => return First::Other,
            };
        }
    };
    tokio::time::timeout(WHOLE, look)
        .await
        .unwrap_or(First::Other)
}

/// `None` while more bytes are needed to tell.
pub fn classify(b: &[u8]) -> Option<First> {
    match b.first()? {
        0x16 => tls(b),
        c if c.is_ascii_uppercase() => http(b),
        _ => Some(First::Other),
    }
}

fn tls(b: &[u8]) -> Option<First> {
    let mut acc = rustls::server::Acceptor::default();
    let mut rd = b;
    while !rd.is_empty() {
        match acc.read_tls(&mut rd) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Some(First::Other),
        }
    }
    match acc.accept() {
        Ok(Some(hello)) => Some(First::Tls(
            hello
                .client_hello()
                .server_name()
                .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
        )),
        Ok(None) => None,
        Err(_) => Some(First::Other),
    }
}

fn http(b: &[u8]) -> Option<First> {
    let method_end = b.iter().position(|c| !c.is_ascii_uppercase())?;
    if b[method_end] != b' ' {
        return Some(First::Other);
    }
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")?;
    let Ok(head) = std::str::from_utf8(&b[..end]) else {
        return Some(First::Http(None));
    };
    let mut hosts = head.split("\r\n").skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_owned())
    });
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => Some(h),
        _ => None,
    };
    Some(First::Http(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_heads() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\nHo"), None);
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n"),
            Some(First::Http(Some("api.test".into())))
        );
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
            Some(First::Http(None))
        );
        assert_eq!(classify(b"SSH-2.0-x\r\n"), Some(First::Other));
        assert_eq!(classify(b"\x00\x01"), Some(First::Other));
    }

    #[test]
    fn partial_tls_waits() {
        assert_eq!(classify(&[0x16, 3, 1, 0, 200, 1]), None);
    }
}
