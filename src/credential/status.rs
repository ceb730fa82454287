//! A credential's lifecycle state and counters, as the inventory reports them.

use serde::Serialize;
use std::time::SystemTime;

/// The states of DESIGN.md's inventory record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Fresh,
    Refreshing,
    /// Refresh failing, value still valid.
    Stale,
    Expired,
    Revoked,
    Failed,
    RotationOverdue,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Refreshing => "refreshing",
            State::Stale => "stale",
            State::Expired => "expired",
            State::Revoked => "revoked",
            State::Failed => "failed",
            State::RotationOverdue => "rotation_overdue",
        }
    }
}

/// What the refresher knows that the snapshot does not. Behind a mutex:
/// written by the refresher, read by the admin API, never by requests.
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub in_flight: bool,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_refresh_at: Option<SystemTime>,
    pub next_refresh_at: Option<SystemTime>,
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    /// Values published after the first.
    pub rotations: u64,
    /// Revoked and no replacement published yet.
    pub revoked: bool,
    /// The expiry of the current value has been announced.
    pub expiry_announced: bool,
    /// The value whose `rotation_overdue` event was emitted (once per value).
    pub overdue_announced: Option<crate::secret::Fingerprint>,
    /// Set when a revocation probe found the previous value still accepted.
    pub previous_value_still_valid: Option<PreviousStillValid>,
    /// The last rotations, failures and revocations, for the admin page.
    pub timeline: super::timeline::Timeline,
    /// The source's own state for the inventory ([`super::Source::detail`]), never a secret.
    pub source_detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviousStillValid {
    pub fingerprint: String,
    pub route: String,
    pub status: u16,
    pub checked_at: String,
}
