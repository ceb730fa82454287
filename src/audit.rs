//! Structured credential lifecycle events, on their own tracing target (`sidekey::audit`). Never a value.

use crate::secret::Fingerprint;

pub const TARGET: &str = "sidekey::audit";

/// How the request behind an event reached sidekey: the access log's `mode`
/// and, for a redirected connection, where it was going.
#[derive(Debug, Clone, Copy)]
pub struct Via {
    pub mode: &'static str,
    pub original_dst: Option<std::net::SocketAddr>,
}

impl Via {
    pub fn of(mode: &'static str, original_dst: Option<std::net::SocketAddr>) -> Via {
        Via { mode, original_dst }
    }
}

pub fn issued(credential: &str, fp: Fingerprint, expires_in_s: Option<u64>) {
    tracing::info!(target: TARGET, event = "issued", credential, fingerprint = %fp, expires_in_s, "credential issued");
}

pub fn rotated(credential: &str, old: Fingerprint, new: Fingerprint, expires_in_s: Option<u64>) {
    tracing::info!(target: TARGET, event = "rotated", credential, old_fingerprint = %old, fingerprint = %new, expires_in_s, "credential rotated");
}

pub fn refresh_failed(credential: &str, error: &str, failures: u32, retry_in_ms: u64) {
    tracing::warn!(target: TARGET, event = "refresh_failed", credential, error, failures, retry_in_ms, "credential refresh failed; keeping the last good value while it is valid");
}

pub fn expired(credential: &str, fp: Fingerprint) {
    tracing::error!(target: TARGET, event = "expired", credential, fingerprint = %fp, "credential expired; requests are refused until a new value arrives");
}

pub fn revoked(credential: &str, fp: Fingerprint, at_source: &str) {
    tracing::warn!(target: TARGET, event = "revoked", credential, fingerprint = %fp, at_source, "credential revoked");
}

pub fn rejected_by_upstream(
    credential: &str,
    route: &str,
    fp: Fingerprint,
    status: u16,
    refresh_requested: bool,
    via: Via,
) {
    let original_dst = via.original_dst.map(|a| a.to_string());
    tracing::warn!(target: TARGET, event = "rejected_by_upstream", credential, route, fingerprint = %fp, status, refresh_requested, mode = via.mode, original_dst, "upstream rejected the credential");
}

pub fn previous_value_still_valid(credential: &str, route: &str, fp: Fingerprint, status: u16) {
    tracing::error!(target: TARGET, event = "previous_value_still_valid", credential, route, fingerprint = %fp, status, "rotation did not retire the previous value: the upstream still accepts it");
}

pub fn rotation_overdue(credential: &str, fp: Fingerprint, age_s: u64, max_age_s: u64) {
    tracing::warn!(target: TARGET, event = "rotation_overdue", credential, fingerprint = %fp, age_s, max_age_s, "credential is older than its rotation policy allows");
}

pub fn upstream_rejects_fresh_values(credential: &str, generation: u64) {
    tracing::warn!(target: TARGET, event = "upstream_rejects_fresh_values", credential, generation, "the upstream rejected a value fetched after its earlier rejection; rejections now trigger refreshes with backoff, and go to the app without a refresh in between");
}

/// `suppressed`: refusals on this route since the last event that were not
/// logged (at most one event per route a second).
pub fn caller_refused(
    route: &str,
    reason: &str,
    peer: Option<std::net::SocketAddr>,
    via: Via,
    suppressed: u64,
) {
    let peer = peer.map(|p| p.to_string());
    let original_dst = via.original_dst.map(|a| a.to_string());
    tracing::warn!(target: TARGET, event = "caller_refused", route, reason, peer, mode = via.mode, original_dst, suppressed, "a caller the route does not admit was refused");
}

/// A connection redirected to `[transparent] listen` was refused (never a
/// credential in it); `suppressed` as for [`caller_refused`], per listener.
pub fn transparent_refused(
    original_dst: Option<std::net::SocketAddr>,
    host: Option<&str>,
    reason: &str,
    peer: Option<std::net::SocketAddr>,
    suppressed: u64,
) {
    let original_dst = original_dst.map(|a| a.to_string());
    let peer = peer.map(|p| p.to_string());
    tracing::warn!(target: TARGET, event = "transparent_refused", mode = "transparent", original_dst, host, reason, peer, suppressed, "a redirected connection was refused");
}
