//! Rotation: when a file is full, and what happens to the files rotated out.
//!
//! Rotation runs only under the inter-process lock, so exactly one process performs each
//! one. The naming of archives lives in [`numbered`].

mod archives;
#[cfg(feature = "compress")]
pub(crate) mod compression;
mod numbered;
mod period;
mod retention;
mod sweep;
mod timestamped;
mod zone;

pub use period::Period;
pub(crate) use period::{EARLIEST, Schedule, unix_now, unix_seconds};
pub(crate) use retention::{Ledger, Limits};
pub(crate) use sweep::{Listing, doomed, sweep};
pub(crate) use zone::Zone;

/// How archives are named; see [`Builder::naming`](crate::Builder::naming).
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{Naming, SharedFile};
///
/// let builder = SharedFile::builder("logs/app.log").naming(Naming::Timestamped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Naming {
    /// `app.log.1` (newest) to `app.log.<max_files>`, renumbered at every rotation, as
    /// logrotate does. Each rotation renames every archive it keeps.
    #[default]
    Numbered,
    /// `app.log.2026-11-27T14-00-00Z`, in UTC, a name each archive keeps for good: a
    /// rotation is one rename whatever the number of archives kept, and followers and
    /// shippers never see an archive change its name.
    Timestamped,
}

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use crate::platform::{Dir, FileId, Kind};

/// Whether `incoming` bytes can be appended to a file of `current_len` bytes without
/// taking it past `max_bytes`.
pub(crate) fn fits(current_len: u64, incoming: usize, max_bytes: u64) -> bool {
    current_len.saturating_add(incoming as u64) <= max_bytes
}

/// What a rotation did.
#[derive(Debug)]
pub(crate) enum Rotated {
    /// The live file became the newest archive; for timestamped names, what the page
    /// should now record about the archives, and whether a limit may be exceeded: then
    /// the archives are listed once the lock is let go, and the oldest deleted under it
    /// again (see [`sweep`]).
    Yes {
        ledger: Option<Ledger>,
        sweep: Option<Sweep>,
    },
    /// Timestamped names, and the page knows nothing of the archives (a new lock file):
    /// the next archive's name must come after the newest one's, so they are listed
    /// first, off the lock, and the rotation tried again with the [`Listing`].
    ListFirst,
    /// The path no longer names the file `live` (an operator moved or deleted it, or put
    /// something else there): nothing was touched, and the caller reopens the path.
    PathMoved,
}

/// The log file: its name in its directory, and its full path for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogName<'a> {
    pub(crate) dir: &'a Dir,
    pub(crate) name: &'a OsStr,
    pub(crate) path: &'a Path,
}

/// Retention to do after a rotation, off the lock but for the deletions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sweep {
    /// Down to the limits themselves (nothing was known before), not 15/16 of them.
    pub(crate) exact: bool,
    /// The ledger the rotation left in the page (none after a numbered rotation): if it
    /// is still there at the sweep, nobody rotated since, and the listing is exact.
    pub(crate) recorded: Option<Ledger>,
}

/// How a rotation names the archive, and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) naming: Naming,
    pub(crate) limits: Limits,
}

