//! A route as the request path uses it: its config, credential slot, upstream target and counters, all built at start-up.

use super::caller::Caller;
use crate::config::{RouteConfig, Upstream};
use crate::credential::{Credential, RouteUse};
use crate::metrics::RouteStats;
use crate::transport::client::{Client, TlsError, UpstreamClient};
use crate::transport::direct::Direct;
use crate::transport::reach::Reach;
use crate::transport::upgrade::Dialer;
use http::HeaderValue;
use http::uri::{Authority, Scheme};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a route's requests go.
// `StandIn` is small and rare; boxing `Remote` would add a pointer chase per request.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    Remote {
        client: Client,
        scheme: http::uri::Scheme,
        authority: http::uri::Authority,
        /// `Host` as the upstream expects it, built once.
        host: HeaderValue,
        base_path: String,
    },
    StandIn,
}

pub struct Route {
    pub config: RouteConfig,
    pub credential: Arc<Credential>,
    /// Index of this route's injection form in the credential's snapshots.
    pub slot: usize,
    pub target: Target,
    pub stats: Arc<RouteStats>,
    pub access_log: bool,
    /// Who may use the route.
    pub caller: Caller,
    /// Dedicated upstream connections for upgrades (WebSocket); `None` for the stand-in.
    pub dialer: Option<Dialer>,
}

/// Why a route could not be built from its checked config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("route `{route}`: credential `{credential}`: {reason}")]
    Render {
        route: String,
        credential: String,
        reason: crate::inject::RenderError,
    },
    #[error("upstream {0}: {1}")]
    Upstream(String, String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("the stand-in needs no client")]
    NoClient,
    #[error("route `{0}`: caller_token: {1}")]
    CallerToken(String, crate::secret_ref::ReadError),
}

/// Pooled HTTPS clients shared by routes with the same TLS and connect
/// settings; each plain-HTTP route gets connections of its own.
#[derive(Default)]
pub struct Clients {
    by_key: HashMap<(Option<PathBuf>, Duration, Option<std::net::SocketAddr>), UpstreamClient>,
}

impl Clients {
    pub fn get(
        &mut self,
        config: &RouteConfig,
        to: &Authority,
        reach: &Reach,
    ) -> Result<Client, BuildError> {
        let Upstream::Url { scheme, .. } = &config.upstream else {
            return Err(BuildError::NoClient);
        };
        let mtls = config.inject.presents_client_cert();
        if *scheme == Scheme::HTTP && mtls {
            let why = "inject = { client_cert } needs an https:// upstream";
            return Err(BuildError::Upstream(to.to_string(), why.into()));
        }
        if *scheme == Scheme::HTTP {
            let direct = Direct::new(to, reach)
                .map_err(|e| BuildError::Upstream(to.to_string(), e.to_string()))?;
            return Ok(Client::Direct(Arc::new(direct)));
        }
        if mtls {
            let pools = crate::transport::mtls::CertPools::new(reach.clone());
            return Ok(Client::Mtls(pools));
        }
        let key = (
            config.ca_file.clone(),
            config.connect_timeout,
            config.connect_to,
        );
        if let Some(c) = self.by_key.get(&key) {
            return Ok(Client::Pooled(Box::new(c.clone())));
        }
        let c = reach.pool(None);
        self.by_key.insert(key, c.clone());
        Ok(Client::Pooled(Box::new(c)))
    }
}

impl Route {
    pub fn build(
        config: RouteConfig,
        credential: Arc<Credential>,
        clients: &mut Clients,
        stats: Arc<RouteStats>,
        access_log: bool,
    ) -> Result<Route, BuildError> {
        let slot = credential
            .slot_for(&config.inject)
            .map_err(|e| BuildError::Render {
                route: config.name.clone(),
                credential: credential.name().to_owned(),
                reason: e,
            })?;
        // How this route reaches its upstream: every client below dials through it.
        let reach = Reach::new(
            config.ca_file.as_deref(),
            config.connect_timeout,
            config.connect_to,
        )?;
        let target = match &config.upstream {
            Upstream::StandIn => Target::StandIn,
            Upstream::Url {
                scheme,
                authority,
                base_path,
            } => Target::Remote {
                client: clients.get(&config, authority, &reach)?,
                scheme: scheme.clone(),
                authority: authority.clone(),
                host: HeaderValue::from_str(authority.as_str())
                    .map_err(|e| BuildError::Upstream(authority.to_string(), e.to_string()))?,
                base_path: base_path.clone(),
            },
        };
        if let Target::Remote {
            client: Client::Mtls(pools),
            ..
        } = &target
        {
            // A rotation drops the pools of the certificates it replaced.
            let (cred, slot) = (Arc::downgrade(&credential), slot);
            pools.follow(credential.subscribe(), move || {
                cred.upgrade()?.peek()?.rendered.get(slot)?.client_cert()
            });
        }
        let dialer = match &config.upstream {
            Upstream::StandIn => None,
            Upstream::Url {
                scheme, authority, ..
            } => Some(
                Dialer::new(scheme, authority, reach)
                    .map_err(|e| BuildError::Upstream(authority.to_string(), e.to_string()))?,
            ),
        };
        let caller = Caller::build(&config.caller)
            .map_err(|e| BuildError::CallerToken(config.name.clone(), e))?;
        credential.add_route_use(RouteUse {
            route: config.name.clone(),
            // A host route says what it is matched by: the inventory shows the host.
            upstream: match &config.host {
                Some(h) => format!("{h} -> {}", config.upstream),
                None => config.upstream.to_string(),
            },
            scopes: config.scope.describe(),
        });
        Ok(Route {
            config,
            credential,
            slot,
            target,
            stats,
            access_log,
            caller,
            dialer,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }
}
