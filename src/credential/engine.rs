//! The refresher task: one per credential, the only writer of its snapshot.
//!
//! It fetches at start, refreshes at ~2/3 of each value's lifetime, re-reads
//! values without expiry on change or on a schedule, backs off after
//! failures while the last good value serves, and carries out refresh and
//! revoke commands one at a time (so there is never more than one fetch in
//! flight per credential).

use super::schedule::{backoff, refresh_after, unit};
use super::{Command, Credential, ErrorKind, Snapshot, Source, SourceError};
use crate::audit;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

/// Quiet time after a file event before reading, so a write in progress settles.
const SETTLE: Duration = Duration::from_millis(20);
/// A value that would be refreshed sooner than this is refreshed this soon.
const MIN_REFRESH: Duration = Duration::from_millis(200);
/// "Never" on tokio's clock, for values that are read once.
const FAR: Duration = Duration::from_secs(86400 * 365);

type Reply = Option<oneshot::Sender<Result<(), SourceError>>>;

fn unusable(e: crate::inject::RenderError) -> SourceError {
    SourceError::new(format!("the new value cannot be used: {e}"))
}

/// Starts the refresher of `cred`. It stops when `cred`'s last sender is
/// gone or the task is aborted.
pub fn spawn(cred: Arc<Credential>, source: Arc<dyn Source>) -> JoinHandle<()> {
    let Some(rx) = cred.take_commands() else {
        tracing::error!(
            credential = cred.name(),
            "a refresher already runs for this credential; not starting another"
        );
        return tokio::spawn(async {});
    };
    tokio::spawn(
        Refresher {
            cred,
            source,
            failures: 0,
            retry_in: None,
            changed_while_fetching: false,
        }
        .run(rx),
    )
}

struct Refresher {
    cred: Arc<Credential>,
    source: Arc<dyn Source>,
    failures: u32,
    /// The backoff delay chosen (jitter included) when the last fetch
    /// failed: logged and used for the next attempt alike.
    retry_in: Option<Duration>,
    /// A watched file changed while a fetch was in flight: read again soon.
    changed_while_fetching: bool,
}

