//! Retention without listing the directory under the lock: a timestamped rotation
//! accounts for its archive in the page's ledger, and when a limit may be exceeded, and
//! after every numbered rotation (only a listing finds the timestamped archives of the
//! same log, which count too), the archives of both namings are listed once the lock is
//! let go ([`Listing`]), and the oldest the limits do not keep are deleted in a short hold
//! that checks each name again ([`sweep`]). Which archives the limits doom, oldest first
//! across both namings, is `retention`'s to say.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;

use super::LogName;
use super::archives::{self, Form};
use super::retention::{Kept, Ledger, Limits, may_exceed, with_slack};
use super::timestamped;
use crate::platform::Kind;

/// The archives of both namings as one listing found them, off the lock: oldest first
/// (see [`archives`](super::archives)), with their sizes, and the newest placed
/// timestamped one's stamp and counter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) archives: Vec<Kept>,
    pub(crate) newest: Option<(i64, u32)>,
    /// Whether the numbered archives were looked at (their last writes are known).
    numbered_stats: bool,
}

impl Listing {
    /// Lists the directory at `now`: never under the lock, since the listing takes as
    /// long as the directory is large, and the directory holds files of others.
    ///
    /// Twice, keeping every name either listing saw. A listing is no snapshot: an
    /// archive whose `.gz` a compressor placed behind the listing's position, and whose
    /// plain name it removed ahead of it, is in neither form in that one listing. Its
    /// `.gz` was there the whole time of the next, and its plain name the whole time of
    /// the one before, so one of two listings in a row sees it; missed, it would be kept
    /// while a newer one was deleted, and not counted.
    pub(crate) fn of(log: LogName<'_>, limits: &Limits, now: i64) -> io::Result<Listing> {
        let prefix = archives::prefix(log);
        let mut listed = log.dir.list(&prefix)?;
        let seen: HashSet<OsString> = listed.iter().map(|(name, _)| name.clone()).collect();
        for (name, kind) in log.dir.list(&prefix)? {
            if !seen.contains(&name) {
                listed.push((name, kind));
            }
        }
        let aged_from = |stamp| limits.aged_from(stamp);
        // Numbered archives need a `stat` only for a limit that reads one, or to be placed
        // among timestamped ones (`from_listing` then looks at them anyway): their count
        // alone was applied under the lock. One not looked at is never deleted here.
        let stats = limits.max_age.is_some() || limits.max_total_bytes.is_some();
        let archives = archives::from_listing(log, &listed, &aged_from, now, stats)?;
        let numbered_stats = stats
            || (archives.iter()).any(|a| matches!(a.form, Form::Timestamped | Form::Unplaced));
        // An unplaced stamp never decides later names.
        let newest = (archives.iter())
            .filter(|archive| archive.form == Form::Timestamped)
            .filter_map(|archive| timestamped::parse(log.name, &archive.names[0]))
            .map(|archive| (archive.time, archive.counter))
            .max();
        Ok(Listing {
            archives,
            newest,
            numbered_stats,
        })
    }

    /// What the page should record about these archives.
    pub(crate) fn ledger(&self) -> Ledger {
        ledger_of(&self.archives.iter().collect::<Vec<_>>(), self.newest)
    }
}

/// The ledger of `kept` (oldest first): an unplaced archive's time is no age, and the
/// ledger would not be believed.
fn ledger_of(kept: &[&Kept], newest: Option<(i64, u32)>) -> Ledger {
    Ledger {
        count: kept.len() as u64,
        bytes: kept.iter().map(|archive| archive.bytes).sum(),
        oldest: (kept.iter())
            .find(|archive| archive.form != Form::Unplaced)
            .map_or(i64::MAX, |archive| archive.time),
        newest,
    }
}

/// Accounts in the ledger for an archive of `archived` bytes just rotated as `named`.
pub(crate) fn account(ledger: Ledger, archived: u64, named: (i64, u32), limits: &Limits) -> Ledger {
    Ledger {
        count: ledger.count.saturating_add(1),
        bytes: ledger.bytes.saturating_add(archived),
        oldest: ledger.oldest.min(limits.aged_from(named.0)),
        newest: Some(named),
    }
}