/// Rotates the log file, which the caller's handle knows as `live`. `stamp` names a
/// timestamped archive; `now` judges numbered archives' age.
///
/// Numbered names apply the retention limits to the numbered archives here, since the
/// renumbering touches every one anyway (looking them up by number, never listing the
/// directory); the limits over both namings together are a [`sweep`]'s, whose listing
/// runs after the lock is released.
/// `listed` is a listing made off the lock, for when the page's `ledger` is unknown.
pub(crate) fn rotate(
    log: LogName<'_>,
    live: FileId,
    policy: &Policy,
    at: (i64, i64),
    ledger: Option<Ledger>,
    newest_name: Option<(i64, u32)>,
    listed: Option<&Listing>,
) -> io::Result<Rotated> {
    let (stamp, now) = at;
    let Some(archived) = live_len(log, live)? else {
        return Ok(Rotated::PathMoved);
    };
    match policy.naming {
        Naming::Numbered => {
            numbered::rotate(log, &policy.limits, now).map_err(|e| explain(log, e))?;
            if !renamed_the_live_file(log, &numbered::archive_name(log.name, 1), live)? {
                return Ok(Rotated::PathMoved);
            }
            // The timestamped archives of the same log count too, but only a listing
            // finds them: the sweep after the hold applies the limits to both namings.
            Ok(Rotated::Yes {
                ledger: None,
                sweep: Some(Sweep {
                    exact: true,
                    recorded: None,
                }),
            })
        }
        Naming::Timestamped => {
            // A page with words that cannot be true is not believed: the archives are
            // listed instead.
            let (ledger, exact) = match (ledger.and_then(|ledger| ledger.checked(now)), listed) {
                (Some(ledger), _) => (ledger, false),
                // The listing was made off the lock: names given since are not in it,
                // nor those whose archives were deleted since; the page's last name given
                // is, if it can be true.
                (None, Some(listed)) => {
                    let mut ledger = listed.ledger();
                    let given = newest_name.filter(|&(stamp, counter)| {
                        period::is_plausible_time(stamp, now) && counter < u32::MAX
                    });
                    ledger.newest = ledger.newest.max(given);
                    (ledger, true)
                }
                (None, None) => return Ok(Rotated::ListFirst),
            };
            let (time, counter) = timestamped::next_name(stamp, ledger.newest);
            let named = timestamped::rotate(log, time, counter).map_err(|e| explain(log, e))?;
            if !renamed_the_live_file(
                log,
                &timestamped::name_for(log.name, named.0, named.1),
                live,
            )? {
                return Ok(Rotated::PathMoved);
            }
            let ledger = sweep::account(ledger, archived, named, &policy.limits);
            let sweep =
                (exact || sweep::needs_sweep(ledger, &policy.limits, now)).then_some(Sweep {
                    exact,
                    recorded: Some(ledger),
                });
            Ok(Rotated::Yes {
                ledger: Some(ledger),
                sweep,
            })
        }
    }
}

/// The length of the live file if the path still names it (`live`), else `None`: a
/// symbolic link or anything else swapped in at the path is never renamed into an archive.
pub(crate) fn live_len(log: LogName<'_>, live: FileId) -> io::Result<Option<u64>> {
    Ok(match log.dir.entry(log.name)? {
        Some(entry) if entry.kind == Kind::File && entry.id == live => Some(entry.len),
        _ => None,
    })
}

/// Whether what was renamed to `archive` is the live file. The path was checked just
/// before, but a rename goes by name: whatever another program swapped in meanwhile (a
/// symbolic link, above all) was renamed instead. That is put back, as it was.
fn renamed_the_live_file(log: LogName<'_>, archive: &OsStr, live: FileId) -> io::Result<bool> {
    match log.dir.entry(archive)? {
        Some(entry) if entry.kind == Kind::File && entry.id == live => Ok(true),
        Some(_) => {
            log.dir.rename_exclusive(archive, log.name)?;
            Ok(false)
        }
        // Gone already: nothing of ours to put back.
        None => Ok(false),
    }
}

/// Adds to a permission error what rotation needs of the directory.
pub(crate) fn explain(log: LogName<'_>, error: io::Error) -> io::Error {
    if error.kind() != io::ErrorKind::PermissionDenied {
        return error;
    }
    let dir = log.path.parent().unwrap_or(log.path);
    io::Error::new(
        error.kind(),
        format!(
            "{error}; every process that rotates must be able to write and search `{}` \
             (a group they share, mode 2770 say); with the sticky bit set there, only a \
             file's owner may rename it",
            dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_counts_the_incoming_bytes() {
        assert!(fits(60, 40, 100), "exactly full is allowed");
        assert!(!fits(60, 41, 100));
        assert!(!fits(0, 101, 100));
        assert!(!fits(u64::MAX, 1, 100), "no overflow");
    }
}
