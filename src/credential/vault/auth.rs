//! Logging in to Vault and keeping the auth token alive: login per method, renewal at about 2/3
//! of its TTL while renewable, a new login when renewal no longer extends it (max TTL) or it is refused.

use super::client::{CallError, Client};
use super::settings::{AuthSpec, RoleId};
use crate::credential::SourceError;
use crate::credential::schedule::{backoff, refresh_after, unit};
use crate::secret::{Fingerprint, Secret};
use http::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// A token is not handed out in its last moments: a call could reach Vault after it expired.
const EXPIRY_MARGIN: Duration = Duration::from_millis(500);
/// How often the keeper looks again while there is no session (the fetch path logs in).
const IDLE: Duration = Duration::from_secs(1);

/// A logged-in token and what Vault said about it.
struct Session {
    token: Secret,
    accessor: String,
    /// TTL granted at login: a renewal granting less has reached the max TTL.
    login_ttl: Duration,
    /// Zero: the token does not expire (a root token).
    ttl: Duration,
    renewable: bool,
    /// Last renewal was cut short by the max TTL: log in again next time.
    capped: bool,
    since: Instant,
    due: Option<Instant>,
}

impl Session {
    fn expires(&self) -> Option<Instant> {
        (!self.ttl.is_zero()).then(|| self.since + self.ttl)
    }

    fn usable(&self, now: Instant) -> bool {
        self.expires().is_none_or(|e| now + EXPIRY_MARGIN < e)
    }

    fn schedule(&mut self) {
        self.due = (!self.ttl.is_zero()).then(|| self.since + refresh_after(self.ttl, unit()));
    }
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    /// The secret_id from a response-wrapped token, by the wrapping token's fingerprint:
    /// a wrapping token is single-use, so it is unwrapped once.
    unwrapped: Option<(Fingerprint, Secret)>,
    failures: u32,
    keeper_started: bool,
}

pub struct Auth {
    spec: AuthSpec,
    client: Arc<Client>,
    state: tokio::sync::Mutex<State>,
    /// The current token's accessor, for the inventory (never the token).
    accessor: crate::sync::Mutex<Option<String>>,
}

/// What a login or renewal answered in `auth`.
struct Granted {
    token: Option<Secret>,
    accessor: Option<String>,
    ttl: Duration,
    renewable: bool,
}

