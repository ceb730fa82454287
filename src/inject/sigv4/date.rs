//! SigV4's UTC stamps, `YYYYMMDD` and `YYYYMMDD'T'HHMMSS'Z'`, computed from the Unix time without a formatter.

use super::SignError;
use std::time::SystemTime;

/// The signing time as SigV4 writes it, and its day for the key cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    /// Days since 1970-01-01 (UTC): the signing key changes with it.
    pub day: u64,
    /// `x-amz-date`: `YYYYMMDD'T'HHMMSS'Z'`; its first 8 bytes are the scope's date.
    pub date_time: [u8; 16],
}

impl Stamp {
    /// The stamp of `time`, truncated to the second. Times before 1970 or
    /// after 9999 have no SigV4 stamp.
    pub fn of(time: SystemTime) -> Result<Stamp, SignError> {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| SignError("the clock is before 1970".into()))?
            .as_secs();
        let day = secs / 86_400;
        let (year, month, mday) = civil(day);
        if year > 9999 {
            return Err(SignError("the clock is after the year 9999".into()));
        }
        let of_day = secs % 86_400;
        let mut date_time = *b"00000000T000000Z";
        digits(&mut date_time[0..4], year);
        digits(&mut date_time[4..6], month);
        digits(&mut date_time[6..8], mday);
        digits(&mut date_time[9..11], of_day / 3600);
        digits(&mut date_time[11..13], of_day / 60 % 60);
        digits(&mut date_time[13..15], of_day % 60);
        Ok(Stamp { day, date_time })
    }

    /// `YYYYMMDD`, the date in the credential scope.
    pub fn date(&self) -> &[u8] {
        &self.date_time[..8]
    }
}

/// Writes `n` as decimal digits filling `out`, leading zeros included.
fn digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// (year, month, day) of a count of days since 1970-01-01, in the proleptic
/// Gregorian calendar: shift to years starting on 1 March of 400-year eras
/// (the leap day falls last), then split the day of the era.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of the era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of the era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from 1 March
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        let s = Stamp::of(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
        String::from_utf8(s.date_time.to_vec()).unwrap()
    }

    #[test]
    fn stamps_match_the_calendar() {
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(1_440_938_160), "20150830T123600Z"); // AWS's test suite time
        assert_eq!(at(951_782_400), "20000229T000000Z"); // a leap day of a 400-year leap
        assert_eq!(at(4_102_444_799), "20991231T235959Z");
        assert_eq!(at(253_402_300_799), "99991231T235959Z");
        assert!(Stamp::of(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800)).is_err());
        assert!(Stamp::of(SystemTime::UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }

    #[test]
    fn every_day_for_four_centuries_matches_time() {
        // The `time` crate (already in the tree for rcgen) as the reference.
        for day in (0..146_097 + 40_000).step_by(7) {
            let secs = day * 86_400 + 3_723;
            let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
            let want = format!(
                "{:04}{:02}{:02}T010203Z",
                t.year(),
                u8::from(t.month()),
                t.day()
            );
            assert_eq!(at(secs), want, "day {day}");
        }
    }
}
