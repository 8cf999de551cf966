//! Where period boundaries fall: at a fixed offset from UTC, or by a time zone's rules
//! (daylight saving time included), through jiff and the system's tz database
//! (`/usr/share/zoneinfo` on Unix).
//!
//! Invariants: `start_of(at) <= at < end_of(at)` for every `at`, whatever the zone does
//! (a skipped or repeated local midnight, an hour that occurs twice), so that a fresh file
//! is never born with its period already over; and nothing here panics: a time jiff
//! cannot place falls back on the fixed-offset arithmetic at the offset in force.

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil::Date};
use time::UtcOffset;

use super::period::Period;

/// The zone periods are counted in.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    /// A fixed offset from UTC (UTC itself by default).
    Fixed(UtcOffset),
    /// A time zone of the tz database, by name (`Europe/Berlin`; the system's zone has
    /// the name the system gives it, if any).
    Named { name: String, tz: TimeZone },
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (self, other) {
            (Zone::Fixed(a), Zone::Fixed(b)) => a == b,
            (Zone::Named { name: a, .. }, Zone::Named { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for Zone {}

impl Default for Zone {
    fn default() -> Self {
        Zone::Fixed(UtcOffset::UTC)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(offset) if offset.is_utc() => write!(f, "UTC"),
            Zone::Fixed(offset) => {
                let seconds = offset.whole_seconds();
                let sign = if seconds < 0 { '-' } else { '+' };
                let seconds = seconds.unsigned_abs();
                write!(f, "UTC{sign}{:02}:{:02}", seconds / 3600, seconds / 60 % 60)?;
                if seconds % 60 != 0 {
                    write!(f, ":{:02}", seconds % 60)?;
                }
                Ok(())
            }
            Zone::Named { name, .. } => f.write_str(name),
        }
    }
}

impl Zone {
    /// The zone called `name` in the system's tz database.
    pub(crate) fn named(name: &str) -> Option<Zone> {
        let tz = TimeZone::get(name).ok()?;
        Some(Zone::Named {
            name: name.to_owned(),
            tz,
        })
    }

    /// The system's zone (`TZ`, else `/etc/localtime`), named as the system names it.
    pub(crate) fn system() -> Option<Zone> {
        let tz = TimeZone::try_system().ok()?;
        let name = tz.iana_name().unwrap_or("local").to_owned();
        Some(Zone::Named { name, tz })
    }

    /// The offset from UTC in force at `at`, in seconds.
    pub(crate) fn offset_at(&self, at: i64) -> i64 {
        match self {
            Zone::Fixed(offset) => i64::from(offset.whole_seconds()),
            Zone::Named { tz, .. } => {
                Timestamp::from_second(at).map_or(0, |at| i64::from(tz.to_offset(at).seconds()))
            }
        }
    }

    /// The start and end of the period of `period` (of `length` seconds) that `at` is in.
    pub(crate) fn period_around(&self, period: Period, length: i64, at: i64) -> (i64, i64) {
        if let Zone::Named { tz, .. } = self
            && matches!(period, Period::Day | Period::Week)
            && let Some(bounds) = civil_days(tz, period, at)
        {
            return bounds;
        }
        // Periods shorter than a day are counted at the offset in force at `at`: an
        // hour that occurs twice is two periods, a skipped one none.
        let local = at.saturating_add(self.offset_at(at));
        let into = match period {
            // 1970-01-01 was a Thursday: Monday the 5th starts the first whole week.
            Period::Week => (local - 4 * 86_400).rem_euclid(length),
            _ => local.rem_euclid(length),
        };
        let start = at - into;
        (start, start.saturating_add(length))
    }
}

/// The local midnights around `at` that begin its day (or its week, on Monday): 23 or 25
/// hours apart across a change of daylight saving time.
fn civil_days(tz: &TimeZone, period: Period, at: i64) -> Option<(i64, i64)> {
    let date = Timestamp::from_second(at)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let days = match period {
        Period::Week => 7,
        _ => 1,
    };
    let back = match period {
        Period::Week => i64::from(date.weekday().to_monday_zero_offset()),
        _ => 0,
    };
    let first = date.checked_sub(jiff::Span::new().days(back)).ok()?;
    let midnight = |date: Date| -> Option<i64> {
        let zoned = date
            .to_zoned_datetime(tz.clone())
            .ok()?
            .start_of_day()
            .ok()?;
        Some(zoned.timestamp().as_second())
    };
    let mut start = midnight(first)?;
    let mut next = first.checked_add(jiff::Span::new().days(days)).ok()?;
    let mut end = midnight(next)?;
    // A zone that sets its clocks back across midnight repeats the day's last hour: `at`
    // may lie after the next day's first instant, or before its own day's.
    for _ in 0..3 {
        if end > at {
            break;
        }
        start = end;
        next = next.checked_add(jiff::Span::new().days(days)).ok()?;
        end = midnight(next)?;
    }
    (start <= at && at < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::period::parse_stamp;

    fn at(text: &str) -> i64 {
        parse_stamp(text.as_bytes()).unwrap()
    }

    fn berlin() -> Zone {
        Zone::named("Europe/Berlin").expect("the tz database has Europe/Berlin")
    }

    /// Every boundary a writer meets, stepping a fake clock through `from..to` a minute
    /// at a time and rotating when the recorded end is reached.
    fn boundaries(zone: &Zone, period: Period, from: i64, to: i64) -> Vec<i64> {
        let length = period.seconds().unwrap();
        let (_, mut end) = zone.period_around(period, length, from);
        let mut crossed = Vec::new();
        let mut now = from;
        while now < to {
            if now >= end {
                let (start, next_end) = zone.period_around(period, length, now);
                assert!(start <= now && now < next_end, "{start} {now} {next_end}");
                crossed.push(start);
                end = next_end;
            }
            now += 60;
        }
        crossed
    }

    #[test]
    fn one_rotation_per_local_midnight_across_the_23_hour_day() {
        // Berlin skips 02:00-03:00 on Sunday 2026-03-29: that day is 23 hours long.
        let crossed = boundaries(
            &berlin(),
            Period::Day,
            at("2026-03-27T12-00-00Z"),
            at("2026-03-31T12-00-00Z"),
        );
        assert_eq!(
            crossed,
            [
                at("2026-03-27T23-00-00Z"),
                at("2026-03-28T23-00-00Z"),
                at("2026-03-29T22-00-00Z"),
                at("2026-03-30T22-00-00Z"),
            ]
        );
        assert_eq!(crossed[2] - crossed[1], 23 * 3600);
    }

    #[test]
    fn one_rotation_per_local_midnight_across_the_25_hour_day() {
        // Berlin repeats 02:00-03:00 on Sunday 2026-10-25: that day is 25 hours long.
        let crossed = boundaries(
            &berlin(),
            Period::Day,
            at("2026-10-23T12-00-00Z"),
            at("2026-10-27T12-00-00Z"),
        );
        assert_eq!(
            crossed,
            [
                at("2026-10-23T22-00-00Z"),
                at("2026-10-24T22-00-00Z"),
                at("2026-10-25T23-00-00Z"),
                at("2026-10-26T23-00-00Z"),
            ]
        );
        assert_eq!(crossed[2] - crossed[1], 25 * 3600);
    }

    #[test]
    fn hours_and_weeks_follow_the_zone() {
        let zone = berlin();
        // Across the repeated hour: every hour once, 02:00 local twice (two UTC hours).
        let hours = boundaries(
            &zone,
            Period::Hour,
            at("2026-10-24T23-30-00Z"),
            at("2026-10-25T03-30-00Z"),
        );
        assert_eq!(
            hours,
            [
                at("2026-10-25T00-00-00Z"),
                at("2026-10-25T01-00-00Z"),
                at("2026-10-25T02-00-00Z"),
                at("2026-10-25T03-00-00Z"),
            ]
        );
        // The week of the 25-hour day: Monday 2026-10-19 00:00 CEST to Monday 26th CET.
        let (start, end) = zone.period_around(Period::Week, 7 * 86_400, at("2026-10-25T12-00-00Z"));
        assert_eq!(
            (start, end),
            (at("2026-10-18T22-00-00Z"), at("2026-10-25T23-00-00Z"))
        );
    }

    #[test]
    fn the_bounds_always_hold_the_instant() {
        let zones = [
            berlin(),
            Zone::named("America/Sao_Paulo").unwrap(),
            Zone::named("Australia/Lord_Howe").unwrap(),
            Zone::Fixed(UtcOffset::from_hms(5, 45, 0).unwrap()),
        ];
        let periods = [
            Period::Minute,
            Period::Hour,
            Period::Day,
            Period::Week,
            Period::Every(std::time::Duration::from_secs(7200)),
        ];
        for zone in &zones {
            for period in periods {
                let length = period.seconds().unwrap();
                // Sao Paulo skipped midnight in 2018; Lord Howe moves by half an hour.
                for base in [at("2018-11-03T12-00-00Z"), at("2026-04-04T12-00-00Z")] {
                    for step in (0..3 * 86_400).step_by(600) {
                        let now = base + step;
                        let (start, end) = zone.period_around(period, length, now);
                        assert!(start <= now && now < end, "{zone} {period:?} {now}");
                    }
                }
            }
        }
    }
}
