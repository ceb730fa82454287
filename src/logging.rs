//! Log setup: tracing to stderr, as text or JSON, filtered by `RUST_LOG` or `[log] level`.

use crate::config::{LogConfig, LogFormat, log_filter};
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

pub mod access;
mod clock;
mod json;
mod text;
pub use clock::Clock;
pub use json::JsonLines;
pub use text::TextLines;

/// The target of the access log's lines.
const ACCESS_TARGET: &str = "sidekey::access";

/// Installs the global subscriber. Safe to call once per process.
pub fn init(cfg: &LogConfig) {
    let (directives, filter) = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| log_filter(&v).ok().map(|f| (v, f)))
        .or_else(|| log_filter(&cfg.level).ok().map(|f| (cfg.level.clone(), f)))
        .unwrap_or_else(|| ("info".into(), EnvFilter::new("info")));
    let filter = quiet_watchers(filter);
    // Colours only for a person at a terminal: escape codes in a log file
    // or a container log are noise, and cost about half of an access-log line.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_timer(Clock)
        .with_writer(std::io::stderr);
    // Span and field directives (`[...]`) can pick access lines by their
    // values: then every line goes through the subscriber to be judged.
    if !directives.contains('[') {
        match (cfg.format, ansi) {
            (LogFormat::Json, _) => access::install(access::Format::Json),
            (LogFormat::Text, false) => access::install(access::Format::Text),
            (LogFormat::Text, true) => {}
        }
    }
    let _ = match (cfg.format, ansi) {
        (LogFormat::Json, _) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .event_format(JsonLines::new(Clock))
            .try_init(),
        (LogFormat::Text, true) => builder.try_init(),
        (LogFormat::Text, false) => builder
            .fmt_fields(PlainFields)
            .event_format(TextLines::new(Clock))
            .try_init(),
    };
}

