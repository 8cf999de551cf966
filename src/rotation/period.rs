//! Time periods: which period an instant falls in, at a fixed UTC offset.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use super::zone::Zone;

/// How often the log rotates by time; see [`Builder::rotate_every`](crate::Builder::rotate_every).
///
/// Periods start at round times: every minute at second 0, every hour at minute 0, every
/// day at midnight and every week at Monday midnight, in UTC by default, at the offset set
/// with [`Builder::utc_offset`](crate::Builder::utc_offset), or in the time zone set with
/// [`Builder::time_zone`](crate::Builder::time_zone) (local midnight, daylight saving time
/// included: a day is then 23 or 25 hours long twice a year). A custom [`Period::Every`]
/// starts at every multiple of its length since the Unix epoch, counted in local time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tracing_shared_file::{Period, SharedFile};
///
/// let daily = SharedFile::builder("logs/app.log").rotate_every(Period::Day);
/// let every_ten_minutes =
///     SharedFile::builder("logs/app.log").rotate_every(Period::Every(Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Period {
    /// Every minute.
    Minute,
    /// Every hour.
    Hour,
    /// Every day, at midnight.
    Day,
    /// Every week, at Monday midnight.
    Week,
    /// Every this long: whole seconds, at least one.
    Every(Duration),
}

impl Period {
    /// The period's length in seconds; `None` if it is not a whole, positive number of
    /// seconds.
    pub(crate) fn seconds(self) -> Option<i64> {
        match self {
            Period::Minute => Some(60),
            Period::Hour => Some(3600),
            Period::Day => Some(86_400),
            Period::Week => Some(7 * 86_400),
            Period::Every(length) => (length.subsec_nanos() == 0 && length.as_secs() > 0)
                .then(|| i64::try_from(length.as_secs()).ok())
                .flatten(),
        }
    }
}

/// A period and the zone its boundaries are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) period: Period,
    pub(crate) zone: Zone,
}

impl Schedule {
    /// The start and end of the period that `at` (seconds since the Unix epoch) falls
    /// in: `start <= at < end`.
    pub(crate) fn bounds(&self, at: i64) -> (i64, i64) {
        let length = self.period.seconds().unwrap_or(1);
        self.zone.period_around(self.period, length, at)
    }

    /// The start of the period that `at` falls in, in seconds since the epoch.
    #[cfg(test)]
    pub(crate) fn start_of(&self, at: i64) -> i64 {
        self.bounds(at).0
    }

    /// The end of the period that `at` falls in: the next period's start.
    pub(crate) fn end_of(&self, at: i64) -> i64 {
        self.bounds(at).1
    }
}

/// 2000-01-01T00:00:00Z: a recorded time or a file time before it is unknown (a clock
/// not yet set, a damaged page), never taken for a time of the log's.
pub(crate) const EARLIEST: i64 = 946_684_800;

/// How far ahead of the clock an archive's stamp may be and still be placed in time.
/// Within it, names stay in order when the clock is set back a little; beyond it, a name
/// (a foreign file, a clock that jumped ahead and came back, a peer's clock ahead) does
/// not decide later names, and retention takes it for the oldest archive (see
/// `retention`), so that it neither outlives every limit nor fills the disk.
pub(crate) const FUTURE_TOLERANCE: i64 = 3600;

/// Whether `at` can be a time of this log's: not before 2000, and not further ahead of
/// `now` than [`FUTURE_TOLERANCE`].
pub(crate) fn is_plausible_time(at: i64, now: i64) -> bool {
    at >= EARLIEST && at <= now.saturating_add(FUTURE_TOLERANCE)
}

/// The wall clock in whole seconds since the Unix epoch (negative before it).
pub(crate) fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

