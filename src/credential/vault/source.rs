//! `source = "vault"` as a [`Source`]: log in, read the target, remember the lease for revocation.

use super::auth::Auth;
use super::client::Client;
use super::settings::{Target, VaultSpec};
use crate::credential::{BoxFuture, Issued, Material, Revocation, Source, SourceError};
use crate::secret::Fingerprint;
use http::Method;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What a value issued by this source is at Vault (kept in [`Issued::lease`]).
pub(super) enum Handle {
    /// A KV version 2 secret of this version.
    Kv { version: u64 },
    /// A secret with a lease.
    Lease {
        id: String,
        renewable: bool,
        ttl: Duration,
    },
    /// A secret without lease.
    None,
}

pub struct VaultSource {
    pub(super) spec: VaultSpec,
    pub(super) client: Arc<Client>,
    pub(super) auth: Arc<Auth>,
    /// The lease of the value issued last, for `sidekey revoke` and shutdown.
    held: crate::sync::Mutex<Option<(Fingerprint, String)>>,
}

impl VaultSource {
    pub fn new(spec: VaultSpec) -> Self {
        let client = Arc::new(Client::new(spec.conn.clone()));
        let auth = Auth::new(spec.auth.clone(), client.clone());
        VaultSource {
            spec,
            client,
            auth,
            held: crate::sync::Mutex::new(None),
        }
    }

    /// A call with the auth token; a token Vault no longer knows (revoked,
    /// expired) is replaced by a new login and the call made once more.
    /// `hide` are values sent in `body` that no error may quote (lease ids).
    pub(super) async fn authed(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        hide: &[&str],
    ) -> Result<Value, SourceError> {
        let token = self.auth.token().await?;
        match self
            .client
            .json(method.clone(), path, Some(&token), body, hide)
            .await
        {
            // A 403 is a revoked or expired token, or a policy that does not
            // allow the path: only the first is mended by a new login.
            Err(e) if e.token_refused() && !self.auth.is_valid(&token).await => {
                self.auth.invalidate(&token).await;
                let token = self.auth.token().await?;
                Ok(self
                    .client
                    .json(method, path, Some(&token), body, hide)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    async fn fetch_target(&self, previous: Option<&Issued>) -> Result<Issued, SourceError> {
        let issued = match &self.spec.target {
            Target::Kv {
                mount,
                path,
                fields,
            } => self.kv(mount, path, fields, previous).await?,
            Target::Read { path, fields } => {
                self.dynamic(Method::GET, path, None, fields, previous)
                    .await?
            }
            Target::Write { path, data, fields } => {
                self.dynamic(Method::PUT, path, Some(data), fields, previous)
                    .await?
            }
        };
        let lease = issued.lease.as_ref().and_then(|l| match l.get::<Handle>() {
            Some(Handle::Lease { id, .. }) => Some(id.clone()),
            _ => None,
        });
        *self.held.lock() = lease.map(|id| (issued.material.fingerprint(), id));
        Ok(issued)
    }

    /// The lease held for `material`, if any.
    fn lease_of(&self, material: &Material) -> Option<String> {
        let fp = material.fingerprint();
        self.held
            .lock()
            .as_ref()
            .filter(|(f, _)| *f == fp)
            .map(|(_, id)| id.clone())
    }
}

impl Source for VaultSource {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(self.fetch_target(previous))
    }

    fn revoke<'a>(
        &'a self,
        issued: &'a Material,
    ) -> BoxFuture<'a, Result<Revocation, SourceError>> {
        Box::pin(async move {
            let Some(id) = self.lease_of(issued) else {
                return Ok(Revocation::NotSupported);
            };
            self.revoke_lease(&id).await?;
            *self.held.lock() = None;
            Ok(Revocation::Revoked)
        })
    }

    fn reread_every(&self) -> Option<Duration> {
        Some(self.spec.poll_interval)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.spec.revoke_on_shutdown {
                return;
            }
            let lease = self.held.lock().take();
            if let Some((_, id)) = lease {
                match self.revoke_lease(&id).await {
                    Ok(()) => tracing::info!("vault lease revoked at shutdown"),
                    Err(e) => {
                        tracing::warn!(error = %e.message, "vault lease revocation at shutdown failed")
                    }
                }
            }
            // A token handed over (method `token`: an operator's, or Vault
            // Agent's sink) belongs to whoever made it; revoking it would
            // also revoke everything else issued to it.
            if !self.auth.logs_in() {
                tracing::info!(
                    method = self.auth.method(),
                    "vault token left alone at shutdown: sidekey did not create it"
                );
                return;
            }
            match self.auth.revoke_self().await {
                Ok(()) => tracing::info!(
                    method = self.auth.method(),
                    "vault token revoked at shutdown"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.message, "vault token revocation at shutdown failed")
                }
            }
        })
    }

    fn detail(&self) -> Option<Value> {
        let accessor = self.auth.accessor()?;
        Some(serde_json::json!({
            "auth_method": self.auth.method(),
            "token_accessor": accessor,
        }))
    }
}
