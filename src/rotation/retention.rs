//! Retention: which archives to delete, by count, age and total size.
//!
//! Every limit deletes the oldest archives first, so together they delete a run of the
//! oldest: an archive is never deleted while an older one is kept. Every archive counts
//! towards every limit, whether a size or a time rotation made it.

use std::ffi::OsString;
use std::io;
use std::time::Duration;

use super::LogName;
use super::period::Schedule;
use super::timestamped::{self, Archive};
use crate::platform::Kind;

/// The limits on the archives kept; `max_files` always applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    fn aged_from(&self, stamp: i64) -> i64 {
        self.schedule
            .map_or(stamp, |schedule| schedule.end_of(stamp))
    }
}

/// One archive as retention sees it, oldest first in a list: its names (a plain file and
/// its compressed copy, while a compression is being finished), the time its age counts
/// from (when its last line was written), and its size on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) names: Vec<OsString>,
    pub(crate) time: i64,
    pub(crate) bytes: u64,
}

/// How many of `archives` (oldest first) the limits delete, at `now`.
pub(crate) fn how_many_to_delete(archives: &[Kept], limits: Limits, now: i64) -> usize {
    let by_count = archives.len().saturating_sub(limits.max_files);
    // A run of the oldest, even where times are out of order (a file touched since).
    let by_age = limits.max_age.map_or(0, |age| {
        let oldest_kept = now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        archives
            .iter()
            .take_while(|archive| archive.time < oldest_kept)
            .count()
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
    by_count.max(by_age).max(by_size)
}

/// The timestamped archives of `log`, oldest first, a plain file and its compressed copy
/// counting as one, with their sizes (one `stat` each: the ledger must know them, for a
/// process with `max_total_bytes` may come later).
/// An archive's age counts from the time in its name (see `Limits::aged_from`).
fn kept_of(log: LogName<'_>, listed: Vec<Archive>, limits: Limits) -> io::Result<Vec<Kept>> {
    let mut kept: Vec<Kept> = Vec::new();
    let mut last: Option<(i64, u32)> = None;
    for Archive {
        name,
        time: stamp,
        counter,
        ..
    } in listed
    {
        let bytes = log.dir.entry(&name)?.map_or(0, |entry| entry.len);
        match kept.last_mut() {
            Some(same) if last == Some((stamp, counter)) => {
                same.names.push(name);
                same.bytes = same.bytes.max(bytes);
            }
            _ => kept.push(Kept {
                names: vec![name],
                time: limits.aged_from(stamp),
                bytes,
            }),
        }
        last = Some((stamp, counter));
    }
    Ok(kept)
}

/// What the lock file's page records about the timestamped archives, so that a rotation
/// lists the directory only when a limit may be exceeded: how many there are, how many
/// bytes they take (when `max_total_bytes` is set), and when the oldest was rotated
/// (`i64::MAX` when there is none).
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
fn with_slack(limits: Limits) -> Limits {
    Limits {
        max_files: limits.max_files - limits.max_files / 16,
        max_age: limits.max_age,
        max_total_bytes: limits.max_total_bytes.map(|bytes| bytes - bytes / 16),
        schedule: limits.schedule,
    }
}

/// Whether, by the ledger, a limit may be exceeded.
fn may_exceed(ledger: Ledger, limits: Limits, now: i64) -> bool {
    ledger.count > limits.max_files as u64
        || limits
            .max_total_bytes
            .is_some_and(|bytes| ledger.bytes > bytes)
        || limits.max_age.is_some_and(|age| {
            ledger.oldest < now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
        })
}

/// The timestamped archives as one listing found them, off the lock: oldest first, with
/// their sizes, and the newest one's stamp and counter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) archives: Vec<Kept>,
    pub(crate) newest: Option<(i64, u32)>,
}

impl Listing {
    /// Lists the directory: never under the lock, since the listing takes as long as the
    /// directory is large, and the directory holds files of others.
    ///
    /// Twice, keeping every archive either listing saw. A listing is no snapshot: an
    /// archive whose `.gz` a compressor placed behind the listing's position, and whose
    /// plain name it removed ahead of it, is in neither form in that one listing. Its
    /// `.gz` was there the whole time of the next, and its plain name the whole time of
    /// the one before, so one of two listings in a row sees it; missed, it would be kept
    /// while a newer one was deleted, and not counted.
    pub(crate) fn of(log: LogName<'_>, limits: Limits) -> io::Result<Listing> {
        let mut listed = timestamped::list(log)?;
        let seen: std::collections::HashSet<OsString> =
            listed.iter().map(|archive| archive.name.clone()).collect();
        for archive in timestamped::list(log)? {
            if !seen.contains(&archive.name) {
                listed.push(archive);
            }
        }
        listed.sort_by_key(timestamped::Archive::key);
        Ok(Listing {
            newest: listed.last().map(|archive| (archive.time, archive.counter)),
            archives: kept_of(log, listed, limits)?,
        })
    }

    /// What the page should record about these archives.
    pub(crate) fn ledger(&self) -> Ledger {
        Ledger {
            count: self.archives.len() as u64,
            bytes: self.archives.iter().map(|archive| archive.bytes).sum(),
            oldest: self
                .archives
                .first()
                .map_or(i64::MAX, |archive| archive.time),
            newest: self.newest,
        }
    }
}

/// Accounts in the ledger for an archive of `archived` bytes just rotated as `named`.
pub(crate) fn account(ledger: Ledger, archived: u64, named: (i64, u32), limits: Limits) -> Ledger {
    Ledger {
        count: ledger.count.saturating_add(1),
        bytes: ledger.bytes.saturating_add(archived),
        oldest: ledger.oldest.min(limits.aged_from(named.0)),
        newest: Some(named),
    }
}

/// Whether, by the ledger, a limit may be exceeded, so that the archives must be listed.
pub(crate) fn needs_sweep(ledger: Ledger, limits: Limits, now: i64) -> bool {
    may_exceed(ledger, limits, now)
}

/// How many of the oldest archives of `listing` to delete: down to the limits when
/// nothing was known before (`exact`), else down to 15/16 of them (see `with_slack`).
pub(crate) fn doomed(listing: &Listing, limits: Limits, exact: bool, now: i64) -> usize {
    let limits = if exact { limits } else { with_slack(limits) };
    how_many_to_delete(&listing.archives, limits, now)
}

/// What a sweep did: the ledger for the page, and why an archive could not be deleted.
#[derive(Debug)]
pub(crate) struct Swept {
    pub(crate) ledger: Option<Ledger>,
    pub(crate) error: Option<io::Error>,
}

/// Under the lock: deletes the `doomed` oldest archives of `listing`, a listing made off
/// the lock, checking each name again first. `recorded` is the ledger this process left
/// in the page when it rotated, `current` the page's now.
///
/// What can have changed since the listing: other processes rotated (newer archives,
/// which only add to what the limits doom), or deleted some of the same oldest archives
/// (a name already gone is no error), or compressed one (its `.gz` is deleted with it,
/// whether or not the listing saw it: a compressor places a `.gz` only under the lock,
/// after checking that its archive is still there, so none comes back). Anything at a
/// doomed name that is not a file or a link is not ours, and is left.
pub(crate) fn sweep(
    log: LogName<'_>,
    listing: &Listing,
    doomed: usize,
    recorded: Ledger,
    current: Option<Ledger>,
) -> Swept {
    let mut first_error = None;
    let mut left = Vec::new();
    let (mut removed, mut removed_bytes) = (0u64, 0u64);
    for archive in &listing.archives[..doomed] {
        match remove_archive(log, archive) {
            Ok(Some(bytes)) => {
                removed += 1;
                removed_bytes = removed_bytes.saturating_add(bytes);
            }
            // Another process's sweep deleted it first, and took it off the ledger.
            Ok(None) => {}
            Err(error) => {
                first_error.get_or_insert(error);
                left.push(archive);
            }
        }
    }
    let ledger = match current {
        // Nobody rotated or deleted since this process rotated, before the listing: the
        // listing is exact.
        Some(current) if current == recorded => {
            let kept: Vec<&Kept> = left
                .into_iter()
                .chain(&listing.archives[doomed..])
                .collect();
            // Never below the tally: a listing can only miss archives, and a count too low
            // would let the limits be exceeded without another sweep.
            Some(Ledger {
                count: (kept.len() as u64).max(current.count.saturating_sub(removed)),
                bytes: kept.iter().map(|archive| archive.bytes).sum(),
                oldest: kept.first().map_or(i64::MAX, |archive| archive.time),
                newest: current.newest,
            })
        }
        // Others rotated meanwhile: take off what this sweep deleted. The oldest left is
        // no older than the oldest the listing kept, nor than the page says, so the
        // later of the two never makes an archive look younger than it is.
        Some(current) => {
            let kept_from = left
                .first()
                .map(|archive| archive.time)
                .or_else(|| listing.archives.get(doomed).map(|archive| archive.time));
            Some(Ledger {
                count: current.count.saturating_sub(removed),
                bytes: current.bytes.saturating_sub(removed_bytes),
                oldest: match (kept_from, current.oldest) {
                    // The page knew of no archive, and the listing found some.
                    (Some(time), i64::MAX) => time,
                    (Some(time), oldest) => time.max(oldest),
                    (None, oldest) => oldest,
                },
                newest: current.newest,
            })
        }
        None => None,
    };
    Swept {
        ledger,
        error: first_error,
    }
}

/// Deletes one archive under the lock, plain and compressed, if what is at its names is
/// still a file or a link; the bytes it took, or `None` if it was no longer there.
fn remove_archive(log: LogName<'_>, archive: &Kept) -> io::Result<Option<u64>> {
    let Some(plain) = archive.names.iter().find_map(|name| {
        let parsed = timestamped::parse(log.name, name)?;
        Some(timestamped::name_for(log.name, parsed.time, parsed.counter))
    }) else {
        return Ok(None);
    };
    let mut compressed = plain.clone();
    compressed.push(".gz");
    let mut removed = None;
    for name in [&plain, &compressed] {
        match log.dir.entry(name)? {
            Some(entry) if matches!(entry.kind, Kind::File | Kind::Symlink) => {
                log.dir.remove_if_there(name)?;
                removed = Some(removed.unwrap_or(0).max(entry.len));
            }
            _ => {}
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archives(times_and_sizes: &[(i64, u64)]) -> Vec<Kept> {
        times_and_sizes
            .iter()
            .map(|&(time, bytes)| Kept {
                names: vec![OsString::from(format!("a{time}"))],
                time,
                bytes,
            })
            .collect()
    }

    fn limits(max_files: usize, max_age: Option<u64>, max_total_bytes: Option<u64>) -> Limits {
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
        assert_eq!(how_many_to_delete(&list, limits(10, None, None), 1000), 0);
        assert_eq!(how_many_to_delete(&list, limits(3, None, None), 1000), 1);
        assert_eq!(how_many_to_delete(&list, limits(0, None, None), 1000), 4);
        // Older than 250 s at 500: rotated before 250.
        assert_eq!(
            how_many_to_delete(&list, limits(10, Some(250), None), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, limits(10, Some(400), None), 500),
            0
        );
        // 25 bytes keep the two newest.
        assert_eq!(
            how_many_to_delete(&list, limits(10, None, Some(25)), 500),
            2
        );
        assert_eq!(
            how_many_to_delete(&list, limits(10, None, Some(40)), 500),
            0
        );
        assert_eq!(how_many_to_delete(&list, limits(10, None, Some(5)), 500), 4);
    }

    #[test]
    fn slack_lets_many_rotations_pass_between_listings() {
        let limits = limits(500, None, Some(1600));
        let slack = with_slack(limits);
        assert_eq!((slack.max_files, slack.max_total_bytes), (469, Some(1500)));
        // Small limits are exact.
        assert_eq!(with_slack(self::limits(5, None, None)).max_files, 5);
        let ledger = Ledger {
            count: 469,
            bytes: 1500,
            oldest: 100,
            newest: None,
        };
        assert!(!may_exceed(ledger, limits, 1000));
        assert!(may_exceed(
            Ledger {
                count: 501,
                ..ledger
            },
            limits,
            1000
        ));
        assert!(may_exceed(
            Ledger {
                bytes: 1601,
                ..ledger
            },
            limits,
            1000
        ));
        let aged = self::limits(500, Some(500), None);
        assert!(!may_exceed(ledger, aged, 600));
        assert!(may_exceed(ledger, aged, 601));
        assert!(!may_exceed(
            Ledger {
                oldest: i64::MAX,
                ..ledger
            },
            aged,
            601
        ));
    }

    #[test]
    fn the_strictest_limit_wins() {
        let list = archives(&[(100, 10), (200, 10), (300, 10), (400, 10)]);
        assert_eq!(
            how_many_to_delete(&list, limits(3, Some(250), Some(15)), 500),
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

    /// A sweep deletes under the lock what a listing made off it doomed: an archive
    /// another process's sweep deleted meanwhile is not taken off the ledger again, a
    /// `.gz` that a compressor placed meanwhile goes with its archive, and a ledger that
    /// others changed since is only lowered by what this sweep deleted.
    #[test]
    fn a_sweep_takes_off_the_ledger_only_what_it_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "app.log.2026-11-27T14-00-00Z",
            "app.log.2026-11-27T15-00-00Z",
            "app.log.2026-11-27T16-00-00Z",
            "app.log.2026-11-27T17-00-00Z",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), "0123456789").unwrap();
        }
        let handle = crate::platform::Dir::open(dir.path()).unwrap();
        let path = dir.path().join("app.log");
        let log = LogName {
            dir: &handle,
            name: std::ffi::OsStr::new("app.log"),
            path: &path,
        };
        let limits = limits(2, None, None);
        let listing = Listing::of(log, limits).unwrap();
        let doomed = doomed(&listing, limits, true, 0);
        assert_eq!(doomed, 2);
        let recorded = Ledger {
            count: 4,
            bytes: 40,
            ..listing.ledger()
        };
        // Since the listing: another sweep deleted the oldest, a compressor placed the
        // second's `.gz`, and another process rotated once more.
        std::fs::remove_file(dir.path().join(names[0])).unwrap();
        std::fs::write(dir.path().join(format!("{}.gz", names[1])), "gz").unwrap();
        let current = Ledger {
            count: 4,
            bytes: 40,
            ..recorded
        };
        let changed = Ledger {
            count: current.count,
            newest: Some((recorded.newest.unwrap().0 + 1, 0)),
            ..current
        };
        let swept = sweep(log, &listing, doomed, recorded, Some(changed));
        assert!(swept.error.is_none(), "{swept:?}");
        let ledger = swept.ledger.unwrap();
        assert_eq!((ledger.count, ledger.bytes), (3, 30), "{ledger:?}");
        assert_eq!(ledger.oldest, listing.archives[2].time);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [names[2], names[3]]);
    }

    /// While a compression is being finished an archive is there twice, plain and
    /// `.gz`: it counts once.
    #[test]
    fn an_archive_and_its_compressed_copy_count_as_one() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "app.log.2026-11-27T14-00-00Z",
            "app.log.2026-11-27T14-00-00Z.gz",
            "app.log.2026-11-27T15-00-00Z",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let handle = crate::platform::Dir::open(dir.path()).unwrap();
        let path = dir.path().join("app.log");
        let log = LogName {
            dir: &handle,
            name: std::ffi::OsStr::new("app.log"),
            path: &path,
        };
        let kept = Listing::of(log, limits(10, None, None)).unwrap().archives;
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0].names.len(), 2);
        assert_eq!(
            kept[0].bytes,
            "app.log.2026-11-27T14-00-00Z.gz".len() as u64
        );
    }
}