pub(crate) fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `2026-11-27T14-00-00Z`: a UTC time without colons, so that names sort in time order
/// and are valid file names everywhere.
pub(crate) fn stamp(at: i64) -> String {
    /// 9999-12-31T23:59:59Z, the last time four digits of year can name.
    const LATEST: i64 = 253_402_300_799;
    // Four digits of year, whatever comes; callers pass plausible times.
    let time = OffsetDateTime::from_unix_timestamp(at.clamp(0, LATEST))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// The time a [`stamp`] names, if `text` is exactly one. Runs for every archive name at
/// every rotation, so it allocates nothing.
pub(crate) fn parse_stamp(text: &[u8]) -> Option<i64> {
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b'-',
        n0,
        n1,
        b'-',
        s0,
        s1,
        b'Z',
    ] = *text
    else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| i64::from(b - b'0'));
    let two = |a: u8, b: u8| Some(digit(a)? * 10 + digit(b)?);
    let year = two(y0, y1)? * 100 + two(y2, y3)?;
    let (month, day) = (two(m0, m1)?, two(d0, d1)?);
    let (hour, minute, second) = (two(h0, h1)?, two(n0, n1)?, two(s0, s1)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Weekday;

    use time::UtcOffset;

    fn utc(period: Period) -> Schedule {
        Schedule {
            period,
            zone: Zone::default(),
        }
    }

    fn is_monday(at: i64) -> bool {
        OffsetDateTime::from_unix_timestamp(at).is_ok_and(|time| time.weekday() == Weekday::Monday)
    }

    fn at(text: &str) -> i64 {
        parse_stamp(text.as_bytes()).unwrap()
    }

    #[test]
    fn periods_start_at_round_times() {
        let now = at("2026-11-27T14-37-12Z");
        assert_eq!(
            utc(Period::Minute).start_of(now),
            at("2026-11-27T14-37-00Z")
        );
        assert_eq!(utc(Period::Hour).start_of(now), at("2026-11-27T14-00-00Z"));
        assert_eq!(utc(Period::Day).start_of(now), at("2026-11-27T00-00-00Z"));
        // 2026-11-27 is a Friday.
        assert_eq!(utc(Period::Week).start_of(now), at("2026-11-23T00-00-00Z"));
        assert!(is_monday(at("2026-11-23T00-00-00Z")));
        let every_10s = utc(Period::Every(Duration::from_secs(10)));
        assert_eq!(every_10s.start_of(now), at("2026-11-27T14-37-10Z"));
        // A start is its own start.
        let start = utc(Period::Week).start_of(now);
        assert_eq!(utc(Period::Week).start_of(start), start);
    }

    #[test]
    fn boundaries_follow_the_offset() {
        let plus_two = Schedule {
            period: Period::Day,
            zone: Zone::Fixed(UtcOffset::from_hms(2, 0, 0).unwrap()),
        };
        // 23:30 UTC is already the next day at +02:00, which began at 22:00 UTC.
        assert_eq!(
            plus_two.start_of(at("2026-11-27T23-30-00Z")),
            at("2026-11-27T22-00-00Z")
        );
        assert_eq!(
            plus_two.start_of(at("2026-11-27T21-30-00Z")),
            at("2026-11-26T22-00-00Z")
        );
        let minus_five_week = Schedule {
            period: Period::Week,
            zone: Zone::Fixed(UtcOffset::from_hms(-5, 0, 0).unwrap()),
        };
        // Monday 00:00 at -05:00 is Monday 05:00 UTC.
        assert_eq!(
            minus_five_week.start_of(at("2026-11-23T04-00-00Z")),
            at("2026-11-16T05-00-00Z")
        );
    }

    #[test]
    fn stamps_round_trip_and_only_canonical_ones_parse() {
        let time = at("2026-11-27T14-00-00Z");
        assert_eq!(stamp(time), "2026-11-27T14-00-00Z");
        assert_eq!(stamp(0), "1970-01-01T00-00-00Z");
        for bad in [
            "2026-11-27T14:00:00Z",
            "2026-11-27T14-00-00",
            "2026-13-27T14-00-00Z",
            "2026-02-30T14-00-00Z",
            "2026-11-27T24-00-00Z",
            "2026-11-27T14-00-00Z.1",
            "+026-11-27T14-00-00Z",
        ] {
            assert_eq!(parse_stamp(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn parsing_agrees_with_the_time_crate() {
        for at in [
            0,
            951_782_400,
            1_709_164_800,
            1_764_252_000,
            4_102_444_799,
            68_169_600,
        ] {
            assert_eq!(parse_stamp(stamp(at).as_bytes()), Some(at), "{}", stamp(at));
        }
        assert_eq!(parse_stamp(b"2024-02-29T00-00-00Z"), Some(1_709_164_800));
        assert_eq!(parse_stamp(b"2023-02-29T00-00-00Z"), None);
        assert_eq!(parse_stamp(b"1900-02-29T00-00-00Z"), None);
        assert_eq!(parse_stamp(b"2000-02-29T00-00-00Z"), Some(951_782_400));
    }

    #[test]
    fn only_whole_positive_seconds_make_a_period() {
        assert_eq!(Period::Every(Duration::from_secs(1)).seconds(), Some(1));
        assert_eq!(Period::Every(Duration::ZERO).seconds(), None);
        assert_eq!(Period::Every(Duration::from_millis(1500)).seconds(), None);
    }
}
