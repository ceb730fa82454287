//! What the running process shares between the proxy's listeners, the admin API and config reloads.

use crate::config::Config;
use crate::proxy::table::RouteTable;
use crate::secret::Secret;
use crate::sync::Mutex;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::SystemTime;

/// State shared by the admin API and the running proxy.
pub struct Shared {
    /// The running config generation's routes and credentials; the
    /// listeners read the same swap.
    pub table: Arc<ArcSwap<RouteTable>>,
    pub admin_token: Option<Secret>,
    /// Why the last config reload was refused, if it was.
    pub reload_error: Mutex<Option<String>>,
    /// When reloads were tried and applied (for `GET /v1/config/status`).
    pub reload_stats: Mutex<ReloadStats>,
    pub config: ArcSwap<Config>,
    /// The admin listener's connections.
    pub admin_connections: Arc<crate::metrics::ConnStats>,
    /// The "admin request refused" warnings: a page or a loop hammering the
    /// admin API logs one a second, with a count of the rest.
    pub refusals: crate::throttle::Throttle,
    /// Every refused admin request, by error code (the warnings above are
    /// thinned out; this count is not).
    pub refused_by_error: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Counters of config reloads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStats {
    pub attempts: u64,
    pub applied: u64,
    pub last_attempt_at: Option<SystemTime>,
    pub last_applied_at: Option<SystemTime>,
}