/// Whether, by the ledger, a limit may be exceeded, so that the archives must be listed.
pub(crate) fn needs_sweep(ledger: Ledger, limits: &Limits, now: i64) -> bool {
    may_exceed(ledger, limits, now)
}

/// Which archives of `listing` to delete (a run of the oldest, less the unplaced ones
/// only `max_age` reaches): down to the limits when nothing was known before (`exact`),
/// else down to 15/16 of them (see `with_slack`).
pub(crate) fn doomed(listing: &Listing, limits: &Limits, exact: bool, now: i64) -> Vec<bool> {
    match exact {
        true => super::retention::doomed(&listing.archives, limits, now),
        false => super::retention::doomed(&listing.archives, &with_slack(limits), now),
    }
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
    doomed: &[bool],
    recorded: Option<Ledger>,
    current: Option<Ledger>,
) -> Swept {
    let mut first_error = None;
    let mut kept: Vec<&Kept> = Vec::new();
    let (mut removed, mut removed_bytes) = (0u64, 0u64);
    for (archive, &doomed) in listing.archives.iter().zip(doomed) {
        if !doomed {
            kept.push(archive);
            continue;
        }
        match remove_archive(log, archive, listing.numbered_stats) {
            Ok(Some(bytes)) => {
                removed += 1;
                removed_bytes = removed_bytes.saturating_add(bytes);
            }
            // Another process's sweep deleted it first, and took it off the ledger (or a
            // numbered rotation renumbered it, and applied the limits itself).
            Ok(None) => {}
            Err(error) => {
                first_error.get_or_insert(error);
                kept.push(archive);
            }
        }
    }
    let ledger = match current {
        // Nobody rotated or deleted since this process rotated, before the listing: the
        // listing is exact.
        Some(current) if Some(current) == recorded => {
            let listed = ledger_of(&kept, current.newest);
            // Never below the tally: a listing can only miss archives, and a count too low
            // would let the limits be exceeded without another sweep.
            Some(Ledger {
                count: listed.count.max(current.count.saturating_sub(removed)),
                ..listed
            })
        }
        // Others rotated meanwhile: take off what this sweep deleted. The oldest left is
        // no older than the oldest the listing kept, nor than the page says, so the
        // later of the two never makes an archive look younger than it is.
        Some(current) => {
            let kept_from = ledger_of(&kept, None).oldest;
            Some(Ledger {
                count: current.count.saturating_sub(removed),
                bytes: current.bytes.saturating_sub(removed_bytes),
                oldest: match (kept_from, current.oldest) {
                    (i64::MAX, oldest) => oldest,
                    // The page knew of no archive, and the listing found some.
                    (time, i64::MAX) => time,
                    (time, oldest) => time.max(oldest),
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
fn remove_archive(log: LogName<'_>, archive: &Kept, looked_at: bool) -> io::Result<Option<u64>> {
    if let Form::Numbered(_) = archive.form {
        // Not looked at, its last write is unknown and cannot be checked: left to the
        // numbered rotations, which applied its count under the lock.
        return match looked_at {
            true => remove_numbered(log, archive),
            false => Ok(None),
        };
    }
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

/// Deletes a numbered archive under the lock if its name still holds the file the
/// listing saw (same last write): a numbered rotation since renumbered the archives, and
/// the name may now hold a newer one, which is kept.
fn remove_numbered(log: LogName<'_>, archive: &Kept) -> io::Result<Option<u64>> {
    let name = &archive.names[0];
    match log.dir.entry(name)? {
        Some(entry)
            if matches!(entry.kind, Kind::File | Kind::Symlink)
                && (entry.modified, entry.modified_nanos) == archive.written =>
        {
            log.dir.remove_if_there(name)?;
            Ok(Some(entry.len))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(max_files: usize) -> Limits {
        Limits {
            max_files,
            max_age: None::<Duration>,
            max_total_bytes: None,
            schedule: None,
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
        let limits = limits(2);
        let now = super::super::period::parse_stamp(b"2026-11-27T18-00-00Z").unwrap();
        let listing = Listing::of(log, &limits, now).unwrap();
        let doomed = doomed(&listing, &limits, true, now);
        assert_eq!(doomed, [true, true, false, false]);
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
        let swept = sweep(log, &listing, &doomed, Some(recorded), Some(changed));
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
}
