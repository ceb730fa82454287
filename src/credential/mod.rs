//! Credentials and their rotation engine: sources, snapshots, the refresher task and lifecycle state.
//!
//! The request path only calls [`Credential::current`], a wait-free load of an
//! `ArcSwap`. One refresher task per credential ([`engine`]) owns the source
//! and is the only writer.

pub mod aws;
pub mod engine;
pub mod env;
pub mod exec;
pub mod file;
pub mod keyring;
pub mod oauth2;
pub mod registry;
pub mod rejection;
pub mod schedule;
pub mod vault;
/// Kept under the name the sources use.
pub use crate::secret_ref;
mod snapshot;
mod source;
pub mod spec;
mod status;
pub mod timeline;

pub use crate::material::{AwsKeys, Material};
pub use snapshot::Snapshot;
pub use source::{BoxFuture, ErrorKind, Issued, Lease, Revocation, Source, SourceError};
pub use spec::{CredentialConfig, SourceSettings, SourceSpec};
pub use status::{PreviousStillValid, State, Status};

use crate::audit;
use crate::inject::{InjectSpec, RenderError};
use crate::secret::Fingerprint;
use crate::sync::Mutex;
use arc_swap::ArcSwapOption;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Why a request cannot have the credential right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No value yet, or revoked and not yet replaced.
    Unavailable,
    /// The value's lifetime (or enforced `max_age`) is over.
    Expired,
}

/// Why an operator's refresh or revoke did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the refresher of this credential is not running")]
    NotRunning,
    #[error("the refresher stopped")]
    Stopped,
    #[error(transparent)]
    Failed(SourceError),
}

/// What the refresher is asked to do.
pub enum Command {
    /// Refresh now; the answer says how it went.
    Refresh(Option<oneshot::Sender<Result<(), SourceError>>>),
    /// Drop the value, revoke it at the source, fetch anew.
    Revoke(Option<oneshot::Sender<Result<(), SourceError>>>),
    /// A watched file changed.
    Changed,
    /// The process stops: let the source release what it holds, then end.
    Shutdown(oneshot::Sender<()>),
    /// `sidekey exec` ends: revoke the current value at the source where it
    /// can, release what the source holds, then end.
    RevokeAndStop(oneshot::Sender<()>),
}

/// One named credential: its current value and its lifecycle.
pub struct Credential {
    pub config: CredentialConfig,
    current: ArcSwapOption<Snapshot>,
    injectors: Mutex<Vec<InjectSpec>>,
    status: Mutex<Status>,
    /// Fingerprints revoked by an operator: never published again.
    revoked: Mutex<HashSet<Fingerprint>>,
    /// The previous value, kept for the revocation probe.
    previous: ArcSwapOption<Snapshot>,
    generation: watch::Sender<u64>,
    /// Highest generation for which a rejection already asked for a refresh.
    rejection_requested: AtomicU64,
    /// Whether a rejection may ask for a refresh now (`min_refresh_interval`).
    throttle: Mutex<rejection::Throttle>,
    /// The throttle holds something a success must clear (checked without the lock).
    throttle_engaged: AtomicBool,
    /// `rejection_requested` as it was when the last fetch ended: a request
    /// waiting for a value newer than a rejected one stops waiting once the
    /// fetch that answered the rejection (the one in flight when it was
    /// reported, or the next) has ended, new value or not.
    settled: watch::Sender<u64>,
    commands: mpsc::UnboundedSender<Command>,
    commands_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    uses: AtomicU64,
    last_used_unix_ms: AtomicU64,
    rejections: AtomicU64,
    routes: Mutex<Vec<RouteUse>>,
}

/// A route that uses a credential, for the inventory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteUse {
    pub route: String,
    pub upstream: String,
    pub scopes: Vec<String>,
}

