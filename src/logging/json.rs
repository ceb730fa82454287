//! Access-log lines in JSON written straight into the line buffer: byte for byte what tracing-subscriber's flattened JSON format writes, without the serde adaptor it writes through (about 700 instructions a field). Every other event, and an access event inside a span, goes to that format.

use super::{ACCESS_TARGET, Digits};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format: access lines here, the rest by `inner`.
pub struct JsonLines<T> {
    inner: Format<format::Json, T>,
    timer: T,
}

impl<T: FormatTime + Clone> JsonLines<T> {
    /// `timer` writes the timestamps of both paths.
    pub fn new(timer: T) -> Self {
        JsonLines {
            inner: format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_timer(timer.clone()),
            timer,
        }
    }
}

fn format() -> Format {
    tracing_subscriber::fmt::format()
}

impl<S, N, T> FormatEvent<S, N> for JsonLines<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // Inside a span the default writes the span list too: leave it that.
        if meta.target() != ACCESS_TARGET
            || event.parent().is_some()
            || ctx.lookup_current().is_some()
        {
            return self.inner.format_event(ctx, writer, event);
        }
        writer.write_str("{\"timestamp\":\"")?;
        let mut stamp = String::new();
        self.timer.format_time(&mut Writer::new(&mut stamp))?;
        write_str_contents(&mut writer, &stamp)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// `"value"` as serde_json writes a string.
fn write_string(w: &mut Writer<'_>, value: &str) -> fmt::Result {
    w.write_char('"')?;
    write_str_contents(w, value)?;
    w.write_char('"')
}

/// A string's contents as serde_json escapes them (the access line's direct writer uses it too).
pub(super) fn write_str_contents(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return w.write_str(value);
    }
    let quoted = serde_json::to_string(value).map_err(|_| fmt::Error)?;
    w.write_str(quoted.get(1..quoted.len() - 1).unwrap_or_default())
}

/// `,"name":value` for each field, as tracing-serde's map visitor writes them.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = self
            .writer
            .write_char(',')
            .and_then(|()| write_string(self.writer, field.name()))
            .and_then(|()| self.writer.write_char(':'))
            .and_then(|()| value(self.writer));
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_string(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| w.write_str(Digits::new(value, false).as_str()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| {
            w.write_str(Digits::new(value.unsigned_abs(), value < 0).as_str())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, |w| {
            w.write_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?)
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| write_string(w, &format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::tests::{Buf, Fixed, access_events};

    fn lines(ours: bool) -> String {
        let buf = Buf::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_timer(Fixed);
        match ours {
            true => tracing::subscriber::with_default(
                builder.event_format(JsonLines::new(Fixed)).finish(),
                access_events,
            ),
            false => tracing::subscriber::with_default(builder.finish(), access_events),
        }
        String::from_utf8(buf.0.lock().clone()).unwrap()
    }

    #[test]
    fn access_lines_are_what_the_default_writes() {
        let ours = lines(true);
        assert_eq!(ours, lines(false));
        assert_eq!(ours.lines().count(), 4, "{ours}");
        assert!(ours.starts_with(
            r#"{"timestamp":"2026-12-01T08:00:00.123456Z","level":"INFO","route":"stripe","mode":"listener","method":"GET","path":"/v1/charges","status":200,"duration_us":412,"credential":"stripe","fingerprint":"sha256:ab12","replayed":false,"target":"sidekey::access"}"#
        ), "{ours}");
        for line in ours.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }
}
