//! Access-log lines in text written straight into the line buffer: byte for byte what tracing-subscriber's full format writes without colours, without its styling wrappers and `write!` calls (about 1k instructions a line). Every other event, and an access event inside a span, goes to that format.

use super::{ACCESS_TARGET, PlainFields};
use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The text event format without colours: access lines here, the rest by `inner`.
pub struct TextLines<T> {
    inner: Format<Full, T>,
    timer: T,
}

impl<T: FormatTime + Clone> TextLines<T> {
    /// `timer` writes the timestamps of both paths.
    pub fn new(timer: T) -> Self {
        TextLines {
            inner: tracing_subscriber::fmt::format()
                .with_ansi(false)
                .with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T> FormatEvent<S, N> for TextLines<T>
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
        if meta.target() != ACCESS_TARGET
            || writer.has_ansi_escapes()
            || event.parent().is_some()
            || ctx.lookup_current().is_some()
        {
            return self.inner.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => " INFO",
            Level::WARN => " WARN",
            _ => "ERROR",
        })?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        PlainFields.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
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
            .with_ansi(false)
            .with_timer(Fixed)
            .fmt_fields(PlainFields);
        match ours {
            true => tracing::subscriber::with_default(
                builder.event_format(TextLines::new(Fixed)).finish(),
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
            "2026-12-01T08:00:00.123456Z  INFO sidekey::access: route=\"stripe\" mode=\"listener\" method=\"GET\" path=\"/v1/charges\" status=200 duration_us=412 credential=\"stripe\" fingerprint=\"sha256:ab12\" replayed=false\n"
        ), "{ours}");
    }
}