fn granted(answer: &Value, what: &str) -> Result<Granted, SourceError> {
    let auth = answer
        .get("auth")
        .filter(|a| a.is_object())
        .ok_or_else(|| SourceError::new(format!("{what}: the answer has no `auth`")))?;
    Ok(Granted {
        token: auth
            .get("client_token")
            .and_then(Value::as_str)
            .and_then(|t| Secret::new(t).ok()),
        accessor: auth
            .get("accessor")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ttl: Duration::from_secs(
            auth.get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        ),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

impl Auth {
    pub fn new(spec: AuthSpec, client: Arc<Client>) -> Arc<Self> {
        Arc::new(Auth {
            spec,
            client,
            state: tokio::sync::Mutex::new(State::default()),
            accessor: crate::sync::Mutex::new(None),
        })
    }

    pub fn method(&self) -> &'static str {
        self.spec.method()
    }

    pub fn accessor(&self) -> Option<String> {
        self.accessor.lock().clone()
    }

    /// A token to call Vault with: the session's, or a new login's.
    pub async fn token(self: &Arc<Self>) -> Result<Secret, SourceError> {
        let mut state = self.state.lock().await;
        if !state.keeper_started {
            state.keeper_started = true;
            tokio::spawn(keep(Arc::downgrade(self)));
        }
        if let Some(s) = &state.session
            && s.usable(Instant::now())
        {
            return Ok(s.token.clone());
        }
        self.login(&mut state).await
    }

    /// Whether Vault still knows `token` (`auth/token/lookup-self` answers).
    pub async fn is_valid(&self, token: &Secret) -> bool {
        self.client
            .json(
                Method::GET,
                "auth/token/lookup-self",
                Some(token),
                None,
                &[],
            )
            .await
            .is_ok()
    }

    /// Vault refused `token`: forget it, so the next call logs in again.
    pub async fn invalidate(&self, token: &Secret) {
        let mut state = self.state.lock().await;
        if state
            .session
            .as_ref()
            .is_some_and(|s| s.token.fingerprint() == token.fingerprint())
        {
            state.session = None;
        }
    }

    /// Whether sidekey creates its token by logging in (every method but `token`,
    /// whose token someone else made and may share).
    pub fn logs_in(&self) -> bool {
        !matches!(self.spec, AuthSpec::Token(_))
    }

    /// Revokes the current token at Vault (`auth/token/revoke-self`), for shutdown.
    /// Only for a token sidekey logged in for ([`Auth::logs_in`]).
    pub async fn revoke_self(&self) -> Result<(), SourceError> {
        if !self.logs_in() {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        let Some(s) = state.session.take() else {
            return Ok(());
        };
        self.client
            .json(
                Method::POST,
                "auth/token/revoke-self",
                Some(&s.token),
                None,
                &[],
            )
            .await?;
        *self.accessor.lock() = None;
        Ok(())
    }

    async fn login(&self, state: &mut State) -> Result<Secret, SourceError> {
        let method = self.spec.method();
        let result = self.login_once(state).await;
        let g = result.map_err(|e| {
            // Which JWT was presented: the file the operator should look at.
            let from = match &self.spec {
                AuthSpec::Jwt { jwt_file, .. } => format!(", JWT from {}", jwt_file.display()),
                _ => String::new(),
            };
            SourceError {
                kind: e.kind,
                message: format!(
                    "vault login (auth method {method}{from}) failed: {}",
                    e.message
                ),
            }
        })?;
        let token = g
            .token
            .ok_or_else(|| SourceError::new(format!("vault login ({method}) answered no token")))?;
        let mut session = Session {
            token: token.clone(),
            accessor: g.accessor.unwrap_or_default(),
            login_ttl: g.ttl,
            ttl: g.ttl,
            renewable: g.renewable,
            capped: false,
            since: Instant::now(),
            due: None,
        };
        session.schedule();
        tracing::debug!(method, accessor = %session.accessor, ttl_s = g.ttl.as_secs(), renewable = g.renewable, "vault login");
        *self.accessor.lock() = Some(session.accessor.clone());
        state.session = Some(session);
        state.failures = 0;
        Ok(token)
    }

    async fn login_once(&self, state: &mut State) -> Result<Granted, SourceError> {
        match &self.spec {
            AuthSpec::Token(r) => {
                let token = r.read().await?;
                let answer = self
                    .client
                    .json(
                        Method::GET,
                        "auth/token/lookup-self",
                        Some(&token),
                        None,
                        &[],
                    )
                    .await?;
                let data = answer.get("data").cloned().unwrap_or(Value::Null);
                Ok(Granted {
                    token: Some(token),
                    accessor: data
                        .get("accessor")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    ttl: Duration::from_secs(data.get("ttl").and_then(Value::as_u64).unwrap_or(0)),
                    renewable: data
                        .get("renewable")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
            }
            AuthSpec::AppRole {
                mount,
                role_id,
                secret_id,
                wrapped,
            } => {
                let role_id = match role_id {
                    RoleId::Inline(s) => Secret::new(s.as_str())
                        .map_err(|_| SourceError::permanent("role_id is empty"))?,
                    RoleId::From(r) => r.read().await?,
                };
                let secret_id = if *wrapped {
                    self.unwrap_secret_id(state, &secret_id.read().await?)
                        .await?
                } else {
                    secret_id.read().await?
                };
                let body = json!({ "role_id": role_id.expose(), "secret_id": secret_id.expose() });
                let path = format!("auth/{mount}/login");
                let answer = self
                    .client
                    .json(
                        Method::POST,
                        &path,
                        None,
                        Some(&body),
                        &[secret_id.expose()],
                    )
                    .await?;
                granted(&answer, &path)
            }
            AuthSpec::Jwt {
                mount,
                role,
                jwt_file,
                ..
            } => {
                let jwt = crate::credential::secret_ref::SecretRef::File(jwt_file.clone())
                    .read()
                    .await?;
                let body = json!({ "role": role, "jwt": jwt.expose() });
                let path = format!("auth/{mount}/login");
                let answer = self
                    .client
                    .json(Method::POST, &path, None, Some(&body), &[jwt.expose()])
                    .await?;
                granted(&answer, &path)
            }
        }
    }

    /// The secret_id inside a response-wrapping token, unwrapped once per wrapping token.
    async fn unwrap_secret_id(
        &self,
        state: &mut State,
        wrapping: &Secret,
    ) -> Result<Secret, SourceError> {
        let fp = wrapping.fingerprint();
        if let Some((seen, secret_id)) = &state.unwrapped
            && *seen == fp
        {
            return Ok(secret_id.clone());
        }
        let answer = self
            .client
            .json(Method::POST, "sys/wrapping/unwrap", Some(wrapping), None, &[])
            .await
            .map_err(|e: CallError| {
                SourceError::permanent(format!(
                    "unwrapping the secret_id failed (a wrapping token works once: deliver a new one): {}",
                    e.message
                ))
            })?;
        let secret_id = answer
            .get("data")
            .and_then(|d| d.get("secret_id"))
            .and_then(Value::as_str)
            .and_then(|s| Secret::new(s).ok())
            .ok_or_else(|| SourceError::permanent("the unwrapped answer holds no secret_id"))?;
        state.unwrapped = Some((fp, secret_id.clone()));
        Ok(secret_id)
    }

    /// Renews or replaces the session when due; returns when to look again.
    async fn maintain(&self) -> Instant {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let Some(s) = &state.session else {
            return now + IDLE;
        };
        let Some(due) = s.due else {
            return now + IDLE; // never expires: nothing to keep alive
        };
        if now < due {
            return due;
        }
        let outcome = if s.renewable && !s.capped {
            let token = s.token.clone();
            match self
                .client
                .json(Method::POST, "auth/token/renew-self", Some(&token), Some(&json!({})), &[])
                .await
            {
                Ok(answer) => granted(&answer, "auth/token/renew-self").map(|g| {
                    if let Some(s) = state.session.as_mut() {
                        s.capped = g.ttl < s.login_ttl;
                        s.ttl = g.ttl;
                        s.renewable = g.renewable;
                        s.since = Instant::now();
                        s.schedule();
                        tracing::debug!(accessor = %s.accessor, ttl_s = g.ttl.as_secs(), "vault token renewed");
                    }
                }),
                Err(e) if e.token_refused() => self.login(&mut state).await.map(drop),
                Err(e) => Err(e.into()),
            }
        } else {
            self.login(&mut state).await.map(drop)
        };
        match outcome {
            Ok(()) => {
                state.failures = 0;
                state
                    .session
                    .as_ref()
                    .and_then(|s| s.due)
                    .unwrap_or(Instant::now() + IDLE)
            }
            Err(e) => {
                state.failures += 1;
                tracing::warn!(method = self.spec.method(), error = %e.message, "vault token renewal failed");
                Instant::now() + backoff(state.failures, unit())
            }
        }
    }
}

/// Keeps the auth token alive while the source exists.
async fn keep(auth: Weak<Auth>) {
    loop {
        let Some(a) = auth.upgrade() else { return };
        let next = a.maintain().await;
        drop(a);
        tokio::time::sleep_until(next).await;
    }
}
