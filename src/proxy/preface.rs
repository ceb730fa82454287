//! Reads, within the header timeout, the first bytes of a route connection: enough to tell HTTP/2 with prior knowledge (h2c) from HTTP/1.1. The server reads them again.
//!
//! hyper-util's auto server waits for its version bytes with no timer, so a
//! connection that never speaks would be held for ever; this read is timed,
//! and only then does the server take the connection.

use super::limits::Admitted;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose first bytes were read and are served again first.
pub struct Prefixed<T> {
    head: [u8; 24],
    at: usize,
    len: usize,
    io: T,
    /// The connection's place under `max_connections`, freed when the
    /// socket closes: after an upgrade the socket lives on in the joined
    /// connection, after the HTTP server has let it go.
    _held: Option<Arc<Admitted>>,
}

/// Reads until the bytes decide the protocol (a byte off the HTTP/2
/// preface, or the whole preface). `None` when the peer closes, fails or
/// stays silent past `timeout`.
pub async fn read_head<T: AsyncRead + Unpin>(
    mut io: T,
    timeout: Duration,
    held: Option<Arc<Admitted>>,
) -> Option<Prefixed<T>> {
    let mut head = [0u8; 24];
    let mut len = 0;
    let decided = tokio::time::timeout(timeout, async {
        loop {
            let n = io.read(&mut head[len..]).await.ok()?;
            if n == 0 {
                return None;
            }
            len += n;
            if len == head.len() || head[..len] != H2_PREFACE[..len] {
                return Some(());
            }
        }
    })
    .await;
    match decided {
        Ok(Some(())) => Some(Prefixed {
            head,
            at: 0,
            len,
            io,
            _held: held,
        }),
        _ => None,
    }
}

impl<T> Prefixed<T> {
    /// Whether the connection opened with the HTTP/2 preface.
    pub fn is_h2(&self) -> bool {
        self.len == H2_PREFACE.len() && self.head == *H2_PREFACE
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.len {
            let n = (this.len - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn http1_decided_on_the_first_byte_and_read_again() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut p = read_head(b, Duration::from_secs(1), None).await.unwrap();
        let mut got = vec![0u8; 16];
        p.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn silent_or_partial_preface_times_out() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&H2_PREFACE[..10]).await.unwrap();
        assert!(
            read_head(b, Duration::from_millis(50), None)
                .await
                .is_none()
        );
    }
}
