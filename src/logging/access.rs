//! The per-request access line: formatted by sidekey into a per-thread buffer and written to stderr with one `write`, as nginx writes its access log, instead of going through the subscriber's event path.
//!
//! The line is byte for byte what the subscriber writes for the same event
//! (text without colours, or flattened JSON). sidekey writes it itself only
//! where nothing could tell the difference: the process's own log setup
//! ([`super::init`]) installed the direct writer, the filter decides by
//! target and level alone (no `[span{field=...}]` directives), and no span
//! is entered. Anywhere else, a test's subscriber say, the line is the
//! tracing event it always was.

use super::json::write_str_contents;
use super::{ACCESS_TARGET, Digits, is_plain};
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// One proxied request, as the access log records it. Optional fields are left out when absent.
pub struct Access<'a> {
    pub route: &'a str,
    pub mode: &'static str,
    pub original_dst: Option<SocketAddr>,
    pub method: &'a str,
    /// The path without the query.
    pub path: &'a str,
    pub status: u16,
    pub duration_us: u64,
    pub credential: &'a str,
    pub fingerprint: Option<&'a str>,
    pub replayed: bool,
    /// The `sidekey-error` code, when sidekey answered itself.
    pub error: Option<&'a str>,
}

/// The format the direct writer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

static DIRECT: OnceLock<Format> = OnceLock::new();

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

/// Lets [`log`] write lines itself, in `format`. Called once by the log setup.
pub(super) fn install(format: Format) {
    let _ = DIRECT.set(format);
}

/// Writes the access line of one request, if the log filter lets
/// `sidekey::access` lines through at `INFO`.
pub fn log(a: &Access<'_>) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    match DIRECT.get() {
        Some(format) if tracing::Span::current().is_none() => {
            let written = LINE.with(|line| {
                let mut line = line.try_borrow_mut().ok()?;
                line.clear();
                render(*format, &super::Clock, a, &mut line).ok()?;
                // One `write` a line, unbuffered, as the subscriber writes
                // its own lines to stderr: nothing is held back at a crash.
                Some(std::io::stderr().write_all(line.as_bytes()))
            });
            // A full disk or a closed stderr loses the line, as it would the
            // subscriber's; only a line that could not be formatted here
            // (never expected) goes the event's way.
            if written.is_none() {
                event(a);
            }
        }
        _ => event(a),
    }
}

/// The access line as a tracing event, for any subscriber.
fn event(a: &Access<'_>) {
    tracing::info!(
        target: "sidekey::access",
        route = a.route,
        mode = a.mode,
        original_dst = a.original_dst.map(tracing::field::display),
        method = a.method,
        path = a.path,
        status = a.status,
        duration_us = a.duration_us,
        credential = a.credential,
        fingerprint = a.fingerprint,
        replayed = a.replayed,
        error = a.error,
    );
}

/// Appends the whole line, newline included, to `out`.
fn render(
    format: Format,
    timer: &impl FormatTime,
    a: &Access<'_>,
    out: &mut String,
) -> fmt::Result {
    match format {
        Format::Text => text(timer, a, out),
        Format::Json => json(timer, a, out),
    }
}

/// `TIME  INFO sidekey::access: route="r" ...`, as `TextLines` writes it.
fn text(timer: &impl FormatTime, a: &Access<'_>, out: &mut String) -> fmt::Result {
    timer.format_time(&mut Writer::new(out))?;
    out.push_str("  INFO sidekey::access: ");
    let quoted = |out: &mut String, name: &str, value: &str| -> fmt::Result {
        out.push_str(name);
        if is_plain(value) {
            out.push('"');
            out.push_str(value);
            out.push('"');
            Ok(())
        } else {
            write!(out, "{value:?}")
        }
    };
    quoted(out, "route=", a.route)?;
    quoted(out, " mode=", a.mode)?;
    if let Some(dst) = a.original_dst {
        write!(out, " original_dst={dst}")?;
    }
    quoted(out, " method=", a.method)?;
    quoted(out, " path=", a.path)?;
    out.push_str(" status=");
    out.push_str(Digits::new(a.status.into(), false).as_str());
    out.push_str(" duration_us=");
    out.push_str(Digits::new(a.duration_us, false).as_str());
    quoted(out, " credential=", a.credential)?;
    if let Some(f) = a.fingerprint {
        quoted(out, " fingerprint=", f)?;
    }
    out.push_str(match a.replayed {
        true => " replayed=true",
        false => " replayed=false",
    });
    if let Some(e) = a.error {
        quoted(out, " error=", e)?;
    }
    out.push('\n');
    Ok(())
}

