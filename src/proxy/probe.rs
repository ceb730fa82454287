//! The revocation probe: some time after each rotation, a route's
//! `revocation_check` request is sent upstream with the *previous* value. If
//! the upstream still accepts it, the rotation did not retire anything and the
//! inventory and the audit log say so.

use super::route::{Route, Target};
use super::send::{Outgoing, send};
use crate::audit;
use crate::config::RevocationCheck;
use crate::credential::{PreviousStillValid, Snapshot};
use crate::inject::BodyNeed;
use crate::secret::Fingerprint;
use crate::transport::body::empty;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::task::JoinHandle;

/// Why a probe could not be sent (the verdict is then unknown).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the route has no upstream to probe")]
    NoUpstream,
    #[error("the previous value cannot be rendered: {0}")]
    Render(#[from] crate::inject::RenderError),
    #[error(transparent)]
    Send(#[from] super::ProxyError),
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The upstream refused the previous value with an expected status.
    Retired(u16),
    /// The upstream answered something else: the old value still works.
    StillValid(u16),
}

/// Starts the probe task of a route, if it has a `revocation_check` and a
/// real upstream. It runs until aborted (a reload that changes the route
/// aborts it and starts one for the new route).
pub fn spawn(route: Arc<Route>) -> Option<JoinHandle<()>> {
    let r = &route;
    r.config.revocation_check.as_ref()?;
    if matches!(r.target, Target::StandIn) {
        return None;
    }
    Some(tokio::spawn(watch(route)))
}

/// Waits for each rotation, then `after`, then probes the value it retired.
async fn watch(route: Arc<Route>) {
    let cred = route.credential.clone();
    let mut generations = cred.subscribe();
    generations.borrow_and_update();
    let mut probed: Option<Fingerprint> = None;
    while generations.changed().await.is_ok() {
        let Some(after) = route.config.revocation_check.as_ref().map(|c| c.after) else {
            return;
        };
        if cred.previous().is_none() {
            continue;
        }
        tokio::time::sleep(after).await;
        // Another rotation may have happened meanwhile: probe what is previous now.
        let Some(previous) = cred.previous() else {
            continue;
        };
        let is_current = cred
            .peek()
            .is_some_and(|c| c.fingerprint == previous.fingerprint);
        if probed == Some(previous.fingerprint) || is_current {
            continue;
        }
        probed = Some(previous.fingerprint);
        let current = route.clone();
        let Some(check) = current.config.revocation_check.clone() else {
            return;
        };
        match probe(&current, &check, &previous).await {
            Ok(verdict) => record(&current, &previous, verdict),
            Err(e) => tracing::warn!(
                route = current.name(),
                credential = cred.name(),
                fingerprint = %previous.fingerprint,
                error = %e,
                "revocation probe could not be sent"
            ),
        }
    }
}

/// Sends the route's probe request with `previous`'s value.
pub async fn probe(
    route: &Route,
    check: &RevocationCheck,
    previous: &Snapshot,
) -> Result<Verdict, ProbeError> {
    if matches!(route.target, Target::StandIn) {
        return Err(ProbeError::NoUpstream);
    }
    let rendered = route.config.inject.render(&previous.material)?;
    let (path, query) = match check.path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (check.path.clone(), None),
    };
    let mut out = Outgoing {
        method: check.method.clone(),
        path,
        query,
        unchanged: None,
        headers: HeaderMap::new(),
        // The probe's body is empty: its hash, for a form that signs the payload.
        body_sha256: matches!(route.config.inject.body(), BodyNeed::Hash { .. })
            .then(|| hex::encode(Sha256::digest(b""))),
        version: http::Version::HTTP_11,
        upgrade: false,
        extended: false,
    };
    if let Target::Remote { host, .. } = &route.target {
        out.headers.insert(http::header::HOST, host.clone());
    }
    let resp = send(route, &mut out, previous, &rendered, empty()).await?;
    let status = resp.status().as_u16();
    Ok(if check.expect_status.contains(&status) {
        Verdict::Retired(status)
    } else {
        Verdict::StillValid(status)
    })
}

/// Puts a verdict in the inventory and the audit log.
fn record(route: &Route, previous: &Snapshot, verdict: Verdict) {
    let cred = &route.credential;
    match verdict {
        Verdict::StillValid(status) => {
            audit::previous_value_still_valid(
                cred.name(),
                route.name(),
                previous.fingerprint,
                status,
            );
            let found = PreviousStillValid {
                fingerprint: previous.fingerprint.to_string(),
                route: route.name().to_owned(),
                status,
                checked_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            };
            cred.update_status(|s| s.previous_value_still_valid = Some(found));
        }
        Verdict::Retired(status) => {
            tracing::info!(
                target: audit::TARGET,
                event = "previous_value_retired",
                credential = cred.name(),
                route = route.name(),
                fingerprint = %previous.fingerprint,
                status,
                "the upstream refuses the previous value"
            );
            // A finding about an older value is resolved once a later probe passes.
            cred.update_status(|s| s.previous_value_still_valid = None);
        }
    }
}
