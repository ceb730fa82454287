//! Start-up and shutdown: builds credentials, refreshers, routes and listeners from a checked `Config`.
//!
//! What runs is kept in a [`Control`] so a config reload ([`reload`]) can
//! change it while requests flow.

pub mod reload;

use crate::admin;
use crate::config::{Config, ListenAddr};
use crate::credential::{Credential, engine};
use crate::metrics::RouteStats;
use crate::proxy::listener::{self, Bound};
use crate::proxy::probe;
use crate::proxy::route::{Clients, Route};
use crate::secret::Secret;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
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
    /// When reloads were tried and applied (for `GET /v1/config/status`).
    pub reload_stats: Mutex<ReloadStats>,
    pub config: ArcSwap<Config>,
}

/// Counters of config reloads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStats {
    pub attempts: u64,
    pub applied: u64,
    pub last_attempt_at: Option<SystemTime>,
    pub last_applied_at: Option<SystemTime>,
}

struct Listener {
    addr: ListenAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Everything a reload may change, behind one lock so reloads run one at a time.
struct Running {
    listeners: BTreeMap<String, Listener>,
    refreshers: BTreeMap<String, JoinHandle<()>>,
    /// Revocation probe tasks, by route.
    probes: BTreeMap<String, JoinHandle<()>>,
    /// Listeners of removed routes, finishing their requests.
    draining: Vec<JoinHandle<()>>,
    /// Hash of the config text last tried, so an unchanged file is not reloaded.
    last_text: Option<[u8; 32]>,
}

/// The running parts and the shared state, for reloads and shutdown.
pub struct Control {
    pub shared: Arc<Shared>,
    running: tokio::sync::Mutex<Running>,
    addrs: Mutex<BTreeMap<String, ListenAddr>>,
}

/// A running sidekey.
pub struct App {
    pub shared: Arc<Shared>,
    control: Arc<Control>,
    admin: Listener,
    watcher: Mutex<Option<JoinHandle<()>>>,
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

/// Binds a route's listener, naming it in the error.
async fn bind_route(route: &Route) -> Result<Bound, StartError> {
    Bound::bind(&route.config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: route.config.listen.to_string(),
            what: format!("route `{}`", route.name()),
            source,
        })
}

/// Starts serving a bound route.
fn serve_route(b: Bound, swap: Arc<ArcSwap<Route>>) -> Listener {
    let addr = b.local_addr();
    let (stop, rx) = watch::channel(false);
    tracing::info!(route = %swap.load().name(), listen = %addr, "route listening");
    let task = tokio::spawn(listener::serve(b, swap, rx, DEFAULT_GRACE));
    Listener { addr, stop, task }
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
            let b = bind_route(&route).await?;
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

        let mut refreshers = BTreeMap::new();
        for cred in credentials.values() {
            refreshers.insert(
                cred.name().to_owned(),
                engine::spawn(cred.clone(), cred.config.source.build()),
            );
        }

        let mut routes = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let mut probes = BTreeMap::new();
        for (route, b) in bound {
            let name = route.name().to_owned();
            let swap = Arc::new(ArcSwap::from_pointee(route));
            routes.insert(name.clone(), swap.clone());
            if let Some(p) = probe::spawn(swap.clone()) {
                probes.insert(name.clone(), p);
            }
            let l = serve_route(b, swap);
            addrs.insert(name.clone(), l.addr.clone());
            listeners.insert(name, l);
        }

        let shared = Arc::new(Shared {
            registry: ArcSwap::from_pointee(Registry {
                credentials,
                routes,
                stats,
            }),
            admin_token,
            reload_error: Mutex::new(None),
            reload_stats: Mutex::new(ReloadStats::default()),
            config: ArcSwap::from_pointee(config),
        });
        let admin_addr = admin_bound.local_addr();
        let (stop, rx) = watch::channel(false);
        tracing::info!(listen = %admin_addr, "admin API listening");
        let task = tokio::spawn(admin::serve(admin_bound, shared.clone(), rx));
        let control = Arc::new(Control {
            shared: shared.clone(),
            running: tokio::sync::Mutex::new(Running {
                listeners,
                refreshers,
                probes,
                draining: Vec::new(),
                last_text: None,
            }),
            addrs: Mutex::new(addrs),
        });
        Ok(App {
            shared,
            control,
            admin: Listener {
                addr: admin_addr,
                stop,
                task,
            },
            watcher: Mutex::new(None),
        })
    }

    /// The address a route listens on (with the port the OS chose for port 0).
    pub fn route_addr(&self, route: &str) -> Option<ListenAddr> {
        self.control.addrs.lock().unwrap().get(route).cloned()
    }

    pub fn admin_addr(&self) -> &ListenAddr {
        &self.admin.addr
    }

    pub fn credential(&self, name: &str) -> Option<Arc<Credential>> {
        self.shared.registry.load().credentials.get(name).cloned()
    }

    /// Reads the config file again and applies it if it is valid (see [`reload`]).
    pub async fn reload(&self) -> Result<reload::Summary, String> {
        reload::reload(&self.control, true).await
    }

    /// Reloads on `SIGHUP` and whenever the config file changes, until shutdown.
    pub fn watch_config(&self) {
        let task = reload::watch(self.control.clone());
        if let Some(old) = self.watcher.lock().unwrap().replace(task) {
            old.abort();
        }
    }

    /// Stops accepting, lets requests in flight finish (bounded by the
    /// listeners' grace period), then stops the refreshers and the admin API.
    pub async fn shutdown(self) {
        if let Some(w) = self.watcher.lock().unwrap().take() {
            w.abort();
        }
        let mut running = self.control.running.lock().await;
        for l in running.listeners.values() {
            let _ = l.stop.send(true);
        }
        for (_, l) in std::mem::take(&mut running.listeners) {
            let _ = l.task.await;
        }
        for t in std::mem::take(&mut running.draining) {
            let _ = t.await;
        }
        for p in running.probes.values() {
            p.abort();
        }
        for r in running.refreshers.values() {
            r.abort();
        }
        let _ = self.admin.stop.send(true);
        let _ = self.admin.task.await;
        tracing::info!("sidekey stopped");
    }
}

/// Waits for SIGTERM or SIGINT, reloading the config on SIGHUP and on
/// change of the file meanwhile. Returns the stop signal's name.
pub async fn wait_for_stop(app: &App, _config_path: std::path::PathBuf) -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    app.watch_config();
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
