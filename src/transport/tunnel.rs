//! Joins two upgraded connections (a WebSocket after its `101`) byte for byte until either side closes or both stay silent past an idle timeout; counts the bytes each way.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Why a joined connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The app closed its side first.
    ClientClosed,
    /// The upstream closed its side first.
    UpstreamClosed,
    /// No byte either way for the idle timeout.
    IdleTimeout,
    /// Reading or writing failed on one side.
    Error,
    /// The listener's shutdown grace period ended.
    Shutdown,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::ClientClosed => "client_closed",
            End::UpstreamClosed => "upstream_closed",
            End::IdleTimeout => "idle_timeout",
            End::Error => "error",
            End::Shutdown => "shutdown",
        }
    }
}

/// Bytes carried, as they pass: `up` from the app to the upstream, `down` back.
#[derive(Debug, Default)]
pub struct Carried {
    pub up: AtomicU64,
    pub down: AtomicU64,
}

/// Copies both ways until both sides have closed (a close is passed on as a
/// half-close), one side fails, or nothing moves for `idle`.
pub async fn join<A, B>(app: A, upstream: B, idle: Duration, carried: &Carried) -> End
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    // Milliseconds from `started` to the last byte either way.
    let last = AtomicU64::new(0);
    let (app_r, app_w) = tokio::io::split(app);
    let (up_r, up_w) = tokio::io::split(upstream);
    let to_upstream = pump(app_r, up_w, &carried.up, &last, started);
    let to_app = pump(up_r, app_w, &carried.down, &last, started);
    tokio::pin!(to_upstream, to_app);
    let (mut app_done, mut upstream_done) = (false, false);
    let mut end = None;
    loop {
        let quiet_since = started + Duration::from_millis(last.load(Relaxed));
        tokio::select! {
            r = &mut to_upstream, if !app_done => {
                app_done = true;
                match r {
                    Ok(()) => _ = end.get_or_insert(End::ClientClosed),
                    Err(_) => return End::Error,
                }
            }
            r = &mut to_app, if !upstream_done => {
                upstream_done = true;
                match r {
                    Ok(()) => _ = end.get_or_insert(End::UpstreamClosed),
                    Err(_) => return End::Error,
                }
            }
            _ = tokio::time::sleep_until(quiet_since + idle) => {
                if Instant::now() >= started + Duration::from_millis(last.load(Relaxed)) + idle {
                    return End::IdleTimeout;
                }
            }
        }
        if app_done && upstream_done {
            return end.unwrap_or(End::ClientClosed);
        }
    }
}

/// One direction: each read is written on at once (no batching).
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    count: &AtomicU64,
    last: &AtomicU64,
    started: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        count.fetch_add(n as u64, Relaxed);
        last.store(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn carries_both_ways_and_tells_who_closed() {
        let (mut app, app_side) = tokio::io::duplex(1024);
        let (up_side, mut up) = tokio::io::duplex(1024);
        let carried = Carried::default();
        let joined = join(app_side, up_side, Duration::from_secs(5), &carried);
        let peers = async {
            app.write_all(b"hello").await.unwrap();
            let mut got = [0u8; 5];
            up.read_exact(&mut got).await.unwrap();
            up.write_all(b"world!").await.unwrap();
            let mut back = [0u8; 6];
            app.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"world!");
            drop(up);
            let mut rest = Vec::new();
            app.read_to_end(&mut rest).await.unwrap();
            drop(app);
        };
        let (end, ()) = tokio::join!(joined, peers);
        assert_eq!(end, End::UpstreamClosed);
        assert_eq!(carried.up.load(Relaxed), 5);
        assert_eq!(carried.down.load(Relaxed), 6);
    }

    #[tokio::test]
    async fn silent_connections_end_at_the_idle_timeout() {
        let (_app, app_side) = tokio::io::duplex(64);
        let (up_side, _up) = tokio::io::duplex(64);
        let carried = Carried::default();
        let end = join(app_side, up_side, Duration::from_millis(50), &carried).await;
        assert_eq!(end, End::IdleTimeout);
    }
}
