//! Time rotation: which period each line, and so each file, belongs to; and the UTC
//! date arithmetic for line timestamps and archive stamps (std only, no `time` crate, so
//! that the examples can include the verifier by path).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::Report;

/// Nanoseconds per second: times are `i128` nanoseconds since the Unix epoch.
const NANOS: i128 = 1_000_000_000;
const DAY: i128 = 86_400 * NANOS;
const WEEK: i128 = 7 * DAY;
/// 1970-01-01 was a Thursday: weeks start on the Monday four days later.
const FIRST_MONDAY: i128 = 4 * DAY;

/// Period boundaries: the multiples of `length` since the epoch, in local time at a
/// fixed UTC offset (so a day starts at local midnight), except that a length of exactly
/// one week starts on Monday 00:00 local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Period {
    length: i128,
    /// What to add to a UTC time to make period starts multiples of `length`.
    shift: i128,
}

impl Period {
    pub(super) fn new(length: Duration, utc_offset_seconds: i32) -> Self {
        assert!(length >= Duration::from_secs(1), "a period is at least 1 s");
        let length = length.as_nanos() as i128;
        let monday = if length == WEEK { FIRST_MONDAY } else { 0 };
        Period {
            length,
            shift: i128::from(utc_offset_seconds) * NANOS - monday,
        }
    }

    /// The number of the period that holds time `t`.
    fn index(&self, t: i128) -> i128 {
        (t + self.shift).div_euclid(self.length)
    }

    /// When period `index` starts, in UTC.
    fn start(&self, index: i128) -> i128 {
        index * self.length - self.shift
    }
}

/// The periods a file may belong to, `lo..=hi`: its lines pin it to one period unless
/// `max_write_delay` leaves a line stamped before a boundary and written after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    lo: i128,
    hi: i128,
}

impl Span {
    /// Whether `next`, the file after this one, may be of a later period: a rotation
    /// at a boundary then explains why this one ended.
    pub(super) fn may_precede(self, next: Span) -> bool {
        next.hi > self.lo
    }
}

/// The time rules a chain must follow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    pub period: Period,
    /// How long before its write a line may have been stamped, in nanoseconds.
    pub max_write_delay: i128,
    pub one_file_per_period: bool,
    pub stamps_match_periods: bool,
}

/// What one file of the chain says about time.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileTimes<'a> {
    pub path: &'a Path,
    /// The stamp in a timestamped archive's name, in seconds since the epoch.
    pub stamp: Option<i64>,
    /// The stamp of the archive before it in the chain, if that one is timestamped.
    pub previous_stamp: Option<i64>,
    /// The earliest and latest timestamps of its intact lines, if it has any.
    pub lines: Option<(i128, i128)>,
    /// An archive whose size does not explain its rotation: it ended at a boundary.
    pub rotated_at_boundary: bool,
}

/// Checks every file of the chain (oldest first) against the period rules, records the
/// number of distinct periods in `report`, and returns each file's span (`None` for a
/// file without lines).
pub(super) fn check(rules: &Rules, files: &[FileTimes], report: &mut Report) -> Vec<Option<Span>> {
    let spans: Vec<Option<Span>> = files
        .iter()
        .map(|file| file_span(rules, file, report))
        .collect();

    // Give each file the earliest period it allows that keeps the chain in order (a new
    // period for each file when there must be one file per period); greedy is exact
    // here, and with no write delay every span is a single period anyway.
    let mut previous: Option<(i128, &Path)> = None;
    let mut periods = BTreeSet::new();
    for (file, span) in files.iter().zip(&spans) {
        let Some(span) = *span else { continue };
        let earliest = match previous {
            None => span.lo,
            Some((p, _)) if rules.one_file_per_period => span.lo.max(p + 1),
            Some((p, _)) => span.lo.max(p),
        };
        if earliest > span.hi
            && let Some((p, older)) = previous
        {
            let at = format_time(rules.period.start(p));
            report.problems.push(if span.lo.max(p) <= span.hi {
                format!(
                    "two files hold lines of the period starting {at}: {} and {}",
                    older.display(),
                    file.path.display()
                )
            } else {
                format!(
                    "the chain is out of order: {} holds lines of the period starting {}, older than those of {} before it ({at})",
                    file.path.display(),
                    format_time(rules.period.start(span.hi)),
                    older.display()
                )
            });
        }
        let assigned = earliest.min(span.hi);
        periods.insert(assigned);
        previous = Some((assigned, file.path));
    }
    report.periods = periods.len();
    spans
}