impl Refresher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let _watcher = super::file::watch(&self.source.watch_paths(), &self.cred);
        let mut next = Instant::now();
        loop {
            let expiry = self.pending_expiry();
            let overdue = self.pending_overdue();
            let wake = [expiry, overdue]
                .into_iter()
                .flatten()
                .fold(next, Instant::min);
            let cmd = tokio::select! {
                _ = sleep_until(wake) => None,
                cmd = rx.recv() => match cmd {
                    Some(c) => Some(c),
                    None => return,
                },
            };
            match cmd {
                None if expiry.is_some_and(|e| e <= Instant::now()) => {
                    self.announce_expiry();
                    continue;
                }
                None if overdue.is_some_and(|o| o <= Instant::now()) => {
                    self.announce_overdue();
                    continue;
                }
                None => {
                    self.attempt(vec![], &mut rx).await;
                }
                Some(Command::Changed) => {
                    tokio::time::sleep(SETTLE).await;
                    self.attempt(vec![], &mut rx).await;
                }
                Some(Command::Refresh(reply)) => {
                    self.attempt(vec![reply], &mut rx).await;
                }
                Some(Command::Revoke(reply)) => {
                    self.revoke(reply, &mut rx).await;
                }
                Some(Command::Shutdown(done)) => {
                    self.source.shutdown().await;
                    let _ = done.send(());
                    return;
                }
                Some(Command::RevokeAndStop(done)) => {
                    self.revoke_at_source(true).await;
                    self.source.shutdown().await;
                    let _ = done.send(());
                    return;
                }
            }
            next = self.next_attempt();
        }
    }

    /// When the current value passes its `max_age`, if not yet announced.
    fn pending_overdue(&self) -> Option<Instant> {
        let snap = self.cred.peek()?;
        let at = snap.overdue_at?;
        let announced = self.cred.status().overdue_announced;
        (announced != Some(snap.fingerprint)).then_some(at)
    }

    /// Emits `rotation_overdue` once for the current value.
    fn announce_overdue(&self) {
        let Some(snap) = self.cred.peek() else { return };
        let age = SystemTime::now()
            .duration_since(snap.issued_at)
            .unwrap_or(Duration::ZERO);
        let max = self.cred.config.max_age.unwrap_or(Duration::ZERO);
        audit::rotation_overdue(
            self.cred.name(),
            snap.fingerprint,
            age.as_secs(),
            max.as_secs(),
        );
        self.cred
            .update_status(|s| s.overdue_announced = Some(snap.fingerprint));
    }

    /// One fetch, its outcome answered to every refresh request that joined it.
    async fn attempt(
        &mut self,
        mut replies: Vec<Reply>,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) {
        self.cred.update_status(|s| s.in_flight = true);
        let previous = self.cred.peek().map(|s| s.issued());
        let outcome = match self.source.fetch(previous.as_ref()).await {
            Ok(issued) => self.accept(issued),
            Err(e) => Err(e),
        };
        let answer = self.record(outcome);
        let detail = self.source.detail();
        self.cred.update_status(|s| s.source_detail = detail);
        self.cred.fetch_ended();
        // Requests that arrived while the fetch was in flight join its result.
        let mut deferred = Vec::new();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Refresh(r) => replies.push(r),
                Command::Changed => self.changed_while_fetching = true,
                revoke @ Command::Revoke(_) => deferred.push(revoke),
                Command::Shutdown(done) => {
                    self.source.shutdown().await;
                    let _ = done.send(());
                }
                Command::RevokeAndStop(done) => {
                    self.revoke_at_source(true).await;
                    self.source.shutdown().await;
                    let _ = done.send(());
                }
            }
        }
        for reply in replies.into_iter().flatten() {
            let _ = reply.send(answer.clone());
        }
        for cmd in deferred {
            if let Command::Revoke(reply) = cmd {
                Box::pin(self.revoke(reply, rx)).await;
            }
        }
    }

    /// Validates and publishes a fetched value.
    fn accept(&mut self, issued: super::Issued) -> Result<(), SourceError> {
        let cred = &self.cred;
        let fp = issued.material.fingerprint();
        if cred.is_revoked_value(&fp) {
            return Err(SourceError::new(format!(
                "the source still returns the revoked value (fingerprint {fp}); waiting for a new one"
            )));
        }
        if issued.expires_at.is_some_and(|e| e <= SystemTime::now()) {
            return Err(SourceError::new(
                "the source returned a value that has already expired",
            ));
        }
        let current = cred.peek();
        let same = current.as_ref().is_some_and(|c| c.fingerprint == fp);
        let generation = match &current {
            Some(c) if same => c.generation,
            _ => cred.current_generation() + 1,
        };
        let expires_in = issued
            .expires_at
            .and_then(|e| e.duration_since(SystemTime::now()).ok())
            .map(|d| d.as_secs());
        let snap = Snapshot::build(
            issued,
            generation,
            &cred.injectors(),
            cred.config.max_age,
            cred.config.enforce_max_age,
        )
        .map_err(unusable)?;
        if same {
            if current
                .as_ref()
                .is_some_and(|c| c.expires_at != snap.expires_at)
            {
                cred.publish(snap).map_err(unusable)?; // same value, new lifetime
                cred.update_status(|s| s.expiry_announced = false);
            }
            return Ok(());
        }
        cred.publish(snap).map_err(unusable)?;
        cred.update_status(|s| {
            s.revoked = false;
            s.expiry_announced = false;
            if current.is_some() {
                s.rotations += 1;
            }
            let event = if current.is_some() {
                "rotated"
            } else {
                "issued"
            };
            s.timeline.note(event, Some(fp), None);
        });
        match current {
            Some(old) => audit::rotated(cred.name(), old.fingerprint, fp, expires_in),
            None => audit::issued(cred.name(), fp, expires_in),
        }
        Ok(())
    }

    fn record(&mut self, outcome: Result<(), SourceError>) -> Result<(), SourceError> {
        let now = SystemTime::now();
        match outcome {
            Ok(()) => {
                self.failures = 0;
                self.retry_in = None;
                self.cred.update_status(|s| {
                    s.in_flight = false;
                    s.consecutive_failures = 0;
                    s.refreshes_ok += 1;
                    s.last_error = None;
                    s.last_refresh_at = Some(now);
                });
                Ok(())
            }
            Err(e) => {
                self.failures += 1;
                let retry = match e.kind {
                    ErrorKind::Transient => backoff(self.failures, unit()),
                    // Asking again soon cannot help: retry at the slowest pace.
                    ErrorKind::Permanent => backoff(u32::MAX, unit()),
                };
                self.retry_in = Some(retry);
                audit::refresh_failed(
                    self.cred.name(),
                    &e.message,
                    self.failures,
                    retry.as_millis() as u64,
                );
                self.cred.update_status(|s| {
                    s.in_flight = false;
                    s.consecutive_failures = self.failures;
                    s.refreshes_failed += 1;
                    s.last_error = Some(e.message.clone());
                    s.last_refresh_at = Some(now);
                    s.timeline.note("refresh_failed", None, Some(&e.message));
                });
                Err(e)
            }
        }
    }

    async fn revoke(&mut self, reply: Reply, rx: &mut mpsc::UnboundedReceiver<Command>) {
        let revoke_error = self.revoke_at_source(false).await;
        let (tx, done) = oneshot::channel();
        self.attempt(vec![Some(tx)], rx).await;
        let fetched = done
            .await
            .unwrap_or_else(|_| Err(SourceError::new("refresher stopped")));
        if let Some(reply) = reply {
            // The revocation itself succeeded once the value is dropped; say
            // what else happened so the operator can act on it.
            let answer = match (revoke_error, fetched) {
                (Some(e), _) => Err(e),
                (None, _) => Ok(()),
            };
            let _ = reply.send(answer);
        }
    }

    /// Drops the current value and revokes it at the source where the source
    /// can; the error, if the source tried and failed. `at_exit`: a source
    /// that cannot revoke is not audited (the process is only stopping).
    async fn revoke_at_source(&mut self, at_exit: bool) -> Option<SourceError> {
        let old = self.cred.drop_value();
        self.cred.update_status(|s| {
            s.revoked = true;
            s.timeline
                .note("revoked", old.as_ref().map(|o| o.fingerprint), None);
        });
        let old = old?;
        let mut revoke_error = None;
        let at_source = match self.source.revoke(&old.material).await {
            Ok(super::Revocation::Revoked) => "revoked",
            Ok(super::Revocation::NotSupported) => "not_supported",
            Err(e) => {
                revoke_error = Some(SourceError {
                    kind: e.kind,
                    message: format!("revocation at the source failed: {e}"),
                });
                "failed"
            }
        };
        if !(at_exit && at_source == "not_supported") {
            audit::revoked(self.cred.name(), old.fingerprint, at_source);
        }
        revoke_error
    }

    /// When the next scheduled fetch is due.
    fn next_attempt(&mut self) -> Instant {
        let now = Instant::now();
        // A change seen during a fetch (even a failed one: a file caught
        // mid-write) is read again at once, ahead of any backoff.
        let delay = if std::mem::take(&mut self.changed_while_fetching) {
            SETTLE
        } else if let Some(retry) = self.retry_in {
            retry
        } else if let Some(remaining) = self.cred.peek().and_then(|s| s.remaining_lifetime()) {
            refresh_after(remaining, unit()).max(MIN_REFRESH)
        } else {
            self.source.reread_every().unwrap_or(FAR)
        };
        let at = now + delay;
        self.cred
            .update_status(|s| s.next_refresh_at = Some(SystemTime::now() + delay));
        at
    }

    /// The moment the current value becomes unusable, if not yet announced.
    fn pending_expiry(&self) -> Option<Instant> {
        if self.cred.status().expiry_announced {
            return None;
        }
        self.cred.peek().and_then(|s| s.refuse_after)
    }

    fn announce_expiry(&self) {
        let fingerprint = self.cred.peek().map(|s| s.fingerprint);
        if let Some(fp) = fingerprint {
            audit::expired(self.cred.name(), fp);
        }
        self.cred.update_status(|s| {
            s.expiry_announced = true;
            s.timeline.note("expired", fingerprint, None);
        });
    }
}
