//! What one client may hold: a cap on a listener's connections (with the answer past it) and a deadline for a body sidekey reads whole.

use super::error::ProxyError;
use crate::metrics::ConnStats;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refusals being written at once, per listener; past it a connection is closed at once.
const REFUSING_AT_ONCE: usize = 32;
/// Time a refusal may take to write, and to drain what the client had sent.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// The connection cap of one listener.
pub struct ConnLimit {
    /// Who is refused: `route `NAME`` or `the admin API`, for the message.
    what: String,
    /// The route named in the error body (none on the admin listener).
    route: Option<String>,
    max: AtomicUsize,
    held: Arc<Semaphore>,
    /// Places still to take away after the cap was lowered below the
    /// connections open then: each closing connection pays one.
    owed: Arc<AtomicUsize>,
    refusing: Arc<Semaphore>,
    stats: Arc<ConnStats>,
}

/// A connection within the cap; dropping it frees its place.
pub struct Admitted {
    permit: Option<OwnedSemaphorePermit>,
    owed: Arc<AtomicUsize>,
    stats: Arc<ConnStats>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        let pays = self
            .owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if let (true, Some(permit)) = (pays, self.permit.take()) {
            permit.forget(); // the place leaves with the connection
        }
    }
}

impl ConnLimit {
    pub fn new(route: Option<&str>, max: usize, stats: Arc<ConnStats>) -> ConnLimit {
        ConnLimit {
            what: route.map_or_else(|| "the admin API".to_owned(), |r| format!("route `{r}`")),
            route: route.map(str::to_owned),
            max: AtomicUsize::new(max),
            held: Arc::new(Semaphore::new(max)),
            owed: Arc::default(),
            refusing: Arc::new(Semaphore::new(REFUSING_AT_ONCE)),
            stats,
        }
    }

    /// A place for a new connection, or `None` when the listener is full.
    pub fn admit(&self) -> Option<Admitted> {
        let permit = self.held.clone().try_acquire_owned().ok()?;
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            permit: Some(permit),
            owed: self.owed.clone(),
            stats: self.stats.clone(),
        })
    }

    /// The cap now.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Acquire)
    }

    /// Changes the cap of a running listener (a reload shared the open-file
    /// limit out again). Connections over a lowered cap stay open; new ones
    /// are refused until enough have closed.
    pub fn resize(&self, max: usize) {
        let was = self.max.swap(max, Ordering::AcqRel);
        if max > was {
            // Places still owed are forgiven first.
            let mut more = max - was;
            let _ = self
                .owed
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    let forgiven = n.min(max - was);
                    more = max - was - forgiven;
                    Some(n - forgiven)
                });
            self.held.add_permits(more);
        } else if max < was {
            let fewer = was - max;
            let taken = self.held.forget_permits(fewer);
            self.owed.fetch_add(fewer - taken, Ordering::AcqRel);
        }
    }

    /// Refuses a connection past the cap, counted in `/metrics`: a `503
    /// too_many_connections` with `Connection: close`, written without
    /// waiting for the request, then the connection is closed. When many
    /// refusals are already being written it is closed at once.
    pub fn refuse<S>(&self, mut io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        let Ok(slot) = self.refusing.clone().try_acquire_owned() else {
            return; // dropping `io` closes it
        };
        let answer = self.answer();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                io.write_all(answer.as_bytes()).await?;
                io.shutdown().await?;
                // Read what the client sent so closing does not reset the
                // connection (and lose the answer) while bytes are unread.
                let mut sink = [0u8; 4096];
                while io.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
    }

    fn answer(&self) -> String {
        let message = format!(
            "{} already holds its maximum of {} connections (max_connections); retry later, or reuse connections",
            self.what,
            self.max()
        );
        let body = crate::error_body::json("too_many_connections", &message, self.route.as_deref());
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nsidekey-error: too_many_connections\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Reads a body sidekey holds whole within `limit`, else `408 request_timeout`.
pub async fn body_within<T>(
    limit: Duration,
    read: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| ProxyError::RequestTimeout(limit))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_cap_takes_places_back_as_connections_close() {
        let cap = ConnLimit::new(Some("r"), 3, Default::default());
        let mut open: Vec<Admitted> = (0..3).map(|_| cap.admit().unwrap()).collect();
        assert!(cap.admit().is_none());
        cap.resize(1);
        assert_eq!(cap.max(), 1);
        open.pop();
        open.pop();
        assert!(cap.admit().is_none(), "two closed, but one is still open");
        open.pop();
        let one = cap.admit().expect("the one place is free");
        assert!(cap.admit().is_none());
        cap.resize(2);
        let two = cap.admit().expect("raised again");
        assert!(cap.admit().is_none());
        drop((one, two));
    }

    #[test]
    fn raising_a_lowered_cap_forgives_places_still_owed() {
        let cap = ConnLimit::new(Some("r"), 4, Default::default());
        let open: Vec<Admitted> = (0..4).map(|_| cap.admit().unwrap()).collect();
        cap.resize(1); // three owed
        cap.resize(3); // two of them forgiven, one still owed
        drop(open);
        let now: Vec<Admitted> = std::iter::from_fn(|| cap.admit()).take(10).collect();
        assert_eq!(now.len(), 3);
    }
}
