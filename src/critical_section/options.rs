//! The options check: every option that decides when the log rotates, what archives are
//! called and what retention deletes is recorded in the lock file's page, and a process
//! whose options differ from the record is told, once per lock file for each pair of
//! option sets, however many processes hold either.
//!
//! The record is the options of the process that last rotated (or of the first process,
//! on a new lock file): the one whose schedule the live file keeps (see
//! `live_period`). Who rules for each option is said in the report; the README's table of
//! shared options says the same.

use super::Inner;
use super::outcome::Outcome;
use crate::lock::{MORE_OPTIONS, Page, RecordedOptions};
use crate::report::Difference;
use crate::rotation::{Naming, Period, Zone};
use crate::settings::Settings;

/// Where each option sits among the words of `RecordedOptions::more`.
const PERIOD: usize = 0;
const PERIOD_SECONDS: usize = 1;
const ZONE_KIND: usize = 2;
const ZONE_OFFSET: usize = 3;
const NAMING: usize = 4;
const MAX_AGE: usize = 5;
const MAX_TOTAL_BYTES: usize = 6;
const COMPRESS: usize = 7;
/// The zone's name, zero-padded (a longer name is cut: two names that differ only
/// beyond that are taken as one).
const ZONE_NAME: usize = 8;
const ZONE_NAME_BYTES: usize = (MORE_OPTIONS - ZONE_NAME) * 8;

const RULE_MAX_BYTES: &str = "a file rotates when an event does not fit under the max_bytes of the process writing it, so the smaller rules";
const RULE_RETENTION: &str =
    "each rotation applies the retention of the process that rotates, so the strictest rules";
const RULE_SCHEDULE: &str = "the live file keeps the schedule of the process that opened it until it rotates, and the process that rotates records its own for the next file";
const RULE_NAMING: &str = "the process that rotates names the archive, and retention counts both forms together, oldest first";
const RULE_COMPRESS: &str =
    "archives are compressed after the rotations of the processes that have it on";

/// This process's options, as the page records them.
pub(super) fn recorded(settings: &Settings) -> RecordedOptions {
    let mut more = [0u64; MORE_OPTIONS];
    if let Some(period) = settings.rotate_every {
        more[PERIOD] = match period {
            Period::Minute => 1,
            Period::Hour => 2,
            Period::Day => 3,
            Period::Week => 4,
            _ => 5,
        };
        more[PERIOD_SECONDS] = period.seconds().unwrap_or(0) as u64;
        match &settings.zone {
            Zone::Fixed(offset) => more[ZONE_OFFSET] = i64::from(offset.whole_seconds()) as u64,
            Zone::Named { name, .. } => {
                more[ZONE_KIND] = 1;
                let mut bytes = [0u8; ZONE_NAME_BYTES];
                let name = name.as_bytes();
                let len = name.len().min(ZONE_NAME_BYTES);
                bytes[..len].copy_from_slice(&name[..len]);
                for (i, chunk) in bytes.chunks_exact(8).enumerate() {
                    more[ZONE_NAME + i] = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
                }
            }
        }
    }
    more[NAMING] = u64::from(settings.naming == Naming::Timestamped);
    more[MAX_AGE] = settings
        .max_age
        .map_or(0, |age| age.as_secs().saturating_add(1));
    more[MAX_TOTAL_BYTES] = settings
        .max_total_bytes
        .map_or(0, |bytes| bytes.saturating_add(1));
    more[COMPRESS] = u64::from(settings.compress);
    RecordedOptions {
        max_bytes: settings.max_bytes,
        max_files: settings.max_files as u64,
        pid: u64::from(crate::platform::pid()),
        more: Some(more),
    }
}

/// The options on which `ours` and `theirs` differ. An older version's record has only
/// `max_bytes` and `max_files`.
pub(super) fn differences(ours: &RecordedOptions, theirs: &RecordedOptions) -> Vec<Difference> {
    let mut differences = Vec::new();
    let mut differ = |option, ours: String, theirs: String, rule| {
        if ours != theirs {
            differences.push(Difference {
                option,
                ours,
                theirs,
                rule,
            });
        }
    };
    differ(
        "max_bytes",
        ours.max_bytes.to_string(),
        theirs.max_bytes.to_string(),
        RULE_MAX_BYTES,
    );
    differ(
        "max_files",
        ours.max_files.to_string(),
        theirs.max_files.to_string(),
        RULE_RETENTION,
    );
    let (Some(a), Some(b)) = (ours.more, theirs.more) else {
        return differences;
    };
    differ("rotate_every", period(&a), period(&b), RULE_SCHEDULE);
    // The zone matters only to a schedule, and only when both have one.
    if a[PERIOD] != 0 && b[PERIOD] != 0 {
        differ("time zone", zone(&a), zone(&b), RULE_SCHEDULE);
    }
    differ("naming", naming(&a), naming(&b), RULE_NAMING);
    differ(
        "max_age",
        optional(a[MAX_AGE], " s"),
        optional(b[MAX_AGE], " s"),
        RULE_RETENTION,
    );
    differ(
        "max_total_bytes",
        optional(a[MAX_TOTAL_BYTES], ""),
        optional(b[MAX_TOTAL_BYTES], ""),
        RULE_RETENTION,
    );
    differ(
        "compress",
        (a[COMPRESS] != 0).to_string(),
        (b[COMPRESS] != 0).to_string(),
        RULE_COMPRESS,
    );
    differences
}

