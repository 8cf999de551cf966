//! Retention of timestamped archives without listing the directory under the lock: a
//! rotation accounts for its archive in the page's ledger; when a limit may be exceeded,
//! the archives are listed once the lock is let go ([`Listing`]), and the oldest the
//! limits do not keep are deleted in a short hold that checks each name again
//! ([`sweep`]). Which archives the limits doom is `retention`'s to say.

use std::ffi::OsString;
use std::io;

use super::LogName;
use super::retention::{Kept, Ledger, Limits, how_many_to_delete, kept_of, may_exceed, with_slack};
use super::timestamped;
use crate::platform::Kind;

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
}
