//! Accept failures (out of file descriptors, above all) backed off and logged at a bounded rate, so a full process neither spins nor floods its log.

use crate::throttle::Throttle;
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(10);
const LONGEST: Duration = Duration::from_secs(1);

/// The state of one listener's accept loop.
#[derive(Default)]
pub struct Backoff {
    delay: Duration,
    /// At most one warning per listener a second; the rest are counted.
    warnings: Throttle,
}

impl Backoff {
    /// An accept succeeded: the next failure starts the backoff anew.
    pub fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// An accept failed: logs it (at most once a second, with how many
    /// were not logged), then waits, longer after each failure in a row, up to 1 s.
    pub async fn failed(&mut self, listener: &str, error: &std::io::Error) {
        self.delay = (self.delay * 2).clamp(FIRST, LONGEST);
        if let Some(suppressed) = self.warnings.admit() {
            let hint = match error.raw_os_error() {
                Some(24 | 23) => {
                    "; out of file descriptors: raise LimitNOFILE or lower max_connections"
                }
                _ => "",
            };
            tracing::warn!(
                listener,
                error = %error,
                suppressed,
                retry_in_ms = self.delay.as_millis() as u64,
                "accept failed{hint}"
            );
        }
        tokio::time::sleep(self.delay).await;
    }
}
