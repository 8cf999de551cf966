//! Retention: which archives to delete, by count, age and total size.
//!
//! Every limit deletes the oldest archives first, so together they delete a run of the
//! oldest: an archive is never deleted while an older one is kept. Every archive counts
//! towards every limit, whether a size or a time rotation made it, and whichever naming
//! made it (see [`archives`](super::archives) for the list, oldest first). An unplaced
//! archive, of unknown age (stamped far ahead of the clock), is the oldest for
//! `max_files` and `max_total_bytes`, so that it cannot fill the disk; `max_age`, which
//! cannot know its age, never deletes it.

use std::time::Duration;

pub(crate) use super::archives::{Form, Kept};
use super::period::Schedule;

/// The limits on the archives kept; `max_files` always applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_files: usize,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    /// With time rotation, timestamped archives' age counts from the end of the period
    /// their stamp is in.
    pub(crate) schedule: Option<Schedule>,
}

impl Limits {
    /// When an archive stamped `stamp` began to age: with time rotation, at the end of the
    /// period the stamp is in, since a time rotation names the archive after its period's
    /// start but its last line may have come at the period's end.
    pub(super) fn aged_from(&self, stamp: i64) -> i64 {
        self.schedule
            .as_ref()
            .map_or(stamp, |schedule| schedule.end_of(stamp))
    }
}

/// How many of `archives` (oldest first) the limits delete, at `now`, if unplaced
/// archives counted as aged.
pub(crate) fn how_many_to_delete(archives: &[Kept], limits: &Limits, now: i64) -> usize {
    let (by_count_or_size, by_age) = runs(archives, limits, now);
    by_count_or_size.max(by_age)
}

/// Which of `archives` (oldest first) the limits delete, at `now`: a run of the oldest,
/// less the unplaced archives that only `max_age` reaches, since it cannot know their age.
pub(crate) fn doomed(archives: &[Kept], limits: &Limits, now: i64) -> Vec<bool> {
    let (by_count_or_size, by_age) = runs(archives, limits, now);
    archives
        .iter()
        .enumerate()
        .map(|(i, archive)| i < by_count_or_size || (i < by_age && archive.form != Form::Unplaced))
        .collect()
}

/// How many of the oldest `archives` the count and size limits delete, and how many the
/// age limit does (unplaced archives, of unknown age, do not end its run).
fn runs(archives: &[Kept], limits: &Limits, now: i64) -> (usize, usize) {
    let by_count = archives.len().saturating_sub(limits.max_files);
    // A run of the oldest, even where times are out of order (a file touched since).
    let by_age = limits.max_age.map_or(0, |age| {
        let oldest_kept = now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        let mut run = 0;
        for (position, archive) in archives.iter().enumerate() {
            if archive.form == Form::Unplaced {
                continue;
            }
            if archive.time >= oldest_kept {
                break;
            }
            run = position + 1;
        }
        run
    });
    let by_size = limits.max_total_bytes.map_or(0, |limit| {
        let mut total = 0u64;
        let kept = archives
            .iter()
            .rev()
            .take_while(|archive| {
                total = total.saturating_add(archive.bytes);
                total <= limit
            })
            .count();
        archives.len() - kept
    });
    (by_count.max(by_size), by_age)
}

/// What the lock file's page records about the archives (both namings, as a timestamped
/// rotation or a sweep last knew them), so that the directory is listed, off the lock,
/// only when a limit may be exceeded: how many there are, how many bytes they take (when
/// `max_total_bytes` is set), and when the oldest was rotated (`i64::MAX` when there is
/// none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ledger {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    pub(crate) oldest: i64,
    /// The stamp and counter of the newest archive made, for the next name.
    pub(crate) newest: Option<(i64, u32)>,
}

impl Ledger {
    /// The ledger, if its words can be true at `now`: the page may have been damaged, and
    /// a stamp from it names archives. `None` makes the next rotation list the archives.
    pub(crate) fn checked(self, now: i64) -> Option<Ledger> {
        let plausible = |at| super::period::is_plausible_time(at, now);
        let newest = self
            .newest
            .is_none_or(|(stamp, counter)| plausible(stamp) && counter < u32::MAX);
        let oldest = self.oldest == i64::MAX || plausible(self.oldest);
        (newest && oldest && self.count <= u64::from(u32::MAX)).then_some(self)
    }
}

/// A limit of `n` deletes down to `n - n/16` once it is exceeded: so with many archives a
/// rotation lists the directory once every `n/16` rotations, not at every one.
pub(super) fn with_slack(limits: &Limits) -> Limits {
    Limits {
        max_files: limits.max_files - limits.max_files / 16,
        max_age: limits.max_age,
        max_total_bytes: limits.max_total_bytes.map(|bytes| bytes - bytes / 16),
        schedule: limits.schedule.clone(),
    }
}

