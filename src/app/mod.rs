//! Start-up and shutdown: builds credentials, refreshers, routes and listeners from a checked `Config`.
//!
//! What runs is kept in a [`Control`] so a config reload ([`reload`]) can
//! change it while requests flow.

pub mod exec;
mod nofile;
pub mod reload;
mod transparent;

use crate::admin::{self, ReloadStats, Shared};
use crate::config::{Config, ListenAddr};
use crate::credential::{Credential, engine};
use crate::metrics::RouteStats;
use crate::proxy::limits::ConnLimit;
use crate::proxy::listener::{self, Bound};
use crate::proxy::outbound::{self, Outbound};
use crate::proxy::probe;
use crate::proxy::route::{Clients, Route};
use crate::proxy::router::ByListener;
use crate::proxy::table::RouteTable;
use crate::sync::Mutex;
use crate::tls::{Authority, CaError, CaSource};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long in-flight requests may run after a stop signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15);

struct Listener {
    addr: ListenAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// A route listener's connection cap, shared out again at each reload.
    limit: Option<Arc<ConnLimit>>,
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
    /// The transparent listener (and its IPv6 loopback twin), when `[transparent]` is configured.
    transparent: Option<transparent::Serving>,
}

/// The running parts and the shared state, for reloads and shutdown.
pub struct Control {
    pub shared: Arc<Shared>,
    running: tokio::sync::Mutex<Running>,
    addrs: Mutex<BTreeMap<String, ListenAddr>>,
    /// The forward proxy's state, when `[proxy]` was configured at start
    /// or `[transparent]` at start or since (a reload may add it).
    outbound: ArcSwapOption<Outbound>,
    /// The admin and proxy listeners' addresses (a tunnel never reaches them).
    fixed_own: Vec<std::net::SocketAddr>,
    /// The transparent listeners' addresses, as a reload leaves them.
    transparent_addrs: Mutex<Vec<std::net::SocketAddr>>,
}