/// The file watcher logs every event it sees at trace level. With the log
/// written into a watched folder (next to the config, say), each line would
/// be an event that writes another line, without end: its own lines stop at
/// `warn`, whatever the filter asks for.
fn quiet_watchers(filter: EnvFilter) -> EnvFilter {
    match "notify=warn".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Text fields without styling: `message name=value ...`, values in their
/// `Debug` form, as tracing-subscriber's default writes them with colours
/// off. The default still runs every field name through its styling code,
/// about 500 instructions a field: a third of an access-log line.
pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn separate(&mut self) -> fmt::Result {
        match std::mem::replace(&mut self.first, false) {
            true => Ok(()),
            false => self.writer.write_char(' '),
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.record_debug(field, &format_args!("{value}")),
            // What `Debug` writes for text with nothing to escape, without
            // the formatting machinery (about 300 instructions a field).
            _ if is_plain(value) => {
                self.write_field(field, |w| {
                    w.write_char('"')?;
                    w.write_str(value)?;
                    w.write_char('"')
                });
            }
            _ => self.record_debug(field, &value),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write_field(field, |w| w.write_str(Digits::new(value, false).as_str()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write_field(field, |w| {
            w.write_str(Digits::new(value.unsigned_abs(), value < 0).as_str())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write_field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| match field.name() {
            // The message is text: control characters are escaped so a
            // logged string cannot forge a line or drive a terminal.
            "message" => write!(Escaping(&mut self.writer), "{value:?}"),
            name => write!(
                self.writer,
                "{}={value:?}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        });
    }
}

impl PlainVisitor<'_> {
    /// `name=` and the value `write` writes, as `record_debug` would.
    fn write_field(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        self.result = self.separate().and_then(|()| {
            self.writer
                .write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char('=')?;
            write(&mut self.writer)
        });
    }
}

/// Printable ASCII with no `"` or `\\`: text whose `Debug` form is itself in quotes.
fn is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// An integer in decimal, as `Debug` and `Display` write it.
struct Digits {
    buf: [u8; 21],
    start: usize,
}

impl Digits {
    fn new(mut n: u64, negative: bool) -> Self {
        let mut buf = [b'-'; 21];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            start -= 1; // buf[start] is already '-'
        }
        Digits { buf, start }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or_default()
    }
}

/// Writes through, with control characters as `\u{..}` escapes.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c.is_control() && c != '\t') {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            write!(self.0, "\\u{{{:x}}}", u32::from(c))?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Mutex;
    use std::sync::Arc;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::time::FormatTime;

    #[derive(Clone, Default)]
    pub(super) struct Buf(pub(super) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// A timer that always writes the same, so lines compare whole.
    #[derive(Clone)]
    pub(super) struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-01T08:00:00.123456Z")
        }
    }

    /// Access events as the proxy writes them, odd values, another target, one in a span.
    pub(super) fn access_events() {
        tracing::info!(
            target: "sidekey::access",
            route = "stripe",
            mode = "listener",
            original_dst = None::<tracing::field::DisplayValue<&str>>,
            method = "GET",
            path = "/v1/charges",
            status = 200u16,
            duration_us = 412u64,
            credential = "stripe",
            fingerprint = Some("sha256:ab12"),
            replayed = false,
            error = None::<&str>,
        );
        tracing::warn!(
            target: "sidekey::access",
            route = "r\"\\\n\u{1}é",
            original_dst = tracing::field::display("10.0.0.1:443"),
            n = -42i64,
            min = i64::MIN,
            max = u64::MAX,
            f = 1.5f64,
            inf = f64::INFINITY,
            dbg = ?vec!["a\"b"],
            empty = "",
            yes = true,
            "stream ended"
        );
        tracing::info!(route = "r", "route listening");
        let span = tracing::info_span!("outer", k = 1);
        let _in = span.enter();
        tracing::info!(target: "sidekey::access", route = "in a span");
    }

    fn events() {
        tracing::info!(
            target: "sidekey::access",
            route = "stripe",
            method = "GET",
            path = "/v1/charges",
            status = 200u16,
            duration_us = 412u64,
            fingerprint = Some("sha256:ab12"),
            replayed = false,
            error = None::<&str>,
        );
        tracing::warn!(route = "r", error = %"upstream said \"no\"", "accept failed");
        tracing::info!(r#type = "rotated", "credential rotated");
        tracing::info!(
            n = -42i64,
            min = i64::MIN,
            zero = 0u64,
            max = u64::MAX,
            quoted = "a\"b\\c",
            other = "é \u{7} ~",
            empty = "",
            yes = true,
            no = false,
        );
    }

    /// The lines of `events()` without their timestamps, with our fields or the default's.
    fn lines(plain: bool) -> Vec<String> {
        let buf = Buf::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(buf.clone());
        match plain {
            true => {
                tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), events)
            }
            false => tracing::subscriber::with_default(builder.finish(), events),
        }
        let text = String::from_utf8(buf.0.lock().clone()).unwrap();
        text.lines()
            .map(|l| l.split_once(' ').unwrap().1.to_owned())
            .collect()
    }

    #[test]
    fn plain_fields_write_what_the_default_writes_without_colours() {
        let ours = lines(true);
        assert_eq!(ours, lines(false));
        assert_eq!(ours.len(), 4);
        assert!(ours[0].ends_with(
            r#"route="stripe" method="GET" path="/v1/charges" status=200 duration_us=412 fingerprint="sha256:ab12" replayed=false"#
        ), "{}", ours[0]);
    }

    #[test]
    fn control_characters_in_a_message_are_escaped() {
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(buf.clone())
            .fmt_fields(PlainFields)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!("forged\nline \x1b[31mred\x1b[0m\ttab");
        });
        let text = String::from_utf8(buf.0.lock().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(r"forged\u{a}line \u{1b}[31mred\u{1b}[0m	tab"),
            "{text}"
        );
    }
}
