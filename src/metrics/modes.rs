//! How requests reached a route: counts per listening mode, and the last original destination of a redirected connection.

use crate::sync::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// How a connection reached sidekey; the access log's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A route's own `listen` port (the app's base URL).
    Listener,
    /// Through the forward proxy (`[proxy]`, `HTTPS_PROXY`).
    Forward,
    /// Redirected by iptables to `[transparent] listen`.
    Transparent,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Listener, Mode::Forward, Mode::Transparent];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Listener => "listener",
            Mode::Forward => "forward",
            Mode::Transparent => "transparent",
        }
    }
}

/// Requests of one route by mode, and where its last redirected connection was going.
#[derive(Default)]
pub struct ModeStats {
    requests: [AtomicU64; 3],
    /// Written only for transparent requests (a lock held for one store).
    last_original_dst: Mutex<Option<(SocketAddr, SystemTime)>>,
}

impl ModeStats {
    #[inline]
    pub fn record(&self, mode: Mode, original_dst: Option<SocketAddr>) {
        self.requests[mode as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(dst) = original_dst {
            *self.last_original_dst.lock() = Some((dst, SystemTime::now()));
        }
    }

    /// Requests answered in each mode, every mode listed.
    pub fn requests(&self) -> [(Mode, u64); 3] {
        Mode::ALL.map(|m| (m, self.requests[m as usize].load(Ordering::Relaxed)))
    }

    /// The original destination of the last transparent request, and when it was answered.
    pub fn last_original_dst(&self) -> Option<(SocketAddr, SystemTime)> {
        *self.last_original_dst.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_mode_and_keeps_the_last_destination() {
        let s = ModeStats::default();
        s.record(Mode::Listener, None);
        let dst: SocketAddr = "127.0.0.2:443".parse().unwrap();
        s.record(Mode::Transparent, Some(dst));
        s.record(Mode::Transparent, Some(dst));
        assert_eq!(
            s.requests(),
            [
                (Mode::Listener, 1),
                (Mode::Forward, 0),
                (Mode::Transparent, 2)
            ]
        );
        assert_eq!(s.last_original_dst().map(|(d, _)| d), Some(dst));
    }
}