impl Credential {
    pub fn new(config: CredentialConfig) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Credential {
            throttle: Mutex::new(rejection::Throttle::new(config.min_refresh_interval)),
            config,
            current: ArcSwapOption::empty(),
            injectors: Mutex::new(Vec::new()),
            status: Mutex::new(Status::default()),
            revoked: Mutex::new(HashSet::new()),
            previous: ArcSwapOption::empty(),
            generation: watch::channel(0).0,
            rejection_requested: AtomicU64::new(0),
            throttle_engaged: AtomicBool::new(false),
            settled: watch::channel(0).0,
            commands: tx,
            commands_rx: Mutex::new(Some(rx)),
            uses: AtomicU64::new(0),
            last_used_unix_ms: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            routes: Mutex::new(Vec::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The current value for a request: one wait-free load and a clock compare.
    #[inline]
    pub fn current(&self) -> Result<Arc<Snapshot>, Unusable> {
        let snap = self.current.load_full().ok_or(Unusable::Unavailable)?;
        if snap.refuse_after.is_some_and(|t| Instant::now() >= t) {
            return Err(Unusable::Expired);
        }
        Ok(snap)
    }

    /// The current value regardless of expiry (inventory, probes).
    pub fn peek(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn previous(&self) -> Option<Arc<Snapshot>> {
        self.previous.load_full()
    }

    /// Counts a use of the credential by a forwarded request.
    #[inline]
    pub fn record_use(&self) {
        self.uses.fetch_add(1, Ordering::Relaxed);
        if self.throttle_engaged.load(Ordering::Relaxed) {
            self.accepted_again();
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_used_unix_ms.store(ms, Ordering::Relaxed);
    }

    /// The slot of an injection form in every snapshot, adding it if new.
    /// The current value, if any, is re-rendered and republished at once.
    pub fn slot_for(&self, spec: &InjectSpec) -> Result<usize, RenderError> {
        let mut injectors = self.injectors.lock();
        if let Some(i) = injectors.iter().position(|s| s == spec) {
            return Ok(i);
        }
        if let Some(current) = self.current.load_full() {
            let mut with_new = injectors.clone();
            with_new.push(spec.clone());
            let snap = current.rerender(&with_new)?;
            self.current.store(Some(Arc::new(snap)));
        }
        injectors.push(spec.clone());
        Ok(injectors.len() - 1)
    }

    pub fn add_route_use(&self, use_: RouteUse) {
        let mut routes = self.routes.lock();
        routes.retain(|r| r.route != use_.route);
        routes.push(use_);
    }

    pub fn remove_route_use(&self, route: &str) {
        self.routes.lock().retain(|r| r.route != route);
    }

    /// Puts back the route uses saved before a reload that was refused.
    pub fn set_route_uses(&self, uses: Vec<RouteUse>) {
        *self.routes.lock() = uses;
    }

    pub fn route_uses(&self) -> Vec<RouteUse> {
        self.routes.lock().clone()
    }

    /// An upstream answered 401/403 to a request that carried `generation`.
    /// Asks for one refresh per rejected value, however many requests saw it,
    /// and no more often than `min_refresh_interval` (doubling while the
    /// upstream rejects the values fetched for it). Returns whether this call
    /// asked for the refresh.
    pub fn report_rejection(&self, generation: u64) -> bool {
        self.rejections.fetch_add(1, Ordering::Relaxed);
        if *self.generation.borrow() != generation {
            return false; // already replaced
        }
        // Under the throttle's lock, so a rejection either joins the refresh
        // another one asked for, or is weighed against the interval.
        let mut throttle = self.throttle.lock();
        if self.rejection_requested.load(Ordering::Acquire) >= generation {
            return false;
        }
        let was_flagged = throttle.rejects_fresh();
        let allowed = throttle.on_rejection(generation, Instant::now());
        self.throttle_engaged.store(true, Ordering::Relaxed);
        if throttle.rejects_fresh() && !was_flagged {
            audit::upstream_rejects_fresh_values(self.name(), generation);
        }
        if !allowed {
            return false;
        }
        self.rejection_requested
            .fetch_max(generation, Ordering::AcqRel);
        drop(throttle);
        let _ = self.commands.send(Command::Refresh(None));
        true
    }

    /// A request with the credential was not rejected.
    #[cold]
    fn accepted_again(&self) {
        let mut throttle = self.throttle.lock();
        throttle.on_success();
        self.throttle_engaged.store(false, Ordering::Relaxed);
    }

    /// The upstream rejected a value fetched after an earlier rejection, and
    /// no request has been accepted since.
    pub fn upstream_rejects_fresh_values(&self) -> bool {
        self.throttle.lock().rejects_fresh()
    }

    /// Waits until a value newer than `generation` is published, up to `limit`.
    /// Returns `None` at once if the refresh ends without a new value.
    pub async fn wait_newer(&self, generation: u64, limit: Duration) -> Option<Arc<Snapshot>> {
        if *self.generation.borrow() > generation {
            return self.current().ok();
        }
        if self.rejection_requested.load(Ordering::Acquire) < generation {
            return None; // no refresh was asked for it (min_refresh_interval): no wait
        }
        let mut published = self.generation.subscribe();
        let mut settled = self.settled.subscribe();
        let _ = tokio::time::timeout(limit, async {
            tokio::select! {
                _ = published.wait_for(|g| *g > generation) => {}
                _ = settled.wait_for(|s| *s >= generation) => {}
            }
        })
        .await;
        if *self.generation.borrow() > generation {
            self.current().ok()
        } else {
            None
        }
    }

    /// A receiver of published generations (for probes and tests).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Refresh now and wait for the outcome.
    pub async fn refresh_now(&self) -> Result<(), CommandError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Refresh(Some(tx))) {
            return Err(CommandError::NotRunning);
        }
        rx.await
            .map_err(|_| CommandError::Stopped)?
            .map_err(CommandError::Failed)
    }

    /// Revoke now and wait until the value is dropped and a new fetch tried.
    pub async fn revoke_now(&self) -> Result<(), CommandError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Revoke(Some(tx))) {
            return Err(CommandError::NotRunning);
        }
        rx.await
            .map_err(|_| CommandError::Stopped)?
            .map_err(CommandError::Failed)
    }