/// Whether, by the ledger, a limit may be exceeded.
pub(super) fn may_exceed(ledger: Ledger, limits: &Limits, now: i64) -> bool {
    ledger.count > limits.max_files as u64
        || limits
            .max_total_bytes
            .is_some_and(|bytes| ledger.bytes > bytes)
        || limits.max_age.is_some_and(|age| {
            ledger.oldest < now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::ffi::OsString;

    fn archives(times_and_sizes: &[(i64, u64)]) -> Vec<Kept> {
        times_and_sizes
            .iter()
            .map(|&(time, bytes)| Kept {
                names: vec![OsString::from(format!("a{time}"))],
                time,
                bytes,
                form: Form::Timestamped,
                written: (time, 0),
            })
            .collect()
    }

    pub(crate) fn limits(
        max_files: usize,
        max_age: Option<u64>,
        max_total_bytes: Option<u64>,
    ) -> Limits {
        Limits {
            max_files,
            max_age: max_age.map(Duration::from_secs),
            max_total_bytes,
            schedule: None,
        }
    }

    #[test]
    fn each_limit_deletes_a_run_of_the_oldest() {
        let list = archives(&[(100, 10), (200, 10), (300, 10), (400, 10)]);
        assert_eq!(how_many_to_delete(&list, &limits(10, None, None), 1000), 0);
        assert_eq!(how_many_to_delete(&list, &limits(3, None, None), 1000), 1);
        assert_eq!(how_many_to_delete(&list, &limits(0, None, None), 1000), 4);
        // Older than 250 s at 500: rotated before 250.
        assert_eq!(
            how_many_to_delete(&list, &limits(10, Some(250), None), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, &limits(10, Some(400), None), 500),
            0
        );
        // 25 bytes keep the two newest.
        assert_eq!(
            how_many_to_delete(&list, &limits(10, None, Some(25)), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, &limits(10, None, Some(40)), 500),
            0
        );
        assert_eq!(
            how_many_to_delete(&list, &limits(10, None, Some(5)), 500),
            4
        );
    }

    #[test]
    fn slack_lets_many_rotations_pass_between_listings() {
        let limits = limits(500, None, Some(1600));
        let slack = with_slack(&limits);
        assert_eq!((slack.max_files, slack.max_total_bytes), (469, Some(1500)));
        // Small limits are exact.
        assert_eq!(with_slack(&self::limits(5, None, None)).max_files, 5);
        let ledger = Ledger {
            count: 469,
            bytes: 1500,
            oldest: 100,
            newest: None,
        };
        assert!(!may_exceed(ledger, &limits, 1000));
        assert!(may_exceed(
            Ledger {
                count: 501,
                ..ledger
            },
            &limits,
            1000
        ));
        assert!(may_exceed(
            Ledger {
                bytes: 1601,
                ..ledger
            },
            &limits,
            1000
        ));
        let aged = self::limits(500, Some(500), None);
        assert!(!may_exceed(ledger, &aged, 600));
        assert!(may_exceed(ledger, &aged, 601));
        assert!(!may_exceed(
            Ledger {
                oldest: i64::MAX,
                ..ledger
            },
            &aged,
            601
        ));
    }

    #[test]
    fn the_strictest_limit_wins() {
        let list = archives(&[(100, 10), (200, 10), (300, 10), (400, 10)]);
        assert_eq!(
            how_many_to_delete(&list, &limits(3, Some(250), Some(15)), 500),
            3
        );
    }

    #[test]
    fn a_ledger_with_words_that_cannot_be_true_is_not_believed() {
        let now = 1_800_000_000;
        let sane = Ledger {
            count: 3,
            bytes: 300,
            oldest: now - 100,
            newest: Some((now - 10, 2)),
        };
        assert_eq!(sane.checked(now), Some(sane));
        let none_yet = Ledger {
            oldest: i64::MAX,
            newest: None,
            ..sane
        };
        assert_eq!(none_yet.checked(now), Some(none_yet));
        for damaged in [
            Ledger {
                count: u64::MAX,
                ..sane
            },
            Ledger { oldest: 0, ..sane },
            Ledger {
                oldest: now + 2 * super::super::period::FUTURE_TOLERANCE,
                ..sane
            },
            Ledger {
                newest: Some((i64::MAX, 0)),
                ..sane
            },
            Ledger {
                newest: Some((0, 0)),
                ..sane
            },
            Ledger {
                newest: Some((now, u32::MAX)),
                ..sane
            },
        ] {
            assert_eq!(damaged.checked(now), None, "{damaged:?}");
        }
    }

    /// max_age cannot know an unplaced archive's age: it never deletes one, though it
    /// deletes the aged archives after it; max_files and max_total_bytes delete it first.
    #[test]
    fn max_age_never_deletes_an_unplaced_archive_and_the_other_limits_delete_it_first() {
        let mut list = archives(&[(5000, 10), (100, 10), (200, 10), (900, 10)]);
        list[0].form = Form::Unplaced;
        let age = |max_age| doomed(&list, &limits(10, Some(max_age), None), 1000);
        assert_eq!(age(500), [false, true, true, false]);
        assert_eq!(age(950), [false; 4]);
        assert_eq!(
            doomed(&list, &limits(3, None, None), 1000),
            [true, false, false, false]
        );
        assert_eq!(
            doomed(&list, &limits(10, None, Some(30)), 1000),
            [true, false, false, false]
        );
    }
}
