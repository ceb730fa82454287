//! Config hot reload: on `SIGHUP` or a change of the config file, the new file
//! is checked whole; if valid it replaces the running config at once (new
//! routes listen, removed routes drain and stop, changed routes swap,
//! unchanged credentials keep their value and refresher). If not, the running
//! config stays and the reason is logged and shown at `GET /v1/config/status`.

use super::{Control, Listener, serve_route};
use crate::config::{self, Config};
use crate::credential::{Credential, RouteUse, engine};
use crate::metrics::RouteStats;
use crate::proxy::listener::Bound;
use crate::proxy::outbound::Outbound;
use crate::proxy::probe;
use crate::proxy::route::{Clients, Route};
use crate::proxy::table::RouteTable;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// Quiet time after a file event before reading, so an editor's write settles.
const SETTLE: Duration = Duration::from_millis(100);

/// How long a reload waits for the first value of a new credential before
/// routes switch to it (they answer `credential_unavailable` until it comes).
const FIRST_VALUE: Duration = Duration::from_secs(5);

/// Waits for every future (a handful: one per new credential).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    for f in futs {
        f.await;
    }
}

/// Why a reload was refused; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{file}: cannot read the file: {reason}")]
    Read { file: String, reason: String },
    #[error("{0}: the file is not UTF-8 text")]
    NotText(String),
    /// Every problem, each with its file, line and column.
    #[error("{0}")]
    Invalid(#[from] config::ConfigErrors),
    #[error(transparent)]
    Build(#[from] crate::proxy::route::BuildError),
    #[error("[proxy] CA: {0}")]
    Ca(#[from] crate::tls::CaError),
    #[error("route `{route}`: cannot listen on {addr}: {reason}")]
    Bind {
        route: String,
        addr: String,
        reason: std::io::Error,
    },
    /// `[transparent]` added or moved to an address that cannot be bound.
    #[error(transparent)]
    Listen(#[from] super::StartError),
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub routes_added: Vec<String>,
    pub routes_removed: Vec<String>,
    pub routes_changed: Vec<String>,
    pub credentials_kept: Vec<String>,
    pub credentials_new: Vec<String>,
    pub credentials_dropped: Vec<String>,
    /// The file was the same as last time: nothing was done.
    pub unchanged_file: bool,
}

/// Reads the config file and applies it. `force` applies it even if the
/// text is the same as last time (SIGHUP, an explicit call).
pub async fn reload(control: &Control, force: bool) -> Result<Summary, ReloadError> {
    let path = control.shared.config.load().path.clone();
    let mut running = control.running.lock().await;
    let text = std::fs::read(&path);
    if let Ok(t) = &text {
        let hash: [u8; 32] = Sha256::digest(t).into();
        if !force && running.last_text == Some(hash) {
            return Ok(Summary {
                unchanged_file: true,
                ..Summary::default()
            });
        }
        running.last_text = Some(hash);
    }
    {
        let mut st = control.shared.reload_stats.lock();
        st.attempts += 1;
        st.last_attempt_at = Some(SystemTime::now());
    }
    // Check the very text that was hashed (the file may change again meanwhile).
    let checked = match &text {
        Ok(t) => match std::str::from_utf8(t) {
            Ok(t) => config::parse(&path, t).map_err(ReloadError::from),
            Err(_) => Err(ReloadError::NotText(path.display().to_string())),
        },
        Err(e) => Err(ReloadError::Read {
            file: path.display().to_string(),
            reason: e.to_string(),
        }),
    };
    let result = match checked {
        Ok(config) => apply(control, &mut running, config).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(summary) => {
            *control.shared.reload_error.lock() = None;
            let mut st = control.shared.reload_stats.lock();
            st.applied += 1;
            st.last_applied_at = Some(SystemTime::now());
            tracing::info!(
                file = %path.display(),
                routes_added = ?summary.routes_added,
                routes_removed = ?summary.routes_removed,
                routes_changed = ?summary.routes_changed,
                credentials_new = ?summary.credentials_new,
                credentials_dropped = ?summary.credentials_dropped,
                "configuration reloaded"
            );
        }
        Err(reason) => {
            *control.shared.reload_error.lock() = Some(reason.to_string());
            tracing::error!(file = %path.display(), error = %reason, "configuration reload refused; the running configuration stays");
        }
    }
    result
}

/// A route of the new config and what becomes of it.
enum Plan {
    /// Same config, same credential: left alone.
    Keep(Arc<Route>),
    /// Same listener, new route behind it.
    Swap(Arc<Route>),
    /// A listener to start (a new route, or one whose address changed).
    Add(Arc<Route>, crate::proxy::listener::Bound),
    /// A new or changed host route: the forward proxy serves it, no listener of its own.
    Hosted(Arc<Route>),
}

/// Builds everything the new config needs, then swaps it in. Nothing
/// running changes unless every part builds and binds.
async fn apply(
    control: &Control,
    running: &mut super::Running,
    config: Config,
) -> Result<Summary, ReloadError> {
    let shared = &control.shared;
    let old_cfg = shared.config.load_full();
    let old = shared.table.load_full();
    if old_cfg.admin != config.admin || old_cfg.log.format != config.log.format {
        tracing::warn!("changes to [admin] and [log] format take effect at the next restart");
    }
    let mut summary = Summary::default();
    // The CA the new host routes need, opened (or made anew) before anything changes.
    let intercepts = config.proxy.is_some() || config.transparent.is_some();
    let ca = match (control.outbound.load_full(), intercepts) {
        (Some(ob), true) => Some(super::open_ca(&config, ob.ca.load_full())?),
        // [transparent] added to a process that intercepted nothing so far.
        (None, true) if config.transparent.is_some() => Some(super::open_ca(&config, None)?),
        _ => None,
    };
    if old_cfg.proxy.as_ref().map(|p| &p.listen) != config.proxy.as_ref().map(|p| &p.listen) {
        tracing::warn!("adding, removing or moving [proxy] takes effect at the next restart");
    }
    // [transparent] added or moved: its new address is bound before anything changes.
    let transparent_bound = match &config.transparent {
        Some(t) if old_cfg.transparent.as_ref().map(|o| o.listen) != Some(t.listen) => {
            Some(super::transparent::bind(t).await?)
        }
        _ => None,
    };
    let transparent = config.transparent.clone();
    let transparent_max = transparent
        .as_ref()
        .map_or(0, |t| super::transparent::max_connections(&config, t));

    let mut credentials = BTreeMap::new();
    let mut fresh = Vec::new();
    for c in &config.credentials {
        let cred = match old.credentials.get(&c.name) {
            Some(existing) if existing.config == *c => {
                summary.credentials_kept.push(c.name.clone());
                existing.clone()
            }
            _ => {
                summary.credentials_new.push(c.name.clone());
                let n = Credential::new(c.clone());
                fresh.push(n.clone());
                n
            }
        };
        credentials.insert(c.name.clone(), cred);
    }
    // Route::build records its use on the credential: keep what to restore on failure.
    let uses_before: Vec<(Arc<Credential>, Vec<RouteUse>)> = old
        .credentials
        .values()
        .map(|c| (c.clone(), c.route_uses()))
        .collect();

    let built = plan_routes(&config, &old, &old_cfg, &credentials).await;
    let plans = match built {
        Ok(p) => p,
        Err(e) => {
            for (c, uses) in uses_before {
                c.set_route_uses(uses);
            }
            return Err(e);
        }
    };

    // Credentials that are new get their first value before routes use them.
    let mut replaced_refreshers = Vec::new();
    for cred in &fresh {
        let task = engine::spawn(cred.clone(), cred.config.source.build());
        replaced_refreshers.extend(running.refreshers.insert(cred.name().to_owned(), task));
    }
    let first_values = fresh.iter().map(|c| {
        let mut rx = c.subscribe();
        async move {
            let _ = rx.wait_for(|g| *g > 0).await;
        }
    });
    let _ = tokio::time::timeout(FIRST_VALUE, futures_join_all(first_values)).await;

    // Everything is built and bound: commit.
    let mut routes = BTreeMap::new();
    let mut to_start = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    for (rc, plan) in config.routes.iter().zip(plans) {
        let name = rc.name.clone();
        match plan {
            Plan::Keep(route) => {
                kept.push(name.clone());
                routes.insert(name, route);
            }
            Plan::Swap(route) => {
                routes.insert(name.clone(), route);
                summary.routes_changed.push(name);
            }
            Plan::Add(route, bound) => {
                routes.insert(name.clone(), route.clone());
                to_start.push((route, bound));
                if old.routes.contains_key(&name) {
                    summary.routes_changed.push(name);
                } else {
                    summary.routes_added.push(name);
                }
            }
            Plan::Hosted(route) => {
                routes.insert(name.clone(), route);
                if old.routes.contains_key(&name) {
                    summary.routes_changed.push(name);
                } else {
                    summary.routes_added.push(name);
                }
            }
        }
    }
    if let (None, Some(t)) = (control.outbound.load().as_ref(), &config.transparent) {
        let ob = Outbound::new(
            shared.table.clone(),
            t.proxy_defaults(),
            ca.clone().flatten(),
            transparent_max,
        );
        control.outbound.store(Some(Arc::new(ob)));
    }
    if let Some(ob) = control.outbound.load_full() {
        // The CA first: a new host route's first tunnel finds its leaf.
        if let Some(ca) = ca {
            ob.ca.store(ca);
        }
        if let Some(p) = &config.proxy {
            ob.config.store(Arc::new(p.clone()));
            ob.resize_cap(p.conns.max_connections.min(super::nofile::route_share(
                super::nofile::current(),
                config.routes.len() + 1,
                config.admin.conns.max_connections,
            )));
        }
    }
    // One store: every listener sees the whole new generation at once.
    shared.table.store(Arc::new(RouteTable {
        routes: routes.clone(),
        credentials: credentials.clone(),
    }));
    shared.config.store(Arc::new(config));
    let admin_cap = shared.config.load().admin.conns.max_connections;
    let started: Vec<(String, Listener)> = to_start
        .into_iter()
        .map(|(route, bound)| {
            let l = serve_route(bound, &route, &shared.table, admin_cap);
            (route.name().to_owned(), l)
        })
        .collect();

    // Listeners: stop those of removed routes (and those being replaced), start the new.
    let replaced: Vec<String> = started.iter().map(|(n, _)| n.clone()).collect();
    let gone: Vec<String> = running
        .listeners
        .keys()
        .filter(|n| {
            routes.get(*n).is_none_or(|r| r.config.listen.is_none()) || replaced.contains(n)
        })
        .cloned()
        .collect();
    for name in gone {
        if let Some(l) = running.listeners.remove(&name) {
            let _ = l.stop.send(true);
            running.draining.push(l.task);
        }
        if !routes.contains_key(&name) {
            summary.routes_removed.push(name.clone());
            control.addrs.lock().remove(&name);
        }
    }
    if let Some(ob) = control.outbound.load_full() {
        super::transparent::reload(
            &mut running.transparent,
            transparent.as_ref(),
            transparent_bound,
            || ob,
            transparent_max,
            &mut running.draining,
        );
    }
    *control.transparent_addrs.lock() = running
        .transparent
        .as_ref()
        .map(super::transparent::Serving::addrs)
        .unwrap_or_default();
    running.draining.retain(|t| !t.is_finished());
    for (name, l) in started {
        control.addrs.lock().insert(name.clone(), l.addr.clone());
        running.listeners.insert(name, l);
    }
    super::reshare(&running.listeners, &shared.table.load(), admin_cap);

    if let Some(ob) = control.outbound.load_full() {
        ob.own.store(Arc::new(super::own_addrs(control)));
    }

    // Route uses of credentials that stay: forget routes that no longer use them.
    for (name, cred) in &credentials {
        for u in cred.route_uses() {
            let still = shared
                .config
                .load()
                .routes
                .iter()
                .any(|r| r.name == u.route && &r.credential == name);
            if !still {
                cred.remove_route_use(&u.route);
            }
        }
    }

    // Refreshers: stop those of replaced and of dropped credentials.
    for task in replaced_refreshers {
        task.abort();
    }
    for (name, old_cred) in &old.credentials {
        let kept = credentials
            .get(name)
            .is_some_and(|c| Arc::ptr_eq(c, old_cred));
        if !kept {
            // The new credential of the same name already has its own refresher.
            if !credentials.contains_key(name) {
                if let Some(task) = running.refreshers.remove(name) {
                    task.abort();
                }
            }
            if !credentials.contains_key(name) {
                summary.credentials_dropped.push(name.clone());
            }
        }
    }

    // Probes follow the routes: those of untouched routes keep waiting.
    let untouched: Vec<&String> = kept.iter().collect();
    running.probes.retain(|name, task| {
        let keep = untouched.contains(&name);
        if !keep {
            task.abort();
        }
        keep
    });
    for (name, route) in &routes {
        if !running.probes.contains_key(name) {
            if let Some(p) = probe::spawn(route.clone()) {
                running.probes.insert(name.clone(), p);
            }
        }
    }
    Ok(summary)
}

/// Builds (and binds, where needed) every route of the new config.
async fn plan_routes(
    config: &Config,
    old: &RouteTable,
    old_cfg: &Config,
    credentials: &BTreeMap<String, Arc<Credential>>,
) -> Result<Vec<Plan>, ReloadError> {
    let mut clients = Clients::default();
    let mut plans = Vec::new();
    for rc in &config.routes {
        let cred = credentials[&rc.credential].clone();
        let existing = old.routes.get(&rc.name).cloned();
        let same_listener = old_cfg
            .routes
            .iter()
            .find(|r| r.name == rc.name)
            .is_some_and(|r| {
                r.listen == rc.listen
                    && r.max_header_bytes == rc.max_header_bytes
                    && r.conns == rc.conns
            });
        if let Some(e) = &existing {
            if e.config == *rc
                && Arc::ptr_eq(&e.credential, &cred)
                && e.access_log == config.log.access_log
            {
                plans.push(Plan::Keep(e.clone()));
                continue;
            }
        }
        // Counters carry over to the route's new build.
        let stats = existing
            .as_ref()
            .map(|e| e.stats.clone())
            .unwrap_or_else(|| Arc::new(RouteStats::default()));
        let route = Arc::new(Route::build(
            rc.clone(),
            cred,
            &mut clients,
            stats,
            config.log.access_log,
        )?);
        let Some(listen) = route.config.listen.clone() else {
            plans.push(Plan::Hosted(route));
            continue;
        };
        if existing.is_some() && same_listener {
            plans.push(Plan::Swap(route));
        } else {
            let bound = Bound::bind(&listen)
                .await
                .map_err(|reason| ReloadError::Bind {
                    route: route.name().to_owned(),
                    addr: listen.to_string(),
                    reason,
                })?;
            plans.push(Plan::Add(route, bound));
        }
    }
    Ok(plans)
}

/// Reloads on `SIGHUP` and on change of the config file until aborted.
pub fn watch(control: Arc<Control>) -> JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before returning, so a SIGHUP from now on never kills the process.
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "cannot handle SIGHUP; reload by editing the file"))
        .ok();
    tokio::spawn(async move {
        let path = control.shared.config.load().path.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _watcher = watch_file(&path, tx);
        // Remember the text running now, so the first event only reloads a real change.
        if let Ok(t) = std::fs::read(&path) {
            control.running.lock().await.last_text = Some(Sha256::digest(&t).into());
        }
        loop {
            let force = tokio::select! {
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    true
                }
                event = rx.recv() => {
                    if event.is_none() {
                        return;
                    }
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                    false
                }
            };
            let _ = reload(&control, force).await;
        }
    })
}

/// Watches the folder of the config file (an editor's rename or a
/// Kubernetes ConfigMap `..data` swap replaces the file itself).
fn watch_file(
    path: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let name = path.file_name()?.to_owned();
    let dir: PathBuf = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| crate::credential::file::changes(&e, &name)) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP"))
    .ok()?;
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config folder; reload with SIGHUP");
        return None;
    }
    Some(watcher)
}
