//! Start-up and shutdown: builds credentials, refreshers, routes and listeners from a checked `Config`.

use crate::admin;
use crate::config::{Config, ListenAddr};
use crate::credential::{Credential, engine};
use crate::metrics::RouteStats;
use crate::proxy::listener::{self, Bound};
use crate::proxy::route::{Clients, Route};
use crate::secret::Secret;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long in-flight requests may run after a stop signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15);

/// What the admin API reads: everything running, swappable as a whole.
pub struct Registry {
    pub credentials: BTreeMap<String, Arc<Credential>>,
    pub routes: BTreeMap<String, Arc<ArcSwap<Route>>>,
    pub stats: BTreeMap<String, Arc<RouteStats>>,
}

/// State shared by the admin API and the running proxy.
pub struct Shared {
    pub registry: ArcSwap<Registry>,
    pub admin_token: Option<Secret>,
    /// Why the last config reload was refused, if it was.
    pub reload_error: Mutex<Option<String>>,
    pub config: ArcSwap<Config>,
}

struct Listener {
    addr: ListenAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A running sidekey.
pub struct App {
    pub shared: Arc<Shared>,
    listeners: BTreeMap<String, Listener>,
    refreshers: Vec<JoinHandle<()>>,
    admin: Listener,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        addr: String,
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Build(String),
}

impl App {
    /// Starts everything `config` describes. The config was checked whole
    /// before this is called; nothing is bound if any part fails to build.
    pub async fn start(config: Config) -> Result<App, StartError> {
        let admin_token = match &config.admin.token {
            Some(t) => Some(
                t.read()
                    .await
                    .map_err(|e| StartError::Build(format!("[admin] token: {e}")))?,
            ),
            None => None,
        };

        let mut credentials = BTreeMap::new();
        let mut refreshers = Vec::new();
        for c in &config.credentials {
            credentials.insert(c.name.clone(), Credential::new(c.clone()));
        }
        let mut clients = Clients::default();
        let mut built = Vec::new();
        let mut stats = BTreeMap::new();
        for rc in &config.routes {
            let cred = credentials[&rc.credential].clone();
            let s = Arc::new(RouteStats::default());
            stats.insert(rc.name.clone(), s.clone());
            let route = Route::build(rc.clone(), cred, &mut clients, s, config.log.access_log)
                .map_err(StartError::Build)?;
            built.push(route);
        }
        // Bind every listener before serving any, so a port in use fails the start cleanly.
        let mut bound = Vec::new();
        for route in built {
            let b = Bound::bind(&route.config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: route.config.listen.to_string(),
                    what: format!("route `{}`", route.name()),
                    source,
                })?;
            bound.push((route, b));
        }
        let admin_bound =
            Bound::bind(&config.admin.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.admin.listen.to_string(),
                    what: "the admin API".into(),
                    source,
                })?;

        for cred in credentials.values() {
            refreshers.push(engine::spawn(cred.clone(), cred.config.source.build()));
        }

        let mut routes = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        for (route, b) in bound {
            let name = route.name().to_owned();
            let addr = b.local_addr();
            let swap = Arc::new(ArcSwap::from_pointee(route));
            routes.insert(name.clone(), swap.clone());
            let (stop, rx) = watch::channel(false);
            tracing::info!(route = %name, listen = %addr, "route listening");
            let task = tokio::spawn(listener::serve(b, swap, rx, DEFAULT_GRACE));
            listeners.insert(name, Listener { addr, stop, task });
        }

        let shared = Arc::new(Shared {
            registry: ArcSwap::from_pointee(Registry {
                credentials,
                routes,
                stats,
            }),
            admin_token,
            reload_error: Mutex::new(None),
            config: ArcSwap::from_pointee(config),
        });
        let admin_addr = admin_bound.local_addr();
        let (stop, rx) = watch::channel(false);
        tracing::info!(listen = %admin_addr, "admin API listening");
        let task = tokio::spawn(admin::serve(admin_bound, shared.clone(), rx));
        Ok(App {
            shared,
            listeners,
            refreshers,
            admin: Listener {
                addr: admin_addr,
                stop,
                task,
            },
        })
    }

    /// The address a route listens on (with the port the OS chose for port 0).
    pub fn route_addr(&self, route: &str) -> Option<&ListenAddr> {
        self.listeners.get(route).map(|l| &l.addr)
    }

    pub fn admin_addr(&self) -> &ListenAddr {
        &self.admin.addr
    }

    pub fn credential(&self, name: &str) -> Option<Arc<Credential>> {
        self.shared.registry.load().credentials.get(name).cloned()
    }

    /// Stops accepting, lets requests in flight finish (bounded by the
    /// listeners' grace period), then stops the refreshers and the admin API.
    pub async fn shutdown(self) {
        for l in self.listeners.values() {
            let _ = l.stop.send(true);
        }
        for (_, l) in self.listeners {
            let _ = l.task.await;
        }
        for r in &self.refreshers {
            r.abort();
        }
        let _ = self.admin.stop.send(true);
        let _ = self.admin.task.await;
        tracing::info!("sidekey stopped");
    }
}

/// Waits for SIGTERM or SIGINT. Returns the signal's name.
pub async fn wait_for_stop(_app: &App, _config_path: std::path::PathBuf) -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
