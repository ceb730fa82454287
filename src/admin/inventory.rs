//! The credential inventory: one record per credential (never the secret), and the refresh/revoke actions.

use super::Shared;
use super::{error, json};
use crate::config::Config;
use crate::credential::{Credential, PreviousStillValid, RouteUse, State};
use crate::metrics::Mode;
use crate::proxy::table::RouteTable;
use crate::transport::body::ProxyBody;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// DESIGN.md's inventory record. Every field is safe to show.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub name: String,
    pub source: String,
    pub routes: Vec<RouteRecord>,
    pub state: String,
    pub fingerprint: Option<String>,
    pub issued_at: Option<String>,
    pub expires_at: Option<String>,
    pub next_refresh_at: Option<String>,
    pub last_refresh_at: Option<String>,
    pub last_error: Option<String>,
    pub rotations: u64,
    pub uses: u64,
    pub last_used_at: Option<String>,
    pub upstream_rejections: u64,
    /// A value fetched after an upstream rejection was rejected too; clears
    /// when a request is accepted.
    #[serde(default)]
    pub upstream_rejects_fresh_values: bool,
    pub max_age_s: Option<u64>,
    pub rotation_overdue: bool,
    pub previous_value_still_valid: Option<serde_json::Value>,
    /// What the source says of its own state (a Vault token's accessor); never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_detail: Option<serde_json::Value>,
    /// The last rotations, failures and revocations, oldest first (bounded, in memory).
    #[serde(default)]
    pub timeline: Vec<TimelineRecord>,
}

/// One entry of a credential's timeline: a fingerprint at most, never the value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineRecord {
    pub at: String,
    pub event: String,
    pub fingerprint: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteRecord {
    pub route: String,
    pub upstream: String,
    pub scopes: Vec<String>,
    /// How the running config serves the route: `listener` (its own
    /// `listen`), `forward` (`[proxy]`), `transparent` (`[transparent]`).
    #[serde(default)]
    pub modes: Vec<String>,
    /// Requests answered, by the mode they came through (every mode listed).
    #[serde(default)]
    pub requests_by_mode: BTreeMap<String, u64>,
    /// Where the last redirected (transparent) connection was going, `address:port`.
    #[serde(default)]
    pub last_original_dst: Option<String>,
    #[serde(default)]
    pub last_original_dst_at: Option<String>,
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How `config` serves the route named `route`.
fn modes(config: &Config, route: &str) -> Vec<String> {
    let Some(rc) = config.routes.iter().find(|r| r.name == route) else {
        return Vec::new();
    };
    let host = rc.host.is_some();
    [
        (Mode::Listener, rc.listen.is_some()),
        (Mode::Forward, host && config.proxy.is_some()),
        (Mode::Transparent, host && config.transparent.is_some()),
    ]
    .into_iter()
    .filter(|(_, served)| *served)
    .map(|(m, _)| m.as_str().to_owned())
    .collect()
}

fn route_record(shared: &Shared, table: &RouteTable, u: RouteUse) -> RouteRecord {
    let stats = table.route(&u.route).map(|r| &r.stats.modes);
    let last = stats.and_then(|s| s.last_original_dst());
    RouteRecord {
        modes: modes(&shared.config.load(), &u.route),
        requests_by_mode: stats
            .map(|s| s.requests())
            .unwrap_or(Mode::ALL.map(|m| (m, 0)))
            .into_iter()
            .map(|(m, n)| (m.as_str().to_owned(), n))
            .collect(),
        last_original_dst: last.map(|(dst, _)| dst.to_string()),
        last_original_dst_at: last.map(|(_, at)| rfc3339(at)),
        route: u.route,
        upstream: u.upstream,
        scopes: u.scopes,
    }
}

pub fn record(shared: &Shared, c: &Credential) -> Record {
    let snap = c.peek();
    let status = c.status();
    let state: State = c.state();
    let table = shared.table.load();
    let routes = c
        .route_uses()
        .into_iter()
        .map(|u| route_record(shared, &table, u))
        .collect();
    Record {
        name: c.name().to_owned(),
        source: c.config.source.kind().to_owned(),
        routes,
        state: state.as_str().to_owned(),
        fingerprint: snap.as_ref().map(|s| s.fingerprint.to_string()),
        issued_at: snap.as_ref().map(|s| rfc3339(s.issued_at)),
        expires_at: snap.as_ref().and_then(|s| s.expires_at).map(rfc3339),
        next_refresh_at: status.next_refresh_at.map(rfc3339),
        last_refresh_at: status.last_refresh_at.map(rfc3339),
        last_error: status.last_error.clone(),
        rotations: status.rotations,
        uses: c.uses(),
        last_used_at: c.last_used_at().map(rfc3339),
        upstream_rejections: c.rejections(),
        upstream_rejects_fresh_values: c.upstream_rejects_fresh_values(),
        max_age_s: c.config.max_age.map(|d| d.as_secs()),
        rotation_overdue: snap.as_ref().is_some_and(|s| c.is_overdue(s)),
        previous_value_still_valid: status
            .previous_value_still_valid
            .as_ref()
            .map(|p: &PreviousStillValid| serde_json::to_value(p).unwrap_or_default()),
        source_detail: status.source_detail.clone(),
        timeline: status
            .timeline
            .entries()
            .map(|e| TimelineRecord {
                at: rfc3339(e.at),
                event: e.event.to_owned(),
                fingerprint: e.fingerprint.map(|f| f.to_string()),
                detail: e.detail.clone(),
            })
            .collect(),
    }
}

pub fn all(shared: &Shared) -> Vec<Record> {
    shared
        .table
        .load()
        .credentials
        .values()
        .map(|c| record(shared, c))
        .collect()
}

pub fn one(shared: &Shared, name: &str) -> Option<Record> {
    shared
        .table
        .load()
        .credentials
        .get(name)
        .map(|c| record(shared, c))
}

pub async fn act(shared: &Shared, name: &str, action: &str) -> Response<ProxyBody> {
    let Some(cred) = shared.table.load().credentials.get(name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no credential named `{name}`"),
        );
    };
    let result = match action {
        "refresh" => cred.refresh_now().await,
        _ => cred.revoke_now().await,
    };
    match result {
        Ok(()) => json(StatusCode::OK, &record(shared, &cred)),
        Err(e) => {
            let body = serde_json::json!({
                "error": { "code": format!("{action}_failed"), "message": e.to_string() },
                "credential": record(shared, &cred),
            });
            json(StatusCode::BAD_GATEWAY, &body)
        }
    }
}