/// Longest wait for one source to release what it holds at shutdown.
const SOURCE_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// A running sidekey.
pub struct App {
    pub shared: Arc<Shared>,
    control: Arc<Control>,
    admin: Listener,
    /// The forward proxy's listener.
    proxy: Option<Listener>,
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
    Build(#[from] crate::proxy::route::BuildError),
    #[error("[admin] token: {0}")]
    AdminToken(#[from] crate::secret_ref::ReadError),
    #[error("[proxy] CA: {0}")]
    Ca(#[from] CaError),
}

/// Where the forward proxy's CA comes from under `config`.
pub fn ca_source(config: &Config) -> CaSource {
    match config.proxy.as_ref().and_then(|p| p.ca.as_ref()) {
        Some(f) => CaSource::Operator {
            cert: f.cert.clone(),
            key: f.key.clone(),
        },
        None => CaSource::Generated(config.state_dir.clone()),
    }
}

/// The hosts of `config`'s host routes, sorted: what the CA must permit.
pub fn intercepted_hosts(config: &Config) -> Vec<String> {
    crate::tls::ca::hosts_of(
        config
            .routes
            .iter()
            .filter_map(|r| r.host.as_ref().map(|h| h.host.as_str())),
    )
}

/// The CA `config` needs: `current` when it serves the same hosts from the
/// same source, else opened (and generated where needed) anew; `None`
/// without host routes.
pub fn open_ca(
    config: &Config,
    current: Option<Arc<Authority>>,
) -> Result<Option<Arc<Authority>>, CaError> {
    let hosts = intercepted_hosts(config);
    if hosts.is_empty() {
        return Ok(None);
    }
    let source = ca_source(config);
    if let Some(c) = current.filter(|c| c.source == source && c.serves(&hosts)) {
        return Ok(Some(c));
    }
    Authority::open(&source, &hosts).map(|a| Some(Arc::new(a)))
}

/// Addresses a tunnel never reaches: every listener of this process.
fn own_addrs(control: &Control) -> Vec<std::net::SocketAddr> {
    let mut v = control.fixed_own.clone();
    v.extend(control.transparent_addrs.lock().iter().copied());
    v.extend(control.addrs.lock().values().filter_map(|a| match a {
        ListenAddr::Tcp(a) => Some(*a),
        ListenAddr::Unix(_) => None,
    }));
    v
}

/// Binds a route's listener, naming it in the error (a host route has none).
async fn bind_route(route: &Route) -> Result<Option<Bound>, StartError> {
    let Some(listen) = &route.config.listen else {
        return Ok(None);
    };
    Bound::bind(listen)
        .await
        .map(Some)
        .map_err(|source| StartError::Bind {
            addr: listen.to_string(),
            what: format!("route `{}`", route.name()),
            source,
        })
}

/// Starts serving a route's bound listener: the router picks the route
/// named like the listener from whatever table is current.
fn serve_route(
    b: Bound,
    route: &Route,
    table: &Arc<ArcSwap<RouteTable>>,
    admin: usize,
) -> Listener {
    let addr = b.local_addr();
    let (stop, rx) = watch::channel(false);
    let max = route_cap(route, table.load().routes.len(), admin);
    tracing::info!(route = %route.name(), listen = %addr, max_connections = max, "route listening");
    let limit = Arc::new(ConnLimit::new(
        Some(route.name()),
        max,
        route.stats.connections.clone(),
    ));
    let serving = listener::Serving {
        name: Arc::from(route.name()),
        table: table.clone(),
        router: Arc::new(ByListener),
        max_header_bytes: route.config.max_header_bytes,
        header_timeout: route.config.conns.header_timeout,
        limit: limit.clone(),
    };
    let task = tokio::spawn(listener::serve(b, serving, rx, DEFAULT_GRACE));
    Listener {
        addr,
        stop,
        task,
        limit: Some(limit),
    }
}

/// A route listener's cap: its `max_connections`, lowered so that the
/// listeners of `routes` routes and the admin API's `admin` fit under the
/// open-file limit together.
fn route_cap(route: &Route, routes: usize, admin: usize) -> usize {
    let wanted = route.config.conns.max_connections;
    let max = wanted.min(nofile::route_share(nofile::current(), routes, admin));
    if max < wanted {
        tracing::warn!(route = %route.name(), max_connections = wanted, lowered_to = max, "max_connections lowered so every listener's connections fit the open-file limit");
    }
    max
}

/// After a reload, the listeners that kept running get their share of the
/// open-file limit for the new number of routes (a listener started by the
/// reload already has it).
fn reshare(listeners: &BTreeMap<String, Listener>, table: &RouteTable, admin: usize) {
    for (name, l) in listeners {
        let (Some(limit), Some(route)) = (&l.limit, table.routes.get(name)) else {
            continue;
        };
        let max = route_cap(route, table.routes.len(), admin);
        if max != limit.max() {
            tracing::info!(route = %name, max_connections = max, was = limit.max(), "connection cap shared out again for the reloaded routes");
            limit.resize(max);
        }
    }
}

impl App {
    /// Starts everything `config` describes. The config was checked whole
    /// before this is called; nothing is bound if any part fails to build.
    pub async fn start(config: Config) -> Result<App, StartError> {
        nofile::raise();
        for w in crate::config::exposed_listeners(&config) {
            tracing::warn!(warning = %w, "listener off loopback");
        }
        let admin_token = match &config.admin.token {
            Some(t) => Some(t.read().await?),
            None => None,
        };

        let mut credentials = BTreeMap::new();
        for c in &config.credentials {
            credentials.insert(c.name.clone(), Credential::new(c.clone()));
        }
        let mut clients = Clients::default();
        let mut built = Vec::new();
        for rc in &config.routes {
            let cred = credentials[&rc.credential].clone();
            let s = Arc::new(RouteStats::default());
            let route = Route::build(rc.clone(), cred, &mut clients, s, config.log.access_log)?;
            built.push(Arc::new(route));
        }
        // Bind every listener before serving any, so a port in use fails the start cleanly.
        let mut bound = Vec::new();
        for route in built {
            let b = bind_route(&route).await?;
            bound.push((route, b));
        }
        let ca = match config.proxy.is_some() || config.transparent.is_some() {
            true => open_ca(&config, None)?,
            false => None,
        };
        let proxy_bound = match &config.proxy {
            Some(p) => Some(
                Bound::bind(&p.listen)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: p.listen.to_string(),
                        what: "[proxy]".into(),
                        source,
                    })?,
            ),
            None => None,
        };
        let transparent_bound = match &config.transparent {
            Some(t) => transparent::bind(t).await?,
            None => Vec::new(),
        };
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

        let table = Arc::new(ArcSwap::from_pointee(RouteTable {
            routes: bound
                .iter()
                .map(|(r, _)| (r.name().to_owned(), r.clone()))
                .collect(),
            credentials,
        }));
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let mut probes = BTreeMap::new();
        for (route, b) in bound {
            let name = route.name().to_owned();
            if let Some(p) = probe::spawn(route.clone()) {
                probes.insert(name.clone(), p);
            }
            let Some(b) = b else { continue };
            let l = serve_route(b, &route, &table, config.admin.conns.max_connections);
            addrs.insert(name.clone(), l.addr.clone());
            listeners.insert(name, l);
        }

        let admin_addr = admin_bound.local_addr();
        let mut fixed_own: Vec<std::net::SocketAddr> = Vec::new();
        let mut proxy = None;
        let mut outbound = None;
        if let (Some(pc), Some(b)) = (&config.proxy, proxy_bound) {
            let addr = b.local_addr();
            let wanted = pc.conns.max_connections;
            let max = wanted.min(nofile::route_share(
                nofile::current(),
                config.routes.len() + 1,
                config.admin.conns.max_connections,
            ));
            let ob = Arc::new(Outbound::new(table.clone(), pc.clone(), ca.clone(), max));
            let (stop, rx) = watch::channel(false);
            tracing::info!(listen = %addr, max_connections = max, "forward proxy listening");
            let task = tokio::spawn(outbound::serve(b, ob.clone(), rx, DEFAULT_GRACE));
            if let ListenAddr::Tcp(a) = &addr {
                fixed_own.push(*a);
            }
            proxy = Some(Listener {
                addr,
                stop,
                task,
                limit: None,
            });
            outbound = Some(ob);
        }
        if let ListenAddr::Tcp(a) = &admin_addr {
            fixed_own.push(*a);
        }
        let mut transparent = None;
        if let Some(tc) = &config.transparent {
            let max = transparent::max_connections(&config, tc);
            let ob = outbound
                .get_or_insert_with(|| {
                    Arc::new(Outbound::new(table.clone(), tc.proxy_defaults(), ca, max))
                })
                .clone();
            let t = Arc::new(outbound::transparent::Transparent::new(ob, tc.clone(), max));
            transparent = Some(transparent::serve(transparent_bound, t));
        }
        let transparent_addrs = transparent
            .as_ref()
            .map(transparent::Serving::addrs)
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            table,
            admin_token,
            reload_error: Mutex::new(None),
            reload_stats: Mutex::new(ReloadStats::default()),
            admin_connections: Default::default(),
            refusals: Default::default(),
            refused_by_error: Default::default(),
            config: ArcSwap::from_pointee(config),
        });
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
                transparent,
            }),
            addrs: Mutex::new(addrs),
            outbound: ArcSwapOption::new(outbound),
            fixed_own,
            transparent_addrs: Mutex::new(transparent_addrs),
        });
        if let Some(ob) = control.outbound.load_full() {
            ob.own.store(Arc::new(own_addrs(&control)));
        }
        Ok(App {
            shared,
            control,
            admin: Listener {
                addr: admin_addr,
                stop,
                task,
                limit: None,
            },
            proxy,
            watcher: Mutex::new(None),
        })
    }

    /// The address a route listens on (with the port the OS chose for port 0).
    pub fn route_addr(&self, route: &str) -> Option<ListenAddr> {
        self.control.addrs.lock().get(route).cloned()
    }

    pub fn admin_addr(&self) -> &ListenAddr {
        &self.admin.addr
    }

    /// The forward proxy's address, when `[proxy]` is configured.
    pub fn proxy_addr(&self) -> Option<&ListenAddr> {
        self.proxy.as_ref().map(|p| &p.addr)
    }

    /// The transparent listener's address, when `[transparent]` is configured.
    pub fn transparent_addr(&self) -> Option<ListenAddr> {
        let addrs = self.control.transparent_addrs.lock();
        addrs.first().map(|a| ListenAddr::Tcp(*a))
    }

    /// CONNECT tunnels the forward proxy intercepted so far.
    pub fn proxy_intercepted(&self) -> u64 {
        self.control.outbound.load().as_ref().map_or(0, |o| {
            o.intercepted.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// The forward proxy's current CA (`None` without host routes).
    pub fn proxy_ca(&self) -> Option<Arc<Authority>> {
        self.control.outbound.load().as_ref()?.ca.load_full()
    }

    pub fn credential(&self, name: &str) -> Option<Arc<Credential>> {
        self.shared.table.load().credentials.get(name).cloned()
    }

    /// Reads the config file again and applies it if it is valid (see [`reload`]).
    pub async fn reload(&self) -> Result<reload::Summary, reload::ReloadError> {
        reload::reload(&self.control, true).await
    }

    /// Reloads on `SIGHUP` and whenever the config file changes, until shutdown.
    pub fn watch_config(&self) {
        let task = reload::watch(self.control.clone());
        if let Some(old) = self.watcher.lock().replace(task) {
            old.abort();
        }
    }

    /// Stops accepting, lets requests in flight finish (bounded by the
    /// listeners' grace period), then stops the refreshers and the admin API.
    pub async fn shutdown(self) {
        self.stop(false).await;
    }

    /// [`App::shutdown`], and each credential's current value is revoked at
    /// its source where the source can (`sidekey exec`: what this run issued).
    pub async fn shutdown_revoking(self) {
        self.stop(true).await;
    }

    async fn stop(self, revoke: bool) {
        if let Some(w) = self.watcher.lock().take() {
            w.abort();
        }
        let mut running = self.control.running.lock().await;
        let transparent = running.transparent.take().map(|t| t.listeners);
        for l in running
            .listeners
            .values()
            .chain(self.proxy.as_ref())
            .chain(transparent.iter().flatten())
        {
            let _ = l.stop.send(true);
        }
        for t in transparent.into_iter().flatten() {
            let _ = t.task.await;
        }
        if let Some(p) = self.proxy {
            let _ = p.task.await;
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
        // Sources release what they hold at their origin (Vault's revoke_on_shutdown).
        let credentials: Vec<_> = self
            .shared
            .table
            .load()
            .credentials
            .values()
            .cloned()
            .collect();
        for c in credentials {
            match revoke {
                true => c.revoke_and_stop(SOURCE_SHUTDOWN).await,
                false => c.shutdown_now(SOURCE_SHUTDOWN).await,
            }
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
/// change of the file meanwhile. Returns the stop signal's name, or why
/// the signals cannot be handled.
pub async fn wait_for_stop(
    app: &App,
    _config_path: std::path::PathBuf,
) -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    app.watch_config();
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