    /// Drops the value and revokes it at its source where the source can
    /// (an OAuth 2.0 token with a `revocation_url`, a Vault lease), waiting up
    /// to `limit`; the refresher ends. For what one `sidekey exec` run issued.
    pub async fn revoke_and_stop(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::RevokeAndStop(tx)) {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }

    /// Lets the source release what it holds at its origin (`revoke_on_shutdown`),
    /// waiting up to `limit`; the refresher ends. Sources with nothing to
    /// release are not waited for.
    pub async fn shutdown_now(&self, limit: Duration) {
        if !self.config.source.releases_on_shutdown() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(tx)) {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    pub fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock());
    }

    pub fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }

    pub fn last_used_at(&self) -> Option<SystemTime> {
        match self.last_used_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    pub fn rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }

    /// The lifecycle state, derived from the snapshot and the refresher's status.
    pub fn state(&self) -> State {
        let status = self.status.lock();
        let snap = self.current.load();
        match snap.as_ref() {
            None if status.revoked => State::Revoked,
            None if status.in_flight && status.last_error.is_none() => State::Refreshing,
            None => State::Failed,
            Some(s) if !s.is_usable_at(Instant::now()) => State::Expired,
            Some(_) if status.in_flight => State::Refreshing,
            Some(_) if status.last_error.is_some() => State::Stale,
            Some(s) if self.is_overdue(s) => State::RotationOverdue,
            Some(_) => State::Fresh,
        }
    }

    /// The value is older than the rotation policy allows.
    /// (On tokio's clock, like every deadline of the engine.)
    pub fn is_overdue(&self, snap: &Snapshot) -> bool {
        snap.overdue_at.is_some_and(|t| Instant::now() >= t)
    }

    pub fn is_revoked_value(&self, fp: &Fingerprint) -> bool {
        self.revoked.lock().contains(fp)
    }

    // The writer side, used by the refresher only.

    pub(crate) fn injectors(&self) -> Vec<InjectSpec> {
        self.injectors.lock().clone()
    }

    /// Publishes a snapshot. Holding the injector list's lock serializes
    /// this with [`Credential::slot_for`] (a reload adding an injection form):
    /// a snapshot built before a form was added is rendered for it here, so
    /// every published snapshot has a slot for every route, and a reload
    /// never overwrites a newer value with a re-rendered older one.
    pub(crate) fn publish(&self, snap: Snapshot) -> Result<(), crate::inject::RenderError> {
        let injectors = self.injectors.lock();
        let snap = if snap.rendered.len() < injectors.len() {
            snap.rerender(&injectors)?
        } else {
            snap
        };
        let generation = snap.generation;
        let fingerprint = snap.fingerprint;
        let old = self.current.swap(Some(Arc::new(snap)));
        // The same value with a new lifetime is not a rotation: `previous`
        // stays the value it replaced, and nobody is told of a new one.
        if old.as_ref().is_some_and(|o| o.fingerprint != fingerprint) {
            self.previous.store(old);
        }
        self.generation.send_if_modified(|g| {
            let changed = *g != generation;
            *g = generation;
            changed
        });
        Ok(())
    }

    /// Drops the value at once and remembers it must never come back.
    pub(crate) fn drop_value(&self) -> Option<Arc<Snapshot>> {
        // Under the injectors' lock, so a reload's re-render cannot bring it back.
        let _injectors = self.injectors.lock();
        let old = self.current.swap(None);
        if let Some(s) = &old {
            self.revoked.lock().insert(s.fingerprint);
            // The revoked value is what the revocation probe should try next.
            self.previous.store(Some(s.clone()));
        }
        old
    }

    pub(crate) fn take_commands(&self) -> Option<mpsc::UnboundedReceiver<Command>> {
        self.commands_rx.lock().take()
    }

    /// The refresher ended a fetch: wake requests waiting on rejections it answered.
    pub(crate) fn fetch_ended(&self) {
        self.settled
            .send_replace(self.rejection_requested.load(Ordering::Acquire));
    }

    pub(crate) fn current_generation(&self) -> u64 {
        *self.generation.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn issued(v: &str) -> Issued {
        Issued {
            material: Material::Token(Secret::new(v).unwrap()),
            issued_at: SystemTime::now(),
            expires_at: None,
            lease: None,
        }
    }

    #[tokio::test]
    async fn a_form_added_while_a_value_is_being_built_is_rendered_at_publication() {
        let cred = Credential::new(CredentialConfig {
            name: "c".into(),
            source: SourceSpec::new(env::EnvSpec { var: "X".into() }),
            max_age: None,
            enforce_max_age: false,
            min_refresh_interval: rejection::DEFAULT_MIN_REFRESH_INTERVAL,
        });
        let auth = InjectSpec::header("Authorization", Some("Bearer {secret}")).unwrap();
        let key = InjectSpec::header("X-Api-Key", None).unwrap();
        assert_eq!(cred.slot_for(&auth).unwrap(), 0);
        cred.publish(
            Snapshot::build(issued("value-a"), 1, &cred.injectors(), None, false).unwrap(),
        )
        .unwrap();
        // The refresher builds B for one form; a reload adds a second before B is published.
        let b = Snapshot::build(issued("value-b"), 2, &cred.injectors(), None, false).unwrap();
        assert_eq!(cred.slot_for(&key).unwrap(), 1);
        assert_eq!(cred.current().unwrap().rendered.len(), 2);
        cred.publish(b).unwrap();
        let now = cred.current().unwrap();
        assert_eq!(now.generation, 2);
        assert_eq!(now.rendered.len(), 2, "every route's slot is there");
        // A dropped value is not brought back by a later re-render.
        cred.drop_value();
        let extra = InjectSpec::header("X-Other", None).unwrap();
        cred.slot_for(&extra).unwrap();
        assert!(cred.peek().is_none());
    }
}
