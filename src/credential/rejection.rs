//! When an upstream rejection (401, or 403 with `refresh_on_403`) may trigger a refresh: at most once
//! per interval per credential, the interval doubling while the upstream keeps rejecting fresh values.

use super::schedule::BACKOFF_MAX;
use std::time::Duration;
use tokio::time::Instant;

/// `min_refresh_interval` when a credential does not set it.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The state behind the decision, on tokio's clock.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    /// When the last rejection-triggered refresh was asked for.
    last: Option<Instant>,
    /// Rejection-triggered refreshes since a request last succeeded.
    strikes: u32,
    /// The generation whose rejection asked for the last refresh.
    refreshed_from: u64,
    /// A value fetched after a rejection was rejected too.
    rejects_fresh: bool,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
            strikes: 0,
            refreshed_from: 0,
            rejects_fresh: false,
        }
    }

    /// The upstream rejected `generation`, the current value, at `now`.
    /// Returns whether that may trigger a refresh.
    pub fn on_rejection(&mut self, generation: u64, now: Instant) -> bool {
        if self.strikes > 0 && generation > self.refreshed_from {
            self.rejects_fresh = true;
        }
        if self.last.is_some_and(|last| now < last + self.wait()) {
            return false;
        }
        self.strikes += 1;
        self.last = Some(now);
        self.refreshed_from = generation;
        true
    }

    /// A request with the credential was not rejected: the backoff starts over
    /// (the minimum interval since the last refresh still holds).
    pub fn on_success(&mut self) {
        self.strikes = 0;
        self.rejects_fresh = false;
    }

    pub fn rejects_fresh(&self) -> bool {
        self.rejects_fresh
    }

    /// Time after the last refresh before the next one: the interval, then
    /// doubled for each refresh whose value was rejected as well, up to 5 min
    /// (or the interval, when that is longer).
    fn wait(&self) -> Duration {
        let doublings = self.strikes.saturating_sub(1).min(16);
        self.interval
            .saturating_mul(1 << doublings)
            .min(BACKOFF_MAX.max(self.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn interval_then_doubling_then_reset_by_a_success() {
        let s = Duration::from_secs;
        let mut t = Throttle::new(s(5));
        let t0 = Instant::now();
        assert!(t.on_rejection(1, t0));
        assert!(!t.on_rejection(2, t0 + s(4)));
        assert!(
            t.rejects_fresh(),
            "the value fetched after a rejection was rejected"
        );
        assert!(t.on_rejection(2, t0 + s(5)));
        assert!(!t.on_rejection(3, t0 + s(14)), "then 10 s");
        assert!(t.on_rejection(3, t0 + s(15)));
        assert!(!t.on_rejection(4, t0 + s(34)), "then 20 s");
        assert!(t.on_rejection(4, t0 + s(35)));
        t.on_success();
        assert_eq!(t.strikes, 0);
        assert!(!t.on_rejection(5, t0 + s(39)), "the interval still holds");
        assert!(t.on_rejection(5, t0 + s(40)));
        assert!(!t.rejects_fresh());
    }

    #[test]
    fn the_wait_is_capped() {
        let mut t = Throttle::new(Duration::from_secs(5));
        t.strikes = 40;
        assert_eq!(t.wait(), BACKOFF_MAX);
        let mut long = Throttle::new(Duration::from_secs(600));
        long.strikes = 3;
        assert_eq!(long.wait(), Duration::from_secs(600));
    }
}