/// `{"timestamp":...,"target":"sidekey::access"}`, as `JsonLines` writes it.
fn json(timer: &impl FormatTime, a: &Access<'_>, out: &mut String) -> fmt::Result {
    out.push_str("{\"timestamp\":\"");
    let start = out.len();
    timer.format_time(&mut Writer::new(out))?;
    if out[start..]
        .bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\')
    {
        let stamp = out.split_off(start);
        write_str_contents(out, &stamp)?;
    }
    out.push_str("\",\"level\":\"INFO\"");
    json_field(out, ",\"route\":", a.route)?;
    json_field(out, ",\"mode\":", a.mode)?;
    if let Some(dst) = a.original_dst {
        write!(out, ",\"original_dst\":\"{dst}\"")?;
    }
    json_field(out, ",\"method\":", a.method)?;
    json_field(out, ",\"path\":", a.path)?;
    out.push_str(",\"status\":");
    out.push_str(Digits::new(a.status.into(), false).as_str());
    out.push_str(",\"duration_us\":");
    out.push_str(Digits::new(a.duration_us, false).as_str());
    json_field(out, ",\"credential\":", a.credential)?;
    if let Some(f) = a.fingerprint {
        json_field(out, ",\"fingerprint\":", f)?;
    }
    out.push_str(match a.replayed {
        true => ",\"replayed\":true",
        false => ",\"replayed\":false",
    });
    if let Some(e) = a.error {
        json_field(out, ",\"error\":", e)?;
    }
    out.push_str(",\"target\":\"sidekey::access\"}\n");
    Ok(())
}

/// `key` (already written as `,"name":`) and the value as a JSON string.
fn json_field(out: &mut String, key: &str, value: &str) -> fmt::Result {
    out.push_str(key);
    out.push('"');
    write_str_contents(out, value)?;
    out.push('"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::tests::{Buf, Fixed};
    use crate::logging::{JsonLines, PlainFields, TextLines};

    fn cases() -> Vec<Access<'static>> {
        let plain = Access {
            route: "stripe",
            mode: "listener",
            original_dst: None,
            method: "GET",
            path: "/v1/charges",
            status: 200,
            duration_us: 412,
            credential: "stripe",
            fingerprint: Some("sha256:ab12"),
            replayed: false,
            error: None,
        };
        vec![
            Access {
                original_dst: Some("10.0.0.1:443".parse().unwrap()),
                error: Some("upstream_unreachable"),
                replayed: true,
                fingerprint: None,
                status: 502,
                duration_us: u64::MAX,
                ..plain
            },
            Access {
                route: "r\"\\\n\u{1}é",
                path: "/caf\u{e9}/\"q\"\\\t\u{7f}",
                method: "PATCH",
                credential: "",
                original_dst: Some("[2001:db8::1]:8443".parse().unwrap()),
                ..plain
            },
            plain,
        ]
    }

    /// The lines the subscriber writes for `cases()` through the event path.
    fn through_events(json: bool) -> String {
        let buf = Buf::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .with_timer(Fixed);
        let run = || cases().iter().for_each(event);
        match json {
            true => tracing::subscriber::with_default(
                builder
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .event_format(JsonLines::new(Fixed))
                    .finish(),
                run,
            ),
            false => tracing::subscriber::with_default(
                builder
                    .fmt_fields(PlainFields)
                    .event_format(TextLines::new(Fixed))
                    .finish(),
                run,
            ),
        }
        String::from_utf8(buf.0.lock().clone()).unwrap()
    }

    fn direct(format: Format) -> String {
        let mut out = String::new();
        for a in cases() {
            render(format, &Fixed, &a, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn text_lines_are_what_the_subscriber_writes() {
        let ours = direct(Format::Text);
        assert_eq!(ours, through_events(false));
        assert_eq!(ours.lines().count(), 3, "{ours}");
        assert!(ours.ends_with(
            "2026-12-01T08:00:00.123456Z  INFO sidekey::access: route=\"stripe\" mode=\"listener\" method=\"GET\" path=\"/v1/charges\" status=200 duration_us=412 credential=\"stripe\" fingerprint=\"sha256:ab12\" replayed=false\n"
        ), "{ours}");
    }

    #[test]
    fn json_lines_are_what_the_subscriber_writes() {
        let ours = direct(Format::Json);
        assert_eq!(ours, through_events(true));
        assert_eq!(ours.lines().count(), 3, "{ours}");
        for line in ours.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(ours.starts_with(
            r#"{"timestamp":"2026-12-01T08:00:00.123456Z","level":"INFO","route":"stripe","mode":"listener","original_dst":"10.0.0.1:443","method":"GET","path":"/v1/charges","status":502,"duration_us":18446744073709551615,"credential":"stripe","replayed":true,"error":"upstream_unreachable","target":"sidekey::access"}"#
        ), "{ours}");
    }

    #[test]
    fn without_the_direct_writer_the_line_is_an_event() {
        // No `install` in unit tests: a test's subscriber hears the line.
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(sub, || log(&cases()[2]));
        let text = String::from_utf8(buf.0.lock().clone()).unwrap();
        assert!(text.contains("sidekey::access: route=\"stripe\""), "{text}");
    }
}
