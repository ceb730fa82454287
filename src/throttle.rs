//! Warnings a client can set off at will (refused callers, refused admin requests, accept failures) logged at most once a second per source, each saying how many were left out since the one before.

use crate::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// At most one line per source this often.
pub const EVERY: Duration = Duration::from_secs(1);

/// One source of warnings (a route's refused callers, the admin listener's
/// refusals, a listener's accept failures).
#[derive(Debug, Default)]
pub struct Throttle(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const fn new() -> Self {
        Throttle(Mutex::new(State {
            last: None,
            suppressed: 0,
        }))
    }

    /// `Some(n)`: log this one, with `n` left out since the last line;
    /// `None`: leave it out (it is counted for the next line).
    pub fn admit(&self) -> Option<u64> {
        let now = Instant::now();
        let mut s = self.0.lock();
        if s.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            s.suppressed += 1;
            return None;
        }
        s.last = Some(now);
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_a_second_and_the_rest_counted() {
        let t = Throttle::new();
        let logged: Vec<u64> = (0..200).filter_map(|_| t.admit()).collect();
        assert_eq!(logged, vec![0], "200 at once: one line");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(t.admit(), None, "still within the second");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            t.admit(),
            Some(200),
            "the next line counts what was left out"
        );
        assert_eq!(t.admit(), None);
        tokio::time::advance(EVERY * 5).await;
        assert_eq!(t.admit(), Some(1));
    }
}
