//! The log timestamp, written as tracing-subscriber's `SystemTime` timer writes it (RFC 3339, UTC, microseconds), with the date and time of day formatted once a second per thread instead of once a line.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{self, FormatTime};

/// The timer of every log line. The default one converts the time to a
/// calendar date and formats seven numbers for each line, about 1.2k
/// instructions; here a line costs a clock read and six digits.
#[derive(Clone, Copy)]
pub struct Clock;

/// The second last formatted on this thread, and its text up to the `.`.
struct Second {
    secs: u64,
    text: String,
}

thread_local! {
    static LAST: RefCell<Second> = const { RefCell::new(Second { secs: u64::MAX, text: String::new() }) };
}

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let Ok(since) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return time::SystemTime.format_time(w);
        };
        let written = LAST.with(|last| {
            let mut last = last.try_borrow_mut().ok()?;
            if last.secs != since.as_secs() {
                last.text = prefix(since)?;
                last.secs = since.as_secs();
            }
            Some(write_time(w, &last.text, since.subsec_micros()))
        });
        match written {
            Some(result) => result,
            // Years past 9999, or a timer used inside itself.
            None => time::SystemTime.format_time(w),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` for the second `since` falls in.
fn prefix(since: Duration) -> Option<String> {
    let secs = i64::try_from(since.as_secs()).ok()?;
    let t = ::time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    if t.year() > 9999 {
        return None;
    }
    let mut text = String::with_capacity(20);
    write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
    .ok()?;
    Some(text)
}

fn write_time(w: &mut Writer<'_>, prefix: &str, micros: u32) -> fmt::Result {
    let mut digits = [b'0'; 7];
    let mut n = micros;
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits[6] = b'Z';
    w.write_str(prefix)?;
    w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(timer: &impl FormatTime) -> String {
        let mut s = String::new();
        timer.format_time(&mut Writer::new(&mut s)).unwrap();
        s
    }

    #[test]
    fn writes_what_the_default_timer_writes() {
        for _ in 0..1000 {
            let (before, ours, after) = (
                format(&time::SystemTime),
                format(&Clock),
                format(&time::SystemTime),
            );
            assert_eq!(ours.len(), before.len(), "{ours} vs {before}");
            assert!(ours.ends_with('Z'), "{ours}");
            // Read between two readings of the default timer: same second
            // (when no second ended in between), and in order.
            if before[..20] == after[..20] {
                assert_eq!(ours[..20], before[..20]);
            }
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
        }
    }

    #[test]
    fn micros_are_zero_padded() {
        let mut s = String::new();
        write_time(&mut Writer::new(&mut s), "2026-01-02T03:04:05.", 42).unwrap();
        assert_eq!(s, "2026-01-02T03:04:05.000042Z");
        let p = prefix(Duration::from_secs(86_400 * 365 + 3_661)).unwrap();
        assert_eq!(p, "1971-01-01T01:01:01.");
    }
}
