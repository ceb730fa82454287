//! Lock-free request counters and latency histograms per route, rendered as Prometheus text by the admin API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod modes;
pub use modes::{Mode, ModeStats};

/// Upper bounds of the upstream latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of one route. Written on the request path with relaxed atomics.
pub struct RouteStats {
    /// Responses by status code, 100..=599.
    by_status: Box<[AtomicU64]>,
    /// Upstream latency: one count per bucket, plus +Inf.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    /// Errors sidekey answered itself, by code.
    pub upstream_rejections: AtomicU64,
    pub replays: AtomicU64,
    /// The route listener's connections.
    pub connections: std::sync::Arc<ConnStats>,
    /// Upgraded connections (WebSocket) and long streams (HTTP/2, SSE).
    pub streams: StreamStats,
    /// Requests by listening mode, and the last original destination.
    pub modes: ModeStats,
}

/// Upgraded connections and long streams of one route.
#[derive(Default)]
pub struct StreamStats {
    /// Upgrades the upstream accepted (`101`), and how many are joined now.
    pub upgrades: AtomicU64,
    pub upgrades_open: AtomicU64,
    /// Upgraded connections closed for their idle timeout.
    pub idle_closed: AtomicU64,
    /// Streamed answers (HTTP/2 requests, `text/event-stream`) that ended,
    /// and those that ended before their last byte (cancelled or failed).
    pub streams_ended: AtomicU64,
    pub streams_cut: AtomicU64,
    /// Bytes carried by upgraded connections and streams: app to upstream, and back.
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

/// Connections of one listener: held now, and refused past its limit.
#[derive(Default)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub refused: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            latency: Default::default(),
            latency_sum_ns: AtomicU64::new(0),
            upstream_rejections: AtomicU64::new(0),
            replays: AtomicU64::new(0),
            connections: Default::default(),
            streams: Default::default(),
            modes: Default::default(),
        }
    }
}

impl RouteStats {
    #[inline]
    pub fn count_status(&self, status: u16) {
        if let Some(c) = self.by_status.get(usize::from(status).wrapping_sub(100)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn observe_upstream(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Non-zero (status, count) pairs.
    pub fn statuses(&self) -> Vec<(u16, u64)> {
        self.by_status
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.load(Ordering::Relaxed) {
                0 => None,
                n => Some((i as u16 + 100, n)),
            })
            .collect()
    }

    /// Cumulative bucket counts (as Prometheus wants), the +Inf count and the sum in seconds.
    pub fn latency(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len());
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            acc += self.latency[i].load(Ordering::Relaxed);
            buckets.push((*b, acc));
        }
        acc += self.latency[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        (
            buckets,
            acc,
            self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// Counters of the forward proxy, one set per process.
pub struct ProxyStats {
    /// TLS handshakes an app broke off because it does not trust the local CA.
    pub untrusted_handshakes: AtomicU64,
    /// Other failed TLS handshakes inside a tunnel.
    pub failed_handshakes: AtomicU64,
    /// Leaf certificates minted.
    pub leaves_minted: AtomicU64,
    /// Tunnels opened for hosts without a route.
    pub tunnels: AtomicU64,
    /// Requests refused because their names did not match their destination.
    pub misdirected: AtomicU64,
    /// Transparent egress: redirected connections intercepted for a route.
    pub transparent_intercepted: AtomicU64,
    /// Transparent egress: unrouted connections passed through to their original destination.
    pub transparent_passthrough: AtomicU64,
    /// Transparent egress: connections refused (unmatched = "deny", a loop, no original destination).
    pub transparent_refused: AtomicU64,
}

/// The forward proxy's counters.
pub static PROXY: ProxyStats = ProxyStats {
    untrusted_handshakes: AtomicU64::new(0),
    failed_handshakes: AtomicU64::new(0),
    leaves_minted: AtomicU64::new(0),
    tunnels: AtomicU64::new(0),
    misdirected: AtomicU64::new(0),
    transparent_intercepted: AtomicU64::new(0),
    transparent_passthrough: AtomicU64::new(0),
    transparent_refused: AtomicU64::new(0),
};

impl ProxyStats {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, o: &mut String) {
        use std::fmt::Write;
        let untrusted = self.untrusted_handshakes.load(Ordering::Relaxed);
        let failed = self.failed_handshakes.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "# HELP sidekey_proxy_tls_handshake_failures_total TLS handshakes inside forward-proxy tunnels that failed; reason=\"untrusted_ca\": the app does not trust `sidekey ca`."
        );
        let _ = writeln!(
            o,
            "# TYPE sidekey_proxy_tls_handshake_failures_total counter"
        );
        let _ = writeln!(
            o,
            "sidekey_proxy_tls_handshake_failures_total{{reason=\"untrusted_ca\"}} {untrusted}"
        );
        let _ = writeln!(
            o,
            "sidekey_proxy_tls_handshake_failures_total{{reason=\"other\"}} {failed}"
        );
        for (name, help, v) in [
            (
                "leaves_minted",
                "Leaf certificates minted by the local CA.",
                &self.leaves_minted,
            ),
            (
                "tunnels",
                "Undecrypted tunnels opened for hosts without a route.",
                &self.tunnels,
            ),
            (
                "misdirected",
                "Requests refused with 421 because their host was not their tunnel's.",
                &self.misdirected,
            ),
            (
                "transparent_intercepted",
                "Redirected connections ([transparent]) intercepted for a host route.",
                &self.transparent_intercepted,
            ),
            (
                "transparent_passthrough",
                "Redirected connections ([transparent]) without a route passed through to their original destination.",
                &self.transparent_passthrough,
            ),
            (
                "transparent_refused",
                "Redirected connections ([transparent]) refused: unmatched = \"deny\", a loop back to sidekey, or no original destination.",
                &self.transparent_refused,
            ),
        ] {
            let _ = writeln!(o, "# HELP sidekey_proxy_{name}_total {help}");
            let _ = writeln!(o, "# TYPE sidekey_proxy_{name}_total counter");
            let _ = writeln!(
                o,
                "sidekey_proxy_{name}_total {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}