/// The periods `file`'s lines allow, narrowed to one by its stamp when stamps must match.
fn file_span(rules: &Rules, file: &FileTimes, report: &mut Report) -> Option<Span> {
    let (earliest, latest) = file.lines?;
    let period = rules.period;
    let span = Span {
        lo: period.index(latest),
        hi: period.index(earliest + rules.max_write_delay),
    };
    if span.lo > span.hi {
        report.problems.push(format!(
            "{} holds lines of more than one period: stamped {} and {}",
            file.path.display(),
            format_time(earliest),
            format_time(latest)
        ));
        // Reported once: for the other checks, the file may be of any of its periods.
        return Some(Span {
            lo: period.index(earliest),
            hi: span.lo,
        });
    }
    let Some(stamp) = file.stamp.filter(|_| rules.stamps_match_periods) else {
        return Some(span);
    };
    if !file.rotated_at_boundary {
        return Some(span);
    }
    // A name stamp has whole seconds: the period's start, rounded down. A file that a
    // size rotation began within its period is named after that rotation instead (the
    // archive before it, whose stamp it takes with the next counter), so that names sort
    // in order.
    let stamped = period.index(i128::from(stamp) * NANOS);
    let start_secs = |index: i128| period.start(index).div_euclid(NANOS);
    let began_by_size = file.previous_stamp == Some(stamp);
    if (span.lo..=span.hi).contains(&stamped)
        && (start_secs(stamped) == i128::from(stamp) || began_by_size)
    {
        return Some(Span {
            lo: stamped,
            hi: stamped,
        });
    }
    report.problems.push(format!(
        "{} was rotated at a boundary but its stamp {} is not the start of its lines' period ({})",
        file.path.display(),
        format_time(i128::from(stamp) * NANOS),
        format_time(period.start(span.lo))
    ));
    Some(span)
}

/// `2026-11-26T15:00:00.123456Z` (any number of fraction digits, or none), in
/// nanoseconds since the epoch.
pub(super) fn parse_line_time(text: &str) -> Option<i128> {
    let secs = parse_civil(text.get(..19)?, b':')?;
    let fraction = text.get(19..)?.strip_suffix('Z')?;
    let nanos = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            // Digits beyond the ninth are below a nanosecond: dropped.
            let padded = digits.bytes().chain(std::iter::repeat(b'0')).take(9);
            padded.fold(0, |n, b| n * 10 + i128::from(b - b'0'))
        }
        _ => return None,
    };
    Some(i128::from(secs) * NANOS + nanos)
}

/// `YYYY-MM-DDTHH?MM?SS`, with `separator` between the time fields, as seconds since the
/// epoch; `None` unless every field is in range.
pub(super) fn parse_civil(text: &str, separator: u8) -> Option<i64> {
    let b = text.as_bytes();
    let layout_ok = b.len() == 19
        && (b[4], b[7], b[10], b[13], b[16]) == (b'-', b'-', b'T', separator, separator);
    if !layout_ok {
        return None;
    }
    let number = |range: Range<usize>| {
        let digits = &b[range];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let in_range = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    in_range
        .then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `2026-11-27T14-00-00Z`: the stamp of a timestamped archive made at `secs` since the
/// epoch (UTC, no colons).
pub fn archive_stamp(secs: i64) -> String {
    format!("{}Z", format_civil(secs, '-'))
}

/// The time an archive stamp (`2026-11-27T14-00-00Z`) names, if `text` is exactly one.
pub fn parse_archive_stamp(text: &str) -> Option<i64> {
    parse_civil(text.strip_suffix('Z')?, b'-')
}

/// A time for messages: `2026-11-26T15:00:00.123456789Z`.
fn format_time(t: i128) -> String {
    let (secs, nanos) = (t.div_euclid(NANOS) as i64, t.rem_euclid(NANOS));
    format!("{}.{nanos:09}Z", format_civil(secs, ':'))
}

/// `YYYY-MM-DDTHH?MM?SS` for `secs` since the epoch, with `separator` between the time
/// fields: the inverse of `parse_civil`.
fn format_civil(secs: i64, separator: char) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}{separator}{:02}{separator}{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}
