//! `source = "keyring"`: a value from the operating system's credential store (the Linux kernel keyring, or the desktop's Secret Service), read again on a schedule so `sidekey secret set` rotates it without a restart.

#[cfg_attr(not(feature = "secret-service"), path = "unavailable.rs")]
mod desktop;
#[cfg_attr(not(target_os = "linux"), path = "unavailable.rs")]
mod kernel;

use super::spec::SourceSettings;
use super::{BoxFuture, Issued, Material, Source, SourceError};
use crate::parse::{FieldError, ParseContext, typed};
use crate::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The service name entries are stored under unless the config says otherwise.
pub const DEFAULT_SERVICE: &str = "sidekey";
/// How often the value is read again.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Which credential store holds the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The desktop's Secret Service when this build has it and a session bus
    /// is there (`DBUS_SESSION_BUS_ADDRESS`), else the kernel keyring.
    Auto,
    /// The Linux kernel keyring (keyutils): the session keyring, linked to
    /// the user's persistent keyring. Works without a desktop.
    Kernel,
    /// The freedesktop Secret Service (GNOME Keyring, KWallet).
    SecretService,
}

impl Store {
    fn parse(s: &str) -> Result<Store, String> {
        match s {
            "auto" => Ok(Store::Auto),
            "kernel" => Ok(Store::Kernel),
            "secret-service" => Ok(Store::SecretService),
            other => Err(format!(
                "unknown store `{other}`; use \"auto\", \"kernel\" or \"secret-service\""
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Store::Auto => "auto",
            Store::Kernel => "kernel keyring",
            Store::SecretService => "Secret Service",
        }
    }

    /// The store `auto` stands for here and now.
    fn resolved(self) -> Store {
        match self {
            Store::Auto if secret_service_usable() => Store::SecretService,
            Store::Auto => Store::Kernel,
            s => s,
        }
    }
}

#[cfg(feature = "secret-service")]
fn secret_service_usable() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
}

#[cfg(not(feature = "secret-service"))]
fn secret_service_usable() -> bool {
    false
}

/// One entry of a store: where `sidekey secret set` writes and the source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub store: Store,
    pub service: String,
    pub account: String,
}

impl Place {
    /// A place named on the command line.
    pub fn new(store: &str, service: String, account: String) -> Result<Place, String> {
        Ok(Place {
            store: Store::parse(store)?,
            service,
            account,
        })
    }

    /// `service/account in the STORE`, for messages.
    pub fn shown(&self) -> String {
        format!(
            "{}/{} in the {}",
            self.service,
            self.account,
            self.store.resolved().name()
        )
    }

    /// Reads the value. Blocking.
    pub fn get(&self) -> Result<Secret, String> {
        let got = match self.store.resolved() {
            Store::SecretService => desktop::get(&self.service, &self.account),
            _ => kernel::get(&self.service, &self.account),
        };
        match got {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(format!(
                "no entry {}; store one with `sidekey secret set {}`",
                self.shown(),
                self.account
            )),
            Err(e) => Err(format!("cannot read {}: {e}", self.shown())),
        }
    }

    /// Stores a value, replacing any. Blocking.
    pub fn set(&self, value: &Secret) -> Result<(), String> {
        match self.store.resolved() {
            Store::SecretService => desktop::set(&self.service, &self.account, value),
            _ => kernel::set(&self.service, &self.account, value),
        }
        .map_err(|e| format!("cannot store {}: {e}", self.shown()))
    }

    /// Deletes the entry. Blocking.
    pub fn remove(&self) -> Result<(), String> {
        let removed = match self.store.resolved() {
            Store::SecretService => desktop::remove(&self.service, &self.account),
            _ => kernel::remove(&self.service, &self.account),
        };
        match removed {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("no entry {}", self.shown())),
            Err(e) => Err(format!("cannot delete {}: {e}", self.shown())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringSpec {
    pub place: Place,
    pub interval: Duration,
}

pub struct KeyringSource {
    spec: KeyringSpec,
}

impl Source for KeyringSource {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let place = self.spec.place.clone();
            let secret = tokio::task::spawn_blocking(move || place.get())
                .await
                .map_err(|e| SourceError::new(format!("the keyring read did not finish: {e}")))?
                .map_err(SourceError::new)?;
            // The store keeps no date: a value is as old as the first read that saw it.
            let issued_at = match previous.and_then(|p| p.material.token().map(|t| (p, t))) {
                Some((p, old)) if old.ct_eq(secret.expose().as_bytes()) => p.issued_at,
                _ => SystemTime::now(),
            };
            Ok(Issued {
                material: Material::Token(secret),
                issued_at,
                expires_at: None,
                lease: None,
            })
        })
    }

    fn reread_every(&self) -> Option<Duration> {
        Some(self.spec.interval)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringForm {
    account: String,
    service: Option<String>,
    store: Option<String>,
    interval: Option<String>,
}

/// Parses `source = "keyring"`'s keys.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<KeyringSpec, FieldError> {
    let f: KeyringForm = typed(table)?;
    if f.account.is_empty() {
        return Err(FieldError::on("account", "give the entry's account name"));
    }
    let store = Store::parse(f.store.as_deref().unwrap_or("auto"))
        .map_err(|m| FieldError::on("store", m))?;
    if store == Store::SecretService && !cfg!(feature = "secret-service") {
        return Err(FieldError::on(
            "store",
            "this build has no Secret Service support (cargo feature `secret-service`)",
        ));
    }
    Ok(KeyringSpec {
        place: Place {
            store,
            service: f.service.unwrap_or_else(|| DEFAULT_SERVICE.into()),
            account: f.account,
        },
        interval: cx
            .duration("interval", f.interval.as_deref())?
            .unwrap_or(DEFAULT_INTERVAL),
    })
}

impl SourceSettings for KeyringSpec {
    fn kind(&self) -> &'static str {
        "keyring"
    }

    fn build(&self) -> Arc<dyn Source> {
        Arc::new(KeyringSource { spec: self.clone() })
    }

    fn describe(&self) -> String {
        let p = &self.place;
        format!(
            "keyring {}/{} ({}), read every {}",
            p.service,
            p.account,
            p.store.name(),
            humantime::format_duration(self.interval)
        )
    }

    fn probe(&self) -> Result<(), FieldError> {
        self.place
            .get()
            .map(drop)
            .map_err(|m| FieldError::on("account", m))
    }
}
