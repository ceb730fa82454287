//! The route table of one config generation: every route and credential, swapped as a whole on reload.

use super::route::Route;
use crate::credential::Credential;
use crate::metrics::RouteStats;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything the request path and the admin API read, built whole from one
/// checked config and published with one atomic store.
#[derive(Default)]
pub struct RouteTable {
    pub routes: BTreeMap<String, Arc<Route>>,
    pub credentials: BTreeMap<String, Arc<Credential>>,
}

impl RouteTable {
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name)
    }

    /// The host route matching a forward-proxy destination.
    pub fn by_host(&self, host: &str, port: u16, tls: bool) -> Option<&Arc<Route>> {
        self.routes.values().find(|r| {
            r.config
                .host
                .as_ref()
                .is_some_and(|h| h.matches(host, port, tls))
        })
    }

    /// Every route's counters, by route name.
    pub fn stats(&self) -> impl Iterator<Item = (&String, &Arc<RouteStats>)> {
        self.routes.iter().map(|(name, r)| (name, &r.stats))
    }
}