fn period(more: &[u64; MORE_OPTIONS]) -> String {
    match more[PERIOD] {
        0 => "none".to_owned(),
        1 => "Minute".to_owned(),
        2 => "Hour".to_owned(),
        3 => "Day".to_owned(),
        4 => "Week".to_owned(),
        _ => format!("Every({} s)", more[PERIOD_SECONDS]),
    }
}

fn zone(more: &[u64; MORE_OPTIONS]) -> String {
    if more[ZONE_KIND] == 0 {
        let seconds = more[ZONE_OFFSET] as i64;
        return i32::try_from(seconds)
            .ok()
            .and_then(|seconds| time::UtcOffset::from_whole_seconds(seconds).ok())
            .map_or_else(
                || format!("UTC{seconds:+} s"),
                |offset| Zone::Fixed(offset).to_string(),
            );
    }
    let bytes: Vec<u8> = more[ZONE_NAME..]
        .iter()
        .flat_map(|word| word.to_ne_bytes())
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn naming(more: &[u64; MORE_OPTIONS]) -> String {
    match more[NAMING] {
        0 => "Numbered".to_owned(),
        _ => "Timestamped".to_owned(),
    }
}

/// `none`, or the value (stored plus one) with its unit.
fn optional(stored: u64, unit: &str) -> String {
    match stored {
        0 => "none".to_owned(),
        value => format!("{}{unit}", value - 1),
    }
}

/// A key for the pair of option sets, the same whichever side reports, and never 0 (an
/// empty slot).
fn pair_key(a: &RecordedOptions, b: &RecordedOptions) -> u64 {
    let hash = |options: &RecordedOptions| {
        // FNV-1a over what is compared: the pid is not an option.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let more = match (a.more, b.more) {
            (Some(_), Some(_)) => options.more.unwrap_or_default(),
            _ => [0; MORE_OPTIONS],
        };
        for word in [options.max_bytes, options.max_files].iter().chain(&more) {
            for byte in word.to_ne_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    };
    (hash(a) ^ hash(b)) | 1
}

impl Inner {
    /// Compares this process's options with the record, noting the differences for the
    /// report if this pair of option sets has not been reported for this lock file yet;
    /// records ours if nothing is recorded. Call only under the locks.
    pub(super) fn check_options(&self, page: &Page, outcome: &mut Outcome) {
        let ours = recorded(&self.settings);
        let Some(theirs) = page.options() else {
            page.set_options(&ours);
            return;
        };
        // The common case, every hold: the same options, compared word for word.
        let comparable = |options: &RecordedOptions| match (ours.more, theirs.more) {
            (Some(_), Some(_)) => (options.max_bytes, options.max_files, options.more),
            _ => (options.max_bytes, options.max_files, None),
        };
        if comparable(&ours) == comparable(&theirs) {
            return;
        }
        let differences = differences(&ours, &theirs);
        let key = pair_key(&ours, &theirs);
        // Once per lock file, and, should more pairs come than it remembers, once per
        // process: never at every hold.
        if !differences.is_empty()
            && page.first_report_of(key)
            && self.reporter.first_options_report(key)
        {
            outcome.options_disagree = Some((theirs.pid, differences));
        }
    }

    /// Records this process's options as the ones the fresh file was opened under.
    pub(super) fn record_options(&self, page: &Page) {
        page.set_options(&recorded(&self.settings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_option_that_differs_is_named_with_both_values() {
        let a = Settings {
            rotate_every: Some(Period::Minute),
            naming: Naming::Timestamped,
            ..Settings::default()
        };
        let b = Settings {
            rotate_every: Some(Period::Every(Duration::from_secs(3600))),
            zone: Zone::named("Europe/Berlin").unwrap(),
            max_age: Some(Duration::from_secs(60)),
            max_total_bytes: Some(1000),
            ..Settings::default()
        };
        let found: Vec<(&str, String, String)> = differences(&recorded(&a), &recorded(&b))
            .into_iter()
            .map(|d| (d.option, d.ours, d.theirs))
            .collect();
        let expected = [
            ("rotate_every", "Minute", "Every(3600 s)"),
            ("time zone", "UTC", "Europe/Berlin"),
            ("naming", "Timestamped", "Numbered"),
            ("max_age", "none", "60 s"),
            ("max_total_bytes", "none", "1000"),
        ];
        let expected: Vec<(&str, String, String)> = expected
            .iter()
            .map(|&(o, a, b)| (o, a.to_owned(), b.to_owned()))
            .collect();
        assert_eq!(found, expected);
        assert!(differences(&recorded(&a), &recorded(&a)).is_empty());
    }

    #[test]
    fn a_pair_has_one_key_whichever_side_reports() {
        let a = recorded(&Settings::default());
        let b = recorded(&Settings {
            max_bytes: 16384,
            ..Settings::default()
        });
        assert_eq!(pair_key(&a, &b), pair_key(&b, &a));
        assert_ne!(pair_key(&a, &b), 0);
        let c = recorded(&Settings {
            max_files: 3,
            ..Settings::default()
        });
        assert_ne!(pair_key(&a, &b), pair_key(&a, &c));
    }
}
