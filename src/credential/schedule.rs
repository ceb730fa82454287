//! When to refresh: about 2/3 of a value's lifetime plus jitter (never past 90 %),
//! and exponential backoff with jitter after failures.

use std::time::Duration;

/// Fraction of the lifetime at which a refresh is due, before jitter.
const REFRESH_AT: f64 = 2.0 / 3.0;
/// Jitter added on top, as a fraction of the lifetime.
const JITTER: f64 = 0.1;
/// Never later than this fraction of the lifetime.
const LATEST: f64 = 0.9;

pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Delay from issue to refresh for a value valid for `lifetime`.
/// `unit` is a random number in [0, 1) (kept outside so tests can pin it).
pub fn refresh_after(lifetime: Duration, unit: f64) -> Duration {
    let fraction = (REFRESH_AT + JITTER * unit.clamp(0.0, 1.0)).min(LATEST);
    lifetime.mul_f64(fraction)
}

/// Delay before retry number `failures` (1 for the first failure):
/// 1 s, 2 s, 4 s ... capped at 5 min, each scaled by a jitter in [0.8, 1.2)
/// and kept within [1 s, 5 min].
pub fn backoff(failures: u32, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_MIN.saturating_mul(1u32 << exp).min(BACKOFF_MAX);
    base.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
        .clamp(BACKOFF_MIN, BACKOFF_MAX)
}

/// A random number in [0, 1) for jitter.
pub fn unit() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_between_two_thirds_and_ninety_percent() {
        let life = Duration::from_secs(3000);
        assert_eq!(refresh_after(life, 0.0), Duration::from_secs(2000));
        for i in 0..100 {
            let d = refresh_after(life, i as f64 / 100.0);
            assert!(
                d >= Duration::from_secs(2000) && d <= Duration::from_secs(2700),
                "{d:?}"
            );
        }
        assert!(refresh_after(life, 1.0) <= Duration::from_secs(2700));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(4, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(9, 0.5), Duration::from_secs(256));
        assert_eq!(backoff(10, 0.5), BACKOFF_MAX);
        assert_eq!(backoff(1000, 0.99), BACKOFF_MAX);
        assert_eq!(backoff(1, 0.0), BACKOFF_MIN);
        for n in 1..30 {
            for u in [0.0, 0.3, 0.99] {
                let d = backoff(n, u);
                assert!(d >= BACKOFF_MIN && d <= BACKOFF_MAX);
            }
        }
    }
}
