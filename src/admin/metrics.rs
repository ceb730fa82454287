//! `GET /metrics`: Prometheus text exposition (format 0.0.4), every name prefixed `sidekey_`.

use super::Shared;
use crate::credential::State;
use crate::transport::body::{ProxyBody, full};
use http::{HeaderValue, Response};
use std::fmt::Write;
use std::time::SystemTime;

const STATES: [State; 7] = [
    State::Fresh,
    State::Refreshing,
    State::Stale,
    State::Expired,
    State::Revoked,
    State::Failed,
    State::RotationOverdue,
];

pub fn render(shared: &Shared) -> Response<ProxyBody> {
    let mut resp = Response::new(full(text(shared)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Label values are config names; escape them anyway.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn text(shared: &Shared) -> String {
    let reg = shared.table.load();
    let mut o = String::with_capacity(4096);

    let _ = writeln!(
        o,
        "# HELP sidekey_requests_total Requests answered, by route and HTTP status."
    );
    let _ = writeln!(o, "# TYPE sidekey_requests_total counter");
    for (route, s) in reg.stats() {
        for (status, n) in s.statuses() {
            let _ = writeln!(
                o,
                "sidekey_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                esc(route)
            );
        }
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_upstream_duration_seconds Time from sending a request upstream to its response headers."
    );
    let _ = writeln!(o, "# TYPE sidekey_upstream_duration_seconds histogram");
    for (route, s) in reg.stats() {
        let (buckets, count, sum) = s.latency();
        let r = esc(route);
        for (le, n) in buckets {
            let _ = writeln!(
                o,
                "sidekey_upstream_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "sidekey_upstream_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "sidekey_upstream_duration_seconds_sum{{route=\"{r}\"}} {sum}"
        );
        let _ = writeln!(
            o,
            "sidekey_upstream_duration_seconds_count{{route=\"{r}\"}} {count}"
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_replays_total Requests replayed once with a refreshed credential after a 401/403."
    );
    let _ = writeln!(o, "# TYPE sidekey_replays_total counter");
    for (route, s) in reg.stats() {
        let n = s.replays.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(o, "sidekey_replays_total{{route=\"{}\"}} {n}", esc(route));
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_route_mode_requests_total Requests answered, by route and by how they reached sidekey (listener, forward, transparent)."
    );
    let _ = writeln!(o, "# TYPE sidekey_route_mode_requests_total counter");
    for (route, s) in reg.stats() {
        for (mode, n) in s.modes.requests() {
            let _ = writeln!(
                o,
                "sidekey_route_mode_requests_total{{route=\"{}\",mode=\"{}\"}} {n}",
                esc(route),
                mode.as_str()
            );
        }
    }

    let creds: Vec<_> = reg.credentials.values().collect();
    let _ = writeln!(
        o,
        "# HELP sidekey_refreshes_total Credential fetches by outcome."
    );
    let _ = writeln!(o, "# TYPE sidekey_refreshes_total counter");
    for c in &creds {
        let st = c.status();
        let n = esc(c.name());
        let _ = writeln!(
            o,
            "sidekey_refreshes_total{{credential=\"{n}\",outcome=\"success\"}} {}",
            st.refreshes_ok
        );
        let _ = writeln!(
            o,
            "sidekey_refreshes_total{{credential=\"{n}\",outcome=\"failure\"}} {}",
            st.refreshes_failed
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_credential_rotations_total New values published after the first."
    );
    let _ = writeln!(o, "# TYPE sidekey_credential_rotations_total counter");
    for c in &creds {
        let _ = writeln!(
            o,
            "sidekey_credential_rotations_total{{credential=\"{}\"}} {}",
            esc(c.name()),
            c.status().rotations
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_credential_expiry_seconds Seconds until the current value expires (absent: no expiry)."
    );
    let _ = writeln!(o, "# TYPE sidekey_credential_expiry_seconds gauge");
    for c in &creds {
        if let Some(exp) = c.peek().and_then(|s| s.expires_at) {
            let secs = match exp.duration_since(SystemTime::now()) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            let _ = writeln!(
                o,
                "sidekey_credential_expiry_seconds{{credential=\"{}\"}} {secs:.3}",
                esc(c.name())
            );
        }
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_upstream_rejections_total 401/403 answers to requests carrying the credential."
    );
    let _ = writeln!(o, "# TYPE sidekey_upstream_rejections_total counter");
    for c in &creds {
        let _ = writeln!(
            o,
            "sidekey_upstream_rejections_total{{credential=\"{}\"}} {}",
            esc(c.name()),
            c.rejections()
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_credential_uses_total Requests forwarded with the credential."
    );
    let _ = writeln!(o, "# TYPE sidekey_credential_uses_total counter");
    for c in &creds {
        let _ = writeln!(
            o,
            "sidekey_credential_uses_total{{credential=\"{}\"}} {}",
            esc(c.name()),
            c.uses()
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_credential_state 1 for the state each credential is in."
    );
    let _ = writeln!(o, "# TYPE sidekey_credential_state gauge");
    for c in &creds {
        let current = c.state();
        for s in STATES {
            let v = u8::from(s == current);
            let _ = writeln!(
                o,
                "sidekey_credential_state{{credential=\"{}\",state=\"{}\"}} {v}",
                esc(c.name()),
                s.as_str()
            );
        }
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_credential_rotation_overdue 1 when the value is older than its max_age."
    );
    let _ = writeln!(o, "# TYPE sidekey_credential_rotation_overdue gauge");
    for c in &creds {
        let v = u8::from(c.peek().is_some_and(|s| c.is_overdue(&s)));
        let _ = writeln!(
            o,
            "sidekey_credential_rotation_overdue{{credential=\"{}\"}} {v}",
            esc(c.name())
        );
    }
    let _ = writeln!(
        o,
        "# HELP sidekey_credential_previous_value_still_valid 1 when the revocation probe found the previous value still accepted upstream."
    );
    let _ = writeln!(
        o,
        "# TYPE sidekey_credential_previous_value_still_valid gauge"
    );
    for c in &creds {
        let v = u8::from(c.status().previous_value_still_valid.is_some());
        let _ = writeln!(
            o,
            "sidekey_credential_previous_value_still_valid{{credential=\"{}\"}} {v}",
            esc(c.name())
        );
    }

    let _ = writeln!(
        o,
        "# HELP sidekey_config_reload_ok 0 when the last config reload was refused (the running config stays)."
    );
    let _ = writeln!(o, "# TYPE sidekey_config_reload_ok gauge");
    let ok = u8::from(shared.reload_error.lock().is_none());
    let _ = writeln!(o, "sidekey_config_reload_ok {ok}");
    connections(&mut o, shared);
    crate::metrics::PROXY.render(&mut o);
    streams(&mut o, shared);
    o
}

/// Upgraded connections (WebSocket) and long streams (HTTP/2, SSE), per route.
fn streams(o: &mut String, shared: &Shared) {
    use crate::metrics::StreamStats;
    use std::sync::atomic::Ordering::Relaxed;
    let reg = shared.table.load();
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&StreamStats) -> u64,
    );
    let series: [Series; 7] = [
        (
            "upgrades_total",
            "counter",
            "Upgrades the upstream accepted (101), WebSocket and others",
            |s| s.upgrades.load(Relaxed),
        ),
        (
            "upgrades_open",
            "gauge",
            "Upgraded connections joined now",
            |s| s.upgrades_open.load(Relaxed),
        ),
        (
            "upgrades_idle_closed_total",
            "counter",
            "Upgraded connections closed at upgrade_idle_timeout",
            |s| s.idle_closed.load(Relaxed),
        ),
        (
            "streams_ended_total",
            "counter",
            "Long streams (HTTP/2 exchanges, server-sent events) that ended",
            |s| s.streams_ended.load(Relaxed),
        ),
        (
            "streams_cut_total",
            "counter",
            "Long streams that ended before their last byte (cancelled or failed)",
            |s| s.streams_cut.load(Relaxed),
        ),
        (
            "stream_bytes_up_total",
            "counter",
            "Bytes from the app to the upstream on upgraded connections and long streams",
            |s| s.bytes_up.load(Relaxed),
        ),
        (
            "stream_bytes_down_total",
            "counter",
            "Bytes from the upstream to the app on upgraded connections and long streams",
            |s| s.bytes_down.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(o, "# HELP sidekey_{name} {help}, by route.");
        let _ = writeln!(o, "# TYPE sidekey_{name} {kind}");
        for (route, s) in reg.stats() {
            let n = value(&s.streams);
            let _ = writeln!(o, "sidekey_{name}{{route=\"{}\"}} {n}", esc(route));
        }
    }
}

/// Connections held and refused, per route listener and for the admin listener.
fn connections(o: &mut String, shared: &Shared) {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = shared.table.load();
    let admin = &shared.admin_connections;
    for (name, kind, help) in [
        ("open", "gauge", "Connections held now"),
        (
            "refused_total",
            "counter",
            "Connections refused past max_connections",
        ),
    ] {
        let _ = writeln!(
            o,
            "# HELP sidekey_connections_{name} {help}, by route listener."
        );
        let _ = writeln!(o, "# TYPE sidekey_connections_{name} {kind}");
        for (route, s) in reg.stats() {
            let c = &s.connections;
            let n = match name {
                "open" => c.open.load(Relaxed),
                _ => c.refused.load(Relaxed),
            };
            let _ = writeln!(
                o,
                "sidekey_connections_{name}{{route=\"{}\"}} {n}",
                esc(route)
            );
        }
        let _ = writeln!(
            o,
            "# HELP sidekey_admin_connections_{name} {help}, on the admin listener."
        );
        let _ = writeln!(o, "# TYPE sidekey_admin_connections_{name} {kind}");
        let n = match name {
            "open" => admin.open.load(Relaxed),
            _ => admin.refused.load(Relaxed),
        };
        let _ = writeln!(o, "sidekey_admin_connections_{name} {n}");
    }
    let _ = writeln!(
        o,
        "# HELP sidekey_admin_requests_refused_total Admin requests refused (a DNS-rebinding name, a cross-site browser request, a missing or wrong token), by error code."
    );
    let _ = writeln!(o, "# TYPE sidekey_admin_requests_refused_total counter");
    for (code, n) in shared.refused_by_error.lock().iter() {
        let _ = writeln!(
            o,
            "sidekey_admin_requests_refused_total{{error=\"{}\"}} {n}",
            esc(code)
        );
    }
}
